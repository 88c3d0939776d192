//! The stack's own diagnostics: ICMP echo (vmkping) and TCP connect probes (nc -z). Both are
//! started by a control request and finish later, inside the event loop: replies, ARP
//! failures and deadlines complete them.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use smoltcp::iface::SocketHandle;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::socket::{icmp, tcp};
use smoltcp::wire::{Icmpv4Packet, IpAddress, IpProtocol, Ipv4Packet, Ipv4Repr};
use thiserror::Error;
use vmkstack_routing::VmknicId;

use vmkstack_vmknic::Port;

use super::egress::{emit_ip, Emit};
use super::{index_of, Engine, SocketError};
use crate::control::{PingReply, ProbeResult};
use crate::packet;

/// ICMP identifier of the stack's echo requests ("VK").
pub(super) const PING_IDENT: u16 = 0x564b;
/// Echoes and probes in flight at once.
const MAX_PENDING: usize = 64;
/// Largest echo payload (65535 - 20 - 8).
pub const MAX_PING_SIZE: usize = 65507;

/// Identifies a ping in flight.
pub type PingId = u64;
/// Identifies a TCP probe in flight.
pub type ProbeId = u64;

/// Why a ping got no reply. The messages are ESX's `sendto()` wording where there is one.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PingError {
    /// DF set and larger than the egress MTU.
    #[error("Message too long")]
    MessageTooLong,
    /// No route.
    #[error("No route to host")]
    NoRoute,
    /// `-I` named a vmknic that does not exist or is disabled.
    #[error("{0} is not an enabled vmknic")]
    NotFound(VmknicId),
    /// ARP got no answer.
    #[error("Host is down")]
    HostDown,
    /// No reply in time.
    #[error("Request timeout")]
    Timeout,
    /// Too many in flight.
    #[error("too many pings in flight")]
    Busy,
    /// A payload larger than an IPv4 datagram can carry.
    #[error("payload of {0} bytes is larger than {MAX_PING_SIZE}")]
    TooLarge(usize),
}

/// Why a TCP probe did not connect.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProbeError {
    /// No route.
    #[error("No route to host")]
    NoRoute,
    /// `-I` named a vmknic that does not exist or is disabled.
    #[error("{0} is not an enabled vmknic")]
    NotFound(VmknicId),
    /// ARP got no answer.
    #[error("Host is down")]
    HostDown,
    /// No answer in time.
    #[error("Connection timed out")]
    Timeout,
    /// The peer answered with a reset.
    #[error("Connection refused")]
    Refused,
    /// Too many in flight.
    #[error("too many probes in flight")]
    Busy,
    /// smoltcp refused the connect.
    #[error("{0}")]
    Other(String),
}

struct PendingPing {
    id: PingId,
    dst: Ipv4Addr,
    /// The neighbour ARP must resolve; a ping that times out while it is unresolved reports
    /// "Host is down", as ESX's sendto() does.
    next_hop: Ipv4Addr,
    seq: u16,
    sent: Instant,
    deadline: Instant,
}

struct PendingProbe {
    id: ProbeId,
    handle: SocketHandle,
    dst: SocketAddrV4,
    local_port: u16,
    source: String,
    started: Instant,
    deadline: Instant,
}

/// Pings and probes in flight and finished.
pub(super) struct Probes {
    pings: Vec<PendingPing>,
    ping_done: Vec<(PingId, Result<PingReply, PingError>)>,
    probes: Vec<PendingProbe>,
    probe_done: Vec<(ProbeId, Result<ProbeResult, ProbeError>)>,
    /// Sockets of finished probes, to close and free.
    finished_sockets: Vec<SocketHandle>,
    /// smoltcp socket that receives echo replies smoltcp had to reassemble (a ping larger
    /// than the path MTU without DF); unfragmented replies are taken before smoltcp.
    pub(super) icmp: Option<SocketHandle>,
    /// TTL of the first fragment of an ICMP datagram from each peer, for those replies.
    frag_ttl: Vec<(Ipv4Addr, u8)>,
    next_id: u64,
    /// An echo request being built (up to a full IPv4 datagram).
    buf: Box<[u8]>,
}

impl Probes {
    pub(super) fn new() -> Probes {
        Probes {
            pings: Vec::with_capacity(MAX_PENDING),
            ping_done: Vec::with_capacity(MAX_PENDING),
            probes: Vec::with_capacity(MAX_PENDING),
            probe_done: Vec::with_capacity(MAX_PENDING),
            finished_sockets: Vec::new(),
            icmp: None,
            frag_ttl: Vec::new(),
            next_id: 1,
            buf: vec![0; 65536].into_boxed_slice(),
        }
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The earliest deadline in flight.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.pings
            .iter()
            .map(|p| p.deadline)
            .chain(self.probes.iter().map(|p| p.deadline))
            .min()
    }

    /// An echo reply for us arrived: completes the matching ping. True if it was ours.
    pub(super) fn echo_reply(&mut self, pkt: &[u8], info: &packet::Ipv4Info, now: Instant) -> bool {
        // A fragment is not a whole reply: smoltcp reassembles those.
        if info.more_frags || info.frag_offset > 0 {
            return false;
        }
        let Some(icmp) = pkt.get(info.header_len..info.total_len) else {
            return false;
        };
        // type 0 (echo reply), code 0, checksum, ident, seq
        let (Some(&0), Some(ident), Some(seq)) = (icmp.first(), be16(icmp, 4), be16(icmp, 6))
        else {
            return false;
        };
        if ident != PING_IDENT {
            return false;
        }
        let Some(pos) = self
            .pings
            .iter()
            .position(|p| p.seq == seq && p.dst == info.src)
        else {
            return false;
        };
        let p = self.pings.swap_remove(pos);
        let reply = PingReply {
            bytes: icmp.len(),
            from: info.src,
            seq,
            ttl: info.ttl,
            rtt_us: now.saturating_duration_since(p.sent).as_micros() as u64,
            destination: p.dst,
        };
        self.ping_done.push((p.id, Ok(reply)));
        true
    }

    /// Notes the TTL of the first fragment of an ICMP datagram (the reassembled reply that
    /// smoltcp hands over has no IP header).
    pub(super) fn icmp_fragment(&mut self, info: &packet::Ipv4Info) {
        if info.protocol == 1 && info.more_frags && info.frag_offset == 0 {
            self.frag_ttl.retain(|(a, _)| *a != info.src);
            if self.frag_ttl.len() >= 16 {
                self.frag_ttl.remove(0);
            }
            self.frag_ttl.push((info.src, info.ttl));
        }
    }

    /// A reassembled echo reply from smoltcp's ICMP socket (`icmp` is the ICMP message).
    pub(super) fn reassembled_reply(&mut self, icmp: &[u8], from: Ipv4Addr, now: Instant) {
        let (Some(&0), Some(PING_IDENT), Some(seq)) = (icmp.first(), be16(icmp, 4), be16(icmp, 6))
        else {
            return;
        };
        let Some(pos) = self
            .pings
            .iter()
            .position(|p| p.seq == seq && p.dst == from)
        else {
            return;
        };
        let p = self.pings.swap_remove(pos);
        let ttl = self
            .frag_ttl
            .iter()
            .find(|(a, _)| *a == from)
            .map_or(0, |(_, t)| *t);
        self.ping_done.push((
            p.id,
            Ok(PingReply {
                bytes: icmp.len(),
                from,
                seq,
                ttl,
                rtt_us: now.saturating_duration_since(p.sent).as_micros() as u64,
                destination: p.dst,
            }),
        ));
    }

    /// A packet the stack sent could not be resolved by ARP: fails the ping or probe it
    /// belonged to with "Host is down".
    pub(super) fn neighbor_failed(&mut self, pkt: &[u8]) {
        let Ok(info) = packet::parse_ipv4(pkt) else {
            return;
        };
        let Some(l4) = pkt.get(info.header_len..info.total_len) else {
            return;
        };
        match info.protocol {
            1 if l4.first() == Some(&8) && be16(l4, 4) == Some(PING_IDENT) => {
                if let Some(seq) = be16(l4, 6) {
                    if let Some(pos) = self
                        .pings
                        .iter()
                        .position(|p| p.seq == seq && p.dst == info.dst)
                    {
                        let p = self.pings.swap_remove(pos);
                        self.ping_done.push((p.id, Err(PingError::HostDown)));
                    }
                }
            }
            6 => {
                let (Some(sport), Some(dport)) = (be16(l4, 0), be16(l4, 2)) else {
                    return;
                };
                if let Some(pos) = self.probes.iter().position(|p| {
                    p.local_port == sport && p.dst.port() == dport && *p.dst.ip() == info.dst
                }) {
                    let p = self.probes.swap_remove(pos);
                    self.probe_done.push((p.id, Err(ProbeError::HostDown)));
                    self.finished_sockets.push(p.handle);
                }
            }
            _ => {}
        }
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

impl<P: Port> Engine<P> {
    /// Sends one ICMP echo request from the stack. With `via` (vmkping `-I`) it leaves through
    /// that vmknic whatever the routing table says. Errors that ESX reports at `sendto()` come
    /// back at once; the reply, "Host is down" and timeouts arrive through
    /// [`Engine::take_ping_results`].
    #[allow(clippy::too_many_arguments)]
    pub fn ping_start(
        &mut self,
        dst: Ipv4Addr,
        via: Option<VmknicId>,
        size: usize,
        df: bool,
        ttl: u8,
        seq: u16,
        timeout: Duration,
    ) -> Result<PingId, PingError> {
        if self.probes.pings.len() >= MAX_PENDING {
            return Err(PingError::Busy);
        }
        if size > MAX_PING_SIZE {
            return Err(PingError::TooLarge(size));
        }
        let (e, next_hop, src) = self.egress_for(dst, via).map_err(|e| match e {
            SocketError::NoVmknic(id) => PingError::NotFound(id),
            _ => PingError::NoRoute,
        })?;
        let total = 28 + size;
        let mtu = self.vmknics.get(e).map_or(0, |v| usize::from(v.cfg.mtu));
        if df && total > mtu {
            return Err(PingError::MessageTooLong);
        }
        self.ident = self.ident.wrapping_add(1);
        let ident = self.ident;
        let Some(buf) = self.probes.buf.get_mut(..total) else {
            return Err(PingError::TooLarge(size));
        };
        write_echo(buf, src, dst, ttl, df, ident, seq, size);
        let now = Instant::now();
        let id = self.probes.id();
        self.probes.pings.push(PendingPing {
            id,
            dst,
            next_hop,
            seq,
            sent: now,
            deadline: now + timeout,
        });
        if self.is_local(dst) {
            // Our own address: straight into the local endpoint, as the VMkernel loops it.
            let pkt = &self.probes.buf[..total];
            if !self.device.rx.push(pkt) {
                self.probes.pings.pop();
                return Err(PingError::Busy);
            }
            self.poll_local();
            return Ok(id);
        }
        let Self {
            neighbors,
            vmknics,
            tx_buf,
            frag_buf,
            probes,
            ..
        } = self;
        let pkt = &probes.buf[..total];
        let reachable = if total <= mtu {
            emit_ip(neighbors, vmknics, tx_buf, e, next_hop, pkt, now) != Emit::Unreachable
        } else {
            let mut ok = true;
            let _ = packet::fragment(pkt, mtu as u16, frag_buf, |f| {
                ok &= emit_ip(neighbors, vmknics, tx_buf, e, next_hop, f, now) != Emit::Unreachable;
            });
            ok
        };
        if !reachable {
            probes.pings.pop();
            return Err(PingError::HostDown);
        }
        Ok(id)
    }

    /// The egress vmknic, next hop and source for traffic the stack sends to `dst`, through
    /// `via` when given (ESX `-I`): on `via`'s subnet directly, else through the route or the
    /// default gateway if they leave by `via`, else on-link.
    fn egress_for(
        &self,
        dst: Ipv4Addr,
        via: Option<VmknicId>,
    ) -> Result<(usize, Ipv4Addr, Ipv4Addr), SocketError> {
        match via {
            None => {
                let r = self.routing.lookup(dst).ok_or(SocketError::NoRoute(
                    vmkstack_routing::RouteError::NoRoute(dst),
                ))?;
                let e = index_of(&self.vmknics, r.next_hop.vmknic()).ok_or(
                    SocketError::NoRoute(vmkstack_routing::RouteError::NoRoute(dst)),
                )?;
                Ok((e, r.next_hop.neighbor_for(dst), r.source))
            }
            Some(id) => {
                let e = index_of(&self.vmknics, id).ok_or(SocketError::NoVmknic(id))?;
                let v = &self.vmknics[e];
                let on_link = |a: Ipv4Addr| v.cfg.addresses().any(|n| n.contains(&a));
                let next_hop = if on_link(dst) {
                    dst
                } else if let Some(r) = self
                    .routing
                    .lookup(dst)
                    .filter(|r| r.next_hop.vmknic() == id)
                {
                    r.next_hop.neighbor_for(dst)
                } else if let Some(gw) = self.routing.default_gateway().filter(|g| on_link(*g)) {
                    gw
                } else {
                    dst
                };
                Ok((e, next_hop, v.addr_toward(next_hop)))
            }
        }
    }

    /// Hands every finished ping to `f`.
    pub fn take_ping_results(&mut self, mut f: impl FnMut(PingId, Result<PingReply, PingError>)) {
        let now = Instant::now();
        if let Some(h) = self.probes.icmp {
            let sock = self.sockets.get_mut::<icmp::Socket>(h);
            while let Ok((data, from)) = sock.recv() {
                let IpAddress::Ipv4(from) = from;
                self.probes.reassembled_reply(data, from, now);
            }
        }
        let Self {
            probes, neighbors, ..
        } = self;
        let mut i = 0;
        while i < probes.pings.len() {
            if probes.pings[i].deadline <= now {
                let p = probes.pings.swap_remove(i);
                // Listing allocates, but only when a ping times out (control path).
                let unresolved = neighbors
                    .entries(now)
                    .iter()
                    .any(|e| e.ip == p.next_hop && e.mac.is_none());
                let err = if unresolved {
                    PingError::HostDown
                } else {
                    PingError::Timeout
                };
                probes.ping_done.push((p.id, Err(err)));
            } else {
                i += 1;
            }
        }
        for (id, r) in probes.ping_done.drain(..) {
            f(id, r);
        }
    }

    /// Starts a TCP connection test to `dst` from the stack (`nc -z`); the result arrives
    /// through [`Engine::take_probe_results`].
    pub fn probe_start(
        &mut self,
        dst: SocketAddrV4,
        via: Option<VmknicId>,
        timeout: Duration,
    ) -> Result<ProbeId, ProbeError> {
        if self.probes.probes.len() >= MAX_PENDING {
            return Err(ProbeError::Busy);
        }
        let handle = self
            .tcp_connect(dst, via, 1024, 1024)
            .map_err(|e| match e {
                SocketError::NoRoute(_) => ProbeError::NoRoute,
                SocketError::NoVmknic(id) => ProbeError::NotFound(id),
                e => ProbeError::Other(e.to_string()),
            })?;
        let sock = self.sockets.get::<tcp::Socket>(handle);
        let (local_port, source) = sock
            .local_endpoint()
            .map_or((0, String::new()), |e| (e.port, e.to_string()));
        let now = Instant::now();
        let id = self.probes.id();
        self.probes.probes.push(PendingProbe {
            id,
            handle,
            dst,
            local_port,
            source,
            started: now,
            deadline: now + timeout,
        });
        self.poll_local();
        Ok(id)
    }

    /// Hands every finished probe to `f` and frees its socket.
    pub fn take_probe_results(
        &mut self,
        mut f: impl FnMut(ProbeId, Result<ProbeResult, ProbeError>),
    ) {
        let now = Instant::now();
        let mut i = 0;
        while i < self.probes.probes.len() {
            let p = &self.probes.probes[i];
            let state = self.sockets.get::<tcp::Socket>(p.handle).state();
            let outcome = match state {
                tcp::State::Established | tcp::State::CloseWait => Some(Ok(ProbeResult {
                    source: p.source.clone(),
                    connect_us: now.saturating_duration_since(p.started).as_micros() as u64,
                })),
                tcp::State::Closed => Some(Err(ProbeError::Refused)),
                _ if p.deadline <= now => Some(Err(ProbeError::Timeout)),
                _ => None,
            };
            match outcome {
                Some(r) => {
                    let p = self.probes.probes.swap_remove(i);
                    self.probes.probe_done.push((p.id, r));
                    self.probes.finished_sockets.push(p.handle);
                }
                None => i += 1,
            }
        }
        for h in std::mem::take(&mut self.probes.finished_sockets) {
            // A connected probe is closed with a reset, as `nc -z` does.
            self.sockets.get_mut::<tcp::Socket>(h).abort();
            self.poll_local();
            self.sockets.remove(h);
        }
        for (id, r) in self.probes.probe_done.drain(..) {
            f(id, r);
        }
    }
}

/// Writes an ICMP echo request (IPv4 header included) into `buf` (`28 + size` bytes).
#[allow(clippy::too_many_arguments)]
fn write_echo(
    buf: &mut [u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    df: bool,
    ident: u16,
    seq: u16,
    size: usize,
) {
    let caps = ChecksumCapabilities::default();
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Icmp,
        payload_len: 8 + size,
        hop_limit: ttl,
    };
    let mut pkt = Ipv4Packet::new_unchecked(&mut *buf);
    ip.emit(&mut pkt, &caps);
    pkt.set_ident(ident);
    pkt.set_dont_frag(df);
    pkt.fill_checksum();
    let payload = pkt.payload_mut();
    if let Some(data) = payload.get_mut(8..) {
        for (i, b) in data.iter_mut().enumerate() {
            *b = (i & 0xff) as u8;
        }
    }
    let mut icmp = Icmpv4Packet::new_unchecked(payload);
    icmp.set_msg_type(smoltcp::wire::Icmpv4Message::EchoRequest);
    icmp.set_msg_code(0);
    icmp.set_echo_ident(PING_IDENT);
    icmp.set_echo_seq_no(seq);
    icmp.fill_checksum();
}
