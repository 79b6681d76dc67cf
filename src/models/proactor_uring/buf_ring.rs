//! A provided-buffer ring (`IORING_REGISTER_PBUF_RING`, Linux 5.19+): a fixed set of
//! equal buffers the kernel picks from when a multishot recv completes, so that no buffer is
//! committed to a connection that has nothing to read.
//!
//! The ring is an array of `io_uring_buf` entries shared with the kernel: the kernel consumes
//! from its head, we give buffers back at its tail. Giving back is a plain write to the entry;
//! the new tail is published once per loop iteration with one release store.

use std::alloc::{self, Layout};
use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::IoUring;

/// The ring entries' memory must be page aligned.
const PAGE: usize = 4096;

pub(super) struct BufRing {
    /// `entries` `io_uring_buf` entries, page aligned, shared with the kernel.
    ring: *mut BufRingEntry,
    ring_layout: Layout,
    /// The buffers themselves, `entries * size` bytes. Allocated zeroed, so pages the kernel
    /// never fills are never resident.
    memory: Box<[u8]>,
    entries: u16,
    size: u32,
    group: u16,
    /// Our tail, ahead of the published one by the buffers given back since `publish`.
    tail: u16,
    /// Buffers the kernel has filled and we have not given back yet.
    held: usize,
}

impl BufRing {
    /// Allocates `entries` (a power of two, at most 32768) buffers of `size` bytes, registers
    /// them with `ring` as buffer group `group`, and provides all of them.
    pub(super) fn new(ring: &IoUring, entries: u16, size: u32, group: u16) -> io::Result<BufRing> {
        assert!(entries.is_power_of_two() && entries <= 32768);
        let ring_layout =
            Layout::from_size_align(entries as usize * std::mem::size_of::<BufRingEntry>(), PAGE)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: the layout has a non-zero size (entries >= 1).
        let ring_mem = unsafe { alloc::alloc_zeroed(ring_layout) } as *mut BufRingEntry;
        if ring_mem.is_null() {
            return Err(io::Error::from(io::ErrorKind::OutOfMemory));
        }
        let mut bufs = BufRing {
            ring: ring_mem,
            ring_layout,
            memory: vec![0u8; entries as usize * size as usize].into_boxed_slice(),
            entries,
            size,
            group,
            tail: 0,
            held: 0,
        };
        // SAFETY: the entries' memory is valid, page aligned and lives as long as `bufs`; the
        // owner drops the io_uring instance (which unregisters the group) before `bufs`, and
        // never with a recv in flight (see `Worker`).
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(ring_mem as u64, entries, group, 0)?;
        }
        for bid in 0..entries {
            bufs.push(bid);
        }
        bufs.publish();
        Ok(bufs)
    }

    pub(super) fn group(&self) -> u16 {
        self.group
    }

    pub(super) fn entries(&self) -> u16 {
        self.entries
    }

    pub(super) fn size(&self) -> u32 {
        self.size
    }

    /// Buffers the kernel can still fill.
    pub(super) fn available(&self) -> usize {
        self.entries as usize - self.held
    }

    /// Counts buffer `bid` as filled by the kernel (a recv completion named it).
    pub(super) fn taken(&mut self, bid: u16) {
        debug_assert!(bid < self.entries);
        self.held += 1;
    }

    /// The first `len` bytes of buffer `bid`.
    pub(super) fn slice(&self, bid: u16, len: usize) -> &[u8] {
        let start = bid as usize * self.size as usize;
        &self.memory[start..start + len.min(self.size as usize)]
    }

    /// Gives buffer `bid` back to the kernel (visible at the next [`publish`](Self::publish)).
    pub(super) fn give_back(&mut self, bid: u16) {
        debug_assert!(self.held > 0);
        self.held -= 1;
        self.push(bid);
    }

    fn push(&mut self, bid: u16) {
        let index = (self.tail & (self.entries - 1)) as usize;
        let addr = self.memory.as_ptr() as u64 + bid as u64 * self.size as u64;
        // SAFETY: `index` is below `entries`, the ring's length; the kernel reads only entries
        // between its head and the published tail, and this one is past the published tail.
        let entry = unsafe { &mut *self.ring.add(index) };
        entry.set_addr(addr);
        entry.set_len(self.size);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Publishes the buffers given back since the last call.
    pub(super) fn publish(&mut self) {
        // SAFETY: the ring's first entry is initialised memory we own; its `resv` field is the
        // ring's tail, which the kernel reads and we alone write, with release ordering so
        // that the entries written before are visible first.
        unsafe {
            let tail = BufRingEntry::tail(self.ring) as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout; the io_uring instance that used it is
        // gone (its owner drops it first).
        unsafe { alloc::dealloc(self.ring as *mut u8, self.ring_layout) }
    }
}
