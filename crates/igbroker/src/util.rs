use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::service::Error;

/// A comma-joined list as stored (API key scopes and apps); blanks around items are dropped.
pub fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

/// RFC 3339 in UTC with a `Z`, to the second: the one time format of the API.
pub fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}

pub fn parse_rfc3339(s: &str) -> Result<i64, Error> {
    OffsetDateTime::parse(s, &Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| {
            Error::Invalid(format!(
                "`{s}` is not an RFC 3339 time like 2026-11-29T05:20:34Z"
            ))
        })
}

#[derive(Debug, Deserialize, Default)]
pub struct PageQuery {
    /// Kept as text: inside a `#[serde(flatten)]` query every value arrives as
    /// a string, and a number field would refuse all of them.
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn limit(&self) -> Result<i64, Error> {
        let Some(text) = self.limit.as_deref() else {
            return Ok(50);
        };
        match text.trim().parse::<i64>() {
            Ok(n) if (1..=500).contains(&n) => Ok(n),
            _ => Err(Error::Invalid(format!(
                "limit `{text}` is not allowed: use a whole number from 1 to 500"
            ))),
        }
    }

    /// Cursors are opaque to callers; inside they are the last id seen.
    pub fn after(&self) -> Result<Option<String>, Error> {
        match &self.cursor {
            None => Ok(None),
            Some(c) if c.is_empty() => Ok(None),
            Some(c) => URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .map(Some)
                .ok_or_else(|| Error::Invalid("cursor is not one this API returned".into())),
        }
    }
}

/// One page of a list: `next_cursor` is absent on the last page.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// Pass it back as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

pub fn encode_cursor(last: &str) -> String {
    URL_SAFE_NO_PAD.encode(last.as_bytes())
}

/// Splits the extra row fetched to learn whether another page follows.
pub fn page<T>(
    mut rows: Vec<T>,
    limit: i64,
    key: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let limit = usize::try_from(limit).unwrap_or(50);
    if rows.len() > limit {
        rows.truncate(limit);
        let next = rows.last().map(|r| encode_cursor(&key(r)));
        (rows, next)
    } else {
        (rows, None)
    }
}
