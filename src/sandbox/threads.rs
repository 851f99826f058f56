//! Threads with stacks deep enough for the guest, kept between runs. A guest's WebAssembly
//! stack lives on the host thread that calls into it, and callers' threads (a test's, a tokio
//! blocking worker's) have 2 MiB; spawning a fresh thread per run cost about 60 us, more than
//! everything else a trivial run costs together, so finished threads wait for the next run.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};

/// A run's work; what it returns reports the result to the caller, which the worker calls only
/// after counting itself idle again, so that the caller's next run finds it.
type Job = Box<dyn FnOnce() -> Report + Send>;
type Report = Box<dyn FnOnce() + Send>;

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

/// A pool that grows to as many threads as there are runs in flight at once.
pub(super) struct GuestThreads {
    queue: Mutex<Queue>,
    ready: Condvar,
    stack_size: usize,
}

struct Queue {
    jobs: VecDeque<Job>,
    idle: usize,
    closed: bool,
}

impl GuestThreads {
    pub(super) fn new(stack_size: usize) -> Arc<Self> {
        Arc::new(GuestThreads {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                idle: 0,
                closed: false,
            }),
            ready: Condvar::new(),
            stack_size,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `job` on one of the pool's threads and returns what it returns; a panic in `job`
    /// resumes on the caller's thread.
    pub(super) fn run<R: Send + 'static>(
        self: &Arc<Self>,
        job: impl FnOnce() -> R + Send + 'static,
    ) -> std::io::Result<R> {
        let (done, result) = mpsc::sync_channel(1);
        let job: Job = Box::new(move || {
            let result = std::panic::catch_unwind(AssertUnwindSafe(job));
            Box::new(move || {
                let _ = done.send(result);
            })
        });
        let mut queue = self.lock();
        queue.jobs.push_back(job);
        if queue.idle == 0 {
            drop(queue);
            let pool = Arc::clone(self);
            std::thread::Builder::new()
                .name("spar-guest".into())
                .stack_size(self.stack_size)
                .spawn(move || pool.work())?;
        } else {
            drop(queue);
            self.ready.notify_one();
        }
        match result.recv() {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(_) => unreachable!("a queued job always runs and reports"),
        }
    }

    fn work(&self) {
        let mut queue = self.lock();
        queue.idle += 1;
        loop {
            while queue.jobs.is_empty() && !queue.closed {
                queue = self.ready.wait(queue).unwrap_or_else(|e| e.into_inner());
            }
            queue.idle -= 1;
            let Some(job) = queue.jobs.pop_front() else {
                return;
            };
            drop(queue);
            let report = job();
            self.lock().idle += 1;
            report();
            queue = self.lock();
        }
    }

    /// Lets the idle threads exit once the queue is empty.
    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }
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
        let first = pool.run(|| std::thread::current().id()).unwrap();
        // Deeper than a default 2 MiB thread allows.
        fn depth(n: u32) -> u32 {
            let pad = std::hint::black_box([0u8; 1024]);
            if n == 0 {
                u32::from(pad[0])
            } else {
                depth(n - 1) + 1
            }
        }
        assert_eq!(pool.run(|| depth(8_000)).unwrap(), 8_000);
        assert_eq!(pool.run(|| std::thread::current().id()).unwrap(), first);
        let panicked = std::panic::catch_unwind(AssertUnwindSafe(|| pool.run(|| panic!("boom"))));
        assert!(panicked.is_err());
        assert_eq!(
            pool.run(|| 7).unwrap(),
            7,
            "a panicking job leaves the pool working"
        );
        pool.close();
    }
}
