//! Graph API calls made with an account's token, so the token never leaves the broker.

use igbroker_core::InstagramScope;
use igbroker_core::scopes::required_for;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::service::error::{Error, Result};
use crate::service::{accounts, audit, connect, pages, refresh, upstream_budget};
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

/// Makes the call with the token of `acc`, a row the caller has just read.
pub async fn call(
    state: &AppState,
    acc: igbroker_store::AccountRow,
    actor: &str,
    call: GraphCall,
) -> Result<GraphAnswer> {
    let acc = refresh::usable(state, acc).await?;
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
    // Checked again here, whoever the caller: no path or parameter the allow-list refuses
    // is ever sent with a token.
    igbroker_core::graph_policy::check(
        call.method.as_str(),
        &call.path,
        call.params.iter().map(|(k, _)| k.as_str()),
    )
    .map_err(|e| Error::Invalid(e.to_string()))?;
    if let Some((k, _)) = call
        .params
        .iter()
        .find(|(k, v)| (k == "after" || k == "before") && !pages::is_cursor(v))
    {
        return Err(Error::Invalid(format!(
            "{k} must be a cursor taken from a paging link (letters, digits, `-`, `_`, `=` or `.`, at most {} characters)",
            pages::MAX_CURSOR_LEN
        )));
    }
    let asked_params = call.params.clone();
    let secret = accounts::open_token(state, &acc)?;
    let token = instagram_api::AccessToken::new(secret.expose_secret().to_string());
    let method = call.method.clone();
    let budgets = upstream_budget::admit(state, &acc).await?;
    let result = send(
        state,
        &acc,
        &budgets,
        &token,
        call.method,
        &call.path,
        call.params,
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
    let answer = match result {
        Ok(r) => Ok(GraphAnswer {
            status: r.status,
            body: r.body,
        }),
        Err(e) => Err(map_graph_error(state, &acc, e).await),
    };
    // Defence in depth: whatever Instagram answered, the caller never receives the token
    // (an echoing endpoint, an error quoting its input).
    let shown = match &answer {
        Ok(a) => a.body.to_string(),
        Err(e) => e.to_string(),
    };
    if contains_token(&shown, secret.expose_secret()) {
        tracing::warn!(account_id = %acc.id, path = %call.path, "a Graph answer contained the account's token; withheld");
        audit::record(
            state,
            actor,
            "graph.answer_withheld",
            Some(&acc.id),
            Some(&acc.app_id),
            json!({"method": method.as_str(), "path": call.path}),
        )
        .await?;
        return Err(Error::UpstreamRefused(
            "Instagram's answer contained the account's access token, so the broker withheld it; the call was recorded in the audit log".into(),
        ));
    }
    let mut answer = answer?;
    pages::rewrite(
        &mut answer.body,
        &pages::Origin {
            public_url: &state.config().public_url,
            account_id: &acc.id,
            path: &call.path,
            params: &asked_params,
        },
    );
    Ok(answer)
}

/// The call, its budgets recorded; a read that failed transiently is retried with backoff
/// (`[instagram] graph_get_retries`), a write never is: Instagram may have done it.
async fn send(
    state: &AppState,
    acc: &igbroker_store::AccountRow,
    budgets: &[igbroker_store::BudgetRow],
    token: &instagram_api::AccessToken,
    method: reqwest::Method,
    path: &str,
    params: Vec<(String, String)>,
) -> std::result::Result<instagram_api::RawResponse, instagram_api::Error> {
    let retries = match method {
        reqwest::Method::GET => state.config().instagram.graph_get_retries,
        _ => 0,
    };
    let mut attempt = 0u8;
    loop {
        let request = instagram_api::RawRequest {
            method: method.clone(),
            path: path.to_string(),
            params: params.clone(),
        };
        let result = state.instagram().raw(token, request).await;
        let (usage, throttled) = match &result {
            Ok(r) => (Some(&r.usage), None),
            Err(e) => (e.usage(), throttling(e)),
        };
        if let Err(e) = upstream_budget::observe(state, acc, budgets, usage, throttled).await {
            tracing::warn!(error = %e, "could not record Instagram's usage report");
        }
        match result {
            Err(e)
                if attempt < retries
                    && e.is_transient()
                    && throttled.is_none()
                    && !matches!(e, instagram_api::Error::RateLimited { .. }) =>
            {
                attempt += 1;
                metrics::counter!("igbroker_graph_retries_total").increment(1);
                tokio::time::sleep(std::time::Duration::from_millis(100 << attempt)).await;
            }
            other => return other,
        }
    }
}

/// The code and wait of an error that says Instagram is throttling.
pub(crate) fn throttling(e: &instagram_api::Error) -> Option<(i64, Option<std::time::Duration>)> {
    match e {
        instagram_api::Error::RateLimited {
            code, retry_after, ..
        } => Some((*code, *retry_after)),
        _ => None,
    }
}

/// Whether `text` holds the token, or its JSON-escaped form.
fn contains_token(text: &str, token: &str) -> bool {
    !token.is_empty()
        && (text.contains(token)
            || serde_json::to_string(token).is_ok_and(|q| text.contains(q.trim_matches('"'))))
}

/// Maps an Instagram failure of a call made with `acc`'s token (a re-auth marks the account).
pub async fn map_graph_error(
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
