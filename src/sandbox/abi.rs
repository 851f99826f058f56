//! The WASI preview-1 ABI as the guest sees it: error numbers, file types, flag bits and the
//! byte layouts of the structures the host writes into guest memory. Values are from the
//! `wasi_snapshot_preview1` witx definitions; a wrong number here is a wrong answer to libc.

/// A preview-1 error number, returned to the guest as a function's `i32` result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
#[allow(missing_docs)]
pub enum Errno {
    Badf = 8,
    Exist = 20,
    Fault = 21,
    Fbig = 22,
    Ilseq = 25,
    Inval = 28,
    Isdir = 31,
    Mfile = 33,
    Nametoolong = 37,
    Noent = 44,
    Nosys = 52,
    Notdir = 54,
    Notempty = 55,
    Notsock = 57,
    Notsup = 58,
    Rofs = 69,
    Spipe = 70,
    Notcapable = 76,
}

/// The type of a file as `filestat`, `fdstat` and directory entries report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Filetype {
    /// Pipes (the guest's stdio): neither a terminal nor seekable.
    Unknown = 0,
    /// `/dev/null`.
    CharacterDevice = 2,
    /// A directory.
    Directory = 3,
    /// A regular file.
    RegularFile = 4,
}

/// `oflags` of `path_open`.
pub mod oflags {
    /// Create the file if it does not exist.
    pub const CREAT: u16 = 1;
    /// Fail unless the path is a directory.
    pub const DIRECTORY: u16 = 2;
    /// With `CREAT`: fail if the file exists.
    pub const EXCL: u16 = 4;
    /// Truncate the file to size zero.
    pub const TRUNC: u16 = 8;
}

/// `fdflags`: only append changes what spar's files do; the others are accepted and ignored
/// because every file is in memory and every write is synchronous.
pub const FDFLAG_APPEND: u16 = 1;

/// `fstflags` of the `*_set_times` functions.
pub mod fstflags {
    /// Set the access time to the given value.
    pub const ATIM: u16 = 1;
    /// Set the access time to now.
    pub const ATIM_NOW: u16 = 2;
    /// Set the modification time to the given value.
    pub const MTIM: u16 = 4;
    /// Set the modification time to now.
    pub const MTIM_NOW: u16 = 8;
}

/// Rights bits. wasi-libc derives `O_RDONLY`/`O_WRONLY` from them (`fcntl(F_GETFL)`) and
/// restricts what it asks `path_open` for by a directory's inheriting rights, so they must be
/// reported faithfully even though spar checks access by the open mode itself.
pub mod rights {
    /// `fd_datasync`.
    pub const FD_DATASYNC: u64 = 1 << 0;
    /// `fd_read`.
    pub const FD_READ: u64 = 1 << 1;
    /// `fd_write`.
    pub const FD_WRITE: u64 = 1 << 6;
    /// `fd_allocate`.
    pub const FD_ALLOCATE: u64 = 1 << 8;
    /// `fd_readdir`.
    pub const FD_READDIR: u64 = 1 << 14;
    /// `fd_filestat_set_size`.
    pub const FD_FILESTAT_SET_SIZE: u64 = 1 << 22;
    /// Every right preview 1 defines.
    pub const ALL: u64 = (1 << 30) - 1;
    /// The rights that make wasi-libc call a descriptor readable.
    pub const READING: u64 = FD_READ | FD_READDIR;
    /// The rights that make wasi-libc call a descriptor writable.
    pub const WRITING: u64 = FD_DATASYNC | FD_WRITE | FD_ALLOCATE | FD_FILESTAT_SET_SIZE;
}

/// Clock ids.
pub mod clock {
    /// Wall-clock time since the Unix epoch.
    pub const REALTIME: u32 = 0;
    /// Time since the run started.
    pub const MONOTONIC: u32 = 1;
}

/// `poll_oneoff` event types.
pub mod event {
    /// A clock subscription.
    pub const CLOCK: u8 = 0;
    /// A descriptor became readable.
    pub const FD_READ: u8 = 1;
    /// A descriptor became writable.
    pub const FD_WRITE: u8 = 2;
}

/// `subclockflags`: the timeout is an absolute time of the clock, not a duration.
pub const SUBSCRIPTION_CLOCK_ABSTIME: u16 = 1;

/// Byte sizes of the structures written to or read from guest memory.
pub mod size {
    /// `fdstat`.
    pub const FDSTAT: usize = 24;
    /// `filestat`.
    pub const FILESTAT: usize = 64;
    /// The header of a `dirent`, before its name.
    pub const DIRENT: usize = 24;
    /// `subscription`.
    pub const SUBSCRIPTION: usize = 48;
    /// `event`.
    pub const EVENT: usize = 32;
    /// `iovec` / `ciovec`.
    pub const IOVEC: usize = 8;
}
