//! The local cluster's layout (`atelier cluster up`): one primary and two
//! replicas on loopback. The cluster tool starts these nodes, and the
//! service's default configuration points at them, so a fresh checkout
//! runs with no settings at all.

use crate::{roles, Role};

/// One node of the local cluster.
#[derive(Debug, Clone, Copy)]
pub struct Node {
    pub name: &'static str,
    pub port: u16,
    pub role: Role,
}

impl Node {
    /// libpq connection string for database `dbname` on this node, as the
    /// `postgres` superuser (the operator's own access to the local cluster).
    pub fn url(&self, dbname: &str) -> String {
        self.url_as(dbname, "postgres")
    }

    /// libpq connection string for database `dbname` on this node as
    /// `user`, without a password (`atelier_tools::cluster` adds the local
    /// cluster's).
    pub fn url_as(&self, dbname: &str, user: &str) -> String {
        format!("host=127.0.0.1 port={} user={user} dbname={dbname}", self.port)
    }
}

/// The nodes, primary first. Ports are in the user range and away from
/// PostgreSQL's 5432, so a system PostgreSQL can run beside them.
pub const NODES: [Node; 3] = [
    Node { name: "primary", port: 54320, role: Role::Primary },
    Node { name: "replica1", port: 54321, role: Role::Replica },
    Node { name: "replica2", port: 54322, role: Role::Replica },
];

/// The catalog database `atelier cluster up` creates on every node.
pub const DATABASE: &str = "atelier";

pub fn primary() -> Node {
    NODES[0]
}

pub fn replicas() -> &'static [Node] {
    &NODES[1..]
}

pub fn primary_url(dbname: &str) -> String {
    primary().url(dbname)
}

pub fn replica_urls(dbname: &str) -> Vec<String> {
    replicas().iter().map(|node| node.url(dbname)).collect()
}

/// What the service connects to by default: the writer role on the primary.
pub fn service_primary_url(dbname: &str) -> String {
    primary().url_as(dbname, roles::WRITER)
}

/// What the service connects to by default: the reader role on each replica.
pub fn service_replica_urls(dbname: &str) -> Vec<String> {
    replicas().iter().map(|node| node.url_as(dbname, roles::READER)).collect()
}
