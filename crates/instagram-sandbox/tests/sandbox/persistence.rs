//! The state file: survives restarts and holds no token, code or secret in plaintext.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn state_survives_a_restart_without_plaintext_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let (app, long, unused_code) = {
        let t = TestSandbox::start_in(dir.path().to_owned()).await;
        let (app, _user, long) = t.connected(2).await;
        let unused_code = t.code_for(&app, "acme_shop", ALL_SCOPES).await;
        t.advance(3600).await;
        (app, long, unused_code)
    };
    let state = std::fs::read_to_string(dir.path().join(instagram_sandbox::STATE_FILE)).unwrap();
    let secret = app["client_secret"].as_str().unwrap();
    assert!(!state.contains(&long), "token in the state file");
    assert!(!state.contains(secret), "secret in the state file");
    assert!(!state.contains(&unused_code), "code in the state file");
    assert!(state.contains("acme_shop"));

    let t = TestSandbox::start_in(dir.path().to_owned()).await;
    assert_eq!(t.sb.clock().offset_secs(), 3600);
    let me = t
        .graph("/me", &long, &[("fields", "username,media_count")])
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.body["media_count"], 2);
    // The secret still verifies (by hash) after the restart.
    let code = t.code_for(&app, "acme_shop", ALL_SCOPES).await;
    assert_eq!(t.exchange(&app, &code).await.status, StatusCode::OK);
    // Raw: 200 (not 201) shows the user came back from the state file.
    let again = t
        .post_json("/_sandbox/users", &json!({ "username": "acme_shop" }))
        .await;
    assert_eq!(again.status, StatusCode::OK);
}

#[tokio::test]
async fn a_corrupt_state_file_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(instagram_sandbox::STATE_FILE), "{ nope").unwrap();
    let err = instagram_sandbox::Sandbox::new(instagram_sandbox::SandboxOptions {
        data_dir: Some(dir.path().to_owned()),
    })
    .err()
    .expect("must fail");
    assert!(err.to_string().contains("sandbox-state.json"), "{err}");
}
