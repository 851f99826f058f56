//! Which pages of a guest's memory a run wrote, as the kernel saw them: the memory is registered
//! for asynchronous write protection (userfaultfd's `WP_ASYNC`, Linux 6.7+), the first write to a
//! protected page only marks it written (no signal, no handler thread), and `PAGEMAP_SCAN` lists
//! the written pages and protects them again.
//!
//! spar keeps an instance resumed from an image between runs and, before the next run, writes
//! back only the pages the last run wrote instead of the whole image (see [`super::slots`]).
//! Pages that runs keep writing are left writable and written back every time
//! ([`Tracked::rearm`]), which spares each run a fault per page.
//! Where the kernel or a seccomp filter refuses userfaultfd, [`Tracked::register`] says so with
//! `None` and every run gets a fresh instance, as before.

use std::ops::Range;

/// Whether the kernel tracks written pages for spar here.
pub(super) fn available() -> bool {
    sys::tracker().is_some()
}

/// A registered range of guest memory. Dropping it unregisters the range, which also lifts the
/// protection, so the pool's own reset of the slot (which counts every present page as
/// written) sees every page the guest touched.
pub(super) struct Tracked {
    start: usize,
    len: usize,
    /// What the last [`Tracked::rearm`] was given: the pages written before it.
    last: Vec<Range<usize>>,
    /// Calls to [`Tracked::rearm`] so far.
    rearms: u32,
    /// The most fuel a run used since the last rearm that protected everything.
    heaviest: u64,
    /// How many runs in a row used far less than that ([`LIGHTER`]).
    lighter_runs: u32,
}

impl Tracked {
    /// Registers `len` bytes at `start` (page-aligned, in a live mapping that outlives the
    /// returned value) and protects every page of it; `None` where tracking is not available.
    pub(super) fn register(start: *mut u8, len: usize) -> Option<Tracked> {
        let tracker = sys::tracker()?;
        let tracked = Tracked {
            start: start as usize,
            len,
            last: Vec::new(),
            rearms: 0,
            heaviest: 0,
            lighter_runs: 0,
        };
        tracker.register(tracked.start, len).then_some(())?;
        // From here on, dropping `tracked` unregisters.
        tracked.protect()?;
        Some(tracked)
    }

    /// The ranges (offsets from the start) of pages that hold bytes of their own: present, and
    /// neither the shared zero page nor a page of a file mapped copy-on-write, which are
    /// still as the mapping began. (The pool's reset looks for the same pages.)
    pub(super) fn resident(&self) -> Option<Vec<Range<usize>>> {
        self.collect(sys::Scan::Resident)
    }

    /// The ranges (offsets from the start) written since the last [`Tracked::protect`], in
    /// order; `None` if the scan failed.
    pub(super) fn written(&self) -> Option<Vec<Range<usize>>> {
        self.collect(sys::Scan::Written)
    }

    /// Protects every written page again, so the next run's writes are seen.
    pub(super) fn protect(&self) -> Option<()> {
        sys::tracker()?.scan(self.start, self.len, sys::Scan::Protect, &mut |_| {})
    }

    /// Protects again the pages in `written` (what [`Tracked::written`] listed, written back
    /// since and nothing else written) that the run before did not write too. Pages that two
    /// runs in a row wrote stay writable: the next run very likely writes them again, and a
    /// protected page costs it a fault on its first write (about 0.6 us; a `-c pass` run writes
    /// the same 120 pages every time). They keep being listed as written, so they are still
    /// written back before every run; every [`RELEARN`]th call protects them all again, so a
    /// page that runs stopped writing stops being written back.
    ///
    /// `fuel` is what the run that wrote `written` used. Runs that use far less than the
    /// heaviest since everything was last protected ([`LIGHTER`]) are another kind of work
    /// (`python -c` after test suites), and the pages the heavier runs kept writable would be
    /// written back before each of them until the next relearn (2,000 pages instead of 120).
    /// So the second such run in a row protects them all. Not the first: where heavy and light
    /// runs alternate, the next heavy run then still finds its pages writable.
    pub(super) fn rearm(&mut self, written: Vec<Range<usize>>, fuel: u64) -> Option<()> {
        self.rearms = self.rearms.wrapping_add(1);
        if fuel.saturating_mul(LIGHTER) < self.heaviest {
            self.lighter_runs += 1;
        } else {
            self.lighter_runs = 0;
        }
        self.heaviest = self.heaviest.max(fuel);
        let lighter = self.lighter_runs >= 2;
        if !lighter && !self.rearms.is_multiple_of(RELEARN) {
            let protect = subtract(&written, &self.last);
            self.last = written;
            return self.protect_stretches(&protect);
        }
        self.heaviest = fuel;
        self.lighter_runs = 0;
        // What lighter runs wrote themselves is not known (kept pages are listed either way):
        // the next rearm keeps nothing writable.
        self.last = if lighter { Vec::new() } else { written.clone() };
        self.protect_stretches(&written)
    }

    /// Protects the written pages among `ranges`, walking only the stretches around them: a
    /// light run writes a few hundred pages within 32 of the memory's 113 MB, and walking all
    /// of it cost as much as writing them back.
    fn protect_stretches(&self, ranges: &[Range<usize>]) -> Option<()> {
        let tracker = sys::tracker()?;
        for span in spans(ranges) {
            let (start, len) = (self.start + span.start, span.len());
            tracker.scan(start, len, sys::Scan::Protect, &mut |_| {})?;
        }
        Some(())
    }

    fn collect(&self, scan: sys::Scan) -> Option<Vec<Range<usize>>> {
        let mut ranges = Vec::new();
        sys::tracker()?.scan(self.start, self.len, scan, &mut |r| {
            ranges.push(r.start - self.start..r.end - self.start)
        })?;
        Some(ranges)
    }
}

/// How often [`Tracked::rearm`] protects every written page, pages runs keep writing included.
const RELEARN: u32 = 16;

/// How many times less fuel than the heaviest run before makes a run another kind of work, for
/// [`Tracked::rearm`]: a suite run uses 1.5e9, `python -c pass` 1e6, and runs of one kind
/// rarely differ by more than 2x.
const LIGHTER: u64 = 8;

/// The parts of `ranges` outside `minus` (both in order, neither overlapping itself).
fn subtract(ranges: &[Range<usize>], minus: &[Range<usize>]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut minus = minus.iter().peekable();
    for range in ranges {
        let mut at = range.start;
        while let Some(cut) = minus.peek() {
            if cut.end <= at {
                minus.next();
                continue;
            }
            if cut.start >= range.end {
                break;
            }
            if cut.start > at {
                out.push(at..cut.start);
            }
            at = cut.end.min(range.end);
            if cut.end > range.end {
                break;
            }
            minus.next();
        }
        if at < range.end {
            out.push(at..range.end);
        }
    }
    out
}

/// Gaps between written ranges narrower than this are walked rather than split at: a walk
/// costs a few nanoseconds a page, a separate scan a system call and a TLB flush.
const SPAN_GAP: usize = 1 << 20;

/// `ranges` (in order) merged across gaps narrower than [`SPAN_GAP`].
fn spans(ranges: &[Range<usize>]) -> Vec<Range<usize>> {
    let mut spans: Vec<Range<usize>> = Vec::new();
    for range in ranges {
        match spans.last_mut() {
            Some(last) if range.start - last.end < SPAN_GAP => last.end = range.end,
            _ => spans.push(range.clone()),
        }
    }
    spans
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Some(tracker) = sys::tracker() {
            tracker.unregister(self.start, self.len);
        }
    }
}

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod sys {
    //! The kernel interface (linux/userfaultfd.h, linux/fs.h); numbers for the generic ioctl
    //! encoding that x86-64 and AArch64 share.
    use std::fs::File;
    use std::ops::Range;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::sync::LazyLock;

    const UFFD_API: u64 = 0xAA;
    const UFFD_USER_MODE_ONLY: libc::c_int = 1;
    const UFFD_FEATURE_WP_UNPOPULATED: u64 = 1 << 13;
    const UFFD_FEATURE_WP_ASYNC: u64 = 1 << 15;
    const UFFDIO_REGISTER_MODE_WP: u64 = 1 << 1;
    const UFFDIO_API: libc::c_ulong = 0xc018_aa3f;
    const UFFDIO_REGISTER: libc::c_ulong = 0xc020_aa00;
    const UFFDIO_UNREGISTER: libc::c_ulong = 0x8010_aa01;
    const PAGEMAP_SCAN: libc::c_ulong = 0xc060_6610;
    const PM_SCAN_WP_MATCHING: u64 = 1 << 0;
    const PM_SCAN_CHECK_WPASYNC: u64 = 1 << 1;
    const PAGE_IS_WRITTEN: u64 = 1 << 1;
    const PAGE_IS_FILE: u64 = 1 << 2;
    const PAGE_IS_PRESENT: u64 = 1 << 3;
    const PAGE_IS_PFNZERO: u64 = 1 << 5;

    /// What a scan looks for.
    #[derive(Clone, Copy)]
    pub(in crate::sandbox) enum Scan {
        /// Pages written since they were last protected.
        Written,
        /// The same, protected again as they are reported.
        Protect,
        /// Present pages of the process's own: not the zero page, not a file's.
        Resident,
    }

    impl Scan {
        /// The scan's flags, the categories a page must have and those inverted first.
        fn args(self) -> (u64, u64, u64) {
            let own = PAGE_IS_PFNZERO | PAGE_IS_FILE;
            match self {
                Scan::Written => (PM_SCAN_CHECK_WPASYNC, PAGE_IS_WRITTEN, 0),
                Scan::Protect => (
                    PM_SCAN_CHECK_WPASYNC | PM_SCAN_WP_MATCHING,
                    PAGE_IS_WRITTEN,
                    0,
                ),
                Scan::Resident => (0, PAGE_IS_PRESENT | own, own),
            }
        }
    }

    #[repr(C)]
    struct UffdioApi {
        api: u64,
        features: u64,
        ioctls: u64,
    }

    #[repr(C)]
    struct UffdioRange {
        start: u64,
        len: u64,
    }

    #[repr(C)]
    struct UffdioRegister {
        range: UffdioRange,
        mode: u64,
        ioctls: u64,
    }

    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct PageRegion {
        start: u64,
        end: u64,
        categories: u64,
    }

    #[repr(C)]
    #[derive(Default)]
    struct PmScanArg {
        size: u64,
        flags: u64,
        start: u64,
        end: u64,
        walk_end: u64,
        vec: u64,
        vec_len: u64,
        max_pages: u64,
        category_inverted: u64,
        category_mask: u64,
        category_anyof_mask: u64,
        return_mask: u64,
    }

    /// One userfaultfd and the page map, for the whole process.
    pub(super) struct Tracker {
        uffd: OwnedFd,
        pagemap: File,
    }

    static TRACKER: LazyLock<Option<Tracker>> = LazyLock::new(Tracker::open);

    pub(super) fn tracker() -> Option<&'static Tracker> {
        TRACKER.as_ref()
    }

    impl Tracker {
        fn open() -> Option<Tracker> {
            let flags = libc::O_CLOEXEC | libc::O_NONBLOCK | UFFD_USER_MODE_ONLY;
            // SAFETY: a plain system call; a non-negative result is a descriptor we now own.
            let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, flags) };
            if fd < 0 {
                return None;
            }
            // SAFETY: as above.
            let uffd = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
            let mut api = UffdioApi {
                api: UFFD_API,
                features: UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED,
                ioctls: 0,
            };
            // SAFETY: UFFDIO_API reads and writes the struct passed, which lives across the call.
            if unsafe { libc::ioctl(uffd.as_raw_fd(), UFFDIO_API, &mut api) } != 0 {
                return None;
            }
            let pagemap = File::open("/proc/self/pagemap").ok()?;
            Some(Tracker { uffd, pagemap })
        }

        pub(super) fn register(&self, start: usize, len: usize) -> bool {
            let mut register = UffdioRegister {
                range: UffdioRange {
                    start: start as u64,
                    len: len as u64,
                },
                mode: UFFDIO_REGISTER_MODE_WP,
                ioctls: 0,
            };
            // SAFETY: registration changes how faults in the range are handled, not its
            // contents; with WP_ASYNC the kernel resolves every fault itself.
            unsafe { libc::ioctl(self.uffd.as_raw_fd(), UFFDIO_REGISTER, &mut register) == 0 }
        }

        pub(super) fn unregister(&self, start: usize, len: usize) {
            let range = UffdioRange {
                start: start as u64,
                len: len as u64,
            };
            // SAFETY: as for registering; unregistering also removes the write protection.
            unsafe { libc::ioctl(self.uffd.as_raw_fd(), UFFDIO_UNREGISTER, &range) };
        }

        /// Calls `found` with each run of pages in `len` bytes at `start` that `scan` looks
        /// for; `None` if the kernel refused.
        pub(super) fn scan(
            &self,
            start: usize,
            len: usize,
            scan: Scan,
            found: &mut dyn FnMut(Range<usize>),
        ) -> Option<()> {
            let (flags, category_mask, category_inverted) = scan.args();
            let mut regions = [PageRegion::default(); 512];
            let end = (start + len) as u64;
            let mut from = start as u64;
            while from < end {
                let mut arg = PmScanArg {
                    size: size_of::<PmScanArg>() as u64,
                    flags,
                    start: from,
                    end,
                    vec: regions.as_mut_ptr() as u64,
                    vec_len: regions.len() as u64,
                    category_mask,
                    category_inverted,
                    // Reporting no categories merges neighbouring pages into one region.
                    ..PmScanArg::default()
                };
                // SAFETY: the kernel writes at most `vec_len` regions into `regions` and the
                // walk's end into `arg`; it reads and protects only the scanned range.
                let n = unsafe { libc::ioctl(self.pagemap.as_raw_fd(), PAGEMAP_SCAN, &mut arg) };
                if n < 0 || arg.walk_end <= from {
                    return None;
                }
                for region in &regions[..n as usize] {
                    found(region.start as usize..region.end as usize);
                }
                from = arg.walk_end;
            }
            Some(())
        }
    }
}

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
mod sys {
    //! No tracking: every resumed run gets a fresh instance.
    use std::ops::Range;

    pub(super) enum Tracker {}

    #[derive(Clone, Copy)]
    pub(in crate::sandbox) enum Scan {
        Written,
        Protect,
        Resident,
    }

    pub(super) fn tracker() -> Option<&'static Tracker> {
        None
    }

    impl Tracker {
        pub(super) fn register(&self, _: usize, _: usize) -> bool {
            match *self {}
        }
        pub(super) fn unregister(&self, _: usize, _: usize) {
            match *self {}
        }
        pub(super) fn scan(
            &self,
            _: usize,
            _: usize,
            _: Scan,
            _: &mut dyn FnMut(Range<usize>),
        ) -> Option<()> {
            match *self {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: usize = 4096;

    /// A private anonymous mapping, unmapped on drop.
    struct Mapping(*mut u8, usize);

    impl Mapping {
        fn new(len: usize) -> Mapping {
            // SAFETY: a fresh private mapping that only this test uses.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            assert_ne!(ptr, libc::MAP_FAILED);
            Mapping(ptr.cast(), len)
        }

        fn write(&self, page: usize) {
            // SAFETY: `page` is inside the mapping.
            unsafe { self.0.add(page * PAGE + 7).write_volatile(1) };
        }
    }

    impl Drop for Mapping {
        fn drop(&mut self) {
            // SAFETY: unmaps what `new` mapped.
            unsafe { libc::munmap(self.0.cast(), self.1) };
        }
    }

    #[test]
    fn reports_exactly_the_pages_written_since_the_last_protect() {
        let memory = Mapping::new(64 * PAGE);
        memory.write(3); // populated before registering
        let Some(tracked) = Tracked::register(memory.0, memory.1) else {
            // Said, not hidden: the kernel or a seccomp filter refuses userfaultfd here.
            eprintln!("userfaultfd write protection is not available on this machine");
            assert!(sys::tracker().is_none());
            return;
        };
        assert_eq!(tracked.written(), Some(vec![]));
        let pages = |r: Range<usize>| (r.start / PAGE, r.end / PAGE);
        let resident: Vec<_> = tracked.resident().unwrap().into_iter().map(pages).collect();
        assert_eq!(resident, [(3, 4)], "only the page written before");
        for page in [3, 4, 9, 63] {
            memory.write(page);
        }
        let written: Vec<_> = tracked.written().unwrap().into_iter().map(pages).collect();
        assert_eq!(written, [(3, 5), (9, 10), (63, 64)]);
        // Reading does not protect again; protecting does.
        assert_eq!(tracked.written().unwrap().len(), 3);
        tracked.protect().unwrap();
        assert_eq!(tracked.written(), Some(vec![]));
        memory.write(10);
        let written: Vec<_> = tracked.written().unwrap().into_iter().map(pages).collect();
        assert_eq!(written, [(10, 11)]);

        // Rearming protects what one run wrote, then leaves writable what two runs in a row
        // wrote (still listed as written), until every RELEARN-th time protects it all.
        let far = 64 * PAGE + SPAN_GAP;
        let memory = Mapping::new(far + 8 * PAGE);
        let mut tracked = Tracked::register(memory.0, memory.1).unwrap();
        let pages_of = |tracked: &Tracked| -> Vec<(usize, usize)> {
            tracked.written().unwrap().into_iter().map(pages).collect()
        };
        for page in [0, 2, 5, far / PAGE + 1] {
            memory.write(page);
        }
        tracked.rearm(tracked.written().unwrap(), 100).unwrap();
        assert_eq!(pages_of(&tracked), []);
        for page in [2, 6] {
            memory.write(page);
        }
        tracked.rearm(tracked.written().unwrap(), 100).unwrap();
        assert_eq!(pages_of(&tracked), [(2, 3)], "written by two runs in a row");
        for _ in 2..RELEARN - 1 {
            tracked.rearm(tracked.written().unwrap(), 100).unwrap();
            assert_eq!(pages_of(&tracked), [(2, 3)]);
        }
        tracked.rearm(tracked.written().unwrap(), 100).unwrap();
        assert_eq!(
            pages_of(&tracked),
            [],
            "the RELEARN-th rearm protects it again"
        );

        // Two runs in a row far lighter than the heaviest before protect what the heavier ones
        // kept writable; one lighter run between heavy ones does not.
        for _ in 0..2 {
            memory.write(2);
            tracked.rearm(tracked.written().unwrap(), 100).unwrap();
        }
        assert_eq!(pages_of(&tracked), [(2, 3)]);
        tracked
            .rearm(tracked.written().unwrap(), 100 / LIGHTER)
            .unwrap();
        assert_eq!(pages_of(&tracked), [(2, 3)], "one lighter run keeps them");
        memory.write(2);
        tracked.rearm(tracked.written().unwrap(), 100).unwrap();
        tracked
            .rearm(tracked.written().unwrap(), 100 / LIGHTER)
            .unwrap();
        assert_eq!(
            pages_of(&tracked),
            [(2, 3)],
            "a heavy run in between starts again"
        );
        tracked
            .rearm(tracked.written().unwrap(), 100 / LIGHTER)
            .unwrap();
        assert_eq!(
            pages_of(&tracked),
            [],
            "the second lighter run in a row protects them"
        );
        memory.write(2);
        tracked
            .rearm(tracked.written().unwrap(), 100 / LIGHTER)
            .unwrap();
        assert_eq!(
            pages_of(&tracked),
            [],
            "nor does the next: what they wrote is not known"
        );
    }

    #[test]
    fn subtract_keeps_what_the_second_list_does_not_cover() {
        let r = |a: usize, b: usize| a..b;
        assert_eq!(subtract(&[r(0, 10)], &[]), [r(0, 10)]);
        assert!(subtract(&[r(0, 10)], &[r(0, 10)]).is_empty());
        assert_eq!(
            subtract(&[r(0, 10)], &[r(2, 4), r(6, 7)]),
            [r(0, 2), r(4, 6), r(7, 10)]
        );
        assert_eq!(
            subtract(&[r(0, 5), r(8, 12), r(20, 30)], &[r(3, 9), r(11, 25)]),
            [r(0, 3), r(9, 11), r(25, 30)]
        );
        assert_eq!(subtract(&[r(5, 6)], &[r(0, 1), r(9, 10)]), [r(5, 6)]);
    }

    #[test]
    fn spans_merge_ranges_across_narrow_gaps_only() {
        let ranges = [
            0..PAGE,
            3 * PAGE..4 * PAGE,
            SPAN_GAP + 4 * PAGE..SPAN_GAP + 5 * PAGE,
        ];
        let end = SPAN_GAP + 5 * PAGE;
        assert_eq!(spans(&ranges), [0..4 * PAGE, SPAN_GAP + 4 * PAGE..end]);
        assert_eq!(spans(&[]), Vec::<Range<usize>>::new());
    }
}
