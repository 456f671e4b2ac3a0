//! The local server's delivery of a large archive: its signed `/_blobs` URL
//! read over loopback by `curl`, against a plain copy of the same bytes
//! (`cp` to a new file, and `cat` into `/dev/null`), all from the page cache.

use publinks_core::adapters::embedded::{BlobUrlSigner, DirectoryBlobStore};
use publinks_core::signing::SecretKey;
use publinks_core::store::BlobStore;
use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

const MIB: u64 = 1024 * 1024;

/// Seconds a command takes; panics if it fails.
fn seconds(mut command: Command) -> (f64, String) {
    let start = Instant::now();
    let out = command.output().expect("the command runs");
    let took = start.elapsed().as_secs_f64();
    assert!(out.status.success(), "{command:?}: {}", String::from_utf8_lossy(&out.stderr));
    (took, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Serves a `gib` GiB archive and downloads it, against copying it.
pub async fn run(gib: u64) {
    std::fs::create_dir_all("target").unwrap();
    let dir = tempfile::tempdir_in("target").expect("a work directory under target/");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().unwrap());
    let store = DirectoryBlobStore::open(&dir.path().join("blobs"), BlobUrlSigner::new(SecretKey::generate(), base))
        .expect("open blobs");
    let key = "archives/bench/job/archive.zip";
    let path = dir.path().join("blobs").join(key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let size = gib * 1024 * MIB;
    {
        let mut out = std::io::BufWriter::with_capacity(MIB as usize, std::fs::File::create(&path).unwrap());
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut chunk = vec![0u8; MIB as usize];
        for _ in 0..size / MIB {
            for word in chunk.chunks_exact_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                word.copy_from_slice(&state.to_le_bytes());
            }
            out.write_all(&chunk).unwrap();
        }
        out.flush().unwrap();
    }
    let file = path.to_str().unwrap().to_string();
    // Everything below reads from the page cache.
    let mut warm = Command::new("sh");
    warm.arg("-c").arg(format!("cat '{file}' > /dev/null"));
    seconds(warm);

    let router = publinks_core::http::blobs::router(store.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let url = store.presign_get(key, "bench.zip", Duration::from_secs(3600)).await.unwrap();

    // A ranged request first, to show the route serves them (not timed).
    let mut ranged = Command::new("curl");
    ranged.args(["-sS", "-o", "/dev/null", "-r", "1000-1999", "-w", "%{http_code} %{size_download}", &url]);
    let (_, answer) = seconds(ranged);
    assert_eq!(answer.trim(), "206 1000", "a byte range comes back as 206 with its bytes");

    let mut rates = Vec::new();
    for _ in 0..3 {
        let mut curl = Command::new("curl");
        curl.args(["-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", &url]);
        let (took, answer) = seconds(curl);
        assert_eq!(answer.trim(), format!("200 {size}"), "the whole archive arrives");
        rates.push(size as f64 / 1e6 / took);
    }
    let download = median(&mut rates);

    let copy = dir.path().join("copy.zip");
    let mut rates = Vec::new();
    for _ in 0..3 {
        let mut cp = Command::new("cp");
        cp.arg(&path).arg(&copy);
        let (took, _) = seconds(cp);
        rates.push(size as f64 / 1e6 / took);
        std::fs::remove_file(&copy).unwrap();
    }
    let cp = median(&mut rates);
    let mut rates = Vec::new();
    for _ in 0..3 {
        let mut cat = Command::new("sh");
        cat.arg("-c").arg(format!("cat '{file}' > /dev/null"));
        let (took, _) = seconds(cat);
        rates.push(size as f64 / 1e6 / took);
    }
    let cat = median(&mut rates);
    println!("download of a {gib} GiB archive from the local server (median of 3)");
    crate::row("signed /_blobs URL over loopback (curl)", "MB/s", download, cp);
    println!("{:<44} {cp:>12.1} MB/s     (the baseline above: cp to a new file)", "cp of the same file");
    println!("{:<44} {cat:>12.1} MB/s     (reading alone: cat > /dev/null)", "cat of the same file");
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
