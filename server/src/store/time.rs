//! Stored times: milliseconds since the epoch in the database, LeanCloud's ISO form (`2024-01-01T00:00:00.000Z`)
//! on the wire. Both backends and the rules above them use these.

/// A stored time (ms since the epoch) as LeanCloud's ISO form, `2024-01-01T00:00:00.000Z`.
pub fn iso_millis(ms: i64) -> String {
    match chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => "1970-01-01T00:00:00.000Z".to_string(),
    }
}

pub fn parse_iso_millis(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}
