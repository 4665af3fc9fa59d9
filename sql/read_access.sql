-- Migration V5, every node: who may read the read model.
--
-- The reader role (the service's read pools) sees the three api_* views
-- and the two functions GETs call, nothing else: not the document tables
-- behind them, not the paging counts, and on the primary not the write
-- model. Views run with their owner's rights, so granting a view is enough;
-- the two functions become `security definer` (they run as the owner) with
-- a fixed search_path, so no object a caller creates can stand in for ours.

alter function products_page(bigint, integer) security definer set search_path = public, pg_temp;
alter function read_model_applied_lsn() security definer set search_path = public, pg_temp;

-- Functions are executable by everyone unless revoked: revoke that, for
-- today's functions and for every function the owner creates later.
revoke execute on all functions in schema public from public;
alter default privileges revoke execute on functions from public;
-- Nobody but the owner creates objects here, and only our roles look in.
revoke all on schema public from public;

grant usage on schema public to atelier_reader;
grant select on api_product_detail, api_product_styles, api_product_related to atelier_reader;
grant execute on function products_page(bigint, integer), read_model_applied_lsn() to atelier_reader;
