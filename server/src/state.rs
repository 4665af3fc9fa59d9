//! What every request handler can reach: the configuration, the database
//! nodes, the metrics, the admission queue, request ids, the access log's
//! channel, the credentials, the document cache, and the movement and
//! read-batch queues.
//! Built once by `App::build` and shared behind an `Arc`.

use tokio::sync::mpsc;

use crate::admission::Admission;
use crate::auth::Authorizer;
use crate::cache::ChangeFeed;
use crate::config::Config;
use crate::db::Pools;
use crate::http::RequestIds;
use crate::metrics::Metrics;
use crate::read::batch::ReadBatches;
use crate::read::HedgeBudget;
use crate::write::batch::Movements;

pub(crate) struct AppState {
    pub config: Config,
    pub pools: Pools,
    pub metrics: Metrics,
    /// The queues in front of the databases: reads (the replicas, and the
    /// primary's copy of the read model), and writes (the primary).
    pub reads: Admission,
    pub writes: Admission,
    /// Lines for the access log's writer; None when it is off.
    pub access_log: Option<mpsc::Sender<String>>,
    pub request_ids: RequestIds,
    pub hedges: HedgeBudget,
    /// The live tokens and the failed-authentication limiter.
    pub auth: Authorizer,
    /// None when `ATELIER_CACHE_BYTES` is 0.
    pub cache: Option<std::sync::Arc<ChangeFeed>>,
    /// The queue of stock movements waiting for their batch.
    pub movements: Movements,
    /// The queues of document reads waiting for their batch.
    pub batches: ReadBatches,
}
