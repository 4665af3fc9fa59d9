-- Atelier read model: the summary tables that logical replication streams to
-- every read replica, and the views and functions the GET handlers query.
--
-- Applied on the primary (where triggers.sql fills the tables) and on every
-- replica (where only the subscription writes them). Nothing here may refer
-- to the write model: replicas do not have it.
--
-- Each document table holds, per product, the exact bytes one GET endpoint
-- returns, as text (not jsonb, which would be re-rendered on every read), and
-- a version that changes whenever the bytes do; the server turns it into the
-- ETag. Every table has a primary key, which logical replication needs to
-- replicate updates and deletes.

create table product_card (
    product_id bigint primary key,
    doc        text   compression lz4 not null,   -- one element of GET /products
    version    bigint not null
);
comment on table product_card is 'List card of each product: an element of GET /products.';

create table product_detail (
    product_id bigint primary key,
    doc        text   compression lz4 not null,   -- GET /products/:id
    version    bigint not null
);
comment on table product_detail is 'Body of GET /products/:id (fields and features).';

create table product_styles (
    product_id bigint primary key,
    doc        text   compression lz4 not null,   -- GET /products/:id/styles
    version    bigint not null
);
comment on table product_styles is 'Body of GET /products/:id/styles (styles, photos, skus).';

create table product_related (
    product_id bigint primary key,
    doc        text   compression lz4 not null,   -- GET /products/:id/related
    version    bigint not null
);
comment on table product_related is 'Body of GET /products/:id/related (related product ids).';

-- Paging by position. GET /products?page=P&count=C means positions
-- (P-1)*C+1 .. P*C among the products that exist now, and OFFSET over a
-- million cards costs a million index steps for the deepest page. Instead
-- products are counted in blocks of 1024 consecutive ids, and blocks in
-- superblocks of 64 blocks (65,536 ids): a running sum over the superblocks
-- (16 rows at a million products) finds the superblock holding the first
-- position, one over its blocks (at most 64) finds the block, and at most
-- 1023 cards are skipped inside it.
create table product_page_block (
    block_no bigint primary key,   -- product_id / 1024
    -- No check (live >= 0): refresh_docs() applies a -1 as an upsert, and
    -- PostgreSQL checks constraints on the proposed row before the conflict.
    live     bigint not null
);
comment on table product_page_block is
    'Live product_card rows per block of 1024 ids; lets GET /products seek to a position.';

create table product_page_superblock (
    superblock_no bigint primary key,   -- block_no / 64 = product_id / 65536
    live          bigint not null       -- no check, as for product_page_block
);
comment on table product_page_superblock is
    'Live product_card rows per 64 blocks; the first level of the GET /products seek.';

-- GET /products: the cards at positions p_offset+1 .. p_offset+p_count as one
-- JSON array, '[]' past the end. PL/pgSQL rather than SQL on purpose: a SQL
-- function with a CTE and aggregates is not inlined and is planned again on
-- every call (about 2 ms, more than the query), while PL/pgSQL keeps its
-- plans for the life of the connection.
create function products_page(p_offset bigint, p_count integer) returns text
language plpgsql stable parallel safe as $$
declare
    start_superblock bigint;
    start_block      bigint;
    rest             bigint;
    skip             bigint;
    page             text;
begin
    -- Each running sum is computed in key order, and each scan stops at the
    -- first row that reaches past the position sought.
    select superblock_no, p_offset - (upto - live)
    into start_superblock, rest
    from (select superblock_no, live, sum(live) over (order by superblock_no) as upto
          from product_page_superblock) running
    where upto > p_offset
    order by superblock_no
    limit 1;
    if start_superblock is null then
        return '[]';
    end if;
    select block_no, rest - (upto - live)
    into start_block, skip
    from (select block_no, live, sum(live) over (order by block_no) as upto
          from product_page_block
          where block_no >= start_superblock * 64 and block_no < (start_superblock + 1) * 64) running
    where upto > rest
    order by block_no
    limit 1;
    select '[' || coalesce(string_agg(c.doc, ',' order by c.product_id), '') || ']'
    into page
    from (select product_id, doc
          from product_card
          where product_id >= start_block * 1024
          order by product_id
          offset skip
          limit p_count) c;
    return page;
end;
$$;

-- The per-product documents as the GET handlers see them. The handlers
-- query these views, never the tables, so the storage can change alone.
create view api_product_detail as select product_id, doc, version from product_detail;
create view api_product_styles as select product_id, doc, version from product_styles;
create view api_product_related as select product_id, doc, version from product_related;

-- The primary's WAL position up to which this database has applied the
-- primary's commits: the subscription's replication origin progress, which
-- moves only when a replicated commit is applied (so it is exact, and stands
-- still while the primary writes nothing that is published). Null on the
-- primary, which has no subscription. Read-your-writes compares it with the
-- position the primary reported after a write.
create function read_model_applied_lsn() returns pg_lsn
language sql stable as $$
    select max(o.remote_lsn)
    from pg_subscription s
    join pg_replication_origin_status o on o.external_id = 'pg_' || s.oid
    where s.subdbid = (select oid from pg_database where datname = current_database())
$$;

-- A counter the tools bump on the primary and then wait to see on every
-- replica: commits apply in order, so a replica showing the new value has
-- applied everything committed before it. Used by `atelier load`, the tests
-- and the consistency check to know that the replicas have caught up.
create table replication_heartbeat (
    id   integer primary key check (id = 1),
    beat bigint  not null
);
comment on table replication_heartbeat is
    'Bumped by tools on the primary; seeing the new value on a replica means it has caught up.';
