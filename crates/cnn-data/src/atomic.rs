//! Atomic file writes, shared by everything in the workspace that writes a file.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The temporary file [`write_atomic`] writes `path` through: `.<name>.tmp-<pid>` beside it.
pub fn temp_path(path: &Path) -> PathBuf {
    let dir = parent(path);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    dir.join(format!(".{name}.tmp-{}", std::process::id()))
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, fsync, rename,
/// then fsync of the folder. A crash at any point leaves either the old file or the new one;
/// on failure the temporary file is removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, |f| f.write_all(bytes))
}

/// [`write_atomic`] of what `write` writes to the file, for contents written in parts.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = parent(path);
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        write(&mut f)?;
        let f = f
            .into_inner()
            .map_err(std::io::IntoInnerError::into_error)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        // The rename is durable only once the folder itself is synced.
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Removes the temporary files that [`write_atomic`] leaves when a process is killed
/// mid-write (`.<name>.tmp-<pid>` for each of `names` in `dir`), unless their writer is
/// still running (a shared folder such as the data cache may be written by another process
/// right now); returns how many went.
///
/// Best effort: a temporary file that cannot be removed is harmless, so failures are skipped.
pub fn remove_stale_temps(dir: &Path, names: &[&str]) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        let stale = names.iter().any(|name| {
            file_name
                .strip_prefix(&format!(".{name}.tmp-"))
                .and_then(|pid| pid.parse::<u32>().ok())
                .is_some_and(|pid| !writer_alive(pid, &entry.path()))
        });
        if stale && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Whether the process that writes through a temporary file may still be at it: on Linux,
/// whether it exists (our own process counts, its writes finish before it returns);
/// elsewhere, whether the file changed in the last ten minutes.
fn writer_alive(pid: u32, tmp: &Path) -> bool {
    if pid == std::process::id() {
        return false;
    }
    if cfg!(target_os = "linux") {
        return Path::new("/proc").join(pid.to_string()).exists();
    }
    std::fs::metadata(tmp)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age < std::time::Duration::from_secs(600))
}
