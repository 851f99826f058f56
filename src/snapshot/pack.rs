//! A tree of spar's cache kept as one file beside it (`DIR.pack`): its directories and file
//! contents, mapped at once.
//!
//! The guest's site packages are about a thousand files; opening, reading and closing each at
//! every process start took 9-12 ms of a 40 ms `spar run -c pass`. One mapping costs a system
//! call, and a file's bytes are then a slice of it, read from the page cache when touched.
//!
//! Layout (little-endian): the magic, the data section's offset, then the root directory:
//! an entry count (u32) and per entry, in name order, the name's length (u16), the name, a kind
//! byte (0 file, 1 directory) and either the file's offset and length in the data section
//! (u64 each) or the directory, in the same form. The data section follows.

use super::{Dir, Entry};
use crate::bytes::{LeReader, SharedBytes};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

const MAGIC: &[u8; 12] = b"spar-pack-1\n";

/// Deeper trees than this are refused (a damaged file must not overflow the stack).
const MAX_DEPTH: usize = 64;

/// The tree `root` as a pack's bytes.
pub(super) fn encode(root: &Dir) -> Vec<u8> {
    let mut index = Vec::new();
    let mut data = Vec::new();
    encode_dir(root, &mut index, &mut data);
    let mut out = Vec::with_capacity(MAGIC.len() + 8 + index.len() + data.len());
    out.extend_from_slice(MAGIC);
    let data_at = (MAGIC.len() + 8 + index.len()) as u64;
    out.extend_from_slice(&data_at.to_le_bytes());
    out.extend_from_slice(&index);
    out.extend_from_slice(&data);
    out
}

fn encode_dir(dir: &Dir, index: &mut Vec<u8>, data: &mut Vec<u8>) {
    index.extend_from_slice(&(dir.entries.len() as u32).to_le_bytes());
    for (name, entry) in &dir.entries {
        index.extend_from_slice(&(name.len() as u16).to_le_bytes());
        index.extend_from_slice(name.as_bytes());
        match entry {
            Entry::File(contents) => {
                index.push(0);
                index.extend_from_slice(&(data.len() as u64).to_le_bytes());
                index.extend_from_slice(&(contents.len() as u64).to_le_bytes());
                data.extend_from_slice(contents);
            }
            Entry::Dir(child) => {
                index.push(1);
                encode_dir(child, index, data);
            }
        }
    }
}

/// The tree in the pack at `path`, its files slices of one mapping; `None` when there is no
/// pack or it is not one this build wrote (the caller reads the directory instead).
pub(super) fn map(path: &Path) -> Option<Dir> {
    let bytes = SharedBytes::map_cache_pack(path).ok()?;
    decode(&bytes)
}

/// Parses a pack, checking every length and offset against the bytes there are.
pub(super) fn decode(bytes: &SharedBytes) -> Option<Dir> {
    let mut header = LeReader::new(bytes, 0);
    (header.take(MAGIC.len())? == MAGIC).then_some(())?;
    let data_at = header.u64()?;
    let mut reader = Reader {
        index: LeReader::new(bytes.get(..data_at)?, header.position()),
        data: bytes.slice(data_at..bytes.len())?,
    };
    let root = reader.dir(0)?;
    reader.index.is_done().then_some(root)
}

struct Reader<'a> {
    index: LeReader<'a>,
    data: SharedBytes,
}

impl Reader<'_> {
    fn dir(&mut self, depth: usize) -> Option<Dir> {
        if depth > MAX_DEPTH {
            return None;
        }
        let count = self.index.u32()?;
        let mut entries = BTreeMap::new();
        for _ in 0..count {
            let len = self.index.u16()?;
            let name = std::str::from_utf8(self.index.take(len)?).ok()?.to_owned();
            let entry = match self.index.take(1)?[0] {
                0 => {
                    let (at, len) = (self.index.u64()?, self.index.u64()?);
                    Entry::File(self.data.slice(at..at.checked_add(len)?)?)
                }
                1 => Entry::Dir(Arc::new(self.dir(depth + 1)?)),
                _ => return None,
            };
            entries.insert(name, entry);
        }
        Some(Dir { entries })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Snapshot;

    fn tree() -> Snapshot {
        Snapshot::from_files([
            ("a.py", b"print(1)\n".to_vec()),
            ("pkg/__init__.py", Vec::new()),
            ("pkg/sub/deep.txt", vec![7u8; 100_000]),
            ("z", b"last".to_vec()),
        ])
        .unwrap()
    }

    #[test]
    fn a_tree_comes_back_whole_with_its_empty_files_and_directories() {
        let snapshot = tree();
        let mut root = (**snapshot.root()).clone();
        root.entries
            .insert("empty".into(), Entry::Dir(Arc::new(Dir::default())));
        let back = decode(&SharedBytes::from(encode(&root))).unwrap();
        let back = Snapshot::from_root(back);
        assert_eq!(back.files(), snapshot.files());
        assert!(matches!(back.get("empty"), Some(Entry::Dir(d)) if d.entries.is_empty()));
        assert_eq!(back.file("pkg/__init__.py").unwrap().len(), 0);
    }

    #[test]
    fn damaged_packs_are_refused_not_misread() {
        let good = encode(tree().root());
        assert!(decode(&SharedBytes::from(good.clone())).is_some());
        // Every truncation, and a wrong magic, an offset past the end and trailing index bytes.
        for cut in 0..good.len() {
            assert!(decode(&SharedBytes::from(&good[..cut])).is_none(), "{cut}");
        }
        let mut magic = good.clone();
        magic[0] ^= 1;
        assert!(decode(&SharedBytes::from(magic)).is_none());
        let mut offset = good.clone();
        offset[MAGIC.len()..MAGIC.len() + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode(&SharedBytes::from(offset)).is_none());
    }

    #[test]
    fn a_cache_directory_is_packed_once_and_then_read_from_its_pack() {
        let base = std::env::temp_dir().join(format!("spar-pack-{}", std::process::id()));
        let dir = base.join("tree");
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(dir.join("pkg")).unwrap();
        std::fs::write(dir.join("a.py"), b"x = 1\n").unwrap();
        std::fs::write(dir.join("pkg/m.py"), b"y = 2\n").unwrap();
        let packed = Snapshot::pack_path(&dir);
        assert_eq!(packed, base.join("tree.pack"));

        let first = Snapshot::from_cache_dir(&dir).unwrap().0;
        assert!(packed.is_file());
        let second = Snapshot::from_cache_dir(&dir).unwrap().0;
        assert_eq!(second.files(), first.files());
        // From the pack: even a small file is a slice of the mapping, not a read.
        assert!(format!("{:?}", second.file("a.py").unwrap()).contains("mapped"));

        // A damaged pack is not trusted: the directory is read (and packed) again.
        std::fs::write(&packed, b"spar-pack-1\ngarbage").unwrap();
        let third = Snapshot::from_cache_dir(&dir).unwrap().0;
        assert_eq!(third.files(), first.files());
        assert!(map(&packed).is_some());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
