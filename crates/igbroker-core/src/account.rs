use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountStatus {
    Active,
    ReauthRequired,
    Revoked,
    Suspended,
}

impl AccountStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::ReauthRequired => "reauth_required",
            AccountStatus::Revoked => "revoked",
            AccountStatus::Suspended => "suspended",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => AccountStatus::Active,
            "reauth_required" => AccountStatus::ReauthRequired,
            "revoked" => AccountStatus::Revoked,
            "suspended" => AccountStatus::Suspended,
            _ => return None,
        })
    }
}

impl fmt::Display for AccountStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a connect session stands. `Exchanging` is internal (one callback won the
/// code and is trading it); callers see it as `pending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectSessionStatus {
    Pending,
    Exchanging,
    Connected,
    Denied,
    Error,
}

impl ConnectSessionStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            ConnectSessionStatus::Pending => "pending",
            ConnectSessionStatus::Exchanging => "exchanging",
            ConnectSessionStatus::Connected => "connected",
            ConnectSessionStatus::Denied => "denied",
            ConnectSessionStatus::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => ConnectSessionStatus::Pending,
            "exchanging" => ConnectSessionStatus::Exchanging,
            "connected" => ConnectSessionStatus::Connected,
            "denied" => ConnectSessionStatus::Denied,
            "error" => ConnectSessionStatus::Error,
            _ => return None,
        })
    }

    /// Not finished yet: the callback may still complete it.
    pub const fn is_open(self) -> bool {
        matches!(
            self,
            ConnectSessionStatus::Pending | ConnectSessionStatus::Exchanging
        )
    }
}

impl fmt::Display for ConnectSessionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Derived, never stored as such: a live lease means `refreshing`, a pending
/// backoff `backing_off`, a long backoff after a non-transient error `failing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshState {
    Idle,
    Refreshing,
    BackingOff,
    Failing,
}

impl RefreshState {
    pub const fn as_str(self) -> &'static str {
        match self {
            RefreshState::Idle => "idle",
            RefreshState::Refreshing => "refreshing",
            RefreshState::BackingOff => "backing_off",
            RefreshState::Failing => "failing",
        }
    }

    /// `failing` is remembered as a flag; the rest follows from the clock.
    pub fn derive(
        now: i64,
        lease_until: Option<i64>,
        backoff_until: Option<i64>,
        failing: bool,
    ) -> Self {
        if lease_until.is_some_and(|t| t > now) {
            RefreshState::Refreshing
        } else if failing {
            RefreshState::Failing
        } else if backoff_until.is_some_and(|t| t > now) {
            RefreshState::BackingOff
        } else {
            RefreshState::Idle
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expired_lease_is_not_refreshing() {
        assert_eq!(
            RefreshState::derive(100, Some(99), None, false),
            RefreshState::Idle
        );
        assert_eq!(
            RefreshState::derive(100, Some(101), None, false),
            RefreshState::Refreshing
        );
        assert_eq!(
            RefreshState::derive(100, None, Some(150), false),
            RefreshState::BackingOff
        );
        assert_eq!(
            RefreshState::derive(100, None, Some(150), true),
            RefreshState::Failing
        );
    }

    #[test]
    fn statuses_round_trip() {
        for s in [
            AccountStatus::Active,
            AccountStatus::ReauthRequired,
            AccountStatus::Revoked,
            AccountStatus::Suspended,
        ] {
            assert_eq!(AccountStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(AccountStatus::parse("gone"), None);
    }
}
