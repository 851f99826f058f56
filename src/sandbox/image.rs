//! Guest images: a reactor guest's memory after a prelude (interpreter started, pytest
//! imported), kept in a file laid out like the memory, which each later run maps copy-on-write
//! over its fresh instance's memory before its own code runs. A run then skips the work the
//! prelude did, and pays only for the pages it touches: no copy of the image.
//!
//! What an image may hold is checked at capture: the prelude must succeed, and no descriptor
//! beyond stdio and the preopened root may be open (a resumed run's descriptor table is new).
//! Only memory is restored: the reactor's one mutable global, its shadow-stack pointer, is back
//! at its initial value whenever an export returns, and its function table never changes.
//!
//! The mapping replaces pages that Wasmtime's pooling allocator manages. Its slots are reset
//! after each run by rewriting the pages the run wrote and letting the others show their
//! mapping, which it believes is the module's own data (copy-on-write) over zeros. So at the end
//! of a resumed run [`MappedImage`] maps a file of exactly that (the memory of a new instance,
//! [`FreshMemory`]) back over the image: the slot then holds what Wasmtime expects, and a later
//! run, resumed or not, starts from a new instance's memory.

use crate::fsutil::write_atomic_with;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Duration;

/// A host page: the unit of mappings, and of the holes left for zero pages.
const PAGE: usize = 4096;

/// The first bytes of a stored image, with the format's version.
const MAGIC: &[u8; 8] = b"sparimg2";

/// A guest's memory at the end of a successful prelude, as [`super::Sandbox::capture`] took it.
pub struct Captured {
    /// The memory's bytes.
    pub(super) memory: Vec<u8>,
    /// The guest clock's reading at capture.
    pub(super) elapsed: Duration,
}

/// A captured guest memory in a file, ready to map into fresh instances of the same module.
pub struct GuestImage {
    /// The memory's size at capture, in bytes (a multiple of the page size).
    pub(super) size: usize,
    /// The guest clock's reading at capture; resumed runs' clocks start there.
    pub(super) elapsed: Duration,
    /// Bytes of the pages that are not zero (what the file holds; zero pages are holes).
    stored: usize,
    /// A header page, then the memory.
    file: File,
}

impl GuestImage {
    /// Writes `captured` to `path` (beside it first, then renamed) and opens it.
    pub fn write(path: &Path, captured: &Captured) -> io::Result<GuestImage> {
        let memory = &captured.memory;
        let stored = memory
            .chunks(PAGE)
            .filter(|p| p.iter().any(|&b| b != 0))
            .count()
            * PAGE;
        let mut header = Vec::with_capacity(PAGE);
        header.extend_from_slice(MAGIC);
        for n in [memory.len(), captured.elapsed.as_nanos() as usize, stored] {
            header.extend_from_slice(&(n as u64).to_le_bytes());
        }
        write_atomic_with(path, |file| write_pages(file, &header, PAGE, memory))?;
        GuestImage::open(path)
            .ok_or_else(|| io::Error::other("the image written does not read back"))
    }

    /// The image stored at `path`; `None` for anything else (a missing, truncated or foreign
    /// file, or one of an older format).
    pub fn open(path: &Path) -> Option<GuestImage> {
        let file = File::open(path).ok()?;
        let mut header = [0u8; 32];
        file.read_exact_at(&mut header, 0).ok()?;
        if &header[..8] != MAGIC {
            return None;
        }
        let number = |at: usize| {
            let bytes: [u8; 8] = header[at..at + 8].try_into().expect("8 bytes");
            usize::try_from(u64::from_le_bytes(bytes)).ok()
        };
        let (size, elapsed, stored) = (number(8)?, number(16)?, number(24)?);
        let length = file.metadata().ok()?.len();
        if size % PAGE != 0 || stored > size || length != (PAGE + size) as u64 {
            return None;
        }
        Some(GuestImage {
            size,
            elapsed: Duration::from_nanos(elapsed as u64),
            stored,
            file,
        })
    }

    /// Maps the image copy-on-write over the first `self.size` bytes of `memory`, a fresh
    /// instance's memory grown to at least that; `fresh` is that memory as a new instance has
    /// it. Dropping the result puts `fresh` back.
    pub(super) fn map_over<'a>(
        &self,
        memory: &mut [u8],
        fresh: &'a FreshMemory,
    ) -> io::Result<MappedImage<'a>> {
        let memory = &mut memory[..self.size];
        let mapped = MappedImage {
            base: memory.as_mut_ptr(),
            size: memory.len(),
            fresh,
        };
        // SAFETY: `memory` is this run's own linear memory, borrowed mutably for the call, and
        // nothing else reads or writes it until the guest runs; the mapping has its length and
        // protection and holds the same kind of bytes. Failure aborts (see `remap`).
        unsafe { remap(mapped.base, self.size, Some((&self.file, PAGE as u64))) };
        Ok(mapped)
    }

    /// The guest memory's size, in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.size
    }

    /// The bytes of the image's pages that are not zero: what it keeps on disk.
    pub fn stored_bytes(&self) -> usize {
        self.stored
    }
}

/// The memory of a new instance of a module (its data segments over zeros), in a file beside
/// the compiled module: what a slot must show again after a resumed run.
pub(super) struct FreshMemory {
    file: File,
    len: usize,
}

impl FreshMemory {
    /// The file at `path`, written from `memory` (a new instance's memory) when it is missing
    /// or of another length. The path names the module by content, so a file of the right
    /// length holds this memory.
    pub(super) fn keep(path: &Path, memory: &[u8]) -> io::Result<FreshMemory> {
        let len = memory.len();
        if let Ok(file) = File::open(path) {
            if file.metadata()?.len() == len as u64 {
                return Ok(FreshMemory { file, len });
            }
        }
        write_atomic_with(path, |file| write_pages(file, &[], 0, memory))?;
        Ok(FreshMemory {
            file: File::open(path)?,
            len,
        })
    }
}

/// An image mapped over a run's memory; dropping it maps a new instance's memory back.
pub(super) struct MappedImage<'a> {
    base: *mut u8,
    size: usize,
    fresh: &'a FreshMemory,
}

impl Drop for MappedImage<'_> {
    fn drop(&mut self) {
        let fresh = self.fresh.len.min(self.size);
        // SAFETY: the run is over (this guard lives inside the function that runs it), the
        // range is still its memory (a pooling slot never moves), and what is mapped is what
        // the slot held before the image: the module's data over zeros.
        unsafe {
            remap(self.base, fresh, Some((&self.fresh.file, 0)));
            remap(self.base.add(fresh), self.size - fresh, None);
        }
    }
}

/// Maps `len` bytes at `at` copy-on-write from `file` at `offset`, or zeros, replacing what
/// was there.
///
/// # Safety
/// `at..at + len` must be page-aligned, read-write memory that nothing else uses meanwhile.
unsafe fn remap(at: *mut u8, len: usize, file: Option<(&File, u64)>) {
    if len == 0 {
        return;
    }
    let (flags, fd, offset) = match file {
        Some((file, offset)) => (libc::MAP_PRIVATE, file.as_raw_fd(), offset),
        None => (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0),
    };
    // SAFETY: the caller's contract; MAP_FIXED replaces the pages in place.
    let got = unsafe {
        libc::mmap(
            at.cast(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            flags | libc::MAP_FIXED,
            fd,
            offset as libc::off_t,
        )
    };
    if got != at.cast() {
        // A failed MAP_FIXED may leave the range unmapped, and a slot whose memory is not what
        // Wasmtime believes would give a later run another run's memory: stop instead.
        eprintln!(
            "spar: fatal: mapping guest memory failed ({}); stopping rather than risk a wrong result",
            io::Error::last_os_error()
        );
        std::process::abort();
    }
}

/// Writes `header` at the start of `file` and `memory` from `at` on, leaving zero pages as
/// holes; the file's length is `at + memory.len()`.
fn write_pages(file: &mut File, header: &[u8], at: usize, memory: &[u8]) -> io::Result<()> {
    file.set_len((at + memory.len()) as u64)?;
    file.write_all_at(header, 0)?;
    let mut run: Option<usize> = None;
    let pages = memory.len().div_ceil(PAGE);
    for page in 0..=pages {
        let bytes = memory.get(page * PAGE..((page + 1) * PAGE).min(memory.len()));
        let data = bytes.is_some_and(|b| b.iter().any(|&x| x != 0));
        match (data, run) {
            (true, None) => run = Some(page),
            (false, Some(start)) => {
                let end = (page * PAGE).min(memory.len());
                file.write_all_at(&memory[start * PAGE..end], (at + start * PAGE) as u64)?;
                run = None;
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("spar-image-{}-{name}", std::process::id()))
    }

    /// An anonymous read-write region, page-aligned, as a slot's memory is.
    fn region(len: usize) -> &'static mut [u8] {
        // SAFETY: a fresh private anonymous mapping, leaked for the test's duration.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(p, libc::MAP_FAILED);
            std::slice::from_raw_parts_mut(p.cast(), len)
        }
    }

    #[test]
    fn an_image_maps_over_memory_and_a_new_instance_comes_back() {
        let fresh_bytes: Vec<u8> = (0..2 * PAGE).map(|i| (i % 7) as u8).collect();
        let mut captured = vec![0u8; 5 * PAGE];
        captured[..2 * PAGE].copy_from_slice(&fresh_bytes);
        captured[PAGE + 5] = 99;
        captured[4 * PAGE + 1] = 42; // grown with data; page 3 grown and still zero
        let path = temp("img");
        let image = GuestImage::write(
            &path,
            &Captured {
                memory: captured.clone(),
                elapsed: Duration::from_millis(3),
            },
        )
        .unwrap();
        assert_eq!(
            (image.memory_bytes(), image.stored_bytes()),
            (5 * PAGE, 3 * PAGE)
        );
        let image = GuestImage::open(&path).expect("reads back");
        assert_eq!(image.elapsed, Duration::from_millis(3));
        let fresh = FreshMemory::keep(&temp("fresh"), &fresh_bytes).unwrap();

        let memory = region(5 * PAGE);
        memory[..2 * PAGE].copy_from_slice(&fresh_bytes);
        {
            let _mapped = image.map_over(memory, &fresh).unwrap();
            assert_eq!(&memory[..], &captured[..]);
            memory[3 * PAGE] = 1; // a run's own writes stay its own
        }
        let mut expected = fresh_bytes.clone();
        expected.resize(5 * PAGE, 0);
        assert_eq!(&memory[..], &expected[..], "a new instance's memory again");
        let again = GuestImage::open(&path).unwrap();
        {
            let _mapped = again.map_over(memory, &fresh).unwrap();
            assert_eq!(&memory[..], &captured[..], "the file is untouched by runs");
        }

        // Foreign, truncated and older files are not images.
        let bytes = std::fs::read(&path).unwrap();
        for cut in [0, 8, 20, bytes.len() - 1] {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            assert!(GuestImage::open(&path).is_none(), "cut at {cut}");
        }
        let mut foreign = bytes.clone();
        foreign[7] = b'1';
        std::fs::write(&path, &foreign).unwrap();
        assert!(GuestImage::open(&path).is_none());
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(temp("fresh"));
    }
}
