//! Every statement the service sends, in one place: the read side queries
//! the `api_*` views and functions of sql/read_views.sql, the write side
//! calls the `api_*` functions of sql/write_api.sql. Each is a constant,
//! prepared once per pooled connection; nothing is built from strings.
//! `atelier explain` plans these same texts.

use crate::tables::DocumentKind;

/// GET /products: the cards at positions $1+1 .. $1+$2 as one JSON array.
pub const PRODUCT_PAGE: &str = "select products_page($1, $2)";
/// GET /products when the server knows the page's ids: the cards with ids
/// $1 ..= $2 in id order, which the server joins into one JSON array
/// (sql/read_cards.sql).
pub const PRODUCT_CARDS_BETWEEN: &str =
    "select doc from api_product_card where product_id between $1 and $2 order by product_id";
/// Every product id with a card, in list order (the server's position index).
pub const PRODUCT_IDS: &str = "select product_id from api_product_card order by product_id";
pub const PRODUCT_DETAIL: &str = "select doc, version from api_product_detail where product_id = $1";
pub const PRODUCT_STYLES: &str = "select doc, version from api_product_styles where product_id = $1";
pub const PRODUCT_RELATED: &str = "select doc, version from api_product_related where product_id = $1";

/// The same documents for many products at once ($1: an array of ids): a
/// row per id that has one, with the id, in no particular order (the
/// server's read batches, server/src/read/batch.rs).
pub const PRODUCT_DETAILS: &str = "select product_id, doc, version from api_product_detail where product_id = any($1)";
pub const PRODUCT_STYLES_MANY: &str =
    "select product_id, doc, version from api_product_styles where product_id = any($1)";
pub const PRODUCT_RELATED_MANY: &str =
    "select product_id, doc, version from api_product_related where product_id = any($1)";

/// The statement that reads the documents of `kind` of many products at
/// once, or None for cards.
pub fn product_documents(kind: DocumentKind) -> Option<&'static str> {
    match kind {
        DocumentKind::Card => None,
        DocumentKind::Detail => Some(PRODUCT_DETAILS),
        DocumentKind::Styles => Some(PRODUCT_STYLES_MANY),
        DocumentKind::Related => Some(PRODUCT_RELATED_MANY),
    }
}

/// The statement that reads one product's document of `kind`, or None for
/// cards (which are only ever read a page at a time).
pub fn product_document(kind: DocumentKind) -> Option<&'static str> {
    match kind {
        DocumentKind::Card => None,
        DocumentKind::Detail => Some(PRODUCT_DETAIL),
        DocumentKind::Styles => Some(PRODUCT_STYLES),
        DocumentKind::Related => Some(PRODUCT_RELATED),
    }
}

/// On a replica: will every read from now on see the primary's commits up to
/// WAL position $1? (sql/read_freshness.sql)
pub const REPLICA_HAS_APPLIED: &str = "select read_model_has_applied($1)";
/// On a replica: start hearing the document changes it applies, on the
/// channel its triggers notify (sql/read_notices.sql).
pub const LISTEN_DOCUMENT_CHANGES: &str = "listen atelier_documents";
/// On a replica, on a listening connection: is it still there?
pub const LISTENER_HEARTBEAT: &str = "select 1";
/// On a replica: the share of its NOTIFY queue in use (0 to 1). A listener
/// that stops reading (a frozen server) holds the queue; when it is full,
/// the replica's triggers cannot notify and replication stops (health).
pub const REPLICA_NOTICE_QUEUE_USAGE: &str = "select pg_notification_queue_usage()";
/// On a replica: the primary WAL position it has applied (health, and the
/// ejected replicas' probe).
pub const REPLICA_APPLIED_LSN: &str = "select read_model_applied_lsn()";
/// On a replica: whether its subscription holds any table (health; a
/// subscription of no tables stays empty for ever).
pub const REPLICA_SUBSCRIBED: &str = "select read_model_subscribed()";
/// On the primary: its current WAL position (health).
pub const PRIMARY_WAL_LSN: &str = "select pg_current_wal_lsn()";
/// On the primary, for /readyz: which node answered as the primary (with a
/// multi-host URL, the one that accepted a read-write session), as
/// "address:port", or "local socket, port N" over a Unix socket.
pub const PRIMARY_NODE: &str = "select coalesce(host(inet_server_addr()) || ':' || current_setting('port'), \
    'local socket, port ' || current_setting('port'))";
/// On the primary, right after a write commits: the WAL insert position,
/// which every replica has passed once it has applied that write (the
/// `X-Read-After` token).
pub const PRIMARY_WAL_INSERT_LSN: &str = "select pg_current_wal_insert_lsn()";

/// The writes, one function call each; see sql/write_api.sql for the
/// parameters. Each answers the response body (and, when it creates, the id).
pub const CREATE_PRODUCT: &str = "select created_id, body from api_create_product($1, $2, $3, $4, $5, $6, $7)";
pub const UPDATE_PRODUCT: &str = "select api_update_product($1, $2, $3, $4, $5, $6, $7, $8)";
pub const DELETE_PRODUCT: &str = "select api_delete_product($1)";
pub const PUT_RELATED: &str = "select api_put_related($1, $2)";
pub const CREATE_STYLE: &str = "select created_id, body from api_create_style($1, $2, $3, $4, $5, $6, $7, $8, $9)";
pub const UPDATE_STYLE: &str = "select api_update_style($1, $2, $3, $4, $5, $6, $7)";
pub const DELETE_STYLE: &str = "select api_delete_style($1)";
pub const CREATE_SKU: &str = "select api_create_sku($1, $2, $3)";
pub const DELETE_SKU: &str = "select api_delete_sku($1)";
pub const RECORD_MOVEMENT: &str = "select api_record_movement($1, $2, $3)";
/// A batch of movements (arrays of skus, deltas, reasons): one row per item,
/// in order, with its status (201, 404 or 409) and its body.
pub const RECORD_MOVEMENTS: &str = "select item_status, item_body from api_record_movements($1, $2, $3)";

/// Idempotency keys (table `idempotency_key`): claim a key (inserting waits
/// for any transaction holding it), read back a committed first answer,
/// store the answer, and purge keys older than $1 hours.
pub const CLAIM_IDEMPOTENCY_KEY: &str = "insert into idempotency_key (key, fingerprint, status, body)
     values ($1, md5($2), 0, '') on conflict (key) do nothing";
pub const FIND_IDEMPOTENCY_KEY: &str =
    "select fingerprint = md5($2), status, body, location from idempotency_key where key = $1";
pub const REMEMBER_IDEMPOTENCY_KEY: &str =
    "update idempotency_key set status = $2, body = $3, location = $4 where key = $1";
pub const PURGE_IDEMPOTENCY_KEYS: &str =
    "delete from idempotency_key where created_at < now() - make_interval(hours => $1)";
