//! Apps: registration details (the secret never shown), webhook settings and the
//! delivery log.

use askama::Template;
use axum::extract::{Path, State};

use super::session::Admin;
use super::{Chrome, UiResult, render, short_time};
use crate::service::apps::{self, AppView};
use crate::service::dashboard;
use crate::state::AppState;

pub struct AppLine {
    id: String,
    name: String,
    client_id: String,
    redirect_uri: String,
    scopes: String,
}

#[derive(Template)]
#[template(path = "ui/apps.html")]
struct AppsPage {
    title: String,
    chrome: Option<Chrome>,
    notice: Option<String>,
    apps: Vec<AppLine>,
}

pub async fn list(State(state): State<AppState>, admin: Admin) -> UiResult {
    let apps = dashboard::all_apps(&state)
        .await?
        .iter()
        .map(|r| {
            let v = AppView::from_row(r);
            AppLine {
                id: v.id,
                name: v.name,
                client_id: v.client_id,
                redirect_uri: v.redirect_uri,
                scopes: v.scopes.join(", "),
            }
        })
        .collect();
    Ok(render(&AppsPage {
        title: "Apps".into(),
        chrome: Chrome::new(&admin, "apps"),
        notice: None,
        apps,
    }))
}

pub struct AppFacts {
    id: String,
    name: String,
    kind: String,
    client_id: String,
    redirect_uri: String,
    scopes: String,
    return_origins: String,
    created_at: String,
    webhook_url: Option<String>,
    has_webhook_secret: bool,
}

pub struct Check {
    level: String,
    message: String,
}

pub struct Delivery {
    created: String,
    event: String,
    account_id: Option<String>,
    attempts: i64,
    state: String,
    last_error: String,
}

#[derive(Template)]
#[template(path = "ui/app.html")]
struct AppPage {
    title: String,
    chrome: Option<Chrome>,
    notice: Option<String>,
    a: AppFacts,
    checks: Vec<Check>,
    checked_at: String,
    recheck_minutes: i64,
    deliveries: Vec<Delivery>,
}

pub async fn show(State(state): State<AppState>, admin: Admin, Path(id): Path<String>) -> UiResult {
    let row = apps::get(&state, &id).await?;
    let v = AppView::from_row(&row);
    let has_webhook_secret = dashboard::has_webhook_secret(&state, &row.id).await?;
    let deliveries = dashboard::recent_deliveries(&state, &row.id, 25)
        .await?
        .into_iter()
        .map(|o| Delivery {
            created: short_time(Some(o.created_at)),
            state: if o.delivered_at.is_some() {
                "delivered".into()
            } else if o.failed_at.is_some() {
                "gave up".into()
            } else {
                format!("pending, next try {}", short_time(Some(o.next_attempt_at)))
            },
            event: o.event,
            account_id: o.account_id,
            attempts: o.attempts,
            last_error: o.last_error.unwrap_or_default(),
        })
        .collect();
    // The checks of `igbroker apps doctor`, kept a few minutes while the app is unchanged.
    let checked = crate::service::doctor::cached(&state, &row.id).await?;
    let checked_at = short_time(Some(checked.checked_at));
    let mut checks: Vec<Check> = checked
        .report
        .findings
        .into_iter()
        .map(|f| Check {
            level: f.severity.as_str().into(),
            message: f.message,
        })
        .collect();
    if checks.iter().all(|c| c.level != "problem") {
        checks.insert(
            0,
            Check {
                level: "ok".into(),
                message: "no problem found in this registration".into(),
            },
        );
    }
    Ok(render(&AppPage {
        title: v.name.clone(),
        chrome: Chrome::new(&admin, "apps"),
        notice: None,
        a: AppFacts {
            id: v.id,
            name: v.name,
            kind: v.kind,
            client_id: v.client_id,
            redirect_uri: v.redirect_uri,
            scopes: v.scopes.join(", "),
            return_origins: if v.return_origins.is_empty() {
                "none".into()
            } else {
                v.return_origins.join(", ")
            },
            created_at: v.created_at,
            webhook_url: v.webhook_url,
            has_webhook_secret,
        },
        checks,
        checked_at,
        recheck_minutes: crate::service::doctor::REPORT_TTL_SECS / 60,
        deliveries,
    }))
}
