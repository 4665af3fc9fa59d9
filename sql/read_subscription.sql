-- Migration V12, replicas only: whether this replica's subscription holds
-- any of the read model's tables, for /readyz.
--
-- PostgreSQL 15 answers a subscription to a publication that does not
-- exist yet (hosts that boot together) with only a WARNING and a
-- subscription of no tables: the replica then stays empty for ever while
-- answering every probe. deploy/replica.sh refuses to leave it so; this
-- lets the service see it too and report the replica as not ready.
-- Runs as the owner (security definer, fixed search_path), like
-- read_model_applied_lsn, so the reader needs no rights on the catalogs.
create function read_model_subscribed() returns boolean
language sql stable security definer set search_path = public, pg_temp as $$
    select exists (
        select 1
        from pg_subscription s
        join pg_subscription_rel r on r.srsubid = s.oid
        where s.subdbid = (select oid from pg_database where datname = current_database()))
$$;
grant execute on function read_model_subscribed() to atelier_reader;
