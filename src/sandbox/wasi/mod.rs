//! spar's own WASI preview 1 (`wasi_snapshot_preview1`): every function the guests import,
//! implemented over the run's in-memory [`Vfs`], captured stdio and the run's clock and random
//! source. Nothing here touches the host: there is no host file, socket, environment variable
//! or clock behind any descriptor. Functions that cannot work in the sandbox (sockets, links,
//! signals) return the error number a POSIX system without them would.
//!
//! Each function returns an [`Errno`] to the guest as its `i32` result, except for the few
//! conditions that end the run: the guest exiting ([`GuestExit`]) and the run's output or
//! file-system limits, which trap with their own error types for the sandbox to classify.

mod fd;
mod memory;
mod path;
mod sched;

use super::abi::Errno;
use super::host::{Clock, Input, Output, OutputLimitExceeded};
use super::vfs::{FsError, FsLimitExceeded, Ino, OpenFile, Vfs};
use memory::GuestMemory;
use rand::RngCore;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::{Caller, Extern, Linker, Memory};

/// The import module name every preview-1 guest uses.
const MODULE: &str = "wasi_snapshot_preview1";

/// How many descriptors a guest may hold open at once; more is `EMFILE`, as a process limit.
const MAX_OPEN_FDS: usize = 16_384;

/// The guest called `proc_exit`: the run ended by itself with this status.
#[derive(Debug, thiserror::Error)]
#[error("the guest exited with status {0}")]
pub struct GuestExit(pub i32);

/// What one run's guest sees through WASI, built fresh for every run.
pub(crate) struct WasiCtx {
    args: Vec<String>,
    env: Vec<String>,
    fds: Vec<Option<Desc>>,
    vfs: Vfs,
    clock: Arc<Clock>,
    max_sleep: Duration,
    random: Box<dyn RngCore + Send + Sync>,
    stdin: Input,
    output: Arc<Mutex<Output>>,
    /// The guest's exported memory, looked up on the first call that needs it.
    memory: Option<Memory>,
}

/// Everything a [`WasiCtx`] is made of.
pub(crate) struct WasiSetup {
    /// argv, `argv[0]` included.
    pub(crate) args: Vec<String>,
    /// The environment, exactly.
    pub(crate) env: Vec<(String, String)>,
    /// The file system, preopened as `/` on descriptor 3.
    pub(crate) vfs: Vfs,
    /// The run's time source.
    pub(crate) clock: Arc<Clock>,
    /// The longest a single sleep may block on the host clock (the run's timeout).
    pub(crate) max_sleep: Duration,
    /// The random source.
    pub(crate) random: Box<dyn RngCore + Send + Sync>,
    /// stdin's bytes.
    pub(crate) stdin: Vec<u8>,
    /// Where stdout and stderr go.
    pub(crate) output: Arc<Mutex<Output>>,
}

/// An open descriptor.
enum Desc {
    Stdin,
    Stdout,
    Stderr,
    /// A directory; `preopen` is the name the guest's libc knows it by (only `/`).
    Dir {
        ino: Ino,
        preopen: Option<String>,
    },
    File(OpenFile),
}

/// Why a call failed: an error number for the guest, or a condition that ends the run.
enum Fail {
    Errno(Errno),
    Trap(wasmtime::Error),
}

impl From<Errno> for Fail {
    fn from(e: Errno) -> Self {
        Fail::Errno(e)
    }
}

impl From<FsError> for Fail {
    fn from(e: FsError) -> Self {
        match e {
            FsError::Errno(e) => Fail::Errno(e),
            FsError::Limit => Fail::Trap(FsLimitExceeded.into()),
        }
    }
}

impl From<OutputLimitExceeded> for Fail {
    fn from(e: OutputLimitExceeded) -> Self {
        Fail::Trap(e.into())
    }
}

type WasiResult = Result<(), Fail>;

impl WasiCtx {
    /// A context with stdin, stdout and stderr on descriptors 0-2 and `/` on 3.
    pub(crate) fn new(setup: WasiSetup) -> Self {
        WasiCtx {
            args: setup.args,
            env: setup
                .env
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
            fds: vec![
                Some(Desc::Stdin),
                Some(Desc::Stdout),
                Some(Desc::Stderr),
                Some(Desc::Dir {
                    ino: Vfs::ROOT,
                    preopen: Some("/".to_owned()),
                }),
            ],
            vfs: setup.vfs,
            clock: setup.clock,
            max_sleep: setup.max_sleep,
            random: setup.random,
            stdin: Input::new(setup.stdin),
            output: setup.output,
            memory: None,
        }
    }
}

impl WasiCtx {
    /// Descriptors open beyond stdio and the preopened root.
    pub(crate) fn open_files(&self) -> usize {
        self.fds.iter().skip(4).filter(|fd| fd.is_some()).count()
    }
}

/// The guest's memory and the run's context, borrowed together for one call.
fn memory_and_ctx<'a, T: 'static>(
    caller: &'a mut Caller<'_, T>,
    get: fn(&mut T) -> &mut WasiCtx,
) -> wasmtime::Result<(GuestMemory<'a>, &'a mut WasiCtx)> {
    let memory = match get(caller.data_mut()).memory {
        Some(memory) => memory,
        None => {
            let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
                wasmtime::bail!("the guest calls WASI but exports no memory named `memory`");
            };
            get(caller.data_mut()).memory = Some(memory);
            memory
        }
    };
    let (bytes, data) = memory.data_and_store_mut(caller);
    Ok((GuestMemory::new(bytes), get(data)))
}

/// The `i32` a preview-1 function returns: 0, an error number, or a trap.
fn returned(result: WasiResult) -> wasmtime::Result<i32> {
    match result {
        Ok(()) => Ok(0),
        Err(Fail::Errno(e)) => Ok(e as i32),
        Err(Fail::Trap(e)) => Err(e),
    }
}

/// Defines `wasi_snapshot_preview1.$name` as the `WasiCtx` method of the same name, which
/// takes the guest's memory and the function's arguments (`u32` for `i32`, `u64` for `i64`).
macro_rules! export {
    ($linker:ident, $get:ident, $name:ident($($arg:ident: $ty:ty),*)) => {
        $linker.func_wrap(
            MODULE,
            stringify!($name),
            move |mut caller: Caller<'_, T>, $($arg: $ty),*| -> wasmtime::Result<i32> {
                let (mut memory, ctx) = memory_and_ctx(&mut caller, $get)?;
                returned(ctx.$name(&mut memory, $($arg),*))
            },
        )?;
    };
}

/// Adds every preview-1 function to `linker`; `get` finds the run's [`WasiCtx`] in the store.
pub(crate) fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut WasiCtx,
) -> wasmtime::Result<()> {
    export!(linker, get, args_get(argv: u32, buf: u32));
    export!(linker, get, args_sizes_get(count: u32, size: u32));
    export!(linker, get, environ_get(environ: u32, buf: u32));
    export!(linker, get, environ_sizes_get(count: u32, size: u32));
    export!(linker, get, clock_res_get(id: u32, out: u32));
    export!(linker, get, clock_time_get(id: u32, precision: u64, out: u32));
    export!(linker, get, fd_advise(fd: u32, offset: u64, len: u64, advice: u32));
    export!(linker, get, fd_allocate(fd: u32, offset: u64, len: u64));
    export!(linker, get, fd_close(fd: u32));
    export!(linker, get, fd_datasync(fd: u32));
    export!(linker, get, fd_fdstat_get(fd: u32, out: u32));
    export!(linker, get, fd_fdstat_set_flags(fd: u32, flags: u32));
    export!(linker, get, fd_fdstat_set_rights(fd: u32, base: u64, inheriting: u64));
    export!(linker, get, fd_filestat_get(fd: u32, out: u32));
    export!(linker, get, fd_filestat_set_size(fd: u32, size: u64));
    export!(linker, get, fd_filestat_set_times(fd: u32, atim: u64, mtim: u64, flags: u32));
    export!(linker, get, fd_pread(fd: u32, iovs: u32, count: u32, offset: u64, out: u32));
    export!(linker, get, fd_prestat_get(fd: u32, out: u32));
    export!(linker, get, fd_prestat_dir_name(fd: u32, buf: u32, len: u32));
    export!(linker, get, fd_pwrite(fd: u32, iovs: u32, count: u32, offset: u64, out: u32));
    export!(linker, get, fd_read(fd: u32, iovs: u32, count: u32, out: u32));
    export!(linker, get, fd_readdir(fd: u32, buf: u32, len: u32, cookie: u64, out: u32));
    export!(linker, get, fd_renumber(fd: u32, to: u32));
    export!(linker, get, fd_seek(fd: u32, offset: u64, whence: u32, out: u32));
    export!(linker, get, fd_sync(fd: u32));
    export!(linker, get, fd_tell(fd: u32, out: u32));
    export!(linker, get, fd_write(fd: u32, iovs: u32, count: u32, out: u32));
    export!(linker, get, path_create_directory(fd: u32, path: u32, len: u32));
    export!(linker, get, path_filestat_get(fd: u32, flags: u32, path: u32, len: u32, out: u32));
    export!(
        linker,
        get,
        path_filestat_set_times(
            fd: u32,
            flags: u32,
            path: u32,
            len: u32,
            atim: u64,
            mtim: u64,
            fst: u32
        )
    );
    export!(
        linker,
        get,
        path_link(
            fd: u32,
            flags: u32,
            path: u32,
            len: u32,
            new_fd: u32,
            new_path: u32,
            new_len: u32
        )
    );
    export!(
        linker,
        get,
        path_open(
            fd: u32,
            dirflags: u32,
            path: u32,
            len: u32,
            oflags: u32,
            rights_base: u64,
            rights_inheriting: u64,
            fdflags: u32,
            out: u32
        )
    );
    export!(
        linker,
        get,
        path_readlink(fd: u32, path: u32, len: u32, buf: u32, buf_len: u32, out: u32)
    );
    export!(linker, get, path_remove_directory(fd: u32, path: u32, len: u32));
    export!(
        linker,
        get,
        path_rename(fd: u32, path: u32, len: u32, new_fd: u32, new_path: u32, new_len: u32)
    );
    export!(
        linker,
        get,
        path_symlink(target: u32, target_len: u32, fd: u32, path: u32, len: u32)
    );
    export!(linker, get, path_unlink_file(fd: u32, path: u32, len: u32));
    export!(linker, get, poll_oneoff(subs: u32, events: u32, count: u32, out: u32));
    export!(linker, get, proc_raise(signal: u32));
    export!(linker, get, sched_yield());
    export!(linker, get, random_get(buf: u32, len: u32));
    export!(linker, get, sock_accept(fd: u32, flags: u32, out: u32));
    export!(
        linker,
        get,
        sock_recv(fd: u32, iovs: u32, count: u32, flags: u32, out: u32, out_flags: u32)
    );
    export!(
        linker,
        get,
        sock_send(fd: u32, iovs: u32, count: u32, flags: u32, out: u32)
    );
    export!(linker, get, sock_shutdown(fd: u32, how: u32));
    linker.func_wrap(MODULE, "proc_exit", |status: u32| -> wasmtime::Result<()> {
        // The full status, even 126 and above (`sys.exit(300)`), as the guest asked.
        Err(GuestExit(status as i32).into())
    })?;
    Ok(())
}
