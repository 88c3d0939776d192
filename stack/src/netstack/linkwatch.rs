//! The world changing under the daemon: a vmknic's TAP deleted from outside (`ip link del`),
//! its namespace deleted (the kernel deletes the TAP with it), its bridge deleted or the TAP
//! taken off it, its netdev set down.
//!
//! Three things tell the netstack: the TAP's read error (a deleted TAP wakes its reader with
//! EBADFD), the link events of the daemon's own namespace (rtnetlink, `RTMGRP_LINK`), and a
//! check of every vmknic's netdev once a second (for namespaces the daemon must not hold
//! open: a netlink socket there would keep a deleted namespace, and the TAP in it, alive).
//! A vmknic found faulty is marked down with the reason (listings, `vmkping`), its connected
//! route withdrawn; the netstack then re-creates its TAP and rejoins its namespace and bridge
//! as soon as they exist again, retrying with a backoff (100 ms doubling to 5 s; a missing
//! namespace is a `stat` every 200 ms), and brings it back without a restart. A netdev set
//! down by hand is waited for (looked at every 200 ms), not forced up.

use std::collections::BTreeMap;
use std::os::fd::RawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Token};

use tracing::{debug, info, warn};
use vmkstack_vmknic::netdev::NETNS_RUN_DIR;
use vmkstack_vmknic::{LinkMonitor, LinkState, Netns, Tap, TapPort};

use super::{deregister_port, register_port, tap_port, token, Netstack, StackError};
use crate::config::VmknicConfig;

/// How often every vmknic's netdev is looked at without an event.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// The first retry of a repair, doubled after each failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between two repairs of one vmknic.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often a fault that only waits for the outside is looked at again: a netdev set down
/// (one rtnetlink query) or a namespace not there yet (one `stat`). Cheap, so not backed off:
/// the vmknic comes back within this of the repair from outside.
const WAIT_POLL: Duration = Duration::from_millis(200);
/// The mio token of the link events.
pub(super) const LINK_EVENTS: Token = Token(usize::MAX - 2);

/// What is wrong with a vmknic's wire, and so what repairs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The TAP is gone (deleted, or with its namespace): create it again.
    Gone,
    /// The configured namespace was deleted while something kept it alive with the TAP in
    /// it: close the TAP (it goes with the namespace) and create it again.
    NetnsGone,
    /// Not a port of its configured bridge: join it again.
    Bridge,
    /// Set down (or without carrier) by hand: wait until it is up.
    Down,
}

/// One vmknic's fault.
#[derive(Debug)]
struct Fault {
    kind: Kind,
    /// Why, as listings show it.
    reason: String,
    since: Instant,
    next_try: Instant,
    backoff: Duration,
}

impl Fault {
    /// When to try again: at [`WAIT_POLL`] while only waiting for the outside, else after the
    /// backoff, which doubles up to [`MAX_BACKOFF`].
    fn schedule(&mut self, now: Instant, waiting: bool) {
        if waiting {
            self.next_try = now + WAIT_POLL;
        } else {
            self.next_try = now + self.backoff;
            self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// A vmknic's place: its netstack's index and its slot in that engine.
type Key = (usize, usize);

/// The link watch's state: the faults of vmknics, by netstack and slot.
#[derive(Debug)]
pub(super) struct LinkWatch {
    monitor: Option<LinkMonitor>,
    /// Link events arrived since the last look.
    events: bool,
    faults: BTreeMap<Key, Fault>,
    next_check: Instant,
}

impl LinkWatch {
    /// Opens the link events of the daemon's namespace and registers them with `registry`;
    /// without them (logged), the checks once a second still find every fault.
    pub(super) fn new(registry: &mio::Registry, now: Instant) -> LinkWatch {
        let monitor = match LinkMonitor::open() {
            Ok(m) => {
                let fd: RawFd = m.raw_fd();
                match registry.register(&mut SourceFd(&fd), LINK_EVENTS, Interest::READABLE) {
                    Ok(()) => Some(m),
                    Err(e) => {
                        warn!("link events: {e}; vmknic faults are found once a second");
                        None
                    }
                }
            }
            Err(e) => {
                warn!("link events: {e}; vmknic faults are found once a second");
                None
            }
        };
        LinkWatch {
            monitor,
            events: false,
            faults: BTreeMap::new(),
            next_check: now + CHECK_EVERY,
        }
    }

    /// Link events are waiting (the event loop saw [`LINK_EVENTS`]).
    pub(super) fn woken(&mut self) {
        self.events = true;
    }

    /// Forgets the fault of slot `slot` of netstack `n` (its vmknic was added or removed).
    pub(super) fn forget(&mut self, n: usize, slot: usize) {
        self.faults.remove(&(n, slot));
    }
}

/// True when the namespace named `ns` exists (`ip netns add`).
fn netns_exists(ns: &str) -> bool {
    Path::new(NETNS_RUN_DIR).join(ns).exists()
}

/// True when the error says the TAP's netdev is gone (its descriptor is detached).
fn detached(tap: &Tap) -> bool {
    matches!(
        vmkstack_vmknic::sys::tun_ifname(tap.as_raw_fd()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EBADFD) | Some(libc::ENODEV))
    )
}

/// What is wrong with a vmknic of configuration `cfg` whose netdev is in `link`, if anything.
fn judge(cfg: &VmknicConfig, link: &LinkState) -> Option<(Kind, String)> {
    let tap = &cfg.tap;
    if let Some(ns) = &cfg.netns {
        if link.netns != Netns::Named(ns.clone()) && !netns_exists(ns) {
            return Some((
                Kind::NetnsGone,
                format!("namespace `{ns}` was deleted; re-creating TAP `{tap}` once it exists"),
            ));
        }
    }
    if !link.up {
        return Some((
            Kind::Down,
            format!(
                "TAP `{}` was set down in {}; waiting for it to come up",
                link.name, link.netns
            ),
        ));
    }
    if cfg.enabled && !link.carrier {
        return Some((
            Kind::Down,
            format!(
                "TAP `{}` has no carrier in {}; waiting for it",
                link.name, link.netns
            ),
        ));
    }
    if let Some(br) = &cfg.bridge {
        if link.master.as_deref() != Some(br.as_str()) {
            return Some((
                Kind::Bridge,
                format!(
                    "TAP `{}` is not a port of bridge `{br}` in {} (bridge deleted or TAP \
                     taken off it); rejoining it",
                    link.name, link.netns
                ),
            ));
        }
    }
    None
}

/// Why a vmknic whose TAP is gone is down.
fn gone_reason(cfg: &VmknicConfig) -> String {
    match &cfg.netns {
        Some(ns) if !netns_exists(ns) => format!(
            "namespace `{ns}` was deleted (TAP `{}` went with it); re-creating the TAP once \
             the namespace exists",
            cfg.tap
        ),
        _ => format!("TAP `{}` was deleted from outside; re-creating it", cfg.tap),
    }
}

impl Netstack {
    /// Looks for faults and repairs what is due, in every netstack: after every turn, cheap
    /// when nothing happened (a flag and a clock comparison).
    pub(super) fn watch_links(&mut self, now: Instant) {
        let mut failed: Vec<Key> = Vec::new();
        for n in 0..self.netstack_slots() {
            if let Some(e) = self.engine_mut(n) {
                failed.extend(e.take_port_failures().into_iter().map(|slot| (n, slot)));
            }
        }
        let mut all = now >= self.watch.next_check;
        if std::mem::take(&mut self.watch.events) {
            if let Some(m) = &mut self.watch.monitor {
                all |= m.drain();
            }
        }
        if all {
            self.watch.next_check = now + CHECK_EVERY;
            for n in 0..self.netstack_slots() {
                let slots = self.engine(n).map_or(0, |e| e.vmknics().len());
                for slot in 0..slots {
                    self.check((n, slot), now);
                }
            }
        } else {
            for key in failed {
                self.check(key, now);
            }
        }
        if !self.watch.faults.is_empty() {
            let due: Vec<Key> = self
                .watch
                .faults
                .iter()
                .filter(|(_, f)| f.next_try <= now)
                .map(|(k, _)| *k)
                .collect();
            for key in due {
                self.repair(key, now);
            }
        }
    }

    /// Looks at vmknic `key`'s netdev and marks it down or up accordingly.
    fn check(&mut self, key: Key, now: Instant) {
        let (n, slot) = key;
        let Some(v) = self
            .engine(n)
            .and_then(|e| e.vmknics().get(slot))
            .filter(|v| v.present())
        else {
            return;
        };
        let cfg = v.cfg.clone();
        let verdict = match v.port() {
            // Gone already: the repair brings it back.
            None => return,
            Some(port) => match port.link() {
                Ok(link) => judge(&cfg, &link),
                Err(_) if detached(port) => Some((Kind::Gone, gone_reason(&cfg))),
                Err(e) => {
                    debug!(vmknic = %cfg.id, "cannot look at the TAP: {e}");
                    return;
                }
            },
        };
        match verdict {
            Some((kind, reason)) => {
                if kind == Kind::Gone {
                    self.close_port(key);
                }
                self.mark_down(key, kind, reason, now);
            }
            None => self.mark_up(key, now),
        }
    }

    /// Closes vmknic `key`'s TAP (its netdev goes, wherever it is).
    fn close_port(&mut self, (n, slot): Key) {
        if let Some(w) = &self.workers {
            w.close_port(n, slot);
        }
        if let Some(mut port) = self.engine_mut(n).and_then(|e| e.replace_port(slot, None)) {
            deregister_port(self.poll.registry(), &mut port);
        }
    }

    /// The name of vmknic `key`, for the log.
    fn vmknic_name(&self, (n, slot): Key) -> String {
        self.engine(n)
            .and_then(|e| e.vmknics().get(slot))
            .map(|v| v.cfg.id.to_string())
            .unwrap_or_default()
    }

    /// Tells vmknic `key`'s engine why its wire is down (`None`: it is up).
    fn set_link_down(&mut self, (n, slot): Key, reason: Option<String>) {
        if let Some(e) = self.engine_mut(n) {
            e.set_link_down(slot, reason);
        }
    }

    fn mark_down(&mut self, key: Key, kind: Kind, reason: String, now: Instant) {
        let id = self.vmknic_name(key);
        match self.watch.faults.get_mut(&key) {
            Some(f) => {
                if f.kind != kind {
                    // A new kind of fault gets its repair at once.
                    f.kind = kind;
                    f.next_try = now;
                    f.backoff = FIRST_BACKOFF;
                }
                if f.reason != reason {
                    info!(vmknic = %id, reason = %reason, "vmknic still down");
                    f.reason.clone_from(&reason);
                    self.set_link_down(key, Some(reason));
                }
            }
            None => {
                warn!(vmknic = %id, reason = %reason, "vmknic link down");
                self.set_link_down(key, Some(reason.clone()));
                self.watch.faults.insert(
                    key,
                    Fault {
                        kind,
                        reason,
                        since: now,
                        next_try: now,
                        backoff: FIRST_BACKOFF,
                    },
                );
            }
        }
    }

    fn mark_up(&mut self, key: Key, now: Instant) {
        let Some(f) = self.watch.faults.remove(&key) else {
            return;
        };
        let id = self.vmknic_name(key);
        self.set_link_down(key, None);
        let down_ms = now.saturating_duration_since(f.since).as_millis();
        info!(vmknic = %id, down_ms, was = %f.reason, "vmknic back up");
    }

    /// Tries to repair vmknic `key`'s fault; on failure, the next try waits longer.
    fn repair(&mut self, key: Key, now: Instant) {
        let (n, slot) = key;
        let Some(kind) = self.watch.faults.get(&key).map(|f| f.kind) else {
            return;
        };
        let Some(cfg) = self
            .engine(n)
            .and_then(|e| e.vmknics().get(slot))
            .map(|v| v.cfg.clone())
        else {
            return;
        };
        // Faults that wait for the outside are looked at again soon, at a fixed, cheap rate.
        let waiting = kind == Kind::Down
            || (matches!(kind, Kind::Gone | Kind::NetnsGone)
                && cfg.netns.as_deref().is_some_and(|ns| !netns_exists(ns)));
        let result: Result<(), String> = match kind {
            Kind::Down => Ok(()),
            Kind::NetnsGone | Kind::Gone => {
                if kind == Kind::NetnsGone {
                    self.close_port(key);
                }
                match &cfg.netns {
                    Some(ns) if !netns_exists(ns) => Err(gone_reason(&cfg)),
                    _ => self.recreate(key, &cfg).map_err(|e| {
                        format!("{}; the last try failed: {}", gone_reason(&cfg), chain(&e))
                    }),
                }
            }
            Kind::Bridge => match (
                self.engine_mut(n).and_then(|e| e.port_mut(slot)),
                &cfg.bridge,
            ) {
                (Some(port), Some(br)) => port.join_bridge(br).map_err(|e| {
                    format!(
                        "TAP `{}` is not a port of bridge `{br}`; rejoining it failed: {}",
                        cfg.tap,
                        chain(&e)
                    )
                }),
                _ => Ok(()),
            },
        };
        match result {
            // Repaired (or nothing to do): the netdev says whether it is up now.
            Ok(()) => {
                if let Some(f) = self.watch.faults.get_mut(&key) {
                    f.schedule(now, waiting);
                }
                if self
                    .engine(n)
                    .and_then(|e| e.vmknics().get(slot))
                    .is_some_and(|v| v.port().is_some())
                {
                    self.check(key, now);
                }
            }
            Err(reason) => {
                debug!(vmknic = %cfg.id, "repair failed: {reason}");
                if let Some(f) = self.watch.faults.get_mut(&key) {
                    f.schedule(now, waiting);
                    if f.reason != reason {
                        f.reason.clone_from(&reason);
                        self.set_link_down(key, Some(reason));
                    }
                }
            }
        }
    }

    /// Creates vmknic `key`'s TAP again (namespace, bridge, carrier) and hands it to its
    /// engine. A bridge that is not there yet leaves the TAP in place: the next check finds
    /// it off the bridge and the repair rejoins it.
    fn recreate(&mut self, (n, slot): Key, cfg: &VmknicConfig) -> Result<(), StackError> {
        let err = |source| StackError::Tap {
            vmknic: cfg.id,
            source,
        };
        let (mut tap, queues) =
            Tap::create_queues(&cfg.tap, cfg.mac, cfg.mtu, self.offloads, self.queues)
                .map_err(err)?;
        if let Some(ns) = &cfg.netns {
            tap.move_to_netns(ns).map_err(err)?;
        }
        if let Some(br) = &cfg.bridge {
            if let Err(e) = tap.join_bridge(br) {
                debug!(vmknic = %cfg.id, "{}", chain(&e));
            }
        }
        if !cfg.enabled {
            tap.set_carrier(false)
                .map_err(|source| StackError::Carrier {
                    vmknic: cfg.id,
                    source,
                })?;
        }
        let mut port: TapPort = tap_port(tap, self.io, cfg.id);
        register_port(self.poll.registry(), &mut port, token(n, slot)).map_err(StackError::Poll)?;
        info!(vmknic = %cfg.id, tap = %cfg.tap, io = port.io_name(), "TAP re-created");
        if let Some(e) = self.engine_mut(n) {
            e.replace_port(slot, Some(port));
        }
        self.give_queues(n, slot, cfg.id, queues);
        Ok(())
    }
}

/// An error and its sources on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}
