//! Administrative verbs over the broker's state: apps, token, audit.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use clap::Subcommand;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::cli::output::{self, Table};
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
        /// A name for people (shown in the dashboard and lists).
        #[arg(long)]
        name: String,
        /// The Instagram App ID (not the Meta App ID).
        #[arg(long)]
        client_id: String,
        /// An Instagram Login scope to ask for, e.g. instagram_business_basic (repeat the option).
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// Default: {public_url}/oauth/callback. Register exactly this string with Instagram.
        #[arg(long)]
        redirect_uri: Option<String>,
        /// An origin a connect session may return the user to (repeat the option).
        #[arg(long = "return-origin")]
        return_origins: Vec<String>,
        /// Where the broker POSTs signed events about this app's accounts.
        #[arg(long)]
        webhook_url: Option<String>,
    },
    /// List the registered apps.
    List,
    /// Show one app (never its secret).
    Show {
        /// The app id (app_…).
        id: String,
    },
    /// Change an app. Absent options stay as they are; `--client-secret-stdin`
    /// reads a new Instagram App Secret from standard input.
    Update {
        /// The app id (app_…).
        id: String,
        #[arg(long)]
        name: Option<String>,
        /// Read a new Instagram App Secret from standard input.
        #[arg(long)]
        client_secret_stdin: bool,
        /// Replaces the scopes asked for at the next connect (repeat the option).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// A new redirect URI (register exactly this string with Instagram).
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
        /// The app id (app_…).
        id: String,
    },
    /// Check an app's registration for the mistakes Instagram punishes.
    #[command(
        long_about = "Check an app's registration for the mistakes Instagram punishes: the redirect URI (https, \
the broker's callback byte for byte, registered with Instagram), the client id (the Instagram App ID, not the \
Meta App ID), the secret (a test exchange with a made-up code), retired scopes and scopes nobody uses. \
Exits 1 when a problem is found."
    )]
    Doctor {
        /// The app id (app_…).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Entries, oldest first.
    List {
        /// Only entries about this account (acc_…).
        #[arg(long)]
        account: Option<String>,
        /// Only this action, e.g. token.read or graph.call.
        #[arg(long)]
        action: Option<String>,
        /// At most this many entries.
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
                let mut table = Table::new(&["id", "name", "client id", "scopes", "redirect uri"]);
                for v in views {
                    table.row([
                        v.id,
                        v.name,
                        v.client_id,
                        v.scopes.join(","),
                        v.redirect_uri,
                    ]);
                }
                table.print("no apps");
            }
        }
        AppsCommand::Show { id } => {
            let row = apps::get(state, &id).await.map_err(fail)?;
            let v = AppView::from_row(&row);
            if json_out {
                output::json_line(&v)?;
            } else {
                print!(
                    "{}",
                    output::fields(&[
                        ("id", v.id),
                        ("name", v.name),
                        ("kind", v.kind),
                        ("client id", v.client_id),
                        ("scopes", v.scopes.join(",")),
                        ("redirect uri", v.redirect_uri),
                        ("return origins", v.return_origins.join(", ")),
                        ("webhook url", v.webhook_url.unwrap_or_default()),
                        ("created", v.created_at),
                    ])
                );
            }
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
            if json_out {
                println!("{}", json!({"removed": id}));
            } else {
                println!("removed {id}");
            }
        }
        AppsCommand::Doctor { id } => {
            let report = crate::service::doctor::run(state, &id)
                .await
                .map_err(fail)?;
            if json_out {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print_callback_urls(
                    &report.callback_urls.deauthorize,
                    &report.callback_urls.data_deletion,
                );
                let mut table = Table::new(&["severity", "rule", "finding"]);
                for f in &report.findings {
                    table.row([
                        f.severity.as_str().to_string(),
                        f.rule.to_string(),
                        f.message.clone(),
                    ]);
                }
                table.print("");
                if report.ok {
                    println!("{}: no problem found", report.app_id);
                }
            }
            if !report.ok {
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
                let mut table = Table::new(&["seq", "at", "action", "actor", "account", "app"]);
                for r in &rows {
                    table.row([
                        r.seq.to_string(),
                        rfc3339(r.at),
                        r.action.clone(),
                        r.actor.clone(),
                        r.account_id.clone().unwrap_or_default(),
                        r.app_id.clone().unwrap_or_default(),
                    ]);
                }
                table.print("no audit entries");
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
