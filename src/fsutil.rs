//! Small file-system helpers shared by the caches: atomic writes and content hashes.

use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` so that readers see either the old file or the complete new one:
/// the data goes to a unique temporary file beside it, which is then renamed into place.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        unique_suffix()
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A suffix unique within this machine for temporary names: process id and a counter.
pub(crate) fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Lower-case hex sha256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    crate::snapshot::hex(&Sha256::digest(bytes))
}

/// Marks a cached file as just used, for [`prune_least_recently_used`]'s order (a failure only
/// makes it look older).
pub(crate) fn touch(file: &Path) {
    let now = std::time::SystemTime::now();
    let _ = std::fs::File::options()
        .append(true)
        .open(file)
        .and_then(|f| f.set_modified(now));
}

/// Removes the least recently used `*.EXTENSION` files of `dir` until they take at most
/// `max_bytes`, never `keep` (the file just written). Another process may be reading one: it
/// has its bytes already, or it makes the file again.
pub(crate) fn prune_least_recently_used(dir: &Path, extension: &str, max_bytes: u64, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, u64, std::path::PathBuf)> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == extension))
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some((meta.modified().ok()?, meta.len(), e.path()))
        })
        .collect();
    let mut total: u64 = files.iter().map(|(_, len, _)| len).sum();
    files.sort();
    for (_, len, path) in files {
        if total <= max_bytes {
            break;
        }
        if path != keep && std::fs::remove_file(&path).is_ok() {
            total -= len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_files_go_first_and_never_the_new_one() {
        let dir = std::env::temp_dir().join(format!("spar-prune-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let day = std::time::Duration::from_secs(86_400);
        let now = std::time::SystemTime::now();
        let write = |name: &str, days_ago: u32| {
            let path = dir.join(name);
            std::fs::write(&path, [0u8; 100]).unwrap();
            let file = std::fs::File::options().append(true).open(&path).unwrap();
            file.set_modified(now - day * days_ago).unwrap();
            path
        };
        let oldest = write("a.img", 5);
        let used = write("b.img", 4);
        let newest = write("c.img", 3);
        let written = write("d.img", 9);
        let marker = write("e.failed", 10);
        touch(&used);
        prune_least_recently_used(&dir, "img", 250, &written);
        assert!(
            !oldest.exists() && !newest.exists(),
            "oldest unused first, to the bound"
        );
        assert!(used.exists() && written.exists() && marker.exists());
        prune_least_recently_used(&dir, "img", 0, &written);
        assert!(written.exists(), "the image just written stays");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
