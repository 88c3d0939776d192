//! The netstacks on TAP devices: one [`Engine`] per netstack (ESXi: `defaultTcpipStack`,
//! `vmotion`, custom ones) on [`Tap`] ports, the one epoll loop that wakes them all (mio), and
//! the device side of each vmknic (creating its TAP, its carrier, its MTU, its bridge and
//! namespace). Device operations find the TAP's kernel side through its descriptor,
//! wherever it lives now (`vmkstack_vmknic::netdev`): a TAP moved by hand keeps working.
//!
//! Everything the data plane does is the engine's; this file only owns file descriptors and
//! the clock. The default netstack's engine API (sockets, pings, probes, routing, changes) is
//! reached through `Deref`; every netstack's through [`Netstack::engine`] and
//! [`Netstack::engine_mut`] by index ([`Netstack::index_of`]).
//!
//! Why an engine per netstack: a netstack is exactly what an engine already is (a routing
//! table, a neighbour table, a smoltcp endpoint, its vmknics), so separate engines keep the
//! netstacks apart by construction (overlapping subnets, their own ARP tables and sockets)
//! and leave the per-packet path as it was: a frame is handled by the engine whose vmknic
//! received it, found from the event's token, with no netstack lookup and no allocation.

use std::io;
use std::ops::{Deref, DerefMut};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use thiserror::Error;
use tracing::{info, warn};
use vmkstack_routing::{RouteError, VmknicId};
use vmkstack_vmknic::{
    LinkState, Tap, TapError, TapPort, ThreadedTap, UringSizes, UringTap, VNET_HDR_LEN,
};

use crate::config::{Config, IoMode, VmknicConfig};
use crate::engine::Engine;
use crate::governor::PollGovernor;
use crate::metrics::TurnHistogram;
use crate::workers::{WorkerStats, Workers};

mod linkwatch;
use linkwatch::{LinkWatch, LINK_EVENTS};

/// First token free for other event sources registered through [`Netstack::registry`].
pub const FOREIGN_TOKENS: usize = 1 << 24;
/// The mio token of the wake-up (control messages); vmknic slot `i` of netstack `n` uses
/// `Token(n << SLOT_BITS | i)`.
const WAKER: Token = Token(usize::MAX - 1);
/// Bits of a token that number the vmknic slot within its netstack.
const SLOT_BITS: u32 = 16;

/// The token of vmknic slot `slot` of netstack `stack`.
fn token(stack: usize, slot: usize) -> Token {
    Token((stack << SLOT_BITS) | slot)
}

/// Why a netstack could not start, or a device change failed.
#[derive(Debug, Error)]
pub enum StackError {
    /// A TAP device could not be set up.
    #[error("{vmknic}: {source}")]
    Tap {
        /// The vmknic.
        vmknic: VmknicId,
        /// What failed.
        #[source]
        source: TapError,
    },
    /// epoll could not be set up.
    #[error("event loop: {0}")]
    Poll(#[source] io::Error),
    /// The TAP's carrier could not be switched.
    #[error("{vmknic}: carrier: {source}")]
    Carrier {
        /// The vmknic.
        vmknic: VmknicId,
        /// What failed.
        #[source]
        source: io::Error,
    },
}

/// The netstacks on TAP devices with their one event loop. Embedders call [`Netstack::run_once`] in a
/// loop; the engine's API is reached through `Deref`.
pub struct Netstack {
    /// The top-level (default) netstack's engine: index 0, always there.
    engine: Engine<TapPort>,
    /// The other netstacks' engines, index 1 on; a removed one leaves its index empty
    /// (tokens carry the index), and an added one takes the first empty index.
    others: Vec<Option<Engine<TapPort>>>,
    poll: Poll,
    events: Events,
    waker: Arc<Waker>,
    /// How long to keep polling after a frame (adaptive, at most the configuration's
    /// `busy_poll_us`).
    governor: PollGovernor,
    /// When the last turn ran.
    last_turn: Instant,
    /// Checksum and TSO offloads on the TAPs (the configuration's `offloads`).
    offloads: bool,
    /// The TAP I/O asked for (the configuration's `io`); a TAP io_uring refuses runs on
    /// system calls.
    io: IoMode,
    /// How long the turns that handled frames took (the metrics' histogram).
    turns: TurnHistogram,
    /// The vmknics' wires changed from outside: faults found and repaired.
    watch: LinkWatch,
    /// Queues per TAP: one per data-plane worker (the configuration's `workers`).
    queues: usize,
    /// Workers 1..n (`None` with one worker: this loop is the whole data plane).
    workers: Option<Workers>,
    /// The snapshots published to the workers, by netstack index.
    snapshots: Vec<Option<Arc<crate::engine::Snapshot>>>,
}

/// Bytes of io_uring receive buffers per TAP: enough for a burst between two turns (32
/// super-frames, or 256 jumbo frames without offloads), bounded so that vmknics stay cheap.
const URING_RX_BYTES: usize = 4 << 20;

/// Puts a TAP on the I/O backend `io` asks for, falling back to system calls (logged) when
/// io_uring is unavailable or refused.
fn tap_port(tap: Tap, io: IoMode, vmknic: VmknicId) -> TapPort {
    match io {
        IoMode::Syscalls => return TapPort::Syscalls(tap),
        IoMode::Threaded => {
            return match ThreadedTap::new(tap) {
                Ok(t) => TapPort::Threaded(Box::new(t)),
                Err((tap, e)) => {
                    warn!(%vmknic, "no TAP writer thread ({e}): writes on the event loop");
                    TapPort::Syscalls(tap)
                }
            }
        }
        IoMode::Uring => {}
    }
    // A buffer takes the largest frame the TAP hands out: a TCP super-frame with offloads,
    // a jumbo frame without.
    let frame = if tap.offload() { 65536 } else { 9216 };
    let rx_buffer = VNET_HDR_LEN + vmkstack_vmknic::ETH_HDR + frame;
    // A power of two (the buffer ring's rule) whose buffers fit in the byte bound.
    let fit = (URING_RX_BYTES / rx_buffer).clamp(8, 1024);
    let rx_buffers = 1u16 << (usize::BITS - 1 - fit.leading_zeros());
    let sizes = UringSizes {
        rx_buffers,
        rx_buffer,
    };
    match UringTap::new(tap, sizes) {
        Ok(u) => TapPort::Uring(Box::new(u)),
        Err((tap, e)) => {
            warn!(%vmknic, "io_uring unavailable ({e}): one system call per frame");
            TapPort::Syscalls(tap)
        }
    }
}

/// Registers every descriptor of `port` ([`TapPort::event_fds`]) with `registry` under
/// `token`, and tells the port where (it registers its TAP again after re-arming a read).
pub(crate) fn register_port(
    registry: &mio::Registry,
    port: &mut TapPort,
    token: Token,
) -> io::Result<()> {
    for fd in port.event_fds() {
        registry.register(&mut SourceFd(&fd), token, Interest::READABLE)?;
    }
    port.set_epoll(Some((registry.as_raw_fd(), token.0 as u64)));
    Ok(())
}

/// Deregisters every descriptor of `port` from `registry` (before it closes or is handed
/// over).
pub(crate) fn deregister_port(registry: &mio::Registry, port: &mut TapPort) {
    for fd in port.event_fds() {
        let _ = registry.deregister(&mut SourceFd(&fd));
    }
    port.set_epoll(None);
}

/// Creates a vmknic's TAP with `queues` queues: MTU, up, bridge, namespace, queue 0
/// registered with `poll` under `token`. A disabled vmknic gets its TAP too, with the carrier
/// off (the cable is pulled). Returns queue 0's port and the other queues, for the workers.
fn open_tap(
    v: &VmknicConfig,
    offload: bool,
    io: IoMode,
    queues: usize,
    poll: &Poll,
    token: Token,
) -> Result<(TapPort, Vec<Tap>), StackError> {
    let err = |source| StackError::Tap {
        vmknic: v.id,
        source,
    };
    let (mut tap, more) = Tap::create_queues(&v.tap, v.mac, v.mtu, offload, queues).map_err(err)?;
    // Into the namespace first: a bridge named together with a namespace lives there.
    if let Some(ns) = &v.netns {
        tap.move_to_netns(ns).map_err(err)?;
    }
    if let Some(br) = &v.bridge {
        tap.join_bridge(br).map_err(err)?;
    }
    if !v.enabled {
        tap.set_carrier(false).map_err(|e| StackError::Carrier {
            vmknic: v.id,
            source: e,
        })?;
    }
    let mut port = tap_port(tap, io, v.id);
    register_port(poll.registry(), &mut port, token).map_err(StackError::Poll)?;
    info!(vmknic = %v.id, tap = %v.tap, mac = %v.mac, mtu = v.mtu, address = ?v.address,
        portgroup = %v.portgroup, enabled = v.enabled, io = port.io_name(), queues, "vmknic up");
    Ok((port, more))
}

impl Netstack {
    /// Builds the netstacks of `cfg`: creates each vmknic's TAP (MTU, up, bridge, namespace),
    /// starts one engine per netstack on its vmknics, and returns the routing problems found
    /// at start-up (a default gateway's with ESX's message), each with its netstack's name;
    /// the stacks run anyway.
    #[allow(clippy::type_complexity)]
    pub fn new(cfg: &Config) -> Result<(Netstack, Vec<(String, RouteError)>), StackError> {
        let poll = Poll::new().map_err(StackError::Poll)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(StackError::Poll)?);
        let now = Instant::now();
        let busy_poll = Duration::from_micros(u64::from(cfg.busy_poll_us));
        let workers = match cfg.workers {
            0 | 1 => None,
            n => Some(Workers::start(n - 1, busy_poll, waker.clone()).map_err(StackError::Poll)?),
        };
        let mut problems = Vec::new();
        let mut engines = Vec::new();
        for (n, name) in cfg.netstack_names().enumerate() {
            let Some(view) = cfg.view(name) else {
                continue;
            };
            let mut taps = Vec::with_capacity(view.vmknics.len());
            for (i, v) in view.vmknics.iter().enumerate() {
                let (port, more) =
                    open_tap(v, cfg.offloads, cfg.io, cfg.workers, &poll, token(n, i))?;
                taps.push(port);
                if let Some(w) = &workers {
                    for (k, q) in more.into_iter().enumerate() {
                        w.give_port(k + 1, n, i, tap_port(q, cfg.io, v.id));
                    }
                }
            }
            let (engine, p) = Engine::new(&view, taps, now);
            problems.extend(p.into_iter().map(|p| (name.to_string(), p)));
            engines.push(engine);
        }
        let mut engines = engines.into_iter();
        let Some(engine) = engines.next() else {
            // `netstack_names` always yields the top-level netstack.
            return Err(StackError::Poll(io::Error::other("no netstack")));
        };
        let watch = LinkWatch::new(poll.registry(), now);
        let mut stack = Netstack {
            engine,
            others: engines.map(Some).collect(),
            poll,
            events: Events::with_capacity(64),
            waker,
            governor: PollGovernor::new(busy_poll),
            last_turn: now,
            offloads: cfg.offloads,
            io: cfg.io,
            turns: TurnHistogram::default(),
            watch,
            queues: cfg.workers.max(1),
            workers,
            snapshots: Vec::new(),
        };
        stack.publish();
        Ok((stack, problems))
    }

    /// The event loop's registry, for other sources the owner wants to wake it (the port
    /// forwarder's sockets). Their tokens must be at least [`FOREIGN_TOKENS`].
    pub fn registry(&self) -> &mio::Registry {
        self.poll.registry()
    }

    /// A handle that wakes the event loop from another thread.
    pub fn waker(&self) -> Arc<Waker> {
        self.waker.clone()
    }

    /// Waits for frames or timers (at most `max_wait`), then runs one engine turn: frames from
    /// every TAP, smoltcp's sockets and timers, ARP retries and expiries.
    pub fn run_once(&mut self, max_wait: Duration) -> io::Result<()> {
        // What was sent between turns (pings, announcements) leaves before the loop sleeps.
        for e in self.engines_mut() {
            e.flush();
        }
        // Adaptive polling: a frame that comes soon after the last one finds the loop awake.
        // While polling, the last turn's time is recent enough and no deadline matters (every
        // turn runs the timers): the clock is read once per turn, not twice.
        self.publish();
        let readable = self.engine.has_readable()
            || self.others.iter().flatten().any(|e| e.has_readable())
            || self.workers.as_ref().is_some_and(Workers::has_handed);
        let timeout = if readable || self.governor.polling(self.last_turn) {
            Duration::ZERO
        } else {
            let now = Instant::now();
            let next = self.engines_mut().filter_map(|e| e.next_deadline()).min();
            next.map_or(max_wait, |at| {
                max_wait.min(at.saturating_duration_since(now))
            })
        };
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            // io_uring's task work interrupts the wait (it runs before the call returns, so
            // its completions are ready now): look again at once rather than lose the turn.
            // A signal's flag is seen by the caller right after this turn.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                match self.poll.poll(&mut self.events, Some(Duration::ZERO)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
        for ev in self.events.iter() {
            let t = ev.token().0;
            if ev.token() == LINK_EVENTS {
                self.watch.woken();
                continue;
            }
            let (stack, slot) = (t >> SLOT_BITS, t & ((1 << SLOT_BITS) - 1));
            if stack == 0 {
                self.engine.set_readable(slot);
            } else if let Some(Some(e)) = self.others.get_mut(stack - 1) {
                e.set_readable(slot);
            }
        }
        let now = Instant::now();
        self.last_turn = now;
        let mut frames = self.handle_handed(now);
        frames += self.engine.turn(now);
        for e in self.others.iter_mut().flatten() {
            frames += e.turn(now);
        }
        if frames > 0 {
            self.governor.frames(now);
            self.turns.observe(now.elapsed());
        }
        self.watch_links(now);
        self.publish();
        Ok(())
    }

    /// Handles the frames the workers handed over (as if this loop had read them), and adds
    /// what they counted to the engines' counters. Returns the frames handled.
    fn handle_handed(&mut self, now: Instant) -> usize {
        let Some(workers) = self.workers.take() else {
            return 0;
        };
        self.add_worker_counts(&workers);
        let mut frames = 0;
        // At most what the hand-off queues hold at once: the engines' own ports get their
        // turn too.
        while frames < 64 * workers.len() {
            let Some(mut h) = workers.take_handed() else {
                break;
            };
            frames += 1;
            if let Some(e) = self.engine_mut(h.stack) {
                e.set_time(now);
                if let Some(buf) = h.buf.get_mut(..h.len) {
                    e.receive_handed(h.slot, buf);
                }
            }
            workers.give_back(h);
        }
        self.workers = Some(workers);
        frames
    }

    /// Adds what the workers counted to the engines' counters.
    fn add_worker_counts(&mut self, workers: &Workers) {
        workers.drain_counts(|n, slot, c| {
            if let Some(dst) = self.engine_mut(n).and_then(|e| e.counters_mut(slot)) {
                add_counters(dst, c);
            }
        });
    }

    /// Rebuilds and publishes the snapshots of the engines whose forwarding state moved
    /// since they were last published (nothing to do without workers).
    fn publish(&mut self) {
        let Some(workers) = &self.workers else {
            return;
        };
        let slots = 1 + self.others.len();
        let mut changed = self.snapshots.len() != slots;
        self.snapshots.resize(slots, None);
        for n in 0..slots {
            let engine = match n {
                0 => Some(&self.engine),
                i => self.others.get(i - 1).and_then(Option::as_ref),
            };
            let Some(slot) = self.snapshots.get_mut(n) else {
                continue;
            };
            match engine {
                Some(e) if slot.as_ref().is_none_or(|s| s.key != e.snapshot_key()) => {
                    *slot = Some(Arc::new(e.snapshot()));
                    changed = true;
                }
                None if slot.is_some() => {
                    *slot = None;
                    changed = true;
                }
                _ => {}
            }
        }
        if changed {
            workers.publish(self.snapshots.clone());
        }
    }

    /// What the data-plane workers 1..n did so far (empty with one worker).
    pub fn worker_stats(&self) -> Vec<WorkerStats> {
        self.workers.as_ref().map_or_else(Vec::new, Workers::stats)
    }

    /// Hands queues 1..n of vmknic `slot` of netstack `n` to the workers.
    fn give_queues(&self, n: usize, slot: usize, id: VmknicId, queues: Vec<Tap>) {
        if let Some(w) = &self.workers {
            for (k, q) in queues.into_iter().enumerate() {
                w.give_port(k + 1, n, slot, tap_port(q, self.io, id));
            }
        }
    }

    /// How long the turns that handled frames took.
    pub fn turn_histogram(&self) -> &TurnHistogram {
        &self.turns
    }

    /// Runs smoltcp and routes what it sent, at the last turn's time (call after changing a
    /// socket, to send promptly; the daemon calls it once per loop, right after the turn).
    pub fn poll_local(&mut self) {
        let now = self.last_turn;
        for e in self.engines_mut() {
            e.set_time(now);
            e.poll_local();
            e.flush();
        }
        // Changes applied since the turn (routes, vmknics) reach the workers at once.
        self.publish();
    }

    /// Every netstack's engine, the default one first.
    pub fn engines(&self) -> impl Iterator<Item = &Engine<TapPort>> + '_ {
        std::iter::once(&self.engine).chain(self.others.iter().flatten())
    }

    fn engines_mut(&mut self) -> impl Iterator<Item = &mut Engine<TapPort>> + '_ {
        std::iter::once(&mut self.engine).chain(self.others.iter_mut().flatten())
    }

    /// How many netstack indexes there are (some may be free: [`Netstack::engine`] gives
    /// `None` for those).
    pub fn netstack_slots(&self) -> usize {
        1 + self.others.len()
    }

    /// The index of netstack `name` (0 is the default one).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        if self.engine.name() == name {
            return Some(0);
        }
        self.others
            .iter()
            .position(|e| e.as_ref().is_some_and(|e| e.name() == name))
            .map(|i| i + 1)
    }

    /// The engine of netstack `index`.
    pub fn engine(&self, index: usize) -> Option<&Engine<TapPort>> {
        match index {
            0 => Some(&self.engine),
            i => self.others.get(i - 1)?.as_ref(),
        }
    }

    /// The engine of netstack `index`, to change or to run applications on.
    pub fn engine_mut(&mut self, index: usize) -> Option<&mut Engine<TapPort>> {
        match index {
            0 => Some(&mut self.engine),
            i => self.others.get_mut(i - 1)?.as_mut(),
        }
    }

    /// The index of the netstack that holds vmknic `id`.
    pub fn stack_of(&self, id: VmknicId) -> Option<usize> {
        (0..=self.others.len()).find(|&i| self.engine(i).is_some_and(|e| e.slot_of(id).is_some()))
    }

    /// Starts an empty netstack of `cfg` (a view with no vmknics: [`Config::view`]) at run
    /// time; the others are not touched. Returns its index.
    pub fn add_netstack(&mut self, cfg: &Config) -> usize {
        let (engine, _) = Engine::new(cfg, std::iter::empty(), Instant::now());
        match self.others.iter().position(Option::is_none) {
            Some(i) => {
                self.others[i] = Some(engine);
                i + 1
            }
            None => {
                self.others.push(Some(engine));
                self.others.len()
            }
        }
    }

    /// Stops netstack `index` (the caller checked that no vmknic uses it). The default one
    /// cannot be removed: false.
    pub fn remove_netstack(&mut self, index: usize) -> bool {
        match index.checked_sub(1).and_then(|i| self.others.get_mut(i)) {
            Some(slot) => slot.take().is_some(),
            None => false,
        }
    }

    /// Adds a vmknic to its netstack (`cfg.netstack`): its TAP comes up (or stays unplugged if
    /// disabled), then the engine takes it (connected route, local addresses, gratuitous ARP).
    pub fn add_vmknic(&mut self, cfg: &VmknicConfig) -> Result<(), StackError> {
        let n = self.index_of(&cfg.netstack).unwrap_or(0);
        let (offloads, io) = (self.offloads, self.io);
        let Some(engine) = self.engine_mut(n) else {
            return Ok(());
        };
        let slot = engine.free_slot(cfg.id);
        let (tap, more) = open_tap(cfg, offloads, io, self.queues, &self.poll, token(n, slot))?;
        if let Some(engine) = self.engine_mut(n) {
            engine.add_vmknic(cfg, tap);
        }
        self.give_queues(n, slot, cfg.id, more);
        self.watch.forget(n, slot);
        self.publish();
        Ok(())
    }

    /// Removes a vmknic: its engine lets it go and its TAP disappears. False if unknown.
    pub fn remove_vmknic(&mut self, id: VmknicId) -> bool {
        self.detach_vmknic(id).is_some()
    }

    /// Removes a vmknic from its engine and the event loop as [`Netstack::remove_vmknic`]
    /// does, but hands its TAP to the caller instead of closing it: `Some(None)` if it had
    /// none, `None` if the vmknic was unknown. Frames already written stay readable on the
    /// kernel side while the caller keeps the TAP (a DHCP RELEASE the server has yet to read).
    pub fn detach_vmknic(&mut self, id: VmknicId) -> Option<Option<TapPort>> {
        let n = self.stack_of(id)?;
        if let Some(slot) = self.engine(n).and_then(|e| e.slot_of(id)) {
            self.watch.forget(n, slot);
            if let Some(w) = &self.workers {
                w.close_port(n, slot);
            }
        }
        let mut tap = self.engine_mut(n).and_then(|e| e.remove_vmknic(id))?;
        if let Some(tap) = &mut tap {
            deregister_port(self.poll.registry(), tap);
        }
        Some(tap)
    }

    /// Enables or disables a vmknic: its TAP's carrier first (the wire is plugged or pulled),
    /// then its routes and addresses. False if unknown.
    pub fn set_vmknic_enabled(&mut self, id: VmknicId, on: bool) -> Result<bool, StackError> {
        let Some(engine) = self.stack_of(id).and_then(|n| self.engine_mut(n)) else {
            return Ok(false);
        };
        let Some(slot) = engine.slot_of(id) else {
            return Ok(false);
        };
        if let Some(tap) = engine.port_mut(slot) {
            tap.set_carrier(on)
                .map_err(|source| StackError::Carrier { vmknic: id, source })?;
        }
        Ok(engine.set_vmknic_enabled(id, on))
    }

    /// The kernel side of a vmknic's TAP as it is now (wherever it was moved, by the
    /// configuration or by hand): `None` if the vmknic is unknown or has no TAP.
    pub fn link_state(&self, id: VmknicId) -> Option<io::Result<LinkState>> {
        let engine = self.engine(self.stack_of(id)?)?;
        let slot = engine.slot_of(id)?;
        let tap = engine.vmknics().get(slot)?.port()?;
        Some(tap.link())
    }

    /// Turns a vmknic's IPv6 autoconfiguration on or off in its netstack's engine. False if
    /// it is unknown.
    pub fn set_vmknic_ipv6_autoconf(&mut self, id: VmknicId, on: bool) -> bool {
        self.stack_of(id)
            .and_then(|n| self.engine_mut(n))
            .is_some_and(|e| e.set_vmknic_ipv6_autoconf(id, on))
    }

    /// Sets a vmknic's IPv6 switches in its netstack's engine (see
    /// [`Engine::set_vmknic_ipv6_switches`](crate::engine::Engine::set_vmknic_ipv6_switches)). False if it is
    /// unknown.
    pub fn set_vmknic_ipv6_switches(
        &mut self,
        id: VmknicId,
        enabled: bool,
        autoconf: bool,
        dhcp: bool,
    ) -> bool {
        self.stack_of(id)
            .and_then(|n| self.engine_mut(n))
            .is_some_and(|e| e.set_vmknic_ipv6_switches(id, enabled, autoconf, dhcp))
    }

    /// Changes a vmknic's MTU: its TAP's first (in the namespace the TAP's kernel side is in
    /// now), then the engine's. False if unknown.
    pub fn set_vmknic_mtu(&mut self, id: VmknicId, mtu: u16) -> Result<bool, StackError> {
        let Some(engine) = self.stack_of(id).and_then(|n| self.engine_mut(n)) else {
            return Ok(false);
        };
        let Some(slot) = engine.slot_of(id) else {
            return Ok(false);
        };
        if let Some(tap) = engine.port_mut(slot) {
            tap.set_mtu(mtu)
                .map_err(|source| StackError::Tap { vmknic: id, source })?;
        }
        Ok(engine.set_vmknic_mtu(id, mtu))
    }
}

/// Adds a worker's counts to a vmknic's.
fn add_counters(dst: &mut crate::engine::Counters, c: &crate::engine::Counters) {
    dst.rx_packets += c.rx_packets;
    dst.rx_bytes += c.rx_bytes;
    dst.tx_packets += c.tx_packets;
    dst.tx_bytes += c.tx_bytes;
    dst.forwarded += c.forwarded;
    dst.gso_forwarded += c.gso_forwarded;
    for (reason, n) in c.nonzero_drops() {
        dst.add_drops(reason, n);
    }
}

impl Drop for Netstack {
    fn drop(&mut self) {
        // The workers stop first and their last counts join the engines', which log each
        // vmknic's counters as they go.
        if let Some(mut w) = self.workers.take() {
            w.stop();
            self.add_worker_counts(&w);
        }
    }
}

impl Deref for Netstack {
    type Target = Engine<TapPort>;

    fn deref(&self) -> &Engine<TapPort> {
        &self.engine
    }
}

impl DerefMut for Netstack {
    fn deref_mut(&mut self) -> &mut Engine<TapPort> {
        &mut self.engine
    }
}

impl std::fmt::Debug for Netstack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Netstack")
            .field("engine", &self.engine)
            .finish()
    }
}
