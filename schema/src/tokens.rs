//! The bearer tokens of `sql/api_tokens.sql`: their scopes, their shape and
//! how they are hashed, shared by the service (which checks them) and the
//! tools (which issue them), so both agree on every byte.

use sha2::{Digest, Sha256};

/// What a token lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Reads, when the operator makes the catalog private. Either write
    /// scope implies it.
    Read,
    /// Products, styles, skus and related lists: a shop's back office.
    CatalogWrite,
    /// Stock movements only: what a checkout service gets.
    StockWrite,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::CatalogWrite, Scope::StockWrite];

    /// The name in the table, on the command line and in error messages.
    pub const fn name(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::CatalogWrite => "catalog:write",
            Scope::StockWrite => "stock:write",
        }
    }

    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.name() == name)
    }
}

/// Every token starts with this, so a leaked one is easy to recognise (and
/// to search for in logs and repositories).
pub const PREFIX: &str = "atl_";
/// Random characters after the prefix: 32 alphanumerics, about 190 bits.
pub const SECRET_CHARS: usize = 32;
/// Characters of a token kept in clear as its hint (prefix included).
pub const HINT_CHARS: usize = 12;

/// Does `text` have a token's shape? (Anything else is refused without a
/// lookup.)
pub fn well_formed(text: &str) -> bool {
    text.len() == PREFIX.len() + SECRET_CHARS
        && text.starts_with(PREFIX)
        && text[PREFIX.len()..].bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The SHA-256 of a token: all the table keeps of it.
pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The token's hint: its first characters, which identify it in a list and
/// let a server find its row without a search.
pub fn hint(token: &str) -> &str {
    token.get(..HINT_CHARS).unwrap_or(token)
}

/// On the primary, as the writer: every live token (the servers' set).
pub const LIVE_TOKENS: &str =
    "select hint, token_hash, scopes, name from api_token where revoked_at is null order by id limit $1";
/// Issue a token: name, scopes, hash, hint.
pub const INSERT_TOKEN: &str = "insert into api_token (name, scopes, token_hash, hint) values ($1, $2, $3, $4)
     on conflict (token_hash) do nothing returning id";
/// Every token, revoked ones too, for `atelier token list`.
pub const LIST_TOKENS: &str = "select id, name, array_to_string(scopes, ','), hint, created_at::text,
     revoked_at::text from api_token order by id";
/// Revoke by id or by hint; answers the ids revoked.
pub const REVOKE_TOKEN: &str = "update api_token set revoked_at = now()
     where revoked_at is null and (id::text = $1 or hint = $1) returning id";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_and_match_the_table() {
        let sql = include_str!("../../sql/api_tokens.sql");
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.name()), Some(scope));
            assert!(sql.contains(&format!("'{}'", scope.name())), "{} is allowed by the table", scope.name());
        }
        assert_eq!(Scope::parse("admin"), None);
    }

    #[test]
    fn shape_hint_and_hash() {
        let token = format!("{PREFIX}{}", "a1".repeat(SECRET_CHARS / 2));
        assert!(well_formed(&token));
        assert!(!well_formed(&token[1..]));
        assert!(!well_formed(&format!("{token}x")));
        assert!(!well_formed(&format!("{PREFIX}{}", "-".repeat(SECRET_CHARS))));
        assert_eq!(hint(&token), "atl_a1a1a1a1");
        assert_eq!(hint(&token).len(), HINT_CHARS);
        // SHA-256 of "abc", the standard's own example.
        assert_eq!(hash("abc")[..4], [0xba, 0x78, 0x16, 0xbf]);
    }
}
