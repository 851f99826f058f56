//! Threads with stacks deep enough for the guest, kept between runs. A guest's WebAssembly
//! stack lives on the host thread that calls into it, and callers' threads (a test's, a tokio
//! blocking worker's) have 2 MiB; spawning a fresh thread per run cost about 60 us, more than
//! everything else a trivial run costs together, so finished threads wait for the next run.

use std::panic::AssertUnwindSafe;
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};

/// A run's work; what it returns reports the result to the caller, which the worker calls only
/// after counting itself idle again, so that the caller's next run finds it.
type Job = Box<dyn FnOnce() -> (Report, Option<Then>) + Send>;
type Report = Box<dyn FnOnce() + Send>;

/// Work a job leaves for its thread after its caller has the result. The thread counts as idle
/// already, and as the one that went idle last it gets the caller's next run, which starts
/// once the work is done: that run needs it done first anyway (its instance written back).
pub(super) type Then = Box<dyn FnOnce() + Send>;

thread_local! {
    static STACK_SIZE: usize = stack_size();
}

/// Whether the calling thread's stack is at least `bytes` deep.
pub(super) fn current_stack_holds(bytes: usize) -> bool {
    STACK_SIZE.with(|size| *size >= bytes)
}

/// This thread's stack size, or 0 where it cannot be read.
#[cfg(target_os = "linux")]
fn stack_size() -> usize {
    let mut attr = std::mem::MaybeUninit::<libc::pthread_attr_t>::uninit();
    // SAFETY: `pthread_getattr_np` initialises `attr` for the calling thread when it returns 0,
    // and only then is it read and destroyed.
    unsafe {
        if libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr()) != 0 {
            return 0;
        }
        let mut size = 0;
        let read = libc::pthread_attr_getstacksize(attr.as_ptr(), &mut size);
        libc::pthread_attr_destroy(attr.as_mut_ptr());
        if read == 0 {
            size
        } else {
            0
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn stack_size() -> usize {
    0
}

/// A pool that grows to as many threads as there are runs in flight at once. The thread that
/// went idle last takes the next job: a caller running one run after another keeps one thread,
/// whose core has the caches warm with that run's instance, and finds it even while the thread
/// still does the work the last job left ([`Then`]).
pub(super) struct GuestThreads {
    state: Mutex<Pool>,
    stack_size: usize,
}

struct Pool {
    /// Threads waiting for a job, the one that went idle last at the end.
    idle: Vec<Arc<Worker>>,
    closed: bool,
}

/// One thread's mailbox.
#[derive(Default)]
struct Worker {
    /// The job handed to it; `None` with `closed` set tells it to exit.
    job: Mutex<Option<Job>>,
    closed: std::sync::atomic::AtomicBool,
    handed: Condvar,
}

impl GuestThreads {
    pub(super) fn new(stack_size: usize) -> Arc<Self> {
        Arc::new(GuestThreads {
            state: Mutex::new(Pool {
                idle: Vec::new(),
                closed: false,
            }),
            stack_size,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Pool> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `job` on one of the pool's threads and returns the first thing it returns; a panic
    /// in `job` resumes on the caller's thread. The second is work for the thread to do once
    /// the caller has the result.
    pub(super) fn run<R: Send + 'static>(
        self: &Arc<Self>,
        job: impl FnOnce() -> (R, Option<Then>) + Send + 'static,
    ) -> std::io::Result<R> {
        let (done, result) = mpsc::sync_channel(1);
        let job: Job = Box::new(move || {
            let (result, then) = match std::panic::catch_unwind(AssertUnwindSafe(job)) {
                Ok((value, then)) => (Ok(value), then),
                Err(panic) => (Err(panic), None),
            };
            let report: Report = Box::new(move || {
                let _ = done.send(result);
            });
            (report, then)
        });
        let idle = self.lock().idle.pop();
        match idle {
            Some(worker) => {
                *lock(&worker.job) = Some(job);
                worker.handed.notify_one();
            }
            None => {
                let pool = Arc::clone(self);
                let worker = Arc::new(Worker::default());
                *lock(&worker.job) = Some(job);
                std::thread::Builder::new()
                    .name("spar-guest".into())
                    .stack_size(self.stack_size)
                    .spawn(move || pool.work(worker))?;
            }
        }
        match result.recv() {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(_) => unreachable!("a handed job always runs and reports"),
        }
    }

    fn work(&self, me: Arc<Worker>) {
        use std::sync::atomic::Ordering;
        loop {
            let job = {
                let mut job = lock(&me.job);
                loop {
                    if let Some(job) = job.take() {
                        break job;
                    }
                    if me.closed.load(Ordering::Acquire) {
                        return;
                    }
                    job = me.handed.wait(job).unwrap_or_else(|e| e.into_inner());
                }
            };
            let (report, then) = job();
            {
                let mut pool = self.lock();
                if pool.closed {
                    me.closed.store(true, Ordering::Release);
                } else {
                    pool.idle.push(Arc::clone(&me));
                }
            }
            report();
            if let Some(then) = then {
                // Its own panic is its own: `then` leaves nothing half done for others.
                let _ = std::panic::catch_unwind(AssertUnwindSafe(then));
            }
        }
    }

    /// Lets the idle threads exit, and the busy ones once their job is done.
    pub(super) fn close(&self) {
        let idle = {
            let mut pool = self.lock();
            pool.closed = true;
            std::mem::take(&mut pool.idle)
        };
        for worker in idle {
            let _guard = lock(&worker.job);
            worker
                .closed
                .store(true, std::sync::atomic::Ordering::Release);
            worker.handed.notify_one();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_knows_its_stack_size() {
        let deep = std::thread::Builder::new()
            .stack_size(32 << 20)
            .spawn(|| current_stack_holds(32 << 20))
            .unwrap();
        assert!(deep.join().unwrap());
        let shallow = std::thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(|| current_stack_holds(8 << 20))
            .unwrap();
        assert!(!shallow.join().unwrap());
    }

    #[test]
    fn threads_are_reused_and_deep() {
        let pool = GuestThreads::new(16 << 20);
        let first = pool.run(|| (std::thread::current().id(), None)).unwrap();
        // Deeper than a default 2 MiB thread allows.
        fn depth(n: u32) -> u32 {
            let pad = std::hint::black_box([0u8; 1024]);
            if n == 0 {
                u32::from(pad[0])
            } else {
                depth(n - 1) + 1
            }
        }
        assert_eq!(pool.run(|| (depth(8_000), None)).unwrap(), 8_000);
        assert_eq!(
            pool.run(|| (std::thread::current().id(), None)).unwrap(),
            first
        );
        let panicked = std::panic::catch_unwind(AssertUnwindSafe(|| {
            pool.run(|| -> (u8, _) { panic!("boom") })
        }));
        assert!(panicked.is_err());
        assert_eq!(
            pool.run(|| (7, None)).unwrap(),
            7,
            "a panicking job leaves the pool working"
        );

        // The caller has the result before the work left after it is done.
        let (after, done) = mpsc::channel();
        let (go, wait) = mpsc::channel::<()>();
        let got = pool
            .run(move || {
                let then: Then = Box::new(move || {
                    wait.recv().unwrap();
                    after.send(()).unwrap();
                });
                (8, Some(then))
            })
            .unwrap();
        assert_eq!(got, 8);
        assert!(
            done.try_recv().is_err(),
            "not done before the caller was told"
        );
        go.send(()).unwrap();
        let next = pool.run(|| (std::thread::current().id(), None)).unwrap();
        done.try_recv().expect("the next job ran after it");
        assert_eq!(next, first, "on its thread");
        pool.close();
    }
}
