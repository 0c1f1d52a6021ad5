//! `igbroker demo --script` end to end, and what it leaves on disk.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
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

    let mut files = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if !path.is_file() {
            continue;
        }
        files += 1;
        let bytes = std::fs::read(&path).unwrap();
        for t in &report.tokens_seen {
            assert!(
                !contains(&bytes, t.as_bytes()),
                "a token is in {} in plaintext",
                path.display()
            );
        }
    }
    assert!(
        files >= 2,
        "expected the database and the key ring in the data folder"
    );
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
    let db = std::fs::read(dir.path().join("igbroker.db")).unwrap();
    assert!(
        !contains(&db, b"IGAA"),
        "an Instagram token prefix appears in the database file"
    );
}
