//! What every request handler can reach: the configuration, the pools and
//! the metrics. Built once by `App::build` and shared behind an `Arc`.

use crate::config::Config;
use crate::db::Pools;
use crate::metrics::Metrics;

pub(crate) struct AppState {
    pub config: Config,
    pub pools: Pools,
    pub metrics: Metrics,
}
