//! The HTTP layer: everything that knows about requests and responses.
//! It calls into `read` and `write`, which never call back.

pub mod access_log;
mod body;
mod browse;
mod client;
mod cors;
mod dispatch;
mod openapi;
mod ops;
mod query;
mod request_id;
mod respond;
mod routes;
mod server;
mod settings;

pub use dispatch::Listener;
pub(crate) use request_id::RequestIds;
pub use routes::ROUTE_LABELS;
pub use server::serve;
pub use settings::HttpSettings;
