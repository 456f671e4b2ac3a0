//! Images made and decoded: previews of images for visitors (the one place
//! an image is decoded, behind the domain's [`Previews`] port, so that only
//! the processes that serve previews link the codecs) and the generated
//! images the demo account and the tests are seeded with.

use publinks_domain::public::Previews;

/// A colourful generated image, PNG-encoded, for the demo account and tests.
pub fn demo_png(width: u32, height: u32, seed: u8) -> Vec<u8> {
    let img = demo_image(width, height, seed);
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).expect("PNG encodes in memory");
    out.into_inner()
}

/// A generated JPEG carrying EXIF (camera, date, exposure), so metadata
/// extraction has something real to read.
pub fn demo_jpeg_with_exif(width: u32, height: u32, seed: u8, camera: &str) -> Vec<u8> {
    jpeg_with_exif(width, height, seed, camera, false)
}

/// [`demo_jpeg_with_exif`] that also says where it was taken (GPS latitude,
/// longitude and altitude) and by which camera body and owner (serial
/// number, owner name): what a link may keep from visitors.
pub fn demo_jpeg_with_location(width: u32, height: u32, seed: u8, camera: &str) -> Vec<u8> {
    jpeg_with_exif(width, height, seed, camera, true)
}

fn jpeg_with_exif(width: u32, height: u32, seed: u8, camera: &str, located: bool) -> Vec<u8> {
    let img = image::DynamicImage::ImageRgb8(demo_image(width, height, seed));
    let mut jpeg = std::io::Cursor::new(Vec::new());
    img.write_to(&mut jpeg, image::ImageFormat::Jpeg).expect("JPEG encodes in memory");
    let jpeg = jpeg.into_inner();

    use exif::{Field, In, Rational, Tag, Value};
    let ascii =
        |tag, text: &str| Field { tag, ifd_num: In::PRIMARY, value: Value::Ascii(vec![text.as_bytes().to_vec()]) };
    let degrees = |d: u32, m: u32, s100: u32| {
        Value::Rational(vec![
            Rational { num: d, denom: 1 },
            Rational { num: m, denom: 1 },
            Rational { num: s100, denom: 100 },
        ])
    };
    let location = [
        ascii(Tag::GPSLatitudeRef, "N"),
        Field { tag: Tag::GPSLatitude, ifd_num: In::PRIMARY, value: degrees(48, 51, 2964) },
        ascii(Tag::GPSLongitudeRef, "E"),
        Field { tag: Tag::GPSLongitude, ifd_num: In::PRIMARY, value: degrees(2, 17, 4008) },
        Field { tag: Tag::GPSAltitudeRef, ifd_num: In::PRIMARY, value: Value::Byte(vec![0]) },
        Field {
            tag: Tag::GPSAltitude,
            ifd_num: In::PRIMARY,
            value: Value::Rational(vec![Rational { num: 35, denom: 1 }]),
        },
        ascii(Tag::BodySerialNumber, "PL1-0042-7781"),
        ascii(Tag::CameraOwnerName, "Ada Admin"),
    ];
    let fields = [
        Field { tag: Tag::Make, ifd_num: In::PRIMARY, value: Value::Ascii(vec![b"Publinks Optics".to_vec()]) },
        Field { tag: Tag::Model, ifd_num: In::PRIMARY, value: Value::Ascii(vec![camera.as_bytes().to_vec()]) },
        Field {
            tag: Tag::DateTimeOriginal,
            ifd_num: In::PRIMARY,
            value: Value::Ascii(vec![b"2026:03:14 09:26:53".to_vec()]),
        },
        Field {
            tag: Tag::ExposureTime,
            ifd_num: In::PRIMARY,
            value: Value::Rational(vec![Rational { num: 1, denom: 250 }]),
        },
        Field {
            tag: Tag::FNumber,
            ifd_num: In::PRIMARY,
            value: Value::Rational(vec![Rational { num: 28, denom: 10 }]),
        },
        Field { tag: Tag::PhotographicSensitivity, ifd_num: In::PRIMARY, value: Value::Short(vec![200]) },
    ];
    let mut writer = exif::experimental::Writer::new();
    for f in fields.iter().chain(location.iter().filter(|_| located)) {
        writer.push_field(f);
    }
    let mut tiff = std::io::Cursor::new(Vec::new());
    writer.write(&mut tiff, false).expect("EXIF encodes in memory");
    let tiff = tiff.into_inner();

    // An APP1 segment right after the JPEG's start-of-image marker.
    let mut out = Vec::with_capacity(jpeg.len() + tiff.len() + 10);
    out.extend_from_slice(&jpeg[..2]);
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((tiff.len() + 8) as u16).to_be_bytes());
    out.extend_from_slice(b"Exif\0\0");
    out.extend_from_slice(&tiff);
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn demo_image(width: u32, height: u32, seed: u8) -> image::RgbImage {
    image::RgbImage::from_fn(width, height, |x, y| {
        let fx = x as f32 / width.max(1) as f32;
        let fy = y as f32 / height.max(1) as f32;
        let s = seed as f32 / 255.0;
        let r = (255.0 * (fx * 0.8 + s * 0.2)) as u8;
        let g = (255.0 * (fy * 0.7 + (1.0 - s) * 0.3)) as u8;
        let b = (255.0 * ((fx + fy) * 0.5 * (1.0 - s) + s * 0.5)) as u8;
        image::Rgb([r, g, b])
    })
}

/// Most pixels an image may have for a preview to be made of it: decoding
/// holds all of them at once (at 4 bytes each, 96 MiB for this many).
pub const MAX_THUMBNAIL_SOURCE_PIXELS: u64 = 24_000_000;
/// Longest side of an image a preview is made of.
pub const MAX_THUMBNAIL_SOURCE_SIDE: u32 = 20_000;
/// Most memory the decoder may hold for one image.
pub const MAX_THUMBNAIL_DECODE_BYTES: u64 = 128 * 1024 * 1024;

static DECODES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many images this process has started decoding for previews: the
/// figure that shows a failed preview is not tried again on every view.
pub fn thumbnail_decodes() -> u64 {
    DECODES.load(std::sync::atomic::Ordering::Relaxed)
}

/// Why no preview was made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ThumbnailError {
    /// Not an image this build decodes, or a damaged one.
    #[error("not an image that can be decoded: {0}")]
    Undecodable(String),
    /// Larger than the limits above: it is not decoded at all.
    #[error("the image is {width}×{height} pixels, more than a preview is made of")]
    TooLarge { width: u32, height: u32 },
}

/// A PNG preview at most `max` pixels on its longer side. The image's size
/// is read from its header first, and one larger than
/// [`MAX_THUMBNAIL_SOURCE_PIXELS`] or [`MAX_THUMBNAIL_SOURCE_SIDE`] is
/// refused without being decoded; the decoder itself is held to the same
/// sides and to [`MAX_THUMBNAIL_DECODE_BYTES`].
pub fn thumbnail_png(bytes: &[u8], max: u32) -> Result<Vec<u8>, ThumbnailError> {
    let undecodable = |e: &dyn std::fmt::Display| ThumbnailError::Undecodable(e.to_string());
    let reader =
        || image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|e| undecodable(&e));
    let (width, height) = reader()?.into_dimensions().map_err(|e| undecodable(&e))?;
    let too_large = ThumbnailError::TooLarge { width, height };
    if width.max(height) > MAX_THUMBNAIL_SOURCE_SIDE
        || u64::from(width) * u64::from(height) > MAX_THUMBNAIL_SOURCE_PIXELS
    {
        return Err(too_large);
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_THUMBNAIL_SOURCE_SIDE);
    limits.max_image_height = Some(MAX_THUMBNAIL_SOURCE_SIDE);
    limits.max_alloc = Some(MAX_THUMBNAIL_DECODE_BYTES);
    let mut reader = reader()?;
    reader.limits(limits);
    DECODES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let img = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => too_large,
        other => undecodable(&other),
    })?;
    let thumb = if img.width() > max || img.height() > max { img.thumbnail(max, max) } else { img };
    let mut out = std::io::Cursor::new(Vec::new());
    thumb.write_to(&mut out, image::ImageFormat::Png).map_err(|e| undecodable(&e))?;
    Ok(out.into_inner())
}

/// The previews of `public-api` and the local server: [`thumbnail_png`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ImagePreviews;

impl Previews for ImagePreviews {
    fn thumbnail_png(&self, bytes: &[u8], max: u32) -> Result<Vec<u8>, String> {
        thumbnail_png(bytes, max).map_err(|e| e.to_string())
    }
}

/// A PNG that claims `width`×`height` pixels but holds one: what a
/// decompression bomb looks like to a header reader (tests).
pub fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut png = demo_png(1, 1, 0);
    // IHDR: length (4) and type (4) at 8, width and height at 16..24, CRC at 29..33.
    png[16..20].copy_from_slice(&width.to_be_bytes());
    png[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32fast::hash(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

#[cfg(test)]
mod tests {
    use super::*;
    use publinks_domain::inspect::{embedded_metadata, is_identifying_field};

    #[tokio::test]
    async fn inspection_reads_dimensions_checksums_and_exif() {
        let jpeg = demo_jpeg_with_exif(64, 48, 7, "Model T");
        let found = publinks_domain::inspect::inspect(Box::pin(std::io::Cursor::new(jpeg.clone()))).await.unwrap();
        assert_eq!(found.size, jpeg.len() as u64);
        assert_eq!(found.crc32, crc32fast::hash(&jpeg));
        assert_eq!((found.width, found.height), (Some(64), Some(48)));
        assert_eq!(found.embedded_metadata.get("Model").map(String::as_str), Some("Model T"));
        assert_eq!(found.embedded_metadata.get("Make").map(String::as_str), Some("Publinks Optics"));
        assert!(found.embedded_metadata.contains_key("ExposureTime"));
    }

    #[test]
    fn location_and_device_fields_are_read_and_known_as_identifying() {
        let found = embedded_metadata(&demo_jpeg_with_location(64, 48, 7, "Model T"));
        for field in ["GPSLatitude", "GPSLongitude", "GPSAltitude", "BodySerialNumber", "CameraOwnerName"] {
            assert!(found.contains_key(field), "{field} is read: {found:?}");
            assert!(is_identifying_field(field), "{field}");
        }
        assert!(found["GPSLatitude"].contains("48"), "{found:?}");
        for field in ["Make", "Model", "DateTimeOriginal", "ExposureTime", "FNumber"] {
            assert!(found.contains_key(field) && !is_identifying_field(field), "{field}");
        }
        let plain = embedded_metadata(&demo_jpeg_with_exif(64, 48, 7, "Model T"));
        assert!(!plain.keys().any(|k| is_identifying_field(k)), "{plain:?}");
    }

    #[tokio::test]
    async fn bytes_that_are_not_an_image_give_no_dimensions_and_no_error() {
        let found =
            publinks_domain::inspect::inspect(Box::pin(std::io::Cursor::new(b"just text".to_vec()))).await.unwrap();
        assert_eq!((found.width, found.height), (None, None));
        assert!(found.embedded_metadata.is_empty());
        assert_eq!(found.size, 9);
    }

    #[test]
    fn previews_are_made_within_limits_and_bombs_are_refused_undecoded() {
        let png = thumbnail_png(&demo_png(800, 400, 3), 320).unwrap();
        let thumb = image::load_from_memory(&png).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (320, 160));
        let before = thumbnail_decodes();
        assert_eq!(
            thumbnail_png(&png_claiming(100_000, 100_000), 320),
            Err(ThumbnailError::TooLarge { width: 100_000, height: 100_000 })
        );
        assert_eq!(
            thumbnail_png(&png_claiming(6_000, 5_000), 320),
            Err(ThumbnailError::TooLarge { width: 6_000, height: 5_000 })
        );
        assert_eq!(thumbnail_decodes(), before, "refused from the header alone");
        assert!(matches!(thumbnail_png(b"not an image", 320), Err(ThumbnailError::Undecodable(_))));
        // Within the limits but lying about its size: the decoder fails, it does not allocate the claim.
        assert!(matches!(thumbnail_png(&png_claiming(4_000, 4_000), 320), Err(ThumbnailError::Undecodable(_))));
    }
}
