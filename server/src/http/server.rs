//! The accept loop, in the manner of mini-redis's `server::run`: serves
//! HTTP/1.1 on a bound listener until the shutdown future completes; then
//! stops accepting, asks every connection to finish its request in flight
//! and close, and waits for them (at most the grace period) before it
//! returns. Each connection task holds a clone of a channel's sender; when
//! the last one is dropped, every connection has finished.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};

use crate::http::dispatch::{self, Listener};
use crate::state::AppState;

/// Pause after a failed accept (out of file descriptors and the like).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `kind`'s endpoints on `listener` (the public one takes at most
/// ATELIER_CONNECTIONS_MAX connections, the operations one its own
/// ATELIER_OPS_CONNECTIONS_MAX) until `shutdown` completes.
pub async fn serve(listener: TcpListener, kind: Listener, state: Arc<AppState>, shutdown: impl Future<Output = ()>) {
    let limit = match kind {
        Listener::Public => state.config.http.connections_max,
        Listener::Ops => state.config.http.ops_connections_max,
    };
    let connections = Arc::new(Semaphore::new(limit));
    let (stop, stopping) = watch::channel(false);
    let (finished, mut all_finished) = mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = connections.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break, // the semaphore is never closed
            },
        };
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        tokio::spawn(connection(stream, kind, state.clone(), stopping.clone(), permit, finished.clone()));
    }
    drop(listener);
    let _ = stop.send(true);
    drop(finished);
    let grace = state.config.http.shutdown_grace;
    if tokio::time::timeout(grace, all_finished.recv()).await.is_err() {
        tracing::warn!(?grace, "connections still open after the grace period; closing them");
    }
}

/// Serves one connection until the client closes it, or until shutdown:
/// then the request in flight finishes and the connection closes.
async fn connection(
    stream: TcpStream,
    kind: Listener,
    state: Arc<AppState>,
    mut stopping: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
    _finished: mpsc::Sender<()>,
) {
    let _ = stream.set_nodelay(true);
    let peer = stream.peer_addr().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |addr| addr.ip().to_canonical());
    let header_timeout = state.config.http.header_read_timeout;
    let service = service_fn(move |request| {
        let state = state.clone();
        async move { Ok::<_, std::convert::Infallible>(dispatch::handle(&state, request, peer, kind).await) }
    });
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(served);
    let result = tokio::select! {
        result = served.as_mut() => result,
        // The flag only ever goes from false to true (or its sender is
        // dropped): any change means stop.
        _ = stopping.changed() => {
            served.as_mut().graceful_shutdown();
            served.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "connection ended with an error");
    }
}
