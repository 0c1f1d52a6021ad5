//! The log of calls received, a bounded ring buffer read through `GET /_sandbox/calls`.
//! Entries carry the path without its query string, so no token, code or secret is kept.

use std::collections::VecDeque;

use serde::Serialize;

pub const CAPACITY: usize = 2000;

/// Who a call was made as, attached by handlers to their responses for the log.
#[derive(Debug, Clone, Default)]
pub struct CallInfo {
    pub app_id: Option<String>,
    pub user_id: Option<String>,
    pub token_sha256: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CallEntry {
    pub seq: u64,
    /// RFC 3339, filled in when the log is read (formatting on every call is wasted work).
    pub at: String,
    #[serde(skip)]
    pub at_unix: i64,
    pub method: String,
    pub path: String,
    /// The path as matched: version, duplicate and trailing slashes removed.
    pub route: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// SHA-256 (hex) of the access token the call carried, so tests can tell tokens apart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<String>,
}

pub struct CallLog {
    entries: VecDeque<CallEntry>,
    capacity: usize,
    next_seq: u64,
    /// Calls per route and status since start: load tests count beyond the ring.
    counts: std::collections::BTreeMap<String, std::collections::BTreeMap<u16, u64>>,
}

impl CallLog {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: VecDeque::with_capacity(capacity.min(256)),
            capacity,
            next_seq: 1,
            counts: std::collections::BTreeMap::new(),
        }
    }

    pub fn push(&mut self, mut entry: CallEntry) {
        entry.seq = self.next_seq;
        self.next_seq += 1;
        // Look up before inserting: the route string is only cloned the first time it is seen.
        if !self.counts.contains_key(&entry.route) {
            self.counts.insert(entry.route.clone(), Default::default());
        }
        if let Some(per_status) = self.counts.get_mut(&entry.route) {
            *per_status.entry(entry.status).or_default() += 1;
        }
        if self.entries.len() == self.capacity {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
    }

    pub fn query(
        &self,
        path: Option<&str>,
        since_unix: Option<i64>,
        after_seq: Option<u64>,
    ) -> Vec<CallEntry> {
        self.entries
            .iter()
            .filter(|e| path.is_none_or(|p| e.path == p || e.route == p))
            .filter(|e| since_unix.is_none_or(|s| e.at_unix >= s))
            .filter(|e| after_seq.is_none_or(|s| e.seq > s))
            .map(|e| CallEntry {
                at: crate::timefmt::rfc3339(e.at_unix),
                ..e.clone()
            })
            .collect()
    }

    pub fn counts(
        &self,
    ) -> &std::collections::BTreeMap<String, std::collections::BTreeMap<u16, u64>> {
        &self.counts
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }
}
