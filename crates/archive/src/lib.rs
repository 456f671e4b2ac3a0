//! ZIP archives of many files, built in the background and streamed into the
//! downloads store. What goes in an archive, under which names, is the
//! domain's (`publinks_domain::archives`, `entry_names`); this crate writes
//! it, over the storage ports, and is linked only by what builds archives
//! (the `zip-builder` function and the local server).
//!
//! - [`zip`]: the ZIP container (headers, ZIP64, central directory), no data.
//! - [`builder`]: builds one archive job: reads each file once (or has the
//!   store copy it), compresses what is worth compressing, and uploads the
//!   archive in parts with flat memory.
//! - [`readers`]: four independent ZIP readers as judges, for tests and benchmarks.

pub mod builder;
pub mod readers;
pub mod zip;

/// Keeps a building process's memory flat. glibc raises its mmap threshold
/// to the size of each large block freed (up to 32 MiB) and keeps freed
/// memory in per-thread arenas below twice that: after the first 8 MiB part
/// is freed, every thread that deflated a file keeps up to 16 MiB. Measured
/// with the benchmark's 1,000 files: a peak of 164 MiB with the default,
/// 30 MiB with a fixed 256 KiB threshold, which this sets (and so turns the
/// adjustment off). Call it once, early, in processes that build archives.
pub fn keep_memory_flat() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before
    // the process allocates large blocks and with a valid parameter.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

/// Content types whose bytes are already compressed: stored, not deflated.
pub fn already_compressed(content_type: &str) -> bool {
    let t = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match t.split_once('/') {
        Some(("video", _)) => true,
        Some(("audio", sub)) => !matches!(sub, "wav" | "x-wav" | "aiff" | "x-aiff" | "basic"),
        Some(("image", sub)) => {
            !matches!(sub, "bmp" | "x-ms-bmp" | "svg+xml" | "tiff" | "x-icon" | "vnd.microsoft.icon")
        }
        _ => matches!(
            t.as_str(),
            "application/zip"
                | "application/gzip"
                | "application/x-gzip"
                | "application/x-7z-compressed"
                | "application/x-rar-compressed"
                | "application/vnd.rar"
                | "application/x-bzip2"
                | "application/x-xz"
                | "application/zstd"
                | "application/epub+zip"
                | "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
                | "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                | "application/vnd.openxmlformats-officedocument.presentationml.presentation"
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn media_is_stored_and_text_is_deflated() {
        for stored in ["image/jpeg", "image/png", "image/webp", "video/mp4", "audio/mpeg", "application/zip"] {
            assert!(super::already_compressed(stored), "{stored}");
        }
        for deflated in ["text/plain", "image/svg+xml", "image/bmp", "audio/wav", "application/json", "application/pdf"]
        {
            assert!(!super::already_compressed(deflated), "{deflated}");
        }
    }
}
