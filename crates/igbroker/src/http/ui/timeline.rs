//! The SVG timeline of a token's life, laid out from the account's audit entries:
//! when it was issued, each refresh, each failure, the revocation and the expiry.
//! Pure layout, so that it is tested without a browser.

use igbroker_core::AccountStatus;
use igbroker_store::{AccountRow, AuditRow};

use crate::util::rfc3339;

/// The audit actions the timeline draws.
pub const ACTIONS: &[&str] = &[
    "account.connected",
    "account.imported",
    "token.refreshed",
    "account.reauth_required",
    "account.revoked",
    "account.suspended",
    "account.resumed",
];

pub struct Mark {
    pub x: i64,
    /// `start`, `middle` or `end`: labels near an edge grow inwards.
    pub anchor: &'static str,
    pub label_y: i64,
    pub label: String,
    /// `issued`, `refreshed`, `failure`, `revoked` or `expiry`: the colour.
    pub class: &'static str,
    pub at: String,
    pub note: String,
    unix: i64,
}

pub struct Span {
    pub x: i64,
    pub y: i64,
    pub w: i64,
    pub class: &'static str,
}

pub struct Tick {
    pub x: i64,
    pub label: String,
}

pub struct Timeline {
    pub width: i64,
    pub height: i64,
    pub left: i64,
    pub right: i64,
    pub axis_y: i64,
    pub marks: Vec<Mark>,
    pub spans: Vec<Span>,
    pub ticks: Vec<Tick>,
    pub now_x: Option<i64>,
    pub summary: String,
}

fn mark_of(row: &AuditRow) -> Option<(&'static str, String)> {
    let detail: serde_json::Value = serde_json::from_str(&row.detail).unwrap_or_default();
    let reason = detail
        .get("reason")
        .and_then(|r| r.as_str())
        .map(|r| r.replace('_', " "))
        .unwrap_or_default();
    Some(match row.action.as_str() {
        "account.connected" => ("issued", "Connected".to_string()),
        "account.imported" => ("issued", "Imported".to_string()),
        "token.refreshed" => ("refreshed", "Refreshed".to_string()),
        "account.reauth_required" => ("failure", "Re-auth required".to_string()),
        "account.suspended" => ("failure", "Suspended".to_string()),
        "account.resumed" => ("refreshed", "Resumed".to_string()),
        "account.revoked" => ("revoked", "Revoked".to_string()),
        _ => return None,
    })
    .map(|(class, label)| {
        if reason.is_empty() {
            (class, label)
        } else {
            (class, format!("{label} ({reason})"))
        }
    })
}

/// Lays out `events` (any order) for `acc` at time `now`.
pub fn layout(acc: &AccountRow, events: &[AuditRow], now: i64) -> Timeline {
    let (width, height, left, right, axis_y) = (900i64, 150i64, 50i64, 850i64, 76i64);
    let mut points: Vec<(i64, &'static str, String, String)> = Vec::new();
    let mut sorted: Vec<&AuditRow> = events.iter().collect();
    sorted.sort_by_key(|r| r.seq);
    for r in &sorted {
        if let Some((class, label)) = mark_of(r) {
            let note = if r.actor.is_empty() {
                String::new()
            } else {
                format!("by {}", r.actor)
            };
            points.push((r.at, class, label, note));
        }
    }
    // A refresh that keeps failing is not audited entry by entry: the account says so.
    if acc.refresh_failing || (acc.last_error.is_some() && acc.status == AccountStatus::Active) {
        points.push((
            acc.updated_at,
            "failure",
            "Refresh failing".to_string(),
            acc.last_error.clone().unwrap_or_default(),
        ));
    }
    if let Some(exp) = acc.expires_at
        && acc.status != AccountStatus::Revoked
    {
        let label = if exp <= now { "Expired" } else { "Expires" };
        points.push((exp, "expiry", label.to_string(), String::new()));
    }
    points.sort_by_key(|p| p.0);

    let t0 = points
        .first()
        .map(|p| p.0)
        .unwrap_or(acc.created_at)
        .min(acc.created_at);
    let mut t1 = points.last().map(|p| p.0).unwrap_or(now).max(now);
    if t1 <= t0 {
        t1 = t0 + 1;
    }
    let x_of = |t: i64| -> i64 {
        let span = (t1 - t0) as f64;
        left + (((t - t0) as f64 / span) * (right - left) as f64).round() as i64
    };

    // The token's life: from each issue or refresh to the next, the last to its expiry
    // or revocation.
    let mut spans = Vec::new();
    let issues: Vec<i64> = points
        .iter()
        .filter(|p| p.1 == "issued" || p.1 == "refreshed")
        .map(|p| p.0)
        .collect();
    let end = points
        .iter()
        .find(|p| p.1 == "revoked")
        .map(|p| p.0)
        .or(acc.expires_at)
        .unwrap_or(now);
    for (i, start) in issues.iter().enumerate() {
        let stop = issues.get(i + 1).copied().unwrap_or(end).max(*start);
        let class = if i + 1 == issues.len() && acc.status != AccountStatus::Active {
            "expired"
        } else if i + 1 == issues.len() && acc.refresh_failing {
            "failing"
        } else {
            "valid"
        };
        let (x, x2) = (x_of(*start), x_of(stop));
        spans.push(Span {
            x,
            y: axis_y - 5,
            w: (x2 - x).max(1),
            class,
        });
    }

    let marks: Vec<Mark> = points
        .into_iter()
        .enumerate()
        .map(|(i, (t, class, label, note))| Mark {
            anchor: match x_of(t) {
                x if x < left + 80 => "start",
                x if x > right - 80 => "end",
                _ => "middle",
            },
            x: x_of(t),
            label_y: if i % 2 == 0 { axis_y - 16 } else { axis_y + 26 },
            label,
            class,
            at: rfc3339(t),
            note,
            unix: t,
        })
        .collect();
    let ticks = (0..=4)
        .map(|i| {
            let t = t0 + (t1 - t0) * i / 4;
            // Days for a long life, hours and minutes for a short one.
            let full = rfc3339(t);
            let label = if t1 - t0 < 3 * 86_400 {
                full.get(5..16).unwrap_or("").replace('T', " ")
            } else {
                full.get(..10).unwrap_or("").to_string()
            };
            Tick { x: x_of(t), label }
        })
        .collect();
    let refreshes = marks.iter().filter(|m| m.class == "refreshed").count();
    let failures = marks.iter().filter(|m| m.class == "failure").count();
    let first = marks
        .iter()
        .find(|m| m.class == "issued")
        .map(|m| format!("issued {}", m.at))
        .unwrap_or_else(|| "no issue recorded".into());
    let last = marks
        .iter()
        .rev()
        .find(|m| m.class == "expiry" || m.class == "revoked")
        .map(|m| format!("{} {}", m.label.to_lowercase(), m.at))
        .unwrap_or_default();
    let summary = format!(
        "Token {first}; refreshed {refreshes} time{}; {failures} failure{}{}{}.",
        if refreshes == 1 { "" } else { "s" },
        if failures == 1 { "" } else { "s" },
        if last.is_empty() { "" } else { "; " },
        last
    );
    let now_x = (now >= t0 && now <= t1).then(|| x_of(now));
    Timeline {
        width,
        height,
        left,
        right,
        axis_y,
        marks,
        spans,
        ticks,
        now_x,
        summary,
    }
}

impl Timeline {
    /// The marks' times, in drawing order (for tests).
    pub fn times(&self) -> Vec<i64> {
        self.marks.iter().map(|m| m.unix).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(status: &str, expires: i64) -> AccountRow {
        AccountRow {
            id: "acc_1".into(),
            app_id: "app_1".into(),
            end_user: String::new(),
            ig_user_id: "1".into(),
            ig_scoped_id: "2".into(),
            username: Some("shop".into()),
            scopes: Vec::new(),
            status: AccountStatus::parse(status).unwrap(),
            status_reason: None,
            token_enc: None,
            token_key_version: None,
            issued_at: Some(1_000),
            expires_at: Some(expires),
            refreshed_at: None,
            next_refresh_at: None,
            refresh_attempts: 0,
            refresh_failing: false,
            backoff_until: None,
            last_error: None,
            lease_owner: None,
            lease_until: None,
            created_at: 1_000,
            updated_at: 1_000,
        }
    }

    fn entry(seq: i64, at: i64, action: &str) -> AuditRow {
        AuditRow {
            seq,
            id: format!("aud_{seq}"),
            at,
            actor: "api_key:key_1".into(),
            action: action.into(),
            account_id: Some("acc_1".into()),
            app_id: Some("app_1".into()),
            detail: "{}".into(),
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn marks_follow_the_audit_in_time_order_within_the_axis() {
        let acc = account("active", 9_000);
        let events = vec![
            entry(3, 5_000, "token.refreshed"),
            entry(1, 1_000, "account.connected"),
            entry(2, 2_000, "token.read"),
        ];
        let t = layout(&acc, &events, 3_000);
        let classes: Vec<&str> = t.marks.iter().map(|m| m.class).collect();
        assert_eq!(classes, ["issued", "refreshed", "expiry"]);
        assert_eq!(t.times(), [1_000, 5_000, 9_000]);
        assert_eq!(t.marks[0].x, t.left);
        assert_eq!(t.marks[2].x, t.right);
        assert!(t.marks.windows(2).all(|w| w[0].x < w[1].x));
        assert_eq!(t.spans.len(), 2, "one span per issued token");
        assert!(t.summary.contains("refreshed 1 time;"), "{}", t.summary);
        assert!(t.now_x.is_some_and(|x| x > t.left && x < t.right));
    }

    #[test]
    fn a_revoked_token_ends_at_the_revocation_and_shows_no_expiry() {
        let acc = account("revoked", 9_000);
        let events = vec![
            entry(1, 1_000, "account.connected"),
            entry(2, 4_000, "account.revoked"),
        ];
        let t = layout(&acc, &events, 6_000);
        assert!(t.marks.iter().all(|m| m.class != "expiry"));
        assert_eq!(t.marks.last().map(|m| m.class), Some("revoked"));
        assert_eq!(t.spans[0].class, "expired");
        let revoked_x = t.marks[1].x;
        assert_eq!(t.spans[0].x + t.spans[0].w, revoked_x);
    }

    #[test]
    fn a_failing_refresh_is_drawn_from_the_account() {
        let mut acc = account("active", 9_000);
        acc.refresh_failing = true;
        acc.last_error = Some("upstream said no".into());
        acc.updated_at = 4_000;
        let t = layout(&acc, &[entry(1, 1_000, "account.connected")], 5_000);
        let failure = t.marks.iter().find(|m| m.class == "failure");
        assert!(failure.is_some_and(|m| m.note == "upstream said no"));
        assert!(t.summary.contains("1 failure;"), "{}", t.summary);
    }
}
