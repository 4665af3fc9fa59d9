-- EXPLAIN (ANALYZE, BUFFERS) of every read query the API runs, for psql,
-- against a replica (or the primary). `atelier explain` runs the same
-- statements, plus the writes in a rolled-back transaction, on both.
--
--   psql "host=127.0.0.1 port=54321 user=postgres dbname=atelier" -f sql/explain.sql
--
-- Ids come from the last 10% of products; the deepest page is the last
-- page of 5. Each statement is also run once unexplained first, so that
-- PL/pgSQL's plan cache is warm, as it is on a server's pooled connection.

select (select product_id from product_card order by product_id desc
        offset (select count(*) / 20 from product_card) limit 1) as product_id,
       greatest(((select count(*) from product_card) - 1) / 5 * 5, 0) as deepest_offset
\gset

\echo GET /products?page=1&count=5
select length(products_page(0, 5));
explain (analyze, buffers) select products_page(0, 5);

\echo GET /products (deepest page of 5, offset :deepest_offset)
select length(products_page(:deepest_offset, 5));
explain (analyze, buffers) select products_page(:deepest_offset, 5);

\echo GET /products by id range (a server with the position index), 5 cards from :product_id
explain (analyze, buffers) select doc from api_product_card
    where product_id between :product_id and :product_id + 4 order by product_id;

\echo GET /products?count=1000 (deepest)
explain (analyze, buffers) select products_page(greatest(:deepest_offset - 995, 0), 1000);

\echo GET /products/:product_id
explain (analyze, buffers) select doc, version from api_product_detail where product_id = :product_id;

\echo GET /products/:product_id/styles
explain (analyze, buffers) select doc, version from api_product_styles where product_id = :product_id;

\echo GET /products/:product_id/related
explain (analyze, buffers) select doc, version from api_product_related where product_id = :product_id;

\echo read-your-writes probe (replicas)
explain (analyze, buffers) select read_model_has_applied('0/0'::pg_lsn);
