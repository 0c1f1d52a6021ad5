//! 1,000 accounts across 120 days of sandbox clock, with a fifth of refresh
//! calls failing before they reach Instagram: every token stays valid, and
//! Instagram sees exactly one successful refresh per due period per account.

use std::collections::HashMap;

use crate::common::{Backend, TestEnv};
use instagram_sandbox::control_client::{CallsQuery, FaultSpec};

const DAY: i64 = 86_400;
const ACCOUNTS: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_accounts_stay_valid_for_120_days_under_transient_faults() {
    let env = TestEnv::start(Backend::Sqlite).await.unwrap();
    let seeded = env.seed(ACCOUNTS, 0).await;
    let by_ig: HashMap<String, String> = seeded
        .iter()
        .map(|s| (s.ig_user_id.clone(), s.account_id.clone()))
        .collect();
    env.fault(FaultSpec {
        probability: Some(0.2),
        ..FaultSpec::status("/refresh_access_token", 503)
    })
    .await;

    let start = env.clock.now_unix();
    let mut seen_seq = 0u64;
    let mut successes: HashMap<String, Vec<i64>> = HashMap::new();
    let mut failures = 0usize;
    let step = 6 * 3600;
    let steps = 120 * DAY / step;
    for n in 1..=steps {
        env.advance(step);
        env.run_scheduler().await;
        let now = env.clock.now_unix();

        // Every account is active with an unexpired token, at every step.
        let bad = env
            .state
            .store()
            .list_accounts(&Default::default(), None, 10_000)
            .await
            .unwrap();
        for a in &bad {
            assert_eq!(
                a.status.as_str(),
                "active",
                "account {} lost its token at day {}",
                a.id,
                (now - start) / DAY
            );
            assert!(
                a.expires_at.unwrap() > now,
                "account {} expired at day {}",
                a.id,
                (now - start) / DAY
            );
        }

        // What Instagram saw, read before the sandbox's ring buffer wraps.
        let calls = env
            .sb
            .calls(&CallsQuery {
                after_seq: Some(seen_seq),
                ..CallsQuery::path("/refresh_access_token")
            })
            .await
            .unwrap();
        for c in calls {
            seen_seq = seen_seq.max(c.seq);
            if c.status == 200 {
                let user = c.user_id.expect("refresh calls name the user");
                let at = time::OffsetDateTime::parse(
                    &c.at,
                    &time::format_description::well_known::Rfc3339,
                )
                .unwrap()
                .unix_timestamp();
                successes.entry(user).or_default().push(at);
            } else {
                failures += 1;
            }
        }

        // Every 10 days, the sandbox itself vouches for a sample of tokens.
        if n % (10 * DAY / step) == 0 {
            for s in seeded.iter().step_by(50) {
                let (st, me) = env
                    .get(&format!(
                        "/v1/accounts/{}/graph/me?fields=user_id",
                        s.account_id
                    ))
                    .await;
                assert_eq!(st, 200, "day {}: {me}", (now - start) / DAY);
            }
        }
    }

    assert!(failures > 0, "the fault must have bitten");
    let refreshed_by_broker = env
        .state
        .store()
        .list_audit(None, Some("token.refreshed"), None, 0, 100_000)
        .await
        .unwrap();
    let total: usize = successes.values().map(Vec::len).sum();
    assert_eq!(
        total,
        refreshed_by_broker.len(),
        "every successful upstream refresh was recorded once"
    );
    assert_eq!(successes.len(), ACCOUNTS, "every account was refreshed");
    for (user, times) in &successes {
        assert!(
            by_ig.contains_key(user),
            "refresh for an unknown user {user}"
        );
        // A token issued at t is due from t + 40 days - jitter until t + 60 days:
        // two successes in one due period would be less than 20.5 days apart.
        assert!(
            (2..=3).contains(&times.len()),
            "{user}: {} refreshes in 120 days",
            times.len()
        );
        assert!(
            times[0] - start >= 39 * DAY,
            "{user}: refreshed before its due time"
        );
        for w in times.windows(2) {
            assert!(
                w[1] - w[0] >= 39 * DAY,
                "{user}: two refreshes {} days apart",
                (w[1] - w[0]) / DAY
            );
        }
    }
    // And at the end the sandbox accepts every current token.
    for s in &seeded {
        let (st, _) = env
            .get(&format!(
                "/v1/accounts/{}/graph/me?fields=user_id",
                s.account_id
            ))
            .await;
        assert_eq!(st, 200);
    }
}
