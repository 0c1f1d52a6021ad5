use std::fmt;

use uuid::Uuid;

/// The kinds of broker-generated ids and their prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    App,
    Account,
    ConnectSession,
    ApiKey,
    Audit,
}

impl IdKind {
    pub const fn prefix(self) -> &'static str {
        match self {
            IdKind::App => "app",
            IdKind::Account => "acc",
            IdKind::ConnectSession => "cs",
            IdKind::ApiKey => "key",
            IdKind::Audit => "aud",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "`{given}` is not a valid {expected} id (expected `{expected}_` followed by 32 hex digits)"
)]
pub struct IdError {
    pub given: String,
    pub expected: &'static str,
}

/// A prefixed UUIDv7: time-ordered, so ids double as stable pagination cursors.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PrefixedId(String);

impl PrefixedId {
    pub fn generate(kind: IdKind) -> Self {
        PrefixedId(format!("{}_{}", kind.prefix(), Uuid::now_v7().simple()))
    }

    pub fn parse(kind: IdKind, s: &str) -> Result<Self, IdError> {
        let err = || IdError {
            given: s.chars().take(64).collect(),
            expected: kind.prefix(),
        };
        let rest = s
            .strip_prefix(kind.prefix())
            .and_then(|r| r.strip_prefix('_'))
            .ok_or_else(err)?;
        if rest.len() != 32 || !rest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(err());
        }
        Ok(PrefixedId(s.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for PrefixedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back_and_sort_by_time() {
        let a = PrefixedId::generate(IdKind::Account);
        let b = PrefixedId::generate(IdKind::Account);
        assert!(a.as_str().starts_with("acc_"));
        assert_eq!(
            PrefixedId::parse(IdKind::Account, a.as_str()),
            Ok(a.clone())
        );
        assert!(a < b);
    }

    #[test]
    fn wrong_prefix_or_shape_is_refused_with_the_expected_prefix_named() {
        let a = PrefixedId::generate(IdKind::App);
        let e = PrefixedId::parse(IdKind::Account, a.as_str()).unwrap_err();
        assert!(e.to_string().contains("acc_"));
        assert!(PrefixedId::parse(IdKind::Account, "acc_123").is_err());
        assert!(
            PrefixedId::parse(IdKind::Account, "acc_zz000000000000000000000000000000").is_err()
        );
    }
}
