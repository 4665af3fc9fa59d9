-- Atelier: the write rules, as the functions the server calls, on the primary
-- only. Read after triggers.sql.
--
-- Every write endpoint is one call of one api_* function (PostgREST's
-- "functions as RPC"): the server parses and type-checks the request body,
-- calls the function in one round trip, maps its SQLSTATE to a status, and
-- sends the text it returns as the response body. So each rule lives here
-- once: the stock ledger (a movement and the quantity together, never below
-- zero), a new sku's initial stock, the one default style per product, and
-- what a related list may hold.
--
-- Errors raised for the client, and the status the server answers:
--   AT404  no such product, style or sku                       404
--   AT409  the stock would go below zero                       409
--   AT422  a rule on the input; COLUMN names the field,        422
--          e.g. 'related[1]'
-- Any other error is the server's problem (5xx); constraint violations of
-- the tables are the last line of defence, not the way rules are enforced.
--
-- Locking (see part 2 of triggers.sql): each function first locks the
-- product it is about to change, before it reads or writes any of that
-- product's rows. Writers of one product therefore run one after another,
-- each seeing what the previous one committed (a style flipped to default by
-- two writers ends with exactly one default, features replaced by two
-- writers end as one writer's list, not both), and a writer never holds a
-- child row that another needs while it waits for the product.

-- The error helpers. Messages are written for the API's clients.
create function raise_not_found(what text, id bigint) returns void
language plpgsql as $$
begin
    raise exception using errcode = 'AT404', message = format('%s %s not found', what, id);
end;
$$;

create function raise_invalid(field text, problem text) returns void
language plpgsql as $$
begin
    raise exception using errcode = 'AT422', column = field, message = format('%s %s', field, problem);
end;
$$;

-- Locks one product for a write; 404 when it does not exist.
create function lock_product(p_product_id bigint) returns void
language plpgsql as $$
begin
    perform 1 from product where id = p_product_id for no key update;
    if not found then
        perform raise_not_found('product', p_product_id);
    end if;
end;
$$;

-- The product a style belongs to, locked; 404 when the style does not
-- exist (before or after the product's lock was granted).
create function lock_style_product(p_style_id bigint) returns bigint
language plpgsql as $$
declare
    owner bigint;
begin
    select product_id into owner from style where id = p_style_id;
    if found then
        perform 1 from product where id = owner for no key update;
        -- The style may have gone while we waited for its product.
        perform 1 from style where id = p_style_id;
    end if;
    if not found then
        perform raise_not_found('style', p_style_id);
    end if;
    return owner;
end;
$$;

-- The product a sku belongs to, locked; 404 as above.
create function lock_sku_product(p_sku_id bigint) returns bigint
language plpgsql as $$
declare
    owner bigint;
begin
    select s.product_id into owner from sku k join style s on s.id = k.style_id where k.id = p_sku_id;
    if found then
        perform 1 from product where id = owner for no key update;
        perform 1 from sku where id = p_sku_id;
    end if;
    if not found then
        perform raise_not_found('sku', p_sku_id);
    end if;
    return owner;
end;
$$;

-- ---------------------------------------------------------------------------
-- The stock ledger
-- ---------------------------------------------------------------------------

-- The opening movement of a sku: its quantity at creation, as the first
-- 'initial stock' entry of its ledger (none when it starts at zero), so that
-- a sku's quantity is the sum of its ledger from the start. This view is the
-- one definition: the API inserts from it for the skus it creates
-- (record_initial_stock below), and `atelier load` inserts from it for id
-- ranges of a loaded catalog (dated at the product's creation, with the sku's
-- id as the movement's id, so that a reload is identical row for row).
create view initial_stock_movement as
select k.id as sku_id, k.quantity as delta, 'initial stock'::text as reason, p.created_at as product_created_at
from sku k
join style s on s.id = k.style_id
join product p on p.id = s.product_id
where k.quantity <> 0;

-- Opens the ledger of skus just created through the API.
create function record_initial_stock(sku_ids bigint[]) returns void
language sql as $$
    insert into stock_movement (sku_id, delta, reason)
    select sku_id, delta, reason from initial_stock_movement where sku_id = any(sku_ids) order by sku_id
$$;

-- POST /skus/:id/movements. The conditional update moves the quantity only
-- if it stays at or above zero, and the movement is recorded in the same
-- transaction; a refused movement writes nothing. Answers
-- {"sku_id":…,"quantity":…} with the new quantity.
create function api_record_movement(p_sku_id bigint, p_delta bigint, p_reason text) returns text
language plpgsql as $$
declare
    new_quantity bigint;
begin
    perform lock_sku_product(p_sku_id);
    update sku set quantity = quantity + p_delta
    where id = p_sku_id and quantity + p_delta >= 0
    returning quantity into new_quantity;
    if not found then
        select quantity into new_quantity from sku where id = p_sku_id;
        if not found then
            perform raise_not_found('sku', p_sku_id);
        end if;
        raise exception using errcode = 'AT409',
            message = format('stock would go negative: sku %s has %s', p_sku_id, new_quantity);
    end if;
    insert into stock_movement (sku_id, delta, reason) values (p_sku_id, p_delta, p_reason);
    return '{"sku_id":' || p_sku_id || ',"quantity":' || new_quantity || '}';
end;
$$;

-- ---------------------------------------------------------------------------
-- Products
-- ---------------------------------------------------------------------------

-- Replaces a product's features with (names[i], feature_values[i]), in order.
create function replace_features(p_product_id bigint, names text[], feature_values text[]) returns void
language plpgsql as $$
begin
    delete from feature where product_id = p_product_id;
    if cardinality(names) > 0 then
        insert into feature (product_id, feature, value)
        select p_product_id, f, v
        from unnest(names, feature_values) with ordinality as t(f, v, n)
        order by n;
    end if;
end;
$$;

-- POST /products: answers the new id and the product as GET shows it.
create function api_create_product(
    p_name text, p_slogan text, p_description text, p_category text, p_default_price numeric,
    p_feature_names text[], p_feature_values text[],
    out created_id bigint, out body text)
language plpgsql as $$
begin
    insert into product (name, slogan, description, category, default_price)
    values (p_name, p_slogan, p_description, p_category, p_default_price)
    returning id into created_id;
    if cardinality(p_feature_names) > 0 then
        perform replace_features(created_id, p_feature_names, p_feature_values);
    end if;
    select doc into body from product_detail where product_id = created_id;
end;
$$;

-- PUT and PATCH /products/:id: a null field keeps its value; null feature
-- arrays keep the features, arrays (even empty) replace them. The server
-- passes every field for PUT. Answers the product as GET shows it.
create function api_update_product(
    p_id bigint, p_name text, p_slogan text, p_description text, p_category text, p_default_price numeric,
    p_feature_names text[], p_feature_values text[]) returns text
language plpgsql as $$
begin
    -- The update takes the product's row lock before anything else.
    update product
    set name = coalesce(p_name, name),
        slogan = coalesce(p_slogan, slogan),
        description = coalesce(p_description, description),
        category = coalesce(p_category, category),
        default_price = coalesce(p_default_price, default_price),
        updated_at = now()
    where id = p_id;
    if not found then
        perform raise_not_found('product', p_id);
    end if;
    if p_feature_names is not null then
        perform replace_features(p_id, p_feature_names, p_feature_values);
    end if;
    return (select doc from product_detail where product_id = p_id);
end;
$$;

-- DELETE /products/:id. The cascade also removes the product from every
-- other product's related list, which rebuilds those products' related
-- documents; so those products are locked too, with the product itself, in
-- one pass in id order, before anything is deleted. A product that starts
-- pointing at this one meanwhile must first take a share lock on it (see
-- api_put_related), which the delete's lock waits for or excludes; the few
-- found only after the pass are locked then.
create function api_delete_product(p_id bigint) returns void
language plpgsql as $$
declare
    target bigint;
begin
    for target in
        select p_id union select product_id from related_product where related_product_id = p_id order by 1
    loop
        if target = p_id then
            perform 1 from product where id = target for update;
        else
            perform 1 from product where id = target for no key update;
        end if;
    end loop;
    perform 1 from product p
    join related_product r on r.product_id = p.id
    where r.related_product_id = p_id
    order by p.id
    for no key update of p;
    delete from product where id = p_id;
    if not found then
        perform raise_not_found('product', p_id);
    end if;
end;
$$;

-- PUT /products/:id/related: the list in the given order, repeats kept once.
-- The product and the products it names are locked in one pass in id order:
-- the product for the write, the named ones with the share lock a
-- foreign-key check takes, so none can be deleted before this commits (and a
-- delete, which locks in the same order, never waits the other way round).
-- Answers the related document as GET shows it.
create function api_put_related(p_id bigint, p_related bigint[]) returns text
language plpgsql as $$
declare
    at_index bigint;
    missing bigint;
    target bigint;
begin
    select n - 1 into at_index from unnest(p_related) with ordinality as t(r, n) where r = p_id order by n limit 1;
    if found then
        perform raise_invalid(format('related[%s]', at_index), 'must not be the product itself');
    end if;
    for target in select p_id union select unnest(p_related) order by 1 loop
        if target = p_id then
            perform 1 from product where id = target for no key update;
        else
            perform 1 from product where id = target for key share;
        end if;
    end loop;
    if not exists (select 1 from product where id = p_id) then
        perform raise_not_found('product', p_id);
    end if;
    select r, n - 1 into missing, at_index
    from unnest(p_related) with ordinality as t(r, n)
    where not exists (select 1 from product p where p.id = r)
    order by n limit 1;
    if found then
        perform raise_invalid(format('related[%s]', at_index), format('product %s does not exist', missing));
    end if;
    delete from related_product where product_id = p_id;
    insert into related_product (product_id, related_product_id)
    select p_id, r
    from (select r, min(n) as first_n from unnest(p_related) with ordinality as t(r, n) group by r) once
    order by first_n;
    return (select doc from product_related where product_id = p_id);
end;
$$;

-- ---------------------------------------------------------------------------
-- Styles and skus
-- ---------------------------------------------------------------------------

-- Makes `p_style_id` the only default style of its product: clears the
-- current default first, so the unique index never sees two.
create function clear_default_style(p_product_id bigint, p_keep_style_id bigint) returns void
language sql as $$
    update style set is_default = false
    where product_id = p_product_id and is_default and id is distinct from p_keep_style_id
$$;

-- Inserts photos (thumbnail_urls[i], urls[i]) of a style, in order.
create function insert_photos(p_style_id bigint, thumbnail_urls text[], urls text[]) returns void
language plpgsql as $$
begin
    if cardinality(urls) > 0 then
        insert into photo (style_id, thumbnail_url, url)
        select p_style_id, t, u
        from unnest(thumbnail_urls, urls) with ordinality as x(t, u, n)
        order by n;
    end if;
end;
$$;

-- POST /products/:id/styles: the style with its photos and skus (each sku's
-- quantity opens its ledger). Answers the new id and the style as it
-- appears in the product's "results".
create function api_create_style(
    p_product_id bigint, p_name text, p_original_price numeric, p_sale_price numeric, p_default boolean,
    p_thumbnail_urls text[], p_urls text[], p_sizes text[], p_quantities bigint[],
    out created_id bigint, out body text)
language plpgsql as $$
declare
    sku_ids bigint[];
begin
    perform lock_product(p_product_id);
    if p_default then
        perform clear_default_style(p_product_id, null);
    end if;
    insert into style (product_id, name, original_price, sale_price, is_default)
    values (p_product_id, p_name, p_original_price, p_sale_price, p_default)
    returning id into created_id;
    perform insert_photos(created_id, p_thumbnail_urls, p_urls);
    if cardinality(p_sizes) > 0 then
        with created as (
            insert into sku (style_id, size, quantity)
            select created_id, s, q
            from unnest(p_sizes, p_quantities) with ordinality as x(s, q, n)
            order by n
            returning id)
        select array_agg(id) into sku_ids from created;
        perform record_initial_stock(sku_ids);
    end if;
    select doc into body from style_source where style_id = created_id;
end;
$$;

-- PUT /styles/:id: replaces the fields and the photos; skus stay. Answers
-- the style as it appears in the product's "results".
create function api_update_style(
    p_style_id bigint, p_name text, p_original_price numeric, p_sale_price numeric, p_default boolean,
    p_thumbnail_urls text[], p_urls text[]) returns text
language plpgsql as $$
declare
    owner bigint;
begin
    owner := lock_style_product(p_style_id);
    if p_default then
        perform clear_default_style(owner, p_style_id);
    end if;
    update style
    set name = p_name, original_price = p_original_price, sale_price = p_sale_price, is_default = p_default
    where id = p_style_id;
    if not found then
        perform raise_not_found('style', p_style_id);
    end if;
    delete from photo where style_id = p_style_id;
    perform insert_photos(p_style_id, p_thumbnail_urls, p_urls);
    return (select doc from style_source where style_id = p_style_id);
end;
$$;

-- DELETE /styles/:id (its photos, skus and their ledger go with it).
create function api_delete_style(p_style_id bigint) returns void
language plpgsql as $$
begin
    perform lock_style_product(p_style_id);
    delete from style where id = p_style_id;
    if not found then
        perform raise_not_found('style', p_style_id);
    end if;
end;
$$;

-- POST /styles/:id/skus: the sku and its opening movement. Answers
-- {"sku_id":…,"size":…,"quantity":…}.
create function api_create_sku(p_style_id bigint, p_size text, p_quantity bigint) returns text
language plpgsql as $$
declare
    created bigint;
begin
    perform lock_style_product(p_style_id);
    insert into sku (style_id, size, quantity) values (p_style_id, p_size, p_quantity) returning id into created;
    perform record_initial_stock(array[created]);
    return '{"sku_id":' || created || ',"size":' || json_str(p_size) || ',"quantity":' || p_quantity || '}';
end;
$$;

-- DELETE /skus/:id (its ledger goes with it).
create function api_delete_sku(p_sku_id bigint) returns void
language plpgsql as $$
begin
    perform lock_sku_product(p_sku_id);
    delete from sku where id = p_sku_id;
    if not found then
        perform raise_not_found('sku', p_sku_id);
    end if;
end;
$$;
