//! The ZIP container, written here rather than by the `zip` crate for two
//! needs that crate cannot meet in streaming mode:
//!
//! - **Server-side copies.** Large stored entries are copied into the archive
//!   by S3 (`UploadPartCopy`) and never pass through the function, so their
//!   headers must be written around bytes this code never sees, from the CRC-32
//!   and size recorded at upload.
//! - **No data descriptors on stored entries.** The `zip` crate's stream writer
//!   gives every entry a data descriptor; Java's `ZipInputStream` and older
//!   macOS Archive Utility refuse stored entries that have one. Here an entry
//!   whose CRC and sizes are known up front (every stored entry, and deflated
//!   entries compressed ahead) has none; only deflated entries streamed in
//!   chunks use one, which every reader accepts.
//!
//! [`ZipLayout`] only produces header bytes and tracks offsets; the caller
//! writes each entry's data between [`ZipLayout::begin`] and
//! [`ZipLayout::end`]. ZIP64 records are used exactly where a field would
//! overflow (an entry or offset past 4 GiB, 65,535 entries or more). The
//! tests open the output with Python's `zipfile`, Info-ZIP's `unzip`, 7-Zip
//! and libarchive's `bsdtar`.

use chrono::{DateTime, Datelike, Timelike, Utc};

/// How an entry's bytes are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// As they are (already-compressed media).
    Stored,
    /// Raw DEFLATE.
    Deflated,
}

impl Method {
    fn code(self) -> u16 {
        match self {
            Method::Stored => 0,
            Method::Deflated => 8,
        }
    }
}

/// An entry's checksum and sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sizes {
    pub crc32: u32,
    pub compressed: u64,
    pub uncompressed: u64,
}

/// What an entry's local header says.
#[derive(Clone, Debug)]
pub struct EntryStart<'a> {
    /// The path inside the archive (`/`-separated, sanitized); ends in `/` for a directory.
    pub name: &'a str,
    pub method: Method,
    pub modified: DateTime<Utc>,
    /// Known before the data: written in the local header, no data descriptor.
    pub known: Option<Sizes>,
    /// The uncompressed size when `known` is `None`, to choose ZIP64 up front.
    pub size_hint: u64,
}

/// Why an entry could not be closed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ZipError {
    #[error("entry {name:?} was announced with {announced:?} but {actual:?} was written")]
    SizesChanged { name: String, announced: Sizes, actual: Sizes },
    #[error("no entry is open")]
    NoOpenEntry,
    #[error("an entry is still open")]
    EntryOpen,
}

const LOCAL_HEADER: u32 = 0x0403_4b50;
const DATA_DESCRIPTOR: u32 = 0x0807_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const ZIP64_END: u32 = 0x0606_4b50;
const ZIP64_LOCATOR: u32 = 0x0706_4b50;
const END: u32 = 0x0605_4b50;
const ZIP64_EXTRA: u16 = 0x0001;
const FLAG_DATA_DESCRIPTOR: u16 = 1 << 3;
const FLAG_UTF8: u16 = 1 << 11;
/// Sizes at or past this need ZIP64 fields (`u32::MAX` itself is the marker).
const U32_LIMIT: u64 = u32::MAX as u64;
/// A streamed entry whose announced size is near 4 GiB gets ZIP64 fields up
/// front: DEFLATE may grow incompressible data a little.
const STREAMED_ZIP64_FROM: u64 = U32_LIMIT - U32_LIMIT / 64;
/// Made by: Unix (3), spec version 4.5.
const MADE_BY: u16 = (3 << 8) | 45;

#[derive(Clone, Debug)]
struct CentralEntry {
    name: Vec<u8>,
    flags: u16,
    method: Method,
    dos_time: u16,
    dos_date: u16,
    sizes: Sizes,
    offset: u64,
    zip64_local: bool,
    directory: bool,
}

/// The open entry: where it began and what its header promised.
#[derive(Clone, Debug)]
struct OpenEntry {
    central: CentralEntry,
    known: Option<Sizes>,
}

/// Lays out a ZIP archive: local headers, data descriptors and the central
/// directory, with every offset tracked. It never holds entry data.
#[derive(Debug, Default)]
pub struct ZipLayout {
    entries: Vec<CentralEntry>,
    offset: u64,
    open: Option<OpenEntry>,
}

fn dos_date_time(t: DateTime<Utc>) -> (u16, u16) {
    let year = t.year().clamp(1980, 2107);
    if year != t.year() {
        return (0, if year == 1980 { (1 << 5) | 1 } else { (127 << 9) | (12 << 5) | 31 });
    }
    let time = ((t.hour() as u16) << 11) | ((t.minute() as u16) << 5) | (t.second() as u16 / 2);
    let date = (((year - 1980) as u16) << 9) | ((t.month() as u16) << 5) | t.day() as u16;
    (time, date)
}

fn clamp32(v: u64) -> u32 {
    v.min(U32_LIMIT) as u32
}

impl ZipLayout {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes laid out so far: where the next header goes.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The local header of a new entry. Its data follows; then [`end`](Self::end).
    pub fn begin(&mut self, entry: &EntryStart<'_>) -> Result<Vec<u8>, ZipError> {
        if self.open.is_some() {
            return Err(ZipError::EntryOpen);
        }
        let directory = entry.name.ends_with('/');
        let mut flags = if entry.name.is_ascii() { 0 } else { FLAG_UTF8 };
        if entry.known.is_none() {
            flags |= FLAG_DATA_DESCRIPTOR;
        }
        let zip64_local = match entry.known {
            Some(s) => s.compressed >= U32_LIMIT || s.uncompressed >= U32_LIMIT,
            None => entry.size_hint >= STREAMED_ZIP64_FROM,
        };
        let (dos_time, dos_date) = dos_date_time(entry.modified);
        let name = entry.name.as_bytes();
        let known = entry.known.unwrap_or(Sizes { crc32: 0, compressed: 0, uncompressed: 0 });

        let mut out = Vec::with_capacity(30 + name.len() + 20);
        out.extend_from_slice(&LOCAL_HEADER.to_le_bytes());
        out.extend_from_slice(&version_needed(entry.method, zip64_local, directory).to_le_bytes());
        out.extend_from_slice(&flags.to_le_bytes());
        out.extend_from_slice(&entry.method.code().to_le_bytes());
        out.extend_from_slice(&dos_time.to_le_bytes());
        out.extend_from_slice(&dos_date.to_le_bytes());
        out.extend_from_slice(&known.crc32.to_le_bytes());
        if zip64_local {
            out.extend_from_slice(&u32::MAX.to_le_bytes());
            out.extend_from_slice(&u32::MAX.to_le_bytes());
        } else {
            out.extend_from_slice(&(known.compressed as u32).to_le_bytes());
            out.extend_from_slice(&(known.uncompressed as u32).to_le_bytes());
        }
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&(if zip64_local { 20u16 } else { 0 }).to_le_bytes());
        out.extend_from_slice(name);
        if zip64_local {
            out.extend_from_slice(&ZIP64_EXTRA.to_le_bytes());
            out.extend_from_slice(&16u16.to_le_bytes());
            out.extend_from_slice(&known.uncompressed.to_le_bytes());
            out.extend_from_slice(&known.compressed.to_le_bytes());
        }

        self.open = Some(OpenEntry {
            central: CentralEntry {
                name: name.to_vec(),
                flags,
                method: entry.method,
                dos_time,
                dos_date,
                sizes: known,
                offset: self.offset,
                zip64_local,
                directory,
            },
            known: entry.known,
        });
        self.offset += out.len() as u64;
        Ok(out)
    }

    /// Closes the open entry after `actual.compressed` bytes of data. Returns
    /// its data descriptor (empty when the header already held the sizes,
    /// which must then match).
    pub fn end(&mut self, actual: Sizes) -> Result<Vec<u8>, ZipError> {
        let OpenEntry { mut central, known } = self.open.take().ok_or(ZipError::NoOpenEntry)?;
        self.offset += actual.compressed;
        let descriptor = match known {
            Some(announced) if announced != actual => {
                return Err(ZipError::SizesChanged {
                    name: String::from_utf8_lossy(&central.name).into_owned(),
                    announced,
                    actual,
                });
            }
            Some(_) => Vec::new(),
            None => {
                let mut d = Vec::with_capacity(24);
                d.extend_from_slice(&DATA_DESCRIPTOR.to_le_bytes());
                d.extend_from_slice(&actual.crc32.to_le_bytes());
                if central.zip64_local {
                    d.extend_from_slice(&actual.compressed.to_le_bytes());
                    d.extend_from_slice(&actual.uncompressed.to_le_bytes());
                } else {
                    d.extend_from_slice(&clamp32(actual.compressed).to_le_bytes());
                    d.extend_from_slice(&clamp32(actual.uncompressed).to_le_bytes());
                }
                d
            }
        };
        self.offset += descriptor.len() as u64;
        central.sizes = actual;
        self.entries.push(central);
        Ok(descriptor)
    }

    /// The central directory and end records: the archive's last bytes.
    pub fn finish(self) -> Result<Vec<u8>, ZipError> {
        if self.open.is_some() {
            return Err(ZipError::EntryOpen);
        }
        let cd_offset = self.offset;
        let mut out = Vec::with_capacity(self.entries.iter().map(|e| 46 + e.name.len() + 28).sum::<usize>() + 98);
        for e in &self.entries {
            write_central(&mut out, e);
        }
        let cd_size = out.len() as u64;
        let count = self.entries.len() as u64;
        let needs_zip64 = count >= u16::MAX as u64 || cd_size >= U32_LIMIT || cd_offset >= U32_LIMIT;
        if needs_zip64 {
            let zip64_end_offset = cd_offset + cd_size;
            out.extend_from_slice(&ZIP64_END.to_le_bytes());
            out.extend_from_slice(&44u64.to_le_bytes());
            out.extend_from_slice(&MADE_BY.to_le_bytes());
            out.extend_from_slice(&45u16.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&count.to_le_bytes());
            out.extend_from_slice(&count.to_le_bytes());
            out.extend_from_slice(&cd_size.to_le_bytes());
            out.extend_from_slice(&cd_offset.to_le_bytes());
            out.extend_from_slice(&ZIP64_LOCATOR.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&zip64_end_offset.to_le_bytes());
            out.extend_from_slice(&1u32.to_le_bytes());
        }
        let count16 = count.min(u16::MAX as u64) as u16;
        out.extend_from_slice(&END.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&count16.to_le_bytes());
        out.extend_from_slice(&count16.to_le_bytes());
        out.extend_from_slice(&clamp32(cd_size).to_le_bytes());
        out.extend_from_slice(&clamp32(cd_offset).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        Ok(out)
    }
}

fn version_needed(method: Method, zip64: bool, directory: bool) -> u16 {
    if zip64 {
        45
    } else if method == Method::Deflated || directory {
        20
    } else {
        10
    }
}

fn write_central(out: &mut Vec<u8>, e: &CentralEntry) {
    // Like Go's archive/zip: when either size needs ZIP64, both go in the extra field.
    let zip64_sizes = e.zip64_local || e.sizes.compressed >= U32_LIMIT || e.sizes.uncompressed >= U32_LIMIT;
    let zip64_offset = e.offset >= U32_LIMIT;
    let mut extra = Vec::new();
    if zip64_sizes || zip64_offset {
        let mut fields = Vec::new();
        if zip64_sizes {
            fields.extend_from_slice(&e.sizes.uncompressed.to_le_bytes());
            fields.extend_from_slice(&e.sizes.compressed.to_le_bytes());
        }
        if zip64_offset {
            fields.extend_from_slice(&e.offset.to_le_bytes());
        }
        extra.extend_from_slice(&ZIP64_EXTRA.to_le_bytes());
        extra.extend_from_slice(&(fields.len() as u16).to_le_bytes());
        extra.extend_from_slice(&fields);
    }
    let zip64 = zip64_sizes || zip64_offset;
    let external: u32 = if e.directory { (0o040755 << 16) | 0x10 } else { 0o100644 << 16 };
    out.extend_from_slice(&CENTRAL_HEADER.to_le_bytes());
    out.extend_from_slice(&MADE_BY.to_le_bytes());
    out.extend_from_slice(&version_needed(e.method, zip64, e.directory).to_le_bytes());
    out.extend_from_slice(&e.flags.to_le_bytes());
    out.extend_from_slice(&e.method.code().to_le_bytes());
    out.extend_from_slice(&e.dos_time.to_le_bytes());
    out.extend_from_slice(&e.dos_date.to_le_bytes());
    out.extend_from_slice(&e.sizes.crc32.to_le_bytes());
    if zip64_sizes {
        out.extend_from_slice(&u32::MAX.to_le_bytes());
        out.extend_from_slice(&u32::MAX.to_le_bytes());
    } else {
        out.extend_from_slice(&(e.sizes.compressed as u32).to_le_bytes());
        out.extend_from_slice(&(e.sizes.uncompressed as u32).to_le_bytes());
    }
    out.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
    out.extend_from_slice(&(extra.len() as u16).to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&external.to_le_bytes());
    out.extend_from_slice(&(if zip64_offset { u32::MAX } else { e.offset as u32 }).to_le_bytes());
    out.extend_from_slice(&e.name);
    out.extend_from_slice(&extra);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::path::Path;
    use std::process::Command;

    fn check_with(program: &str, args: &[&str], archive: &Path) -> String {
        crate::readers::run(program, args, archive).unwrap_or_else(|e| panic!("{e}"))
    }

    fn assert_readers_agree(archive: &Path, expected: &[(String, Vec<u8>)]) {
        let expected = expected.iter().map(|(n, b)| (n.clone(), crate::readers::digest(b))).collect();
        crate::readers::verify(archive, &expected).unwrap_or_else(|e| panic!("{e}"));
    }

    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn every_kind_of_entry_opens_in_four_readers() {
        let when = DateTime::parse_from_rfc3339("2024-05-06T07:08:10Z").unwrap().with_timezone(&Utc);
        let text = b"hello hello hello hello hello\n".repeat(100);
        let jpeg = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect::<Vec<_>>();
        let mut layout = ZipLayout::new();
        let mut out = Vec::new();
        let mut expected = Vec::new();

        // A directory, a stored entry with known sizes, a deflated one
        // compressed ahead, and a deflated one streamed with a descriptor.
        out.extend(
            layout
                .begin(&EntryStart {
                    name: "Fotos/",
                    method: Method::Stored,
                    modified: when,
                    known: Some(Sizes { crc32: 0, compressed: 0, uncompressed: 0 }),
                    size_hint: 0,
                })
                .unwrap(),
        );
        out.extend(layout.end(Sizes { crc32: 0, compressed: 0, uncompressed: 0 }).unwrap());
        expected.push(("Fotos/".to_string(), Vec::new()));

        let sizes = Sizes { crc32: crc32fast::hash(&jpeg), compressed: 5000, uncompressed: 5000 };
        let name = "Fotos/Ça été.jpg";
        out.extend(
            layout
                .begin(&EntryStart { name, method: Method::Stored, modified: when, known: Some(sizes), size_hint: 0 })
                .unwrap(),
        );
        out.extend(&jpeg);
        assert!(layout.end(sizes).unwrap().is_empty());
        expected.push((name.to_string(), jpeg.clone()));

        let packed = deflate(&text);
        let sizes =
            Sizes { crc32: crc32fast::hash(&text), compressed: packed.len() as u64, uncompressed: text.len() as u64 };
        out.extend(
            layout
                .begin(&EntryStart {
                    name: "notes.txt",
                    method: Method::Deflated,
                    modified: when,
                    known: Some(sizes),
                    size_hint: 0,
                })
                .unwrap(),
        );
        out.extend(&packed);
        layout.end(sizes).unwrap();
        expected.push(("notes.txt".to_string(), text.clone()));

        out.extend(
            layout
                .begin(&EntryStart {
                    name: "streamed.txt",
                    method: Method::Deflated,
                    modified: when,
                    known: None,
                    size_hint: text.len() as u64,
                })
                .unwrap(),
        );
        out.extend(&packed);
        let descriptor = layout.end(sizes).unwrap();
        assert_eq!(descriptor.len(), 16);
        out.extend(descriptor);
        expected.push(("streamed.txt".to_string(), text.clone()));

        assert_eq!(layout.offset(), out.len() as u64);
        out.extend(layout.finish().unwrap());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.zip");
        std::fs::write(&path, &out).unwrap();
        assert_readers_agree(&path, &expected);
    }

    #[test]
    fn announced_sizes_that_do_not_match_are_an_error() {
        let mut layout = ZipLayout::new();
        let announced = Sizes { crc32: 1, compressed: 3, uncompressed: 3 };
        layout
            .begin(&EntryStart {
                name: "a",
                method: Method::Stored,
                modified: Utc::now(),
                known: Some(announced),
                size_hint: 0,
            })
            .unwrap();
        let actual = Sizes { crc32: 2, compressed: 3, uncompressed: 3 };
        assert!(matches!(layout.end(actual), Err(ZipError::SizesChanged { .. })));
    }

    /// 70,000 entries pass the 65,535 of the classic end record: ZIP64 end
    /// records are written and every reader counts them all.
    #[test]
    fn more_than_65535_entries_use_zip64_end_records() {
        let mut layout = ZipLayout::new();
        let mut out = Vec::new();
        let n = 70_000;
        for i in 0..n {
            let name = format!("f{i}");
            let data = [b'x'];
            let sizes = Sizes { crc32: crc32fast::hash(&data), compressed: 1, uncompressed: 1 };
            out.extend(
                layout
                    .begin(&EntryStart {
                        name: &name,
                        method: Method::Stored,
                        modified: Utc::now(),
                        known: Some(sizes),
                        size_hint: 1,
                    })
                    .unwrap(),
            );
            out.extend(data);
            layout.end(sizes).unwrap();
        }
        let tail = layout.finish().unwrap();
        assert_eq!(&tail[tail.len() - 22..tail.len() - 18], &END.to_le_bytes());
        out.extend(tail);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("many.zip");
        std::fs::write(&path, &out).unwrap();
        check_with("unzip", &["-tq"], &path);
        let seven = check_with("7z", &["t", "-bd"], &path);
        assert!(seven.contains(&format!("Files: {n}")), "{seven}");
        let listing = check_with("bsdtar", &["-tf"], &path);
        assert_eq!(listing.lines().count(), n);
        let count = Command::new("python3")
            .args(["-c", "import sys, zipfile; print(len(zipfile.ZipFile(sys.argv[1]).infolist()))"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&count.stdout).trim(), n.to_string());
    }
}
