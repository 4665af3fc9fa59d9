//! Issuing and revoking the service's bearer tokens (sql/api_tokens.sql),
//! as a role that owns the table (the owner, or an operator's superuser).
//! A token is printed once, when it is made; only its hash is stored.

use atelier_schema::tokens::{self, Scope};
use rand::distr::{Alphanumeric, SampleString};

use crate::db::{connect, ToolError, ToolResult};

/// A new random token: `atl_` and 32 alphanumerics (about 190 bits).
pub fn generate() -> String {
    format!("{}{}", tokens::PREFIX, Alphanumeric.sample_string(&mut rand::rng(), tokens::SECRET_CHARS))
}

/// Scope names as the table stores them.
fn names(scopes: &[Scope]) -> Vec<&'static str> {
    scopes.iter().map(|scope| scope.name()).collect()
}

/// Stores `token` (its hash) under `name` with `scopes` on the primary at
/// `admin_url`. Storing the same token again changes nothing (the local
/// cluster's development token is registered in every database it
/// provisions). Returns the new row's id, or None if it was there.
pub async fn register(admin_url: &str, name: &str, token: &str, scopes: &[Scope]) -> ToolResult<Option<i64>> {
    if !tokens::well_formed(token) {
        return Err(ToolError::msg("a token is atl_ followed by 32 letters and digits"));
    }
    if scopes.is_empty() {
        return Err(ToolError::msg("a token needs at least one scope"));
    }
    let client = connect(admin_url).await?;
    let hash = tokens::hash(token).to_vec();
    let row = client.query_opt(tokens::INSERT_TOKEN, &[&name, &names(scopes), &hash, &tokens::hint(token)]).await?;
    Ok(row.map(|row| row.get(0)))
}

/// A new token with `scopes`, stored; returns (id, token).
pub async fn create(admin_url: &str, name: &str, scopes: &[Scope]) -> ToolResult<(i64, String)> {
    let token = generate();
    let id = register(admin_url, name, &token, scopes).await?.ok_or_else(|| ToolError::msg("token collision"))?;
    Ok((id, token))
}

/// One token as `atelier token list` shows it (never the token).
pub struct Listed {
    pub id: i64,
    pub name: String,
    pub scopes: String,
    pub hint: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

pub async fn list(admin_url: &str) -> ToolResult<Vec<Listed>> {
    let client = connect(admin_url).await?;
    let rows = client.query(tokens::LIST_TOKENS, &[]).await?;
    Ok(rows
        .iter()
        .map(|row| Listed {
            id: row.get(0),
            name: row.get(1),
            scopes: row.get(2),
            hint: row.get(3),
            created_at: row.get(4),
            revoked_at: row.get(5),
        })
        .collect())
}

/// Revokes the token with this id or hint; returns the ids revoked (none
/// when no live token matches).
pub async fn revoke(admin_url: &str, id_or_hint: &str) -> ToolResult<Vec<i64>> {
    let client = connect(admin_url).await?;
    let rows = client.query(tokens::REVOKE_TOKEN, &[&id_or_hint]).await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_well_formed_and_distinct() {
        let (a, b) = (generate(), generate());
        assert!(tokens::well_formed(&a), "{a}");
        assert_ne!(a, b);
        assert_ne!(tokens::hint(&a), tokens::hint(&b));
    }
}
