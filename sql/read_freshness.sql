-- Migration V7, every node: when a replica's read model may be read after a
-- write (read-your-writes), and, on replicas only (V8, read_notices.sql),
-- how servers learn what changed.
--
-- read_model_applied_lsn() (V2) alone is not enough to promise that a read
-- sees a write. PostgreSQL's apply worker advances its replication origin
-- inside the commit of the applied transaction, a moment before that
-- transaction becomes visible to other sessions (RecordTransactionCommit
-- runs before ProcArrayEndTransaction). A reader that saw the origin pass
-- the write's position and then read at once could, for a few
-- microseconds, take a snapshot in which the write is still in progress.
--
-- read_model_has_applied() closes that window: once the origin has passed
-- the position, it finds the transaction the apply worker holds open now
-- (the one that may be committing it, or a later one), through the lock
-- every transaction holds on its own id until after it has become visible,
-- and waits briefly until a fresh snapshot no longer counts that
-- transaction as running. Any snapshot taken after it returns true sees
-- the write. It returns false when the position is not applied yet, or
-- when the worker's transaction is still running after about 20 ms (the
-- caller asks again, or reads the primary).
create function read_model_has_applied(p_lsn pg_lsn) returns boolean
language plpgsql volatile as $$
declare
    worker_xid  xid;
    snapshot    pg_snapshot;
    worker_xid8 xid8;
begin
    if coalesce(read_model_applied_lsn() < p_lsn, true) then
        return false;
    end if;
    -- Read after the origin: the worker's current transaction is the one
    -- that applied p_lsn or a later one (a worker applies one at a time).
    select l.transactionid
    into worker_xid
    from pg_stat_subscription w
    join pg_subscription s on s.oid = w.subid
    join pg_locks l on l.pid = w.pid and l.locktype = 'transactionid' and l.mode = 'ExclusiveLock'
    where w.relid is null
      and s.subdbid = (select oid from pg_database where datname = current_database())
    order by age(l.transactionid) desc   -- the top transaction, not a subtransaction
    limit 1;
    if worker_xid is null then
        return true;   -- no transaction open: everything applied is visible
    end if;
    -- Widen the 32-bit id against a snapshot taken now, which it precedes.
    snapshot := pg_current_snapshot();
    worker_xid8 := (pg_snapshot_xmax(snapshot)::text::bigint
                    - ((pg_snapshot_xmax(snapshot)::text::bigint - worker_xid::text::bigint) % 4294967296
                       + 4294967296) % 4294967296)::text::xid8;
    -- Each call of pg_current_snapshot() in a volatile function is a new
    -- snapshot (read committed).
    for attempt in 1..200 loop
        if pg_visible_in_snapshot(worker_xid8, pg_current_snapshot()) then
            return true;
        end if;
        perform pg_sleep(0.0001);
    end loop;
    return false;
end;
$$;
comment on function read_model_has_applied(pg_lsn) is
    'True when every snapshot taken from now on sees the primary''s commits up to the given WAL position.';

alter function read_model_has_applied(pg_lsn) security definer set search_path = public, pg_temp;
grant execute on function read_model_has_applied(pg_lsn) to atelier_reader;
