//! The accounts list (search, filters, keyset paging) and one account: its token's
//! timeline, scopes, audit entries, and the refresh, revoke and re-connect actions.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::session::Admin;
use super::sign_in::CsrfForm;
use super::timeline::{self, Timeline};
use super::{Chrome, Opt, UiForm, UiQuery, UiResult, render, see_other, short_time};
use crate::error::ApiError;
use crate::service::apps::scope_names;
use crate::service::{accounts, apps, connect, dashboard, refresh};
use crate::state::AppState;
use crate::util::{PageQuery, rfc3339};
use igbroker_core::{AccountStatus, ConnectSessionStatus};

const PAGE_SIZE: &str = "50";

#[derive(Deserialize, Default)]
pub struct Filter {
    #[serde(default)]
    q: String,
    #[serde(default)]
    app: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    end_user: String,
    #[serde(default)]
    cursor: Option<String>,
}

impl Filter {
    fn any(&self) -> bool {
        !(self.q.is_empty()
            && self.app.is_empty()
            && self.status.is_empty()
            && self.end_user.is_empty())
    }

    fn query(&self, cursor: Option<&str>) -> String {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        for (k, v) in [
            ("q", &self.q),
            ("app", &self.app),
            ("status", &self.status),
            ("end_user", &self.end_user),
        ] {
            if !v.is_empty() {
                pairs.push((k, v.as_str()));
            }
        }
        if let Some(c) = cursor {
            pairs.push(("cursor", c));
        }
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    }
}

pub struct Row {
    id: String,
    username: String,
    app: String,
    end_user: String,
    scopes: String,
    status: String,
    expires: String,
    expires_short: String,
    next_refresh: String,
    last_error: String,
}

#[derive(Template)]
#[template(path = "ui/accounts.html")]
struct ListPage {
    title: String,
    chrome: Option<Chrome>,
    notice: Option<String>,
    f: Filter,
    apps: Vec<Opt>,
    statuses: Vec<Opt>,
    rows: Vec<Row>,
    next_query: Option<String>,
    first_query: String,
}

async fn app_names(state: &AppState) -> Result<HashMap<String, String>, ApiError> {
    Ok(dashboard::all_apps(state)
        .await?
        .into_iter()
        .map(|a| (a.id, a.name))
        .collect())
}

fn username_of(a: &igbroker_store::AccountRow) -> String {
    a.username.clone().unwrap_or_else(|| a.ig_user_id.clone())
}

pub async fn list(
    State(state): State<AppState>,
    admin: Admin,
    UiQuery(f): UiQuery<Filter>,
) -> UiResult {
    let names = app_names(&state).await?;
    let page = PageQuery {
        limit: Some(PAGE_SIZE.into()),
        cursor: f.cursor.clone(),
    };
    let filter = igbroker_store::AccountFilter {
        app_id: Some(f.app.clone()).filter(|s| !s.is_empty()),
        end_user: Some(f.end_user.trim().to_string()).filter(|s| !s.is_empty()),
        status: Some(f.status.as_str())
            .filter(|s| !s.is_empty())
            .map(accounts::parse_status)
            .transpose()?,
        username_prefix: Some(f.q.trim().trim_start_matches('@').to_string())
            .filter(|s| !s.is_empty()),
    };
    let limit = page.limit()?;
    let rows = accounts::list(&state, &filter, page.after()?.as_deref(), limit + 1).await?;
    let (rows, next) = crate::util::page(rows, limit, |r| r.id.clone());
    let rows = rows
        .iter()
        .map(|a| Row {
            id: a.id.clone(),
            username: username_of(a),
            app: names
                .get(&a.app_id)
                .cloned()
                .unwrap_or_else(|| a.app_id.clone()),
            end_user: a.end_user.clone(),
            scopes: scope_names(&a.scopes).join(", "),
            status: a.status.as_str().to_string(),
            expires: a.expires_at.map(rfc3339).unwrap_or_default(),
            expires_short: short_time(a.expires_at),
            next_refresh: if a.status == AccountStatus::Active {
                short_time(a.next_refresh_at)
            } else {
                "—".into()
            },
            last_error: a.last_error.clone().unwrap_or_default(),
        })
        .collect();
    let mut apps: Vec<Opt> = names
        .iter()
        .map(|(id, name)| Opt {
            value: id.clone(),
            label: format!("{name} ({id})"),
            selected: *id == f.app,
        })
        .collect();
    apps.sort_by(|a, b| a.label.cmp(&b.label));
    let statuses = ["active", "reauth_required", "suspended", "revoked"]
        .iter()
        .map(|s| Opt {
            value: s.to_string(),
            label: s.to_string(),
            selected: *s == f.status,
        })
        .collect();
    let next_query = next.as_deref().map(|c| f.query(Some(c)));
    let first_query = f.query(None);
    Ok(render(&ListPage {
        title: "Accounts".into(),
        chrome: Chrome::new(&admin, "accounts"),
        notice: None,
        f,
        apps,
        statuses,
        rows,
        next_query,
        first_query,
    }))
}

pub struct AccountFacts {
    id: String,
    username: String,
    status: String,
    app_id: String,
    app_name: String,
    end_user: String,
    ig_user_id: String,
    expires: String,
    next_refresh: String,
    refresh_state: String,
    last_error: Option<String>,
    status_reason: Option<String>,
}

pub struct ScopeRow {
    name: String,
    requested: bool,
    granted: bool,
}

pub struct AuditLine {
    at: String,
    action: String,
    actor: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "ui/account.html")]
struct AccountPage {
    title: String,
    chrome: Option<Chrome>,
    notice: Option<String>,
    chrome_csrf: String,
    a: AccountFacts,
    tl: Timeline,
    scopes: Vec<ScopeRow>,
    audit: Vec<AuditLine>,
    reconnect_link: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct ShowQuery {
    #[serde(default)]
    done: Option<String>,
    #[serde(default)]
    reconnect: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    UiQuery(q): UiQuery<ShowQuery>,
) -> UiResult {
    let notice = match q.done.as_deref() {
        Some("refreshed") => Some("The token was refreshed.".to_string()),
        Some("revoked") => Some("The account was revoked and its token destroyed.".to_string()),
        Some("reconnect") => Some("A re-connect link was created; copy it below.".to_string()),
        _ => None,
    };
    account_page(&state, &admin, &id, notice, q.reconnect.as_deref()).await
}

async fn account_page(
    state: &AppState,
    admin: &Admin,
    id: &str,
    notice: Option<String>,
    reconnect: Option<&str>,
) -> UiResult {
    let acc = accounts::get(state, id).await?;
    let app = apps::get(state, &acc.app_id).await.ok();
    let now = state.now();
    let view = accounts::AccountView::from_row(&acc, now);
    let events = dashboard::lifecycle(state, &acc, timeline::ACTIONS).await?;
    let tl = timeline::layout(&acc, &events, now);
    let granted = scope_names(&acc.scopes);
    let requested = app
        .as_ref()
        .map(|a| scope_names(&a.scopes))
        .unwrap_or_default();
    let mut names: Vec<String> = requested.clone();
    for g in &granted {
        if !names.contains(g) {
            names.push(g.clone());
        }
    }
    let scopes = names
        .into_iter()
        .map(|n| ScopeRow {
            requested: requested.contains(&n),
            granted: granted.contains(&n),
            name: n,
        })
        .collect();
    let audit = dashboard::recent_audit(state, &acc.id, 25)
        .await?
        .into_iter()
        .map(|r| AuditLine {
            at: rfc3339(r.at),
            action: r.action,
            actor: r.actor,
            detail: r.detail,
        })
        .collect();
    // Only a pending re-connect session of this very account is shown as a link.
    let reconnect_link = match reconnect {
        Some(cs) => match connect::get(state, cs).await {
            Ok(s)
                if s.account_id.as_deref() == Some(acc.id.as_str())
                    && s.status == ConnectSessionStatus::Pending =>
            {
                Some(connect::connect_url(state, &s.id))
            }
            _ => None,
        },
        None => None,
    };
    let username = username_of(&acc);
    Ok(render(&AccountPage {
        title: format!("@{username}"),
        chrome: Chrome::new(admin, "accounts"),
        notice,
        chrome_csrf: admin.csrf.clone(),
        a: AccountFacts {
            id: acc.id.clone(),
            username,
            status: acc.status.as_str().to_string(),
            app_id: acc.app_id.clone(),
            app_name: app.map(|a| a.name).unwrap_or_else(|| acc.app_id.clone()),
            end_user: if acc.end_user.is_empty() {
                "—".into()
            } else {
                acc.end_user.clone()
            },
            ig_user_id: acc.ig_user_id.clone(),
            expires: short_time(acc.expires_at),
            next_refresh: if acc.status == AccountStatus::Active {
                short_time(acc.next_refresh_at)
            } else {
                "—".into()
            },
            refresh_state: view.token.refresh_state.to_string(),
            last_error: acc.last_error.clone(),
            status_reason: acc.status_reason.clone(),
        },
        tl,
        scopes,
        audit,
        reconnect_link,
    }))
}

pub async fn refresh(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    UiForm(f): UiForm<CsrfForm>,
) -> UiResult {
    admin.check_csrf(&f.csrf)?;
    accounts::get(&state, &id).await?;
    match refresh::refresh_now(&state, &id, &admin.actor)
        .await
        .map_err(ApiError::from)
    {
        Ok(_) => Ok(see_other(&format!("/ui/accounts/{id}?done=refreshed"))),
        // Shown on the account's page: the admin sees why, next to what to do.
        Err(e) if e.status().is_client_error() => {
            let resp = account_page(
                &state,
                &admin,
                &id,
                Some(format!("The token was not refreshed: {e}")),
                None,
            )
            .await?;
            Ok((e.status(), resp).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "ui/revoke.html")]
struct RevokePage {
    title: String,
    chrome: Option<Chrome>,
    notice: Option<String>,
    csrf: String,
    id: String,
    username: String,
}

pub async fn confirm_revoke(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> UiResult {
    let acc = accounts::get(&state, &id).await?;
    let username = username_of(&acc);
    Ok(render(&RevokePage {
        title: format!("Revoke @{username}"),
        chrome: Chrome::new(&admin, "accounts"),
        notice: None,
        csrf: admin.csrf.clone(),
        id: acc.id,
        username,
    }))
}

#[derive(Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    confirm: String,
}

pub async fn revoke(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    UiForm(f): UiForm<RevokeForm>,
) -> UiResult {
    admin.check_csrf(&f.csrf)?;
    if f.confirm != "yes" {
        return Err(ApiError::InvalidRequest(
            "tick the confirmation box to revoke; nothing was changed".into(),
        )
        .into());
    }
    accounts::revoke(&state, &id, &admin.actor, "revoked_in_dashboard").await?;
    Ok(see_other(&format!("/ui/accounts/{id}?done=revoked")))
}

pub async fn reconnect(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    UiForm(f): UiForm<CsrfForm>,
) -> UiResult<Response> {
    admin.check_csrf(&f.csrf)?;
    let acc = accounts::get(&state, &id).await?;
    if acc.status == AccountStatus::Revoked {
        return Err(crate::service::Error::NotActive(AccountStatus::Revoked).into());
    }
    let session = connect::create_by(
        &state,
        connect::NewSession {
            app_id: acc.app_id.clone(),
            end_user: None,
            scopes: None,
            return_url: None,
            account_id: Some(acc.id.clone()),
        },
        &admin.actor,
    )
    .await?;
    Ok(see_other(&format!(
        "/ui/accounts/{id}?done=reconnect&reconnect={}",
        session.id
    )))
}
