//! Independent ZIP readers as judges: Info-ZIP's `unzip`, 7-Zip, libarchive's
//! `bsdtar` and Python's `zipfile` must all accept an archive and agree on
//! its contents. The tests and the benchmark's ZIP64 check use this; the
//! tools come from Debian (`scripts/test.sh` installs them).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Runs `program args… archive`; its output, or why it refused the archive.
pub fn run(program: &str, args: &[&str], archive: &Path) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .arg(archive)
        .output()
        .map_err(|e| format!("{program} could not run (scripts/test.sh installs it): {e}"))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() { Ok(text) } else { Err(format!("{program} refused the archive:\n{text}")) }
}

/// Every entry's name and the SHA-256 of its bytes, as Python's `zipfile`
/// reads them after checking every CRC.
pub fn python_digests(archive: &Path) -> Result<BTreeMap<String, String>, String> {
    const SCRIPT: &str = r#"
import hashlib, json, sys, zipfile
out = {}
with zipfile.ZipFile(sys.argv[1]) as z:
    for info in z.infolist():
        h = hashlib.sha256()
        with z.open(info) as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        out[info.filename] = h.hexdigest()
print(json.dumps(out))
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(archive)
        .output()
        .map_err(|e| format!("python3 could not run: {e}"))?;
    if !out.status.success() {
        return Err(format!("Python's zipfile refused the archive: {}", String::from_utf8_lossy(&out.stderr)));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("Python's answer does not parse: {e}"))
}

/// Checks `archive` with all four readers; `expected` maps each entry name
/// to the SHA-256 (hex) of its bytes.
pub fn verify(archive: &Path, expected: &BTreeMap<String, String>) -> Result<(), String> {
    run("unzip", &["-tq"], archive)?;
    run("7z", &["t", "-bd"], archive)?;
    let listing = run("bsdtar", &["-tf"], archive)?;
    let listed: std::collections::BTreeSet<&str> = listing.lines().collect();
    for name in expected.keys() {
        if !listed.contains(name.as_str()) {
            return Err(format!("bsdtar does not list {name:?}:\n{listing}"));
        }
    }
    let read = python_digests(archive)?;
    if &read != expected {
        let differ: Vec<_> = expected.keys().chain(read.keys()).filter(|k| read.get(*k) != expected.get(*k)).collect();
        return Err(format!("Python reads different contents for {differ:?}"));
    }
    Ok(())
}

/// Extracts `archive` with `bsdtar -xf`, `unzip` and `7z x`, each into an
/// empty directory made under `scratch`, and compares each extracted tree with `expected` file by
/// file (entry name → SHA-256 of its bytes; folders as `name/` with the digest
/// of nothing). A tree that would lose files on a file system that ignores
/// case and normalisation (macOS, Windows) — two names equal after NFC and
/// case folding — or whose names are not in NFC is refused too.
pub fn extract_and_compare(archive: &Path, scratch: &Path, expected: &BTreeMap<String, String>) -> Result<(), String> {
    use unicode_normalization::UnicodeNormalization;
    let folded: std::collections::BTreeSet<String> =
        expected.keys().map(|k| k.nfd().collect::<String>().to_lowercase().nfc().collect()).collect();
    if folded.len() != expected.len() {
        return Err(format!("names collide once case and normalisation are ignored: {:?}", expected.keys()));
    }
    if let Some(name) = expected.keys().find(|k| k.nfc().collect::<String>() != **k) {
        return Err(format!("{name:?} is not in NFC"));
    }
    let archive = archive.canonicalize().map_err(|e| format!("{}: {e}", archive.display()))?;
    for (program, args) in [
        ("bsdtar", vec!["-x", "-C", "{dir}", "-f"]),
        ("unzip", vec!["-q", "-d", "{dir}"]),
        ("7z", vec!["x", "-y", "-bd", "-o{dir}"]),
    ] {
        let dir = scratch.join(program);
        std::fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let dir_text = dir.to_str().ok_or("a scratch directory with a non-UTF-8 path")?;
        let args: Vec<String> = args.iter().map(|a| a.replace("{dir}", dir_text)).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(program, &args, &archive)?;
        let mut found = BTreeMap::new();
        walk(&dir, "", &mut found)?;
        if &found != expected {
            let differ: Vec<_> =
                expected.keys().chain(found.keys()).filter(|k| found.get(*k) != expected.get(*k)).collect();
            return Err(format!("{program} extracts a different tree: {differ:?}"));
        }
    }
    Ok(())
}

/// Every file and folder under `dir` (relative to the walk's start, folders
/// ending in `/`) and the SHA-256 of its bytes.
fn walk(dir: &Path, prefix: &str, found: &mut BTreeMap<String, String>) -> Result<(), String> {
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let entry = entry.map_err(|e| e.to_string())?;
        let name = entry.file_name().into_string().map_err(|n| format!("a name that is not UTF-8: {n:?}"))?;
        let path = entry.path();
        if entry.file_type().map_err(|e| e.to_string())?.is_dir() {
            let folder = format!("{prefix}{name}/");
            found.insert(folder.clone(), digest(b""));
            walk(&path, &folder, found)?;
        } else {
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            found.insert(format!("{prefix}{name}"), digest(&bytes));
        }
    }
    Ok(())
}

/// The SHA-256 (hex) of `bytes`, for [`verify`]'s expectations.
pub fn digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(bytes))
}
