//! Images made and decoded: the preview renditions of images (the one place
//! an image is decoded, behind the domain's [`RenditionMaker`] port, so that
//! only the processes that run library jobs link the codecs) and the
//! generated images the demo account and the tests are seeded with.

use publinks_domain::renditions::{RenditionMaker, RenditionSize, WatermarkFailure};

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

/// Most pixels an image may have for renditions to be made of it: decoding
/// holds all of them at once (at 4 bytes each, 96 MiB for this many).
pub const MAX_RENDITION_SOURCE_PIXELS: u64 = 24_000_000;
/// Longest side of an image renditions are made of.
pub const MAX_RENDITION_SOURCE_SIDE: u32 = 20_000;
/// Most memory the decoder may hold for one image.
pub const MAX_RENDITION_DECODE_BYTES: u64 = 128 * 1024 * 1024;
/// WebP quality of renditions (libwebp's 0–100 scale): at this setting a
/// photo's large rendition is well under half the bytes of JPEG at the same
/// setting, without visible blocking (README, "Previews").
pub const RENDITION_QUALITY: f32 = 75.0;

static DECODES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many images this process has started decoding for renditions: the
/// figure that shows an image is decoded once, and a refused one not at all.
pub fn rendition_decodes() -> u64 {
    DECODES.load(std::sync::atomic::Ordering::Relaxed)
}

/// Why no rendition was made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RenditionError {
    /// Not an image this build decodes, or a damaged one.
    #[error("not an image that can be decoded: {0}")]
    Undecodable(String),
    /// Larger than the limits above: it is not decoded at all.
    #[error("the image is {width}×{height} pixels, more than a rendition is made of")]
    TooLarge { width: u32, height: u32 },
}

/// The renditions of an image, every size of [`RenditionSize::ALL`], as
/// lossy WebP at [`RENDITION_QUALITY`]; an image smaller than a size is kept
/// at its own size. The image's size is read from its header first, and one
/// larger than [`MAX_RENDITION_SOURCE_PIXELS`] or
/// [`MAX_RENDITION_SOURCE_SIDE`] is refused without being decoded; the
/// decoder itself is held to the same sides and to
/// [`MAX_RENDITION_DECODE_BYTES`]. The image is decoded once.
pub fn renditions(bytes: &[u8]) -> Result<Vec<(RenditionSize, Vec<u8>)>, RenditionError> {
    let undecodable = |e: &dyn std::fmt::Display| RenditionError::Undecodable(e.to_string());
    let reader =
        || image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|e| undecodable(&e));
    let (width, height) = reader()?.into_dimensions().map_err(|e| undecodable(&e))?;
    let too_large = RenditionError::TooLarge { width, height };
    if width.max(height) > MAX_RENDITION_SOURCE_SIDE
        || u64::from(width) * u64::from(height) > MAX_RENDITION_SOURCE_PIXELS
    {
        return Err(too_large);
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_RENDITION_SOURCE_SIDE);
    limits.max_image_height = Some(MAX_RENDITION_SOURCE_SIDE);
    limits.max_alloc = Some(MAX_RENDITION_DECODE_BYTES);
    let mut reader = reader()?;
    reader.limits(limits);
    DECODES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let img = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => too_large,
        other => undecodable(&other),
    })?;
    // Largest first; each smaller one from the one before, not the original.
    let mut sizes = RenditionSize::ALL.to_vec();
    sizes.sort_by_key(|s| std::cmp::Reverse(s.long_side()));
    let mut current = img;
    let mut out = Vec::new();
    for size in sizes {
        let max = size.long_side();
        if current.width() > max || current.height() > max {
            current = current.resize(max, max, image::imageops::FilterType::Triangle);
        }
        out.push((size, encode_webp(&current)));
    }
    Ok(out)
}

/// Lossy WebP of `img` at [`RENDITION_QUALITY`]; transparency is kept.
fn encode_webp(img: &image::DynamicImage) -> Vec<u8> {
    let (w, h) = (img.width(), img.height());
    if img.color().has_alpha() {
        let rgba = img.to_rgba8();
        webp::Encoder::from_rgba(rgba.as_raw(), w, h).encode(RENDITION_QUALITY).to_vec()
    } else {
        let rgb = img.to_rgb8();
        webp::Encoder::from_rgb(rgb.as_raw(), w, h).encode(RENDITION_QUALITY).to_vec()
    }
}

/// The typeface watermarks are drawn in: DejaVu Sans Bold, vendored
/// unmodified under the Bitstream Vera licence (`assets/DejaVu-LICENSE.txt`),
/// carried DEFLATE-compressed (build.rs) and inflated once, when first used.
fn watermark_font() -> Result<&'static [u8], String> {
    static FONT: std::sync::OnceLock<Result<Vec<u8>, String>> = std::sync::OnceLock::new();
    const COMPRESSED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/watermark-font.deflate"));
    let font = FONT.get_or_init(|| {
        miniz_oxide::inflate::decompress_to_vec(COMPRESSED)
            .map_err(|e| format!("the watermark font does not inflate: {e}"))
    });
    font.as_deref().map_err(Clone::clone)
}

/// `text` burned into a WebP rendition, once across its middle: white at
/// 55% over a dark shadow at 40%, so that it reads on light and dark
/// photos; as wide as a tenth of the image's height allows, at most 90% of
/// its width. Re-encoded as WebP at [`RENDITION_QUALITY`].
pub fn watermark(rendition: &[u8], text: &str) -> Result<Vec<u8>, WatermarkFailure> {
    use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
    let (mut img, alpha) = decode_webp(rendition).ok_or_else(not_webp)?;
    let (w, h) = img.dimensions();
    let font = FontRef::try_from_slice(watermark_font().map_err(WatermarkFailure::Mark)?)
        .map_err(|e| WatermarkFailure::Mark(e.to_string()))?;
    let width_at = |px: f32| {
        let scaled = font.as_scaled(PxScale::from(px));
        let mut width = 0.0;
        let mut previous = None;
        for c in text.chars() {
            let id = scaled.glyph_id(c);
            width += previous.map_or(0.0, |p| scaled.kern(p, id)) + scaled.h_advance(id);
            previous = Some(id);
        }
        width
    };
    let mut px = (h as f32 / 10.0).max(12.0);
    let widest = w as f32 * 0.9;
    if width_at(px) > widest {
        px *= widest / width_at(px);
    }
    let scaled = font.as_scaled(PxScale::from(px));
    let x0 = (w as f32 - width_at(px)) / 2.0;
    let baseline = (h as f32 + scaled.ascent() + scaled.descent()) / 2.0;
    let shadow = (px / 24.0).max(1.0);
    for (offset, colour, opacity) in [(shadow, [0u8, 0, 0], 0.4f32), (0.0, [255, 255, 255], 0.55)] {
        let (mut x, mut previous) = (x0, None);
        for c in text.chars() {
            let id = scaled.glyph_id(c);
            x += previous.map_or(0.0, |p| scaled.kern(p, id));
            previous = Some(id);
            let glyph = id.with_scale_and_position(px, ab_glyph::point(x + offset, baseline + offset));
            x += scaled.h_advance(id);
            let Some(outline) = font.outline_glyph(glyph) else { continue };
            let bounds = outline.px_bounds();
            outline.draw(|gx, gy, coverage| {
                let (px_x, px_y) = (bounds.min.x as i64 + gx as i64, bounds.min.y as i64 + gy as i64);
                if px_x < 0 || px_y < 0 || px_x >= w as i64 || px_y >= h as i64 {
                    return;
                }
                let a = coverage.clamp(0.0, 1.0) * opacity;
                let pixel = img.get_pixel_mut(px_x as u32, px_y as u32);
                for (channel, target) in pixel.0.iter_mut().zip(colour) {
                    *channel = (*channel as f32 * (1.0 - a) + target as f32 * a).round() as u8;
                }
            });
        }
    }
    Ok(encode_rendition(img, alpha))
}

/// A rendition the watermark cannot be burned into: its own fault, not the mark's.
fn not_webp() -> WatermarkFailure {
    WatermarkFailure::Rendition("the rendition is not a WebP image".to_string())
}

/// A WebP image's pixels as RGBA, and whether it had an alpha channel.
fn decode_webp(bytes: &[u8]) -> Option<(image::RgbaImage, bool)> {
    let decoded = webp::Decoder::new(bytes).decode()?;
    let (w, h) = (decoded.width(), decoded.height());
    let rgba = if decoded.is_alpha() {
        decoded.to_vec()
    } else {
        decoded.chunks(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect()
    };
    Some((image::RgbaImage::from_raw(w, h, rgba)?, decoded.is_alpha()))
}

/// A marked rendition encoded again as [`encode_webp`] does, with an alpha
/// channel only if the rendition had one.
fn encode_rendition(img: image::RgbaImage, alpha: bool) -> Vec<u8> {
    let img = if alpha {
        image::DynamicImage::ImageRgba8(img)
    } else {
        image::DynamicImage::ImageRgb8(image::DynamicImage::ImageRgba8(img).to_rgb8())
    };
    encode_webp(&img)
}

/// The share of the preview's width and of its height a logo watermark
/// fills (the tighter of the two, its proportions kept).
pub const LOGO_WATERMARK_SHARE: f32 = 0.4;
/// How opaque a logo watermark is drawn (times its own alpha).
pub const LOGO_WATERMARK_OPACITY: f32 = 0.5;

/// The account's `logo` (PNG, JPEG or WebP, as uploaded) blended into a
/// WebP rendition, once in its centre: scaled, up or down, to fill
/// [`LOGO_WATERMARK_SHARE`] of the rendition's width or height (its
/// proportions kept), at [`LOGO_WATERMARK_OPACITY`] times its own
/// transparency. Centred rather than tiled, as the text is: the subject of
/// a proof is usually in the middle, so the mark cannot be cropped away
/// without it, while the rest of the photo stays readable for choosing.
/// The logo is decoded within the limits renditions have. Re-encoded as
/// WebP at [`RENDITION_QUALITY`].
pub fn logo_watermark(rendition: &[u8], logo: &[u8]) -> Result<Vec<u8>, WatermarkFailure> {
    let logo = decode_logo(logo).map_err(WatermarkFailure::Mark)?;
    let (mut img, alpha) = decode_webp(rendition).ok_or_else(not_webp)?;
    let (w, h) = img.dimensions();
    let (lw, lh) = (logo.width() as f32, logo.height() as f32);
    let scale = (w as f32 * LOGO_WATERMARK_SHARE / lw).min(h as f32 * LOGO_WATERMARK_SHARE / lh);
    let (sw, sh) = (((lw * scale).round() as u32).max(1), ((lh * scale).round() as u32).max(1));
    let logo = image::imageops::resize(&logo, sw, sh, image::imageops::FilterType::Triangle);
    let (x0, y0) = ((w.saturating_sub(sw)) / 2, (h.saturating_sub(sh)) / 2);
    for (x, y, mark) in logo.enumerate_pixels() {
        let (px, py) = (x0 + x, y0 + y);
        if px >= w || py >= h {
            continue;
        }
        let a = mark[3] as f32 / 255.0 * LOGO_WATERMARK_OPACITY;
        let pixel = img.get_pixel_mut(px, py);
        for c in 0..3 {
            pixel[c] = (pixel[c] as f32 * (1.0 - a) + mark[c] as f32 * a).round() as u8;
        }
    }
    Ok(encode_rendition(img, alpha))
}

/// A logo's pixels: WebP through libwebp (the `image` crate is built
/// without it), PNG and JPEG through `image`, held to the decoder limits of
/// renditions.
fn decode_logo(bytes: &[u8]) -> Result<image::RgbaImage, String> {
    if bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        let undecodable = || "the logo is not a WebP image that can be decoded".to_string();
        let features = webp::BitstreamFeatures::new(bytes).ok_or_else(undecodable)?;
        let (width, height) = (features.width(), features.height());
        if width.max(height) > MAX_RENDITION_SOURCE_SIDE
            || u64::from(width) * u64::from(height) > MAX_RENDITION_SOURCE_PIXELS
        {
            return Err(format!("the logo is {width}×{height} pixels, more than is decoded"));
        }
        return decode_webp(bytes).map(|(img, _)| img).ok_or_else(undecodable);
    }
    let mut reader =
        image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|e| e.to_string())?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_RENDITION_SOURCE_SIDE);
    limits.max_image_height = Some(MAX_RENDITION_SOURCE_SIDE);
    limits.max_alloc = Some(MAX_RENDITION_DECODE_BYTES);
    reader.limits(limits);
    Ok(reader.decode().map_err(|e| format!("the logo cannot be decoded: {e}"))?.to_rgba8())
}

/// The renditions of the library jobs: [`renditions`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ImageRenditions;

impl RenditionMaker for ImageRenditions {
    fn make(&self, bytes: &[u8]) -> Result<Vec<(RenditionSize, Vec<u8>)>, String> {
        renditions(bytes).map_err(|e| e.to_string())
    }

    fn watermark(&self, rendition: &[u8], text: &str) -> Result<Vec<u8>, WatermarkFailure> {
        watermark(rendition, text)
    }

    fn logo_watermark(&self, rendition: &[u8], logo: &[u8]) -> Result<Vec<u8>, WatermarkFailure> {
        logo_watermark(rendition, logo)
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
    fn renditions_are_webp_within_their_sizes_and_bombs_are_refused_undecoded() {
        let made = renditions(&demo_jpeg_with_exif(3000, 1500, 3, "Wide")).unwrap();
        let sides: Vec<_> = made
            .iter()
            .map(|(size, bytes)| {
                assert_eq!(&bytes[..4], b"RIFF");
                assert_eq!(&bytes[8..12], b"WEBP");
                let (w, h) = webp::Decoder::new(bytes).decode().map(|i| (i.width(), i.height())).unwrap();
                (*size, w, h)
            })
            .collect();
        assert_eq!(sides, vec![(RenditionSize::Large, 2048, 1024), (RenditionSize::Grid, 400, 200)]);
        let small = renditions(&demo_png(300, 200, 1)).unwrap();
        let (_, grid) = small.iter().find(|(s, _)| *s == RenditionSize::Grid).unwrap();
        let grid = webp::Decoder::new(grid).decode().unwrap();
        assert_eq!((grid.width(), grid.height()), (300, 200), "never enlarged");
        let before = rendition_decodes();
        assert_eq!(
            renditions(&png_claiming(100_000, 100_000)),
            Err(RenditionError::TooLarge { width: 100_000, height: 100_000 })
        );
        assert_eq!(
            renditions(&png_claiming(6_000, 5_000)),
            Err(RenditionError::TooLarge { width: 6_000, height: 5_000 })
        );
        assert_eq!(rendition_decodes(), before, "refused from the header alone");
        assert!(matches!(renditions(b"not an image"), Err(RenditionError::Undecodable(_))));
        // Within the limits but lying about its size: the decoder fails, it does not allocate the claim.
        assert!(matches!(renditions(&png_claiming(4_000, 4_000)), Err(RenditionError::Undecodable(_))));
    }

    /// The font inflated at run time is the vendored file, byte for byte:
    /// watermarks draw the same glyphs, kerning and metrics as before.
    #[test]
    fn the_watermark_font_inflates_to_the_vendored_file() {
        assert_eq!(watermark_font().unwrap(), include_bytes!("../assets/DejaVuSans-Bold.ttf"));
    }

    #[test]
    fn a_watermark_changes_the_middle_of_the_preview_and_leaves_its_corners() {
        let made = renditions(&demo_jpeg_with_exif(1600, 1000, 3, "Wide")).unwrap();
        let (_, large) = made.iter().find(|(s, _)| *s == RenditionSize::Large).unwrap();
        let marked = watermark(large, "© Studio Ada — proof").unwrap();
        let decode = |b: &[u8]| webp::Decoder::new(b).decode().map(|i| (i.width(), i.height(), i.to_vec())).unwrap();
        let ((w, h, plain), (w2, h2, burned)) = (decode(large), decode(&marked));
        assert_eq!((w, h), (w2, h2));
        let difference = |x0: u32, x1: u32, y0: u32, y1: u32| {
            let mut sum = 0u64;
            for y in y0..y1 {
                for x in x0..x1 {
                    let i = ((y * w + x) * 3) as usize;
                    sum += (0..3).map(|c| plain[i + c].abs_diff(burned[i + c]) as u64).sum::<u64>();
                }
            }
            sum as f64 / f64::from((x1 - x0) * (y1 - y0))
        };
        let middle = difference(w / 4, 3 * w / 4, 2 * h / 5, 3 * h / 5);
        let corner = difference(0, w / 8, 0, h / 8);
        assert!(middle > 10.0 && corner < 2.0, "middle {middle}, corner {corner}");
        assert!(matches!(watermark(b"not webp", "x"), Err(WatermarkFailure::Rendition(_))), "the rendition's fault");
    }

    #[test]
    fn a_logo_watermark_is_blended_into_the_centre_in_each_accepted_format_and_leaves_the_corners() {
        let made = renditions(&demo_jpeg_with_exif(800, 500, 3, "Wide")).unwrap();
        let (_, large) = made.iter().find(|(s, _)| *s == RenditionSize::Large).unwrap();
        let (plain, _) = decode_webp(large).unwrap();
        let (w, h) = plain.dimensions();
        // A magenta disc on a transparent square: only the disc may show.
        let disc = image::RgbaImage::from_fn(300, 300, |x, y| {
            let inside = (x as i64 - 150).pow(2) + (y as i64 - 150).pow(2) < 140 * 140;
            image::Rgba(if inside { [230, 0, 200, 255] } else { [0, 0, 0, 0] })
        });
        let encode = |format| {
            let mut out = std::io::Cursor::new(Vec::new());
            let img = match format {
                image::ImageFormat::Jpeg => {
                    image::DynamicImage::ImageRgb8(image::DynamicImage::ImageRgba8(disc.clone()).to_rgb8())
                }
                _ => image::DynamicImage::ImageRgba8(disc.clone()),
            };
            img.write_to(&mut out, format).unwrap();
            out.into_inner()
        };
        let webp_logo = webp::Encoder::from_rgba(disc.as_raw(), 300, 300).encode_lossless().to_vec();
        let difference = |marked: &image::RgbaImage, x0: u32, x1: u32, y0: u32, y1: u32| {
            let mut sum = 0u64;
            for y in y0..y1 {
                for x in x0..x1 {
                    let (p, q) = (plain.get_pixel(x, y), marked.get_pixel(x, y));
                    sum += (0..3).map(|c| p[c].abs_diff(q[c]) as u64).sum::<u64>();
                }
            }
            sum as f64 / f64::from((x1 - x0) * (y1 - y0) * 3)
        };
        for (name, logo) in
            [("PNG", encode(image::ImageFormat::Png)), ("JPEG", encode(image::ImageFormat::Jpeg)), ("WebP", webp_logo)]
        {
            let (marked, _) = decode_webp(&logo_watermark(large, &logo).unwrap()).unwrap();
            assert_eq!(marked.dimensions(), (w, h), "{name}");
            // The disc's middle sits in the preview's middle, scaled to 40% of its height.
            let centre = difference(&marked, w / 2 - h / 20, w / 2 + h / 20, h / 2 - h / 20, h / 2 + h / 20);
            let corner = difference(&marked, 0, w / 8, 0, h / 8);
            let beside = difference(&marked, w / 2 + h / 4, w / 2 + h / 3, h / 2 - h / 20, h / 2 + h / 20);
            assert!(centre > 30.0 && corner < 2.0, "{name}: centre {centre}, corner {corner}");
            assert!(beside < 2.0, "{name}: beside the logo's square nothing changes: {beside}");
        }
        assert!(
            matches!(logo_watermark(large, b"\x89PNG\r\n\x1a\nbroken"), Err(WatermarkFailure::Mark(_))),
            "the logo's fault"
        );
        assert!(
            matches!(
                logo_watermark(b"not webp", &encode(image::ImageFormat::Png)),
                Err(WatermarkFailure::Rendition(_))
            ),
            "the rendition's fault"
        );
    }
}
