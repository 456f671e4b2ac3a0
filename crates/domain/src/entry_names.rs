//! Entry names inside an archive: safe to extract anywhere, and unique.
//!
//! Every component is written in Unicode NFC and sanitized (no separators,
//! no `.`/`..`, no control characters, nothing Windows cannot create) to at
//! most 255 bytes; paths are relative to the shared root, so nothing
//! extracts outside the target directory.
//!
//! Names are unique as file systems compare them: after NFC and case folding
//! (macOS and Windows extract `Photo.jpg` over `photo.jpg`, and macOS `café`
//! in NFD over `café` in NFC). Within one folder, names are handed out in a
//! fixed order, so the outcome depends on each entry alone, never on the
//! order a listing happened to return:
//!
//! 1. every entry whose name needs no change claims it, then every entry
//!    whose cleaned name is still free claims that — so a name that needs no
//!    change is never renamed to make room for a cleaned-up sibling;
//! 2. the rest are numbered (`photo (1).jpg`, `photo (2).jpg`, …), skipping
//!    every name claimed in step 1.
//!
//! In both steps, entries go oldest first (then by id): of equal names, the
//! oldest keeps the plain one.

use crate::rules::name_key;
use chrono::{DateTime, Utc};
use std::collections::HashSet;
use unicode_normalization::UnicodeNormalization;

/// The longest component, in bytes (what most file systems allow).
const MAX_COMPONENT: usize = 255;

/// The longest extension kept when a name is shortened or numbered; a longer
/// "extension" is part of the name.
const MAX_EXTENSION: usize = 16;

/// Names Windows reserves for devices, whatever the extension.
const WINDOWS_DEVICES: &[&str] = &[
    "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8", "com9", "lpt1", "lpt2",
    "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

/// One path component made safe to extract on any system, in NFC.
pub fn sanitize_component(raw: &str) -> String {
    let mut name: String =
        raw.nfc()
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

/// How file systems that ignore case and normalisation see a path: two paths
/// with the same key are one file on disk. The library's rule for names in a
/// folder, applied to whole paths.
fn fold(path: &str) -> String {
    name_key(path)
}

/// `name` cut to `max` bytes on a character boundary, a short extension kept.
fn truncate_keeping_extension(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_string();
    }
    let (stem, ext) = split_extension(name);
    let (stem, ext) = if ext.len() <= MAX_EXTENSION && ext.len() < max { (stem, ext) } else { (name, "") };
    format!("{}{ext}", cut(stem, max - ext.len()))
}

/// The longest prefix of `text` of at most `max` bytes, on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `("photo", ".jpg")`; a leading dot is not an extension.
fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    }
}

/// `name` with the marker ` (n)`, within [`MAX_COMPONENT`] bytes: before a
/// short extension, at the end otherwise.
fn numbered(name: &str, n: u32, folder: bool) -> String {
    let marker = format!(" ({n})");
    let (stem, ext) = if folder { (name, "") } else { split_extension(name) };
    let (stem, ext) = if ext.len() <= MAX_EXTENSION { (stem, ext) } else { (name, "") };
    format!("{}{marker}{ext}", cut(stem, MAX_COMPONENT - marker.len() - ext.len()))
}

/// One entry to name inside a folder of the archive.
#[derive(Clone, Debug)]
pub struct Child<'a> {
    /// The name in the library.
    pub name: &'a str,
    /// A folder (its path ends in `/`).
    pub folder: bool,
    /// Of equal names, the oldest keeps the plain one...
    pub created_at: DateTime<Utc>,
    /// ...then the lowest id.
    pub id: String,
}

/// Hands out unique entry paths for one archive.
#[derive(Debug, Default)]
pub struct EntryNames {
    /// Every path given out, as [`fold`] sees it (folders without their `/`:
    /// a folder `a/` and a file `a` collide on disk).
    taken: HashSet<String>,
}

impl EntryNames {
    /// No names taken yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Unique paths for the entries of one folder, `parent` (`""` for the
    /// root, else a folder path this set handed out, ending in `/`); the
    /// paths come back in the order of `children`. Each folder's entries are
    /// named in one call, so that the rule of the module's documentation can
    /// see them all.
    pub fn place(&mut self, parent: &str, children: &[Child<'_>]) -> Vec<String> {
        let cleaned: Vec<String> = children.iter().map(|c| sanitize_component(c.name)).collect();
        let mut order: Vec<usize> = (0..children.len()).collect();
        order.sort_by(|&a, &b| {
            let (x, y) = (&children[a], &children[b]);
            (cleaned[a] != x.name, x.created_at, &x.id).cmp(&(cleaned[b] != y.name, y.created_at, &y.id))
        });
        let mut names: Vec<Option<String>> = vec![None; children.len()];
        for &i in &order {
            if self.taken.insert(fold(&format!("{parent}{}", cleaned[i]))) {
                names[i] = Some(cleaned[i].clone());
            }
        }
        for &i in &order {
            if names[i].is_some() {
                continue;
            }
            let mut n = 1;
            let name = loop {
                let candidate = numbered(&cleaned[i], n, children[i].folder);
                if self.taken.insert(fold(&format!("{parent}{candidate}"))) {
                    break candidate;
                }
                n += 1;
            };
            names[i] = Some(name);
        }
        names
            .into_iter()
            .zip(children)
            .map(|(name, child)| {
                let name = name.expect("every entry is named");
                if child.folder { format!("{parent}{name}/") } else { format!("{parent}{name}") }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child(name: &str, age: i64) -> Child<'_> {
        Child { name, folder: false, created_at: DateTime::UNIX_EPOCH + chrono::Duration::days(age), id: name.into() }
    }

    fn folder(name: &str, age: i64) -> Child<'_> {
        Child { folder: true, ..child(name, age) }
    }

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
    fn components_are_written_in_nfc() {
        assert_eq!(sanitize_component("Cafe\u{301}"), "Caf\u{e9}");
        assert_eq!(sanitize_component("Caf\u{e9}"), "Caf\u{e9}");
        assert_eq!(sanitize_component("\u{212b}ngstr\u{f6}m"), "\u{c5}ngstr\u{f6}m", "the Ångström sign is Å");
    }

    #[test]
    fn long_names_keep_their_extension_and_whole_characters() {
        let long = format!("{}.jpg", "é".repeat(300));
        let cut = sanitize_component(&long);
        assert!(cut.len() <= 255, "{}", cut.len());
        assert!(cut.ends_with(".jpg"));
        assert!(cut.starts_with('é'));
        let long_nfd = format!("{}.jpg", "e\u{301}".repeat(300));
        assert_eq!(sanitize_component(&long_nfd), cut, "NFC first, then the cut");
    }

    #[test]
    fn duplicates_are_numbered_without_regard_to_case() {
        let mut names = EntryNames::new();
        let top = names.place("", &[folder("Photos", 0), child("photos", 1)]);
        assert_eq!(top, ["Photos/", "photos (1)"], "a file may not take a folder's name; the folder is older");
        let inside = names.place(
            &top[0],
            &[child("photo.jpg", 0), child("photo.jpg", 1), child("PHOTO.jpg", 2), child("photo (1).jpg", 3)],
        );
        assert_eq!(
            inside,
            ["Photos/photo.jpg", "Photos/photo (2).jpg", "Photos/PHOTO (3).jpg", "Photos/photo (1).jpg"],
            "a name that needs no change keeps it"
        );
        assert_eq!(names.place("", &[child(".hidden", 0), child(".hidden", 1)]), [".hidden", ".hidden (1)"]);
    }

    #[test]
    fn nfc_and_nfd_spellings_are_one_name_and_the_unchanged_one_keeps_it() {
        let nfc = "caf\u{e9}.txt";
        let nfd = "cafe\u{301}.txt";
        // The NFD spelling is older, but needs a change: the NFC one keeps the name.
        let (older_nfd, newer_nfc) = (child(nfd, 0), child(nfc, 1));
        for kids in [[older_nfd.clone(), newer_nfc.clone()], [newer_nfc.clone(), older_nfd.clone()]] {
            let placed = EntryNames::new().place("", &kids);
            let by_name: std::collections::BTreeMap<&str, &str> =
                kids.iter().map(|k| k.name).zip(placed.iter().map(String::as_str)).collect();
            assert_eq!(by_name[nfc], nfc);
            assert_eq!(by_name[nfd], "caf\u{e9} (1).txt", "written in NFC, numbered");
        }
        let mut names = EntryNames::new();
        let folders = names.place("", &[folder("Cafe\u{301}", 0), folder("CAF\u{c9}", 1)]);
        assert_eq!(folders, ["Caf\u{e9} (1)/", "CAF\u{c9}/"], "folders too; the NFD one is written in NFC");
    }

    #[test]
    fn the_winner_depends_on_the_entries_not_on_the_listing_order() {
        let kids = [child("a.txt", 5), child("A.txt", 2), child("a.TXT", 9)];
        let first = EntryNames::new().place("", &kids);
        let mut reversed_kids = kids.to_vec();
        reversed_kids.reverse();
        let mut second = EntryNames::new().place("", &reversed_kids);
        second.reverse();
        assert_eq!(first, second);
        assert_eq!(first, ["a (1).txt", "A.txt", "a (2).TXT"], "oldest first");
        let tied = [Child { id: "b".into(), ..child("x", 0) }, Child { id: "a".into(), ..child("X", 0) }];
        assert_eq!(EntryNames::new().place("", &tied), ["x (1)", "X"], "then the lowest id");
    }

    #[test]
    fn a_cleaned_up_name_does_not_push_out_one_that_needs_no_change() {
        let mut names = EntryNames::new();
        let placed = names.place("", &[child("a:b.txt", 0), child("a_b.txt", 1)]);
        assert_eq!(placed, ["a_b (1).txt", "a_b.txt"]);
    }

    #[test]
    fn numbered_long_names_stay_within_the_limit() {
        let long = format!("{}.png", "a".repeat(300));
        let placed = EntryNames::new().place("", &[child(&long, 0), child(&long, 1)]);
        assert_ne!(placed[0], placed[1]);
        assert!(placed[1].len() <= 255 && placed[1].ends_with(" (1).png"), "{}", placed[1]);
    }

    #[test]
    fn names_whose_extension_alone_is_past_the_limit_are_numbered_within_it() {
        for name in [
            format!("a.{}", "x".repeat(253)),
            format!("a.{}", "x".repeat(400)),
            format!(".{}", "y".repeat(300)),
            format!("{}.{}", "é".repeat(10), "ü".repeat(200)),
            format!("b.{}", "z".repeat(20)),
        ] {
            let kids = [child(&name, 0), child(&name, 1), child(&name, 2)];
            let placed = EntryNames::new().place("", &kids);
            let unique: HashSet<String> = placed.iter().map(|p| fold(p)).collect();
            assert_eq!(unique.len(), 3, "{placed:?}");
            for p in &placed {
                assert!(p.len() <= 255, "{} bytes: {p}", p.len());
            }
            assert!(placed[2].ends_with(" (2)"), "a long extension is part of the name: {}", placed[2]);
        }
    }
}
