//! Shared, pipelined connections to a replica (`ATELIER_READ_PIPELINE_CONNECTIONS`).
//!
//! Instead of one pooled connection per read, reads share a few
//! connections: tokio-postgres sends the statements of concurrent reads on
//! one connection back to back and reads their answers as they come, so a
//! replica serves many reads with few backends and fewer system calls. A
//! read cut off by its deadline leaves its answer to be read and dropped by
//! the connection; nothing else on the connection is disturbed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::{Client, NoTls, Statement};

use crate::error::ApiError;

pub(crate) struct Pipelines {
    config: tokio_postgres::Config,
    slots: Vec<tokio::sync::Mutex<Option<Arc<Pipeline>>>>,
    next: AtomicUsize,
}

pub(crate) struct Pipeline {
    pub client: Client,
    statements: std::sync::Mutex<HashMap<String, Statement>>,
}

impl Pipelines {
    pub fn new(config: tokio_postgres::Config, connections: usize) -> Pipelines {
        Pipelines {
            config,
            slots: (0..connections).map(|_| tokio::sync::Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// The next shared connection in turn, opened (within `within`) if it
    /// is not open.
    pub async fn get(&self, within: Duration) -> Result<Arc<Pipeline>, ApiError> {
        let at = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len().max(1);
        let Some(slot) = self.slots.get(at) else {
            return Err(ApiError::internal("no pipelined connection slots"));
        };
        let mut slot = slot.lock().await;
        if let Some(pipeline) = slot.as_ref().filter(|p| !p.client.is_closed()) {
            return Ok(pipeline.clone());
        }
        let (client, connection) = tokio::time::timeout(within, self.config.connect(NoTls))
            .await
            .map_err(|_| ApiError::Unavailable("opening a connection took too long".into()))?
            .map_err(ApiError::connecting)?;
        tokio::spawn(connection);
        let pipeline = Arc::new(Pipeline { client, statements: std::sync::Mutex::new(HashMap::new()) });
        *slot = Some(pipeline.clone());
        Ok(pipeline)
    }
}

impl Pipeline {
    /// `sql` prepared on this connection, once.
    pub async fn statement(&self, sql: &str) -> Result<Statement, ApiError> {
        let known = self.statements.lock().unwrap_or_else(|p| p.into_inner()).get(sql).cloned();
        if let Some(statement) = known {
            return Ok(statement);
        }
        let statement = self.client.prepare(sql).await?;
        self.statements.lock().unwrap_or_else(|p| p.into_inner()).insert(sql.to_string(), statement.clone());
        Ok(statement)
    }
}
