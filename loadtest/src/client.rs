//! One keep-alive HTTP/1.1 client connection, as the generators use it.

use std::net::SocketAddr;

use atelier_tools::{ToolError, ToolResult};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One keep-alive HTTP/1.1 connection.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
}

impl Connection {
    pub async fn open(addr: SocketAddr) -> ToolResult<Connection> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ToolError::msg(format!("handshake: {e}")))?;
        tokio::spawn(connection);
        Ok(Connection { sender })
    }

    /// Sends a request and reads the whole response; `None` on failure.
    pub async fn send(&mut self, method: &Method, path: &str, body: Option<Bytes>) -> Option<u16> {
        self.sender.ready().await.ok()?;
        let mut builder = Request::builder().method(method).uri(path).header("host", "atelier");
        if body.is_some() {
            builder = builder.header("content-type", "application/json");
        }
        let request = builder.body(Full::new(body.unwrap_or_default())).ok()?;
        let response = self.sender.send_request(request).await.ok()?;
        let status = response.status().as_u16();
        response.into_body().collect().await.ok()?;
        Some(status)
    }
}
