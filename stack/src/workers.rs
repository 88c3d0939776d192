//! Data-plane workers 1..n on multi-queue TAPs (`workers` > 1 in the configuration).
//!
//! Every vmknic's TAP is opened with one queue per worker (`IFF_MULTI_QUEUE`); the kernel
//! puts each flow on one queue (a hash of its addresses and ports, or the queue its last
//! frame was written on). Worker 0 is the event loop ([`crate::Netstack`]): it owns queue 0
//! and the engines (control plane, smoltcp endpoint, ARP, the neighbour queue, ICMP errors,
//! DHCP, captures). Workers 1..n are threads that own queue `i` of every vmknic and run a
//! forwarding-only turn: an IPv4 datagram to forward whose route and neighbour are known
//! is rewritten in place and sent out of the worker's own queue of the egress vmknic, as the
//! engine's fast path does; everything else (frames for the stack, ARP, IPv6, broadcasts,
//! unresolved next hops, TTL or MTU errors that need ICMP, frames while a capture runs) is
//! copied into one of the worker's preallocated buffers and handed to worker 0 over a
//! bounded queue, which handles it as if it had read it itself. So only worker 0 sends ARP
//! requests and queues packets while a neighbour resolves: a first packet is never lost to a
//! worker, and a full hand-off queue is counted (`handoff_full`).
//!
//! Workers forward from a [`Snapshot`] per netstack (routing table, resolved neighbours,
//! vmknic MAC/MTU/state), rebuilt by worker 0 whenever the engine's state moves
//! ([`crate::Engine::snapshot_key`]) and published whole: a generation counter that a worker
//! reads once per turn (one atomic load), and behind a mutex the `Arc`s it then clones. That
//! is RCU in spirit without a dependency: `arc-swap` makes each *load* lock-free, which
//! matters when every packet loads, while here a worker loads once per change.
//!
//! A worker counts what it does (received, sent, forwarded, drops) in its own plain
//! counters and adds them, once per turn, to a per-worker pending set behind a mutex that
//! worker 0 drains into the engines' counters before it answers anything: listings, stats
//! and metrics keep their shape and see the sum.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use tracing::{debug, info, warn};
use vmkstack_vmknic::eth::{self, ETHERTYPE_IPV4, ETH_HDR};
use vmkstack_vmknic::{Port, RxBatch, TapPort, VnetHdr, VNET_HDR_LEN};

use crate::engine::{Counters, DropReason, Snapshot};
use crate::governor::PollGovernor;
use crate::packet;

/// Frames a worker can have handed to worker 0 and not yet got back (its buffer pool).
const HANDOFF_BUFFERS: usize = 64;
/// A hand-off buffer: a virtio-net header and the largest super-frame.
const HANDOFF_BUF: usize = VNET_HDR_LEN + ETH_HDR + 65536;
/// Receive batch of a worker (as the engine's).
const RX_BATCH: usize = 32;
/// Bytes after which a worker's batch is handled before more is read.
const RX_BATCH_BYTES: usize = 64 * 1024;
/// Frames read from one queue per turn before the next queue gets its turn.
const RX_BUDGET: usize = 64;
/// The token of a worker's wake-up (commands).
const WAKER: Token = Token(usize::MAX - 1);
/// Bits of a token that number the vmknic slot (as `Netstack`'s tokens).
const SLOT_BITS: u32 = 16;
/// Where the IP packet starts in a received buffer.
const IP: usize = VNET_HDR_LEN + ETH_HDR;

/// A frame a worker read and handed to worker 0.
pub struct Handed {
    /// The worker (1..n) whose buffer it is.
    pub worker: usize,
    /// The netstack index and vmknic slot it came in on.
    pub stack: usize,
    /// The vmknic slot.
    pub slot: usize,
    /// Bytes of `buf` in use: a virtio-net header and the frame.
    pub len: usize,
    /// The worker's buffer, to give back with [`Workers::give_back`].
    pub buf: Box<[u8]>,
}

/// What worker 0 asks of a worker.
enum Command {
    /// Own `port` as the queue of vmknic `slot` of netstack `stack` (replacing any).
    Port {
        stack: usize,
        slot: usize,
        port: Box<TapPort>,
    },
    /// Close the queue of vmknic `slot` of netstack `stack`, then answer.
    Close {
        stack: usize,
        slot: usize,
        done: Sender<()>,
    },
    /// Stop the thread.
    Stop,
}

/// Counts of one vmknic that a worker adds to the engine's.
#[derive(Debug, Clone, Copy, Default)]
struct Delta {
    rx_packets: u64,
    rx_bytes: u64,
    tx_packets: u64,
    tx_bytes: u64,
    forwarded: u64,
    gso_forwarded: u64,
    queue_full: u64,
    send_failed: u64,
    handoff_full: u64,
}

impl Delta {
    fn is_zero(&self) -> bool {
        self.rx_packets == 0
            && self.tx_packets == 0
            && self.queue_full == 0
            && self.send_failed == 0
            && self.handoff_full == 0
    }

    fn add(&mut self, d: &Delta) {
        self.rx_packets += d.rx_packets;
        self.rx_bytes += d.rx_bytes;
        self.tx_packets += d.tx_packets;
        self.tx_bytes += d.tx_bytes;
        self.forwarded += d.forwarded;
        self.gso_forwarded += d.gso_forwarded;
        self.queue_full += d.queue_full;
        self.send_failed += d.send_failed;
        self.handoff_full += d.handoff_full;
    }

    /// Adds these counts to a vmknic's counters.
    fn apply(&self, c: &mut Counters) {
        c.rx_packets += self.rx_packets;
        c.rx_bytes += self.rx_bytes;
        c.tx_packets += self.tx_packets;
        c.tx_bytes += self.tx_bytes;
        c.forwarded += self.forwarded;
        c.gso_forwarded += self.gso_forwarded;
        c.add_drops(DropReason::QueueFull, self.queue_full);
        c.add_drops(DropReason::Other, self.send_failed);
        c.add_drops(DropReason::HandoffFull, self.handoff_full);
    }
}

/// What one worker did, for logs, metrics and tests (totals since it started).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Frames read from its queues.
    pub frames: u64,
    /// Packets it forwarded itself.
    pub forwarded: u64,
    /// Frames it handed to worker 0.
    pub handed: u64,
    /// Of those, IPv4 datagrams (for the stack, to an unresolved next hop, needing an ICMP
    /// error, or while a capture runs): the fast path's misses.
    pub handed_ipv4: u64,
    /// Frames it could not hand over (no free buffer or the queue full): dropped.
    pub handoff_full: u64,
}

/// What worker 0 and a worker share.
struct Shared {
    /// Counts not yet added to the engines: `[stack][slot]`.
    pending: Mutex<Vec<Vec<Delta>>>,
    frames: AtomicU64,
    forwarded: AtomicU64,
    handed: AtomicU64,
    handed_ipv4: AtomicU64,
    handoff_full: AtomicU64,
}

/// The snapshots worker 0 publishes, by netstack index.
struct Published {
    generation: AtomicU64,
    snapshots: Mutex<Vec<Option<Arc<Snapshot>>>>,
}

/// Worker 0's handle on one worker thread.
struct Handle {
    commands: Sender<Command>,
    waker: Arc<Waker>,
    free: Sender<Box<[u8]>>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Workers 1..n of the data plane, as worker 0 (the event loop) holds them.
pub struct Workers {
    handles: Vec<Handle>,
    handed: Receiver<Handed>,
    published: Arc<Published>,
}

impl Workers {
    /// Starts `count` worker threads (workers 1..=count), each with its own epoll, hand-off
    /// buffers and adaptive polling window (`busy_poll`); `main` wakes worker 0 when frames
    /// were handed to it.
    pub fn start(count: usize, busy_poll: Duration, main: Arc<Waker>) -> io::Result<Workers> {
        let (handed_tx, handed) = bounded(count * HANDOFF_BUFFERS);
        let published = Arc::new(Published {
            generation: AtomicU64::new(0),
            snapshots: Mutex::new(Vec::new()),
        });
        let mut handles = Vec::with_capacity(count);
        for id in 1..=count {
            let poll = Poll::new()?;
            let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
            let (commands, commands_rx) = bounded(64);
            let (free, free_rx) = bounded(HANDOFF_BUFFERS);
            for _ in 0..HANDOFF_BUFFERS {
                // Zeroed memory is only touched when a frame is copied in.
                let _ = free.try_send(vec![0u8; HANDOFF_BUF].into_boxed_slice());
            }
            let shared = Arc::new(Shared {
                pending: Mutex::new(Vec::new()),
                frames: AtomicU64::new(0),
                forwarded: AtomicU64::new(0),
                handed: AtomicU64::new(0),
                handed_ipv4: AtomicU64::new(0),
                handoff_full: AtomicU64::new(0),
            });
            let worker = Worker {
                id,
                poll,
                events: Events::with_capacity(64),
                commands: commands_rx,
                handed: handed_tx.clone(),
                free: free_rx,
                refill: free.clone(),
                main: main.clone(),
                shared: shared.clone(),
                published: published.clone(),
                seen: u64::MAX,
                snapshots: Vec::new(),
                ports: Vec::new(),
                deltas: Vec::new(),
                rx: RxBatch::new(RX_BATCH, HANDOFF_BUF, RX_BATCH_BYTES),
                governor: PollGovernor::new(busy_poll),
                last_turn: Instant::now(),
                stats: WorkerStats::default(),
            };
            let thread = std::thread::Builder::new()
                .name(format!("vmkstack-w{id}"))
                .spawn(move || worker.run())?;
            handles.push(Handle {
                commands,
                waker,
                free,
                shared,
                thread: Some(thread),
            });
        }
        info!(workers = count + 1, "data-plane workers started");
        Ok(Workers {
            handles,
            handed,
            published,
        })
    }

    /// Workers 1..n (worker 0 not included).
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// True when there is no worker thread.
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// Hands queue `k` (1..n) of vmknic `slot` of netstack `stack` to worker `k`.
    pub fn give_port(&self, worker: usize, stack: usize, slot: usize, port: TapPort) {
        let Some(h) = worker.checked_sub(1).and_then(|k| self.handles.get(k)) else {
            return;
        };
        let port = Box::new(port);
        if h.commands.send(Command::Port { stack, slot, port }).is_ok() {
            let _ = h.waker.wake();
        }
    }

    /// Closes every worker's queue of vmknic `slot` of netstack `stack`, and waits (at most a
    /// second) until they did: the TAP disappears once its last queue is closed.
    pub fn close_port(&self, stack: usize, slot: usize) {
        let (done, wait) = bounded(self.handles.len());
        for h in &self.handles {
            let done = done.clone();
            if h.commands
                .send(Command::Close { stack, slot, done })
                .is_ok()
            {
                let _ = h.waker.wake();
            }
        }
        drop(done);
        let until = Instant::now() + Duration::from_secs(1);
        for _ in &self.handles {
            if wait
                .recv_timeout(until.saturating_duration_since(Instant::now()))
                .is_err()
            {
                warn!(stack, slot, "a worker did not close its TAP queue in time");
                break;
            }
        }
    }

    /// Publishes the netstacks' snapshots (`None` for a free netstack index): workers take
    /// them at their next turn.
    pub fn publish(&self, snapshots: Vec<Option<Arc<Snapshot>>>) {
        *self
            .published
            .snapshots
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = snapshots;
        self.published.generation.fetch_add(1, Ordering::Release);
    }

    /// The next frame a worker handed over, if any.
    pub fn take_handed(&self) -> Option<Handed> {
        self.handed.try_recv().ok()
    }

    /// True when frames wait to be handled by worker 0.
    pub fn has_handed(&self) -> bool {
        !self.handed.is_empty()
    }

    /// Gives a hand-off buffer back to its worker.
    pub fn give_back(&self, h: Handed) {
        if let Some(w) = h.worker.checked_sub(1).and_then(|k| self.handles.get(k)) {
            let _ = w.free.try_send(h.buf);
        }
    }

    /// Calls `f(stack, slot, counts)` for what the workers counted since the last call, so
    /// that worker 0 adds it to the engine's counters.
    pub fn drain_counts(&self, mut f: impl FnMut(usize, usize, &mut Counters)) {
        for h in &self.handles {
            let mut pending = h
                .shared
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for (stack, slots) in pending.iter_mut().enumerate() {
                for (slot, d) in slots.iter_mut().enumerate() {
                    if !d.is_zero() {
                        let mut c = Counters::default();
                        d.apply(&mut c);
                        f(stack, slot, &mut c);
                        *d = Delta::default();
                    }
                }
            }
        }
    }

    /// What each worker did so far (workers 1..n, in order).
    pub fn stats(&self) -> Vec<WorkerStats> {
        self.handles
            .iter()
            .map(|h| WorkerStats {
                frames: h.shared.frames.load(Ordering::Relaxed),
                forwarded: h.shared.forwarded.load(Ordering::Relaxed),
                handed: h.shared.handed.load(Ordering::Relaxed),
                handed_ipv4: h.shared.handed_ipv4.load(Ordering::Relaxed),
                handoff_full: h.shared.handoff_full.load(Ordering::Relaxed),
            })
            .collect()
    }
}

impl Workers {
    /// Stops the worker threads and waits for them (their last counts stay to be drained).
    pub fn stop(&mut self) {
        for h in &self.handles {
            if h.commands.send(Command::Stop).is_ok() {
                let _ = h.waker.wake();
            }
        }
        for h in &mut self.handles {
            if let Some(t) = h.thread.take() {
                let _ = t.join();
            }
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One vmknic queue a worker owns.
struct Queue<P> {
    port: P,
    readable: bool,
}

/// A worker thread's state.
struct Worker {
    id: usize,
    poll: Poll,
    events: Events,
    commands: Receiver<Command>,
    handed: Sender<Handed>,
    free: Receiver<Box<[u8]>>,
    /// To put a buffer back when the hand-off fails.
    refill: Sender<Box<[u8]>>,
    main: Arc<Waker>,
    shared: Arc<Shared>,
    published: Arc<Published>,
    /// The publication generation of `snapshots`.
    seen: u64,
    snapshots: Vec<Option<Arc<Snapshot>>>,
    /// `[stack][slot]`.
    ports: Vec<Vec<Option<Queue<TapPort>>>>,
    /// Counts of this turn, `[stack][slot]`.
    deltas: Vec<Vec<Delta>>,
    rx: RxBatch,
    governor: PollGovernor,
    last_turn: Instant,
    stats: WorkerStats,
}

/// What became of a frame.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Forwarded,
    Hand,
}

impl Worker {
    fn run(mut self) {
        debug!(worker = self.id, "worker running");
        loop {
            let readable = self.ports.iter().flatten().flatten().any(|q| q.readable);
            let timeout = if readable || self.governor.polling(self.last_turn) {
                Some(Duration::ZERO)
            } else {
                None
            };
            match self.poll.poll(&mut self.events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    warn!(worker = self.id, "epoll: {e}; worker stops");
                    break;
                }
            }
            let mut stop = false;
            let mut woken = false;
            for ev in self.events.iter() {
                if ev.token() == WAKER {
                    woken = true;
                    continue;
                }
                let t = ev.token().0;
                let (stack, slot) = (t >> SLOT_BITS, t & ((1 << SLOT_BITS) - 1));
                if let Some(Some(q)) = self.ports.get_mut(stack).and_then(|s| s.get_mut(slot)) {
                    q.readable = true;
                }
            }
            if woken {
                stop = self.commands();
            }
            if stop {
                break;
            }
            let now = Instant::now();
            self.last_turn = now;
            self.refresh();
            let frames = self.turn(now);
            if frames > 0 {
                self.governor.frames(now);
            }
        }
        let s = self.stats;
        info!(
            worker = self.id,
            frames = s.frames,
            forwarded = s.forwarded,
            handed = s.handed,
            handed_ipv4 = s.handed_ipv4,
            handoff_full = s.handoff_full,
            "worker stopped"
        );
    }

    /// Applies worker 0's commands; true on Stop.
    fn commands(&mut self) -> bool {
        while let Ok(c) = self.commands.try_recv() {
            match c {
                Command::Port { stack, slot, port } => {
                    self.close(stack, slot);
                    // The ring's descriptor only (not the TAP too, as worker 0 does): with the
                    // TAP registered as well, the workers' tests lost datagrams on io_uring.
                    let fd: RawFd = port.event_fd();
                    let token = Token((stack << SLOT_BITS) | slot);
                    if let Err(e) =
                        self.poll
                            .registry()
                            .register(&mut SourceFd(&fd), token, Interest::READABLE)
                    {
                        warn!(worker = self.id, "epoll register: {e}");
                        continue;
                    }
                    grow(&mut self.ports, stack, slot, || None);
                    grow(&mut self.deltas, stack, slot, Delta::default);
                    if let Some(q) = self.ports.get_mut(stack).and_then(|s| s.get_mut(slot)) {
                        *q = Some(Queue {
                            port: *port,
                            readable: true,
                        });
                    }
                }
                Command::Close { stack, slot, done } => {
                    self.close(stack, slot);
                    let _ = done.send(());
                }
                Command::Stop => return true,
            }
        }
        false
    }

    /// Closes the queue of vmknic `slot` of netstack `stack`, if the worker has one.
    fn close(&mut self, stack: usize, slot: usize) {
        let q = self
            .ports
            .get_mut(stack)
            .and_then(|s| s.get_mut(slot))
            .and_then(Option::take);
        if let Some(q) = q {
            let fd: RawFd = q.port.event_fd();
            let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
        }
    }

    /// Takes the snapshots worker 0 published since the last turn.
    fn refresh(&mut self) {
        let g = self.published.generation.load(Ordering::Acquire);
        if g == self.seen {
            return;
        }
        self.seen = g;
        let published = self
            .published
            .snapshots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.snapshots.clone_from(&published);
    }

    /// Reads every readable queue and handles its frames; returns the frames read.
    fn turn(&mut self, now: Instant) -> usize {
        let mut frames = 0;
        let mut handed = false;
        for stack in 0..self.ports.len() {
            let slots = self.ports.get(stack).map_or(0, Vec::len);
            for slot in 0..slots {
                let mut budget = RX_BUDGET;
                while budget > 0 {
                    let (n, h) = self.receive(stack, slot, budget, now);
                    frames += n;
                    handed |= h;
                    budget = budget.saturating_sub(n);
                    if n == 0 {
                        break;
                    }
                }
            }
        }
        for q in self.ports.iter_mut().flatten().flatten() {
            if let Err(e) = q.port.flush() {
                debug!(worker = self.id, "flush: {e}");
            }
        }
        if frames > 0 {
            self.publish_counts();
        }
        if handed {
            let _ = self.main.wake();
        }
        frames
    }

    /// Reads one batch from a queue and handles it: (frames read, some handed over).
    fn receive(&mut self, stack: usize, slot: usize, room: usize, now: Instant) -> (usize, bool) {
        let mut batch = std::mem::take(&mut self.rx);
        batch.clear_to(room);
        let Some(Some(q)) = self.ports.get_mut(stack).and_then(|s| s.get_mut(slot)) else {
            self.rx = batch;
            return (0, false);
        };
        if !q.readable {
            self.rx = batch;
            return (0, false);
        }
        if let Err(e) = q.port.recv(&mut batch) {
            // The TAP is gone (worker 0 sees it on its own queue and repairs it): stop
            // reading this queue until it hands over a new one.
            debug!(worker = self.id, "read: {e}");
            q.readable = false;
            batch.clear();
            self.rx = batch;
            let q = self.ports.get_mut(stack).and_then(|s| s.get_mut(slot));
            if let Some(q) = q.and_then(Option::take) {
                let fd: RawFd = q.port.event_fd();
                let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
            }
            return (0, false);
        }
        if !batch.is_full() {
            q.readable = false;
        }
        let n = batch.len();
        let snapshot = self.snapshots.get(stack).cloned().flatten();
        let mut handed = false;
        for k in 0..n {
            let Some(buf) = batch.get_mut(k) else {
                continue;
            };
            let len = buf.len().saturating_sub(VNET_HDR_LEN) as u64;
            if let Some(d) = delta(&mut self.deltas, stack, slot) {
                d.rx_packets += 1;
                d.rx_bytes += len;
            }
            let verdict = match &snapshot {
                Some(s) => forward(s, stack, slot, buf, now, &mut self.ports, &mut self.deltas),
                None => Verdict::Hand,
            };
            match verdict {
                Verdict::Forwarded => self.stats.forwarded += 1,
                Verdict::Hand => {
                    handed = true;
                    self.hand(stack, slot, buf);
                }
            }
        }
        self.stats.frames += n as u64;
        if let Some(Some(q)) = self.ports.get_mut(stack).and_then(|s| s.get_mut(slot)) {
            q.port.release(&mut batch);
        } else {
            batch.clear();
        }
        self.rx = batch;
        (n, handed)
    }

    /// Copies a frame into a free buffer and hands it to worker 0; counts a drop when there
    /// is no free buffer or the queue is full.
    fn hand(&mut self, stack: usize, slot: usize, frame: &[u8]) {
        let sent = match self.free.try_recv() {
            Ok(mut buf) => {
                let len = frame.len().min(buf.len());
                buf[..len].copy_from_slice(&frame[..len]);
                let h = Handed {
                    worker: self.id,
                    stack,
                    slot,
                    len,
                    buf,
                };
                match self.handed.try_send(h) {
                    Ok(()) => true,
                    Err(TrySendError::Full(h) | TrySendError::Disconnected(h)) => {
                        // Back into the pool: it has room for every buffer.
                        let _ = self.refill.try_send(h.buf);
                        false
                    }
                }
            }
            Err(_) => false,
        };
        if sent {
            self.stats.handed += 1;
            let ipv4 = frame.get(VNET_HDR_LEN + 12..VNET_HDR_LEN + 14) == Some(&[0x08, 0x00][..]);
            self.stats.handed_ipv4 += u64::from(ipv4);
        } else {
            self.stats.handoff_full += 1;
            if let Some(d) = delta(&mut self.deltas, stack, slot) {
                d.handoff_full += 1;
            }
        }
    }

    /// Adds this turn's counts to what worker 0 drains.
    fn publish_counts(&mut self) {
        let mut pending = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (stack, slots) in self.deltas.iter_mut().enumerate() {
            for (slot, d) in slots.iter_mut().enumerate() {
                if d.is_zero() {
                    continue;
                }
                grow(&mut pending, stack, slot, Delta::default);
                if let Some(p) = pending.get_mut(stack).and_then(|s| s.get_mut(slot)) {
                    p.add(d);
                }
                *d = Delta::default();
            }
        }
        drop(pending);
        let s = &self.shared;
        s.frames.store(self.stats.frames, Ordering::Relaxed);
        s.forwarded.store(self.stats.forwarded, Ordering::Relaxed);
        s.handed.store(self.stats.handed, Ordering::Relaxed);
        s.handed_ipv4
            .store(self.stats.handed_ipv4, Ordering::Relaxed);
        s.handoff_full
            .store(self.stats.handoff_full, Ordering::Relaxed);
    }
}

/// Grows `v` so that `v[stack][slot]` exists (allocates only when a vmknic or netstack is
/// added).
fn grow<T>(v: &mut Vec<Vec<T>>, stack: usize, slot: usize, new: impl Fn() -> T) {
    while v.len() <= stack {
        v.push(Vec::new());
    }
    if let Some(s) = v.get_mut(stack) {
        while s.len() <= slot {
            s.push(new());
        }
    }
}

fn delta(d: &mut [Vec<Delta>], stack: usize, slot: usize) -> Option<&mut Delta> {
    d.get_mut(stack)?.get_mut(slot)
}

/// The forwarding fast path of a worker: the checks of the engine's ingress and forwarding
/// stages that let a datagram through unchanged, then the MACs rewritten in place and one
/// send on the worker's own queue of the egress vmknic. Anything else goes to worker 0,
/// whose stages decide it (and count drops, send ICMP errors, resolve neighbours).
fn forward<P: Port>(
    s: &Snapshot,
    stack: usize,
    i: usize,
    buf: &mut [u8],
    now: Instant,
    ports: &mut [Vec<Option<Queue<P>>>],
    deltas: &mut [Vec<Delta>],
) -> Verdict {
    let Some(rx) = s.vmknics.get(i) else {
        return Verdict::Hand;
    };
    if !rx.fast_rx || !s.forwarding || s.capturing {
        return Verdict::Hand;
    }
    // Unicast to our MAC, IPv4: ARP, IPv6 and broadcasts are worker 0's.
    let frame = buf.get(VNET_HDR_LEN..).unwrap_or_default();
    if frame.get(..6) != Some(&rx.mac.0[..]) || frame.get(12..14) != Some(&[0x08, 0x00][..]) {
        return Verdict::Hand;
    }
    let Ok(info) = packet::parse_ipv4(buf.get(IP..).unwrap_or_default()) else {
        return Verdict::Hand;
    };
    let hdr = VnetHdr::read(buf);
    let Some(buf) = buf.get_mut(..IP + info.total_len) else {
        return Verdict::Hand;
    };
    let Ok(o) = packet::check_offload(&hdr, buf.get(IP..).unwrap_or_default(), &info) else {
        return Verdict::Hand;
    };
    let (src, dst) = (info.src, info.dst);
    let special = |a| packet::is_martian(a) || s.local.contains(&a) || s.broadcasts.contains(&a);
    if special(src) || special(dst) || info.has_options || info.more_frags || info.frag_offset > 0 {
        return Verdict::Hand;
    }
    // TTL errors and packets too big for the egress need ICMP: worker 0's.
    if info.ttl <= 1 {
        return Verdict::Hand;
    }
    let Some(route) = s.routing.lookup(dst) else {
        return Verdict::Hand;
    };
    let Some(&e) = s.slot_of.get(&route.next_hop.vmknic().0) else {
        return Verdict::Hand;
    };
    let Some(tx) = s.vmknics.get(e) else {
        return Verdict::Hand;
    };
    if o.wire_len > usize::from(tx.mtu) || !(tx.offload || o.is_plain()) {
        return Verdict::Hand;
    }
    let Some(mac) = s.neighbor_on(route.next_hop.neighbor_for(dst), e, now) else {
        return Verdict::Hand;
    };
    let Some(Some(q)) = ports.get_mut(stack).and_then(|p| p.get_mut(e)) else {
        return Verdict::Hand;
    };
    if let Some(ip) = buf.get_mut(IP..) {
        packet::decrement_ttl(ip);
    }
    let frame = buf.get_mut(VNET_HDR_LEN..).unwrap_or_default();
    eth::write_header(frame, mac, tx.mac, ETHERTYPE_IPV4);
    let wire = (buf.len() - VNET_HDR_LEN) as u64;
    let sent = if tx.offload {
        q.port.send_offloaded(buf)
    } else {
        q.port.send(buf.get(VNET_HDR_LEN..).unwrap_or_default())
    };
    if let Some(d) = delta(deltas, stack, e) {
        match sent {
            Ok(true) => {
                d.tx_packets += 1;
                d.tx_bytes += wire;
                d.forwarded += 1;
                if o.gso_size.is_some() {
                    d.gso_forwarded += 1;
                }
            }
            Ok(false) => d.queue_full += 1,
            Err(_) => d.send_failed += 1,
        }
    }
    Verdict::Forwarded
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use vmkstack_vmknic::arp::ArpOp;
    use vmkstack_vmknic::{MacAddr, MemPort};

    use super::*;
    use crate::engine::testlab::{
        arp, config, eth, udp, Lab, GATEWAY, GATEWAY_MAC, HOST0, HOST0_MAC, HOST1, HOST1_MAC,
        REMOTE, VMK0_IP, VMK0_MAC,
    };

    /// A worker's queues on two in-memory ports, and its counts.
    struct Side {
        ports: Vec<Vec<Option<Queue<MemPort>>>>,
        deltas: Vec<Vec<Delta>>,
    }

    impl Side {
        fn new(offload: bool) -> Side {
            let q = || {
                Some(Queue {
                    port: MemPort::new(offload),
                    readable: false,
                })
            };
            Side {
                ports: vec![vec![q(), q()]],
                deltas: vec![vec![Delta::default(), Delta::default()]],
            }
        }

        /// Offers `frame` (received on vmknic 0) to the worker's fast path.
        fn forward(&mut self, s: &Snapshot, frame: &[u8], now: Instant) -> Verdict {
            let mut buf = vec![0u8; VNET_HDR_LEN];
            buf.extend_from_slice(frame);
            forward(s, 0, 0, &mut buf, now, &mut self.ports, &mut self.deltas)
        }

        fn sent(&mut self, slot: usize) -> Vec<Vec<u8>> {
            let q = self.ports[0][slot].as_mut().expect("queue");
            std::iter::from_fn(|| q.port.take_frame()).collect()
        }
    }

    #[test]
    fn test_worker_forwards_as_the_engine_does() {
        for offload in [false, true] {
            let mut lab = Lab::new(&config(true, offload, 1500, ""), [offload; 2]);
            lab.learn(1, HOST1, HOST1_MAC);
            lab.learn(1, GATEWAY, GATEWAY_MAC);
            let s = lab.engine.snapshot();
            let mut w = Side::new(offload);
            for dst in [HOST1, REMOTE] {
                let frame = eth(VMK0_MAC, HOST0_MAC, &udp(HOST0, dst, 64, true, 200));
                assert_eq!(w.forward(&s, &frame, lab.now), Verdict::Forwarded);
                lab.sent(1);
                lab.receive(0, &frame);
                let engine = lab.sent(1);
                assert_eq!(w.sent(1), engine, "byte for byte as the engine (to {dst})");
                assert_eq!(engine.len(), 1);
            }
            let d = w.deltas[0][1];
            assert_eq!((d.forwarded, d.tx_packets), (2, 2));
        }
    }

    #[test]
    fn test_worker_hands_over_what_it_cannot_forward() {
        let mut lab = Lab::new(&config(true, false, 1280, ""), [false; 2]);
        let now = lab.now;
        let mut w = Side::new(false);
        let ip = |dst, ttl, len| eth(VMK0_MAC, HOST0_MAC, &udp(HOST0, dst, ttl, true, len));
        // Nothing resolved: the next hop is worker 0's to resolve.
        let s = lab.engine.snapshot();
        assert_eq!(w.forward(&s, &ip(HOST1, 64, 100), now), Verdict::Hand);
        lab.learn(1, HOST1, HOST1_MAC);
        let s = lab.engine.snapshot();
        let cases = [
            ("resolved", ip(HOST1, 64, 100), Verdict::Forwarded),
            ("TTL 1", ip(HOST1, 1, 100), Verdict::Hand),
            ("for the stack", ip(VMK0_IP, 64, 100), Verdict::Hand),
            ("too big for vmk1, DF", ip(HOST1, 64, 1400), Verdict::Hand),
            (
                "no neighbour for the gateway",
                ip(REMOTE, 64, 100),
                Verdict::Hand,
            ),
            (
                "ARP",
                arp(ArpOp::Request, HOST0_MAC, HOST0, MacAddr([0; 6]), VMK0_IP),
                Verdict::Hand,
            ),
        ];
        for (what, frame, want) in cases {
            assert_eq!(w.forward(&s, &frame, now), want, "{what}");
        }
        // Reachability ends at its deadline, without a new snapshot.
        let late = now + Duration::from_secs(3600);
        assert_eq!(w.forward(&s, &ip(HOST1, 64, 100), late), Verdict::Hand);
        // A capture, or forwarding off: everything to worker 0.
        lab.engine.set_forwarding(false);
        let off = lab.engine.snapshot();
        assert_eq!(w.forward(&off, &ip(HOST1, 64, 100), now), Verdict::Hand);
    }

    #[test]
    fn test_snapshot_key_moves_with_every_change() {
        let mut lab = Lab::new(&config(true, false, 1500, ""), [false; 2]);
        let mut key = lab.engine.snapshot_key();
        let mut moved = |lab: &Lab, what: &str| {
            let k = lab.engine.snapshot_key();
            assert_ne!(k, key, "{what}");
            key = k;
        };
        lab.learn(1, HOST1, HOST1_MAC);
        moved(&lab, "a neighbour learned");
        let mut table = lab.engine.routing().clone();
        table
            .add_static("198.19.9.0/24".parse().expect("net"), HOST1)
            .expect("route");
        lab.engine.set_routing(table);
        moved(&lab, "a route added");
        lab.engine
            .set_vmknic_mtu(vmkstack_routing::VmknicId(1), 1400);
        moved(&lab, "an MTU");
        lab.engine
            .set_vmknic_enabled(vmkstack_routing::VmknicId(1), false);
        moved(&lab, "a vmknic disabled");
        let s = lab.engine.snapshot();
        assert!(!s.vmknics[1].active && s.vmknics[0].active);
        assert!(
            s.neighbor_on(HOST1, 1, lab.now).is_none(),
            "its neighbours gone"
        );
        assert_eq!(lab.engine.snapshot_key(), s.key);
    }
}
