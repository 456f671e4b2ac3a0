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
    d.deserialize_str(TimeVisitor)
}

/// Reads the text where the deserializer holds it, copying nothing.
struct TimeVisitor;

impl serde::de::Visitor<'_> for TimeVisitor {
    type Value = DateTime<Utc>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an RFC 3339 date and time")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
        match DateTime::parse_from_rfc3339(text) {
            Ok(t) => Ok(t.to_utc()),
            Err(_) => text.parse::<DateTime<Utc>>().map_err(E::custom),
        }
    }
}

/// [`read_time`], or `null`; a field that uses it needs `#[serde(default)]`
/// to be read as `None` when it is missing, as a plain `Option` is.
pub(crate) fn read_optional_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    #[derive(Deserialize)]
    struct Time(#[serde(deserialize_with = "read_time")] DateTime<Utc>);
    Ok(Option::<Time>::deserialize(d)?.map(|Time(t)| t))
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
        // The last one escaped: serde_json hands it over unescaped, in a buffer of its own.
        for json in [
            r#""2026-11-28T06:07:11+01:00""#,
            r#""2026-11-28 05:07:11Z""#,
            r#""2026-11-28t05:07:11.5z""#,
            r#""2026-11-28T05:07:11\u005a""#,
        ] {
            let chrono: DateTime<Utc> = serde_json::from_str(json).unwrap();
            assert_eq!(read(json).unwrap(), chrono, "{json}");
        }
        for json in [r#""2026-11-28""#, r#""yesterday""#, "12"] {
            assert!(read(json).is_err(), "{json}");
            assert!(serde_json::from_str::<DateTime<Utc>>(json).is_err(), "{json}");
        }
    }

    #[test]
    fn optional_times_are_read_as_plain_options_are() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct Ours(#[serde(default, deserialize_with = "read_optional_time")] Option<DateTime<Utc>>);
        #[derive(Deserialize)]
        struct Record {
            #[serde(default, deserialize_with = "read_optional_time")]
            at: Option<DateTime<Utc>>,
        }
        for t in samples() {
            let json = serde_json::to_string(&Some(t)).unwrap();
            assert_eq!(serde_json::from_str::<Ours>(&json).unwrap(), Ours(Some(t)));
            let record: Record = serde_json::from_str(&format!(r#"{{"at":{json}}}"#)).unwrap();
            assert_eq!(record.at, Some(t));
        }
        assert_eq!(serde_json::from_str::<Ours>("null").unwrap(), Ours(None));
        assert_eq!(serde_json::from_str::<Record>(r#"{"at":null}"#).unwrap().at, None);
        assert_eq!(serde_json::from_str::<Record>("{}").unwrap().at, None, "a missing field is None");
        assert!(serde_json::from_str::<Record>(r#"{"at":"yesterday"}"#).is_err());
    }

    #[test]
    fn stored_records_read_their_times_by_rfc3339() {
        // A link as stored, its times written by chrono: read back the same,
        // and an old document without the optional times still reads.
        let at = DateTime::parse_from_rfc3339("2026-11-28T05:07:11.123456789Z").unwrap().to_utc();
        let mut doc = serde_json::json!({
            "id": crate::ids::LinkId::new(), "account_id": crate::ids::AccountId::new(),
            "target": {"kind": "file", "id": crate::ids::FileId::new()},
            "token_hash": "h", "token_seed": "s", "valid_from": at, "valid_until": null,
            "password_hash": null, "password_version": 0, "expose_unpublished": false,
            "created_by": crate::ids::UserId::new(), "created_at": at, "updated_at": "2026-11-28 05:07:11Z",
            "revision": 1, "exhausted_at": at,
        });
        let link: crate::model::Link = serde_json::from_value(doc.clone()).unwrap();
        assert_eq!(
            (link.valid_from, link.valid_until, link.created_at, link.exhausted_at),
            (Some(at), None, at, Some(at))
        );
        assert_eq!(link.updated_at, DateTime::parse_from_rfc3339("2026-11-28T05:07:11Z").unwrap().to_utc());
        let again: crate::model::Link = serde_json::from_str(&serde_json::to_string(&link).unwrap()).unwrap();
        assert_eq!(again, link);
        for field in ["valid_from", "valid_until", "exhausted_at"] {
            doc.as_object_mut().unwrap().remove(field);
        }
        let old: crate::model::Link = serde_json::from_value(doc).unwrap();
        assert_eq!((old.valid_from, old.valid_until, old.exhausted_at), (None, None, None));
    }
}
