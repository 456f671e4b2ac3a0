//! Entry names inside an archive: safe to extract anywhere, and unique.
//!
//! Every component is sanitized (no separators, no `.`/`..`, no control
//! characters, nothing Windows cannot create) and at most 255 bytes; paths
//! are relative to the shared root, so nothing extracts outside the target
//! directory. Names are unique without regard to case (macOS and Windows
//! extract `Photo.jpg` over `photo.jpg`): a later one becomes `photo (1).jpg`.

use std::collections::HashSet;

/// The longest component, in bytes (what most file systems allow).
const MAX_COMPONENT: usize = 255;

/// Names Windows reserves for devices, whatever the extension.
const WINDOWS_DEVICES: &[&str] = &[
    "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8", "com9", "lpt1", "lpt2",
    "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

/// One path component made safe to extract on any system.
pub fn sanitize_component(raw: &str) -> String {
    let mut name: String =
        raw.chars()
            .map(|c| {
                if c.is_control() || matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|') {
                    '_'
                } else {
                    c
                }
            })
            .collect();
    name = name.trim_start().trim_end_matches([' ', '.']).to_string();
    if name.is_empty() || name.chars().all(|c| c == '.') {
        name = "_".to_string();
    }
    let stem = name.split('.').next().unwrap_or("").to_ascii_lowercase();
    if WINDOWS_DEVICES.contains(&stem.as_str()) {
        name.insert(0, '_');
    }
    truncate_keeping_extension(&name, MAX_COMPONENT)
}

/// `name` cut to `max` bytes on a character boundary, its extension kept.
fn truncate_keeping_extension(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_string();
    }
    let (stem, ext) = split_extension(name);
    let ext = if ext.len() <= 16 { ext } else { "" };
    let mut cut = max - ext.len();
    while !stem.is_char_boundary(cut.min(stem.len())) {
        cut -= 1;
    }
    format!("{}{ext}", &stem[..cut.min(stem.len())])
}

/// `("photo", ".jpg")`; a leading dot is not an extension.
fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    }
}

/// Hands out unique entry paths for one archive.
#[derive(Debug, Default)]
pub struct EntryNames {
    /// Every path given out, lowercased.
    taken: HashSet<String>,
}

impl EntryNames {
    /// No names taken yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A unique path for `raw` inside `parent` (`""` for the root, else a
    /// path this set handed out, ending in `/` for folders).
    pub fn file(&mut self, parent: &str, raw: &str) -> String {
        self.unique(parent, &sanitize_component(raw), "")
    }

    /// A unique folder path (ending in `/`) for `raw` inside `parent`.
    pub fn folder(&mut self, parent: &str, raw: &str) -> String {
        self.unique(parent, &sanitize_component(raw), "/")
    }

    fn unique(&mut self, parent: &str, name: &str, suffix: &str) -> String {
        // A folder "a/" and a file "a" collide on disk: both are checked without the slash.
        let mut candidate = name.to_string();
        let mut n = 0u32;
        loop {
            let key = format!("{parent}{candidate}").to_lowercase();
            if !self.taken.contains(&key) {
                self.taken.insert(key);
                return format!("{parent}{candidate}{suffix}");
            }
            n += 1;
            let (stem, ext) = if suffix.is_empty() { split_extension(name) } else { (name, "") };
            let marker = format!(" ({n})");
            let stem = truncate_keeping_extension(stem, MAX_COMPONENT - marker.len() - ext.len());
            candidate = format!("{stem}{marker}{ext}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_cannot_climb_out_or_hide_characters() {
        assert_eq!(sanitize_component(".."), "_");
        assert_eq!(sanitize_component("."), "_");
        assert_eq!(sanitize_component("../x"), ".._x", "one harmless component");
        assert_eq!(sanitize_component("/etc/passwd"), "_etc_passwd");
        assert_eq!(sanitize_component("C:\\Windows"), "C__Windows");
        assert_eq!(sanitize_component("a\u{0}b\nc\u{7f}"), "a_b_c_");
        assert_eq!(sanitize_component("report. "), "report");
        assert_eq!(sanitize_component("CON.txt"), "_CON.txt");
        assert_eq!(sanitize_component("Ça été"), "Ça été");
    }

    #[test]
    fn long_names_keep_their_extension_and_whole_characters() {
        let long = format!("{}.jpg", "é".repeat(300));
        let cut = sanitize_component(&long);
        assert!(cut.len() <= 255, "{}", cut.len());
        assert!(cut.ends_with(".jpg"));
        assert!(cut.starts_with('é'));
    }

    #[test]
    fn duplicates_are_numbered_without_regard_to_case() {
        let mut names = EntryNames::new();
        let folder = names.folder("", "Photos");
        assert_eq!(folder, "Photos/");
        assert_eq!(names.file(&folder, "photo.jpg"), "Photos/photo.jpg");
        assert_eq!(names.file(&folder, "photo.jpg"), "Photos/photo (1).jpg");
        assert_eq!(names.file(&folder, "PHOTO.jpg"), "Photos/PHOTO (2).jpg");
        assert_eq!(names.file(&folder, "photo (1).jpg"), "Photos/photo (1) (1).jpg");
        assert_eq!(names.file("", "photos"), "photos (1)", "a file may not take a folder's name");
        assert_eq!(names.folder("", "Photos"), "Photos (2)/", "\"photos (1)\" is the file above");
        assert_eq!(names.file("", ".hidden"), ".hidden");
        assert_eq!(names.file("", ".hidden"), ".hidden (1)");
    }

    #[test]
    fn numbered_long_names_stay_within_the_limit() {
        let mut names = EntryNames::new();
        let long = format!("{}.png", "a".repeat(300));
        let first = names.file("", &long);
        let second = names.file("", &long);
        assert_ne!(first, second);
        assert!(second.len() <= 255 && second.ends_with(" (1).png"), "{second}");
    }
}
