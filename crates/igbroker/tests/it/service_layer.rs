//! The service layer's own guarantees: a change commits with its audit entry and
//! its event or not at all, a key limited to some apps pages through exactly its
//! apps, and the service modules form a chain without cycles.

use std::collections::BTreeSet;

use crate::common::{Backend, TestEnv, s};
use igbroker_core::AccountStatus;
use igbroker_store::Backend as StoreBackend;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// An app with a webhook (so that a revoke has an outbox event) and one account on it.
async fn account_with_webhook(env: &TestEnv) -> (String, String) {
    let app = env
        .register_app(json!({"webhook_url": "http://127.0.0.1:9/hook"}))
        .await;
    let app_id = s(&app["id"]);
    let account = env.connect_to(&app_id, crate::common::USER, "user-1").await;
    (app_id, account)
}

/// Makes the database refuse inserts into `table` whose `column` is `value`.
pub(crate) async fn refuse_inserts(env: &TestEnv, table: &str, column: &str, value: &str) {
    let store = env.state.store();
    // One trigger per refused value, so a test may refuse several.
    let name: String = format!("refuse_{table}_{value}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let statements = match store.backend() {
        StoreBackend::Sqlite => vec![format!(
            "CREATE TRIGGER {name} BEFORE INSERT ON {table} WHEN NEW.{column} = '{value}'
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )],
        StoreBackend::Postgres => vec![
            "CREATE OR REPLACE FUNCTION refuse_insert() RETURNS trigger AS $$
             BEGIN RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql"
                .to_string(),
            format!(
                "CREATE TRIGGER {name} BEFORE INSERT ON {table} FOR EACH ROW
                 WHEN (NEW.{column} = '{value}') EXECUTE FUNCTION refuse_insert()"
            ),
        ],
    };
    for sql in statements {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(store.pool())
            .await
            .unwrap();
    }
}

async fn revoked_audit_entries(env: &TestEnv, account: &str) -> usize {
    env.state
        .store()
        .list_audit(Some(account), Some("account.revoked"), None, 0, 100)
        .await
        .unwrap()
        .len()
}

async fn revoked_events(env: &TestEnv, app_id: &str, account: &str) -> usize {
    env.state
        .store()
        .list_outbox(Some(app_id), 1000)
        .await
        .unwrap()
        .iter()
        .filter(|r| r.event == "account.revoked" && r.account_id.as_deref() == Some(account))
        .count()
}

async fn a_failed_write_leaves_the_revoke_uncommitted(backend: Backend, table: &str) {
    let Some(env) = TestEnv::start(backend).await else {
        return;
    };
    let (app_id, account) = account_with_webhook(&env).await;
    let (column, value) = match table {
        "audit_log" => ("action", "account.revoked"),
        _ => ("event", "account.revoked"),
    };
    refuse_inserts(&env, table, column, value).await;

    let result =
        igbroker::service::accounts::revoke(&env.state, &account, "cli:test", "by the test").await;
    let err = result.expect_err("the revoke must fail when its write is refused");
    assert!(
        matches!(err, igbroker::service::Error::Store(_)),
        "a store error, not {err:?}"
    );

    let acc = env
        .state
        .store()
        .get_account(&account)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        acc.status,
        AccountStatus::Active,
        "the status change rolled back"
    );
    assert!(acc.token_enc.is_some(), "the token was not destroyed");
    assert_eq!(revoked_audit_entries(&env, &account).await, 0);
    assert_eq!(revoked_events(&env, &app_id, &account).await, 0);
    // Through the API too: the account still serves its token.
    let (st, body) = env.get(&format!("/v1/accounts/{account}/token")).await;
    assert_eq!(st, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn revoke_commits_nothing_when_its_audit_entry_fails_sqlite() {
    a_failed_write_leaves_the_revoke_uncommitted(Backend::Sqlite, "audit_log").await;
}

#[tokio::test]
async fn revoke_commits_nothing_when_its_audit_entry_fails_postgres() {
    a_failed_write_leaves_the_revoke_uncommitted(Backend::Postgres, "audit_log").await;
}

#[tokio::test]
async fn revoke_commits_nothing_when_its_event_fails_sqlite() {
    a_failed_write_leaves_the_revoke_uncommitted(Backend::Sqlite, "webhook_outbox").await;
}

#[tokio::test]
async fn revoke_commits_nothing_when_its_event_fails_postgres() {
    a_failed_write_leaves_the_revoke_uncommitted(Backend::Postgres, "webhook_outbox").await;
}

async fn a_revoke_commits_with_its_audit_entry_and_event(backend: Backend) {
    let Some(env) = TestEnv::start(backend).await else {
        return;
    };
    let (app_id, account) = account_with_webhook(&env).await;
    let (st, body) = env
        .api(
            reqwest::Method::DELETE,
            &format!("/v1/accounts/{account}"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");

    let acc = env
        .state
        .store()
        .get_account(&account)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(acc.status, AccountStatus::Revoked);
    assert!(acc.token_enc.is_none(), "revocation destroys the token");
    assert_eq!(revoked_audit_entries(&env, &account).await, 1);
    assert_eq!(revoked_events(&env, &app_id, &account).await, 1);

    // A second revoke changes nothing and records nothing more.
    igbroker::service::accounts::revoke(&env.state, &account, "cli:test", "again")
        .await
        .unwrap();
    assert_eq!(revoked_audit_entries(&env, &account).await, 1);
    assert_eq!(revoked_events(&env, &app_id, &account).await, 1);
}

#[tokio::test]
async fn a_revoke_commits_with_its_audit_entry_and_event_sqlite() {
    a_revoke_commits_with_its_audit_entry_and_event(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_revoke_commits_with_its_audit_entry_and_event_postgres() {
    a_revoke_commits_with_its_audit_entry_and_event(Backend::Postgres).await;
}

async fn count(env: &TestEnv, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(env.state.store().pool())
        .await
        .unwrap()
}

/// A dashboard sign-in (by credential or by one-time link) opens its session only
/// together with its `ui.signed_in` entry; a refused entry leaves the link usable.
async fn a_sign_in_commits_with_its_audit_entry_or_not_at_all(backend: Backend) {
    use igbroker::service::sign_in;
    let Some(env) = TestEnv::start(backend).await else {
        return;
    };
    let sessions = "SELECT COUNT(*) FROM ui_sessions WHERE kind = 'session'";
    let links = "SELECT COUNT(*) FROM ui_sessions WHERE kind = 'link'";
    let signed_in = "SELECT COUNT(*) FROM audit_log WHERE action = 'ui.signed_in'";
    let link = sign_in::create_link(&env.state, "ui:test").await.unwrap();
    let link_secret = link.rsplit('/').next().unwrap().to_string();
    refuse_inserts(&env, "audit_log", "action", "ui.signed_in").await;

    let who = sign_in::Identity {
        actor: "ui:admin".into(),
        api_key_id: None,
    };
    let err = sign_in::open(&env.state, who).await.err().expect("refused");
    assert!(matches!(err, igbroker::service::Error::Store(_)), "{err:?}");
    let err = sign_in::open_by_link(&env.state, &link_secret)
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, igbroker::service::Error::Store(_)), "{err:?}");
    assert_eq!(
        count(&env, sessions).await,
        0,
        "no session without its entry"
    );
    assert_eq!(count(&env, links).await, 1, "the link was not used up");
    assert_eq!(count(&env, signed_in).await, 0);

    let drop_trigger = match env.state.store().backend() {
        StoreBackend::Sqlite => "DROP TRIGGER refuse_audit_log_ui_signed_in",
        StoreBackend::Postgres => "DROP TRIGGER refuse_audit_log_ui_signed_in ON audit_log",
    };
    sqlx::query(drop_trigger)
        .execute(env.state.store().pool())
        .await
        .unwrap();
    sign_in::open_by_link(&env.state, &link_secret)
        .await
        .unwrap();
    assert_eq!(count(&env, sessions).await, 1);
    assert_eq!(count(&env, links).await, 0);
    assert_eq!(count(&env, signed_in).await, 1);
}

#[tokio::test]
async fn a_sign_in_commits_with_its_audit_entry_or_not_at_all_sqlite() {
    a_sign_in_commits_with_its_audit_entry_or_not_at_all(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_sign_in_commits_with_its_audit_entry_or_not_at_all_postgres() {
    a_sign_in_commits_with_its_audit_entry_or_not_at_all(Backend::Postgres).await;
}

/// A connect session started in the dashboard is stored only with its
/// `connect_session.created` entry naming who started it.
async fn a_dashboard_connect_session_commits_with_its_audit_entry(backend: Backend) {
    use igbroker::service::connect::{self, NewSession};
    let Some(env) = TestEnv::start(backend).await else {
        return;
    };
    let new = || NewSession {
        app_id: env.app_id.clone(),
        end_user: Some("user-7".into()),
        scopes: None,
        return_url: None,
        account_id: None,
    };
    let stored = "SELECT COUNT(*) FROM connect_sessions";
    let created = "SELECT COUNT(*) FROM audit_log WHERE action = 'connect_session.created'";
    refuse_inserts(&env, "audit_log", "action", "connect_session.created").await;
    let err = connect::create_by(&env.state, new(), "ui:admin")
        .await
        .expect_err("refused");
    assert!(matches!(err, igbroker::service::Error::Store(_)), "{err:?}");
    assert_eq!(count(&env, stored).await, 0, "no session without its entry");
    assert_eq!(count(&env, created).await, 0);
}

#[tokio::test]
async fn a_dashboard_connect_session_commits_with_its_audit_entry_sqlite() {
    a_dashboard_connect_session_commits_with_its_audit_entry(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_dashboard_connect_session_commits_with_its_audit_entry_postgres() {
    a_dashboard_connect_session_commits_with_its_audit_entry(Backend::Postgres).await;
}

/// 120 apps of which every other one belongs to a limited key: paging with a
/// small limit must hand the key exactly its 60, in full pages.
async fn a_limited_key_pages_through_exactly_its_apps(backend: Backend) {
    let Some(env) = TestEnv::start(backend).await else {
        return;
    };
    let mut own = BTreeSet::new();
    for i in 0..120 {
        let (row, _) = igbroker::service::apps::create(
            &env.state,
            "cli:test",
            serde_json::from_value(json!({
                "name": format!("app {i}"),
                "client_id": format!("client{i}"),
                "client_secret": "secret",
                "scopes": ["instagram_business_basic"],
            }))
            .unwrap(),
        )
        .await
        .unwrap();
        if i % 2 == 1 {
            own.insert(row.id);
        }
    }
    let own_list: Vec<String> = own.iter().cloned().collect();
    let (_, key) = igbroker::service::api_keys::create(
        env.state.store(),
        "test",
        igbroker::service::api_keys::NewKey {
            name: "limited",
            scopes: &["accounts:read".into()],
            app_ids: &own_list,
            rate_limit_per_second: None,
        },
        0,
    )
    .await
    .unwrap();

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut url = format!("{}/v1/apps?limit=7", env.broker);
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let resp = env.http.get(&url).bearer_auth(&key).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = resp.json().await.unwrap();
        let data = body["data"].as_array().unwrap();
        pages += 1;
        seen.extend(data.iter().map(|a| s(&a["id"])));
        match body["next_cursor"].as_str() {
            Some(c) => {
                assert_eq!(data.len(), 7, "a page before the last is full");
                cursor = Some(c.to_string());
            }
            None => break,
        }
        assert!(pages < 20, "paging does not end");
    }
    assert_eq!(seen.len(), 60, "no app twice, none missing");
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), own);
    assert_eq!(pages, 9, "60 apps in pages of 7");
}

#[tokio::test]
async fn a_limited_key_pages_through_exactly_its_apps_sqlite() {
    a_limited_key_pages_through_exactly_its_apps(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_limited_key_pages_through_exactly_its_apps_postgres() {
    a_limited_key_pages_through_exactly_its_apps(Backend::Postgres).await;
}

/// The order of the service chain: a module may import only modules before it.
const CHAIN: &[&str] = &[
    "error",
    "audit",
    "sign_in",
    "apps",
    "events",
    "accounts",
    "meta",
    "doctor",
    "anomaly",
    "instagram_webhooks",
    "connect",
    "refresh",
    "tokens",
    "upstream_budget",
    "pages",
    "graph",
    "publish",
];
/// Modules outside the chain, which may use only `error`.
const APART: &[&str] = &["api_keys", "dashboard", "rotation"];

fn service_imports(source: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let names: Vec<&str> = CHAIN.iter().chain(APART).copied().collect();
    for (i, _) in source.match_indices("service::") {
        let rest = &source[i + "service::".len()..];
        let group = if let Some(inner) = rest.strip_prefix('{') {
            inner.split('}').next().unwrap_or("")
        } else {
            rest.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .unwrap_or("")
        };
        for part in group.split(',') {
            let name = part.trim().split("::").next().unwrap_or("").trim();
            if names.contains(&name) {
                found.insert(name.to_string());
            }
        }
    }
    found
}

#[test]
fn service_modules_import_only_modules_before_them() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/service");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let module = path.file_stem().unwrap().to_str().unwrap().to_string();
        if module == "mod" {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        let allowed: Vec<&str> = match CHAIN.iter().position(|m| *m == module) {
            Some(at) => CHAIN[..at].to_vec(),
            None if APART.contains(&module.as_str()) => vec!["error"],
            None => panic!("service module `{module}` is in neither the chain nor APART"),
        };
        for import in service_imports(&source) {
            if import == module {
                continue;
            }
            assert!(
                allowed.contains(&import.as_str()),
                "service::{module} imports service::{import}, which comes after it in the chain"
            );
        }
        checked += 1;
    }
    assert_eq!(checked, CHAIN.len() + APART.len());
}

#[test]
fn the_import_scan_sees_grouped_and_single_imports() {
    let found = service_imports(
        "use crate::service::{accounts, audit};\nuse crate::service::refresh::require_usable;\n\
         crate::service::events::sign(&[], 0, b\"\");",
    );
    let want: BTreeSet<String> = ["accounts", "audit", "refresh", "events"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(found, want);
}

#[test]
fn nothing_under_service_or_worker_speaks_http_and_service_never_calls_a_worker() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for dir in ["service", "worker"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let source = std::fs::read_to_string(&path).unwrap();
            for (n, line) in source.lines().enumerate() {
                let code = line.trim_start();
                if code.starts_with("//") {
                    continue;
                }
                let worker = ["crate::worker"];
                let also: &[&str] = if dir == "service" { &worker } else { &[] };
                for banned in ["ApiError", "crate::http", "crate::cli", "axum::"]
                    .iter()
                    .chain(also)
                {
                    assert!(
                        !code.contains(banned),
                        "{}:{} uses `{banned}`: the service layer and workers return service::Error",
                        path.display(),
                        n + 1
                    );
                }
            }
        }
    }
}

/// Creating and revoking an API key through the API: each commits with its audit entry,
/// and a refused audit entry leaves no key behind (nor revokes one).
async fn api_keys_commit_with_their_audit_entries(backend: Backend) {
    let Some(env) = TestEnv::start(backend).await else {
        return;
    };
    let count = |action: &'static str| {
        let store = env.state.store().clone();
        async move {
            store
                .list_audit(None, Some(action), None, 0, 100)
                .await
                .unwrap()
                .len()
        }
    };
    let created_before = count("api_key.created").await;
    let (st, key) = env
        .api(
            Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "k1", "scopes": ["accounts:read"]})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{key}");
    assert_eq!(count("api_key.created").await, created_before + 1);

    refuse_inserts(&env, "audit_log", "action", "api_key.created").await;
    let live_before = env.state.store().list_api_keys(None, 1000).await.unwrap();
    let (st, body) = env
        .api(
            Method::POST,
            "/v1/api-keys",
            Some(json!({"name": "k2", "scopes": ["accounts:read"]})),
        )
        .await;
    assert!(st.is_server_error(), "{st}: {body}");
    let live_after = env.state.store().list_api_keys(None, 1000).await.unwrap();
    assert_eq!(
        live_before.len(),
        live_after.len(),
        "no key without its audit entry"
    );

    refuse_inserts(&env, "audit_log", "action", "api_key.revoked").await;
    let id = s(&key["id"]);
    let (st, body) = env
        .api(Method::DELETE, &format!("/v1/api-keys/{id}"), None)
        .await;
    assert!(st.is_server_error(), "{st}: {body}");
    let (st, _) = env
        .http
        .get(format!("{}/v1/accounts", env.broker))
        .bearer_auth(s(&key["key"]))
        .send()
        .await
        .map(|r| (r.status(), ()))
        .unwrap();
    assert_eq!(
        st,
        StatusCode::OK,
        "the revoke rolled back: the key still works"
    );
}

#[tokio::test]
async fn api_keys_commit_with_their_audit_entries_sqlite() {
    api_keys_commit_with_their_audit_entries(Backend::Sqlite).await;
}

#[tokio::test]
async fn api_keys_commit_with_their_audit_entries_postgres() {
    api_keys_commit_with_their_audit_entries(Backend::Postgres).await;
}
