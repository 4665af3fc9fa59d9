//! The schema as versioned migrations. Version numbers are shared by every
//! node, so a replica's history is the primary's with the primary-only
//! versions left out: replicas get the read model and nothing that needs
//! the write model.

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

/// One migration: refinery's `V<version>__<name>`.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
    /// Applied on the primary only.
    pub primary_only: bool,
}

impl Migration {
    /// refinery's file stem, e.g. `V1__write_schema`.
    pub fn refinery_name(&self) -> String {
        format!("V{}__{}", self.version, self.name)
    }
}

/// Every migration in order.
pub const MIGRATIONS: [Migration; 6] = [
    Migration { version: 1, name: "write_schema", sql: include_str!("../../sql/write_schema.sql"), primary_only: true },
    Migration { version: 2, name: "read_views", sql: include_str!("../../sql/read_views.sql"), primary_only: false },
    Migration { version: 3, name: "triggers", sql: include_str!("../../sql/triggers.sql"), primary_only: true },
    Migration { version: 4, name: "write_api", sql: include_str!("../../sql/write_api.sql"), primary_only: true },
    Migration { version: 5, name: "read_access", sql: include_str!("../../sql/read_access.sql"), primary_only: false },
    Migration { version: 6, name: "write_access", sql: include_str!("../../sql/write_access.sql"), primary_only: true },
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
    MIGRATIONS.iter().filter(move |m| role == Role::Primary || !m.primary_only)
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
        assert_eq!(replica, ["V2__read_views", "V5__read_access"]);
        assert_eq!(for_role(Role::Primary).count(), MIGRATIONS.len());
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
