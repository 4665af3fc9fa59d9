//! Who may do what. Reads are public unless `ATELIER_READ_REQUIRES_TOKEN`
//! makes the catalog private; every write needs `Authorization: Bearer
//! <token>` with the scope the endpoint names (`http/routes.rs`). Tokens
//! live on the primary as SHA-256 hashes (sql/api_tokens.sql); each server
//! holds the live ones in memory and reloads them every
//! `ATELIER_TOKEN_RELOAD_MS`, so a token issued or revoked takes effect on
//! every server within that bound, without a restart, and a check costs a
//! hash and a map lookup, never a database round trip.
//!
//! Failed checks (401) are counted per client address (`limiter.rs`):
//! past the burst, that address gets 429 without its token even being
//! looked at, until it has waited. The token itself is never logged,
//! counted or echoed.

mod limiter;
mod settings;
pub use settings::AuthSettings;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use atelier_schema::tokens::{self, Scope};
use hyper::header::{HeaderMap, AUTHORIZATION};

use crate::config::Config;
use crate::db::Node;
use crate::error::ApiError;
use crate::metrics::{Counter, Metrics};

use limiter::FailureLimiter;

/// One live token, as a server holds it.
struct Held {
    hash: [u8; 32],
    scopes: Vec<Scope>,
}

impl Held {
    fn allows(&self, need: Scope) -> bool {
        self.scopes.contains(&need)
            || (need == Scope::Read && self.scopes.iter().any(|s| matches!(s, Scope::CatalogWrite | Scope::StockWrite)))
    }
}

/// The live tokens by hint (their first characters): a lookup finds the
/// one or two rows whose hash is then compared in constant time.
#[derive(Default)]
struct TokenSet {
    by_hint: HashMap<String, Vec<Held>>,
}

impl TokenSet {
    fn len(&self) -> usize {
        self.by_hint.values().map(Vec::len).sum()
    }

    fn find(&self, token: &str) -> Option<&Held> {
        let hash = tokens::hash(token);
        self.by_hint.get(tokens::hint(token))?.iter().find(|held| same(&held.hash, &hash))
    }
}

/// Equal without an early exit, so the time taken says nothing of where two
/// hashes first differ.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

/// The server's credentials: the live tokens (None until the first load
/// succeeds: writes then answer 503, not a misleading 401) and the limiter
/// of failed attempts.
pub(crate) struct Authorizer {
    tokens: RwLock<Option<Arc<TokenSet>>>,
    limiter: FailureLimiter,
    read_requires_token: bool,
}

impl Authorizer {
    pub fn new(config: &Config) -> Authorizer {
        Authorizer {
            tokens: RwLock::new(None),
            limiter: FailureLimiter::new(
                config.auth.failures_burst,
                config.auth.failures_per_minute,
                config.auth.clients_max,
            ),
            read_requires_token: config.auth.read_requires_token,
        }
    }

    /// Checks the request's credential against `need` (None: a public
    /// route). Reads need `read` only when the catalog is private; then a
    /// read's junk `Authorization` is refused like a write's.
    pub fn authorize(
        &self,
        need: Option<Scope>,
        headers: &HeaderMap,
        client: IpAddr,
        metrics: &Metrics,
    ) -> Result<(), ApiError> {
        let Some(need) = need.filter(|need| *need != Scope::Read || self.read_requires_token) else {
            return Ok(());
        };
        if let Some(wait) = self.limiter.refused_for(client) {
            metrics.count(Counter::AuthLimited);
            return Err(ApiError::TooManyRequests { retry_after: wait });
        }
        let Some(token) = bearer(headers) else {
            return Err(self.failed(client, metrics, Counter::AuthMissing, false));
        };
        if !tokens::well_formed(token) {
            return Err(self.failed(client, metrics, Counter::AuthInvalid, true));
        }
        let set = self.tokens.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let Some(set) = set else {
            return Err(ApiError::Unavailable("tokens not loaded from the primary yet".into()));
        };
        match set.find(token) {
            None => Err(self.failed(client, metrics, Counter::AuthInvalid, true)),
            Some(held) if held.allows(need) => Ok(()),
            Some(_) => {
                metrics.count(Counter::AuthForbidden);
                Err(ApiError::Forbidden { scope: need.name() })
            }
        }
    }

    fn failed(&self, client: IpAddr, metrics: &Metrics, counter: Counter, presented: bool) -> ApiError {
        self.limiter.record_failure(client);
        metrics.count(counter);
        ApiError::Unauthorized { presented }
    }

    /// Live tokens held, for /readyz; None before the first load.
    pub fn held(&self) -> Option<usize> {
        let set = self.tokens.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        set.as_ref().map(|set| set.len())
    }

    fn replace(&self, set: TokenSet) {
        *self.tokens.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Arc::new(set));
    }
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Loads the live tokens from the primary now, then every `every`, for the
/// life of the server. A failed load keeps the set held (a primary that is
/// down cannot take writes anyway, and its tokens were valid a moment ago);
/// each load has the write deadline.
pub(crate) async fn keep_loaded(authorizer: &Authorizer, primary: &Node, config: &Config) {
    let mut tick = tokio::time::interval(config.auth.token_reload);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        match load(primary, config.write.deadline, config.auth.tokens_max).await {
            Ok(set) => {
                if failing || authorizer.held().is_none() {
                    tracing::info!(tokens = set.len(), "tokens loaded");
                }
                failing = false;
                authorizer.replace(set);
            }
            Err(error) => {
                if !failing {
                    tracing::warn!(%error, "cannot load tokens from the primary; keeping the ones held");
                }
                failing = true;
            }
        }
    }
}

async fn load(primary: &Node, within: Duration, max: usize) -> Result<TokenSet, ApiError> {
    let limit = i64::try_from(max).unwrap_or(i64::MAX);
    let load = async {
        let mut connection = primary.checkout(within).await?;
        connection
            .exchange(async |client| {
                let statement = client.prepare_cached(tokens::LIVE_TOKENS).await?;
                Ok(client.query(&statement, &[&limit]).await?)
            })
            .await
    };
    let rows = tokio::time::timeout(within, load)
        .await
        .map_err(|_| ApiError::Unavailable("token load timed out".into()))??;
    let mut set = TokenSet::default();
    for row in rows {
        let hint: String = row.try_get(0)?;
        let hash: Vec<u8> = row.try_get(1)?;
        let names: Vec<String> = row.try_get(2)?;
        let Ok(hash) = <[u8; 32]>::try_from(hash.as_slice()) else { continue };
        let scopes = names.iter().filter_map(|name| Scope::parse(name)).collect();
        set.by_hint.entry(hint).or_default().push(Held { hash, scopes });
    }
    if set.len() >= max {
        tracing::warn!(max, "ATELIER_TOKENS_MAX live tokens reached; newer tokens are not honoured");
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(c: char) -> String {
        format!("{}{}", tokens::PREFIX, c.to_string().repeat(tokens::SECRET_CHARS))
    }

    fn set_of(token: &str, scopes: &[Scope]) -> TokenSet {
        let mut set = TokenSet::default();
        let held = Held { hash: tokens::hash(token), scopes: scopes.to_vec() };
        set.by_hint.insert(tokens::hint(token).to_string(), vec![held]);
        set
    }

    #[test]
    fn a_token_is_found_by_its_hash_and_scopes_are_enforced() {
        let good = token('a');
        let set = set_of(&good, &[Scope::StockWrite]);
        let held = set.find(&good).expect("found");
        assert!(held.allows(Scope::StockWrite));
        assert!(held.allows(Scope::Read), "a write scope implies read");
        assert!(!held.allows(Scope::CatalogWrite));
        // Same hint, other secret: not found.
        let mut forged = good.clone();
        forged.pop();
        forged.push('b');
        assert!(set.find(&forged).is_none());
        assert!(set.find(&token('c')).is_none());
    }

    #[test]
    fn bearer_parses_the_scheme_case_insensitively() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(AUTHORIZATION, "bearer  abc ".parse().unwrap());
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&headers), None);
        headers.insert(AUTHORIZATION, "Bearer".parse().unwrap());
        assert_eq!(bearer(&headers), None);
    }

    #[test]
    fn same_compares_every_byte() {
        let a = [7u8; 32];
        let mut b = a;
        assert!(same(&a, &b));
        b[31] ^= 1;
        assert!(!same(&a, &b));
        b = a;
        b[0] ^= 0x80;
        assert!(!same(&a, &b));
    }
}
