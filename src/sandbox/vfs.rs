//! The guest's file system: an in-memory tree that mounts shared [`Snapshot`]s copy-on-write.
//!
//! Every run gets its own [`Vfs`]. Directories are materialised from their snapshot lazily, the
//! first time the guest looks inside them, and file contents stay shared (`SharedBytes`) until the
//! guest writes to them, so an idle or read-mostly run costs little beyond what it touched.
//! Nothing here reaches the host file system. Paths are resolved here, not by the host:
//! absolute paths and `..` above the directory a lookup starts from are refused with
//! `ENOTCAPABLE`.

use super::abi::{Errno, Filetype};
use crate::bytes::SharedBytes;
use crate::snapshot::{self, FileChange, Snapshot};
use std::collections::BTreeMap;
use std::io::SeekFrom;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

/// The modification time every snapshot file reports, so runs see the same metadata every time.
pub(crate) const SNAPSHOT_MTIME: Duration = Duration::from_secs(1_700_000_000);

/// Caps on what one run may write.
#[derive(Clone, Copy, Debug)]
pub struct FsLimits {
    /// Total bytes the guest may write to files over the run.
    pub max_bytes_written: u64,
    /// Files the guest may create over the run.
    pub max_files_created: u64,
}

/// Raised as a trap when a run exceeds its [`FsLimits`].
#[derive(Debug, thiserror::Error)]
#[error("the run exceeded its file-system write limit")]
pub struct FsLimitExceeded;

/// An inode number: an index into the run's inode table, never reused within a run.
pub(crate) type Ino = usize;

/// Why a file-system operation failed: an error number for the guest, or the run's write
/// limit, which ends the run.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FsError {
    /// Refused; the guest sees this error number and carries on.
    Errno(Errno),
    /// The run exceeded its [`FsLimits`]; the caller traps with [`FsLimitExceeded`].
    Limit,
}

impl From<Errno> for FsError {
    fn from(e: Errno) -> Self {
        FsError::Errno(e)
    }
}

type FsResult<T> = Result<T, FsError>;

/// What a file or directory reports to `stat`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stat {
    /// The inode number the guest sees (never 0).
    pub(crate) ino: u64,
    /// What it is.
    pub(crate) filetype: Filetype,
    /// Size in bytes (0 for directories and devices).
    pub(crate) size: u64,
    /// Last modification; also reported as access and change time.
    pub(crate) mtime: SystemTime,
}

/// How `set_times` changes a modification time.
#[derive(Clone, Copy, Debug)]
pub(crate) enum MtimeChange {
    /// Leave it.
    Keep,
    /// The run's clock now.
    Now,
    /// This instant.
    At(SystemTime),
}

/// How [`Vfs::open`] opens a path.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct OpenOptions {
    /// Create the file when it does not exist.
    pub(crate) create: bool,
    /// With `create`: fail when it exists.
    pub(crate) exclusive: bool,
    /// Empty an existing file (only when opened for writing).
    pub(crate) truncate: bool,
    /// Fail unless the path is a directory.
    pub(crate) directory: bool,
    /// Reads allowed through the handle.
    pub(crate) read: bool,
    /// Writes allowed through the handle.
    pub(crate) write: bool,
    /// Writes go to the end of the file.
    pub(crate) append: bool,
}

/// What [`Vfs::open`] opened.
pub(crate) enum Opened {
    /// A directory, to use as the base of later path operations.
    Dir(Ino),
    /// A file, with its own position.
    File(OpenFile),
}

/// A directory entry as `readdir` lists it.
pub(crate) struct DirEntry {
    /// Its name (`.` and `..` included).
    pub(crate) name: String,
    /// The inode number the guest sees.
    pub(crate) ino: u64,
    /// What it is.
    pub(crate) filetype: Filetype,
}

enum Contents {
    Shared(SharedBytes),
    Owned(Vec<u8>),
}

impl Contents {
    fn bytes(&self) -> &[u8] {
        match self {
            Contents::Shared(b) => b,
            Contents::Owned(b) => b,
        }
    }

    fn make_mut(&mut self) -> &mut Vec<u8> {
        if let Contents::Shared(b) = self {
            *self = Contents::Owned(b.to_vec());
        }
        match self {
            Contents::Owned(b) => b,
            Contents::Shared(_) => unreachable!("converted above"),
        }
    }
}

enum Kind {
    File(Contents),
    Dir {
        parent: Ino,
        /// `None` until the guest first looks inside; then filled from `source`.
        entries: Option<BTreeMap<String, Ino>>,
        source: Option<Arc<snapshot::Dir>>,
    },
    DevNull,
}

struct Inode {
    kind: Kind,
    read_only: bool,
    mtime: SystemTime,
}

/// One mount point of a [`Vfs`].
pub struct Mount {
    /// Absolute guest path of the mount, e.g. `/repo`.
    pub path: String,
    /// What is mounted there.
    pub snapshot: Snapshot,
    /// Whether the guest may change it (changes go to the run's overlay, never the snapshot).
    pub writable: bool,
}

struct State {
    inodes: Vec<Inode>,
    limits: FsLimits,
    bytes_written: u64,
    files_created: u64,
    clock: Arc<dyn Fn() -> SystemTime + Send + Sync>,
}

/// A run's file system. Cloning shares it.
#[derive(Clone)]
pub struct Vfs {
    state: Arc<Mutex<State>>,
}

const ROOT: Ino = 0;

impl Vfs {
    /// Builds a root with the given mounts, an empty writable `/tmp` and `/dev/null`.
    /// `clock` stamps the modification time of what the guest writes.
    pub fn new(
        mounts: Vec<Mount>,
        limits: FsLimits,
        clock: Arc<dyn Fn() -> SystemTime + Send + Sync>,
    ) -> Vfs {
        let epoch = SystemTime::UNIX_EPOCH + SNAPSHOT_MTIME;
        let mut state = State {
            inodes: vec![Inode {
                kind: Kind::Dir {
                    parent: ROOT,
                    entries: Some(BTreeMap::new()),
                    source: None,
                },
                read_only: true,
                mtime: epoch,
            }],
            limits,
            bytes_written: 0,
            files_created: 0,
            clock,
        };
        let tmp = state.push_dir(ROOT, None, false, epoch);
        state.link(ROOT, "tmp", tmp);
        let dev = state.push_dir(ROOT, None, true, epoch);
        state.link(ROOT, "dev", dev);
        let null = state.push(Kind::DevNull, false, epoch);
        state.link(dev, "null", null);
        for mount in mounts {
            let mut parent = ROOT;
            let parts: Vec<&str> = mount.path.split('/').filter(|p| !p.is_empty()).collect();
            for (i, part) in parts.iter().enumerate() {
                let last = i + 1 == parts.len();
                let existing = state.dir_entries(parent).get(*part).copied();
                parent = match existing {
                    Some(ino) if !last => ino,
                    _ => {
                        let source = last.then(|| mount.snapshot.root().clone());
                        let read_only = !(last && mount.writable);
                        let ino = state.push_dir(parent, source, read_only, epoch);
                        state.link(parent, part, ino);
                        ino
                    }
                };
            }
        }
        Vfs {
            state: Arc::new(Mutex::new(state)),
        }
    }

    /// The root directory's inode, to preopen as `/`.
    pub(crate) const ROOT: Ino = ROOT;

    /// The current state of the tree mounted at `mount_path` as a snapshot. Directories the
    /// guest never opened are shared with the mounted snapshot, not copied.
    pub fn snapshot_of(&self, mount_path: &str) -> Option<Snapshot> {
        let mut state = self.lock();
        let mut ino = ROOT;
        for part in mount_path.split('/').filter(|p| !p.is_empty()) {
            ino = *state.dir_entries(ino).get(part)?;
        }
        if !state.is_dir(ino) {
            return None;
        }
        Some(Snapshot::from_root_dir(state.freeze_dir(ino)))
    }

    /// What the run changed under the mount at `mount_path`, relative to `base` (the snapshot
    /// that was mounted there).
    pub fn changes(&self, mount_path: &str, base: &Snapshot) -> Vec<FileChange> {
        match self.snapshot_of(mount_path) {
            Some(now) => now.changes_from(base),
            None => Snapshot::empty().changes_from(base),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock can only come from a bug in this module; the data is
        // still structurally valid, so keep serving instead of poisoning every later call.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    fn push(&mut self, kind: Kind, read_only: bool, mtime: SystemTime) -> Ino {
        self.inodes.push(Inode {
            kind,
            read_only,
            mtime,
        });
        self.inodes.len() - 1
    }

    fn push_dir(
        &mut self,
        parent: Ino,
        source: Option<Arc<snapshot::Dir>>,
        read_only: bool,
        mtime: SystemTime,
    ) -> Ino {
        let entries = if source.is_some() {
            None
        } else {
            Some(BTreeMap::new())
        };
        self.push(
            Kind::Dir {
                parent,
                entries,
                source,
            },
            read_only,
            mtime,
        )
    }

    fn link(&mut self, dir: Ino, name: &str, child: Ino) {
        self.dir_entries(dir).insert(name.to_owned(), child);
    }

    fn is_dir(&self, ino: Ino) -> bool {
        matches!(self.inodes[ino].kind, Kind::Dir { .. })
    }

    /// The entries of directory `ino`, materialising them from the snapshot on first use.
    /// Callers must have checked that `ino` is a directory.
    fn dir_entries(&mut self, ino: Ino) -> &mut BTreeMap<String, Ino> {
        let pending = match &mut self.inodes[ino].kind {
            Kind::Dir {
                entries: None,
                source,
                ..
            } => source.clone(),
            Kind::Dir { .. } => None,
            _ => panic!("dir_entries called on a non-directory"),
        };
        if let Some(source) = pending {
            let read_only = self.inodes[ino].read_only;
            let mtime = SystemTime::UNIX_EPOCH + SNAPSHOT_MTIME;
            let mut map = BTreeMap::new();
            for (name, entry) in source.entries() {
                let child = match entry {
                    snapshot::Entry::File(c) => {
                        self.push(Kind::File(Contents::Shared(c.clone())), read_only, mtime)
                    }
                    snapshot::Entry::Dir(d) => {
                        self.push_dir(ino, Some(d.clone()), read_only, mtime)
                    }
                };
                map.insert(name.clone(), child);
            }
            if let Kind::Dir { entries, .. } = &mut self.inodes[ino].kind {
                *entries = Some(map);
            }
        }
        match &mut self.inodes[ino].kind {
            Kind::Dir {
                entries: Some(e), ..
            } => e,
            _ => unreachable!("materialised above"),
        }
    }

    fn parent(&self, ino: Ino) -> Ino {
        match self.inodes[ino].kind {
            Kind::Dir { parent, .. } => parent,
            _ => ino,
        }
    }

    /// Splits `path` (relative to directory `base`) into the directory that holds its last
    /// component and that component (`"."` for the base itself).
    fn resolve_parent<'p>(&mut self, base: Ino, path: &'p str) -> FsResult<(Ino, &'p str)> {
        if path.starts_with('/') {
            return Err(Errno::Notcapable.into());
        }
        let mut parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let last = parts.pop().unwrap_or(".");
        let mut stack = vec![base];
        for part in parts {
            self.step(&mut stack, part)?;
        }
        let dir = *stack.last().expect("stack starts non-empty");
        if last == ".." {
            if stack.len() == 1 {
                return Err(Errno::Notcapable.into());
            }
            return Ok((self.parent(dir), "."));
        }
        Ok((dir, last))
    }

    fn step(&mut self, stack: &mut Vec<Ino>, part: &str) -> FsResult<()> {
        match part {
            "." => {}
            ".." => {
                if stack.len() == 1 {
                    return Err(Errno::Notcapable.into());
                }
                stack.pop();
            }
            name => {
                let dir = *stack.last().expect("stack starts non-empty");
                if !self.is_dir(dir) {
                    return Err(Errno::Notdir.into());
                }
                let child = *self.dir_entries(dir).get(name).ok_or(Errno::Noent)?;
                if !self.is_dir(child) {
                    return Err(Errno::Notdir.into());
                }
                stack.push(child);
            }
        }
        Ok(())
    }

    fn lookup(&mut self, dir: Ino, name: &str) -> FsResult<Option<Ino>> {
        if !self.is_dir(dir) {
            return Err(Errno::Notdir.into());
        }
        if name == "." {
            return Ok(Some(dir));
        }
        Ok(self.dir_entries(dir).get(name).copied())
    }

    fn resolve(&mut self, base: Ino, path: &str) -> FsResult<Ino> {
        let (dir, name) = self.resolve_parent(base, path)?;
        Ok(self.lookup(dir, name)?.ok_or(Errno::Noent)?)
    }

    fn writable_dir(&self, dir: Ino) -> FsResult<()> {
        if self.inodes[dir].read_only {
            Err(Errno::Rofs.into())
        } else {
            Ok(())
        }
    }

    fn charge_write(&mut self, bytes: u64) -> FsResult<()> {
        self.bytes_written = self.bytes_written.saturating_add(bytes);
        if self.bytes_written > self.limits.max_bytes_written {
            return Err(FsError::Limit);
        }
        Ok(())
    }

    fn charge_create(&mut self) -> FsResult<()> {
        self.files_created += 1;
        if self.files_created > self.limits.max_files_created {
            return Err(FsError::Limit);
        }
        Ok(())
    }

    fn now(&self) -> SystemTime {
        (self.clock)()
    }

    fn stat(&self, ino: Ino) -> Stat {
        let node = &self.inodes[ino];
        let (filetype, size) = match &node.kind {
            Kind::File(c) => (Filetype::RegularFile, c.bytes().len() as u64),
            Kind::Dir { .. } => (Filetype::Directory, 0),
            Kind::DevNull => (Filetype::CharacterDevice, 0),
        };
        Stat {
            ino: ino as u64 + 1,
            filetype,
            size,
            mtime: node.mtime,
        }
    }

    fn set_mtime(&mut self, ino: Ino, change: MtimeChange) -> FsResult<()> {
        if self.inodes[ino].read_only {
            return Err(Errno::Rofs.into());
        }
        self.inodes[ino].mtime = match change {
            MtimeChange::Keep => return Ok(()),
            MtimeChange::Now => self.now(),
            MtimeChange::At(t) => t,
        };
        Ok(())
    }

    /// A snapshot directory with the current contents of directory `ino`.
    fn freeze_dir(&mut self, ino: Ino) -> Arc<snapshot::Dir> {
        if let Kind::Dir {
            entries: None,
            source: Some(source),
            ..
        } = &self.inodes[ino].kind
        {
            return source.clone();
        }
        let children: Vec<(String, Ino)> = self
            .dir_entries(ino)
            .iter()
            .map(|(n, i)| (n.clone(), *i))
            .collect();
        let mut entries = BTreeMap::new();
        for (name, child) in children {
            let entry = match &mut self.inodes[child].kind {
                Kind::File(c) => {
                    // Later calls share the frozen bytes instead of copying them again; a
                    // further write copies on write as usual.
                    if let Contents::Owned(b) = c {
                        *c = Contents::Shared(std::mem::take(b).into());
                    }
                    snapshot::Entry::File(match c {
                        Contents::Shared(b) => b.clone(),
                        Contents::Owned(_) => unreachable!("frozen above"),
                    })
                }
                Kind::Dir { .. } => snapshot::Entry::Dir(self.freeze_dir(child)),
                Kind::DevNull => continue,
            };
            entries.insert(name, entry);
        }
        Arc::new(snapshot::Dir::from_entries(entries))
    }
}

/// Path operations, each relative to a directory the guest holds open (`dir`). Paths never
/// leave that directory's tree: see [`State::resolve_parent`].
impl Vfs {
    /// Opens (or creates) `path` under `dir`.
    pub(crate) fn open(&self, dir: Ino, path: &str, how: OpenOptions) -> FsResult<Opened> {
        let mut st = self.lock();
        let (parent, name) = st.resolve_parent(dir, path)?;
        let ino = match st.lookup(parent, name)? {
            Some(_) if how.create && how.exclusive => return Err(Errno::Exist.into()),
            Some(ino) => ino,
            None if how.create => {
                st.writable_dir(parent)?;
                st.charge_create()?;
                let now = st.now();
                let ino = st.push(Kind::File(Contents::Owned(Vec::new())), false, now);
                st.link(parent, name, ino);
                ino
            }
            None => return Err(Errno::Noent.into()),
        };
        if st.is_dir(ino) {
            if how.write {
                return Err(Errno::Isdir.into());
            }
            return Ok(Opened::Dir(ino));
        }
        if how.directory {
            return Err(Errno::Notdir.into());
        }
        if how.write && st.inodes[ino].read_only {
            return Err(Errno::Rofs.into());
        }
        if how.truncate && how.write {
            let now = st.now();
            let node = &mut st.inodes[ino];
            if let Kind::File(c) = &mut node.kind {
                *c = Contents::Owned(Vec::new());
                node.mtime = now;
            }
        }
        Ok(Opened::File(OpenFile {
            vfs: self.clone(),
            ino,
            pos: 0,
            append: how.append,
            read: how.read,
            write: how.write,
        }))
    }

    /// Creates the directory `path` under `dir`.
    pub(crate) fn create_dir(&self, dir: Ino, path: &str) -> FsResult<()> {
        let mut st = self.lock();
        let (parent, name) = st.resolve_parent(dir, path)?;
        if st.lookup(parent, name)?.is_some() {
            return Err(Errno::Exist.into());
        }
        st.writable_dir(parent)?;
        st.charge_create()?;
        let now = st.now();
        let ino = st.push_dir(parent, None, false, now);
        st.link(parent, name, ino);
        Ok(())
    }

    /// The entries of directory `dir`, `.` and `..` first, then by name.
    pub(crate) fn readdir(&self, dir: Ino) -> FsResult<Vec<DirEntry>> {
        let mut st = self.lock();
        if !st.is_dir(dir) {
            return Err(Errno::Notdir.into());
        }
        let parent = st.parent(dir);
        let mut list = vec![
            (".".to_owned(), dir, Filetype::Directory),
            ("..".to_owned(), parent, Filetype::Directory),
        ];
        let entries: Vec<(String, Ino)> = st
            .dir_entries(dir)
            .iter()
            .map(|(n, i)| (n.clone(), *i))
            .collect();
        for (name, ino) in entries {
            list.push((name, ino, st.stat(ino).filetype));
        }
        Ok(list
            .into_iter()
            .map(|(name, ino, filetype)| DirEntry {
                name,
                ino: ino as u64 + 1,
                filetype,
            })
            .collect())
    }

    /// Removes the empty directory `path` under `dir`.
    pub(crate) fn remove_dir(&self, dir: Ino, path: &str) -> FsResult<()> {
        let mut st = self.lock();
        let (parent, name) = st.resolve_parent(dir, path)?;
        if name == "." {
            return Err(Errno::Inval.into());
        }
        let ino = st.lookup(parent, name)?.ok_or(Errno::Noent)?;
        if !st.is_dir(ino) {
            return Err(Errno::Notdir.into());
        }
        if !st.dir_entries(ino).is_empty() {
            return Err(Errno::Notempty.into());
        }
        st.writable_dir(parent)?;
        st.dir_entries(parent).remove(name);
        Ok(())
    }

    /// Removes the file `path` under `dir`.
    pub(crate) fn unlink_file(&self, dir: Ino, path: &str) -> FsResult<()> {
        let mut st = self.lock();
        let (parent, name) = st.resolve_parent(dir, path)?;
        let ino = st.lookup(parent, name)?.ok_or(Errno::Noent)?;
        if st.is_dir(ino) {
            return Err(Errno::Isdir.into());
        }
        st.writable_dir(parent)?;
        st.dir_entries(parent).remove(name);
        Ok(())
    }

    /// There are no symbolic links: an existing path is "not a link" (`EINVAL`).
    pub(crate) fn read_link(&self, dir: Ino, path: &str) -> FsResult<()> {
        self.lock().resolve(dir, path)?;
        Err(Errno::Inval.into())
    }

    /// What `dir` (or any inode) is.
    pub(crate) fn stat(&self, ino: Ino) -> Stat {
        self.lock().stat(ino)
    }

    /// What `path` under `dir` is.
    pub(crate) fn path_stat(&self, dir: Ino, path: &str) -> FsResult<Stat> {
        let mut st = self.lock();
        let ino = st.resolve(dir, path)?;
        Ok(st.stat(ino))
    }

    /// Changes the modification time of `ino`.
    pub(crate) fn set_mtime(&self, ino: Ino, change: MtimeChange) -> FsResult<()> {
        self.lock().set_mtime(ino, change)
    }

    /// Changes the modification time of `path` under `dir`.
    pub(crate) fn path_set_mtime(&self, dir: Ino, path: &str, change: MtimeChange) -> FsResult<()> {
        let mut st = self.lock();
        let ino = st.resolve(dir, path)?;
        st.set_mtime(ino, change)
    }

    /// Moves `path` under `dir` to `dest_path` under `dest_dir`, replacing a file or an empty
    /// directory there, as POSIX `rename` does.
    pub(crate) fn rename(
        &self,
        dir: Ino,
        path: &str,
        dest_dir: Ino,
        dest_path: &str,
    ) -> FsResult<()> {
        let mut st = self.lock();
        let (src_dir, src_name) = st.resolve_parent(dir, path)?;
        let (dst_dir, dst_name) = st.resolve_parent(dest_dir, dest_path)?;
        if src_name == "." || dst_name == "." {
            return Err(Errno::Inval.into());
        }
        let ino = st.lookup(src_dir, src_name)?.ok_or(Errno::Noent)?;
        st.writable_dir(src_dir)?;
        st.writable_dir(dst_dir)?;
        if let Some(existing) = st.lookup(dst_dir, dst_name)? {
            if existing == ino {
                return Ok(());
            }
            match (st.is_dir(ino), st.is_dir(existing)) {
                (false, true) => return Err(Errno::Isdir.into()),
                (true, false) => return Err(Errno::Notdir.into()),
                (true, true) if !st.dir_entries(existing).is_empty() => {
                    return Err(Errno::Notempty.into())
                }
                _ => {}
            }
        }
        if st.is_dir(ino) {
            let mut cursor = dst_dir;
            loop {
                if cursor == ino {
                    return Err(Errno::Inval.into());
                }
                let up = st.parent(cursor);
                if up == cursor {
                    break;
                }
                cursor = up;
            }
            if let Kind::Dir { parent, .. } = &mut st.inodes[ino].kind {
                *parent = dst_dir;
            }
        }
        st.dir_entries(src_dir).remove(src_name);
        st.link(dst_dir, dst_name, ino);
        Ok(())
    }
}

/// An open file: the inode, the handle's own position and what the open mode allows.
pub(crate) struct OpenFile {
    vfs: Vfs,
    ino: Ino,
    pos: u64,
    append: bool,
    read: bool,
    write: bool,
}

impl OpenFile {
    /// Whether reads are allowed.
    pub(crate) fn readable(&self) -> bool {
        self.read
    }

    /// Whether writes are allowed.
    pub(crate) fn writable(&self) -> bool {
        self.write
    }

    /// Whether writes go to the end of the file.
    pub(crate) fn append(&self) -> bool {
        self.append
    }

    /// Makes later writes go to the end of the file, or back to the position.
    pub(crate) fn set_append(&mut self, append: bool) {
        self.append = append;
    }

    /// The handle's position.
    pub(crate) fn position(&self) -> u64 {
        self.pos
    }

    /// Bytes between the position and the end of the file.
    pub(crate) fn remaining(&self) -> u64 {
        self.vfs.stat(self.ino).size.saturating_sub(self.pos)
    }

    /// Reads into `buf` at the position and advances it.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> FsResult<usize> {
        let n = self.pread(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }

    /// Reads into `buf` at `offset`; the position does not move.
    pub(crate) fn pread(&self, buf: &mut [u8], offset: u64) -> FsResult<usize> {
        if !self.read {
            return Err(Errno::Badf.into());
        }
        let st = self.vfs.lock();
        let data = match &st.inodes[self.ino].kind {
            Kind::File(c) => c.bytes(),
            _ => return Ok(0),
        };
        let at = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let n = buf.len().min(data.len() - at);
        buf[..n].copy_from_slice(&data[at..at + n]);
        Ok(n)
    }

    /// Writes `bufs` at the position (or the end, in append mode) and moves the position past
    /// them.
    pub(crate) fn write(&mut self, bufs: &[&[u8]]) -> FsResult<u64> {
        let offset = if self.append { None } else { Some(self.pos) };
        let (n, end) = self.write_at(bufs, offset)?;
        self.pos = end;
        Ok(n)
    }

    /// Writes `bufs` at `offset`; the position does not move.
    pub(crate) fn pwrite(&self, bufs: &[&[u8]], offset: u64) -> FsResult<u64> {
        Ok(self.write_at(bufs, Some(offset))?.0)
    }

    /// Writes at `offset` (the end when `None`); returns the bytes written and where they end.
    fn write_at(&self, bufs: &[&[u8]], offset: Option<u64>) -> FsResult<(u64, u64)> {
        if !self.write {
            return Err(Errno::Badf.into());
        }
        let mut st = self.vfs.lock();
        let len: u64 = bufs.iter().map(|b| b.len() as u64).sum();
        if matches!(st.inodes[self.ino].kind, Kind::DevNull) {
            return Ok((len, 0));
        }
        let Kind::File(c) = &st.inodes[self.ino].kind else {
            return Err(Errno::Isdir.into());
        };
        let size = c.bytes().len() as u64;
        let start = offset.unwrap_or(size);
        if len == 0 {
            // As on POSIX, writing nothing past the end does not extend the file.
            return Ok((0, start));
        }
        let end = start.checked_add(len).ok_or(Errno::Fbig)?;
        // A write past the end fills the hole with zeros on the host, so the hole is charged
        // like written bytes, before anything is allocated.
        st.charge_write(len.saturating_add(start.saturating_sub(size)))?;
        let end_index = usize::try_from(end).map_err(|_| Errno::Fbig)?;
        let now = st.now();
        let node = &mut st.inodes[self.ino];
        node.mtime = now;
        let Kind::File(c) = &mut node.kind else {
            unreachable!("checked above");
        };
        let data = c.make_mut();
        if data.len() < end_index {
            data.resize(end_index, 0);
        }
        let mut at = start as usize;
        for buf in bufs {
            data[at..at + buf.len()].copy_from_slice(buf);
            at += buf.len();
        }
        Ok((len, end))
    }

    /// Moves the position; it may go past the end (a later write leaves a hole).
    pub(crate) fn seek(&mut self, to: SeekFrom) -> FsResult<u64> {
        let size = self.vfs.stat(self.ino).size;
        self.pos = match to {
            SeekFrom::Start(o) => Some(o),
            SeekFrom::End(d) => size.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        }
        .ok_or(Errno::Inval)?;
        Ok(self.pos)
    }

    /// Grows (with zeros, charged as written bytes) or shrinks the file.
    pub(crate) fn set_size(&self, size: u64) -> FsResult<()> {
        if !self.write {
            return Err(Errno::Badf.into());
        }
        let mut st = self.vfs.lock();
        let current = st.stat(self.ino).size;
        st.charge_write(size.saturating_sub(current))?;
        let now = st.now();
        let node = &mut st.inodes[self.ino];
        if let Kind::File(c) = &mut node.kind {
            c.make_mut()
                .resize(usize::try_from(size).map_err(|_| Errno::Fbig)?, 0);
            node.mtime = now;
        }
        Ok(())
    }

    /// What the file is now.
    pub(crate) fn stat(&self) -> Stat {
        self.vfs.stat(self.ino)
    }

    /// Changes its modification time.
    pub(crate) fn set_mtime(&self, change: MtimeChange) -> FsResult<()> {
        self.vfs.set_mtime(self.ino, change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LIMIT: u64 = 1 << 20;

    /// A file system with an empty `/tmp`, and `/tmp`'s inode.
    fn tmp_vfs(max_bytes_written: u64) -> (Vfs, Ino) {
        let limits = FsLimits {
            max_bytes_written,
            max_files_created: 64,
        };
        let vfs = Vfs::new(vec![], limits, Arc::new(|| SystemTime::UNIX_EPOCH));
        let how = OpenOptions {
            directory: true,
            read: true,
            ..OpenOptions::default()
        };
        match vfs.open(Vfs::ROOT, "tmp", how) {
            Ok(Opened::Dir(dir)) => (vfs, dir),
            _ => panic!("/tmp is a directory"),
        }
    }

    fn open((vfs, dir): &(Vfs, Ino), name: &str, truncate: bool, append: bool) -> OpenFile {
        let how = OpenOptions {
            create: true,
            truncate,
            read: true,
            write: true,
            append,
            ..OpenOptions::default()
        };
        match vfs.open(*dir, name, how) {
            Ok(Opened::File(f)) => f,
            Ok(Opened::Dir(_)) => panic!("{name} is a directory"),
            Err(e) => panic!("open {name}: {e:?}"),
        }
    }

    fn is_fs_limit(e: &FsError) -> bool {
        *e == FsError::Limit
    }

    fn contents(file: &OpenFile) -> Vec<u8> {
        let size = file.stat().size as usize;
        let mut buf = vec![0; size];
        let n = file.pread(&mut buf, 0).unwrap();
        assert_eq!(n, size);
        buf
    }

    #[test]
    fn writes_past_the_end_are_charged_for_the_hole() {
        // The reproductions of the critical bug: each must stop at the limit, allocating nothing.
        for offset in [2 << 30, 1 << 40, (1 << 63) - 1, u64::MAX - 1] {
            let tmp = tmp_vfs(LIMIT);
            let mut file = open(&tmp, "s", false, false);
            let seek = file.seek(SeekFrom::Start(offset)).unwrap();
            assert_eq!(seek, offset);
            let err = file.write(&[b"x"]).unwrap_err();
            assert!(is_fs_limit(&err), "offset {offset}: {err:?}");
            let err = file.pwrite(&[b"x"], offset).unwrap_err();
            assert!(is_fs_limit(&err), "pwrite at {offset}: {err:?}");
            assert_eq!(file.stat().size, 0);
        }
    }

    #[test]
    fn a_write_whose_end_overflows_is_too_big_not_a_panic() {
        let tmp = tmp_vfs(u64::MAX);
        let file = open(&tmp, "s", false, false);
        let err = file.pwrite(&[b"xy"], u64::MAX).unwrap_err();
        assert_eq!(err, FsError::Errno(Errno::Fbig));
        assert_eq!(file.stat().size, 0);
    }

    #[test]
    fn holes_within_the_limit_read_back_as_zeros() {
        let tmp = tmp_vfs(LIMIT);
        let file = open(&tmp, "s", false, false);
        file.pwrite(&[b"ab"], 1000).unwrap();
        let data = contents(&file);
        assert_eq!(data.len(), 1002);
        assert!(data[..1000].iter().all(|&b| b == 0));
        assert_eq!(&data[1000..], b"ab");
    }

    #[derive(Clone, Debug)]
    enum Op {
        Open {
            file: u8,
            truncate: bool,
            append: bool,
        },
        Seek {
            handle: u8,
            offset: u64,
        },
        Write {
            handle: u8,
            len: u16,
        },
        Pwrite {
            handle: u8,
            offset: u64,
            len: u16,
        },
        Truncate {
            handle: u8,
            size: u64,
        },
        Rename {
            from: u8,
            to: u8,
        },
        Unlink {
            file: u8,
        },
    }

    fn offset() -> impl Strategy<Value = u64> {
        prop_oneof![
            4 => 0..LIMIT * 2,
            1 => Just(2 << 30),
            1 => Just(1 << 40),
            1 => Just((1 << 63) - 1),
            1 => Just(u64::MAX),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..3u8, any::<bool>(), any::<bool>()).prop_map(|(file, truncate, append)| Op::Open {
                file,
                truncate,
                append
            }),
            (0..4u8, offset()).prop_map(|(handle, offset)| Op::Seek { handle, offset }),
            (0..4u8, 0..20_000u16).prop_map(|(handle, len)| Op::Write { handle, len }),
            (0..4u8, offset(), 0..20_000u16).prop_map(|(handle, offset, len)| Op::Pwrite {
                handle,
                offset,
                len
            }),
            (0..4u8, offset()).prop_map(|(handle, size)| Op::Truncate { handle, size }),
            (0..3u8, 0..3u8).prop_map(|(from, to)| Op::Rename { from, to }),
            (0..3u8).prop_map(|file| Op::Unlink { file }),
        ]
    }

    /// What the file system should hold: inode contents, names, open handles, bytes charged.
    #[derive(Default)]
    struct Model {
        inodes: Vec<Vec<u8>>,
        names: BTreeMap<u8, usize>,
        handles: Vec<(OpenFile, usize, u64, bool)>,
        charged: u64,
    }

    impl Model {
        /// Charges `bytes`; false when the real file system must have refused the operation.
        fn charge(&mut self, bytes: u64) -> bool {
            self.charged = self.charged.saturating_add(bytes);
            self.charged <= LIMIT
        }

        fn write(&mut self, handle: usize, offset: u64, len: u16) -> Option<u64> {
            if len == 0 {
                return Some(offset);
            }
            let ino = self.handles[handle].1;
            let data = &mut self.inodes[ino];
            let hole = offset.saturating_sub(data.len() as u64);
            let end = offset.checked_add(u64::from(len))?;
            if !self.charge(u64::from(len) + hole) {
                return None;
            }
            let data = &mut self.inodes[ino];
            if (data.len() as u64) < end {
                data.resize(end as usize, 0);
            }
            let fill = (offset as u8).wrapping_add(len as u8);
            data[offset as usize..end as usize].fill(fill);
            Some(end)
        }
    }

    fn name(file: u8) -> String {
        format!("f{file}")
    }

    /// Applies `op` to the real file system and the model; returns false once the run has hit
    /// the write limit (a trap ends a real run, so the sequence stops there).
    fn apply(tmp: &(Vfs, Ino), model: &mut Model, op: &Op) -> bool {
        match *op {
            Op::Open {
                file,
                truncate,
                append,
            } => {
                if model.handles.len() >= 4 {
                    return true;
                }
                let real = open(tmp, &name(file), truncate, append);
                let ino = *model.names.entry(file).or_insert_with(|| {
                    model.inodes.push(Vec::new());
                    model.inodes.len() - 1
                });
                if truncate {
                    model.inodes[ino].clear();
                }
                model.handles.push((real, ino, 0, append));
            }
            Op::Seek { handle, offset } => {
                let Some(h) = model.handles.get_mut(handle as usize) else {
                    return true;
                };
                assert_eq!(h.0.seek(SeekFrom::Start(offset)).unwrap(), offset);
                h.2 = offset;
            }
            Op::Write { handle, len } => return apply_write(model, handle as usize, len, None),
            Op::Pwrite {
                handle,
                len,
                offset,
            } => return apply_write(model, handle as usize, len, Some(offset)),
            Op::Truncate { handle, size } => return apply_truncate(model, handle as usize, size),
            Op::Rename { from, to } => {
                let real = tmp.0.rename(tmp.1, &name(from), tmp.1, &name(to));
                match model.names.remove(&from) {
                    Some(ino) => {
                        real.unwrap();
                        model.names.insert(to, ino);
                    }
                    None => assert!(real.is_err()),
                }
            }
            Op::Unlink { file } => {
                let real = tmp.0.unlink_file(tmp.1, &name(file));
                assert_eq!(real.is_ok(), model.names.remove(&file).is_some());
            }
        }
        true
    }

    /// A write (at the handle's position, or at `positional` for `pwrite`) on both sides.
    fn apply_write(model: &mut Model, handle: usize, len: u16, positional: Option<u64>) -> bool {
        let Some(h) = model.handles.get(handle) else {
            return true;
        };
        let (ino, pos, append) = (h.1, h.2, h.3);
        let at = positional.unwrap_or(if append {
            model.inodes[ino].len() as u64
        } else {
            pos
        });
        let fill = (at as u8).wrapping_add(len as u8);
        let buf = vec![fill; len as usize];
        let real = match positional {
            Some(offset) => model.handles[handle].0.pwrite(&[&buf], offset),
            None => model.handles[handle].0.write(&[&buf]),
        };
        match (real, model.write(handle, at, len)) {
            (Ok(n), Some(end)) => {
                assert_eq!(n, u64::from(len));
                if positional.is_none() {
                    model.handles[handle].2 = end;
                }
            }
            (Err(e), None) if is_fs_limit(&e) => return false,
            (Err(e), None) => assert!(at.checked_add(u64::from(len)).is_none(), "{e:?}"),
            (real, model) => panic!("real {real:?} vs model {model:?}"),
        }
        true
    }

    /// A truncation (or extension) on both sides.
    fn apply_truncate(model: &mut Model, handle: usize, size: u64) -> bool {
        let Some(h) = model.handles.get(handle) else {
            return true;
        };
        let ino = h.1;
        let real = h.0.set_size(size);
        let growth = size.saturating_sub(model.inodes[ino].len() as u64);
        let allowed = model.charge(growth);
        match real {
            Ok(()) => {
                assert!(allowed);
                model.inodes[ino].resize(size as usize, 0);
            }
            Err(e) => {
                assert!(!allowed && is_fs_limit(&e), "{e:?}");
                return false;
            }
        }
        true
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Random open/seek/write/pwrite/truncate/rename/unlink sequences: contents always
        /// match the model, the limit is charged for every byte the host holds (holes
        /// included), and nothing panics or allocates past the limit.
        #[test]
        fn operations_match_the_model_within_the_limit(ops in proptest::collection::vec(op(), 1..40)) {
            let tmp = tmp_vfs(LIMIT);
            let mut model = Model::default();
            for op in &ops {
                if !apply(&tmp, &mut model, op) {
                    break;
                }
                for (file, handle_ino, _, _) in &model.handles {
                    prop_assert_eq!(&contents(file), &model.inodes[*handle_ino]);
                }
                let held: u64 = model.inodes.iter().map(|d| d.len() as u64).sum();
                prop_assert!(held <= LIMIT, "the host holds {} bytes", held);
            }
        }
    }
}
