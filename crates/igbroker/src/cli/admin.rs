//! Administrative verbs over the broker's state: apps, token, audit.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use clap::Subcommand;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::cli::{cli_actor, fail};
use crate::service::apps::{self, AppView, NewApp};
use crate::service::audit;
use crate::state::AppState;
use crate::util::rfc3339;

#[derive(Debug, Subcommand)]
pub enum AppsCommand {
    /// Register an Instagram app. The client secret is read from standard input,
    /// so that it never shows in the process list or the shell history.
    Add {
        #[arg(long)]
        name: String,
        /// The Instagram App ID (not the Meta App ID).
        #[arg(long)]
        client_id: String,
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        #[arg(long)]
        redirect_uri: Option<String>,
        #[arg(long = "return-origin")]
        return_origins: Vec<String>,
        #[arg(long)]
        webhook_url: Option<String>,
    },
    List,
    Show {
        id: String,
    },
    /// Change an app. Absent options stay as they are; `--client-secret-stdin`
    /// reads a new Instagram App Secret from standard input.
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        client_secret_stdin: bool,
        /// Replaces the scopes asked for at the next connect (repeat the option).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        #[arg(long)]
        redirect_uri: Option<String>,
        /// Replaces the allowed return origins (repeat the option).
        #[arg(long = "return-origin")]
        return_origins: Vec<String>,
        #[arg(long, conflicts_with = "no_webhook")]
        webhook_url: Option<String>,
        /// Stop sending webhooks for this app.
        #[arg(long)]
        no_webhook: bool,
        /// Issue a new webhook signing secret (shown once).
        #[arg(long)]
        rotate_webhook_secret: bool,
    },
    /// Remove an app (refused while it has connected accounts).
    Remove {
        id: String,
    },
    /// Check an app's registration for the mistakes Instagram punishes.
    Doctor {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Entries, oldest first.
    List {
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        action: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Walk the hash chain: any edited, removed or truncated entry is found.
    Verify,
    /// Link an audit log written before the ring had an audit key under that key, after
    /// checking it (once; a keyed log is left alone).
    Relink,
}

fn read_secret() -> anyhow::Result<SecretString> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Instagram App Secret: ");
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let secret = line.trim().to_string();
    if secret.is_empty() {
        anyhow::bail!(
            "no client secret on standard input: pipe the Instagram App Secret in (e.g. `< secret.txt`)"
        );
    }
    Ok(SecretString::from(secret))
}

pub async fn apps(
    state: &AppState,
    command: AppsCommand,
    json_out: bool,
) -> anyhow::Result<ExitCode> {
    match command {
        AppsCommand::Add {
            name,
            client_id,
            scopes,
            redirect_uri,
            return_origins,
            webhook_url,
        } => {
            let client_secret = read_secret()?;
            let req = NewApp {
                name,
                kind: None,
                client_id,
                client_secret,
                scopes,
                redirect_uri,
                return_origins,
                webhook_url,
            };
            let (row, webhook_secret) =
                apps::create(state, &cli_actor(), req).await.map_err(fail)?;
            let mut view = apps::shown_once(&row, webhook_secret).map_err(fail)?;
            let (deauthorize, deletion) =
                crate::service::meta::callback_urls(&state.config().public_url, &row.id);
            if json_out {
                view["callback_urls"] =
                    json!({"deauthorize": deauthorize, "data_deletion": deletion});
                println!("{view}");
            } else {
                println!(
                    "registered app {} ({}); redirect URI {}",
                    row.id, row.name, row.redirect_uri
                );
                if let Some(s) = view.get("webhook_secret").and_then(|v| v.as_str()) {
                    println!("webhook secret (shown once): {s}");
                }
                print_callback_urls(&deauthorize, &deletion);
            }
        }
        AppsCommand::List => {
            let rows = apps::list(state, None, None, 10_000).await.map_err(fail)?;
            let views: Vec<AppView> = rows.iter().map(AppView::from_row).collect();
            if json_out {
                println!("{}", json!({"data": views}));
            } else {
                for v in views {
                    println!(
                        "{}  {}  client_id {}  {}",
                        v.id,
                        v.name,
                        v.client_id,
                        v.scopes.join(",")
                    );
                }
            }
        }
        AppsCommand::Show { id } => {
            let row = apps::get(state, &id).await.map_err(fail)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&AppView::from_row(&row))?
            );
        }
        AppsCommand::Update {
            id,
            name,
            client_secret_stdin,
            scopes,
            redirect_uri,
            return_origins,
            webhook_url,
            no_webhook,
            rotate_webhook_secret,
        } => {
            let changes = apps::AppChanges {
                name,
                client_secret: if client_secret_stdin {
                    Some(read_secret()?)
                } else {
                    None
                },
                scopes: (!scopes.is_empty()).then_some(scopes),
                redirect_uri,
                return_origins: (!return_origins.is_empty()).then_some(return_origins),
                webhook_url: if no_webhook {
                    Some(None)
                } else {
                    webhook_url.map(Some)
                },
                rotate_webhook_secret,
                ..apps::AppChanges::default()
            };
            let updated = apps::update(state, &cli_actor(), &id, changes)
                .await
                .map_err(fail)?;
            let view =
                apps::shown_once(&updated.row, updated.webhook_secret.clone()).map_err(fail)?;
            if json_out {
                println!("{view}");
            } else {
                println!("updated app {id}: {}", updated.changed.join(", "));
                if let Some(s) = &updated.webhook_secret {
                    println!("webhook secret (shown once): {s}");
                }
            }
        }
        AppsCommand::Remove { id } => {
            apps::delete(state, &cli_actor(), &id).await.map_err(fail)?;
            println!("removed {id}");
        }
        AppsCommand::Doctor { id } => {
            let d = apps::doctor(state, &id).await.map_err(fail)?;
            let (problems, notes) = (&d.problems, &d.notes);
            let (deauthorize, deletion) =
                crate::service::meta::callback_urls(&state.config().public_url, &d.app_id);
            if json_out {
                let mut v = serde_json::to_value(&d)?;
                v["callback_urls"] = json!({"deauthorize": deauthorize, "data_deletion": deletion});
                println!("{v}");
            } else {
                print_callback_urls(&deauthorize, &deletion);
                for n in notes {
                    println!("note: {n}");
                }
                for p in problems {
                    println!("problem: {p}");
                }
                if problems.is_empty() {
                    println!("{}: no problem found", d.app_id);
                }
            }
            if !problems.is_empty() {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What to paste into the App Dashboard (Instagram > API setup with Instagram login >
/// Business login settings).
fn print_callback_urls(deauthorize: &str, deletion: &str) {
    println!("register in the App Dashboard (Business login settings):");
    println!("  Deauthorize callback URL:   {deauthorize}");
    println!("  Data deletion request URL:  {deletion}");
}

pub async fn token(
    state: &AppState,
    account_id: &str,
    reveal: bool,
    json_out: bool,
) -> anyhow::Result<ExitCode> {
    if reveal {
        let (acc, token) = crate::service::tokens::read_token(state, account_id, &cli_actor())
            .await
            .map_err(fail)?;
        if json_out {
            println!(
                "{}",
                json!({"access_token": token.expose_secret(), "expires_at": acc.expires_at.map(rfc3339)})
            );
        } else {
            println!("{}", token.expose_secret());
        }
    } else {
        let acc = crate::service::refresh::require_usable(state, account_id)
            .await
            .map_err(fail)?;
        let expires = acc.expires_at.map(rfc3339).unwrap_or_default();
        if json_out {
            println!(
                "{}",
                json!({"account_id": acc.id, "expires_at": expires, "revealed": false})
            );
        } else {
            println!(
                "account {} has a valid token, expires {expires}; pass --reveal to print it (audited)",
                acc.id
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn audit_cmd(
    state: &AppState,
    command: AuditCommand,
    json_out: bool,
) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::List {
            account,
            action,
            limit,
        } => {
            let rows = state
                .store()
                .list_audit(
                    account.as_deref(),
                    action.as_deref(),
                    None,
                    0,
                    limit.clamp(1, 100_000),
                )
                .await?;
            let data: Vec<_> = rows.iter().map(audit::view).collect();
            if json_out {
                println!("{}", json!({"data": data}));
            } else {
                for r in &rows {
                    println!(
                        "{}  {:<24} {:<22} {}",
                        rfc3339(r.at),
                        r.action,
                        r.actor,
                        r.account_id
                            .as_deref()
                            .or(r.app_id.as_deref())
                            .unwrap_or("")
                    );
                }
            }
        }
        AuditCommand::Relink => {
            if state.vault().ring().audit_key().is_none() {
                anyhow::bail!(
                    "the key ring has no audit key: `igbroker keys add` gives a ring file one; with IGBROKER_KEYS__RING add an `audit:<base64 of 32 bytes>` entry"
                );
            }
            let n = state.store().key_audit_chain().await?;
            if json_out {
                println!("{}", json!({"relinked": n}));
            } else if n == 0 {
                println!(
                    "nothing to do: the audit log is already linked under the audit key (or empty)"
                );
            } else {
                println!("checked and linked {n} audit entries under the audit key");
            }
        }
        AuditCommand::Verify => match state.store().verify_audit().await? {
            igbroker_store::ChainCheck::Intact { entries } => {
                if json_out {
                    println!("{}", json!({"intact": true, "entries": entries}));
                } else {
                    println!("audit log intact: {entries} entries");
                    if let Ok((seq, head)) = state.store().audit_head().await {
                        println!("head: entry {seq} {head}");
                    }
                }
            }
            igbroker_store::ChainCheck::Broken { at_seq, reason } => {
                if json_out {
                    println!(
                        "{}",
                        json!({"intact": false, "at_seq": at_seq, "reason": reason})
                    );
                } else {
                    println!("audit log BROKEN at entry {at_seq}: {reason}");
                }
                return Ok(ExitCode::from(1));
            }
            igbroker_store::ChainCheck::NeedsKey { at_seq } => {
                let reason = "the entries are linked with the audit key, which this key ring lacks; run with the ring that has its [audit] key";
                if json_out {
                    println!(
                        "{}",
                        json!({"intact": null, "at_seq": at_seq, "reason": reason})
                    );
                } else {
                    println!("audit log NOT CHECKED from entry {at_seq}: {reason}");
                }
                return Ok(ExitCode::from(1));
            }
        },
    }
    Ok(ExitCode::SUCCESS)
}
