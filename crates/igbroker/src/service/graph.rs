//! Graph API calls made with an account's token, so the token never leaves the broker.

use igbroker_core::InstagramScope;
use igbroker_core::scopes::required_for;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::service::error::{Error, Result};
use crate::service::{accounts, audit, connect, refresh};
use crate::state::AppState;

pub struct GraphCall {
    pub method: reqwest::Method,
    /// Without version, e.g. `me` or `17841…/media`.
    pub path: String,
    pub params: Vec<(String, String)>,
}

pub struct GraphAnswer {
    pub status: u16,
    pub body: Value,
}

pub fn check_path(path: &str) -> Result<String> {
    let p = path.trim_matches('/');
    if p.is_empty()
        || p.len() > 512
        || p.split('/').any(|s| s.is_empty() || s == "." || s == "..")
        || !p
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./".contains(&b))
    {
        return Err(Error::Invalid(format!(
            "`{}` is not a Graph API path like `me` or `17841400000000001/media`",
            path.chars().take(80).collect::<String>()
        )));
    }
    // The version is the broker's choice (instagram.graph_version).
    let first = p.split('/').next().unwrap_or("");
    if first.starts_with('v')
        && first[1..].contains('.')
        && first[1..]
            .replace('.', "")
            .bytes()
            .all(|b| b.is_ascii_digit())
    {
        return Err(Error::Invalid(
            "leave the version out of the path: the broker adds instagram.graph_version".into(),
        ));
    }
    Ok(p.to_string())
}

pub async fn call(
    state: &AppState,
    account_id: &str,
    actor: &str,
    call: GraphCall,
) -> Result<GraphAnswer> {
    let acc = refresh::require_usable(state, account_id).await?;
    let missing: Vec<&str> = required_for(call.method.as_str(), &call.path)
        .into_iter()
        .filter(|s| !acc.scopes.contains(s))
        .map(InstagramScope::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(Error::MissingInstagramScope(format!(
            "account {} was not granted {} which {} {} needs; create a connect session with account_id and that scope so the user can grant it",
            acc.id,
            missing.join(", "),
            call.method,
            call.path
        )));
    }
    if call
        .params
        .iter()
        .any(|(k, _)| k == "access_token" || k == "appsecret_proof")
    {
        return Err(Error::Invalid(
            "do not pass access_token: the broker adds the account's token".into(),
        ));
    }
    let token = accounts::open_token(state, &acc)?;
    let token = instagram_api::AccessToken::new(token.expose_secret().to_string());
    let method = call.method.clone();
    let result = state
        .instagram()
        .raw(
            &token,
            instagram_api::RawRequest {
                method: call.method,
                path: call.path.clone(),
                params: call.params,
            },
        )
        .await;
    metrics::counter!("igbroker_graph_calls_total", "result" => if result.is_ok() { "ok" } else { "error" })
        .increment(1);
    audit::record(
        state,
        actor,
        "graph.call",
        Some(&acc.id),
        Some(&acc.app_id),
        json!({"method": method.as_str(), "path": audited_path(&call.path, &acc), "ok": result.is_ok()}),
    )
    .await?;
    match result {
        Ok(r) => Ok(GraphAnswer {
            status: r.status,
            body: r.body,
        }),
        Err(e) => Err(map_graph_error(state, &acc, e).await),
    }
}

async fn map_graph_error(
    state: &AppState,
    acc: &igbroker_store::AccountRow,
    e: instagram_api::Error,
) -> Error {
    match e {
        instagram_api::Error::Reauth { reason, .. } => {
            let why = refresh::reauth_reason(reason);
            if let Err(err) = connect::mark_reauth(state, acc, why, "system:refresh").await {
                tracing::error!(error = %err, "could not mark account reauth_required");
            }
            Error::NotActive(igbroker_core::AccountStatus::ReauthRequired)
        }
        instagram_api::Error::RateLimited { retry_after, .. } => Error::RateLimited {
            message: format!("Instagram is rate limiting this account or app: {e}"),
            retry_after_secs: retry_after.map(|d| d.as_secs().max(1)).unwrap_or(60),
        },
        instagram_api::Error::MissingPermission { .. } => {
            Error::MissingInstagramScope(format!("Instagram refused: {e}"))
        }
        instagram_api::Error::BadRequest { .. } => {
            Error::Invalid(format!("Instagram refused the call: {e}"))
        }
        instagram_api::Error::AppNotApprovedForUser { .. } => {
            Error::AppNotApprovedForUser { step: "call" }
        }
        other => Error::Upstream {
            step: "call",
            source: other,
        },
    }
}

/// The path as the audit log keeps it: the account's own Instagram ids become placeholders,
/// so that entries name the user by broker id only and survive a data deletion.
fn audited_path(path: &str, acc: &igbroker_store::AccountRow) -> String {
    path.split('/')
        .map(|seg| {
            if !seg.is_empty() && seg == acc.ig_user_id {
                "{ig_user_id}"
            } else if !seg.is_empty() && seg == acc.ig_scoped_id {
                "{ig_scoped_id}"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}
