//! Bounds-checked access to the guest's linear memory. Every pointer comes from the guest, so
//! every access is checked and a bad one is `EFAULT`, never a host panic.

use crate::sandbox::abi::{size, Errno};

/// `base + add` as a guest address; past the 32-bit address space is `EFAULT`.
pub(super) fn offset(base: u32, add: usize) -> Result<u32, Errno> {
    u32::try_from(base as usize + add).map_err(|_| Errno::Fault)
}

/// The guest's memory for the duration of one call.
pub(super) struct GuestMemory<'a> {
    bytes: &'a mut [u8],
}

impl<'a> GuestMemory<'a> {
    pub(super) fn new(bytes: &'a mut [u8]) -> Self {
        GuestMemory { bytes }
    }

    fn range(&self, ptr: u32, len: usize) -> Result<std::ops::Range<usize>, Errno> {
        let start = ptr as usize;
        let end = start.checked_add(len).ok_or(Errno::Fault)?;
        if end > self.bytes.len() {
            return Err(Errno::Fault);
        }
        Ok(start..end)
    }

    /// `len` bytes at `ptr`.
    pub(super) fn slice(&self, ptr: u32, len: u32) -> Result<&[u8], Errno> {
        let range = self.range(ptr, len as usize)?;
        Ok(&self.bytes[range])
    }

    /// `len` writable bytes at `ptr`.
    pub(super) fn slice_mut(&mut self, ptr: u32, len: u32) -> Result<&mut [u8], Errno> {
        let range = self.range(ptr, len as usize)?;
        Ok(&mut self.bytes[range])
    }

    /// A UTF-8 string (a path); anything else is `EILSEQ`.
    pub(super) fn str(&self, ptr: u32, len: u32) -> Result<&str, Errno> {
        std::str::from_utf8(self.slice(ptr, len)?).map_err(|_| Errno::Ilseq)
    }

    fn array<const N: usize>(&self, ptr: u32) -> Result<[u8; N], Errno> {
        let range = self.range(ptr, N)?;
        Ok(self.bytes[range].try_into().expect("range has length N"))
    }

    pub(super) fn u8(&self, ptr: u32) -> Result<u8, Errno> {
        Ok(self.array::<1>(ptr)?[0])
    }

    pub(super) fn u16(&self, ptr: u32) -> Result<u16, Errno> {
        Ok(u16::from_le_bytes(self.array(ptr)?))
    }

    pub(super) fn u32(&self, ptr: u32) -> Result<u32, Errno> {
        Ok(u32::from_le_bytes(self.array(ptr)?))
    }

    pub(super) fn u64(&self, ptr: u32) -> Result<u64, Errno> {
        Ok(u64::from_le_bytes(self.array(ptr)?))
    }

    /// Writes `bytes` at `ptr`.
    pub(super) fn write(&mut self, ptr: u32, bytes: &[u8]) -> Result<(), Errno> {
        let range = self.range(ptr, bytes.len())?;
        self.bytes[range].copy_from_slice(bytes);
        Ok(())
    }

    pub(super) fn write_u32(&mut self, ptr: u32, value: u32) -> Result<(), Errno> {
        self.write(ptr, &value.to_le_bytes())
    }

    pub(super) fn write_u64(&mut self, ptr: u32, value: u64) -> Result<(), Errno> {
        self.write(ptr, &value.to_le_bytes())
    }

    /// The buffers of a ciovec array, to write from.
    pub(super) fn gather(&self, ptr: u32, count: u32) -> Result<Vec<&[u8]>, Errno> {
        self.iovecs(ptr, count)?
            .into_iter()
            .map(|(buf, len)| self.slice(buf, len))
            .collect()
    }

    /// The `(pointer, length)` pairs of an iovec array, each checked to lie in memory.
    pub(super) fn iovecs(&self, ptr: u32, count: u32) -> Result<Vec<(u32, u32)>, Errno> {
        // Linux's IOV_MAX: the host holds one entry per iovec.
        if count > 1024 {
            return Err(Errno::Inval);
        }
        let total = (count as usize)
            .checked_mul(size::IOVEC)
            .ok_or(Errno::Fault)?;
        self.range(ptr, total)?;
        (0..count)
            .map(|i| {
                let at = ptr + i * size::IOVEC as u32;
                let (buf, len) = (self.u32(at)?, self.u32(at + 4)?);
                self.range(buf, len as usize)?;
                Ok((buf, len))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_bounds_is_a_fault_not_a_panic() {
        let mut bytes = vec![0u8; 16];
        let mut mem = GuestMemory::new(&mut bytes);
        assert_eq!(mem.slice(10, 7), Err(Errno::Fault));
        assert_eq!(mem.slice(u32::MAX, 2), Err(Errno::Fault));
        assert_eq!(mem.u64(12), Err(Errno::Fault));
        assert_eq!(mem.write_u32(14, 1), Err(Errno::Fault));
        assert_eq!(mem.iovecs(0, 1000), Err(Errno::Fault));
        assert_eq!(mem.iovecs(0, u32::MAX), Err(Errno::Inval));
        mem.write_u32(0, 8).unwrap();
        mem.write_u32(4, 100).unwrap();
        assert_eq!(
            mem.iovecs(0, 1),
            Err(Errno::Fault),
            "the iovec's buffer is out of bounds"
        );
        mem.write_u32(4, 8).unwrap();
        assert_eq!(mem.iovecs(0, 1), Ok(vec![(8, 8)]));
    }

    #[test]
    fn strings_must_be_utf8() {
        let mut bytes = b"ok\xff".to_vec();
        let mem = GuestMemory::new(&mut bytes);
        assert_eq!(mem.str(0, 2), Ok("ok"));
        assert_eq!(mem.str(0, 3), Err(Errno::Ilseq));
    }
}
