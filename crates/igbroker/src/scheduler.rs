//! The refresh scheduler: claims due accounts from the database under a lease,
//! refreshes them with bounded concurrency and a per-app budget shared by all
//! replicas, delivers queued webhooks, sleeps until the next due time (or until
//! woken), survives panics in a task, and on shutdown finishes or releases its
//! leases. `run_until_idle` does the same work once, for tests and the CLI.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use igbroker_store::Claimed;
use tokio::sync::Semaphore;
use tokio::task::{Id, JoinSet};

use crate::clock::tokio_util_shim::Shutdown;
use crate::error::ApiError;
use crate::service::refresh::{self, Outcome};
use crate::service::webhooks;
use crate::state::AppState;

const ACTOR: &str = "system:scheduler";
/// Refresh budgets are counted per app per minute.
const BUDGET_WINDOW_SECS: i64 = 60;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RunStats {
    pub refreshed: u64,
    pub transient: u64,
    pub reauth_required: u64,
    pub failing: u64,
    pub deferred: u64,
    pub lease_lost: u64,
    pub webhooks_delivered: u64,
    pub webhooks_failed: u64,
}

impl RunStats {
    fn add(&mut self, r: TaskResult) {
        match r {
            TaskResult::Refresh(Some(Outcome::Refreshed(_))) => self.refreshed += 1,
            TaskResult::Refresh(Some(Outcome::Transient { .. })) => self.transient += 1,
            TaskResult::Refresh(Some(Outcome::ReauthRequired { .. })) => self.reauth_required += 1,
            TaskResult::Refresh(Some(Outcome::Failing { .. })) => self.failing += 1,
            TaskResult::Refresh(Some(Outcome::LeaseLost)) => self.lease_lost += 1,
            TaskResult::Refresh(None) => self.deferred += 1,
            TaskResult::Webhook(true) => self.webhooks_delivered += 1,
            TaskResult::Webhook(false) => self.webhooks_failed += 1,
        }
    }

    pub fn attempts(&self) -> u64 {
        self.refreshed + self.transient + self.reauth_required + self.failing + self.lease_lost
    }
}

enum TaskResult {
    Refresh(Option<Outcome>),
    Webhook(bool),
}

#[derive(Clone)]
pub struct Scheduler {
    state: AppState,
    permits: Arc<Semaphore>,
    http: reqwest::Client,
    /// Prefix of every lease this scheduler takes (`{node}:sched:`), so that a
    /// clean shutdown can give back exactly its own.
    owner_prefix: String,
}

struct Running {
    tasks: JoinSet<Result<TaskResult, ApiError>>,
    /// What each task holds, to give the lease back if the task panics.
    holding: HashMap<Id, (String, String)>,
}

impl Scheduler {
    pub fn new(state: AppState) -> Scheduler {
        let concurrency = state.config().refresh.concurrency.max(1);
        let owner_prefix = format!("{}:sched:", state.node_id());
        Scheduler {
            state,
            permits: Arc::new(Semaphore::new(concurrency)),
            http: webhooks::http_client(),
            owner_prefix,
        }
    }

    fn owner(&self) -> String {
        format!("{}{}", self.owner_prefix, uuid::Uuid::now_v7().simple())
    }

    async fn claim(&self, limit: usize) -> Result<Vec<(Claimed, String)>, ApiError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // One owner per claim keeps the statement single; each task writes its
        // result under this owner, which only it holds for that account.
        let owner = self.owner();
        let now = self.state.now();
        let until = now + refresh::lease_secs(&self.state);
        let claimed = self
            .state
            .store()
            .claim_due(&owner, now, until, i64::try_from(limit).unwrap_or(1))
            .await?;
        Ok(claimed.into_iter().map(|c| (c, owner.clone())).collect())
    }

    fn spawn_refresh(
        &self,
        running: &mut Running,
        claimed: Claimed,
        owner: String,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) {
        let state = self.state.clone();
        let id = claimed.id.clone();
        let lease_owner = owner.clone();
        let handle = running.tasks.spawn(async move {
            let _permit = permit;
            process(&state, claimed, &owner)
                .await
                .map(TaskResult::Refresh)
        });
        running.holding.insert(handle.id(), (id, lease_owner));
    }

    async fn spawn_webhooks(&self, running: &mut Running) -> Result<usize, ApiError> {
        let owner = self.owner();
        let now = self.state.now();
        let rows = self
            .state
            .store()
            .claim_webhooks(&owner, now, now + 60, 16)
            .await?;
        let n = rows.len();
        for row in rows {
            let state = self.state.clone();
            let http = self.http.clone();
            let owner = owner.clone();
            running.tasks.spawn(async move {
                webhooks::deliver(&state, &http, &row, &owner)
                    .await
                    .map(TaskResult::Webhook)
            });
        }
        Ok(n)
    }

    fn reap(
        &self,
        running: &mut Running,
        joined: Result<(Id, Result<TaskResult, ApiError>), tokio::task::JoinError>,
        stats: &mut RunStats,
    ) {
        match joined {
            Ok((id, result)) => {
                running.holding.remove(&id);
                match result {
                    Ok(r) => stats.add(r),
                    Err(e) => tracing::error!(error = %e, "scheduler task failed"),
                }
            }
            Err(e) => {
                let held = running.holding.remove(&e.id());
                tracing::error!(panicked = e.is_panic(), account = ?held.as_ref().map(|h| &h.0), "scheduler task died");
                metrics::counter!("igbroker_scheduler_task_panics_total").increment(1);
                if let Some((account, owner)) = held {
                    let state = self.state.clone();
                    tokio::spawn(async move {
                        if let Err(e) = state.store().release_refresh_lease(&account, &owner).await
                        {
                            tracing::error!(error = %e, "could not release the lease of a task that died");
                        }
                    });
                }
            }
        }
    }

    /// Runs until `shutdown` fires; then stops claiming, lets in-flight refreshes
    /// finish within their lease, and releases whatever it still holds.
    pub async fn run(self, shutdown: Shutdown) {
        let wake = self.state.scheduler_wake();
        let mut running = Running {
            tasks: JoinSet::new(),
            holding: HashMap::new(),
        };
        let mut stats = RunStats::default();
        let poll = self
            .state
            .config()
            .refresh
            .poll
            .max(Duration::from_millis(100));
        tracing::info!(
            concurrency = self.permits.available_permits(),
            "refresh scheduler started"
        );
        loop {
            while let Some(joined) = running.tasks.try_join_next_with_id() {
                self.reap(&mut running, joined, &mut stats);
            }
            if shutdown.is_fired() {
                break;
            }
            // Register for a wake-up before looking, so a change in between is not missed.
            let notified = wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();

            let free = self.permits.available_permits();
            let mut full_batch = false;
            match self.claim(free).await {
                Ok(list) => {
                    full_batch = free > 0 && list.len() == free;
                    for (claimed, owner) in list {
                        match self.permits.clone().try_acquire_owned() {
                            Ok(permit) => self.spawn_refresh(&mut running, claimed, owner, permit),
                            Err(_) => {
                                let _ = self
                                    .state
                                    .store()
                                    .release_refresh_lease(&claimed.id, &owner)
                                    .await;
                            }
                        }
                    }
                }
                Err(e) => tracing::error!(error = %e, "claiming due refreshes failed"),
            }
            if let Err(e) = self.spawn_webhooks(&mut running).await {
                tracing::error!(error = %e, "claiming webhook deliveries failed");
            }
            if full_batch {
                // More may be due: come back as soon as a permit frees up.
                tokio::select! {
                    Some(joined) = running.tasks.join_next_with_id() => self.reap(&mut running, joined, &mut stats),
                    _ = shutdown.wait() => {}
                }
                continue;
            }
            let sleep = self.sleep_for(poll).await;
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = &mut notified => {}
                Some(joined) = running.tasks.join_next_with_id(), if !running.tasks.is_empty() => {
                    self.reap(&mut running, joined, &mut stats);
                }
                _ = shutdown.wait() => {}
            }
        }
        let grace =
            Duration::from_secs(u64::try_from(refresh::lease_secs(&self.state)).unwrap_or(60));
        let drain = async {
            while let Some(joined) = running.tasks.join_next_with_id().await {
                self.reap(&mut running, joined, &mut stats);
            }
        };
        if tokio::time::timeout(grace, drain).await.is_err() {
            running.tasks.abort_all();
        }
        match self
            .state
            .store()
            .release_all_leases(&self.owner_prefix)
            .await
        {
            Ok(n) if n > 0 => tracing::info!(released = n, "released leases on shutdown"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "could not release leases on shutdown"),
        }
        tracing::info!(?stats, "refresh scheduler stopped");
    }

    /// Until the earliest due refresh or webhook, capped by `poll`, since other
    /// replicas and clock jumps (in development) change what is due.
    async fn sleep_for(&self, poll: Duration) -> Duration {
        let now = self.state.now();
        let store = self.state.store();
        let refresh = store.next_due_at().await.ok().flatten();
        let webhook = store.next_webhook_at().await.ok().flatten();
        let next = [refresh, webhook].into_iter().flatten().min();
        let poll = if self.state.config().dev.clock_url.is_empty() {
            poll
        } else {
            poll.min(Duration::from_millis(500))
        };
        match next {
            Some(t) if t <= now => Duration::from_millis(50),
            Some(t) => Duration::from_secs(u64::try_from(t - now).unwrap_or(1)).min(poll),
            None => poll,
        }
    }

    /// Does everything due now, then returns: no sleeping, for tests and
    /// `igbroker accounts refresh --due`. `on_progress` sees each finished task.
    pub async fn run_until_idle(
        &self,
        mut on_progress: impl FnMut(&RunStats),
    ) -> Result<RunStats, ApiError> {
        let mut stats = RunStats::default();
        let mut running = Running {
            tasks: JoinSet::new(),
            holding: HashMap::new(),
        };
        loop {
            let free = self.permits.available_permits();
            let list = self.claim(free).await?;
            let mut spawned = list.len();
            for (claimed, owner) in list {
                match self.permits.clone().try_acquire_owned() {
                    Ok(permit) => self.spawn_refresh(&mut running, claimed, owner, permit),
                    Err(_) => {
                        self.state
                            .store()
                            .release_refresh_lease(&claimed.id, &owner)
                            .await?;
                        spawned -= 1;
                    }
                }
            }
            spawned += self.spawn_webhooks(&mut running).await?;
            if spawned == 0 && running.tasks.is_empty() {
                return Ok(stats);
            }
            // Wait for one task, then look again: freed permits take new work.
            if let Some(joined) = running.tasks.join_next_with_id().await {
                self.reap(&mut running, joined, &mut stats);
                on_progress(&stats);
            }
        }
    }
}

/// One claimed account: budget, then the refresh itself. `None`: deferred.
async fn process(
    state: &AppState,
    claimed: Claimed,
    owner: &str,
) -> Result<Option<Outcome>, ApiError> {
    let store = state.store();
    let Some(acc) = store.get_account(&claimed.id).await? else {
        return Ok(None);
    };
    if acc.lease_owner.as_deref() != Some(owner) || acc.status != "active" {
        return Ok(None);
    }
    let now = state.now();
    let per_minute = state.config().refresh.app_budget_per_minute;
    if !store
        .take_app_budget(&acc.app_id, now, BUDGET_WINDOW_SECS, per_minute)
        .await?
    {
        let again = store
            .app_budget_window_end(&acc.app_id, BUDGET_WINDOW_SECS)
            .await?
            .unwrap_or(now + BUDGET_WINDOW_SECS)
            .max(now + 1);
        store.defer_claimed(&acc.id, owner, again).await?;
        metrics::counter!("igbroker_refresh_deferred_total").increment(1);
        return Ok(None);
    }
    refresh::refresh_leased(state, &acc, owner, ACTOR)
        .await
        .map(Some)
}
