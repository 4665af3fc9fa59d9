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

    let mut client = state.pools.primary.pool.get().await?;
    let tx = client.transaction().await?;
    let outcome = match &key {
        Some(key) => match claim_key(&tx, key, &fingerprint(&method, &path, &raw)).await? {
            Claim::Replay(outcome) => outcome,
            Claim::Fresh => {
                let outcome = apply(&tx, route, &method, &body).await?;
                remember(&tx, key, &outcome).await?;
                outcome
            }
        },
        None => apply(&tx, route, &method, &body).await?,
    };
    tx.commit().await?;
    let statement = client.prepare_cached("select pg_current_wal_insert_lsn()").await?;
    let lsn: PgLsn = client.query_one(&statement, &[]).await?.get(0);

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

/// Runs the write that `route` and `method` name.
async fn apply(tx: &Transaction<'_>, route: Route, method: &Method, body: &Value) -> Result<Outcome, ApiError> {
    match (route, method.as_str()) {
        (Route::Products, "POST") => create_product(tx, body).await,
        (Route::Product(id), "PUT") => update_product(tx, id, body, true).await,
        (Route::Product(id), "PATCH") => update_product(tx, id, body, false).await,
        (Route::Product(id), "DELETE") => delete(tx, "delete from product where id = $1", id, "product").await,
        (Route::ProductStyles(id), "POST") => create_style(tx, id, body).await,
        (Route::ProductRelated(id), "PUT") => put_related(tx, id, body).await,
        (Route::Style(id), "PUT") => update_style(tx, id, body).await,
        (Route::Style(id), "DELETE") => delete(tx, "delete from style where id = $1", id, "style").await,
        (Route::StyleSkus(id), "POST") => create_sku(tx, id, body).await,
        (Route::Sku(id), "DELETE") => delete(tx, "delete from sku where id = $1", id, "sku").await,
        (Route::SkuMovements(id), "POST") => record_movement(tx, id, body).await,
        _ => Err(ApiError::MethodNotAllowed { allow: route.allow() }),
    }
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
// Writes
// ---------------------------------------------------------------------------

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

/// A stored read document from the primary's read model.
async fn document(tx: &Transaction<'_>, sql: &str, id: i64) -> Result<Bytes, ApiError> {
    let row = query_opt(tx, sql, &[&id]).await?.ok_or_else(|| ApiError::internal("document missing after write"))?;
    let Document(bytes) = row.try_get(0).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(bytes)
}

const DETAIL_DOC: &str = "select doc from product_detail where product_id = $1";
const RELATED_DOC: &str = "select doc from product_related where product_id = $1";
/// One style's element of its product's styles document, as stored: the
/// json type keeps each element's text exactly.
const STYLE_DOC: &str = "select e::text from style s
                         join product_styles d on d.product_id = s.product_id
                         cross join json_array_elements(d.doc::json -> 'results') e
                         where s.id = $1 and (e ->> 'style_id')::bigint = s.id";

/// Inserts ordered (a, b) pairs under one parent row with one statement
/// (`sql` takes the parent id and two arrays), so the statement-level
/// triggers rebuild the product's document once.
async fn insert_pairs<A: ToSql + Sync, B: ToSql + Sync>(
    tx: &Transaction<'_>,
    sql: &str,
    parent: i64,
    pairs: &(Vec<A>, Vec<B>),
) -> Result<(), ApiError> {
    if !pairs.0.is_empty() {
        exec(tx, sql, &[&parent, &pairs.0, &pairs.1]).await?;
    }
    Ok(())
}

const INSERT_FEATURES: &str = "insert into feature (product_id, feature, value)
     select $1, f, v from unnest($2::text[], $3::text[]) with ordinality as t(f, v, n) order by n";
const INSERT_PHOTOS: &str = "insert into photo (style_id, thumbnail_url, url)
     select $1, t, u from unnest($2::text[], $3::text[]) with ordinality as x(t, u, n) order by n";

async fn replace_features(
    tx: &Transaction<'_>,
    id: i64,
    features: &(Vec<String>, Vec<Option<String>>),
) -> Result<(), ApiError> {
    exec(tx, "delete from feature where product_id = $1", &[&id]).await?;
    insert_pairs(tx, INSERT_FEATURES, id, features).await
}

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

async fn create_product(tx: &Transaction<'_>, body: &Value) -> Result<Outcome, ApiError> {
    let p = product_input(object(body)?, true)?;
    let row = query_opt(
        tx,
        "insert into product (name, slogan, description, category, default_price)
         values ($1, $2, $3, $4, $5::text::numeric) returning id",
        &[&p.name, &p.slogan, &p.description, &p.category, &p.default_price],
    )
    .await?
    .expect("insert returning yields a row");
    let id: i64 = row.get(0);
    if let Some(features) = p.features {
        replace_features(tx, id, &features).await?;
    }
    Ok(Outcome::created(document(tx, DETAIL_DOC, id).await?, Some(format!("/products/{id}"))))
}

/// PUT (`full`: every field required, features replaced, absent = none) or
/// PATCH (any subset; features replaced only when given).
async fn update_product(tx: &Transaction<'_>, id: i64, body: &Value, full: bool) -> Result<Outcome, ApiError> {
    let obj = object(body)?;
    let p = product_input(obj, full)?;
    let features = p.features.or_else(|| full.then(Default::default));
    for field in ["name", "slogan", "description", "category"] {
        if !full && obj.get(field).is_some_and(Value::is_null) {
            return Err(ApiError::field(field, "must not be null"));
        }
    }
    let updated = exec(
        tx,
        "update product set name = coalesce($2, name), slogan = coalesce($3, slogan),
                description = coalesce($4, description), category = coalesce($5, category),
                default_price = coalesce($6::text::numeric, default_price), updated_at = now()
         where id = $1",
        &[&id, &p.name, &p.slogan, &p.description, &p.category, &p.default_price],
    )
    .await?;
    if updated == 0 {
        return Err(ApiError::NotFound(format!("product {id} not found")));
    }
    if let Some(features) = features {
        replace_features(tx, id, &features).await?;
    }
    Ok(Outcome::ok(document(tx, DETAIL_DOC, id).await?))
}

async fn delete(tx: &Transaction<'_>, sql: &str, id: i64, what: &str) -> Result<Outcome, ApiError> {
    if exec(tx, sql, &[&id]).await? == 0 {
        return Err(ApiError::NotFound(format!("{what} {id} not found")));
    }
    Ok(Outcome::no_content())
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

async fn create_style(tx: &Transaction<'_>, product_id: i64, body: &Value) -> Result<Outcome, ApiError> {
    let obj = object(body)?;
    let input = style_input(obj)?;
    let skus = array(obj, "skus", sku_fields)?.unwrap_or_default();
    // Lock the product so a concurrent delete cannot slip in between.
    if query_opt(tx, "select 1 from product where id = $1 for update", &[&product_id]).await?.is_none() {
        return Err(ApiError::NotFound(format!("product {product_id} not found")));
    }
    if input.is_default {
        exec(tx, "update style set is_default = false where product_id = $1 and is_default", &[&product_id]).await?;
    }
    let style_id: i64 = query_opt(
        tx,
        "insert into style (product_id, name, original_price, sale_price, is_default)
         values ($1, $2, $3::text::numeric, $4::text::numeric, $5) returning id",
        &[&product_id, &input.name, &input.original_price, &input.sale_price, &input.is_default],
    )
    .await?
    .expect("insert returning yields a row")
    .get(0);
    insert_pairs(tx, INSERT_PHOTOS, style_id, &input.photos).await?;
    if !skus.is_empty() {
        let (sizes, quantities): (Vec<String>, Vec<i64>) = skus.into_iter().unzip();
        exec(
            tx,
            "with new_skus as (
                 insert into sku (style_id, size, quantity)
                 select $1, s, q from unnest($2::text[], $3::bigint[]) with ordinality as x(s, q, n) order by n
                 returning id, quantity)
             insert into stock_movement (sku_id, delta, reason)
             select id, quantity, 'initial stock' from new_skus where quantity <> 0",
            &[&style_id, &sizes, &quantities],
        )
        .await?;
    }
    Ok(Outcome::created(document(tx, STYLE_DOC, style_id).await?, None))
}

async fn update_style(tx: &Transaction<'_>, style_id: i64, body: &Value) -> Result<Outcome, ApiError> {
    let input = style_input(object(body)?)?;
    let Some(row) = query_opt(tx, "select product_id from style where id = $1 for update", &[&style_id]).await? else {
        return Err(ApiError::NotFound(format!("style {style_id} not found")));
    };
    let product_id: i64 = row.get(0);
    if input.is_default {
        exec(
            tx,
            "update style set is_default = false where product_id = $1 and is_default and id <> $2",
            &[&product_id, &style_id],
        )
        .await?;
    }
    exec(
        tx,
        "update style set name = $2, original_price = $3::text::numeric, sale_price = $4::text::numeric,
                is_default = $5
         where id = $1",
        &[&style_id, &input.name, &input.original_price, &input.sale_price, &input.is_default],
    )
    .await?;
    exec(tx, "delete from photo where style_id = $1", &[&style_id]).await?;
    insert_pairs(tx, INSERT_PHOTOS, style_id, &input.photos).await?;
    Ok(Outcome::ok(document(tx, STYLE_DOC, style_id).await?))
}

async fn create_sku(tx: &Transaction<'_>, style_id: i64, body: &Value) -> Result<Outcome, ApiError> {
    let (size, quantity) = sku_fields(object(body)?, "")?;
    if query_opt(tx, "select 1 from style where id = $1 for update", &[&style_id]).await?.is_none() {
        return Err(ApiError::NotFound(format!("style {style_id} not found")));
    }
    let sku_id: i64 = query_opt(
        tx,
        "insert into sku (style_id, size, quantity) values ($1, $2, $3) returning id",
        &[&style_id, &size, &quantity],
    )
    .await?
    .expect("insert returning yields a row")
    .get(0);
    if quantity != 0 {
        exec(
            tx,
            "insert into stock_movement (sku_id, delta, reason) values ($1, $2, 'initial stock')",
            &[&sku_id, &quantity],
        )
        .await?;
    }
    let body = serde_json::json!({"sku_id": sku_id, "size": size, "quantity": quantity});
    Ok(Outcome::created(serde_json::to_vec(&body).unwrap_or_default(), None))
}

/// The stock ledger. The conditional UPDATE takes the sku's row lock, so
/// racing movements on one sku run one after another, each seeing the
/// quantity the previous one left; one that would go below zero matches no
/// row and is refused with 409 before anything is written.
async fn record_movement(tx: &Transaction<'_>, sku_id: i64, body: &Value) -> Result<Outcome, ApiError> {
    let obj = object(body)?;
    let delta = integer(obj, "delta", "delta", -i64::from(i32::MAX), i64::from(i32::MAX))?;
    if delta == 0 {
        return Err(ApiError::field("delta", "must not be 0"));
    }
    let reason = text(obj, "reason", "reason", NAME_CHARS_MAX, false)?;
    let updated = query_opt(
        tx,
        "update sku set quantity = quantity + $2 where id = $1 and quantity + $2 >= 0 returning quantity",
        &[&sku_id, &delta],
    )
    .await?;
    let Some(row) = updated else {
        return Err(match query_opt(tx, "select quantity from sku where id = $1", &[&sku_id]).await? {
            None => ApiError::NotFound(format!("sku {sku_id} not found")),
            Some(row) => {
                ApiError::Conflict(format!("stock would go negative: sku {sku_id} has {}", row.get::<_, i64>(0)))
            }
        });
    };
    let quantity: i64 = row.get(0);
    exec(tx, "insert into stock_movement (sku_id, delta, reason) values ($1, $2, $3)", &[&sku_id, &delta, &reason])
        .await?;
    let body = serde_json::json!({"sku_id": sku_id, "quantity": quantity});
    Ok(Outcome::created(serde_json::to_vec(&body).unwrap_or_default(), None))
}

/// PUT /products/:id/related: replaces the list, keeping the given order;
/// repeated ids count once. Unknown ids and the product itself are 422.
async fn put_related(tx: &Transaction<'_>, id: i64, body: &Value) -> Result<Outcome, ApiError> {
    let items = body.as_array().ok_or_else(|| ApiError::field("related", "must be an array of product ids"))?;
    let mut ids: Vec<i64> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("related[{i}]");
        let related =
            item.as_i64().filter(|v| *v > 0).ok_or_else(|| ApiError::field(&path, "must be a positive integer"))?;
        if related == id {
            return Err(ApiError::field(&path, "must not be the product itself"));
        }
        if !ids.contains(&related) {
            ids.push(related);
        }
    }
    if query_opt(tx, "select 1 from product where id = $1 for update", &[&id]).await?.is_none() {
        return Err(ApiError::NotFound(format!("product {id} not found")));
    }
    let missing: Vec<i64> = query_opt(
        tx,
        "select coalesce(array_agg(x), '{}') from unnest($1::bigint[]) x where not exists (select 1 from product p where p.id = x)",
        &[&ids],
    )
    .await?
    .expect("aggregate yields a row")
    .get(0);
    if let Some(first) = missing.first() {
        let index = ids.iter().position(|x| x == first).unwrap_or(0);
        return Err(ApiError::field(&format!("related[{index}]"), &format!("product {first} does not exist")));
    }
    exec(tx, "delete from related_product where product_id = $1", &[&id]).await?;
    exec(
        tx,
        "insert into related_product (product_id, related_product_id)
         select $1, r from unnest($2::bigint[]) with ordinality as x(r, n) order by n",
        &[&id, &ids],
    )
    .await?;
    Ok(Outcome::ok(document(tx, RELATED_DOC, id).await?))
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
