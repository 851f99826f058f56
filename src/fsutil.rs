//! Small file-system helpers shared by the caches: atomic writes and content hashes.

use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

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

/// Reads a whole file into shared memory with one copy. `std::fs::read(path)?.into()` makes two
/// (the `Vec`, then the `Arc`), which for the 54 MB standard-library zip that every guest
/// process loads costs a second copy and a second round of page faults.
pub(crate) fn read_shared(path: &Path) -> std::io::Result<Arc<[u8]>> {
    let mut file = std::fs::File::open(path)?;
    let len = usize::try_from(file.metadata()?.len())
        .map_err(|_| std::io::Error::other("file too large for this machine's memory"))?;
    // SAFETY: all-zero bytes are valid `u8`s.
    let mut contents: Arc<[u8]> = unsafe { Arc::new_zeroed_slice(len).assume_init() };
    let buffer = Arc::get_mut(&mut contents).expect("a new Arc has no other owner");
    file.read_exact(buffer)?;
    // A file that grew since its length was read would be cut short: say so rather than
    // return part of it.
    if file.read(&mut [0u8; 1])? != 0 {
        return Err(std::io::Error::other("the file changed while it was read"));
    }
    Ok(contents)
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
    fn read_shared_reads_whole_files() {
        let dir = std::env::temp_dir().join(format!("spar-fsutil-{}", unique_suffix()));
        let file = dir.join("f");
        write_atomic(&file, b"hello").unwrap();
        assert_eq!(&*read_shared(&file).unwrap(), b"hello");
        write_atomic(&file, b"").unwrap();
        assert!(read_shared(&file).unwrap().is_empty());
        assert!(read_shared(&dir.join("missing")).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

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
