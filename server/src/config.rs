//! The server's configuration: one section per part, each declared beside
//! the code that uses it and flattened here, read from flags and the
//! environment. Every bound is on its flag (a clap range, so a bad value
//! is refused at start-up naming the flag and its variable), durations are
//! `Duration`s, and each default is written once, in its flag's attribute:
//! the tests build their configuration from the same defaults
//! ([`Config::defaults`]).
//!
//! | section | where | what |
//! |---|---|---|
//! | `http` | `http/settings.rs` | listeners, connections, body size, CORS, balancers, access log |
//! | `databases`, `pools` | `db/settings.rs` | where the databases are; pool sizes and their timeouts |
//! | `read` | `read/settings.rs` | attempts, hedges, deadline, fallback, read-your-writes, ejection, page size |
//! | `write` | `write/settings.rs` | the write deadline, movement batching |
//! | `admission` | `admission/settings.rs` | database slots and the queues in front of them |
//! | `cache` | `cache/settings.rs` | the document cache, the position index, the change listeners |
//! | `auth` | `auth/settings.rs` | private reads, token reloads, failed-authentication limits |

use std::time::Duration;

use clap::builder::{RangedU64ValueParser, TypedValueParser};
use clap::{Args, CommandFactory, FromArgMatches};

pub use crate::admission::AdmissionSettings;
pub use crate::auth::AuthSettings;
pub use crate::cache::CacheSettings;
pub use crate::db::{DatabaseUrls, PoolSettings};
pub use crate::http::HttpSettings;
pub use crate::read::ReadSettings;
pub use crate::write::WriteSettings;

/// Upper bound of every duration setting: an hour is longer than any wait
/// this service should make, and keeps `now + duration` far from overflow.
pub(crate) const HOUR_MS: u64 = 3_600_000;

#[derive(Args, Debug, Clone)]
pub struct Config {
    #[command(flatten)]
    pub http: HttpSettings,
    #[command(flatten)]
    pub databases: DatabaseUrls,
    #[command(flatten)]
    pub pools: PoolSettings,
    #[command(flatten)]
    pub read: ReadSettings,
    #[command(flatten)]
    pub write: WriteSettings,
    #[command(flatten)]
    pub admission: AdmissionSettings,
    #[command(flatten)]
    pub cache: CacheSettings,
    #[command(flatten)]
    pub auth: AuthSettings,
    /// Fault injection for the tests (cargo feature `faults`).
    #[cfg(feature = "faults")]
    #[command(flatten)]
    pub faults: Faults,
}

/// Fault injection, compiled in only with the `faults` feature (the tests
/// turn it on; a release build has no such knob).
#[cfg(feature = "faults")]
#[derive(Args, Debug, Clone)]
pub struct Faults {
    /// The admission tests: every read holds its slot this long (ms) before
    /// it runs, as a slow database would.
    #[arg(value_name = "MS", long = "test-db-delay-ms", env = "ATELIER_TEST_DB_DELAY_MS", default_value = "0",
          value_parser = millis(0, HOUR_MS), hide = true)]
    pub db_delay: Duration,

    /// The race tests: wait this long (ms) between reading a document and
    /// offering it to the cache, which widens the window in which a newer
    /// version's notice can overtake the fill.
    #[arg(value_name = "MS", long = "test-cache-fill-delay-ms", env = "ATELIER_TEST_CACHE_FILL_DELAY_MS", default_value = "0",
          value_parser = millis(0, HOUR_MS), hide = true)]
    pub cache_fill_delay: Duration,
}

/// A setting that cannot work, said plainly at start-up.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl ConfigError {
    pub(crate) fn new(problem: String) -> ConfigError {
        ConfigError(problem)
    }
}

/// The flags and variables of [`Config`], for a command of its own.
#[derive(clap::Parser)]
#[command(name = "atelier")]
struct Flags {
    #[command(flatten)]
    config: Config,
}

impl Config {
    /// Every setting at its flag's default, against `databases`; the
    /// environment is not read (a test's configuration does not depend on
    /// the shell it runs in).
    pub fn defaults(databases: DatabaseUrls) -> Config {
        let mut config = Config::from_flags(&[]).expect("the defaults parse");
        config.databases = databases;
        config
    }

    /// The configuration `flags` give, the environment not read.
    pub(crate) fn from_flags(flags: &[&str]) -> Result<Config, clap::Error> {
        let command = Flags::command().mut_args(|arg| arg.env(None));
        let matches = command.try_get_matches_from(std::iter::once("atelier").chain(flags.iter().copied()))?;
        Ok(Flags::from_arg_matches(&matches)?.config)
    }

    /// What clap's ranges cannot say: the connection strings parse, the
    /// CORS origins are header values, a replica is named, and a batch's
    /// target fits in the write deadline.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for url in std::iter::once(&self.databases.primary_url).chain(&self.databases.replica_urls) {
            url.parse::<tokio_postgres::Config>()
                .map_err(|e| ConfigError(format!("bad connection string {url:?}: {e}")))?;
        }
        for origin in &self.http.cors_origins {
            if origin != "*" && hyper::header::HeaderValue::from_str(origin).is_err() {
                return Err(ConfigError(format!("ATELIER_CORS_ORIGINS holds {origin:?}, which is not a header value")));
            }
        }
        if self.databases.replica_urls.iter().all(|url| url.trim().is_empty()) {
            return Err(ConfigError("ATELIER_REPLICA_URLS names no replica".into()));
        }
        if self.write.movement_batch_target > self.write.deadline {
            return Err(ConfigError(format!(
                "ATELIER_MOVEMENT_BATCH_TARGET_MS is {} ms; it must be at most ATELIER_WRITE_DEADLINE_MS ({} ms)",
                self.write.movement_batch_target.as_millis(),
                self.write.deadline.as_millis()
            )));
        }
        Ok(())
    }
}

/// A whole number of milliseconds from `low` to `high`, as a `Duration`.
pub(crate) fn millis(low: u64, high: u64) -> impl TypedValueParser<Value = Duration> {
    RangedU64ValueParser::<u64>::new().range(low..=high).map(Duration::from_millis)
}

/// A whole number of microseconds from `low` to `high`, as a `Duration`.
pub(crate) fn micros(low: u64, high: u64) -> impl TypedValueParser<Value = Duration> {
    RangedU64ValueParser::<u64>::new().range(low..=high).map(Duration::from_micros)
}

/// A whole number from `low` to `high`.
pub(crate) fn whole<T>(low: u64, high: u64) -> RangedU64ValueParser<T>
where
    T: TryFrom<u64> + Clone + Send + Sync + 'static,
    <T as TryFrom<u64>>::Error: Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
{
    RangedU64ValueParser::<T>::new().range(low..=high)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every environment variable a setting is read from, in flag order.
    fn variables() -> Vec<String> {
        Flags::command()
            .get_arguments()
            .filter_map(|arg| arg.get_env().map(|env| env.to_string_lossy().into_owned()))
            .collect()
    }

    fn parse(args: &[&str]) -> Result<Config, String> {
        Config::from_flags(args).map_err(|e| e.to_string())
    }

    #[test]
    fn the_defaults_are_valid() {
        let config = Config::defaults(DatabaseUrls::local("atelier"));
        config.validate().unwrap();
        assert_eq!(config.read.deadline, Duration::from_millis(500));
        assert_eq!(config.write.movement_batch_wait, Duration::ZERO);
        assert_eq!(config.read.hedging(), Some(Duration::from_millis(15)));
        assert_eq!(config.http.listen, "127.0.0.1:3000".parse().unwrap());
        assert_eq!(config.cache.cache_bytes, 64 << 20);
    }

    #[test]
    fn every_bound_is_refused_at_its_flag() {
        for (flag, value) in [
            ("--page-count-max", "4294967295"),
            ("--read-after-wait-ms", "18446744073709551615"),
            ("--connections-max", "0"),
            ("--cache-bytes", "18446744073709551615"),
            ("--write-pool-size", "0"),
            ("--movement-batch-max", "0"),
            ("--movement-batch-lanes", "0"),
            ("--movement-batch-wait-us", "2000000"),
            ("--movement-batch-target-ms", "0"),
            ("--read-hedge-percent-max", "101"),
            ("--statement-timeout-ms", "0"),
            ("--read-deadline-ms", "soon"),
        ] {
            let error = parse(&[flag, value]).expect_err(flag);
            assert!(error.contains(flag), "{flag}: {error}");
        }
        assert_eq!(parse(&["--read-hedge-after-ms", "0"]).unwrap().read.hedging(), None);
    }

    #[test]
    fn what_clap_cannot_say_is_refused_by_validate() {
        let mut bad = parse(&["--movement-batch-target-ms", "5000"]).unwrap();
        assert!(bad.validate().unwrap_err().to_string().contains("ATELIER_MOVEMENT_BATCH_TARGET_MS"));
        bad = Config::defaults(DatabaseUrls::local("atelier"));
        bad.databases.replica_urls = vec![String::new()];
        assert!(bad.validate().is_err());
        bad = Config::defaults(DatabaseUrls::local("atelier"));
        bad.http.cors_origins = vec!["https://a.example\n".into()];
        assert!(bad.validate().unwrap_err().to_string().contains("ATELIER_CORS_ORIGINS"));
    }

    /// `.env.example` names exactly the variables clap reads (the fault
    /// knobs aside), each once: a setting added or renamed without it fails.
    #[test]
    fn env_example_names_exactly_the_settings() {
        let example = include_str!("../../.env.example");
        let service = example.split("# --- the tools' settings").next().unwrap();
        let mut named: Vec<String> = service
            .lines()
            .map(|line| line.trim_start_matches('#').trim_start())
            .filter_map(|line| line.split_once('=').map(|(name, _)| name.to_string()))
            .filter(|name| name.starts_with("ATELIER_") && !name.contains(' '))
            .collect();
        let mut variables: Vec<String> =
            variables().into_iter().filter(|name| !name.starts_with("ATELIER_TEST_")).collect();
        named.sort();
        variables.sort();
        let mut unique = named.clone();
        unique.dedup();
        assert_eq!(unique, named, ".env.example names a variable twice");
        assert_eq!(named, variables, ".env.example and the flags disagree");
    }
}
