-- The four login roles of a deployment, created or updated by a superuser
-- before the migrations (`atelier cluster up` locally, deploy/primary.sh and
-- deploy/replica.sh on a fleet). Roles belong to the whole PostgreSQL
-- cluster, not to one database, so this is not a migration. Idempotent.
--
-- Passwords come in as settings of the session (never in this file):
--   atelier.owner_password, atelier.writer_password,
--   atelier.reader_password, atelier.replicator_password
-- An empty password leaves that role without one (it cannot log in with a
-- password then; a node that never admits the role leaves it empty).
--
--   atelier_owner       owns the catalog database and every object in it;
--                       runs the migrations. The only role that can run DDL.
--   atelier_writer      the service's write pool: calls the api_* write
--                       functions and writes the write model (sql/write_access.sql).
--   atelier_reader      the service's read pools: selects the api_* views and
--                       calls the functions GETs use (sql/read_access.sql).
--   atelier_replicator  the subscriptions' login on the primary: replication
--                       and SELECT on the published tables only.
--
-- None is a superuser, none can create roles or databases, none inherits
-- anything but what is granted below and in the access migrations.
do $$
declare
    r record;
    secret text;
begin
    for r in
        select * from (values
            ('atelier_owner', 'atelier.owner_password', false),
            ('atelier_writer', 'atelier.writer_password', false),
            ('atelier_reader', 'atelier.reader_password', false),
            ('atelier_replicator', 'atelier.replicator_password', true)
        ) as v(name, setting, replication)
    loop
        if not exists (select from pg_roles where rolname = r.name) then
            execute format('create role %I', r.name);
        end if;
        execute format('alter role %I login nosuperuser nocreatedb nocreaterole %s',
                       r.name, case when r.replication then 'replication' else 'noreplication' end);
        secret := coalesce(current_setting(r.setting, true), '');
        if secret <> '' then
            -- Hashed with SCRAM-SHA-256 by the server (password_encryption).
            execute format('alter role %I password %L', r.name, secret);
        end if;
    end loop;
end;
$$;

-- A service on the primary also reads there (the fallback when no replica
-- answers, and read-your-writes): the writer may do what a reader may.
grant atelier_reader to atelier_writer;
