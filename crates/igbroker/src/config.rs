//! The configuration file and its `IGBROKER_…` environment overrides.

use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use igbroker_core::RefreshPolicy;
use secrecy::SecretString;
use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Config {
    pub listen: String,
    pub public_url: String,
    pub database_url: String,
    /// How long a replica trusts an API key it checked against the database: a
    /// key revoked anywhere stops working on every replica within this time.
    #[serde(deserialize_with = "human_duration")]
    pub api_key_cache_ttl: Duration,
    pub keys: KeysConfig,
    pub instagram: InstagramConfig,
    pub refresh: RefreshConfig,
    pub ui: UiConfig,
    pub limits: LimitsConfig,
    pub webhooks: WebhooksConfig,
    pub metrics: MetricsConfig,
    pub telemetry: TelemetryConfig,
    pub meta: MetaConfig,
    pub publish: PublishConfig,
    pub anomaly: AnomalyConfig,
    pub dev: DevConfig,
}

/// `[ui]`: the dashboard under `/ui`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct UiConfig {
    /// An Argon2 hash (PHC string, `$argon2id$…`) of a password that signs in as `admin`;
    /// empty: only admin API keys sign in.
    pub admin_password_hash: String,
    /// How long a dashboard sign-in lasts.
    #[serde(deserialize_with = "human_duration")]
    pub session_ttl: Duration,
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig {
            admin_password_hash: String::new(),
            session_ttl: Duration::from_secs(12 * 3600),
        }
    }
}

/// `[limits]`: what one request, one key, one client address and one process may use.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LimitsConfig {
    /// Token bucket per API key (a key may carry its own `rate_limit_per_second`).
    pub per_key_per_second: u32,
    pub per_key_burst: u32,
    /// Failed API-key attempts one client address may make before it must wait…
    pub failed_auth_burst: u32,
    /// …and how many a second it regains.
    pub failed_auth_per_second: f64,
    /// Requests this process serves at once; more are answered 503 at once.
    pub max_in_flight: usize,
    /// Time to send a request's headers, and the longest idle wait between requests.
    #[serde(deserialize_with = "human_duration")]
    pub header_read_timeout: Duration,
    /// Longest a request may take, body included.
    #[serde(deserialize_with = "human_duration")]
    pub request_timeout: Duration,
    pub max_body_bytes: usize,
    pub max_header_bytes: usize,
    pub max_json_depth: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            per_key_per_second: 200,
            per_key_burst: 400,
            failed_auth_burst: 20,
            failed_auth_per_second: 1.0,
            max_in_flight: 1024,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
            max_body_bytes: 1024 * 1024,
            max_header_bytes: 64 * 1024,
            max_json_depth: 32,
        }
    }
}

/// `[webhooks]`: where the broker may deliver events, and how their secret rotates.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct WebhooksConfig {
    pub allow_private_networks: bool,
    pub allow_hosts: Vec<String>,
    pub allow_http: bool,
    /// After `rotate_webhook_secret`, deliveries carry a second signature made with the
    /// replaced secret for this long, so a receiver can switch secrets without a gap.
    #[serde(deserialize_with = "human_duration")]
    pub secret_rotation_grace: Duration,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            allow_private_networks: false,
            allow_hosts: Vec::new(),
            allow_http: false,
            secret_rotation_grace: Duration::from_secs(86_400),
        }
    }
}

impl WebhooksConfig {
    pub fn policy(&self) -> igbroker_core::net_policy::DestinationPolicy {
        igbroker_core::net_policy::DestinationPolicy {
            allow_private_networks: self.allow_private_networks,
            allow_hosts: self.allow_hosts.clone(),
            allow_http: self.allow_http,
        }
    }
}

/// `[metrics]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MetricsConfig {
    /// When set, `GET /metrics` needs `Authorization: Bearer <it>`.
    pub bearer_token: Option<SecretString>,
}

/// `[telemetry]`: optional trace export to an OpenTelemetry collector.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct TelemetryConfig {
    /// OTLP/HTTP traces endpoint, e.g. `http://collector:4318/v1/traces`; empty: no export.
    pub otlp_traces_url: String,
    /// `service.name` of the exported spans.
    pub service_name: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            otlp_traces_url: String::new(),
            service_name: "igbroker".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct KeysConfig {
    pub ring_file: PathBuf,
    /// `IGBROKER_KEYS__RING="1:<base64>,2:<base64>"`; wins over the file.
    pub ring: Option<SecretString>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct InstagramConfig {
    pub authorize_url: String,
    pub token_url: String,
    pub graph_url: String,
    pub graph_version: String,
    #[serde(deserialize_with = "human_duration")]
    pub connect_timeout: Duration,
    #[serde(deserialize_with = "human_duration")]
    pub request_timeout: Duration,
    /// Above this share of Instagram's reported rate limit (percent), proxied Graph calls
    /// are answered 429 and refreshes keep the rest.
    pub throttle_at_percent: u8,
    /// How many times a Graph GET that failed transiently is retried, with backoff.
    /// Writes are never retried: Instagram may have done them.
    pub graph_get_retries: u8,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RefreshConfig {
    #[serde(deserialize_with = "human_duration")]
    pub window: Duration,
    #[serde(deserialize_with = "human_duration")]
    pub min_age: Duration,
    #[serde(deserialize_with = "human_duration")]
    pub jitter: Duration,
    #[serde(deserialize_with = "human_duration")]
    pub read_refresh_within: Duration,
    #[serde(deserialize_with = "human_duration")]
    pub backoff_base: Duration,
    #[serde(deserialize_with = "human_duration")]
    pub backoff_max: Duration,
    #[serde(deserialize_with = "human_duration")]
    pub failing_backoff: Duration,
    /// Upstream refreshes one replica runs at once.
    pub concurrency: usize,
    /// Refreshes per app per minute, shared by all replicas.
    pub app_budget_per_minute: i64,
    /// Longest sleep between looks at the database (other replicas add work too).
    #[serde(deserialize_with = "human_duration")]
    pub poll: Duration,
    /// Whether `serve` runs the scheduler (a replica may serve the API only).
    pub scheduler: bool,
}

/// Meta's deauthorize and data-deletion callbacks.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MetaConfig {
    /// How long a replaced client secret still verifies callbacks.
    #[serde(deserialize_with = "human_duration")]
    pub previous_secret_grace: Duration,
}

impl Default for MetaConfig {
    fn default() -> Self {
        MetaConfig {
            previous_secret_grace: Duration::from_secs(7 * 86_400),
        }
    }
}

/// `[publish]`: `POST /v1/accounts/{id}/media`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PublishConfig {
    /// How long a publish request waits for its result before answering 202 with a status
    /// URL (the work goes on).
    #[serde(deserialize_with = "human_duration")]
    pub wait: Duration,
}

impl Default for PublishConfig {
    fn default() -> Self {
        PublishConfig {
            wait: Duration::from_secs(25),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnomalyAction {
    /// An event, an audit entry and a metric.
    Alert,
    /// The same, and the account is suspended until an operator resumes it.
    Suspend,
}

/// Usage anomalies: an hour's token reads and Graph calls against the account's own usual use.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnomalyConfig {
    pub action: AnomalyAction,
    /// A spike is more than this many times the account's usual hourly use…
    pub factor: f64,
    /// …and more than this many uses in the hour.
    pub min_per_hour: u64,
    /// How often the worker reads new audit entries.
    #[serde(deserialize_with = "human_duration")]
    pub poll: Duration,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        AnomalyConfig {
            action: AnomalyAction::Alert,
            factor: 10.0,
            min_per_hour: 100,
            poll: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DevConfig {
    pub clock_url: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            public_url: "http://127.0.0.1:8080".into(),
            database_url: "sqlite://igbroker-data/igbroker.db?mode=rwc".into(),
            api_key_cache_ttl: Duration::from_secs(1),
            keys: KeysConfig::default(),
            instagram: InstagramConfig::default(),
            refresh: RefreshConfig::default(),
            ui: UiConfig::default(),
            limits: LimitsConfig::default(),
            webhooks: WebhooksConfig::default(),
            metrics: MetricsConfig::default(),
            telemetry: TelemetryConfig::default(),
            meta: MetaConfig::default(),
            publish: PublishConfig::default(),
            anomaly: AnomalyConfig::default(),
            dev: DevConfig::default(),
        }
    }
}

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig {
            ring_file: PathBuf::from("igbroker-data/keys.toml"),
            ring: None,
        }
    }
}

impl Default for InstagramConfig {
    fn default() -> Self {
        InstagramConfig {
            authorize_url: "https://www.instagram.com/oauth/authorize".into(),
            token_url: "https://api.instagram.com/oauth/access_token".into(),
            graph_url: "https://graph.instagram.com".into(),
            graph_version: "v24.0".into(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            throttle_at_percent: 90,
            graph_get_retries: 2,
        }
    }
}

impl Default for RefreshConfig {
    fn default() -> Self {
        let p = RefreshPolicy::default();
        RefreshConfig {
            window: Duration::from_secs(p.window as u64),
            min_age: Duration::from_secs(p.min_age as u64),
            jitter: Duration::from_secs(p.jitter as u64),
            read_refresh_within: Duration::from_secs(p.read_refresh_within as u64),
            backoff_base: Duration::from_secs(p.backoff_base as u64),
            backoff_max: Duration::from_secs(p.backoff_max as u64),
            failing_backoff: Duration::from_secs(p.failing_backoff as u64),
            concurrency: 8,
            app_budget_per_minute: 600,
            poll: Duration::from_secs(30),
            scheduler: true,
        }
    }
}

fn human_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(s.trim()).map_err(|e| {
        serde::de::Error::custom(format!(
            "`{s}` is not a duration like \"90s\", \"24h\" or \"20d\": {e}"
        ))
    })
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    Missing(PathBuf),
    #[error("configuration is invalid: {0}")]
    Invalid(String),
}

impl Config {
    /// The file (explicit, or `./igbroker.toml` when present), then `IGBROKER_*` variables.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut fig = Figment::new();
        match path {
            Some(p) => {
                if !p.exists() {
                    return Err(ConfigError::Missing(p.to_path_buf()));
                }
                fig = fig.merge(Toml::file_exact(p));
            }
            None => {
                let default = Path::new("igbroker.toml");
                if default.exists() {
                    fig = fig.merge(Toml::file_exact(default));
                }
            }
        }
        fig = fig.merge(Env::prefixed("IGBROKER_").split("__"));
        let config: Config = fig
            .extract()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, value) in [
            ("instagram.authorize_url", &self.instagram.authorize_url),
            ("instagram.token_url", &self.instagram.token_url),
            ("instagram.graph_url", &self.instagram.graph_url),
            ("public_url", &self.public_url),
        ] {
            url::Url::parse(value)
                .map_err(|e| ConfigError::Invalid(format!("{name} `{value}` is not a URL: {e}")))?;
        }
        if self.api_key_cache_ttl > Duration::from_secs(60) {
            return Err(ConfigError::Invalid(format!(
                "api_key_cache_ttl `{}` is longer than 60s: a revoked key would keep working that long; use e.g. \"1s\"",
                humantime::format_duration(self.api_key_cache_ttl)
            )));
        }
        let otlp = &self.telemetry.otlp_traces_url;
        if !otlp.is_empty()
            && !matches!(
                url::Url::parse(otlp)
                    .map(|u| u.scheme().to_string())
                    .as_deref(),
                Ok("http" | "https")
            )
        {
            return Err(ConfigError::Invalid(format!(
                "telemetry.otlp_traces_url `{otlp}` is not an http(s) URL like http://collector:4318/v1/traces"
            )));
        }
        let pct = self.instagram.throttle_at_percent;
        if !(1..=100).contains(&pct) {
            return Err(ConfigError::Invalid(format!(
                "instagram.throttle_at_percent `{pct}` must be a share from 1 to 100 (default 90)"
            )));
        }
        if self.instagram.graph_get_retries > 5 {
            return Err(ConfigError::Invalid(format!(
                "instagram.graph_get_retries `{}` is more than 5; retrying longer only adds to Instagram's load",
                self.instagram.graph_get_retries
            )));
        }
        let v = &self.instagram.graph_version;
        let ok = v
            .strip_prefix('v')
            .and_then(|r| r.split_once('.'))
            .is_some_and(|(a, b)| {
                !a.is_empty()
                    && !b.is_empty()
                    && (a.to_owned() + b).bytes().all(|c| c.is_ascii_digit())
            });
        if !ok {
            return Err(ConfigError::Invalid(format!(
                "instagram.graph_version `{v}` must look like \"v24.0\""
            )));
        }
        if !self.dev.clock_url.is_empty() && !self.instagram_is_loopback() {
            return Err(ConfigError::Invalid(
                "dev.clock_url is set but the Instagram URLs are not loopback: a borrowed clock is only for a local sandbox".into(),
            ));
        }
        let hash = self.ui.admin_password_hash.trim();
        if !hash.is_empty() && argon2::PasswordHash::new(hash).is_err() {
            return Err(ConfigError::Invalid(
                "ui.admin_password_hash is not an Argon2 hash like `$argon2id$v=19$m=…`; make one with `argon2` (e.g. `printf %s PASSWORD | argon2 \"$(openssl rand -hex 8)\" -id -e`)".into(),
            ));
        }
        if self.ui.session_ttl < Duration::from_secs(60) {
            return Err(ConfigError::Invalid(
                "ui.session_ttl must be at least 60s".into(),
            ));
        }
        if self.refresh.concurrency == 0 || self.refresh.concurrency > 1024 {
            return Err(ConfigError::Invalid(
                "refresh.concurrency must be 1 to 1024".into(),
            ));
        }
        if self.refresh.app_budget_per_minute < 1 {
            return Err(ConfigError::Invalid(
                "refresh.app_budget_per_minute must be at least 1".into(),
            ));
        }
        let l = &self.limits;
        if l.per_key_per_second == 0 || l.per_key_burst == 0 {
            return Err(ConfigError::Invalid(
                "limits.per_key_per_second and limits.per_key_burst must be at least 1".into(),
            ));
        }
        if l.failed_auth_burst == 0
            || l.failed_auth_per_second.is_nan()
            || l.failed_auth_per_second <= 0.0
        {
            return Err(ConfigError::Invalid(
                "limits.failed_auth_burst must be at least 1 and limits.failed_auth_per_second above 0".into(),
            ));
        }
        if l.max_in_flight == 0 || l.max_json_depth == 0 || l.max_body_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "limits.max_in_flight and limits.max_json_depth must be at least 1, limits.max_body_bytes at least 1024".into(),
            ));
        }
        if l.header_read_timeout.is_zero() || l.request_timeout.is_zero() {
            return Err(ConfigError::Invalid(
                "limits.header_read_timeout and limits.request_timeout must be above 0s".into(),
            ));
        }
        if self.webhooks.secret_rotation_grace > Duration::from_secs(30 * 86_400) {
            return Err(ConfigError::Invalid(
                "webhooks.secret_rotation_grace must be at most 30d: a replaced secret should stop signing soon".into(),
            ));
        }
        for h in &self.webhooks.allow_hosts {
            if h.trim().is_empty() || h.contains('/') {
                return Err(ConfigError::Invalid(format!(
                    "webhooks.allow_hosts entry `{h}` must be a host name or address, without scheme or path"
                )));
            }
        }
        if !(self.anomaly.factor.is_finite() && self.anomaly.factor > 1.0) {
            return Err(ConfigError::Invalid(
                "anomaly.factor must be a number above 1 (10 flags an hour ten times the usual)"
                    .into(),
            ));
        }
        if self.publish.wait >= self.limits.request_timeout {
            return Err(ConfigError::Invalid(format!(
                "publish.wait `{}` must be shorter than limits.request_timeout, or the answer would be a timeout instead of 202",
                humantime::format_duration(self.publish.wait)
            )));
        }
        if self.anomaly.poll < Duration::from_millis(10) {
            return Err(ConfigError::Invalid(
                "anomaly.poll must be at least 10ms".into(),
            ));
        }
        if self.refresh.min_age >= Duration::from_secs(60 * 86_400) {
            return Err(ConfigError::Invalid(
                "refresh.min_age must be shorter than a token's 60-day life".into(),
            ));
        }
        Ok(())
    }

    pub fn instagram_is_loopback(&self) -> bool {
        [
            &self.instagram.authorize_url,
            &self.instagram.token_url,
            &self.instagram.graph_url,
        ]
        .iter()
        .all(|u| is_loopback_url(u))
    }

    pub fn refresh_policy(&self) -> RefreshPolicy {
        let s = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4);
        RefreshPolicy {
            window: s(self.refresh.window),
            min_age: s(self.refresh.min_age),
            jitter: s(self.refresh.jitter),
            read_refresh_within: s(self.refresh.read_refresh_within),
            backoff_base: s(self.refresh.backoff_base).max(1),
            backoff_max: s(self.refresh.backoff_max).max(1),
            failing_backoff: s(self.refresh.failing_backoff).max(1),
        }
    }

    pub fn limit_settings(&self) -> crate::limits::LimitSettings {
        let l = &self.limits;
        crate::limits::LimitSettings {
            per_key_per_second: f64::from(l.per_key_per_second),
            per_key_burst: f64::from(l.per_key_burst),
            failed_auth_burst: f64::from(l.failed_auth_burst),
            failed_auth_per_second: l.failed_auth_per_second,
            max_in_flight: l.max_in_flight,
        }
    }

    pub fn conn_limits(&self) -> crate::listener::ConnLimits {
        crate::listener::ConnLimits {
            header_read_timeout: self.limits.header_read_timeout,
            max_header_bytes: self.limits.max_header_bytes,
            ..Default::default()
        }
    }

    pub fn default_redirect_uri(&self) -> String {
        format!("{}/oauth/callback", self.public_url.trim_end_matches('/'))
    }
}

pub fn is_loopback_url(u: &str) -> bool {
    match url::Url::parse(u)
        .ok()
        .and_then(|u| u.host().map(|h| h.to_owned()))
    {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_serve_real_instagram() {
        let c = Config::default();
        assert!(c.validate().is_ok());
        assert!(!c.instagram_is_loopback());
        assert_eq!(c.refresh_policy(), RefreshPolicy::default());
    }

    #[test]
    fn clock_url_needs_loopback_instagram() {
        let mut c = Config::default();
        c.dev.clock_url = "http://127.0.0.1:9/_sandbox/clock".into();
        assert!(c.validate().unwrap_err().to_string().contains("clock_url"));
        c.instagram.authorize_url = "http://127.0.0.1:9/oauth/authorize".into();
        c.instagram.token_url = "http://127.0.0.1:9/oauth/access_token".into();
        c.instagram.graph_url = "http://localhost:9".into();
        assert!(c.validate().is_ok());
    }

    #[test]
    fn file_and_env_layers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("igbroker.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9999\"\n[refresh]\nwindow = \"10d\"\n",
        )
        .unwrap();
        let c = Config::load(Some(&path)).unwrap();
        assert_eq!(c.listen, "127.0.0.1:9999");
        assert_eq!(c.refresh.window, Duration::from_secs(10 * 86_400));
        std::fs::write(&path, "[refresh]\nwindow = \"ten days\"\n").unwrap();
        let e = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(e.contains("ten days"), "{e}");
        assert!(Config::load(Some(&dir.path().join("nope.toml"))).is_err());
    }
}
