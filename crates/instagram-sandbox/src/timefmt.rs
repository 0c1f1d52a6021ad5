//! Time formats Meta uses on the wire: the Pacific-time stamp inside "Session has expired on …"
//! messages and the `+0000` ISO-8601 form of Graph timestamps.

use time::{Date, Month, OffsetDateTime, UtcOffset, Weekday};

/// US daylight time runs from the second Sunday of March, 10:00 UTC (02:00 PST), to the first
/// Sunday of November, 09:00 UTC (02:00 PDT).
fn pacific_is_daylight(at: OffsetDateTime) -> bool {
    let year = at.year();
    let (Some(start), Some(end)) = (
        nth_sunday(year, Month::March, 2).and_then(|d| d.with_hms(10, 0, 0).ok()),
        nth_sunday(year, Month::November, 1).and_then(|d| d.with_hms(9, 0, 0).ok()),
    ) else {
        return false;
    };
    let utc = at.to_offset(UtcOffset::UTC);
    let naive = Date::from_calendar_date(utc.year(), utc.month(), utc.day())
        .ok()
        .and_then(|d| d.with_hms(utc.hour(), utc.minute(), utc.second()).ok());
    naive.is_some_and(|n| n >= start && n < end)
}

fn nth_sunday(year: i32, month: Month, n: u8) -> Option<Date> {
    let first = Date::from_calendar_date(year, month, 1).ok()?;
    let to_sunday = (7 - first.weekday().number_days_from_sunday()) % 7;
    Date::from_calendar_date(year, month, 1 + to_sunday + 7 * (n - 1)).ok()
}

/// `Thursday, 10-Dec-15 04:00:00 PST`
pub fn facebook_session_time(unix: i64) -> String {
    let utc = OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let (hours, zone) = if pacific_is_daylight(utc) {
        (-7, "PDT")
    } else {
        (-8, "PST")
    };
    let offset = UtcOffset::from_hms(hours, 0, 0).unwrap_or(UtcOffset::UTC);
    let t = utc.to_offset(offset);
    format!(
        "{}, {:02}-{}-{:02} {:02}:{:02}:{:02} {zone}",
        weekday_name(t.weekday()),
        t.day(),
        month_abbrev(t.month()),
        t.year().rem_euclid(100),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Graph timestamps: `2026-05-02T10:15:00+0000`.
pub fn graph_timestamp(unix: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+0000",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// RFC 3339 in UTC, for the control API.
pub fn rfc3339(unix: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn weekday_name(d: Weekday) -> &'static str {
    match d {
        Weekday::Monday => "Monday",
        Weekday::Tuesday => "Tuesday",
        Weekday::Wednesday => "Wednesday",
        Weekday::Thursday => "Thursday",
        Weekday::Friday => "Friday",
        Weekday::Saturday => "Saturday",
        Weekday::Sunday => "Sunday",
    }
}

fn month_abbrev(m: Month) -> &'static str {
    match m {
        Month::January => "Jan",
        Month::February => "Feb",
        Month::March => "Mar",
        Month::April => "Apr",
        Month::May => "May",
        Month::June => "Jun",
        Month::July => "Jul",
        Month::August => "Aug",
        Month::September => "Sep",
        Month::October => "Oct",
        Month::November => "Nov",
        Month::December => "Dec",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_meta_sample() {
        // Instagram's documented sample: Thursday, 10-Dec-15 04:00:00 PST == 2015-12-10T12:00:00Z.
        assert_eq!(
            facebook_session_time(1_449_748_800),
            "Thursday, 10-Dec-15 04:00:00 PST"
        );
        // 2026-07-01T19:00:00Z is noon PDT.
        assert_eq!(
            facebook_session_time(1_782_932_400),
            "Wednesday, 01-Jul-26 12:00:00 PDT"
        );
        assert_eq!(graph_timestamp(1_777_716_900), "2026-05-02T10:15:00+0000");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
