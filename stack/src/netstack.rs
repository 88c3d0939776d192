//! One netstack (ESXi: `defaultTcpipStack`): its vmknics on TAP devices, one routing table,
//! one neighbour table, one smoltcp endpoint holding every vmknic address, and the event loop
//! that moves frames between them.
//!
//! Every IP packet that leaves, forwarded or sent by smoltcp, goes through the same routing
//! core: LPM lookup, egress vmknic, next hop, neighbour resolution (with a bounded pending queue,
//! so the first packet to a new neighbour is sent once ARP answers), Ethernet header, TAP.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet};
use smoltcp::socket::{tcp, udp};
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr, IpEndpoint, Ipv4Cidr};
use thiserror::Error;
use tracing::{debug, info, warn};
use vmkstack_routing::{RouteError, RoutingTable, VmknicId};
use vmkstack_vmknic::arp;
use vmkstack_vmknic::eth::{self, DropReason, Ingress, ETHERTYPE_IPV4, ETH_HDR};
use vmkstack_vmknic::neighbor::{NeighborConfig, NeighborEvent, NeighborTable, Resolve};
use vmkstack_vmknic::{Tap, TapError, VnetHdr, VNET_HDR_LEN};

use crate::config::{Config, VmknicConfig};

mod ops;
mod probe;

use crate::counters::Counters;
use crate::device::{IpDevice, Ring};
use crate::packet::{self, IcmpError, Offload, RateLimiter};
pub use probe::{PingError, PingId, ProbeError, ProbeId};

/// Largest frame a vmknic handles: 9000-byte MTU plus the Ethernet header, rounded up.
const FRAME: usize = 9216 + ETH_HDR;
/// Where a received frame starts in `rx_buf`: after its virtio-net header.
const RX_FRAME: usize = VNET_HDR_LEN;
/// Where a received IP packet starts in `rx_buf`.
const RX_IP: usize = RX_FRAME + ETH_HDR;
/// The receive buffer: a virtio-net header and the largest TCP super-frame (64 KiB IP).
const RX_BUF: usize = RX_IP + 65536;
/// Packet slots between smoltcp and the routing core, each way.
const DEVICE_SLOTS: usize = 128;
/// Frames read from one TAP before the others get their turn.
const RX_BUDGET: usize = 64;
/// ICMP errors built while another borrow is live, sent right after.
const DEFERRED_ICMP: usize = 32;
/// First token free for other event sources registered through [`Netstack::registry`].
pub const FOREIGN_TOKENS: usize = 1 << 24;
/// The mio token of the wake-up (control messages); vmknic `i` uses `Token(i)`.
const WAKER: Token = Token(usize::MAX - 1);

/// Why a netstack could not start.
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

/// Why an application socket could not be opened.
#[derive(Debug, Error)]
pub enum SocketError {
    /// No route to the destination (`sendto() failed (No route to host)` on ESX).
    #[error(transparent)]
    NoRoute(#[from] RouteError),
    /// The named vmknic does not exist or is disabled.
    #[error("{0} is not an enabled vmknic")]
    NoVmknic(VmknicId),
    /// smoltcp refused the connect.
    #[error("connect: {0}")]
    Connect(#[from] tcp::ConnectError),
    /// smoltcp refused the bind.
    #[error("bind: {0}")]
    Bind(#[from] udp::BindError),
}

/// One vmknic at run time.
pub struct Vmknic {
    /// Its configuration.
    pub cfg: VmknicConfig,
    /// Its counters.
    pub counters: Counters,
    tap: Option<Tap>,
    /// The TAP may still hold frames (mio is edge-triggered).
    readable: bool,
    /// False once removed at run time (the slot keeps its index, which tokens and the
    /// neighbour table use, and is reused if the same vmkN comes back).
    present: bool,
}

impl Vmknic {
    /// Present, enabled and with a TAP: takes part in routing and delivery.
    fn active(&self) -> bool {
        self.present && self.cfg.enabled && self.tap.is_some()
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
            .unwrap_or(self.cfg.address)
            .addr()
    }

    /// True when the TAP takes frames with a virtio-net header (offloads on).
    fn offload(&self) -> bool {
        self.tap.as_ref().is_some_and(Tap::offload)
    }

    /// Writes one plain frame; counts it or the drop.
    fn send(&mut self, frame: &[u8]) {
        let Some(tap) = &self.tap else {
            self.counters.drop(DropReason::Disabled);
            return;
        };
        let sent = tap.send(frame);
        self.count_send(sent, frame.len());
    }

    /// Writes a virtio-net header and its frame (an offloading TAP only); counts it or the
    /// drop.
    fn send_offloaded(&mut self, hdr_and_frame: &[u8]) {
        let Some(tap) = &self.tap else {
            self.counters.drop(DropReason::Disabled);
            return;
        };
        let sent = tap.send_offloaded(hdr_and_frame);
        self.count_send(sent, hdr_and_frame.len().saturating_sub(VNET_HDR_LEN));
    }

    fn count_send(&mut self, sent: io::Result<bool>, len: usize) {
        match sent {
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
}

/// A netstack with its event loop. Embedders call [`Netstack::run_once`] in a loop and use
/// [`Netstack::tcp_connect`], [`Netstack::udp_bind`] and [`Netstack::sockets`] for traffic.
pub struct Netstack {
    name: String,
    forwarding: bool,
    routing: RoutingTable,
    vmknics: Vec<Vmknic>,
    neighbors: NeighborTable,
    iface: Interface,
    device: IpDevice,
    sockets: SocketSet<'static>,
    poll: Poll,
    events: Events,
    waker: std::sync::Arc<Waker>,
    /// One received frame, after its virtio-net header (see [`RX_FRAME`]).
    rx_buf: Box<[u8]>,
    /// One frame being built (ARP, packets leaving through the routing core).
    tx_buf: Box<[u8]>,
    /// Fragments being built.
    frag_buf: Box<[u8]>,
    /// Segments of a TCP super-frame being built.
    seg_buf: Box<[u8]>,
    /// smoltcp's TCP segments merged into super-frames (offloads on).
    coalescer: packet::Coalescer,
    /// Checksum and TSO offloads on the TAPs (the configuration's `offloads`).
    offloads: bool,
    /// Keep polling this long after the last frame (the configuration's `busy_poll_us`).
    busy_poll: Duration,
    /// When the last frame was read.
    last_rx: Instant,
    /// ICMP errors waiting to be routed.
    deferred: Ring,
    icmp_limit: RateLimiter,
    ident: u16,
    epoch: Instant,
    /// The time of the current loop turn: read once per turn, not once per packet (a clock
    /// read costs about as much as the whole forwarding step).
    clock: Instant,
    next_port: u16,
    probes: probe::Probes,
}

/// Creates a vmknic's TAP: MTU, up, bridge, namespace, registered with `poll` under `token`.
/// A disabled vmknic gets its TAP too, with the carrier off (the cable is pulled).
fn open_tap(v: &VmknicConfig, offload: bool, poll: &Poll, token: Token) -> Result<Tap, StackError> {
    let err = |source| StackError::Tap {
        vmknic: v.id,
        source,
    };
    let mut tap = Tap::create(&v.tap, v.mac, v.mtu, offload).map_err(err)?;
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
    let fd: RawFd = tap.as_raw_fd();
    poll.registry()
        .register(&mut SourceFd(&fd), token, Interest::READABLE)
        .map_err(StackError::Poll)?;
    info!(vmknic = %v.id, tap = %v.tap, mac = %v.mac, mtu = v.mtu, address = %v.address,
        portgroup = %v.portgroup, enabled = v.enabled, "vmknic up");
    Ok(tap)
}

fn smol_now(epoch: Instant) -> smoltcp::time::Instant {
    smoltcp::time::Instant::from_micros(epoch.elapsed().as_micros() as i64)
}

impl Netstack {
    /// Builds the netstack of `cfg`: creates each enabled vmknic's TAP (MTU, up, bridge,
    /// namespace), sends a gratuitous ARP for each address, and returns the routing problems
    /// found at start-up (the default gateway's with ESX's message); the stack runs anyway.
    pub fn new(cfg: &Config) -> Result<(Netstack, Vec<RouteError>), StackError> {
        let (routing, problems) = cfg.routing();
        let poll = Poll::new().map_err(StackError::Poll)?;
        let waker =
            std::sync::Arc::new(Waker::new(poll.registry(), WAKER).map_err(StackError::Poll)?);
        let mut vmknics = Vec::new();
        for (i, v) in cfg.vmknics.iter().enumerate() {
            let tap = open_tap(v, cfg.offloads, &poll, Token(i))?;
            vmknics.push(Vmknic {
                cfg: v.clone(),
                counters: Counters::default(),
                tap: Some(tap),
                readable: true,
                present: true,
            });
        }

        let mtu = cfg
            .vmknics
            .iter()
            .map(|v| usize::from(v.mtu))
            .min()
            .unwrap_or(1500);
        let mut device = IpDevice::new(DEVICE_SLOTS, FRAME, mtu);
        let epoch = Instant::now();
        let iface = Interface::new(
            IfaceConfig::new(HardwareAddress::Ip),
            &mut device,
            smol_now(epoch),
        );
        let mut stack = Netstack {
            name: cfg.netstack.clone(),
            forwarding: cfg.forwarding,
            routing,
            vmknics,
            neighbors: NeighborTable::new(NeighborConfig::default()),
            iface,
            device,
            sockets: SocketSet::new(Vec::new()),
            poll,
            events: Events::with_capacity(64),
            waker,
            rx_buf: vec![0; RX_BUF].into_boxed_slice(),
            tx_buf: vec![0; FRAME].into_boxed_slice(),
            frag_buf: vec![0; FRAME].into_boxed_slice(),
            seg_buf: vec![0; FRAME].into_boxed_slice(),
            coalescer: packet::Coalescer::new(),
            offloads: cfg.offloads,
            busy_poll: Duration::from_micros(u64::from(cfg.busy_poll_us)),
            last_rx: epoch,
            deferred: Ring::new(DEFERRED_ICMP, 576),
            icmp_limit: RateLimiter::new(100, 50),
            ident: 1,
            epoch,
            clock: epoch,
            next_port: 49152,
            probes: probe::Probes::new(),
        };
        stack.refresh_addrs();
        stack.probes.icmp = stack.echo_socket();
        for i in 0..stack.vmknics.len() {
            stack.announce(i);
        }
        info!(netstack = %stack.name, forwarding = stack.forwarding, offloads = stack.offloads,
            "netstack started");
        Ok((stack, problems))
    }

    /// The ICMP socket that receives echo replies smoltcp reassembled from fragments.
    fn echo_socket(&mut self) -> Option<SocketHandle> {
        use smoltcp::socket::icmp;
        let meta = || vec![icmp::PacketMetadata::EMPTY; 8];
        let mut sock = icmp::Socket::new(
            icmp::PacketBuffer::new(meta(), vec![0; 2 * 65536]),
            icmp::PacketBuffer::new(meta(), vec![0; 1024]),
        );
        sock.bind(icmp::Endpoint::Ident(probe::PING_IDENT)).ok()?;
        Some(self.sockets.add(sock))
    }

    /// Gives smoltcp the addresses of every active vmknic.
    fn refresh_addrs(&mut self) {
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
        // smoltcp only checks that *some* route exists before sending; the real decision is
        // ours (every packet it emits goes through the routing core).
        self.iface.routes_mut().remove_default_ipv4_route();
        if let Some(any) = first {
            let _ = self.iface.routes_mut().add_default_ipv4_route(any);
        }
    }

    /// Sends a gratuitous ARP for every address of vmknic `i`.
    fn announce(&mut self, i: usize) {
        let Some(v) = self.vmknics.get_mut(i).filter(|v| v.active()) else {
            return;
        };
        let addrs: Vec<Ipv4Addr> = v.cfg.addresses().map(|a| a.addr()).collect();
        for ip in addrs {
            let n = arp::write_gratuitous(&mut self.tx_buf, v.cfg.mac, ip);
            if n > 0 {
                v.send(&self.tx_buf[..n]);
            }
        }
    }

    /// The netstack's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The routing table.
    pub fn routing(&self) -> &RoutingTable {
        &self.routing
    }

    /// The vmknics, in vmk order.
    pub fn vmknics(&self) -> &[Vmknic] {
        &self.vmknics
    }

    /// The neighbour table.
    pub fn neighbors(&self) -> &NeighborTable {
        &self.neighbors
    }

    /// smoltcp's sockets, for applications.
    pub fn sockets(&mut self) -> &mut SocketSet<'static> {
        &mut self.sockets
    }

    /// The event loop's registry, for other sources the owner wants to wake it (the port
    /// forwarder's sockets). Their tokens must be at least [`FOREIGN_TOKENS`].
    pub fn registry(&self) -> &mio::Registry {
        self.poll.registry()
    }

    /// A handle that wakes the event loop from another thread.
    pub fn waker(&self) -> std::sync::Arc<Waker> {
        self.waker.clone()
    }

    /// Opens a TCP connection from the stack to `remote`. The source address is the egress
    /// vmknic's, as the routing core chooses it, or `via`'s when given (ESX `-I vmkN`).
    pub fn tcp_connect(
        &mut self,
        remote: SocketAddrV4,
        via: Option<VmknicId>,
        rx_buf: usize,
        tx_buf: usize,
    ) -> Result<SocketHandle, SocketError> {
        let source = self.source_for(*remote.ip(), via)?;
        let mut sock = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; rx_buf]),
            tcp::SocketBuffer::new(vec![0; tx_buf]),
        );
        sock.set_nagle_enabled(false);
        let port = self.ephemeral_port();
        sock.connect(
            self.iface.context(),
            IpEndpoint::new(IpAddress::Ipv4(*remote.ip()), remote.port()),
            IpEndpoint::new(IpAddress::Ipv4(source), port),
        )?;
        Ok(self.sockets.add(sock))
    }

    /// Binds a UDP socket on the source address the routing core picks for `toward`.
    pub fn udp_bind(
        &mut self,
        toward: Ipv4Addr,
        via: Option<VmknicId>,
        port: u16,
    ) -> Result<SocketHandle, SocketError> {
        let source = self.source_for(toward, via)?;
        let meta = || vec![udp::PacketMetadata::EMPTY; 64];
        let mut sock = udp::Socket::new(
            udp::PacketBuffer::new(meta(), vec![0; 65536]),
            udp::PacketBuffer::new(meta(), vec![0; 65536]),
        );
        let port = if port == 0 {
            self.ephemeral_port()
        } else {
            port
        };
        sock.bind(IpEndpoint::new(IpAddress::Ipv4(source), port))?;
        Ok(self.sockets.add(sock))
    }

    fn ephemeral_port(&mut self) -> u16 {
        let p = self.next_port;
        self.next_port = if p == u16::MAX { 49152 } else { p + 1 };
        p
    }

    /// The source address for traffic to `dst`: the egress vmknic's (or `via`'s) address.
    pub fn source_for(
        &self,
        dst: Ipv4Addr,
        via: Option<VmknicId>,
    ) -> Result<Ipv4Addr, SocketError> {
        match via {
            Some(id) => self
                .vmknics
                .iter()
                .find(|v| v.cfg.id == id && v.active())
                .map(|v| v.addr_toward(dst))
                .ok_or(SocketError::NoVmknic(id)),
            None => Ok(self.routing.explain(dst)?.source),
        }
    }

    /// Waits for frames or timers (at most `max_wait`), then handles everything ready: frames
    /// from every TAP, smoltcp's sockets and timers, ARP retries and expiries.
    pub fn run_once(&mut self, max_wait: Duration) -> io::Result<()> {
        let now = Instant::now();
        let mut timeout = max_wait;
        if let Some(d) = self.iface.poll_delay(smol_now(self.epoch), &self.sockets) {
            timeout = timeout.min(Duration::from_micros(d.total_micros()));
        }
        for at in [self.neighbors.next_deadline(), self.probes.next_deadline()]
            .into_iter()
            .flatten()
        {
            timeout = timeout.min(at.saturating_duration_since(now));
        }
        if self.vmknics.iter().any(|v| v.readable && v.tap.is_some()) {
            timeout = Duration::ZERO;
        }
        // Busy polling: a frame that comes soon after the last one finds the loop awake.
        if now.saturating_duration_since(self.last_rx) < self.busy_poll {
            timeout = Duration::ZERO;
        }
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        self.clock = Instant::now();
        for ev in self.events.iter() {
            if let Some(v) = self.vmknics.get_mut(ev.token().0) {
                v.readable = true;
            }
        }
        for i in 0..self.vmknics.len() {
            self.read_tap(i);
        }
        self.poll_local();
        self.poll_neighbors();
        Ok(())
    }

    /// Runs smoltcp and routes what it sent (call after changing a socket to send promptly).
    pub fn poll_local(&mut self) {
        // Packets smoltcp sends to one of our own addresses loop back into it (or complete a
        // ping); the loop ends because each round only moves what is queued.
        for _ in 0..4 {
            let now = smol_now(self.epoch);
            self.iface.poll(now, &mut self.device, &mut self.sockets);
            let at = Instant::now();
            let mut looped = false;
            let Self {
                routing,
                neighbors,
                vmknics,
                tx_buf,
                seg_buf,
                device,
                probes,
                coalescer,
                offloads,
                ..
            } = self;
            let IpDevice { rx, tx, .. } = device;
            while let Some(pkt) = tx.front() {
                match local_destination(vmknics, pkt) {
                    Some(info) => {
                        looped = true;
                        // A full rx ring drops, as a congested loopback would.
                        if !probes.echo_reply(pkt, &info, at) {
                            rx.push(pkt);
                        }
                    }
                    // With offloads, a burst of TCP segments leaves as one super-frame.
                    None if *offloads => {
                        if !coalescer.push(pkt) {
                            send_coalesced(
                                coalescer, routing, neighbors, vmknics, tx_buf, seg_buf, at,
                            );
                            if !coalescer.push(pkt) {
                                route_local(routing, neighbors, vmknics, tx_buf, pkt, at);
                            }
                        }
                    }
                    None => route_local(routing, neighbors, vmknics, tx_buf, pkt, at),
                }
                tx.pop();
            }
            send_coalesced(coalescer, routing, neighbors, vmknics, tx_buf, seg_buf, at);
            self.flush_deferred();
            if !looped {
                break;
            }
        }
    }

    fn read_tap(&mut self, i: usize) {
        for _ in 0..RX_BUDGET {
            let Some(v) = self.vmknics.get_mut(i) else {
                return;
            };
            if !v.readable {
                return;
            }
            let Some(tap) = &v.tap else {
                v.readable = false;
                return;
            };
            match tap.recv(&mut self.rx_buf) {
                Ok(Some(n)) => {
                    self.last_rx = self.clock;
                    v.counters.rx_packets += 1;
                    v.counters.rx_bytes += (n - RX_FRAME) as u64;
                    if v.active() {
                        self.handle_frame(i, n);
                    } else {
                        v.counters.drop(DropReason::Disabled);
                    }
                }
                Ok(None) => {
                    v.readable = false;
                    return;
                }
                Err(e) => {
                    warn!(vmknic = %v.cfg.id, "read: {e}");
                    v.readable = false;
                    return;
                }
            }
        }
    }

    fn count(&mut self, i: usize, reason: DropReason) {
        if let Some(v) = self.vmknics.get_mut(i) {
            v.counters.drop(reason);
        }
    }

    fn handle_frame(&mut self, i: usize, n: usize) {
        let Some(v) = self.vmknics.get(i) else {
            return;
        };
        let frame = self.rx_buf.get(RX_FRAME..n).unwrap_or_default();
        match eth::classify(frame, v.cfg.mac) {
            Err(r) => self.count(i, r),
            Ok(Ingress::Arp) => self.handle_arp(i, n),
            Ok(Ingress::Ipv4) => self.handle_ipv4(i, n),
        }
    }

    fn handle_arp(&mut self, i: usize, n: usize) {
        let Some(v) = self.vmknics.get_mut(i) else {
            return;
        };
        let action = arp::handle(
            self.rx_buf.get(RX_FRAME..n).unwrap_or_default(),
            v.cfg.mac,
            |ip| v.cfg.addresses().any(|a| a.addr() == ip),
            &mut self.tx_buf,
        );
        let action = match action {
            Ok(a) => a,
            Err(r) => {
                v.counters.drop(r);
                return;
            }
        };
        if let Some(r) = action.drop {
            v.counters.drop(r);
        }
        if let Some(len) = action.reply_len {
            v.send(&self.tx_buf[..len]);
        }
        // Learn only neighbours on this wire's subnets that are not our own addresses: a
        // host may ARP from an address of another interface (Linux arp_announce=0), and that
        // must not teach us a MAC for a subnet behind another vmknic.
        let on_wire = action
            .learn
            .filter(|(ip, _)| v.cfg.addresses().any(|a| a.contains(ip)));
        let learn = on_wire.filter(|(ip, _)| !self.is_local(*ip));
        if let Some((ip, mac)) = learn {
            let now = self.clock;
            if self
                .neighbors
                .learn(ip, mac, i as u32, action.update_only, now)
            {
                self.send_pending(ip);
            }
        }
    }

    /// Sends every packet that waited for `ip` to resolve.
    fn send_pending(&mut self, ip: Ipv4Addr) {
        let Self {
            neighbors,
            vmknics,
            tx_buf,
            ..
        } = self;
        neighbors.drain_ready(ip, |vmk, mac, pkt| {
            let Some(v) = vmknics.get_mut(vmk as usize) else {
                return;
            };
            let len = ETH_HDR + pkt.len();
            if len > tx_buf.len() {
                v.counters.drop(DropReason::TooBig);
                return;
            }
            eth::write_header(tx_buf, mac, v.cfg.mac, ETHERTYPE_IPV4);
            tx_buf[ETH_HDR..len].copy_from_slice(pkt);
            v.send(&tx_buf[..len]);
        });
    }

    /// The broadcast address of a connected subnet.
    fn is_directed_broadcast(&self, ip: Ipv4Addr) -> bool {
        self.vmknics.iter().filter(|v| v.active()).any(|v| {
            v.cfg
                .addresses()
                .any(|a| a.prefix_len() < 31 && a.broadcast() == ip)
        })
    }

    fn is_local(&self, ip: Ipv4Addr) -> bool {
        self.vmknics.iter().any(|v| v.active() && v.has_addr(ip))
    }

    fn handle_ipv4(&mut self, i: usize, n: usize) {
        let info = match packet::parse_ipv4(self.rx_buf.get(RX_IP..n).unwrap_or_default()) {
            Ok(info) => info,
            Err(packet::PacketError::BadChecksum) => return self.count(i, DropReason::BadChecksum),
            Err(packet::PacketError::Truncated) => return self.count(i, DropReason::Truncated),
            Err(_) => return self.count(i, DropReason::BadIpv4),
        };
        let end = RX_IP + info.total_len;
        let hdr = VnetHdr::read(&self.rx_buf);
        let Ok(offload) = packet::check_offload(&hdr, &self.rx_buf[RX_IP..end], &info) else {
            return self.count(i, DropReason::BadOffload);
        };
        // Martian sources (RFC 1812 5.3.7), including our own addresses and the broadcast
        // address of a connected subnet: never delivered, forwarded or answered.
        if packet::is_martian(info.src)
            || self.is_local(info.src)
            || self.is_directed_broadcast(info.src)
        {
            return self.count(i, DropReason::Martian);
        }
        if self.is_local(info.dst) {
            return self.deliver_local(i, end, info, offload);
        }
        // A unicast IP in a link-layer broadcast is not forwarded (RFC 1812 5.3.4), nor
        // martian or directed-broadcast destinations.
        let l2_broadcast = self.rx_buf.get(RX_FRAME..RX_FRAME + 6) == Some(&[0xff; 6][..]);
        if l2_broadcast || packet::is_martian(info.dst) || self.is_directed_broadcast(info.dst) {
            return self.count(i, DropReason::Martian);
        }
        if !self.forwarding {
            return self.count(i, DropReason::ForwardingOff);
        }
        // Packets with IP options (source route, record route, ...) are not forwarded: a lab
        // router takes no part in source routing. Fragments are forwarded as routers do (a
        // host that learned a smaller path MTU fragments its own UDP), unless they cannot be
        // part of a valid datagram.
        if info.has_options {
            return self.count(i, DropReason::IpOptions);
        }
        if info.more_frags || info.frag_offset > 0 {
            let payload = info.total_len.saturating_sub(info.header_len);
            let misaligned = info.more_frags && payload % 8 != 0;
            let too_long = usize::from(info.frag_offset) + payload > 65535;
            if misaligned || too_long || payload == 0 {
                return self.count(i, DropReason::Fragment);
            }
        }
        self.forward(i, end, info, offload);
    }

    /// Hands a packet for one of our addresses (in `rx_buf[RX_IP..end]`) to a ping waiting
    /// for it or to smoltcp, after finishing what the offloads left: smoltcp verifies
    /// checksums and takes MTU-sized segments.
    fn deliver_local(&mut self, i: usize, end: usize, info: packet::Ipv4Info, o: Offload) {
        if let Some(gso) = o.gso_size {
            // Make room for every segment first: smoltcp drains the ring when polled.
            if self.device.rx.free() < info.total_len.div_ceil(usize::from(gso)) {
                self.poll_local();
            }
            let Self {
                rx_buf,
                seg_buf,
                device,
                vmknics,
                ..
            } = self;
            let (mut stored, mut lost) = (0, 0);
            let res = packet::segment_tcp(&rx_buf[RX_IP..end], &info, gso, seg_buf, |seg| {
                if device.rx.push(seg) {
                    stored += 1;
                } else {
                    lost += 1;
                }
            });
            let Some(v) = vmknics.get_mut(i) else {
                return;
            };
            match res {
                Ok(_) => {
                    v.counters.gso_segmented += 1;
                    v.counters.delivered += stored;
                    for _ in 0..lost {
                        v.counters.drop(DropReason::QueueFull);
                    }
                }
                Err(_) => v.counters.drop(DropReason::BadOffload),
            }
            return;
        }
        if let Some((start, field)) = o.csum {
            packet::finish_checksum(&mut self.rx_buf[RX_IP..end], &info, start, field);
        }
        self.probes.icmp_fragment(&info);
        if info.protocol == 1
            && self
                .probes
                .echo_reply(&self.rx_buf[RX_IP..end], &info, self.clock)
        {
            if let Some(v) = self.vmknics.get_mut(i) {
                v.counters.delivered += 1;
            }
            return;
        }
        if self.device.rx.push(&self.rx_buf[RX_IP..end]) {
            if let Some(v) = self.vmknics.get_mut(i) {
                v.counters.delivered += 1;
            }
        } else {
            self.count(i, DropReason::QueueFull);
        }
    }

    fn forward(&mut self, i: usize, end: usize, info: packet::Ipv4Info, o: Offload) {
        if info.ttl <= 1 {
            self.icmp_error(i, IcmpError::TimeExceeded, end);
            return self.count(i, DropReason::TtlExceeded);
        }
        let Some(route) = self.routing.lookup(info.dst).copied() else {
            self.icmp_error(i, IcmpError::NetUnreachable, end);
            return self.count(i, DropReason::NoRoute);
        };
        let Some(e) = index_of(&self.vmknics, route.next_hop.vmknic()) else {
            self.icmp_error(i, IcmpError::NetUnreachable, end);
            return self.count(i, DropReason::NoRoute);
        };
        let mtu = self.vmknics.get(e).map_or(0, |v| v.cfg.mtu);
        let next_hop = route.next_hop.neighbor_for(info.dst);
        // A super-frame goes on the wire as segments: each of them must fit (Linux's
        // `skb_gso_validate_network_len`).
        if o.wire_len > usize::from(mtu) && info.dont_frag {
            self.icmp_error(i, IcmpError::FragNeeded { mtu }, end);
            return self.count(i, DropReason::TooBig);
        }
        packet::decrement_ttl(&mut self.rx_buf[RX_IP..end]);
        let now = self.clock;
        // Fast path: a known neighbour and a frame the egress TAP takes as it is (an
        // offloading TAP takes partial checksums and super-frames too): rewrite the MACs in
        // place and write the frame with its virtio-net header, in one system call.
        if o.wire_len <= usize::from(mtu) {
            if let (Some(mac), Some(v)) = (
                self.neighbors.lookup_on(next_hop, e as u32, now),
                self.vmknics.get_mut(e),
            ) {
                if v.offload() || o.is_plain() {
                    let frame = &mut self.rx_buf[RX_FRAME..end];
                    eth::write_header(frame, mac, v.cfg.mac, ETHERTYPE_IPV4);
                    if v.offload() {
                        v.send_offloaded(&self.rx_buf[..end]);
                    } else {
                        v.send(frame);
                    }
                    v.counters.forwarded += 1;
                    if o.gso_size.is_some() {
                        v.counters.gso_forwarded += 1;
                    }
                    return;
                }
            }
        }
        self.forward_slow(i, e, next_hop, end, info, o);
    }

    /// The slow path of [`Netstack::forward`], for the packet in `rx_buf[RX_IP..end]` (TTL
    /// already decremented) out of vmknic `e`: finishes the offloads (cuts a super-frame into
    /// segments, completes a partial checksum), fragments what exceeds the MTU, and sends each
    /// packet through the neighbour path, which queues it while ARP resolves.
    fn forward_slow(
        &mut self,
        i: usize,
        e: usize,
        next_hop: Ipv4Addr,
        end: usize,
        info: packet::Ipv4Info,
        o: Offload,
    ) {
        let now = self.clock;
        let Self {
            rx_buf,
            frag_buf,
            seg_buf,
            neighbors,
            vmknics,
            tx_buf,
            ..
        } = self;
        let mtu = vmknics.get(e).map_or(0, |v| v.cfg.mtu);
        let mut out = Outcome {
            unreachable: false,
            onward: true,
        };
        let mut send = |pkt: &[u8], out: &mut Outcome| {
            packet::fragment(pkt, mtu, frag_buf, |f| {
                let r = emit_ip(neighbors, vmknics, tx_buf, e, next_hop, f, now);
                out.unreachable |= r == Emit::Unreachable;
                out.onward &= r.onward();
            })
        };
        let res = match o.gso_size {
            Some(gso) => {
                let mut sent = Ok(0);
                let pkt = &rx_buf[RX_IP..end];
                packet::segment_tcp(pkt, &info, gso, seg_buf, |seg| {
                    if sent.is_ok() {
                        sent = send(seg, &mut out);
                    }
                })
                .and(sent)
            }
            None => {
                let pkt = &mut rx_buf[RX_IP..end];
                if let Some((start, field)) = o.csum {
                    packet::finish_checksum(pkt, &info, start, field);
                }
                send(pkt, &mut out)
            }
        };
        if let Err(err) = res {
            let reason = match err {
                packet::PacketError::BadOffload | packet::PacketError::CannotSegment => {
                    DropReason::BadOffload
                }
                _ => DropReason::BadIpv4,
            };
            self.count(i, reason);
        } else if out.unreachable {
            self.icmp_error(i, IcmpError::HostUnreachable, end);
        } else if let (true, Some(v)) = (out.onward, self.vmknics.get_mut(e)) {
            v.counters.forwarded += 1;
            if o.gso_size.is_some() {
                v.counters.gso_segmented += 1;
            }
        }
    }

    /// Queues an ICMP error about the packet in `rx_buf[RX_IP..end]`, received on vmknic
    /// `i`, and sends it.
    fn icmp_error(&mut self, i: usize, kind: IcmpError, end: usize) {
        let Some(v) = self.vmknics.get_mut(i) else {
            return;
        };
        let original = &self.rx_buf[RX_IP..end];
        let source = |peer| Some(v.addr_toward(peer));
        if push_icmp(
            &mut self.deferred,
            &mut self.icmp_limit,
            &mut self.ident,
            kind,
            original,
            source,
        ) {
            v.counters.icmp_errors += 1;
        }
        self.flush_deferred();
    }

    /// Routes the queued ICMP errors.
    fn flush_deferred(&mut self) {
        let now = Instant::now();
        while let Some(pkt) = self.deferred.front() {
            route_local(
                &self.routing,
                &mut self.neighbors,
                &mut self.vmknics,
                &mut self.tx_buf,
                pkt,
                now,
            );
            self.deferred.pop();
        }
    }

    fn poll_neighbors(&mut self) {
        let now = Instant::now();
        let Self {
            routing,
            neighbors,
            vmknics,
            tx_buf,
            deferred,
            icmp_limit,
            ident,
            probes,
            ..
        } = self;
        neighbors.poll_events(now, |event| match event {
            NeighborEvent::Retry { vmknic, ip } => {
                if let Some(v) = vmknics.get_mut(vmknic as usize) {
                    arp_request(v, tx_buf, ip);
                }
            }
            NeighborEvent::Failed {
                vmknic,
                ip,
                packet: pkt,
            } => {
                debug!(neighbor = %ip, "neighbour unreachable");
                // Packets the stack sent itself get no ICMP error (their source is ours).
                let ours = packet::parse_ipv4(pkt)
                    .is_ok_and(|p| vmknics.iter().any(|x| x.has_addr(p.src)));
                if let Some(v) = vmknics.get_mut(vmknic as usize) {
                    v.counters.drop(DropReason::NeighborUnreachable);
                }
                if ours {
                    probes.neighbor_failed(pkt);
                } else {
                    let source = |peer| routing.lookup(peer).map(|r| r.source);
                    let sent = push_icmp(
                        deferred,
                        icmp_limit,
                        ident,
                        IcmpError::HostUnreachable,
                        pkt,
                        source,
                    );
                    if let (true, Some(v)) = (sent, vmknics.get_mut(vmknic as usize)) {
                        v.counters.icmp_errors += 1;
                    }
                }
            }
        });
        self.flush_deferred();
    }
}

/// The header of a packet the stack sent to one of its own addresses.
fn local_destination(vmknics: &[Vmknic], pkt: &[u8]) -> Option<packet::Ipv4Info> {
    let info = packet::parse_ipv4(pkt).ok()?;
    vmknics
        .iter()
        .any(|v| v.active() && v.has_addr(info.dst))
        .then_some(info)
}

/// The index of an enabled vmknic.
fn index_of(vmknics: &[Vmknic], id: VmknicId) -> Option<usize> {
    vmknics.iter().position(|v| v.cfg.id == id && v.active())
}

/// Broadcasts an ARP request for `target` from vmknic `v`.
fn arp_request(v: &mut Vmknic, frame: &mut [u8], target: Ipv4Addr) {
    let src = v.addr_toward(target);
    let n = arp::write_request(frame, v.cfg.mac, src, target);
    if n > 0 {
        v.send(&frame[..n]);
    }
}

/// What became of the packets the slow forwarding path sent.
struct Outcome {
    /// One of them met a neighbour known to be unreachable.
    unreachable: bool,
    /// All of them were sent or queued.
    onward: bool,
}

/// What became of a packet handed to [`emit_ip`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Emit {
    /// Written to the TAP (or it was full: counted there).
    Sent,
    /// Waiting for ARP.
    Queued,
    /// Dropped and counted (queue full, too big).
    Dropped,
    /// The neighbour is known unreachable.
    Unreachable,
}

impl Emit {
    /// Sent or on its way.
    fn onward(self) -> bool {
        matches!(self, Emit::Sent | Emit::Queued)
    }
}

/// Sends the IP packet `pkt` out of vmknic `e` toward `next_hop`, building the frame in
/// `frame`, or queues it until ARP answers.
fn emit_ip(
    neighbors: &mut NeighborTable,
    vmknics: &mut [Vmknic],
    frame: &mut [u8],
    e: usize,
    next_hop: Ipv4Addr,
    pkt: &[u8],
    now: Instant,
) -> Emit {
    let Some(v) = vmknics.get_mut(e) else {
        return Emit::Dropped;
    };
    match neighbors.resolve(next_hop, e as u32, pkt, now) {
        Resolve::Ready(mac) => {
            let len = ETH_HDR + pkt.len();
            match frame.get_mut(..len) {
                Some(f) => {
                    eth::write_header(f, mac, v.cfg.mac, ETHERTYPE_IPV4);
                    f[ETH_HDR..].copy_from_slice(pkt);
                    v.send(&frame[..len]);
                    Emit::Sent
                }
                None => {
                    v.counters.drop(DropReason::TooBig);
                    Emit::Dropped
                }
            }
        }
        Resolve::Queued { send_request } => {
            if send_request {
                arp_request(v, frame, next_hop);
            }
            Emit::Queued
        }
        Resolve::Unreachable => {
            v.counters.drop(DropReason::NeighborUnreachable);
            Emit::Unreachable
        }
        Resolve::Dropped(r) => {
            v.counters.drop(r);
            Emit::Dropped
        }
    }
}

/// Sends what the coalescer holds, a packet the stack sent itself: a super-frame whole to an
/// offloading egress TAP with a known neighbour whose MTU fits its segments, otherwise as
/// segments through the routing core (and so through the ARP queue); a lone segment as it is.
fn send_coalesced(
    c: &mut packet::Coalescer,
    routing: &RoutingTable,
    neighbors: &mut NeighborTable,
    vmknics: &mut [Vmknic],
    frame: &mut [u8],
    seg_buf: &mut [u8],
    now: Instant,
) {
    let Some(m) = c.take() else {
        return;
    };
    let (segments, hdr, gso_size) = (m.segments, m.hdr, m.gso_size);
    let (headroom, pkt) = m.buf.split_at_mut(packet::COALESCE_HEADROOM);
    if segments == 1 {
        return route_local(routing, neighbors, vmknics, frame, pkt, now);
    }
    let Ok(info) = packet::parse_ipv4(pkt) else {
        return;
    };
    let Some(route) = routing.lookup(info.dst) else {
        return;
    };
    let Some(e) = index_of(vmknics, route.next_hop.vmknic()) else {
        return;
    };
    let next_hop = route.next_hop.neighbor_for(info.dst);
    let wire_len = usize::from(hdr.hdr_len) - ETH_HDR + usize::from(gso_size);
    if let (Some(v), Some(mac)) = (
        vmknics.get_mut(e),
        neighbors.lookup_on(next_hop, e as u32, now),
    ) {
        if v.offload() && wire_len <= usize::from(v.cfg.mtu) {
            hdr.write(headroom);
            eth::write_header(
                &mut headroom[VNET_HDR_LEN..],
                mac,
                v.cfg.mac,
                ETHERTYPE_IPV4,
            );
            v.send_offloaded(m.buf);
            return;
        }
    }
    let res = packet::segment_tcp(pkt, &info, gso_size, seg_buf, |seg| {
        route_local(routing, neighbors, vmknics, frame, seg, now);
    });
    if let (Err(_), Some(v)) = (res, vmknics.get_mut(e)) {
        v.counters.drop(DropReason::BadOffload);
    }
}

/// Routes a packet the stack sent itself (smoltcp's, or an ICMP error) like any other: LPM,
/// egress vmknic, next hop.
fn route_local(
    routing: &RoutingTable,
    neighbors: &mut NeighborTable,
    vmknics: &mut [Vmknic],
    frame: &mut [u8],
    pkt: &[u8],
    now: Instant,
) {
    let Ok(info) = packet::parse_ipv4(pkt) else {
        return;
    };
    let Some(route) = routing.lookup(info.dst) else {
        debug!(dst = %info.dst, "local packet: no route");
        return;
    };
    let Some(e) = index_of(vmknics, route.next_hop.vmknic()) else {
        return;
    };
    let next_hop = route.next_hop.neighbor_for(info.dst);
    let _ = emit_ip(neighbors, vmknics, frame, e, next_hop, pkt, now);
}

/// Builds an ICMP error about `original` into `deferred`, if allowed (RFC 1812 rules and the
/// rate limit). Its source is what `source(original_src)` picks: the address of the vmknic
/// facing the original sender, as Linux routers do. True when one was queued.
fn push_icmp(
    deferred: &mut Ring,
    limit: &mut RateLimiter,
    ident: &mut u16,
    kind: IcmpError,
    original: &[u8],
    source: impl FnOnce(Ipv4Addr) -> Option<Ipv4Addr>,
) -> bool {
    if !packet::may_send_icmp_error(original) {
        return false;
    }
    let Ok(info) = packet::parse_ipv4(original) else {
        return false;
    };
    let Some(src) = source(info.src) else {
        return false;
    };
    if !limit.allow(Instant::now()) {
        return false;
    }
    *ident = ident.wrapping_add(1);
    let slot = deferred.slot_size();
    let Some(buf) = deferred.reserve(slot) else {
        return false;
    };
    let n = packet::write_icmp_error(buf, kind, original, src, *ident);
    if n == 0 {
        return false;
    }
    deferred.commit(n);
    true
}

impl Drop for Netstack {
    fn drop(&mut self) {
        for v in &mut self.vmknics {
            if let Some(tap) = v.tap.take() {
                let c = v.counters.view();
                let drops: Vec<String> = c.drops.iter().map(|(r, n)| format!("{r}:{n}")).collect();
                info!(
                    vmknic = %v.cfg.id,
                    tap = %tap.name(),
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

impl std::fmt::Debug for Netstack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Netstack")
            .field("name", &self.name)
            .field("forwarding", &self.forwarding)
            .field("vmknics", &self.vmknics.len())
            .finish()
    }
}
