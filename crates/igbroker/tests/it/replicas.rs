//! Several `igbroker serve` processes on one PostgreSQL, following the sandbox
//! clock through `[dev] clock_url`: they share the due work without ever
//! refreshing a token twice, and survive a SIGKILL in the middle of it.

use crate::common;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use igbroker::clock::SandboxClockAdapter;
use igbroker::config::Config;
use igbroker::state::AppState;
use igbroker_core::Clock;
use igbroker_vault::KeyRing;
use instagram_sandbox::control_client::{AppSpec, ControlClient, FaultSpec};
use serde_json::json;
use tokio::net::TcpListener;

const DAY: i64 = 86_400;

struct Cluster {
    sandbox: String,
    clock: instagram_sandbox::SandboxClock,
    state: AppState,
    env: Vec<(String, String)>,
    app_id: String,
    client_id: String,
    sb: ControlClient,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn cluster() -> Option<Cluster> {
    let db = common::pg_database().await?;
    let dir = tempfile::tempdir().unwrap();
    let sandbox =
        instagram_sandbox::Sandbox::new(instagram_sandbox::SandboxOptions::default()).unwrap();
    let clock = sandbox.clock();
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sb = format!("http://{}", l.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(instagram_sandbox::serve(l, sandbox, async {
        let _ = stopped.await;
    }));
    let ring = dir.path().join("keys.toml");
    KeyRing::generate().write_file(&ring).unwrap();
    let env: Vec<(String, String)> = [
        ("IGBROKER_LISTEN", "127.0.0.1:0".to_string()),
        ("IGBROKER_DATABASE_URL", db.clone()),
        ("IGBROKER_KEYS__RING_FILE", ring.display().to_string()),
        (
            "IGBROKER_INSTAGRAM__AUTHORIZE_URL",
            format!("{sb}/oauth/authorize"),
        ),
        (
            "IGBROKER_INSTAGRAM__TOKEN_URL",
            format!("{sb}/oauth/access_token"),
        ),
        ("IGBROKER_INSTAGRAM__GRAPH_URL", sb.clone()),
        ("IGBROKER_INSTAGRAM__REQUEST_TIMEOUT", "10s".to_string()),
        ("IGBROKER_DEV__CLOCK_URL", format!("{sb}/_sandbox/clock")),
        (
            "IGBROKER_REFRESH__APP_BUDGET_PER_MINUTE",
            "1000000".to_string(),
        ),
        ("IGBROKER_REFRESH__POLL", "1s".to_string()),
        ("IGBROKER_LOG", "info".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();

    let mut config = Config {
        database_url: db,
        ..Config::default()
    };
    config.keys.ring_file = ring;
    config.instagram.authorize_url = format!("{sb}/oauth/authorize");
    config.instagram.token_url = format!("{sb}/oauth/access_token");
    config.instagram.graph_url = sb.clone();
    let c: Arc<dyn Clock> = Arc::new(SandboxClockAdapter(clock.clone()));
    let state = igbroker::server::build_state(config, c).await.unwrap();
    let control = ControlClient::new(sb.clone());
    let app = control
        .create_app(&AppSpec::redirecting_to(
            "http://127.0.0.1:1/oauth/callback",
        ))
        .await
        .unwrap();
    let (row, _) = igbroker::service::apps::create(
        &state,
        "cli:test",
        serde_json::from_value(json!({
            "name": "load", "client_id": app.client_id, "client_secret": app.client_secret,
            "scopes": ["instagram_business_basic"], "redirect_uri": "http://127.0.0.1:1/oauth/callback",
        }))
        .unwrap(),
    )
    .await
    .unwrap();
    Some(Cluster {
        sandbox: sb,
        clock,
        state,
        env,
        app_id: row.id,
        client_id: app.client_id,
        sb: control,
        http: reqwest::Client::new(),
        _dir: dir,
        _stop: stop,
    })
}

impl Cluster {
    async fn seed(&self, n: usize, age: i64) -> Vec<common::Seeded> {
        common::seed_accounts(
            &self.sb,
            &self.state,
            &self.app_id,
            &self.client_id,
            n,
            age,
            self.clock.now_unix(),
        )
        .await
    }

    /// Starts `igbroker serve` and waits for it to say it listens.
    fn spawn(&self, extra: &[(&str, &str)]) -> Child {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_igbroker"));
        cmd.arg("serve")
            .stderr(Stdio::piped())
            .stdout(Stdio::null());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // Keep draining stderr so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("igbroker serving")
                    && let Some(t) = tx.take()
                {
                    let _ = t.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(60))
            .expect("igbroker serve did not start");
        child
    }

    async fn refresh_count(&self, status: u16) -> u64 {
        let stats = self.sb.stats().await.unwrap();
        stats
            .get("/refresh_access_token")
            .and_then(|by_status| by_status.get(&status))
            .copied()
            .unwrap_or(0)
    }

    /// Polls (with a deadline) until `done` holds.
    async fn until(&self, what: &str, secs: u64, mut done: impl AsyncFnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !done().await {
            assert!(Instant::now() < deadline, "timed out waiting for: {what}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "serve exited with {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_10000_due_refreshes_exactly_once() {
    let Some(c) = cluster().await else { return };
    const N: usize = 10_000;
    // Issued 41 days ago: every token is inside its refresh window now.
    let seeded = c.seed(N, 41 * DAY).await;
    assert_eq!(
        c.state.store().count_due(c.clock.now_unix()).await.unwrap(),
        N as i64
    );
    let started = Instant::now();
    let replicas: Vec<Child> = (0..3).map(|_| c.spawn(&[])).collect();
    c.until("every account refreshed", 600, async || {
        c.state.store().count_due(c.clock.now_unix()).await.unwrap() == 0
            && c.refresh_count(200).await >= N as u64
    })
    .await;
    let elapsed = started.elapsed();
    for r in replicas {
        stop(r);
    }
    assert_eq!(
        c.refresh_count(200).await,
        N as u64,
        "exactly one successful refresh per account"
    );
    let all: u64 = {
        let stats = c.sb.stats().await.unwrap();
        stats["/refresh_access_token"].values().sum()
    };
    assert_eq!(
        all, N as u64,
        "the sandbox counts exactly {N} refresh calls"
    );
    let audit = c
        .state
        .store()
        .list_audit(None, Some("token.refreshed"), None, 0, 100_000)
        .await
        .unwrap();
    assert_eq!(audit.len(), N);
    // Each refresh names the replica that made it; the work was shared.
    let by_replica: std::collections::HashMap<String, usize> =
        audit.iter().fold(Default::default(), |mut m, a| {
            let detail: serde_json::Value = serde_json::from_str(&a.detail).unwrap();
            let replica = detail["replica"].as_str().expect("replica in detail");
            *m.entry(replica.to_string()).or_default() += 1;
            m
        });
    assert!(
        (2..=3).contains(&by_replica.len()),
        "at least two of the three replicas refreshed: {by_replica:?}"
    );
    let now = c.clock.now_unix();
    for s in seeded.iter().step_by(97) {
        let a = c
            .state
            .store()
            .get_account(&s.account_id)
            .await
            .unwrap()
            .unwrap();
        assert!(
            a.expires_at.unwrap() > now + 59 * DAY,
            "{} not extended",
            a.id
        );
        assert!(a.lease_until.is_none());
    }
    eprintln!("3 replicas refreshed {N} accounts in {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_storm_loses_no_token_and_leaves_no_stuck_lease() {
    let Some(c) = cluster().await else { return };
    const N: usize = 2_000;
    let seeded = c.seed(N, 41 * DAY).await;
    // Slow refreshes, so that many are in flight when the process dies.
    c.sb.add_fault(&FaultSpec::latency("/refresh_access_token", 30))
        .await
        .unwrap();
    let mut victim = c.spawn(&[("IGBROKER_REFRESH__CONCURRENCY", "16")]);
    c.until("the storm to be under way", 120, async || {
        c.refresh_count(200).await >= 300
    })
    .await;
    victim.kill().unwrap();
    let _ = victim.wait();
    let done_before = c.refresh_count(200).await;
    assert!(
        done_before < N as u64,
        "the kill came too late to test anything"
    );

    // Leases of the dead process run out; a new process takes over.
    c.clock.advance(10 * 60);
    let survivor = c.spawn(&[]);
    c.until("the rest refreshed", 600, async || {
        c.state.store().count_due(c.clock.now_unix()).await.unwrap() == 0
    })
    .await;
    // Refreshes the dead process made upstream but never stored are refused as
    // too young now; a day later they go through.
    c.clock.advance(DAY + 3600);
    c.until("nothing left to do", 600, async || {
        let now = c.clock.now_unix();
        let store = c.state.store();
        store.count_due(now).await.unwrap() == 0
            && store.count_expired_leases(now).await.unwrap() == 0
    })
    .await;
    stop(survivor);

    let now = c.clock.now_unix();
    let accounts = c
        .state
        .store()
        .list_accounts(&Default::default(), None, 10_000)
        .await
        .unwrap();
    assert_eq!(accounts.len(), N);
    for a in &accounts {
        assert_eq!(a.status.as_str(), "active", "{} lost its token", a.id);
        assert!(a.expires_at.unwrap() > now, "{} expired", a.id);
        assert!(a.lease_until.is_none(), "{} kept a lease", a.id);
    }
    // The sandbox still accepts every token the broker holds.
    for s in seeded.iter().step_by(40) {
        let acc = c
            .state
            .store()
            .get_account(&s.account_id)
            .await
            .unwrap()
            .unwrap();
        let token = igbroker::service::accounts::open_token(&c.state, &acc).unwrap();
        let resp = c
            .http
            .get(format!("{}/me?fields=id", c.sandbox))
            .bearer_auth(secrecy::ExposeSecret::expose_secret(&token))
            .send()
            .await
            .unwrap();
        assert!(
            resp.status().is_success(),
            "token of {} no longer valid",
            s.account_id
        );
    }
}
