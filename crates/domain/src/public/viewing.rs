//! Viewing a file in the browser rather than downloading it: the original's
//! bytes, in ranges, for the kinds a browser shows safely (images, video,
//! audio, PDF, plain text), and the start of a text file for its page.
//! Nothing here is a download: none is recorded or counted against a link's
//! download limit (the file page records the view).

use super::PublicService;
use crate::model::File;
use crate::public::Visit;
use crate::store::BlobReader;
use crate::{DomainError, DomainResult};
use std::ops::Range;

/// The most bytes one inline response holds: a media element asks the rest
/// range by range as it plays, and a function's response (6 MB, base64
/// encoded) holds this with room to spare.
pub const MAX_INLINE_RESPONSE: u64 = 4 * 1024 * 1024;

/// The most of a text file its page shows.
pub const MAX_TEXT_SHOWN: u64 = 64 * 1024;

/// What a browser can show of a file in the page, by its content type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaKind {
    Image,
    Video,
    Audio,
    Pdf,
    Text,
}

impl MediaKind {
    /// The kind of `content_type`, if a browser shows it inline without
    /// running it: never HTML, SVG or scripts, which would run on the share's
    /// origin.
    pub fn of(content_type: &str) -> Option<MediaKind> {
        let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        match essence.as_str() {
            "image/jpeg" | "image/png" | "image/gif" | "image/webp" | "image/avif" => Some(MediaKind::Image),
            "video/mp4" | "video/webm" | "video/ogg" | "video/quicktime" => Some(MediaKind::Video),
            "audio/mpeg" | "audio/mp4" | "audio/aac" | "audio/ogg" | "audio/webm" | "audio/flac" | "audio/wav"
            | "audio/x-wav" | "audio/wave" => Some(MediaKind::Audio),
            "application/pdf" => Some(MediaKind::Pdf),
            "text/plain" | "text/csv" | "text/markdown" => Some(MediaKind::Text),
            _ => None,
        }
    }

    /// The content type the browser is given: text as UTF-8 plain text
    /// whatever it was uploaded as, so that nothing in it is interpreted.
    fn served_as(self, content_type: &str) -> String {
        match self {
            MediaKind::Text => "text/plain; charset=utf-8".into(),
            _ => content_type.to_string(),
        }
    }
}

/// A file a visitor may view inline, as its bytes are about to be read.
#[derive(Clone, Debug)]
pub struct InlineFile {
    pub name: String,
    /// The content type it is served with.
    pub content_type: String,
    pub size: u64,
    blob_key: String,
}

impl PublicService {
    /// A file the link reaches that a browser can show inline; `NotFound`
    /// for one it cannot (it is downloaded instead).
    pub async fn inline_file(&self, visit: &Visit, id: crate::ids::FileId) -> DomainResult<InlineFile> {
        visit.require_downloads()?;
        let file = self.file(visit, id).await?;
        let kind = MediaKind::of(&file.current.content_type).ok_or(DomainError::NotFound("inline view"))?;
        Ok(InlineFile {
            name: file.name.clone(),
            content_type: kind.served_as(&file.current.content_type),
            size: file.current.size,
            blob_key: file.current.blob_key,
        })
    }

    /// The bytes `range` (inside the file) of a file [`inline_file`](Self::inline_file) found.
    pub async fn inline_bytes(&self, file: &InlineFile, range: Range<u64>) -> DomainResult<BlobReader> {
        if range.is_empty() {
            return Ok(Box::pin(tokio::io::empty()));
        }
        Ok(self.blobs.open_range(&file.blob_key, range).await?)
    }

    /// The start of a text file (a file the visit reaches, of kind
    /// [`MediaKind::Text`]): at most [`MAX_TEXT_SHOWN`] bytes, cut at a
    /// character, and whether there is more; `None` for other kinds.
    pub async fn text_excerpt(&self, file: &File) -> DomainResult<Option<(String, bool)>> {
        if MediaKind::of(&file.current.content_type) != Some(MediaKind::Text) {
            return Ok(None);
        }
        let shown = file.current.size.min(MAX_TEXT_SHOWN);
        let mut bytes = Vec::with_capacity(shown as usize);
        if shown > 0 {
            let reader = self.blobs.open_range(&file.current.blob_key, 0..shown).await?;
            tokio::io::AsyncReadExt::read_to_end(&mut tokio::io::AsyncReadExt::take(reader, shown), &mut bytes)
                .await
                .map_err(|e| crate::store::StoreError::Backend(format!("reading a text file: {e}")))?;
        }
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                let valid = e.utf8_error().valid_up_to();
                let mut bytes = e.into_bytes();
                // A character cut by the limit is dropped; anything else not UTF-8 is replaced.
                if bytes.len() - valid < 4 && shown < file.current.size {
                    bytes.truncate(valid);
                }
                String::from_utf8_lossy(&bytes).into_owned()
            }
        };
        Ok(Some((text, shown < file.current.size)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_a_browser_shows_without_running_it_is_inline() {
        assert_eq!(MediaKind::of("video/mp4"), Some(MediaKind::Video));
        assert_eq!(MediaKind::of("audio/wav"), Some(MediaKind::Audio));
        assert_eq!(MediaKind::of("Application/PDF"), Some(MediaKind::Pdf));
        assert_eq!(MediaKind::of("text/plain; charset=latin1"), Some(MediaKind::Text));
        assert_eq!(MediaKind::Text.served_as("text/csv"), "text/plain; charset=utf-8");
        for refused in ["text/html", "image/svg+xml", "application/javascript", "application/xhtml+xml", ""] {
            assert_eq!(MediaKind::of(refused), None, "{refused}");
        }
    }
}
