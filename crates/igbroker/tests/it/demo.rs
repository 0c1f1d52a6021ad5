//! `igbroker demo --script` end to end, and what it leaves on disk.

use std::process::Command;

use crate::common::contains;

/// Every file the demo left in its data folder (database, WAL, journal, key ring).
fn data_files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_script_walks_the_story_and_leaves_no_plaintext_token() {
    let dir = tempfile::tempdir().unwrap();
    let demo = igbroker::demo::Demo::start(0, dir.path()).await.unwrap();
    let mut lines = Vec::new();
    let report = igbroker::demo::script(&demo, &mut |l: &str| lines.push(l.to_string()))
        .await
        .unwrap();
    demo.stop().await;

    let steps: Vec<&str> = lines
        .iter()
        .map(|l| l.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(
        steps,
        [
            "connect", "exchange", "token", "graph", "clock", "refresh", "revoke"
        ],
        "{lines:#?}"
    );
    assert!(report.account_id.starts_with("acc_"));
    assert_eq!(report.tokens_seen.len(), 2);

    let files = data_files(dir.path());
    assert!(
        files.len() >= 2,
        "expected the database and the key ring in the data folder"
    );
    assert!(
        files
            .iter()
            .any(|(_, b)| contains(b, report.account_id.as_bytes())),
        "the same scan finds what is stored in clear (the account id)"
    );
    for (name, bytes) in &files {
        for t in &report.tokens_seen {
            assert!(
                !contains(bytes, t.as_bytes()),
                "a token is in {name} in plaintext"
            );
        }
    }
    for l in &lines {
        for t in &report.tokens_seen {
            assert!(!l.contains(t.as_str()), "the demo printed a token: {l}");
        }
    }
}

#[test]
fn demo_script_binary_exits_zero_and_prints_each_step() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_igbroker"))
        .args(["demo", "--script", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in [
        "connect",
        "exchange",
        "token read",
        "graph /me",
        "clock",
        "refresh",
        "revoke",
    ] {
        assert!(
            stdout.contains(&format!("ok  {step}")),
            "missing step {step}: {stdout}"
        );
    }
    let account_id = stdout
        .split_whitespace()
        .find(|w| w.starts_with("acc_"))
        .unwrap_or_else(|| panic!("no account id in: {stdout}"));
    let files = data_files(dir.path());
    assert!(
        files
            .iter()
            .any(|(_, b)| contains(b, account_id.as_bytes())),
        "the same scan finds what is stored in clear (the account id)"
    );
    for (name, bytes) in &files {
        assert!(
            !contains(bytes, b"IGAA"),
            "an Instagram token prefix appears in {name}"
        );
    }
}

#[tokio::test]
async fn interactive_demo_prints_its_urls_serves_and_stops_on_ctrl_c() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_igbroker"))
        .args(["demo", "--port", "0", "--data"])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let (mut broker, mut key, mut link) = (None, None, None);
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.trim().starts_with("http") && line.contains("/ui/sign-in/link/") {
            link = Some(line.trim().to_string());
        }
        if let Some(u) = line.trim().strip_prefix("broker:") {
            broker = Some(u.trim().to_string());
        }
        if let Some(k) = line.trim().strip_prefix("admin key:") {
            key = Some(k.trim().to_string());
        }
        if line.contains("open the connect_url") {
            break;
        }
    }
    let (broker, key) = (
        broker.expect("broker URL printed"),
        key.expect("admin key printed"),
    );
    // The printed dashboard link signs in once, on the connect page.
    let link = link.expect("dashboard link printed");
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let first = browser.get(&link).send().await.unwrap();
    assert_eq!(first.status(), reqwest::StatusCode::SEE_OTHER);
    assert_eq!(first.headers()["location"], "/ui/connect");
    assert!(first.headers().get("set-cookie").is_some());
    let again = browser.get(&link).send().await.unwrap();
    assert_eq!(
        again.status(),
        reqwest::StatusCode::UNAUTHORIZED,
        "the link is one-time"
    );
    let http = reqwest::Client::new();
    let apps: serde_json::Value = http
        .get(format!("{broker}/v1/apps"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(apps["data"].as_array().unwrap().len(), 1, "{apps}");
    let metrics = http.get(format!("{broker}/metrics")).send().await.unwrap();
    assert!(metrics.status().is_success());
    assert!(metrics.text().await.unwrap().contains("igbroker_accounts"));
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "demo should exit 0 on Ctrl-C: {status:?}");
}
