//! The keyed audit chain on both stores: a database writer who rewrites an entry and
//! recomputes every plain link after it is still caught, and an old plain chain is
//! re-linked under the key once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use igbroker_core::{IdKind, PrefixedId};
use igbroker_store::{AuditEntry, ChainCheck, Store, plain_link};
use igbroker_vault::KeyRing;
use sqlx::Connection;

struct Db {
    store: Store,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite_db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("a.db").display());
    Db {
        store: Store::open(&url).await.unwrap(),
        _dir: Some(dir),
    }
}

async fn postgres_db() -> Option<Db> {
    let Some(admin) = igbroker_store::test_support::pg_admin_url() else {
        assert!(
            std::env::var("IGBROKER_REQUIRE_PG").is_err(),
            "IGBROKER_REQUIRE_PG is set but TEST_PG_URL is not: run scripts/test"
        );
        return None;
    };
    let name = format!("igb_ak_{}", uuid::Uuid::now_v7().simple());
    let mut conn = sqlx::postgres::PgConnection::connect(&admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    Some(Db {
        store: Store::open(&format!("{base}/{name}")).await.unwrap(),
        _dir: None,
    })
}

macro_rules! both {
    ($($case:ident),* $(,)?) => {
        mod sqlite { $(
            #[tokio::test]
            async fn $case() { super::$case(super::sqlite_db().await.store).await; }
        )* }
        mod postgres { $(
            #[tokio::test]
            async fn $case() {
                if let Some(db) = super::postgres_db().await { super::$case(db.store).await; }
            }
        )* }
    };
}

both!(
    a_rewrite_with_recomputed_plain_links_is_named,
    an_old_plain_chain_is_relinked_once,
);

fn audit_key() -> igbroker_vault::KeyMaterial {
    KeyRing::generate().audit_key().cloned().unwrap()
}

async fn append(store: &Store, n: usize) {
    for i in 0..n {
        store
            .append_audit(&AuditEntry {
                id: PrefixedId::generate(IdKind::Audit).into_string(),
                at: 1_800_000_000 + i as i64,
                actor: "cli:test".into(),
                action: "token.read".into(),
                account_id: Some(format!("acc_{i}")),
                app_id: None,
                detail: "{}".into(),
            })
            .await
            .unwrap();
    }
}

async fn a_rewrite_with_recomputed_plain_links_is_named(store: Store) {
    let store = store.with_audit_key(Some(audit_key()));
    append(&store, 5).await;
    assert_eq!(
        store.verify_audit().await.unwrap(),
        ChainCheck::Intact { entries: 5 }
    );
    let rows = store.list_audit(None, None, None, 0, 10).await.unwrap();
    assert!(rows.iter().all(|r| r.hash.starts_with("k1:")));

    // The attacker: edit entry 3, then recompute every link from it on, and the head,
    // exactly as the unkeyed chain would have them.
    let mut prev = rows[1].hash.clone();
    for (i, r) in rows.iter().enumerate().skip(2) {
        let mut e = r.entry();
        if i == 2 {
            e.actor = "someone else".into();
        }
        let hash = plain_link(&prev, &e);
        sqlx::query("UPDATE audit_log SET actor = $1, prev_hash = $2, hash = $3 WHERE seq = $4")
            .bind(&e.actor)
            .bind(&prev)
            .bind(&hash)
            .bind(r.seq)
            .execute(store.pool())
            .await
            .unwrap();
        prev = hash;
    }
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
        .bind(&prev)
        .execute(store.pool())
        .await
        .unwrap();
    match store.verify_audit().await.unwrap() {
        ChainCheck::Broken { at_seq, reason } => {
            assert_eq!(at_seq, rows[2].seq);
            assert!(reason.contains("audit key"), "{reason}");
        }
        other => panic!("a rewritten entry went unnoticed: {other:?}"),
    }
    // Without the key the keyed entries cannot be checked, and it says so.
    let keyless = store.clone().with_audit_key(None);
    assert!(matches!(
        keyless.verify_audit().await.unwrap(),
        ChainCheck::NeedsKey { .. }
    ));
}

async fn an_old_plain_chain_is_relinked_once(store: Store) {
    append(&store, 3).await;
    assert_eq!(
        store.verify_audit().await.unwrap(),
        ChainCheck::Intact { entries: 3 }
    );
    let keyed = store.clone().with_audit_key(Some(audit_key()));
    // Before the re-link, a keyed verify refuses plain links.
    assert!(matches!(
        keyed.verify_audit().await.unwrap(),
        ChainCheck::Broken { .. }
    ));
    assert_eq!(keyed.key_audit_chain().await.unwrap(), 3);
    assert_eq!(keyed.key_audit_chain().await.unwrap(), 0);
    append(&keyed, 2).await;
    assert_eq!(
        keyed.verify_audit().await.unwrap(),
        ChainCheck::Intact { entries: 5 }
    );
    let (seq, head) = keyed.audit_head().await.unwrap();
    assert_eq!(seq, 5);
    assert!(head.starts_with("k1:"));
}
