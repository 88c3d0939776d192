//! The neighbour (ARP) table: IPv4 next hop → MAC, bounded, with a bounded pending queue so that
//! the first packets to an unresolved neighbour wait for ARP instead of being lost.
//!
//! With [`NeighborConfig::nud`] on (IPv6), entries follow RFC 4861 7.3's Neighbour
//! Unreachability Detection: REACHABLE for ReachableTime after a confirmation, then STALE; a
//! packet sent to a STALE entry goes out at once and moves it to DELAY, which becomes PROBE
//! (unicast solicitations every RetransTimer) unless a confirmation comes first; an entry whose
//! probes all go unanswered is removed. With `nud` off (ARP) there are only INCOMPLETE,
//! REACHABLE and FAILED, as before.
//!
//! Pure: the caller passes the time in (`now: Instant`) and sends ARP requests and ICMP errors
//! through callbacks. All packet buffers come from one pool allocated in `new`; the entry map
//! reserves `capacity` up front, so nothing allocates per packet or per neighbour.

use rustc_hash::FxHashMap;
use std::hash::Hash;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::eth::LinkDrop;
use crate::MacAddr;

/// Limits and timers of a `NeighborTable`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighborConfig {
    /// Most entries (default 1024).
    pub capacity: usize,
    /// Most packets waiting for one neighbour (default 16).
    pub pending_per_neighbor: usize,
    /// Most packets waiting in all (default 256); the pool holds this many buffers.
    pub pending_total: usize,
    /// Bytes per queued packet (default 9216, a jumbo frame).
    pub buf_size: usize,
    /// How long a learned entry stays valid (default 20 minutes, as ESX).
    pub reachable: Duration,
    /// ARP requests re-sent after the first before giving up (default 2: requests at 0,
    /// 0.5 and 1.5 s, unreachable at 3.5 s, close to Linux's 3 s).
    pub retries: u32,
    /// Wait after the first request (default 500 ms); it doubles after each retry.
    pub first_retry: Duration,
    /// How long a failed entry answers "unreachable" without re-ARPing (default 3 s).
    pub failed_hold: Duration,
    /// RFC 4861 Neighbour Unreachability Detection (IPv6): STALE, DELAY and PROBE, a constant
    /// `first_retry` (RetransTimer) between solicitations instead of doubling. Default off.
    pub nud: bool,
    /// With `nud`: DELAY_FIRST_PROBE_TIME (default 5 s).
    pub delay_first_probe: Duration,
    /// With `nud`: MAX_UNICAST_SOLICIT, probes sent in PROBE before the entry goes (default 3).
    pub max_unicast_probes: u32,
    /// With `nud`: how long an unused STALE entry is kept (default 10 minutes).
    pub stale_gc: Duration,
}

impl NeighborConfig {
    /// RFC 4861's timers and constants for IPv6 (section 10): RetransTimer 1 s,
    /// MAX_MULTICAST_SOLICIT 3 (a solicitation and two retries), DELAY_FIRST_PROBE_TIME 5 s,
    /// MAX_UNICAST_SOLICIT 3, with `reachable` as ReachableTime (the caller randomises it).
    pub fn nd(reachable: Duration) -> NeighborConfig {
        NeighborConfig {
            reachable,
            retries: 2,
            first_retry: Duration::from_secs(1),
            nud: true,
            ..NeighborConfig::default()
        }
    }
}

impl Default for NeighborConfig {
    fn default() -> Self {
        NeighborConfig {
            capacity: 1024,
            pending_per_neighbor: 16,
            pending_total: 256,
            buf_size: 9216,
            reachable: Duration::from_secs(20 * 60),
            retries: 2,
            first_retry: Duration::from_millis(500),
            failed_hold: Duration::from_secs(3),
            nud: false,
            delay_first_probe: Duration::from_secs(5),
            max_unicast_probes: 3,
            stale_gc: Duration::from_secs(10 * 60),
        }
    }
}

/// State of a neighbour entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// ARP request sent, no answer yet; packets are queued.
    Incomplete,
    /// MAC known.
    Reachable,
    /// No answer after every retry.
    Failed,
    /// (NUD) MAC known but not confirmed for ReachableTime; used, it moves to Delay.
    Stale,
    /// (NUD) Used while Stale: waiting DELAY_FIRST_PROBE_TIME for a confirmation.
    Delay,
    /// (NUD) Unicast solicitations being sent to confirm the MAC.
    Probe,
}

impl State {
    /// Lower-case name for listings.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Incomplete => "incomplete",
            State::Reachable => "reachable",
            State::Failed => "failed",
            State::Stale => "stale",
            State::Delay => "delay",
            State::Probe => "probe",
        }
    }
}

/// One entry, for listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighborEntry<A = Ipv4Addr> {
    /// Neighbour address.
    pub ip: A,
    /// Its MAC, when known.
    pub mac: Option<MacAddr>,
    /// The vmknic it is reached through.
    pub vmknic: u32,
    /// State.
    pub state: State,
    /// Time to the entry's next timer: expiry (Reachable, Failed, Stale), next retry
    /// (Incomplete), first probe (Delay) or next probe (Probe).
    pub expires_in: Option<Duration>,
    /// Packets waiting for it.
    pub queued: usize,
}

/// Outcome of `NeighborTable::resolve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolve {
    /// Send now to this MAC.
    Ready(MacAddr),
    /// Queued; when `send_request` the caller must send an ARP request now.
    Queued {
        /// A new resolution started.
        send_request: bool,
    },
    /// Neighbour known unreachable (failed): caller sends ICMP Host Unreachable.
    Unreachable,
    /// Queue or table full, or packet too big: packet dropped and counted.
    Dropped(LinkDrop),
}

/// A timer outcome reported by `NeighborTable::poll_events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeighborEvent<'a, A = Ipv4Addr> {
    /// Send another ARP request for `ip` on `vmknic`.
    Retry {
        /// Egress vmknic.
        vmknic: u32,
        /// Neighbour being resolved.
        ip: A,
    },
    /// (NUD) Send a unicast solicitation for `ip` to `mac` on `vmknic` (PROBE).
    Probe {
        /// Egress vmknic.
        vmknic: u32,
        /// Neighbour being probed.
        ip: A,
        /// Its MAC as cached.
        mac: MacAddr,
    },
    /// `ip` did not answer: `packet` (queued for it) gets ICMP Host Unreachable.
    Failed {
        /// Egress vmknic.
        vmknic: u32,
        /// Neighbour that failed.
        ip: A,
        /// One queued IP packet, freed after the callback.
        packet: &'a [u8],
    },
}

/// A FIFO of pool slots linked through `Pool::next`.
#[derive(Debug, Clone, Copy, Default)]
struct Queue {
    head: Option<usize>,
    tail: Option<usize>,
    len: usize,
}

/// `count` buffers of `size` bytes in one allocation, with a free list.
struct Pool {
    data: Vec<u8>,
    size: usize,
    lens: Vec<usize>,
    next: Vec<Option<usize>>,
    /// Free slots; its capacity is the slot count, so pushes never reallocate.
    free: Vec<usize>,
}

impl Pool {
    fn new(count: usize, size: usize) -> Pool {
        Pool {
            data: vec![0; count.saturating_mul(size)],
            size,
            lens: vec![0; count],
            next: vec![None; count],
            free: (0..count).rev().collect(),
        }
    }

    fn in_use(&self) -> usize {
        self.lens.len() - self.free.len()
    }

    /// Copies `packet` (at most `size` bytes, checked by the caller) to the tail of `q`.
    fn push(&mut self, q: &mut Queue, packet: &[u8]) -> bool {
        let Some(slot) = self.free.pop() else {
            return false;
        };
        let start = slot * self.size;
        let (Some(dst), Some(len), Some(next)) = (
            self.data.get_mut(start..start + packet.len()),
            self.lens.get_mut(slot),
            self.next.get_mut(slot),
        ) else {
            self.free.push(slot);
            return false;
        };
        dst.copy_from_slice(packet);
        *len = packet.len();
        *next = None;
        match q.tail.and_then(|t| self.next.get_mut(t)) {
            Some(link) => *link = Some(slot),
            None => q.head = Some(slot),
        }
        q.tail = Some(slot);
        q.len += 1;
        true
    }

    /// Unlinks the head of `q`; the caller reads it with `packet` and then `release`s it.
    fn pop(&mut self, q: &mut Queue) -> Option<usize> {
        let slot = q.head?;
        q.head = self.next.get(slot).copied().flatten();
        if q.head.is_none() {
            q.tail = None;
        }
        q.len = q.len.saturating_sub(1);
        Some(slot)
    }

    fn packet(&self, slot: usize) -> &[u8] {
        let start = slot * self.size;
        let len = self.lens.get(slot).copied().unwrap_or(0);
        self.data.get(start..start + len).unwrap_or_default()
    }

    fn release(&mut self, slot: usize) {
        self.free.push(slot);
    }

    /// Hands every packet of `q` to `f` in order and frees it.
    fn drain(&mut self, q: &mut Queue, mut f: impl FnMut(&[u8])) {
        while let Some(slot) = self.pop(q) {
            f(self.packet(slot));
            self.release(slot);
        }
    }
}

struct Entry {
    mac: Option<MacAddr>,
    vmknic: u32,
    state: State,
    /// Next retry (Incomplete), probe (Delay, Probe) or expiry (Reachable, Failed, Stale).
    deadline: Instant,
    /// Requests sent for the current resolution (Incomplete) or probes (Probe).
    sent: u32,
    queue: Queue,
}

/// `now + d`, saturating instead of panicking on overflow.
fn after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(now)
}

/// Wait after the `sent`-th request: `first`, then doubling.
fn backoff(first: Duration, sent: u32) -> Duration {
    first.saturating_mul(2u32.saturating_pow(sent.saturating_sub(1)))
}

/// What a Neighbour Discovery message says about its sender or target (RFC 4861 7.2.3-7.2.5),
/// for [`NeighborTable::learn_nd`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdUpdate {
    /// A solicitation (or router message) with a source link-layer address: the MAC is
    /// recorded, never confirmed (STALE when new or changed).
    Solicitation,
    /// A Neighbour Advertisement with its Solicited and Override flags.
    Advertisement {
        /// S: an answer to our solicitation, so a confirmation of reachability.
        solicited: bool,
        /// O: its link-layer address replaces the cached one.
        override_: bool,
    },
}

/// True when packets may go to the entry's MAC without a state change: Reachable and not
/// expired, or Delay/Probe (NUD only; ARP entries are never in them).
#[inline]
fn usable(e: &Entry, now: Instant) -> bool {
    match e.state {
        State::Reachable => now < e.deadline,
        State::Delay | State::Probe => true,
        _ => false,
    }
}

/// Which entries `make_room` may evict: failed, expired, or (NUD) stale ones.
fn evictable(e: &Entry, now: Instant) -> bool {
    match e.state {
        State::Failed | State::Stale => true,
        State::Reachable => e.deadline <= now,
        _ => false,
    }
}

/// The bounded neighbour table with its pending queues.
pub struct NeighborTable<A = Ipv4Addr> {
    cfg: NeighborConfig,
    /// Fx hashing: the fast path looks up a neighbour per packet; keys can only be on-subnet
    /// senders and the table is bounded, so collisions cannot grow without limit.
    entries: FxHashMap<A, Entry>,
    pool: Pool,
    /// No timer is due before this (a lower bound; `poll` recomputes it).
    next_timer: Option<Instant>,
    /// Bumped whenever a Reachable entry may have appeared, changed or gone: the data-plane
    /// workers' snapshot of resolved neighbours is rebuilt when it moves.
    generation: u64,
}

impl<A: Copy + Eq + Hash + Ord> NeighborTable<A> {
    /// An empty table; allocates the pending pool (`pending_total` × `buf_size` bytes) and the
    /// entry map once.
    pub fn new(cfg: NeighborConfig) -> Self {
        NeighborTable {
            entries: FxHashMap::with_capacity_and_hasher(cfg.capacity, Default::default()),
            pool: Pool::new(cfg.pending_total, cfg.buf_size),
            next_timer: None,
            generation: 0,
            cfg,
        }
    }

    fn arm(&mut self, at: Instant) {
        self.next_timer = Some(self.next_timer.map_or(at, |t| t.min(at)));
    }

    /// The MAC of `ip` if it is Reachable and not expired, or (NUD) in Delay or Probe, where
    /// packets go to the cached MAC while it is being confirmed. Never for Stale: the first
    /// packet to a Stale entry goes through `resolve`, which moves it to Delay.
    pub fn lookup(&self, ip: A, now: Instant) -> Option<MacAddr> {
        let e = self.entries.get(&ip)?;
        usable(e, now).then_some(e.mac).flatten()
    }

    /// The state of `ip`'s entry on `vmknic`, if it has one there (no allocation: the default
    /// router choice asks it of each router).
    pub fn state_on(&self, ip: A, vmknic: u32) -> Option<State> {
        self.entries
            .get(&ip)
            .filter(|e| e.vmknic == vmknic)
            .map(|e| e.state)
    }

    /// Like [`NeighborTable::lookup`], for an entry learned on `vmknic` only: the forwarding
    /// fast path must never send a MAC learned on one wire out of another.
    #[inline]
    pub fn lookup_on(&self, ip: A, vmknic: u32, now: Instant) -> Option<MacAddr> {
        let e = self.entries.get(&ip)?;
        (e.vmknic == vmknic && usable(e, now))
            .then_some(e.mac)
            .flatten()
    }

    /// Like [`NeighborTable::lookup_on`], for a packet that is sent now without going through
    /// [`NeighborTable::resolve`] (a TSO super-frame, too large for the pending queue): with
    /// NUD, a Stale (or expired Reachable) entry is usable too and moves to Delay (RFC 4861
    /// 7.3.3), as `resolve` would move it. `None` leaves the entry as it is.
    pub fn use_on(&mut self, ip: A, vmknic: u32, now: Instant) -> Option<MacAddr> {
        let e = self.entries.get(&ip)?;
        let mac = e.mac.filter(|_| e.vmknic == vmknic)?;
        if usable(e, now) {
            return Some(mac);
        }
        let stale = matches!(e.state, State::Stale | State::Reachable);
        (self.cfg.nud && stale).then(|| self.used(ip, mac, now))
    }

    /// Frees room for one more entry: evicts the Failed or expired entry with the earliest
    /// deadline. False if the table is full of live entries.
    /// Frees a slot when the table is full: a Failed or expired entry first; for a neighbour
    /// our own traffic needs (`for_traffic`), else the longest-known Reachable entry, so that a
    /// flood of ARP senders can fill free slots but never lock out the next hops we use.
    fn make_room(&mut self, now: Instant, for_traffic: bool) -> bool {
        if self.entries.len() < self.cfg.capacity {
            return true;
        }
        let stale = self
            .entries
            .iter()
            .filter(|(_, e)| evictable(e, now))
            .min_by_key(|(_, e)| e.deadline)
            .map(|(ip, _)| *ip);
        let victim = stale.or_else(|| {
            for_traffic
                .then(|| {
                    self.entries
                        .iter()
                        .filter(|(_, e)| e.state == State::Reachable)
                        .min_by_key(|(_, e)| e.deadline)
                        .map(|(ip, _)| *ip)
                })
                .flatten()
        });
        victim.is_some_and(|ip| self.remove(ip))
    }

    /// Resolves `ip` (reached through vmknic `vmknic`) for the IP packet `packet`: Ready if
    /// known; otherwise copies the packet into a pooled buffer in the neighbour's pending queue
    /// (bounded per neighbour and in total) and creates an Incomplete entry (bounded table:
    /// when full, evict the oldest Failed or expired entry, else the longest-known Reachable
    /// one; with neither, refuse with `Dropped(QueueFull)`). A known entry on another vmknic is resolved again on `vmknic`.
    /// After `learn`, call `drain_ready` before sending new packets so that order is kept.
    pub fn resolve(&mut self, ip: A, vmknic: u32, packet: &[u8], now: Instant) -> Resolve {
        if packet.len() > self.cfg.buf_size {
            return Resolve::Dropped(LinkDrop::TooBig);
        }
        let mut queued = 0;
        if let Some(e) = self.entries.get(&ip) {
            match (e.state, e.mac) {
                (State::Reachable, Some(mac)) if e.vmknic == vmknic && now < e.deadline => {
                    return Resolve::Ready(mac)
                }
                (State::Failed, _) if now < e.deadline => return Resolve::Unreachable,
                (State::Reachable | State::Stale | State::Delay | State::Probe, Some(mac))
                    if self.cfg.nud && e.vmknic == vmknic =>
                {
                    return Resolve::Ready(self.used(ip, mac, now));
                }
                _ => queued = e.queue.len,
            }
        }
        if queued >= self.cfg.pending_per_neighbor || self.pool.free.is_empty() {
            return Resolve::Dropped(LinkDrop::QueueFull);
        }
        let first_deadline = after(now, self.cfg.first_retry);
        let fresh = Entry {
            mac: None,
            vmknic,
            state: State::Incomplete,
            deadline: first_deadline,
            sent: 1,
            queue: Queue::default(),
        };
        let send_request = match self.entries.get_mut(&ip) {
            Some(e) if e.state == State::Incomplete && e.vmknic == vmknic => false,
            Some(e) => {
                // Expired, failed long enough ago, or moved to another vmknic: start again and
                // keep whatever is queued.
                *e = Entry {
                    queue: e.queue,
                    ..fresh
                };
                true
            }
            None => {
                if !self.make_room(now, true) {
                    return Resolve::Dropped(LinkDrop::QueueFull);
                }
                self.entries.insert(ip, fresh);
                true
            }
        };
        if send_request {
            self.arm(first_deadline);
            self.generation += 1;
        }
        let Self { entries, pool, .. } = self;
        match entries
            .get_mut(&ip)
            .map(|e| pool.push(&mut e.queue, packet))
        {
            Some(true) => Resolve::Queued { send_request },
            _ => Resolve::Dropped(LinkDrop::QueueFull),
        }
    }

    /// (NUD) A packet goes to the Stale (or expired Reachable) entry `ip`: it moves to Delay
    /// (RFC 4861 7.3.3). Returns `mac` for the caller.
    fn used(&mut self, ip: A, mac: MacAddr, now: Instant) -> MacAddr {
        let delay = after(now, self.cfg.delay_first_probe);
        let moved = match self.entries.get_mut(&ip) {
            Some(e)
                if e.state == State::Stale
                    || (e.state == State::Reachable && now >= e.deadline) =>
            {
                e.state = State::Delay;
                e.deadline = delay;
                true
            }
            _ => false,
        };
        if moved {
            self.arm(delay);
        }
        mac
    }

    /// Sets ReachableTime (NUD: from a Router Advertisement, randomised by the caller); entries
    /// confirmed from now on use it.
    pub fn set_reachable(&mut self, reachable: Duration) {
        self.cfg.reachable = reachable;
    }

    /// Sets RetransTimer (the wait between solicitations, NUD).
    pub fn set_retrans(&mut self, retrans: Duration) {
        self.cfg.first_retry = retrans;
    }

    /// The limits and timers in force.
    pub fn config(&self) -> &NeighborConfig {
        &self.cfg
    }

    /// (NUD) Updates the cache from a Neighbour Discovery message naming `ip` (RFC 4861
    /// 7.2.3 for solicitations, 7.2.5 for advertisements) with the link-layer address `mac`
    /// (if the message carried one), received on `vmknic`. A solicitation creates or updates
    /// a STALE entry; an advertisement never creates one, completes an INCOMPLETE one
    /// (REACHABLE when solicited, else STALE), and changes a known MAC only with the override
    /// flag. Returns true when the entry holds a MAC afterwards: call `drain_ready`.
    pub fn learn_nd(
        &mut self,
        ip: A,
        mac: Option<MacAddr>,
        vmknic: u32,
        update: NdUpdate,
        now: Instant,
    ) -> bool {
        let reachable = after(now, self.cfg.reachable);
        let stale = after(now, self.cfg.stale_gc);
        let entry = self.entries.get_mut(&ip);
        let armed = match (update, entry) {
            (NdUpdate::Solicitation, None) => {
                let Some(mac) = mac else { return false };
                if !self.make_room(now, false) {
                    return false;
                }
                self.entries.insert(
                    ip,
                    Entry {
                        mac: Some(mac),
                        vmknic,
                        state: State::Stale,
                        deadline: stale,
                        sent: 0,
                        queue: Queue::default(),
                    },
                );
                stale
            }
            (NdUpdate::Solicitation, Some(e)) => {
                let Some(mac) = mac else {
                    return e.mac.is_some();
                };
                let fresh = matches!(e.state, State::Incomplete | State::Failed);
                if fresh || e.mac != Some(mac) || e.vmknic != vmknic {
                    e.mac = Some(mac);
                    e.vmknic = vmknic;
                    e.state = State::Stale;
                    e.deadline = stale;
                    e.sent = 0;
                    stale
                } else {
                    return true;
                }
            }
            (NdUpdate::Advertisement { .. }, None) => return false,
            (NdUpdate::Advertisement { solicited, .. }, Some(e))
                if matches!(e.state, State::Incomplete | State::Failed) =>
            {
                let Some(mac) = mac else { return false };
                if e.state == State::Failed {
                    return false;
                }
                e.mac = Some(mac);
                e.vmknic = vmknic;
                e.sent = 0;
                if solicited {
                    e.state = State::Reachable;
                    e.deadline = reachable;
                } else {
                    e.state = State::Stale;
                    e.deadline = stale;
                }
                e.deadline
            }
            (
                NdUpdate::Advertisement {
                    solicited,
                    override_,
                },
                Some(e),
            ) => {
                if e.vmknic != vmknic {
                    return false;
                }
                let differs = mac.is_some_and(|m| e.mac != Some(m));
                if differs && !override_ {
                    // RFC 4861 7.2.5: a different address without O only makes a REACHABLE
                    // entry STALE.
                    if e.state == State::Reachable {
                        e.state = State::Stale;
                        e.deadline = stale;
                    }
                    return true;
                }
                if let Some(m) = mac {
                    e.mac = Some(m);
                }
                if solicited {
                    e.state = State::Reachable;
                    e.deadline = reachable;
                    e.sent = 0;
                } else if differs {
                    e.state = State::Stale;
                    e.deadline = stale;
                    e.sent = 0;
                } else {
                    return true;
                }
                e.deadline
            }
        };
        self.arm(armed);
        true
    }

    /// (NUD) True when an upper-layer confirmation of `ip` on `vmknic` would change something:
    /// its entry holds a MAC there and is STALE, DELAY or PROBE, or REACHABLE with less than
    /// half its ReachableTime left. Lets the caller confirm at most once per half
    /// ReachableTime, whatever the packet rate.
    pub fn wants_confirmation(&self, ip: A, vmknic: u32, now: Instant) -> bool {
        let Some(e) = self.entries.get(&ip) else {
            return false;
        };
        if e.vmknic != vmknic || e.mac.is_none() {
            return false;
        }
        match e.state {
            State::Reachable => e.deadline.saturating_duration_since(now) < self.cfg.reachable / 2,
            State::Stale | State::Delay | State::Probe => true,
            State::Incomplete | State::Failed => false,
        }
    }

    /// (NUD) Upper-layer reachability confirmation (RFC 4861 7.3.1): a connection made forward
    /// progress through `ip` on `vmknic`, which is REACHABLE again for ReachableTime with no
    /// probe. An INCOMPLETE or FAILED entry, or one on another vmknic, is left alone (only
    /// Neighbour Discovery learns a MAC). Returns true when it was confirmed.
    pub fn confirm(&mut self, ip: A, vmknic: u32, now: Instant) -> bool {
        let reachable = after(now, self.cfg.reachable);
        let Some(e) = self.entries.get_mut(&ip) else {
            return false;
        };
        let known = matches!(
            e.state,
            State::Reachable | State::Stale | State::Delay | State::Probe
        );
        if e.vmknic != vmknic || e.mac.is_none() || !known {
            return false;
        }
        if e.state != State::Reachable {
            self.generation += 1;
        }
        e.state = State::Reachable;
        e.deadline = reachable;
        e.sent = 0;
        self.arm(reachable);
        true
    }

    /// Learns ip→mac (ARP). `update_only` refreshes existing entries (of the same vmknic) only.
    /// Returns true if an entry was created/updated. Pending packets of that neighbour become
    /// available through `drain_ready`.
    pub fn learn(
        &mut self,
        ip: A,
        mac: MacAddr,
        vmknic: u32,
        update_only: bool,
        now: Instant,
    ) -> bool {
        let deadline = after(now, self.cfg.reachable);
        match self.entries.get_mut(&ip) {
            Some(e) => {
                if update_only && e.vmknic != vmknic {
                    return false;
                }
                e.mac = Some(mac);
                e.vmknic = vmknic;
                e.state = State::Reachable;
                e.deadline = deadline;
                e.sent = 0;
            }
            None => {
                if update_only || !self.make_room(now, false) {
                    return false;
                }
                let e = Entry {
                    mac: Some(mac),
                    vmknic,
                    state: State::Reachable,
                    deadline,
                    sent: 0,
                    queue: Queue::default(),
                };
                self.entries.insert(ip, e);
            }
        }
        self.arm(deadline);
        self.generation += 1;
        true
    }

    /// Calls `f(vmknic, mac, packet)` for each packet queued for `ip` now that it is resolved,
    /// in arrival order, then frees their buffers. Does nothing unless `ip` is Reachable.
    pub fn drain_ready(&mut self, ip: A, mut f: impl FnMut(u32, MacAddr, &[u8])) {
        let Self { entries, pool, .. } = self;
        let Some(e) = entries.get_mut(&ip) else {
            return;
        };
        if let (State::Reachable | State::Stale | State::Delay | State::Probe, Some(mac)) =
            (e.state, e.mac)
        {
            let vmknic = e.vmknic;
            pool.drain(&mut e.queue, |p| f(vmknic, mac, p));
        }
    }

    /// Timers: for each Incomplete neighbour whose retry time has come, either calls
    /// `retry(vmknic, ip)` (caller sends another ARP request; the wait doubles) or, after
    /// `retries`, marks it Failed and calls `failed(vmknic, ip, packet)` for each queued packet
    /// (caller sends ICMP Host Unreachable), freeing them. Removes Reachable entries
    /// `reachable` after they were learned, and Failed entries after `failed_hold`. With
    /// `nud`: Reachable becomes Stale, Delay becomes Probe, and a probe is reported through
    /// `retry` too (use `poll_events` to get the cached MAC for a unicast solicitation).
    pub fn poll(
        &mut self,
        now: Instant,
        mut retry: impl FnMut(u32, A),
        mut failed: impl FnMut(u32, A, &[u8]),
    ) {
        self.poll_events(now, |ev| match ev {
            NeighborEvent::Retry { vmknic, ip } => retry(vmknic, ip),
            NeighborEvent::Failed { vmknic, ip, packet } => failed(vmknic, ip, packet),
            NeighborEvent::Probe { vmknic, ip, .. } => retry(vmknic, ip),
        });
    }

    /// `poll` with one callback, for callers whose two callbacks would borrow the same state.
    pub fn poll_events(&mut self, now: Instant, mut f: impl FnMut(NeighborEvent<'_, A>)) {
        if self.next_timer.is_none_or(|t| now < t) {
            return;
        }
        let Self {
            cfg,
            entries,
            pool,
            next_timer,
            generation,
        } = self;
        *generation += 1;
        let mut next: Option<Instant> = None;
        entries.retain(|&ip, e| {
            if now >= e.deadline {
                match e.state {
                    State::Incomplete if e.sent <= cfg.retries => {
                        f(NeighborEvent::Retry {
                            vmknic: e.vmknic,
                            ip,
                        });
                        e.sent += 1;
                        let wait = if cfg.nud {
                            cfg.first_retry
                        } else {
                            backoff(cfg.first_retry, e.sent)
                        };
                        e.deadline = after(now, wait);
                    }
                    State::Incomplete => {
                        e.state = State::Failed;
                        e.deadline = after(now, cfg.failed_hold);
                        let vmknic = e.vmknic;
                        pool.drain(&mut e.queue, |packet| {
                            f(NeighborEvent::Failed { vmknic, ip, packet })
                        });
                    }
                    State::Reachable if cfg.nud => {
                        e.state = State::Stale;
                        e.deadline = after(now, cfg.stale_gc);
                    }
                    State::Delay | State::Probe
                        if e.state == State::Delay || e.sent < cfg.max_unicast_probes =>
                    {
                        if let Some(mac) = e.mac {
                            f(NeighborEvent::Probe {
                                vmknic: e.vmknic,
                                ip,
                                mac,
                            });
                        }
                        e.sent = if e.state == State::Delay {
                            1
                        } else {
                            e.sent + 1
                        };
                        e.state = State::Probe;
                        e.deadline = after(now, cfg.first_retry);
                    }
                    State::Reachable
                    | State::Failed
                    | State::Stale
                    | State::Delay
                    | State::Probe => {
                        pool.drain(&mut e.queue, |_| {});
                        return false;
                    }
                }
            }
            next = Some(next.map_or(e.deadline, |n| n.min(e.deadline)));
            true
        });
        *next_timer = next;
    }

    /// When `poll` next needs to run (None if no timer is pending). Never later than the
    /// real next timer; it may be earlier after removals, which only costs an idle `poll`.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.next_timer
    }

    /// Removes `ip`, discarding its queued packets. True if it was there.
    pub fn remove(&mut self, ip: A) -> bool {
        match self.entries.remove(&ip) {
            Some(mut e) => {
                self.generation += 1;
                self.pool.drain(&mut e.queue, |_| {});
                true
            }
            None => false,
        }
    }

    /// Removes every entry reached through `vmknic` (it went down or lost its address),
    /// discarding their queued packets.
    pub fn flush_vmknic(&mut self, vmknic: u32) {
        self.generation += 1;
        let Self { entries, pool, .. } = self;
        entries.retain(|_, e| {
            if e.vmknic == vmknic {
                pool.drain(&mut e.queue, |_| {});
            }
            e.vmknic != vmknic
        });
    }

    /// Every entry, sorted by vmknic then address (allocates: for the control plane).
    pub fn entries(&self, now: Instant) -> Vec<NeighborEntry<A>> {
        let mut v: Vec<NeighborEntry<A>> = self
            .entries
            .iter()
            .map(|(ip, e)| NeighborEntry {
                ip: *ip,
                mac: e.mac,
                vmknic: e.vmknic,
                state: e.state,
                expires_in: Some(e.deadline.saturating_duration_since(now)),
                queued: e.queue.len,
            })
            .collect();
        v.sort_by_key(|e| (e.vmknic, e.ip));
        v
    }

    /// Moves whenever a Reachable entry may have appeared, changed or gone (a copy of the
    /// resolved entries, [`NeighborTable::reachable`], is stale once it moved).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The Reachable entries: address, vmknic, MAC and the time their reachability ends.
    pub fn reachable(&self) -> impl Iterator<Item = (A, u32, MacAddr, Instant)> + '_ {
        self.entries
            .iter()
            .filter_map(|(ip, e)| match (e.state, e.mac) {
                (State::Reachable, Some(mac)) => Some((*ip, e.vmknic, mac, e.deadline)),
                _ => None,
            })
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there is no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Packets waiting in all queues.
    pub fn pending(&self) -> usize {
        self.pool.in_use()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC_A: MacAddr = MacAddr([0x02, 0x50, 0x56, 0x00, 0x00, 0x0a]);
    const MAC_B: MacAddr = MacAddr([0x02, 0x50, 0x56, 0x00, 0x00, 0x0b]);

    fn ip(n: u8) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, 0, n)
    }

    fn small() -> NeighborConfig {
        NeighborConfig {
            capacity: 4,
            pending_per_neighbor: 3,
            pending_total: 5,
            buf_size: 64,
            // The timings the tests were written for (3 retries from 1 s), not the defaults.
            retries: 3,
            first_retry: Duration::from_secs(1),
            ..NeighborConfig::default()
        }
    }

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    type Polled = (Vec<(u32, Ipv4Addr)>, Vec<(u32, Ipv4Addr, Vec<u8>)>);

    /// Polls at `now`; returns (retried, failed packets).
    fn poll(t: &mut NeighborTable, now: Instant) -> Polled {
        let (mut r, mut f) = (vec![], vec![]);
        t.poll(
            now,
            |v, i| r.push((v, i)),
            |v, i, p| f.push((v, i, p.to_vec())),
        );
        (r, f)
    }

    fn drained(t: &mut NeighborTable, i: Ipv4Addr) -> Vec<(u32, MacAddr, Vec<u8>)> {
        let mut out = vec![];
        t.drain_ready(i, |v, m, p| out.push((v, m, p.to_vec())));
        out
    }

    #[test]
    fn test_resolve_queues_and_requests_once() {
        let t0 = Instant::now();
        let mut t = NeighborTable::new(small());
        assert_eq!(
            t.resolve(ip(1), 0, b"one", t0),
            Resolve::Queued { send_request: true }
        );
        assert_eq!(
            t.resolve(ip(1), 0, b"two", t0),
            Resolve::Queued {
                send_request: false
            }
        );
        assert_eq!((t.len(), t.pending()), (1, 2));
        assert_eq!(t.lookup(ip(1), t0), None);
        assert_eq!(t.next_deadline(), Some(at(t0, 1000)));
    }

    #[test]
    fn test_learn_drains_in_order() {
        let t0 = Instant::now();
        let mut t = NeighborTable::new(small());
        for p in [&b"first"[..], b"second", b"third"] {
            assert!(matches!(t.resolve(ip(1), 7, p, t0), Resolve::Queued { .. }));
        }
        assert!(drained(&mut t, ip(1)).is_empty(), "not resolved yet");
        assert!(t.learn(ip(1), MAC_A, 7, false, at(t0, 5)));
        let got = drained(&mut t, ip(1));
        let want: Vec<_> = [&b"first"[..], b"second", b"third"]
            .iter()
            .map(|p| (7, MAC_A, p.to_vec()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(t.pending(), 0);
        assert_eq!(t.lookup(ip(1), at(t0, 5)), Some(MAC_A));
        assert_eq!(t.resolve(ip(1), 7, b"x", at(t0, 6)), Resolve::Ready(MAC_A));
    }

    #[test]
    fn test_queue_bounds() {
        let t0 = Instant::now();
        let mut t = NeighborTable::new(small());
        for _ in 0..3 {
            assert!(matches!(
                t.resolve(ip(1), 0, b"p", t0),
                Resolve::Queued { .. }
            ));
        }
        assert_eq!(
            t.resolve(ip(1), 0, b"p", t0),
            Resolve::Dropped(LinkDrop::QueueFull)
        );
        for _ in 0..2 {
            assert!(matches!(
                t.resolve(ip(2), 0, b"p", t0),
                Resolve::Queued { .. }
            ));
        }
        // Pool (5) exhausted: a new neighbour is refused without creating an entry.
        assert_eq!(
            t.resolve(ip(3), 0, b"p", t0),
            Resolve::Dropped(LinkDrop::QueueFull)
        );
        assert_eq!((t.len(), t.pending()), (2, 5));
        // Draining gives the buffers back.
        t.learn(ip(1), MAC_A, 0, false, t0);
        assert_eq!(drained(&mut t, ip(1)).len(), 3);
        assert_eq!(
            t.resolve(ip(3), 0, b"p", t0),
            Resolve::Queued { send_request: true }
        );
    }

    #[test]
    fn test_too_big() {
        let t0 = Instant::now();
        let mut t = NeighborTable::new(small());
        assert!(matches!(
            t.resolve(ip(1), 0, &[0; 64], t0),
            Resolve::Queued { .. }
        ));
        assert_eq!(
            t.resolve(ip(1), 0, &[0; 65], t0),
            Resolve::Dropped(LinkDrop::TooBig)
        );
    }

    #[test]
    fn test_capacity_evicts_failed_or_expired() {
        let t0 = Instant::now();
        let cfg = NeighborConfig {
            retries: 0,
            ..small()
        };
        let mut t = NeighborTable::new(cfg);
        for n in 1..=4 {
            assert!(t.learn(ip(n), MAC_A, 0, false, at(t0, u64::from(n) - 1)));
        }
        // Full of live entries: an ARP sender is not learned (a flood cannot push out what
        // we use)...
        assert!(!t.learn(ip(5), MAC_B, 0, false, t0));
        // ...but traffic to a new neighbour evicts the longest-known entry.
        assert_eq!(
            t.resolve(ip(5), 0, b"p", t0),
            Resolve::Queued { send_request: true }
        );
        assert_eq!(t.lookup(ip(1), t0), None);
        assert_eq!(t.len(), 4);
        // Back to the four live entries for the rest.
        assert!(t.remove(ip(5)));
        assert!(t.learn(ip(1), MAC_A, 0, false, t0));
        // Once they expire, the oldest is evicted.
        let later = t0 + Duration::from_secs(20 * 60);
        t.learn(ip(2), MAC_A, 0, false, at(t0, 1));
        t.learn(ip(3), MAC_A, 0, false, at(t0, 2));
        t.learn(ip(4), MAC_A, 0, false, at(t0, 3));
        assert_eq!(
            t.resolve(ip(5), 0, b"p", later),
            Resolve::Queued { send_request: true }
        );
        assert_eq!(t.len(), 4);
        assert_eq!(t.lookup(ip(1), later), None);
        assert!(t.entries(later).iter().all(|e| e.ip != ip(1)));
        // A failed entry is evicted too (ip 5 fails after the first wait with retries = 0).
        let (_, failed) = poll(&mut t, later + Duration::from_secs(1));
        assert_eq!(failed.len(), 1);
        let now = later + Duration::from_secs(1);
        for n in 2..=4 {
            t.learn(ip(n), MAC_A, 0, false, now);
        }
        assert!(t.learn(ip(6), MAC_B, 0, false, now));
        assert_eq!(t.lookup(ip(6), now), Some(MAC_B));
        assert!(t.entries(now).iter().all(|e| e.ip != ip(5)));
    }

    #[test]
    fn test_retry_backoff_then_failed() {
        let t0 = Instant::now();
        let mut t = NeighborTable::new(small());
        t.resolve(ip(1), 3, b"a", t0);
        t.resolve(ip(1), 3, b"b", t0);
        // Requests at 0 (by the caller), then retries at 1 s, 3 s and 7 s; fails at 15 s.
        for (ms, want) in [
            (999, 0),
            (1000, 1),
            (2999, 0),
            (3000, 1),
            (6999, 0),
            (7000, 1),
            (14_999, 0),
        ] {
            let (r, f) = poll(&mut t, at(t0, ms));
            assert_eq!(r.len(), want, "at {ms} ms");
            assert!(r.iter().all(|x| *x == (3, ip(1))));
            assert!(f.is_empty());
        }
        assert_eq!(t.next_deadline(), Some(at(t0, 15_000)));
        let mut events = 0;
        t.poll_events(at(t0, 14_999), |_| events += 1);
        assert_eq!(events, 0);
        let (r, f) = poll(&mut t, at(t0, 15_000));
        assert!(r.is_empty());
        assert_eq!(
            f,
            vec![(3, ip(1), b"a".to_vec()), (3, ip(1), b"b".to_vec())]
        );
        assert_eq!(t.pending(), 0);
        assert_eq!(t.entries(at(t0, 15_000))[0].state, State::Failed);
        // Unreachable for failed_hold, without a new request.
        assert_eq!(
            t.resolve(ip(1), 3, b"c", at(t0, 17_999)),
            Resolve::Unreachable
        );
        assert_eq!(t.pending(), 0);
        // Then a new resolution starts.
        assert_eq!(
            t.resolve(ip(1), 3, b"c", at(t0, 18_000)),
            Resolve::Queued { send_request: true }
        );
        let (r, _) = poll(&mut t, at(t0, 19_000));
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn test_failed_entry_expires() {
        let t0 = Instant::now();
        let mut t = NeighborTable::new(NeighborConfig {
            retries: 0,
            ..small()
        });
        t.resolve(ip(1), 0, b"a", t0);
        assert_eq!(poll(&mut t, at(t0, 1000)).1.len(), 1);
        assert_eq!(t.next_deadline(), Some(at(t0, 4000)));
        poll(&mut t, at(t0, 4000));
        assert!(t.is_empty());
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn test_reachable_expires_after_20_minutes() {
        let t0 = Instant::now();
        let mut t = NeighborTable::new(small());
        assert!(t.learn(ip(1), MAC_A, 0, false, t0));
        let expiry = t0 + Duration::from_secs(20 * 60);
        assert_eq!(t.next_deadline(), Some(expiry));
        assert_eq!(
            t.lookup(ip(1), expiry - Duration::from_millis(1)),
            Some(MAC_A)
        );
        assert_eq!(t.lookup(ip(1), expiry), None);
        // An expired entry re-resolves instead of answering from stale state.
        assert_eq!(
            t.resolve(ip(1), 0, b"p", expiry),
            Resolve::Queued { send_request: true }
        );
        t.remove(ip(1));
        t.learn(ip(1), MAC_A, 0, false, t0);
        poll(&mut t, expiry);
        assert!(t.is_empty());
    }

    #[test]
    fn test_update_only() {
        let t0 = Instant::now();
        let mut t = NeighborTable::new(small());
        assert!(!t.learn(ip(1), MAC_A, 0, true, t0));
        assert!(t.is_empty());
        t.learn(ip(1), MAC_A, 0, false, t0);
        assert!(t.learn(ip(1), MAC_B, 0, true, at(t0, 10)));
        assert_eq!(t.lookup(ip(1), at(t0, 10)), Some(MAC_B));
        // Not from another vmknic.
        assert!(!t.learn(ip(1), MAC_A, 1, true, at(t0, 10)));
        // An update completes a pending resolution too.
        t.resolve(ip(2), 0, b"p", t0);
        assert!(t.learn(ip(2), MAC_A, 0, true, t0));
        assert_eq!(drained(&mut t, ip(2)), vec![(0, MAC_A, b"p".to_vec())]);
    }

    #[test]
    fn test_other_vmknic_re_resolves() {
        let t0 = Instant::now();
        let mut t = NeighborTable::new(small());
        t.learn(ip(1), MAC_A, 0, false, t0);
        assert_eq!(
            t.resolve(ip(1), 1, b"p", t0),
            Resolve::Queued { send_request: true }
        );
        t.learn(ip(1), MAC_B, 1, false, t0);
        assert_eq!(drained(&mut t, ip(1)), vec![(1, MAC_B, b"p".to_vec())]);
    }

    #[test]
    fn test_remove_and_flush_free_buffers() {
        let t0 = Instant::now();
        let mut t = NeighborTable::new(small());
        t.resolve(ip(1), 0, b"p", t0);
        t.resolve(ip(2), 1, b"p", t0);
        t.resolve(ip(3), 1, b"p", t0);
        assert!(t.remove(ip(1)));
        assert!(!t.remove(ip(1)));
        t.flush_vmknic(1);
        assert!(t.is_empty());
        assert_eq!(t.pending(), 0);
        poll(&mut t, at(t0, 1000));
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn test_entries_listing() {
        let t0 = Instant::now();
        let mut t = NeighborTable::new(small());
        t.learn(ip(2), MAC_A, 0, false, t0);
        t.resolve(ip(1), 0, b"p", t0);
        let l = t.entries(at(t0, 250));
        assert_eq!(l.len(), 2);
        assert_eq!(
            (l[0].ip, l[0].state, l[0].mac, l[0].queued),
            (ip(1), State::Incomplete, None, 1)
        );
        assert_eq!(l[0].expires_in, Some(Duration::from_millis(750)));
        assert_eq!(
            (l[1].ip, l[1].state.as_str(), l[1].mac),
            (ip(2), "reachable", Some(MAC_A))
        );
    }

    fn nd() -> NeighborConfig {
        NeighborConfig {
            stale_gc: Duration::from_secs(60),
            ..NeighborConfig::nd(Duration::from_secs(30))
        }
    }

    fn state(t: &NeighborTable, i: Ipv4Addr, now: Instant) -> Option<State> {
        t.entries(now).iter().find(|e| e.ip == i).map(|e| e.state)
    }

    /// Polls at `now`; returns the (ip, mac) of the probes and the retries.
    fn probes(t: &mut NeighborTable, now: Instant) -> (Vec<(Ipv4Addr, MacAddr)>, usize) {
        let (mut p, mut r) = (vec![], 0);
        t.poll_events(now, |ev| match ev {
            NeighborEvent::Probe { ip, mac, .. } => p.push((ip, mac)),
            NeighborEvent::Retry { .. } => r += 1,
            NeighborEvent::Failed { .. } => {}
        });
        (p, r)
    }

    const SOLICITED: NdUpdate = NdUpdate::Advertisement {
        solicited: true,
        override_: true,
    };

    #[test]
    fn test_nud_reachable_stale_delay_probe_reachable() {
        let t0 = Instant::now();
        let mut t = NeighborTable::new(nd());
        // Incomplete: solicitations 1 s apart (RetransTimer), not doubling.
        t.resolve(ip(1), 0, b"p", t0);
        assert_eq!(probes(&mut t, at(t0, 1000)).1, 1);
        assert_eq!(probes(&mut t, at(t0, 1999)).1, 0);
        assert_eq!(probes(&mut t, at(t0, 2000)).1, 1);
        // A solicited advertisement: Reachable, the queued packet released.
        assert!(t.learn_nd(ip(1), Some(MAC_A), 0, SOLICITED, at(t0, 2100)));
        assert_eq!(drained(&mut t, ip(1)).len(), 1);
        assert_eq!(state(&t, ip(1), at(t0, 2100)), Some(State::Reachable));
        // ReachableTime later: Stale, still usable at once.
        let t1 = at(t0, 32_100);
        probes(&mut t, t1);
        assert_eq!(state(&t, ip(1), t1), Some(State::Stale));
        assert_eq!(
            t.lookup(ip(1), t1),
            None,
            "the fast path sees only Reachable"
        );
        assert_eq!(t.resolve(ip(1), 0, b"q", t1), Resolve::Ready(MAC_A));
        assert_eq!(state(&t, ip(1), t1), Some(State::Delay));
        assert_eq!(
            t.lookup(ip(1), t1),
            Some(MAC_A),
            "Delay sends to the cached MAC"
        );
        // DELAY_FIRST_PROBE_TIME without confirmation: Probe, a unicast solicitation.
        let (p, _) = probes(&mut t, t1 + Duration::from_secs(5));
        assert_eq!(p, vec![(ip(1), MAC_A)]);
        let t2 = t1 + Duration::from_secs(5);
        assert_eq!(state(&t, ip(1), t2), Some(State::Probe));
        assert_eq!(t.resolve(ip(1), 0, b"r", t2), Resolve::Ready(MAC_A));
        // The answer: Reachable again.
        assert!(t.learn_nd(ip(1), Some(MAC_A), 0, SOLICITED, t2));
        assert_eq!(state(&t, ip(1), t2), Some(State::Reachable));
        assert_eq!(t.lookup(ip(1), t2), Some(MAC_A));
    }

    #[test]
    fn test_use_on_takes_a_stale_entry_to_delay() {
        let t0 = Instant::now();
        let mut t = NeighborTable::new(nd());
        t.learn_nd(ip(1), Some(MAC_A), 0, NdUpdate::Solicitation, t0);
        assert_eq!(
            t.lookup_on(ip(1), 0, t0),
            None,
            "Stale: not for the fast path"
        );
        assert_eq!(t.use_on(ip(1), 1, t0), None, "learned on another vmknic");
        assert_eq!(state(&t, ip(1), t0), Some(State::Stale), "left as it was");
        assert_eq!(t.use_on(ip(1), 0, t0), Some(MAC_A));
        assert_eq!(state(&t, ip(1), t0), Some(State::Delay));
        assert_eq!(t.use_on(ip(1), 0, t0), Some(MAC_A), "Delay: usable");
        // DELAY_FIRST_PROBE_TIME later: a unicast probe, as after `resolve`.
        let (p, _) = probes(&mut t, t0 + Duration::from_secs(5));
        assert_eq!(p, vec![(ip(1), MAC_A)]);
        assert_eq!(t.use_on(ip(2), 0, t0), None, "unknown");
        // Without NUD (ARP) an expired entry is not used: `resolve` asks again.
        let mut arp = NeighborTable::new(NeighborConfig::default());
        arp.learn(ip(3), MAC_B, 0, false, t0);
        assert_eq!(arp.use_on(ip(3), 0, t0), Some(MAC_B));
        let late = t0 + Duration::from_secs(3600);
        assert_eq!(arp.use_on(ip(3), 0, late), None);
    }

    #[test]
    fn test_nud_probes_then_removed() {
        let t0 = Instant::now();
        let mut t = NeighborTable::new(nd());
        t.learn_nd(ip(1), Some(MAC_A), 0, NdUpdate::Solicitation, t0);
        assert_eq!(state(&t, ip(1), t0), Some(State::Stale));
        assert_eq!(t.resolve(ip(1), 0, b"q", t0), Resolve::Ready(MAC_A));
        let mut sent = 0;
        for s in 5..=8 {
            sent += probes(&mut t, t0 + Duration::from_secs(s)).0.len();
        }
        assert_eq!(sent, 3, "MAX_UNICAST_SOLICIT probes at 5, 6 and 7 s");
        assert!(t.is_empty(), "removed at 8 s");
        // The next packet starts a new resolution.
        assert_eq!(
            t.resolve(ip(1), 0, b"x", t0 + Duration::from_secs(9)),
            Resolve::Queued { send_request: true }
        );
    }

    #[test]
    fn test_nud_upper_layer_confirmation() {
        let t0 = Instant::now();
        let mut t = NeighborTable::new(nd());
        // Nothing to confirm: no entry, or one still being resolved.
        assert!(!t.wants_confirmation(ip(1), 0, t0));
        assert!(!t.confirm(ip(1), 0, t0));
        t.resolve(ip(2), 0, b"p", t0);
        assert!(!t.wants_confirmation(ip(2), 0, t0));
        assert!(!t.confirm(ip(2), 0, t0));
        assert_eq!(state(&t, ip(2), t0), Some(State::Incomplete));
        // A DELAY entry confirmed is REACHABLE, and no probe goes out.
        t.learn_nd(ip(1), Some(MAC_A), 0, NdUpdate::Solicitation, t0);
        assert_eq!(t.resolve(ip(1), 0, b"q", t0), Resolve::Ready(MAC_A));
        assert_eq!(state(&t, ip(1), t0), Some(State::Delay));
        assert!(!t.wants_confirmation(ip(1), 1, t0), "another vmknic");
        assert!(!t.confirm(ip(1), 1, t0));
        assert!(t.wants_confirmation(ip(1), 0, t0));
        assert!(t.confirm(ip(1), 0, at(t0, 4000)));
        assert_eq!(state(&t, ip(1), at(t0, 4000)), Some(State::Reachable));
        assert_eq!(probes(&mut t, at(t0, 6000)).0.len(), 0);
        // Freshly confirmed: nothing wanted until half of ReachableTime (30 s) is gone.
        assert!(!t.wants_confirmation(ip(1), 0, at(t0, 5000)));
        assert!(t.wants_confirmation(ip(1), 0, at(t0, 4000 + 15_001)));
        // Confirmed every 10 s, it stays REACHABLE for a minute without a probe.
        for s in 1..=6u64 {
            assert!(t.confirm(ip(1), 0, at(t0, 4000 + s * 10_000)));
            assert_eq!(probes(&mut t, at(t0, 5000 + s * 10_000)).0.len(), 0);
        }
        assert_eq!(state(&t, ip(1), at(t0, 65_000)), Some(State::Reachable));
    }

    #[test]
    fn test_nud_unsolicited_updates() {
        let t0 = Instant::now();
        let mut t = NeighborTable::new(nd());
        // An unsolicited advertisement creates nothing (RFC 4861 7.2.5).
        let unsolicited = NdUpdate::Advertisement {
            solicited: false,
            override_: true,
        };
        assert!(!t.learn_nd(ip(1), Some(MAC_A), 0, unsolicited, t0));
        assert!(t.is_empty());
        // A solicitation from it does: Stale.
        t.learn_nd(ip(1), Some(MAC_A), 0, NdUpdate::Solicitation, t0);
        t.learn_nd(ip(1), Some(MAC_A), 0, SOLICITED, t0);
        assert_eq!(state(&t, ip(1), t0), Some(State::Reachable));
        // The same MAC from a solicitation changes nothing; another makes it Stale.
        t.learn_nd(ip(1), Some(MAC_A), 0, NdUpdate::Solicitation, t0);
        assert_eq!(state(&t, ip(1), t0), Some(State::Reachable));
        // Without override, another MAC only makes it Stale, keeping the old one.
        let no_override = NdUpdate::Advertisement {
            solicited: true,
            override_: false,
        };
        t.learn_nd(ip(1), Some(MAC_B), 0, no_override, t0);
        let e = &t.entries(t0)[0];
        assert_eq!((e.state, e.mac), (State::Stale, Some(MAC_A)));
        // With override, unsolicited: the new MAC, Stale.
        t.learn_nd(ip(1), Some(MAC_B), 0, unsolicited, t0);
        let e = &t.entries(t0)[0];
        assert_eq!((e.state, e.mac), (State::Stale, Some(MAC_B)));
        // A solicitation with another MAC: updated, Stale.
        t.learn_nd(ip(1), Some(MAC_A), 0, SOLICITED, t0);
        t.learn_nd(ip(1), Some(MAC_B), 0, NdUpdate::Solicitation, t0);
        let e = &t.entries(t0)[0];
        assert_eq!((e.state, e.mac), (State::Stale, Some(MAC_B)));
        // An unsolicited advertisement completes an Incomplete entry as Stale and releases
        // its packets.
        t.resolve(ip(2), 0, b"p", t0);
        assert!(t.learn_nd(ip(2), Some(MAC_A), 0, unsolicited, t0));
        assert_eq!(drained(&mut t, ip(2)), vec![(0, MAC_A, b"p".to_vec())]);
        assert_eq!(state(&t, ip(2), t0), Some(State::Stale));
        // An unused Stale entry goes after stale_gc.
        probes(&mut t, t0 + Duration::from_secs(60));
        assert!(t.is_empty());
    }

    #[test]
    fn test_zero_capacity() {
        let t0 = Instant::now();
        let cfg = NeighborConfig {
            capacity: 0,
            pending_total: 0,
            ..small()
        };
        let mut t = NeighborTable::new(cfg);
        assert_eq!(
            t.resolve(ip(1), 0, b"p", t0),
            Resolve::Dropped(LinkDrop::QueueFull)
        );
        assert!(!t.learn(ip(1), MAC_A, 0, false, t0));
    }
}
