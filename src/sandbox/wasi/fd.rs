//! The `fd_*` functions: reading, writing, seeking and describing open descriptors.

// Each function's parameters are those of its preview-1 signature.
#![allow(clippy::too_many_arguments)]

use super::{Desc, Fail, GuestMemory, WasiCtx, WasiResult, MAX_OPEN_FDS};
use crate::sandbox::abi::{fstflags, rights, size, Errno, Filetype, FDFLAG_APPEND};
use crate::sandbox::vfs::{MtimeChange, OpenFile, Stat};
use std::io::SeekFrom;
use std::time::{Duration, SystemTime};

impl WasiCtx {
    pub(super) fn desc(&self, fd: u32) -> Result<&Desc, Errno> {
        self.fds
            .get(fd as usize)
            .and_then(Option::as_ref)
            .ok_or(Errno::Badf)
    }

    fn desc_mut(&mut self, fd: u32) -> Result<&mut Desc, Errno> {
        self.fds
            .get_mut(fd as usize)
            .and_then(Option::as_mut)
            .ok_or(Errno::Badf)
    }

    /// The open file behind `fd`; pipes cannot seek, directories are not files.
    fn file(&mut self, fd: u32) -> Result<&mut OpenFile, Errno> {
        match self.desc_mut(fd)? {
            Desc::File(file) => Ok(file),
            Desc::Dir { .. } => Err(Errno::Isdir),
            Desc::Stdin | Desc::Stdout | Desc::Stderr => Err(Errno::Spipe),
        }
    }

    /// Puts `desc` on the lowest free descriptor, as POSIX `open` does.
    pub(super) fn insert(&mut self, desc: Desc) -> Result<u32, Errno> {
        let fd = match self.fds.iter().position(Option::is_none) {
            Some(free) => free,
            None if self.fds.len() < MAX_OPEN_FDS => {
                self.fds.push(None);
                self.fds.len() - 1
            }
            None => return Err(Errno::Mfile),
        };
        self.fds[fd] = Some(desc);
        Ok(fd as u32)
    }

    pub(super) fn fd_advise(
        &mut self,
        _: &mut GuestMemory,
        fd: u32,
        _: u64,
        _: u64,
        _: u32,
    ) -> WasiResult {
        self.desc(fd)?;
        Ok(())
    }

    /// Preallocation means nothing for in-memory files, and no guest needs it.
    pub(super) fn fd_allocate(
        &mut self,
        _: &mut GuestMemory,
        fd: u32,
        _: u64,
        _: u64,
    ) -> WasiResult {
        self.desc(fd)?;
        Err(Errno::Notsup.into())
    }

    pub(super) fn fd_close(&mut self, _: &mut GuestMemory, fd: u32) -> WasiResult {
        self.desc(fd)?;
        self.fds[fd as usize] = None;
        Ok(())
    }

    pub(super) fn fd_datasync(&mut self, _: &mut GuestMemory, fd: u32) -> WasiResult {
        self.desc(fd)?;
        Ok(())
    }

    pub(super) fn fd_sync(&mut self, _: &mut GuestMemory, fd: u32) -> WasiResult {
        self.desc(fd)?;
        Ok(())
    }

    pub(super) fn fd_fdstat_get(&mut self, mem: &mut GuestMemory, fd: u32, out: u32) -> WasiResult {
        let (filetype, flags, base, inheriting) = match self.desc(fd)? {
            Desc::Stdin => (Filetype::Unknown, 0, rights::FD_READ, 0),
            Desc::Stdout | Desc::Stderr => (Filetype::Unknown, 0, rights::FD_WRITE, 0),
            Desc::Dir { .. } => (Filetype::Directory, 0, rights::ALL, rights::ALL),
            Desc::File(file) => {
                let mut base = rights::ALL;
                if !file.readable() {
                    base &= !rights::READING;
                }
                if !file.writable() {
                    base &= !rights::WRITING;
                }
                let flags = if file.append() { FDFLAG_APPEND } else { 0 };
                (file.stat().filetype, flags, base, 0)
            }
        };
        let mut bytes = [0u8; size::FDSTAT];
        bytes[0] = filetype as u8;
        bytes[2..4].copy_from_slice(&flags.to_le_bytes());
        bytes[8..16].copy_from_slice(&base.to_le_bytes());
        bytes[16..24].copy_from_slice(&inheriting.to_le_bytes());
        Ok(mem.write(out, &bytes)?)
    }

    /// Only append changes anything; the other flags describe I/O that is always synchronous
    /// and never blocks here.
    pub(super) fn fd_fdstat_set_flags(
        &mut self,
        _: &mut GuestMemory,
        fd: u32,
        flags: u32,
    ) -> WasiResult {
        if let Desc::File(file) = self.desc_mut(fd)? {
            file.set_append(flags & u32::from(FDFLAG_APPEND) != 0);
        }
        Ok(())
    }

    pub(super) fn fd_fdstat_set_rights(
        &mut self,
        _: &mut GuestMemory,
        fd: u32,
        _: u64,
        _: u64,
    ) -> WasiResult {
        self.desc(fd)?;
        Ok(())
    }

    pub(super) fn fd_filestat_get(
        &mut self,
        mem: &mut GuestMemory,
        fd: u32,
        out: u32,
    ) -> WasiResult {
        let stat = match self.desc(fd)? {
            Desc::Stdin | Desc::Stdout | Desc::Stderr => None,
            Desc::Dir { ino, .. } => Some(self.vfs.stat(*ino)),
            Desc::File(file) => Some(file.stat()),
        };
        Ok(mem.write(out, &filestat_bytes(stat))?)
    }

    pub(super) fn fd_filestat_set_size(
        &mut self,
        _: &mut GuestMemory,
        fd: u32,
        size: u64,
    ) -> WasiResult {
        Ok(self.file(fd)?.set_size(size)?)
    }

    pub(super) fn fd_filestat_set_times(
        &mut self,
        _: &mut GuestMemory,
        fd: u32,
        _atim: u64,
        mtim: u64,
        flags: u32,
    ) -> WasiResult {
        let change = mtime_change(mtim, flags)?;
        match self.desc(fd)? {
            Desc::File(file) => Ok(file.set_mtime(change)?),
            Desc::Dir { ino, .. } => Ok(self.vfs.set_mtime(*ino, change)?),
            Desc::Stdin | Desc::Stdout | Desc::Stderr => Ok(()),
        }
    }

    pub(super) fn fd_prestat_get(
        &mut self,
        mem: &mut GuestMemory,
        fd: u32,
        out: u32,
    ) -> WasiResult {
        let Desc::Dir {
            preopen: Some(name),
            ..
        } = self.desc(fd)?
        else {
            return Err(Errno::Badf.into());
        };
        let mut bytes = [0u8; 8];
        bytes[4..8].copy_from_slice(&(name.len() as u32).to_le_bytes());
        Ok(mem.write(out, &bytes)?)
    }

    pub(super) fn fd_prestat_dir_name(
        &mut self,
        mem: &mut GuestMemory,
        fd: u32,
        buf: u32,
        len: u32,
    ) -> WasiResult {
        let Desc::Dir {
            preopen: Some(name),
            ..
        } = self.desc(fd)?
        else {
            return Err(Errno::Badf.into());
        };
        if (len as usize) < name.len() {
            return Err(Errno::Nametoolong.into());
        }
        Ok(mem.write(buf, name.as_bytes())?)
    }

    pub(super) fn fd_read(
        &mut self,
        mem: &mut GuestMemory,
        fd: u32,
        iovs: u32,
        count: u32,
        out: u32,
    ) -> WasiResult {
        match self.desc(fd)? {
            Desc::Stdin | Desc::File(_) => {}
            Desc::Dir { .. } => return Err(Errno::Isdir.into()),
            Desc::Stdout | Desc::Stderr => return Err(Errno::Badf.into()),
        }
        let iovs = mem.iovecs(iovs, count)?;
        let mut total = 0u64;
        for (ptr, len) in iovs {
            let buf = mem.slice_mut(ptr, len)?;
            let got = match self.fds.get_mut(fd as usize).and_then(Option::as_mut) {
                Some(Desc::Stdin) => self.stdin.read(buf),
                Some(Desc::File(file)) => file.read(buf)?,
                Some(Desc::Dir { .. }) => return Err(Errno::Isdir.into()),
                Some(Desc::Stdout | Desc::Stderr) | None => return Err(Errno::Badf.into()),
            };
            total += got as u64;
            if got < len as usize {
                break;
            }
        }
        Ok(mem.write_u32(out, total as u32)?)
    }

    pub(super) fn fd_pread(
        &mut self,
        mem: &mut GuestMemory,
        fd: u32,
        iovs: u32,
        count: u32,
        offset: u64,
        out: u32,
    ) -> WasiResult {
        let iovs = mem.iovecs(iovs, count)?;
        let file = self.file(fd)?;
        let mut total = 0u64;
        for (ptr, len) in iovs {
            let got = file.pread(mem.slice_mut(ptr, len)?, offset.saturating_add(total))?;
            total += got as u64;
            if got < len as usize {
                break;
            }
        }
        Ok(mem.write_u32(out, total as u32)?)
    }

    pub(super) fn fd_write(
        &mut self,
        mem: &mut GuestMemory,
        fd: u32,
        iovs: u32,
        count: u32,
        out: u32,
    ) -> WasiResult {
        self.desc(fd)?;
        let bufs = mem.gather(iovs, count)?;
        let output = |is_stderr| -> Result<u64, Fail> {
            let mut output = self.output.lock().unwrap_or_else(|e| e.into_inner());
            Ok(output.write(is_stderr, &bufs)?)
        };
        let written = match self.fds.get_mut(fd as usize).and_then(Option::as_mut) {
            Some(Desc::Stdout) => output(false)?,
            Some(Desc::Stderr) => output(true)?,
            Some(Desc::File(file)) => file.write(&bufs)?,
            Some(Desc::Dir { .. }) => return Err(Errno::Isdir.into()),
            Some(Desc::Stdin) | None => return Err(Errno::Badf.into()),
        };
        Ok(mem.write_u32(out, written as u32)?)
    }

    pub(super) fn fd_pwrite(
        &mut self,
        mem: &mut GuestMemory,
        fd: u32,
        iovs: u32,
        count: u32,
        offset: u64,
        out: u32,
    ) -> WasiResult {
        let bufs = mem.gather(iovs, count)?;
        let written = self.file(fd)?.pwrite(&bufs, offset)?;
        Ok(mem.write_u32(out, written as u32)?)
    }

    pub(super) fn fd_readdir(
        &mut self,
        mem: &mut GuestMemory,
        fd: u32,
        buf: u32,
        len: u32,
        cookie: u64,
        out: u32,
    ) -> WasiResult {
        let ino = match self.desc(fd)? {
            Desc::Dir { ino, .. } => *ino,
            _ => return Err(Errno::Notdir.into()),
        };
        let skip = usize::try_from(cookie).unwrap_or(usize::MAX);
        let mut listing = Vec::new();
        for (i, entry) in self.vfs.readdir(ino)?.into_iter().enumerate().skip(skip) {
            if listing.len() >= len as usize {
                break;
            }
            let mut header = [0u8; size::DIRENT];
            header[0..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
            header[8..16].copy_from_slice(&entry.ino.to_le_bytes());
            header[16..20].copy_from_slice(&(entry.name.len() as u32).to_le_bytes());
            header[20] = entry.filetype as u8;
            listing.extend_from_slice(&header);
            listing.extend_from_slice(entry.name.as_bytes());
        }
        // A full buffer (the last entry cut short) tells libc to ask again from its cookie.
        listing.truncate(len as usize);
        mem.write(buf, &listing)?;
        Ok(mem.write_u32(out, listing.len() as u32)?)
    }

    pub(super) fn fd_renumber(&mut self, _: &mut GuestMemory, fd: u32, to: u32) -> WasiResult {
        self.desc(fd)?;
        self.desc(to)?;
        if fd != to {
            self.fds[to as usize] = self.fds[fd as usize].take();
        }
        Ok(())
    }

    pub(super) fn fd_seek(
        &mut self,
        mem: &mut GuestMemory,
        fd: u32,
        offset: u64,
        whence: u32,
        out: u32,
    ) -> WasiResult {
        let offset = offset as i64;
        let to = match whence {
            0 => SeekFrom::Start(u64::try_from(offset).map_err(|_| Errno::Inval)?),
            1 => SeekFrom::Current(offset),
            2 => SeekFrom::End(offset),
            _ => return Err(Errno::Inval.into()),
        };
        let position = self.file(fd)?.seek(to)?;
        Ok(mem.write_u64(out, position)?)
    }

    pub(super) fn fd_tell(&mut self, mem: &mut GuestMemory, fd: u32, out: u32) -> WasiResult {
        let position = self.file(fd)?.position();
        Ok(mem.write_u64(out, position)?)
    }
}

/// A `filestat`; `None` (a pipe) reports type unknown and zeros.
pub(super) fn filestat_bytes(stat: Option<Stat>) -> [u8; size::FILESTAT] {
    let mut bytes = [0u8; size::FILESTAT];
    let Some(stat) = stat else {
        return bytes;
    };
    let nanos = stat
        .mtime
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    bytes[0..8].copy_from_slice(&1u64.to_le_bytes());
    bytes[8..16].copy_from_slice(&stat.ino.to_le_bytes());
    bytes[16] = stat.filetype as u8;
    bytes[24..32].copy_from_slice(&1u64.to_le_bytes());
    bytes[32..40].copy_from_slice(&stat.size.to_le_bytes());
    for at in [40, 48, 56] {
        bytes[at..at + 8].copy_from_slice(&nanos.to_le_bytes());
    }
    bytes
}

/// The modification-time change `fstflags` ask for; access times are not kept.
pub(super) fn mtime_change(mtim: u64, flags: u32) -> Result<MtimeChange, Errno> {
    let flags = flags as u16;
    let both = |set, now| flags & set != 0 && flags & now != 0;
    if both(fstflags::ATIM, fstflags::ATIM_NOW) || both(fstflags::MTIM, fstflags::MTIM_NOW) {
        return Err(Errno::Inval);
    }
    Ok(if flags & fstflags::MTIM_NOW != 0 {
        MtimeChange::Now
    } else if flags & fstflags::MTIM != 0 {
        MtimeChange::At(SystemTime::UNIX_EPOCH + Duration::from_nanos(mtim))
    } else {
        MtimeChange::Keep
    })
}
