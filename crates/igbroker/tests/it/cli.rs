//! The binary as a deployment uses it: keys init, migrate, api-keys create, serve.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

fn igbroker(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_igbroker"))
        .current_dir(dir)
        .args(args)
        .env_remove("IGBROKER_KEYS__RING")
        .output()
        .unwrap()
}

fn write_config(dir: &std::path::Path, port: u16) -> std::path::PathBuf {
    let path = dir.join("igbroker.toml");
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n\
             database_url = \"sqlite://{}/data/igbroker.db?mode=rwc\"\n[keys]\nring_file = \"{}/data/keys.toml\"\n",
            dir.display(),
            dir.display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn keys_init_migrate_and_api_key_creation() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), 1);
    let cfg = cfg.to_str().unwrap();

    let out = igbroker(dir.path(), &["keys", "init", "--config", cfg]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ring = dir.path().join("data/keys.toml");
    assert_eq!(
        std::fs::metadata(&ring).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let again = igbroker(dir.path(), &["keys", "init", "--config", cfg]);
    assert_eq!(
        again.status.code(),
        Some(1),
        "a second init must not overwrite the ring"
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    let out = igbroker(dir.path(), &["migrate", "--config", cfg, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = igbroker(
        dir.path(),
        &[
            "api-keys", "create", "--name", "ops", "--scope", "admin", "--json", "--config", cfg,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = v["key"].as_str().unwrap();
    assert!(key.starts_with("igb_"));
    assert!(v["id"].as_str().unwrap().starts_with("key_"));
    let db = std::fs::read(dir.path().join("data/igbroker.db")).unwrap();
    assert!(
        !db.windows(key.len()).any(|w| w == key.as_bytes()),
        "API key stored in plaintext"
    );

    let bad = igbroker(
        dir.path(),
        &[
            "api-keys", "create", "--name", "x", "--scope", "root", "--config", cfg,
        ],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("root"));
    let usage = igbroker(dir.path(), &["api-keys", "create"]);
    assert_eq!(usage.status.code(), Some(2), "wrong usage exits 2");
}

#[test]
fn env_overrides_the_file_and_bad_config_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), 1);
    let out = Command::new(env!("CARGO_BIN_EXE_igbroker"))
        .args(["check-config", "--json", "--config", cfg.to_str().unwrap()])
        .env(
            "IGBROKER_KEYS__RING",
            "1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
        .env("IGBROKER_INSTAGRAM__GRAPH_VERSION", "v25.0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["instagram"]["graph_version"], "v25.0");
    assert_eq!(v["keys"]["source"], "IGBROKER_KEYS__RING");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("AAAAAAAAAAAAAAAA"),
        "key material printed"
    );

    std::fs::write(&cfg, "[refresh]\nmin_age = \"soon\"\n").unwrap();
    let out = igbroker(
        dir.path(),
        &["check-config", "--config", cfg.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("soon"));
}

#[tokio::test]
async fn serve_answers_health_and_readiness_then_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    // Port 0: serve binds a free port itself and logs the address it got, so no other process
    // can take the port between our choosing it and the server binding it.
    let cfg = write_config(dir.path(), 0);
    let cfg = cfg.to_str().unwrap();
    assert!(
        igbroker(dir.path(), &["keys", "init", "--config", cfg])
            .status
            .success()
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_igbroker"))
        .args(["serve", "--config", cfg])
        .env("IGBROKER_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the log line that says it listens, instead of sleeping.
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut port = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.contains("igbroker serving") {
            port = reported_port(&line);
            assert!(port.is_some(), "no address in: {line}");
            break;
        }
    }
    let port = port.expect("serve never said it was listening");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let h: serde_json::Value = http
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(h["status"], "ok");
    let r: serde_json::Value = http
        .get(format!("http://127.0.0.1:{port}/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["database"], "SQLite");
    let resp = http
        .get(format!("http://127.0.0.1:{port}/v1/accounts"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    send_sigterm(child.id());
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "serve should exit 0 on SIGTERM, got {status:?}"
    );
}

/// The port of the `127.0.0.1:PORT` address a log line reports.
fn reported_port(line: &str) -> Option<u16> {
    let rest = &line[line.find("127.0.0.1:")? + "127.0.0.1:".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|p| *p != 0)
}

fn send_sigterm(pid: u32) {
    let ok = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}
