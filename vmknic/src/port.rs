//! The seam between the data plane and a vmknic's wire: a [`Port`] receives batches of frames
//! into an [`RxBatch`] the data plane owns and sends frames one at a time.
//!
//! Every frame crosses the seam in the layout of a TAP opened with `IFF_VNET_HDR`: a
//! virtio-net header (all zero for a plain frame, see [`crate::vnet`]) and the Ethernet frame
//! right after it. Two backends implement it: the [`Tap`] (one `read`/`write` system call per
//! frame) and [`MemPort`], two in-memory queues (as smoltcp's `TestingDevice`) that unit tests
//! and the per-packet benchmark drive without root.
//!
//! The batch is the data plane's memory, not the port's: a backend that completes several
//! reads at once (io_uring with a provided-buffer ring, a multi-queue TAP) fills the same slots,
//! and the stages never see which backend filled them.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;

use crate::tap::Tap;
use crate::vnet::VNET_HDR_LEN;

/// A vmknic's wire, as the data plane sees it.
pub trait Port {
    /// True when frames carry a meaningful virtio-net header: the port takes partial
    /// checksums and TCP super-frames ([`Port::send_offloaded`]) and may hand them out.
    fn offload(&self) -> bool;

    /// Fills free slots of `batch` with received frames, each as a virtio-net header and its
    /// frame, until the batch is full or nothing more is waiting. Returns how many it added;
    /// fewer than the batch had room for means the port is drained for now.
    fn recv(&mut self, batch: &mut RxBatch) -> io::Result<usize>;

    /// Sends one plain frame (complete checksums, no segmentation). `Ok(false)` when the port
    /// cannot take it now (a full queue): the caller counts a drop.
    fn send(&mut self, frame: &[u8]) -> io::Result<bool>;

    /// Sends a virtio-net header and its frame as [`Port::recv`] lays them out: a partial
    /// checksum or a super-frame goes as it is. Only for a port with [`Port::offload`].
    fn send_offloaded(&mut self, hdr_and_frame: &[u8]) -> io::Result<bool>;

    /// True when [`Port::send_offloaded_gather`] takes a frame in two pieces without first
    /// copying them into one (a gathering write, or one copy into the port's own queue).
    /// Ports without it are never handed one.
    fn gathers(&self) -> bool {
        false
    }

    /// [`Port::send_offloaded`] of a frame in two pieces: `head` (the virtio-net header and
    /// the frame's first bytes, its headers) and `tail` (the rest, a TCP payload sent from
    /// where it lies). Only for a port with [`Port::offload`] and [`Port::gathers`]; the
    /// default refuses it with an error.
    fn send_offloaded_gather(&mut self, head: &[u8], tail: &[u8]) -> io::Result<bool> {
        let _ = (head, tail);
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this port does not take a frame in pieces",
        ))
    }

    /// Takes back what [`Port::recv`] lent to `batch` (slots of the port's own memory) once
    /// the data plane is done with its frames, and empties the batch. Ports that copy into
    /// the batch have nothing to take back.
    fn release(&mut self, batch: &mut RxBatch) {
        batch.clear();
    }

    /// Hands the frames sent since the last flush to the wire, for ports that queue sends
    /// (io_uring submits them in one system call). The data plane calls it at the end of
    /// every turn and before it sleeps.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Receive slots in a port's own memory, which the kernel fills behind the program's back
/// (io_uring's provided buffers): one page-aligned allocation that is only ever reached
/// through raw pointers to single slots, never as a whole `&mut [u8]`, so that a slot the
/// kernel writes and a slot the data plane reads never alias.
#[derive(Debug)]
pub(crate) struct SlotMem {
    base: std::ptr::NonNull<u8>,
    layout: std::alloc::Layout,
    slot: usize,
    slots: usize,
}

// SAFETY: `SlotMem` owns its allocation (freed once, in `drop`) and hands out only raw
// pointers; which slot is whose (kernel or batch) is tracked by the port and the batch.
#[allow(unsafe_code)]
unsafe impl Send for SlotMem {}
// SAFETY: as for `Send`: shared references only read `base`, `slot` and `slots`.
#[allow(unsafe_code)]
unsafe impl Sync for SlotMem {}

impl SlotMem {
    /// `slots` zeroed slots of `slot` bytes, page-aligned. `None` if the allocation fails.
    pub(crate) fn new(slots: usize, slot: usize) -> Option<SlotMem> {
        let size = slots.checked_mul(slot)?.max(1);
        let layout = std::alloc::Layout::from_size_align(size, 4096).ok()?;
        // SAFETY: `layout` has a non-zero size.
        #[allow(unsafe_code)]
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        Some(SlotMem {
            base: std::ptr::NonNull::new(ptr)?,
            layout,
            slot,
            slots,
        })
    }

    /// Bytes per slot.
    pub(crate) fn slot_len(&self) -> usize {
        self.slot
    }

    /// Slots.
    pub(crate) fn slots(&self) -> usize {
        self.slots
    }

    /// The first byte of slot `id` (`id < slots`).
    pub(crate) fn slot_ptr(&self, id: u16) -> *mut u8 {
        let id = usize::from(id).min(self.slots.saturating_sub(1));
        // SAFETY: `id < slots`, so the offset stays inside the allocation.
        #[allow(unsafe_code)]
        unsafe {
            self.base.as_ptr().add(id * self.slot)
        }
    }
}

impl Drop for SlotMem {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout, freed only here.
        #[allow(unsafe_code)]
        unsafe {
            std::alloc::dealloc(self.base.as_ptr(), self.layout)
        };
    }
}

/// Received frames waiting for the data plane: fixed slots allocated once, each a virtio-net
/// header plus the largest frame (a 64 KiB TCP super-frame). A batch also stops taking frames
/// once it holds `byte_budget` bytes, so that a burst of super-frames is handled while it is
/// still in the cache.
#[derive(Debug, Default)]
pub struct RxBatch {
    data: Box<[u8]>,
    lens: Box<[usize]>,
    slot: usize,
    count: usize,
    bytes: usize,
    byte_budget: usize,
    /// Most frames until the next clear (at most the slots).
    limit: usize,
    /// Set while the frames are a port's slots ([`Port::release`] takes them back): frame `k`
    /// is slot `ids[k]` of this memory.
    lent: Option<Arc<SlotMem>>,
    ids: Box<[u16]>,
}

impl RxBatch {
    /// `slots` slots of `slot` bytes each (a header included); full at `byte_budget` bytes.
    pub fn new(slots: usize, slot: usize, byte_budget: usize) -> RxBatch {
        RxBatch {
            data: vec![0; slots * slot].into_boxed_slice(),
            lens: vec![0; slots].into_boxed_slice(),
            slot,
            count: 0,
            bytes: 0,
            byte_budget,
            limit: slots,
            lent: None,
            ids: vec![0; slots].into_boxed_slice(),
        }
    }

    /// Frames in the batch.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when no frame waits.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// True when the batch takes no more frames (every slot used, or the byte budget spent).
    pub fn is_full(&self) -> bool {
        self.count >= self.limit || self.bytes >= self.byte_budget
    }

    /// Empties the batch (the slots stay allocated).
    pub fn clear(&mut self) {
        self.clear_to(self.lens.len());
    }

    /// Empties the batch and lets it take at most `frames` frames until the next clear. Lent
    /// slots not taken back first are forgotten (the port must [`Port::release`] them).
    pub fn clear_to(&mut self, frames: usize) {
        self.count = 0;
        self.bytes = 0;
        self.limit = frames.min(self.lens.len());
        self.lent = None;
    }

    /// Adds slot `id` of `mem`, holding `len` bytes, as the next frame without copying it.
    /// False when the batch is full or holds frames of other memory.
    pub(crate) fn push_lent(&mut self, mem: &Arc<SlotMem>, id: u16, len: usize) -> bool {
        if self.is_full() || usize::from(id) >= mem.slots() {
            return false;
        }
        match &self.lent {
            Some(m) if Arc::ptr_eq(m, mem) => {}
            Some(_) => return false,
            None if self.count > 0 => return false,
            None => self.lent = Some(Arc::clone(mem)),
        }
        let n = len.clamp(VNET_HDR_LEN, mem.slot_len());
        self.ids[self.count] = id;
        self.lens[self.count] = n;
        self.count += 1;
        self.bytes += n;
        true
    }

    /// True when the batch can take slots of `mem` (it is empty or holds only those).
    pub(crate) fn can_lend(&self, mem: &Arc<SlotMem>) -> bool {
        match &self.lent {
            Some(m) => Arc::ptr_eq(m, mem),
            None => self.count == 0,
        }
    }

    /// The slots lent by `mem`, in the batch's order (empty if the batch holds none of its).
    pub(crate) fn lent_ids(&self, mem: &Arc<SlotMem>) -> &[u16] {
        match &self.lent {
            Some(m) if Arc::ptr_eq(m, mem) => &self.ids[..self.count],
            _ => &[],
        }
    }

    /// Lets `read` fill the next free slot; it returns the length it wrote (header
    /// included), or `None` when nothing was waiting. The frame is kept when that length
    /// holds at least a header. Nothing happens on a full batch.
    pub fn fill<E>(
        &mut self,
        read: impl FnOnce(&mut [u8]) -> Result<Option<usize>, E>,
    ) -> Result<Option<usize>, E> {
        if self.is_full() || self.lent.is_some() {
            return Ok(None);
        }
        let start = self.count * self.slot;
        let Some(slot) = self.data.get_mut(start..start + self.slot) else {
            return Ok(None);
        };
        let n = read(slot)?;
        if let Some(n) = n {
            let n = n.clamp(VNET_HDR_LEN, self.slot);
            self.lens[self.count] = n;
            self.count += 1;
            self.bytes += n;
        }
        Ok(n)
    }

    /// Copies `hdr_and_frame` into the next free slot (truncated to a slot). False when full.
    pub fn push(&mut self, hdr_and_frame: &[u8]) -> bool {
        let pushed = self.fill(|slot| {
            let n = hdr_and_frame.len().min(slot.len());
            slot[..n].copy_from_slice(&hdr_and_frame[..n]);
            Ok::<_, ()>(Some(n))
        });
        matches!(pushed, Ok(Some(_)))
    }

    /// Frame `k` with its virtio-net header, to read and rewrite in place.
    pub fn get_mut(&mut self, k: usize) -> Option<&mut [u8]> {
        let len = *self.lens.get(k).filter(|_| k < self.count)?;
        if let Some(mem) = &self.lent {
            let ptr = mem.slot_ptr(*self.ids.get(k)?);
            // SAFETY: the slot was handed to this batch by its port (`push_lent`): the kernel
            // no longer writes it and nothing else reads it until the port takes it back in
            // `Port::release`, which needs `&mut self` of this batch. `len` is at most a
            // slot, and `mem` (held here) keeps the memory alive.
            #[allow(unsafe_code)]
            return Some(unsafe { std::slice::from_raw_parts_mut(ptr, len) });
        }
        let start = k * self.slot;
        self.data.get_mut(start..start + len)
    }
}

impl Port for Tap {
    fn offload(&self) -> bool {
        Tap::offload(self)
    }

    fn recv(&mut self, batch: &mut RxBatch) -> io::Result<usize> {
        let mut n = 0;
        while batch.fill(|slot| Tap::recv(self, slot))?.is_some() {
            n += 1;
        }
        Ok(n)
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<bool> {
        Tap::send(self, frame)
    }

    fn send_offloaded(&mut self, hdr_and_frame: &[u8]) -> io::Result<bool> {
        Tap::send_offloaded(self, hdr_and_frame)
    }

    fn gathers(&self) -> bool {
        Tap::offload(self)
    }

    fn send_offloaded_gather(&mut self, head: &[u8], tail: &[u8]) -> io::Result<bool> {
        Tap::send_offloaded_gather(self, head, tail)
    }
}

/// An in-memory port: frames queued in `rx` are received, frames sent land in `tx` (each with
/// its virtio-net header, all zero for a plain frame). `tx_limit` bounds `tx` like a TAP's
/// queue (a send to a full queue returns `Ok(false)`); with `keep_tx` off, sent frames are only
/// counted, which lets a benchmark run without an allocation per packet.
#[derive(Debug, Clone)]
pub struct MemPort {
    /// Frames waiting to be received, each a virtio-net header and a frame.
    pub rx: VecDeque<Vec<u8>>,
    /// Frames sent, each a virtio-net header and a frame.
    pub tx: VecDeque<Vec<u8>>,
    /// Frames sent (kept or not).
    pub sent: u64,
    /// Most frames `tx` holds before sends are refused.
    pub tx_limit: usize,
    /// Keep the frames sent in `tx`.
    pub keep_tx: bool,
    /// Take frames in pieces ([`Port::gathers`], with offloads): on by default; tests turn
    /// it off to see the copying path.
    pub gather: bool,
    /// Frames taken in pieces ([`Port::send_offloaded_gather`]).
    pub gathered: u64,
    offload: bool,
}

impl MemPort {
    /// An empty port, with or without offloads.
    pub fn new(offload: bool) -> MemPort {
        MemPort {
            rx: VecDeque::new(),
            tx: VecDeque::new(),
            sent: 0,
            tx_limit: 1024,
            keep_tx: true,
            gather: true,
            gathered: 0,
            offload,
        }
    }

    /// Queues a plain frame for reception (a zero virtio-net header goes before it).
    pub fn inject(&mut self, frame: &[u8]) {
        let mut v = vec![0; VNET_HDR_LEN];
        v.extend_from_slice(frame);
        self.rx.push_back(v);
    }

    /// Queues a virtio-net header and its frame for reception.
    pub fn inject_offloaded(&mut self, hdr_and_frame: &[u8]) {
        self.rx.push_back(hdr_and_frame.to_vec());
    }

    /// Takes the oldest frame sent, without its virtio-net header.
    pub fn take_frame(&mut self) -> Option<Vec<u8>> {
        let mut f = self.tx.pop_front()?;
        f.drain(..VNET_HDR_LEN.min(f.len()));
        Some(f)
    }

    fn store(&mut self, hdr: &[u8], frame: &[u8]) -> bool {
        self.store_parts(hdr, frame, &[])
    }

    fn store_parts(&mut self, hdr: &[u8], frame: &[u8], tail: &[u8]) -> bool {
        if self.keep_tx {
            if self.tx.len() >= self.tx_limit {
                return false;
            }
            let mut v = Vec::with_capacity(hdr.len() + frame.len() + tail.len());
            v.extend_from_slice(hdr);
            v.extend_from_slice(frame);
            v.extend_from_slice(tail);
            self.tx.push_back(v);
        }
        self.sent += 1;
        true
    }
}

impl Port for MemPort {
    fn offload(&self) -> bool {
        self.offload
    }

    fn recv(&mut self, batch: &mut RxBatch) -> io::Result<usize> {
        let mut n = 0;
        while !batch.is_full() {
            let Some(f) = self.rx.pop_front() else {
                break;
            };
            if batch.push(&f) {
                n += 1;
            }
        }
        Ok(n)
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<bool> {
        Ok(self.store(&[0; VNET_HDR_LEN], frame))
    }

    fn send_offloaded(&mut self, hdr_and_frame: &[u8]) -> io::Result<bool> {
        if !self.offload {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "virtio-net header on a port without offloads",
            ));
        }
        let (hdr, frame) = hdr_and_frame.split_at(VNET_HDR_LEN.min(hdr_and_frame.len()));
        Ok(self.store(hdr, frame))
    }

    fn gathers(&self) -> bool {
        self.offload && self.gather
    }

    /// Stores the two pieces as one frame (a copy: this is the tests' port).
    fn send_offloaded_gather(&mut self, head: &[u8], tail: &[u8]) -> io::Result<bool> {
        if !self.gathers() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "frame in pieces on a port that does not take them",
            ));
        }
        let (hdr, frame) = head.split_at(VNET_HDR_LEN.min(head.len()));
        let stored = self.store_parts(hdr, frame, tail);
        self.gathered += u64::from(stored);
        Ok(stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_batch_slots_and_budget() {
        let mut b = RxBatch::new(3, 32, 40);
        assert!(b.push(&[1; 12]));
        assert!(b.push(&[2; 100]), "truncated to a slot");
        assert_eq!(b.len(), 2);
        assert!(b.is_full(), "12 + 32 bytes reach the 40-byte budget");
        assert!(!b.push(&[3; 12]));
        assert_eq!(b.get_mut(0).map(|f| f.len()), Some(12));
        assert_eq!(b.get_mut(1).map(|f| f.len()), Some(32));
        assert!(b.get_mut(2).is_none());
        b.clear();
        assert!(b.is_empty());
        assert!(b.get_mut(0).is_none());
    }

    #[test]
    fn test_batch_short_read_keeps_a_header() {
        let mut b = RxBatch::new(2, 32, 64);
        assert_eq!(b.fill(|_| Ok::<_, ()>(Some(3))), Ok(Some(3)));
        assert_eq!(b.get_mut(0).map(|f| f.len()), Some(VNET_HDR_LEN));
        assert_eq!(b.fill(|_| Ok::<_, ()>(None)), Ok(None));
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn test_mem_port_queues() {
        let mut p = MemPort::new(false);
        p.inject(&[7; 20]);
        p.inject(&[8; 20]);
        let mut b = RxBatch::new(1, 64, 1024);
        assert_eq!(p.recv(&mut b).ok(), Some(1), "one slot");
        assert_eq!(b.get_mut(0).map(|f| f[VNET_HDR_LEN]), Some(7));
        assert_eq!(p.rx.len(), 1);
        assert!(p.send_offloaded(&[0; 30]).is_err(), "no offloads");
        p.tx_limit = 1;
        assert_eq!(p.send(&[9; 20]).ok(), Some(true));
        assert_eq!(p.send(&[9; 20]).ok(), Some(false), "queue full");
        assert_eq!(p.take_frame(), Some(vec![9; 20]));
    }

    #[test]
    fn test_mem_port_takes_a_frame_in_pieces() {
        let mut plain = MemPort::new(false);
        assert!(!plain.gathers(), "no offloads, no pieces");
        assert!(plain.send_offloaded_gather(&[0; 12], &[1; 4]).is_err());
        let mut p = MemPort::new(true);
        assert!(p.gathers());
        let head = [[7u8; VNET_HDR_LEN].as_slice(), &[1, 2, 3]].concat();
        assert_eq!(p.send_offloaded_gather(&head, &[4, 5]).ok(), Some(true));
        assert_eq!(p.gathered, 1);
        assert_eq!(p.tx.pop_front(), Some([head.as_slice(), &[4, 5]].concat()));
        p.gather = false;
        assert!(!p.gathers(), "turned off for a test of the copying path");
        assert!(p.send_offloaded_gather(&head, &[4, 5]).is_err());
        assert_eq!(p.gathered, 1);
    }
}
