//! Input rules: every name, tag and content type is checked here once, so
//! nothing invalid gets past the edge of the domain.

use super::{DomainError, DomainResult};
use std::collections::BTreeMap;
use unicode_normalization::UnicodeNormalization;

/// Longest file, folder or collection name, in bytes (common filesystems' limit).
pub const MAX_NAME_BYTES: usize = 255;
pub const MAX_TAGS: usize = 100;
pub const MAX_TAG_CHARS: usize = 64;
pub const MAX_METADATA_ENTRIES: usize = 100;
pub const MAX_METADATA_KEY_CHARS: usize = 64;
pub const MAX_METADATA_VALUE_CHARS: usize = 1024;
pub const MAX_COMMENT_CHARS: usize = 4000;
pub const MAX_COORDINATES: usize = 20;

/// [`name`] for the API document (JSON Schema, ECMA-262 pattern): no
/// separator or control character, and something besides spaces; the byte
/// limit and `.`/`..` are told in words.
pub fn name_schema() -> utoipa::openapi::Object {
    let pattern = r"^[^/\\\x00-\x1f\x7f-\x9f]*[^/\\\s\x00-\x1f\x7f-\x9f][^/\\\x00-\x1f\x7f-\x9f]*$";
    string_schema(
        pattern,
        Some(1),
        MAX_NAME_BYTES,
        "1-255 bytes once trimmed; not `.` or `..`; no `/`, `\\` or control characters.",
    )
}

/// [`email`] for the API document.
pub fn email_schema() -> utoipa::openapi::Object {
    let pattern =
        r"^\s*[^@\s\x00-\x1f\x7f-\x9f]+@[^.\s\x00-\x1f\x7f-\x9f][^\s\x00-\x1f\x7f-\x9f]*\.[^\s\x00-\x1f\x7f-\x9f]*\s*$";
    string_schema(pattern, None, 254, "An address like `name@example.com`, at most 254 bytes.")
}

/// [`content_type`] for the API document.
pub fn content_type_schema() -> utoipa::openapi::Object {
    let pattern = r"^\s*[A-Za-z0-9!#$&^_.+-]{1,63}/[A-Za-z0-9!#$&^_.+-]{1,63}\s*$";
    string_schema(pattern, None, 200, "A MIME type such as `image/jpeg`, without parameters.")
}

/// [`comment`] for the API document.
pub fn comment_schema() -> utoipa::openapi::Object {
    string_schema(r"\S", Some(1), MAX_COMMENT_CHARS, "1-4000 characters once trimmed.")
}

/// [`tags`] for the API document.
pub fn tags_schema() -> utoipa::openapi::Array {
    let tag = string_schema(r"\S", Some(1), MAX_TAG_CHARS, "1-64 characters once trimmed, no control characters.");
    utoipa::openapi::ArrayBuilder::new()
        .items(tag)
        .max_items(Some(MAX_TAGS))
        .description(Some("At most 100 tags; duplicates are dropped."))
        .build()
}

fn string_schema(pattern: &str, min: Option<usize>, max: usize, description: &str) -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .pattern(Some(pattern))
        .min_length(min)
        .max_length(Some(max))
        .description(Some(description))
        .build()
}

/// A file, folder or collection name: trimmed, in Unicode NFC (stored as
/// written otherwise), 1–255 bytes, no path separators, no control
/// characters, not `.` or `..`.
pub fn name(field: &str, raw: &str) -> DomainResult<String> {
    let normalized: String = raw.trim().nfc().collect();
    let name = normalized.as_str();
    let problem = if name.is_empty() {
        Some("must not be empty")
    } else if name.len() > MAX_NAME_BYTES {
        Some("must be at most 255 bytes")
    } else if name.contains(['/', '\\']) {
        Some("must not contain '/' or '\\'")
    } else if name == "." || name == ".." {
        Some("must not be '.' or '..'")
    } else if name.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else {
        None
    };
    match problem {
        Some(p) => Err(DomainError::invalid(field, format!("{field} {p}"))),
        None => Ok(name.to_string()),
    }
}

/// What two names in one folder are compared by: NFC, then lower case (and
/// NFC again, as lowering can decompose). `Café.JPG` written precomposed or
/// with a combining accent, in any case, is one name — as macOS and Windows
/// file systems see it, and as archive entries are made unique. Lower case
/// rather than full case folding, because those file systems keep `Straße`
/// and `STRASSE` apart too.
pub fn name_key(name: &str) -> String {
    let lowered = name.nfc().collect::<String>().to_lowercase();
    lowered.nfc().collect()
}

/// Tags: each trimmed, 1–64 characters, no control characters; duplicates dropped.
pub fn tags(field: &str, raw: &[String]) -> DomainResult<Vec<String>> {
    if raw.len() > MAX_TAGS {
        return Err(DomainError::invalid(field, format!("{field} must hold at most {MAX_TAGS} tags")));
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for tag in raw {
        let t = tag.trim();
        if t.is_empty() || t.chars().count() > MAX_TAG_CHARS || t.chars().any(char::is_control) {
            return Err(DomainError::invalid(
                field,
                format!("each of {field} must be 1-{MAX_TAG_CHARS} characters without control characters"),
            ));
        }
        if !out.iter().any(|o| o == t) {
            out.push(t.to_string());
        }
    }
    Ok(out)
}

/// Custom metadata: bounded keys and values.
pub fn metadata(field: &str, raw: &BTreeMap<String, String>) -> DomainResult<BTreeMap<String, String>> {
    if raw.len() > MAX_METADATA_ENTRIES {
        return Err(DomainError::invalid(field, format!("{field} must hold at most {MAX_METADATA_ENTRIES} entries")));
    }
    for (k, v) in raw {
        let bad_key =
            k.trim().is_empty() || k.chars().count() > MAX_METADATA_KEY_CHARS || k.chars().any(char::is_control);
        if bad_key || v.chars().count() > MAX_METADATA_VALUE_CHARS {
            return Err(DomainError::invalid(
                field,
                format!(
                    "{field} keys must be 1-{MAX_METADATA_KEY_CHARS} characters and values at most {MAX_METADATA_VALUE_CHARS}"
                ),
            ));
        }
    }
    Ok(raw.clone())
}

/// A comment's text: 1–4000 characters.
pub fn comment(raw: &str) -> DomainResult<String> {
    let text = raw.trim();
    if text.is_empty() || text.chars().count() > MAX_COMMENT_CHARS {
        return Err(DomainError::invalid("text", format!("text must be 1-{MAX_COMMENT_CHARS} characters")));
    }
    Ok(text.to_string())
}

/// A MIME type `type/subtype` (lowercased), with no parameters.
pub fn content_type(raw: &str) -> DomainResult<String> {
    let ct = raw.trim().to_ascii_lowercase();
    let token = |s: &str| {
        !s.is_empty() && s.len() <= 63 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    match ct.split_once('/') {
        Some((t, s)) if token(t) && token(s) => Ok(ct),
        _ => Err(DomainError::invalid("content_type", "content_type must be a MIME type such as image/jpeg")),
    }
}

/// What a date-time field of a request takes, as its refusals say it.
pub const DATE_TIME_FORMAT: &str = "an RFC 3339 date-time with a time zone, e.g. 2026-12-31T18:00:00Z";

/// A date-time as requests give it: RFC 3339, with a time and a zone (any
/// offset; kept in UTC). A date alone is refused with that hint rather than
/// given a meaning (the start or the end of which day, where?).
pub fn date_time(raw: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(raw.trim()) {
        return Ok(at.with_timezone(&chrono::Utc));
    }
    let shape: String = raw.trim().chars().map(|c| if c.is_ascii_digit() { '9' } else { c }).collect();
    let date_alone = shape == "9999-99-99";
    Err(if date_alone {
        format!(
            "must be {DATE_TIME_FORMAT}: a date alone is not enough, add the time and zone (T00:00:00Z for the start of that day in UTC)"
        )
    } else {
        format!("must be {DATE_TIME_FORMAT}, and a real date and time")
    })
}

/// Serde's side of [`date_time`], for optional date-time fields of request
/// bodies: a refusal says what is expected, never what was sent.
pub mod date_time_field {
    use chrono::{DateTime, Utc};
    use serde::{Deserializer, de};

    struct Visitor;

    impl de::Visitor<'_> for Visitor {
        type Value = DateTime<Utc>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str(super::DATE_TIME_FORMAT)
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
            super::date_time(s).map_err(E::custom)
        }
    }

    struct Optional;

    impl<'de> de::Visitor<'de> for Optional {
        type Value = Option<DateTime<Utc>>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            write!(f, "{} or null", super::DATE_TIME_FORMAT)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(Visitor).map(Some)
        }
    }

    /// An optional date-time (`null` or absent: none).
    pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        d.deserialize_option(Optional)
    }

    /// A date-time a change may set or remove: absent (`None`, with
    /// `#[serde(default)]`), `null` (`Some(None)`) or a value.
    pub fn patch<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<DateTime<Utc>>>, D::Error> {
        optional(d).map(Some)
    }
}

/// The most items a page of a list holds.
pub const MAX_PAGE_LIMIT: u32 = 200;

/// A page size: default 50, at most [`MAX_PAGE_LIMIT`].
pub fn page_limit(raw: Option<u32>) -> DomainResult<u32> {
    match raw {
        None => Ok(50),
        Some(n @ 1..=MAX_PAGE_LIMIT) => Ok(n),
        Some(_) => Err(DomainError::invalid("limit", "limit must be a whole number from 1 to 200")),
    }
}

/// An e-mail address: `local@domain`, at most 254 bytes.
pub fn email(raw: &str) -> DomainResult<String> {
    let e = raw.trim();
    let ok = e.len() <= 254
        && e.split_once('@').is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.starts_with('.'))
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(e.to_string())
    } else {
        Err(DomainError::invalid("email", "email must be an address like name@example.com"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_path_tricks_refused() {
        assert_eq!(name("name", "  photo.jpg ").unwrap(), "photo.jpg");
        for bad in ["", "   ", "..", ".", "a/b", "..\\x", "a\u{0}b", "new\nline", &"x".repeat(256)] {
            assert!(name("name", bad).is_err(), "{bad:?} should be refused");
        }
        assert!(name("name", &"\u{e9}".repeat(127)).is_ok());
        assert!(name("name", &"\u{e9}".repeat(128)).is_err(), "the limit is in bytes");
    }

    #[test]
    fn names_are_stored_in_nfc_and_compared_without_case_or_form() {
        let decomposed = "Cafe\u{301}.JPG";
        assert_eq!(name("name", decomposed).unwrap(), "Caf\u{e9}.JPG", "stored as written, but NFC");
        assert_eq!(name_key(decomposed), name_key("caf\u{e9}.jpg"));
        assert_eq!(name_key("\u{130}stanbul"), name_key("i\u{307}stanbul"));
        assert_ne!(name_key("Stra\u{df}e"), name_key("STRASSE"), "as file systems keep them apart");
        assert_ne!(name_key("a.jpg"), name_key("a.jpeg"));
    }

    #[test]
    fn tags_are_deduplicated_and_bounded() {
        assert_eq!(tags("tags", &["a".into(), " a ".into(), "b".into()]).unwrap(), vec!["a", "b"]);
        assert!(tags("tags", &["".into()]).is_err());
        assert!(tags("tags", &vec!["t".to_string(); 101]).is_err());
    }

    #[test]
    fn content_types_must_look_like_mime_types() {
        assert_eq!(content_type("Image/JPEG").unwrap(), "image/jpeg");
        for bad in ["", "image", "image/", "/jpeg", "text/plain; charset=utf-8", "a b/c"] {
            assert!(content_type(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn date_times_need_a_time_and_a_zone_and_say_so() {
        assert_eq!(date_time("2026-12-31T19:00:00+01:00").unwrap().to_rfc3339(), "2026-12-31T18:00:00+00:00");
        for alone in ["2026-12-31", "2026-02-30"] {
            let e = date_time(alone).unwrap_err();
            assert!(e.contains("2026-12-31T18:00:00Z") && e.contains("a date alone"), "{e}");
        }
        for bad in ["2026-02-30T10:00:00Z", "2026-12-31T18:00:00", "tomorrow", ""] {
            let e = date_time(bad).unwrap_err();
            assert!(e.starts_with("must be an RFC 3339 date-time with a time zone"), "{bad}: {e}");
        }
    }

    #[test]
    fn page_limits_are_bounded() {
        assert_eq!(page_limit(None).unwrap(), 50);
        assert!(page_limit(Some(0)).is_err());
        assert!(page_limit(Some(201)).is_err());
    }
}
