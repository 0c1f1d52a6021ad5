#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "database_url `{0}` is not supported: use sqlite://PATH?mode=rwc or postgres://USER@HOST/DB"
    )]
    UnsupportedUrl(String),
    #[error(
        "cannot reach the database ({backend}): {reason}; check database_url and that the server is running"
    )]
    Unreachable {
        backend: &'static str,
        reason: String,
    },
    #[error(
        "the database has schema version {0}, newer than this igbroker knows; run the igbroker release that migrated it, or a newer one"
    )]
    NewerSchema(i64),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    pub(crate) fn from_migrate(e: sqlx::migrate::MigrateError) -> Self {
        match e {
            sqlx::migrate::MigrateError::VersionMissing(v) => StoreError::NewerSchema(v),
            other => StoreError::Migration(other.to_string()),
        }
    }

    /// A unique-index violation, which callers turn into a domain conflict.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(db)) => db.is_unique_violation(),
            StoreError::Conflict(_) => true,
            _ => false,
        }
    }
}
