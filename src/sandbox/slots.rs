//! Run slots: the pooling allocator's instance slots, and the instances kept warm in them.
//!
//! A run resumed from an image used to get a fresh instance every time: the pool reset the
//! slot (zeroing every page the last run left, 0.5 ms for `-c pass`) and the run copied the
//! whole image in again (20 MB, 1.4-1.6 ms at this machine's copy speed). Now an instance that
//! ended its run normally stays in its slot, its memory tracked by the kernel ([`Tracked`]),
//! and the next run of the same image writes back only the pages the last run wrote. An idle
//! warm instance still holds its slot; a run that finds no free slot takes one from the
//! longest-idle warm instance.

use super::dirty::Tracked;
use super::image::GuestImage;
use super::RunState;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use wasmtime::{Instance, Memory, Store};

/// A counting semaphore over the pool's instance slots, with the warm instances that hold some.
pub(super) struct Slots {
    state: Mutex<State>,
    freed: Condvar,
}

struct State {
    /// Slots no run and no warm instance holds.
    free: u32,
    /// Warm instances, longest idle first.
    idle: Vec<Warm>,
}

/// An instance whose memory is `image` except for the pages its last run wrote, which the
/// kernel has noted.
pub(super) struct Warm {
    /// First, so the range is unregistered before the store (and the slot's memory) goes.
    pub(super) tracked: Tracked,
    pub(super) store: Store<RunState>,
    pub(super) instance: Instance,
    pub(super) memory: Memory,
    /// Held, so that no other image can take this one's address while it is compared by it.
    pub(super) image: Arc<GuestImage>,
    /// The fuel its last run used (see [`Tracked::rearm`]).
    pub(super) fuel: u64,
}

/// A slot held for one run, with the warm instance it may reuse; given back on drop.
pub(super) struct Lease<'a> {
    slots: &'a Slots,
    /// A warm instance of the image asked for, if one was idle.
    pub(super) warm: Option<Warm>,
    /// What to keep warm once the run is over.
    pub(super) keep: Option<Warm>,
}

impl Slots {
    pub(super) fn new(slots: u32) -> Slots {
        Slots {
            state: Mutex::new(State {
                free: slots,
                idle: Vec::new(),
            }),
            freed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a slot: a warm instance of `image` if one is idle, else a free slot, else the
    /// slot of the longest-idle warm instance, which is dropped.
    pub(super) fn acquire(&self, image: Option<&Arc<GuestImage>>) -> Lease<'_> {
        let mut state = self.lock();
        loop {
            let same = |w: &Warm| image.is_some_and(|image| Arc::ptr_eq(&w.image, image));
            if let Some(i) = state.idle.iter().rposition(same) {
                let warm = state.idle.remove(i);
                return self.lease(Some(warm));
            }
            if state.free > 0 {
                state.free -= 1;
                return self.lease(None);
            }
            if !state.idle.is_empty() {
                let evicted = state.idle.remove(0);
                drop(state);
                // Its slot passes to this run once the store has given it back to the pool.
                drop(evicted);
                return self.lease(None);
            }
            state = self.freed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn lease(&self, warm: Option<Warm>) -> Lease<'_> {
        Lease {
            slots: self,
            warm,
            keep: None,
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        // A warm instance not reused (the run failed before it started) is dropped here.
        self.warm = None;
        let mut state = self.slots.lock();
        match self.keep.take() {
            Some(warm) => state.idle.push(warm),
            None => state.free += 1,
        }
        drop(state);
        self.slots.freed.notify_one();
    }
}
