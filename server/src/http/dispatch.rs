//! One request, start to finish: parse the route, answer a CORS preflight
//! or find the endpoint in the table, run its handler (one `match`), turn
//! errors into their response, add the CORS headers, and record metrics.

use std::time::Instant;

use atelier_schema::DocumentKind;
use hyper::body::Incoming;
use hyper::header::ORIGIN;
use hyper::{Method, Request};
use serde_json::Value;

use crate::error::ApiError;
use crate::http::body::{self, JsonBody};
use crate::http::respond::{self, HttpResponse, READ_AFTER};
use crate::http::routes::{Endpoint, Route};
use crate::http::{browse, cors, ops};
use crate::read;
use crate::state::AppState;
use crate::write::{self, products, related, skus, styles, Idempotency, Write};

pub async fn handle(state: &AppState, request: Request<Incoming>) -> HttpResponse {
    let started = Instant::now();
    let origin = request.headers().get(ORIGIN).cloned();
    let (slot, mut response) = match Route::parse(request.uri().path()) {
        Ok(route) => {
            (Some(route.resource.slot()), dispatch(state, route, request).await.unwrap_or_else(respond::error))
        }
        Err(error) => (None, respond::error(error)),
    };
    cors::decorate(&state.config, origin.as_ref(), &mut response);
    state.metrics.record(slot, response.status().as_u16(), started.elapsed());
    response
}

async fn dispatch(state: &AppState, route: Route, request: Request<Incoming>) -> Result<HttpResponse, ApiError> {
    let id = route.id;
    if request.method() == Method::OPTIONS {
        return Ok(cors::preflight(route.resource));
    }
    match route.endpoint(request.method())? {
        Endpoint::ListProducts => {
            let document = read::product_list(state, request.uri().query(), read_after(&request)?).await?;
            respond::document(request.headers(), document)
        }
        Endpoint::GetProduct => get_document(state, request, DocumentKind::Detail, id).await,
        Endpoint::GetStyles => get_document(state, request, DocumentKind::Styles, id).await,
        Endpoint::GetRelated => get_document(state, request, DocumentKind::Related, id).await,
        Endpoint::CreateProduct => with_body(state, request, products::Create::parse).await,
        Endpoint::ReplaceProduct => with_body(state, request, |body| products::Update::replace(id, body)).await,
        Endpoint::PatchProduct => with_body(state, request, |body| products::Update::patch(id, body)).await,
        Endpoint::DeleteProduct => without_body(state, products::Delete(id)).await,
        Endpoint::CreateStyle => with_body(state, request, |body| styles::Create::parse(id, body)).await,
        Endpoint::ReplaceStyle => with_body(state, request, |body| styles::Update::parse(id, body)).await,
        Endpoint::DeleteStyle => without_body(state, styles::Delete(id)).await,
        Endpoint::PutRelated => with_body(state, request, |body| related::Put::parse(id, body)).await,
        Endpoint::CreateSku => with_body(state, request, |body| skus::Create::parse(id, body)).await,
        Endpoint::DeleteSku => without_body(state, skus::Delete(id)).await,
        Endpoint::RecordMovement => with_body(state, request, |body| skus::RecordMovement::parse(id, body)).await,
        Endpoint::Healthz => Ok(ops::healthz()),
        Endpoint::Readyz => Ok(ops::readyz(state).await),
        Endpoint::Metrics => Ok(ops::metrics(state).await),
        Endpoint::Browse => browse::page(request.headers()),
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
    let key = match *request.method() {
        Method::POST => body::idempotency_key(request.headers())?,
        _ => None,
    };
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let JsonBody { raw, value } = body::read_json(request, state.config.body_bytes_max).await?;
    let write = parse(&value)?;
    let idempotency = key.map(|key| Idempotency::new(key, &method, &path, &raw));
    respond::written(write::execute(state, &write, idempotency.as_ref()).await?)
}

/// A write without a body (DELETE).
async fn without_body<W: Write>(state: &AppState, write: W) -> Result<HttpResponse, ApiError> {
    respond::written(write::execute(state, &write, None).await?)
}
