//! Token storage end to end: no plaintext at rest or in trace logs, key rotation online and
//! after a crash, replicas that block a rotation, and a missing key named clearly.

use crate::common;
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::common::{Backend, TestEnv, USER, contains, leaks, pg_dump, s};
use igbroker::service::rotation::{self, ReencryptOptions, Silent};
use igbroker::shutdown;
use igbroker::worker::replica::{self, RingReload};
use igbroker_core::{IdKind, PrefixedId};
use igbroker_store::{NewAccount, ReplicaRow, TokenUpdate};
use igbroker_vault::{Aad, KeyRing, KeyState, Vault, sealed_key_version};
use instagram_sandbox::control_client::{AppSpec, RefreshMode};
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

const HOUR: i64 = 3600;

// --- trace capture -------------------------------------------------------------------

#[derive(Clone)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every log line of this test binary at trace level, whatever RUST_LOG says: the broker
/// runs on the runtime's worker threads, so a thread-local subscriber would miss it.
fn trace_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = SharedBuf(buf.clone());
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init()
            .expect("this test binary installs the only subscriber");
        buf
    })
    .clone()
}

// --- helpers -------------------------------------------------------------------------

/// A sandbox app that issues a new token string on every refresh, registered with the
/// broker under `secret`. Returns the broker's app id.
async fn app_with_new_tokens(env: &TestEnv, secret: &str) -> String {
    let sb = env
        .sb
        .create_app(&AppSpec {
            client_secret: Some(secret.into()),
            refresh_mode: Some(RefreshMode::New),
            ..AppSpec::redirecting_to(format!("{}/oauth/callback", env.broker))
        })
        .await
        .unwrap();
    let (st, app) = env
        .api(
            Method::POST,
            "/v1/apps",
            Some(json!({"name": "Canary app", "client_id": sb.client_id,
                        "client_secret": secret, "scopes": ["instagram_business_basic"],
                        "return_origins": [common::RETURN_ORIGIN]})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{app}");
    s(&app["id"])
}

struct Connected {
    account_id: String,
    state: String,
    code: String,
}

async fn connect_to(env: &TestEnv, app_id: &str, end_user: &str) -> Connected {
    let created = env
        .session(json!({"app_id": app_id, "end_user": end_user}))
        .await;
    let cb = env
        .consent(created["connect_url"].as_str().unwrap(), USER, "allow")
        .await;
    let q: HashMap<String, String> = cb.query_pairs().into_owned().collect();
    let resp = env.callback(&cb).await;
    assert!(resp.status().is_success() || resp.status().is_redirection());
    let (_, sess) = env
        .get(&format!("/v1/connect-sessions/{}", s(&created["id"])))
        .await;
    assert_eq!(sess["status"], "connected", "{sess}");
    Connected {
        account_id: s(&sess["account_id"]),
        state: q["state"].clone(),
        code: q["code"].clone(),
    }
}

async fn read_token(env: &TestEnv, account_id: &str) -> Result<String, (StatusCode, Value)> {
    let (st, v) = env.get(&format!("/v1/accounts/{account_id}/token")).await;
    if st == StatusCode::OK {
        Ok(s(&v["access_token"]))
    } else {
        Err((st, v))
    }
}

async fn refresh(env: &TestEnv, account_id: &str) {
    let (st, v) = env
        .api(
            Method::POST,
            &format!("/v1/accounts/{account_id}/refresh"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "refresh: {v}");
}

fn ring_path(env: &TestEnv) -> PathBuf {
    env.state.config().keys.ring_file.clone()
}

/// A configuration file for the CLI naming the test's database and `ring`.
fn cli_config(env: &TestEnv, ring: &Path) -> PathBuf {
    let path = env
        .dir
        .path()
        .join(format!("cli-{}.toml", uuid::Uuid::now_v7().simple()));
    std::fs::write(
        &path,
        format!(
            "database_url = {:?}\n[keys]\nring_file = {:?}\n",
            env.database_url,
            ring.display().to_string()
        ),
    )
    .unwrap();
    path
}

fn cli(config: &Path, args: &[&str]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_igbroker"));
    c.args(args)
        .arg("--config")
        .arg(config)
        .env_remove("IGBROKER_KEYS__RING")
        .env("IGBROKER_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    c
}

async fn run_cli(config: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = cli(config, args).output().await.unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn add_key_version(ring: &Path) -> u32 {
    let mut r = KeyRing::load_file(ring).unwrap();
    let v = r.add_version();
    r.write_file(ring).unwrap();
    v
}

/// Accounts written straight to the store under the broker's current key, with their
/// plaintext tokens.
async fn seed_accounts(env: &TestEnv, n: usize) -> Vec<(String, String)> {
    let now = env.state.now();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let id = PrefixedId::generate(IdKind::Account).into_string();
        let token = format!("IGAAbulk{i:07}{}", uuid::Uuid::new_v4().simple());
        let sealed = env
            .state
            .vault()
            .seal_str(&Aad::new("accounts", &id, "token"), &token)
            .unwrap();
        let a = NewAccount {
            id: id.clone(),
            app_id: env.app_id.clone(),
            end_user: format!("bulk-{i}"),
            ig_user_id: format!("1784199{i:010}"),
            ig_scoped_id: format!("99{i:010}"),
            username: None,
            scopes: vec![igbroker_core::InstagramScope::BusinessBasic],
            token: TokenUpdate {
                token_enc: sealed,
                key_version: i64::from(env.state.vault().current_version()),
                issued_at: now,
                expires_at: now + 60 * 86_400,
                next_refresh_at: now + 40 * 86_400,
            },
        };
        env.state.store().insert_account(&a, now).await.unwrap();
        out.push((id, token));
    }
    out
}

/// A vault holding only `version` of `ring`: what opens with it was sealed under it.
fn vault_with_only(ring: &KeyRing, version: u32) -> Vault {
    let key = ring.key(version).unwrap().clone();
    Vault::new(KeyRing::from_keys("test", [(version, key, KeyState::Current)]).unwrap())
}

/// Every sealed token opens under `version` alone and says so in its column.
async fn assert_all_under(env: &TestEnv, version: u32, expected: &HashMap<String, String>) {
    let ring = KeyRing::load_file(&ring_path(env)).unwrap();
    let only = vault_with_only(&ring, version);
    for (id, plaintext) in expected {
        let row = env.state.store().get_account(id).await.unwrap().unwrap();
        let sealed = row.token_enc.expect("token present");
        assert_eq!(sealed_key_version(&sealed).unwrap(), version, "{id}");
        assert_eq!(row.token_key_version, Some(i64::from(version)), "{id}");
        let opened = only
            .open_string(&Aad::new("accounts", id, "token"), &sealed)
            .unwrap();
        assert_eq!(opened.expose_secret(), plaintext, "{id}");
    }
    let usage = rotation::key_usage(env.state.store()).await.unwrap();
    assert_eq!(
        usage.by_version.keys().copied().collect::<Vec<_>>(),
        vec![i64::from(version)],
        "every sealed record is under v{version}: {usage:?}"
    );
}

// --- canary --------------------------------------------------------------------------

async fn canary(env: TestEnv) {
    let logs = trace_logs();
    let secret = format!("canary-secret-{}", uuid::Uuid::new_v4().simple());
    let app_id = app_with_new_tokens(&env, &secret).await;
    let c = connect_to(&env, &app_id, "canary-user").await;
    let first = read_token(&env, &c.account_id).await.unwrap();
    env.advance(30 * 86_400);
    refresh(&env, &c.account_id).await;
    let second = read_token(&env, &c.account_id).await.unwrap();
    assert_ne!(first, second, "the sandbox issues a new token on refresh");

    let secrets = [
        ("first token", first.as_str()),
        ("refreshed token", second.as_str()),
        ("client secret", secret.as_str()),
        ("OAuth state", c.state.as_str()),
        ("authorization code", c.code.as_str()),
    ];
    if env.database_url.starts_with("sqlite:") {
        let files = env.files();
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert!(
            names.iter().any(|n| n.ends_with("igbroker.db-wal")),
            "the WAL is checked too: {names:?}"
        );
        assert!(
            files
                .iter()
                .any(|(_, b)| contains(b, c.account_id.as_bytes())),
            "the same scan finds what is stored in clear (the account id)"
        );
        for (name, bytes) in &files {
            for (what, value) in secrets {
                assert!(!leaks(bytes, value), "{what} found in {name}");
            }
        }
    } else {
        let dump = pg_dump(&env.database_url);
        assert!(contains(&dump, b"COPY public.accounts"), "a real dump");
        assert!(
            contains(&dump, c.account_id.as_bytes()),
            "the same scan finds what is stored in clear (the account id)"
        );
        for (what, value) in secrets {
            assert!(!leaks(&dump, value), "{what} found in pg_dump");
        }
    }
    let logs = logs.lock().unwrap().clone();
    assert!(contains(&logs, b"TRACE"), "trace-level lines are captured");
    assert!(
        contains(&logs, c.account_id.as_bytes()),
        "the flow was logged"
    );
    for (what, value) in secrets {
        assert!(!leaks(&logs, value), "{what} found in trace logs");
    }
}
both_backends!(canary_no_plaintext_in_files_dumps_or_trace_logs, canary);

// --- rotation under load -------------------------------------------------------------

async fn rotation_under_load(env: TestEnv) {
    let (trigger, shutdown) = shutdown::channel();
    let heartbeat =
        replica::register_with_interval(env.state.clone(), shutdown, Duration::from_millis(50))
            .await;
    let app_id = app_with_new_tokens(&env, "rotation-secret").await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(
            connect_to(&env, &app_id, &format!("load-{i}"))
                .await
                .account_id,
        );
    }
    let bulk = seed_accounts(&env, 1500).await;

    let v2 = add_key_version(&ring_path(&env));
    // The running broker picks the new version up from its heartbeat.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !env.state.vault().holds(v2) {
        assert!(tokio::time::Instant::now() < deadline, "ring not reloaded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let env = Arc::new(env);
    let stop = Arc::new(AtomicBool::new(false));
    let latest: Arc<Mutex<HashMap<String, String>>> = Arc::new(Mutex::new(HashMap::new()));
    let history: Arc<Mutex<HashMap<String, HashSet<String>>>> = Arc::default();
    for id in &ids {
        let t = read_token(&env, id).await.unwrap();
        latest.lock().unwrap().insert(id.clone(), t.clone());
        history
            .lock()
            .unwrap()
            .entry(id.clone())
            .or_default()
            .insert(t);
    }
    // One writer refreshes the accounts in turn (the only writer of each token, so it knows
    // each account's latest value); readers read all of them meanwhile.
    let writer = {
        let (env, stop, ids, latest, history) = (
            env.clone(),
            stop.clone(),
            ids.clone(),
            latest.clone(),
            history.clone(),
        );
        tokio::spawn(async move {
            // When each refresh had been stored, to show they overlap the rotation.
            let mut finished = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let id = &ids[finished.len() % ids.len()];
                env.advance(25 * HOUR);
                refresh(&env, id).await;
                finished.push(Instant::now());
                let t = read_token(&env, id).await.expect("read after refresh");
                history
                    .lock()
                    .unwrap()
                    .entry(id.clone())
                    .or_default()
                    .insert(t.clone());
                latest.lock().unwrap().insert(id.clone(), t);
            }
            finished
        })
    };
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (env, stop, ids) = (env.clone(), stop.clone(), ids.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                // (when, records under v1, records under v2): the rotation's progress as
                // the readers saw it.
                let mut progress = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    for id in &ids {
                        match read_token(&env, id).await {
                            Ok(t) => seen.push((id.clone(), t)),
                            Err(e) => panic!("token read failed during rotation: {e:?}"),
                        }
                    }
                    let usage = rotation::key_usage(env.state.store()).await.unwrap();
                    progress.push((Instant::now(), usage.total(1), usage.total(i64::from(v2))));
                }
                (seen, progress)
            })
        })
        .collect();

    let config = cli_config(&env, &ring_path(&env));
    let started = Instant::now();
    let (code, stdout, stderr) = run_cli(
        &config,
        &["keys", "rotate", "--retire", "--batch-size", "10", "--json"],
    )
    .await;
    let ended = Instant::now();
    stop.store(true, Ordering::SeqCst);
    let refreshed_at = writer.await.unwrap();
    let mut reads = Vec::new();
    let mut progress = Vec::new();
    for r in readers {
        let (seen, p) = r.await.unwrap();
        reads.extend(seen);
        progress.extend(p);
    }
    assert_eq!(code, Some(0), "rotate: {stdout}\n{stderr}");
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["current_version"], v2);
    assert_eq!(report["remaining"], 0, "{report}");
    assert_eq!(report["retired"], json!([1]), "{report}");
    assert!(report["resealed"].as_u64().unwrap() >= 1500, "{report}");
    // The load really overlapped the rotation: refreshes were stored while the command ran,
    // and the readers saw the rotation half-way (records left under v1, others already
    // under v2, beyond the four the writer moves itself).
    let during = |t: &Instant| *t > started && *t < ended;
    let refreshed_during = refreshed_at.iter().filter(|t| during(t)).count();
    assert!(
        refreshed_during >= 1,
        "no refresh was stored while the rotation ran ({} in all)",
        refreshed_at.len()
    );
    let half_way = progress
        .iter()
        .filter(|(t, v1, v2)| during(t) && *v1 > 0 && *v2 > ids.len() as i64)
        .count();
    assert!(
        half_way >= 1,
        "no read saw the rotation half-way: {:?}",
        progress.iter().map(|(_, a, b)| (a, b)).collect::<Vec<_>>()
    );
    eprintln!(
        "overlap: {refreshed_during} of {} refreshes and {half_way} of {} samples during the rotation",
        refreshed_at.len(),
        progress.len()
    );

    // Nothing lost: every token is the last one its writer saw, and every read returned a
    // token the account really had.
    let latest = latest.lock().unwrap().clone();
    let history = history.lock().unwrap().clone();
    for (id, t) in &reads {
        assert!(
            history[id].contains(t),
            "a read returned a token never issued"
        );
    }
    for id in &ids {
        assert_eq!(&read_token(&env, id).await.unwrap(), &latest[id], "{id}");
    }
    let mut expected: HashMap<String, String> = bulk.into_iter().collect();
    expected.extend(latest);
    assert_all_under(&env, v2, &expected).await;
    let ring = KeyRing::load_file(&ring_path(&env)).unwrap();
    assert_eq!(ring.current_version(), v2);
    assert_eq!(ring.state(1), Some(KeyState::Retired));
    assert_eq!(env.state.vault().current_version(), v2);

    // On shutdown the replica leaves the registry.
    trigger.fire();
    heartbeat.await.unwrap();
    assert!(
        replica::live_replicas(env.state.store())
            .await
            .unwrap()
            .is_empty()
    );
}
both_backends!(
    rotation_under_concurrent_reads_and_refreshes_loses_nothing,
    rotation_under_load
);

// --- a rotation killed half-way ------------------------------------------------------

async fn killed_rotation(env: TestEnv) {
    let seeded: HashMap<String, String> = seed_accounts(&env, 3000).await.into_iter().collect();
    let v2 = add_key_version(&ring_path(&env));
    let config = cli_config(&env, &ring_path(&env));

    let mut child = cli(&config, &["keys", "rotate", "--batch-size", "10"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    // The first progress line comes after the first committed batch: kill it there.
    loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("a progress line before the end");
        if line.starts_with("re-encrypted ") {
            break;
        }
    }
    child.kill().await.unwrap(); // SIGKILL: no chance to clean up
    let usage = rotation::key_usage(env.state.store()).await.unwrap();
    let left = usage.total(1);
    assert!(
        left > 0 && usage.total(i64::from(v2)) > 0,
        "killed half-way: {usage:?}"
    );

    let (code, stdout, stderr) = run_cli(&config, &["keys", "rotate", "--json"]).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["remaining"], 0);
    assert_eq!(
        report["previous_version"], v2,
        "the key was already current"
    );
    assert_eq!(report["resealed"].as_i64().unwrap(), left, "{report}");
    assert_all_under(&env, v2, &seeded).await;

    // A third run has nothing to do.
    let (code, stdout, _) = run_cli(&config, &["keys", "rotate", "--json"]).await;
    assert_eq!(code, Some(0));
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["resealed"], 0);
}
both_backends!(
    rotation_killed_half_way_and_rerun_completes,
    killed_rotation
);

async fn stopped_rotation(env: TestEnv) {
    let seeded: HashMap<String, String> = seed_accounts(&env, 120).await.into_iter().collect();
    let mut ring = KeyRing::load_file(&ring_path(&env)).unwrap();
    let v2 = ring.add_version();
    ring.make_current(v2).unwrap();
    let vault = Vault::new(ring.clone());
    let options = ReencryptOptions {
        batch_size: 20,
        max_batches: Some(3),
    };
    let first = rotation::reencrypt(env.state.store(), &vault, options, &mut Silent)
        .await
        .unwrap();
    assert!(first.stopped_early);
    assert_eq!(first.resealed, 60);
    // 120 seeded accounts, the test app's secret and its no connect sessions remain.
    assert_eq!(first.remaining, 120 - 60 + 1);
    let second = rotation::reencrypt(
        env.state.store(),
        &vault,
        ReencryptOptions::default(),
        &mut Silent,
    )
    .await
    .unwrap();
    assert!(!second.stopped_early);
    assert_eq!(second.resealed, 61);
    assert_eq!(second.remaining, 0);
    ring.write_file(&ring_path(&env)).unwrap();
    assert_all_under(&env, v2, &seeded).await;
}
both_backends!(
    rotation_stopped_after_some_batches_resumes,
    stopped_rotation
);

// --- replicas ------------------------------------------------------------------------

async fn replicas_block_rotation(env: TestEnv) {
    let (trigger, shutdown) = shutdown::channel();
    let heartbeat = replica::register_and_heartbeat(env.state.clone(), shutdown).await;
    // The CLI works on a copy of the ring with a new version the broker never sees.
    let cli_ring = env.dir.path().join("cli-keys.toml");
    std::fs::copy(ring_path(&env), &cli_ring).unwrap();
    let v2 = add_key_version(&cli_ring);
    let config = cli_config(&env, &cli_ring);

    let (code, _, stderr) = run_cli(&config, &["keys", "rotate"]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(env.state.node_id()), "{stderr}");
    assert!(
        stderr.contains(&format!("does not hold key v{v2}")),
        "{stderr}"
    );
    let ring = KeyRing::load_file(&cli_ring).unwrap();
    assert_eq!(ring.current_version(), 1, "nothing was changed");

    let (code, stdout, _) = run_cli(&config, &["keys", "status", "--json"]).await;
    assert_eq!(code, Some(0));
    let status: Value = serde_json::from_str(stdout.trim()).unwrap();
    let replicas = status["replicas"].as_array().unwrap();
    assert_eq!(replicas.len(), 1, "{status}");
    assert_eq!(replicas[0]["node_id"], env.state.node_id());
    assert_eq!(replicas[0]["key_versions"], json!([1]));
    assert_eq!(replicas[0]["current_version"], 1);

    // Once it is gone (clean shutdown), nothing blocks.
    trigger.fire();
    heartbeat.await.unwrap();

    // A replica with other material under the same version number blocks, too.
    let theirs = KeyRing::generate();
    let fake = ReplicaRow {
        node_id: "node_other".into(),
        description: "host elsewhere, pid 7".into(),
        key_versions: format!("1,{v2}"),
        fingerprints: format!(
            "1:{},{v2}:{}",
            ring.fingerprint(1).unwrap(),
            theirs.fingerprint(1).unwrap()
        ),
        current_version: 1,
        started_at: replica::wall_clock_now(),
        heartbeat_at: replica::wall_clock_now(),
    };
    env.state.store().upsert_replica(&fake).await.unwrap();
    let (code, _, stderr) = run_cli(&config, &["keys", "rotate"]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("node_other") && stderr.contains("different key material"),
        "{stderr}"
    );

    // A replica that stopped sending heartbeats long ago does not count.
    env.state
        .store()
        .upsert_replica(&ReplicaRow {
            heartbeat_at: replica::wall_clock_now() - 10 * 60,
            ..fake
        })
        .await
        .unwrap();
    let (code, stdout, stderr) = run_cli(&config, &["keys", "rotate", "--json"]).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["current_version"], v2);
}
both_backends!(
    rotation_refuses_while_a_live_replica_lacks_the_key,
    replicas_block_rotation
);

async fn ring_reload(env: TestEnv) {
    let path = ring_path(&env);
    assert_eq!(replica::reload_ring(&env.state), RingReload::Unchanged);
    let v2 = add_key_version(&path);
    assert_eq!(
        replica::reload_ring(&env.state),
        RingReload::Reloaded { current: 1 }
    );
    assert!(env.state.vault().holds(v2));
    // A file that lost a key, or holds other material under a known version, is refused:
    // records sealed with the old key must stay readable.
    let before = env.state.vault().ring().fingerprint(1);
    KeyRing::generate().write_file(&path).unwrap();
    assert!(matches!(
        replica::reload_ring(&env.state),
        RingReload::Refused(_)
    ));
    assert_eq!(env.state.vault().ring().fingerprint(1), before);
    assert!(env.state.vault().holds(v2));
}
both_backends!(
    broker_reloads_an_extended_ring_and_refuses_a_replaced_one,
    ring_reload
);

// --- a missing key -------------------------------------------------------------------

async fn missing_key(env: TestEnv) {
    let logs = trace_logs();
    let id = env.connect(USER, "missing-key").await;
    // Seal the token under v3 of a ring that shares v1 with the broker's: the broker's
    // ring has no v3.
    let mut ring = KeyRing::load_file(&ring_path(&env)).unwrap();
    ring.add_version();
    let v3 = ring.add_version();
    ring.make_current(v3).unwrap();
    let sealed = Vault::new(ring)
        .seal_str(&Aad::new("accounts", &id, "token"), "IGAAunreadable")
        .unwrap();
    sqlx::query("UPDATE accounts SET token_enc = $1, token_key_version = 3 WHERE id = $2")
        .bind(sealed)
        .bind(&id)
        .execute(env.state.store().pool())
        .await
        .unwrap();

    let (st, body) = env.get(&format!("/v1/accounts/{id}/token")).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
    let message = s(&body["error"]["message"]);
    assert!(
        message.contains("encrypted with key v3, which the key ring does not hold"),
        "{message}"
    );
    assert!(body["error"]["request_id"].is_string());
    let logged = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(
        logged.contains("encrypted with key v3, which the key ring does not hold"),
        "the cause is in the log"
    );

    let config = cli_config(&env, &ring_path(&env));
    let (code, stdout, stderr) = run_cli(&config, &["keys", "status"]).await;
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("1 record(s) were encrypted with key v3, which the key ring does not hold"),
        "{stderr}"
    );
    let (code, stdout, _) = run_cli(&config, &["keys", "status", "--json"]).await;
    assert_eq!(code, Some(1));
    let status: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(status["missing_versions"][0]["version"], 3, "{status}");
    assert_eq!(
        status["missing_versions"][0]["records"]["account_tokens"],
        1
    );

    // Rotation refuses before changing anything.
    add_key_version(&ring_path(&env));
    let (code, _, stderr) = run_cli(&config, &["keys", "rotate"]).await;
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("key v3, which the key ring does not hold"),
        "{stderr}"
    );
    assert_eq!(
        KeyRing::load_file(&ring_path(&env))
            .unwrap()
            .current_version(),
        1
    );
}
both_backends!(
    missing_key_is_named_on_token_read_and_in_status,
    missing_key
);

// --- status counts -------------------------------------------------------------------

async fn status_counts(env: TestEnv) {
    env.connect(USER, "counted").await;
    seed_accounts(&env, 5).await;
    let config = cli_config(&env, &ring_path(&env));
    let (code, stdout, stderr) = run_cli(&config, &["keys", "status", "--json"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let status: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(status["current_version"], 1);
    let v1 = &status["versions"][0];
    assert_eq!(v1["state"], "current");
    assert_eq!(v1["records"]["account_tokens"], 6, "{status}");
    assert_eq!(v1["records"]["app_client_secrets"], 1);
    assert_eq!(v1["records"]["connect_session_states"], 1);
    assert_eq!(v1["records"]["total"], 8);
    assert_eq!(status["records_not_under_current"], 0);
    assert_eq!(status["missing_versions"], json!([]));

    let (code, stdout, _) = run_cli(&config, &["keys", "status"]).await;
    assert_eq!(code, Some(0));
    // Not a terminal: the table's rows, tab-separated, as every list of the CLI prints them.
    let row = stdout
        .lines()
        .find(|l| l.starts_with("v1\t"))
        .unwrap_or_else(|| panic!("no row for v1 in {stdout}"));
    let cells: Vec<&str> = row.split('\t').collect();
    assert_eq!(cells[1], "current", "{row}");
    assert!(cells[3].starts_with("8 ("), "{row}");
    assert!(cells[3].contains("6 account tokens"), "{row}");
}
both_backends!(keys_status_counts_records_per_version, status_counts);
