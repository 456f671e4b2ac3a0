//! What is read out of uploaded bytes: size, checksums, dimensions and
//! EXIF. Read with parsers of headers only: nothing here decodes an image.

use crate::store::BlobReader;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use tokio::io::AsyncReadExt;

/// How much of the start of a file is kept for metadata: EXIF sits in the
/// first segments of JPEG, PNG, WebP and HEIF files.
const METADATA_PREFIX: usize = 1 << 20;
/// Embedded metadata is capped so a crafted file cannot bloat the catalog.
const MAX_METADATA_FIELDS: usize = 64;
const MAX_METADATA_VALUE: usize = 256;

/// Facts about a blob, read once at upload completion.
#[derive(Clone, Debug, PartialEq)]
pub struct Inspection {
    pub size: u64,
    pub crc32: u32,
    pub sha256: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub embedded_metadata: BTreeMap<String, String>,
}

/// Streams a blob once: checksums over all of it, metadata from its start.
/// Memory stays bounded whatever the size.
pub async fn inspect(mut reader: BlobReader) -> std::io::Result<Inspection> {
    let mut crc = crc32fast::Hasher::new();
    let mut sha = Sha256::new();
    let mut prefix = Vec::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        crc.update(chunk);
        sha.update(chunk);
        size += n as u64;
        if prefix.len() < METADATA_PREFIX {
            let take = (METADATA_PREFIX - prefix.len()).min(n);
            prefix.extend_from_slice(&chunk[..take]);
        }
    }
    let (width, height) = match imagesize::blob_size(&prefix) {
        Ok(dim) => (u32::try_from(dim.width).ok(), u32::try_from(dim.height).ok()),
        Err(_) => (None, None),
    };
    Ok(Inspection {
        size,
        crc32: crc.finalize(),
        sha256: format!("{:x}", sha.finalize()),
        width,
        height,
        embedded_metadata: embedded_metadata(&prefix),
    })
}

/// Whether an embedded metadata field (an EXIF tag name, as
/// [`embedded_metadata`] keys them) places the photo — every GPS field —
/// or identifies the device or person behind it: serial numbers, the
/// camera owner's and the artist's names, the image's unique id. What a
/// link that hides identifying metadata leaves out.
pub fn is_identifying_field(name: &str) -> bool {
    name.starts_with(IDENTIFYING_PREFIX) || IDENTIFYING_FIELDS.contains(&name)
}

/// The prefix of the fields that place the photo ([`is_identifying_field`]).
pub const IDENTIFYING_PREFIX: &str = "GPS";
/// The fields that identify the device or person behind the photo
/// ([`is_identifying_field`]).
pub const IDENTIFYING_FIELDS: &[&str] =
    &["BodySerialNumber", "LensSerialNumber", "CameraOwnerName", "Artist", "ImageUniqueID"];

/// EXIF fields of the primary image as `name → human-readable value`.
pub fn embedded_metadata(bytes: &[u8]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Ok(exif) = exif::Reader::new().read_from_container(&mut std::io::Cursor::new(bytes)) else {
        return out;
    };
    for field in exif.fields() {
        if field.ifd_num != exif::In::PRIMARY || field.tag == exif::Tag::MakerNote {
            continue;
        }
        if out.len() >= MAX_METADATA_FIELDS {
            break;
        }
        let value = field.display_value().with_unit(&exif).to_string();
        let value = value.trim_matches('"').trim().to_string();
        if value.is_empty() || value.len() > MAX_METADATA_VALUE || value.chars().any(char::is_control) {
            continue;
        }
        out.insert(field.tag.to_string(), value);
    }
    out
}
