//! One module per group of subcommands: its flags, and what it prints.

pub mod backup;
pub mod cluster;
pub mod data;
pub mod loadtest;
pub mod schema;
pub mod serve;
pub mod token;

use atelier_schema::local;

/// Where the tools connect: as a role that may change the schema and
/// bulk-load (the owner role on a fleet; the operator's own `postgres`
/// superuser on the local cluster, the default). The service never uses
/// these: it connects as the writer and reader roles (ATELIER_PRIMARY_URL,
/// ATELIER_REPLICA_URLS).
#[derive(clap::Args, Clone)]
pub struct AdminUrls {
    /// libpq-style connection string of the primary, for tools.
    #[arg(long, env = "ATELIER_ADMIN_PRIMARY_URL", default_value_t = local::primary_url(local::DATABASE))]
    pub primary_url: String,

    /// Comma-separated connection strings, one per read replica, for
    /// tools; empty for none.
    #[arg(long, env = "ATELIER_ADMIN_REPLICA_URLS",
          default_value_t = UrlList(local::replica_urls(local::DATABASE)))]
    pub replica_urls: UrlList,
}

/// A comma-separated list of connection strings. Empty pieces are dropped,
/// so an empty value is no replicas at all (a primary loaded before any
/// replica subscribes), not one empty connection string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlList(pub Vec<String>);

impl std::str::FromStr for UrlList {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<UrlList, Self::Err> {
        Ok(UrlList(s.split(',').map(str::trim).filter(|url| !url.is_empty()).map(String::from).collect()))
    }
}

impl std::fmt::Display for UrlList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

impl std::ops::Deref for UrlList {
    type Target = [String];

    fn deref(&self) -> &[String] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::UrlList;

    #[test]
    fn an_empty_url_list_is_no_urls() {
        assert_eq!("".parse::<UrlList>().unwrap().len(), 0);
        assert_eq!("a=1, ,b=2,".parse::<UrlList>().unwrap(), UrlList(vec!["a=1".into(), "b=2".into()]));
    }
}
