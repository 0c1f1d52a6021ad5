//! The demo's data folder: disposable, but only when the demo made it.
//!
//! `demo` starts from nothing each time, so it deletes its database and key ring. It does
//! so only in a folder that carries its marker file; a folder that holds anything else
//! (a real broker's `igbroker.db`, say) is refused and left exactly as it is.

use std::path::Path;

use anyhow::{Context, bail};

/// The file that says "igbroker demo made this folder".
pub const MARKER: &str = ".igbroker-demo";

/// The files a demo run creates, removed before the next run.
const DEMO_FILES: [&str; 5] = [
    "igbroker.db",
    "igbroker.db-wal",
    "igbroker.db-shm",
    "igbroker.db-journal",
    "keys.toml",
];

/// Makes `data` ready for a fresh demo: creates it (with the marker) when missing or empty,
/// clears the demo's files when the marker is there, refuses otherwise.
pub fn prepare(data: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(data).with_context(|| format!("cannot create {}", data.display()))?;
    let marker = data.join(MARKER);
    if !marker.exists() {
        let mut entries =
            std::fs::read_dir(data).with_context(|| format!("cannot read {}", data.display()))?;
        if let Some(first) = entries.next() {
            let name = first
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .unwrap_or_default();
            bail!(
                "{} already holds files the demo did not create (such as `{name}`); the demo \
                 deletes its data on every start, so it uses only an empty folder or one it made. \
                 Pass another folder with --data, or empty this one",
                data.display()
            );
        }
        std::fs::write(
            &marker,
            "This folder was created by `igbroker demo`, which deletes its database and key \
             ring here on every start.\n",
        )
        .with_context(|| format!("cannot write {}", marker.display()))?;
        return Ok(());
    }
    for name in DEMO_FILES {
        let p = data.join(name);
        if p.exists() {
            std::fs::remove_file(&p).with_context(|| format!("cannot remove {}", p.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_foreign_folder_is_refused_and_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("igbroker.db");
        std::fs::write(&db, b"production data").unwrap();
        let e = prepare(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("did not create") && e.contains("igbroker.db"),
            "{e}"
        );
        assert_eq!(std::fs::read(&db).unwrap(), b"production data");
        assert!(!dir.path().join(MARKER).exists());
    }

    #[test]
    fn the_demos_own_folder_is_reset() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("demo");
        prepare(&data).unwrap();
        assert!(data.join(MARKER).exists());
        std::fs::write(data.join("igbroker.db"), b"old demo").unwrap();
        std::fs::write(data.join("notes.txt"), b"mine").unwrap();
        prepare(&data).unwrap();
        assert!(!data.join("igbroker.db").exists());
        assert_eq!(std::fs::read(data.join("notes.txt")).unwrap(), b"mine");
    }
}
