//! One keep-alive HTTP/1.1 client connection, as the generators use it.

use std::net::SocketAddr;
use std::sync::Arc;

use atelier_tools::{ToolError, ToolResult};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, AUTHORIZATION};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The server under load and the bearer token its writes carry (every
/// request carries it, as a storefront's client sends one on reads too,
/// which the service ignores).
#[derive(Clone)]
pub struct Server {
    pub addr: SocketAddr,
    pub token: Option<Arc<str>>,
}

impl Server {
    pub fn new(addr: SocketAddr, token: Option<String>) -> Server {
        Server { addr, token: token.map(Arc::from) }
    }
}

/// One keep-alive HTTP/1.1 connection.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    authorization: Option<HeaderValue>,
}

impl Connection {
    pub async fn open(server: &Server) -> ToolResult<Connection> {
        let authorization = match &server.token {
            Some(token) => Some(
                HeaderValue::from_str(&format!("Bearer {token}"))
                    .map_err(|_| ToolError::msg("the token is not a header value"))?,
            ),
            None => None,
        };
        let stream = TcpStream::connect(server.addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ToolError::msg(format!("handshake: {e}")))?;
        tokio::spawn(connection);
        Ok(Connection { sender, authorization })
    }

    /// Sends a request and reads the whole response; `None` on failure.
    pub async fn send(&mut self, method: &Method, path: &str, body: Option<Bytes>) -> Option<u16> {
        self.sender.ready().await.ok()?;
        let mut builder = Request::builder().method(method).uri(path).header("host", "atelier");
        if body.is_some() {
            builder = builder.header("content-type", "application/json");
        }
        if let Some(authorization) = &self.authorization {
            builder = builder.header(AUTHORIZATION, authorization.clone());
        }
        let request = builder.body(Full::new(body.unwrap_or_default())).ok()?;
        let response = self.sender.send_request(request).await.ok()?;
        let status = response.status().as_u16();
        response.into_body().collect().await.ok()?;
        Some(status)
    }
}
