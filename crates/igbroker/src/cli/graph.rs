//! `igbroker graph ACCOUNT_ID METHOD PATH [-F k=v]...`: the same service call as
//! `ANY /v1/accounts/{id}/graph/{path}`, audited with the actor `cli:<user>`.

use std::io::IsTerminal;
use std::process::ExitCode;

use crate::cli::{cli_actor, fail};
use crate::service::graph::{self, GraphCall};
use crate::state::AppState;

/// One `-F key=value`; the value may itself hold `=`.
pub fn parse_field(f: &str) -> Result<(String, String), String> {
    match f.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err("expected key=value, e.g. -F fields=username".into()),
    }
}

pub fn parse_method(method: &str) -> Result<reqwest::Method, String> {
    match method.to_ascii_uppercase().as_str() {
        "GET" => Ok(reqwest::Method::GET),
        "POST" => Ok(reqwest::Method::POST),
        "DELETE" => Ok(reqwest::Method::DELETE),
        _ => Err("the Graph API takes GET, POST or DELETE".into()),
    }
}

pub async fn run(
    state: &AppState,
    account_id: &str,
    method: reqwest::Method,
    path: &str,
    params: Vec<(String, String)>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    // The allow-list the HTTP route applies, in the same place: it normalises the path, and
    // refuses token endpoints, versions and reserved parameters before anything is sent.
    let route = igbroker_core::graph_policy::check(
        method.as_str(),
        path,
        params.iter().map(|(k, _)| k.as_str()),
    )
    .map_err(|e| fail(crate::service::Error::Invalid(e.to_string())))?;
    let path = route.path;
    let answer = graph::call(
        state,
        account_id,
        &cli_actor(),
        GraphCall {
            method,
            path,
            params,
        },
    )
    .await
    .map_err(fail)?;
    if json || !std::io::stdout().is_terminal() {
        println!("{}", serde_json::to_string(&answer.body)?);
    } else {
        println!("{}", serde_json::to_string_pretty(&answer.body)?);
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_split_at_the_first_equals_sign() {
        assert_eq!(
            parse_field("caption=a=b").unwrap(),
            ("caption".to_string(), "a=b".to_string())
        );
        assert_eq!(parse_field("fields=").unwrap().1, "");
        assert!(parse_field("novalue").is_err());
        assert!(parse_field("=x").is_err());
    }

    #[test]
    fn only_graph_methods_are_taken() {
        assert_eq!(parse_method("get").unwrap(), reqwest::Method::GET);
        assert!(parse_method("PATCH").is_err());
    }
}
