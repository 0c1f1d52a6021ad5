//! User events driven from the control API (filled in below).

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use serde_json::Value;

use crate::Sandbox;
use crate::errors::ControlError;

pub async fn user_event(
    State(_sb): State<Sandbox>,
    Path(_id): Path<String>,
    _b: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Value>, ControlError> {
    Err(ControlError::bad_request("not yet"))
}
