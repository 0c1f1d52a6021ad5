//! `[telemetry] otlp_traces_url`: `igbroker serve` sends its spans to a collector as
//! OTLP/HTTP JSON. A proxied Graph call is one trace: the request's span (with its request
//! id) and, as its child, the Instagram call's span; no span carries the token.
use std::io::{BufRead, BufReader};
use std::process::Child;
use std::time::Duration;

use serde_json::Value;

use super::common::*;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn attribute(span: &Value, key: &str) -> Option<String> {
    span["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .and_then(|a| a["value"]["stringValue"].as_str())
        .map(str::to_owned)
}

async fn spans_reach_the_collector(env: TestEnv) {
    let account = env.connect(USER, "traced").await;
    let (_, tok) = env.get(&format!("/v1/accounts/{account}/token")).await;
    let token = s(&tok["access_token"]);
    let (collector, inbox) = receiver().await;

    let mut cmd = cli_command(&env, &["serve"]);
    cmd.env("IGBROKER_LISTEN", "127.0.0.1:0")
        .env("IGBROKER_LOG", "info")
        .env("IGBROKER_TELEMETRY__OTLP_TRACES_URL", &collector)
        .env("IGBROKER_TELEMETRY__SERVICE_NAME", "igbroker-under-test");
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let _server = Server(child);
    // The address is in the "igbroker serving" line.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let address = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("serve printed no address");
        if line.contains("igbroker serving")
            && let Some(rest) = line.split("address=").nth(1)
        {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };

    let resp = env
        .http
        .get(format!(
            "http://{address}/v1/accounts/{account}/graph/me?fields=id"
        ))
        .bearer_auth(&env.admin_key)
        .header("x-request-id", "otlp-trace-1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // The exporter sends once a second.
    let mut spans = Vec::new();
    for _ in 0..100 {
        spans = inbox
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(_, body)| {
                assert!(
                    !contains(body, token.as_bytes()),
                    "an exported span carries the token"
                );
                let v: Value = serde_json::from_slice(body).unwrap();
                assert_eq!(
                    v["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"],
                    "igbroker-under-test"
                );
                v["resourceSpans"][0]["scopeSpans"][0]["spans"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .collect::<Vec<Value>>();
        if spans.iter().any(|s| s["name"] == "instagram_api") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let request = spans
        .iter()
        .find(|s| {
            s["name"] == "request" && attribute(s, "request_id").as_deref() == Some("otlp-trace-1")
        })
        .unwrap_or_else(|| panic!("no request span: {spans:#?}"));
    let call = spans
        .iter()
        .find(|s| s["name"] == "instagram_api" && s["traceId"] == request["traceId"])
        .unwrap_or_else(|| panic!("no Instagram call in the request's trace: {spans:#?}"));
    assert_eq!(call["parentSpanId"], request["spanId"]);
    assert_eq!(attribute(call, "op").as_deref(), Some("raw"));
    assert_eq!(request["traceId"].as_str().unwrap().len(), 32);
    let (start, end): (u128, u128) = (
        call["startTimeUnixNano"].as_str().unwrap().parse().unwrap(),
        call["endTimeUnixNano"].as_str().unwrap().parse().unwrap(),
    );
    assert!(start > 0 && end >= start);
}

both_backends!(export, spans_reach_the_collector);
