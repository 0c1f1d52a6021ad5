//! `apps doctor`: the registration mistakes Instagram punishes, found before a user meets them.
//!
//! The rules are pure functions over what the broker knows (the app row, its configuration,
//! the accounts and the audit log) and over the answers of two harmless probes: an
//! authorization page request and a code exchange with a code that cannot exist. What the
//! broker cannot know from the row alone it learns from those answers:
//!
//! - A Meta (Facebook) App ID and an Instagram App ID are both 15–16 digit numbers; nothing in
//!   the number tells them apart. Instagram answers "Invalid platform app" to an id it does not
//!   know as an Instagram app, which is what a Meta App ID gets.
//! - Whether the redirect URI is the one registered in the App Dashboard is known only to
//!   Instagram; its authorization page refuses any other string ("Invalid redirect_uri").
//! - Whether the secret is right: the exchange checks the app's credentials before the code, so
//!   a wrong secret and an unknown code get different answers.

use igbroker_core::InstagramScope;
use igbroker_core::scopes::required_for;
use igbroker_store::AppRow;
use serde::Serialize;

use crate::service::error::{APP_NOT_APPROVED, APP_NOT_APPROVED_CODE};
use crate::service::{Error, Result, apps, meta};
use crate::state::AppState;

/// How bad a finding is: a `problem` breaks connects or refreshes (exit 1), a `warning` is
/// worth fixing, a `note` says what the doctor could not judge or what to do by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Problem,
    Warning,
    Note,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Problem => "problem",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// A stable name for scripts, e.g. `redirect_uri_https`.
    pub rule: &'static str,
    pub severity: Severity,
    pub message: String,
}

impl Finding {
    fn problem(rule: &'static str, message: String) -> Self {
        Finding {
            rule,
            severity: Severity::Problem,
            message,
        }
    }
    fn warning(rule: &'static str, message: String) -> Self {
        Finding {
            rule,
            severity: Severity::Warning,
            message,
        }
    }
    fn note(rule: &'static str, message: String) -> Self {
        Finding {
            rule,
            severity: Severity::Note,
            message,
        }
    }
}

/// Instagram requires https redirect URIs; only against a loopback sandbox may a loopback
/// `http://` URI stand.
pub fn redirect_uri_https(redirect_uri: &str, instagram_is_loopback: bool) -> Option<Finding> {
    let url = match url::Url::parse(redirect_uri) {
        Ok(u) => u,
        Err(e) => {
            return Some(Finding::problem(
                "redirect_uri_https",
                format!(
                    "redirect_uri `{redirect_uri}` is not a URL ({e}); set an https URL with `igbroker apps update APP --redirect-uri`"
                ),
            ));
        }
    };
    if url.scheme() == "https" {
        return None;
    }
    if instagram_is_loopback && crate::config::is_loopback_url(redirect_uri) {
        return None;
    }
    Some(Finding::problem(
        "redirect_uri_https",
        format!(
            "redirect_uri `{redirect_uri}` is not https: Instagram accepts only https redirect URIs; \
             serve the broker over https and set public_url (or --redirect-uri) to that address"
        ),
    ))
}

/// The broker answers Instagram's redirect only at `{public_url}/oauth/callback`; any other
/// string (a trailing slash, another path or host) sends users where nothing completes the
/// connect.
pub fn redirect_uri_exact(redirect_uri: &str, broker_callback: &str) -> Option<Finding> {
    if redirect_uri == broker_callback {
        return None;
    }
    let trim = |s: &str| s.trim_end_matches('/').to_string();
    let message = if trim(redirect_uri) == trim(broker_callback) {
        format!(
            "redirect_uri `{redirect_uri}` differs from the broker's callback `{broker_callback}` by a trailing slash: \
             Instagram compares byte for byte, so register and use exactly `{broker_callback}`"
        )
    } else {
        format!(
            "redirect_uri `{redirect_uri}` is not the broker's callback `{broker_callback}` (from public_url): \
             unless a proxy forwards it there unchanged, connects cannot complete (or public_url in this \
             configuration is not the broker's address)"
        )
    };
    Some(Finding::problem("redirect_uri_exact", message))
}

/// Numbers only: both Instagram App IDs and Meta App IDs are, so this catches a pasted name or
/// secret, not the Meta-for-Instagram mix-up (the exchange probe does that).
pub fn client_id_format(client_id: &str, instagram_is_loopback: bool) -> Option<Finding> {
    if instagram_is_loopback
        || (!client_id.is_empty() && client_id.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    Some(Finding::problem(
        "client_id_format",
        "client_id is not a number: use the Instagram App ID from App Dashboard > Instagram > \
         API setup with Instagram login > Business login settings"
            .into(),
    ))
}

const BASIC_DISPLAY: [&str; 4] = [
    "user_profile",
    "user_media",
    "instagram_graph_user_profile",
    "instagram_graph_user_media",
];

/// Scopes Instagram no longer grants: the Basic Display API's (shut down 2024-12-04) and the
/// `business_*` names replaced by `instagram_business_*` (refused since 2025-01-27). Rows
/// written before the broker validated scopes may still hold them.
pub fn scopes_retired(scopes: &[String]) -> Vec<Finding> {
    let mut out = Vec::new();
    for s in scopes {
        if BASIC_DISPLAY.contains(&s.as_str()) {
            out.push(Finding::problem(
                "scopes_retired",
                format!(
                    "scope `{s}` belongs to the Instagram Basic Display API, shut down on 2024-12-04: \
                     use instagram_business_basic (and instagram_business_* for more)"
                ),
            ));
        } else if let Some(rest) = s.strip_prefix("business_") {
            out.push(Finding::problem(
                "scopes_retired",
                format!(
                    "scope `{s}` is a retired name that Instagram refuses since 2025-01-27: use `instagram_business_{rest}`"
                ),
            ));
        } else if s.parse::<InstagramScope>().is_err() {
            out.push(Finding::problem(
                "scopes_retired",
                format!("scope `{s}` is not an Instagram Login scope"),
            ));
        }
    }
    out
}

/// What the accounts of an app did with their scopes, read from the accounts and the audit log.
#[derive(Debug, Clone, Default)]
pub struct ScopeUse {
    /// Accounts that are not revoked.
    pub accounts: u64,
    /// Scopes granted to at least one of them.
    pub granted: Vec<InstagramScope>,
    /// Scopes needed by a Graph call made through the broker in the window.
    pub called: Vec<InstagramScope>,
    /// Tokens were read out of the broker in the window: calls made with them are unseen.
    pub tokens_read: bool,
    /// How many days of the audit log were looked at.
    pub window_days: i64,
}

/// Least privilege: a scope that no user granted, or that nothing used, makes the consent
/// screen ask for more than the app needs (and App Review asks why).
pub fn scopes_unused(requested: &[String], usage: &ScopeUse) -> Vec<Finding> {
    let requested: Vec<InstagramScope> = requested.iter().filter_map(|s| s.parse().ok()).collect();
    if usage.accounts == 0 {
        return vec![Finding::note(
            "scopes_unused",
            "no account is connected yet, so scope use cannot be judged".into(),
        )];
    }
    let mut out = Vec::new();
    for s in &requested {
        // Refreshing and /me need basic: the broker itself always uses it.
        if *s == InstagramScope::BusinessBasic {
            continue;
        }
        if !usage.granted.contains(s) {
            out.push(Finding::warning(
                "scopes_unused",
                format!(
                    "no connected account granted `{s}`: ask for it only if the app will use it \
                     (`igbroker apps update APP --scope …`)"
                ),
            ));
        } else if !usage.tokens_read && !usage.called.contains(s) {
            out.push(Finding::warning(
                "scopes_unused",
                format!(
                    "`{s}` is granted but no call through the broker needed it in the last {} days: \
                     drop it unless the app will use it",
                    usage.window_days
                ),
            ));
        }
    }
    if usage.tokens_read {
        out.push(Finding::note(
            "scopes_unused",
            format!(
                "tokens of this app were read out of the broker in the last {} days; calls made with them are \
                 not seen, so only granted scopes were checked",
                usage.window_days
            ),
        ));
    }
    out
}

/// What Instagram's code exchange answered to a code that cannot exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExchangeProbe {
    /// An OAuth error with Instagram's message (secrets scrubbed).
    Refused(String),
    /// No answer or an unreadable one (network, HTML, …).
    Failed(String),
    /// The made-up code was accepted: not an Instagram Platform we know.
    Accepted,
    /// No probe was made (the secret does not decrypt).
    Skipped,
}

/// Reads the exchange's answer: the credentials are checked before the code, so the message
/// names what was wrong.
pub fn exchange_probe(probe: &ExchangeProbe) -> Vec<Finding> {
    let message = match probe {
        ExchangeProbe::Skipped => return Vec::new(),
        ExchangeProbe::Accepted => {
            return vec![Finding::warning(
                "client_secret_exchange",
                "the token URL accepted a made-up authorization code: is instagram.token_url really Instagram's?".into(),
            )];
        }
        ExchangeProbe::Failed(m) => {
            return vec![Finding::warning(
                "client_secret_exchange",
                format!(
                    "the test exchange did not get an answer from Instagram, so the client id and secret are unchecked: {m}"
                ),
            )];
        }
        ExchangeProbe::Refused(m) => m,
    };
    let lower = message.to_ascii_lowercase();
    if lower.contains("platform app") {
        vec![Finding::problem(
            "client_id_instagram_app",
            format!(
                "Instagram does not know this client_id as an Instagram app (\"{message}\"). This is what it answers \
                 when the Meta (Facebook) App ID is registered instead of the Instagram App ID: both are plain numbers, \
                 so only Instagram can tell. Copy the Instagram App ID from App Dashboard > Instagram > API setup with \
                 Instagram login > Business login settings"
            ),
        )]
    } else if lower.contains("secret") {
        vec![Finding::problem(
            "client_secret_exchange",
            format!(
                "Instagram refused the client secret in a test exchange (\"{message}\"): register the Instagram App \
                 Secret from Business login settings (not the Meta App Secret) with \
                 `igbroker apps update APP --client-secret-stdin`"
            ),
        )]
    } else if lower.contains("code") {
        // The made-up code was what failed: client id and secret passed.
        Vec::new()
    } else {
        vec![Finding::warning(
            "client_secret_exchange",
            format!(
                "the test exchange got an answer the doctor cannot read (\"{message}\"); client id and secret are unchecked"
            ),
        )]
    }
}

/// What Instagram's authorization page answered for the app's client id and redirect URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeProbe {
    /// HTTP status and the start of the page.
    Page {
        status: u16,
        text: String,
    },
    Failed(String),
}

/// Instagram shows an error page instead of redirecting when the redirect URI is not one of
/// the app's registered ones (byte for byte).
pub fn authorize_probe(probe: &AuthorizeProbe, redirect_uri: &str) -> Vec<Finding> {
    match probe {
        AuthorizeProbe::Failed(m) => vec![Finding::warning(
            "redirect_uri_registered",
            format!(
                "Instagram's authorization page did not answer, so the registered redirect URI is unchecked: {m}"
            ),
        )],
        AuthorizeProbe::Page { status, text } => {
            let lower = text.to_ascii_lowercase();
            if lower.contains("invalid redirect_uri") || lower.contains("invalid redirect uri") {
                vec![Finding::problem(
                    "redirect_uri_registered",
                    format!(
                        "Instagram refuses redirect_uri `{redirect_uri}`: it is not exactly one of the app's OAuth \
                         redirect URIs (check a trailing slash the Dashboard may add); register exactly this string \
                         under Business login settings > OAuth redirect URIs"
                    ),
                )]
            } else if lower.contains("platform app") {
                // The exchange probe explains this one; say it once.
                Vec::new()
            } else if *status >= 500 {
                vec![Finding::warning(
                    "redirect_uri_registered",
                    format!(
                        "Instagram's authorization page answered HTTP {status}; the registered redirect URI is unchecked"
                    ),
                )]
            } else {
                Vec::new()
            }
        }
    }
}

/// Webhook events are signed, but their content should not cross the network in clear.
pub fn webhook_url_https(webhook_url: Option<&str>) -> Option<Finding> {
    let w = webhook_url?;
    if w.starts_with("http://") && !crate::config::is_loopback_url(w) {
        return Some(Finding::problem(
            "webhook_url_https",
            format!(
                "webhook_url {w} is not https: events about your users would cross the network in clear"
            ),
        ));
    }
    None
}

/// Connects and refreshes that already ended as `app_not_approved_for_user`: the app has
/// Standard Access and those users are not its testers. With none, say so before users meet it.
pub fn not_approved_failures(sessions: i64, accounts: i64) -> Finding {
    if sessions > 0 || accounts > 0 {
        Finding::problem(
            "standard_access_testers",
            format!(
                "{sessions} connect session(s) and {accounts} account(s) failed with \
                 {APP_NOT_APPROVED_CODE}: {APP_NOT_APPROVED}"
            ),
        )
    } else {
        Finding::note(
            "standard_access_testers",
            format!(
                "while the app has Standard Access, only Instagram accounts added to it as testers can use it: \
                 others log in, then every call fails ({APP_NOT_APPROVED_CODE}); add them as testers or obtain \
                 Advanced Access"
            ),
        )
    }
}

/// What the broker knows of relaying Instagram's webhooks for an app.
#[derive(Debug, Clone, Copy, Default)]
pub struct RelaySetup {
    pub enabled: bool,
    pub has_verify_token: bool,
    pub has_webhook_url: bool,
}

/// Relayed events go to the app's webhook_url; without one they are dropped. Once a relay is
/// set up, the App Dashboard needs the broker's callback URL.
pub fn instagram_relay(relay: Option<RelaySetup>, public_url: &str, app_id: &str) -> Vec<Finding> {
    let Some(relay) = relay else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if relay.enabled && !relay.has_webhook_url {
        out.push(Finding::problem(
            "instagram_webhooks_relay",
            "Instagram webhooks are relayed but the app has no webhook_url: every event is dropped; \
             set one with `igbroker apps update APP --webhook-url`"
                .into(),
        ));
    }
    if relay.enabled || relay.has_verify_token {
        out.push(Finding::note(
            "instagram_webhooks_relay",
            format!(
                "Instagram webhooks: enter `{}/meta/webhooks/{app_id}` as the callback URL and the app's \
                 verify token in the App Dashboard",
                public_url.trim_end_matches('/')
            ),
        ));
    }
    out
}

/// The URLs of Meta's callbacks to register in the App Dashboard for an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallbackUrls {
    pub deauthorize: String,
    pub data_deletion: String,
}

/// Everything the doctor found about one app.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub app_id: String,
    /// No finding is a problem.
    pub ok: bool,
    pub findings: Vec<Finding>,
    pub callback_urls: CallbackUrls,
}

impl Report {
    fn new(app_id: String, findings: Vec<Finding>, public_url: &str) -> Report {
        let (deauthorize, data_deletion) = meta::callback_urls(public_url, &app_id);
        Report {
            ok: !findings.iter().any(|f| f.severity == Severity::Problem),
            app_id,
            findings,
            callback_urls: CallbackUrls {
                deauthorize,
                data_deletion,
            },
        }
    }

    /// The messages of the findings that are problems.
    pub fn problems(&self) -> impl Iterator<Item = &str> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Problem)
            .map(|f| f.message.as_str())
    }
}

/// How far back the audit log tells which scopes were used.
pub const USE_WINDOW_DAYS: i64 = 90;
/// At most this many audit entries are read per action (the doctor stays quick on big logs).
const MAX_AUDIT_ROWS: usize = 100_000;

/// Checks one app: its row, the broker's configuration, two probes of Instagram, and how its
/// accounts used their scopes.
pub async fn run(state: &AppState, app_id: &str) -> Result<Report> {
    let row = match apps::get(state, app_id).await {
        Ok(row) => row,
        // Scopes Instagram no longer knows make the stored row unreadable: say which.
        Err(Error::Store(igbroker_store::StoreError::Corrupt {
            table: "apps",
            column: "scopes",
            value,
            ..
        })) => {
            return Ok(unreadable_scopes(
                app_id,
                &value,
                &state.config().public_url,
            ));
        }
        Err(e) => return Err(e),
    };
    let config = state.config();
    let loopback = config.instagram_is_loopback();
    let scopes = apps::scope_names(&row.scopes);
    let mut findings: Vec<Finding> = Vec::new();
    findings.extend(redirect_uri_https(&row.redirect_uri, loopback));
    findings.extend(redirect_uri_exact(
        &row.redirect_uri,
        &config.default_redirect_uri(),
    ));
    findings.extend(client_id_format(&row.client_id, loopback));
    findings.extend(webhook_url_https(row.webhook_url.as_deref()));

    let probe = match apps::client_secret(state, &row) {
        Ok(secret) => probe_exchange(state, &row, secret).await,
        Err(e) => {
            findings.push(Finding::problem(
                "client_secret_decrypts",
                format!("the stored client secret cannot be decrypted: {e}"),
            ));
            ExchangeProbe::Skipped
        }
    };
    findings.extend(exchange_probe(&probe));
    findings.extend(authorize_probe(
        &probe_authorize(state, &row, &scopes).await,
        &row.redirect_uri,
    ));
    findings.extend(scopes_unused(&scopes, &scope_use(state, &row.id).await?));
    let (sessions, accounts) = state
        .store()
        .count_failures_with_code(&row.id, APP_NOT_APPROVED_CODE)
        .await?;
    findings.push(not_approved_failures(sessions, accounts));
    let relay = state
        .store()
        .instagram_relay(&row.id)
        .await?
        .map(|r| RelaySetup {
            enabled: r.enabled,
            has_verify_token: r.verify_token_enc.is_some(),
            has_webhook_url: row.webhook_url.is_some(),
        });
    findings.extend(instagram_relay(relay, &config.public_url, &row.id));
    findings.push(Finding::note(
        "redirect_uri_registered",
        format!(
            "register exactly `{}` under OAuth redirect URIs (Instagram compares byte for byte, trailing slash included)",
            row.redirect_uri
        ),
    ));
    Ok(Report::new(row.id, findings, &config.public_url))
}

/// How long the dashboard shows a doctor's report before checking again (each check sends
/// two requests to Instagram and reads the app's audit log).
pub const REPORT_TTL_SECS: i64 = 300;

/// The dashboard's last report per app, kept while the app row is unchanged and for at most
/// [`REPORT_TTL_SECS`] on the state's clock, so that viewing an app page does not probe
/// Instagram each time. The CLI's `apps doctor` always checks afresh.
#[derive(Default)]
pub struct ReportCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, CachedReport>>,
}

struct CachedReport {
    row: String,
    checked_at: i64,
    report: Report,
}

/// A report and when it was made (unix seconds on the state's clock).
pub struct Checked {
    pub report: Report,
    pub checked_at: i64,
}

impl ReportCache {
    fn get(&self, app_id: &str, row: &str, now: i64) -> Option<Checked> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let c = entries.get(app_id)?;
        (c.row == row && now >= c.checked_at && now - c.checked_at < REPORT_TTL_SECS).then(|| {
            Checked {
                report: c.report.clone(),
                checked_at: c.checked_at,
            }
        })
    }

    fn put(&self, app_id: &str, row: String, checked_at: i64, report: Report) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.insert(
            app_id.to_owned(),
            CachedReport {
                row,
                checked_at,
                report,
            },
        );
    }
}

/// [`run`] for the dashboard: the cached report while the app is unchanged and younger than
/// [`REPORT_TTL_SECS`], else a fresh one (then kept).
pub async fn cached(state: &AppState, app_id: &str) -> Result<Checked> {
    let now = state.now();
    // The whole row (the sealed secret included, never its plaintext) as the cache's key:
    // any change to the app, through the API, the CLI or another replica, runs the checks again.
    let row = match apps::get(state, app_id).await {
        Ok(row) => format!("{row:?}"),
        Err(_) => {
            return run(state, app_id).await.map(|report| Checked {
                report,
                checked_at: now,
            });
        }
    };
    if let Some(hit) = state.doctor_reports().get(app_id, &row, now) {
        return Ok(hit);
    }
    let report = run(state, app_id).await?;
    state.doctor_reports().put(app_id, row, now, report.clone());
    Ok(Checked {
        report,
        checked_at: now,
    })
}

/// An app whose stored scopes include names Instagram retired (written before the broker
/// checked them): nothing else can be judged until they are replaced.
fn unreadable_scopes(app_id: &str, stored: &str, public_url: &str) -> Report {
    let names: Vec<String> = stored
        .split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let mut findings = scopes_retired(&names);
    findings.push(Finding::note(
        "scopes_retired",
        "the broker cannot use this app until its scopes column lists only instagram_business_* scopes; \
         other checks were skipped"
            .into(),
    ));
    Report::new(app_id.to_string(), findings, public_url)
}

/// A code exchange with a code that cannot exist: nothing is granted or burned, and the
/// answer says whether the app's id and secret passed.
async fn probe_exchange(
    state: &AppState,
    row: &AppRow,
    secret: instagram_api::ClientSecret,
) -> ExchangeProbe {
    let creds = instagram_api::AppCredentials {
        client_id: row.client_id.clone(),
        client_secret: secret,
    };
    let code = instagram_api::AuthorizationCode::new(format!(
        "igbroker-doctor-probe-{}",
        uuid::Uuid::new_v4().simple()
    ));
    match state
        .instagram()
        .exchange_code(&creds, &row.redirect_uri, &code)
        .await
    {
        Ok(_) => ExchangeProbe::Accepted,
        Err(instagram_api::Error::OAuth { message, .. }) => ExchangeProbe::Refused(message),
        // Graph-shaped refusals (some hosts answer that way) carry the message too.
        Err(instagram_api::Error::BadRequest { message, .. }) => ExchangeProbe::Refused(message),
        Err(e) => ExchangeProbe::Failed(e.to_string()),
    }
}

/// Opens the authorization page as a browser would, without following redirects, and keeps
/// the start of the page: its error text says what Instagram refused.
async fn probe_authorize(state: &AppState, row: &AppRow, scopes: &[String]) -> AuthorizeProbe {
    let url = state
        .instagram()
        .authorize_url(&instagram_api::AuthorizeRequest {
            client_id: row.client_id.clone(),
            redirect_uri: row.redirect_uri.clone(),
            scopes: scopes.to_vec(),
            state: String::new(),
            enable_fb_login: None,
            force_reauth: None,
        });
    let ig = &state.config().instagram;
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(ig.connect_timeout)
        .timeout(ig.request_timeout)
        .build()
    {
        Ok(c) => c,
        Err(e) => return AuthorizeProbe::Failed(format!("no HTTP client: {e}")),
    };
    match client.get(url).send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap_or_default();
            AuthorizeProbe::Page {
                status,
                text: text.chars().take(64 * 1024).collect(),
            }
        }
        // Without the URL: it carries the client id only, but keep errors uniform.
        Err(e) => AuthorizeProbe::Failed(e.without_url().to_string()),
    }
}

/// Which scopes the app's accounts were granted and which calls through the broker needed.
async fn scope_use(state: &AppState, app_id: &str) -> Result<ScopeUse> {
    let store = state.store();
    let mut usage = ScopeUse {
        window_days: USE_WINDOW_DAYS,
        ..ScopeUse::default()
    };
    let filter = igbroker_store::AccountFilter {
        app_id: Some(app_id.to_string()),
        ..Default::default()
    };
    let mut after: Option<String> = None;
    loop {
        let rows = store.list_accounts(&filter, after.as_deref(), 500).await?;
        for a in &rows {
            if a.status == igbroker_core::AccountStatus::Revoked {
                continue;
            }
            usage.accounts += 1;
            for s in &a.scopes {
                if !usage.granted.contains(s) {
                    usage.granted.push(*s);
                }
            }
        }
        if rows.len() < 500 {
            break;
        }
        after = rows.last().map(|r| r.id.clone());
    }
    let since = state.now() - USE_WINDOW_DAYS * 86_400;
    for action in ["graph.call", "token.read"] {
        let mut after_seq = 0;
        let mut seen = 0usize;
        while seen < MAX_AUDIT_ROWS {
            let rows = store
                .list_audit(None, Some(action), Some(since), after_seq, 1000)
                .await?;
            seen += rows.len();
            for r in rows.iter().filter(|r| r.app_id.as_deref() == Some(app_id)) {
                match action {
                    "token.read" => usage.tokens_read = true,
                    _ => {
                        let detail: serde_json::Value =
                            serde_json::from_str(&r.detail).unwrap_or_default();
                        let method = detail["method"].as_str().unwrap_or("GET");
                        let path = detail["path"].as_str().unwrap_or("");
                        usage.called.extend(required_for(method, path));
                    }
                }
            }
            match rows.last() {
                Some(last) if rows.len() == 1000 => after_seq = last.seq,
                _ => break,
            }
        }
    }
    usage.called.sort();
    usage.called.dedup();
    Ok(usage)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(f: &[Finding]) -> Vec<&'static str> {
        f.iter().map(|f| f.rule).collect()
    }

    #[test]
    fn redirect_must_be_https_except_loopback_against_a_sandbox() {
        assert!(redirect_uri_https("https://b.example/oauth/callback", false).is_none());
        let f = redirect_uri_https("http://b.example/oauth/callback", false).unwrap();
        assert_eq!(f.severity, Severity::Problem);
        assert!(f.message.contains("not https"), "{}", f.message);
        // Real Instagram refuses http even for localhost.
        assert!(redirect_uri_https("http://127.0.0.1:8080/oauth/callback", false).is_some());
        assert!(redirect_uri_https("http://127.0.0.1:8080/oauth/callback", true).is_none());
        assert!(redirect_uri_https("http://b.example/oauth/callback", true).is_some());
        assert!(redirect_uri_https("not a url", false).is_some());
    }

    #[test]
    fn redirect_must_be_the_brokers_callback_byte_for_byte() {
        let cb = "https://b.example/oauth/callback";
        assert!(redirect_uri_exact(cb, cb).is_none());
        let f = redirect_uri_exact("https://b.example/oauth/callback/", cb).unwrap();
        assert!(f.message.contains("trailing slash"), "{}", f.message);
        let f = redirect_uri_exact("https://other.example/cb", cb).unwrap();
        assert!(
            f.message.contains("not the broker's callback"),
            "{}",
            f.message
        );
    }

    #[test]
    fn client_id_must_be_numeric_for_real_instagram() {
        assert!(client_id_format("990602627938098", false).is_none());
        assert!(client_id_format("my-app", false).is_some());
        assert!(client_id_format("", false).is_some());
        assert!(client_id_format("sandbox_app_1", true).is_none());
    }

    #[test]
    fn retired_scopes_are_named_with_their_replacement() {
        let f = scopes_retired(&["user_profile".into(), "user_media".into()]);
        assert_eq!(f.len(), 2);
        assert!(f[0].message.contains("Basic Display"));
        assert!(f[0].message.contains("2024-12-04"));
        let f = scopes_retired(&["business_content_publish".into()]);
        assert_eq!(rules(&f), ["scopes_retired"]);
        assert!(f[0].message.contains("instagram_business_content_publish"));
        assert!(scopes_retired(&["instagram_business_basic".into()]).is_empty());
    }

    #[test]
    fn scopes_nobody_granted_or_used_are_flagged() {
        let requested: Vec<String> = [
            "instagram_business_basic",
            "instagram_business_content_publish",
            "instagram_business_manage_insights",
            "instagram_business_manage_comments",
        ]
        .map(String::from)
        .to_vec();
        let mut usage = ScopeUse {
            accounts: 2,
            granted: vec![
                InstagramScope::BusinessBasic,
                InstagramScope::ContentPublish,
                InstagramScope::ManageInsights,
            ],
            called: vec![
                InstagramScope::BusinessBasic,
                InstagramScope::ContentPublish,
            ],
            tokens_read: false,
            window_days: 90,
        };
        let f = scopes_unused(&requested, &usage);
        let text: Vec<&str> = f.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(f.len(), 2, "{text:?}");
        assert!(text[0].contains("manage_insights") && text[0].contains("no call"));
        assert!(text[1].contains("manage_comments") && text[1].contains("granted"));
        assert!(!text.iter().any(|t| t.contains("content_publish")));

        // Tokens read out: calls are unseen, only grants are judged.
        usage.tokens_read = true;
        let f = scopes_unused(&requested, &usage);
        assert_eq!(
            f.iter().filter(|f| f.severity == Severity::Warning).count(),
            1
        );
        assert!(f.iter().any(|f| f.severity == Severity::Note));

        usage.accounts = 0;
        let f = scopes_unused(&requested, &usage);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Note);
    }

    #[test]
    fn the_exchange_answer_tells_the_wrong_id_from_the_wrong_secret() {
        let f = exchange_probe(&ExchangeProbe::Refused("Invalid platform app".into()));
        assert_eq!(rules(&f), ["client_id_instagram_app"]);
        assert!(f[0].message.contains("Meta (Facebook) App ID"));
        let f = exchange_probe(&ExchangeProbe::Refused("Invalid Client Secret".into()));
        assert_eq!(rules(&f), ["client_secret_exchange"]);
        assert_eq!(f[0].severity, Severity::Problem);
        let f = exchange_probe(&ExchangeProbe::Refused(
            "Matching code was not found or was already used".into(),
        ));
        assert!(f.is_empty(), "{f:?}");
        let f = exchange_probe(&ExchangeProbe::Refused("Something else".into()));
        assert_eq!(f[0].severity, Severity::Warning);
        let f = exchange_probe(&ExchangeProbe::Failed("connection refused".into()));
        assert_eq!(f[0].severity, Severity::Warning);
        assert!(exchange_probe(&ExchangeProbe::Skipped).is_empty());
    }

    #[test]
    fn the_authorize_page_tells_an_unregistered_redirect() {
        let page = |status, text: &str| AuthorizeProbe::Page {
            status,
            text: text.into(),
        };
        let f = authorize_probe(
            &page(
                400,
                "Invalid Request: Request parameters are invalid: Invalid redirect_uri",
            ),
            "https://b.example/cb/",
        );
        assert_eq!(rules(&f), ["redirect_uri_registered"]);
        assert!(f[0].message.contains("trailing slash"));
        assert!(authorize_probe(&page(200, "<form>Allow</form>"), "x").is_empty());
        assert!(authorize_probe(&page(400, "Invalid platform app"), "x").is_empty());
        assert_eq!(
            authorize_probe(&page(503, ""), "x")[0].severity,
            Severity::Warning
        );
    }

    #[test]
    fn non_tester_failures_are_a_problem_naming_both_fixes() {
        let f = not_approved_failures(2, 1);
        assert_eq!(f.severity, Severity::Problem);
        assert!(f.message.contains("2 connect session(s) and 1 account(s)"));
        assert!(f.message.contains(APP_NOT_APPROVED_CODE));
        assert!(f.message.contains(APP_NOT_APPROVED), "{}", f.message);
        assert_eq!(not_approved_failures(0, 1).severity, Severity::Problem);
        let f = not_approved_failures(0, 0);
        assert_eq!(f.severity, Severity::Note);
        assert!(f.message.contains("testers"));
    }

    #[test]
    fn a_relay_without_a_webhook_url_drops_every_event() {
        let url = "https://b.example/";
        assert!(instagram_relay(None, url, "app_1").is_empty());
        let relay = RelaySetup {
            enabled: true,
            has_verify_token: true,
            has_webhook_url: false,
        };
        let f = instagram_relay(Some(relay), url, "app_1");
        assert_eq!(rules(&f), ["instagram_webhooks_relay"; 2]);
        assert_eq!(f[0].severity, Severity::Problem);
        assert!(f[0].message.contains("dropped"));
        assert!(
            f[1].message
                .contains("`https://b.example/meta/webhooks/app_1`"),
            "{}",
            f[1].message
        );
        let f = instagram_relay(
            Some(RelaySetup {
                has_webhook_url: true,
                ..relay
            }),
            url,
            "app_1",
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Note);
        let off = RelaySetup::default();
        assert!(instagram_relay(Some(off), url, "app_1").is_empty());
    }

    #[test]
    fn webhooks_need_https_off_loopback() {
        assert!(webhook_url_https(Some("http://hooks.example/x")).is_some());
        assert!(webhook_url_https(Some("https://hooks.example/x")).is_none());
        assert!(webhook_url_https(Some("http://127.0.0.1:9/x")).is_none());
        assert!(webhook_url_https(None).is_none());
    }
}
