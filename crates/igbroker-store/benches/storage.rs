//! Storage benchmarks, each reported as a ratio measured in the same run:
//!
//! - reading one account's token (query + decrypt + checks) against a bare SELECT of the
//!   same row through the same pool (target: at least 70% of its throughput);
//! - "the next 1,000 due" at 1,000,000 accounts against 10,000 (target: at most 1.5×).
//!
//! On SQLite always, on PostgreSQL when TEST_PG_URL is set. Run by `scripts/bench storage`,
//! which also times `igbroker keys rotate` on the 1,000,000-account SQLite database this
//! leaves in `IGB_BENCH_DIR` (when set).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::Criterion;
use igbroker_core::{IdKind, PrefixedId};
use igbroker_store::{AppRow, Store, test_support};
use igbroker_vault::{Aad, KeyRing, Vault};
use secrecy::ExposeSecret;
use sqlx::Connection;

const SMALL: usize = 10_000;
const LARGE: usize = 1_000_000;

/// `IGB_BENCH_LARGE=20000` for a quick look; the figures in BENCHMARKS.md use 1,000,000.
fn large_size() -> usize {
    std::env::var("IGB_BENCH_LARGE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(LARGE)
}
const NOW: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

/// Mean time per operation of each benchmark, over every sample criterion took.
static TIMES: Mutex<BTreeMap<String, (Duration, u64)>> = Mutex::new(BTreeMap::new());

fn record(name: &str, elapsed: Duration, iters: u64) {
    let mut t = TIMES.lock().unwrap();
    let e = t.entry(name.to_string()).or_default();
    e.0 += elapsed;
    e.1 += iters;
}

fn mean(name: &str) -> Option<Duration> {
    let t = TIMES.lock().unwrap();
    t.get(name)
        .filter(|(_, n)| *n > 0)
        .map(|(d, n)| *d / u32::try_from(*n).unwrap_or(u32::MAX))
}

struct Db {
    store: Store,
    vault: Vault,
    app_id: String,
    sample_id: String,
    /// PostgreSQL databases to drop afterwards.
    pg_cleanup: Option<(String, String)>,
}

/// splitmix64: spread due times without a dependency.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `n` active accounts with sealed tokens and due times spread over 60 days, written with
/// multi-row INSERTs, a few thousand rows per transaction.
async fn seed(store: &Store, vault: &Vault, n: usize) -> (String, String) {
    let app_id = PrefixedId::generate(IdKind::App).into_string();
    store
        .insert_app(&AppRow {
            client_secret_enc: vault
                .seal_str(&Aad::new("apps", &app_id, "client_secret"), "bench-secret")
                .unwrap(),
            id: app_id.clone(),
            name: "bench".into(),
            kind: "instagram_login".into(),
            client_id: "1".into(),
            scopes: vec![igbroker_core::InstagramScope::BusinessBasic],
            redirect_uri: "https://broker.example/oauth/callback".into(),
            return_origins: Vec::new(),
            webhook_url: None,
            created_at: NOW,
            deleted_at: None,
        })
        .await
        .unwrap();
    const ROWS: usize = 400;
    const COLS: usize = 12;
    let mut sql = String::from(
        "INSERT INTO accounts (id, app_id, end_user, ig_user_id, ig_scoped_id, scopes, status, token_enc,
            token_key_version, issued_at, expires_at, next_refresh_at, created_at, updated_at) VALUES ",
    );
    for r in 0..ROWS {
        let b = r * COLS;
        if r > 0 {
            sql.push(',');
        }
        sql.push_str(&format!(
            "(${}, ${}, ${}, ${}, ${}, 'instagram_business_basic', 'active', ${}, ${}, ${}, ${}, ${}, ${}, ${})",
            b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7, b + 8, b + 9, b + 10, b + 11, b + 12
        ));
    }
    assert_eq!(n % ROWS, 0, "whole statements only");
    let version = i64::from(vault.current_version());
    let started = Instant::now();
    let mut sample_id = String::new();
    let mut i = 0usize;
    while i < n {
        let mut tx = store.pool().begin().await.unwrap();
        for _ in 0..10 {
            if i >= n {
                break;
            }
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
            for _ in 0..ROWS {
                let id = PrefixedId::generate(IdKind::Account).into_string();
                let token = format!("IGAAbench{i:08}{:016x}", mix(i as u64));
                let sealed = vault
                    .seal_str(&Aad::new("accounts", &id, "token"), &token)
                    .unwrap();
                if i == n / 2 {
                    sample_id = id.clone();
                }
                let due = NOW + i64::try_from(mix(i as u64 ^ 0xD0E) % (60 * DAY as u64)).unwrap();
                q = q
                    .bind(id)
                    .bind(app_id.clone())
                    .bind(format!("user-{i}"))
                    .bind(format!("17841{i:012}"))
                    .bind(format!("9{i:012}"))
                    .bind(sealed)
                    .bind(version)
                    .bind(NOW)
                    .bind(NOW + 60 * DAY)
                    .bind(due)
                    .bind(NOW)
                    .bind(NOW);
                i += 1;
            }
            q.execute(&mut *tx).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
    if store.backend() == igbroker_store::Backend::Postgres {
        // What autovacuum does after a bulk insert: statistics, and the visibility map that
        // lets an index-only scan skip the table (without it each of the 1,000 due rows costs
        // a heap visit, which is what a freshly loaded table measures, not a running one).
        sqlx::query("VACUUM ANALYZE accounts")
            .execute(store.pool())
            .await
            .unwrap();
    }
    eprintln!(
        "seeded {n} accounts on {} in {:.1} s",
        store.backend().name(),
        started.elapsed().as_secs_f64()
    );
    (app_id, sample_id)
}

fn keep_dir() -> Option<PathBuf> {
    std::env::var_os("IGB_BENCH_DIR").map(PathBuf::from)
}

async fn sqlite_db(n: usize, dir: &std::path::Path) -> Db {
    let ring = KeyRing::generate();
    let url = test_support::sqlite_url(dir, &format!("bench-{n}.db"));
    let store = Store::open(&url).await.unwrap();
    let vault = Vault::new(ring.clone());
    let (app_id, sample_id) = seed(&store, &vault, n).await;
    if n == large_size()
        && let Some(keep) = keep_dir()
    {
        // What `scripts/bench storage` rotates afterwards with the real CLI.
        ring.write_file(&keep.join("keys.toml")).unwrap();
        std::fs::write(
            keep.join("igbroker.toml"),
            format!(
                "database_url = {url:?}\n[keys]\nring_file = {:?}\n",
                keep.join("keys.toml").display().to_string()
            ),
        )
        .unwrap();
    }
    Db {
        store,
        vault,
        app_id,
        sample_id,
        pg_cleanup: None,
    }
}

async fn pg_db(admin: &str, n: usize) -> Db {
    let url = test_support::create_pg_database(admin, "igb_bench")
        .await
        .unwrap();
    let name = url.rsplit_once('/').map(|(_, n)| n.to_owned()).unwrap();
    let store = Store::open(&url).await.unwrap();
    let vault = Vault::new(KeyRing::generate());
    let (app_id, sample_id) = seed(&store, &vault, n).await;
    Db {
        store,
        vault,
        app_id,
        sample_id,
        pg_cleanup: Some((admin.to_string(), name)),
    }
}

/// query + decrypt + checks: what serving a token costs besides HTTP and the audit entry.
async fn read_token(db: &Db, id: &str) -> usize {
    let acc = db.store.get_account(id).await.unwrap().unwrap();
    assert!(
        acc.status == igbroker_core::AccountStatus::Active
            && acc.expires_at.is_some_and(|e| e > NOW)
    );
    assert_eq!(acc.app_id, db.app_id);
    let sealed = acc.token_enc.as_deref().unwrap();
    let token = db
        .vault
        .open_string(&Aad::new("accounts", &acc.id, "token"), sealed)
        .unwrap();
    token.expose_secret().len()
}

async fn bare_select(db: &Db, id: &str) -> usize {
    let row = sqlx::query("SELECT * FROM accounts WHERE id = $1")
        .bind(id)
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    sqlx::Row::len(&row)
}

fn bench_backend(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    label: &str,
    small: &Db,
    large: &Db,
) {
    let mut g = c.benchmark_group(format!("{label}/token read"));
    g.measurement_time(Duration::from_secs(6));
    let key = format!("{label}/read");
    g.bench_function("query+decrypt+checks", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t = Instant::now();
                for _ in 0..iters {
                    black_box(read_token(small, &small.sample_id).await);
                }
                let e = t.elapsed();
                record(&key, e, iters);
                e
            })
        })
    });
    let key = format!("{label}/bare");
    g.bench_function("bare SELECT", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t = Instant::now();
                for _ in 0..iters {
                    black_box(bare_select(small, &small.sample_id).await);
                }
                let e = t.elapsed();
                record(&key, e, iters);
                e
            })
        })
    });
    g.finish();

    let mut g = c.benchmark_group(format!("{label}/next 1000 due"));
    g.measurement_time(Duration::from_secs(8));
    for (db, size) in [(small, SMALL), (large, large_size())] {
        let key = format!("{label}/due/{size}");
        g.bench_function(format!("{size} accounts"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let t = Instant::now();
                    for _ in 0..iters {
                        let ids = db.store.due_ids(NOW + 61 * DAY, 1000).await.unwrap();
                        assert_eq!(ids.len(), 1000);
                        black_box(ids);
                    }
                    let e = t.elapsed();
                    record(&key, e, iters);
                    e
                })
            })
        });
    }
    g.finish();
}

/// Prints each figure of `label` against its target; returns the figures that missed it (a
/// figure that was not measured misses too).
fn summary(label: &str) -> Vec<String> {
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let mut missed = Vec::new();
    if let (Some(read), Some(bare)) = (
        mean(&format!("{label}/read")),
        mean(&format!("{label}/bare")),
    ) {
        let share = bare.as_secs_f64() / read.as_secs_f64() * 100.0;
        let pass = share >= 70.0;
        println!(
            "{label:<10} token read {:>8.1} µs, bare SELECT {:>8.1} µs: {share:>5.1}% of bare throughput (target >= 70%) {}",
            us(read),
            us(bare),
            if pass { "PASS" } else { "FAIL" }
        );
        if !pass {
            missed.push(format!(
                "{label} token read: {share:.1}% of bare throughput, target >= 70%"
            ));
        }
    } else {
        missed.push(format!("{label} token read: not measured"));
    }
    if let (Some(s), Some(l)) = (
        mean(&format!("{label}/due/{SMALL}")),
        mean(&format!("{label}/due/{}", large_size())),
    ) {
        let ratio = l.as_secs_f64() / s.as_secs_f64();
        let pass = ratio <= 1.5;
        println!(
            "{label:<10} next 1,000 due: {:>8.1} µs at {SMALL}, {:>8.1} µs at {}: {ratio:.2}x (target <= 1.5x) {}",
            us(s),
            us(l),
            large_size(),
            if pass { "PASS" } else { "FAIL" }
        );
        if !pass {
            missed.push(format!(
                "{label} next 1,000 due: {ratio:.2}x at {} vs {SMALL}, target <= 1.5x",
                large_size()
            ));
        }
    } else {
        missed.push(format!("{label} next 1,000 due: not measured"));
    }
    missed
}

async fn drop_pg(db: Db) {
    db.store.close().await;
    if let Some((admin, name)) = db.pg_cleanup {
        let mut conn = sqlx::postgres::PgConnection::connect(&admin).await.unwrap();
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name}"
        )))
        .execute(&mut conn)
        .await;
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = keep_dir().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir).unwrap();

    // IGB_BENCH_ONLY=sqlite|postgres measures one backend.
    let only = std::env::var("IGB_BENCH_ONLY").unwrap_or_default();
    let sqlite = only.is_empty() || only.eq_ignore_ascii_case("sqlite");
    let pg = igbroker_store::test_support::pg_admin_url()
        .filter(|_| only.is_empty() || only.eq_ignore_ascii_case("postgres"));

    if sqlite {
        run_sqlite(&mut c, &rt, &dir);
    }
    if let Some(admin) = &pg {
        let (small, large) =
            rt.block_on(async { (pg_db(admin, SMALL).await, pg_db(admin, large_size()).await) });
        bench_backend(&mut c, &rt, "PostgreSQL", &small, &large);
        rt.block_on(async {
            drop_pg(small).await;
            drop_pg(large).await;
        });
    } else {
        eprintln!("TEST_PG_URL not set: PostgreSQL not measured");
    }
    c.final_summary();

    println!("\n== storage ratios (mean per operation over all samples of this run) ==");
    let mut missed = Vec::new();
    if sqlite {
        missed.extend(summary("SQLite"));
    }
    if pg.is_some() {
        missed.extend(summary("PostgreSQL"));
    }
    // `cargo test --benches` runs each benchmark once to see that it works: no figures to judge.
    let measuring = std::env::args().any(|a| a == "--bench");
    if measuring && !missed.is_empty() {
        eprintln!("\nstorage: {} target(s) missed:", missed.len());
        for m in &missed {
            eprintln!("  MISSED {m}");
        }
        std::process::exit(1);
    }
}

fn run_sqlite(c: &mut Criterion, rt: &tokio::runtime::Runtime, dir: &std::path::Path) {
    let (small, large) = rt.block_on(async {
        (
            sqlite_db(SMALL, dir).await,
            sqlite_db(large_size(), dir).await,
        )
    });
    bench_backend(c, rt, "SQLite", &small, &large);
    rt.block_on(async {
        small.store.close().await;
        large.store.close().await;
    });
}
