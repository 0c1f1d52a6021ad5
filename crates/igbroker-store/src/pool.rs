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
    /// Where writes go. SQLite allows one writer at a time; a one-connection pool
    /// makes writers queue in-process instead of sleeping in SQLite's busy handler.
    /// On PostgreSQL it is the same pool.
    writer: AnyPool,
    backend: Backend,
    /// Keys the audit chain's links; `None` keeps plain SHA-256 links (a ring made before
    /// audit keys existed).
    pub(crate) audit_key: Option<std::sync::Arc<igbroker_vault::KeyMaterial>>,
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
        let unreachable = |e: sqlx::Error| StoreError::Unreachable {
            backend: backend.name(),
            reason: scrub(&e.to_string(), url),
        };
        let (pool, writer) = match backend {
            Backend::Sqlite => {
                ensure_sqlite_parent(url);
                // The writer connects first so that it creates the file and turns on WAL.
                let writer = sqlite_options(1).connect(url).await.map_err(unreachable)?;
                let readers = sqlite_options(8).connect(url).await.map_err(unreachable)?;
                (readers, writer)
            }
            Backend::Postgres => {
                // The pool retries a refused connection until its acquire timeout; one plain
                // connection first makes a wrong host or port fail at once.
                let probe = sqlx::AnyConnection::connect(url)
                    .await
                    .map_err(unreachable)?;
                let _ = probe.close().await;
                let pool = AnyPoolOptions::new()
                    .acquire_timeout(Duration::from_secs(10))
                    .max_connections(16)
                    // See `sqlite_options`: no ping before every query.
                    .test_before_acquire(false)
                    .connect(url)
                    .await
                    .map_err(unreachable)?;
                (pool.clone(), pool)
            }
        };
        Ok(Store {
            pool,
            writer,
            backend,
            audit_key: None,
        })
    }

    /// Links new audit entries with an HMAC under `key` and verifies with it.
    #[must_use]
    pub fn with_audit_key(mut self, key: Option<igbroker_vault::KeyMaterial>) -> Store {
        self.audit_key = key.map(std::sync::Arc::new);
        self
    }

    /// The pool for statements that write.
    pub(crate) fn w(&self) -> &AnyPool {
        &self.writer
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
        self.writer.close().await;
    }
}

fn sqlite_options(max: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .acquire_timeout(Duration::from_secs(30))
        .max_connections(max)
        // sqlx pings every connection when it goes back to the pool (and drops one that
        // does not answer); a second ping when it is taken out added a round trip to the
        // connection's worker (SQLite) or the server (PostgreSQL) to every query.
        .test_before_acquire(false)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                // WAL lets readers run beside the one writer; the busy timeout covers
                // other processes (the CLI beside a server).
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.execute("PRAGMA busy_timeout = 10000").await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                conn.execute("PRAGMA synchronous = NORMAL").await?;
                // Deleted and replaced content is overwritten with zeros, so a revoked
                // token's ciphertext or a deleted user's ids do not linger in free pages.
                conn.execute("PRAGMA secure_delete = ON").await?;
                Ok(())
            })
        })
}

/// sqlx creates the file with `mode=rwc` but not its folder, and with the process's umask.
/// The folder is created 0700 and the file 0600 before SQLite opens it; SQLite gives its
/// `-wal` and `-shm` files the database file's mode.
fn ensure_sqlite_parent(url: &str) {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path.starts_with(":memory:") || path.starts_with("file:") {
        return;
    }
    let path = Path::new(path);
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
        && !parent.exists()
    {
        let _ = create_private_dir(parent);
    }
    if !path.exists() {
        let _ = create_private_file(path);
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map(drop)
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
