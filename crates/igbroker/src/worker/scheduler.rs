//! The refresh scheduler: claims due accounts from the database under a lease,
//! takes their app's budget (shared by all replicas), refreshes them with
//! bounded concurrency, stores results through one group-commit writer,
//! delivers queued webhooks, sleeps until the next due time (or until woken),
//! survives panics in a task, and on shutdown finishes or releases its leases.
//! `run_until_idle` does the same work once, for tests and the CLI.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use igbroker_store::Claimed;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::{Id, JoinSet};

use crate::service::Error;
use crate::service::refresh::{self, CommitSink, Outcome};
use crate::shutdown::Shutdown;
use crate::state::AppState;
use crate::worker::webhooks;

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
            TaskResult::Refresh(Outcome::Refreshed(_)) => self.refreshed += 1,
            TaskResult::Refresh(Outcome::Transient { .. }) => self.transient += 1,
            TaskResult::Refresh(Outcome::ReauthRequired { .. }) => self.reauth_required += 1,
            TaskResult::Refresh(Outcome::Failing { .. }) => self.failing += 1,
            TaskResult::Refresh(Outcome::LeaseLost) => self.lease_lost += 1,
            TaskResult::Refresh(Outcome::Deferred) => self.deferred += 1,
            TaskResult::Webhook(true) => {
                self.webhooks_delivered += 1;
                metrics::counter!("igbroker_webhook_attempts_total", "result" => "delivered")
                    .increment(1);
            }
            TaskResult::Webhook(false) => {
                self.webhooks_failed += 1;
                metrics::counter!("igbroker_webhook_attempts_total", "result" => "failed")
                    .increment(1);
            }
        }
    }

    pub fn attempts(&self) -> u64 {
        self.refreshed + self.transient + self.reauth_required + self.failing + self.lease_lost
    }
}

enum TaskResult {
    Refresh(Outcome),
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

/// The work in flight during one run.
struct Running {
    tasks: JoinSet<Result<TaskResult, Error>>,
    /// What each task holds, to give the lease back if the task panics.
    holding: HashMap<Id, (String, String)>,
    sink: Arc<CommitSink>,
    writer: tokio::task::JoinHandle<()>,
    stats: RunStats,
    /// Refresh tasks spawned that have not yet got a permit: claimed ahead so
    /// that a freed permit never waits for a claim (a write) to find work.
    waiting: Arc<AtomicUsize>,
    /// After a claim came back short, no claim before this instant.
    exhausted_until: Option<std::time::Instant>,
    pace: Pace,
}

/// How many accounts to keep claimed ahead: about one second of work at the
/// rate refreshes are finishing, never fewer than `base` nor more than
/// `MAX_AHEAD`. Fewer, larger claims keep the (single, on SQLite) writer free
/// for results when Instagram answers fast; a second's wait stays far inside
/// a lease, and a task whose lease got short is given back unattempted anyway.
struct Pace {
    since: std::time::Instant,
    done_then: u64,
    per_sec: f64,
}

const MAX_AHEAD: usize = 1024;

impl Pace {
    fn new() -> Pace {
        Pace {
            since: std::time::Instant::now(),
            done_then: 0,
            per_sec: 0.0,
        }
    }

    fn depth(&mut self, base: usize, done: u64) -> usize {
        let elapsed = self.since.elapsed().as_secs_f64();
        if elapsed >= 0.25 {
            let rate = done.saturating_sub(self.done_then) as f64 / elapsed;
            self.per_sec = 0.5 * self.per_sec + 0.5 * rate;
            self.since = std::time::Instant::now();
            self.done_then = done;
        }
        (self.per_sec as usize).clamp(base, MAX_AHEAD.max(base))
    }
}

impl Running {
    fn new(state: &AppState) -> Running {
        let (tx, rx) = mpsc::channel(1024);
        Running {
            tasks: JoinSet::new(),
            holding: HashMap::new(),
            sink: Arc::new(CommitSink::Queue(tx)),
            writer: tokio::spawn(crate::worker::commit_writer::run(state.clone(), rx)),
            stats: RunStats::default(),
            waiting: Arc::new(AtomicUsize::new(0)),
            exhausted_until: None,
            pace: Pace::new(),
        }
    }

    /// Waits for the writer once every task (and so every sender) is gone.
    async fn close(self) -> RunStats {
        let Running {
            sink,
            writer,
            stats,
            ..
        } = self;
        drop(sink);
        let _ = writer.await;
        stats
    }
}

impl Scheduler {
    pub fn new(state: AppState) -> Scheduler {
        let concurrency = state.config().refresh.concurrency.max(1);
        let owner_prefix = format!("{}:sched:", state.node_id());
        let http = state.webhook_http().clone();
        Scheduler {
            state,
            permits: Arc::new(Semaphore::new(concurrency)),
            http,
            owner_prefix,
        }
    }

    fn owner(&self) -> String {
        format!("{}{}", self.owner_prefix, uuid::Uuid::now_v7().simple())
    }

    /// Keeps a few rounds of due accounts claimed ahead, each as a task that
    /// waits for a permit (the concurrency limit on calls to Instagram).
    /// Claimed accounts their app's budget does not admit are given back, due
    /// when the budget window turns. Returns how many it claimed.
    async fn claim_and_spawn(&self, running: &mut Running) -> Result<usize, Error> {
        let concurrency = self.state.config().refresh.concurrency.max(1);
        let depth = running
            .pace
            .depth((4 * concurrency).max(32), running.stats.attempts());
        let waiting = running.waiting.load(Ordering::SeqCst);
        if waiting >= depth / 2 {
            return Ok(0);
        }
        // One owner per claim keeps it one statement; each account's result is
        // written under that owner, which only this scheduler holds.
        let owner = self.owner();
        let store = self.state.store();
        let now = self.state.now();
        let until = now + refresh::lease_secs(&self.state);
        let want = i64::try_from(depth - waiting).unwrap_or(1);
        if running
            .exhausted_until
            .is_some_and(|t| std::time::Instant::now() < t)
        {
            return Ok(0);
        }
        let claimed = store.claim_due(&owner, now, until, want).await?;
        // Fewer than asked: nothing more is due now. Claiming again on every
        // completion would only queue empty writes in front of the results.
        running.exhausted_until = (claimed.len() < usize::try_from(want).unwrap_or(0))
            .then(|| std::time::Instant::now() + Duration::from_millis(200));
        let n = claimed.len();
        let mut by_app: BTreeMap<String, Vec<Claimed>> = BTreeMap::new();
        for c in claimed {
            by_app.entry(c.app_id.clone()).or_default().push(c);
        }
        let per_minute = self.state.config().refresh.app_budget_per_minute;
        for (app_id, mut list) in by_app {
            let asked = i64::try_from(list.len()).unwrap_or(i64::MAX);
            let granted = store
                .take_app_budget_n(&app_id, now, BUDGET_WINDOW_SECS, per_minute, asked)
                .await?;
            let keep = usize::try_from(granted).unwrap_or(0).min(list.len());
            let deferred: Vec<String> = list.split_off(keep).into_iter().map(|c| c.id).collect();
            if !deferred.is_empty() {
                let again = store
                    .app_budget_window_end(&app_id, BUDGET_WINDOW_SECS)
                    .await?
                    .unwrap_or(now + BUDGET_WINDOW_SECS)
                    .max(now + 1);
                store.defer_claimed_many(&deferred, &owner, again).await?;
                let n = deferred.len() as u64;
                running.stats.deferred += n;
                metrics::counter!("igbroker_refresh_deferred_total").increment(n);
            }
            for acc in list {
                self.spawn_refresh(running, acc, owner.clone());
            }
        }
        Ok(n)
    }

    fn spawn_refresh(&self, running: &mut Running, acc: Claimed, owner: String) {
        let state = self.state.clone();
        let sink = running.sink.clone();
        let permits = self.permits.clone();
        let waiting = running.waiting.clone();
        waiting.fetch_add(1, Ordering::SeqCst);
        let held = (acc.id.clone(), owner.clone());
        let handle = running.tasks.spawn(async move {
            let permit = permits.acquire_owned().await;
            waiting.fetch_sub(1, Ordering::SeqCst);
            let permit =
                permit.map_err(|_| Error::Unavailable("the scheduler is stopping".into()))?;
            // Claimed ahead, it may have waited long for a slot (a slow Instagram):
            // give it back rather than call under a lease that could run out.
            if !refresh::lease_covers_call(&state, acc.lease_until) {
                drop(permit);
                state.store().release_refresh_lease(&acc.id, &owner).await?;
                return Ok(TaskResult::Refresh(Outcome::Deferred));
            }
            refresh::refresh_leased(&state, &acc, &owner, ACTOR, &sink, Some(permit))
                .await
                .map(TaskResult::Refresh)
        });
        running.holding.insert(handle.id(), held);
    }

    async fn spawn_webhooks(&self, running: &mut Running) -> Result<usize, Error> {
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
        joined: Result<(Id, Result<TaskResult, Error>), tokio::task::JoinError>,
    ) {
        match joined {
            Ok((id, result)) => {
                let held = running.holding.remove(&id);
                match result {
                    Ok(r) => running.stats.add(r),
                    Err(e) => {
                        tracing::error!(error = %e, "scheduler task failed");
                        self.release(held);
                    }
                }
            }
            Err(e) => {
                let held = running.holding.remove(&e.id());
                tracing::error!(panicked = e.is_panic(), account = ?held.as_ref().map(|h| &h.0), "scheduler task died");
                metrics::counter!("igbroker_scheduler_task_panics_total").increment(1);
                self.release(held);
            }
        }
    }

    /// Gives back the lease of a task that ended without recording an outcome.
    fn release(&self, held: Option<(String, String)>) {
        if let Some((account, owner)) = held {
            let state = self.state.clone();
            tokio::spawn(async move {
                if let Err(e) = state.store().release_refresh_lease(&account, &owner).await {
                    tracing::error!(error = %e, "could not release the lease of a task that died");
                }
            });
        }
    }

    /// Runs until `shutdown` fires; then stops claiming, lets in-flight refreshes
    /// finish within their lease, and releases whatever it still holds.
    pub async fn run(self, shutdown: Shutdown) {
        let wake = self.state.scheduler_wake();
        let mut running = Running::new(&self.state);
        let poll = self
            .state
            .config()
            .refresh
            .poll
            .max(Duration::from_millis(100));
        let mut last_webhooks = std::time::Instant::now() - Duration::from_secs(1);
        tracing::info!(
            concurrency = self.permits.available_permits(),
            "refresh scheduler started"
        );
        loop {
            while let Some(joined) = running.tasks.try_join_next_with_id() {
                self.reap(&mut running, joined);
            }
            if shutdown.is_fired() {
                break;
            }
            // Register for a wake-up before looking, so a change in between is not missed.
            let notified = wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();

            let claimed = match self.claim_and_spawn(&mut running).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(error = %e, "claiming due refreshes failed");
                    0
                }
            };
            // Webhook claims are writes too: look at most a few times a second.
            if last_webhooks.elapsed() >= Duration::from_millis(250) {
                last_webhooks = std::time::Instant::now();
                if let Err(e) = self.spawn_webhooks(&mut running).await {
                    tracing::error!(error = %e, "claiming webhook deliveries failed");
                }
            }
            if claimed > 0 && !running.tasks.is_empty() {
                // More may be due: come back as soon as a permit frees up.
                tokio::select! {
                    Some(joined) = running.tasks.join_next_with_id() => self.reap(&mut running, joined),
                    _ = shutdown.wait() => {}
                }
                continue;
            }
            let sleep = self.sleep_for(poll).await;
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = &mut notified => running.exhausted_until = None,
                Some(joined) = running.tasks.join_next_with_id(), if !running.tasks.is_empty() => {
                    self.reap(&mut running, joined);
                }
                _ = shutdown.wait() => {}
            }
        }
        let grace =
            Duration::from_secs(u64::try_from(refresh::lease_secs(&self.state)).unwrap_or(60));
        let drained = tokio::time::timeout(grace, async {
            while let Some(joined) = running.tasks.join_next_with_id().await {
                self.reap(&mut running, joined);
            }
        })
        .await;
        if drained.is_err() {
            running.tasks.abort_all();
        }
        let stats = running.close().await;
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
    ) -> Result<RunStats, Error> {
        let mut running = Running::new(&self.state);
        let mut last_webhooks = std::time::Instant::now();
        let result = loop {
            if running.tasks.is_empty() {
                // Nothing in flight: look again before concluding that all is done.
                running.exhausted_until = None;
            }
            let spawned = match self.claim_and_spawn(&mut running).await {
                Ok(n) => n,
                Err(e) => break Err(e),
            };
            // Webhook claims are writes too: look when nothing else runs, or
            // a few times a second.
            let webhooks = if running.tasks.is_empty()
                || last_webhooks.elapsed() >= Duration::from_millis(250)
            {
                last_webhooks = std::time::Instant::now();
                match self.spawn_webhooks(&mut running).await {
                    Ok(n) => n,
                    Err(e) => break Err(e),
                }
            } else {
                0
            };
            if spawned + webhooks == 0 && running.tasks.is_empty() {
                break Ok(());
            }
            // Wait for one task, then look again: freed permits take new work.
            if let Some(joined) = running.tasks.join_next_with_id().await {
                self.reap(&mut running, joined);
                on_progress(&running.stats);
            }
        };
        while let Some(joined) = running.tasks.join_next_with_id().await {
            self.reap(&mut running, joined);
        }
        let stats = running.close().await;
        result.map(|()| stats)
    }
}
