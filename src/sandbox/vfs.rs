//! The guest's file system: an in-memory tree that mounts shared [`Snapshot`]s copy-on-write.
//!
//! Every run gets its own [`Vfs`]. Directories are materialised from their snapshot lazily, the
//! first time the guest looks inside them, and file contents stay shared (`Arc<[u8]>`) until the
//! guest writes to them, so an idle or read-mostly run costs little beyond what it touched.
//! Nothing here reaches the host file system. Paths are resolved here, not by the host:
//! absolute paths and `..` above the directory a lookup starts from are refused with
//! `ENOTCAPABLE`.

use crate::snapshot::{self, FileChange, Snapshot};
use std::any::Any;
use std::collections::BTreeMap;
use std::io::{IoSlice, IoSliceMut, SeekFrom};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};
use wasi_common::dir::{OpenResult, ReaddirCursor, ReaddirEntity};
use wasi_common::file::{Advice, FdFlags, FileType, Filestat, OFlags};
use wasi_common::snapshots::preview_1::types::Errno;
use wasi_common::{Error, ErrorExt, SystemTimeSpec, WasiDir, WasiFile};

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

type Ino = usize;

enum Contents {
    Shared(Arc<[u8]>),
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

    /// The root directory, to preopen as `/`.
    pub fn root_dir(&self) -> Box<dyn WasiDir> {
        Box::new(VDir {
            vfs: self.clone(),
            ino: ROOT,
        })
    }

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

fn errno(e: Errno) -> Error {
    e.into()
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
    fn resolve_parent<'p>(&mut self, base: Ino, path: &'p str) -> Result<(Ino, &'p str), Error> {
        if path.starts_with('/') {
            return Err(errno(Errno::Notcapable));
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
                return Err(errno(Errno::Notcapable));
            }
            return Ok((self.parent(dir), "."));
        }
        Ok((dir, last))
    }

    fn step(&mut self, stack: &mut Vec<Ino>, part: &str) -> Result<(), Error> {
        match part {
            "." => {}
            ".." => {
                if stack.len() == 1 {
                    return Err(errno(Errno::Notcapable));
                }
                stack.pop();
            }
            name => {
                let dir = *stack.last().expect("stack starts non-empty");
                if !self.is_dir(dir) {
                    return Err(errno(Errno::Notdir));
                }
                let child = *self
                    .dir_entries(dir)
                    .get(name)
                    .ok_or_else(Error::not_found)?;
                if !self.is_dir(child) {
                    return Err(errno(Errno::Notdir));
                }
                stack.push(child);
            }
        }
        Ok(())
    }

    fn lookup(&mut self, dir: Ino, name: &str) -> Result<Option<Ino>, Error> {
        if !self.is_dir(dir) {
            return Err(errno(Errno::Notdir));
        }
        if name == "." {
            return Ok(Some(dir));
        }
        Ok(self.dir_entries(dir).get(name).copied())
    }

    fn resolve(&mut self, base: Ino, path: &str) -> Result<Ino, Error> {
        let (dir, name) = self.resolve_parent(base, path)?;
        self.lookup(dir, name)?.ok_or_else(Error::not_found)
    }

    fn writable_dir(&self, dir: Ino) -> Result<(), Error> {
        if self.inodes[dir].read_only {
            Err(errno(Errno::Rofs))
        } else {
            Ok(())
        }
    }

    fn charge_write(&mut self, bytes: u64) -> Result<(), Error> {
        self.bytes_written = self.bytes_written.saturating_add(bytes);
        if self.bytes_written > self.limits.max_bytes_written {
            return Err(Error::trap(FsLimitExceeded.into()));
        }
        Ok(())
    }

    fn charge_create(&mut self) -> Result<(), Error> {
        self.files_created += 1;
        if self.files_created > self.limits.max_files_created {
            return Err(Error::trap(FsLimitExceeded.into()));
        }
        Ok(())
    }

    fn now(&self) -> SystemTime {
        (self.clock)()
    }

    fn stat(&self, ino: Ino) -> Filestat {
        let node = &self.inodes[ino];
        let (filetype, size) = match &node.kind {
            Kind::File(c) => (FileType::RegularFile, c.bytes().len() as u64),
            Kind::Dir { .. } => (FileType::Directory, 0),
            Kind::DevNull => (FileType::CharacterDevice, 0),
        };
        Filestat {
            device_id: 1,
            inode: ino as u64 + 1,
            filetype,
            nlink: 1,
            size,
            atim: Some(node.mtime),
            mtim: Some(node.mtime),
            ctim: Some(node.mtime),
        }
    }

    fn filetype(&self, ino: Ino) -> FileType {
        self.stat(ino).filetype
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

struct VDir {
    vfs: Vfs,
    ino: Ino,
}

impl VDir {
    fn same_fs(&self, other: &dyn WasiDir) -> Result<Ino, Error> {
        let other = other
            .as_any()
            .downcast_ref::<VDir>()
            .ok_or_else(|| errno(Errno::Xdev))?;
        if !Arc::ptr_eq(&self.vfs.state, &other.vfs.state) {
            return Err(errno(Errno::Xdev));
        }
        Ok(other.ino)
    }
}

#[async_trait::async_trait]
impl WasiDir for VDir {
    fn as_any(&self) -> &dyn Any {
        self
    }

    async fn open_file(
        &self,
        _symlink_follow: bool,
        path: &str,
        oflags: OFlags,
        read: bool,
        write: bool,
        fdflags: FdFlags,
    ) -> Result<OpenResult, Error> {
        let mut st = self.vfs.lock();
        let (dir, name) = st.resolve_parent(self.ino, path)?;
        let ino = match st.lookup(dir, name)? {
            Some(_) if oflags.contains(OFlags::CREATE | OFlags::EXCLUSIVE) => {
                return Err(Error::exist())
            }
            Some(ino) => ino,
            None if oflags.contains(OFlags::CREATE) => {
                st.writable_dir(dir)?;
                st.charge_create()?;
                let now = st.now();
                let ino = st.push(Kind::File(Contents::Owned(Vec::new())), false, now);
                st.link(dir, name, ino);
                ino
            }
            None => return Err(Error::not_found()),
        };
        if st.is_dir(ino) {
            if write {
                return Err(errno(Errno::Isdir));
            }
            return Ok(OpenResult::Dir(Box::new(VDir {
                vfs: self.vfs.clone(),
                ino,
            })));
        }
        if oflags.contains(OFlags::DIRECTORY) {
            return Err(Error::not_dir());
        }
        if write && st.inodes[ino].read_only {
            return Err(errno(Errno::Rofs));
        }
        if oflags.contains(OFlags::TRUNCATE) && write {
            let now = st.now();
            let node = &mut st.inodes[ino];
            if let Kind::File(c) = &mut node.kind {
                *c = Contents::Owned(Vec::new());
                node.mtime = now;
            }
        }
        Ok(OpenResult::File(Box::new(VFile {
            vfs: self.vfs.clone(),
            ino,
            pos: Mutex::new(0),
            append: fdflags.contains(FdFlags::APPEND),
            read,
            write,
        })))
    }

    async fn create_dir(&self, path: &str) -> Result<(), Error> {
        let mut st = self.vfs.lock();
        let (dir, name) = st.resolve_parent(self.ino, path)?;
        if st.lookup(dir, name)?.is_some() {
            return Err(Error::exist());
        }
        st.writable_dir(dir)?;
        st.charge_create()?;
        let now = st.now();
        let ino = st.push_dir(dir, None, false, now);
        st.link(dir, name, ino);
        Ok(())
    }

    async fn readdir(
        &self,
        cursor: ReaddirCursor,
    ) -> Result<Box<dyn Iterator<Item = Result<ReaddirEntity, Error>> + Send>, Error> {
        let mut st = self.vfs.lock();
        let parent = st.parent(self.ino);
        let mut list = vec![
            (".".to_owned(), self.ino, FileType::Directory),
            ("..".to_owned(), parent, FileType::Directory),
        ];
        let entries: Vec<(String, Ino)> = st
            .dir_entries(self.ino)
            .iter()
            .map(|(n, i)| (n.clone(), *i))
            .collect();
        for (name, ino) in entries {
            list.push((name, ino, st.filetype(ino)));
        }
        let start = u64::from(cursor) as usize;
        let items: Vec<Result<ReaddirEntity, Error>> = list
            .into_iter()
            .enumerate()
            .skip(start)
            .map(|(i, (name, ino, filetype))| {
                Ok(ReaddirEntity {
                    next: ReaddirCursor::from(i as u64 + 1),
                    inode: ino as u64 + 1,
                    name,
                    filetype,
                })
            })
            .collect();
        Ok(Box::new(items.into_iter()))
    }

    async fn remove_dir(&self, path: &str) -> Result<(), Error> {
        let mut st = self.vfs.lock();
        let (dir, name) = st.resolve_parent(self.ino, path)?;
        if name == "." {
            return Err(errno(Errno::Inval));
        }
        let ino = st.lookup(dir, name)?.ok_or_else(Error::not_found)?;
        if !st.is_dir(ino) {
            return Err(Error::not_dir());
        }
        if !st.dir_entries(ino).is_empty() {
            return Err(errno(Errno::Notempty));
        }
        st.writable_dir(dir)?;
        st.dir_entries(dir).remove(name);
        Ok(())
    }

    async fn unlink_file(&self, path: &str) -> Result<(), Error> {
        let mut st = self.vfs.lock();
        let (dir, name) = st.resolve_parent(self.ino, path)?;
        let ino = st.lookup(dir, name)?.ok_or_else(Error::not_found)?;
        if st.is_dir(ino) {
            return Err(errno(Errno::Isdir));
        }
        st.writable_dir(dir)?;
        st.dir_entries(dir).remove(name);
        Ok(())
    }

    async fn read_link(&self, path: &str) -> Result<std::path::PathBuf, Error> {
        let mut st = self.vfs.lock();
        st.resolve(self.ino, path)?;
        Err(errno(Errno::Inval))
    }

    async fn get_filestat(&self) -> Result<Filestat, Error> {
        Ok(self.vfs.lock().stat(self.ino))
    }

    async fn get_path_filestat(&self, path: &str, _follow: bool) -> Result<Filestat, Error> {
        let mut st = self.vfs.lock();
        let ino = st.resolve(self.ino, path)?;
        Ok(st.stat(ino))
    }

    async fn rename(
        &self,
        path: &str,
        dest_dir: &dyn WasiDir,
        dest_path: &str,
    ) -> Result<(), Error> {
        let dest_base = self.same_fs(dest_dir)?;
        let mut st = self.vfs.lock();
        let (src_dir, src_name) = st.resolve_parent(self.ino, path)?;
        let (dst_dir, dst_name) = st.resolve_parent(dest_base, dest_path)?;
        if src_name == "." || dst_name == "." {
            return Err(errno(Errno::Inval));
        }
        let ino = st.lookup(src_dir, src_name)?.ok_or_else(Error::not_found)?;
        st.writable_dir(src_dir)?;
        st.writable_dir(dst_dir)?;
        if let Some(existing) = st.lookup(dst_dir, dst_name)? {
            if existing == ino {
                return Ok(());
            }
            match (st.is_dir(ino), st.is_dir(existing)) {
                (false, true) => return Err(errno(Errno::Isdir)),
                (true, false) => return Err(Error::not_dir()),
                (true, true) if !st.dir_entries(existing).is_empty() => {
                    return Err(errno(Errno::Notempty))
                }
                _ => {}
            }
        }
        if st.is_dir(ino) {
            let mut cursor = dst_dir;
            loop {
                if cursor == ino {
                    return Err(errno(Errno::Inval));
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

    async fn set_times(
        &self,
        path: &str,
        _atime: Option<SystemTimeSpec>,
        mtime: Option<SystemTimeSpec>,
        _follow_symlinks: bool,
    ) -> Result<(), Error> {
        let mut st = self.vfs.lock();
        let ino = st.resolve(self.ino, path)?;
        set_mtime(&mut st, ino, mtime)
    }
}

fn set_mtime(st: &mut State, ino: Ino, mtime: Option<SystemTimeSpec>) -> Result<(), Error> {
    if st.inodes[ino].read_only {
        return Err(errno(Errno::Rofs));
    }
    let t = match mtime {
        None => return Ok(()),
        Some(SystemTimeSpec::SymbolicNow) => st.now(),
        Some(SystemTimeSpec::Absolute(t)) => t.into_std(),
    };
    st.inodes[ino].mtime = t;
    Ok(())
}

struct VFile {
    vfs: Vfs,
    ino: Ino,
    pos: Mutex<u64>,
    append: bool,
    read: bool,
    write: bool,
}

impl VFile {
    fn read_at(&self, st: &State, bufs: &mut [IoSliceMut<'_>], offset: u64) -> Result<u64, Error> {
        if !self.read {
            return Err(Error::badf());
        }
        let data = match &st.inodes[self.ino].kind {
            Kind::File(c) => c.bytes(),
            _ => return Ok(0),
        };
        let mut at = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let mut total = 0;
        for buf in bufs {
            let n = buf.len().min(data.len() - at);
            buf[..n].copy_from_slice(&data[at..at + n]);
            at += n;
            total += n;
        }
        Ok(total as u64)
    }

    fn write_at(
        &self,
        st: &mut State,
        bufs: &[IoSlice<'_>],
        offset: Option<u64>,
    ) -> Result<(u64, u64), Error> {
        if !self.write {
            return Err(Error::badf());
        }
        let len: u64 = bufs.iter().map(|b| b.len() as u64).sum();
        if matches!(st.inodes[self.ino].kind, Kind::DevNull) {
            return Ok((len, 0));
        }
        let Kind::File(c) = &st.inodes[self.ino].kind else {
            return Err(errno(Errno::Isdir));
        };
        let size = c.bytes().len() as u64;
        let start = offset.unwrap_or(size);
        if len == 0 {
            // As on POSIX, writing nothing past the end does not extend the file.
            return Ok((0, start));
        }
        let end = start.checked_add(len).ok_or_else(Error::too_big)?;
        // A write past the end fills the hole with zeros on the host, so the hole is charged
        // like written bytes, before anything is allocated.
        st.charge_write(len.saturating_add(start.saturating_sub(size)))?;
        let end_index = usize::try_from(end).map_err(|_| Error::too_big())?;
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
}

#[async_trait::async_trait]
impl WasiFile for VFile {
    fn as_any(&self) -> &dyn Any {
        self
    }

    async fn get_filetype(&self) -> Result<FileType, Error> {
        Ok(self.vfs.lock().filetype(self.ino))
    }

    async fn get_fdflags(&self) -> Result<FdFlags, Error> {
        Ok(if self.append {
            FdFlags::APPEND
        } else {
            FdFlags::empty()
        })
    }

    async fn set_fdflags(&mut self, flags: FdFlags) -> Result<(), Error> {
        self.append = flags.contains(FdFlags::APPEND);
        Ok(())
    }

    async fn get_filestat(&self) -> Result<Filestat, Error> {
        Ok(self.vfs.lock().stat(self.ino))
    }

    async fn set_filestat_size(&self, size: u64) -> Result<(), Error> {
        if !self.write {
            return Err(Error::badf());
        }
        let mut st = self.vfs.lock();
        let current = st.stat(self.ino).size;
        st.charge_write(size.saturating_sub(current))?;
        let now = st.now();
        let node = &mut st.inodes[self.ino];
        if let Kind::File(c) = &mut node.kind {
            c.make_mut()
                .resize(usize::try_from(size).map_err(|_| Error::too_big())?, 0);
            node.mtime = now;
        }
        Ok(())
    }

    async fn advise(&self, _offset: u64, _len: u64, _advice: Advice) -> Result<(), Error> {
        Ok(())
    }

    async fn datasync(&self) -> Result<(), Error> {
        Ok(())
    }

    async fn sync(&self) -> Result<(), Error> {
        Ok(())
    }

    async fn set_times(
        &self,
        _atime: Option<SystemTimeSpec>,
        mtime: Option<SystemTimeSpec>,
    ) -> Result<(), Error> {
        let mut st = self.vfs.lock();
        set_mtime(&mut st, self.ino, mtime)
    }

    async fn read_vectored<'a>(&self, bufs: &mut [IoSliceMut<'a>]) -> Result<u64, Error> {
        let st = self.vfs.lock();
        let mut pos = self.pos.lock().unwrap_or_else(|e| e.into_inner());
        let n = self.read_at(&st, bufs, *pos)?;
        *pos += n;
        Ok(n)
    }

    async fn read_vectored_at<'a>(
        &self,
        bufs: &mut [IoSliceMut<'a>],
        offset: u64,
    ) -> Result<u64, Error> {
        let st = self.vfs.lock();
        self.read_at(&st, bufs, offset)
    }

    async fn write_vectored<'a>(&self, bufs: &[IoSlice<'a>]) -> Result<u64, Error> {
        let mut st = self.vfs.lock();
        let mut pos = self.pos.lock().unwrap_or_else(|e| e.into_inner());
        let offset = if self.append { None } else { Some(*pos) };
        let (n, end) = self.write_at(&mut st, bufs, offset)?;
        *pos = end;
        Ok(n)
    }

    async fn write_vectored_at<'a>(&self, bufs: &[IoSlice<'a>], offset: u64) -> Result<u64, Error> {
        let mut st = self.vfs.lock();
        Ok(self.write_at(&mut st, bufs, Some(offset))?.0)
    }

    async fn seek(&self, pos: SeekFrom) -> Result<u64, Error> {
        let size = self.vfs.lock().stat(self.ino).size;
        let mut cur = self.pos.lock().unwrap_or_else(|e| e.into_inner());
        let new = match pos {
            SeekFrom::Start(o) => Some(o),
            SeekFrom::End(d) => size.checked_add_signed(d),
            SeekFrom::Current(d) => cur.checked_add_signed(d),
        }
        .ok_or_else(Error::invalid_argument)?;
        *cur = new;
        Ok(new)
    }

    async fn peek(&self, buf: &mut [u8]) -> Result<u64, Error> {
        let st = self.vfs.lock();
        let pos = *self.pos.lock().unwrap_or_else(|e| e.into_inner());
        self.read_at(&st, &mut [IoSliceMut::new(buf)], pos)
    }

    fn num_ready_bytes(&self) -> Result<u64, Error> {
        let size = self.vfs.lock().stat(self.ino).size;
        let pos = *self.pos.lock().unwrap_or_else(|e| e.into_inner());
        Ok(size.saturating_sub(pos))
    }

    async fn readable(&self) -> Result<(), Error> {
        Ok(())
    }

    async fn writable(&self) -> Result<(), Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    const LIMIT: u64 = 1 << 20;

    /// The VFS's futures never wait: poll once.
    fn ready<F: Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(out) => out,
            Poll::Pending => panic!("a VFS operation was pending"),
        }
    }

    fn tmp_vfs(max_bytes_written: u64) -> Box<dyn WasiDir> {
        let limits = FsLimits {
            max_bytes_written,
            max_files_created: 64,
        };
        let vfs = Vfs::new(vec![], limits, Arc::new(|| SystemTime::UNIX_EPOCH));
        match ready(vfs.root_dir().open_file(
            false,
            "tmp",
            OFlags::DIRECTORY,
            true,
            false,
            FdFlags::empty(),
        )) {
            Ok(OpenResult::Dir(dir)) => dir,
            _ => panic!("/tmp is a directory"),
        }
    }

    fn open(dir: &dyn WasiDir, name: &str, oflags: OFlags, fdflags: FdFlags) -> Box<dyn WasiFile> {
        match ready(dir.open_file(false, name, oflags, true, true, fdflags)) {
            Ok(OpenResult::File(f)) => f,
            Ok(OpenResult::Dir(_)) => panic!("{name} is a directory"),
            Err(e) => panic!("open {name}: {e:?}"),
        }
    }

    fn is_fs_limit(e: &Error) -> bool {
        format!("{e:?}").contains("file-system write limit")
    }

    fn contents(file: &dyn WasiFile) -> Vec<u8> {
        let size = ready(file.get_filestat()).unwrap().size as usize;
        let mut buf = vec![0; size];
        let n = ready(file.read_vectored_at(&mut [IoSliceMut::new(&mut buf)], 0)).unwrap();
        assert_eq!(n as usize, size);
        buf
    }

    #[test]
    fn writes_past_the_end_are_charged_for_the_hole() {
        // The reproductions of the critical bug: each must stop at the limit, allocating nothing.
        for offset in [2 << 30, 1 << 40, (1 << 63) - 1, u64::MAX - 1] {
            let tmp = tmp_vfs(LIMIT);
            let file = open(&*tmp, "s", OFlags::CREATE, FdFlags::empty());
            let seek = ready(file.seek(SeekFrom::Start(offset))).unwrap();
            assert_eq!(seek, offset);
            let err = ready(file.write_vectored(&[IoSlice::new(b"x")])).unwrap_err();
            assert!(is_fs_limit(&err), "offset {offset}: {err:?}");
            let err = ready(file.write_vectored_at(&[IoSlice::new(b"x")], offset)).unwrap_err();
            assert!(is_fs_limit(&err), "pwrite at {offset}: {err:?}");
            assert_eq!(ready(file.get_filestat()).unwrap().size, 0);
        }
    }

    #[test]
    fn a_write_whose_end_overflows_is_too_big_not_a_panic() {
        let tmp = tmp_vfs(u64::MAX);
        let file = open(&*tmp, "s", OFlags::CREATE, FdFlags::empty());
        let err = ready(file.write_vectored_at(&[IoSlice::new(b"xy")], u64::MAX)).unwrap_err();
        assert!(!is_fs_limit(&err), "{err:?}");
        assert_eq!(ready(file.get_filestat()).unwrap().size, 0);
    }

    #[test]
    fn holes_within_the_limit_read_back_as_zeros() {
        let tmp = tmp_vfs(LIMIT);
        let file = open(&*tmp, "s", OFlags::CREATE, FdFlags::empty());
        ready(file.write_vectored_at(&[IoSlice::new(b"ab")], 1000)).unwrap();
        let data = contents(&*file);
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
        handles: Vec<(Box<dyn WasiFile>, usize, u64, bool)>,
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
    fn apply(tmp: &dyn WasiDir, model: &mut Model, op: &Op) -> bool {
        match *op {
            Op::Open {
                file,
                truncate,
                append,
            } => {
                let mut oflags = OFlags::CREATE;
                if truncate {
                    oflags |= OFlags::TRUNCATE;
                }
                let fdflags = if append {
                    FdFlags::APPEND
                } else {
                    FdFlags::empty()
                };
                if model.handles.len() >= 4 {
                    return true;
                }
                let real = open(tmp, &name(file), oflags, fdflags);
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
                assert_eq!(ready(h.0.seek(SeekFrom::Start(offset))).unwrap(), offset);
                h.2 = offset;
            }
            Op::Write { handle, len } | Op::Pwrite { handle, len, .. } => {
                let handle = handle as usize;
                let Some(h) = model.handles.get(handle) else {
                    return true;
                };
                let (ino, pos, append) = (h.1, h.2, h.3);
                let positional = match *op {
                    Op::Pwrite { offset, .. } => Some(offset),
                    _ => None,
                };
                let at = positional.unwrap_or(if append {
                    model.inodes[ino].len() as u64
                } else {
                    pos
                });
                let fill = (at as u8).wrapping_add(len as u8);
                let buf = vec![fill; len as usize];
                let real = match positional {
                    Some(offset) => ready(
                        model.handles[handle]
                            .0
                            .write_vectored_at(&[IoSlice::new(&buf)], offset),
                    ),
                    None => ready(
                        model.handles[handle]
                            .0
                            .write_vectored(&[IoSlice::new(&buf)]),
                    ),
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
            }
            Op::Truncate { handle, size } => {
                let Some(h) = model.handles.get(handle as usize) else {
                    return true;
                };
                let ino = h.1;
                let real = ready(h.0.set_filestat_size(size));
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
            }
            Op::Rename { from, to } => {
                let real = ready(tmp.rename(&name(from), tmp, &name(to)));
                match model.names.remove(&from) {
                    Some(ino) => {
                        real.unwrap();
                        model.names.insert(to, ino);
                    }
                    None => assert!(real.is_err()),
                }
            }
            Op::Unlink { file } => {
                let real = ready(tmp.unlink_file(&name(file)));
                assert_eq!(real.is_ok(), model.names.remove(&file).is_some());
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
                if !apply(&*tmp, &mut model, op) {
                    break;
                }
                for (file, handle_ino, _, _) in &model.handles {
                    prop_assert_eq!(&contents(&**file), &model.inodes[*handle_ino]);
                }
                let held: u64 = model.inodes.iter().map(|d| d.len() as u64).sum();
                prop_assert!(held <= LIMIT, "the host holds {} bytes", held);
            }
        }
    }
}
