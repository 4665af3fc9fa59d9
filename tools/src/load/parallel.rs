//! Work spread over several connections.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio_postgres::Client;

use crate::db::{connect, ToolError, ToolResult};

/// Runs `jobs` on `workers` connections to `url`, each worker taking the
/// next job when it is done with one. Stops at the first error.
pub async fn in_parallel<T, F, Fut>(url: &str, workers: usize, jobs: Vec<T>, run: F) -> ToolResult<()>
where
    T: Send + 'static,
    F: Fn(Arc<Client>, T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ToolResult<()>> + Send,
{
    let queue = Arc::new(Mutex::new(VecDeque::from(jobs)));
    let run = Arc::new(run);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers.max(1) {
        let client = Arc::new(connect(url).await?);
        let (queue, run) = (queue.clone(), run.clone());
        tasks.spawn(async move {
            loop {
                let job = queue.lock().expect("job queue lock").pop_front();
                let Some(job) = job else { return Ok(()) };
                run(client.clone(), job).await?;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        let result: ToolResult<()> = done.map_err(|e| ToolError::msg(format!("load worker failed: {e}")))?;
        if let Err(error) = result {
            tasks.abort_all();
            return Err(error);
        }
    }
    Ok(())
}
