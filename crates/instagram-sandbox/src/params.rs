//! Request parameters the way Graph reads them: from the query string, and from a form,
//! multipart or JSON body, all merged into one map (the body wins over the query).

use std::collections::HashMap;

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{HeaderMap, Method, Uri, header};
use serde_json::Value;

/// Bodies larger than this are refused rather than buffered.
pub const MAX_BODY: usize = 1 << 20;

#[derive(Debug, Default, Clone)]
pub struct Params {
    map: HashMap<String, String>,
}

#[derive(Debug, Clone)]
pub enum ParamError {
    TooLarge,
    Malformed(String),
}

impl Params {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    /// A parameter that is present and not blank.
    pub fn nonempty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.trim().is_empty())
    }

    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.map.insert(key.into(), value.into());
    }

    pub fn from_query(uri: &Uri) -> Self {
        let mut p = Self::default();
        if let Some(q) = uri.query() {
            p.extend_urlencoded(q.as_bytes());
        }
        p
    }

    fn extend_urlencoded(&mut self, bytes: &[u8]) {
        for (k, v) in url::form_urlencoded::parse(bytes) {
            self.map.insert(k.into_owned(), v.into_owned());
        }
    }

    fn extend_json(&mut self, bytes: &[u8]) -> Result<(), ParamError> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| ParamError::Malformed(format!("Invalid JSON body: {e}")))?;
        let Value::Object(obj) = value else {
            return Err(ParamError::Malformed(
                "The JSON body must be an object".into(),
            ));
        };
        for (k, v) in obj {
            let text = match v {
                Value::String(s) => s,
                Value::Null => continue,
                // `children: ["1","2"]` and `scope: ["a","b"]` mean the comma-joined list.
                Value::Array(items) => items
                    .iter()
                    .map(|i| match i {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            self.map.insert(k, text);
        }
        Ok(())
    }
}

pub struct ParsedRequest {
    pub method: Method,
    pub headers: HeaderMap,
    pub params: Params,
}

/// Reads the whole request. Never fails on content it does not understand: such a body is
/// simply ignored, as Graph ignores it.
pub async fn read_request(req: Request) -> Result<ParsedRequest, ParamError> {
    let method = req.method().clone();
    let mut params = Params::from_query(req.uri());
    let ctype = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();

    if ctype.starts_with("multipart/form-data") {
        let headers = req.headers().clone();
        let mut mp = Multipart::from_request(req, &())
            .await
            .map_err(|e| ParamError::Malformed(e.body_text()))?;
        let mut total = 0usize;
        loop {
            match mp.next_field().await {
                Ok(Some(field)) => {
                    let name = field.name().map(str::to_owned);
                    let is_file = field.file_name().is_some();
                    let bytes = field
                        .bytes()
                        .await
                        .map_err(|e| ParamError::Malformed(e.body_text()))?;
                    total += bytes.len();
                    if total > MAX_BODY {
                        return Err(ParamError::TooLarge);
                    }
                    if let (Some(name), false) = (name, is_file) {
                        params.insert(name, String::from_utf8_lossy(&bytes).into_owned());
                    }
                }
                Ok(None) => break,
                Err(e) => return Err(ParamError::Malformed(e.body_text())),
            }
        }
        Ok(ParsedRequest {
            method,
            headers,
            params,
        })
    } else {
        let (parts, body) = req.into_parts();
        let body = axum::body::to_bytes(body, MAX_BODY)
            .await
            .map_err(|_| ParamError::TooLarge)?;
        if !body.is_empty() {
            if ctype.starts_with("application/json") {
                params.extend_json(&body)?;
            } else if ctype.starts_with("application/x-www-form-urlencoded") || ctype.is_empty() {
                params.extend_urlencoded(&body);
            }
        }
        Ok(ParsedRequest {
            method,
            headers: parts.headers,
            params,
        })
    }
}
