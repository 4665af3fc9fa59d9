-- Atelier write model: the normalized source of truth, on the primary only.
--
-- Read this file first, then triggers.sql, then read_views.sql.
--
-- Style, once for every SQL file in this project:
--   * lowercase keywords, snake_case names, singular table names;
--   * every surrogate key is `id bigint generated always as identity`;
--   * every foreign key has an index (the single biggest lesson of every
--     Atelier implementation: without it, cascades and lookups by parent
--     turn into sequential scans at a million products);
--   * money is numeric(12,2) so it always renders with exactly two decimals;
--   * text limits from the HTTP contract are check constraints, so that no
--     path (API, COPY, psql) can store what the API would refuse.
--
-- Bulk loads write explicit ids with COPY (which always writes identity
-- columns as given) and then move each identity sequence past the highest id;
-- see `atelier load` and the function reset_identity_sequences() below.

create table product (
    id            bigint generated always as identity primary key,
    name          text        not null check (char_length(name) <= 255),
    slogan        text        not null check (char_length(slogan) <= 2048),
    description   text        not null check (char_length(description) <= 2048),
    category      text        not null check (char_length(category) <= 255),
    default_price numeric(12,2) not null check (default_price >= 0),
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now()
);
comment on table product is 'One catalog product; the root of every read document.';

create table feature (
    id         bigint generated always as identity primary key,
    product_id bigint not null references product (id) on delete cascade,
    feature    text   not null check (char_length(feature) <= 255),
    -- The public API shows features whose value is null; keep them nullable.
    value      text            check (char_length(value) <= 255)
);
create index feature_product_id_idx on feature (product_id);

create table style (
    id             bigint generated always as identity primary key,
    product_id     bigint not null references product (id) on delete cascade,
    name           text   not null check (char_length(name) <= 255),
    original_price numeric(12,2) not null check (original_price >= 0),
    -- null means "not on sale"; the read document shows null.
    sale_price     numeric(12,2)          check (sale_price >= 0),
    is_default     boolean not null default false
);
create index style_product_id_idx on style (product_id);
-- At most one default style per product. The write functions clear the old
-- default before they set a new one, under the product's lock (write_api.sql);
-- the index is the last line of defence for writes made any other way.
create unique index style_one_default_per_product on style (product_id) where is_default;

create table photo (
    id            bigint generated always as identity primary key,
    style_id      bigint not null references style (id) on delete cascade,
    thumbnail_url text check (char_length(thumbnail_url) <= 2048),
    url           text check (char_length(url) <= 2048)
);
create index photo_style_id_idx on photo (style_id);

create table sku (
    id       bigint generated always as identity primary key,
    style_id bigint not null references style (id) on delete cascade,
    size     text   not null check (char_length(size) <= 255),
    -- A materialised sum of this sku's stock_movement rows, kept in the same
    -- transaction as each movement by api_record_movement() and
    -- record_initial_stock() (write_api.sql). The check is the last line of
    -- defence for "stock never goes negative".
    quantity bigint not null default 0 check (quantity >= 0)
);
create index sku_style_id_idx on sku (style_id);

create table stock_movement (
    id         bigint generated always as identity primary key,
    sku_id     bigint not null references sku (id) on delete cascade,
    delta      bigint not null check (delta <> 0),
    reason     text   check (char_length(reason) <= 255),
    created_at timestamptz not null default now()
);
comment on table stock_movement is
    'The stock ledger: the source of truth for sku.quantity, which always equals the sum of delta.';
create index stock_movement_sku_id_idx on stock_movement (sku_id);

create table related_product (
    -- id orders a product's related list: "in the order they were related".
    id                 bigint generated always as identity primary key,
    product_id         bigint not null references product (id) on delete cascade,
    related_product_id bigint not null references product (id) on delete cascade,
    unique (product_id, related_product_id),
    check (product_id <> related_product_id)
);
-- (product_id, related_product_id) is covered by the unique index; the other
-- foreign key needs its own so deleting a product finds who pointed at it.
create index related_product_related_product_id_idx on related_product (related_product_id);

-- Idempotent POSTs: the first response to each Idempotency-Key, stored in
-- the same transaction as the write it describes, so a retry either finds
-- the committed answer or waits on the key's row lock until the first try
-- commits or rolls back. `fingerprint` (md5 of method, path and body) tells a
-- true retry from a different request reusing the key (422). Rows older than
-- the retention (24 hours, see write.rs) are deleted by the server.
create table idempotency_key (
    key         text primary key check (char_length(key) <= 255),
    fingerprint text not null,
    status      smallint not null,
    body        text not null,
    location    text,
    created_at  timestamptz not null default now()
);
create index idempotency_key_created_at_idx on idempotency_key (created_at);

-- The state of the last bulk load (`atelier load`), one row. A load is
-- several transactions (parallel COPY on several connections), so this row
-- is how a crash mid-load is noticed: state stays 'loading' and every tool
-- says to run the load again with --replace. The loader drops secondary
-- indexes before COPY and records their definitions here first, in the same
-- transaction, so an interrupted load can always put them back.
create table bulk_load (
    id              integer primary key check (id = 1),
    state           text not null check (state in ('loading', 'complete')),
    products        bigint,
    started_at      timestamptz not null default now(),
    finished_at     timestamptz,
    dropped_indexes text[] not null default '{}'
);

-- Move every identity sequence past the highest id in its table. Called after
-- a bulk load that wrote explicit ids.
create function reset_identity_sequences() returns void
language plpgsql as $$
declare
    t text;
begin
    foreach t in array array['product', 'feature', 'style', 'photo', 'sku',
                             'stock_movement', 'related_product'] loop
        execute format(
            'select setval(pg_get_serial_sequence(%L, ''id''), coalesce((select max(id) from %I), 0) + 1, false)',
            t, t);
    end loop;
end;
$$;
