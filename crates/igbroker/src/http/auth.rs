//! API-key authentication for `/v1`: `Authorization: Bearer igb_…`, looked up by hash.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use igbroker_core::ApiScope;
use igbroker_core::secrets::sha256_hex;

use crate::error::ApiError;
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

    pub fn require_app(&self, app_id: &str) -> Result<(), ApiError> {
        if self.app_ids.is_empty() || self.app_ids.iter().any(|a| a == app_id) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this API key is limited to other apps than {app_id}"
            )))
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
        assert!(matches!(err, ApiError::Forbidden(_)), "{err:?}");
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
