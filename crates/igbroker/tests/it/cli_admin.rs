//! The administrative verbs against a live broker's database: apps, token, audit.

use std::process::Output;

use crate::common::{Backend, TestEnv, USER, cli, s};
use instagram_sandbox::control_client::FaultSpec;

fn json(o: &Output) -> serde_json::Value {
    assert!(
        o.status.success(),
        "stdout {} stderr {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_token_and_audit_from_the_command_line() {
    let env = TestEnv::start(Backend::Sqlite).await.unwrap();
    let acc = env.connect(USER, "u").await;

    let list = json(&cli(&env, &["apps", "list", "--json"], None));
    assert!(
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == env.app_id)
    );
    let doctor = json(&cli(&env, &["apps", "doctor", &env.app_id, "--json"], None));
    assert_eq!(doctor["ok"], true, "{doctor}");

    // The secret comes on standard input, never as an argument.
    let added = json(&cli(
        &env,
        &[
            "apps",
            "add",
            "--json",
            "--name",
            "cli app",
            "--client-id",
            "1234567890",
            "--scope",
            "instagram_business_basic",
            "--redirect-uri",
            "https://broker.example/oauth/callback",
        ],
        Some("canary-secret-41\n"),
    ));
    let new_app = s(&added["id"]);
    assert!(!added.to_string().contains("canary-secret-41"));
    let bad = cli(
        &env,
        &[
            "apps",
            "add",
            "--name",
            "x",
            "--client-id",
            "1",
            "--scope",
            "instagram_business_basic",
        ],
        Some(""),
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("standard input"));
    // A new App Secret (reset in Meta's dashboard) comes on standard input too.
    let updated = json(&cli(
        &env,
        &[
            "apps",
            "update",
            &new_app,
            "--json",
            "--name",
            "cli app 2",
            "--client-secret-stdin",
        ],
        Some("canary-secret-42\n"),
    ));
    assert_eq!(updated["name"], "cli app 2");
    assert!(!updated.to_string().contains("canary-secret-42"));
    let app = env.state.store().get_app(&new_app).await.unwrap().unwrap();
    let secret = igbroker::service::apps::client_secret(&env.state, &app).unwrap();
    assert_eq!(secret.expose_secret(), "canary-secret-42");
    let nothing = cli(&env, &["apps", "update", &new_app], None);
    assert_eq!(nothing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("nothing to change"));
    let removed = cli(&env, &["apps", "remove", &new_app], None);
    assert!(removed.status.success());

    // Without --reveal the token is not printed; with it, it is, and audited.
    let (_, api) = env.get(&format!("/v1/accounts/{acc}/token")).await;
    let token = s(&api["access_token"]);
    let quiet = cli(&env, &["token", "get", &acc], None);
    assert!(quiet.status.success());
    assert!(!String::from_utf8_lossy(&quiet.stdout).contains(&token));
    let shown = json(&cli(
        &env,
        &["token", "get", &acc, "--reveal", "--json"],
        None,
    ));
    assert_eq!(shown["access_token"], token);
    let audit = json(&cli(
        &env,
        &[
            "audit",
            "list",
            "--json",
            "--account",
            &acc,
            "--action",
            "token.read",
        ],
        None,
    ));
    let actors: Vec<String> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| s(&e["actor"]))
        .collect();
    assert!(actors.iter().any(|a| a.starts_with("cli:")), "{actors:?}");
    assert!(
        actors.iter().any(|a| a.starts_with("api_key:")),
        "{actors:?}"
    );
    for e in audit["data"].as_array().unwrap() {
        assert!(!e.to_string().contains(&token), "a token in the audit log");
    }

    let ok = json(&cli(&env, &["audit", "verify", "--json"], None));
    assert_eq!(ok["intact"], true);
    // Tampering with any entry is found.
    sqlx::query("UPDATE audit_log SET detail = '{\"forged\":true}' WHERE seq = 2")
        .execute(env.state.store().pool())
        .await
        .unwrap();
    let broken = cli(&env, &["audit", "verify", "--json"], None);
    assert_eq!(broken.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&broken.stdout).unwrap();
    assert_eq!(v["intact"], false);
    assert_eq!(v["at_seq"], 2);

    // A refresh failing for good shows in the account list with its error.
    env.advance(41 * 86_400);
    env.fault(
        FaultSpec::graph_error("/refresh_access_token", 100)
            .with_status(400)
            .times(1),
    )
    .await;
    env.run_scheduler().await;
    let list = cli(&env, &["accounts", "list"], None);
    let out = String::from_utf8_lossy(&list.stdout);
    let line = out
        .lines()
        .find(|l| l.contains(&acc))
        .expect("the account is listed");
    // Not a terminal: tab-separated columns; refresh state, then the last error.
    let cells: Vec<&str> = line.split('\t').collect();
    assert_eq!(cells.len(), 8, "{line}");
    assert_eq!(cells[6], "failing", "{line}");
    assert!(!cells[7].is_empty(), "{line}");
}
