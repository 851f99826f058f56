//! Guest images: a reactor guest's memory after a prelude (interpreter started, pytest
//! imported), kept as the pages that differ from a fresh instance and copied into each later
//! run's fresh instance before its own code runs. A run then skips the work the prelude did.
//!
//! What an image may hold is checked at capture: the prelude must succeed, and no descriptor
//! beyond stdio and the preopened root may be open (a resumed run's descriptor table is new).
//! Only memory is restored: the reactor's one mutable global, its shadow-stack pointer, is back
//! at its initial value whenever an export returns, and its function table never changes.

use crate::bytes::{LeReader, SharedBytes};
use std::ops::Range as Span;
use std::time::Duration;

/// The granularity of the comparison with a fresh instance: a host page.
const CHUNK: usize = 4096;

/// Faults `range` in with one call when its memory is new (the first run in a pool slot, as in
/// every `spar test` process): 20 MB of image copied into fresh pages otherwise takes 5,000
/// page faults one at a time (a whole `spar run -c pass` process: 30 -> 26 ms, 7,405 -> 2,473
/// page faults).
/// A slot that ran before keeps its pages resident, and is left alone: walking 5,000 resident
/// pages cost reused slots 0.2 ms a run. Advice only: where it fails (kernels before 5.14),
/// the copy faults as before.
#[cfg(target_os = "linux")]
fn prefault(range: &mut [u8]) {
    const PAGE: usize = 4096;
    if range.is_empty() {
        return;
    }
    let start = range.as_mut_ptr() as usize;
    let first = start & !(PAGE - 1);
    let mut resident = 0u8;
    // SAFETY: `first` is the page holding the range's first byte, which the slice owns; mincore
    // and madvise only read the page tables and fault pages in, never change their contents.
    unsafe {
        let known = libc::mincore(first as *mut libc::c_void, PAGE, &mut resident) == 0;
        if known && resident & 1 == 1 {
            return;
        }
        let len = (start + range.len() - first).div_ceil(PAGE) * PAGE;
        libc::madvise(first as *mut libc::c_void, len, libc::MADV_POPULATE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn prefault(_: &mut [u8]) {}

/// The first bytes of a stored image, with the format's version.
const MAGIC: &[u8; 8] = b"sparimg1";

/// A captured guest memory, ready to restore into fresh instances of the same module.
pub struct GuestImage {
    /// The memory's size at capture, in bytes.
    pub(super) size: usize,
    /// Where each changed range's bytes are in `data`.
    ranges: Vec<Range>,
    /// The bytes of the ranges: a stored image (mapped from the cache, so a process reads
    /// only the pages its restores touch), or the captured pages one after another.
    data: SharedBytes,
    /// The guest clock's reading at capture; resumed runs' clocks start there.
    pub(super) elapsed: Duration,
}

/// A range of guest memory that differs from a fresh instance's.
#[derive(Clone, Debug, PartialEq)]
struct Range {
    /// Its offset in guest memory.
    at: usize,
    /// Where its bytes start in the image's data.
    from: usize,
    /// Its length in bytes.
    len: usize,
}

impl GuestImage {
    /// Keeps the parts of `captured` that differ from `fresh` (a new instance's memory).
    pub(super) fn diff(captured: &[u8], fresh: &[u8], elapsed: Duration) -> GuestImage {
        let mut ranges: Vec<Range> = Vec::new();
        let mut data = Vec::new();
        for (i, chunk) in captured.chunks(CHUNK).enumerate() {
            let at = i * CHUNK;
            let before = fresh
                .get(at..(at + chunk.len()).min(fresh.len()))
                .unwrap_or(&[]);
            let same = chunk.len() == before.len() && chunk == before
                || before.is_empty() && chunk.iter().all(|&b| b == 0);
            if same {
                continue;
            }
            match ranges.last_mut() {
                Some(last) if last.at + last.len == at => last.len += chunk.len(),
                _ => ranges.push(Range {
                    at,
                    from: data.len(),
                    len: chunk.len(),
                }),
            }
            data.extend_from_slice(chunk);
        }
        GuestImage {
            size: captured.len(),
            ranges,
            data: data.into(),
            elapsed,
        }
    }

    /// The changed ranges: their offsets in guest memory and their bytes.
    fn parts(&self) -> impl Iterator<Item = (usize, &[u8])> {
        self.ranges
            .iter()
            .map(|r| (r.at, &self.data[r.from..r.from + r.len]))
    }

    /// Writes the image over `memory`, which must already be `self.size` long.
    pub(super) fn restore(&self, memory: &mut [u8]) {
        for (at, bytes) in self.parts() {
            let target = &mut memory[at..at + bytes.len()];
            prefault(target);
            target.copy_from_slice(bytes);
        }
    }

    /// Writes back `range` of a memory that held this image before a run wrote to it: the
    /// image's bytes where it holds them, else `fresh`'s (a new instance's memory, kept as an
    /// image of an empty one), else zeros.
    pub(super) fn rewrite(&self, fresh: &GuestImage, memory: &mut [u8], range: Span<usize>) {
        let mut at = range.start;
        while at < range.end {
            let (end, bytes) = self.segment(at, range.end);
            match bytes {
                Some(bytes) => memory[at..end].copy_from_slice(bytes),
                None => {
                    let mut gap = at;
                    while gap < end {
                        let (until, bytes) = fresh.segment(gap, end);
                        match bytes {
                            Some(bytes) => memory[gap..until].copy_from_slice(bytes),
                            None => memory[gap..until].fill(0),
                        }
                        gap = until;
                    }
                }
            }
            at = end;
        }
    }

    /// From `at`, up to `limit`: where the image's next stretch ends, with its bytes when the
    /// image holds that stretch (`None`: a stretch the image leaves as a fresh instance has it).
    fn segment(&self, at: usize, limit: usize) -> (usize, Option<&[u8]>) {
        let i = self.ranges.partition_point(|r| r.at + r.len <= at);
        match self.ranges.get(i) {
            Some(r) if r.at <= at => {
                let end = (r.at + r.len).min(limit);
                let bytes = &self.data[r.from + (at - r.at)..r.from + (end - r.at)];
                (end, Some(bytes))
            }
            Some(r) => (r.at.min(limit), None),
            None => (limit, None),
        }
    }

    /// The image as bytes, to keep on disk: a header, then each range's offset, length and
    /// bytes (little-endian `u64`s).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.stored_bytes() + 32 + 16 * self.ranges.len());
        out.extend_from_slice(MAGIC);
        for n in [
            self.size as u64,
            self.elapsed.as_nanos() as u64,
            self.ranges.len() as u64,
        ] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        for (at, bytes) in self.parts() {
            out.extend_from_slice(&(at as u64).to_le_bytes());
            out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            out.extend_from_slice(bytes);
        }
        out
    }

    /// Reads what [`GuestImage::to_bytes`] wrote, without copying the ranges' bytes out of
    /// `stored`; `None` for anything else (a truncated or foreign file), never a panic.
    pub fn from_bytes(stored: SharedBytes) -> Option<GuestImage> {
        if !stored.starts_with(MAGIC) {
            return None;
        }
        let mut reader = LeReader::new(&stored, MAGIC.len());
        let (size, elapsed, count) = (reader.u64()?, reader.u64()?, reader.u64()?);
        let mut ranges = Vec::new();
        let mut end = 0;
        for _ in 0..count {
            let (at, len) = (reader.u64()?, reader.u64()?);
            if at < end || at.checked_add(len)? > size {
                return None;
            }
            end = at + len;
            let from = reader.position();
            reader.take(len)?;
            ranges.push(Range { at, from, len });
        }
        Some(GuestImage {
            size,
            ranges,
            data: stored,
            elapsed: Duration::from_nanos(elapsed as u64),
        })
    }

    /// The guest memory's size, in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.size
    }

    /// The bytes the image holds (and each restore copies).
    pub fn stored_bytes(&self) -> usize {
        self.ranges.iter().map(|r| r.len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_changed_pages_and_restores_them() {
        let fresh = vec![7u8; 3 * CHUNK];
        let mut captured = fresh.clone();
        captured[CHUNK + 5] = 1;
        captured.extend(vec![0u8; CHUNK]); // grown, still zero: nothing to keep
        captured.extend(vec![9u8; CHUNK]); // grown with data
        let image = GuestImage::diff(&captured, &fresh, Duration::ZERO);
        assert_eq!(image.stored_bytes(), 2 * CHUNK);
        assert_eq!(image.memory_bytes(), 5 * CHUNK);
        let mut memory = fresh.clone();
        memory.resize(5 * CHUNK, 0);
        image.restore(&mut memory);
        assert_eq!(memory, captured);

        // A run writes over parts the image holds, parts only a fresh instance holds and
        // parts that were zero; rewriting exactly what it wrote gives the image back.
        let fresh_image = GuestImage::diff(&fresh, &[], Duration::ZERO);
        let mut run = memory.clone();
        for at in [5, CHUNK + 9, 2 * CHUNK, 3 * CHUNK + 1, 5 * CHUNK - 1] {
            run[at] = 0xee;
        }
        image.rewrite(&fresh_image, &mut run, 1..3 * CHUNK + 2);
        image.rewrite(&fresh_image, &mut run, 5 * CHUNK - 4..5 * CHUNK);
        assert_eq!(run, captured);

        let stored = image.to_bytes();
        let back = GuestImage::from_bytes(stored.clone().into()).expect("round trip");
        assert_eq!(back.size, image.size);
        assert!(back.parts().eq(image.parts()));
        let mut again = fresh.clone();
        again.resize(5 * CHUNK, 0);
        back.restore(&mut again);
        assert_eq!(again, captured);
        for cut in [0, 8, 20, stored.len() - 1] {
            assert!(
                GuestImage::from_bytes(stored[..cut].into()).is_none(),
                "cut at {cut}"
            );
        }
        let mut foreign = stored.clone();
        foreign[0] = b'x';
        assert!(GuestImage::from_bytes(foreign.into()).is_none());
    }
}
