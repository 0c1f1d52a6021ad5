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
    #[error(
        "{table} row `{id}` holds {column} `{value}`, which this igbroker does not know; the row was written by another version or edited by hand: fix or remove it"
    )]
    Corrupt {
        table: &'static str,
        id: String,
        column: &'static str,
        value: String,
    },
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

/// Reads a stored enum-like column, naming the row when the value is unknown.
pub(crate) fn decode<T>(
    table: &'static str,
    id: &str,
    column: &'static str,
    value: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<T, StoreError> {
    parse(value).ok_or_else(|| StoreError::Corrupt {
        table,
        id: id.to_string(),
        column,
        value: value.chars().take(80).collect(),
    })
}

/// Reads a stored comma-joined scope list.
pub(crate) fn decode_scopes(
    table: &'static str,
    id: &str,
    value: &str,
) -> Result<Vec<igbroker_core::InstagramScope>, StoreError> {
    decode(table, id, "scopes", value, |v| {
        igbroker_core::InstagramScope::parse_list(v).ok()
    })
}
