//! The state file: loaded at startup, rewritten (to a temporary file, then renamed) after
//! every change, so a crash never leaves half a file behind.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::errors::SandboxError;
use crate::lock;
use crate::sealing::Sealer;
use crate::state::State;

pub const STATE_FILE: &str = "sandbox-state.json";
const FORMAT: u32 = 1;

pub struct Store {
    dir: Option<PathBuf>,
    pub sealer: Sealer,
    /// Serialises snapshot-and-write, so an older snapshot never overwrites a newer one.
    save_lock: Mutex<()>,
}

impl Store {
    pub fn open(dir: Option<PathBuf>) -> Result<(Store, State), SandboxError> {
        let Some(dir) = dir else {
            return Ok((
                Store {
                    dir: None,
                    sealer: Sealer::ephemeral(),
                    save_lock: Mutex::new(()),
                },
                fresh_state(),
            ));
        };
        std::fs::create_dir_all(&dir).map_err(|source| SandboxError::Io {
            path: dir.clone(),
            source,
        })?;
        let sealer = Sealer::load_or_create(&dir)?;
        let state = load_state(&dir.join(STATE_FILE), &sealer)?;
        Ok((
            Store {
                dir: Some(dir),
                sealer,
                save_lock: Mutex::new(()),
            },
            state,
        ))
    }

    pub fn save(&self, state: &Mutex<State>, clock_offset: i64, now: i64) {
        let Some(dir) = &self.dir else { return };
        let _serial = lock(&self.save_lock);
        let bytes = {
            let mut st = lock(state);
            st.format = FORMAT;
            st.clock_offset_secs = clock_offset;
            st.prune(now);
            serde_json::to_vec_pretty(&*st)
        };
        let bytes = match bytes {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cannot serialise the sandbox state");
                return;
            }
        };
        let path = dir.join(STATE_FILE);
        let tmp = dir.join(format!("{STATE_FILE}.tmp"));
        let result = std::fs::write(&tmp, &bytes).and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = result {
            // The sandbox keeps serving from memory; the next change tries again.
            tracing::error!(error = %e, path = %path.display(), "cannot save the sandbox state");
        }
    }
}

fn fresh_state() -> State {
    let mut st = State::default();
    st.format = FORMAT;
    st
}

fn load_state(path: &Path, sealer: &Sealer) -> Result<State, SandboxError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(fresh_state());
        }
        Err(source) => {
            return Err(SandboxError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    let mut state: State =
        serde_json::from_slice(&bytes).map_err(|e| SandboxError::CorruptState {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    if state.format > FORMAT {
        return Err(SandboxError::CorruptState {
            path: path.to_owned(),
            message: format!(
                "written by a newer sandbox (format {}, this one reads {FORMAT})",
                state.format
            ),
        });
    }
    state.reindex();
    for app in state.apps.values_mut() {
        app.secret = app.secret_sealed.as_deref().and_then(|s| sealer.open(s));
        if app.secret.is_none() {
            tracing::warn!(
                client_id = %app.client_id,
                "the app secret cannot be unsealed (key file replaced?); events for this app need it registered again"
            );
        }
    }
    Ok(state)
}
