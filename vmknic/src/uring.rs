//! TAP I/O on io_uring: a [`Port`] that receives with one multishot read and a ring of
//! provided buffers, and sends small frames in batches, one `io_uring_enter` per flush.
//!
//! What the kernel does with a TAP here decides the shape (traced on 6.x kernels, see the
//! README's performance section):
//! - reads and writes on a TAP complete inline (the TAP honours non-blocking issue), so a
//!   write's completion is posted by the submit that carried it;
//! - many plain reads in flight all sleep on the TAP's one wait queue and end up on io-wq
//!   worker threads, so there is exactly one read: a multishot read that arms one poll and
//!   picks a provided buffer per frame, with no worker thread;
//! - received frames are handed to the data plane in the provided buffers themselves
//!   ([`RxBatch`] slots lent by the port), with no copy, and posted back in
//!   [`Port::release`];
//! - a small frame sent is copied into a staging slot (cheaper than a system call) and its
//!   write queued until [`Port::flush`]; a large one (a TCP super-frame, where the copy would
//!   cost more than the call) is written at once, after the queued ones, so order holds.
//!
//! The event loop waits on the ring's descriptor ([`UringTap::event_fd`]), readable when
//! completions wait, and on the TAP itself, whose synchronous wake-up the scheduler may serve
//! on the sender's CPU ([`TapPort::event_fds`]). No SQPOLL (a polling kernel thread takes a whole core of two), no
//! DEFER_TASKRUN (its completions only appear inside `io_uring_enter`, not to epoll).
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use io_uring::types::{BufRingEntry, Fd};
use io_uring::{cqueue, opcode, squeue, IoUring};

use crate::port::{Port, RxBatch, SlotMem};
use crate::tap::Tap;
use crate::vnet::VNET_HDR_LEN;

/// The buffer group of the port's provided buffers (one group per ring).
const BGID: u16 = 0;
/// `user_data` of the multishot read; writes carry their staging slot's index.
const READ: u64 = u64::MAX;
/// `user_data` of the cancel sent when the port closes.
const CANCEL: u64 = u64::MAX - 1;
/// Frames up to this size (header included) are staged and written in a batch.
const STAGE_MAX: usize = 2048;
/// Staging slots for queued writes.
const TX_SLOTS: usize = 256;
/// Submission queue entries (writes queued between flushes, and the read).
const SQ_ENTRIES: u32 = 256;
/// Completion queue entries: every provided buffer and every staged write can complete
/// before the data plane reaps.
const CQ_ENTRIES: u32 = 1024;

/// Sizes of a [`UringTap`]'s memory.
#[derive(Debug, Clone, Copy)]
pub struct UringSizes {
    /// Provided receive buffers (a power of two, at most 32768).
    pub rx_buffers: u16,
    /// Bytes per receive buffer, virtio-net header included: the largest frame the TAP
    /// hands out must fit, or the kernel truncates it.
    pub rx_buffer: usize,
}

/// A TAP whose reads and writes go through its own io_uring instance.
pub struct UringTap {
    // Declared first, dropped first: the read is cancelled before the TAP closes.
    io: Ring,
    tap: Tap,
    /// Staging slots for small writes, and which are free.
    tx: Box<[u8]>,
    tx_free: Vec<u16>,
    /// Writes that completed with an error (their frames are lost).
    tx_errors: u64,
    /// The epoll instance and token the TAP itself is registered under ([`TapPort::event_fds`]),
    /// to register it again after the read is re-armed.
    epoll: Option<(RawFd, u64)>,
    /// The read was re-armed: its poll entry went to the front of the TAP's wait queue, ahead
    /// of epoll's; the TAP is registered again once the re-armed read is submitted.
    rewake: bool,
}

/// The io_uring instance and the receive buffers it owns.
struct Ring {
    ring: IoUring,
    /// The provided receive buffers.
    rx: Arc<SlotMem>,
    /// The provided-buffer ring (`BufRingEntry`s shared with the kernel), page-aligned.
    buf_ring: SlotMem,
    buf_mask: u16,
    /// The buffer ring's tail as this side has written it.
    buf_tail: u16,
    /// Received frames land after a header's room (a TAP without offloads has no header).
    rx_offset: usize,
    /// The multishot read is in flight (it ends when buffers run out or on an error).
    armed: bool,
    /// Entries queued and not yet submitted.
    queued: usize,
}

impl std::fmt::Debug for UringTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringTap")
            .field("tap", &self.tap)
            .field("ring_fd", &self.io.ring.as_raw_fd())
            .field("armed", &self.io.armed)
            .finish()
    }
}

impl UringTap {
    /// Puts `tap` on a new io_uring instance with `sizes` of memory and arms its read.
    /// Fails, handing the TAP back, when io_uring is unavailable or refused (an old kernel,
    /// seccomp, `kernel.io_uring_disabled`), or the kernel lacks provided-buffer rings (5.19)
    /// or multishot reads (6.7): the caller falls back to plain system calls.
    pub fn new(tap: Tap, sizes: UringSizes) -> Result<UringTap, (Tap, io::Error)> {
        let rx_offset = if tap.offload() { 0 } else { VNET_HDR_LEN };
        let mut io = match Ring::new(sizes, rx_offset) {
            Ok(io) => io,
            Err(e) => return Err((tap, e)),
        };
        if let Err(e) = io.start(tap.as_raw_fd()) {
            drop(io);
            return Err((tap, e));
        }
        Ok(UringTap {
            io,
            tap,
            tx: vec![0; TX_SLOTS * STAGE_MAX].into_boxed_slice(),
            tx_free: (0..TX_SLOTS as u16).rev().collect(),
            tx_errors: 0,
            epoll: None,
            rewake: false,
        })
    }

    /// Tells the port that its TAP is registered with epoll instance `epfd` under `token`
    /// (edge-triggered, readable, as mio registers it), so that it can put epoll's entry back
    /// in front of the TAP's wait queue after re-arming its read ([`TapPort::event_fds`]);
    /// `None` once it is deregistered.
    pub fn set_epoll(&mut self, at: Option<(RawFd, u64)>) {
        self.epoll = at;
    }

    /// Registers the TAP with epoll again (removed, then added: a new entry goes to the front
    /// of the wait queue), after the re-armed read put its own entry there.
    fn renew_epoll(&mut self) {
        self.rewake = false;
        let Some((epfd, token)) = self.epoll else {
            return;
        };
        let fd = self.tap.as_raw_fd();
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLET | libc::EPOLLIN | libc::EPOLLRDHUP) as u32,
            u64: token,
        };
        // SAFETY: plain system calls on descriptors this port and its owner hold; `ev` lives
        // across the call. A failure leaves the TAP registered (DEL failed) or not (ADD
        // failed); the ring's own descriptor still wakes the loop either way.
        unsafe {
            libc::epoll_ctl(epfd, libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut());
            if libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, &mut ev) != 0 {
                tracing::debug!(
                    tap = self.tap.name(),
                    "epoll re-register: {}",
                    io::Error::last_os_error()
                );
            }
        }
    }

    /// The TAP underneath (device operations: carrier, MTU, bridge, namespace).
    pub fn tap(&self) -> &Tap {
        &self.tap
    }

    /// The TAP underneath, to change it.
    pub fn tap_mut(&mut self) -> &mut Tap {
        &mut self.tap
    }

    /// The descriptor the event loop waits on: readable when completions wait.
    pub fn event_fd(&self) -> RawFd {
        self.io.ring.as_raw_fd()
    }

    /// Writes that failed after they were queued (their frames are lost).
    pub fn tx_errors(&self) -> u64 {
        self.tx_errors
    }

    /// Queues one frame for writing (`hdr`, if any, then `frame`), or writes it at once when
    /// it is large or no staging slot is free. `plain` tells how to write it at once: a frame
    /// without header (the TAP adds a zero one) or exactly the bytes given.
    fn queue_write(&mut self, hdr: Option<&[u8]>, frame: &[u8]) -> io::Result<bool> {
        let h = hdr.map_or(0, <[u8]>::len);
        let len = h + frame.len();
        let id = if len <= STAGE_MAX {
            self.tx_free.pop()
        } else {
            None
        };
        let Some(id) = id else {
            // Written at once, after what is queued (order holds).
            self.io.submit()?;
            return match hdr {
                Some(_) => self.tap.send(frame),
                None if self.tap.offload() => self.tap.send_offloaded(frame),
                None => self.tap.send(frame),
            };
        };
        let start = usize::from(id) * STAGE_MAX;
        let slot = &mut self.tx[start..start + len];
        if let Some(hdr) = hdr {
            slot[..h].copy_from_slice(hdr);
        }
        slot[h..].copy_from_slice(frame);
        let write = opcode::Write::new(Fd(self.tap.as_raw_fd()), slot.as_ptr(), len as u32)
            .build()
            .user_data(u64::from(id));
        if let Err(e) = self.io.push(&write) {
            self.tx_free.push(id);
            return Err(e);
        }
        Ok(true)
    }
}

impl Ring {
    fn new(sizes: UringSizes, rx_offset: usize) -> io::Result<Ring> {
        let n = sizes.rx_buffers;
        if !n.is_power_of_two() || n > 32768 || sizes.rx_buffer <= VNET_HDR_LEN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "receive buffers: a power of two up to 32768, each longer than a header",
            ));
        }
        let ring = IoUring::builder()
            .setup_cqsize(CQ_ENTRIES)
            .setup_clamp()
            .build(SQ_ENTRIES)?;
        let oom = || io::Error::new(io::ErrorKind::OutOfMemory, "io_uring buffers");
        let rx = SlotMem::new(usize::from(n), sizes.rx_buffer).ok_or_else(oom)?;
        let entry = std::mem::size_of::<BufRingEntry>();
        let buf_ring = SlotMem::new(1, usize::from(n) * entry).ok_or_else(oom)?;
        // SAFETY: the buffer ring's memory is page-aligned and `n` entries long; it lives as
        // long as the ring, which is dropped first (closing it unregisters the buffer ring).
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                buf_ring.slot_ptr(0) as u64,
                n,
                BGID,
                0,
            )?;
        }
        Ok(Ring {
            ring,
            rx: Arc::new(rx),
            buf_ring,
            buf_mask: n - 1,
            buf_tail: 0,
            rx_offset,
            armed: false,
            queued: 0,
        })
    }

    /// Posts every buffer, arms the read on `fd` and checks that the kernel took it (a kernel
    /// without multishot reads fails it at once, inline).
    fn start(&mut self, fd: RawFd) -> io::Result<()> {
        let n = self.buf_mask + 1;
        for id in 0..n {
            self.post(id);
        }
        self.publish();
        self.arm(fd)?;
        self.submit()?;
        let mut failed = None;
        let mut repost = Vec::new();
        for cqe in self.ring.completion() {
            if cqe.user_data() != READ {
                continue;
            }
            if !cqueue::more(cqe.flags()) {
                self.armed = false;
            }
            match cqueue::buffer_select(cqe.flags()) {
                // A frame already waiting: dropped (start-up), its buffer reposted.
                Some(id) => repost.push(id),
                None if cqe.result() < 0 => {
                    failed = Some(io::Error::from_raw_os_error(-cqe.result()));
                }
                None => {}
            }
        }
        for id in repost {
            self.post(id);
        }
        self.publish();
        match failed {
            Some(e) => Err(e),
            None if !self.armed => self.arm(fd).and_then(|()| self.submit()),
            None => Ok(()),
        }
    }

    /// Posts receive buffer `id` to the kernel (visible after [`Ring::publish`]).
    fn post(&mut self, id: u16) {
        let base = self.buf_ring.slot_ptr(0) as *mut BufRingEntry;
        let addr = self.rx.slot_ptr(id) as u64 + self.rx_offset as u64;
        let len = (self.rx.slot_len() - self.rx_offset) as u32;
        // SAFETY: the entry index is masked to the ring's size; the kernel reads entries only
        // up to the published tail, and this one is past it until `publish`.
        unsafe {
            let e = &mut *base.add(usize::from(self.buf_tail & self.buf_mask));
            e.set_addr(addr);
            e.set_len(len);
            e.set_bid(id);
        }
        self.buf_tail = self.buf_tail.wrapping_add(1);
    }

    /// Makes the posted buffers visible to the kernel.
    fn publish(&self) {
        let base = self.buf_ring.slot_ptr(0) as *const BufRingEntry;
        // SAFETY: the tail is a u16 inside the ring's first entry (`BufRingEntry::tail`),
        // which the kernel reads concurrently: it is only written through an atomic.
        unsafe {
            let tail = &*(BufRingEntry::tail(base) as *const AtomicU16);
            tail.store(self.buf_tail, Ordering::Release);
        }
    }

    /// Queues the multishot read on `fd`.
    fn arm(&mut self, fd: RawFd) -> io::Result<()> {
        let read = opcode::ReadMulti::new(Fd(fd), 0, BGID)
            .build()
            .user_data(READ);
        self.push(&read)?;
        self.armed = true;
        Ok(())
    }

    /// Queues one entry, submitting what is queued first if the queue is full.
    fn push(&mut self, sqe: &squeue::Entry) -> io::Result<()> {
        // SAFETY: every buffer a queued entry names (a staging slot, the provided buffers)
        // stays valid until its completion is reaped: staging slots return to the free list
        // only then, and the ring cancels and drains its read before its memory goes.
        if unsafe { self.ring.submission().push(sqe) }.is_err() {
            self.submit()?;
            // SAFETY: as above.
            unsafe { self.ring.submission().push(sqe) }
                .map_err(|_| io::Error::other("io_uring submission queue full"))?;
        }
        self.queued += 1;
        Ok(())
    }

    /// Submits what is queued: one `io_uring_enter`, which also completes the TAP writes
    /// (they run inline).
    fn submit(&mut self) -> io::Result<()> {
        if self.queued == 0 {
            return Ok(());
        }
        loop {
            match self.ring.submit() {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // The completion queue is full: the next receive reaps it, and what is
                // queued goes with the next submit.
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        self.queued = 0;
        Ok(())
    }
}

impl Drop for Ring {
    /// Cancels the read and waits (at most a second) until the kernel has let go of the
    /// buffers, which are freed right after.
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let cancel = opcode::AsyncCancel::new(READ).build().user_data(CANCEL);
        if self.push(&cancel).is_err() || self.submit().is_err() {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(1);
        while self.armed && Instant::now() < deadline {
            let _ = self.ring.submit_and_wait(1);
            for cqe in self.ring.completion() {
                if cqe.user_data() == READ && !cqueue::more(cqe.flags()) {
                    self.armed = false;
                }
            }
        }
    }
}

impl Port for UringTap {
    fn offload(&self) -> bool {
        self.tap.offload()
    }

    fn recv(&mut self, batch: &mut RxBatch) -> io::Result<usize> {
        let mut added = 0;
        let mut failed = None;
        let io = &mut self.io;
        if !batch.can_lend(&io.rx) {
            return Ok(0);
        }
        let mut cq = io.ring.completion();
        while !batch.is_full() {
            let Some(cqe) = cq.next() else {
                break;
            };
            match cqe.user_data() {
                READ => {
                    if !cqueue::more(cqe.flags()) {
                        io.armed = false;
                    }
                    let res = cqe.result();
                    let Some(id) = cqueue::buffer_select(cqe.flags()) else {
                        // No buffer: the read ended (ENOBUFS when every buffer is out, which
                        // `release` re-arms) or failed.
                        if res < 0 && res != -libc::ENOBUFS {
                            failed = Some(io::Error::from_raw_os_error(-res));
                        }
                        continue;
                    };
                    let len = res.max(0) as usize + io.rx_offset;
                    if io.rx_offset > 0 {
                        // A TAP without offloads: the frame follows a zero header.
                        // SAFETY: the buffer is out of the kernel's hands (its completion was
                        // just reaped) and not yet lent, so nothing else touches it.
                        unsafe { std::ptr::write_bytes(io.rx.slot_ptr(id), 0, io.rx_offset) };
                    }
                    // Room was checked above and the batch takes this memory: it is pushed.
                    if batch.push_lent(&io.rx, id, len) {
                        added += 1;
                    }
                }
                CANCEL => {}
                slot => {
                    if cqe.result() < 0 {
                        self.tx_errors += 1;
                    }
                    if let Ok(id) = u16::try_from(slot) {
                        self.tx_free.push(id);
                    }
                }
            }
        }
        drop(cq);
        io.publish();
        match failed {
            Some(e) if added == 0 => Err(e),
            _ => Ok(added),
        }
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<bool> {
        if self.tap.offload() {
            self.queue_write(Some(&[0; VNET_HDR_LEN]), frame)
        } else {
            self.queue_write(None, frame)
        }
    }

    fn send_offloaded(&mut self, hdr_and_frame: &[u8]) -> io::Result<bool> {
        if !self.tap.offload() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "virtio-net header on a TAP without offloads",
            ));
        }
        self.queue_write(None, hdr_and_frame)
    }

    fn release(&mut self, batch: &mut RxBatch) {
        let mem = Arc::clone(&self.io.rx);
        for &id in batch.lent_ids(&mem) {
            self.io.post(id);
        }
        batch.clear();
        self.io.publish();
        if !self.io.armed {
            match self.io.arm(self.tap.as_raw_fd()) {
                Ok(()) => self.rewake = true,
                Err(e) => tracing::warn!(tap = self.tap.name(), "io_uring read: {e}"),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.io.submit()?;
        // The re-armed read is in the kernel now (it arms its poll when submitted, inline).
        if self.rewake && self.io.queued == 0 {
            self.renew_epoll();
        }
        Ok(())
    }
}

/// A vmknic's TAP with the I/O backend chosen at start-up: plain system calls (one `read` or
/// `write` per frame) or io_uring. Device operations reach the TAP through `Deref`.
#[derive(Debug)]
pub enum TapPort {
    /// One system call per frame.
    Syscalls(Tap),
    /// Batched on io_uring (boxed: the ring's state is large beside a plain TAP).
    Uring(Box<UringTap>),
    /// System calls, super-frames written by a writer thread of the TAP's own.
    Threaded(Box<crate::writer::ThreadedTap>),
}

impl TapPort {
    /// The descriptor the event loop waits on for received frames.
    pub fn event_fd(&self) -> RawFd {
        match self {
            TapPort::Syscalls(t) => t.as_raw_fd(),
            TapPort::Uring(u) => u.event_fd(),
            TapPort::Threaded(t) => t.tap().as_raw_fd(),
        }
    }

    /// Every descriptor the event loop waits on: [`TapPort::event_fd`], and on io_uring the
    /// TAP itself too. Why the TAP: on the ring alone, a frame wakes the sleeping loop
    /// through io_uring's task work, an ordinary wake-up (traced: every ping's wake-up came
    /// from `task_work_add`) that the scheduler serves on the loop's own vCPU, halted on an
    /// idle machine; the TAP's wake-up through epoll is a synchronous one, served where the
    /// sender runs, as on the system-call backend (traced: every one from `ep_poll_callback`).
    /// Registered after the ring armed its read, epoll's entry is first on the TAP's wait
    /// queue, so its wake-up is the one that counts (the port registers the TAP again after
    /// re-arming: [`UringTap::set_epoll`]); the frame is still read by the ring, whose task
    /// work runs before the wait returns to user space.
    pub fn event_fds(&self) -> impl Iterator<Item = RawFd> {
        let tap = match self {
            TapPort::Syscalls(_) | TapPort::Threaded(_) => None,
            TapPort::Uring(u) => Some(u.tap().as_raw_fd()),
        };
        std::iter::once(self.event_fd()).chain(tap)
    }

    /// Tells an io_uring port which epoll instance and token its TAP is registered under, or
    /// that it is not any more ([`UringTap::set_epoll`]); nothing to do on system calls.
    pub fn set_epoll(&mut self, at: Option<(RawFd, u64)>) {
        if let TapPort::Uring(u) = self {
            u.set_epoll(at);
        }
    }

    /// The backend's name for logs and listings: `syscalls`, `uring` or `threaded`.
    pub fn io_name(&self) -> &'static str {
        match self {
            TapPort::Syscalls(_) => "syscalls",
            TapPort::Uring(_) => "uring",
            TapPort::Threaded(_) => "threaded",
        }
    }
}

impl std::ops::Deref for TapPort {
    type Target = Tap;

    fn deref(&self) -> &Tap {
        match self {
            TapPort::Syscalls(t) => t,
            TapPort::Uring(u) => u.tap(),
            TapPort::Threaded(t) => t.tap(),
        }
    }
}

impl std::ops::DerefMut for TapPort {
    fn deref_mut(&mut self) -> &mut Tap {
        match self {
            TapPort::Syscalls(t) => t,
            TapPort::Uring(u) => u.tap_mut(),
            TapPort::Threaded(t) => t.tap_mut(),
        }
    }
}

impl Port for TapPort {
    fn offload(&self) -> bool {
        match self {
            TapPort::Syscalls(t) => Port::offload(t),
            TapPort::Uring(u) => u.offload(),
            TapPort::Threaded(t) => Port::offload(t.as_ref()),
        }
    }

    fn recv(&mut self, batch: &mut RxBatch) -> io::Result<usize> {
        match self {
            TapPort::Syscalls(t) => Port::recv(t, batch),
            TapPort::Uring(u) => u.recv(batch),
            TapPort::Threaded(t) => t.recv(batch),
        }
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<bool> {
        match self {
            TapPort::Syscalls(t) => Port::send(t, frame),
            TapPort::Uring(u) => u.send(frame),
            TapPort::Threaded(t) => t.send(frame),
        }
    }

    fn send_offloaded(&mut self, hdr_and_frame: &[u8]) -> io::Result<bool> {
        match self {
            TapPort::Syscalls(t) => Port::send_offloaded(t, hdr_and_frame),
            TapPort::Uring(u) => u.send_offloaded(hdr_and_frame),
            TapPort::Threaded(t) => t.send_offloaded(hdr_and_frame),
        }
    }

    fn gathers(&self) -> bool {
        match self {
            TapPort::Syscalls(t) => Port::gathers(t),
            TapPort::Uring(u) => u.gathers(),
            TapPort::Threaded(t) => t.gathers(),
        }
    }

    fn send_offloaded_gather(&mut self, head: &[u8], tail: &[u8]) -> io::Result<bool> {
        match self {
            TapPort::Syscalls(t) => Port::send_offloaded_gather(t, head, tail),
            TapPort::Uring(u) => u.send_offloaded_gather(head, tail),
            TapPort::Threaded(t) => t.send_offloaded_gather(head, tail),
        }
    }

    fn release(&mut self, batch: &mut RxBatch) {
        match self {
            TapPort::Syscalls(t) => t.release(batch),
            TapPort::Uring(u) => u.release(batch),
            TapPort::Threaded(t) => t.release(batch),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            TapPort::Syscalls(t) => t.flush(),
            TapPort::Uring(u) => u.flush(),
            TapPort::Threaded(t) => t.flush(),
        }
    }
}
