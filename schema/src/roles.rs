//! The login roles of `sql/roles.sql`, and what each is for. The service
//! connects as `WRITER` (primary) and `READER` (replicas); tools that change
//! the schema or bulk-load connect as `OWNER` (or as an operator's
//! superuser on a local cluster); subscriptions log in as `REPLICATOR`.

/// Owns the database and its objects; runs the migrations.
pub const OWNER: &str = "atelier_owner";
/// The service's write pool.
pub const WRITER: &str = "atelier_writer";
/// The service's read pools.
pub const READER: &str = "atelier_reader";
/// Logical replication's login on the primary.
pub const REPLICATOR: &str = "atelier_replicator";

/// Every role, in the order `sql/roles.sql` creates them.
pub const ALL: [&str; 4] = [OWNER, WRITER, READER, REPLICATOR];

/// The session setting that carries `role`'s password into `sql/roles.sql`.
pub fn password_setting(role: &str) -> String {
    format!("atelier.{}_password", role.trim_start_matches("atelier_"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrations::ROLES_SQL;

    #[test]
    fn roles_sql_creates_every_role_from_its_setting() {
        for role in ALL {
            assert!(ROLES_SQL.contains(&format!("('{role}', '{}'", password_setting(role))), "{role}");
        }
    }
}
