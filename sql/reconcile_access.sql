-- Migration V11, primary only: what a replica's reconciliation may read
-- here (tools/src/reconcile.rs, `atelier reconcile`, run on each replica
-- host after a failover). It logs in as the replicator, which the replica
-- hosts hold already, rather than as the owner, which could change the
-- write model.
--
-- It compares the documents the write model builds now with the replica's,
-- so it reads the *_source views. A view reads its tables with its owner's
-- rights: this grants the documents, as the triggers shape them, not the
-- write model's tables. The functions a view calls, though, are checked
-- against whoever queries it, so the JSON helpers the views shape with
-- (pure functions of their argument) are granted too. And it bumps the
-- heartbeat, to wait until the replica has applied everything committed
-- before it compares.
grant select on product_card_source, product_detail_source, product_styles_source, product_related_source
    to atelier_replicator;
grant execute on function json_str(text), json_price(numeric), json_time(timestamptz) to atelier_replicator;
grant update (beat) on replication_heartbeat to atelier_replicator;
