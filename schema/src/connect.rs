//! Opening a connection to one of several hosts, each with a deadline on
//! the whole handshake.
//!
//! A multi-host URL (a Patroni cluster's nodes, with
//! `target_session_attrs=read-write`) is tried host by host until one
//! accepts a read-write session. tokio-postgres' `connect_timeout` bounds
//! only each host's TCP connect, and a frozen PostgreSQL (SIGSTOP, a hung
//! machine) still completes TCP in its kernel and then never answers the
//! startup message: a plain `Config::connect` waits on it for ever and never
//! reaches the next host, which by then may be the new primary. So each
//! host gets a config of its own, and its whole connection (TCP, startup,
//! authentication, the read-write check) a deadline.

use std::time::Duration;

use tokio_postgres::config::Host;
use tokio_postgres::tls::NoTlsStream;
use tokio_postgres::{Client, Config, Connection, NoTls, Socket};

/// A connection and the task-less future that drives it.
pub type Connected = (Client, Connection<Socket, NoTlsStream>);

/// Connects to the first host of `config` that accepts, giving each
/// `per_host` for its whole handshake. With one host, that is simply a
/// connect with a deadline.
pub async fn connect(config: &Config, per_host: Duration) -> Result<Connected, tokio_postgres::Error> {
    let hosts = config.get_hosts();
    let mut last = None;
    for (i, host) in hosts.iter().enumerate() {
        let one = single_host(config, host, port_for(config, i));
        match tokio::time::timeout(per_host, one.connect(NoTls)).await {
            Ok(Ok(connected)) => return Ok(connected),
            Ok(Err(error)) => last = Some(error),
            Err(_) => last = None,
        }
    }
    match last {
        Some(error) => Err(error),
        // Every host timed out (or there was none): tokio-postgres' own
        // timeout error, which the callers already treat as "unreachable".
        None if hosts.is_empty() => config.connect(NoTls).await,
        None => Err(tokio_postgres::Error::__private_api_timeout()),
    }
}

/// libpq's rule: one port for every host, or one port per host.
fn port_for(config: &Config, i: usize) -> u16 {
    let ports = config.get_ports();
    ports.get(i).or_else(|| ports.first()).copied().unwrap_or(5432)
}

/// `config` with only `host` (at `port`): every setting a node's URL may
/// carry, copied.
fn single_host(config: &Config, host: &Host, port: u16) -> Config {
    let mut one = Config::new();
    match host {
        Host::Tcp(name) => one.host(name),
        #[cfg(unix)]
        Host::Unix(path) => one.host_path(path),
    };
    one.port(port);
    if let Some(user) = config.get_user() {
        one.user(user);
    }
    if let Some(password) = config.get_password() {
        one.password(password);
    }
    if let Some(dbname) = config.get_dbname() {
        one.dbname(dbname);
    }
    if let Some(options) = config.get_options() {
        one.options(options);
    }
    if let Some(name) = config.get_application_name() {
        one.application_name(name);
    }
    if let Some(timeout) = config.get_connect_timeout() {
        one.connect_timeout(*timeout);
    }
    if let Some(timeout) = config.get_tcp_user_timeout() {
        one.tcp_user_timeout(*timeout);
    }
    one.keepalives(config.get_keepalives());
    one.keepalives_idle(config.get_keepalives_idle());
    if let Some(interval) = config.get_keepalives_interval() {
        one.keepalives_interval(interval);
    }
    if let Some(retries) = config.get_keepalives_retries() {
        one.keepalives_retries(retries);
    }
    one.target_session_attrs(config.get_target_session_attrs());
    one.ssl_mode(config.get_ssl_mode());
    one.channel_binding(config.get_channel_binding());
    one
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_host_keeps_every_setting_and_gets_its_port() {
        let config: Config = "host=10.0.0.1,10.0.0.2 port=5432,6432 user=u password=p dbname=d \
             application_name=a connect_timeout=3 target_session_attrs=read-write options='-c x=1'"
            .parse()
            .unwrap();
        let second = single_host(&config, &config.get_hosts()[1], port_for(&config, 1));
        assert_eq!(second.get_hosts(), &[Host::Tcp("10.0.0.2".into())]);
        assert_eq!(second.get_ports(), &[6432]);
        assert_eq!(second.get_user(), Some("u"));
        assert_eq!(second.get_password(), Some(&b"p"[..]));
        assert_eq!(second.get_dbname(), Some("d"));
        assert_eq!(second.get_application_name(), Some("a"));
        assert_eq!(second.get_options(), Some("-c x=1"));
        assert_eq!(second.get_connect_timeout(), Some(&Duration::from_secs(3)));
        assert_eq!(second.get_target_session_attrs(), tokio_postgres::config::TargetSessionAttrs::ReadWrite);
        let one_port: Config = "host=a,b port=7000".parse().unwrap();
        assert_eq!(port_for(&one_port, 1), 7000);
    }
}
