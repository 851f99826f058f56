//! Run slots: the pooling allocator's instance slots, and the instances kept warm in them.
//!
//! A run resumed from an image used to get a fresh instance every time: the pool reset the
//! slot (zeroing every page the last run left, 0.5 ms for `-c pass`) and the run copied the
//! whole image in again (20 MB, 1.4-1.6 ms at this machine's copy speed). Now an instance that
//! ended its run normally stays in its slot, its memory tracked by the kernel ([`Tracked`]),
//! and the pages its run wrote are written back as soon as the caller has the result
//! ([`Settling`]), off the next run's path: a caller that does anything between two runs (an
//! agent thinking, a native run in a benchmark) finds the instance ready. A run that comes
//! sooner waits for it rather than start a new instance, which costs more; usually on the
//! thread that writes it back, right after (see `threads`). An idle warm instance still holds
//! its slot; a run that finds no free slot takes one from the longest-idle warm instance.

use super::dirty::Tracked;
use super::image::GuestImage;
use super::RunState;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use wasmtime::{Instance, Memory, Store};

/// A counting semaphore over the pool's instance slots, with the warm instances that hold some.
pub(super) struct Slots {
    state: Mutex<State>,
    changed: Condvar,
}

struct State {
    /// Slots no run and no warm instance holds.
    free: u32,
    /// Warm instances, longest idle first.
    idle: Vec<Warm>,
    /// The images of instances whose last run's pages are being written back.
    settling: Vec<Arc<GuestImage>>,
    /// The images that runs waiting for one of those instances want.
    waiting: Vec<Arc<GuestImage>>,
}

/// An instance whose memory is `image`'s again, after a run: the pages the run wrote were
/// written back, and the kernel tracks the next run's.
pub(super) struct Warm {
    /// First, so the range is unregistered before the store (and the slot's memory) goes.
    pub(super) tracked: Tracked,
    pub(super) store: Store<RunState>,
    pub(super) instance: Instance,
    pub(super) memory: Memory,
    /// Held, so that no other image can take this one's address while it is compared by it.
    pub(super) image: Arc<GuestImage>,
    /// The bytes written back after its last run (0 when it was new and written back whole).
    pub(super) written_back: usize,
}

/// A slot held for one run, with the warm instance it may reuse; given back on drop.
pub(super) struct Lease {
    slots: Arc<Slots>,
    /// A warm instance of the image asked for, if one was idle.
    pub(super) warm: Option<Warm>,
    /// How long the run waited for a free slot: queueing behind other runs, not part of its
    /// start-up (waiting for its image's settling instance is).
    pub(super) queued: Duration,
    /// Whether the slot is still this lease's to give back (not a [`Settling`]'s).
    held: bool,
}

/// A slot whose instance's run has ended and whose pages are being written back; the instance
/// goes idle (or the slot free) on [`Settling::finish`] or drop.
pub(super) struct Settling {
    slots: Arc<Slots>,
    image: Arc<GuestImage>,
    warm: Option<Warm>,
}

impl Slots {
    pub(super) fn new(slots: u32) -> Arc<Slots> {
        Arc::new(Slots {
            state: Mutex::new(State {
                free: slots,
                idle: Vec::new(),
                settling: Vec::new(),
                waiting: Vec::new(),
            }),
            changed: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a slot: a warm instance of `image` if one is idle, or if one is settling and
    /// no other run waits for it; else a free slot, else the slot of the longest-idle warm
    /// instance, which is dropped.
    pub(super) fn acquire(self: &Arc<Self>, image: Option<&Arc<GuestImage>>) -> Lease {
        let mut state = self.lock();
        let mut queued = Duration::ZERO;
        loop {
            let same = |other: &Arc<GuestImage>| image.is_some_and(|i| Arc::ptr_eq(other, i));
            if let Some(i) = state.idle.iter().rposition(|w| same(&w.image)) {
                let warm = state.idle.remove(i);
                return self.lease(Some(warm), queued);
            }
            let settling = state.settling.iter().filter(|i| same(i)).count();
            if let Some(image) = image.filter(|_| settling > 0) {
                if settling > state.waiting.iter().filter(|i| same(i)).count() {
                    state.waiting.push(Arc::clone(image));
                    state = self.wait(state);
                    let mine = state.waiting.iter().position(same);
                    state
                        .waiting
                        .swap_remove(mine.expect("a waiting run is listed"));
                    continue;
                }
            }
            if state.free > 0 {
                state.free -= 1;
                return self.lease(None, queued);
            }
            if !state.idle.is_empty() {
                let evicted = state.idle.remove(0);
                drop(state);
                // Its slot passes to this run once the store has given it back to the pool.
                drop(evicted);
                return self.lease(None, queued);
            }
            let since = Instant::now();
            state = self.wait(state);
            queued += since.elapsed();
        }
    }

    fn wait<'a>(&self, state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed.wait(state).unwrap_or_else(|e| e.into_inner())
    }

    fn lease(self: &Arc<Self>, warm: Option<Warm>, queued: Duration) -> Lease {
        Lease {
            slots: Arc::clone(self),
            warm,
            queued,
            held: true,
        }
    }

    /// Gives a slot back, with the instance to keep warm in it if any.
    fn give_back(&self, warm: Option<Warm>, settled: Option<&Arc<GuestImage>>) {
        let mut state = self.lock();
        if let Some(image) = settled {
            let i = state.settling.iter().position(|i| Arc::ptr_eq(i, image));
            state
                .settling
                .swap_remove(i.expect("a settling instance is listed"));
        }
        match warm {
            Some(warm) => state.idle.push(warm),
            None => state.free += 1,
        }
        drop(state);
        // Every waiter, since they wait for different things (any slot, or one image's).
        self.changed.notify_all();
    }
}

impl Lease {
    /// Keeps the slot for the instance of `image` whose run just ended while its pages are
    /// written back: runs of `image` that come meanwhile wait for it. The slot passes to the
    /// returned [`Settling`].
    pub(super) fn settle(mut self, image: &Arc<GuestImage>) -> Settling {
        self.warm = None;
        self.held = false;
        self.slots.lock().settling.push(Arc::clone(image));
        Settling {
            slots: Arc::clone(&self.slots),
            image: Arc::clone(image),
            warm: None,
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // A warm instance not reused (the run failed before it started) is dropped here.
        self.warm = None;
        if self.held {
            self.slots.give_back(None, None);
        }
    }
}

impl Settling {
    /// Ends the settling: `warm` (the instance, written back) goes idle, or the slot free.
    pub(super) fn finish(mut self, warm: Option<Warm>) {
        self.warm = warm;
    }
}

impl Drop for Settling {
    fn drop(&mut self) {
        self.slots.give_back(self.warm.take(), Some(&self.image));
    }
}
