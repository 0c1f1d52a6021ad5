//! One behaviour, two stores: every case runs against SQLite (a temp file) and PostgreSQL
//! (a fresh database per case on the server named by TEST_PG_URL). Without TEST_PG_URL the
//! PostgreSQL half prints a notice and passes, unless IGBROKER_REQUIRE_PG is set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use igbroker_core::{AccountStatus, ConnectSessionStatus, IdKind, InstagramScope, PrefixedId};
use igbroker_store::{
    AccountFilter, ApiKeyRow, AppRow, AuditEntry, ChainCheck, ConnectSessionRow, NewAccount,
    ReplicaRow, SealedColumn, SealedSwap, Store, StoreError, TokenUpdate, test_support,
};
use igbroker_vault::{Aad, KeyRing, Vault, sealed_key_version};

struct Db {
    store: Store,
    url: String,
    vault: Vault,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite_db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let url = test_support::sqlite_url(dir.path(), "conformance.db");
    Db {
        store: Store::open(&url).await.unwrap(),
        url,
        vault: Vault::new(KeyRing::generate()),
        _dir: Some(dir),
    }
}

async fn postgres_db() -> Option<Db> {
    let url = test_support::pg_database().await?;
    Some(Db {
        store: Store::open(&url).await.unwrap(),
        url,
        vault: Vault::new(KeyRing::generate()),
        _dir: None,
    })
}

/// Declares each case once per backend.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(super::sqlite_db().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    if let Some(db) = super::postgres_db().await {
                        super::$case(db).await;
                    }
                }
            )*
        }
    };
}

conformance!(
    migrations_are_idempotent_and_ping_answers,
    apps_round_trip_list_and_soft_delete,
    api_keys_find_list_touch_revoke,
    connect_sessions_claim_once_and_finish_once,
    accounts_insert_reconnect_and_find,
    accounts_list_filters_and_cursor,
    identity_is_unique_among_live_accounts,
    refreshed_token_is_stored_only_under_a_live_lease,
    failures_reauth_and_leases,
    revoke_deletes_the_ciphertext,
    audit_chain_detects_an_edited_row,
    audit_hash_covers_every_field,
    audit_chain_detects_a_deleted_middle_row,
    audit_chain_detects_a_deleted_last_row,
    newer_schema_is_refused,
    key_version_columns_follow_the_ciphertext,
    sealed_pages_and_compare_and_swap,
    replicas_register_heartbeat_and_leave,
);

const NOW: i64 = 1_800_000_000;

fn id(kind: IdKind) -> String {
    PrefixedId::generate(kind).into_string()
}

impl Db {
    fn seal(&self, table: &str, row: &str, column: &str, text: &str) -> Vec<u8> {
        self.vault
            .seal_str(&Aad::new(table, row, column), text)
            .unwrap()
    }

    async fn app(&self) -> AppRow {
        let app_id = id(IdKind::App);
        let row = AppRow {
            client_secret_enc: self.seal("apps", &app_id, "client_secret", "app-secret"),
            id: app_id,
            name: "App".into(),
            kind: "instagram_login".into(),
            client_id: "1234567890".into(),
            scopes: vec![InstagramScope::BusinessBasic],
            redirect_uri: "https://broker.example/oauth/callback".into(),
            return_origins: vec!["https://service.example".into()],
            webhook_url: None,
            created_at: NOW,
            deleted_at: None,
        };
        self.store.insert_app(&row).await.unwrap();
        row
    }

    fn token(&self, account_id: &str, text: &str, issued_at: i64) -> TokenUpdate {
        TokenUpdate {
            token_enc: self.seal("accounts", account_id, "token", text),
            key_version: i64::from(self.vault.current_version()),
            issued_at,
            expires_at: issued_at + 60 * 86_400,
            next_refresh_at: issued_at + 40 * 86_400,
        }
    }

    fn new_account(&self, app_id: &str, end_user: &str, ig_user_id: &str) -> NewAccount {
        let account_id = id(IdKind::Account);
        NewAccount {
            token: self.token(&account_id, &format!("token-of-{ig_user_id}"), NOW),
            id: account_id,
            app_id: app_id.into(),
            end_user: end_user.into(),
            ig_user_id: ig_user_id.into(),
            ig_scoped_id: format!("scoped-{ig_user_id}"),
            username: Some(format!("user{ig_user_id}")),
            scopes: vec![InstagramScope::BusinessBasic],
        }
    }

    async fn account(&self, app_id: &str, end_user: &str, ig_user_id: &str) -> NewAccount {
        let a = self.new_account(app_id, end_user, ig_user_id);
        self.store.insert_account(&a, NOW).await.unwrap();
        a
    }

    fn session(&self, app_id: &str, state: &str) -> ConnectSessionRow {
        let session_id = id(IdKind::ConnectSession);
        ConnectSessionRow {
            state_enc: self.seal("connect_sessions", &session_id, "state", state),
            id: session_id,
            app_id: app_id.into(),
            end_user: "customer-1".into(),
            scopes: vec![InstagramScope::BusinessBasic],
            return_url: Some("https://service.example/done".into()),
            account_id: None,
            state_hash: format!("hash-of-{state}"),
            status: ConnectSessionStatus::Pending,
            code_hash: None,
            result_account_id: None,
            error: None,
            created_at: NOW,
            expires_at: NOW + 3600,
            completed_at: None,
            redirect_uri: Some("https://broker.example/oauth/callback".into()),
        }
    }

    async fn audit(&self, n: usize) {
        for i in 0..n {
            self.store
                .append_audit(&AuditEntry {
                    id: id(IdKind::Audit),
                    at: NOW + i as i64,
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

    async fn exec(&self, sql: &str) -> u64 {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(self.store.pool())
            .await
            .unwrap()
            .rows_affected()
    }
}

async fn migrations_are_idempotent_and_ping_answers(db: Db) {
    db.store.migrate().await.unwrap();
    let again = Store::open(&db.url).await.unwrap();
    again.ping().await.unwrap();
    assert_eq!(again.backend(), db.store.backend());
    again.close().await;
    db.store.ping().await.unwrap();
}

async fn apps_round_trip_list_and_soft_delete(db: Db) {
    let mut apps = Vec::new();
    for _ in 0..3 {
        apps.push(db.app().await);
    }
    apps.sort_by(|a, b| a.id.cmp(&b.id));
    let got = db.store.get_app(&apps[0].id).await.unwrap().unwrap();
    assert_eq!(got.client_secret_enc, apps[0].client_secret_enc);
    assert_eq!(got.return_origins, apps[0].return_origins);
    assert!(db.store.get_app("app_missing").await.unwrap().is_none());

    let page1 = db.store.list_apps(None, None, 2).await.unwrap();
    assert_eq!(
        page1.iter().map(|a| &a.id).collect::<Vec<_>>(),
        vec![&apps[0].id, &apps[1].id]
    );
    let page2 = db
        .store
        .list_apps(None, Some(&page1[1].id), 2)
        .await
        .unwrap();
    assert_eq!(
        page2.iter().map(|a| &a.id).collect::<Vec<_>>(),
        vec![&apps[2].id]
    );

    let resealed = db.seal("apps", &apps[0].id, "client_secret", "rotated-secret");
    db.store
        .update_app_secret(&apps[0].id, &resealed)
        .await
        .unwrap();
    assert_eq!(
        db.store
            .get_app(&apps[0].id)
            .await
            .unwrap()
            .unwrap()
            .client_secret_enc,
        resealed
    );

    // Refused while a live account uses the app, allowed once it is revoked.
    let acc = db.account(&apps[0].id, "u", "17841000000000001").await;
    let err = db.store.delete_app(&apps[0].id, NOW).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert!(err.is_unique_violation() || err.to_string().contains("revoke"));
    db.store.revoke_account(&acc.id, "test", NOW).await.unwrap();
    assert!(db.store.delete_app(&apps[0].id, NOW).await.unwrap());
    assert!(!db.store.delete_app(&apps[0].id, NOW).await.unwrap());
    assert!(db.store.get_app(&apps[0].id).await.unwrap().is_none());
    assert_eq!(db.store.list_apps(None, None, 10).await.unwrap().len(), 2);
    // all_apps includes deleted apps: their secrets are still sealed records.
    assert_eq!(db.store.all_apps().await.unwrap().len(), 3);
}

async fn api_keys_find_list_touch_revoke(db: Db) {
    let mut ids = Vec::new();
    for i in 0..3 {
        let key = ApiKeyRow {
            id: id(IdKind::ApiKey),
            name: format!("key {i}"),
            key_hash: format!("hash{i}"),
            scopes: "admin".into(),
            app_ids: String::new(),
            created_at: NOW,
            last_used_at: None,
            revoked_at: None,
        };
        db.store.insert_api_key(&key).await.unwrap();
        ids.push(key.id);
    }
    ids.sort();
    let found = db.store.find_api_key("hash1").await.unwrap().unwrap();
    assert_eq!(found.name, "key 1");
    assert!(db.store.find_api_key("nope").await.unwrap().is_none());

    let page = db.store.list_api_keys(None, 2).await.unwrap();
    assert_eq!(page.len(), 2);
    let rest = db.store.list_api_keys(Some(&page[1].id), 2).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].id, ids[2]);

    // Minute resolution: a second touch within the minute does not write.
    db.store.touch_api_key(&found.id, NOW).await.unwrap();
    db.store.touch_api_key(&found.id, NOW + 30).await.unwrap();
    let k = db.store.find_api_key("hash1").await.unwrap().unwrap();
    assert_eq!(k.last_used_at, Some(NOW));
    db.store.touch_api_key(&found.id, NOW + 61).await.unwrap();
    let k = db.store.find_api_key("hash1").await.unwrap().unwrap();
    assert_eq!(k.last_used_at, Some(NOW + 61));

    assert!(db.store.revoke_api_key(&found.id, NOW).await.unwrap());
    assert!(!db.store.revoke_api_key(&found.id, NOW).await.unwrap());
    assert!(db.store.find_api_key("hash1").await.unwrap().is_none());
    // Listing still shows the revoked key, with when.
    let all = db.store.list_api_keys(None, 10).await.unwrap();
    assert_eq!(
        all.iter().find(|k| k.id == found.id).unwrap().revoked_at,
        Some(NOW)
    );
}

async fn connect_sessions_claim_once_and_finish_once(db: Db) {
    let app = db.app().await;
    let s = db.session(&app.id, "state-1");
    db.store.insert_connect_session(&s).await.unwrap();
    let got = db.store.get_connect_session(&s.id).await.unwrap().unwrap();
    assert_eq!(got.state_enc, s.state_enc);
    assert_eq!(got.status.as_str(), "pending");
    assert_eq!(got.redirect_uri, s.redirect_uri);
    let by_state = db
        .store
        .find_connect_session_by_state("hash-of-state-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_state.id, s.id);
    assert!(
        db.store
            .find_connect_session_by_state("other")
            .await
            .unwrap()
            .is_none()
    );

    assert!(
        db.store
            .claim_connect_session(&s.id, "code-a", NOW + 1)
            .await
            .unwrap()
    );
    assert!(
        !db.store
            .claim_connect_session(&s.id, "code-b", NOW + 2)
            .await
            .unwrap(),
        "a second claim must lose"
    );
    let got = db.store.get_connect_session(&s.id).await.unwrap().unwrap();
    assert_eq!(
        (got.status.as_str(), got.code_hash.as_deref()),
        ("exchanging", Some("code-a"))
    );
    assert!(
        db.store
            .finish_connect_session(
                &s.id,
                ConnectSessionStatus::Connected,
                Some("acc_x"),
                None,
                NOW + 3
            )
            .await
            .unwrap()
    );
    assert!(
        !db.store
            .finish_connect_session(
                &s.id,
                ConnectSessionStatus::Error,
                None,
                Some("late"),
                NOW + 4
            )
            .await
            .unwrap(),
        "a session finishes once"
    );
    let got = db.store.get_connect_session(&s.id).await.unwrap().unwrap();
    assert_eq!(got.status.as_str(), "connected");
    assert_eq!(got.result_account_id.as_deref(), Some("acc_x"));
    assert_eq!(got.completed_at, Some(NOW + 3));

    // An expired session cannot be claimed; it can still be finished (as an error).
    let expired = db.session(&app.id, "state-2");
    db.store.insert_connect_session(&expired).await.unwrap();
    assert!(
        !db.store
            .claim_connect_session(&expired.id, "code", NOW + 3600)
            .await
            .unwrap()
    );
    assert!(
        db.store
            .finish_connect_session(
                &expired.id,
                ConnectSessionStatus::Error,
                None,
                Some("expired"),
                NOW + 3600
            )
            .await
            .unwrap()
    );

    // The state hash is unique.
    let dup = ConnectSessionRow {
        id: id(IdKind::ConnectSession),
        ..db.session(&app.id, "state-1")
    };
    let err = db.store.insert_connect_session(&dup).await.unwrap_err();
    assert!(err.is_unique_violation(), "{err}");
}

async fn accounts_insert_reconnect_and_find(db: Db) {
    let app = db.app().await;
    let a = db.account(&app.id, "customer-1", "17841000000000001").await;
    let row = db.store.get_account(&a.id).await.unwrap().unwrap();
    assert_eq!(row.status.as_str(), "active");
    assert_eq!(row.token_enc.as_deref(), Some(&a.token.token_enc[..]));
    assert_eq!(
        row.token_key_version,
        Some(i64::from(db.vault.current_version()))
    );
    assert_eq!(row.expires_at, Some(a.token.expires_at));
    assert_eq!(row.next_refresh_at, Some(a.token.next_refresh_at));
    assert_eq!(row.created_at, NOW);
    assert!(db.store.get_account("acc_missing").await.unwrap().is_none());

    let live = db
        .store
        .find_live_account(&app.id, "customer-1", "17841000000000001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(live.id, a.id);
    assert!(
        db.store
            .find_live_account(&app.id, "customer-2", "17841000000000001")
            .await
            .unwrap()
            .is_none()
    );

    // A re-connect replaces token and scopes, resets refresh state, and reactivates.
    db.store
        .mark_reauth_required(&a.id, "expired", NOW + 1)
        .await
        .unwrap();
    let again = NewAccount {
        scopes: vec![
            InstagramScope::BusinessBasic,
            InstagramScope::ContentPublish,
        ],
        username: Some("renamed".into()),
        token: db.token(&a.id, "second-token", NOW + 10),
        ..a.clone()
    };
    assert!(db.store.reconnect_account(&again, NOW + 10).await.unwrap());
    let row = db.store.get_account(&a.id).await.unwrap().unwrap();
    assert_eq!(row.status.as_str(), "active");
    assert_eq!(row.status_reason, None);
    assert_eq!(row.scopes, again.scopes);
    assert_eq!(row.username.as_deref(), Some("renamed"));
    assert_eq!(row.token_enc.as_deref(), Some(&again.token.token_enc[..]));
    assert_eq!(row.issued_at, Some(NOW + 10));
    assert_eq!(row.updated_at, NOW + 10);

    // A revoked account cannot be re-connected in place.
    db.store
        .revoke_account(&a.id, "test", NOW + 20)
        .await
        .unwrap();
    assert!(!db.store.reconnect_account(&again, NOW + 30).await.unwrap());
}

async fn accounts_list_filters_and_cursor(db: Db) {
    let app1 = db.app().await;
    let app2 = db.app().await;
    let mut in_app1 = Vec::new();
    for i in 0..5 {
        let a = db
            .account(
                &app1.id,
                if i % 2 == 0 { "even" } else { "odd" },
                &format!("1784100000000010{i}"),
            )
            .await;
        in_app1.push(a.id);
    }
    let other = db.account(&app2.id, "even", "17841000000000200").await;
    db.store
        .mark_reauth_required(&in_app1[4], "expired", NOW)
        .await
        .unwrap();
    in_app1.sort();

    let all = AccountFilter::default();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = db
            .store
            .list_accounts(&all, after.as_deref(), 2)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        after = page.last().map(|a| a.id.clone());
        seen.extend(page.into_iter().map(|a| a.id));
    }
    let mut expected = in_app1.clone();
    expected.push(other.id.clone());
    expected.sort();
    assert_eq!(
        seen, expected,
        "the cursor walks every account once, in id order"
    );

    let by_app = AccountFilter {
        app_id: Some(app1.id.clone()),
        ..Default::default()
    };
    let got: Vec<String> = db
        .store
        .list_accounts(&by_app, None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(got, in_app1);

    let even = AccountFilter {
        end_user: Some("even".into()),
        ..Default::default()
    };
    assert_eq!(
        db.store
            .list_accounts(&even, None, 100)
            .await
            .unwrap()
            .len(),
        4
    );
    let even_in_app2 = AccountFilter {
        app_id: Some(app2.id.clone()),
        end_user: Some("even".into()),
        ..Default::default()
    };
    let got = db
        .store
        .list_accounts(&even_in_app2, None, 100)
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, other.id);

    let reauth = AccountFilter {
        status: Some(AccountStatus::ReauthRequired),
        ..Default::default()
    };
    let got = db.store.list_accounts(&reauth, None, 100).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].status.as_str(), "reauth_required");
}

async fn identity_is_unique_among_live_accounts(db: Db) {
    let app = db.app().await;
    let first = db.account(&app.id, "customer", "17841000000000001").await;
    let dup = db.new_account(&app.id, "customer", "17841000000000001");
    let err = db.store.insert_account(&dup, NOW).await.unwrap_err();
    assert!(err.is_unique_violation(), "{err}");
    // Another end user, or another Instagram user, is another identity.
    db.account(&app.id, "other", "17841000000000001").await;
    db.account(&app.id, "customer", "17841000000000002").await;
    // Once revoked, the identity may connect again as a new account.
    db.store
        .revoke_account(&first.id, "test", NOW)
        .await
        .unwrap();
    db.store.insert_account(&dup, NOW).await.unwrap();
}

async fn refreshed_token_is_stored_only_under_a_live_lease(db: Db) {
    let app = db.app().await;
    let a = db.account(&app.id, "c", "17841000000000001").await;
    let fresh = db.token(&a.id, "refreshed", NOW + 100);

    // No lease: refused.
    assert!(
        !db.store
            .store_refreshed_token(&a.id, "node_a:1", NOW + 100, &fresh)
            .await
            .unwrap()
    );
    assert!(
        db.store
            .acquire_refresh_lease(&a.id, "node_a:1", NOW + 100, NOW + 160)
            .await
            .unwrap()
    );
    // Another holder cannot take a running lease, nor write under it.
    assert!(
        !db.store
            .acquire_refresh_lease(&a.id, "node_b:1", NOW + 110, NOW + 170)
            .await
            .unwrap()
    );
    assert!(
        !db.store
            .store_refreshed_token(&a.id, "node_b:1", NOW + 110, &fresh)
            .await
            .unwrap()
    );
    // The holder cannot write once its lease has run out...
    assert!(
        !db.store
            .store_refreshed_token(&a.id, "node_a:1", NOW + 160, &fresh)
            .await
            .unwrap()
    );
    // ...and another may then take over.
    assert!(
        db.store
            .acquire_refresh_lease(&a.id, "node_b:1", NOW + 160, NOW + 220)
            .await
            .unwrap()
    );
    assert!(
        db.store
            .store_refreshed_token(&a.id, "node_b:1", NOW + 170, &fresh)
            .await
            .unwrap()
    );
    let row = db.store.get_account(&a.id).await.unwrap().unwrap();
    assert_eq!(row.token_enc.as_deref(), Some(&fresh.token_enc[..]));
    assert_eq!(row.refreshed_at, Some(NOW + 100));
    assert_eq!(row.expires_at, Some(fresh.expires_at));
    assert_eq!(
        (row.lease_owner, row.lease_until),
        (None, None),
        "storing ends the lease"
    );
    let opened = db
        .vault
        .open_string(&Aad::new("accounts", &a.id, "token"), &fresh.token_enc)
        .unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(&opened), "refreshed");
}

async fn failures_reauth_and_leases(db: Db) {
    let app = db.app().await;
    let a = db.account(&app.id, "c", "17841000000000001").await;
    assert!(
        db.store
            .acquire_refresh_lease(&a.id, "o1", NOW, NOW + 60)
            .await
            .unwrap()
    );
    // A failure is recorded only by the holder, and ends the lease.
    assert!(
        !db.store
            .record_refresh_failure(&a.id, "o2", NOW, "boom", NOW + 600, false)
            .await
            .unwrap()
    );
    assert!(
        db.store
            .record_refresh_failure(&a.id, "o1", NOW, "upstream 500", NOW + 600, false)
            .await
            .unwrap()
    );
    let row = db.store.get_account(&a.id).await.unwrap().unwrap();
    assert_eq!(row.refresh_attempts, 1);
    assert_eq!(row.backoff_until, Some(NOW + 600));
    assert_eq!(row.next_refresh_at, Some(NOW + 600));
    assert_eq!(row.last_error.as_deref(), Some("upstream 500"));
    assert_eq!(row.lease_owner, None);

    // release only releases one's own lease.
    assert!(
        db.store
            .acquire_refresh_lease(&a.id, "o1", NOW + 1, NOW + 61)
            .await
            .unwrap()
    );
    db.store.release_refresh_lease(&a.id, "o2").await.unwrap();
    assert_eq!(
        db.store
            .get_account(&a.id)
            .await
            .unwrap()
            .unwrap()
            .lease_owner
            .as_deref(),
        Some("o1")
    );
    db.store.release_refresh_lease(&a.id, "o1").await.unwrap();
    assert_eq!(
        db.store
            .get_account(&a.id)
            .await
            .unwrap()
            .unwrap()
            .lease_owner,
        None
    );

    // reauth_required: nothing refreshes it any more.
    assert!(
        db.store
            .mark_reauth_required(&a.id, "password_changed", NOW + 2)
            .await
            .unwrap()
    );
    assert!(
        !db.store
            .mark_reauth_required(&a.id, "again", NOW + 3)
            .await
            .unwrap()
    );
    let row = db.store.get_account(&a.id).await.unwrap().unwrap();
    assert_eq!(
        (row.status.as_str(), row.status_reason.as_deref()),
        ("reauth_required", Some("password_changed"))
    );
    assert_eq!(row.next_refresh_at, None);
    assert!(
        !db.store
            .acquire_refresh_lease(&a.id, "o1", NOW + 4, NOW + 64)
            .await
            .unwrap()
    );
}

async fn revoke_deletes_the_ciphertext(db: Db) {
    let app = db.app().await;
    let a = db.account(&app.id, "c", "17841000000000001").await;
    assert!(
        db.store
            .revoke_account(&a.id, "user asked", NOW)
            .await
            .unwrap()
    );
    assert!(
        !db.store.revoke_account(&a.id, "twice", NOW).await.unwrap(),
        "revoking twice is a no-op"
    );
    let row = db.store.get_account(&a.id).await.unwrap().unwrap();
    assert_eq!(row.status.as_str(), "revoked");
    assert_eq!(row.token_enc, None);
    assert_eq!(row.token_key_version, None);
    let (remaining,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM accounts WHERE token_enc IS NOT NULL OR token_key_version IS NOT NULL",
    )
    .fetch_one(db.store.pool())
    .await
    .unwrap();
    assert_eq!(remaining, 0);
    assert!(
        db.store
            .count_sealed_by_version(SealedColumn::AccountToken)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn audit_chain_detects_an_edited_row(db: Db) {
    db.audit(5).await;
    assert_eq!(
        db.store.verify_audit().await.unwrap(),
        ChainCheck::Intact { entries: 5 }
    );
    let rows = db.store.list_audit(None, None, None, 0, 10).await.unwrap();
    assert_eq!(rows.len(), 5);
    let only = db
        .store
        .list_audit(Some("acc_2"), Some("token.read"), Some(NOW), 0, 10)
        .await
        .unwrap();
    assert_eq!(only.len(), 1);
    let third = rows[2].seq;
    db.exec(&format!(
        "UPDATE audit_log SET actor = 'someone else' WHERE seq = {third}"
    ))
    .await;
    match db.store.verify_audit().await.unwrap() {
        ChainCheck::Broken { at_seq, reason } => {
            assert_eq!(at_seq, third);
            assert!(reason.contains("altered"), "{reason}");
        }
        other => panic!("an edited entry went unnoticed: {other:?}"),
    }
}

/// Each column of an entry is covered by its hash: changing any one breaks the chain at that
/// entry, and putting the value back mends it.
async fn audit_hash_covers_every_field(db: Db) {
    db.audit(3).await;
    let rows = db.store.list_audit(None, None, None, 0, 10).await.unwrap();
    let seq = rows[1].seq;
    for (column, forged, original) in [
        (
            "id",
            "'aud_forged'".to_string(),
            format!("'{}'", rows[1].id),
        ),
        ("at", format!("{}", NOW + 999), format!("{}", rows[1].at)),
        ("actor", "'cli:forged'".into(), "'cli:test'".into()),
        ("action", "'token.revoked'".into(), "'token.read'".into()),
        ("account_id", "'acc_forged'".into(), "'acc_1'".into()),
        ("app_id", "'app_forged'".into(), "NULL".into()),
        ("detail", "'{\"forged\":1}'".into(), "'{}'".into()),
    ] {
        db.exec(&format!(
            "UPDATE audit_log SET {column} = {forged} WHERE seq = {seq}"
        ))
        .await;
        match db.store.verify_audit().await.unwrap() {
            ChainCheck::Broken { at_seq, .. } => assert_eq!(at_seq, seq, "{column}"),
            other => panic!("a changed {column} went unnoticed: {other:?}"),
        }
        db.exec(&format!(
            "UPDATE audit_log SET {column} = {original} WHERE seq = {seq}"
        ))
        .await;
        assert_eq!(
            db.store.verify_audit().await.unwrap(),
            ChainCheck::Intact { entries: 3 },
            "restoring {column}"
        );
    }
}

async fn audit_chain_detects_a_deleted_middle_row(db: Db) {
    db.audit(5).await;
    let rows = db.store.list_audit(None, None, None, 0, 10).await.unwrap();
    db.exec(&format!(
        "DELETE FROM audit_log WHERE seq = {}",
        rows[2].seq
    ))
    .await;
    match db.store.verify_audit().await.unwrap() {
        ChainCheck::Broken { at_seq, reason } => {
            assert_eq!(at_seq, rows[3].seq);
            assert!(reason.contains("removed"), "{reason}");
        }
        other => panic!("a deleted entry went unnoticed: {other:?}"),
    }
}

async fn audit_chain_detects_a_deleted_last_row(db: Db) {
    db.audit(4).await;
    let rows = db.store.list_audit(None, None, None, 0, 10).await.unwrap();
    db.exec(&format!(
        "DELETE FROM audit_log WHERE seq = {}",
        rows[3].seq
    ))
    .await;
    match db.store.verify_audit().await.unwrap() {
        ChainCheck::Broken { reason, .. } => {
            assert!(reason.contains("newest entries were removed"), "{reason}")
        }
        other => panic!("a deleted last entry went unnoticed: {other:?}"),
    }
    // Appending continues the chain from the head, so the gap stays visible.
    db.audit(1).await;
    assert!(matches!(
        db.store.verify_audit().await.unwrap(),
        ChainCheck::Broken { .. }
    ));
}

async fn newer_schema_is_refused(db: Db) {
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (99990101, 'from a newer igbroker', TRUE, $1, 0)",
    )
    .bind(vec![0u8; 48])
    .execute(db.store.pool())
    .await
    .unwrap();
    let err = Store::open(&db.url).await.unwrap_err();
    assert!(matches!(err, StoreError::NewerSchema(99990101)), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("newer than this igbroker"), "{message}");
}

async fn key_version_columns_follow_the_ciphertext(db: Db) {
    let app = db.app().await;
    let mut a = db.new_account(&app.id, "c", "17841000000000001");
    // A caller that names the wrong version (a ring reloaded between sealing and asking)
    // cannot make the column lie: the header wins.
    a.token.key_version = 77;
    db.store.insert_account(&a, NOW).await.unwrap();
    let row = db.store.get_account(&a.id).await.unwrap().unwrap();
    assert_eq!(
        row.token_key_version,
        Some(i64::from(sealed_key_version(&a.token.token_enc).unwrap()))
    );

    let s = db.session(&app.id, "st");
    db.store.insert_connect_session(&s).await.unwrap();
    let v = i64::from(db.vault.current_version());
    assert_eq!(
        db.store
            .count_sealed_by_version(SealedColumn::ConnectState)
            .await
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        vec![(v, 1)]
    );
    // Sessions from before the column existed are filled in at the next migrate.
    db.exec("UPDATE connect_sessions SET state_key_version = NULL")
        .await;
    db.store.migrate().await.unwrap();
    let (filled,): (i64,) = sqlx::query_as("SELECT state_key_version FROM connect_sessions")
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    assert_eq!(filled, v);

    // Apps carry no version column: their headers are read.
    db.store
        .set_app_webhook_secret(
            &app.id,
            &db.seal("apps", &app.id, "webhook_secret", "whsec"),
        )
        .await
        .unwrap();
    for column in [
        SealedColumn::AppClientSecret,
        SealedColumn::AppWebhookSecret,
    ] {
        assert_eq!(
            db.store
                .count_sealed_by_version(column)
                .await
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            vec![(v, 1)],
            "{column:?}"
        );
    }
}

async fn sealed_pages_and_compare_and_swap(db: Db) {
    let app = db.app().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            db.account(&app.id, "c", &format!("1784100000000000{i}"))
                .await
                .id,
        );
    }
    ids.sort();
    let v1 = i64::from(db.vault.current_version());

    // Pages in id order, with a cursor, ending with None.
    let p1 = db
        .store
        .sealed_page(SealedColumn::AccountToken, v1, "", 2)
        .await
        .unwrap();
    assert_eq!(
        p1.values.iter().map(|v| &v.id).collect::<Vec<_>>(),
        vec![&ids[0], &ids[1]]
    );
    let p2 = db
        .store
        .sealed_page(
            SealedColumn::AccountToken,
            v1,
            p1.next_after.as_deref().unwrap(),
            2,
        )
        .await
        .unwrap();
    let p3 = db
        .store
        .sealed_page(
            SealedColumn::AccountToken,
            v1,
            p2.next_after.as_deref().unwrap(),
            2,
        )
        .await
        .unwrap();
    assert_eq!(p3.values.len(), 1);
    assert_eq!(p3.next_after, None);
    assert!(
        db.store
            .sealed_page(SealedColumn::AccountToken, v1 + 1, "", 10)
            .await
            .unwrap()
            .values
            .is_empty()
    );

    // Re-seal under a new key; one row changes underneath (a refresh) and keeps its value.
    let mut ring = db.vault.ring();
    let v2 = ring.add_version();
    ring.make_current(v2).unwrap();
    let vault2 = Vault::new(ring);
    let page = db
        .store
        .sealed_page(SealedColumn::AccountToken, v1, "", 10)
        .await
        .unwrap();
    let swaps: Vec<SealedSwap> = page
        .values
        .iter()
        .map(|v| SealedSwap {
            id: v.id.clone(),
            old: v.sealed.clone(),
            new: vault2
                .reseal(&Aad::new("accounts", &v.id, "token"), &v.sealed)
                .unwrap()
                .unwrap(),
        })
        .collect();
    let concurrent = db.token(&ids[2], "refreshed meanwhile", NOW + 5);
    db.store
        .acquire_refresh_lease(&ids[2], "o", NOW + 5, NOW + 60)
        .await
        .unwrap();
    assert!(
        db.store
            .store_refreshed_token(&ids[2], "o", NOW + 5, &concurrent)
            .await
            .unwrap()
    );
    let written = db
        .store
        .swap_sealed(SealedColumn::AccountToken, &swaps)
        .await
        .unwrap();
    assert_eq!(
        written, 4,
        "the row that changed meanwhile is not overwritten"
    );
    let kept = db.store.get_account(&ids[2]).await.unwrap().unwrap();
    assert_eq!(kept.token_enc.as_deref(), Some(&concurrent.token_enc[..]));
    let counts = db
        .store
        .count_sealed_by_version(SealedColumn::AccountToken)
        .await
        .unwrap();
    assert_eq!(counts.get(&i64::from(v2)), Some(&4));
    assert_eq!(counts.get(&v1), Some(&1));
    let moved = db.store.get_account(&ids[0]).await.unwrap().unwrap();
    assert_eq!(moved.token_key_version, Some(i64::from(v2)));

    // Apps: pages filter by the header.
    let app_page = db
        .store
        .sealed_page(SealedColumn::AppClientSecret, v1, "", 10)
        .await
        .unwrap();
    assert_eq!(app_page.values.len(), 1);
    let swap = SealedSwap {
        id: app.id.clone(),
        old: app.client_secret_enc.clone(),
        new: vault2
            .reseal(
                &Aad::new("apps", &app.id, "client_secret"),
                &app.client_secret_enc,
            )
            .unwrap()
            .unwrap(),
    };
    assert_eq!(
        db.store
            .swap_sealed(SealedColumn::AppClientSecret, std::slice::from_ref(&swap))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        db.store
            .swap_sealed(SealedColumn::AppClientSecret, &[swap])
            .await
            .unwrap(),
        0,
        "a stale swap writes nothing"
    );
    assert!(
        db.store
            .sealed_page(SealedColumn::AppClientSecret, v1, "", 10)
            .await
            .unwrap()
            .values
            .is_empty()
    );
}

async fn replicas_register_heartbeat_and_leave(db: Db) {
    let mut r = ReplicaRow {
        node_id: "node_a".into(),
        description: "host a, pid 1".into(),
        key_versions: "1,2".into(),
        fingerprints: "1:aaaa,2:bbbb".into(),
        current_version: 1,
        started_at: NOW,
        heartbeat_at: NOW,
    };
    db.store.upsert_replica(&r).await.unwrap();
    let stale = ReplicaRow {
        node_id: "node_b".into(),
        heartbeat_at: NOW - 3600,
        ..r.clone()
    };
    db.store.upsert_replica(&stale).await.unwrap();

    let live = db.store.live_replicas(NOW - 60).await.unwrap();
    assert_eq!(live, vec![r.clone()]);
    assert_eq!(live[0].versions(), vec![1, 2]);
    assert_eq!(live[0].fingerprint(2), Some("bbbb"));
    assert_eq!(live[0].fingerprint(3), None);

    // A heartbeat updates versions and time, never the start.
    r.key_versions = "1,2,3".into();
    r.current_version = 3;
    r.heartbeat_at = NOW + 10;
    db.store
        .upsert_replica(&ReplicaRow {
            started_at: NOW + 10,
            ..r.clone()
        })
        .await
        .unwrap();
    let live = db.store.live_replicas(NOW).await.unwrap();
    assert_eq!(live, vec![r.clone()]);

    assert_eq!(db.store.prune_replicas(NOW - 60).await.unwrap(), 1);
    assert!(db.store.remove_replica("node_a").await.unwrap());
    assert!(!db.store.remove_replica("node_a").await.unwrap());
    assert!(db.store.live_replicas(0).await.unwrap().is_empty());
}

/// Not per backend: there is no PostgreSQL to reach.
#[tokio::test]
async fn unreachable_postgres_names_the_problem_without_the_password() {
    // A port held closed for the whole test: bound but never listening, so the connection is
    // refused at once and no other process can start listening there meanwhile (a port bound,
    // dropped and assumed free could be taken in between).
    let closed = tokio::net::TcpSocket::new_v4().unwrap();
    closed.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = closed.local_addr().unwrap();
    let url = format!("postgres://igb:hunter2secret@{addr}/igb");
    let started = std::time::Instant::now();
    let err = Store::open(&url).await.unwrap_err();
    assert!(matches!(err, StoreError::Unreachable { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("cannot reach the database (PostgreSQL)"),
        "{message}"
    );
    assert!(message.contains("database_url"), "{message}");
    assert!(!message.contains("hunter2secret"), "{message}");
    assert!(!format!("{err:?}").contains("hunter2secret"));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "a refused connection must not hang"
    );
}

#[tokio::test]
async fn unsupported_url_is_refused_with_the_accepted_forms() {
    let err = Store::open("mysql://root:pw@localhost/igb")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnsupportedUrl(_)), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("sqlite://") && message.contains("postgres://"));
    assert!(!message.contains(":pw@"), "{message}");
}

/// SQLite's planner has no statistics on a young database, so the indexes must be ones it
/// picks without them: each of these reads the rows of its answer, never the whole table
/// (no `SCAN`, no sort of a whole set). PostgreSQL picks by statistics; the benchmarks measure it.
#[tokio::test]
async fn sqlite_plans_read_only_the_answer() {
    let db = sqlite_db().await;
    let mut queries: Vec<(String, usize)> = Vec::new();
    for filter in [
        AccountFilter {
            app_id: Some("a".into()),
            ..Default::default()
        },
        AccountFilter {
            end_user: Some("u".into()),
            ..Default::default()
        },
        AccountFilter {
            status: Some(AccountStatus::Active),
            ..Default::default()
        },
        AccountFilter {
            app_id: Some("a".into()),
            status: Some(AccountStatus::Active),
            ..Default::default()
        },
        AccountFilter {
            app_id: Some("a".into()),
            end_user: Some("u".into()),
            status: Some(AccountStatus::Active),
            ..Default::default()
        },
    ] {
        let (sql, values) = igbroker_store::list_accounts_sql(&filter);
        queries.push((sql, values.len() + 2));
    }
    // The key-version queries of rotation.
    queries.push((
        "SELECT token_key_version, COUNT(*) FROM accounts WHERE token_key_version IS NOT NULL GROUP BY token_key_version".into(),
        0,
    ));
    queries.push((
        "SELECT id, token_enc AS sealed FROM accounts WHERE token_key_version = $1 AND id > $2 AND token_enc IS NOT NULL ORDER BY id LIMIT $3".into(),
        3,
    ));
    for (sql, params) in queries {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")));
        for _ in 0..params {
            q = q.bind(1i64);
        }
        let rows = q.fetch_all(db.store.pool()).await.unwrap();
        let plan: Vec<String> = rows
            .iter()
            .map(|r| sqlx::Row::get::<String, _>(r, 3))
            .collect();
        assert!(
            plan.iter()
                .all(|p| p.starts_with("SEARCH") && !p.contains("TEMP B-TREE")),
            "{sql}\n{plan:?}"
        );
    }
}

/// The statement the scheduler runs to claim due work, as the store builds it: the due
/// accounts come from the `accounts_due` index in due order (no scan of `accounts`, no sort),
/// and the row updates find each claimed row by its key. The one scan allowed is of
/// `app_budgets`, a row per app on hold.
#[tokio::test]
async fn sqlite_plans_the_scheduler_claim_from_the_due_index() {
    let db = sqlite_db().await;
    let sql = igbroker_store::claim_due_sql(igbroker_store::Backend::Sqlite);
    let mut q = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")));
    for _ in 0..4 {
        q = q.bind(1i64);
    }
    let rows = q.fetch_all(db.store.pool()).await.unwrap();
    let plan: Vec<String> = rows
        .iter()
        .map(|r| sqlx::Row::get::<String, _>(r, 3))
        .collect();
    assert!(
        plan.iter()
            .any(|p| p.starts_with("SEARCH accounts USING") && p.contains("accounts_due")),
        "due accounts come from the accounts_due index: {plan:#?}"
    );
    for p in &plan {
        assert!(
            !p.contains("TEMP B-TREE"),
            "nothing is sorted: {p}\n{plan:#?}"
        );
        assert!(
            !p.starts_with("SCAN") || p.starts_with("SCAN app_budgets"),
            "no table but app_budgets is scanned: {p}\n{plan:#?}"
        );
    }
}
