-- Migration V8, replicas only: each replica announces every document change
-- it applies, so that servers can keep documents in memory without ever
-- guessing how long they stay true (server/src/cache/).
--
-- The subscription's apply worker runs with session_replication_role =
-- replica, where ordinary triggers do not fire; `enable always` makes these
-- fire for every applied row (and for the initial table copy). NOTIFY is
-- transactional: a listener hears of a change only after it has committed,
-- and PostgreSQL holds a notice back until the change is visible to a new
-- snapshot, so a server that hears "version N" and then reads gets at least
-- version N.
--
-- One notice per row, on channel atelier_documents:
--     <kind> <op> <product id> <version>
-- kind: card | detail | styles | related (schema's DocumentKind names);
-- op: I (a new document), U (changed bytes), D (gone; the version is the
-- last one it had). A transaction that changes more than
-- 1000 documents (a bulk load, an initial copy, a truncate) sends its first
-- 1000 notices and then one "*", which means "forget everything": a listener
-- never has to take in millions of notices, and the notice queue stays small.

create function announce_document_change() returns trigger
language plpgsql as $$
declare
    -- Notices sent by this transaction so far (a transaction-local setting).
    sent integer := coalesce(nullif(current_setting('atelier.announced', true), ''), '0')::integer;
begin
    if sent > 1000 then
        return null;
    end if;
    perform set_config('atelier.announced', (sent + 1)::text, true);
    if sent = 1000 or tg_level = 'STATEMENT' then
        perform pg_notify('atelier_documents', '*');
    elsif tg_op = 'DELETE' then
        perform pg_notify('atelier_documents', concat_ws(' ', tg_argv[0], 'D', old.product_id, old.version));
    else
        perform pg_notify('atelier_documents', concat_ws(' ', tg_argv[0], left(tg_op, 1), new.product_id, new.version));
    end if;
    return null;
end;
$$;

create trigger product_card_announce after insert or update or delete on product_card
    for each row execute function announce_document_change('card');
create trigger product_detail_announce after insert or update or delete on product_detail
    for each row execute function announce_document_change('detail');
create trigger product_styles_announce after insert or update or delete on product_styles
    for each row execute function announce_document_change('styles');
create trigger product_related_announce after insert or update or delete on product_related
    for each row execute function announce_document_change('related');

-- A truncate (a bulk load's first step) forgets everything.
create trigger product_card_truncated after truncate on product_card
    for each statement execute function announce_document_change('card');
create trigger product_detail_truncated after truncate on product_detail
    for each statement execute function announce_document_change('detail');
create trigger product_styles_truncated after truncate on product_styles
    for each statement execute function announce_document_change('styles');
create trigger product_related_truncated after truncate on product_related
    for each statement execute function announce_document_change('related');

alter table product_card enable always trigger product_card_announce, enable always trigger product_card_truncated;
alter table product_detail enable always trigger product_detail_announce, enable always trigger product_detail_truncated;
alter table product_styles enable always trigger product_styles_announce, enable always trigger product_styles_truncated;
alter table product_related enable always trigger product_related_announce, enable always trigger product_related_truncated;
