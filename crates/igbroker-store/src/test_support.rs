//! A fresh database per test or benchmark run, on either backend: the one place that knows how
//! tests get a SQLite file or a PostgreSQL database of their own. Compiled only with the
//! `test-support` feature, which the store's own tests and the broker's tests turn on.
//!
//! PostgreSQL comes from the server named by `TEST_PG_URL` (scripts/test starts one); each call
//! creates a new database on it. Without `TEST_PG_URL` the PostgreSQL variant is skipped with a
//! notice, unless `IGBROKER_REQUIRE_PG` is set (CI), in which case a missing server is a failure.
#![allow(clippy::expect_used, clippy::panic)]

use std::path::Path;

use sqlx::Connection;

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    Sqlite,
    Postgres,
}

/// The URL of a SQLite database file `file` in `dir` (created on first open).
pub fn sqlite_url(dir: &Path, file: &str) -> String {
    format!("sqlite://{}?mode=rwc", dir.join(file).display())
}

/// Creates a new, empty database on the PostgreSQL server `admin_url` points at and returns
/// its URL. `prefix` makes the databases of one suite recognisable (`igb_t`, `igb_bench`).
pub async fn create_pg_database(admin_url: &str, prefix: &str) -> Result<String, sqlx::Error> {
    let name = format!("{prefix}_{}", uuid::Uuid::now_v7().simple());
    let mut conn = sqlx::postgres::PgConnection::connect(admin_url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url, |(base, _)| base);
    Ok(format!("{base}/{name}"))
}

/// The `TEST_PG_URL` server, or `None` when the variable is unset or empty (`TEST_PG_URL=`
/// on a command line means "no PostgreSQL", not a URL to fail on).
pub fn pg_admin_url() -> Option<String> {
    std::env::var("TEST_PG_URL")
        .ok()
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
}

/// A PostgreSQL database of this test's own on the `TEST_PG_URL` server, or `None` (with a
/// notice) when no server is configured. Panics when `IGBROKER_REQUIRE_PG` is set without one,
/// or when the server cannot be reached: a test must not pass by skipping in CI.
pub async fn pg_database() -> Option<String> {
    let Some(admin) = pg_admin_url() else {
        assert!(
            std::env::var("IGBROKER_REQUIRE_PG").is_err(),
            "IGBROKER_REQUIRE_PG is set but TEST_PG_URL is not: run scripts/test"
        );
        eprintln!("TEST_PG_URL not set: skipping the PostgreSQL variant (scripts/test runs it)");
        return None;
    };
    Some(
        create_pg_database(&admin, "igb_t")
            .await
            .expect("create a test database on the TEST_PG_URL server"),
    )
}

/// A fresh database on `backend`: a SQLite file in `dir`, or a new PostgreSQL database
/// (`None` when PostgreSQL is not configured, see [`pg_database`]).
pub async fn fresh_database(backend: TestBackend, dir: &Path) -> Option<String> {
    match backend {
        TestBackend::Sqlite => Some(sqlite_url(dir, "igbroker.db")),
        TestBackend::Postgres => pg_database().await,
    }
}
