-- Run on a replica, in the catalog database, after `atelier migrate --role
-- replica` created the (empty) read-model tables. psql variables:
--   sub_name          unique per replica: it also names the replication slot
--                     on the primary (e.g. atelier_replica1)
--   primary_conninfo  how the replica reaches the primary, e.g.
--                     'host=10.0.1.10 port=5432 user=replicator dbname=atelier'
--   create_slot       true, or false when the slot exists already: a Patroni
--                     cluster's permanent slot of that name (deploy/patroni.sh)
-- copy_data = true makes the replica copy the current documents first, then
-- stream every later change.
create subscription :"sub_name"
    connection :'primary_conninfo'
    publication atelier_read_model
    with (copy_data = true, create_slot = :create_slot);
