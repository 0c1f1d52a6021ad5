//! The one error type of the crate.
//!
//! Every message says what was wrong and what to do about it. No message ever contains key
//! material, a plaintext, or a value read from a ring file or `IGBROKER_KEYS__RING` other than
//! key versions, states and field names.

use std::path::PathBuf;

/// Everything that can go wrong while loading a key ring or sealing and opening secrets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// A sealed value names a key version that the ring does not hold.
    #[error(
        "this record was encrypted with key v{0}, which the key ring does not hold; add that key \
         to the ring (keys file or IGBROKER_KEYS__RING)"
    )]
    UnknownKeyVersion(u32),

    /// Authentication failed: the value was moved to another row or column, altered, or the
    /// ring holds different key material for the version that sealed it.
    #[error(
        "an encrypted value failed authentication: it was copied from another row or column, \
         altered, or the key ring holds different key material for its key version than the key \
         that sealed it; check that every replica uses the same key ring, then restore the value \
         from a backup or enter the secret again"
    )]
    Tampered,

    /// The bytes are not a sealed value this crate can read (too short, unknown format).
    /// The payload says what is wrong and what to do.
    #[error("an encrypted value is malformed: {0}")]
    Malformed(String),

    /// `open_string` decrypted bytes that are not UTF-8.
    #[error(
        "a decrypted value is not UTF-8 text: it was sealed as binary data; read it with \
         `Vault::open` instead of `Vault::open_string`"
    )]
    NotUtf8,

    /// The ring file does not exist.
    #[error(
        "key ring file {} does not exist; create it with `igbroker keys init`, point \
         `[keys] ring_file` at the right file, or set IGBROKER_KEYS__RING",
        path.display()
    )]
    RingFileMissing {
        /// The file that was looked for.
        path: PathBuf,
    },

    /// The ring file can be read or written by group or others.
    #[error(
        "key ring file {} is accessible by group or others (mode {mode:04o}); it holds the \
         encryption keys, so restrict it with `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    RingFilePermissions {
        /// The offending file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },

    /// The ring file exists but cannot be read.
    #[error(
        "cannot read key ring file {}: {source}; check that it is a file readable by the user \
         running igbroker",
        path.display()
    )]
    RingFileRead {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },

    /// The ring file cannot be written.
    #[error(
        "cannot write key ring file {}: {source}; check that its directory exists or can be \
         created, and is writable by the user running igbroker",
        path.display()
    )]
    RingFileWrite {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },

    /// The ring file is not valid TOML.
    #[error(
        "{origin} is not valid TOML (line {line}, column {column}: {message}); fix the file: it \
         holds `[[key]]` tables with `version`, `key` and `state`"
    )]
    RingSyntax {
        /// Where the ring came from.
        origin: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The parser's description (never a quote of the file).
        message: String,
    },

    /// The ring is well-formed TOML (or env syntax) but not a valid ring description.
    #[error("{origin}: {problem}")]
    RingFormat {
        /// Where the ring came from.
        origin: String,
        /// What is wrong and how to fix it.
        problem: String,
    },

    /// A key is not valid base64.
    #[error(
        "{origin}: the key of version {version} is not valid base64; a key is 32 random bytes in \
         standard base64 (44 characters), as written by `igbroker keys init` / `keys add` or \
         `openssl rand -base64 32`"
    )]
    InvalidKeyEncoding {
        /// Where the ring came from.
        origin: String,
        /// The version whose key is bad.
        version: u32,
    },

    /// A key decodes to the wrong number of bytes.
    #[error(
        "{origin}: the key of version {version} decodes to {len} bytes, but AES-256 keys are \
         exactly 32 bytes; generate one with `igbroker keys add` or `openssl rand -base64 32`"
    )]
    InvalidKeyLength {
        /// Where the ring came from.
        origin: String,
        /// The version whose key is bad.
        version: u32,
        /// The decoded length.
        len: usize,
    },

    /// The same version appears twice.
    #[error(
        "{origin}: key version {version} appears more than once; each version must be listed \
         once: remove the duplicate (if the two keys differ, keep the one that opens your data)"
    )]
    DuplicateVersion {
        /// Where the ring came from.
        origin: String,
        /// The duplicated version.
        version: u32,
    },

    /// The ring holds no key at all.
    #[error(
        "{origin} holds no keys; create a ring with `igbroker keys init` or list at least one \
         `[[key]]`"
    )]
    EmptyRing {
        /// Where the ring came from.
        origin: String,
    },

    /// No key is marked current.
    #[error(
        "{origin} has no key with state \"current\"; mark exactly one key (normally the newest) \
         `state = \"current\"`"
    )]
    NoCurrentKey {
        /// Where the ring came from.
        origin: String,
    },

    /// More than one key is marked current.
    #[error(
        "{origin} marks several keys as current (versions {versions:?}); exactly one key seals \
         new values: mark the newest `current` and the others `active`"
    )]
    SeveralCurrentKeys {
        /// Where the ring came from.
        origin: String,
        /// The versions marked current.
        versions: Vec<u32>,
    },

    /// An operation named a version the ring does not hold.
    #[error("the key ring has no version {0}; `igbroker keys status` lists the versions it holds")]
    NoSuchVersion(u32),

    /// `retire` was asked to retire the current key.
    #[error(
        "key version {0} is the current key and cannot be retired; make another version current \
         first (`igbroker keys rotate`)"
    )]
    RetireCurrent(u32),

    /// `make_current` was asked to promote a retired key.
    #[error(
        "key version {0} is retired and never seals again; add a new version with \
         `igbroker keys add` and make that one current"
    )]
    VersionRetired(u32),

    /// The operating system's random number generator failed.
    #[error(
        "the operating system's random number generator failed ({0}); nothing was encrypted: \
         check the host (e.g. /dev/urandom, seccomp policy) and retry"
    )]
    Random(String),

    /// The AEAD refused to encrypt (only for values far beyond any secret's size).
    #[error("a value of {0} bytes is too large to encrypt; secrets are at most a few kilobytes")]
    TooLarge(usize),

    /// A key provider (e.g. a KMS) failed.
    #[error("key provider {provider} failed: {message}")]
    Provider {
        /// Which provider.
        provider: String,
        /// What went wrong and what to do (must not contain key material).
        message: String,
    },
}
