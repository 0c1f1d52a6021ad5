//! The command line as its users see it: `--help` and `--json` outputs against committed
//! snapshots, `graph`, `accounts import`, completions, and each rule of `apps doctor`.
//!
//! Snapshots live in `tests/snapshots/cli/`; after an intended change, run the tests with
//! `UPDATE_SNAPSHOTS=1` and review the diff.

use std::path::PathBuf;
use std::process::{Command, Output};

use crate::common::{Backend, OS_USER, OTHER_USER, TestEnv, USER, bin, cli, s};
use instagram_sandbox::control_client::AppSpec;
use serde_json::{Value, json};

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout {}\nstderr {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn json_of(o: &Output) -> Value {
    assert!(o.status.success(), "{}", text(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

fn snapshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/cli")
}

/// Compares with the committed snapshot, or writes it with `UPDATE_SNAPSHOTS=1`.
fn snapshot(name: &str, actual: &str) -> Result<(), String> {
    let path = snapshot_dir().join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return Ok(());
    }
    match std::fs::read_to_string(&path) {
        Ok(expected) if expected == actual => Ok(()),
        Ok(expected) => Err(format!(
            "{name} differs from its snapshot (UPDATE_SNAPSHOTS=1 to accept):\n--- expected\n{expected}\n--- actual\n{actual}"
        )),
        Err(_) => Err(format!(
            "no snapshot {name} (UPDATE_SNAPSHOTS=1 to create it):\n{actual}"
        )),
    }
}

/// Ids, times, ports, hashes and Instagram numbers change from run to run.
fn redact(v: &Value) -> String {
    let text = serde_json::to_string_pretty(v).unwrap();
    let rules = [
        (r"\b(app|acc|cs|key|evt|aud)_[0-9a-z]{20,40}\b", "<${1}_id>"),
        (
            r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})",
            "<time>",
        ),
        (r"127\.0\.0\.1:\d+", "127.0.0.1:<port>"),
        (r"\b[0-9a-f]{64}\b", "<hash>"),
        (r"\b\d{6,}\b", "<number>"),
    ];
    let mut out = text;
    for (pattern, with) in rules {
        out = regex::Regex::new(pattern)
            .unwrap()
            .replace_all(&out, with)
            .into_owned();
    }
    out + "\n"
}

/// Every command path of the parser: `[]`, `["accounts"]`, `["accounts", "import"]`, ….
fn command_paths() -> Vec<Vec<String>> {
    use clap::CommandFactory;
    fn walk(cmd: &clap::Command, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
        out.push(prefix.clone());
        for sub in cmd.get_subcommands() {
            let mut p = prefix.clone();
            p.push(sub.get_name().to_string());
            walk(sub, p, out);
        }
    }
    let mut out = Vec::new();
    walk(&igbroker::cli::Cli::command(), Vec::new(), &mut out);
    out
}

#[test]
fn help_of_every_command_matches_its_snapshot() {
    let paths = command_paths();
    assert!(paths.len() > 30, "{paths:?}");
    let mut failures = Vec::new();
    let mut expected_files = Vec::new();
    for path in &paths {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let out = bin().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
        let name = format!(
            "help/{}.txt",
            ["igbroker"]
                .iter()
                .copied()
                .chain(path.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join("-")
        );
        expected_files.push(name.clone());
        if let Err(e) = snapshot(&name, &String::from_utf8_lossy(&out.stdout)) {
            failures.push(e);
        }
    }
    // A snapshot whose command is gone is stale.
    for entry in std::fs::read_dir(snapshot_dir().join("help")).unwrap() {
        let name = format!("help/{}", entry.unwrap().file_name().to_string_lossy());
        if !expected_files.contains(&name) {
            failures.push(format!(
                "{name}: no such command any more; delete the snapshot"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_command_takes_json_and_config() {
    use clap::CommandFactory;
    let cmd = igbroker::cli::Cli::command();
    for path in command_paths() {
        let mut c = &cmd;
        for p in &path {
            c = c.find_subcommand(p).unwrap();
        }
        // Global flags show in every leaf's help.
        if c.get_subcommands().next().is_none() {
            let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
            args.push("--help");
            let help = String::from_utf8(bin().args(&args).output().unwrap().stdout).unwrap();
            assert!(help.contains("--json"), "{path:?} lacks --json");
            assert!(help.contains("--config <FILE>"), "{path:?} lacks --config");
        }
    }
}

#[test]
fn wrong_usage_exits_2() {
    for args in [
        vec!["graph", "acc_x", "GET"],
        vec!["graph", "acc_x", "PATCH", "me"],
        vec!["graph", "acc_x", "GET", "me", "-F", "novalue"],
        vec!["accounts", "refresh"],
        vec!["accounts", "import"],
        vec!["completions", "nosh"],
        vec!["no-such-verb"],
    ] {
        let out = bin()
            .args(&args)
            // No database behind it: usage is checked before any is opened.
            .env("IGBROKER_DATABASE_URL", "sqlite:///nonexistent/dir/x.db")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
    }
}

#[test]
fn completions_cover_the_verbs_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = bin().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let script = String::from_utf8(out.stdout).unwrap();
        for word in [
            "accounts", "import", "doctor", "graph", "rotate", "--reveal",
        ] {
            assert!(script.contains(word), "{shell} script lacks {word}");
        }
    }
    // The bash script is valid bash, and completing `igbroker acc` offers `accounts`.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("igbroker.bash");
    let out = bin().args(["completions", "bash"]).output().unwrap();
    std::fs::write(&script, &out.stdout).unwrap();
    let probe = format!(
        "source {}; COMP_WORDS=(igbroker accounts im); COMP_CWORD=2; COMP_LINE='igbroker accounts im'; COMP_POINT=${{#COMP_LINE}}; _igbroker igbroker im accounts; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display()
    );
    let out = Command::new("bash").args(["-c", &probe]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "import");

    let v = json_of(
        &bin()
            .args(["completions", "zsh", "--json"])
            .output()
            .unwrap(),
    );
    assert_eq!(v["shell"], "zsh");
    assert!(s(&v["script"]).contains("#compdef igbroker"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_outputs_match_their_snapshots() {
    let env = TestEnv::start(Backend::Sqlite).await.unwrap();
    let acc = env.connect(USER, "customer-1").await;
    let mut failures = Vec::new();
    let mut check = |name: &str, args: &[&str]| {
        let v = json_of(&cli(&env, args, None));
        if let Err(e) = snapshot(&format!("json/{name}.json"), &redact(&v)) {
            failures.push(e);
        }
        v
    };
    check("apps-list", &["apps", "list", "--json"]);
    check("apps-show", &["apps", "show", &env.app_id, "--json"]);
    check("accounts-list", &["accounts", "list", "--json"]);
    check("accounts-show", &["accounts", "show", &acc, "--json"]);
    check("token-get", &["token", "get", &acc, "--json"]);
    check(
        "graph-me",
        &[
            "graph",
            &acc,
            "GET",
            "me",
            "-F",
            "fields=username,media_count",
            "--json",
        ],
    );
    check(
        "audit-list-graph",
        &["audit", "list", "--action", "graph.call", "--json"],
    );
    check("apps-doctor", &["apps", "doctor", &env.app_id, "--json"]);
    check("api-keys-list", &["api-keys", "list", "--json"]);
    check("audit-verify", &["audit", "verify", "--json"]);
    check("accounts-suspend", &["accounts", "suspend", &acc, "--json"]);
    check("accounts-resume", &["accounts", "resume", &acc, "--json"]);
    check("accounts-revoke", &["accounts", "revoke", &acc, "--json"]);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_calls_take_the_service_path_audited_and_scope_gated() {
    let env = TestEnv::start(Backend::Sqlite).await.unwrap();
    let acc = env.connect(USER, "u").await;
    let (_, token) = env.get(&format!("/v1/accounts/{acc}/token")).await;
    let token = s(&token["access_token"]);

    let out = cli(
        &env,
        &[
            "graph",
            &acc,
            "get",
            "me",
            "-F",
            "fields=id,username",
            "--json",
        ],
        None,
    );
    let me = json_of(&out);
    assert_eq!(me["username"], USER);
    assert!(!text(&out).contains(&token), "the token was printed");

    // Audited like the HTTP route, with the CLI's actor.
    let audit = json_of(&cli(
        &env,
        &[
            "audit",
            "list",
            "--action",
            "graph.call",
            "--account",
            &acc,
            "--json",
        ],
        None,
    ));
    let entries = audit["data"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{audit}");
    assert_eq!(entries[0]["actor"], format!("cli:{OS_USER}"));

    // The account was granted basic and publish only: insights are refused before Instagram,
    // with the same code the HTTP route answers.
    let before = env.sandbox_calls("/insights").await.len();
    let out = cli(
        &env,
        &["graph", &acc, "GET", "me/insights", "-F", "metric=reach"],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("missing_scope"), "{}", text(&out));
    assert!(text(&out).contains("instagram_business_manage_insights"));
    let (st, http) = env
        .get(&format!(
            "/v1/accounts/{acc}/graph/me/insights?metric=reach"
        ))
        .await;
    assert_eq!(st.as_u16(), 403);
    assert_eq!(http["error"]["code"], "missing_scope");
    assert_eq!(
        env.sandbox_calls("/insights").await.len(),
        before,
        "Instagram was called"
    );

    // The caller cannot slip a token in, nor reach past the Graph path.
    let out = cli(
        &env,
        &["graph", &acc, "GET", "me", "-F", "access_token=x"],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("parameter `access_token` is reserved"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("invalid_request"), "{}", text(&out));
    let out = cli(&env, &["graph", &acc, "GET", "../oauth/access_token"], None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("invalid_request"));
    let out = cli(&env, &["graph", "acc_nope", "GET", "me"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("not_found"), "{}", text(&out));

    // A revoked account answers with its status, and nothing reaches Instagram.
    assert!(
        cli(&env, &["accounts", "revoke", &acc], None)
            .status
            .success()
    );
    let out = cli(&env, &["graph", &acc, "GET", "me"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("(revoked)"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_import_reads_tokens_from_stdin_checks_them_and_never_prints_them() {
    let env = TestEnv::start(Backend::Sqlite).await.unwrap();
    // Real long-lived tokens from the sandbox, obtained through connects.
    let one = env.connect(USER, "a").await;
    let two = env.connect(OTHER_USER, "b").await;
    let token_of = |id: String| {
        let env = &env;
        async move { s(&env.get(&format!("/v1/accounts/{id}/token")).await.1["access_token"]) }
    };
    let t1 = token_of(one).await;
    let t2 = token_of(two).await;
    let canary = "IGAAcanaryNotAToken0123456789";

    let me_calls = env.sandbox_calls("/me").await.len();
    let input = format!("# bulk import\n{t1} imported-1\n\n{canary}\n{t2}\n");
    let out = cli(
        &env,
        &[
            "accounts",
            "import",
            "--app",
            &env.app_id,
            "--end-user",
            "imported-default",
            "--json",
        ],
        Some(&input),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "one line failed: {}",
        text(&out)
    );
    let all = text(&out);
    for secret in [&t1, &t2, &canary.to_string()] {
        assert!(!all.contains(secret.as_str()), "a token was printed: {all}");
    }
    // Not a terminal: plain progress lines on stderr.
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("progress: "),
        "{all}"
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["imported"], 2, "{v}");
    assert_eq!(v["failed"], 1, "{v}");
    let rows = v["data"].as_array().unwrap();
    assert_eq!(rows[0]["line"], 2);
    assert_eq!(rows[0]["account"]["end_user"], "imported-1");
    assert_eq!(rows[0]["account"]["username"], USER);
    assert_eq!(rows[1]["line"], 4);
    assert_eq!(rows[1]["result"], "failed");
    assert_eq!(rows[1]["error"]["code"], "invalid_request");
    assert_eq!(rows[2]["account"]["end_user"], "imported-default");
    assert_eq!(rows[2]["account"]["username"], OTHER_USER);
    // Each token was checked with /me before it was stored.
    assert_eq!(env.sandbox_calls("/me").await.len() - me_calls, 3);

    // The imported accounts work through the broker and were audited as the CLI's.
    let id = s(&rows[0]["account"]["id"]);
    let me = json_of(&cli(
        &env,
        &["graph", &id, "GET", "me", "-F", "fields=username"],
        None,
    ));
    assert_eq!(me["username"], USER);
    let audit = json_of(&cli(
        &env,
        &["audit", "list", "--action", "account.imported", "--json"],
        None,
    ));
    let actors: Vec<String> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| s(&e["actor"]))
        .collect();
    assert_eq!(actors, [format!("cli:{OS_USER}"), format!("cli:{OS_USER}")]);
    // Stored encrypted: neither token nor canary is in any file in plaintext.
    for (name, bytes) in env.files() {
        for secret in [&t1, &t2, &canary.to_string()] {
            assert!(
                !crate::common::contains(&bytes, secret.as_bytes()),
                "{secret} in {name}"
            );
        }
    }

    // Re-importing the same token for the same end user updates that account.
    let again = json_of(&cli(
        &env,
        &["accounts", "import", "--app", &env.app_id, "--json"],
        Some(&format!("{t1} imported-1\n")),
    ));
    assert_eq!(again["data"][0]["result"], "updated");
    assert_eq!(again["data"][0]["account"]["id"], id);

    // Human output on a pipe: a tab-separated row per line and a summary.
    let out = cli(
        &env,
        &["accounts", "import", "--app", &env.app_id],
        Some(&format!("{canary}\n")),
    );
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("1\t\t\tfailed: "), "{stdout}");
    assert!(stdout.contains("imported 0, failed 1"), "{stdout}");
    assert!(!text(&out).contains(canary));

    // Nothing on stdin is wrong usage; an unknown app is named.
    let out = cli(
        &env,
        &["accounts", "import", "--app", &env.app_id],
        Some(""),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("standard input"));
    let out = cli(
        &env,
        &["accounts", "import", "--app", "app_nope"],
        Some(&format!("{t1}\n")),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("app_nope"));
    assert!(!text(&out).contains(&t1));
}

/// Registers a sandbox app (its redirect URIs as given) and returns its client id and secret.
async fn sandbox_app(env: &TestEnv, redirect_uris: &[String]) -> (String, String) {
    let app = env
        .sb
        .create_app(&AppSpec {
            redirect_uris: redirect_uris.to_vec(),
            ..AppSpec::default()
        })
        .await
        .unwrap();
    (app.client_id, app.client_secret.unwrap())
}

/// Registers an app with the broker through the CLI (secret on stdin); returns its id.
fn add_app(env: &TestEnv, client_id: &str, secret: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "apps",
        "add",
        "--json",
        "--name",
        "doctor test",
        "--client-id",
        client_id,
        "--scope",
        "instagram_business_basic",
    ];
    args.extend_from_slice(extra);
    s(&json_of(&cli(env, &args, Some(&format!("{secret}\n"))))["id"])
}

fn doctor(env: &TestEnv, app: &str) -> (Option<i32>, Value, String) {
    let out = cli(env, &["apps", "doctor", app, "--json"], None);
    let v: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    (out.status.code(), v, text(&out))
}

fn rules(report: &Value, severity: &str) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == severity)
        .map(|f| s(&f["rule"]))
        .collect()
}

fn message(report: &Value, rule: &str) -> String {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == rule && f["severity"] != "note")
        .map(|f| s(&f["message"]))
        .collect::<Vec<_>>()
        .join(" | ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_a_good_app_and_catches_each_registration_mistake() {
    let env = TestEnv::start(Backend::Sqlite).await.unwrap();
    let callback = format!("{}/oauth/callback", env.broker);

    // The test app is registered correctly: no problem, exit 0; the probe burned nothing.
    let (code, good, all) = doctor(&env, &env.app_id);
    assert_eq!(code, Some(0), "{all}");
    assert!(rules(&good, "problem").is_empty(), "{good}");
    assert_eq!(good["ok"], true);
    env.connect(USER, "still-works").await;

    // Not https (and, off loopback, not the broker's callback either).
    let (id, secret) = sandbox_app(&env, &["http://broker.example/oauth/callback".into()]).await;
    let app = add_app(
        &env,
        &id,
        &secret,
        &["--redirect-uri", "http://broker.example/oauth/callback"],
    );
    let (code, r, all) = doctor(&env, &app);
    assert_eq!(code, Some(1), "{all}");
    assert!(
        rules(&r, "problem").contains(&"redirect_uri_https".to_string()),
        "{r}"
    );
    assert!(message(&r, "redirect_uri_https").contains("not https"));

    // A trailing slash the Dashboard does not have: Instagram refuses it, and the broker
    // does not answer there.
    let (id, secret) = sandbox_app(&env, std::slice::from_ref(&callback)).await;
    let slash = format!("{callback}/");
    let app = add_app(&env, &id, &secret, &["--redirect-uri", &slash]);
    let (code, r, all) = doctor(&env, &app);
    assert_eq!(code, Some(1), "{all}");
    let problems = rules(&r, "problem");
    assert!(problems.contains(&"redirect_uri_exact".to_string()), "{r}");
    assert!(message(&r, "redirect_uri_exact").contains("trailing slash"));
    assert!(
        problems.contains(&"redirect_uri_registered".to_string()),
        "{r}"
    );

    // The broker's callback, but not the one registered in the (sandbox) Dashboard: only
    // Instagram's authorization page can tell.
    let (id, secret) = sandbox_app(&env, &["https://elsewhere.example/cb".into()]).await;
    let app = add_app(&env, &id, &secret, &[]);
    let (code, r, all) = doctor(&env, &app);
    assert_eq!(code, Some(1), "{all}");
    assert_eq!(rules(&r, "problem"), ["redirect_uri_registered"], "{r}");

    // A Meta (Facebook) App ID: a number like the Instagram App ID, unknown to Instagram.
    let app = add_app(&env, "1234567890123456", "some-secret", &[]);
    let (code, r, all) = doctor(&env, &app);
    assert_eq!(code, Some(1), "{all}");
    assert!(
        rules(&r, "problem").contains(&"client_id_instagram_app".to_string()),
        "{r}"
    );
    assert!(message(&r, "client_id_instagram_app").contains("Meta (Facebook) App ID"));

    // A wrong secret (the Meta App Secret, say): the test exchange is refused for it, and the
    // secret is never printed.
    let wrong = "canary-wrong-secret-7731";
    let (id, _) = sandbox_app(&env, std::slice::from_ref(&callback)).await;
    let app = add_app(&env, &id, wrong, &[]);
    let (code, r, all) = doctor(&env, &app);
    assert_eq!(code, Some(1), "{all}");
    assert_eq!(rules(&r, "problem"), ["client_secret_exchange"], "{r}");
    assert!(!all.contains(wrong), "the secret was printed: {all}");

    // Registration refuses them outright, naming why.
    for (scope, why) in [
        ("user_profile", "Basic Display"),
        ("business_basic", "retired"),
    ] {
        let out = cli(
            &env,
            &[
                "apps",
                "add",
                "--name",
                "x",
                "--client-id",
                "1",
                "--scope",
                scope,
            ],
            Some("a-secret\n"),
        );
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains(why), "{}", text(&out));
    }

    // Retired scopes in a row written before the broker checked them: the row cannot be
    // used, and the doctor says which scopes and what replaces them.
    sqlx::query("UPDATE apps SET scopes = $1 WHERE id = $2")
        .bind("instagram_business_basic,user_profile,business_manage_comments")
        .bind(&env.app_id)
        .execute(env.state.store().pool())
        .await
        .unwrap();
    let (code, r, all) = doctor(&env, &env.app_id);
    assert_eq!(code, Some(1), "{all}");
    assert_eq!(
        rules(&r, "problem"),
        ["scopes_retired", "scopes_retired"],
        "{r}"
    );
    let m = message(&r, "scopes_retired");
    assert!(
        m.contains("Basic Display") && m.contains("instagram_business_manage_comments"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_scopes_no_account_granted_or_used() {
    let env = TestEnv::start(Backend::Sqlite).await.unwrap();
    let app = env
        .register_app(
            json!({"scopes": ["instagram_business_basic", "instagram_business_content_publish",
                                        "instagram_business_manage_insights"]}),
        )
        .await;
    let app_id = s(&app["id"]);
    let (_, r, _) = doctor(&env, &app_id);
    assert!(rules(&r, "warning").is_empty(), "no account yet: {r}");
    assert_eq!(
        rules(&r, "note")
            .iter()
            .filter(|n| *n == "scopes_unused")
            .count(),
        1
    );

    let acc = env.connect_to(&app_id, USER, "u").await;
    let (code, r, all) = doctor(&env, &app_id);
    assert_eq!(code, Some(0), "unused scopes are warnings: {all}");
    let m = message(&r, "scopes_unused");
    assert!(
        m.contains("content_publish") && m.contains("manage_insights"),
        "{m}"
    );

    // An insights call through the broker uses that scope.
    let out = cli(
        &env,
        &[
            "graph",
            &acc,
            "GET",
            "me/insights",
            "-F",
            "metric=reach",
            "-F",
            "period=day",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    let (_, r, _) = doctor(&env, &app_id);
    let m = message(&r, "scopes_unused");
    assert!(
        m.contains("content_publish") && !m.contains("manage_insights"),
        "{m}"
    );

    // Once a token is read out, calls made with it are unseen: only grants are judged.
    let (st, _) = env.get(&format!("/v1/accounts/{acc}/token")).await;
    assert!(st.is_success());
    let (_, r, _) = doctor(&env, &app_id);
    assert!(message(&r, "scopes_unused").is_empty(), "{r}");
    assert!(rules(&r, "note").contains(&"scopes_unused".to_string()));
}
