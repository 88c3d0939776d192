//! The data-plane engine of one netstack (ESXi: `defaultTcpipStack`): its vmknics on
//! [`Port`]s, one routing table, one neighbour table and one smoltcp endpoint holding every
//! vmknic address.
//!
//! The engine is split by stage, as Linux splits `ip_input.c`, `ip_forward.c`, `ip_output.c`
//! and `icmp.c`:
//!
//! - `ingress`: a received frame is classified (Ethernet, ARP, IPv4 checks, martians);
//! - `arp`: ARP requests and replies, the neighbour table's retries and failures;
//! - `forward`: TTL, route, DF/MTU, the fast path (MACs rewritten in place) and the slow one;
//! - `local`: delivery into smoltcp and the packets smoltcp sends back;
//! - `egress`: every IP packet that leaves, forwarded or our own: next hop, neighbour
//!   queue, offload finishing, send;
//! - `icmp`: ICMP errors (RFC 1812's rules, rate-limited), routed like any packet.
//!
//! The engine owns no file descriptor and reads no clock: the caller hands it ports and the
//! time of each turn ([`Engine::turn`]). [`crate::Netstack`] runs it on TAPs; the unit tests in
//! `tests.rs` and `benches/forward_path.rs` run it on in-memory ports.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use smoltcp::iface::{Config as IfaceConfig, Interface, SocketSet};
use smoltcp::socket::{tcp, udp};
use smoltcp::wire::{HardwareAddress, IpCidr, Ipv4Cidr};
use thiserror::Error;
use tracing::{debug, info, warn};
use vmkstack_api::capture::Point;
use vmkstack_routing::{Route6Error, RouteError, RoutingTable, RoutingTable6, VmknicId};
use vmkstack_vmknic::arp as arp_wire;
use vmkstack_vmknic::eth::ETH_HDR;
use vmkstack_vmknic::neighbor::{NeighborConfig, NeighborTable};
use vmkstack_vmknic::{Port, RxBatch, VnetHdr, VNET_HDR_LEN};

use crate::config::{Config, VmknicConfig};
use crate::device::{IpDevice, Ring};
use crate::packet::{self, RateLimiter};

mod addr6;
mod arp;
mod capture;
mod counters;
mod dhcp;
mod dhcp6;
mod drop;
mod echo;
mod egress;
mod endpoint;
mod ext6;
mod forward;
mod gather;
mod icmp;
mod ingress;
mod ipv6;
mod local;
mod local6;
mod ops;
mod router6;
mod routes;
mod runtime;
mod snapshot;
#[cfg(test)]
pub(crate) mod testlab;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests6;

pub use addr6::{Addr6, Addr6Origin, Addr6State};
pub use capture::{Capture, CaptureFilter, MAX_CAPTURES, RING_BYTES};
pub use counters::Counters;
pub use dhcp6::DHCP6_PREFIX_LEN;
pub use drop::DropReason;
pub use echo::{EchoReply, FailedPacket, ECHO_IDENT};
pub use endpoint::{Egress, Sent};
pub use ipv6::{EchoReply6, Ping6Error};
pub use routes::SourceGateway;
pub use runtime::{Runtime, Stage, StageStats};
pub use snapshot::{Snapshot, SnapshotKey, VmknicView};

/// Largest frame a vmknic handles: 9000-byte MTU plus the Ethernet header, rounded up.
const FRAME: usize = 9216 + ETH_HDR;
/// A receive slot: a virtio-net header and the largest TCP super-frame (64 KiB IP).
const RX_SLOT: usize = VNET_HDR_LEN + ETH_HDR + 65536;
/// Frames handled from one port per turn before the others get theirs.
const RX_BUDGET: usize = 64;
/// Slots of the receive batch.
const RX_BATCH: usize = 32;
/// Bytes after which a batch is handled before more is read: one super-frame, so that it is
/// forwarded while its bytes are still in the cache.
const RX_BATCH_BYTES: usize = 64 * 1024;
/// Packet slots between smoltcp and the routing core, each way.
const DEVICE_SLOTS: usize = 128;
/// Flows whose segments are merged at once (64 KiB each): smoltcp sends its connections'
/// segments in turn, one each, so one coalescer would merge nothing with two busy connections.
const COALESCERS: usize = 8;
/// ICMP errors built while another borrow is live, sent right after.
const DEFERRED_ICMP: usize = 32;

/// Why an application socket could not be opened.
#[derive(Debug, Error)]
pub enum SocketError {
    /// No route to the destination (`sendto() failed (No route to host)` on ESX).
    #[error(transparent)]
    NoRoute(#[from] RouteError),
    /// The named vmknic does not exist or is disabled.
    #[error("{0} is not an enabled vmknic")]
    NoVmknic(VmknicId),
    /// The vmknic (named, or the one the destination is on) is enabled but its wire is down:
    /// the reason says why (its TAP deleted, its namespace or bridge gone, set down).
    #[error("{0} is down: {1}")]
    LinkDown(VmknicId, String),
    /// No IPv6 route to the destination.
    #[error(transparent)]
    NoRoute6(#[from] Route6Error),
    /// The source address asked for is no enabled vmknic's (`nc -s`).
    #[error("{0} is not an address of an enabled vmknic")]
    NotLocal(IpAddr),
    /// The source and destination addresses are of different families.
    #[error("source {src} and destination {dst} are not of the same address family")]
    Family {
        /// The source asked for.
        src: IpAddr,
        /// The destination.
        dst: IpAddr,
    },
    /// The named vmknic has no IPv6 address.
    #[error("{0} has no IPv6 address")]
    NoIpv6(VmknicId),
    /// A link-local destination with no vmknic named.
    #[error("{0} is a link-local address: name the vmknic it is reached through (-I vmkN)")]
    LinkLocalNeedsVmknic(Ipv6Addr),
    /// smoltcp refused the connect.
    #[error("connect: {0}")]
    Connect(#[from] tcp::ConnectError),
    /// smoltcp refused the bind.
    #[error("bind: {0}")]
    Bind(#[from] udp::BindError),
}

/// One vmknic at run time: its configuration, counters and port.
pub struct Vmknic<P> {
    /// Its configuration.
    pub cfg: VmknicConfig,
    /// Its counters.
    pub counters: Counters,
    port: Option<P>,
    /// The port may still hold frames (readiness is edge-triggered).
    readable: bool,
    /// False once removed at run time (the slot keeps its index, which tokens and the
    /// neighbour table use, and is reused if the same vmkN comes back).
    present: bool,
    /// Why its wire is down although it is enabled (its TAP deleted from outside, its
    /// namespace or bridge gone, its netdev set down): the owner sets and clears it
    /// ([`Engine::set_link_down`]); while set, it takes no part in routing or delivery.
    link_down: Option<String>,
    /// Its port failed to read (the TAP's netdev is gone): the owner looks at it.
    port_failed: bool,
    /// The captures running (a copy of the engine's list).
    taps: capture::Taps,
    /// The IPv6 MTU a router advertised (at most `cfg.mtu`); `None`: `cfg.mtu`.
    mtu6: Option<u16>,
    /// The M and O flags of the last Router Advertisement (kept for the DHCPv6 client).
    ra_flags: Option<(bool, bool)>,
}

impl<P: Port> Vmknic<P> {
    /// The MTU for IPv6: the advertised one, else the vmknic's.
    fn mtu6(&self) -> usize {
        usize::from(self.mtu6.unwrap_or(self.cfg.mtu).min(self.cfg.mtu))
    }

    /// Present, enabled and with a port: takes part in routing and delivery.
    fn active(&self) -> bool {
        self.present && self.cfg.enabled && self.port.is_some() && self.link_down.is_none()
    }

    /// Enabled and its wire up: its connected route and addresses are in use.
    fn routable(&self) -> bool {
        self.cfg.enabled && self.link_down.is_none()
    }

    /// Why its wire is down, while it is (see [`Engine::set_link_down`]).
    pub fn link_down(&self) -> Option<&str> {
        self.link_down.as_deref()
    }

    /// False once removed at run time.
    pub fn present(&self) -> bool {
        self.present
    }

    /// Its port (the TAP on the daemon), if it has one.
    pub fn port(&self) -> Option<&P> {
        self.port.as_ref()
    }

    /// True when the vmknic holds `ip`.
    fn has_addr(&self, ip: Ipv4Addr) -> bool {
        self.cfg.addresses().any(|a| a.addr() == ip)
    }

    /// Its address on the subnet holding `peer`, or its primary address.
    fn addr_toward(&self, peer: Ipv4Addr) -> Ipv4Addr {
        self.cfg
            .addresses()
            .find(|a| a.contains(&peer))
            .or(self.cfg.address)
            .map_or(Ipv4Addr::UNSPECIFIED, |a| a.addr())
    }

    /// True when the port takes frames with a virtio-net header (offloads on).
    fn offload(&self) -> bool {
        self.port.as_ref().is_some_and(|p| p.offload())
    }

    /// Writes one plain frame; counts it or the drop.
    fn send(&mut self, frame: &[u8]) {
        if self.taps.active() {
            self.taps
                .tap(Point::Tx, Some(self.cfg.id.0), None, None, 0, frame);
        }
        let Some(port) = &mut self.port else {
            return self.send_dropped(DropReason::Disabled, frame, 0);
        };
        let sent = port.send(frame);
        self.count_send(sent, frame, 0);
    }

    /// Writes a virtio-net header and its frame (an offloading port only); counts it or the
    /// drop.
    fn send_offloaded(&mut self, hdr_and_frame: &[u8]) {
        if self.taps.active() {
            let gso = VnetHdr::read(hdr_and_frame).gso_size;
            let frame = hdr_and_frame.get(VNET_HDR_LEN..).unwrap_or_default();
            self.taps
                .tap(Point::Tx, Some(self.cfg.id.0), None, None, gso, frame);
        }
        let frame = hdr_and_frame.get(VNET_HDR_LEN..).unwrap_or_default();
        let Some(port) = &mut self.port else {
            let gso = VnetHdr::read(hdr_and_frame).gso_size;
            return self.send_dropped(DropReason::Disabled, frame, gso);
        };
        let sent = port.send_offloaded(hdr_and_frame);
        let gso = VnetHdr::read(hdr_and_frame).gso_size;
        self.count_send(sent, frame, gso);
    }

    /// True when a super-frame may go to its port in two pieces ([`Port::gathers`]): an
    /// offloading port that takes them, and no capture running (it would need the frame
    /// whole).
    fn gathers(&self) -> bool {
        !self.taps.active()
            && self
                .port
                .as_ref()
                .is_some_and(|p| p.offload() && p.gathers())
    }

    /// Writes a virtio-net header and a frame in two pieces, `head` (the header and the
    /// frame's headers) and `tail` (the rest), to a port that [`Vmknic::gathers`]; counts it
    /// or the drop as [`Vmknic::send_offloaded`] does.
    fn send_offloaded_gather(&mut self, head: &[u8], tail: &[u8]) {
        let Some(port) = &mut self.port else {
            return self.counters.drop(DropReason::Disabled);
        };
        let len = head.len().saturating_sub(VNET_HDR_LEN) + tail.len();
        match port.send_offloaded_gather(head, tail) {
            Ok(true) => {
                self.counters.tx_packets += 1;
                self.counters.tx_bytes += len as u64;
            }
            Ok(false) => self.counters.drop(DropReason::QueueFull),
            Err(e) => {
                debug!(vmknic = %self.cfg.id, "send: {e}");
                self.counters.drop(DropReason::Other);
            }
        }
    }

    fn count_send(&mut self, sent: io::Result<bool>, frame: &[u8], gso: u16) {
        match sent {
            Ok(true) => {
                self.counters.tx_packets += 1;
                self.counters.tx_bytes += frame.len() as u64;
            }
            Ok(false) => self.send_dropped(DropReason::QueueFull, frame, gso),
            Err(e) => {
                debug!(vmknic = %self.cfg.id, "send: {e}");
                self.send_dropped(DropReason::Other, frame, gso);
            }
        }
    }

    /// Counts a frame that could not be sent, and offers it at the drop point.
    #[cold]
    fn send_dropped(&mut self, reason: DropReason, frame: &[u8], gso: u16) {
        self.counters.drop(reason);
        if self.taps.active() {
            let id = Some(self.cfg.id.0);
            self.taps
                .tap(Point::Drop, id, None, Some(reason), gso, frame);
            self.counters.note_drop_captured();
        }
    }
}

/// The data plane of one netstack on ports of type `P`. The owner calls [`Engine::turn`] when
/// ports are readable or a deadline ([`Engine::next_deadline`]) passed, and uses
/// [`Engine::tcp_connect`], [`Engine::udp_bind`] and [`Engine::sockets`] for the stack's own
/// traffic.
pub struct Engine<P> {
    name: String,
    forwarding: bool,
    routing: routes::Routes,
    vmknics: Vec<Vmknic<P>>,
    neighbors: NeighborTable,
    iface: Interface,
    device: IpDevice,
    sockets: SocketSet<'static>,
    /// Frames received from one port, handled before the next port is read.
    rx: RxBatch,
    /// One frame being built (ARP, packets leaving through the routing core).
    tx_buf: Box<[u8]>,
    /// Fragments being built.
    frag_buf: Box<[u8]>,
    /// Segments of a TCP super-frame being built.
    seg_buf: Box<[u8]>,
    /// smoltcp's TCP segments merged into super-frames (offloads on), one flow each.
    coalescers: Box<[packet::Coalescer]>,
    /// Fragmented TCP datagrams for us, put together so that their checksum can be checked.
    reasm: packet::Reassembler,
    /// Checksum and TSO offloads on the ports (the configuration's `offloads`).
    offloads: bool,
    /// ICMP errors waiting to be routed.
    deferred: Ring,
    icmp_limit: RateLimiter,
    ident: u16,
    /// smoltcp's time zero.
    epoch: Instant,
    /// The time of the current turn: read once per turn by the owner, not once per packet (a
    /// clock read costs about as much as the whole forwarding step).
    clock: Instant,
    next_port: u16,
    /// Echo replies and failed packets for the stack's diagnostics.
    echo: echo::EchoTap,
    /// DHCP answers for the vmknics' DHCP clients, each behind its vmknic's slot.
    dhcp_in: Ring,
    /// DHCPv6 answers for the vmknics' DHCPv6 clients, each behind its vmknic's slot.
    dhcp6_in: Ring,
    /// The addresses of the active vmknics, and the broadcast addresses of their subnets:
    /// flat copies that the per-packet checks scan (kept by `refresh_addrs`).
    local_addrs: Vec<Ipv4Addr>,
    broadcasts: Vec<Ipv4Addr>,
    /// The captures running (each vmknic keeps a copy for its send path).
    taps: capture::Taps,
    /// The IPv6 routing table.
    routing6: RoutingTable6,
    /// The IPv6 neighbour cache, with its own pending queue.
    neighbors6: NeighborTable<Ipv6Addr>,
    /// The usable IPv6 addresses of the active vmknics (link-local included) and their slots.
    local6: Vec<(Ipv6Addr, usize)>,
    /// Every IPv6 address of the active vmknics with its DAD state (`addr6.rs`).
    addrs6: Vec<Addr6>,
    /// Router discovery: solicitations, advertised routers (`router6.rs`).
    ra6: router6::RouterState,
    /// One IPv6 packet being built (echo replies, Neighbour Discovery, ICMPv6 errors).
    buf6: Box<[u8]>,
    /// ICMPv6 errors built while the neighbour cache was borrowed, sent right after.
    deferred6: Ring,
    /// Echo replies to the stack's identifier (`vmkping -6`), bounded.
    echo6_replies: std::collections::VecDeque<ipv6::EchoReply6>,
    /// New acknowledgements heard on the endpoint's IPv6 connections this turn.
    progress6: local6::Progress6,
    /// IPv6 datagrams for us arriving in fragments, put together (`packet::reasm6`).
    reasm6: packet::Reassembler6,
    /// Identification of the next IPv6 datagram the stack fragments itself.
    frag_id6: u32,
    /// What each stage of the turn cost.
    runtime: Runtime,
    /// A port failed to read since the owner last asked ([`Engine::take_port_failures`]).
    port_failures: bool,
    /// Bumped when the vmknics, their addresses, MTUs or forwarding change (the workers'
    /// snapshot is rebuilt: [`Engine::snapshot_key`]).
    generation: u64,
}

impl<P: Port> Engine<P> {
    /// Builds the engine of `cfg` on `ports` (one per vmknic of `cfg`, in order), sends a
    /// gratuitous ARP for each address, and returns the routing problems found (the default
    /// gateway's with ESX's message); the engine runs anyway. `now` is its time zero.
    pub fn new(
        cfg: &Config,
        ports: impl IntoIterator<Item = P>,
        now: Instant,
    ) -> (Engine<P>, Vec<RouteError>) {
        let (routing, problems) = cfg.routing();
        let (routing6, problems6) = cfg.routing6();
        for p in &problems6 {
            warn!(netstack = %cfg.netstack, "IPv6: {p}");
        }
        let vmknics: Vec<Vmknic<P>> = cfg
            .vmknics
            .iter()
            .zip(ports)
            .map(|(v, port)| Vmknic {
                cfg: v.clone(),
                counters: Counters::default(),
                port: Some(port),
                readable: true,
                present: true,
                link_down: None,
                port_failed: false,
                taps: capture::Taps::default(),
                mtu6: None,
                ra_flags: None,
            })
            .collect();
        let mtu = cfg
            .vmknics
            .iter()
            .map(|v| usize::from(v.mtu))
            .min()
            .unwrap_or(1500);
        let mut device = IpDevice::new(DEVICE_SLOTS, FRAME, mtu);
        // With offloads, smoltcp builds TCP segments up to 64 KiB (TSO; see local.rs).
        device.tso = cfg.offloads;
        let iface = Interface::new(
            IfaceConfig::new(HardwareAddress::Ip),
            &mut device,
            smol_time(now, now),
        );
        let mut engine = Engine {
            name: cfg.netstack.clone(),
            forwarding: cfg.forwarding,
            routing: routes::Routes::new(routing),
            vmknics,
            neighbors: NeighborTable::new(NeighborConfig::default()),
            iface,
            device,
            sockets: SocketSet::new(Vec::new()),
            rx: RxBatch::new(RX_BATCH, RX_SLOT, RX_BATCH_BYTES),
            tx_buf: vec![0; FRAME].into_boxed_slice(),
            frag_buf: vec![0; FRAME].into_boxed_slice(),
            seg_buf: vec![0; FRAME].into_boxed_slice(),
            coalescers: (0..COALESCERS).map(|_| packet::Coalescer::new()).collect(),
            reasm: packet::Reassembler::new(now),
            offloads: cfg.offloads,
            deferred: Ring::new(DEFERRED_ICMP, 576),
            icmp_limit: RateLimiter::new(100, 50),
            ident: 1,
            epoch: now,
            clock: now,
            next_port: 49152,
            echo: echo::EchoTap::new(),
            dhcp_in: Ring::new(dhcp::DHCP_QUEUE, dhcp::DHCP_MAX + 1),
            dhcp6_in: Ring::new(dhcp6::DHCP6_QUEUE, dhcp6::DHCP6_MAX + 1),
            local_addrs: Vec::new(),
            broadcasts: Vec::new(),
            taps: capture::Taps::default(),
            routing6,
            neighbors6: NeighborTable::new(NeighborConfig {
                pending_total: 64,
                ..NeighborConfig::nd(ipv6::reachable_time(
                    ipv6::BASE_REACHABLE,
                    ipv6::seed(&cfg.vmknics),
                ))
            }),
            local6: Vec::new(),
            addrs6: Vec::new(),
            ra6: router6::RouterState::seeded(ipv6::seed(&cfg.vmknics).rotate_left(17)),
            buf6: vec![0; FRAME].into_boxed_slice(),
            deferred6: Ring::new(8, 1280),
            echo6_replies: std::collections::VecDeque::with_capacity(64),
            progress6: local6::Progress6::default(),
            reasm6: packet::Reassembler6::new(now),
            frag_id6: ipv6::seed(&cfg.vmknics) as u32,
            runtime: Runtime::default(),
            port_failures: false,
            generation: 0,
        };
        engine.refresh_addrs();
        for i in 0..engine.vmknics.len() {
            engine.announce(i);
        }
        // The DAD probes of the new IPv6 addresses.
        engine.poll_addrs6();
        info!(netstack = %engine.name, forwarding = engine.forwarding,
            offloads = engine.offloads, "netstack started");
        (engine, problems)
    }

    /// Gives smoltcp the addresses of every active vmknic, and refreshes the lists the
    /// per-packet checks use. Called whenever a vmknic, its state or its addresses change.
    fn refresh_addrs(&mut self) {
        self.generation += 1;
        self.local_addrs.clear();
        self.broadcasts.clear();
        for v in self.vmknics.iter().filter(|v| v.active()) {
            for a in v.cfg.addresses() {
                self.local_addrs.push(a.addr());
                if a.prefix_len() < 31 {
                    self.broadcasts.push(a.broadcast());
                }
            }
        }
        let mut first = None;
        let vmknics = &self.vmknics;
        self.iface.update_ip_addrs(|addrs| {
            addrs.clear();
            for v in vmknics.iter().filter(|v| v.active()) {
                for a in v.cfg.addresses() {
                    first.get_or_insert(a.addr());
                    let cidr = IpCidr::Ipv4(Ipv4Cidr::new(a.addr(), a.prefix_len()));
                    if addrs.push(cidr).is_err() {
                        warn!(address = %a, "smoltcp address table full; address not local");
                    }
                }
            }
        });
        self.routing.set_overrides(
            self.vmknics
                .iter()
                .filter(|v| v.active())
                .filter_map(|v| v.cfg.gateway.map(|g| (v, g)))
                .flat_map(|(v, gateway)| {
                    v.cfg.addresses().map(move |a| SourceGateway {
                        source: a.addr(),
                        vmknic: v.cfg.id,
                        gateway,
                    })
                }),
        );
        // smoltcp only checks that *some* route exists before sending; the real decision is
        // ours (every packet it emits goes through the routing core).
        self.iface.routes_mut().remove_default_ipv4_route();
        if let Some(any) = first {
            let _ = self.iface.routes_mut().add_default_ipv4_route(any);
        }
        // IPv6 addresses go onto smoltcp's interface as they become usable (DAD).
        self.refresh_addrs6();
    }

    /// The netstack's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The routing table.
    pub fn routing(&self) -> &RoutingTable {
        &self.routing
    }

    /// The IPv6 routing table.
    pub fn routing6(&self) -> &RoutingTable6 {
        &self.routing6
    }

    /// The IPv6 neighbour cache.
    pub fn neighbors6(&self) -> &NeighborTable<Ipv6Addr> {
        &self.neighbors6
    }

    /// The per-vmknic default gateway (ESXi 6.5+) that applies to traffic the stack sends
    /// from `source`, if any.
    pub fn vmknic_gateway_for(&self, source: Ipv4Addr) -> Option<SourceGateway> {
        self.routing.override_for(source).copied()
    }

    /// The vmknics, in slot order (removed ones included, see [`Vmknic::present`]).
    pub fn vmknics(&self) -> &[Vmknic<P>] {
        &self.vmknics
    }

    /// The neighbour table.
    pub fn neighbors(&self) -> &NeighborTable {
        &self.neighbors
    }

    /// The port of the vmknic in `slot`, for the owner's device operations.
    pub fn port_mut(&mut self, slot: usize) -> Option<&mut P> {
        self.vmknics.get_mut(slot)?.port.as_mut()
    }

    /// Marks the vmknic in `slot` readable (its port signalled frames).
    pub fn set_readable(&mut self, slot: usize) {
        if let Some(v) = self.vmknics.get_mut(slot) {
            v.readable = true;
        }
    }

    /// True when a port may still hold frames: the owner should not sleep.
    pub fn has_readable(&self) -> bool {
        self.vmknics.iter().any(|v| v.readable && v.port.is_some())
    }

    /// The earliest time the engine has work without new frames: smoltcp's timers, ARP
    /// retries and expiries.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        let smol = self
            .iface
            .poll_delay(smol_time(self.epoch, self.clock), &self.sockets)
            .map(|d| self.clock + Duration::from_micros(d.total_micros()));
        smol.into_iter()
            .chain(self.neighbors.next_deadline())
            .chain(self.neighbors6.next_deadline())
            .chain(self.addrs6_deadline())
            .chain(self.router6_deadline())
            .min()
    }

    /// Sets the time of the work that follows ([`Engine::poll_local`], socket changes): the
    /// owner's clock, as [`Engine::turn`] does.
    pub fn set_time(&mut self, now: Instant) {
        self.clock = now;
        if self.taps.active() {
            self.tick_captures();
        }
    }

    /// One turn at time `now`: reads a batch from every readable port and handles each frame,
    /// runs smoltcp and routes what it sent, then the neighbour table's retries and expiries.
    /// Returns the frames read.
    pub fn turn(&mut self, now: Instant) -> usize {
        self.clock = now;
        if self.taps.active() {
            self.tick_captures();
        }
        let mut frames = 0;
        for i in 0..self.vmknics.len() {
            let mut budget = RX_BUDGET;
            while budget > 0 {
                let n = self.receive(i, budget);
                frames += n;
                budget = budget.saturating_sub(n);
                if n == 0 || !self.vmknics.get(i).is_some_and(|v| v.readable) {
                    break;
                }
            }
        }
        let t = Instant::now();
        self.poll_local();
        let t = self.runtime.add(Stage::Endpoint, 0, t);
        self.confirm_progress6();
        self.poll_neighbors();
        self.poll_neighbors6();
        self.poll_addrs6();
        self.poll_router6();
        self.check_routers6();
        let t = self.runtime.add(Stage::Neighbors, 0, t);
        self.flush();
        self.runtime.add(Stage::PortFlush, 0, t);
        frames
    }

    /// What each stage of the turns so far cost.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Reads one batch (at most `room` frames) from vmknic `i`'s port and handles it.
    fn receive(&mut self, i: usize, room: usize) -> usize {
        if !self.vmknics.get(i).is_some_and(|v| v.readable) {
            return 0;
        }
        let t = Instant::now();
        let mut batch = std::mem::take(&mut self.rx);
        batch.clear_to(room);
        let mut failed = false;
        if let Some(v) = self.vmknics.get_mut(i).filter(|v| v.readable) {
            match &mut v.port {
                Some(port) => {
                    if let Err(e) = port.recv(&mut batch) {
                        // One line per failure, not one per wake-up: the owner looks at the
                        // netdev and marks the vmknic down with the reason.
                        if !v.port_failed {
                            warn!(vmknic = %v.cfg.id, "read: {e}");
                        }
                        v.port_failed = true;
                        failed = true;
                        v.readable = false;
                    }
                    // A batch that is not full emptied the port.
                    if !batch.is_full() {
                        v.readable = false;
                    }
                }
                None => v.readable = false,
            }
        }
        self.port_failures |= failed;
        let n = batch.len();
        let t = self.runtime.add(Stage::PortRecv, n, t);
        for k in 0..n {
            if let Some(buf) = batch.get_mut(k) {
                self.receive_frame(i, buf);
            }
        }
        let t = self.runtime.add(Stage::Handle, n, t);
        // Slots a port lent (io_uring's provided buffers) go back to it.
        match self.vmknics.get_mut(i).and_then(|v| v.port.as_mut()) {
            Some(port) => port.release(&mut batch),
            None => batch.clear(),
        }
        self.runtime.add(Stage::PortRelease, n, t);
        self.rx = batch;
        n
    }

    /// Hands every port's queued sends to the wire (io_uring submits them). [`Engine::turn`]
    /// ends with it; an owner that sends between turns (pings, announcements) calls it
    /// before it sleeps.
    pub fn flush(&mut self) {
        for v in &mut self.vmknics {
            if let Some(port) = &mut v.port {
                if let Err(e) = port.flush() {
                    debug!(vmknic = %v.cfg.id, "flush: {e}");
                    v.counters.drop(DropReason::Other);
                }
            }
        }
    }

    /// Handles one frame received on vmknic `i`: `hdr_and_frame` is a virtio-net header and
    /// the frame, rewritten in place where it is forwarded. Ports call this through
    /// [`Engine::turn`]; the per-packet benchmark calls it directly.
    pub fn receive_frame(&mut self, i: usize, hdr_and_frame: &mut [u8]) {
        let Some(v) = self.vmknics.get_mut(i) else {
            return;
        };
        v.counters.rx_packets += 1;
        v.counters.rx_bytes += hdr_and_frame.len().saturating_sub(VNET_HDR_LEN) as u64;
        if v.taps.active() {
            return self.receive_captured(i, hdr_and_frame);
        }
        if v.active() {
            self.handle_frame(i, hdr_and_frame);
        } else {
            v.counters.drop(DropReason::Disabled);
        }
    }

    /// Handles one frame a data-plane worker read on vmknic `i` and handed over (the worker
    /// counted it received): as [`Engine::receive_frame`], without counting it again.
    pub fn receive_handed(&mut self, i: usize, hdr_and_frame: &mut [u8]) {
        let Some(v) = self.vmknics.get_mut(i) else {
            return;
        };
        if v.taps.active() {
            return self.receive_captured(i, hdr_and_frame);
        }
        if v.active() {
            self.handle_frame(i, hdr_and_frame);
        } else {
            v.counters.drop(DropReason::Disabled);
        }
    }

    /// The counters of the vmknic in `slot`, for the owner to add what its workers counted.
    pub fn counters_mut(&mut self, slot: usize) -> Option<&mut Counters> {
        Some(&mut self.vmknics.get_mut(slot)?.counters)
    }

    /// [`Engine::receive_frame`] while a capture runs: the frame is offered at the receive
    /// point, and again at the drop point with its reason if handling it dropped it (a drop
    /// counted on the vmknic it came in on).
    #[cold]
    fn receive_captured(&mut self, i: usize, hdr_and_frame: &mut [u8]) {
        let Some(v) = self.vmknics.get_mut(i) else {
            return;
        };
        let id = Some(v.cfg.id.0);
        let gso = VnetHdr::read(hdr_and_frame).gso_size;
        let frame = hdr_and_frame.get(VNET_HDR_LEN..).unwrap_or_default();
        v.taps.tap(Point::Rx, id, None, None, gso, frame);
        let before = v.counters.drop_seq();
        if v.active() {
            self.handle_frame(i, hdr_and_frame);
        } else {
            v.counters.drop(DropReason::Disabled);
        }
        let Some(v) = self.vmknics.get(i) else {
            return;
        };
        // A drop the send path captured itself is not captured twice.
        if v.counters.drop_seq() != before && !v.counters.last_drop_captured() {
            let reason = v.counters.last_drop();
            let frame = hdr_and_frame.get(VNET_HDR_LEN..).unwrap_or_default();
            v.taps.tap(Point::Drop, id, None, reason, gso, frame);
        }
    }

    /// Adds a capture: every stage offers it packets from now on. Refused (`false`) when
    /// [`MAX_CAPTURES`] run already.
    pub fn capture_add(&mut self, c: std::sync::Arc<Capture>) -> bool {
        self.taps.prune();
        if self.taps.len() >= MAX_CAPTURES {
            return false;
        }
        self.taps.add(c);
        self.sync_taps();
        true
    }

    /// Captures running.
    pub fn captures(&self) -> usize {
        self.taps.len()
    }

    /// Once per turn while captures run: the turn's time for their records, and closed ones
    /// let go.
    #[cold]
    fn tick_captures(&mut self) {
        self.taps.set_now(self.clock);
        self.taps.prune();
        self.sync_taps();
    }

    /// Gives every vmknic a copy of the engine's captures.
    fn sync_taps(&mut self) {
        for v in &mut self.vmknics {
            v.taps.clone_from(&self.taps);
        }
    }

    fn count(&mut self, i: usize, reason: impl Into<DropReason>) {
        if let Some(v) = self.vmknics.get_mut(i) {
            v.counters.drop(reason);
        }
    }

    /// The broadcast address of a connected subnet.
    #[inline]
    fn is_directed_broadcast(&self, ip: Ipv4Addr) -> bool {
        self.broadcasts.contains(&ip)
    }

    /// True when `ip` is an address of an active vmknic.
    #[inline]
    pub fn is_local(&self, ip: Ipv4Addr) -> bool {
        self.local_addrs.contains(&ip)
    }
}

/// smoltcp's time for `now`, counted from `epoch`.
fn smol_time(epoch: Instant, now: Instant) -> smoltcp::time::Instant {
    smoltcp::time::Instant::from_micros(now.saturating_duration_since(epoch).as_micros() as i64)
}

/// The error for traffic that cannot leave: a vmknic whose wire is down when it is the one
/// named, or the one `dst` (or the default gateway) is on; `otherwise` if none is.
fn down_or<P: Port>(
    vmknics: &[Vmknic<P>],
    via: Option<VmknicId>,
    dst: Ipv4Addr,
    gateway: Option<Ipv4Addr>,
    otherwise: SocketError,
) -> SocketError {
    let on = |v: &Vmknic<P>, a: Ipv4Addr| v.cfg.addresses().any(|n| n.contains(&a));
    vmknics
        .iter()
        .filter(|v| v.present && v.cfg.enabled)
        .filter_map(|v| Some((v, v.link_down.as_ref()?)))
        .find(|(v, _)| match via {
            Some(id) => v.cfg.id == id,
            None => on(v, dst) || gateway.is_some_and(|g| on(v, g)),
        })
        .map_or(otherwise, |(v, why)| {
            SocketError::LinkDown(v.cfg.id, why.clone())
        })
}

/// The index of an enabled vmknic.
fn index_of<P: Port>(vmknics: &[Vmknic<P>], id: VmknicId) -> Option<usize> {
    vmknics.iter().position(|v| v.cfg.id == id && v.active())
}

impl<P> Drop for Engine<P> {
    fn drop(&mut self) {
        for v in &mut self.vmknics {
            if v.port.take().is_some() {
                let c = &v.counters;
                let drops: Vec<String> =
                    c.nonzero_drops().map(|(r, n)| format!("{r}:{n}")).collect();
                info!(
                    vmknic = %v.cfg.id,
                    tap = %v.cfg.tap,
                    rx_packets = c.rx_packets,
                    rx_bytes = c.rx_bytes,
                    tx_packets = c.tx_packets,
                    tx_bytes = c.tx_bytes,
                    forwarded = c.forwarded,
                    delivered = c.delivered,
                    icmp_errors = c.icmp_errors,
                    drops = %drops.join(","),
                    "vmknic down"
                );
            }
        }
    }
}

impl<P> std::fmt::Debug for Engine<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("name", &self.name)
            .field("forwarding", &self.forwarding)
            .field("vmknics", &self.vmknics.len())
            .finish()
    }
}

/// Broadcasts an ARP request for `target` from vmknic `v`.
fn arp_request<P: Port>(v: &mut Vmknic<P>, frame: &mut [u8], target: Ipv4Addr) {
    let src = v.addr_toward(target);
    let n = arp_wire::write_request(frame, v.cfg.mac, src, target);
    if n > 0 {
        v.send(&frame[..n]);
    }
}
