-- Run by a superuser in each catalog database, after creating it and
-- before the migrations (`atelier cluster up`, deploy/primary.sh and
-- deploy/replica.sh). Catalog views and functions exist per database, so
-- these grants cannot live in sql/roles.sql (run once, in `postgres`), and
-- the owner cannot grant them to itself in a migration.
--
-- read_model_applied_lsn() (sql/read_views.sql) reads the subscription's
-- applied position, which PostgreSQL shows to superusers only by default;
-- the owner's security-definer function passes just that one value on.
grant execute on function pg_show_replication_origin_status() to atelier_owner;
grant select on pg_replication_origin_status to atelier_owner;
