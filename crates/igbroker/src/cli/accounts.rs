use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Subcommand;
use igbroker_store::AccountFilter;
use serde_json::json;

use crate::cli::{cli_actor, fail};
use crate::service::accounts::{self, AccountView};
use crate::service::refresh;
use crate::state::AppState;
use crate::worker::scheduler::Scheduler;

#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// List accounts.
    List {
        #[arg(long)]
        app: Option<String>,
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        end_user: Option<String>,
    },
    /// Show one account.
    Show { id: String },
    /// Refresh tokens now: one account, every active one, or those due.
    Refresh {
        id: Option<String>,
        #[arg(long, conflicts_with_all = ["id", "due"])]
        all: bool,
        #[arg(long, conflicts_with_all = ["id", "all"])]
        due: bool,
    },
    /// Revoke an account: its token is destroyed.
    Revoke { id: String },
    /// Suspend an account: token reads and Graph calls answer 409 until it is resumed.
    Suspend { id: String },
    /// Resume a suspended account (its usage history starts afresh).
    Resume { id: String },
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
                for a in &all {
                    println!(
                        "{}  {:<16} @{:<24} expires {}  next refresh {}  {}{}",
                        a.id,
                        a.status,
                        a.username.as_deref().unwrap_or("?"),
                        a.token.expires_at.as_deref().unwrap_or("-"),
                        a.token.next_refresh_at.as_deref().unwrap_or("-"),
                        a.token.refresh_state,
                        a.token
                            .last_error
                            .as_deref()
                            .map(|e| format!(": {e}"))
                            .unwrap_or_default()
                    );
                }
            }
        }
        AccountsCommand::Show { id } => {
            let acc = accounts::get(state, &id).await.map_err(fail)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&AccountView::from_row(&acc, state.now()))?
            );
        }
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
            let bar = progress(total as u64, "due");
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
            let bar = progress(total as u64, "active");
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
            anyhow::bail!("name an account id, or pass --all or --due");
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

/// A progress bar on a terminal, plain lines otherwise.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: u64,
    last_line: std::cell::Cell<u64>,
    what: &'static str,
}

pub fn progress(total: u64, what: &'static str) -> Progress {
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new(total);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg} ({eta})")
        {
            b.set_style(style);
        }
        b
    });
    Progress {
        bar,
        total,
        last_line: std::cell::Cell::new(0),
        what,
    }
}

impl Progress {
    pub fn set(&self, done: u64) {
        match &self.bar {
            Some(b) => b.set_position(done),
            None => {
                // A line per tenth, so logs show progress without a flood.
                let step = (self.total / 10).max(1);
                if done >= self.last_line.get() + step || done == self.total {
                    self.last_line.set(done);
                    eprintln!("progress: {done}/{} {}", self.total, self.what);
                }
            }
        }
    }

    pub fn note(&self, line: &str) {
        match &self.bar {
            Some(b) => b.println(line),
            None => eprintln!("{line}"),
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

fn print_status(acc: &igbroker_store::AccountRow, json_out: bool) {
    if json_out {
        println!("{}", json!({"id": acc.id, "status": acc.status.as_str()}));
    } else {
        println!("{} is {}", acc.id, acc.status.as_str());
    }
}
