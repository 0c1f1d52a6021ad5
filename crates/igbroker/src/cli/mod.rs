//! The `igbroker` command line. Exit 0 on success, 1 on a failure the message
//! explains, 2 on wrong usage. Verbs parse, call the service layer and print;
//! the rules are in `service`.

mod accounts;
mod admin;
mod api_keys;
mod graph;
mod keys;
pub mod output;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;

#[derive(Debug, Parser)]
#[command(
    name = "igbroker",
    version,
    about = "A self-hosted Instagram token broker"
)]
pub struct Cli {
    /// Configuration file (default: ./igbroker.toml when present).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Machine-readable output on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The quick start: sandbox and broker in one process, on loopback.
    Demo {
        /// Port of the broker (default 8080; a free port with --script).
        #[arg(long)]
        port: Option<u16>,
        /// Where the demo keeps its database and key (reset at each start).
        #[arg(long, default_value = "igbroker-demo")]
        data: PathBuf,
        /// Run the whole story headless, print each step and exit.
        #[arg(long)]
        script: bool,
    },
    /// Run the broker.
    Serve,
    /// Run the Instagram Platform emulator alone.
    Sandbox {
        /// Port on 127.0.0.1.
        #[arg(long, default_value_t = 8090)]
        port: u16,
        /// Keep the sandbox's state in this folder across restarts.
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Apply database migrations.
    Migrate,
    /// Load and check the configuration, then print it without secrets.
    CheckConfig,
    /// The encryption key ring.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Connected Instagram accounts.
    Accounts {
        #[command(subcommand)]
        command: accounts::AccountsCommand,
    },
    /// Instagram app registrations.
    Apps {
        #[command(subcommand)]
        command: admin::AppsCommand,
    },
    /// An account's access token (printed only with --reveal, and audited).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The tamper-evident audit log.
    Audit {
        #[command(subcommand)]
        command: admin::AuditCommand,
    },
    /// Keys for the services that call the broker.
    ApiKeys {
        #[command(subcommand)]
        command: api_keys::ApiKeysCommand,
    },
    /// A Graph API call made by the broker with an account's token (audited; the token is
    /// never printed).
    #[command(
        after_help = "Examples:\n  igbroker graph acc_… GET me -F fields=username,media_count\n  igbroker graph acc_… POST 17841400000000001/media -F image_url=https://… -F caption=Hello"
    )]
    Graph {
        /// The account whose token makes the call (acc_…).
        account_id: String,
        /// GET, POST or DELETE.
        #[arg(value_parser = graph::parse_method)]
        method: reqwest::Method,
        /// A Graph path without version, e.g. `me` or `17841400000000001/media`.
        path: String,
        /// A parameter `key=value` (repeat the option).
        #[arg(short = 'F', long = "field", value_name = "KEY=VALUE", value_parser = graph::parse_field)]
        fields: Vec<(String, String)>,
    },
    /// Print a shell completion script, e.g. `igbroker completions bash > /etc/bash_completion.d/igbroker`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Say whether the account has a usable token; print it only with --reveal.
    Get {
        /// The account id (acc_…).
        account_id: String,
        /// Print the token itself.
        #[arg(long)]
        reveal: bool,
    },
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(2),
            };
        }
    };
    init_logging(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<Usage>().is_some() {
                eprintln!("(see `igbroker help` or add --help to the command)");
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

fn init_logging(cli: &Cli) {
    use tracing_subscriber::prelude::*;
    let default = match cli.command {
        Command::Demo { .. } => "warn",
        _ => "info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("IGBROKER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Traces are exported by the server only; its configuration is read again by `serve`,
    // which reports any error in it.
    let otlp = match cli.command {
        Command::Serve => Config::load(cli.config.as_deref())
            .ok()
            .filter(|c| !c.telemetry.otlp_traces_url.is_empty())
            .map(|_| crate::otlp::layer()),
        _ => None,
    };
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        // Colours only on a terminal: log files and collectors get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(otlp)
        .with(fmt)
        .try_init();
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let json = cli.json;
    match cli.command {
        Command::Demo { port, data, script } => crate::demo::run(port, &data, script, json).await,
        Command::Sandbox { port, data } => serve::sandbox(port, data, json).await,
        Command::Completions { shell } => completions(shell, json),
        command => {
            let config = Config::load(cli.config.as_deref())?;
            match command {
                Command::Serve => serve::serve(config, json).await,
                Command::Migrate => serve::migrate(&config, json).await,
                Command::CheckConfig => serve::check_config(&config, json),
                Command::Keys { command } => keys::run(&config, command, json).await,
                Command::ApiKeys { command } => api_keys::run(&config, command, json).await,
                Command::Accounts { command } => {
                    let state = cli_state(config).await?;
                    let code = accounts::run(&state, command, json).await;
                    state.store().close().await;
                    code
                }
                Command::Apps { command } => {
                    let state = cli_state(config).await?;
                    let code = admin::apps(&state, command, json).await;
                    state.store().close().await;
                    code
                }
                Command::Token {
                    command: TokenCommand::Get { account_id, reveal },
                } => {
                    let state = cli_state(config).await?;
                    let code = admin::token(&state, &account_id, reveal, json).await;
                    state.store().close().await;
                    code
                }
                Command::Audit { command } => {
                    let state = cli_state(config).await?;
                    let code = admin::audit_cmd(&state, command, json).await;
                    state.store().close().await;
                    code
                }
                Command::Graph {
                    account_id,
                    method,
                    path,
                    fields,
                } => {
                    let state = cli_state(config).await?;
                    let code = graph::run(&state, &account_id, method, &path, fields, json).await;
                    state.store().close().await;
                    code
                }
                Command::Demo { .. } | Command::Sandbox { .. } | Command::Completions { .. } => {
                    unreachable_command()
                }
            }
        }
    }
}

/// Completion scripts generated from the same definition as the parser, so they never drift.
fn completions(shell: clap_complete::Shell, json: bool) -> anyhow::Result<ExitCode> {
    use clap::CommandFactory;
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "igbroker", &mut script);
    if json {
        output::json_line(&serde_json::json!({
            "shell": shell.to_string(),
            "script": String::from_utf8_lossy(&script),
        }))?;
    } else {
        use std::io::Write;
        std::io::stdout().write_all(&script)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn unreachable_command() -> anyhow::Result<ExitCode> {
    anyhow::bail!("internal: command dispatched twice")
}

/// The broker's state for an administrative verb: same database, key ring and
/// leases as `serve`, so a CLI refresh never races a server's.
async fn cli_state(config: Config) -> anyhow::Result<crate::state::AppState> {
    let (_trigger, shutdown) = crate::shutdown::channel();
    let clock = crate::server::clock_for(&config, shutdown).await?;
    crate::server::build_state(config, clock).await
}

/// Wrong usage found after parsing (exit 2, like clap's own errors).
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// The OS user, for audit actors `cli:<user>`.
pub fn cli_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}

/// The one mapping from the broker's rules to the command line: the message and
/// its stable code (the same as the HTTP API's `error.code`); `main` prints it and
/// exits with status 1.
pub fn fail(e: crate::service::Error) -> anyhow::Error {
    anyhow::anyhow!("{e} ({})", e.code())
}
