//! Connections are not pinged before each query (that ping was a round trip per query), so a
//! connection the server dropped is found out by the query that uses it. That query fails,
//! the connection is dropped when it goes back to the pool, and the pool recovers: at most one
//! failed query per connection that was open, then everything works again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use igbroker_store::Store;
use igbroker_store::test_support::pg_database;
use sqlx::Connection;

#[tokio::test]
async fn postgres_connections_killed_by_the_server_are_replaced() {
    let Some(url) = pg_database().await else {
        return;
    };
    let store = Store::open(&url).await.unwrap();
    // Several connections open at once, so that several are idle in the pool afterwards.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let store = store.clone();
        tasks.spawn(async move {
            sqlx::query("SELECT pg_sleep(0.05)")
                .execute(store.pool())
                .await
                .map(drop)
        });
    }
    let opened: Vec<_> = tasks.join_all().await;
    assert!(opened.iter().all(Result::is_ok), "{opened:?}");

    let db = url.rsplit('/').next().unwrap().to_string();
    let mut admin = sqlx::postgres::PgConnection::connect(&url).await.unwrap();
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&db)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(
        killed.len() >= 2,
        "expected several pooled connections, killed {killed:?}"
    );

    // Each dead connection may fail the one query that finds it out; no more than that.
    let mut failures = 0;
    let mut ok_in_a_row = 0;
    for _ in 0..(killed.len() + 20) {
        match store.ping().await {
            Ok(()) => ok_in_a_row += 1,
            Err(_) => {
                failures += 1;
                ok_in_a_row = 0;
            }
        }
        // The dead connection is dropped by the pool in a task of its own.
        tokio::task::yield_now().await;
    }
    assert!(
        failures <= killed.len(),
        "{failures} failed queries for {} killed connections",
        killed.len()
    );
    assert!(
        ok_in_a_row >= 20,
        "the pool did not recover: {ok_in_a_row} successes in a row at the end"
    );
    admin.close().await.unwrap();
    store.close().await;
}
