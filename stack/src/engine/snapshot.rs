//! What a data-plane worker needs of an engine to forward on its own: a read-only copy of
//! the routing table, the resolved neighbours and each vmknic's MAC, MTU and state, built by
//! the engine's owner (worker 0) after every change and swapped in whole (`crate::workers`).

use std::net::Ipv4Addr;
use std::time::Instant;

use rustc_hash::FxHashMap;
use vmkstack_routing::RoutingTable;
use vmkstack_vmknic::{MacAddr, Port};

use super::Engine;

/// One vmknic as the workers see it.
#[derive(Debug, Clone, Copy)]
pub struct VmknicView {
    /// Its MAC (frames for it carry it; forwarded frames leave with it).
    pub mac: MacAddr,
    /// Its MTU.
    pub mtu: u16,
    /// Present, enabled, with a port and its wire up: takes part in forwarding.
    pub active: bool,
    /// Frames received on it may be forwarded by a worker (active, and no DHCP client
    /// whose answers must reach worker 0 whatever their destination).
    pub fast_rx: bool,
    /// Its port takes a virtio-net header (offloads on).
    pub offload: bool,
}

/// A netstack's forwarding state as the workers use it, immutable once built.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The engine's state this copy was built from ([`Engine::snapshot_key`]).
    pub key: SnapshotKey,
    /// Forwarding between vmknics is on.
    pub forwarding: bool,
    /// A capture runs: every frame goes to worker 0, whose stages offer them to it.
    pub capturing: bool,
    /// The routing table.
    pub routing: RoutingTable,
    /// The vmknics by slot.
    pub vmknics: Vec<VmknicView>,
    /// The vmknics by id number, to their slot (only active ones).
    pub slot_of: FxHashMap<u32, usize>,
    /// The active vmknics' addresses and their subnets' broadcast addresses.
    pub local: Vec<Ipv4Addr>,
    /// Broadcast addresses of the connected subnets.
    pub broadcasts: Vec<Ipv4Addr>,
    /// Resolved neighbours: address to (vmknic slot, MAC, end of reachability).
    pub neighbors: FxHashMap<Ipv4Addr, (u32, MacAddr, Instant)>,
}

/// What a snapshot was built from: it is stale once the engine's key differs.
pub type SnapshotKey = (u64, u64, u64, bool);

impl Snapshot {
    /// The neighbour `ip` if it was resolved on vmknic `slot` and is still reachable at
    /// `now` (the rule of `NeighborTable::lookup_on`).
    #[inline]
    pub fn neighbor_on(&self, ip: Ipv4Addr, slot: usize, now: Instant) -> Option<MacAddr> {
        let (v, mac, until) = self.neighbors.get(&ip)?;
        (*v as usize == slot && now < *until).then_some(*mac)
    }
}

impl<P: Port> Engine<P> {
    /// The state [`Engine::snapshot`] copies: it moves whenever the routing table, the
    /// resolved neighbours, the vmknics or forwarding change, or a capture starts or ends.
    pub fn snapshot_key(&self) -> SnapshotKey {
        (
            self.generation,
            self.routing.generation(),
            self.neighbors.generation(),
            self.taps.active(),
        )
    }

    /// A copy of what the workers need to forward (allocates: built once per change).
    pub fn snapshot(&self) -> Snapshot {
        let vmknics: Vec<VmknicView> = self
            .vmknics
            .iter()
            .map(|v| VmknicView {
                mac: v.cfg.mac,
                mtu: v.cfg.mtu,
                active: v.active(),
                fast_rx: v.active() && !v.cfg.dhcp,
                offload: v.offload(),
            })
            .collect();
        let slot_of = self
            .vmknics
            .iter()
            .enumerate()
            .filter(|(_, v)| v.active())
            .map(|(i, v)| (v.cfg.id.0, i))
            .collect();
        Snapshot {
            key: self.snapshot_key(),
            forwarding: self.forwarding,
            capturing: self.taps.active(),
            routing: (*self.routing).clone(),
            vmknics,
            slot_of,
            local: self.local_addrs.clone(),
            broadcasts: self.broadcasts.clone(),
            neighbors: self
                .neighbors
                .reachable()
                .map(|(ip, slot, mac, until)| (ip, (slot, mac, until)))
                .collect(),
        }
    }
}
