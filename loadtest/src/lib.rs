//! Load against a running server, and the ids and results around it:
//!
//! - `ids`: product and sku ids that exist, biased to the last 10%, for the
//!   generators and the JMeter plan;
//! - `client`: a keep-alive HTTP/1.1 connection;
//! - `stats`: latencies, statuses and nearest-rank percentiles;
//! - `write_load`: closed-loop stock movements (the brief's database load);
//! - `lag`: replication lag sampled while a load runs;
//! - `stress`: the open-loop stepped test, its table and plot;
//! - `jtl`: JMeter results summarised per thread group.

pub mod client;
pub mod ids;
pub mod jtl;
pub mod lag;
pub mod stats;
pub mod stress;
pub mod write_load;
