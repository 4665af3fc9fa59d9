//! `atelier token create|list|revoke`: the bearer tokens writes need
//! (sql/api_tokens.sql), managed on the primary as its owner (or the local
//! cluster's superuser, the default). A token is printed once, by
//! `create`, on standard output and nowhere else; servers honour a new or
//! revoked token within ATELIER_TOKEN_RELOAD_MS.

use atelier_schema::local;
use atelier_schema::tokens::Scope;
use atelier_tools::cluster::LocalCluster;
use atelier_tools::{tokens, ToolError, ToolResult};
use clap::{Args, Subcommand};

#[derive(Args)]
pub struct TokenCommand {
    #[command(subcommand)]
    action: Action,
    /// libpq-style connection string of the primary, as the owner role or
    /// a superuser.
    #[arg(long, env = "ATELIER_ADMIN_PRIMARY_URL", default_value_t = local::primary_url(local::DATABASE), global = true)]
    primary_url: String,
}

#[derive(Subcommand)]
enum Action {
    /// Issue a token and print it (once: only its hash is kept).
    Create {
        /// Who holds it, e.g. "back office" or "checkout".
        #[arg(long)]
        name: String,
        /// read, catalog:write, stock:write (repeat or comma-separate).
        #[arg(long = "scope", value_delimiter = ',', required = true, value_parser = parse_scope)]
        scopes: Vec<Scope>,
    },
    /// Every token issued: id, name, scopes, hint, created, revoked.
    List,
    /// Revoke a token by its id or its hint (as `list` shows them).
    Revoke { id_or_hint: String },
    /// Print the local cluster's development token (from its secrets.env),
    /// for scripts: `token=$(atelier token local)`.
    Local,
}

fn parse_scope(name: &str) -> Result<Scope, String> {
    Scope::parse(name.trim()).ok_or_else(|| {
        let known: Vec<&str> = Scope::ALL.iter().map(|s| s.name()).collect();
        format!("unknown scope {name:?}; the scopes are {}", known.join(", "))
    })
}

pub async fn run(command: TokenCommand) -> ToolResult<()> {
    let url = &command.primary_url;
    match command.action {
        Action::Create { name, scopes } => {
            let (id, token) = tokens::create(url, &name, &scopes).await?;
            let names: Vec<&str> = scopes.iter().map(|s| s.name()).collect();
            eprintln!("token {id} ({name}; {}) issued. It is shown once; keep it in a secret store:", names.join(", "));
            println!("{token}");
        }
        Action::List => {
            println!("{:>4}  {:<12}  {:<28}  {:<25}  {:<25}  name", "id", "hint", "scopes", "created", "revoked");
            for t in tokens::list(url).await? {
                let revoked = t.revoked_at.as_deref().unwrap_or("-");
                println!(
                    "{:>4}  {:<12}  {:<28}  {:<25}  {:<25}  {}",
                    t.id, t.hint, t.scopes, t.created_at, revoked, t.name
                );
            }
        }
        Action::Local => {
            let secrets = LocalCluster::existing_secrets()?;
            let token = secrets.as_ref().and_then(|s| s.token()).ok_or_else(|| {
                ToolError::msg("no local cluster token: run `atelier cluster up` (or set ATELIER_TOKEN)")
            })?;
            println!("{token}");
        }
        Action::Revoke { id_or_hint } => {
            let revoked = tokens::revoke(url, &id_or_hint).await?;
            if revoked.is_empty() {
                return Err(ToolError::msg(format!("no live token has id or hint {id_or_hint:?}")));
            }
            println!("revoked {revoked:?}; servers refuse it within ATELIER_TOKEN_RELOAD_MS");
        }
    }
    Ok(())
}
