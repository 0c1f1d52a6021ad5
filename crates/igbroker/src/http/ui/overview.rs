//! `/ui`: accounts by status, tokens expiring this week, refresh outcomes, usage.

use askama::Template;
use axum::extract::State;

use super::session::Admin;
use super::{Chrome, UiResult, render};
use crate::service::dashboard;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "ui/overview.html")]
struct OverviewPage {
    title: String,
    chrome: Option<Chrome>,
    notice: Option<String>,
    by_status: Vec<(String, i64)>,
    expiring_week: i64,
    failing: i64,
    due: i64,
    outcomes: Vec<(String, i64)>,
    usage: Vec<(String, i64)>,
}

pub async fn page(State(state): State<AppState>, admin: Admin) -> UiResult {
    let o = dashboard::overview(&state).await?;
    Ok(render(&OverviewPage {
        title: "Overview".into(),
        chrome: Chrome::new(&admin, "overview"),
        notice: None,
        by_status: o.by_status,
        expiring_week: o.expiring_week,
        failing: o.failing,
        due: o.due,
        outcomes: o.refresh_outcomes,
        usage: o.usage,
    }))
}
