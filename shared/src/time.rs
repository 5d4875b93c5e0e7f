//! Timestamps as the API and the tables write them: RFC 3339, UTC, milliseconds, `Z`.
//! One fixed width, so stored strings sort in time order.

use chrono::{DateTime, SecondsFormat, Utc};

pub type Timestamp = DateTime<Utc>;

pub fn now() -> Timestamp {
    // Truncate to what we store, so a value read back equals the value written.
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

/// Drops what is finer than a millisecond, the precision we store.
pub fn truncate_to_millis(ts: Timestamp) -> Timestamp {
    DateTime::from_timestamp_millis(ts.timestamp_millis()).unwrap_or(ts)
}

pub fn format(ts: &Timestamp) -> String {
    ts.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn parse(text: &str) -> Option<Timestamp> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatted_timestamps_sort_like_the_times() {
        let a = parse("2026-06-23T09:12:44.120Z").unwrap();
        let b = parse("2026-06-23T10:00:00+02:00").unwrap();
        assert_eq!(format(&a), "2026-06-23T09:12:44.120Z");
        assert_eq!(format(&b), "2026-06-23T08:00:00.000Z");
        assert!(format(&b) < format(&a));
        assert!(parse("2026-06-23").is_none());
        let n = now();
        assert_eq!(
            parse(&format(&n)),
            Some(n),
            "now() must survive a round trip through storage"
        );
    }
}

/// `#[serde(with = "crate::time::millis")]`: a timestamp in our fixed format.
pub mod millis {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::Timestamp;

    pub fn serialize<S: Serializer>(ts: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(ts))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(d)?;
        super::parse(&text).ok_or_else(|| serde::de::Error::custom("not an RFC 3339 timestamp"))
    }
}

/// `#[serde(with = "crate::time::millis_opt")]`: an optional timestamp, null when absent.
pub mod millis_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::Timestamp;

    pub fn serialize<S: Serializer>(ts: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match ts {
            Some(ts) => s.serialize_str(&super::format(ts)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) => super::parse(&text)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom("not an RFC 3339 timestamp")),
        }
    }
}
