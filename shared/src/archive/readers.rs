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

/// The SHA-256 (hex) of `bytes`, for [`verify`]'s expectations.
pub fn digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(bytes))
}
