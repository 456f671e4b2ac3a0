//! How an account presents itself to visitors, set by its administrators:
//! an accent colour and a logo on the visitor pages, and a watermark (a
//! text, or the logo) burned into the large previews of its preview-only
//! links (made once per rendition by a library job, see [`crate::renditions`]).

use super::library::{Library, retry_on_conflict};
use super::{DomainError, DomainResult};
use crate::access::Actor;
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

/// The largest logo accepted: it is served on every visitor page.
pub const MAX_LOGO_BYTES: usize = 200 * 1024;
/// The longest watermark text, in characters.
pub const MAX_WATERMARK_CHARS: usize = 64;
/// The longest side of a logo, in pixels: it may become the watermark,
/// decoded whole by the library worker.
pub const MAX_LOGO_SIDE: usize = 4096;
/// The least contrast the accent must have against the pages' white: WCAG's
/// 4.5:1 for text (links are drawn in it, and white text on its buttons).
pub const MIN_ACCENT_CONTRAST: f64 = 4.5;

/// The account's presentation to visitors (`GET`/`PATCH /api/account/branding`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Branding {
    /// `#rrggbb`, the colour of links and buttons on the visitor pages
    /// instead of publinks' blue; at least 4.5:1 against white.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accent_color: Option<String>,
    /// Burned into the large previews served through the account's
    /// preview-only links (1 to 64 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark_text: Option<String>,
    /// The logo, not the text, is the watermark: centred, semi-transparent.
    /// Only with a logo; the logo cannot be removed while it is on.
    #[serde(default)]
    pub watermark_logo: bool,
    /// The logo on the visitor pages, once uploaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<Logo>,
}

/// An uploaded logo.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Logo {
    /// `image/png`, `image/jpeg` or `image/webp`.
    pub content_type: String,
    pub size: u64,
    /// The first 16 hex digits of the bytes' SHA-256: names the stored blob,
    /// so that a new logo is a new address for browsers.
    pub version: String,
}

/// Changes to the branding: an absent field stays, `null` removes, a value sets.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BrandingPatch {
    /// `#rrggbb` (at least 4.5:1 against white), or `null`.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, pattern = "^#[0-9a-fA-F]{6}$")]
    pub accent_color: Option<Option<String>>,
    /// 1 to 64 characters, or `null`.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 64)]
    pub watermark_text: Option<Option<String>>,
    /// `true`: the logo (which must be uploaded first) is the watermark
    /// instead of the text; `false`: the text is, if there is one.
    #[serde(default)]
    pub watermark_logo: Option<bool>,
}

/// What the large previews of an account's preview-only links carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Watermark {
    /// A line of text across the middle.
    Text(String),
    /// The account's logo, stored at [`logo_key`] of its version.
    Logo { account: crate::ids::AccountId, logo: Logo },
}

impl Branding {
    /// The watermark in force: the logo when chosen and there is one,
    /// otherwise the text, if any.
    pub fn watermark(&self, account: crate::ids::AccountId) -> Option<Watermark> {
        match (&self.logo, self.watermark_logo, &self.watermark_text) {
            (Some(logo), true, _) => Some(Watermark::Logo { account, logo: logo.clone() }),
            (_, _, Some(text)) => Some(Watermark::Text(text.clone())),
            _ => None,
        }
    }
}

impl Watermark {
    /// What the watermark burns in, in short: a watermarked rendition is
    /// stored with it, so that a changed text or a new logo (its version
    /// is a digest of its bytes) makes new ones.
    pub fn fingerprint(&self) -> String {
        let source = match self {
            Watermark::Text(text) => format!("text:v1:{text}"),
            Watermark::Logo { logo, .. } => format!("logo:v1:{}:{}", logo.content_type, logo.version),
        };
        Sha256::digest(source.as_bytes()).iter().take(8).map(|b| format!("{b:02x}")).collect()
    }
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// The bytes and type of `account`'s logo: the visitor pages show it, and
/// the dashboard previews it for the administrators who change it.
pub(crate) async fn read_logo(
    blobs: &dyn crate::store::BlobStore,
    account: &crate::model::Account,
) -> DomainResult<(Vec<u8>, String)> {
    let logo = account.branding.logo.as_ref().ok_or(DomainError::NotFound("logo"))?;
    let mut reader = blobs.open(&logo_key(account.id, &logo.version)).await?;
    let mut bytes = Vec::with_capacity(logo.size as usize);
    tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut bytes)
        .await
        .map_err(|e| DomainError::Store(crate::store::StoreError::Backend(e.to_string())))?;
    Ok((bytes, logo.content_type.clone()))
}

/// Where an account's logo of `version` is stored.
pub fn logo_key(account: crate::ids::AccountId, version: &str) -> String {
    format!("accounts/{account}/branding/logo-{version}")
}

/// WCAG's contrast ratio of `#rrggbb` against white.
pub fn contrast_with_white(hex: &str) -> Option<f64> {
    let hex = hex.strip_prefix('#').filter(|h| h.len() == 6 && h.chars().all(|c| c.is_ascii_hexdigit()))?;
    let channel = |i: usize| {
        let c = u8::from_str_radix(&hex[i..i + 2], 16).ok()? as f64 / 255.0;
        Some(if c <= 0.03928 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) })
    };
    let l = 0.2126 * channel(0)? + 0.7152 * channel(2)? + 0.0722 * channel(4)?;
    Some(1.05 / (l + 0.05))
}

fn accent(value: &str) -> DomainResult<String> {
    let ratio = contrast_with_white(value)
        .ok_or_else(|| DomainError::invalid("accent_color", "accent_color must be #rrggbb, e.g. #2456d3"))?;
    if ratio < MIN_ACCENT_CONTRAST {
        return Err(DomainError::invalid(
            "accent_color",
            format!("accent_color has a contrast of {ratio:.1}:1 against white; at least 4.5:1 is needed"),
        ));
    }
    Ok(value.to_ascii_lowercase())
}

fn watermark(value: &str) -> DomainResult<String> {
    let text = value.trim();
    if text.is_empty() || text.chars().count() > MAX_WATERMARK_CHARS || text.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            "watermark_text",
            format!("watermark_text must be 1 to {MAX_WATERMARK_CHARS} characters, without control characters"),
        ));
    }
    Ok(text.to_string())
}

/// Whether a WebP file says it is animated (the animation flag of its
/// extended header, `VP8X`).
fn animated_webp(bytes: &[u8]) -> bool {
    bytes.len() > 20
        && &bytes[..4] == b"RIFF"
        && &bytes[8..12] == b"WEBP"
        && &bytes[12..16] == b"VP8X"
        && bytes[20] & 0x02 != 0
}

/// Whether `bytes` start like an image of `content_type` (the logo types).
fn looks_like(content_type: &str, bytes: &[u8]) -> bool {
    match content_type {
        "image/png" => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "image/jpeg" => bytes.starts_with(&[0xFF, 0xD8, 0xFF]),
        "image/webp" => bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP",
        _ => false,
    }
}

impl Library {
    /// The caller's account's branding.
    pub fn branding(&self, actor: &Actor) -> Branding {
        actor.account.branding.clone()
    }

    /// The caller's account's logo, its bytes and type (404 `logo` without one).
    pub async fn logo(&self, actor: &Actor) -> DomainResult<(Vec<u8>, String)> {
        read_logo(self.blobs.as_ref(), &actor.account).await
    }

    /// Changes the accent colour or the watermark (administrators only).
    /// The logo becomes the watermark only once there is one.
    pub async fn update_branding(&self, actor: &Actor, patch: BrandingPatch) -> DomainResult<Branding> {
        actor.require_admin()?;
        let accent = patch.accent_color.map(|v| v.as_deref().map(accent).transpose()).transpose()?;
        let watermark = patch.watermark_text.map(|v| v.as_deref().map(watermark).transpose()).transpose()?;
        let watermark_logo = patch.watermark_logo;
        let catalog = self.catalog();
        let id = actor.account.id;
        let account = retry_on_conflict(|| {
            let (accent, watermark) = (accent.clone(), watermark.clone());
            async move {
                let mut account = catalog.account(id).await?.ok_or(DomainError::NotFound("account"))?;
                if let Some(accent) = accent {
                    account.branding.accent_color = accent;
                }
                if let Some(watermark) = watermark {
                    account.branding.watermark_text = watermark;
                }
                if let Some(logo) = watermark_logo {
                    if logo && account.branding.logo.is_none() {
                        return Err(DomainError::invalid(
                            "watermark_logo",
                            "the account has no logo to use as the watermark; upload one first",
                        ));
                    }
                    account.branding.watermark_logo = logo;
                }
                Ok(catalog.replace_account(&account).await?)
            }
        })
        .await?;
        Ok(account.branding)
    }

    /// Sets the logo (administrators only): PNG, JPEG or WebP, at most
    /// [`MAX_LOGO_BYTES`], its bytes matching its type. The previous logo's
    /// bytes are deleted.
    pub async fn set_logo(&self, actor: &Actor, content_type: &str, bytes: Vec<u8>) -> DomainResult<Branding> {
        actor.require_admin()?;
        if !matches!(content_type, "image/png" | "image/jpeg" | "image/webp") {
            return Err(DomainError::invalid("logo", "the logo must be image/png, image/jpeg or image/webp"));
        }
        if bytes.is_empty() || bytes.len() > MAX_LOGO_BYTES {
            return Err(DomainError::invalid(
                "logo",
                format!("the logo must be 1 byte to {} KiB", MAX_LOGO_BYTES / 1024),
            ));
        }
        if !looks_like(content_type, &bytes) {
            return Err(DomainError::invalid("logo", format!("the logo's bytes are not {content_type}")));
        }
        if animated_webp(&bytes) {
            // The worker's WebP decoder takes still images only: an animated
            // logo could never be blended, and previews would wait for it.
            return Err(DomainError::invalid("logo", "an animated WebP cannot be a logo; send a still image"));
        }
        match imagesize::blob_size(&bytes) {
            Ok(size) if size.width > 0 && size.height > 0 && size.width.max(size.height) <= MAX_LOGO_SIDE => {}
            Ok(size) => {
                return Err(DomainError::invalid(
                    "logo",
                    format!(
                        "the logo is {}×{} pixels; at most {MAX_LOGO_SIDE} pixels a side are accepted",
                        size.width, size.height
                    ),
                ));
            }
            Err(_) => return Err(DomainError::invalid("logo", "the logo's size cannot be read from its header")),
        }
        let digest = Sha256::digest(&bytes);
        let version: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        let logo = Logo { content_type: content_type.to_string(), size: bytes.len() as u64, version };
        self.blobs.put(&logo_key(actor.account.id, &logo.version), bytes, content_type).await?;
        self.replace_logo(actor, Some(logo)).await
    }

    /// Removes the logo (administrators only); not while it is the
    /// watermark, so that proofs are never left unmarked by surprise.
    pub async fn delete_logo(&self, actor: &Actor) -> DomainResult<Branding> {
        actor.require_admin()?;
        self.replace_logo(actor, None).await
    }

    async fn replace_logo(&self, actor: &Actor, logo: Option<Logo>) -> DomainResult<Branding> {
        let catalog = self.catalog();
        let id = actor.account.id;
        let (account, old) = retry_on_conflict(|| {
            let logo = logo.clone();
            async move {
                let mut account = catalog.account(id).await?.ok_or(DomainError::NotFound("account"))?;
                if logo.is_none() && account.branding.watermark_logo {
                    return Err(DomainError::Conflict {
                        code: "logo_is_watermark",
                        message: "the logo is the watermark; set watermark_logo to false before removing it".into(),
                    });
                }
                let old = std::mem::replace(&mut account.branding.logo, logo);
                Ok((catalog.replace_account(&account).await?, old))
            }
        })
        .await?;
        if let Some(old) = old.filter(|o| account.branding.logo.as_ref().is_none_or(|l| l.version != o.version)) {
            self.blobs.delete(&logo_key(id, &old.version)).await?;
        }
        Ok(account.branding)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accent_needs_the_contrast_of_text_against_white() {
        assert!((contrast_with_white("#000000").unwrap() - 21.0).abs() < 0.01);
        assert!(accent("#2456D3").is_ok_and(|a| a == "#2456d3"), "publinks' own blue passes");
        assert!(accent("#ffbf47").is_err(), "a light yellow is unreadable on white");
        for bad in ["2456d3", "#2456d", "#2456dz", "#2456d3ff", "blue"] {
            assert!(accent(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn watermark_texts_are_short_lines_and_their_fingerprint_changes_with_them() {
        assert_eq!(watermark("  © Studio Ada  ").unwrap(), "© Studio Ada");
        assert!(watermark("").is_err() && watermark("a\nb").is_err() && watermark(&"x".repeat(65)).is_err());
        let text = |t: &str| Watermark::Text(t.into()).fingerprint();
        assert_ne!(text("a"), text("b"));
        assert_eq!(text("a").len(), 16);
    }

    #[test]
    fn the_logo_is_the_watermark_only_when_chosen_and_a_new_logo_has_a_new_fingerprint() {
        let account = crate::ids::AccountId::new();
        let logo = |version: &str| Logo { content_type: "image/png".into(), size: 10, version: version.into() };
        let mut branding = Branding { watermark_text: Some("PROOF".into()), ..Default::default() };
        assert_eq!(branding.watermark(account), Some(Watermark::Text("PROOF".into())));
        branding.watermark_logo = true;
        assert_eq!(branding.watermark(account), Some(Watermark::Text("PROOF".into())), "no logo yet");
        branding.logo = Some(logo("00112233aabbccdd"));
        let first = branding.watermark(account).unwrap();
        assert!(matches!(first, Watermark::Logo { .. }));
        branding.logo = Some(logo("99112233aabbccdd"));
        let second = branding.watermark(account).unwrap();
        assert_ne!(first.fingerprint(), second.fingerprint());
        assert_ne!(first.fingerprint(), Watermark::Text("PROOF".into()).fingerprint());
    }
}
