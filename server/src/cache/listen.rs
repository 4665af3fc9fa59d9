//! One connection per replica that LISTENs for the document changes the
//! replica applies and hands each notice to the cache. A lost connection
//! (closed, failed, or a heartbeat unanswered within
//! `ATELIER_CACHE_LISTENER_TIMEOUT_MS`) makes the cache forget everything
//! and stop keeping that replica's answers until it listens again.

use std::sync::Arc;
use std::time::Duration;

use atelier_schema::statements;
use futures_util::stream::{self, StreamExt};
use tokio_postgres::{AsyncMessage, NoTls};

use super::notice::Notice;
use super::ChangeFeed;

/// Listens to every replica, for the life of the server.
pub async fn listen_to_replicas(
    cache: Arc<ChangeFeed>,
    replicas: Vec<(&'static str, tokio_postgres::Config)>,
    timeout: Duration,
) {
    let listeners = replicas.into_iter().map(|(name, config)| listen(cache.clone(), name, config, timeout));
    futures_util::future::join_all(listeners).await;
}

/// `application_name` of the listening connections, which tells them
/// apart in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "atelier-listen";

async fn listen(cache: Arc<ChangeFeed>, name: &'static str, mut config: tokio_postgres::Config, timeout: Duration) {
    config.application_name(APPLICATION_NAME);
    loop {
        let mut listening = false;
        let why = session(&cache, name, &config, timeout, &mut listening).await;
        if listening {
            cache.set_listening(name, false);
            tracing::warn!(replica = name, why, "change listener lost: cache forgotten; reconnecting");
        } else {
            tracing::debug!(replica = name, why, "change listener could not start");
        }
        tokio::time::sleep(timeout).await;
    }
}

/// One connection's life; returns why it ended.
async fn session(
    cache: &ChangeFeed,
    name: &'static str,
    config: &tokio_postgres::Config,
    timeout: Duration,
    listening: &mut bool,
) -> String {
    let connected = tokio::time::timeout(timeout, config.connect(NoTls)).await;
    let (client, mut connection) = match connected {
        Ok(Ok(pair)) => pair,
        Ok(Err(error)) => return error.to_string(),
        Err(_) => return "connecting took too long".into(),
    };
    // Polling the connection for messages also drives the client's queries.
    let mut messages = stream::poll_fn(move |cx| connection.poll_message(cx));
    let receive = async {
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(notice)) => {
                    // A notice it cannot read must not leave a stale
                    // document behind: forget everything.
                    cache.apply(Notice::parse(notice.payload()).unwrap_or(Notice::Everything));
                }
                Ok(_) => {}
                Err(error) => return error.to_string(),
            }
        }
        "the replica closed the connection".to_string()
    };
    let control = async {
        match tokio::time::timeout(timeout, client.batch_execute(statements::LISTEN_DOCUMENT_CHANGES)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return error.to_string(),
            Err(_) => return "LISTEN took too long".into(),
        }
        *listening = true;
        cache.set_listening(name, true);
        tracing::info!(replica = name, "change listener connected: cache in use");
        loop {
            tokio::time::sleep(timeout).await;
            match tokio::time::timeout(timeout, client.simple_query(statements::LISTENER_HEARTBEAT)).await {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => return error.to_string(),
                Err(_) => return "heartbeat unanswered".into(),
            }
        }
    };
    tokio::select! {
        why = receive => why,
        why = control => why,
    }
}
