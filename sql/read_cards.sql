-- Migration V9, every node: the list cards by id range, for servers that
-- know which ids hold which list positions.
--
-- products_page() (V2) turns positions into ids on every request: two
-- running sums over the paging counts and a skip of up to 1023 cards,
-- about ten times the work of a product lookup. A server that keeps the
-- ordered product ids in memory (kept fresh by the replicas' card notices,
-- server/src/cache/positions.rs) knows the first and last id of a page and
-- needs only one index range scan here. products_page() remains for
-- servers without that index, and for X-Read-After reads.
create view api_product_card as select product_id, doc from product_card;
comment on view api_product_card is
    'List cards by product id, for GET /products when the server knows the page''s id range.';

grant select on api_product_card to atelier_reader;
