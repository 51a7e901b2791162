//! A small static file server for the built page, on 127.0.0.1 only.

use std::io::Write;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use tiny_http::{Header, Method, Request, Response, Server};

/// Serves `dir` on 127.0.0.1:`port` (0: any free port) until the process is stopped, after
/// printing the URL as the first line of standard output.
#[allow(clippy::print_stdout)]
pub fn serve(dir: &Path, port: u16) -> Result<()> {
    let server = Server::http(("127.0.0.1", port))
        .map_err(|e| anyhow!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    let addr = server
        .server_addr()
        .to_ip()
        .context("the server has no IP address")?;
    println!("serving {} at http://{addr}/ (Ctrl-C stops)", dir.display());
    std::io::stdout().flush()?;
    for request in server.incoming_requests() {
        respond(dir, request);
    }
    Ok(())
}

/// The file a URL path names inside `dir`, refusing anything that would leave it.
fn file_for(dir: &Path, url: &str) -> Option<PathBuf> {
    let path = url.split(['?', '#']).next().unwrap_or("");
    let path = path.trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    let rel = Path::new(path);
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    Some(dir.join(rel))
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

fn header(name: &str, value: &str) -> Option<Header> {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).ok()
}

fn respond(dir: &Path, request: Request) {
    // A client that goes away mid-answer is no reason to stop serving the others.
    let _ = match (request.method(), file_for(dir, request.url())) {
        (Method::Get | Method::Head, Some(file)) if file.is_file() => {
            match std::fs::read(&file) {
                Ok(bytes) => {
                    let mut response = Response::from_data(bytes);
                    let headers = [
                        header("Content-Type", content_type(&file)),
                        // Rebuilt often while working on it: never serve a stale copy.
                        header("Cache-Control", "no-store"),
                    ];
                    for h in headers.into_iter().flatten() {
                        response.add_header(h);
                    }
                    request.respond(response)
                }
                Err(_) => request.respond(Response::empty(500)),
            }
        }
        (Method::Get | Method::Head, _) => {
            request.respond(Response::from_string("not found").with_status_code(404))
        }
        _ => request.respond(Response::empty(405)),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_map_to_files_inside_the_site_only() {
        let dir = Path::new("/site");
        assert_eq!(file_for(dir, "/"), Some(PathBuf::from("/site/index.html")));
        assert_eq!(
            file_for(dir, "/app.js?v=2"),
            Some(PathBuf::from("/site/app.js"))
        );
        assert_eq!(
            file_for(dir, "/models/small_cnn.safetensors"),
            Some(PathBuf::from("/site/models/small_cnn.safetensors"))
        );
        assert_eq!(file_for(dir, "/../etc/passwd"), None);
        assert_eq!(file_for(dir, "/models/../../x"), None);
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
