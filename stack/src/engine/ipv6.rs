//! IPv6 (Linux's `ip6_input.c`, `ip6_forward.c`, `ndisc.c`, `icmp.c` for IPv6): the checks
//! on a received IPv6 packet, Neighbour Discovery (RFC 4861: answer solicitations for our
//! addresses, learn from solicitations and advertisements, resolve next hops through our own
//! neighbour cache with its bounded pending queue), echo answered here, forwarding (hop limit,
//! route, MTU) and ICMPv6 errors (RFC 4443: Destination Unreachable, Packet Too Big, Time
//! Exceeded; rate-limited with IPv4's).
//!
//! IPv6 is on for a vmknic that has a static IPv6 address; it then also holds a link-local
//! address derived from its MAC. Not here yet: router advertisements (autoconfiguration),
//! duplicate address detection for our own addresses (we answer others' probes), extension
//! headers (a packet with one is forwarded untouched, and not delivered), TSO6 super-frames
//! (never asked of the TAP, refused if one comes).

use std::net::Ipv6Addr;

use smoltcp::wire::checksum;
use tracing::{debug, warn};
use vmkstack_vmknic::eth::{self, ETHERTYPE_IPV6, ETH_HDR};
use vmkstack_vmknic::neighbor::{NeighborEvent, Resolve};
use vmkstack_vmknic::{MacAddr, Port, VnetHdr, VNET_HDR_LEN};

use super::{DropReason, Engine, Vmknic};

/// Length of the fixed IPv6 header.
pub(super) const IPV6_HDR: usize = 40;
/// Where the Ethernet frame starts in a received buffer.
const FRAME: usize = VNET_HDR_LEN;
/// Where the IP packet starts in a received buffer.
const IP: usize = FRAME + ETH_HDR;
/// Next header: ICMPv6.
const ICMPV6: u8 = 58;
/// The minimum IPv6 MTU: an ICMPv6 error never exceeds it (RFC 4443 2.4 (c)).
const MIN_MTU6: usize = 1280;
/// Hop limit of packets we originate.
const HOP_LIMIT: u8 = 64;

pub(super) const ECHO_REQUEST: u8 = 128;
const ECHO_REPLY: u8 = 129;
const NS: u8 = 135;
const NA: u8 = 136;
const DEST_UNREACHABLE: u8 = 1;
const PACKET_TOO_BIG: u8 = 2;
const TIME_EXCEEDED: u8 = 3;
const PARAMETER_PROBLEM: u8 = 4;

/// Echo replies to the stack's own identifier kept until `vmkping -6` takes them.
const ECHO6_REPLIES: usize = 64;

/// An ICMPv6 echo reply to [`super::ECHO_IDENT`] that reached one of our addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoReply6 {
    /// Its sender.
    pub from: Ipv6Addr,
    /// Its hop limit on arrival.
    pub hop_limit: u8,
    /// Its sequence number.
    pub seq: u16,
    /// Its ICMPv6 length (header and data).
    pub bytes: usize,
    /// The time of the turn it arrived in.
    pub at: std::time::Instant,
}

/// Why the stack could not send an ICMPv6 echo request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ping6Error {
    /// No IPv6 route to the destination.
    NoRoute,
    /// Larger than the egress MTU (routers never fragment IPv6, nor does the stack).
    TooBig,
}

/// The ICMPv6 errors a router sends about a packet it could not forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Icmp6Error {
    /// Destination Unreachable, no route to destination (code 0).
    NoRoute,
    /// Destination Unreachable, address unreachable (code 3): the neighbour did not answer.
    AddressUnreachable,
    /// Packet Too Big with the egress MTU.
    TooBig(u32),
    /// Time Exceeded, hop limit exceeded in transit (code 0).
    HopLimit,
    /// Parameter Problem, unrecognized Next Header (code 1), pointing at the fixed header's
    /// Next Header field (RFC 8200 4).
    UnknownNextHeader,
}

impl Icmp6Error {
    fn type_code_param(self) -> (u8, u8, u32) {
        match self {
            Icmp6Error::NoRoute => (DEST_UNREACHABLE, 0, 0),
            Icmp6Error::AddressUnreachable => (DEST_UNREACHABLE, 3, 0),
            Icmp6Error::TooBig(mtu) => (PACKET_TOO_BIG, 0, mtu),
            Icmp6Error::HopLimit => (TIME_EXCEEDED, 0, 0),
            Icmp6Error::UnknownNextHeader => (PARAMETER_PROBLEM, 1, 6),
        }
    }
}

/// The fields of an IPv6 header the stages use.
#[derive(Debug, Clone, Copy)]
struct Ipv6Info {
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next_header: u8,
    hop_limit: u8,
    /// Header plus payload.
    total_len: usize,
}

pub(super) fn addr_at(b: &[u8], at: usize) -> Ipv6Addr {
    b.get(at..at + 16)
        .and_then(|s| s.first_chunk::<16>())
        .map_or(Ipv6Addr::UNSPECIFIED, |a| Ipv6Addr::from(*a))
}

/// Parses a fixed IPv6 header; `None` when it is not one or the payload is cut.
fn parse(ip: &[u8]) -> Result<Ipv6Info, DropReason> {
    let h = ip.first_chunk::<IPV6_HDR>().ok_or(DropReason::Truncated)?;
    if h[0] >> 4 != 6 {
        return Err(DropReason::BadIpv6);
    }
    let plen = usize::from(u16::from_be_bytes([h[4], h[5]]));
    // A jumbogram (payload length 0 with a hop-by-hop option) is not for a 9000-byte link.
    let total_len = IPV6_HDR + plen;
    if total_len > ip.len() {
        return Err(DropReason::Truncated);
    }
    Ok(Ipv6Info {
        src: addr_at(h, 8),
        dst: addr_at(h, 24),
        next_header: h[6],
        hop_limit: h[7],
        total_len,
    })
}

/// The solicited-node multicast group of `a` (RFC 4291 2.7.1): ff02::1:ffXX:XXXX.
pub(super) fn solicited_node(a: Ipv6Addr) -> Ipv6Addr {
    let o = a.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, o[13], o[14], o[15],
    ])
}

/// The Ethernet address of IPv6 multicast group `a` (RFC 2464 7).
fn multicast_mac(a: Ipv6Addr) -> MacAddr {
    let o = a.octets();
    MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// True for addresses never forwarded: unspecified, loopback, multicast, link-local
/// (RFC 4291 2.5.6: a router must not forward link-local sources or destinations).
fn never_forwarded(a: Ipv6Addr) -> bool {
    a.is_unspecified() || a.is_loopback() || a.is_multicast() || vmkstack_routing::is_link_local6(a)
}

/// The ICMPv6 checksum of `msg` between `src` and `dst` (RFC 4443 2.3, with RFC 8200 8.1's
/// pseudo-header), as it goes in the field (the field itself counted as it is).
fn icmp6_sum(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) -> u16 {
    let len = msg.len() as u32;
    let pseudo = checksum::combine(&[
        checksum::data(&src.octets()),
        checksum::data(&dst.octets()),
        (len >> 16) as u16,
        len as u16,
        u16::from(ICMPV6),
    ]);
    checksum::combine(&[pseudo, checksum::data(msg)])
}

/// Writes a fixed IPv6 header for `payload_len` bytes of `next_header` into `buf`.
pub(super) fn write_header(
    buf: &mut [u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    payload_len: usize,
    hl: u8,
) {
    let Some(h) = buf.first_chunk_mut::<IPV6_HDR>() else {
        return;
    };
    h[..4].copy_from_slice(&[0x60, 0, 0, 0]);
    h[4..6].copy_from_slice(&(payload_len as u16).to_be_bytes());
    h[6] = ICMPV6;
    h[7] = hl;
    h[8..24].copy_from_slice(&src.octets());
    h[24..40].copy_from_slice(&dst.octets());
}

/// Fills in the ICMPv6 checksum of the packet `pkt` (header and message).
pub(super) fn seal_icmp6(pkt: &mut [u8]) {
    let src = addr_at(pkt, 8);
    let dst = addr_at(pkt, 24);
    let Some(msg) = pkt.get_mut(IPV6_HDR..) else {
        return;
    };
    if msg.len() < 4 {
        return;
    }
    msg[2] = 0;
    msg[3] = 0;
    let sum = !icmp6_sum(src, dst, msg);
    msg[2..4].copy_from_slice(&sum.to_be_bytes());
}

/// Writes a Neighbour Solicitation for `target` from `src` (to its solicited-node group) or a
/// Neighbour Advertisement of `target` (to `dst`) into `buf`, with our link-layer address as
/// option. Returns the packet's length.
fn write_nd(
    buf: &mut [u8],
    kind: u8,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    target: Ipv6Addr,
    flags: u8,
    mac: MacAddr,
) -> usize {
    const LEN: usize = IPV6_HDR + 32;
    let Some(p) = buf.get_mut(..LEN) else {
        return 0;
    };
    write_header(p, src, dst, 32, 255);
    let m = &mut p[IPV6_HDR..];
    m[..8].copy_from_slice(&[kind, 0, 0, 0, flags, 0, 0, 0]);
    m[8..24].copy_from_slice(&target.octets());
    // Option 1 (source link-layer address) in a solicitation, 2 (target) in an
    // advertisement; one 8-byte unit.
    m[24] = if kind == NS { 1 } else { 2 };
    m[25] = 1;
    m[26..32].copy_from_slice(&mac.0);
    seal_icmp6(p);
    LEN
}

/// The link-layer address option of type `kind` among the options of an ND message, or
/// `Err` when the options are malformed (RFC 4861 7.1: a zero-length option).
fn ll_option(mut opts: &[u8], kind: u8) -> Result<Option<MacAddr>, ()> {
    let mut found = None;
    while !opts.is_empty() {
        let (Some(&t), Some(&units)) = (opts.first(), opts.get(1)) else {
            return Err(());
        };
        let len = usize::from(units) * 8;
        if len == 0 || len > opts.len() {
            return Err(());
        }
        if t == kind && len == 8 {
            found = opts
                .get(2..8)
                .and_then(|m| m.first_chunk::<6>())
                .map(|m| MacAddr(*m));
        }
        opts = &opts[len..];
    }
    Ok(found)
}

/// Sends the IPv6 packet `pkt` out of `v` to `mac`, framed in `tx`.
pub(super) fn send_frame<P: Port>(v: &mut Vmknic<P>, tx: &mut [u8], mac: MacAddr, pkt: &[u8]) {
    let n = ETH_HDR + pkt.len();
    let Some(frame) = tx.get_mut(..n) else {
        return v.send_dropped(DropReason::TooBig, pkt, 0);
    };
    eth::write_header(frame, mac, v.cfg.mac, ETHERTYPE_IPV6);
    frame[ETH_HDR..].copy_from_slice(pkt);
    v.send(frame);
}

/// Sends a Neighbour Solicitation for `target` out of `v`.
pub(super) fn solicit<P: Port>(v: &mut Vmknic<P>, tx: &mut [u8], target: Ipv6Addr) {
    let src = addr6_toward(v, target);
    let group = solicited_node(target);
    let mut scratch = [0u8; IPV6_HDR + 32];
    let n = write_nd(&mut scratch, NS, src, group, target, 0, v.cfg.mac);
    if n > 0 {
        send_frame(v, tx, multicast_mac(group), &scratch[..n]);
    }
}

/// The vmknic's IPv6 address on the prefix holding `peer`, else its link-local one.
pub(super) fn addr6_toward<P>(v: &Vmknic<P>, peer: Ipv6Addr) -> Ipv6Addr {
    v.cfg
        .ipv6
        .iter()
        .find(|a| a.contains(&peer))
        .map_or(v.cfg.link_local6().addr(), |a| a.addr())
}

/// The vmknic's first global IPv6 address (the source of its ICMPv6 errors), else its
/// link-local one.
fn global6<P>(v: &Vmknic<P>) -> Ipv6Addr {
    v.cfg
        .ipv6
        .first()
        .map_or(v.cfg.link_local6().addr(), |a| a.addr())
}

/// Finishes a partial checksum (virtio-net `NEEDS_CSUM`) of the frame after `hdr` in place and
/// marks the header plain. Offsets out of range change nothing.
pub(super) fn finish_partial(buf: &mut [u8]) {
    let h = VnetHdr::read(buf);
    if !h.needs_csum() {
        return;
    }
    let start = FRAME + usize::from(h.csum_start);
    let field = start + usize::from(h.csum_offset);
    let Some(covered) = buf.get(start..) else {
        return;
    };
    let mut sum = !checksum::data(covered);
    // UDP sends "no checksum" as 0 (forbidden over IPv6): a computed 0 is all ones.
    if sum == 0 {
        sum = 0xffff;
    }
    if let Some(f) = buf.get_mut(field..field + 2) {
        f.copy_from_slice(&sum.to_be_bytes());
    }
    VnetHdr::default().write(buf);
}

impl<P: Port> Engine<P> {
    /// Checks an IPv6 packet received on vmknic `i` and sends it on: to Neighbour Discovery
    /// or echo, onward, or to a drop counter.
    pub(super) fn handle_ipv6(&mut self, i: usize, buf: &mut [u8]) {
        // IPv6 off on this vmknic: as before there was IPv6.
        if !self.vmknics.get(i).is_some_and(|v| v.cfg.ipv6_enabled()) {
            return self.count(i, DropReason::UnknownEthertype);
        }
        let info = match parse(buf.get(IP..).unwrap_or_default()) {
            Ok(info) => info,
            Err(r) => return self.count(i, r),
        };
        // TSO6 is never asked of the TAP; a super-frame anyway is refused, not forwarded cut.
        if VnetHdr::read(buf).gso_type != 0 {
            return self.count(i, DropReason::BadOffload);
        }
        let Some(buf) = buf.get_mut(..IP + info.total_len) else {
            return self.count(i, DropReason::Truncated);
        };
        // A multicast or loopback source, or one of our own addresses, is never accepted.
        if info.src.is_multicast() || info.src.is_loopback() || self.is_local6(info.src) {
            return self.count(i, DropReason::Martian);
        }
        if self.is_local6(info.dst) || self.listens6(i, info.dst) {
            return self.local6(i, buf, info);
        }
        if info.dst.is_multicast() {
            return self.count(i, DropReason::NotForUs);
        }
        // A unicast packet in a link-layer multicast or broadcast is not forwarded.
        if buf.get(FRAME).is_some_and(|b| b & 1 == 1) {
            return self.count(i, DropReason::Martian);
        }
        if !self.forwarding {
            return self.count(i, DropReason::ForwardingOff);
        }
        if never_forwarded(info.src) || never_forwarded(info.dst) {
            return self.count(i, DropReason::Martian);
        }
        self.forward6(i, buf, info);
    }

    /// True when `a` is an IPv6 address of an active vmknic.
    #[inline]
    fn is_local6(&self, a: Ipv6Addr) -> bool {
        self.local6.iter().any(|&(x, _)| x == a)
    }

    /// True when vmknic `i` listens to multicast group `g`: all-nodes, or the solicited-node
    /// group of one of its addresses.
    fn listens6(&self, i: usize, g: Ipv6Addr) -> bool {
        g.is_multicast()
            && (g == ALL_NODES
                || self
                    .local6
                    .iter()
                    .any(|&(a, s)| s == i && solicited_node(a) == g))
    }

    /// An IPv6 packet for us: ICMPv6 echo and Neighbour Discovery here, anything else to the
    /// endpoint (`local6.rs`).
    fn local6(&mut self, i: usize, buf: &mut [u8], info: Ipv6Info) {
        if info.next_header != ICMPV6 {
            if info.dst.is_multicast() {
                return self.count(i, DropReason::NotForUs);
            }
            return self.deliver6(i, buf, info.next_header, info.total_len);
        }
        let ip = buf.get(IP..).unwrap_or_default();
        let msg = ip.get(IPV6_HDR..info.total_len).unwrap_or_default();
        if msg.len() < 8 {
            return self.count(i, DropReason::BadIcmpv6);
        }
        let partial = VnetHdr::read(buf).needs_csum();
        if !partial && icmp6_sum(info.src, info.dst, msg) != 0xffff {
            return self.count(i, DropReason::BadIcmpv6);
        }
        if let Some(v) = self.vmknics.get_mut(i) {
            v.counters.delivered += 1;
        }
        let src_mac = eth::src_mac(buf.get(FRAME..).unwrap_or_default());
        match msg[0] {
            ECHO_REQUEST if !info.dst.is_multicast() => self.echo6(i, ip, info),
            ECHO_REPLY
                if msg.get(4..6) == Some(&super::ECHO_IDENT.to_be_bytes()[..])
                    && self.echo6_replies.len() < ECHO6_REPLIES =>
            {
                self.echo6_replies.push_back(EchoReply6 {
                    from: info.src,
                    hop_limit: info.hop_limit,
                    seq: u16::from_be_bytes([msg[6], msg[7]]),
                    bytes: msg.len(),
                    at: self.clock,
                });
            }
            NS => self.on_solicitation(i, msg, info, src_mac),
            NA => self.on_advertisement(i, msg, info, src_mac),
            // Router Solicitations/Advertisements, redirects, errors, echo replies: nothing
            // uses them yet.
            _ => {}
        }
    }

    /// Answers an echo request with an echo reply of the same identifier, sequence and data.
    fn echo6(&mut self, i: usize, ip: &[u8], info: Ipv6Info) {
        let mut out = std::mem::take(&mut self.buf6);
        let n = info.total_len;
        if let (Some(dst), Some(src)) = (out.get_mut(..n), ip.get(..n)) {
            dst.copy_from_slice(src);
            write_header(dst, info.dst, info.src, n - IPV6_HDR, HOP_LIMIT);
            dst[IPV6_HDR] = ECHO_REPLY;
            seal_icmp6(dst);
            self.output6(Some(i), &out[..n], false);
        }
        self.buf6 = out;
    }

    /// A Neighbour Solicitation (RFC 4861 7.1.1 and 7.2.3): checked, its sender learned, and
    /// answered when it asks for one of vmknic `i`'s addresses (a DAD probe from :: is answered
    /// to all-nodes).
    fn on_solicitation(&mut self, i: usize, msg: &[u8], info: Ipv6Info, src_mac: Option<MacAddr>) {
        let target = addr_at(msg, 8);
        let opts = msg.get(24..).unwrap_or_default();
        let sll = match (info.hop_limit, msg[1], msg.len() >= 24, ll_option(opts, 1)) {
            (255, 0, true, Ok(sll)) if !target.is_multicast() => sll,
            _ => return self.count(i, DropReason::BadNdp),
        };
        let dad = info.src.is_unspecified();
        if dad && (sll.is_some() || info.dst != solicited_node(target)) {
            return self.count(i, DropReason::BadNdp);
        }
        if !self.local6.iter().any(|&(a, s)| a == target && s == i) {
            return self.count(i, DropReason::NdpNotForUs);
        }
        if let (false, Some(mac)) = (dad, sll) {
            self.learn6(i, info.src, mac);
        }
        let Some(v) = self.vmknics.get_mut(i) else {
            return;
        };
        // Solicited (S) and override (O); router (R) when forwarding.
        let router = if self.forwarding { 0x80 } else { 0 };
        let (dst, flags, mac) = if dad {
            (ALL_NODES, router | 0x20, multicast_mac(ALL_NODES))
        } else {
            let Some(mac) = sll.or(src_mac) else {
                return;
            };
            (info.src, router | 0x60, mac)
        };
        let mut out = std::mem::take(&mut self.buf6);
        let n = write_nd(&mut out, NA, target, dst, target, flags, v.cfg.mac);
        if let Some(pkt) = out.get(..n).filter(|_| n > 0) {
            send_frame(v, &mut self.tx_buf, mac, pkt);
        }
        self.buf6 = out;
    }

    /// A Neighbour Advertisement (RFC 4861 7.1.2 and 7.2.5): checked, and its target learned
    /// (its link-layer option, else the frame's source), releasing what waited for it.
    fn on_advertisement(&mut self, i: usize, msg: &[u8], info: Ipv6Info, src_mac: Option<MacAddr>) {
        let target = addr_at(msg, 8);
        let opts = msg.get(24..).unwrap_or_default();
        let solicited = msg.get(4).is_some_and(|f| f & 0x40 != 0);
        let tll = match (info.hop_limit, msg[1], msg.len() >= 24, ll_option(opts, 2)) {
            (255, 0, true, Ok(tll)) if !target.is_multicast() => tll,
            _ => return self.count(i, DropReason::BadNdp),
        };
        if solicited && info.dst.is_multicast() {
            return self.count(i, DropReason::BadNdp);
        }
        if self.is_local6(target) {
            warn!(address = %target, "another node advertises our IPv6 address");
            return self.count(i, DropReason::BadNdp);
        }
        if let Some(mac) = tll.or(src_mac) {
            self.learn6(i, target, mac);
        }
    }

    /// Learns `ip` at `mac` on vmknic `i` and sends what waited for it.
    fn learn6(&mut self, i: usize, ip: Ipv6Addr, mac: MacAddr) {
        if !mac.is_unicast() {
            return;
        }
        if !self.neighbors6.learn(ip, mac, i as u32, false, self.clock) {
            return;
        }
        let Self {
            neighbors6,
            vmknics,
            tx_buf,
            ..
        } = self;
        neighbors6.drain_ready(ip, |slot, mac, pkt| {
            if let Some(v) = vmknics.get_mut(slot as usize) {
                send_frame(v, tx_buf, mac, pkt);
            }
        });
    }

    /// Forwards a checked packet that is not for us (RFC 8200 3, RFC 4443 3).
    fn forward6(&mut self, i: usize, buf: &mut [u8], info: Ipv6Info) {
        let Some(route) = self.routing6.lookup(info.dst) else {
            self.icmp6_error(i, buf, Icmp6Error::NoRoute);
            return self.count(i, DropReason::NoRoute);
        };
        let Some(e) = super::index_of(&self.vmknics, route.next_hop.vmknic()) else {
            self.icmp6_error(i, buf, Icmp6Error::NoRoute);
            return self.count(i, DropReason::NoRoute);
        };
        if info.hop_limit <= 1 {
            self.icmp6_error(i, buf, Icmp6Error::HopLimit);
            return self.count(i, DropReason::TtlExceeded);
        }
        // Routers never fragment IPv6: too big for the egress is Packet Too Big (RFC 8200 5).
        let mtu = self.vmknics.get(e).map_or(0, |v| usize::from(v.cfg.mtu));
        if info.total_len > mtu {
            self.icmp6_error(i, buf, Icmp6Error::TooBig(mtu as u32));
            return self.count(i, DropReason::TooBig);
        }
        if let Some(h) = buf.get_mut(IP + 7) {
            *h -= 1;
        }
        let next_hop = route.next_hop.neighbor_for(info.dst);
        let offload = self.vmknics.get(e).is_some_and(|v| v.offload());
        let known = self.neighbors6.lookup_on(next_hop, e as u32, self.clock);
        // A partial checksum travels on to an offloading port with its header; anything else
        // gets it finished here (a queued packet loses its virtio-net header).
        if !(offload && known.is_some()) {
            finish_partial(buf);
        }
        if let (Some(mac), Some(v)) = (known, self.vmknics.get_mut(e)) {
            if let Some(frame) = buf.get_mut(FRAME..) {
                eth::write_header(frame, mac, v.cfg.mac, ETHERTYPE_IPV6);
            }
            if offload {
                v.send_offloaded(buf);
            } else {
                v.send(buf.get(FRAME..).unwrap_or_default());
            }
            v.counters.forwarded += 1;
            return;
        }
        let pkt = buf.get(IP..).unwrap_or_default();
        match self.resolve6(e, next_hop, pkt) {
            Ok(()) => {
                if let Some(v) = self.vmknics.get_mut(e) {
                    v.counters.forwarded += 1;
                }
            }
            Err(DropReason::NeighborUnreachable) => {
                self.icmp6_error(i, buf, Icmp6Error::AddressUnreachable);
                self.count(i, DropReason::NeighborUnreachable);
            }
            Err(r) => self.count(i, r),
        }
    }

    /// Sends `pkt` to `next_hop` out of vmknic slot `e`, through the neighbour cache: at once
    /// when known, else queued while a solicitation goes out.
    pub(super) fn resolve6(
        &mut self,
        e: usize,
        next_hop: Ipv6Addr,
        pkt: &[u8],
    ) -> Result<(), DropReason> {
        match self.neighbors6.resolve(next_hop, e as u32, pkt, self.clock) {
            Resolve::Ready(mac) => {
                if let Some(v) = self.vmknics.get_mut(e) {
                    send_frame(v, &mut self.tx_buf, mac, pkt);
                }
                Ok(())
            }
            Resolve::Queued { send_request } => {
                if send_request {
                    if let Some(v) = self.vmknics.get_mut(e) {
                        solicit(v, &mut self.tx_buf, next_hop);
                    }
                }
                Ok(())
            }
            Resolve::Unreachable => Err(DropReason::NeighborUnreachable),
            Resolve::Dropped(r) => Err(r.into()),
        }
    }

    /// Routes an IPv6 packet the stack built (an echo reply, an ICMPv6 error). A link-local
    /// destination leaves by `link` (the vmknic the packet answers). `quiet`: an error that
    /// cannot be delivered is not reported.
    fn output6(&mut self, link: Option<usize>, pkt: &[u8], quiet: bool) {
        let dst = addr_at(pkt, 24);
        let (e, next_hop) = match (vmkstack_routing::is_link_local6(dst), link) {
            (true, Some(l)) => (l, dst),
            _ => match self.routing6.lookup(dst) {
                Some(r) => match super::index_of(&self.vmknics, r.next_hop.vmknic()) {
                    Some(e) => (e, r.next_hop.neighbor_for(dst)),
                    None => return,
                },
                None => {
                    if !quiet {
                        debug!(destination = %dst, "no IPv6 route for a packet of ours");
                    }
                    return;
                }
            },
        };
        if let Err(r) = self.resolve6(e, next_hop, pkt) {
            self.count(e, r);
        }
    }

    /// Sends an ICMPv6 error of `kind` about the packet in `buf` (received on vmknic `i`)
    /// back to its sender, under RFC 4443 2.4's rules and the rate limit.
    pub(super) fn icmp6_error(&mut self, i: usize, buf: &[u8], kind: Icmp6Error) {
        let Some(v) = self.vmknics.get(i) else {
            return;
        };
        let src = global6(v);
        let original = buf.get(IP..).unwrap_or_default();
        let mut out = std::mem::take(&mut self.buf6);
        let n = build_error(&mut out, kind, original, src);
        if n > 0 && self.icmp_limit.allow(self.clock) {
            if let Some(v) = self.vmknics.get_mut(i) {
                v.counters.icmp_errors += 1;
            }
            self.output6(Some(i), &out[..n], true);
        }
        self.buf6 = out;
    }

    /// The IPv6 neighbour cache's timers: solicitations again, or Destination Unreachable
    /// (address unreachable) for what waited for a neighbour that never answered.
    pub(super) fn poll_neighbors6(&mut self) {
        let Self {
            neighbors6,
            vmknics,
            tx_buf,
            buf6,
            deferred6,
            routing6,
            icmp_limit,
            local6,
            clock,
            ..
        } = self;
        let now = *clock;
        neighbors6.poll_events(now, |event| match event {
            NeighborEvent::Retry { vmknic, ip } => {
                if let Some(v) = vmknics.get_mut(vmknic as usize) {
                    solicit(v, tx_buf, ip);
                }
            }
            NeighborEvent::Failed { vmknic, ip, packet } => {
                debug!(neighbor = %ip, "IPv6 neighbour unreachable");
                if let Some(v) = vmknics.get_mut(vmknic as usize) {
                    v.counters.drop(DropReason::NeighborUnreachable);
                }
                let orig_src = addr_at(packet, 8);
                if local6.iter().any(|&(a, _)| a == orig_src) {
                    return;
                }
                let Some(src) = routing6.lookup(orig_src).map(|r| r.source) else {
                    return;
                };
                if icmp_limit.allow(now) {
                    let n = build_error(buf6, Icmp6Error::AddressUnreachable, packet, src);
                    if let Some(pkt) = buf6.get(..n).filter(|_| n > 0) {
                        deferred6.push(pkt);
                    }
                }
            }
        });
        while let Some(pkt) = self.deferred6.front() {
            let mut out = std::mem::take(&mut self.buf6);
            let n = pkt.len().min(out.len());
            out[..n].copy_from_slice(&pkt[..n]);
            self.deferred6.pop();
            self.output6(None, &out[..n], true);
            self.buf6 = out;
        }
    }

    /// Sends an ICMPv6 echo request to `dst` with the stack's identifier, sequence `seq`,
    /// `size` payload bytes and hop limit `hop_limit`, from the route's source (`vmkping -6`).
    /// The reply comes back through [`Engine::take_echo6`].
    pub fn send_echo6(
        &mut self,
        dst: Ipv6Addr,
        seq: u16,
        size: usize,
        hop_limit: u8,
    ) -> Result<(), Ping6Error> {
        let route = self.routing6.lookup(dst).ok_or(Ping6Error::NoRoute)?;
        let e =
            super::index_of(&self.vmknics, route.next_hop.vmknic()).ok_or(Ping6Error::NoRoute)?;
        let n = IPV6_HDR + 8 + size;
        if self
            .vmknics
            .get(e)
            .is_none_or(|v| n > usize::from(v.cfg.mtu))
        {
            return Err(Ping6Error::TooBig);
        }
        let mut out = std::mem::take(&mut self.buf6);
        if let Some(p) = out.get_mut(..n) {
            write_header(p, route.source, dst, 8 + size, hop_limit.max(1));
            p[IPV6_HDR..IPV6_HDR + 4].copy_from_slice(&[ECHO_REQUEST, 0, 0, 0]);
            p[IPV6_HDR + 4..IPV6_HDR + 6].copy_from_slice(&super::ECHO_IDENT.to_be_bytes());
            p[IPV6_HDR + 6..IPV6_HDR + 8].copy_from_slice(&seq.to_be_bytes());
            for (k, b) in p[IPV6_HDR + 8..].iter_mut().enumerate() {
                *b = k as u8;
            }
            seal_icmp6(p);
            self.output6(None, &out[..n], false);
        }
        self.buf6 = out;
        self.flush();
        Ok(())
    }

    /// Hands the ICMPv6 echo replies to the stack's identifier to `f`, oldest first.
    pub fn take_echo6(&mut self, mut f: impl FnMut(EchoReply6)) {
        while let Some(r) = self.echo6_replies.pop_front() {
            f(r);
        }
    }

    /// Rebuilds the IPv6 routing table's vmknics and the list of local IPv6 addresses from
    /// the vmknics (called by `refresh_addrs`).
    pub(super) fn refresh_addrs6(&mut self) {
        self.local6.clear();
        for (slot, v) in self.vmknics.iter().enumerate() {
            if v.present {
                self.routing6
                    .set_vmknic(v.cfg.id, v.cfg.addresses6().collect(), v.active());
            } else {
                self.routing6.remove_vmknic(v.cfg.id);
            }
            if v.active() {
                self.local6
                    .extend(v.cfg.addresses6().map(|a| (a.addr(), slot)));
            }
        }
    }

    /// Announces vmknic `slot`'s IPv6 addresses with unsolicited Neighbour Advertisements to
    /// all-nodes (RFC 4861 7.2.6), as the gratuitous ARP does for IPv4.
    pub(super) fn announce6(&mut self, slot: usize) {
        let Some(v) = self.vmknics.get_mut(slot).filter(|v| v.active()) else {
            return;
        };
        let router = if self.forwarding { 0x80 } else { 0 };
        let mut out = std::mem::take(&mut self.buf6);
        let addrs: [Option<Ipv6Addr>; 4] = {
            let mut a = [None; 4];
            for (k, n) in v.cfg.addresses6().take(4).enumerate() {
                a[k] = Some(n.addr());
            }
            a
        };
        for target in addrs.into_iter().flatten() {
            let n = write_nd(
                &mut out,
                NA,
                target,
                ALL_NODES,
                target,
                router | 0x20,
                v.cfg.mac,
            );
            if let Some(pkt) = out.get(..n).filter(|_| n > 0) {
                send_frame(v, &mut self.tx_buf, multicast_mac(ALL_NODES), pkt);
            }
        }
        self.buf6 = out;
    }
}

/// Builds an ICMPv6 error of `kind` about `original` from `src` into `out`, or returns 0 when
/// RFC 4443 2.4 forbids one: about an ICMPv6 error (or an unparsable packet), a multicast
/// destination (except Packet Too Big), or a source that is not a unicast address.
fn build_error(out: &mut [u8], kind: Icmp6Error, original: &[u8], src: Ipv6Addr) -> usize {
    let Ok(info) = parse(original) else {
        return 0;
    };
    if info.src.is_unspecified() || info.src.is_multicast() || info.src.is_loopback() {
        return 0;
    }
    if info.dst.is_multicast() && !matches!(kind, Icmp6Error::TooBig(_)) {
        return 0;
    }
    // Never about an ICMPv6 error (types below 128); the type follows a fixed header only,
    // which is what we look at (an error behind extension headers may get an answer).
    if info.next_header == ICMPV6 && original.get(IPV6_HDR).is_none_or(|t| *t < 128) {
        return 0;
    }
    let quoted = info.total_len.min(MIN_MTU6 - IPV6_HDR - 8);
    let n = IPV6_HDR + 8 + quoted;
    let Some(p) = out.get_mut(..n) else {
        return 0;
    };
    write_header(p, src, info.src, 8 + quoted, HOP_LIMIT);
    let (t, code, param) = kind.type_code_param();
    p[IPV6_HDR..IPV6_HDR + 8].copy_from_slice(&[t, code, 0, 0, 0, 0, 0, 0]);
    p[IPV6_HDR + 4..IPV6_HDR + 8].copy_from_slice(&param.to_be_bytes());
    p[IPV6_HDR + 8..].copy_from_slice(&original[..quoted]);
    seal_icmp6(p);
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_solicited_node() {
        let a: Ipv6Addr = "2001:db8:1::1234:5678"
            .parse()
            .unwrap_or(Ipv6Addr::LOCALHOST);
        assert_eq!(
            solicited_node(a),
            "ff02::1:ff34:5678"
                .parse::<Ipv6Addr>()
                .unwrap_or(Ipv6Addr::LOCALHOST)
        );
        assert_eq!(
            multicast_mac(solicited_node(a)).0,
            [0x33, 0x33, 0xff, 0x34, 0x56, 0x78]
        );
    }

    #[test]
    fn test_nd_checksum_verifies() {
        let mut b = [0u8; 128];
        let src: Ipv6Addr = "fe80::1".parse().unwrap_or(Ipv6Addr::LOCALHOST);
        let t: Ipv6Addr = "2001:db8::2".parse().unwrap_or(Ipv6Addr::LOCALHOST);
        let n = write_nd(
            &mut b,
            NS,
            src,
            solicited_node(t),
            t,
            0,
            MacAddr([2, 0, 0, 0, 0, 1]),
        );
        assert_eq!(n, 72);
        let info = parse(&b[..n]).expect("header");
        assert_eq!(icmp6_sum(info.src, info.dst, &b[IPV6_HDR..n]), 0xffff);
        assert_eq!(
            ll_option(&b[IPV6_HDR + 24..n], 1),
            Ok(Some(MacAddr([2, 0, 0, 0, 0, 1])))
        );
        assert_eq!(ll_option(&[1, 0, 0, 0, 0, 0, 0, 0], 1), Err(()));
    }

    #[test]
    fn test_no_error_about_an_error() {
        let mut orig = [0u8; 48];
        let a: Ipv6Addr = "2001:db8::1".parse().unwrap_or(Ipv6Addr::LOCALHOST);
        write_header(&mut orig, a, a, 8, 1);
        orig[IPV6_HDR] = TIME_EXCEEDED;
        let mut out = [0u8; 1500];
        assert_eq!(build_error(&mut out, Icmp6Error::HopLimit, &orig, a), 0);
        orig[IPV6_HDR] = ECHO_REQUEST;
        assert_eq!(
            build_error(&mut out, Icmp6Error::HopLimit, &orig, a),
            48 + 48
        );
    }
}
