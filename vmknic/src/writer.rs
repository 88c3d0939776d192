//! TAP writes off the event loop's thread: a [`Port`] that reads with system calls on the
//! caller's thread and hands large writes (TCP super-frames) to a writer thread of its own.
//!
//! Writing a super-frame to an offloading TAP is more than a copy: the kernel runs what lies
//! behind the TAP (a bridge, a router's forwarding, the receiving host's TCP) inside that
//! `write`, on the writer's thread. With one thread doing everything, that work and the
//! stack's own (reading the clients' sockets, smoltcp) take turns; with a writer they overlap
//! on two cores.
//!
//! The writer owns a duplicate of the TAP's descriptor and a fixed pool of buffers (no
//! allocation after [`ThreadedTap::new`]): a frame handed to it is copied into a free buffer
//! and queued; the writer writes it and gives the buffer back. When every buffer is queued the
//! caller waits for one (the TAP's own back-pressure). Order on the wire is the order of the
//! calls: while anything is queued, small frames are queued behind it too; when nothing is,
//! they are written at once, as by [`Tap`] (a ping does not wait for a thread to wake).
//! Dropping the port joins the writer, so the TAP's last descriptor closes with the port.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::eth::ETH_HDR;
use crate::port::{Port, RxBatch};
use crate::tap::Tap;
use crate::vnet::VNET_HDR_LEN;

/// Buffers per TAP (queue): frames the writer can hold at once.
pub const WRITER_BUFFERS: usize = 8;
/// Bytes per buffer: a virtio-net header and the largest super-frame.
const WRITER_BUF: usize = VNET_HDR_LEN + ETH_HDR + 65536;
/// Frames from this size on go to the writer even when it is idle; smaller ones only behind
/// queued ones (their copy and a thread's wake-up would cost more than the write).
const THREAD_MIN: usize = 16 * 1024;

/// A frame queued for the writer: its buffer and length.
struct Job {
    buf: Box<[u8]>,
    len: usize,
}

/// The writer thread and its pool.
struct Writer {
    to_thread: Option<SyncSender<Job>>,
    free: Receiver<Box<[u8]>>,
    /// Frames handed over and not yet written.
    queued: Arc<AtomicUsize>,
    /// Frames the kernel refused (lost).
    errors: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    fn spawn(tap: &Tap) -> io::Result<Writer> {
        let file = File::from(tap.as_fd().try_clone_to_owned()?);
        let (to_thread, jobs) = sync_channel::<Job>(WRITER_BUFFERS);
        let (give_back, free) = sync_channel::<Box<[u8]>>(WRITER_BUFFERS);
        for _ in 0..WRITER_BUFFERS {
            let _ = give_back.try_send(vec![0u8; WRITER_BUF].into_boxed_slice());
        }
        let queued = Arc::new(AtomicUsize::new(0));
        let errors = Arc::new(AtomicU64::new(0));
        let (q, errs) = (queued.clone(), errors.clone());
        let thread = std::thread::Builder::new()
            .name(format!("vmkstack-w-{}", tap.name()))
            .spawn(move || write_loop(file, jobs, give_back, q, errs))?;
        Ok(Writer {
            to_thread: Some(to_thread),
            free,
            queued,
            errors,
            thread: Some(thread),
        })
    }

    /// True when everything handed over has been written.
    fn idle(&self) -> bool {
        self.queued.load(Ordering::Acquire) == 0
    }

    /// Copies `parts` (one after the other) into a free buffer and queues it, waiting for a
    /// buffer when all are queued. `Ok(false)` when the frame is larger than a buffer;
    /// an error when the writer is gone.
    fn queue(&self, parts: &[&[u8]]) -> io::Result<bool> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > WRITER_BUF {
            return Ok(false);
        }
        let gone = || io::Error::new(io::ErrorKind::BrokenPipe, "the TAP writer thread is gone");
        let mut buf = match self.free.try_recv() {
            Ok(b) => b,
            Err(TryRecvError::Empty) => self.free.recv().map_err(|_| gone())?,
            Err(TryRecvError::Disconnected) => return Err(gone()),
        };
        let mut at = 0;
        for p in parts {
            buf[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        let Some(tx) = &self.to_thread else {
            return Err(gone());
        };
        self.queued.fetch_add(1, Ordering::AcqRel);
        if tx.send(Job { buf, len }).is_err() {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(gone());
        }
        Ok(true)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel ends the thread once it has written what is queued.
        drop(self.to_thread.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The writer thread: writes each job whole, in order, and gives its buffer back.
fn write_loop(
    mut file: File,
    jobs: Receiver<Job>,
    give_back: SyncSender<Box<[u8]>>,
    queued: Arc<AtomicUsize>,
    errors: Arc<AtomicU64>,
) {
    while let Ok(job) = jobs.recv() {
        let frame = job.buf.get(..job.len).unwrap_or_default();
        loop {
            match file.write(frame) {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A full queue (EAGAIN) or a TAP gone: the frame is lost, as a NIC's would be.
                Err(_) => {
                    errors.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
        // After the write: whoever sees `queued` at 0 may write behind it directly.
        queued.fetch_sub(1, Ordering::AcqRel);
        if give_back.send(job.buf).is_err() {
            return;
        }
    }
}

/// A TAP read on the caller's thread and written by a writer thread (see the module).
pub struct ThreadedTap {
    // Declared first, dropped first: the writer is joined before the TAP closes.
    writer: Writer,
    tap: Tap,
}

impl std::fmt::Debug for ThreadedTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadedTap")
            .field("tap", &self.tap)
            .field("queued", &self.writer.queued.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl ThreadedTap {
    /// Starts the writer thread of `tap`. On failure the TAP comes back with the error.
    pub fn new(tap: Tap) -> Result<ThreadedTap, (Tap, io::Error)> {
        match Writer::spawn(&tap) {
            Ok(writer) => Ok(ThreadedTap { writer, tap }),
            Err(e) => Err((tap, e)),
        }
    }

    /// The TAP.
    pub fn tap(&self) -> &Tap {
        &self.tap
    }

    /// The TAP, to change.
    pub fn tap_mut(&mut self) -> &mut Tap {
        &mut self.tap
    }

    /// Frames the writer could not write (the kernel refused them).
    pub fn tx_errors(&self) -> u64 {
        self.writer.errors.load(Ordering::Relaxed)
    }
}

impl Port for ThreadedTap {
    fn offload(&self) -> bool {
        Port::offload(&self.tap)
    }

    fn recv(&mut self, batch: &mut RxBatch) -> io::Result<usize> {
        Port::recv(&mut self.tap, batch)
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<bool> {
        if self.writer.idle() {
            return self.tap.send(frame);
        }
        if self.tap.offload() {
            self.writer.queue(&[&[0; VNET_HDR_LEN], frame])
        } else {
            self.writer.queue(&[frame])
        }
    }

    fn send_offloaded(&mut self, hdr_and_frame: &[u8]) -> io::Result<bool> {
        if hdr_and_frame.len() < THREAD_MIN && self.writer.idle() {
            return self.tap.send_offloaded(hdr_and_frame);
        }
        if !self.tap.offload() {
            return self.tap.send_offloaded(hdr_and_frame);
        }
        self.writer.queue(&[hdr_and_frame])
    }

    fn gathers(&self) -> bool {
        self.tap.offload()
    }

    /// Written at once with `writev` when small and nothing is queued, else copied once
    /// into a writer's buffer (the payload's only copy in user space).
    fn send_offloaded_gather(&mut self, head: &[u8], tail: &[u8]) -> io::Result<bool> {
        if head.len() + tail.len() < THREAD_MIN && self.writer.idle() {
            return self.tap.send_offloaded_gather(head, tail);
        }
        if !self.tap.offload() {
            return self.tap.send_offloaded_gather(head, tail);
        }
        self.writer.queue(&[head, tail])
    }
}
