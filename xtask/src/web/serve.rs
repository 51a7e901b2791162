//! A small static file server for the built page, on 127.0.0.1 only.
//!
//! Written on the standard library rather than a crate: the one we used (tiny_http) reads
//! request heads without a bound (a 300 MiB header took the server to 600 MB) and left
//! concurrency to its caller. Here a fixed pool of workers each serve one request per
//! connection, with a bounded head and timeouts, and only regular files inside the site.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

/// Workers answering at once: a slow or stalled client holds one, never the others.
const WORKERS: usize = 8;
/// Largest request head read (request line and headers); a browser's are under 2 KiB.
const MAX_HEAD: usize = 16 * 1024;
/// How long a client may take to send its request or read the answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `dir` on 127.0.0.1:`port` (0: any free port) until the process is stopped, after
/// printing the URL as the first line of standard output.
#[allow(clippy::print_stdout)]
pub fn serve(dir: &Path, port: u16) -> Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    let addr = listener.local_addr()?;
    let site = dir
        .canonicalize()
        .with_context(|| format!("cannot open {}", dir.display()))?;
    println!("serving {} at http://{addr}/ (Ctrl-C stops)", dir.display());
    std::io::stdout().flush()?;
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| {
                for stream in listener.incoming().flatten() {
                    // A client that goes away mid-answer is no reason to stop serving.
                    let _ = answer(&site, stream);
                }
            });
        }
    });
    Ok(())
}

/// Reads one request from `stream` and answers it, then closes the connection.
fn answer(site: &Path, mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let Some(head) = read_head(&mut stream)? else {
        return respond(
            &mut stream,
            431,
            "text/plain",
            b"request head too large",
            true,
        );
    };
    let mut words = head.lines().next().unwrap_or("").split(' ');
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let body = method == "GET";
    if !body && method != "HEAD" {
        return respond(&mut stream, 405, "text/plain", b"method not allowed", true);
    }
    match file_for(site, target).and_then(|f| std::fs::read(&f).ok().map(|b| (f, b))) {
        Some((file, bytes)) => respond(&mut stream, 200, content_type(&file), &bytes, body),
        None => respond(&mut stream, 404, "text/plain", b"not found", body),
    }
}

/// The request head, up to its blank line; `None` when it runs past [`MAX_HEAD`].
fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > MAX_HEAD {
            return Ok(None);
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    Ok(Some(String::from_utf8_lossy(&head).into_owned()))
}

fn respond(
    stream: &mut TcpStream,
    status: u16,
    kind: &str,
    bytes: &[u8],
    body: bool,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Request Header Fields Too Large",
    };
    // Rebuilt often while working on it: never serve a stale copy.
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        bytes.len()
    );
    stream.write_all(head.as_bytes())?;
    if body {
        stream.write_all(bytes)?;
    }
    stream.flush()
}

/// The regular file a URL path names inside `site` (a canonical path): nothing that would
/// leave it, no hidden file or folder, and no link that points outside.
fn file_for(site: &Path, url: &str) -> Option<PathBuf> {
    let path = url.split(['?', '#']).next().unwrap_or("");
    let path = path.trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    let rel = Path::new(path);
    let plain = |c: Component<'_>| matches!(c, Component::Normal(name) if !name.to_string_lossy().starts_with('.'));
    if !rel.components().all(plain) {
        return None;
    }
    let file = site.join(rel).canonicalize().ok()?;
    let regular = std::fs::metadata(&file).is_ok_and(|m| m.is_file());
    (regular && file.starts_with(site)).then_some(file)
}

/// The MIME type of a file the site holds (`application/wasm` matters: browsers compile a
/// streamed module only with it).
fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("wasm") => "application/wasm",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn urls_map_to_regular_files_inside_the_site_only() -> std::io::Result<()> {
        let tmp = tempfile::tempdir()?;
        let site = tmp.path().join("site");
        std::fs::create_dir_all(site.join("models"))?;
        std::fs::write(site.join("index.html"), "page")?;
        std::fs::write(site.join("models/a.safetensors"), "weights")?;
        std::fs::write(site.join(".env"), "secret")?;
        std::fs::write(tmp.path().join("outside.txt"), "outside")?;
        std::os::unix::fs::symlink(tmp.path().join("outside.txt"), site.join("link.txt"))?;
        let site = site.canonicalize()?;
        assert_eq!(file_for(&site, "/"), Some(site.join("index.html")));
        assert_eq!(
            file_for(&site, "/index.html?v=2"),
            Some(site.join("index.html"))
        );
        assert_eq!(
            file_for(&site, "/models/a.safetensors"),
            Some(site.join("models/a.safetensors"))
        );
        for refused in [
            "/../outside.txt",
            "/models/../../outside.txt",
            "/.env",
            "/link.txt",
            "/models",
        ] {
            assert_eq!(file_for(&site, refused), None, "{refused}");
        }
        Ok(())
    }

    #[test]
    fn wasm_is_served_as_wasm() {
        assert_eq!(content_type(Path::new("cnn_web.wasm")), "application/wasm");
        assert_eq!(
            content_type(Path::new("index.html")),
            "text/html; charset=utf-8"
        );
    }
}
