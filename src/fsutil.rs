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
}
