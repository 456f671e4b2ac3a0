//! Archive builds from the local store, against Info-ZIP's `zip` on the same
//! files in the same run: (a) 1,000 files of 200 KiB (text: deflated) and
//! (b) 4 files of 1 GiB (video: stored). Each build runs in a child process
//! under `/usr/bin/time`, which reports its wall time and peak memory (RSS);
//! every archive publinks builds is then checked by four ZIP readers.

use async_trait::async_trait;
use publinks_archive::builder::{ArchiveBuilder, BuildSettings};
use publinks_archive::readers;
use publinks_domain::archives::{ArchiveContents, ArchiveService, ArchiveSettings, Requester};
use publinks_domain::ids::*;
use publinks_domain::model::*;
use publinks_domain::signing::SecretKey;
use publinks_domain::store::{ArchiveQueue, StoreResult, Stores};
use publinks_embedded::{BlobUrlSigner, DirectoryBlobStore, EmbeddedCatalog};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// Leaves jobs pending: the child process builds them.
struct BuildInChild;

#[async_trait]
impl ArchiveQueue for BuildInChild {
    async fn enqueue(&self, _: ArchiveId) -> StoreResult<()> {
        Ok(())
    }
}

/// The embedded store under `dir`, as the local server opens it; archives
/// copy parts from the assets unless `copies` is off.
fn open_stores(dir: &Path, copies: bool) -> Stores {
    let catalog = Arc::new(EmbeddedCatalog::open(&dir.join("catalog.sqlite3")).expect("open catalog"));
    let root = dir.join("blobs");
    let blobs = DirectoryBlobStore::open(&root, BlobUrlSigner::new(SecretKey::generate(), "http://x")).unwrap();
    let archives = if copies { blobs.clone().with_copy_source(&root) } else { blobs.clone() };
    Stores {
        catalog: catalog.clone(),
        links: catalog.clone(),
        visitors: catalog.clone(),
        blobs: Arc::new(blobs.clone()),
        asset_uploads: Arc::new(blobs),
        archives: Arc::new(archives),
        webhooks: catalog.clone(),
        clock: publinks_domain::clock::system(),
    }
}

/// The child's work: build one job, print nothing.
pub async fn build_one(dir: PathBuf, job: String, copies: bool) {
    let id: ArchiveId = job.parse().expect("a job id");
    let stores = open_stores(&dir, copies);
    publinks_archive::keep_memory_flat();
    ArchiveBuilder::new(&stores, BuildSettings::default()).build(id, None).await.expect("the build succeeds");
}

/// Writes `count` files of `size` under `tree/` (text or noise), hard-links
/// each into the blob directory, and returns their manifest entries.
fn make_files(dir: &Path, count: usize, size: u64, content_type: &str, text: bool) -> Vec<ArchiveEntry> {
    let tree = dir.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    let mut entries = Vec::with_capacity(count);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"];
    for i in 0..count {
        let name = if text { format!("doc-{i:04}.txt") } else { format!("film-{i}.mp4") };
        let path = tree.join(&name);
        let mut out = std::io::BufWriter::with_capacity(MIB as usize, std::fs::File::create(&path).unwrap());
        let mut crc = crc32fast::Hasher::new();
        let mut written = 0u64;
        let mut chunk = Vec::with_capacity(MIB as usize);
        while written < size {
            chunk.clear();
            let want = (size - written).min(MIB) as usize;
            while chunk.len() < want {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                if text {
                    chunk.extend_from_slice(words[(state % 10) as usize].as_bytes());
                    chunk.push(if state.is_multiple_of(11) { b'\n' } else { b' ' });
                } else {
                    chunk.extend_from_slice(&state.to_le_bytes());
                }
            }
            chunk.truncate(want);
            crc.update(&chunk);
            out.write_all(&chunk).unwrap();
            written += want as u64;
        }
        out.flush().unwrap();
        let key = format!("accounts/bench/files/{i}/v1.bin");
        let blob = dir.join("blobs").join(&key);
        std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
        std::fs::hard_link(&path, &blob).unwrap();
        entries.push(ArchiveEntry {
            path: name,
            file_id: Some(FileId::new()),
            version: 1,
            blob_key: key,
            content_type: content_type.into(),
            size,
            crc32: crc.finalize(),
            e_tag: None,
            modified: chrono::Utc::now(),
            folder_id: None,
            parent_id: None,
        });
    }
    entries
}

/// Wall seconds and peak RSS (MiB) of a command, from GNU time.
fn timed(command: Command) -> (f64, f64) {
    let report = tempfile::NamedTempFile::new().unwrap();
    let program = command.get_program().to_owned();
    let mut wrapped = Command::new("/usr/bin/time");
    wrapped.arg("-f").arg("%e %M").arg("-o").arg(report.path()).arg(&program).args(command.get_args());
    if let Some(dir) = command.get_current_dir() {
        wrapped.current_dir(dir);
    }
    let status = wrapped.status().expect("GNU time runs (scripts/bench.sh installs it)");
    assert!(status.success(), "{program:?} failed");
    let text = std::fs::read_to_string(report.path()).unwrap();
    let mut fields = text.split_whitespace();
    let seconds: f64 = fields.next().and_then(|s| s.parse().ok()).expect("GNU time's seconds");
    let kib: f64 = fields.next().and_then(|s| s.parse().ok()).expect("GNU time's peak RSS");
    (seconds.max(0.01), kib / 1024.0)
}

struct Measured {
    what: String,
    seconds: f64,
    peak_mib: f64,
    archive_bytes: u64,
}

fn print_rows(input_bytes: u64, rows: &[Measured], baseline: usize) {
    let base_rate = input_bytes as f64 / 1e6 / rows[baseline].seconds;
    for r in rows {
        let rate = input_bytes as f64 / 1e6 / r.seconds;
        println!(
            "  {:<40} {:>8.1} MB/s  {:>7.1} s  peak RSS {:>7.1} MiB  archive {:>9.1} MB  ratio to {} {:>5.2}",
            r.what,
            rate,
            r.seconds,
            r.peak_mib,
            r.archive_bytes as f64 / 1e6,
            rows[baseline].what,
            rate / base_rate
        );
    }
}

/// One set of files: publinks' builds (each in a child), then `zip`.
async fn case(title: &str, count: usize, size: u64, content_type: &str, text: bool, zip_flags: &[&str]) {
    println!("{title}");
    let dir = tempfile::tempdir_in("target").expect("a work directory under target/");
    std::fs::create_dir_all(dir.path().join("blobs")).unwrap();
    let entries = make_files(dir.path(), count, size, content_type, text);
    // Written back to disk before anything is timed.
    Command::new("sync").status().expect("sync runs");
    let input_bytes = size * count as u64;
    let expected: BTreeMap<String, String> = entries
        .iter()
        .map(|e| (e.path.clone(), readers::digest(&std::fs::read(dir.path().join("tree").join(&e.path)).unwrap())))
        .collect();
    let me = std::env::current_exe().unwrap();
    let mut rows = Vec::new();
    let modes: &[(bool, &str)] = if text {
        &[(true, "publinks")]
    } else {
        &[(true, "publinks (server-side copy)"), (false, "publinks (streamed, CRC checked)")]
    };
    for (copies, what) in modes {
        let stores = open_stores(dir.path(), *copies);
        let service = ArchiveService::new(&stores, Arc::new(BuildInChild), ArchiveSettings::default());
        let requester =
            Requester { account_id: AccountId::new(), by: Downloader::User { user_id: UserId::new() }, network: None };
        let contents = ArchiveContents {
            source: ArchiveSource::Selection { count: count as u32 },
            name: format!("bench {what}"),
            entries: entries.clone(),
        };
        let job = service.submit(&requester, contents).await.expect("the job is recorded");
        let mut child = Command::new(&me);
        child.arg("zip-build").arg("--data").arg(dir.path()).arg("--job").arg(job.id.to_string());
        if !copies {
            child.arg("--no-copies");
        }
        let (seconds, peak_mib) = timed(child);
        let done = stores.visitors.archive_job(job.id).await.unwrap().unwrap();
        assert_eq!(done.state, ArchiveState::Ready, "{:?}", done.failure);
        let archive = dir.path().join("blobs").join(&done.archive_key);
        readers::verify(&archive, &expected).unwrap_or_else(|e| panic!("{what}: {e}"));
        rows.push(Measured { what: what.to_string(), seconds, peak_mib, archive_bytes: done.archive_size.unwrap() });
        std::fs::remove_file(&archive).unwrap();
    }
    for flags in zip_flags {
        let out = dir.path().join("zip-out.zip");
        let mut zip = Command::new("zip");
        zip.current_dir(dir.path().join("tree")).arg("-q").arg("-r");
        if !flags.is_empty() {
            zip.arg(flags);
        }
        zip.arg(&out).arg(".");
        let (seconds, peak_mib) = timed(zip);
        let archive_bytes = std::fs::metadata(&out).unwrap().len();
        let what = if flags.is_empty() { "zip -r".to_string() } else { format!("zip {flags} -r") };
        rows.push(Measured { what, seconds, peak_mib, archive_bytes });
        std::fs::remove_file(&out).unwrap();
    }
    let baseline = rows.len() - zip_flags.len();
    if !text {
        // What a plain copy of the same bytes costs here: the ceiling of any archive of stored files.
        let mut cat = Command::new("sh");
        cat.current_dir(dir.path().join("tree")).arg("-c").arg("cat * > ../cat-out");
        let (seconds, peak_mib) = timed(cat);
        rows.push(Measured { what: "cat a b c d > out".into(), seconds, peak_mib, archive_bytes: input_bytes });
        std::fs::remove_file(dir.path().join("cat-out")).unwrap();
    }
    print_rows(input_bytes, &rows, baseline);
    if !text {
        let cat = rows.last().expect("the cat row");
        for r in &rows[..baseline] {
            println!("  {:<40} ratio to {}: {:.2}", r.what, cat.what, cat.seconds / r.seconds);
        }
    }
    println!("  every publinks archive opened in unzip, 7-Zip, bsdtar and Python's zipfile with identical contents");
}

/// Runs both cases.
pub async fn run(small_files: usize, large_files: usize, large_mib: u64) {
    std::fs::create_dir_all("target").unwrap();
    if small_files > 0 {
        let title = format!("(a) {small_files} files of 200 KiB, text (deflated)");
        case(&title, small_files, 200 * KIB, "text/plain", true, &["", "-0"]).await;
    }
    if large_files > 0 {
        let title = format!("(b) {large_files} files of {large_mib} MiB, video (stored)");
        case(&title, large_files, large_mib * MIB, "video/mp4", false, &["-0"]).await;
    }
}
