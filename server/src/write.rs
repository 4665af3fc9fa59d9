//! The write side (filled in by the write-side work).

use hyper::body::Incoming;
use hyper::Request;

use crate::error::ApiError;
use crate::respond::HttpResponse;
use crate::routes::Route;
use crate::server::AppState;

pub async fn dispatch(_state: &AppState, _route: Route, _request: Request<Incoming>) -> Result<HttpResponse, ApiError> {
    Err(ApiError::internal("writes are not implemented yet"))
}
