-- Migration V13, primary only: stock movements in batches.
--
-- One commit per movement is the write path's ceiling (docs/benchmarks.md:
-- a movement's statements cost about 131 µs, its commit about 770 µs of
-- the machine's CPU). The server sends the movements that arrive together
-- as one call of this function (server/src/write/batch.rs): one
-- transaction, one commit, and each touched product's documents rebuilt
-- once for the whole batch instead of once per movement.
--
-- Each item keeps the meaning of api_record_movement (write_api.sql), in
-- the order given: a movement that would take its sku below zero is
-- refused (409) and changes nothing, an unknown sku is 404, and the items
-- after either still apply. Several items on one sku see each other, in
-- order, so the batch sells exactly what a series of single movements
-- would. Answers one row per item, in order: its status and its body (the
-- new quantity as {"sku_id":…,"quantity":…}, or the error's message).
--
-- Locks: every touched product first, in id order (lock_products, as the
-- document rebuilds do), so a batch never waits for a product while
-- holding another that a single write or another batch needs in the
-- opposite order. The quantities are read after those locks: every writer
-- of a sku's quantity holds its product's lock, so they cannot change
-- until the commit.
create function api_record_movements(p_skus bigint[], p_deltas bigint[], p_reasons text[])
returns table (item_status smallint, item_body text)
language plpgsql as $$
declare
    ids bigint[];        -- the skus that exist, in id order
    quantities bigint[]; -- their quantities as the items so far leave them
    applied boolean[] := '{}';
    i int;
    j int;
begin
    if cardinality(p_skus) is distinct from cardinality(p_deltas)
       or cardinality(p_skus) is distinct from cardinality(p_reasons) then
        raise exception 'api_record_movements: % skus, % deltas, % reasons',
            cardinality(p_skus), cardinality(p_deltas), cardinality(p_reasons);
    end if;
    perform lock_products(array(
        select distinct s.product_id from sku k join style s on s.id = k.style_id where k.id = any(p_skus)));
    select coalesce(array_agg(id order by id), '{}'), coalesce(array_agg(quantity order by id), '{}')
    into ids, quantities
    from sku where id = any(p_skus);
    for i in 1 .. coalesce(cardinality(p_skus), 0) loop
        j := array_position(ids, p_skus[i]);
        if j is null then
            item_status := 404;
            item_body := format('sku %s not found', p_skus[i]);
            applied := applied || false;
        elsif quantities[j] + p_deltas[i] < 0 then
            item_status := 409;
            item_body := format('stock would go negative: sku %s has %s', p_skus[i], quantities[j]);
            applied := applied || false;
        else
            quantities[j] := quantities[j] + p_deltas[i];
            item_status := 201;
            item_body := '{"sku_id":' || p_skus[i] || ',"quantity":' || quantities[j] || '}';
            applied := applied || true;
        end if;
        return next;
    end loop;
    -- One statement each, so the statement triggers rebuild each touched
    -- product's documents once. A sku whose items cancel out is not
    -- updated (its documents do not change); its movements are still kept.
    update sku k set quantity = n.quantity
    from unnest(ids, quantities) as n(id, quantity)
    where k.id = n.id and k.quantity <> n.quantity;
    insert into stock_movement (sku_id, delta, reason)
    select p_skus[n], p_deltas[n], p_reasons[n]
    from generate_subscripts(p_skus, 1) as n
    where applied[n]
    order by n;
end;
$$;

-- Like every api_* function (write_access.sql): runs as the owner, callable
-- by the writer.
alter function api_record_movements(bigint[], bigint[], text[]) security definer set search_path = public, pg_temp;
grant execute on function api_record_movements(bigint[], bigint[], text[]) to atelier_writer;
