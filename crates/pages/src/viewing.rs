//! What the file page says of a file for people: its format by name, its
//! embedded metadata under human labels, and how the page shows it (the
//! preview, a player, the browser's PDF viewer, the text itself).

use publinks_domain::public::{MAX_INLINE_RESPONSE, MediaKind, PublicFile};
use std::collections::BTreeMap;

/// The self-hosted script of the pages (local times, keys and swipe on the
/// file page), served at [`SCRIPT_PATH`]; every page works without it.
pub const SCRIPT: &str = include_str!("../assets/viewer.js");

/// The address the pages load [`SCRIPT`] from.
pub const SCRIPT_PATH: &str = "/assets/viewer.js";

/// A format for people: "JPEG image", "MP4 video", "PDF document".
pub fn format_name(content_type: &str) -> String {
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let known = match essence.as_str() {
        "image/jpeg" => "JPEG image",
        "image/png" => "PNG image",
        "image/gif" => "GIF image",
        "image/webp" => "WebP image",
        "image/avif" => "AVIF image",
        "image/heic" | "image/heif" => "HEIC image",
        "image/tiff" => "TIFF image",
        "image/svg+xml" => "SVG image",
        "video/mp4" => "MP4 video",
        "video/quicktime" => "QuickTime video",
        "video/webm" => "WebM video",
        "video/ogg" => "Ogg video",
        "video/x-msvideo" => "AVI video",
        "audio/mpeg" => "MP3 audio",
        "audio/mp4" | "audio/aac" => "AAC audio",
        "audio/wav" | "audio/x-wav" | "audio/wave" => "WAV audio",
        "audio/ogg" => "Ogg audio",
        "audio/flac" => "FLAC audio",
        "audio/webm" => "WebM audio",
        "application/pdf" => "PDF document",
        "text/plain" => "Plain text",
        "text/csv" => "CSV table",
        "text/markdown" => "Markdown text",
        "text/html" => "HTML page",
        "application/json" => "JSON data",
        "application/zip" => "ZIP archive",
        "application/msword" | "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => {
            "Word document"
        }
        "application/vnd.ms-excel" | "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => {
            "Excel spreadsheet"
        }
        "application/vnd.ms-powerpoint"
        | "application/vnd.openxmlformats-officedocument.presentationml.presentation" => "PowerPoint presentation",
        _ => "",
    };
    if !known.is_empty() {
        return known.to_string();
    }
    match essence.split_once('/') {
        Some((kind @ ("image" | "video" | "audio"), sub)) if !sub.is_empty() => {
            let sub = sub.trim_start_matches("x-").to_ascii_uppercase();
            format!("{sub} {kind}")
        }
        Some(("text", _)) => "Text".into(),
        _ => "File".into(),
    }
}

/// The labels of the metadata people look for, in the order shown: each
/// with the EXIF fields it is made of.
const LABELLED: &[(&str, &[&str])] = &[
    ("Camera", &["Make", "Model"]),
    ("Lens", &["LensMake", "LensModel"]),
    ("Exposure", &["ExposureTime"]),
    ("Aperture", &["FNumber"]),
    ("ISO", &["PhotographicSensitivity", "ISOSpeed"]),
    ("Focal length", &["FocalLength"]),
    ("Taken on", &["DateTimeOriginal"]),
];

/// Embedded metadata under human labels: the known fields first (Camera,
/// Lens, Exposure, ISO, Taken on…), then the rest, each name in words
/// ("WhiteBalance" as "White balance").
pub fn metadata_labels(metadata: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let mut used: Vec<&str> = Vec::new();
    let mut shown = Vec::new();
    for (label, fields) in LABELLED {
        let values: Vec<&str> = fields.iter().filter_map(|f| metadata.get(*f)).map(|v| clean(v)).collect();
        used.extend(fields.iter());
        let value = match (*label, values.as_slice()) {
            (_, []) => continue,
            // A model usually repeats its make ("Canon" "Canon EOS R5").
            (_, [make, model]) if model.to_lowercase().starts_with(&make.to_lowercase()) => model.to_string(),
            ("Taken on", [when]) => taken_on(when),
            ("ISO", [first, ..]) => first.to_string(),
            _ => values.join(" "),
        };
        shown.push((label.to_string(), value));
    }
    for (name, value) in metadata {
        if !used.contains(&name.as_str()) {
            shown.push((words(name), clean(value).to_string()));
        }
    }
    shown
}

/// A value without the quotes and padding EXIF strings carry.
fn clean(value: &str) -> &str {
    value.trim().trim_matches('"').trim()
}

/// An EXIF time ("2026-03-01 10:04:05", "2026:03:01 10:04:05") for people:
/// "1 March 2026, 10:04" (the camera's clock, whose zone EXIF rarely says).
fn taken_on(value: &str) -> String {
    ["%Y-%m-%d %H:%M:%S", "%Y:%m:%d %H:%M:%S"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(value, f).ok())
        .map(|t| t.format("%-d %B %Y, %H:%M").to_string())
        .unwrap_or_else(|| value.to_string())
}

/// A field name in words, as the file page labels a field it has no label
/// for: "WhiteBalance" → "White balance", "GPSLatitude" → "GPS latitude".
pub fn words(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, c) in chars.iter().enumerate() {
        let starts_word = i > 0
            && c.is_uppercase()
            && (chars[i - 1].is_lowercase() || chars.get(i + 1).is_some_and(|n| n.is_lowercase()));
        if starts_word {
            out.push(' ');
        }
        let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
        let in_acronym = c.is_uppercase() && !next_lower;
        if i > 0 && !in_acronym { out.extend(c.to_lowercase()) } else { out.push(*c) }
    }
    out
}

/// How much of a text file its page shows, for people ("65.5 KB").
pub fn text_shown() -> String {
    crate::human_size(&publinks_domain::public::MAX_TEXT_SHOWN)
}

/// How the file page shows a file.
pub struct FileView {
    /// `image`, `preview` (the large preview alone), `video`, `audio`, `pdf`, `text` or `none`.
    pub kind: &'static str,
    /// Whether the original opens in the browser from a link (an image or a
    /// PDF small enough to be served whole); a larger one is downloaded.
    pub opens_inline: bool,
    /// The start of a text file, and whether there is more.
    pub text: Option<(String, bool)>,
}

impl FileView {
    /// The view of `file`, with the start of its text when it is text.
    /// Through a link that hands out no originals (`originals` false, a
    /// preview-only link) an image shows its large preview alone (`preview`)
    /// and what only the original could show (players, PDFs) is not offered.
    pub fn of(file: &PublicFile, text: Option<(String, bool)>, originals: bool) -> Self {
        let kind = match MediaKind::of(&file.content_type) {
            Some(MediaKind::Image) if !originals && file.has_thumbnail => "preview",
            Some(MediaKind::Text) if text.is_some() => "text",
            _ if !originals => "none",
            Some(MediaKind::Image) => "image",
            Some(MediaKind::Video) => "video",
            Some(MediaKind::Audio) => "audio",
            Some(MediaKind::Pdf) => "pdf",
            _ => "none",
        };
        FileView { kind, opens_inline: originals && file.size <= MAX_INLINE_RESPONSE, text }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_named_for_people() {
        assert_eq!(format_name("image/jpeg"), "JPEG image");
        assert_eq!(format_name("video/mp4"), "MP4 video");
        assert_eq!(format_name("application/pdf"), "PDF document");
        assert_eq!(format_name("text/plain; charset=utf-8"), "Plain text");
        assert_eq!(format_name("image/x-icon"), "ICON image");
        assert_eq!(format_name("application/octet-stream"), "File");
    }

    #[test]
    fn metadata_is_shown_under_human_labels() {
        let metadata: BTreeMap<String, String> = [
            ("Make", "\"Canon\""),
            ("Model", "\"Canon EOS R5\""),
            ("LensModel", "\"RF24-105mm F4 L IS USM\""),
            ("ExposureTime", "1/125 s"),
            ("FNumber", "f/4"),
            ("PhotographicSensitivity", "400"),
            ("DateTimeOriginal", "2026-03-01 10:04:05"),
            ("WhiteBalance", "auto"),
            ("GPSLatitude", "48 deg"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let shown = metadata_labels(&metadata);
        let get = |label: &str| shown.iter().find(|(l, _)| l == label).map(|(_, v)| v.as_str());
        assert_eq!(get("Camera"), Some("Canon EOS R5"));
        assert_eq!(get("Lens"), Some("RF24-105mm F4 L IS USM"));
        assert_eq!(get("Exposure"), Some("1/125 s"));
        assert_eq!(get("ISO"), Some("400"));
        assert_eq!(get("Taken on"), Some("1 March 2026, 10:04"));
        assert_eq!(get("White balance"), Some("auto"));
        assert_eq!(get("GPS latitude"), Some("48 deg"));
        assert_eq!(shown[0].0, "Camera", "the known labels first");
        assert!(!shown.iter().any(|(l, _)| l == "Make" || l == "Model"), "{shown:?}");
        let other = [("Make".to_string(), "Nikon".to_string()), ("Model".to_string(), "Z 6".to_string())];
        assert_eq!(metadata_labels(&other.into_iter().collect())[0].1, "Nikon Z 6");
    }
}
