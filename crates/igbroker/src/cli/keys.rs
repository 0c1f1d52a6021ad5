use std::process::ExitCode;

use clap::Subcommand;
use igbroker_vault::KeyRing;
use serde_json::json;

use crate::config::Config;
use crate::server;

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
    /// Show the key versions and their states.
    Status,
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
            ring.write_file(path)?;
            if json {
                println!("{}", json!({"added_version": v}));
            } else {
                println!("added key version {v} (active; `igbroker keys rotate` makes it current)");
            }
        }
        KeysCommand::Status => {
            let ring = server::load_key_ring(config)?;
            let versions: Vec<_> = ring
                .versions()
                .into_iter()
                .map(|(v, s)| json!({"version": v, "state": s.as_str()}))
                .collect();
            if json {
                println!(
                    "{}",
                    json!({"versions": versions, "current_version": ring.current_version()})
                );
            } else {
                for (v, s) in ring.versions() {
                    println!("key v{v}: {}", s.as_str());
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
