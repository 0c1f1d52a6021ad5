use std::path::Path;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Connection, Executor};

use crate::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Connects and migrates.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let store = Self::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects without migrating.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            let shown: String = url
                .split('@')
                .next_back()
                .unwrap_or("")
                .chars()
                .take(60)
                .collect();
            return Err(StoreError::UnsupportedUrl(shown));
        };
        let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
        let pool = match backend {
            Backend::Sqlite => {
                ensure_sqlite_parent(url);
                options
                    .max_connections(8)
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            // WAL lets readers run beside the one writer; the busy timeout
                            // makes writers queue instead of failing.
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA busy_timeout = 10000").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            conn.execute("PRAGMA synchronous = NORMAL").await?;
                            Ok(())
                        })
                    })
                    .connect(url)
                    .await
            }
            Backend::Postgres => {
                // The pool retries a refused connection until its acquire timeout; one plain
                // connection first makes a wrong host or port fail at once.
                match sqlx::AnyConnection::connect(url).await {
                    Ok(probe) => {
                        let _ = probe.close().await;
                        options.max_connections(16).connect(url).await
                    }
                    Err(e) => Err(e),
                }
            }
        }
        .map_err(|e| StoreError::Unreachable {
            backend: backend.name(),
            reason: scrub(&e.to_string(), url),
        })?;
        Ok(Store { pool, backend })
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = match self.backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        migrator
            .run(&self.pool)
            .await
            .map_err(StoreError::from_migrate)?;
        self.backfill_key_versions().await
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The raw pool, for benchmarks that compare against a bare query.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// sqlx creates the file with `mode=rwc` but not its folder.
fn ensure_sqlite_parent(url: &str) {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path.starts_with(":memory:") || path.starts_with("file:") {
        return;
    }
    if let Some(parent) = Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        let _ = std::fs::create_dir_all(parent);
    }
}

/// Connection errors may echo the URL, and a PostgreSQL URL may carry a password.
fn scrub(message: &str, url: &str) -> String {
    let mut out = message.to_string();
    if let Some((cred, _)) = url.split_once('@')
        && let Some((_, pass)) = cred.rsplit_once(':')
        && !pass.is_empty()
        && !pass.starts_with("//")
    {
        out = out.replace(pass, "***");
    }
    out
}
