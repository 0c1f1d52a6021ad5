//! instagram-sandbox: a local emulator of Instagram's login and Graph endpoints
//! ("Instagram API with Instagram Login"), served on one port.
//!
//! The paths are the real hosts' paths (`/oauth/authorize`, `/oauth/access_token`,
//! `/access_token`, `/refresh_access_token`, Graph paths with or without `/vNN.N`), plus
//! `/_fb/…` for graph.facebook.com and the `/_sandbox/…` control API that lets tests and demos
//! drive it without a browser. The sandbox keeps only SHA-256 hashes of the tokens, codes and
//! client secrets it issues.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use instagram_sandbox::{Sandbox, SandboxOptions, serve};
//! let sandbox = Sandbox::new(SandboxOptions::default())?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! serve(listener, sandbox, std::future::pending()).await?;
//! # Ok(()) }
//! ```

mod calls;
mod clock;
mod consent_page;
mod control;
pub mod control_client;
mod dispatch;
mod errors;
mod events;
mod faults;
mod graph;
mod ids;
mod oauth;
mod params;
mod persist;
mod ratelimit;
mod sealing;
mod seed;
mod state;
mod timefmt;
mod webhooks;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

pub use clock::SandboxClock;
pub use errors::SandboxError;

/// The state file's name inside `SandboxOptions::data_dir`.
pub const STATE_FILE: &str = persist::STATE_FILE;

#[derive(Debug, Clone, Default)]
pub struct SandboxOptions {
    /// Where `sandbox-state.json` (and the key sealing app secrets) live. `None` keeps
    /// everything in memory.
    pub data_dir: Option<PathBuf>,
}

/// The emulator. Clones share one state; the handle is what the router serves.
#[derive(Clone)]
pub struct Sandbox {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub clock: SandboxClock,
    pub state: Mutex<state::State>,
    pub store: persist::Store,
    pub calls: Mutex<calls::CallLog>,
    pub faults: Mutex<faults::FaultTable>,
    pub rates: Mutex<ratelimit::RateTable>,
    pub http: reqwest::Client,
}

/// A poisoned lock only means another request panicked mid-update; the maps stay usable,
/// and one bad request must not take the whole emulator down.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Sandbox {
    /// Loads `<data_dir>/sandbox-state.json` when present; every later change is saved there.
    pub fn new(opts: SandboxOptions) -> Result<Sandbox, SandboxError> {
        let (store, state) = persist::Store::open(opts.data_dir)?;
        let clock = SandboxClock::with_offset(state.clock_offset_secs);
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Ok(Sandbox {
            inner: Arc::new(Inner {
                clock,
                state: Mutex::new(state),
                store,
                calls: Mutex::new(calls::CallLog::new(calls::CAPACITY)),
                faults: Mutex::new(faults::FaultTable::default()),
                rates: Mutex::new(ratelimit::RateTable::default()),
                http,
            }),
        })
    }

    /// Every path of the emulator, on one router.
    pub fn router(&self) -> axum::Router {
        dispatch::router(self.clone())
    }

    /// The clock the sandbox reads "now" from; moving it moves every lifetime.
    pub fn clock(&self) -> SandboxClock {
        self.inner.clock.clone()
    }

    pub(crate) fn now(&self) -> i64 {
        self.inner.clock.now_unix()
    }

    /// Read access to the state; the lock is never held across an await.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&state::State) -> R) -> R {
        f(&lock(&self.inner.state))
    }

    /// A change to the state, saved to the state file afterwards.
    pub(crate) fn write<R>(&self, f: impl FnOnce(&mut state::State) -> R) -> R {
        let out = f(&mut lock(&self.inner.state));
        self.save();
        out
    }

    pub(crate) fn save(&self) {
        self.inner.store.save(
            &self.inner.state,
            self.inner.clock.offset_secs(),
            self.now(),
        );
    }
}

/// Serves the sandbox on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    sandbox: Sandbox,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, sandbox.router())
        .with_graceful_shutdown(shutdown)
        .await
}
