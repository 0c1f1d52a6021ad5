//! A request's id follows it into the logs of the Instagram calls it makes: the running
//! binary (`igbroker demo`, logging to stderr) is asked for a Graph call with an
//! `x-request-id`, and the log line of the upstream call carries that id, while no log line
//! carries the token.
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use instagram_sandbox::control_client::{Consent, ControlClient};
use serde_json::{Value, json};

use crate::common::bin;

struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Lines of a pipe, as they come.
fn lines(pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_id_reaches_the_upstream_call_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = bin()
        .args(["demo", "--port", "0", "--data"])
        .arg(dir.path())
        .env("IGBROKER_LOG", "warn,instagram_api=debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = lines(child.stdout.take().unwrap());
    let stderr = lines(child.stderr.take().unwrap());
    let _demo = Demo(child);
    let (mut broker, mut sandbox, mut key) = (String::new(), String::new(), String::new());
    while let Ok(line) = stdout.recv_timeout(Duration::from_secs(60)) {
        let line = line.trim();
        if let Some(v) = line.strip_prefix("broker:") {
            broker = v.trim().to_string();
        } else if let Some(v) = line.strip_prefix("sandbox:") {
            sandbox = v.split_whitespace().next().unwrap_or("").to_string();
        } else if let Some(v) = line.strip_prefix("admin key:") {
            key = v.trim().to_string();
        }
        if line.contains("then open the connect_url") {
            break;
        }
    }
    assert!(!broker.is_empty() && !sandbox.is_empty() && !key.is_empty());
    let http = igbroker::stack::http_client().unwrap();
    let sb = ControlClient::new(sandbox.clone());

    // Connect the demo's user: session, link, consent, callback.
    let apps: Value = http
        .get(format!("{broker}/v1/apps"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let app_id = apps["data"][0]["id"].as_str().unwrap().to_string();
    let session: Value = http
        .post(format!("{broker}/v1/connect-sessions"))
        .bearer_auth(&key)
        .json(&json!({"app_id": app_id}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let link = http
        .get(session["connect_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let cookie = link.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let authorize = link.headers()["location"].to_str().unwrap().to_string();
    let consent = Consent::for_authorize_url(&authorize, "demo_shop", "allow").unwrap();
    let mut callback = url::Url::parse(&sb.authorize(&consent).await.unwrap()).unwrap();
    callback.set_fragment(None);
    let back = http
        .get(callback.as_str())
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert!(back.status().is_success(), "{}", back.status());
    let done: Value = http
        .get(format!(
            "{broker}/v1/connect-sessions/{}",
            session["id"].as_str().unwrap()
        ))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let account = done["account_id"].as_str().unwrap().to_string();
    let token: Value = http
        .get(format!("{broker}/v1/accounts/{account}/token"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_string();

    let resp = http
        .get(format!(
            "{broker}/v1/accounts/{account}/graph/me?fields=id,username"
        ))
        .bearer_auth(&key)
        .header("x-request-id", "trace-me-4711")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-request-id"], "trace-me-4711");

    let mut seen = Vec::new();
    let found = loop {
        match stderr.recv_timeout(Duration::from_secs(10)) {
            Ok(line) => {
                assert!(
                    !line.contains(&token),
                    "a log line carries the token: {line}"
                );
                let hit = line.contains("instagram call succeeded") && line.contains("graph");
                seen.push(line);
                if hit && seen.last().is_some_and(|l| l.contains("trace-me-4711")) {
                    break true;
                }
            }
            Err(_) => break false,
        }
    };
    assert!(
        found,
        "no upstream call log line with the request id:\n{}",
        seen.join("\n")
    );
}
