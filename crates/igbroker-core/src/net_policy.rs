//! Where the broker may send webhooks: public addresses by default, so that a key with
//! `apps:write` cannot aim signed requests at the broker's own network.
//!
//! Names are checked on the addresses they resolve to when a delivery is made (the
//! delivery code resolves, checks, and connects only to what it checked). URLs are
//! parsed as browsers and the HTTP client do, so `http://0x7f000001/`,
//! `http://2130706433/` and `http://127.1/` are all `127.0.0.1` here too.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is not public.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrClass {
    Public,
    Loopback,
    Private,
    LinkLocal,
    UniqueLocal,
    Unspecified,
    Multicast,
    /// Shared (carrier-grade NAT), benchmarking, documentation, broadcast and future use.
    Reserved,
}

impl AddrClass {
    pub fn as_str(self) -> &'static str {
        match self {
            AddrClass::Public => "public",
            AddrClass::Loopback => "loopback",
            AddrClass::Private => "private",
            AddrClass::LinkLocal => "link-local",
            AddrClass::UniqueLocal => "unique local",
            AddrClass::Unspecified => "unspecified",
            AddrClass::Multicast => "multicast",
            AddrClass::Reserved => "reserved",
        }
    }
}

pub fn classify(ip: IpAddr) -> AddrClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddrClass {
    let [a, b, c, _] = ip.octets();
    if a == 0 {
        AddrClass::Unspecified
    } else if a == 127 {
        AddrClass::Loopback
    } else if a == 10 || (a == 172 && (16..=31).contains(&b)) || (a == 192 && b == 168) {
        AddrClass::Private
    } else if a == 169 && b == 254 {
        AddrClass::LinkLocal
    } else if (224..=239).contains(&a) {
        AddrClass::Multicast
    } else if a >= 240
        || (a == 100 && (64..=127).contains(&b))
        || (a == 198 && (b == 18 || b == 19))
        || (a == 192 && b == 0 && (c == 0 || c == 2))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
    {
        AddrClass::Reserved
    } else {
        AddrClass::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddrClass {
    if ip.is_unspecified() {
        return AddrClass::Unspecified;
    }
    if ip.is_loopback() {
        return AddrClass::Loopback;
    }
    let seg = ip.segments();
    // IPv4 inside IPv6: mapped (::ffff:a.b.c.d), compatible (::a.b.c.d), NAT64
    // (64:ff9b::a.b.c.d) and 6to4 (2002:AABB:CCDD::) all reach the IPv4 address.
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if seg[..5] == [0, 0, 0, 0, 0] && (seg[5] == 0xffff || seg[5] == 0) {
        return classify_v4(embedded(seg[6], seg[7]));
    }
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return classify_v4(embedded(seg[6], seg[7]));
    }
    if seg[0] == 0x2002 {
        return classify_v4(embedded(seg[1], seg[2]));
    }
    match seg[0] {
        s if s & 0xfe00 == 0xfc00 => AddrClass::UniqueLocal,
        s if s & 0xffc0 == 0xfe80 => AddrClass::LinkLocal,
        // Site-local, deprecated but still routed inside some networks.
        s if s & 0xffc0 == 0xfec0 => AddrClass::Private,
        s if s & 0xff00 == 0xff00 => AddrClass::Multicast,
        0x2001 if seg[1] == 0x0db8 => AddrClass::Reserved,
        _ => AddrClass::Public,
    }
}

/// `[webhooks]`: who may receive the broker's events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DestinationPolicy {
    /// Loopback, private, link-local and unique-local addresses allowed too.
    pub allow_private_networks: bool,
    /// Host names or addresses allowed whatever they resolve to.
    pub allow_hosts: Vec<String>,
    /// `http://` allowed (otherwise `https://` only).
    pub allow_http: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestRefusal {
    NotUrl(String),
    Scheme(String),
    Credentials,
    Address {
        host: String,
        ip: IpAddr,
        class: AddrClass,
    },
    NoAddress {
        host: String,
    },
}

impl fmt::Display for DestRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DestRefusal::NotUrl(why) => write!(f, "the webhook URL is not a valid URL: {why}"),
            DestRefusal::Scheme(s) => write!(
                f,
                "webhook URLs must use https (not `{s}`); an operator may allow http with [webhooks] allow_http = true"
            ),
            DestRefusal::Credentials => f.write_str(
                "the webhook URL must not carry a user name or password: the broker signs its requests instead",
            ),
            DestRefusal::Address { host, ip, class } => write!(
                f,
                "webhook host `{host}` is {ip}, a {} address; the broker delivers only to public addresses unless an operator sets [webhooks] allow_private_networks = true or lists the host in allow_hosts",
                class.as_str()
            ),
            DestRefusal::NoAddress { host } => {
                write!(f, "webhook host `{host}` did not resolve to any address")
            }
        }
    }
}

impl std::error::Error for DestRefusal {}

/// The host of a checked URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// An address that passed the policy.
    Ip(IpAddr),
    /// A name whose addresses must be checked when it is resolved.
    Name(String),
    /// A host the operator listed in `allow_hosts`: no address check.
    Trusted(String),
}

impl DestinationPolicy {
    pub fn host_trusted(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.allow_hosts.iter().any(|h| {
            h.trim_start_matches('[')
                .trim_end_matches(']')
                .eq_ignore_ascii_case(host)
        })
    }

    /// Checks one resolved (or literal) address of `host`.
    pub fn check_addr(&self, host: &str, ip: IpAddr) -> Result<(), DestRefusal> {
        let class = classify(ip);
        if class == AddrClass::Public
            || self.host_trusted(host)
            || (self.allow_private_networks
                && matches!(
                    class,
                    AddrClass::Loopback
                        | AddrClass::Private
                        | AddrClass::LinkLocal
                        | AddrClass::UniqueLocal
                ))
        {
            Ok(())
        } else {
            Err(DestRefusal::Address {
                host: host.chars().take(80).collect(),
                ip,
                class,
            })
        }
    }

    /// Checks the scheme, credentials and a literal address; a name is left for resolution.
    pub fn check_url(&self, raw: &str) -> Result<Destination, DestRefusal> {
        let url = url::Url::parse(raw.trim()).map_err(|e| DestRefusal::NotUrl(e.to_string()))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            other => return Err(DestRefusal::Scheme(other.chars().take(20).collect())),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(DestRefusal::Credentials);
        }
        let host_text = url.host_str().unwrap_or("").to_string();
        match url.host() {
            Some(url::Host::Ipv4(ip)) => {
                self.check_addr(&host_text, IpAddr::V4(ip))?;
                Ok(Destination::Ip(IpAddr::V4(ip)))
            }
            Some(url::Host::Ipv6(ip)) => {
                self.check_addr(&host_text, IpAddr::V6(ip))?;
                Ok(Destination::Ip(IpAddr::V6(ip)))
            }
            Some(url::Host::Domain(d)) if self.host_trusted(d) => {
                Ok(Destination::Trusted(d.to_string()))
            }
            Some(url::Host::Domain(d)) => Ok(Destination::Name(d.to_ascii_lowercase())),
            None => Err(DestRefusal::NotUrl("it has no host".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_classified() {
        for (a, c) in [
            ("127.0.0.1", AddrClass::Loopback),
            ("127.255.0.9", AddrClass::Loopback),
            ("::1", AddrClass::Loopback),
            ("10.1.2.3", AddrClass::Private),
            ("172.16.0.1", AddrClass::Private),
            ("172.31.255.255", AddrClass::Private),
            ("192.168.1.1", AddrClass::Private),
            ("169.254.169.254", AddrClass::LinkLocal),
            ("fe80::1", AddrClass::LinkLocal),
            ("fd00:ec2::254", AddrClass::UniqueLocal),
            ("fc00::1", AddrClass::UniqueLocal),
            ("0.0.0.0", AddrClass::Unspecified),
            ("::", AddrClass::Unspecified),
            ("224.0.0.1", AddrClass::Multicast),
            ("ff02::1", AddrClass::Multicast),
            ("100.64.0.1", AddrClass::Reserved),
            ("255.255.255.255", AddrClass::Reserved),
            ("::ffff:127.0.0.1", AddrClass::Loopback),
            ("::ffff:169.254.169.254", AddrClass::LinkLocal),
            ("::ffff:10.0.0.1", AddrClass::Private),
            ("64:ff9b::7f00:1", AddrClass::Loopback),
            ("2002:7f00:1::", AddrClass::Loopback),
        ] {
            assert_eq!(classify(ip(a)), c, "{a}");
        }
        for a in ["93.184.216.34", "8.8.8.8", "172.32.0.1", "2606:4700::1111"] {
            assert_eq!(classify(ip(a)), AddrClass::Public, "{a}");
        }
    }

    #[test]
    fn odd_ipv4_spellings_are_the_address_they_mean() {
        let p = DestinationPolicy {
            allow_http: true,
            ..Default::default()
        };
        for u in [
            "http://127.0.0.1/h",
            "http://[::1]/h",
            "http://169.254.169.254/latest",
            "http://10.1.2.3/h",
            "http://0x7f000001/h",
            "http://2130706433/h",
            "http://127.1/h",
            "http://0177.0.0.1/h",
            "http://[::ffff:7f00:1]/h",
            "http://0.0.0.0:9/h",
        ] {
            assert!(
                matches!(p.check_url(u), Err(DestRefusal::Address { .. })),
                "{u}"
            );
        }
        assert_eq!(
            p.check_url("http://hooks.example.com/x"),
            Ok(Destination::Name("hooks.example.com".into()))
        );
    }

    #[test]
    fn operators_opt_in() {
        let strict = DestinationPolicy::default();
        let e = strict.check_url("http://93.184.216.34/").unwrap_err();
        assert!(matches!(e, DestRefusal::Scheme(_)));
        assert!(e.to_string().contains("allow_http"));
        assert!(matches!(
            strict.check_url("https://u:p@hooks.example.com/"),
            Err(DestRefusal::Credentials)
        ));
        let e = strict.check_url("https://127.0.0.1/").unwrap_err();
        assert!(e.to_string().contains("allow_private_networks"), "{e}");

        let private = DestinationPolicy {
            allow_private_networks: true,
            ..Default::default()
        };
        assert!(private.check_url("https://10.1.2.3/").is_ok());
        assert!(private.check_url("https://[fd00::1]/").is_ok());
        // Multicast and unspecified are never a receiver.
        assert!(private.check_url("https://0.0.0.0/").is_err());
        assert!(private.check_url("https://224.0.0.1/").is_err());

        let listed = DestinationPolicy {
            allow_hosts: vec!["hooks.internal".into(), "10.9.9.9".into()],
            ..Default::default()
        };
        assert_eq!(
            listed.check_url("https://HOOKS.internal/x"),
            Ok(Destination::Trusted("hooks.internal".into()))
        );
        assert!(listed.check_url("https://10.9.9.9/").is_ok());
        assert!(listed.check_url("https://10.9.9.8/").is_err());
        assert!(listed.check_addr("hooks.internal", ip("10.0.0.1")).is_ok());
        assert!(listed.check_addr("other.internal", ip("10.0.0.1")).is_err());
    }
}
