//! Seeds accounts straight into the database for `scripts/bench http` at sizes
//! that importing through the API would take hours to reach. Each token is sealed
//! with the configured key ring under its own account id, exactly as the broker
//! stores one, so a token read of any seeded account succeeds.
//!
//! `cargo run --release --example bench_seed -- CONFIG APP_ID COUNT IDS_FILE [FIRST]`
//! appends the new account ids to IDS_FILE, one per line. Account `FIRST + i` (FIRST
//! defaults to 0; give each run on one database its own range) is named `user_{FIRST+i}`
//! (seven digits) for end user `customer-{(FIRST+i) % 5000}`. With
//! `BENCH_SEED_REAUTH_EVERY=N` every N-th account needs re-authorization instead of being
//! active, so that the dashboard's status filter has something to find (`scripts/bench ui`);
//! `scripts/bench http` reads tokens and leaves it unset.

use std::io::Write;

use anyhow::{Context, bail};
use igbroker::config::Config;
use igbroker_core::{IdKind, PrefixedId};
use igbroker_store::Store;
use igbroker_vault::{Aad, Vault};

const ROWS: usize = 400;
const COLS: usize = 14;
const DAY: i64 = 86_400;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (config, app_id, count, ids_file, first) = match args.as_slice() {
        [c, a, n, f] => (c, a, n, f, "0"),
        [c, a, n, f, first] => (c, a, n, f, first.as_str()),
        _ => bail!("usage: bench_seed CONFIG APP_ID COUNT IDS_FILE [FIRST]"),
    };
    let n: usize = count.parse().context("COUNT must be a number")?;
    let first: usize = first.parse().context("FIRST must be a number")?;
    let reauth_every: usize = match std::env::var("BENCH_SEED_REAUTH_EVERY") {
        Ok(v) if !v.is_empty() => v
            .parse()
            .context("BENCH_SEED_REAUTH_EVERY must be a number")?,
        _ => 0,
    };
    let config = Config::load(Some(std::path::Path::new(config)))?;
    let vault = Vault::new(igbroker::server::load_key_ring(&config)?);
    let store = Store::open(&config.database_url).await?;
    let mut out = std::io::BufWriter::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(ids_file)
            .with_context(|| format!("cannot open {ids_file}"))?,
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs()
        .cast_signed();
    let version = i64::from(vault.current_version());
    let mut i = 0usize;
    while i < n {
        let rows = ROWS.min(n - i);
        let mut sql = String::from(
            "INSERT INTO accounts (id, app_id, end_user, ig_user_id, ig_scoped_id, username, status, scopes,
                token_enc, token_key_version, issued_at, expires_at, next_refresh_at, created_at, updated_at) VALUES ",
        );
        for r in 0..rows {
            let b = r * COLS;
            if r > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, ${}, 'instagram_business_basic', ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7, b + 8, b + 9, b + 10, b + 11, b + 12,
                b + 13, b + 14
            ));
        }
        let mut tx = store.pool().begin().await?;
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for _ in 0..rows {
            let id = PrefixedId::generate(IdKind::Account).into_string();
            let j = first + i;
            let sealed = vault.seal_str(
                &Aad::new("accounts", &id, "token"),
                &format!("IGAAseed{j:010}"),
            )?;
            let status = if reauth_every > 0 && j % reauth_every == reauth_every - 1 {
                "reauth_required"
            } else {
                "active"
            };
            writeln!(out, "{id}")?;
            let next = now + 30 * DAY + (i as i64 % (20 * DAY));
            q = q
                .bind(id)
                .bind(app_id.clone())
                .bind(format!("customer-{}", j % 5000))
                .bind(format!("8{j:015}"))
                .bind(format!("7{j:015}"))
                .bind(format!("user_{j:07}"))
                .bind(status)
                .bind(sealed)
                .bind(version)
                .bind(now)
                .bind(now + 60 * DAY)
                .bind(next)
                .bind(now)
                .bind(now);
            i += 1;
        }
        q.execute(&mut *tx).await?;
        tx.commit().await?;
    }
    out.flush()?;
    store.close().await;
    println!("seeded {n} accounts");
    Ok(())
}
