//! What the tools share: their error type and a plain database connection.

use std::time::Duration;

use tokio_postgres::Client;

/// How long a tool waits to open a connection to each host of its URL,
/// unless the URL says (connect_timeout).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// An error from a tool: said to the user as it is.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("{0}")]
    Message(String),
    #[error("database: {}", database_message(.0))]
    Database(#[from] tokio_postgres::Error),
    #[error("migration: {0}")]
    Migration(#[from] refinery::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What the server said (tokio-postgres' own Display is only "db error").
fn database_message(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => match db.hint() {
            Some(hint) => format!("{} ({hint})", db.message()),
            None => db.message().to_string(),
        },
        None => error.to_string(),
    }
}

impl ToolError {
    pub fn msg(text: impl Into<String>) -> ToolError {
        ToolError::Message(text.into())
    }
}

pub type ToolResult<T> = Result<T, ToolError>;

/// Opens one connection (no pool) and drives it on a background task.
/// Each host of a multi-host URL gets the connect timeout for its whole
/// handshake (atelier_schema::connect): a frozen node is passed over.
pub async fn connect(url: &str) -> ToolResult<Client> {
    let mut config: tokio_postgres::Config = url.parse()?;
    let per_host = config.get_connect_timeout().copied().unwrap_or(CONNECT_TIMEOUT);
    config.connect_timeout(per_host);
    let (client, connection) = atelier_schema::connect::connect(&config, per_host).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "tool connection closed");
        }
    });
    Ok(client)
}
