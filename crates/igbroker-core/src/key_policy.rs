//! What an API key may do to other API keys: never grant more than it holds.
//!
//! A key's reach is its scopes (where `admin` implies every scope) and its apps (where an
//! empty list means every app). A key creates only keys within its own reach, and sees or
//! revokes only keys whose apps all lie inside its own.

use std::fmt;

use crate::scopes::ApiScope;

/// The reach of one key.
#[derive(Debug, Clone, Copy)]
pub struct KeyReach<'a> {
    pub scopes: &'a [ApiScope],
    /// Empty: every app.
    pub app_ids: &'a [String],
}

impl KeyReach<'_> {
    pub fn unlimited_apps(&self) -> bool {
        self.app_ids.is_empty()
    }

    /// An `admin` key over every app: the root of trust.
    pub fn is_unlimited_admin(&self) -> bool {
        self.unlimited_apps() && self.scopes.contains(&ApiScope::Admin)
    }

    /// Whether every app of `other` is one of ours.
    pub fn covers_apps(&self, other: &[String]) -> bool {
        if self.unlimited_apps() {
            return true;
        }
        !other.is_empty() && other.iter().all(|a| self.app_ids.contains(a))
    }

    /// Whether a key with this reach may see and revoke a key with `other`'s.
    pub fn may_manage(&self, other: &KeyReach<'_>) -> bool {
        self.covers_apps(other.app_ids)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRefusal {
    /// A key limited to some apps asked for a key over every app.
    UnlimitedApps,
    /// Apps outside the creator's.
    OtherApps(Vec<String>),
    /// Scopes the creator does not hold.
    WiderScopes(Vec<ApiScope>),
}

impl fmt::Display for KeyRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyRefusal::UnlimitedApps => f.write_str(
                "this API key is limited to some apps, so the keys it creates must be too: pass app_ids with some of its apps",
            ),
            KeyRefusal::OtherApps(a) => write!(
                f,
                "this API key may not grant access to apps it does not reach: {}",
                a.join(", ")
            ),
            KeyRefusal::WiderScopes(s) => write!(
                f,
                "this API key may not grant scopes it does not hold: {}",
                s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ),
        }
    }
}

impl std::error::Error for KeyRefusal {}

/// Checks that a key with `wanted` reach is within `creator`'s.
pub fn may_create(creator: &KeyReach<'_>, wanted: &KeyReach<'_>) -> Result<(), KeyRefusal> {
    if !creator.unlimited_apps() {
        if wanted.unlimited_apps() {
            return Err(KeyRefusal::UnlimitedApps);
        }
        let other: Vec<String> = wanted
            .app_ids
            .iter()
            .filter(|a| !creator.app_ids.contains(a))
            .cloned()
            .collect();
        if !other.is_empty() {
            return Err(KeyRefusal::OtherApps(other));
        }
    }
    let wider: Vec<ApiScope> = wanted
        .scopes
        .iter()
        .copied()
        .filter(|s| !s.granted_by(creator.scopes))
        .collect();
    if !wider.is_empty() {
        return Err(KeyRefusal::WiderScopes(wider));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apps(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn a_limited_admin_creates_only_inside_its_apps() {
        let mine = apps(&["app_a", "app_b"]);
        let creator = KeyReach {
            scopes: &[ApiScope::Admin],
            app_ids: &mine,
        };
        let none: Vec<String> = Vec::new();
        let want = |s: &'static [ApiScope], a: &'static [&'static str]| (s, apps(a));
        let (s, a) = want(&[ApiScope::Graph], &["app_a"]);
        assert!(
            may_create(
                &creator,
                &KeyReach {
                    scopes: s,
                    app_ids: &a
                }
            )
            .is_ok()
        );
        assert_eq!(
            may_create(
                &creator,
                &KeyReach {
                    scopes: &[ApiScope::Admin],
                    app_ids: &none
                }
            ),
            Err(KeyRefusal::UnlimitedApps)
        );
        let (s, a) = want(&[ApiScope::Graph], &["app_a", "app_c"]);
        assert_eq!(
            may_create(
                &creator,
                &KeyReach {
                    scopes: s,
                    app_ids: &a
                }
            ),
            Err(KeyRefusal::OtherApps(apps(&["app_c"])))
        );
    }

    #[test]
    fn scopes_never_widen() {
        let all: Vec<String> = Vec::new();
        let creator = KeyReach {
            scopes: &[ApiScope::Graph, ApiScope::AccountsRead],
            app_ids: &all,
        };
        let e = may_create(
            &creator,
            &KeyReach {
                scopes: &[ApiScope::Graph, ApiScope::TokensRead],
                app_ids: &all,
            },
        )
        .unwrap_err();
        assert_eq!(e, KeyRefusal::WiderScopes(vec![ApiScope::TokensRead]));
        assert!(e.to_string().contains("tokens:read"));
    }

    #[test]
    fn management_stays_inside_the_apps() {
        let mine = apps(&["app_a"]);
        let both = apps(&["app_a", "app_b"]);
        let all: Vec<String> = Vec::new();
        let limited = KeyReach {
            scopes: &[ApiScope::Admin],
            app_ids: &mine,
        };
        let root = KeyReach {
            scopes: &[ApiScope::Admin],
            app_ids: &all,
        };
        assert!(limited.may_manage(&KeyReach {
            scopes: &[ApiScope::Graph],
            app_ids: &mine
        }));
        assert!(!limited.may_manage(&KeyReach {
            scopes: &[ApiScope::Graph],
            app_ids: &both
        }));
        assert!(!limited.may_manage(&root));
        assert!(root.may_manage(&limited));
        assert!(root.is_unlimited_admin() && !limited.is_unlimited_admin());
    }
}
