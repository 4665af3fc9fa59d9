//! One request, start to finish: parse the route, answer a CORS preflight,
//! find the endpoint in the table, check its credential (`auth`), run its
//! handler (one `match`), turn errors into their response, add the CORS
//! headers and the request id, record metrics and the access log line.

use std::net::IpAddr;
use std::time::Instant;

use atelier_schema::DocumentKind;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, ORIGIN};
use hyper::{Method, Request};
use serde_json::Value;

use crate::error::ApiError;
use crate::http::access_log::{self, Line};
use crate::http::body::{self, JsonBody};
use crate::http::respond::{self, HttpResponse, READ_AFTER, REQUEST_ID, SERVED_BY};
use crate::http::routes::{Endpoint, Resource, Route};
use crate::http::{browse, client, cors, openapi, ops, query};
use crate::read;
use crate::state::AppState;
use crate::write::{self, batch, products, related, skus, styles, Delete, Idempotency, Write};

/// Longest client-given `X-Request-Id` that is passed on.
const REQUEST_ID_CHARS_MAX: usize = 64;

/// Which listener a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// `ATELIER_LISTEN`: the API, and the operational endpoints too.
    Public,
    /// `ATELIER_OPS_LISTEN`: only /healthz, /readyz and /metrics, with
    /// its own connection limit, so a scrape or a health check never
    /// queues behind the API's clients.
    Ops,
}

/// `peer`: the address the connection comes from (a balancer's, or the
/// client's own).
pub async fn handle(state: &AppState, request: Request<Incoming>, peer: IpAddr, listener: Listener) -> HttpResponse {
    let started = Instant::now();
    let origin = request.headers().get(ORIGIN).cloned();
    let request_id = request_id(state, request.headers());
    let method = request.method().clone();
    let path = request.uri().path();
    let route = Route::parse(path).and_then(|route| match listener {
        Listener::Ops if !route.resource.is_operational() => {
            Err(ApiError::NotFound(format!("no route for {path} on the operations listener")))
        }
        _ => Ok(route),
    });
    let resource = route.as_ref().ok().map(|r| r.resource);
    let mut response = match route {
        // A preflight is answered on every path, known or not, and never
        // queues: a browser must be able to read our JSON errors too.
        _ if method == Method::OPTIONS => cors::preflight(resource, request.headers()),
        // Database work waits for its slot where it starts (`admission`):
        // what memory answers never queues.
        Ok(route) => dispatch(state, route, request, peer).await.unwrap_or_else(respond::error),
        Err(error) => respond::error(error),
    };
    cors::decorate(&state.config, origin.as_ref(), &mut response);
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, id);
    }
    let latency = started.elapsed();
    let status = response.status().as_u16();
    let document_read = matches!(method, Method::GET | Method::HEAD) && resource.is_some_and(Resource::is_document);
    state.metrics.record(resource.map(Resource::slot), status, latency, document_read);
    if state.config.http.access_log {
        let node = response.headers().get(SERVED_BY).and_then(|v| v.to_str().ok()).unwrap_or("-");
        let route = resource.map_or("unmatched", Resource::label);
        access_log::record(
            state,
            Line { request_id: &request_id, method: method.as_str(), route, status, latency, node },
        );
    }
    response
}

/// The request's id: the client's `X-Request-Id` when it sent a short,
/// plain one (so a trace can span services), else a new one.
fn request_id(state: &AppState, headers: &HeaderMap) -> String {
    let given = headers.get(REQUEST_ID).and_then(|v| v.to_str().ok()).filter(|id| {
        (1..=REQUEST_ID_CHARS_MAX).contains(&id.len())
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    });
    given.map_or_else(|| state.request_ids.next(), str::to_string)
}

async fn dispatch(
    state: &AppState,
    route: Route,
    request: Request<Incoming>,
    peer: IpAddr,
) -> Result<HttpResponse, ApiError> {
    let endpoint = route.endpoint(request.method())?;
    let client = client::address(&state.config.http.trusted_proxies, peer, request.headers());
    state.auth.authorize(endpoint.scope(), request.headers(), client, &state.metrics)?;
    let id = route.id()?;
    match endpoint {
        Endpoint::ListProducts => {
            let read_after = read_after(&request)?;
            let page = query::page(request.uri().query(), state.config.read.page_count_max)?;
            let document = read::product_list(state, page, read_after).await?;
            respond::document(request.headers(), document)
        }
        Endpoint::GetProduct => get_document(state, request, DocumentKind::Detail, id).await,
        Endpoint::GetStyles => get_document(state, request, DocumentKind::Styles, id).await,
        Endpoint::GetRelated => get_document(state, request, DocumentKind::Related, id).await,
        // Writes and the rest build futures of many kilobytes. On the heap,
        // they leave every request's future small: hyper moves it whole
        // into its connection, and under thousands of connections that copy
        // misses the CPU's caches (ARCHITECTURE.md, "Request futures stay
        // small").
        other => Box::pin(dispatch_rest(state, other, request, id)).await,
    }
}

/// Every endpoint but the reads of documents and pages (`dispatch`).
async fn dispatch_rest(
    state: &AppState,
    endpoint: Endpoint,
    request: Request<Incoming>,
    id: i64,
) -> Result<HttpResponse, ApiError> {
    match endpoint {
        Endpoint::ListProducts | Endpoint::GetProduct | Endpoint::GetStyles | Endpoint::GetRelated => {
            Err(ApiError::internal("reads are dispatched by dispatch()"))
        }
        Endpoint::CreateProduct => with_body(state, request, products::Create::parse).await,
        Endpoint::ReplaceProduct => with_body(state, request, |body| products::Update::replace(id, body)).await,
        Endpoint::PatchProduct => with_body(state, request, |body| products::Update::patch(id, body)).await,
        Endpoint::DeleteProduct => without_body(state, Delete::<products::Product>::new(id)).await,
        Endpoint::CreateStyle => with_body(state, request, |body| styles::Create::parse(id, body)).await,
        Endpoint::ReplaceStyle => with_body(state, request, |body| styles::Update::parse(id, body)).await,
        Endpoint::DeleteStyle => without_body(state, Delete::<styles::Style>::new(id)).await,
        Endpoint::PutRelated => with_body(state, request, |body| related::Put::parse(id, body)).await,
        Endpoint::CreateSku => with_body(state, request, |body| skus::Create::parse(id, body)).await,
        Endpoint::DeleteSku => without_body(state, Delete::<skus::Sku>::new(id)).await,
        Endpoint::RecordMovement => record_movement(state, request, id).await,
        Endpoint::Healthz => Ok(ops::healthz()),
        Endpoint::Readyz => Ok(ops::readyz(state).await),
        Endpoint::Metrics => Ok(ops::metrics(state).await),
        Endpoint::Browse => browse::page(request.headers()),
        Endpoint::OpenApi => openapi::document(request.headers()),
    }
}

/// GET of one product's document of `kind`.
async fn get_document(
    state: &AppState,
    request: Request<Incoming>,
    kind: DocumentKind,
    id: i64,
) -> Result<HttpResponse, ApiError> {
    let document = read::product_document(state, kind, id, read_after(&request)?).await?;
    respond::document(request.headers(), document)
}

/// The `X-Read-After` token of a GET, if it sent one.
fn read_after(request: &Request<Incoming>) -> Result<Option<read::ReadAfter>, ApiError> {
    request.headers().get(READ_AFTER).map(read::ReadAfter::parse).transpose()
}

/// A write with a JSON body, parsed into its typed form by `parse`. A POST
/// may carry an Idempotency-Key.
async fn with_body<W: Write>(
    state: &AppState,
    request: Request<Incoming>,
    parse: impl FnOnce(&Value) -> Result<W, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let (write, idempotency) = read_write(state, request, parse).await?;
    respond::written(write::execute(state, &write, idempotency.as_ref()).await?)
}

/// POST /skus/:id/movements: batched with the movements that arrive with it
/// (write/batch.rs), or, with an Idempotency-Key, alone with its key.
async fn record_movement(state: &AppState, request: Request<Incoming>, id: i64) -> Result<HttpResponse, ApiError> {
    let (movement, idempotency) = read_write(state, request, |body| skus::RecordMovement::parse(id, body)).await?;
    respond::written(match idempotency {
        Some(key) => write::execute(state, &movement, Some(&key)).await?,
        None => batch::record(state, movement).await?,
    })
}

/// The write a request's JSON body asks for, parsed by `parse`, and the
/// Idempotency-Key a POST carries, if any.
async fn read_write<W: Write>(
    state: &AppState,
    request: Request<Incoming>,
    parse: impl FnOnce(&Value) -> Result<W, ApiError>,
) -> Result<(W, Option<Idempotency>), ApiError> {
    let key = match *request.method() {
        Method::POST => body::idempotency_key(request.headers())?,
        _ => None,
    };
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let JsonBody { raw, value } = body::read_json(request, state.config.http.body_bytes_max).await?;
    let write = parse(&value)?;
    Ok((write, key.map(|key| Idempotency::new(key, method.as_str(), &path, &raw))))
}

/// A write without a body (DELETE).
async fn without_body<W: Write>(state: &AppState, write: W) -> Result<HttpResponse, ApiError> {
    respond::written(write::execute(state, &write, None).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a request's future may weigh (it was 13,392 bytes in a release
    /// build while every endpoint's future was inline, 2,592 since).
    const REQUEST_FUTURE_BYTES_MAX: usize = 4096;

    #[test]
    fn request_futures_stay_small() {
        fn returned<'a, F: std::future::Future>(
            _: fn(&'a AppState, Request<Incoming>, IpAddr, Listener) -> F,
        ) -> usize {
            std::mem::size_of::<F>()
        }
        let bytes = returned(handle);
        eprintln!("a request's future: {bytes} bytes");
        assert!(bytes <= REQUEST_FUTURE_BYTES_MAX, "a request's future is {bytes} bytes: box what made it grow");
    }
}
