//! The versioned key ring: loading (file or env spec), editing and writing it back.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};

use rand::RngExt as _;
use zeroize::Zeroize as _;
use zeroize::Zeroizing;

use crate::error::VaultError;
use crate::key::{KeyDecodeError, KeyMaterial, KeyState};

/// The highest key version a ring may hold: `i32::MAX`, so a version fits a signed 32-bit
/// database column on every backend.
pub const MAX_KEY_VERSION: u32 = 0x7FFF_FFFF;

/// The environment variable that carries a ring spec (`"1:<base64>,2:<base64>"`).
pub const ENV_RING_VAR: &str = "IGBROKER_KEYS__RING";

/// A ring file larger than this (1 MiB, some ten thousand keys) is refused unread.
const MAX_RING_FILE_LEN: usize = 1 << 20;

/// The comment at the top of a written ring file.
const RING_FILE_HEADER: &str = "# igbroker key ring: the keys that encrypt stored tokens and secrets.\n\
# Keep it secret (mode 0600), back it up, never commit it. Losing a key loses every\n\
# record sealed with it. Managed by `igbroker keys init|add|rotate|status`.\n";

/// Fields allowed in a `[[key]]` table.
const KEY_FIELDS: [&str; 3] = ["version", "key", "state"];

#[derive(Clone)]
struct Entry {
    key: KeyMaterial,
    state: KeyState,
}

/// Versioned AES-256 keys, exactly one of them [`KeyState::Current`].
///
/// Every key zeroizes on drop. `Debug` shows versions and states only.
///
/// Invariants, upheld by every constructor and method: at least one key; versions in
/// `1..=MAX_KEY_VERSION`; exactly one current key, which is never retired.
#[derive(Clone)]
pub struct KeyRing {
    keys: BTreeMap<u32, Entry>,
    current: u32,
    /// Keys the audit chain's links (an HMAC per entry), so that whoever can write to the
    /// database cannot rewrite its history unnoticed. Never rotated: the chain needs it for
    /// as long as its oldest keyed entry is kept. Absent in rings made before it existed.
    audit: Option<KeyMaterial>,
}

impl KeyRing {
    /// A new ring: version 1, current, random key.
    #[must_use]
    pub fn generate() -> KeyRing {
        let mut keys = BTreeMap::new();
        keys.insert(
            1,
            Entry {
                key: KeyMaterial::generate(),
                state: KeyState::Current,
            },
        );
        KeyRing {
            keys,
            current: 1,
            audit: Some(KeyMaterial::generate()),
        }
    }

    /// Builds a ring from keys a caller already holds (e.g. a KMS provider), with the same
    /// checks as a ring file: versions `1..=MAX_KEY_VERSION`, no duplicates, exactly one current.
    /// `origin` names the source in error messages (e.g. `"KMS key set prod"`).
    pub fn from_keys(
        origin: &str,
        keys: impl IntoIterator<Item = (u32, KeyMaterial, KeyState)>,
    ) -> Result<KeyRing, VaultError> {
        let mut map = BTreeMap::new();
        for (version, key, state) in keys {
            check_version_range(origin, version)?;
            if map.insert(version, Entry { key, state }).is_some() {
                return Err(VaultError::DuplicateVersion {
                    origin: origin.to_owned(),
                    version,
                });
            }
        }
        KeyRing::validated(origin, map)
    }

    fn validated(origin: &str, keys: BTreeMap<u32, Entry>) -> Result<KeyRing, VaultError> {
        if keys.is_empty() {
            return Err(VaultError::EmptyRing {
                origin: origin.to_owned(),
            });
        }
        let currents: Vec<u32> = keys
            .iter()
            .filter(|(_, e)| e.state == KeyState::Current)
            .map(|(v, _)| *v)
            .collect();
        match currents.as_slice() {
            [] => Err(VaultError::NoCurrentKey {
                origin: origin.to_owned(),
            }),
            [current] => Ok(KeyRing {
                current: *current,
                keys,
                audit: None,
            }),
            _ => Err(VaultError::SeveralCurrentKeys {
                origin: origin.to_owned(),
                versions: currents,
            }),
        }
    }

    /// Loads a ring file (TOML: `[[key]]` tables with `version`, `key` in base64, `state`).
    ///
    /// On Unix, refuses a file whose mode grants anything to group or others (`mode & 0o077`),
    /// checked on the opened file itself. Parsed copies of the keys are wiped once read
    /// (best effort: the TOML parser's internal buffers are out of reach).
    pub fn load_file(path: &Path) -> Result<KeyRing, VaultError> {
        let file = match fs::File::open(path) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Err(VaultError::RingFileMissing {
                    path: path.to_owned(),
                });
            }
            Err(source) => {
                return Err(VaultError::RingFileRead {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let read_err = |source| VaultError::RingFileRead {
            path: path.to_owned(),
            source,
        };
        let meta = file.metadata().map_err(read_err)?;
        if !meta.is_file() {
            return Err(read_err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            )));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                return Err(VaultError::RingFilePermissions {
                    path: path.to_owned(),
                    mode,
                });
            }
        }
        let origin = format!("key ring file {}", path.display());
        let size = usize::try_from(meta.len()).unwrap_or(usize::MAX);
        if size > MAX_RING_FILE_LEN {
            return Err(VaultError::RingFormat {
                origin,
                problem: format!(
                    "the file is {size} bytes, far more than a key ring takes; check that \
                     `[keys] ring_file` names the ring file"
                ),
            });
        }
        // Sized up front: growing the buffer would leave copies of the keys in freed memory.
        let mut bytes = Zeroizing::new(Vec::with_capacity(size + 1));
        file.take(MAX_RING_FILE_LEN as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(read_err)?;
        let Ok(text) = std::str::from_utf8(&bytes) else {
            return Err(VaultError::RingFormat {
                origin,
                problem: "the file is not UTF-8 text; it must be TOML with `[[key]]` tables"
                    .to_owned(),
            });
        };
        KeyRing::from_toml_str(&origin, text)
    }

    /// Parses ring-file TOML. `origin` names the source in error messages.
    pub fn from_toml_str(origin: &str, text: &str) -> Result<KeyRing, VaultError> {
        let mut table: toml::Table = match text.parse() {
            Ok(table) => table,
            Err(err) => {
                let err: toml::de::Error = err;
                let (line, column) = err
                    .span()
                    .map_or((0, 0), |span| line_column(text, span.start));
                return Err(VaultError::RingSyntax {
                    origin: origin.to_owned(),
                    line,
                    column,
                    message: redact_long_tokens(&err.message().trim().replace('\n', "; ")),
                });
            }
        };
        let result = ring_from_table(origin, &table);
        scrub_table(&mut table);
        result
    }

    /// Parses `IGBROKER_KEYS__RING`: `"1:<base64>,2:<base64>"`. The highest version is current,
    /// the others active. Whitespace around entries is ignored, as are empty entries.
    pub fn from_env_spec(spec: &str) -> Result<KeyRing, VaultError> {
        let origin = ENV_RING_VAR;
        let format_err = |problem: String| VaultError::RingFormat {
            origin: origin.to_owned(),
            problem,
        };
        let mut map = BTreeMap::new();
        let mut audit = None;
        for (index, entry) in spec.split(',').map(str::trim).enumerate() {
            let n = index + 1;
            if entry.is_empty() {
                continue;
            }
            // Never quote the entry: it holds a key.
            if let Some(key) = entry.strip_prefix("audit:") {
                if audit.is_some() {
                    return Err(format_err(
                        "the audit key is listed twice; give one `audit:<base64>` entry".to_owned(),
                    ));
                }
                audit = Some(decode_audit_key(origin, key)?);
                continue;
            }
            let Some((version, key)) = entry.split_once(':') else {
                return Err(format_err(format!(
                    "entry {n} is not `VERSION:BASE64KEY`; the variable lists keys as \
                     `1:<base64>,2:<base64>` (each key 32 bytes, e.g. `openssl rand -base64 32`)"
                )));
            };
            let version = parse_env_version(version.trim()).ok_or_else(|| {
                format_err(format!(
                    "entry {n} does not start with a key version (a whole number from 1 to \
                     {MAX_KEY_VERSION} followed by `:`); write entries as `1:<base64>`"
                ))
            })?;
            let key = decode_key(origin, version, key)?;
            let entry = Entry {
                key,
                state: KeyState::Active,
            };
            if map.insert(version, entry).is_some() {
                return Err(VaultError::DuplicateVersion {
                    origin: origin.to_owned(),
                    version,
                });
            }
        }
        if let Some(entry) = map.values_mut().next_back() {
            entry.state = KeyState::Current;
        }
        let mut ring = KeyRing::validated(origin, map)?;
        ring.audit = audit;
        Ok(ring)
    }

    /// The ring as ring-file TOML, in a zeroizing string.
    #[must_use]
    pub fn to_toml(&self) -> Zeroizing<String> {
        // Sized up front so the buffer never reallocates (a reallocation would leave a copy of
        // the keys behind in freed memory). An entry takes at most ~105 bytes.
        let mut out = Zeroizing::new(String::with_capacity(
            RING_FILE_HEADER.len() + 128 * (self.keys.len() + 1),
        ));
        out.push_str(RING_FILE_HEADER);
        for (version, entry) in &self.keys {
            out.push_str("\n[[key]]\nversion = ");
            out.push_str(&version.to_string());
            out.push_str("\nstate = \"");
            out.push_str(entry.state.as_str());
            out.push_str("\"\nkey = \"");
            out.push_str(&entry.key.to_base64());
            out.push_str("\"\n");
        }
        if let Some(audit) = &self.audit {
            out.push_str("\n[audit]\nkey = \"");
            out.push_str(&audit.to_base64());
            out.push_str("\"\n");
        }
        out
    }

    /// Writes the ring file atomically: missing parent directories are created (mode 0700 on
    /// Unix), the content goes to a temporary file in the same directory that is created with
    /// mode 0600 (never readable by anyone else, not even briefly), synced, then renamed over
    /// `path`.
    pub fn write_file(&self, path: &Path) -> Result<(), VaultError> {
        let write_err = |source| VaultError::RingFileWrite {
            path: path.to_owned(),
            source,
        };
        let Some(file_name) = path.file_name() else {
            return Err(write_err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the path names no file",
            )));
        };
        let dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
            _ => PathBuf::from("."),
        };
        create_private_dir_all(&dir).map_err(write_err)?;

        let suffix: u64 = rand::rng().random();
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(file_name);
        tmp_name.push(format!(".{}.{suffix:016x}.tmp", std::process::id()));
        let tmp_path = dir.join(tmp_name);

        let result = write_new_private_file(&tmp_path, self.to_toml().as_bytes())
            .and_then(|()| fs::rename(&tmp_path, path));
        if let Err(source) = result {
            let _ignored = fs::remove_file(&tmp_path);
            return Err(write_err(source));
        }
        // Make the rename itself durable. Best effort: some filesystems refuse to sync a
        // directory, and the file is in place either way.
        if let Ok(dir) = fs::File::open(&dir) {
            let _ignored = dir.sync_all();
        }
        Ok(())
    }

    /// Adds a new random key, state active (not current), and returns its version: one above
    /// the highest version held. (Should the highest version be [`MAX_KEY_VERSION`], which only
    /// a hand-edited file can cause, the lowest unused version is taken instead.)
    pub fn add_version(&mut self) -> u32 {
        let highest = self.newest_version();
        let version = if highest < MAX_KEY_VERSION {
            highest + 1
        } else {
            // A ring can never hold MAX_KEY_VERSION keys (that is 64 GiB of keys), so a gap
            // exists; should it not, nothing is added (never overwrite a key).
            match (1..=MAX_KEY_VERSION).find(|v| !self.keys.contains_key(v)) {
                Some(gap) => gap,
                None => return highest,
            }
        };
        self.keys.insert(
            version,
            Entry {
                key: KeyMaterial::generate(),
                state: KeyState::Active,
            },
        );
        version
    }

    /// Makes `version` the current key; the previous current key becomes active.
    /// Refuses a version the ring lacks or one that is retired.
    pub fn make_current(&mut self, version: u32) -> Result<(), VaultError> {
        let entry = self
            .keys
            .get(&version)
            .ok_or(VaultError::NoSuchVersion(version))?;
        match entry.state {
            KeyState::Current => return Ok(()),
            KeyState::Retired => return Err(VaultError::VersionRetired(version)),
            KeyState::Active => {}
        }
        if let Some(previous) = self.keys.get_mut(&self.current) {
            previous.state = KeyState::Active;
        }
        if let Some(entry) = self.keys.get_mut(&version) {
            entry.state = KeyState::Current;
        }
        self.current = version;
        Ok(())
    }

    /// Retires `version`: it still opens what it sealed, but can never seal or become current.
    /// Refuses the current version. Retiring a retired version does nothing.
    pub fn retire(&mut self, version: u32) -> Result<(), VaultError> {
        if version == self.current {
            return Err(VaultError::RetireCurrent(version));
        }
        let entry = self
            .keys
            .get_mut(&version)
            .ok_or(VaultError::NoSuchVersion(version))?;
        entry.state = KeyState::Retired;
        Ok(())
    }

    /// Makes a retired version active again (it opens, never seals). Does nothing to an
    /// active or current version.
    pub fn reactivate(&mut self, version: u32) -> Result<(), VaultError> {
        let entry = self
            .keys
            .get_mut(&version)
            .ok_or(VaultError::NoSuchVersion(version))?;
        if entry.state == KeyState::Retired {
            entry.state = KeyState::Active;
        }
        Ok(())
    }

    /// The version that seals new values.
    #[must_use]
    pub fn current_version(&self) -> u32 {
        self.current
    }

    /// The highest version held (what `keys rotate` makes current).
    #[must_use]
    pub fn newest_version(&self) -> u32 {
        self.keys
            .keys()
            .next_back()
            .copied()
            .unwrap_or(self.current)
    }

    /// Every version with its state, sorted by version.
    #[must_use]
    pub fn versions(&self) -> Vec<(u32, KeyState)> {
        self.keys.iter().map(|(v, e)| (*v, e.state)).collect()
    }

    /// Whether the ring holds a key for `version` (in any state).
    #[must_use]
    pub fn holds(&self, version: u32) -> bool {
        self.keys.contains_key(&version)
    }

    /// The state of `version`, if held.
    #[must_use]
    pub fn state(&self, version: u32) -> Option<KeyState> {
        self.keys.get(&version).map(|e| e.state)
    }

    /// The public fingerprint of `version`'s key (see [`KeyMaterial::fingerprint`]): record it
    /// next to the versions a replica holds, so that two replicas holding different material
    /// under one version number are caught before they disagree about data.
    #[must_use]
    pub fn fingerprint(&self, version: u32) -> Option<String> {
        self.keys.get(&version).map(|e| e.key.fingerprint())
    }

    /// Number of versions held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Always false: a ring holds at least one key. Here for the `len` convention.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key material of `version`. For key export and KMS wrapping only.
    #[must_use]
    pub fn key(&self, version: u32) -> Option<&KeyMaterial> {
        self.keys.get(&version).map(|e| &e.key)
    }

    /// The key of the audit chain, if the ring has one.
    pub fn audit_key(&self) -> Option<&KeyMaterial> {
        self.audit.as_ref()
    }

    /// Gives a ring made before audit keys existed a random one; `false` if it had one.
    pub fn ensure_audit_key(&mut self) -> bool {
        if self.audit.is_some() {
            return false;
        }
        self.audit = Some(KeyMaterial::generate());
        true
    }

    pub(crate) fn iter_keys(&self) -> impl Iterator<Item = (u32, &KeyMaterial)> {
        self.keys.iter().map(|(v, e)| (*v, &e.key))
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("current", &self.current)
            .field("versions", &self.versions())
            .field("audit_key", &self.audit.is_some())
            .finish_non_exhaustive()
    }
}

fn check_version_range(origin: &str, version: u32) -> Result<(), VaultError> {
    if (1..=MAX_KEY_VERSION).contains(&version) {
        Ok(())
    } else {
        Err(VaultError::RingFormat {
            origin: origin.to_owned(),
            problem: format!(
                "key version {version} is out of range; versions are whole numbers from 1 to \
                 {MAX_KEY_VERSION}"
            ),
        })
    }
}

fn parse_env_version(text: &str) -> Option<u32> {
    let text = text.strip_prefix(['v', 'V']).unwrap_or(text);
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u32>()
        .ok()
        .filter(|v| (1..=MAX_KEY_VERSION).contains(v))
}

fn decode_key(origin: &str, version: u32, text: &str) -> Result<KeyMaterial, VaultError> {
    KeyMaterial::from_base64(text).map_err(|err| match err {
        KeyDecodeError::NotBase64 => VaultError::InvalidKeyEncoding {
            origin: origin.to_owned(),
            version,
        },
        KeyDecodeError::Length(len) => VaultError::InvalidKeyLength {
            origin: origin.to_owned(),
            version,
            len,
        },
    })
}

fn ring_from_table(origin: &str, table: &toml::Table) -> Result<KeyRing, VaultError> {
    let format_err = |problem: String| VaultError::RingFormat {
        origin: origin.to_owned(),
        problem,
    };
    if let Some(other) = table
        .keys()
        .find(|k| k.as_str() != "key" && k.as_str() != "audit")
    {
        let other = redact_long_tokens(other);
        return Err(format_err(format!(
            "unexpected top-level entry `{other}`; the file holds only `[[key]]` tables and an \
             `[audit]` table"
        )));
    }
    let audit = match table.get("audit") {
        None => None,
        Some(toml::Value::Table(t)) => {
            if let Some(field) = t.keys().find(|k| k.as_str() != "key") {
                let field = redact_long_tokens(field);
                return Err(format_err(format!(
                    "the `[audit]` table has an unknown field `{field}`; it holds only `key`"
                )));
            }
            match t.get("key") {
                Some(toml::Value::String(s)) => Some(decode_audit_key(origin, s)?),
                _ => {
                    return Err(format_err(
                        "the `[audit]` table needs `key = \"<base64 of 32 bytes>\"`".to_owned(),
                    ));
                }
            }
        }
        Some(_) => {
            return Err(format_err(
                "`audit` must be a table: `[audit]` then `key = \"<base64>\"`".to_owned(),
            ));
        }
    };
    let entries = match table.get("key") {
        None => {
            return Err(VaultError::EmptyRing {
                origin: origin.to_owned(),
            });
        }
        Some(toml::Value::Array(entries)) => entries,
        Some(_) => {
            return Err(format_err(
                "`key` must be an array of tables, written as `[[key]]` sections".to_owned(),
            ));
        }
    };
    let mut map = BTreeMap::new();
    for (index, entry) in entries.iter().enumerate() {
        let n = index + 1;
        let toml::Value::Table(entry) = entry else {
            return Err(format_err(format!(
                "key entry {n} is not a table; write each key as a `[[key]]` section"
            )));
        };
        if let Some(field) = entry.keys().find(|k| !KEY_FIELDS.contains(&k.as_str())) {
            let field = redact_long_tokens(field);
            return Err(format_err(format!(
                "key entry {n} has an unknown field `{field}`; the fields are `version`, `key` \
                 and `state`"
            )));
        }
        let version = match entry.get("version") {
            Some(toml::Value::Integer(v)) => u32::try_from(*v)
                .ok()
                .filter(|v| (1..=MAX_KEY_VERSION).contains(v))
                .ok_or_else(|| {
                    format_err(format!(
                        "key entry {n}: `version` must be a whole number from 1 to \
                         {MAX_KEY_VERSION}"
                    ))
                })?,
            Some(_) => {
                return Err(format_err(format!(
                    "key entry {n}: `version` must be a whole number (e.g. `version = 1`)"
                )));
            }
            None => {
                return Err(format_err(format!(
                    "key entry {n} has no `version`; add e.g. `version = 1`"
                )));
            }
        };
        let state = match entry.get("state") {
            Some(toml::Value::String(s)) => s.parse::<KeyState>().map_err(|_| {
                format_err(format!(
                    "key version {version}: `state` must be \"current\", \"active\" or \"retired\""
                ))
            })?,
            Some(_) => {
                return Err(format_err(format!(
                    "key version {version}: `state` must be a string: \"current\", \"active\" \
                     or \"retired\""
                )));
            }
            None => {
                return Err(format_err(format!(
                    "key version {version} has no `state`; add `state = \"active\"` (or \
                     \"current\" for the one key that seals new values)"
                )));
            }
        };
        let key = match entry.get("key") {
            Some(toml::Value::String(s)) => decode_key(origin, version, s)?,
            Some(_) => {
                return Err(format_err(format!(
                    "key version {version}: `key` must be a base64 string in quotes"
                )));
            }
            None => {
                return Err(format_err(format!(
                    "key version {version} has no `key`; add `key = \"<base64 of 32 bytes>\"`"
                )));
            }
        };
        if map.insert(version, Entry { key, state }).is_some() {
            return Err(VaultError::DuplicateVersion {
                origin: origin.to_owned(),
                version,
            });
        }
    }
    let mut ring = KeyRing::validated(origin, map)?;
    ring.audit = audit;
    Ok(ring)
}

fn decode_audit_key(origin: &str, text: &str) -> Result<KeyMaterial, VaultError> {
    KeyMaterial::from_base64(text.trim()).map_err(|_| VaultError::RingFormat {
        origin: origin.to_owned(),
        problem: "the audit key is not the base64 of 32 bytes (e.g. `openssl rand -base64 32`)"
            .to_owned(),
    })
}

/// Wipes the strings of a parsed ring table (the base64 keys among them).
fn scrub_table(table: &mut toml::Table) {
    for (_, value) in table.iter_mut() {
        scrub_value(value);
    }
}

fn scrub_value(value: &mut toml::Value) {
    match value {
        toml::Value::String(s) => s.zeroize(),
        toml::Value::Array(items) => items.iter_mut().for_each(scrub_value),
        toml::Value::Table(table) => scrub_table(table),
        _ => {}
    }
}

/// Replaces every run of 20 or more base64 or hex characters with `[…]`, so that a message
/// quoting a file (a key pasted where a field name belongs, say) cannot carry key material.
fn redact_long_tokens(text: &str) -> String {
    const MIN_RUN: usize = 20;
    let is_token = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '-' | '_');
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.chars().count() >= MIN_RUN {
            out.push_str("[…]");
        } else {
            out.push_str(run);
        }
        run.zeroize();
        run.clear();
    };
    for c in text.chars() {
        if is_token(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before
        .get(line_start..)
        .map_or(1, |s| s.chars().count() + 1);
    (line, column)
}

#[cfg(unix)]
fn create_private_dir_all(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir_all(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

/// Creates `path` (which must not exist) readable and writable by the owner only, writes
/// `content` and syncs it.
fn write_new_private_file(path: &Path, content: &[u8]) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    #[cfg(unix)]
    {
        // The umask can only have removed bits; make the mode exactly 0600 regardless.
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(content)?;
    file.sync_all()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn long_tokens_are_redacted() {
        assert_eq!(
            redact_long_tokens("duplicate key `stat`"),
            "duplicate key `stat`"
        );
        assert_eq!(
            redact_long_tokens("duplicate key `wMHCw8TFxsfIycrLzM3Oz9DR0tPU1dbX2Nna29zd3t8`!"),
            "duplicate key `[…]`!"
        );
        assert_eq!(redact_long_tokens("a_b_c_d_e_f_g_h_i_j_k"), "[…]");
        assert_eq!(redact_long_tokens(""), "");
    }

    #[test]
    fn line_column_counts_from_one() {
        assert_eq!(line_column("abc", 0), (1, 1));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_column("ab\ncd", 99), (2, 3));
    }

    #[test]
    fn env_versions() {
        assert_eq!(parse_env_version("1"), Some(1));
        assert_eq!(parse_env_version("v12"), Some(12));
        assert_eq!(parse_env_version("0"), None);
        assert_eq!(parse_env_version("+1"), None);
        assert_eq!(parse_env_version("-1"), None);
        assert_eq!(parse_env_version(""), None);
        assert_eq!(parse_env_version("2147483648"), None);
        assert_eq!(parse_env_version("99999999999"), None);
    }

    #[test]
    fn add_version_at_the_cap_takes_a_gap() {
        let ring = KeyRing::from_keys(
            "test",
            [(MAX_KEY_VERSION, KeyMaterial::generate(), KeyState::Current)],
        )
        .unwrap();
        let mut ring = ring;
        assert_eq!(ring.add_version(), 1);
        assert_eq!(ring.add_version(), 2);
        assert_eq!(ring.current_version(), MAX_KEY_VERSION);
    }

    #[test]
    fn the_audit_key_lives_in_the_file_and_the_variable() {
        let ring = KeyRing::generate();
        let audit = ring.audit_key().map(|k| k.fingerprint());
        assert!(audit.is_some());
        let text = ring.to_toml();
        let back = KeyRing::from_toml_str("test", &text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.audit_key().map(|k| k.fingerprint()), audit);

        // A ring written before audit keys still loads, and can be given one.
        let mut old = KeyRing::from_toml_str(
            "test",
            "[[key]]\nversion = 1\nstate = \"current\"\nkey = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(old.audit_key().is_none());
        assert!(old.ensure_audit_key());
        assert!(!old.ensure_audit_key());

        let b64 = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
        let env = KeyRing::from_env_spec(&format!("1:{b64}, audit:{b64}"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(env.audit_key().is_some());
        assert_eq!(env.current_version(), 1);
        let e = KeyRing::from_env_spec(&format!("1:{b64},audit:nope")).unwrap_err();
        assert!(e.to_string().contains("audit key"), "{e}");
        assert!(!e.to_string().contains(b64));
    }
}
