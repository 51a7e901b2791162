//! The page end to end: `cargo xtask web --serve` builds and serves it, then headless
//! Chromium draws digits on it with pointer strokes (crates/cnn-web/e2e/draw.mjs checks
//! each prediction, the probabilities, the panels, console errors and the update time).

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Stops the server however the test ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Node, Chromium and playwright-core, or a line saying how to install what is missing.
fn check_tools(e2e: &Path) {
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "the browser test needs Node.js: `cargo xtask test` installs it (Debian's nodejs)"
    );
    let chromium =
        std::env::var_os("CHROMIUM").map_or_else(|| "/usr/bin/chromium".into(), PathBuf::from);
    assert!(
        chromium.is_file(),
        "the browser test needs Chromium at {}: `cargo xtask test` installs it (Debian's \
         chromium), or set CHROMIUM to its path",
        chromium.display()
    );
    assert!(
        e2e.join("node_modules/playwright-core").is_dir(),
        "the browser test needs playwright-core: `cargo xtask test` installs it \
         (`npm ci --prefix crates/cnn-web/e2e`)"
    );
}

/// Starts `cargo xtask web --serve --port 0` and returns it with the URL it prints.
fn serve(site: &Path) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["web", "--serve", "--port", "0", "--out"])
        .arg(site)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("serving ") {
                let url = rest.split(" at ").nth(1).and_then(|u| u.split(' ').next());
                let _ = tx.send(url.map(str::to_string));
            }
        }
    });
    // The first build compiles the engine for wasm32: minutes on a cold machine.
    let url = rx.recv_timeout(Duration::from_secs(1200)).ok().flatten();
    (
        server,
        url.expect("`cargo xtask web --serve` printed no URL"),
    )
}

#[test]
fn digits_drawn_in_chromium_are_recognised_at_once() {
    let root = repo_root();
    let e2e = root.join("crates/cnn-web/e2e");
    check_tools(&e2e);
    let out = root.join("target/web-test");
    let (_server, url) = serve(&out.join("site"));
    let run = Command::new("node")
        .arg(e2e.join("draw.mjs"))
        .arg(&url)
        .arg(&out)
        .current_dir(&e2e)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "the browser test failed:\n{stderr}\n{stdout}"
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let results = summary["results"].as_array().unwrap();
    // Three digits on each of the three shipped models, and one on the phone layout.
    assert_eq!(results.len(), 10, "{summary}");
    for model in ["small_cnn", "medium_cnn", "mnist_best"] {
        let drawn = results.iter().filter(|r| r["model"] == model).count();
        assert!(drawn >= 3, "{model} drew {drawn} digits: {summary}");
    }
    for r in results {
        assert_eq!(r["prediction"], r["digit"], "{r}");
    }
    let max = summary["max_latency_ms"].as_f64().unwrap();
    assert!(max <= 50.0, "slowest update {max} ms");
    eprintln!(
        "browser test: {} drawings recognised; stroke end to prediction: median {} ms, max {max} ms; \
         screenshots in {}",
        results.len(),
        summary["median_latency_ms"],
        out.display()
    );
    std::fs::write(out.join("summary.json"), stdout.as_bytes()).unwrap();
    hostile_clients_get_short_answers(&url, &out.join("site"));
}

/// Sends `raw` to the server at `url` and returns what it answers, up to its close.
fn exchange(url: &str, raw: &[u8]) -> String {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(raw).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// A client that pipelines and never reads holds one worker, not the server; a huge head
/// is cut off; hidden files and links out of the site are not served.
fn hostile_clients_get_short_answers(url: &str, site: &Path) {
    use std::io::Write;
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    let mut stalled = std::net::TcpStream::connect(addr).unwrap();
    stalled
        .write_all(&b"GET /cnn_web.wasm HTTP/1.1\r\nHost: x\r\n\r\n".repeat(20))
        .unwrap();
    let page = exchange(url, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    let huge = format!("GET / HTTP/1.1\r\nX-Pad: {}\r\n\r\n", "a".repeat(40_000));
    let refused = exchange(url, huge.as_bytes());
    assert!(refused.starts_with("HTTP/1.1 431"), "{refused}");
    std::fs::write(site.join(".secret"), "hidden").unwrap();
    let outside = site.parent().unwrap().join("outside.txt");
    std::fs::write(&outside, "outside").unwrap();
    let link = site.join("link.txt");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    for path in ["/.secret", "/link.txt", "/../outside.txt"] {
        let answer = exchange(url, format!("GET {path} HTTP/1.1\r\n\r\n").as_bytes());
        assert!(answer.starts_with("HTTP/1.1 404"), "{path}: {answer}");
    }
    drop(stalled);
}
