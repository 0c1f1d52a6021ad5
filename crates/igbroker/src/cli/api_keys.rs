use std::process::ExitCode;

use clap::Subcommand;
use igbroker_store::Store;
use serde_json::json;

use crate::cli::output::Table;
use crate::config::Config;
use crate::service::api_keys::{self, ApiKeyView};

#[derive(Debug, Subcommand)]
pub enum ApiKeysCommand {
    /// Create a key; it is printed once.
    Create {
        /// A name saying who uses the key.
        #[arg(long)]
        name: String,
        /// admin, apps:write, connect, accounts:read, accounts:write, tokens:read, graph, publish, audit:read
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// Limit the key to these apps.
        #[arg(long = "app")]
        apps: Vec<String>,
    },
    /// List keys (never their values).
    List,
    /// Revoke a key.
    Revoke {
        /// The key id (key_…).
        id: String,
    },
}

pub async fn run(config: &Config, command: ApiKeysCommand, json: bool) -> anyhow::Result<ExitCode> {
    let store = Store::open(&config.database_url).await?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    match command {
        ApiKeysCommand::Create { name, scopes, apps } => {
            let (row, key) = api_keys::create(&store, &name, &scopes, &apps, now)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let entry = igbroker_store::AuditEntry {
                id: igbroker_core::PrefixedId::generate(igbroker_core::IdKind::Audit).into_string(),
                at: now,
                actor: super::cli_actor(),
                action: "api_key.created".into(),
                account_id: None,
                app_id: None,
                detail: json!({"key_id": row.id}).to_string(),
            };
            store.append_audit(&entry).await?;
            if json {
                let mut v = serde_json::to_value(ApiKeyView::from_row(&row))?;
                v["key"] = serde_json::Value::String(key);
                println!("{v}");
            } else {
                println!(
                    "created API key {} ({}) with scopes {}",
                    row.id, row.name, row.scopes
                );
                println!("{key}");
                println!("(shown once: store it now)");
            }
        }
        ApiKeysCommand::List => {
            let rows = store.list_api_keys(None, 10_000).await?;
            let views: Vec<ApiKeyView> = rows.iter().map(ApiKeyView::from_row).collect();
            if json {
                println!("{}", json!({"data": views}));
            } else {
                let mut table = Table::new(&["id", "name", "scopes", "apps", "revoked"]);
                for v in views {
                    table.row([
                        v.id,
                        v.name,
                        v.scopes.join(","),
                        v.app_ids.join(","),
                        v.revoked_at.unwrap_or_default(),
                    ]);
                }
                table.print("no API keys");
            }
        }
        ApiKeysCommand::Revoke { id } => {
            if !store.revoke_api_key(&id, now).await? {
                anyhow::bail!("no live API key {id}");
            }
            if json {
                println!("{}", json!({"revoked": id}));
            } else {
                println!("revoked {id}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
