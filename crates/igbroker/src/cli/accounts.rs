use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use clap::Subcommand;
use igbroker_store::AccountFilter;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::cli::output::{self, Progress, Table};
use crate::cli::{cli_actor, fail};
use crate::service::accounts::{self, AccountView};
use crate::service::refresh;
use crate::state::AppState;
use crate::worker::scheduler::Scheduler;

#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// List accounts.
    List {
        /// Only accounts of this app (app_…).
        #[arg(long)]
        app: Option<String>,
        /// active, reauth_required, revoked or suspended.
        #[arg(long)]
        status: Option<String>,
        /// Only accounts of this end user.
        #[arg(long)]
        end_user: Option<String>,
    },
    /// Show one account and its token's state (never the token).
    Show {
        /// The account id (acc_…).
        id: String,
    },
    /// Refresh tokens now: one account, every active one, or those due.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["id", "all", "due"])))]
    Refresh {
        /// One account (acc_…).
        id: Option<String>,
        /// Every active account old enough to refresh.
        #[arg(long)]
        all: bool,
        /// Every account the scheduler would refresh now, then exit.
        #[arg(long)]
        due: bool,
    },
    /// Revoke an account: its token is destroyed.
    Revoke {
        /// The account id (acc_…).
        id: String,
    },
    /// Suspend an account: token reads and Graph calls answer 409 until it is resumed.
    Suspend {
        /// The account id (acc_…).
        id: String,
    },
    /// Resume a suspended account (its usage history starts afresh).
    Resume {
        /// The account id (acc_…).
        id: String,
    },
    /// Adopt long-lived tokens obtained elsewhere, read from standard input.
    ///
    /// Tokens are read from standard input, never from the command line: one token a line,
    /// optionally followed by whitespace and the end user it belongs to. Each token is checked
    /// with Instagram's /me before it is stored.
    #[command(
        after_help = "Examples:\n  igbroker accounts import --app app_… --end-user customer-42 < token.txt\n  igbroker accounts import --app app_… < tokens.txt   # lines: TOKEN [END_USER]"
    )]
    Import {
        /// The app the tokens were issued to.
        #[arg(long)]
        app: String,
        /// The end user of lines that name none.
        #[arg(long)]
        end_user: Option<String>,
        /// When the tokens were issued or last refreshed (RFC 3339); default now. Their age
        /// decides when they may be refreshed, and their expiry (60 days later).
        #[arg(long)]
        issued_at: Option<String>,
    },
}

pub async fn run(
    state: &AppState,
    command: AccountsCommand,
    json_out: bool,
) -> anyhow::Result<ExitCode> {
    let actor = cli_actor();
    match command {
        AccountsCommand::List {
            app,
            status,
            end_user,
        } => {
            let filter = AccountFilter {
                app_id: app,
                end_user,
                status: status
                    .as_deref()
                    .map(accounts::parse_status)
                    .transpose()
                    .map_err(fail)?,
                ..Default::default()
            };
            let mut after: Option<String> = None;
            let mut all = Vec::new();
            loop {
                let rows = accounts::list(state, &filter, after.as_deref(), 500)
                    .await
                    .map_err(fail)?;
                let done = rows.len() < 500;
                after = rows.last().map(|r| r.id.clone());
                all.extend(rows.iter().map(|r| AccountView::from_row(r, state.now())));
                if done {
                    break;
                }
            }
            if json_out {
                println!("{}", json!({"data": all}));
            } else {
                let mut table = Table::new(&[
                    "id",
                    "status",
                    "username",
                    "end user",
                    "expires",
                    "next refresh",
                    "refresh",
                    "last error",
                ]);
                for a in &all {
                    table.row([
                        a.id.clone(),
                        a.status.clone(),
                        a.username.clone().unwrap_or_default(),
                        a.end_user.clone().unwrap_or_default(),
                        a.token.expires_at.clone().unwrap_or_default(),
                        a.token.next_refresh_at.clone().unwrap_or_default(),
                        a.token.refresh_state.to_string(),
                        a.token.last_error.clone().unwrap_or_default(),
                    ]);
                }
                table.print("no accounts");
            }
        }
        AccountsCommand::Show { id } => {
            let acc = accounts::get(state, &id).await.map_err(fail)?;
            let v = AccountView::from_row(&acc, state.now());
            if json_out {
                output::json_line(&v)?;
            } else {
                print!("{}", show(&v));
            }
        }
        AccountsCommand::Import {
            app,
            end_user,
            issued_at,
        } => return import(state, &app, end_user, issued_at, json_out).await,
        AccountsCommand::Revoke { id } => {
            let acc = accounts::revoke(state, &id, &actor, "revoked_by_cli")
                .await
                .map_err(fail)?;
            if json_out {
                println!(
                    "{}",
                    json!({"id": acc.id, "status": acc.status.as_str(), "upstream_revoked": false})
                );
            } else {
                println!(
                    "revoked {} (its token is destroyed; Instagram has no revoke endpoint)",
                    acc.id
                );
            }
        }
        AccountsCommand::Suspend { id } => {
            let acc = crate::service::anomaly::suspend(state, &id, &actor)
                .await
                .map_err(fail)?;
            print_status(&acc, json_out);
        }
        AccountsCommand::Resume { id } => {
            let acc = crate::service::anomaly::resume(state, &id, &actor)
                .await
                .map_err(fail)?;
            print_status(&acc, json_out);
        }
        AccountsCommand::Refresh { id: Some(id), .. } => {
            let acc = refresh::refresh_now(state, &id, &actor)
                .await
                .map_err(fail)?;
            let view = AccountView::from_row(&acc, state.now());
            if json_out {
                println!("{}", serde_json::to_value(&view)?);
            } else {
                println!(
                    "refreshed {}: expires {}",
                    view.id,
                    view.token.expires_at.unwrap_or_default()
                );
            }
        }
        AccountsCommand::Refresh { due: true, .. } => {
            let total = state.store().count_due(state.now()).await?;
            let mut bar = Progress::new(total as u64, "due accounts");
            let stats = Scheduler::new(state.clone())
                .run_until_idle(|s| bar.set(s.attempts() + s.deferred))
                .await
                .map_err(fail)?;
            bar.finish();
            report(
                json_out,
                json!({"refreshed": stats.refreshed, "transient": stats.transient,
                "reauth_required": stats.reauth_required, "failing": stats.failing, "deferred": stats.deferred}),
            );
            if stats.transient + stats.failing > 0 {
                return Ok(ExitCode::from(1));
            }
        }
        AccountsCommand::Refresh { all: true, .. } => {
            let total = state
                .store()
                .count_accounts_with_status(igbroker_core::AccountStatus::Active)
                .await?;
            let mut bar = Progress::new(total as u64, "active accounts");
            let (mut ok, mut too_young, mut failed) = (0u64, 0u64, 0u64);
            let mut after = String::new();
            loop {
                let ids = state.store().active_ids_after(&after, 200).await?;
                let Some(last) = ids.last() else { break };
                after = last.clone();
                for id in ids {
                    match refresh::refresh_now(state, &id, &actor).await {
                        Ok(_) => ok += 1,
                        Err(crate::service::Error::TooYoung { .. }) => too_young += 1,
                        Err(e) => {
                            failed += 1;
                            bar.note(&format!("{id}: {e}"));
                        }
                    }
                    bar.set(ok + too_young + failed);
                }
            }
            bar.finish();
            report(
                json_out,
                json!({"refreshed": ok, "too_young": too_young, "failed": failed}),
            );
            if failed > 0 {
                return Ok(ExitCode::from(1));
            }
        }
        AccountsCommand::Refresh { .. } => {
            return Err(
                crate::cli::Usage("name an account id, or pass --all or --due".into()).into(),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn report(json_out: bool, v: serde_json::Value) {
    if json_out {
        println!("{v}");
    } else if let Some(map) = v.as_object() {
        let parts: Vec<String> = map.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!("{}", parts.join(", "));
    }
}

fn show(v: &AccountView) -> String {
    output::fields(&[
        ("id", v.id.clone()),
        ("app", v.app_id.clone()),
        ("end user", v.end_user.clone().unwrap_or_default()),
        ("username", v.username.clone().unwrap_or_default()),
        ("ig_user_id", v.ig_user_id.clone()),
        ("ig_scoped_id", v.ig_scoped_id.clone()),
        ("scopes", v.scopes.join(",")),
        (
            "status",
            match &v.status_reason {
                Some(r) => format!("{} ({r})", v.status),
                None => v.status.clone(),
            },
        ),
        ("issued", v.token.issued_at.clone().unwrap_or_default()),
        (
            "refreshed",
            v.token.refreshed_at.clone().unwrap_or_default(),
        ),
        ("expires", v.token.expires_at.clone().unwrap_or_default()),
        (
            "next refresh",
            v.token.next_refresh_at.clone().unwrap_or_default(),
        ),
        ("refresh state", v.token.refresh_state.to_string()),
        ("last error", v.token.last_error.clone().unwrap_or_default()),
        ("created", v.created_at.clone()),
    ])
}

/// One line of the import input: the token, and the end user when the line names one.
struct ImportLine {
    line: usize,
    token: SecretString,
    end_user: Option<String>,
}

/// Reads every line first, so that the progress bar knows its length and a broken input
/// fails before anything is imported. Blank lines and `#` comments are skipped.
fn read_import_lines(input: impl BufRead) -> anyhow::Result<Vec<ImportLine>> {
    let mut out = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line =
            SecretString::from(line.map_err(|e| {
                anyhow::anyhow!("cannot read standard input at line {}: {e}", i + 1)
            })?);
        let text = line.expose_secret().trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let mut parts = text.splitn(2, char::is_whitespace);
        let token = parts.next().unwrap_or_default();
        let end_user = parts.next().map(str::trim).filter(|u| !u.is_empty());
        out.push(ImportLine {
            line: i + 1,
            token: SecretString::from(token.to_string()),
            end_user: end_user.map(str::to_string),
        });
    }
    Ok(out)
}

async fn import(
    state: &AppState,
    app: &str,
    end_user: Option<String>,
    issued_at: Option<String>,
    json_out: bool,
) -> anyhow::Result<ExitCode> {
    // Fails early (and before reading a secret) when the app does not exist.
    crate::service::apps::get(state, app).await.map_err(fail)?;
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("Paste the long-lived token(s), one a line, then Ctrl-D:");
    }
    let lines = read_import_lines(stdin.lock())?;
    if lines.is_empty() {
        return Err(crate::cli::Usage(
            "no token on standard input: pipe the token(s) in, one a line (e.g. `< tokens.txt`)"
                .into(),
        )
        .into());
    }
    let actor = cli_actor();
    let mut bar = Progress::new(lines.len() as u64, "tokens");
    let mut results = Vec::new();
    let mut table = Table::new(&["line", "account", "username", "result"]);
    let (mut imported, mut failed) = (0u64, 0u64);
    for l in lines {
        let req = crate::service::connect::ImportRequest {
            app_id: app.to_string(),
            access_token: l.token,
            end_user: l.end_user.or_else(|| end_user.clone()),
            issued_at: issued_at.clone(),
        };
        match crate::service::connect::import(state, req, &actor).await {
            Ok((acc, created)) => {
                imported += 1;
                let v = AccountView::from_row(&acc, state.now());
                let result = if created { "created" } else { "updated" };
                table.row([
                    l.line.to_string(),
                    v.id.clone(),
                    v.username.clone().unwrap_or_default(),
                    result.to_string(),
                ]);
                results.push(json!({"line": l.line, "result": result, "account": v}));
            }
            Err(e) => {
                failed += 1;
                bar.note(&format!("line {}: {e} ({})", l.line, e.code()));
                table.row([
                    l.line.to_string(),
                    String::new(),
                    String::new(),
                    format!("failed: {e}"),
                ]);
                results.push(json!({"line": l.line, "result": "failed",
                    "error": {"code": e.code(), "message": e.to_string()}}));
            }
        }
        bar.inc(1);
    }
    bar.finish();
    if json_out {
        println!(
            "{}",
            json!({"imported": imported, "failed": failed, "data": results})
        );
    } else {
        table.print("");
        println!("imported {imported}, failed {failed}");
    }
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_status(acc: &igbroker_store::AccountRow, json_out: bool) {
    if json_out {
        println!("{}", json!({"id": acc.id, "status": acc.status.as_str()}));
    } else {
        println!("{} is {}", acc.id, acc.status.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_lines_carry_a_token_and_maybe_an_end_user() {
        let input = "IGAAone\n\n# a comment\n  IGAAtwo   customer 42 \nIGAAthree\tc3\n";
        let lines = read_import_lines(input.as_bytes()).unwrap();
        let got: Vec<(usize, &str, Option<&str>)> = lines
            .iter()
            .map(|l| (l.line, l.token.expose_secret(), l.end_user.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (1, "IGAAone", None),
                (4, "IGAAtwo", Some("customer 42")),
                (5, "IGAAthree", Some("c3"))
            ]
        );
    }
}
