//! "Connect Instagram account": the dashboard creates a connect session, sends the
//! admin to Instagram's (or the sandbox's) consent page, and shows how it ended.

use askama::Template;
use axum::extract::{Path, State};
use serde::Deserialize;

use super::session::Admin;
use super::{Chrome, Opt, UiForm, UiResult, render, see_other, short_time};
use crate::service::apps::scope_names;
use crate::service::connect::{self, NewSession, SessionView};
use crate::service::{apps, dashboard};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "ui/connect.html")]
struct ConnectPage {
    title: String,
    chrome: Option<Chrome>,
    notice: Option<String>,
    csrf: String,
    apps: Vec<Opt>,
}

pub async fn form(State(state): State<AppState>, admin: Admin) -> UiResult {
    let apps = dashboard::all_apps(&state)
        .await?
        .into_iter()
        .enumerate()
        .map(|(i, a)| Opt {
            label: format!("{} ({})", a.name, a.id),
            value: a.id,
            selected: i == 0,
        })
        .collect();
    Ok(render(&ConnectPage {
        title: "Connect an Instagram account".into(),
        chrome: Chrome::new(&admin, "connect"),
        notice: None,
        csrf: admin.csrf.clone(),
        apps,
    }))
}

#[derive(Deserialize)]
pub struct StartForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    app_id: String,
    #[serde(default)]
    end_user: String,
}

pub async fn start(
    State(state): State<AppState>,
    admin: Admin,
    UiForm(f): UiForm<StartForm>,
) -> UiResult {
    admin.check_csrf(&f.csrf)?;
    let end_user = f.end_user.trim();
    let row = connect::create_by(
        &state,
        NewSession {
            app_id: f.app_id.clone(),
            end_user: (!end_user.is_empty()).then(|| end_user.to_string()),
            scopes: None,
            return_url: None,
            account_id: None,
        },
        &admin.actor,
    )
    .await?;
    Ok(see_other(&format!("/ui/connect/{}", row.id)))
}

pub struct SessionFacts {
    id: String,
    app_name: String,
    end_user: String,
    scopes: String,
    status: String,
    connect_url: String,
    expires: String,
    account_id: Option<String>,
    error: String,
}

#[derive(Template)]
#[template(path = "ui/connect_session.html")]
struct SessionPage {
    title: String,
    chrome: Option<Chrome>,
    notice: Option<String>,
    s: SessionFacts,
}

pub async fn show(State(state): State<AppState>, admin: Admin, Path(id): Path<String>) -> UiResult {
    let row = connect::get(&state, &id).await?;
    let app_name = apps::get(&state, &row.app_id)
        .await
        .map(|a| a.name)
        .unwrap_or_else(|_| row.app_id.clone());
    let view = SessionView::from_row(&state, &row);
    let s = SessionFacts {
        id: view.id,
        app_name,
        end_user: view.end_user.unwrap_or_else(|| "—".into()),
        scopes: scope_names(&row.scopes).join(", "),
        status: view.status,
        connect_url: view.connect_url.unwrap_or_default(),
        expires: short_time(Some(row.expires_at)),
        account_id: view.account_id,
        error: view.error.unwrap_or_default(),
    };
    Ok(render(&SessionPage {
        title: "Connect an Instagram account".into(),
        chrome: Chrome::new(&admin, "connect"),
        notice: None,
        s,
    }))
}
