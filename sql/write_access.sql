-- Migration V6, primary only: who may write, and what the replicas may copy.
--
-- The writer role (the service's write pool) calls the api_* write functions
-- and may write the write model's tables directly (an operator's fix-up
-- through the same triggers); it cannot touch the documents, run DDL or
-- read the paging counts. Two kinds of function run as the owner
-- (`security definer`, fixed search_path) so that the writer needs no
-- rights on the read model:
--   - the statement triggers' functions, whose refresh_* calls rebuild the
--     documents (they fire for whoever writes, so for the writer too);
--   - the api_* functions, which return documents they read back.
-- The replication role reads the published tables and nothing else.

do $$
declare
    f regprocedure;
begin
    for f in
        select p.oid::regprocedure
        from pg_proc p
        where p.pronamespace = 'public'::regnamespace
          and (p.proname like 'api\_%' or p.proname in ('product_changed', 'product_child_changed', 'style_child_changed'))
        order by 1
    loop
        execute format('alter function %s security definer set search_path = public, pg_temp', f);
        if f::text like 'api\_%' then
            execute format('grant execute on function %s to atelier_writer', f);
        end if;
    end loop;
end;
$$;

grant usage on schema public to atelier_writer, atelier_replicator;
grant select, insert, update, delete
    on product, feature, style, photo, sku, stock_movement, related_product, idempotency_key
    to atelier_writer;

-- The tables replication/publication.sql publishes: the initial copy of a
-- subscription selects them as this role.
grant select
    on product_card, product_detail, product_styles, product_related,
       product_page_block, product_page_superblock, replication_heartbeat
    to atelier_replicator;
