//! Time, randomness, arguments, environment, polling and the functions a sandbox has no use
//! for (signals, sockets).

// Each function's parameters are those of its preview-1 signature.
#![allow(clippy::too_many_arguments)]

use super::memory::offset;
use super::{Desc, GuestMemory, WasiCtx, WasiResult};
use crate::sandbox::abi::{clock, event, size, Errno, SUBSCRIPTION_CLOCK_ABSTIME};
use std::time::{Duration, SystemTime};

/// One `poll_oneoff` subscription, as read from guest memory.
enum Subscription {
    /// Fires when the clock reaches the deadline.
    Clock { userdata: u64, wait: Duration },
    /// Ready at once: every descriptor is in memory.
    Fd { userdata: u64, kind: u8, fd: u32 },
}

impl WasiCtx {
    pub(super) fn args_get(&mut self, mem: &mut GuestMemory, argv: u32, buf: u32) -> WasiResult {
        write_strings(mem, &self.args, argv, buf)
    }

    pub(super) fn args_sizes_get(
        &mut self,
        mem: &mut GuestMemory,
        count: u32,
        size: u32,
    ) -> WasiResult {
        write_sizes(mem, &self.args, count, size)
    }

    pub(super) fn environ_get(
        &mut self,
        mem: &mut GuestMemory,
        environ: u32,
        buf: u32,
    ) -> WasiResult {
        write_strings(mem, &self.env, environ, buf)
    }

    pub(super) fn environ_sizes_get(
        &mut self,
        mem: &mut GuestMemory,
        count: u32,
        size: u32,
    ) -> WasiResult {
        write_sizes(mem, &self.env, count, size)
    }

    /// Only the wall clock and the monotonic clock exist; CPU-time clocks are `EBADF`, as in
    /// Wasmtime's own preview 1.
    pub(super) fn clock_res_get(&mut self, mem: &mut GuestMemory, id: u32, out: u32) -> WasiResult {
        if id != clock::REALTIME && id != clock::MONOTONIC {
            return Err(Errno::Badf.into());
        }
        Ok(mem.write_u64(out, 1_000)?)
    }

    pub(super) fn clock_time_get(
        &mut self,
        mem: &mut GuestMemory,
        id: u32,
        _precision: u64,
        out: u32,
    ) -> WasiResult {
        let nanos = match id {
            clock::REALTIME => since_epoch(self.clock.now()),
            clock::MONOTONIC => self.clock.elapsed(),
            _ => return Err(Errno::Badf.into()),
        };
        Ok(mem.write_u64(out, nanos.as_nanos() as u64)?)
    }

    pub(super) fn random_get(&mut self, mem: &mut GuestMemory, buf: u32, len: u32) -> WasiResult {
        self.random.fill_bytes(mem.slice_mut(buf, len)?);
        Ok(())
    }

    pub(super) fn sched_yield(&mut self, _: &mut GuestMemory) -> WasiResult {
        Ok(())
    }

    /// There are no signals to raise.
    pub(super) fn proc_raise(&mut self, _: &mut GuestMemory, _signal: u32) -> WasiResult {
        Err(Errno::Nosys.into())
    }

    /// Descriptors never block, so any descriptor subscription completes at once and the call
    /// does not sleep; otherwise it sleeps (on the run's clock) until the earliest deadline.
    pub(super) fn poll_oneoff(
        &mut self,
        mem: &mut GuestMemory,
        subs: u32,
        events: u32,
        count: u32,
        out: u32,
    ) -> WasiResult {
        // A bound like IOV_MAX: the host holds one entry per subscription.
        if count == 0 || count > 1 << 16 {
            return Err(Errno::Inval.into());
        }
        let subscriptions = (0..count)
            .map(|i| self.subscription(mem, offset(subs, i as usize * size::SUBSCRIPTION)?))
            .collect::<Result<Vec<_>, Errno>>()?;
        let mut fired = Vec::new();
        for sub in &subscriptions {
            if let Subscription::Fd { userdata, kind, fd } = *sub {
                let (errno, nbytes) = match self.desc(fd) {
                    Ok(Desc::Stdin) if kind == event::FD_READ => (0, self.stdin.remaining()),
                    Ok(Desc::File(file)) if kind == event::FD_READ => (0, file.remaining()),
                    Ok(_) => (0, 0),
                    Err(e) => (e as u16, 0),
                };
                fired.push((userdata, errno, kind, nbytes));
            }
        }
        if fired.is_empty() {
            let earliest = subscriptions.iter().filter_map(|sub| match sub {
                Subscription::Clock { wait, .. } => Some(*wait),
                Subscription::Fd { .. } => None,
            });
            let earliest = earliest.min().unwrap_or_default();
            self.clock.sleep(earliest, self.max_sleep);
            for sub in &subscriptions {
                if let Subscription::Clock { userdata, wait } = *sub {
                    if wait <= earliest {
                        fired.push((userdata, 0, event::CLOCK, 0));
                    }
                }
            }
        }
        for (i, &(userdata, errno, kind, nbytes)) in fired.iter().enumerate() {
            let mut bytes = [0u8; size::EVENT];
            bytes[0..8].copy_from_slice(&userdata.to_le_bytes());
            bytes[8..10].copy_from_slice(&errno.to_le_bytes());
            bytes[10] = kind;
            bytes[16..24].copy_from_slice(&nbytes.to_le_bytes());
            mem.write(offset(events, i * size::EVENT)?, &bytes)?;
        }
        Ok(mem.write_u32(out, fired.len() as u32)?)
    }

    fn subscription(&self, mem: &GuestMemory, at: u32) -> Result<Subscription, Errno> {
        mem.slice(at, size::SUBSCRIPTION as u32)?;
        let userdata = mem.u64(at)?;
        match mem.u8(at + 8)? {
            event::CLOCK => {
                let (id, timeout) = (mem.u32(at + 16)?, mem.u64(at + 24)?);
                let absolute = mem.u16(at + 40)? & SUBSCRIPTION_CLOCK_ABSTIME != 0;
                let timeout = Duration::from_nanos(timeout);
                let wait = match (id, absolute) {
                    (clock::REALTIME | clock::MONOTONIC, false) => timeout,
                    (clock::REALTIME, true) => {
                        timeout.saturating_sub(since_epoch(self.clock.now()))
                    }
                    (clock::MONOTONIC, true) => timeout.saturating_sub(self.clock.elapsed()),
                    _ => return Err(Errno::Inval),
                };
                Ok(Subscription::Clock { userdata, wait })
            }
            kind @ (event::FD_READ | event::FD_WRITE) => Ok(Subscription::Fd {
                userdata,
                kind,
                fd: mem.u32(at + 16)?,
            }),
            _ => Err(Errno::Inval),
        }
    }

    /// The guest has descriptors but no sockets.
    fn not_a_socket(&self, fd: u32) -> WasiResult {
        self.desc(fd)?;
        Err(Errno::Notsock.into())
    }

    pub(super) fn sock_accept(
        &mut self,
        _: &mut GuestMemory,
        fd: u32,
        _: u32,
        _: u32,
    ) -> WasiResult {
        self.not_a_socket(fd)
    }

    pub(super) fn sock_recv(
        &mut self,
        _: &mut GuestMemory,
        fd: u32,
        _: u32,
        _: u32,
        _: u32,
        _: u32,
        _: u32,
    ) -> WasiResult {
        self.not_a_socket(fd)
    }

    pub(super) fn sock_send(
        &mut self,
        _: &mut GuestMemory,
        fd: u32,
        _: u32,
        _: u32,
        _: u32,
        _: u32,
    ) -> WasiResult {
        self.not_a_socket(fd)
    }

    pub(super) fn sock_shutdown(&mut self, _: &mut GuestMemory, fd: u32, _: u32) -> WasiResult {
        self.not_a_socket(fd)
    }
}

fn since_epoch(t: SystemTime) -> Duration {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default()
}

/// `args_get`/`environ_get`: a pointer per string at `ptrs`, the NUL-terminated strings at `buf`.
fn write_strings(mem: &mut GuestMemory, strings: &[String], ptrs: u32, buf: u32) -> WasiResult {
    let mut at = buf;
    for (i, s) in strings.iter().enumerate() {
        mem.write_u32(offset(ptrs, 4 * i)?, at)?;
        mem.write(at, s.as_bytes())?;
        mem.write(offset(at, s.len())?, &[0])?;
        at = offset(at, s.len() + 1)?;
    }
    Ok(())
}

/// `args_sizes_get`/`environ_sizes_get`: the count and the bytes the strings need.
fn write_sizes(mem: &mut GuestMemory, strings: &[String], count: u32, size: u32) -> WasiResult {
    let bytes: usize = strings.iter().map(|s| s.len() + 1).sum();
    mem.write_u32(count, strings.len() as u32)?;
    Ok(mem.write_u32(size, bytes as u32)?)
}
