//! Fault injection: per path (and optionally method), make the sandbox answer with an HTTP
//! status, a Graph error, added latency or a dropped connection, before the call takes effect
//! or after it (the call happened upstream, then the answer was lost). `container_error`
//! makes media containers created on the path end in `ERROR`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    Status,
    GraphError,
    Latency,
    Reset,
    ContainerError,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    #[default]
    Before,
    After,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultSpec {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    pub kind: FaultKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subcode: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_transient: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    #[serde(default)]
    pub phase: Phase,
}

#[derive(Debug, Clone)]
pub struct Fault {
    pub id: String,
    pub spec: FaultSpec,
    remaining: Option<u32>,
}

#[derive(Default)]
pub struct FaultTable {
    faults: Vec<Fault>,
    next_id: u64,
}

/// `*` matches one path segment; otherwise segments must be equal.
fn path_matches(pattern: &str, path: &str) -> bool {
    let pat: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
    let got: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    pat.len() == got.len() && pat.iter().zip(&got).all(|(p, g)| *p == "*" || p == g)
}

impl FaultTable {
    pub fn add(&mut self, spec: FaultSpec) -> String {
        self.next_id += 1;
        let id = format!("fault_{}", self.next_id);
        self.faults.push(Fault {
            id: id.clone(),
            remaining: spec.count,
            spec,
        });
        id
    }

    pub fn remove(&mut self, id: &str) -> bool {
        let before = self.faults.len();
        self.faults.retain(|f| f.id != id);
        before != self.faults.len()
    }

    pub fn clear(&mut self) {
        self.faults.clear();
    }

    pub fn list(&self) -> Vec<Fault> {
        self.faults.clone()
    }

    pub fn is_empty(&self) -> bool {
        self.faults.is_empty()
    }

    /// The faults that fire on this call, each consuming one of its `count`.
    pub fn take(&mut self, method: &str, path: &str, kinds: &[FaultKind]) -> Vec<Fault> {
        let mut fired = Vec::new();
        for f in &mut self.faults {
            if !kinds.contains(&f.spec.kind)
                || !path_matches(&f.spec.path, path)
                || f.spec
                    .method
                    .as_deref()
                    .is_some_and(|m| !m.eq_ignore_ascii_case(method))
                || f.remaining == Some(0)
            {
                continue;
            }
            if let Some(p) = f.spec.probability
                && rand::random::<f64>() >= p
            {
                continue;
            }
            if let Some(n) = &mut f.remaining {
                *n -= 1;
            }
            fired.push(f.clone());
        }
        self.faults.retain(|f| f.remaining != Some(0));
        fired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(path: &str, kind: FaultKind, count: Option<u32>) -> FaultSpec {
        FaultSpec {
            path: path.into(),
            method: None,
            kind,
            status: None,
            code: None,
            subcode: None,
            is_transient: None,
            message: None,
            latency_ms: None,
            count,
            probability: None,
            phase: Phase::Before,
        }
    }

    #[test]
    fn count_is_consumed_and_wildcards_match() {
        let mut t = FaultTable::default();
        t.add(spec("/*/media", FaultKind::Status, Some(2)));
        let kinds = [FaultKind::Status];
        assert_eq!(t.take("GET", "/me/media", &kinds).len(), 1);
        assert_eq!(t.take("GET", "/me", &kinds).len(), 0);
        assert_eq!(t.take("POST", "/1784/media", &kinds).len(), 1);
        assert!(t.is_empty());
    }
}
