//! API-key authentication for `/v1`: `Authorization: Bearer igb_…`, looked up by hash.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use igbroker_core::ApiScope;
use igbroker_core::secrets::sha256_hex;

use std::time::Instant;

use crate::error::ApiError;
use crate::limits::retry_after_secs;
use crate::state::AppState;

#[derive(Debug, Clone)]
pub struct Caller {
    pub key_id: String,
    pub scopes: Vec<ApiScope>,
    /// Empty: every app.
    pub app_ids: Vec<String>,
}

impl Caller {
    pub fn require(&self, scope: ApiScope) -> Result<(), ApiError> {
        if scope.granted_by(&self.scopes) {
            Ok(())
        } else {
            Err(ApiError::MissingScope(scope))
        }
    }

    /// Another tenant's app answers exactly as a missing one: its existence is not
    /// this key's business.
    pub fn require_app(&self, app_id: &str) -> Result<(), ApiError> {
        self.require_app_of("app", app_id, app_id)
    }

    /// For a resource `what` `id` that belongs to `app_id`: 404 naming the resource when
    /// the key does not reach that app, as if it did not exist.
    pub fn require_app_of(
        &self,
        what: &'static str,
        id: &str,
        app_id: &str,
    ) -> Result<(), ApiError> {
        if self.reaches(app_id) {
            Ok(())
        } else {
            Err(ApiError::not_found(what, id))
        }
    }

    pub fn reaches(&self, app_id: &str) -> bool {
        self.app_ids.is_empty() || self.app_ids.iter().any(|a| a == app_id)
    }

    pub fn reach(&self) -> igbroker_core::key_policy::KeyReach<'_> {
        igbroker_core::key_policy::KeyReach {
            scopes: &self.scopes,
            app_ids: &self.app_ids,
        }
    }

    pub fn actor(&self) -> String {
        format!("api_key:{}", self.key_id)
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = crate::listener::peer_ip(&parts.extensions);
        let limiter = state.limiter();
        // An address that has guessed wrong too often waits before any key is looked at.
        if let Some(ip) = peer
            && let Some(wait) = limiter.auth_blocked(ip, Instant::now())
        {
            return Err(ApiError::RateLimited {
                message: "too many requests with a wrong API key from this address; wait and check the key".into(),
                retry_after_secs: retry_after_secs(wait),
            });
        }
        let caller = authenticate(parts, state).await;
        if let (Err(ApiError::Unauthorized(_)), Some(ip)) = (&caller, peer) {
            limiter.auth_failed(ip, Instant::now());
        }
        let caller = caller?;
        let rate = state.key_rate(&caller.key_id).await?;
        if let Err(wait) = limiter.check_key(&caller.key_id, rate, Instant::now()) {
            return Err(ApiError::RateLimited {
                message: "this API key is over its request rate; slow down and retry after the time in Retry-After".into(),
                retry_after_secs: retry_after_secs(wait),
            });
        }
        Ok(caller)
    }
}

async fn authenticate(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
    {
        let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
            ApiError::Unauthorized("missing `Authorization: Bearer <api key>` header".into())
        })?;
        let value = header.to_str().map_err(|_| {
            ApiError::Unauthorized("the Authorization header is not valid text".into())
        })?;
        let key = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized("the Authorization header must be `Bearer <api key>`".into())
            })?;
        let row = state
            .store()
            .find_api_key(&sha256_hex(key))
            .await?
            .ok_or_else(|| ApiError::Unauthorized("unknown or revoked API key".into()))?;
        let scopes = ApiScope::parse_list(&[row.scopes.as_str()])
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let app_ids = row
            .app_ids
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if let Err(e) = state.store().touch_api_key(&row.id, state.now()).await {
            tracing::warn!(error = %e, "could not record API key use");
        }
        Ok(Caller {
            key_id: row.id,
            scopes,
            app_ids,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(app_ids: &[&str]) -> Caller {
        Caller {
            key_id: "key_1".into(),
            scopes: vec![ApiScope::Admin],
            app_ids: app_ids.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn require_app_admits_only_the_listed_apps() {
        let limited = caller(&["app_a", "app_b"]);
        assert!(limited.require_app("app_a").is_ok());
        assert!(limited.require_app("app_b").is_ok());
        let err = limited.require_app("app_c").unwrap_err();
        // Another tenant's app looks missing, not forbidden.
        assert!(matches!(err, ApiError::NotFound { .. }), "{err:?}");
        assert!(err.to_string().contains("app_c"), "{err}");
        // Not a prefix match.
        assert!(limited.require_app("app_").is_err());
        assert!(limited.require_app("app_a2").is_err());
    }

    #[test]
    fn a_key_without_app_limits_reaches_every_app() {
        assert!(caller(&[]).require_app("app_anything").is_ok());
    }
}
