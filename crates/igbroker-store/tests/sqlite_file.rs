//! What a SQLite database leaves on disk: files only its owner can read, and no deleted
//! secret in free pages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use igbroker_store::Store;

#[cfg(unix)]
#[tokio::test]
async fn database_files_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub").join("igbroker.db");
    let store = Store::open(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    store.ping().await.unwrap();
    for p in [path.clone(), path.with_extension("db-wal")] {
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} has mode {mode:o}", p.display());
    }
    let dir_mode = std::fs::metadata(path.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);
    store.close().await;
}

#[tokio::test]
async fn deleted_values_leave_no_trace_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("igbroker.db");
    let store = Store::open(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    let canary = "CANARY-SECRET-0123456789abcdef".repeat(4);
    sqlx::query("CREATE TABLE scratch (v TEXT)")
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query("INSERT INTO scratch (v) VALUES ($1)")
        .bind(&canary)
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query("DELETE FROM scratch")
        .execute(store.pool())
        .await
        .unwrap();
    // Fold the WAL into the database file, as a checkpoint would sooner or later.
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(store.pool())
        .await
        .unwrap();
    store.close().await;
    for p in [path.clone(), path.with_extension("db-wal")] {
        if let Ok(bytes) = std::fs::read(&p) {
            assert!(
                !bytes.windows(canary.len()).any(|w| w == canary.as_bytes()),
                "{} still holds the deleted value",
                p.display()
            );
        }
    }
}
