-- Atelier: from the write model to the read model, on the primary only.
--
-- Read after write_schema.sql and read_views.sql (which creates the summary
-- tables filled here). Three parts:
--   1. the JSON shaping, once: one *_source view per document kind, built
--      from the write model; the triggers (a few products) and the bulk build
--      (every product) both read these views, so they can never drift;
--   2. refresh_card/detail/styles/related(ids): lock the products, then
--      recompute one document kind for them and store only what changed,
--      with a new version (why lock first: see part 2); every trigger and
--      write goes through these, so none can rebuild without the lock;
--   3. statement-level triggers with transition tables, so a statement that
--      writes fifty photos refreshes the product's styles document once.
--
-- Documents are compact JSON text (no insignificant whitespace), keys in the
-- order of the HTTP contract. They are built by concatenation around
-- to_json() for escaping, because json_build_object/json_agg render with
-- extra spaces and jsonb reorders keys; the bytes stored are the bytes served.

-- ---------------------------------------------------------------------------
-- 1. Shaping
-- ---------------------------------------------------------------------------

-- A JSON string literal, or null. Simple enough for the planner to inline.
create function json_str(v text) returns text
language sql stable parallel safe as $$
    select coalesce(to_json(v)::text, 'null')
$$;

-- Money as the contract wants it: a string with exactly two decimals, or null.
-- The columns are numeric(12,2), whose text form always has two decimals.
create function json_price(v numeric) returns text
language sql immutable parallel safe as $$
    select coalesce('"' || v::text || '"', 'null')
$$;

-- ISO-8601 in UTC with milliseconds, as JavaScript's Date#toJSON prints it.
create function json_time(v timestamptz) returns text
language sql stable parallel safe as $$
    select '"' || to_char(v at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || '"'
$$;

-- The product fields shared by the list card and the detail document, without
-- the closing brace, so the detail can append its features.
create view product_fields_source as
select p.id as product_id,
       '{"id":' || p.id
    || ',"name":' || json_str(p.name)
    || ',"slogan":' || json_str(p.slogan)
    || ',"description":' || json_str(p.description)
    || ',"category":' || json_str(p.category)
    || ',"default_price":' || json_price(p.default_price)
    || ',"created_at":' || json_time(p.created_at)
    || ',"updated_at":' || json_time(p.updated_at) as fields
from product p;

create view product_card_source as
select product_id, fields || '}' as doc
from product_fields_source;

create view product_detail_source as
select f.product_id,
       f.fields || ',"features":' || coalesce(
           (select '[' || string_agg('{"feature":' || json_str(x.feature)
                                     || ',"value":' || json_str(x.value) || '}',
                                     ',' order by x.id) || ']'
            from feature x
            where x.product_id = f.product_id),
           '[]') || '}' as doc
from product_fields_source f;

-- One style as an element of its product's "results": photos in ascending
-- id, or the public API's single all-null photo when there are none; skus as
-- an object keyed by sku id. POST /products/:id/styles and PUT /styles/:id
-- answer with this element, so it is shaped here and only here.
create view style_source as
select s.id as style_id,
       s.product_id,
       '{"style_id":' || s.id
    || ',"name":' || json_str(s.name)
    || ',"original_price":' || json_price(s.original_price)
    || ',"sale_price":' || json_price(s.sale_price)
    || ',"default?":' || case when s.is_default then 'true' else 'false' end
    || ',"photos":' || coalesce(
           (select '[' || string_agg('{"thumbnail_url":' || json_str(ph.thumbnail_url)
                                     || ',"url":' || json_str(ph.url) || '}',
                                     ',' order by ph.id) || ']'
            from photo ph
            where ph.style_id = s.id),
           '[{"thumbnail_url":null,"url":null}]')
    || ',"skus":' || coalesce(
           (select '{' || string_agg('"' || k.id || '":{"quantity":' || k.quantity
                                     || ',"size":' || json_str(k.size) || '}',
                                     ',' order by k.id) || '}'
            from sku k
            where k.style_id = s.id),
           '{}')
    || '}' as doc
from style s;

-- The styles document: the product's styles in ascending id.
create view product_styles_source as
select p.id as product_id,
       '{"product_id":"' || p.id || '","results":' || coalesce(
           (select '[' || string_agg(x.doc, ',' order by x.style_id) || ']'
            from style_source x
            where x.product_id = p.id),
           '[]') || '}' as doc
from product p;

create view product_related_source as
select p.id as product_id,
       coalesce(
           (select '[' || string_agg(r.related_product_id::text, ',' order by r.id) || ']'
            from related_product r
            where r.product_id = p.id),
           '[]') as doc
from product p;

-- ---------------------------------------------------------------------------
-- 2. Refresh
-- ---------------------------------------------------------------------------
-- Why a refresh locks first. Two transactions that write rows of the same
-- product (two stock movements on different skus, say) each rebuild the
-- product's document. If each rebuilt from its own snapshot, the one that
-- upserts last would overwrite the other's change with a document that never
-- saw it. So every refresh first locks the products it is about to rebuild
-- (their `product` rows, in id order) and only then rebuilds them, in a new
-- statement. In READ COMMITTED a new statement takes a new snapshot, and the
-- lock is held until commit; so whichever transaction rebuilds a product
-- last has waited for every other writer of that product to commit and sees
-- all of their rows. The stored document is then exactly what the shaping
-- views build from the committed write model, however writes interleave.
--
-- The lock is FOR NO KEY UPDATE: it excludes other writers of the product
-- (who take the same lock, or update or delete the row) but not the FOR KEY
-- SHARE that a foreign-key check takes when a child row is inserted, so the
-- check of one writer never waits on the rebuild of another. The write
-- functions in write_api.sql take the same lock before they write anything,
-- so that a transaction never holds a child row another transaction needs
-- while it waits for the product (the classic lock-order deadlock); the
-- refresh's lock is then already held and costs nothing.

-- Every stored document gets a version from this one sequence, so a version
-- (and so an ETag) is never reused, even across document kinds.
create sequence read_doc_version as bigint;

-- Locks products `ids` for a rebuild, in id order (so two transactions that
-- lock several products cannot lock them in opposite orders). Products that
-- no longer exist are skipped: their deleter holds the stronger lock.
create function lock_products(ids bigint[]) returns void
language plpgsql set plan_cache_mode = force_generic_plan as $$
begin
    perform 1 from product where id = any(ids) order by id for no key update;
end;
$$;

-- One function per document kind: lock the products (see above), then one
-- static statement that deletes the documents of products that no longer
-- exist and upserts the others, bumping the version only where the bytes
-- changed, so a write that changes nothing visible sends nothing to the
-- replicas. Static statements are prepared once per connection (a dynamic
-- EXECUTE was planned again on every write), and `force_generic_plan` keeps
-- them that way: left to itself the plan cache compares a generic plan for
-- `= any(ids)` with the custom plans it made for the one-product arrays
-- writes pass, finds the generic one dearer, and plans the whole styles view
-- again on every call (measured: 1,450 movements/s with custom plans, 2,050
-- with generic ones; docs/benchmarks.md).

-- The list card also keeps the live counts of product_page_block and
-- product_page_superblock, by increments rather than recounts, so that two
-- writers in one block cannot lose each other's update.
create function refresh_card(ids bigint[]) returns void
language plpgsql set plan_cache_mode = force_generic_plan as $$
begin
    perform lock_products(ids);
    with gone as (
        delete from product_card d
        where d.product_id = any(ids)
          and not exists (select 1 from product p where p.id = d.product_id)
        returning d.product_id),
    upserted as (
        insert into product_card (product_id, doc, version)
        select s.product_id, s.doc, nextval('read_doc_version')
        from product_card_source s
        where s.product_id = any(ids)
        on conflict (product_id) do update
            set doc = excluded.doc, version = excluded.version
            where product_card.doc is distinct from excluded.doc
        returning product_id, xmax = 0 as inserted),
    block_delta as (
        select product_id / 1024 as block_no, 1 as delta from upserted where inserted
        union all
        select product_id / 1024, -1 from gone),
    blocks as (
        insert into product_page_block (block_no, live)
        select block_no, sum(delta) from block_delta group by block_no
        on conflict (block_no) do update set live = product_page_block.live + excluded.live)
    insert into product_page_superblock (superblock_no, live)
    select block_no / 64, sum(delta) from block_delta group by block_no / 64
    on conflict (superblock_no) do update set live = product_page_superblock.live + excluded.live;
end;
$$;

create function refresh_detail(ids bigint[]) returns void
language plpgsql set plan_cache_mode = force_generic_plan as $$
begin
    perform lock_products(ids);
    delete from product_detail d
    where d.product_id = any(ids) and not exists (select 1 from product p where p.id = d.product_id);
    insert into product_detail (product_id, doc, version)
    select s.product_id, s.doc, nextval('read_doc_version')
    from product_detail_source s
    where s.product_id = any(ids)
    on conflict (product_id) do update
        set doc = excluded.doc, version = excluded.version
        where product_detail.doc is distinct from excluded.doc;
end;
$$;

create function refresh_styles(ids bigint[]) returns void
language plpgsql set plan_cache_mode = force_generic_plan as $$
begin
    perform lock_products(ids);
    delete from product_styles d
    where d.product_id = any(ids) and not exists (select 1 from product p where p.id = d.product_id);
    insert into product_styles (product_id, doc, version)
    select s.product_id, s.doc, nextval('read_doc_version')
    from product_styles_source s
    where s.product_id = any(ids)
    on conflict (product_id) do update
        set doc = excluded.doc, version = excluded.version
        where product_styles.doc is distinct from excluded.doc;
end;
$$;

create function refresh_related(ids bigint[]) returns void
language plpgsql set plan_cache_mode = force_generic_plan as $$
begin
    perform lock_products(ids);
    delete from product_related d
    where d.product_id = any(ids) and not exists (select 1 from product p where p.id = d.product_id);
    insert into product_related (product_id, doc, version)
    select s.product_id, s.doc, nextval('read_doc_version')
    from product_related_source s
    where s.product_id = any(ids)
    on conflict (product_id) do update
        set doc = excluded.doc, version = excluded.version
        where product_related.doc is distinct from excluded.doc;
end;
$$;

-- Build document kind `kind` for products first_id..last_id from scratch,
-- set-based, from the same *_source views the triggers use. The bulk loader
-- runs it for id ranges on several connections at once, after truncating
-- the document tables (nothing else writes during a load, so no locks).
create function build_docs(kind text, first_id bigint, last_id bigint) returns bigint
language plpgsql as $$
declare
    built bigint;
begin
    execute format(
        'insert into %I (product_id, doc, version)
         select product_id, doc, nextval(''read_doc_version'') from %I
         where product_id between $1 and $2',
        'product_' || kind, 'product_' || kind || '_source')
    using first_id, last_id;
    get diagnostics built = row_count;
    return built;
end;
$$;

-- Recount both paging levels from product_card (after a bulk build).
create function rebuild_page_blocks() returns void
language sql as $$
    truncate product_page_block, product_page_superblock;
    insert into product_page_block (block_no, live)
    select product_id / 1024, count(*) from product_card group by 1;
    insert into product_page_superblock (superblock_no, live)
    select block_no / 64, sum(live) from product_page_block group by 1;
$$;

-- ---------------------------------------------------------------------------
-- 3. Triggers
-- ---------------------------------------------------------------------------
-- Statement-level AFTER triggers with transition tables, so a statement that
-- writes fifty photos rebuilds the product's styles document once. PostgreSQL
-- allows a transition table only on a single-event trigger, so each table has
-- one trigger per event, all calling the same function, which reads whichever
-- of old_rows/new_rows the event provides. Each refreshes only the document
-- kinds its table can change.

-- The product row itself (its statement has already locked the rows, so
-- the refreshes' own lock costs nothing here).
create function product_changed() returns trigger
language plpgsql as $$
declare
    ids bigint[];
begin
    if tg_op = 'DELETE' then
        select array_agg(id) into ids from old_rows;
    else
        select array_agg(id) into ids from new_rows;
    end if;
    perform refresh_card(ids);
    perform refresh_detail(ids);
    -- An update cannot change the styles or related documents (they show
    -- only the id); an insert creates them and a delete removes them.
    if tg_op <> 'UPDATE' then
        perform refresh_styles(ids);
        perform refresh_related(ids);
    end if;
    return null;
end;
$$;

-- Children of a product that carry product_id: feature (detail document),
-- style (styles document), related_product (related document).
create function product_child_changed() returns trigger
language plpgsql as $$
declare
    ids bigint[];
begin
    if tg_op = 'INSERT' then
        select array_agg(distinct product_id) into ids from new_rows;
    elsif tg_op = 'UPDATE' then
        select array_agg(distinct product_id) into ids
        from (select product_id from new_rows union select product_id from old_rows) t;
    else
        select array_agg(distinct product_id) into ids from old_rows;
    end if;
    case tg_argv[0]
        when 'detail' then perform refresh_detail(ids);
        when 'styles' then perform refresh_styles(ids);
        when 'related' then perform refresh_related(ids);
    end case;
    return null;
end;
$$;

-- Children of a style: photo and sku (styles document). The product is found
-- through style; a row whose style is already gone (a cascade from deleting
-- the style) is skipped, because the style's own trigger refreshes that
-- product.
create function style_child_changed() returns trigger
language plpgsql as $$
declare
    ids bigint[];
begin
    if tg_op = 'INSERT' then
        select array_agg(distinct s.product_id) into ids
        from new_rows r join style s on s.id = r.style_id;
    elsif tg_op = 'UPDATE' then
        select array_agg(distinct s.product_id) into ids
        from (select style_id from new_rows union select style_id from old_rows) r
        join style s on s.id = r.style_id;
    else
        select array_agg(distinct s.product_id) into ids
        from old_rows r join style s on s.id = r.style_id;
    end if;
    perform refresh_styles(ids);
    return null;
end;
$$;

create trigger product_inserted after insert on product
    referencing new table as new_rows for each statement execute function product_changed();
create trigger product_updated after update on product
    referencing old table as old_rows new table as new_rows for each statement execute function product_changed();
create trigger product_deleted after delete on product
    referencing old table as old_rows for each statement execute function product_changed();

create trigger feature_inserted after insert on feature
    referencing new table as new_rows for each statement execute function product_child_changed('detail');
create trigger feature_updated after update on feature
    referencing old table as old_rows new table as new_rows for each statement execute function product_child_changed('detail');
create trigger feature_deleted after delete on feature
    referencing old table as old_rows for each statement execute function product_child_changed('detail');

create trigger style_inserted after insert on style
    referencing new table as new_rows for each statement execute function product_child_changed('styles');
create trigger style_updated after update on style
    referencing old table as old_rows new table as new_rows for each statement execute function product_child_changed('styles');
create trigger style_deleted after delete on style
    referencing old table as old_rows for each statement execute function product_child_changed('styles');

create trigger related_product_inserted after insert on related_product
    referencing new table as new_rows for each statement execute function product_child_changed('related');
create trigger related_product_updated after update on related_product
    referencing old table as old_rows new table as new_rows for each statement execute function product_child_changed('related');
create trigger related_product_deleted after delete on related_product
    referencing old table as old_rows for each statement execute function product_child_changed('related');

create trigger photo_inserted after insert on photo
    referencing new table as new_rows for each statement execute function style_child_changed();
create trigger photo_updated after update on photo
    referencing old table as old_rows new table as new_rows for each statement execute function style_child_changed();
create trigger photo_deleted after delete on photo
    referencing old table as old_rows for each statement execute function style_child_changed();

create trigger sku_inserted after insert on sku
    referencing new table as new_rows for each statement execute function style_child_changed();
create trigger sku_updated after update on sku
    referencing old table as old_rows new table as new_rows for each statement execute function style_child_changed();
create trigger sku_deleted after delete on sku
    referencing old table as old_rows for each statement execute function style_child_changed();

-- The heartbeat row (see read_views.sql) exists on the primary only; the
-- replicas receive it with the subscription's initial copy.
insert into replication_heartbeat (id, beat) values (1, 0);
