//! The write side: every write endpoint of the contract, on the primary.
//!
//! Each request is one transaction: validate, write the normalized rows (the
//! triggers rebuild the touched products' documents as each statement ends),
//! read the answer back from the primary's read model, commit. After the
//! commit the response gets `X-Read-After`: the primary's WAL insert position,
//! which a replica has passed once it has applied this write.
//!
//! POSTs with `Idempotency-Key` store their response in the same
//! transaction; see `idempotency_key` in sql/write_schema.sql.

use std::time::Duration;

use bytes::Bytes;
use deadpool_postgres::Transaction;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use hyper::{Method, Request, StatusCode};
use postgres_types::{PgLsn, ToSql};
use serde_json::{Map, Value};

use crate::document::Document;
use crate::error::ApiError;
use crate::respond::{self, HttpResponse};
use crate::routes::Route;
use crate::server::AppState;

/// How long an Idempotency-Key is remembered: clients retry within
/// minutes; a day covers retries across a deploy or an outage.
pub const IDEMPOTENCY_RETENTION_HOURS: i32 = 24;
/// How often expired keys are deleted.
pub const IDEMPOTENCY_PURGE_INTERVAL: Duration = Duration::from_secs(600);

/// Limits of the contract, in characters.
const NAME_CHARS_MAX: usize = 255;
const TEXT_CHARS_MAX: usize = 2048;

/// The outcome of one write, before headers.
struct Outcome {
    status: StatusCode,
    body: Bytes,
    location: Option<String>,
}

impl Outcome {
    fn ok(body: impl Into<Bytes>) -> Outcome {
        Outcome { status: StatusCode::OK, body: body.into(), location: None }
    }

    fn created(body: impl Into<Bytes>, location: Option<String>) -> Outcome {
        Outcome { status: StatusCode::CREATED, body: body.into(), location }
    }

    fn no_content() -> Outcome {
        Outcome { status: StatusCode::NO_CONTENT, body: Bytes::new(), location: None }
    }
}

pub async fn dispatch(state: &AppState, route: Route, request: Request<Incoming>) -> Result<HttpResponse, ApiError> {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let key = match method {
        Method::POST => request
            .headers()
            .get("idempotency-key")
            .map(|v| v.to_str().map(str::to_string))
            .transpose()
            .map_err(|_| ApiError::BadRequest("Idempotency-Key must be visible ASCII".into()))?,
        _ => None,
    };
    if key.as_ref().is_some_and(|k| k.is_empty() || k.len() > 255) {
        return Err(ApiError::BadRequest("Idempotency-Key must be 1 to 255 characters".into()));
    }
    let (raw, body) =
        if method == Method::DELETE { (Bytes::new(), Value::Null) } else { read_json(state, request).await? };
    let call = Call::parse(route, &method, &body)?;
    let fingerprint = key.as_ref().map(|_| fingerprint(&method, &path, &raw));

    // Deadlocks and serialization failures roll the whole transaction back,
    // so it is safe to run it again; the write functions lock in one order,
    // so these are rare and a few attempts are plenty.
    let mut attempt = 1;
    let (outcome, lsn) = loop {
        match run(state, &call, key.as_deref().zip(fingerprint.as_deref())).await {
            Err(ApiError::Contention(detail)) if attempt < WRITE_ATTEMPTS_MAX => {
                tracing::debug!(%detail, attempt, "write retried");
                state.metrics.write_retry();
                tokio::time::sleep(retry_backoff(attempt)).await;
                attempt += 1;
            }
            other => break other?,
        }
    };

    let mut response = if outcome.status == StatusCode::NO_CONTENT {
        respond::empty(StatusCode::NO_CONTENT)
    } else {
        respond::json(outcome.status, outcome.body)
    };
    let headers = response.headers_mut();
    headers.insert("x-read-after", HeaderValue::from_str(&lsn.to_string()).expect("an LSN is ASCII"));
    if let Some(location) = outcome.location {
        headers.insert(LOCATION, HeaderValue::from_str(&location).expect("locations are ASCII paths"));
    }
    Ok(response)
}

/// Attempts of one write when the database reports a deadlock or a
/// serialization failure, before the client gets 503.
const WRITE_ATTEMPTS_MAX: u32 = 5;

/// A short, growing, jittered pause before attempt `attempt + 1`, so two
/// writers that collided do not collide again in step.
fn retry_backoff(attempt: u32) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let jitter = std::collections::hash_map::RandomState::new().build_hasher().finish() % 1000;
    Duration::from_micros(u64::from(attempt) * 1000 + jitter)
}

/// One attempt: the write (with its idempotency record, if keyed) in one
/// transaction, then the primary's WAL position for `X-Read-After`.
async fn run(state: &AppState, call: &Call, key: Option<(&str, &str)>) -> Result<(Outcome, PgLsn), ApiError> {
    let mut client = state.pools.primary.pool.get().await?;
    let tx = client.transaction().await?;
    let outcome = match key {
        Some((key, fingerprint)) => match claim_key(&tx, key, fingerprint).await? {
            Claim::Replay(outcome) => outcome,
            Claim::Fresh => {
                let outcome = call.apply(&tx).await?;
                remember(&tx, key, &outcome).await?;
                outcome
            }
        },
        None => call.apply(&tx).await?,
    };
    tx.commit().await?;
    let statement = client.prepare_cached("select pg_current_wal_insert_lsn()").await?;
    let lsn: PgLsn = client.query_one(&statement, &[]).await?.get(0);
    Ok((outcome, lsn))
}

// ---------------------------------------------------------------------------
// Request bodies
// ---------------------------------------------------------------------------

/// Checks Content-Type and size, reads the body, parses it as JSON.
async fn read_json(state: &AppState, request: Request<Incoming>) -> Result<(Bytes, Value), ApiError> {
    let max = state.config.body_bytes_max;
    let is_json = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json"))
        .unwrap_or(false);
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    let declared = request.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(ApiError::PayloadTooLarge(max));
    }
    let raw = Limited::new(request.into_body(), max).collect().await.map_err(|error| {
        if error.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
            ApiError::PayloadTooLarge(max)
        } else {
            ApiError::BadRequest("could not read the request body".into())
        }
    })?;
    let raw = raw.to_bytes();
    let value = serde_json::from_slice(&raw).map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))?;
    Ok((raw, value))
}

fn object<'a>(body: &'a Value) -> Result<&'a Map<String, Value>, ApiError> {
    body.as_object().ok_or_else(|| ApiError::Unprocessable {
        message: "the body must be a JSON object".into(),
        fields: Default::default(),
    })
}

/// A string field: `Ok(None)` when absent (or null, where `nullable`).
fn text(
    obj: &Map<String, Value>,
    field: &str,
    path: &str,
    max: usize,
    required: bool,
) -> Result<Option<String>, ApiError> {
    match obj.get(field) {
        None | Some(Value::Null) if required => Err(ApiError::field(path, "is required")),
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() > max => {
            Err(ApiError::field(path, &format!("must be at most {max} characters")))
        }
        Some(Value::String(s)) if required && s.trim().is_empty() => Err(ApiError::field(path, "must not be empty")),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::field(path, "must be a string")),
    }
}

/// A price: a decimal string or number, >= 0, at most two decimals, below
/// 10^10 (numeric(12,2)). Returned as decimal text for `::numeric`.
fn price(obj: &Map<String, Value>, field: &str, required: bool) -> Result<Option<String>, ApiError> {
    let text = match obj.get(field) {
        None | Some(Value::Null) if required => return Err(ApiError::field(field, "is required")),
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err(ApiError::field(field, "must be a decimal string or number")),
    };
    if text.starts_with('-') {
        return Err(ApiError::Unprocessable {
            message: format!("{field} must be a non-negative amount with at most two decimals"),
            fields: [(field.to_string(), "must be >= 0".to_string())].into(),
        });
    }
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let ok = !whole.is_empty()
        && whole.len() <= 10
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.len() <= 2
        && fraction.bytes().all(|b| b.is_ascii_digit())
        && !(text.contains('.') && fraction.is_empty());
    if !ok {
        return Err(ApiError::Unprocessable {
            message: format!("{field} must be a non-negative amount with at most two decimals"),
            fields: [(field.to_string(), "must be a non-negative amount with at most two decimals".to_string())].into(),
        });
    }
    Ok(Some(text))
}

/// An integer field within [min, max].
fn integer(obj: &Map<String, Value>, field: &str, path: &str, min: i64, max: i64) -> Result<i64, ApiError> {
    match obj.get(field) {
        None | Some(Value::Null) => Err(ApiError::field(path, "is required")),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(v) if (min..=max).contains(&v) => Ok(v),
            _ => Err(ApiError::field(path, &format!("must be an integer from {min} to {max}"))),
        },
        Some(_) => Err(ApiError::field(path, "must be an integer")),
    }
}

fn boolean(obj: &Map<String, Value>, field: &str) -> Result<Option<bool>, ApiError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::field(field, "must be true or false")),
    }
}

/// An optional array of objects; each element is passed to `each`.
fn array<T>(
    obj: &Map<String, Value>,
    field: &str,
    mut each: impl FnMut(&Map<String, Value>, &str) -> Result<T, ApiError>,
) -> Result<Option<Vec<T>>, ApiError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let path = format!("{field}[{i}]");
                let item = item.as_object().ok_or_else(|| ApiError::field(&path, "must be an object"))?;
                each(item, &path)
            })
            .collect::<Result<Vec<T>, ApiError>>()
            .map(Some),
        Some(_) => Err(ApiError::field(field, "must be an array")),
    }
}

/// (feature, value) pairs; value may be null.
fn features(obj: &Map<String, Value>) -> Result<Option<(Vec<String>, Vec<Option<String>>)>, ApiError> {
    let items = array(obj, "features", |item, path| {
        let feature = text(item, "feature", &format!("{path}.feature"), NAME_CHARS_MAX, true)?.unwrap_or_default();
        let value = text(item, "value", &format!("{path}.value"), NAME_CHARS_MAX, false)?;
        Ok((feature, value))
    })?;
    Ok(items.map(|items| items.into_iter().unzip()))
}

/// (thumbnail_url, url) pairs; either may be null.
fn photos(obj: &Map<String, Value>) -> Result<Option<(Vec<Option<String>>, Vec<Option<String>>)>, ApiError> {
    let items = array(obj, "photos", |item, path| {
        let thumbnail = text(item, "thumbnail_url", &format!("{path}.thumbnail_url"), TEXT_CHARS_MAX, false)?;
        let url = text(item, "url", &format!("{path}.url"), TEXT_CHARS_MAX, false)?;
        Ok((thumbnail, url))
    })?;
    Ok(items.map(|items| items.into_iter().unzip()))
}

/// A sku's size and initial quantity.
fn sku_fields(item: &Map<String, Value>, path: &str) -> Result<(String, i64), ApiError> {
    let prefix = if path.is_empty() { String::new() } else { format!("{path}.") };
    let size = text(item, "size", &format!("{prefix}size"), NAME_CHARS_MAX, true)?.unwrap_or_default();
    let quantity = integer(item, "quantity", &format!("{prefix}quantity"), 0, i64::from(i32::MAX))?;
    Ok((size, quantity))
}

// ---------------------------------------------------------------------------
// Writes: each is one call of an api_* function (sql/write_api.sql)
// ---------------------------------------------------------------------------

/// The product fields shared by POST, PUT and PATCH /products.
struct ProductInput {
    name: Option<String>,
    slogan: Option<String>,
    description: Option<String>,
    category: Option<String>,
    default_price: Option<String>,
    features: Option<(Vec<String>, Vec<Option<String>>)>,
}

/// Parses the product fields; with `required`, every field must be there.
fn product_input(obj: &Map<String, Value>, required: bool) -> Result<ProductInput, ApiError> {
    Ok(ProductInput {
        name: text(obj, "name", "name", NAME_CHARS_MAX, required)?,
        slogan: text(obj, "slogan", "slogan", TEXT_CHARS_MAX, required)?,
        description: text(obj, "description", "description", TEXT_CHARS_MAX, required)?,
        category: text(obj, "category", "category", NAME_CHARS_MAX, required)?,
        default_price: price(obj, "default_price", required)?,
        features: features(obj)?,
    })
}

/// The style fields shared by POST /products/:id/styles and PUT /styles/:id.
struct StyleInput {
    name: Option<String>,
    original_price: Option<String>,
    sale_price: Option<String>,
    is_default: bool,
    photos: (Vec<Option<String>>, Vec<Option<String>>),
}

fn style_input(obj: &Map<String, Value>) -> Result<StyleInput, ApiError> {
    Ok(StyleInput {
        name: text(obj, "name", "name", NAME_CHARS_MAX, true)?,
        original_price: price(obj, "original_price", true)?,
        sale_price: price(obj, "sale_price", false)?,
        is_default: boolean(obj, "default?")?.unwrap_or(false),
        photos: photos(obj)?.unwrap_or_default(),
    })
}

/// A parsed write: what to call, with what.
enum Call {
    CreateProduct(ProductInput),
    /// PUT (every field, features absent = none) or PATCH (any subset).
    UpdateProduct(i64, ProductInput),
    DeleteProduct(i64),
    CreateStyle(i64, StyleInput, (Vec<String>, Vec<i64>)),
    UpdateStyle(i64, StyleInput),
    DeleteStyle(i64),
    CreateSku(i64, String, i64),
    DeleteSku(i64),
    RecordMovement(i64, i64, Option<String>),
    PutRelated(i64, Vec<i64>),
}

impl Call {
    /// Checks and types the request body for the write `route` and `method` name.
    fn parse(route: Route, method: &Method, body: &Value) -> Result<Call, ApiError> {
        Ok(match (route, method.as_str()) {
            (Route::Products, "POST") => Call::CreateProduct(product_input(object(body)?, true)?),
            (Route::Product(id), "PUT") => {
                let mut input = product_input(object(body)?, true)?;
                input.features = input.features.or_else(|| Some(Default::default()));
                Call::UpdateProduct(id, input)
            }
            (Route::Product(id), "PATCH") => {
                let obj = object(body)?;
                for field in ["name", "slogan", "description", "category", "default_price"] {
                    if obj.get(field).is_some_and(Value::is_null) {
                        return Err(ApiError::field(field, "must not be null"));
                    }
                }
                Call::UpdateProduct(id, product_input(obj, false)?)
            }
            (Route::Product(id), "DELETE") => Call::DeleteProduct(id),
            (Route::ProductStyles(id), "POST") => {
                let obj = object(body)?;
                let skus = array(obj, "skus", sku_fields)?.unwrap_or_default();
                Call::CreateStyle(id, style_input(obj)?, skus.into_iter().unzip())
            }
            (Route::ProductRelated(id), "PUT") => {
                let items =
                    body.as_array().ok_or_else(|| ApiError::field("related", "must be an array of product ids"))?;
                let ids = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        item.as_i64()
                            .filter(|v| *v > 0)
                            .ok_or_else(|| ApiError::field(&format!("related[{i}]"), "must be a positive integer"))
                    })
                    .collect::<Result<Vec<i64>, ApiError>>()?;
                Call::PutRelated(id, ids)
            }
            (Route::Style(id), "PUT") => Call::UpdateStyle(id, style_input(object(body)?)?),
            (Route::Style(id), "DELETE") => Call::DeleteStyle(id),
            (Route::StyleSkus(id), "POST") => {
                let (size, quantity) = sku_fields(object(body)?, "")?;
                Call::CreateSku(id, size, quantity)
            }
            (Route::Sku(id), "DELETE") => Call::DeleteSku(id),
            (Route::SkuMovements(id), "POST") => {
                let obj = object(body)?;
                let delta = integer(obj, "delta", "delta", -i64::from(i32::MAX), i64::from(i32::MAX))?;
                if delta == 0 {
                    return Err(ApiError::field("delta", "must not be 0"));
                }
                Call::RecordMovement(id, delta, text(obj, "reason", "reason", NAME_CHARS_MAX, false)?)
            }
            _ => return Err(ApiError::MethodNotAllowed { allow: route.allow() }),
        })
    }

    /// Runs the write in `tx`: one function call.
    async fn apply(&self, tx: &Transaction<'_>) -> Result<Outcome, ApiError> {
        match self {
            Call::CreateProduct(p) => {
                let (features, values) = p.features.clone().unwrap_or_default();
                let row = one(
                    tx,
                    "select created_id, body from api_create_product($1, $2, $3, $4, $5::text::numeric, $6, $7)",
                    &[&p.name, &p.slogan, &p.description, &p.category, &p.default_price, &features, &values],
                )
                .await?;
                let id: i64 = row.try_get(0)?;
                Ok(Outcome::created(body(&row, 1)?, Some(format!("/products/{id}"))))
            }
            Call::UpdateProduct(id, p) => {
                let (features, values) = match &p.features {
                    Some((f, v)) => (Some(f), Some(v)),
                    None => (None, None),
                };
                let row = one(
                    tx,
                    "select api_update_product($1, $2, $3, $4, $5, $6::text::numeric, $7, $8)",
                    &[id, &p.name, &p.slogan, &p.description, &p.category, &p.default_price, &features, &values],
                )
                .await?;
                Ok(Outcome::ok(body(&row, 0)?))
            }
            Call::DeleteProduct(id) => {
                one(tx, "select api_delete_product($1)", &[id]).await?;
                Ok(Outcome::no_content())
            }
            Call::CreateStyle(product, s, (sizes, quantities)) => {
                let row = one(
                    tx,
                    "select created_id, body from api_create_style($1, $2, $3::text::numeric, $4::text::numeric, $5, $6, $7, $8, $9)",
                    &[product, &s.name, &s.original_price, &s.sale_price, &s.is_default, &s.photos.0, &s.photos.1, sizes, quantities],
                )
                .await?;
                Ok(Outcome::created(body(&row, 1)?, None))
            }
            Call::UpdateStyle(id, s) => {
                let row = one(
                    tx,
                    "select api_update_style($1, $2, $3::text::numeric, $4::text::numeric, $5, $6, $7)",
                    &[id, &s.name, &s.original_price, &s.sale_price, &s.is_default, &s.photos.0, &s.photos.1],
                )
                .await?;
                Ok(Outcome::ok(body(&row, 0)?))
            }
            Call::DeleteStyle(id) => {
                one(tx, "select api_delete_style($1)", &[id]).await?;
                Ok(Outcome::no_content())
            }
            Call::CreateSku(style, size, quantity) => {
                let row = one(tx, "select api_create_sku($1, $2, $3)", &[style, size, quantity]).await?;
                Ok(Outcome::created(body(&row, 0)?, None))
            }
            Call::DeleteSku(id) => {
                one(tx, "select api_delete_sku($1)", &[id]).await?;
                Ok(Outcome::no_content())
            }
            Call::RecordMovement(sku, delta, reason) => {
                let row = one(tx, "select api_record_movement($1, $2, $3)", &[sku, delta, reason]).await?;
                Ok(Outcome::created(body(&row, 0)?, None))
            }
            Call::PutRelated(id, related) => {
                let row = one(tx, "select api_put_related($1, $2)", &[id, related]).await?;
                Ok(Outcome::ok(body(&row, 0)?))
            }
        }
    }
}

async fn exec(tx: &Transaction<'_>, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, ApiError> {
    let statement = tx.prepare_cached(sql).await?;
    Ok(tx.execute(&statement, params).await?)
}

async fn query_opt(
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<tokio_postgres::Row>, ApiError> {
    let statement = tx.prepare_cached(sql).await?;
    Ok(tx.query_opt(&statement, params).await?)
}

/// Runs a prepared statement that returns exactly one row.
async fn one(tx: &Transaction<'_>, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<tokio_postgres::Row, ApiError> {
    let statement = tx.prepare_cached(sql).await?;
    Ok(tx.query_one(&statement, params).await?)
}

/// A response body a write function returned, as it is.
fn body(row: &tokio_postgres::Row, column: usize) -> Result<Bytes, ApiError> {
    let Document(bytes) = row.try_get(column)?;
    Ok(bytes)
}

// ---------------------------------------------------------------------------
// Idempotency
// ---------------------------------------------------------------------------

/// What makes two POSTs "the same request" for an Idempotency-Key.
fn fingerprint(method: &Method, path: &str, body: &[u8]) -> String {
    format!("{method} {path}\n{}", String::from_utf8_lossy(body))
}

enum Claim {
    /// First use of the key in this transaction: do the write.
    Fresh,
    /// A committed earlier request with the same key and fingerprint.
    Replay(Outcome),
}

/// Claims `key`, or finds its committed first response. Inserting the key
/// waits for any transaction holding it, so concurrent retries line up.
async fn claim_key(tx: &Transaction<'_>, key: &str, fingerprint: &str) -> Result<Claim, ApiError> {
    let inserted = exec(
        tx,
        "insert into idempotency_key (key, fingerprint, status, body) values ($1, md5($2), 0, '')
         on conflict (key) do nothing",
        &[&key, &fingerprint],
    )
    .await?;
    if inserted == 1 {
        return Ok(Claim::Fresh);
    }
    let row = query_opt(
        tx,
        "select fingerprint = md5($2), status, body, location from idempotency_key where key = $1",
        &[&key, &fingerprint],
    )
    .await?
    .ok_or_else(|| ApiError::Unavailable("idempotency key vanished; retry".into()))?;
    if !row.get::<_, bool>(0) {
        return Err(ApiError::Unprocessable {
            message: "this Idempotency-Key was already used with a different request".into(),
            fields: [("Idempotency-Key".to_string(), "already used with a different body".to_string())].into(),
        });
    }
    let status = StatusCode::from_u16(row.get::<_, i16>(1) as u16).unwrap_or(StatusCode::OK);
    let body: String = row.get(2);
    Ok(Claim::Replay(Outcome { status, body: Bytes::from(body), location: row.get(3) }))
}

async fn remember(tx: &Transaction<'_>, key: &str, outcome: &Outcome) -> Result<(), ApiError> {
    let body = String::from_utf8_lossy(&outcome.body).into_owned();
    exec(
        tx,
        "update idempotency_key set status = $2, body = $3, location = $4 where key = $1",
        &[&key, &(outcome.status.as_u16() as i16), &body, &outcome.location],
    )
    .await?;
    Ok(())
}

/// Deletes expired idempotency keys every IDEMPOTENCY_PURGE_INTERVAL.
pub async fn purge_idempotency_keys(state: std::sync::Arc<AppState>) {
    let mut tick = tokio::time::interval(IDEMPOTENCY_PURGE_INTERVAL);
    loop {
        tick.tick().await;
        let purge = async {
            let client = state.pools.primary.pool.get().await.ok()?;
            let statement = client
                .prepare_cached("delete from idempotency_key where created_at < now() - make_interval(hours => $1)")
                .await
                .ok()?;
            client.execute(&statement, &[&IDEMPOTENCY_RETENTION_HOURS]).await.ok()
        };
        if let Some(deleted) = purge.await.filter(|n| *n > 0) {
            tracing::info!(deleted, "expired idempotency keys purged");
        }
    }
}
