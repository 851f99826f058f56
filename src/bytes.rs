//! File contents that snapshots, sandbox file systems and caches share without copying: bytes
//! on the heap, or a read-only mapping of a file in spar's own cache.
//!
//! Every guest process mounts the interpreter's 54 MB standard-library zip, the site packages
//! (16 MB in about a thousand files) and reads a guest image (19 MB or more). Reading them cost
//! a copy and a page fault per page of fresh memory on every process start, although a run
//! reads little of them: a mapping costs neither until a page is touched, and then only a
//! page-cache lookup.

use std::collections::HashMap;
use std::fmt;
use std::ops::Deref;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Immutable bytes, cheap to clone (a reference count), compared by content.
#[derive(Clone)]
pub struct SharedBytes(Repr);

#[derive(Clone)]
enum Repr {
    Heap(Arc<[u8]>),
    /// `len` bytes from `start` of a mapping that may hold other files too (a pack).
    Mapped {
        map: Arc<memmap2::Mmap>,
        start: usize,
        len: usize,
    },
}

/// Files smaller than this are read rather than mapped: a mapping costs a system call to make
/// and one to undo, and a kernel memory area while it lives.
const MAP_AT_LEAST: u64 = 64 * 1024;

impl SharedBytes {
    /// Reads `path` whole, mapping it when it is large.
    ///
    /// Only for files in spar's cache: they are written beside their target and renamed into
    /// place, never changed in place, and pruning unlinks them, which leaves a live mapping
    /// intact. A mapped file truncated by someone else would make reading it fault; that is
    /// why a user's files (repositories, corpora) are always read with [`SharedBytes::read`].
    pub fn map_cache_file(path: &Path) -> std::io::Result<SharedBytes> {
        let file = std::fs::File::open(path)?;
        if file.metadata()?.len() < MAP_AT_LEAST {
            return Self::read_open(file);
        }
        Self::map_open(&file)
    }

    /// Maps `path` whole, whatever its size: for a cache file that holds many files, handed
    /// out with [`SharedBytes::slice`]. The same rules as [`SharedBytes::map_cache_file`].
    pub fn map_cache_pack(path: &Path) -> std::io::Result<SharedBytes> {
        Self::map_open(&std::fs::File::open(path)?)
    }

    fn map_open(file: &std::fs::File) -> std::io::Result<SharedBytes> {
        // SAFETY: see map_cache_file: files of spar's cache are replaced by rename, never
        // modified.
        let map = unsafe { memmap2::Mmap::map(file)? };
        let len = map.len();
        Ok(SharedBytes(Repr::Mapped {
            map: Arc::new(map),
            start: 0,
            len,
        }))
    }

    /// The bytes in `range`, sharing a mapping's pages (heap bytes are copied); `None` when
    /// the range is out of bounds.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Option<SharedBytes> {
        self.get(range.clone())?;
        Some(SharedBytes(match &self.0 {
            Repr::Heap(bytes) => Repr::Heap(bytes[range].into()),
            Repr::Mapped { map, start, .. } => Repr::Mapped {
                map: map.clone(),
                start: start + range.start,
                len: range.len(),
            },
        }))
    }

    /// Reads `path` whole into memory, with one copy.
    pub fn read(path: &Path) -> std::io::Result<SharedBytes> {
        Self::read_open(std::fs::File::open(path)?)
    }

    fn read_open(mut file: std::fs::File) -> std::io::Result<SharedBytes> {
        use std::io::Read;
        let len = usize::try_from(file.metadata()?.len())
            .map_err(|_| std::io::Error::other("file too large for this machine's memory"))?;
        // One allocation, read into directly: `fs::read(path)?.into()` would copy the `Vec`
        // into the `Arc` and fault every page twice.
        // SAFETY: all-zero bytes are valid `u8`s.
        let mut contents: Arc<[u8]> = unsafe { Arc::new_zeroed_slice(len).assume_init() };
        let buffer = Arc::get_mut(&mut contents).expect("a new Arc has no other owner");
        file.read_exact(buffer)?;
        // A file that grew since its length was read would be cut short: say so rather than
        // return part of it.
        if file.read(&mut [0u8; 1])? != 0 {
            return Err(std::io::Error::other("the file changed while it was read"));
        }
        Ok(SharedBytes(Repr::Heap(contents)))
    }

    /// Whether `a` and `b` are the same bytes in memory (not just equal ones).
    pub fn ptr_eq(a: &SharedBytes, b: &SharedBytes) -> bool {
        a.as_ptr() == b.as_ptr() && a.len() == b.len()
    }

    /// The address of the first byte: equal for clones, distinct for live buffers (an empty
    /// buffer's address is not distinct).
    pub fn address(&self) -> usize {
        self.as_ptr() as usize
    }
}

impl Deref for SharedBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Repr::Heap(bytes) => bytes,
            Repr::Mapped { map, start, len } => &map[*start..start + len],
        }
    }
}

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl PartialEq for SharedBytes {
    fn eq(&self, other: &SharedBytes) -> bool {
        self[..] == other[..]
    }
}

impl Eq for SharedBytes {}

impl fmt::Debug for SharedBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = match self.0 {
            Repr::Heap(_) => "heap",
            Repr::Mapped { .. } => "mapped",
        };
        write!(f, "SharedBytes({} bytes, {how})", self.len())
    }
}

impl From<Vec<u8>> for SharedBytes {
    fn from(bytes: Vec<u8>) -> SharedBytes {
        SharedBytes(Repr::Heap(bytes.into()))
    }
}

impl From<&[u8]> for SharedBytes {
    fn from(bytes: &[u8]) -> SharedBytes {
        SharedBytes(Repr::Heap(bytes.into()))
    }
}

/// Values worked out from file contents, remembered by the contents' address: snapshots of one
/// repository share the contents of the files they did not change, so most lookups find them
/// without reading or hashing them. Each entry holds the contents, so their address cannot be
/// reused for other bytes while it is remembered. Past `max_entries` entries, or `max_bytes` of
/// contents kept alive, it starts again empty.
pub(crate) struct ContentMemo<V> {
    kept: Mutex<Kept<V>>,
    max_entries: usize,
    max_bytes: usize,
}

struct Kept<V> {
    by_address: HashMap<usize, (SharedBytes, V)>,
    /// The bytes of the contents the entries hold.
    bytes: usize,
}

impl<V: Clone> ContentMemo<V> {
    /// An empty memo with these bounds.
    pub(crate) fn new(max_entries: usize, max_bytes: usize) -> ContentMemo<V> {
        ContentMemo {
            kept: Mutex::new(Kept {
                by_address: HashMap::new(),
                bytes: 0,
            }),
            max_entries,
            max_bytes,
        }
    }

    /// The value remembered for these very bytes (not merely equal ones).
    pub(crate) fn get(&self, contents: &SharedBytes) -> Option<V> {
        self.lock()
            .by_address
            .get(&contents.address())
            .filter(|(kept, _)| SharedBytes::ptr_eq(kept, contents))
            .map(|(_, value)| value.clone())
    }

    /// Remembers `value` for `contents`, in place of anything remembered at their address.
    pub(crate) fn insert(&self, contents: &SharedBytes, value: V) {
        let mut kept = self.lock();
        if kept.by_address.len() >= self.max_entries
            || kept.bytes.saturating_add(contents.len()) > self.max_bytes
        {
            kept.by_address.clear();
            kept.bytes = 0;
        }
        kept.bytes += contents.len();
        let replaced = kept
            .by_address
            .insert(contents.address(), (contents.clone(), value));
        if let Some((old, _)) = replaced {
            kept.bytes -= old.len();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept<V>> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Reads the little-endian fields of spar's own cache formats (guest images, packed trees,
/// bytecode entries), every read checked against the bytes there are: a damaged or foreign
/// file gives `None`, never a panic or a read past its end.
pub(crate) struct LeReader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> LeReader<'a> {
    /// A reader of `bytes` from offset `at` on.
    pub(crate) fn new(bytes: &'a [u8], at: usize) -> LeReader<'a> {
        LeReader { bytes, at }
    }

    /// The next `len` bytes.
    pub(crate) fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let taken = self.bytes.get(self.at..self.at.checked_add(len)?)?;
        self.at += len;
        Some(taken)
    }

    /// The offset of the next byte.
    pub(crate) fn position(&self) -> usize {
        self.at
    }

    /// Whether every byte has been read.
    pub(crate) fn is_done(&self) -> bool {
        self.at >= self.bytes.len()
    }

    pub(crate) fn u16(&mut self) -> Option<usize> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?).into())
    }

    pub(crate) fn u32(&mut self) -> Option<usize> {
        usize::try_from(u32::from_le_bytes(self.take(4)?.try_into().ok()?)).ok()
    }

    pub(crate) fn u64(&mut self) -> Option<usize> {
        usize::try_from(u64::from_le_bytes(self.take(8)?.try_into().ok()?)).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_memo_answers_for_the_same_bytes_only_and_starts_again_past_its_bounds() {
        let a = SharedBytes::from(&b"import os"[..]);
        let equal = SharedBytes::from(&b"import os"[..]);
        let memo = ContentMemo::new(2, 1 << 20);
        memo.insert(&a, 1);
        assert_eq!(memo.get(&a.clone()), Some(1), "a clone is the same bytes");
        assert_eq!(memo.get(&equal), None, "equal bytes elsewhere are not");
        memo.insert(&equal, 2);
        let third = SharedBytes::from(&b"x"[..]);
        memo.insert(&third, 3);
        assert_eq!(
            (memo.get(&a), memo.get(&third)),
            (None, Some(3)),
            "two entries at most"
        );

        let small = ContentMemo::new(usize::MAX, 12);
        small.insert(&a, 1);
        small.insert(&a, 1);
        assert_eq!(small.get(&a), Some(1), "replacing an entry frees its bytes");
        small.insert(&equal, 2);
        assert_eq!(
            (small.get(&a), small.get(&equal)),
            (None, Some(2)),
            "12 bytes at most"
        );
    }

    #[test]
    fn le_fields_are_read_in_order_and_never_past_the_end() {
        let mut bytes = vec![9u8];
        bytes.extend_from_slice(&7u16.to_le_bytes());
        bytes.extend_from_slice(&70_000u32.to_le_bytes());
        bytes.extend_from_slice(&(1u64 << 40).to_le_bytes());
        let mut reader = LeReader::new(&bytes, 1);
        assert_eq!(reader.u16(), Some(7));
        assert_eq!(reader.u32(), Some(70_000));
        assert_eq!(reader.position(), 7);
        assert_eq!(reader.u64(), Some(1 << 40));
        assert!(reader.is_done());
        assert_eq!(reader.take(1), None);
        assert_eq!(LeReader::new(&bytes, 10).u64(), None, "a field cut off");
        assert_eq!(LeReader::new(&bytes, 1).take(usize::MAX), None);
    }

    #[test]
    fn small_files_are_read_and_large_ones_mapped_with_the_same_bytes() {
        let dir = std::env::temp_dir().join(format!("spar-bytes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let small = dir.join("small");
        let large = dir.join("large");
        let empty = dir.join("empty");
        std::fs::write(&small, b"hello").unwrap();
        let big: Vec<u8> = (0..MAP_AT_LEAST as usize * 2).map(|i| i as u8).collect();
        std::fs::write(&large, &big).unwrap();
        std::fs::write(&empty, b"").unwrap();

        let read = SharedBytes::map_cache_file(&small).unwrap();
        assert_eq!(&read[..], b"hello");
        assert!(format!("{read:?}").contains("heap"));
        let mapped = SharedBytes::map_cache_file(&large).unwrap();
        assert!(format!("{mapped:?}").contains("mapped"));
        assert_eq!(mapped, SharedBytes::from(big.clone()));
        assert_eq!(SharedBytes::read(&large).unwrap()[..], big[..]);
        assert!(SharedBytes::map_cache_file(&empty).unwrap().is_empty());
        assert!(SharedBytes::read(&empty).unwrap().is_empty());
        assert!(SharedBytes::read(&dir.join("missing")).is_err());
        assert!(SharedBytes::map_cache_file(&dir.join("missing")).is_err());

        // An unlinked file stays readable through its mapping (pruning the cache unlinks).
        std::fs::remove_file(&large).unwrap();
        assert_eq!(mapped[..], big[..]);
        let clone = mapped.clone();
        assert!(SharedBytes::ptr_eq(&clone, &mapped));
        assert!(!SharedBytes::ptr_eq(&SharedBytes::from(big), &mapped));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
