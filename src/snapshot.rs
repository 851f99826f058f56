//! Immutable repository snapshots: the file trees that sandbox runs mount and share.
//!
//! A [`Snapshot`] is a persistent tree of directories and file contents behind `Arc`s. Cloning
//! one is O(1), many concurrent runs mount the same snapshot without copying it, and applying a
//! run's [`FileChange`]s produces a new snapshot that shares every untouched subtree with the
//! old one. Later layers (diffs, bug artifacts) express repository states as snapshots.

mod pack;

use crate::bytes::SharedBytes;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// Directory and file names that are never part of a snapshot read from disk: version control
/// metadata and caches that the host's tools leave behind.
const IGNORED_NAMES: &[&str] = &[
    ".git",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".tox",
];

/// Errors from reading a snapshot from the host file system.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The directory to snapshot could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The host path that failed.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The path is not a directory.
    #[error("{0} is not a directory: give the path of a repository's top-level directory")]
    NotADirectory(PathBuf),
    /// A file name is not UTF-8, which the guest cannot represent faithfully.
    #[error("{0} has a name that is not UTF-8; rename it or remove it from the repository")]
    NonUtf8Name(PathBuf),
    /// A change puts something under a path whose component is a file.
    #[error("cannot write {1}: {0} is a file, not a directory")]
    FileInPath(String, String),
    /// A change writes a file where a directory that holds files is.
    #[error("cannot write {0}: it is a directory that is not empty")]
    IsADirectory(String),
    /// A path given to a snapshot operation is not a clean relative path.
    #[error("invalid snapshot path {0:?}: use a relative path with '/' separators and no '..'")]
    InvalidPath(String),
}

/// One entry of a snapshot directory.
#[derive(Clone, Debug)]
pub enum Entry {
    /// A regular file and its contents.
    File(SharedBytes),
    /// A subdirectory.
    Dir(Arc<Dir>),
}

/// A directory of a snapshot: names mapped to entries, in sorted order.
#[derive(Clone, Debug, Default)]
pub struct Dir {
    entries: BTreeMap<String, Entry>,
}

impl Dir {
    pub(crate) fn from_entries(entries: BTreeMap<String, Entry>) -> Dir {
        Dir { entries }
    }

    /// The entries of this directory, sorted by name.
    pub fn entries(&self) -> &BTreeMap<String, Entry> {
        &self.entries
    }
}

/// A change a sandbox run made to a mounted snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileChange {
    /// A file was created or its contents changed; `contents` is the final text.
    Written {
        /// Path relative to the snapshot root, `/`-separated.
        path: String,
        /// The file's contents at the end of the run.
        contents: SharedBytes,
    },
    /// A file that existed in the snapshot was removed.
    Deleted {
        /// Path relative to the snapshot root, `/`-separated.
        path: String,
    },
}

impl FileChange {
    /// The repository-relative path this change touches.
    pub fn path(&self) -> &str {
        match self {
            FileChange::Written { path, .. } | FileChange::Deleted { path } => path,
        }
    }
}

/// An immutable, cheaply clonable file tree.
#[derive(Clone, Debug)]
pub struct Snapshot {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: Arc<Dir>,
    hash: OnceLock<String>,
}

/// What [`Snapshot::from_dir`] left out, so callers can report it instead of dropping it silently.
#[derive(Clone, Debug, Default)]
pub struct SkippedPaths {
    /// Symbolic links (the sandbox has none; their targets may lie outside the repository).
    pub symlinks: Vec<String>,
    /// Special files such as sockets and devices.
    pub special: Vec<String>,
}

impl Snapshot {
    /// An empty tree.
    pub fn empty() -> Self {
        Self::from_root(Dir::default())
    }

    fn from_root(root: Dir) -> Self {
        Self::from_root_dir(Arc::new(root))
    }

    pub(crate) fn from_root_dir(root: Arc<Dir>) -> Self {
        Snapshot {
            inner: Arc::new(Inner {
                root,
                hash: OnceLock::new(),
            }),
        }
    }

    /// Builds a snapshot from `(path, contents)` pairs; paths are `/`-separated and relative.
    pub fn from_files<P, C>(files: impl IntoIterator<Item = (P, C)>) -> Result<Self, SnapshotError>
    where
        P: AsRef<str>,
        C: Into<SharedBytes>,
    {
        let mut root = Dir::default();
        for (path, contents) in files {
            put(&mut root, path.as_ref(), Some(Entry::File(contents.into())))?;
        }
        Ok(Self::from_root(root))
    }

    /// Reads a host directory into memory, leaving out VCS metadata and caches
    /// (`.git`, `__pycache__`, `*.pyc`, ...). Symbolic links and special files are skipped and
    /// listed in the returned [`SkippedPaths`].
    pub fn from_dir(path: &Path) -> Result<(Self, SkippedPaths), SnapshotError> {
        Self::read_host_dir(path, Reading::SkipCaches)
    }

    /// Reads a host directory into memory keeping everything [`Snapshot::from_dir`] leaves
    /// out but symbolic links and special files: for trees whose bytecode is wanted.
    pub fn from_dir_verbatim(path: &Path) -> Result<(Self, SkippedPaths), SnapshotError> {
        Self::read_host_dir(path, Reading::Verbatim)
    }

    /// [`Snapshot::from_dir_verbatim`] for a directory of spar's own cache, which is renamed
    /// into place whole and never changed after: from its pack (`DIR.pack`, one mapping; see
    /// [`Snapshot::pack_path`]), else read with large files mapped (see
    /// [`SharedBytes::map_cache_file`]) and packed for the next process. Whoever replaces
    /// such a directory removes its pack first.
    pub fn from_cache_dir(path: &Path) -> Result<(Self, SkippedPaths), SnapshotError> {
        let packed = Self::pack_path(path);
        if let Some(root) = pack::map(&packed) {
            return Ok((Self::from_root(root), SkippedPaths::default()));
        }
        let (snapshot, skipped) = Self::read_host_dir(path, Reading::Cache)?;
        if skipped.symlinks.is_empty() && skipped.special.is_empty() {
            // A cache: when it cannot be written, the next process reads the directory again.
            let _ = crate::fsutil::write_atomic(&packed, &pack::encode(snapshot.root()));
        }
        Ok((snapshot, skipped))
    }

    /// Where [`Snapshot::from_cache_dir`] keeps the tree at `dir` as one file: beside it, its
    /// name with `.pack` added.
    pub fn pack_path(dir: &Path) -> PathBuf {
        let mut name = dir.file_name().unwrap_or_default().to_owned();
        name.push(".pack");
        dir.with_file_name(name)
    }

    fn read_host_dir(path: &Path, how: Reading) -> Result<(Self, SkippedPaths), SnapshotError> {
        let meta = std::fs::metadata(path).map_err(|source| SnapshotError::Read {
            path: path.to_owned(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(SnapshotError::NotADirectory(path.to_owned()));
        }
        let mut skipped = SkippedPaths::default();
        let root = read_dir(path, "", how, &mut skipped)?;
        Ok((Self::from_root(root), skipped))
    }

    /// The root directory.
    pub fn root(&self) -> &Arc<Dir> {
        &self.inner.root
    }

    /// Looks up a `/`-separated relative path (`""` is the root).
    pub fn get(&self, path: &str) -> Option<Entry> {
        let parts = split_path(path).ok()?;
        let mut entry = Entry::Dir(self.inner.root.clone());
        for part in parts {
            entry = match entry {
                Entry::Dir(dir) => dir.entries.get(part)?.clone(),
                Entry::File(_) => return None,
            };
        }
        Some(entry)
    }

    /// The contents of the file at `path`, if it is a file.
    pub fn file(&self, path: &str) -> Option<SharedBytes> {
        match self.get(path)? {
            Entry::File(contents) => Some(contents),
            Entry::Dir(_) => None,
        }
    }

    /// Every file, as `(path, contents)` in sorted path order.
    pub fn files(&self) -> Vec<(String, SharedBytes)> {
        let mut out = Vec::new();
        collect_files(&self.inner.root, "", &mut out);
        out
    }

    /// Number of files and their total size in bytes.
    pub fn size(&self) -> (usize, u64) {
        let files = self.files();
        let bytes = files.iter().map(|(_, c)| c.len() as u64).sum();
        (files.len(), bytes)
    }

    /// A new snapshot with `changes` applied, deletions before writes; untouched subtrees are
    /// shared with `self`.
    pub fn with_changes(&self, changes: &[FileChange]) -> Result<Snapshot, SnapshotError> {
        let mut root = (*self.inner.root).clone();
        // Deletions first: a change set that turns a file into a directory (or back) deletes
        // the one before it writes the other, whatever order its paths sort in.
        let (deleted, written): (Vec<_>, Vec<_>) = changes
            .iter()
            .partition(|c| matches!(c, FileChange::Deleted { .. }));
        for change in deleted.into_iter().chain(written) {
            let entry = match change {
                FileChange::Written { contents, .. } => Some(Entry::File(contents.clone())),
                FileChange::Deleted { .. } => None,
            };
            put(&mut root, change.path(), entry)?;
        }
        Ok(Self::from_root(root))
    }

    /// The changes that turn `base` into `self` (written and deleted files, sorted by path).
    pub fn changes_from(&self, base: &Snapshot) -> Vec<FileChange> {
        let mut out = Vec::new();
        diff_dirs(Some(&base.inner.root), Some(&self.inner.root), "", &mut out);
        out
    }

    /// A content hash (hex sha256) over every path and file content: equal trees, equal hashes.
    pub fn content_hash(&self) -> &str {
        self.inner.hash.get_or_init(|| {
            let mut hasher = Sha256::new();
            for (path, contents) in self.files() {
                hasher.update((path.len() as u64).to_le_bytes());
                hasher.update(path.as_bytes());
                hasher.update((contents.len() as u64).to_le_bytes());
                hasher.update(&contents);
            }
            hex(&hasher.finalize())
        })
    }
}

/// Lower-case hex of a byte string.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Splits a relative `/`-separated path into components, refusing anything that could escape.
fn split_path(path: &str) -> Result<Vec<&str>, SnapshotError> {
    if path.starts_with('/') || path.contains('\\') {
        return Err(SnapshotError::InvalidPath(path.to_owned()));
    }
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(SnapshotError::InvalidPath(path.to_owned()));
    }
    Ok(parts)
}

/// Writes (`Some`) or deletes (`None`) the entry at `path` in `root`.
fn put(root: &mut Dir, path: &str, entry: Option<Entry>) -> Result<(), SnapshotError> {
    let parts = split_path(path)?;
    if parts.is_empty() {
        return Err(SnapshotError::InvalidPath(path.to_owned()));
    }
    insert(root, &parts, entry).map_err(|conflict| match conflict {
        Conflict::FileInPath(depth) => {
            SnapshotError::FileInPath(parts[..depth].join("/"), path.to_owned())
        }
        Conflict::NonEmptyDir => SnapshotError::IsADirectory(path.to_owned()),
    })
}

/// Why a change cannot be made to a tree, as a real file system would refuse it.
enum Conflict {
    /// The component at this depth is a file, so nothing can live under it (ENOTDIR).
    FileInPath(usize),
    /// A file cannot replace a directory that still holds files (EISDIR).
    NonEmptyDir,
}

/// Writes (`Some`) or deletes (`None`) the entry at `parts`, creating parent directories.
/// Deleting what is not there is a no-op; a directory without files may be replaced by a file,
/// so a change list that deletes a directory's files and then writes a file in its place applies.
fn insert(dir: &mut Dir, parts: &[&str], entry: Option<Entry>) -> Result<(), Conflict> {
    insert_at(dir, parts, entry, 1)
}

fn holds_files(dir: &Dir) -> bool {
    dir.entries.values().any(|e| match e {
        Entry::File(_) => true,
        Entry::Dir(d) => holds_files(d),
    })
}

fn insert_at(
    dir: &mut Dir,
    parts: &[&str],
    entry: Option<Entry>,
    depth: usize,
) -> Result<(), Conflict> {
    let (first, rest) = parts.split_first().expect("split_path returns components");
    if rest.is_empty() {
        match entry {
            Some(entry) => {
                if let Some(Entry::Dir(existing)) = dir.entries.get(*first) {
                    if holds_files(existing) && matches!(entry, Entry::File(_)) {
                        return Err(Conflict::NonEmptyDir);
                    }
                }
                dir.entries.insert((*first).to_owned(), entry)
            }
            None => dir.entries.remove(*first),
        };
        return Ok(());
    }
    let child = match dir.entries.get_mut(*first) {
        Some(Entry::Dir(child)) => Arc::make_mut(child),
        _ if entry.is_none() => return Ok(()),
        Some(Entry::File(_)) => return Err(Conflict::FileInPath(depth)),
        None => {
            dir.entries
                .insert((*first).to_owned(), Entry::Dir(Arc::new(Dir::default())));
            match dir.entries.get_mut(*first) {
                Some(Entry::Dir(child)) => Arc::make_mut(child),
                _ => unreachable!("just inserted a directory"),
            }
        }
    };
    insert_at(child, rest, entry, depth + 1)
}

/// What a host directory is, for reading it into a snapshot.
#[derive(Clone, Copy, PartialEq)]
enum Reading {
    /// A user's tree: VCS metadata and caches left out.
    SkipCaches,
    /// A user's tree, whole.
    Verbatim,
    /// A tree of spar's cache, whole, large files mapped.
    Cache,
}

fn read_dir(
    host: &Path,
    rel: &str,
    how: Reading,
    skipped: &mut SkippedPaths,
) -> Result<Dir, SnapshotError> {
    let read_err = |source| SnapshotError::Read {
        path: host.to_owned(),
        source,
    };
    let mut dir = Dir::default();
    for item in std::fs::read_dir(host).map_err(read_err)? {
        let item = item.map_err(read_err)?;
        let host_path = item.path();
        let name = item
            .file_name()
            .into_string()
            .map_err(|_| SnapshotError::NonUtf8Name(host_path.clone()))?;
        if how == Reading::SkipCaches
            && (IGNORED_NAMES.contains(&name.as_str()) || name.ends_with(".pyc"))
        {
            continue;
        }
        let rel_path = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let file_type = item.file_type().map_err(|source| SnapshotError::Read {
            path: host_path.clone(),
            source,
        })?;
        let entry = if file_type.is_symlink() {
            skipped.symlinks.push(rel_path);
            continue;
        } else if file_type.is_dir() {
            Entry::Dir(Arc::new(read_dir(&host_path, &rel_path, how, skipped)?))
        } else if file_type.is_file() {
            let contents = match how {
                Reading::Cache => SharedBytes::map_cache_file(&host_path),
                Reading::SkipCaches | Reading::Verbatim => SharedBytes::read(&host_path),
            };
            Entry::File(contents.map_err(|source| SnapshotError::Read {
                path: host_path.clone(),
                source,
            })?)
        } else {
            skipped.special.push(rel_path);
            continue;
        };
        dir.entries.insert(name, entry);
    }
    Ok(dir)
}

fn collect_files(dir: &Dir, prefix: &str, out: &mut Vec<(String, SharedBytes)>) {
    for (name, entry) in &dir.entries {
        let path = join(prefix, name);
        match entry {
            Entry::File(contents) => out.push((path, contents.clone())),
            Entry::Dir(child) => collect_files(child, &path, out),
        }
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}/{name}")
    }
}

fn diff_dirs(base: Option<&Dir>, new: Option<&Dir>, prefix: &str, out: &mut Vec<FileChange>) {
    if let (Some(a), Some(b)) = (base, new) {
        if std::ptr::eq(a, b) {
            return;
        }
    }
    let empty = BTreeMap::new();
    let base_entries = base.map_or(&empty, |d| &d.entries);
    let new_entries = new.map_or(&empty, |d| &d.entries);
    let names: std::collections::BTreeSet<&String> =
        base_entries.keys().chain(new_entries.keys()).collect();
    for name in names {
        let path = join(prefix, name);
        match (base_entries.get(name), new_entries.get(name)) {
            (Some(Entry::File(a)), Some(Entry::File(b))) => {
                if !SharedBytes::ptr_eq(a, b) && a[..] != b[..] {
                    out.push(FileChange::Written {
                        path,
                        contents: b.clone(),
                    });
                }
            }
            (Some(Entry::Dir(a)), Some(Entry::Dir(b))) => diff_dirs(Some(a), Some(b), &path, out),
            (old, new) => {
                match old {
                    Some(Entry::File(_)) => out.push(FileChange::Deleted { path: path.clone() }),
                    Some(Entry::Dir(a)) => diff_dirs(Some(a), None, &path, out),
                    None => {}
                }
                match new {
                    Some(Entry::File(b)) => out.push(FileChange::Written {
                        path,
                        contents: b.clone(),
                    }),
                    Some(Entry::Dir(b)) => diff_dirs(None, Some(b), &path, out),
                    None => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(files: &[(&str, &str)]) -> Snapshot {
        Snapshot::from_files(files.iter().map(|(p, c)| (*p, c.as_bytes().to_vec()))).unwrap()
    }

    fn written(path: &str, text: &str) -> FileChange {
        FileChange::Written {
            path: path.to_owned(),
            contents: SharedBytes::from(text.as_bytes()),
        }
    }

    #[test]
    fn a_file_in_the_path_is_not_replaced_by_a_directory() {
        let s = snap(&[("a.py", "keep me")]);
        let err = s.with_changes(&[written("a.py/x.py", "")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot write a.py/x.py: a.py is a file, not a directory"
        );
        let err = snap(&[("d/f", "")])
            .with_changes(&[written("d", "file")])
            .unwrap_err();
        assert!(matches!(err, SnapshotError::IsADirectory(p) if p == "d"));
        // Deleting under a file is a no-op, not an error, and the file survives.
        let same = s
            .with_changes(&[FileChange::Deleted {
                path: "a.py/x.py".into(),
            }])
            .unwrap();
        assert_eq!(&*same.file("a.py").unwrap(), b"keep me");
    }

    #[test]
    fn type_changes_found_by_a_diff_apply_back() {
        for (before, after) in [
            (snap(&[("a", "file")]), snap(&[("a/x", "now a dir")])),
            (
                snap(&[("a/x", "dir"), ("a/y/z", "")]),
                snap(&[("a", "now a file")]),
            ),
        ] {
            let changes = after.changes_from(&before);
            let applied = before.with_changes(&changes).unwrap();
            assert_eq!(applied.content_hash(), after.content_hash());
        }
    }

    #[test]
    fn lookup_and_listing() {
        let s = snap(&[("a/b.py", "x = 1\n"), ("c.txt", "hi")]);
        assert_eq!(&*s.file("a/b.py").unwrap(), b"x = 1\n");
        assert!(matches!(s.get("a"), Some(Entry::Dir(_))));
        assert!(s.get("a/missing").is_none());
        assert!(s.get("c.txt/x").is_none());
        let paths: Vec<_> = s.files().into_iter().map(|(p, _)| p).collect();
        assert_eq!(paths, ["a/b.py", "c.txt"]);
        assert_eq!(s.size(), (2, 8));
    }

    #[test]
    fn changes_round_trip_and_share_structure() {
        let base = snap(&[("pkg/a.py", "a"), ("pkg/b.py", "b"), ("other/c.py", "c")]);
        let changes = vec![
            FileChange::Written {
                path: "pkg/a.py".into(),
                contents: b"A".to_vec().into(),
            },
            FileChange::Deleted {
                path: "pkg/b.py".into(),
            },
            FileChange::Written {
                path: "new/d.py".into(),
                contents: b"d".to_vec().into(),
            },
        ];
        let next = base.with_changes(&changes).unwrap();
        assert_eq!(next.changes_from(&base), changes_sorted(changes));
        assert_eq!(&*base.file("pkg/b.py").unwrap(), b"b", "base is unchanged");
        let (Some(Entry::Dir(x)), Some(Entry::Dir(y))) = (base.get("other"), next.get("other"))
        else {
            panic!("other/ is a directory in both");
        };
        assert!(Arc::ptr_eq(&x, &y), "untouched subtrees are shared");
        assert!(next.changes_from(&next).is_empty());
    }

    fn changes_sorted(mut c: Vec<FileChange>) -> Vec<FileChange> {
        c.sort_by(|a, b| a.path().cmp(b.path()));
        c
    }

    #[test]
    fn content_hash_depends_on_content_only() {
        let a = snap(&[("x.py", "1"), ("y.py", "2")]);
        let b = snap(&[("y.py", "2"), ("x.py", "1")]);
        let c = snap(&[("x.py", "1"), ("y.py", "3")]);
        assert_eq!(a.content_hash(), b.content_hash());
        assert_ne!(a.content_hash(), c.content_hash());
    }

    #[test]
    fn refuses_escaping_paths() {
        for bad in ["../x", "/etc/passwd", "a/../../b", "a\\b"] {
            assert!(
                Snapshot::from_files([(bad, b"x".to_vec())]).is_err(),
                "{bad} must be refused"
            );
        }
    }

    #[test]
    fn from_dir_skips_caches_and_symlinks() {
        let tmp = std::env::temp_dir().join(format!("spar-snap-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(tmp.join("pkg/__pycache__")).unwrap();
        std::fs::create_dir_all(tmp.join(".git")).unwrap();
        std::fs::write(tmp.join("pkg/m.py"), "m").unwrap();
        std::fs::write(tmp.join("pkg/__pycache__/m.cpython-312.pyc"), "c").unwrap();
        std::fs::write(tmp.join(".git/HEAD"), "ref").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("/etc/passwd", tmp.join("leak")).unwrap();
        let (s, skipped) = Snapshot::from_dir(&tmp).unwrap();
        let paths: Vec<_> = s.files().into_iter().map(|(p, _)| p).collect();
        assert_eq!(paths, ["pkg/m.py"]);
        #[cfg(unix)]
        assert_eq!(skipped.symlinks, ["leak"]);
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
