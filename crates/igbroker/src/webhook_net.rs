//! The HTTP client that delivers webhooks, held to `[webhooks]`'s destination policy.
//!
//! A URL is checked before each delivery (scheme, literal address, and the addresses a name
//! resolves to, for a clear error), and the client's own resolver checks again the addresses
//! it hands to the connector: the connection goes only to an address that passed, so a name
//! that resolves to a public address first and a private one later (DNS rebinding) gains
//! nothing. The client uses no proxy (a proxy would resolve names itself) and follows no
//! redirect.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use igbroker_core::net_policy::{DestRefusal, Destination, DestinationPolicy};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Resolves with the system resolver and refuses names whose addresses the policy refuses.
struct CheckedResolver {
    policy: Arc<DestinationPolicy>,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs = resolve_checked(&policy, &host).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The addresses of `host`, each allowed by the policy; refused if any is not.
pub async fn resolve_checked(
    policy: &DestinationPolicy,
    host: &str,
) -> Result<Vec<SocketAddr>, DestRefusal> {
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|_| DestRefusal::NoAddress {
            host: host.chars().take(80).collect(),
        })?
        .collect();
    if found.is_empty() {
        return Err(DestRefusal::NoAddress {
            host: host.chars().take(80).collect(),
        });
    }
    // All or nothing: a name that mixes public and internal addresses is not a receiver
    // the broker should guess about.
    for a in &found {
        policy.check_addr(host, a.ip())?;
    }
    Ok(found)
}

/// Checks a webhook URL as a delivery would, resolving a name now.
pub async fn check_destination(policy: &DestinationPolicy, url: &str) -> Result<(), DestRefusal> {
    match policy.check_url(url)? {
        Destination::Ip(_) | Destination::Trusted(_) => Ok(()),
        Destination::Name(host) => resolve_checked(policy, &host).await.map(|_| ()),
    }
}

/// The delivery client: checked resolution, no proxy, no redirects, bounded time.
pub fn client(policy: Arc<DestinationPolicy>) -> reqwest::Client {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(CheckedResolver { policy }))
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_default()
}

/// The causes of a failed request, without its URL (which may carry credentials); the
/// resolver's refusal sits in the source chain, where reqwest's own text does not show it.
pub fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut out = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::AsyncReadExt;

    fn strict() -> DestinationPolicy {
        DestinationPolicy {
            allow_http: true,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused() {
        let e = check_destination(&strict(), "http://localhost:9/hook")
            .await
            .unwrap_err();
        assert!(matches!(e, DestRefusal::Address { .. }), "{e}");
        assert!(e.to_string().contains("localhost"), "{e}");
    }

    #[tokio::test]
    async fn the_client_never_connects_to_a_refused_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // Straight to the client, skipping the pre-check: the resolver alone must refuse.
        let strict = client(Arc::new(strict()));
        let err = strict
            .post(format!("http://localhost:{port}/hook"))
            .header("x-which", "strict")
            .body("{}")
            .send()
            .await
            .unwrap_err();
        let text = describe(err);
        assert!(text.contains("loopback"), "{text}");

        let open = client(Arc::new(DestinationPolicy {
            allow_private_networks: true,
            allow_http: true,
            ..Default::default()
        }));
        let sent = tokio::spawn(async move {
            open.post(format!("http://localhost:{port}/hook"))
                .header("x-which", "open")
                .body("{}")
                .send()
                .await
        });
        // The first connection the listener ever sees is the allowed client's.
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf).await.unwrap();
        let head = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
        assert!(head.contains("x-which: open"), "{head}");
        drop(s);
        let _ = sent.await;
    }
}
