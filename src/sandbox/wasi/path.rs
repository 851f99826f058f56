//! The `path_*` functions: every path is resolved by the VFS relative to a directory the guest
//! holds open, so no path reaches above the preopened root, let alone the host.

// Each function's parameters are those of its preview-1 signature.
#![allow(clippy::too_many_arguments)]

use super::fd::{filestat_bytes, mtime_change};
use super::{Desc, GuestMemory, WasiCtx, WasiResult};
use crate::sandbox::abi::{oflags, rights, Errno, FDFLAG_APPEND};
use crate::sandbox::vfs::{Ino, OpenOptions, Opened};

impl WasiCtx {
    /// The directory behind `fd`.
    fn dir(&self, fd: u32) -> Result<Ino, Errno> {
        match self.desc(fd)? {
            Desc::Dir { ino, .. } => Ok(*ino),
            _ => Err(Errno::Notdir),
        }
    }

    pub(super) fn path_open(
        &mut self,
        mem: &mut GuestMemory,
        fd: u32,
        _dirflags: u32,
        path: u32,
        len: u32,
        open_flags: u32,
        rights_base: u64,
        _rights_inheriting: u64,
        fdflags: u32,
        out: u32,
    ) -> WasiResult {
        let dir = self.dir(fd)?;
        let path = mem.str(path, len)?;
        let has = |flag: u16| open_flags as u16 & flag != 0;
        let how = OpenOptions {
            create: has(oflags::CREAT),
            exclusive: has(oflags::EXCL),
            truncate: has(oflags::TRUNC),
            directory: has(oflags::DIRECTORY),
            read: rights_base & rights::READING != 0,
            write: rights_base & rights::WRITING != 0,
            append: fdflags & u32::from(FDFLAG_APPEND) != 0,
        };
        let desc = match self.vfs.open(dir, path, how)? {
            Opened::Dir(ino) => Desc::Dir { ino, preopen: None },
            Opened::File(file) => Desc::File(file),
        };
        let new_fd = self.insert(desc)?;
        Ok(mem.write_u32(out, new_fd)?)
    }

    pub(super) fn path_create_directory(
        &mut self,
        mem: &mut GuestMemory,
        fd: u32,
        path: u32,
        len: u32,
    ) -> WasiResult {
        let dir = self.dir(fd)?;
        Ok(self.vfs.create_dir(dir, mem.str(path, len)?)?)
    }

    pub(super) fn path_remove_directory(
        &mut self,
        mem: &mut GuestMemory,
        fd: u32,
        path: u32,
        len: u32,
    ) -> WasiResult {
        let dir = self.dir(fd)?;
        Ok(self.vfs.remove_dir(dir, mem.str(path, len)?)?)
    }

    pub(super) fn path_unlink_file(
        &mut self,
        mem: &mut GuestMemory,
        fd: u32,
        path: u32,
        len: u32,
    ) -> WasiResult {
        let dir = self.dir(fd)?;
        Ok(self.vfs.unlink_file(dir, mem.str(path, len)?)?)
    }

    pub(super) fn path_filestat_get(
        &mut self,
        mem: &mut GuestMemory,
        fd: u32,
        _flags: u32,
        path: u32,
        len: u32,
        out: u32,
    ) -> WasiResult {
        let dir = self.dir(fd)?;
        let stat = self.vfs.path_stat(dir, mem.str(path, len)?)?;
        Ok(mem.write(out, &filestat_bytes(Some(stat)))?)
    }

    pub(super) fn path_filestat_set_times(
        &mut self,
        mem: &mut GuestMemory,
        fd: u32,
        _flags: u32,
        path: u32,
        len: u32,
        _atim: u64,
        mtim: u64,
        fst: u32,
    ) -> WasiResult {
        let dir = self.dir(fd)?;
        let change = mtime_change(mtim, fst)?;
        Ok(self.vfs.path_set_mtime(dir, mem.str(path, len)?, change)?)
    }

    pub(super) fn path_rename(
        &mut self,
        mem: &mut GuestMemory,
        fd: u32,
        path: u32,
        len: u32,
        new_fd: u32,
        new_path: u32,
        new_len: u32,
    ) -> WasiResult {
        let (dir, new_dir) = (self.dir(fd)?, self.dir(new_fd)?);
        let (path, new_path) = (mem.str(path, len)?, mem.str(new_path, new_len)?);
        Ok(self.vfs.rename(dir, path, new_dir, new_path)?)
    }

    /// There are no symbolic links, so an existing path is not one (`EINVAL`).
    pub(super) fn path_readlink(
        &mut self,
        mem: &mut GuestMemory,
        fd: u32,
        path: u32,
        len: u32,
        _buf: u32,
        _buf_len: u32,
        _out: u32,
    ) -> WasiResult {
        let dir = self.dir(fd)?;
        Ok(self.vfs.read_link(dir, mem.str(path, len)?)?)
    }

    /// Links are not supported: a link could name a path outside the tree the guest sees.
    pub(super) fn path_link(
        &mut self,
        _: &mut GuestMemory,
        fd: u32,
        _: u32,
        _: u32,
        _: u32,
        new_fd: u32,
        _: u32,
        _: u32,
    ) -> WasiResult {
        self.dir(fd)?;
        self.dir(new_fd)?;
        Err(Errno::Notsup.into())
    }

    /// Symbolic links are not supported, for the same reason as links.
    pub(super) fn path_symlink(
        &mut self,
        _: &mut GuestMemory,
        _: u32,
        _: u32,
        fd: u32,
        _: u32,
        _: u32,
    ) -> WasiResult {
        self.dir(fd)?;
        Err(Errno::Notsup.into())
    }
}
