//! Archive builds from the local store, against Info-ZIP's `zip` on the same
//! files in the same run: (a) 1,000 files of 200 KiB (text: deflated) and
//! (b) 4 files of 1 GiB (video: stored). Each build runs in a child process
//! under `/usr/bin/time`, which reports its wall time and peak memory (RSS);
//! every archive publinks builds is then checked by four ZIP readers.

use async_trait::async_trait;
use publinks_archive::builder::{ArchiveBuilder, BuildSettings, WholeFileDeflate};
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

/// The builder's settings for a `--deflate` choice: `zlib-rs:LEVEL` or `libdeflate:LEVEL`.
fn settings_for(deflate: &str) -> BuildSettings {
    let (engine, level) = deflate.split_once(':').unwrap_or((deflate, "6"));
    let whole_files = match engine {
        "zlib-rs" => WholeFileDeflate::ZlibRs,
        "libdeflate" => WholeFileDeflate::Libdeflate,
        other => panic!("unknown DEFLATE {other} (zlib-rs or libdeflate)"),
    };
    let level = level.parse().expect("a DEFLATE level");
    BuildSettings { whole_files, level, ..BuildSettings::default() }
}

/// The child's work: build one job, print nothing.
pub async fn build_one(dir: PathBuf, job: String, copies: bool, deflate: &str) {
    let id: ArchiveId = job.parse().expect("a job id");
    let stores = open_stores(&dir, copies);
    publinks_archive::keep_memory_flat();
    ArchiveBuilder::new(&stores, settings_for(deflate)).build(id, None).await.expect("the build succeeds");
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

/// Wall seconds, peak RSS (MiB) and CPU seconds (user and system) of a command, from GNU time.
fn timed(command: Command) -> (f64, f64, f64) {
    let report = tempfile::NamedTempFile::new().unwrap();
    let program = command.get_program().to_owned();
    let mut wrapped = Command::new("/usr/bin/time");
    wrapped.arg("-f").arg("%e %M %U %S").arg("-o").arg(report.path()).arg(&program).args(command.get_args());
    if let Some(dir) = command.get_current_dir() {
        wrapped.current_dir(dir);
    }
    let status = wrapped.status().expect("GNU time runs (scripts/bench.sh installs it)");
    assert!(status.success(), "{program:?} failed");
    let text = std::fs::read_to_string(report.path()).unwrap();
    let mut fields = text.split_whitespace();
    let seconds: f64 = fields.next().and_then(|s| s.parse().ok()).expect("GNU time's seconds");
    let kib: f64 = fields.next().and_then(|s| s.parse().ok()).expect("GNU time's peak RSS");
    let cpu: f64 = fields.filter_map(|s| s.parse::<f64>().ok()).sum();
    (seconds.max(0.01), kib / 1024.0, cpu)
}

struct Measured {
    what: String,
    seconds: f64,
    cpu_seconds: f64,
    peak_mib: f64,
    archive_bytes: u64,
}

/// One line per build: throughput, wall and CPU time, peak memory, the
/// archive's size, and time and size as ratios to the baseline's.
fn print_rows(input_bytes: u64, rows: &[Measured], baseline: usize) {
    let base = &rows[baseline];
    for r in rows {
        println!(
            "  {:<34} {:>7.1} MB/s {:>6.1} s (CPU {:>5.1} s)  peak RSS {:>6.1} MiB  archive {:>7.2} MB ({:.3} of {}'s)  ratio to {} {:>5.2}",
            r.what,
            input_bytes as f64 / 1e6 / r.seconds,
            r.seconds,
            r.cpu_seconds,
            r.peak_mib,
            r.archive_bytes as f64 / 1e6,
            r.archive_bytes as f64 / base.archive_bytes as f64,
            base.what,
            base.what,
            base.seconds / r.seconds
        );
    }
}

/// Issue 17's targets for the rows of one round: publinks' builds first
/// (`modes`, in order), the baseline at `baseline` (`zip -r` for text,
/// `zip -0 -r` for stored files), `cat` last for stored files.
fn print_targets(rows: &[Measured], modes: &[(bool, String, &str)], baseline: usize, text: bool) {
    use crate::{Bound, target};
    let base = &rows[baseline];
    for (r, (copies, _, deflate)) in rows.iter().zip(modes) {
        if text && *deflate == "zlib-rs:6" {
            target(
                &format!("{}, times `{}`'s speed", r.what, base.what),
                base.seconds / r.seconds,
                Bound::AtLeast(3.0),
            );
        } else if !text && *copies {
            let cat = rows.last().expect("the cat row");
            target(&format!("{}, of `{}`'s speed", r.what, cat.what), cat.seconds / r.seconds, Bound::AtLeast(0.5));
        } else if !text {
            target(
                &format!("{}, times `{}`'s speed", r.what, base.what),
                base.seconds / r.seconds,
                Bound::AtLeast(1.5),
            );
        }
        target(&format!("{}, peak RSS in MiB", r.what), r.peak_mib, Bound::Below(128.0));
    }
}

/// The load averages over 1, 5 and 15 minutes, as the kernel reports them.
fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// One set of files: `rounds` times publinks' builds (each in a child, one
/// per `deflate` choice for text), then `zip`.
#[allow(clippy::too_many_arguments)]
async fn case(
    title: &str,
    count: usize,
    size: u64,
    content_type: &str,
    text: bool,
    zip_flags: &[&str],
    deflate: &[&str],
    rounds: usize,
) {
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
    let modes: Vec<(bool, String, &str)> = if text {
        deflate.iter().map(|d| (true, format!("publinks ({})", d.replace(':', " ")), *d)).collect()
    } else {
        vec![
            (true, "publinks (server-side copy)".into(), "zlib-rs:6"),
            (false, "publinks (streamed, CRC checked)".into(), "zlib-rs:6"),
        ]
    };
    for round in 1..=rounds.max(1) {
        if rounds > 1 {
            println!(" round {round}, load average {}", load_average());
        }
        let mut rows = Vec::new();
        for (copies, what, deflate) in &modes {
            let stores = open_stores(dir.path(), *copies);
            let service = ArchiveService::new(&stores, Arc::new(BuildInChild), ArchiveSettings::default());
            let requester = Requester {
                account_id: AccountId::new(),
                by: Downloader::User { user_id: UserId::new() },
                network: None,
            };
            let contents = ArchiveContents {
                source: ArchiveSource::Selection { count: count as u32 },
                name: format!("bench {what}"),
                entries: entries.clone(),
            };
            let job = service.submit(&requester, contents).await.expect("the job is recorded");
            let mut child = Command::new(&me);
            child.arg("zip-build").arg("--data").arg(dir.path()).arg("--job").arg(job.id.to_string());
            child.arg("--deflate").arg(deflate);
            if !copies {
                child.arg("--no-copies");
            }
            let (seconds, peak_mib, cpu_seconds) = timed(child);
            let done = stores.visitors.archive_job(job.id).await.unwrap().unwrap();
            assert_eq!(done.state, ArchiveState::Ready, "{:?}", done.failure);
            let archive = dir.path().join("blobs").join(&done.archive_key);
            readers::verify(&archive, &expected).unwrap_or_else(|e| panic!("{what}: {e}"));
            let archive_bytes = done.archive_size.unwrap();
            rows.push(Measured { what: what.clone(), seconds, cpu_seconds, peak_mib, archive_bytes });
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
            let (seconds, peak_mib, cpu_seconds) = timed(zip);
            let archive_bytes = std::fs::metadata(&out).unwrap().len();
            let what = if flags.is_empty() { "zip -r".to_string() } else { format!("zip {flags} -r") };
            rows.push(Measured { what, seconds, cpu_seconds, peak_mib, archive_bytes });
            std::fs::remove_file(&out).unwrap();
        }
        let baseline = rows.len() - zip_flags.len();
        if !text {
            // What a plain copy of the same bytes costs here: the ceiling of any archive of stored files.
            let mut cat = Command::new("sh");
            cat.current_dir(dir.path().join("tree")).arg("-c").arg("cat * > ../cat-out");
            let (seconds, peak_mib, cpu_seconds) = timed(cat);
            let what = "cat a b c d > out".into();
            rows.push(Measured { what, seconds, cpu_seconds, peak_mib, archive_bytes: input_bytes });
            std::fs::remove_file(dir.path().join("cat-out")).unwrap();
        }
        print_rows(input_bytes, &rows, baseline);
        if !text {
            let cat = rows.last().expect("the cat row");
            for r in &rows[..baseline] {
                println!("  {:<34} ratio to {}: {:.2}", r.what, cat.what, cat.seconds / r.seconds);
            }
        }
        print_targets(&rows, &modes, baseline, text);
    }
    println!("  every publinks archive opened in unzip, 7-Zip, bsdtar and Python's zipfile with identical contents");
}

/// Runs both cases; (a) once per `deflate` choice, `rounds` times.
pub async fn run(small_files: usize, large_files: usize, large_mib: u64, deflate: &str, rounds: usize) {
    let deflate: Vec<&str> = deflate.split(',').map(str::trim).filter(|d| !d.is_empty()).collect();
    std::fs::create_dir_all("target").unwrap();
    if small_files > 0 {
        let title = format!("(a) {small_files} files of 200 KiB, text (deflated)");
        case(&title, small_files, 200 * KIB, "text/plain", true, &["", "-0"], &deflate, rounds).await;
    }
    if large_files > 0 {
        let title = format!("(b) {large_files} files of {large_mib} MiB, video (stored)");
        case(&title, large_files, large_mib * MIB, "video/mp4", false, &["-0"], &deflate, 1).await;
    }
}
