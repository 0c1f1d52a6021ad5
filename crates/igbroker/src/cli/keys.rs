use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Subcommand;
use igbroker_core::{IdKind, PrefixedId};
use igbroker_store::{AuditEntry, ReplicaRow, SealedColumn, Store};
use igbroker_vault::{KeyRing, Vault};
use serde_json::{Value, json};

use crate::cli::output::{Style, Table};
use crate::config::Config;
use crate::server;
use crate::service::rotation::{self, KeyUsage, Progress, ReencryptOptions};
use crate::worker::replica::{self, wall_clock_now};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create the key ring file (mode 0600) with one current key.
    Init {
        /// Replace an existing ring file (records sealed under it become unreadable).
        #[arg(long)]
        force: bool,
    },
    /// Add a new key version (not yet current).
    Add,
    /// Show the key versions, their states, how many records each protects, and the live
    /// replicas with the versions they hold.
    Status,
    /// Make the newest version current and re-encrypt every record under it, online.
    Rotate {
        /// Afterwards, retire every older version that no longer protects anything.
        #[arg(long)]
        retire: bool,
        /// Records per transaction.
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        batch_size: i64,
        /// Seconds to wait for live replicas to start sealing with the new key.
        #[arg(long, default_value_t = 30)]
        wait: u64,
    },
}

pub async fn run(config: &Config, command: KeysCommand, json: bool) -> anyhow::Result<ExitCode> {
    let path = &config.keys.ring_file;
    match command {
        KeysCommand::Init { force } => {
            if config.keys.ring.is_some() {
                anyhow::bail!(
                    "IGBROKER_KEYS__RING is set: the ring comes from the environment, so there is no file to create"
                );
            }
            if path.exists() && !force {
                anyhow::bail!(
                    "{} already exists; it may protect stored tokens. Use `igbroker keys add` to add a version, or --force to replace it",
                    path.display()
                );
            }
            let ring = KeyRing::generate();
            ring.write_file(path)?;
            if json {
                println!(
                    "{}",
                    json!({"ring_file": path.display().to_string(), "current_version": ring.current_version()})
                );
            } else {
                println!(
                    "created key ring {} (mode 0600) with key version {}",
                    path.display(),
                    ring.current_version()
                );
            }
        }
        KeysCommand::Add => {
            if config.keys.ring.is_some() {
                anyhow::bail!("IGBROKER_KEYS__RING is set: add the key to that variable instead");
            }
            let mut ring = server::load_key_ring(config)?;
            let v = ring.add_version();
            // A ring made before audit keys existed gets one now.
            let audit_added = ring.ensure_audit_key();
            ring.write_file(path)?;
            if json {
                println!(
                    "{}",
                    json!({"added_version": v, "audit_key_added": audit_added})
                );
            } else {
                if audit_added {
                    println!(
                        "added an audit key: run `igbroker audit relink` once to link the existing audit log under it"
                    );
                }
                println!(
                    "added key version {v} (active; running brokers pick it up within {} s; `igbroker keys rotate` makes it current)",
                    replica::HEARTBEAT.as_secs()
                );
            }
        }
        KeysCommand::Status => return status(config, json).await,
        KeysCommand::Rotate {
            retire,
            batch_size,
            wait,
        } => {
            let options = ReencryptOptions {
                batch_size,
                max_batches: None,
            };
            return rotate(config, options, retire, Duration::from_secs(wait), json).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn ring_source(config: &Config) -> String {
    if config.keys.ring.is_some() {
        igbroker_vault::ENV_RING_VAR.to_string()
    } else {
        config.keys.ring_file.display().to_string()
    }
}

fn records_json(usage: &KeyUsage, version: i64) -> Value {
    let mut m = serde_json::Map::new();
    for c in SealedColumn::ALL {
        let n = usage
            .by_version
            .get(&version)
            .and_then(|cols| cols.get(&c))
            .copied()
            .unwrap_or(0);
        m.insert(c.key().into(), json!(n));
    }
    m.insert("total".into(), json!(usage.total(version)));
    Value::Object(m)
}

/// "8 (6 account tokens, 1 app client secrets, …)": the records a version protects.
fn records_text(usage: &KeyUsage, version: i64) -> String {
    let total = usage.total(version);
    let parts: Vec<String> = usage
        .by_version
        .get(&version)
        .map(|cols| {
            cols.iter()
                .map(|(c, n)| format!("{n} {}", c.key().replace('_', " ")))
                .collect()
        })
        .unwrap_or_default();
    if parts.is_empty() {
        total.to_string()
    } else {
        format!("{total} ({})", parts.join(", "))
    }
}

fn replica_json(ring: &KeyRing, r: &ReplicaRow, now: i64) -> Value {
    let mismatched: Vec<u32> = r
        .versions()
        .into_iter()
        .filter(
            |v| matches!((r.fingerprint(*v), ring.fingerprint(*v)), (Some(a), Some(b)) if a != b),
        )
        .collect();
    json!({
        "node_id": r.node_id,
        "description": r.description,
        "current_version": r.current_version,
        "key_versions": r.versions(),
        "different_material": mismatched,
        "heartbeat_age_secs": (now - r.heartbeat_at).max(0),
        "started_at": crate::util::rfc3339(r.started_at),
    })
}

async fn status(config: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let ring = server::load_key_ring(config)?;
    let store = Store::open(&config.database_url).await?;
    let usage = rotation::key_usage(&store).await?;
    let replicas = replica::live_replicas(&store).await?;
    let now = wall_clock_now();
    let missing = usage.missing_from(&ring);
    let problems: Vec<String> = missing
        .iter()
        .map(|(v, n)| rotation::missing_key_message(*v, *n))
        .chain((usage.malformed() > 0).then(|| {
            format!(
                "{} record(s) hold a value that is not an igbroker ciphertext (damaged or written by hand)",
                usage.malformed()
            )
        }))
        .collect();
    if json {
        let versions: Vec<Value> = ring
            .versions()
            .into_iter()
            .map(|(v, s)| {
                json!({"version": v, "state": s.as_str(), "fingerprint": ring.fingerprint(v),
                       "records": records_json(&usage, i64::from(v))})
            })
            .collect();
        let missing: Vec<Value> = missing
            .iter()
            .map(|(v, _)| json!({"version": v, "records": records_json(&usage, *v)}))
            .collect();
        let replicas: Vec<Value> = replicas
            .iter()
            .map(|r| replica_json(&ring, r, now))
            .collect();
        println!(
            "{}",
            json!({
                "source": ring_source(config),
                "current_version": ring.current_version(),
                "versions": versions,
                "missing_versions": missing,
                "malformed_records": usage.malformed(),
                "records_not_under_current": usage.not_under(ring.current_version()),
                "replicas": replicas,
                "errors": problems,
            })
        );
    } else {
        // Tables as every list of the CLI prints them: aligned with headers on a terminal,
        // tab-separated rows for scripts. What surrounds them is for people only.
        let terminal = Style::for_stdout() == Style::Aligned;
        if terminal {
            println!("key ring: {}", ring_source(config));
        }
        let mut versions = Table::new(&["version", "state", "fingerprint", "records"]);
        for (v, s) in ring.versions() {
            versions.row([
                format!("v{v}"),
                s.as_str().to_owned(),
                ring.fingerprint(v).unwrap_or_default(),
                records_text(&usage, i64::from(v)),
            ]);
        }
        versions.print("no key versions");
        let pending = usage.not_under(ring.current_version());
        if pending > 0 && terminal {
            println!(
                "{pending} record(s) are under an older key: `igbroker keys rotate` re-encrypts them"
            );
        }
        let mut live = Table::new(&[
            "replica",
            "description",
            "seals with",
            "holds",
            "heartbeat",
            "different material",
        ]);
        for r in &replicas {
            let different: Vec<String> = replica_json(&ring, r, now)["different_material"]
                .as_array()
                .map(|a| a.iter().map(|v| format!("v{v}")).collect())
                .unwrap_or_default();
            live.row([
                r.node_id.clone(),
                r.description.clone(),
                format!("v{}", r.current_version),
                r.versions()
                    .iter()
                    .map(|v| format!("v{v}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                format!("{} s ago", (now - r.heartbeat_at).max(0)),
                different.join(", "),
            ]);
        }
        if terminal {
            println!();
        }
        live.print(&format!(
            "live replicas: none (a running broker registers itself and sends a heartbeat every {} s)",
            replica::HEARTBEAT.as_secs()
        ));
    }
    for p in &problems {
        eprintln!("error: {p}");
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn audit(store: &Store, action: &str, detail: Value) -> anyhow::Result<()> {
    store
        .append_audit(&AuditEntry {
            id: PrefixedId::generate(IdKind::Audit).into_string(),
            at: wall_clock_now(),
            actor: super::cli_actor(),
            action: action.into(),
            account_id: None,
            app_id: None,
            detail: detail.to_string(),
        })
        .await?;
    Ok(())
}

/// `keys rotate`: check replicas, make the newest key current, wait until live replicas seal
/// with it, re-encrypt, and optionally retire what nothing uses any more.
pub async fn rotate(
    config: &Config,
    options: ReencryptOptions,
    retire: bool,
    wait: Duration,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let from_env = config.keys.ring.is_some();
    let mut ring = server::load_key_ring(config)?;
    let store = Store::open(&config.database_url)
        .await?
        .with_audit_key(ring.audit_key().cloned());
    let target = ring.newest_version();
    let previous = ring.current_version();

    let problems =
        rotation::replica_problems(&ring, target, &replica::live_replicas(&store).await?);
    if !problems.is_empty() {
        anyhow::bail!(
            "refusing to make key v{target} current while a live replica cannot use it:\n  {}",
            problems.join("\n  ")
        );
    }
    let usage = rotation::key_usage(&store).await?;
    if let Some((v, n)) = usage.missing_from(&ring).first() {
        anyhow::bail!(
            "{}; nothing was changed",
            rotation::missing_key_message(*v, *n)
        );
    }

    if previous != target {
        // from_env rings always have their newest version current, so only files get here.
        ring.make_current(target)
            .with_context(|| format!("cannot make key v{target} current"))?;
        ring.write_file(&config.keys.ring_file)?;
        audit(
            &store,
            "keys.current_changed",
            json!({"from_version": previous, "to_version": target}),
        )
        .await?;
        if !json {
            println!("key v{target} is now current (was v{previous})");
        }
    } else if !json {
        println!("key v{target} is current; re-encrypting what is still under older keys");
    }

    wait_for_replicas(&store, target, wait).await?;

    let vault = Vault::new(ring.clone());
    let pending = usage.not_under(target);
    let mut progress = progress_reporter(json);
    let started = Instant::now();
    let report = rotation::reencrypt(&store, &vault, options, progress.as_mut()).await?;
    let elapsed = started.elapsed();
    audit(
        &store,
        "keys.rotated",
        json!({"current_version": target, "resealed": report.resealed, "superseded": report.superseded,
               "failed": report.failures.len(), "remaining": report.remaining}),
    )
    .await?;

    let mut retired = Vec::new();
    let mut kept = Vec::new();
    if retire && report.remaining == 0 {
        let usage = rotation::key_usage(&store).await?;
        for (v, state) in ring.versions() {
            if v == target || state == igbroker_vault::KeyState::Retired {
                continue;
            }
            let n = usage.total(i64::from(v));
            if n == 0 {
                ring.retire(v)?;
                retired.push(v);
            } else {
                kept.push((v, n));
            }
        }
        if !retired.is_empty() && !from_env {
            ring.write_file(&config.keys.ring_file)?;
            audit(&store, "keys.retired", json!({"versions": retired})).await?;
        }
    }

    if json {
        let failures: Vec<Value> = report
            .failures
            .iter()
            .map(|f| json!({"record": f.column.key(), "id": f.id, "error": f.error}))
            .collect();
        println!(
            "{}",
            json!({
                "current_version": target,
                "previous_version": previous,
                "resealed": report.resealed,
                "superseded": report.superseded,
                "failed": failures,
                "remaining": report.remaining,
                "batches": report.batches,
                "elapsed_ms": elapsed.as_millis() as u64,
                "retired": if from_env { Vec::new() } else { retired.clone() },
                "retirable": if from_env { retired.clone() } else { Vec::new() },
            })
        );
    } else {
        println!(
            "re-encrypted {} of {pending} record(s) under key v{target} in {:.1} s ({} batch(es)); {} superseded by concurrent writes",
            report.resealed,
            elapsed.as_secs_f64(),
            report.batches,
            report.superseded
        );
        for f in &report.failures {
            eprintln!(
                "error: {} of {}: {}",
                f.column.key().replace('_', " "),
                f.id,
                f.error
            );
        }
        if from_env && !retired.is_empty() {
            println!(
                "no record uses key(s) {:?} any more; remove them from IGBROKER_KEYS__RING on every replica",
                retired
            );
        } else {
            for v in &retired {
                println!("retired key v{v} (it protects nothing)");
            }
        }
        for (v, n) in &kept {
            println!("kept key v{v}: it still protects {n} record(s)");
        }
    }
    if report.remaining > 0 || !report.failures.is_empty() {
        anyhow::bail!(
            "{} record(s) are still under an older key{}; rerun `igbroker keys rotate` (it continues where it stopped)",
            report.remaining,
            if report.failures.is_empty() {
                String::new()
            } else {
                format!(
                    " ({} could not be opened, see above)",
                    report.failures.len()
                )
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Replicas re-read the ring file on each heartbeat; until every live one seals with the new
/// key, re-encrypting would race with records they still seal under the old one.
async fn wait_for_replicas(store: &Store, target: u32, wait: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + wait;
    loop {
        let live = replica::live_replicas(store).await?;
        let behind = rotation::replicas_not_sealing_with(target, &live);
        if behind.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let names: Vec<String> = behind
                .iter()
                .map(|r| {
                    format!(
                        "{} ({}) still seals with v{}",
                        r.node_id, r.description, r.current_version
                    )
                })
                .collect();
            anyhow::bail!(
                "key v{target} is current in the ring file, but after {} s these live replicas have not loaded it:\n  {}\n\
                 check that they read the same ring file (or restart them), then rerun `igbroker keys rotate`",
                wait.as_secs(),
                names.join("\n  ")
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn progress_reporter(quiet: bool) -> Box<dyn Progress> {
    if std::io::stderr().is_terminal() && !quiet {
        Box::new(Bar(None))
    } else {
        Box::new(Lines {
            total: 0,
            done: 0,
            last: None,
        })
    }
}

/// An indicatif bar on a terminal.
struct Bar(Option<indicatif::ProgressBar>);

impl Progress for Bar {
    fn add_total(&mut self, records: u64) {
        let bar = self.0.get_or_insert_with(|| {
            let bar = indicatif::ProgressBar::new(0);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "re-encrypting {bar:40} {pos}/{len} records ({per_sec}, eta {eta})",
            ) {
                bar.set_style(style);
            }
            bar
        });
        bar.inc_length(records);
    }
    fn advance(&mut self, records: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(records);
        }
    }
    fn finish(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}

/// Plain lines on stderr elsewhere (logs, CI, pipes): the first batch, then every 2 s.
struct Lines {
    total: u64,
    done: u64,
    last: Option<Instant>,
}

impl Progress for Lines {
    fn add_total(&mut self, records: u64) {
        self.total += records;
    }
    fn advance(&mut self, records: u64) {
        self.done += records;
        if self
            .last
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(2))
        {
            self.last = Some(Instant::now());
            eprintln!("re-encrypted {}/{} records", self.done, self.total);
        }
    }
    fn finish(&mut self) {
        if self.total > 0 {
            eprintln!("re-encrypted {}/{} records", self.done, self.total);
        }
    }
}
