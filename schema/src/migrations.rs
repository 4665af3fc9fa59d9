//! The schema as versioned migrations. Version numbers are shared by every
//! node, so a node's history is the full list with the other role's
//! versions left out: replicas get the read model and nothing that needs
//! the write model; only replicas announce the changes they apply.

use std::fmt;

/// What a database node is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Holds the write model, the triggers and the write functions, and
    /// publishes the read model.
    Primary,
    /// Holds only the read model, filled by its subscription.
    Replica,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Primary => "primary",
            Role::Replica => "replica",
        })
    }
}

/// Which nodes a migration is applied on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nodes {
    Every,
    PrimaryOnly,
    ReplicasOnly,
}

/// One migration: refinery's `V<version>__<name>`.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
    pub nodes: Nodes,
}

impl Migration {
    /// refinery's file stem, e.g. `V1__write_schema`.
    pub fn refinery_name(&self) -> String {
        format!("V{}__{}", self.version, self.name)
    }
}

/// Every migration in order.
pub const MIGRATIONS: [Migration; 13] = [
    Migration {
        version: 1,
        name: "write_schema",
        sql: include_str!("../../sql/write_schema.sql"),
        nodes: Nodes::PrimaryOnly,
    },
    Migration { version: 2, name: "read_views", sql: include_str!("../../sql/read_views.sql"), nodes: Nodes::Every },
    Migration { version: 3, name: "triggers", sql: include_str!("../../sql/triggers.sql"), nodes: Nodes::PrimaryOnly },
    Migration {
        version: 4,
        name: "write_api",
        sql: include_str!("../../sql/write_api.sql"),
        nodes: Nodes::PrimaryOnly,
    },
    Migration { version: 5, name: "read_access", sql: include_str!("../../sql/read_access.sql"), nodes: Nodes::Every },
    Migration {
        version: 6,
        name: "write_access",
        sql: include_str!("../../sql/write_access.sql"),
        nodes: Nodes::PrimaryOnly,
    },
    Migration {
        version: 7,
        name: "read_freshness",
        sql: include_str!("../../sql/read_freshness.sql"),
        nodes: Nodes::Every,
    },
    Migration {
        version: 8,
        name: "read_notices",
        sql: include_str!("../../sql/read_notices.sql"),
        nodes: Nodes::ReplicasOnly,
    },
    Migration { version: 9, name: "read_cards", sql: include_str!("../../sql/read_cards.sql"), nodes: Nodes::Every },
    Migration {
        version: 10,
        name: "api_tokens",
        sql: include_str!("../../sql/api_tokens.sql"),
        nodes: Nodes::PrimaryOnly,
    },
    Migration {
        version: 11,
        name: "reconcile_access",
        sql: include_str!("../../sql/reconcile_access.sql"),
        nodes: Nodes::PrimaryOnly,
    },
    Migration {
        version: 12,
        name: "read_subscription",
        sql: include_str!("../../sql/read_subscription.sql"),
        nodes: Nodes::ReplicasOnly,
    },
    Migration {
        version: 13,
        name: "write_batch",
        sql: include_str!("../../sql/write_batch.sql"),
        nodes: Nodes::PrimaryOnly,
    },
];

/// Creates or updates the login roles (a superuser runs it before the
/// migrations, which grant to these roles). Passwords are session settings
/// `atelier.<role>_password`; see the file.
pub const ROLES_SQL: &str = include_str!("../../sql/roles.sql");

/// Grants on PostgreSQL's own catalog objects that the owner's functions
/// need, run by a superuser in each catalog database before the migrations.
pub const CATALOG_GRANTS_SQL: &str = include_str!("../../sql/catalog_grants.sql");

/// The migrations a node of `role` gets, in order.
pub fn for_role(role: Role) -> impl Iterator<Item = &'static Migration> {
    MIGRATIONS.iter().filter(move |m| match m.nodes {
        Nodes::Every => true,
        Nodes::PrimaryOnly => role == Role::Primary,
        Nodes::ReplicasOnly => role == Role::Replica,
    })
}

/// The publication every replica subscribes to, and the SQL that creates it.
pub const PUBLICATION_NAME: &str = "atelier_read_model";
pub const PUBLICATION_SQL: &str = include_str!("../../replication/publication.sql");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::READ_MODEL_TABLES;

    #[test]
    fn replicas_get_only_the_read_model() {
        let replica: Vec<String> = for_role(Role::Replica).map(Migration::refinery_name).collect();
        assert_eq!(
            replica,
            [
                "V2__read_views",
                "V5__read_access",
                "V7__read_freshness",
                "V8__read_notices",
                "V9__read_cards",
                "V12__read_subscription"
            ]
        );
        let primary: Vec<String> = for_role(Role::Primary).map(Migration::refinery_name).collect();
        assert!(!primary.contains(&"V8__read_notices".to_string()), "the primary announces nothing");
        assert_eq!(primary.len(), MIGRATIONS.len() - 2);
    }

    #[test]
    fn the_publication_lists_exactly_the_read_model() {
        for table in READ_MODEL_TABLES {
            assert!(PUBLICATION_SQL.contains(&format!("    {table}")), "{table} is published");
        }
        let listed = PUBLICATION_SQL.lines().filter(|l| l.starts_with("    ")).count();
        assert_eq!(listed, READ_MODEL_TABLES.len(), "nothing else is published");
    }
}
