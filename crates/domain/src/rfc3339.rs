//! Times in JSON as chrono writes and reads them (RFC 3339, `Z`, the fewest
//! fractional digits that hold the time), faster: chrono's own `Serialize`
//! hands JSON a dozen fragments to escape one by one, and its `Deserialize`
//! goes through its general parser. Each was a tenth or more of a 200-item
//! listing's answer (links, a folder's files).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serializer};

/// Writes `t` whole, then escapes it once.
pub(crate) fn time<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// [`time`], or `null`.
pub(crate) fn optional_time<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => time(t, s),
        None => s.serialize_none(),
    }
}

/// Reads a time by RFC 3339's own parser (what every stored time is), and
/// by chrono's relaxed one otherwise, so that anything chrono reads is read.
pub(crate) fn read_time<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
    match DateTime::parse_from_rfc3339(&text) {
        Ok(t) => Ok(t.to_utc()),
        Err(_) => text.parse::<DateTime<Utc>>().map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn samples() -> Vec<DateTime<Utc>> {
        let whole = DateTime::parse_from_rfc3339("2026-11-28T05:07:11Z").unwrap().to_utc();
        vec![
            whole,
            whole + Duration::milliseconds(120),
            whole + Duration::microseconds(123_456),
            whole + Duration::nanoseconds(123_456_789),
            Utc::now(),
        ]
    }

    #[test]
    fn times_are_written_as_chrono_writes_them() {
        for t in samples() {
            let mut out = Vec::new();
            time(&t, &mut serde_json::Serializer::new(&mut out)).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&t).unwrap());
            for v in [Some(t), None] {
                let mut out = Vec::new();
                optional_time(&v, &mut serde_json::Serializer::new(&mut out)).unwrap();
                assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&v).unwrap());
            }
        }
    }

    #[test]
    fn times_are_read_as_chrono_reads_them() {
        let read = |json: &str| read_time(&mut serde_json::Deserializer::from_str(json));
        for t in samples() {
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(read(&json).unwrap(), t);
        }
        // What chrono's relaxed reading accepts, and what neither accepts.
        for json in [r#""2026-11-28T06:07:11+01:00""#, r#""2026-11-28 05:07:11Z""#, r#""2026-11-28t05:07:11.5z""#] {
            let chrono: DateTime<Utc> = serde_json::from_str(json).unwrap();
            assert_eq!(read(json).unwrap(), chrono, "{json}");
        }
        for json in [r#""2026-11-28""#, r#""yesterday""#, "12"] {
            assert!(read(json).is_err(), "{json}");
            assert!(serde_json::from_str::<DateTime<Utc>>(json).is_err(), "{json}");
        }
    }
}
