//! `publinks-local` as a newcomer runs it: started, stopped, started again
//! on the same data directory.

use serde_json::Value;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server, stopped when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the server on a free port over `data_dir` and waits for the info
/// file it writes once it listens; returns it with the file's content.
fn start(data_dir: &Path) -> (Server, Value) {
    let info = data_dir.with_extension("info.json");
    let _ = std::fs::remove_file(&info);
    let child = Command::new(env!("CARGO_BIN_EXE_publinks-local"))
        .args(["--port", "0", "--data-dir"])
        .arg(data_dir)
        .arg("--info-file")
        .arg(&info)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("the server starts");
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(value) = std::fs::read(&info).ok().and_then(|b| serde_json::from_slice::<Value>(&b).ok()) {
            return (server, value);
        }
        assert!(Instant::now() < deadline, "the server did not write its info file");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A GET of `path` on `base` (`http://127.0.0.1:port`): status line and body.
fn get(base: &str, path: &str) -> (String, String) {
    let address = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nAccept: text/html\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (head.to_string(), body.to_string())
}

#[test]
fn every_start_prints_tokens_and_the_same_share_links_and_the_root_is_a_page() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (first, seeded) = start(&data);
    let users = seeded["users"].as_array().expect("the demo users and their tokens");
    assert_eq!(users.len(), 3);
    let links = seeded["links"].as_array().expect("the demo's share links").clone();
    assert_eq!(links.len(), 2, "{seeded}");
    assert!(seeded["reset"].as_str().unwrap().contains("delete"), "says how to start over");

    let base = seeded["base_url"].as_str().unwrap();
    let (head, page) = get(base, "/");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-security-policy: default-src 'none'"), "{head}");
    assert!(page.contains("href=\"/api/docs\""), "links the API reference: {page}");
    for link in &links {
        assert!(page.contains(link["url"].as_str().unwrap()), "offers {link}");
    }
    let (head, body) = get(base, "/api/nothing-here");
    assert!(head.starts_with("HTTP/1.1 404") && body.contains("\"no_route\""), "JSON clients keep their 404s");
    drop(first);

    // Started again on the same data: tokens again, the same links (none added).
    let (_second, again) = start(&data);
    let users_again = again["users"].as_array().expect("tokens at every start");
    assert_eq!(users_again.len(), 3);
    for (a, b) in users.iter().zip(users_again) {
        assert_eq!(a["id"], b["id"]);
        assert!(b["token"].as_str().unwrap().split('.').count() == 3, "a JWT: {b}");
    }
    // The port is new (0 picks one); the share tokens are not.
    let tokens = |links: &[Value]| -> Vec<String> {
        links.iter().map(|l| l["url"].as_str().unwrap().split("/s/").nth(1).unwrap().to_string()).collect()
    };
    let links_again = again["links"].as_array().unwrap();
    assert_eq!(tokens(links_again), tokens(&links), "the same share links, not new ones");
    let (_, page) = get(again["base_url"].as_str().unwrap(), "/");
    assert!(page.contains(links_again[0]["url"].as_str().unwrap()));
}
