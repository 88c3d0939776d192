//! IPv6 (Linux's `ip6_input.c`, `ip6_forward.c`, `ndisc.c`, `icmp.c` for IPv6): the checks
//! on a received IPv6 packet, Neighbour Discovery (RFC 4861: answer solicitations for our
//! addresses, learn from solicitations and advertisements, resolve next hops through our own
//! neighbour cache with its bounded pending queue), echo answered here, forwarding (hop limit,
//! route, MTU) and ICMPv6 errors (RFC 4443: Destination Unreachable, Packet Too Big, Time
//! Exceeded; rate-limited with IPv4's).
//!
//! IPv6 is on for a vmknic that has a static IPv6 address; it then also holds a link-local
//! address derived from its MAC. Our addresses go through duplicate address detection first
//! (`addr6.rs`); the neighbour cache runs RFC 4861's unreachability detection (REACHABLE,
//! STALE, DELAY, PROBE). With offloads, TSO6 super-frames (hop-by-hop, routing and
//! destination options headers before TCP included) are forwarded whole to an offloading
//! egress port with a usable neighbour, cut into segments for any other (or the neighbour
//! queue), and delivered whole to smoltcp, as IPv4's are. Not here yet: extension headers on
//! packets for us (a packet with one is forwarded untouched, and not delivered).

use std::net::Ipv6Addr;
use std::time::Duration;

use smoltcp::wire::{checksum, IpCidr, Ipv6Cidr};
use tracing::{debug, warn};
use vmkstack_vmknic::eth::{self, ETHERTYPE_IPV6, ETH_HDR};
use vmkstack_vmknic::neighbor::{NdUpdate, NeighborEvent, Resolve};
use vmkstack_vmknic::{MacAddr, Port, VnetHdr, VNET_HDR_LEN};

use super::{DropReason, Engine, Vmknic};
use crate::packet;

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

/// BaseReachableTime (RFC 4861 10): 30 s unless a Router Advertisement says otherwise.
pub(super) const BASE_REACHABLE: Duration = Duration::from_secs(30);

/// ReachableTime: `base` times a random factor in [0.5, 1.5) (RFC 4861 6.3.2), from `seed`.
pub(super) fn reachable_time(base: Duration, seed: u64) -> Duration {
    // xorshift64*: one draw, no dependency for a jitter.
    let mut x = seed | 1;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11; // 53 bits
    let f = 0.5 + (r as f64) / ((1u64 << 53) as f64);
    base.mul_f64(f)
}

/// A seed for [`reachable_time`]: the wall clock's nanoseconds mixed with the vmknics' MACs,
/// so that hosts started together draw differently.
pub(super) fn seed(vmknics: &[crate::config::VmknicConfig]) -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    vmknics.iter().fold(t, |acc, v| {
        v.mac
            .0
            .iter()
            .fold(acc, |a, b| a.rotate_left(8) ^ u64::from(*b))
    })
}

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
    /// Parameter Problem of `code` pointing at byte `pointer` of the packet (an extension
    /// header at fault: RFC 8200 4, 4.2, 4.4, 4.5).
    Parameter {
        /// 0 erroneous header field, 1 unrecognized Next Header, 2 unrecognized option.
        code: u8,
        /// Offset of the field at fault.
        pointer: u32,
    },
}

impl Icmp6Error {
    fn type_code_param(self) -> (u8, u8, u32) {
        match self {
            Icmp6Error::NoRoute => (DEST_UNREACHABLE, 0, 0),
            Icmp6Error::AddressUnreachable => (DEST_UNREACHABLE, 3, 0),
            Icmp6Error::TooBig(mtu) => (PACKET_TOO_BIG, 0, mtu),
            Icmp6Error::HopLimit => (TIME_EXCEEDED, 0, 0),
            Icmp6Error::UnknownNextHeader => (PARAMETER_PROBLEM, 1, 6),
            Icmp6Error::Parameter { code, pointer } => (PARAMETER_PROBLEM, code, pointer),
        }
    }
}

/// The fields of an IPv6 header the stages use.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ipv6Info {
    pub(super) src: Ipv6Addr,
    pub(super) dst: Ipv6Addr,
    next_header: u8,
    pub(super) hop_limit: u8,
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
pub(super) fn multicast_mac(a: Ipv6Addr) -> MacAddr {
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
/// option when `mac` is given (never in a DAD probe from `::`). Returns the packet's length.
fn write_nd(
    buf: &mut [u8],
    kind: u8,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    target: Ipv6Addr,
    flags: u8,
    mac: Option<MacAddr>,
) -> usize {
    let len = IPV6_HDR + if mac.is_some() { 32 } else { 24 };
    let Some(p) = buf.get_mut(..len) else {
        return 0;
    };
    write_header(p, src, dst, len - IPV6_HDR, 255);
    let m = &mut p[IPV6_HDR..];
    m[..8].copy_from_slice(&[kind, 0, 0, 0, flags, 0, 0, 0]);
    m[8..24].copy_from_slice(&target.octets());
    if let Some(mac) = mac {
        // Option 1 (source link-layer address) in a solicitation, 2 (target) in an
        // advertisement; one 8-byte unit.
        m[24] = if kind == NS { 1 } else { 2 };
        m[25] = 1;
        m[26..32].copy_from_slice(&mac.0);
    }
    seal_icmp6(p);
    len
}

/// Sends the DAD probe for our tentative `target` out of `v` (RFC 4862 5.4.2): a Neighbour
/// Solicitation from `::` to its solicited-node group, without a link-layer option.
pub(super) fn dad_probe<P: Port>(v: &mut Vmknic<P>, tx: &mut [u8], target: Ipv6Addr) {
    let group = solicited_node(target);
    let mut scratch = [0u8; IPV6_HDR + 24];
    let n = write_nd(
        &mut scratch,
        NS,
        Ipv6Addr::UNSPECIFIED,
        group,
        target,
        0,
        None,
    );
    if n > 0 {
        send_frame(v, tx, multicast_mac(group), &scratch[..n]);
    }
}

/// True when the ND options `opts` are well formed (no zero length, none cut).
pub(super) fn options_ok(opts: &[u8]) -> bool {
    ll_option(opts, 0).is_ok()
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

/// Sends a Neighbour Solicitation for `target` out of `v` (slot `slot`): to its
/// solicited-node group, or (`unicast`: a NUD probe) to `target` at that MAC. Its source is
/// one of our usable addresses (`local6`); with none (all tentative or duplicate) nothing goes.
pub(super) fn solicit<P: Port>(
    v: &mut Vmknic<P>,
    slot: usize,
    local6: &[(Ipv6Addr, usize)],
    tx: &mut [u8],
    target: Ipv6Addr,
    unicast: Option<MacAddr>,
) {
    let Some(src) = source6(v, slot, local6, target) else {
        return;
    };
    let (dst, mac) = match unicast {
        Some(mac) => (target, mac),
        None => (
            solicited_node(target),
            multicast_mac(solicited_node(target)),
        ),
    };
    let mut scratch = [0u8; IPV6_HDR + 32];
    let n = write_nd(&mut scratch, NS, src, dst, target, 0, Some(v.cfg.mac));
    if n > 0 {
        send_frame(v, tx, mac, &scratch[..n]);
    }
}

/// Our usable address on vmknic `slot` (`local6`: never tentative or duplicate) to send
/// toward `peer` from: a static one on `peer`'s prefix, else one in `peer`'s /64 (where SLAAC
/// puts them), else the link-local one for a link-local peer, else a global one; `None` while
/// none is usable.
pub(super) fn source6<P>(
    v: &Vmknic<P>,
    slot: usize,
    local6: &[(Ipv6Addr, usize)],
    peer: Ipv6Addr,
) -> Option<Ipv6Addr> {
    let mine = || {
        local6
            .iter()
            .filter(move |&&(_, s)| s == slot)
            .map(|&(a, _)| a)
    };
    let global = |a: &Ipv6Addr| !vmkstack_routing::is_link_local6(*a);
    let same64 = |a: &Ipv6Addr| a.segments()[..4] == peer.segments()[..4];
    addr6_toward(v, peer)
        .filter(|a| mine().any(|x| x == *a))
        .or_else(|| mine().find(|a| global(a) && same64(a)))
        .or_else(|| {
            if vmkstack_routing::is_link_local6(peer) {
                mine().find(|a| !global(a))
            } else {
                mine().find(global).or_else(|| mine().next())
            }
        })
}

/// The vmknic's static IPv6 address on the prefix holding `peer`, if any.
fn addr6_toward<P>(v: &Vmknic<P>, peer: Ipv6Addr) -> Option<Ipv6Addr> {
    v.cfg
        .ipv6
        .iter()
        .find(|a| a.contains(&peer))
        .map(|a| a.addr())
}

/// Vmknic `slot`'s first usable global IPv6 address (the source of its ICMPv6 errors), else
/// its first usable one (link-local); `None` when none is usable yet.
fn global6(local6: &[(Ipv6Addr, usize)], slot: usize) -> Option<Ipv6Addr> {
    let mine = || local6.iter().filter(|&&(_, s)| s == slot).map(|&(a, _)| a);
    mine()
        .find(|a| !vmkstack_routing::is_link_local6(*a))
        .or_else(|| mine().next())
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
        let Some(buf) = buf.get_mut(..IP + info.total_len) else {
            return self.count(i, DropReason::Truncated);
        };
        // A TSO6 super-frame must be TCPv6 with its checksum partial and a sane segment size.
        let hdr = VnetHdr::read(buf);
        let Ok(o) = packet::check_offload6(&hdr, buf.get(IP..).unwrap_or_default()) else {
            return self.count(i, DropReason::BadOffload);
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
        self.forward6(i, buf, info, o);
    }

    /// True when `a` is an IPv6 address of an active vmknic.
    #[inline]
    fn is_local6(&self, a: Ipv6Addr) -> bool {
        self.local6.iter().any(|&(x, _)| x == a)
    }

    /// True when vmknic `i` listens to multicast group `g`: all-nodes, or the solicited-node
    /// group of one of its addresses (tentative ones included, to hear others' DAD probes).
    fn listens6(&self, i: usize, g: Ipv6Addr) -> bool {
        g.is_multicast()
            && (g == ALL_NODES
                || self.addrs6.iter().any(|a| {
                    a.slot == i
                        && a.state != super::Addr6State::Duplicate
                        && solicited_node(a.net.addr()) == g
                }))
    }

    /// An IPv6 packet for us: its extension headers walked (`ext6.rs`), ICMPv6 echo and
    /// Neighbour Discovery here, anything else to the endpoint (`local6.rs`).
    fn local6(&mut self, i: usize, buf: &mut [u8], info: Ipv6Info) {
        if info.next_header == super::local6::UDP
            && self.is_dhcp6_answer(i, buf.get(IP..IP + info.total_len).unwrap_or_default())
        {
            // An offloading TAP hands it with a partial checksum: the client checks a whole one.
            finish_partial(buf);
            let ip = buf.get(IP..IP + info.total_len).unwrap_or_default();
            return self.queue_dhcp6(i, ip);
        }
        if super::ext6::is_ext(info.next_header) {
            return self.local6_ext(i, buf, info, false);
        }
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
            super::router6::RA => self.on_router_advertisement(i, msg, info),
            // Router Solicitations (we are no advertising router), redirects, errors, echo
            // replies: nothing uses them yet.
            _ => {}
        }
    }

    /// A packet for us with extension headers (`reassembled`: put together from fragments):
    /// the chain is walked; a fragment goes to the reassembler; otherwise the headers are
    /// taken out (the fixed header moves up against the upper-layer header, whose checksum
    /// does not cover them) and the packet is handled as if it had none.
    fn local6_ext(&mut self, i: usize, buf: &mut [u8], info: Ipv6Info, reassembled: bool) {
        let ip = buf.get(IP..IP + info.total_len).unwrap_or_default();
        let chain = match super::ext6::walk(ip, info.dst.is_multicast()) {
            Ok(c) => c,
            Err(super::ext6::ChainError::Problem { code, pointer }) => {
                self.icmp6_error(i, buf, Icmp6Error::Parameter { code, pointer });
                return self.count(i, DropReason::BadIpv6Ext);
            }
            Err(_) => return self.count(i, DropReason::BadIpv6Ext),
        };
        if let Some(frag) = chain.frag {
            if reassembled {
                // A fragment inside a reassembled datagram.
                return self.count(i, DropReason::Fragment);
            }
            return self.reassemble6(i, buf, info, frag);
        }
        match chain.upper {
            6 | 17 | ICMPV6 => {}
            super::local6::NO_NEXT_HEADER => return self.count(i, DropReason::Other),
            _ => {
                let pointer = chain.naming_field as u32;
                self.icmp6_error(i, buf, Icmp6Error::Parameter { code: 1, pointer });
                return self.count(i, DropReason::Other);
            }
        }
        // A partial checksum's offsets are the original layout's: finished first.
        finish_partial(buf);
        let ext = chain.upper_at - IPV6_HDR;
        if buf.len() < IP + IPV6_HDR + ext {
            return self.count(i, DropReason::Truncated);
        }
        buf.copy_within(..IP + IPV6_HDR, ext);
        let Some(buf) = buf.get_mut(ext..) else {
            return self.count(i, DropReason::Truncated);
        };
        let total_len = info.total_len - ext;
        if let Some(h) = buf.get_mut(IP..IP + IPV6_HDR) {
            h[4..6].copy_from_slice(&((total_len - IPV6_HDR) as u16).to_be_bytes());
            h[6] = chain.upper;
        }
        let info = Ipv6Info {
            next_header: chain.upper,
            total_len,
            ..info
        };
        self.local6(i, buf, info);
    }

    /// A fragment for us (RFC 8200 4.5): kept until its datagram is whole, which is then
    /// handled as a packet of its own. A fragment that cannot belong to a valid datagram is
    /// dropped as `fragment` (with Parameter Problem where RFC 8200 asks for one).
    fn reassemble6(&mut self, i: usize, buf: &mut [u8], info: Ipv6Info, frag: packet::Fragment6) {
        let mut r = std::mem::take(&mut self.reasm6);
        match r.push(buf, info.src, info.dst, &frag, self.clock) {
            packet::Reassembly6::Pending => {}
            packet::Reassembly6::Invalid(problem) => {
                if let Some((code, pointer)) = problem {
                    self.icmp6_error(i, buf, Icmp6Error::Parameter { code, pointer });
                }
                self.count(i, DropReason::Fragment);
            }
            packet::Reassembly6::Done(whole) => {
                let total_len = whole.len() - IP;
                let next_header = whole.get(IP + 6).copied().unwrap_or(0);
                let info = Ipv6Info {
                    next_header,
                    total_len,
                    ..info
                };
                if super::ext6::is_ext(next_header) {
                    self.local6_ext(i, whole, info, true);
                } else {
                    self.local6(i, whole, info);
                }
            }
        }
        self.reasm6 = r;
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
        // Our tentative address: never answered; another node's DAD probe for it means the
        // address is taken (RFC 4862 5.4.3). A probe in our own frame is our own, looped.
        if self.tentative6(i, target) {
            let own = self
                .vmknics
                .get(i)
                .is_some_and(|v| Some(v.cfg.mac) == src_mac);
            if dad && !own {
                self.duplicate6(i, target, "another node is probing for it (DAD)");
            }
            return;
        }
        if !self.local6.iter().any(|&(a, s)| a == target && s == i) {
            return self.count(i, DropReason::NdpNotForUs);
        }
        if let (false, Some(_)) = (dad, sll) {
            self.learn6(i, info.src, sll, NdUpdate::Solicitation);
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
        let n = write_nd(&mut out, NA, target, dst, target, flags, Some(v.cfg.mac));
        if let Some(pkt) = out.get(..n).filter(|_| n > 0) {
            send_frame(v, &mut self.tx_buf, mac, pkt);
        }
        self.buf6 = out;
    }

    /// A Neighbour Advertisement (RFC 4861 7.1.2 and 7.2.5): checked, and the cache entry of
    /// its target updated by its Solicited and Override flags (link-layer option, else the
    /// frame's source), releasing what waited for it. An advertisement of our tentative
    /// address makes it duplicate (RFC 4862 5.4.4).
    fn on_advertisement(&mut self, i: usize, msg: &[u8], info: Ipv6Info, src_mac: Option<MacAddr>) {
        let target = addr_at(msg, 8);
        let opts = msg.get(24..).unwrap_or_default();
        let solicited = msg.get(4).is_some_and(|f| f & 0x40 != 0);
        let override_ = msg.get(4).is_some_and(|f| f & 0x20 != 0);
        let tll = match (info.hop_limit, msg[1], msg.len() >= 24, ll_option(opts, 2)) {
            (255, 0, true, Ok(tll)) if !target.is_multicast() => tll,
            _ => return self.count(i, DropReason::BadNdp),
        };
        if solicited && info.dst.is_multicast() {
            return self.count(i, DropReason::BadNdp);
        }
        if self.tentative6(i, target) {
            return self.duplicate6(i, target, "another node advertises it");
        }
        if self.is_local6(target) {
            warn!(address = %target, "another node advertises our IPv6 address");
            return self.count(i, DropReason::BadNdp);
        }
        // A router that advertises itself without the router flag is no router any more
        // (RFC 4861 7.2.5).
        if msg.get(4).is_some_and(|f| f & 0x80 == 0) {
            self.not_a_router6(i, target);
        }
        let update = NdUpdate::Advertisement {
            solicited,
            override_,
        };
        self.learn6(i, target, tll.or(src_mac), update);
    }

    /// Updates the cache entry of `ip` on vmknic `i` (`mac`: the message's link-layer
    /// address) and sends what waited for it.
    fn learn6(&mut self, i: usize, ip: Ipv6Addr, mac: Option<MacAddr>, update: NdUpdate) {
        if mac.is_some_and(|m| !m.is_unicast()) {
            return;
        }
        if !self
            .neighbors6
            .learn_nd(ip, mac, i as u32, update, self.clock)
        {
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

    /// Forwards a checked packet that is not for us (RFC 8200 3, RFC 4443 3). A TSO6
    /// super-frame (`o.gso_size`, extension headers included) goes whole, virtio-net header
    /// and all, to an offloading port with a usable neighbour (STALE included), and is
    /// otherwise cut into segments here (as IPv4's are), each carrying the extension headers.
    fn forward6(&mut self, i: usize, buf: &mut [u8], info: Ipv6Info, o: packet::Offload6) {
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
        // A super-frame goes on the wire as segments: each of them must fit.
        let mtu = self.vmknics.get(e).map_or(0, |v| v.mtu6());
        if o.wire_len > mtu {
            self.icmp6_error(i, buf, Icmp6Error::TooBig(mtu as u32));
            return self.count(i, DropReason::TooBig);
        }
        if let Some(h) = buf.get_mut(IP + 7) {
            *h -= 1;
        }
        let next_hop = route.next_hop.neighbor_for(info.dst);
        let offload = self.vmknics.get(e).is_some_and(|v| v.offload());
        // A STALE entry is usable (RFC 4861 7.3.3: send, and go to DELAY), so a super-frame
        // to it crosses whole rather than cut for the pending queue.
        let known = self.neighbors6.use_on(next_hop, e as u32, self.clock);
        if let Some(gso) = o.gso_size.filter(|_| !(offload && known.is_some())) {
            return self.forward6_cut(i, buf, e, next_hop, gso);
        }
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
            if o.gso_size.is_some() {
                v.counters.gso_forwarded += 1;
            }
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

    /// Cuts the TSO6 super-frame in `buf` (hop limit already decremented) into `gso`-byte
    /// segments, each with its TCP checksum, and sends them to `next_hop` out of vmknic `e`
    /// through the neighbour cache (queued while a solicitation goes out).
    fn forward6_cut(&mut self, i: usize, buf: &[u8], e: usize, next_hop: Ipv6Addr, gso: u16) {
        let mut seg_buf = std::mem::take(&mut self.seg_buf);
        let mut failed = None;
        let pkt = buf.get(IP..).unwrap_or_default();
        let res = packet::segment_tcp6(pkt, gso, &mut seg_buf, |seg| {
            if failed.is_none() {
                failed = self.resolve6(e, next_hop, seg).err();
            }
        });
        self.seg_buf = seg_buf;
        match (res, failed) {
            (Err(_), _) => self.count(i, DropReason::BadOffload),
            (Ok(_), None) => {
                if let Some(v) = self.vmknics.get_mut(e) {
                    v.counters.forwarded += 1;
                    v.counters.gso_segmented += 1;
                }
            }
            (Ok(_), Some(DropReason::NeighborUnreachable)) => {
                self.icmp6_error(i, buf, Icmp6Error::AddressUnreachable);
                self.count(i, DropReason::NeighborUnreachable);
            }
            (Ok(_), Some(r)) => self.count(i, r),
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
                        solicit(v, e, &self.local6, &mut self.tx_buf, next_hop, None);
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
        let mtu = self.vmknics.get(e).map_or(0, |v| v.mtu6());
        if pkt.len() > mtu {
            return self.output6_fragments(e, next_hop, pkt, mtu);
        }
        if let Err(r) = self.resolve6(e, next_hop, pkt) {
            self.count(e, r);
        }
    }

    /// Sends `pkt` (built by the stack: no extension header, so the unfragmentable part is
    /// the fixed header) to `next_hop` out of vmknic `e` in fragments that fit `mtu`: a
    /// source may fragment (RFC 8200 4.5), as an echo reply to a fragmented request must.
    fn output6_fragments(&mut self, e: usize, next_hop: Ipv6Addr, pkt: &[u8], mtu: usize) {
        let (Some(head), Some(data)) = (pkt.get(..IPV6_HDR), pkt.get(IPV6_HDR..)) else {
            return;
        };
        let chunk = mtu.saturating_sub(IPV6_HDR + 8) / 8 * 8;
        if chunk == 0 {
            return self.count(e, DropReason::TooBig);
        }
        self.frag_id6 = self.frag_id6.wrapping_add(1);
        let id = self.frag_id6;
        let mut scratch = std::mem::take(&mut self.frag_buf);
        let mut offset = 0;
        while offset < data.len() {
            let n = chunk.min(data.len() - offset);
            let more = offset + n < data.len();
            let len = IPV6_HDR + 8 + n;
            let Some(f) = scratch.get_mut(..len) else {
                break;
            };
            f[..IPV6_HDR].copy_from_slice(head);
            f[4..6].copy_from_slice(&((8 + n) as u16).to_be_bytes());
            f[6] = super::ext6::FRAGMENT;
            f[IPV6_HDR..IPV6_HDR + 2].copy_from_slice(&[head[6], 0]);
            // The offset is a multiple of 8: its 8-byte units sit above the flags' 3 bits.
            let field = offset as u16 | u16::from(more);
            f[IPV6_HDR + 2..IPV6_HDR + 4].copy_from_slice(&field.to_be_bytes());
            f[IPV6_HDR + 4..IPV6_HDR + 8].copy_from_slice(&id.to_be_bytes());
            f[IPV6_HDR + 8..].copy_from_slice(&data[offset..offset + n]);
            if let Err(r) = self.resolve6(e, next_hop, f) {
                self.count(e, r);
                break;
            }
            offset += n;
        }
        self.frag_buf = scratch;
    }

    /// Sends an ICMPv6 error of `kind` about the packet in `buf` (received on vmknic `i`)
    /// back to its sender, under RFC 4443 2.4's rules and the rate limit.
    pub(super) fn icmp6_error(&mut self, i: usize, buf: &[u8], kind: Icmp6Error) {
        let Some(src) = global6(&self.local6, i) else {
            return;
        };
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
            echo,
            ..
        } = self;
        let now = *clock;
        neighbors6.poll_events(now, |event| match event {
            NeighborEvent::Retry { vmknic, ip } => {
                if let Some(v) = vmknics.get_mut(vmknic as usize) {
                    solicit(v, vmknic as usize, local6, tx_buf, ip, None);
                }
            }
            NeighborEvent::Probe { vmknic, ip, mac } => {
                if let Some(v) = vmknics.get_mut(vmknic as usize) {
                    solicit(v, vmknic as usize, local6, tx_buf, ip, Some(mac));
                }
            }
            NeighborEvent::Failed { vmknic, ip, packet } => {
                debug!(neighbor = %ip, "IPv6 neighbour unreachable");
                if let Some(v) = vmknics.get_mut(vmknic as usize) {
                    v.counters.drop(DropReason::NeighborUnreachable);
                }
                let orig_src = addr_at(packet, 8);
                if local6.iter().any(|&(a, _)| a == orig_src) {
                    // Our own: no error to ourselves, but the application hears of it
                    // ("Host is down").
                    echo.failed6(packet);
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
        if self.vmknics.get(e).is_none_or(|v| n > v.mtu6()) {
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

    /// Brings our IPv6 addresses in line with the vmknics (new ones start DAD), then
    /// rebuilds what uses them (called by `refresh_addrs`).
    pub(super) fn refresh_addrs6(&mut self) {
        self.sync_addrs6();
        self.apply_addrs6();
    }

    /// Rebuilds the IPv6 routing table's vmknics and the list of local IPv6 addresses from the
    /// usable addresses (preferred or deprecated: never tentative or duplicate ones).
    pub(super) fn apply_addrs6(&mut self) {
        self.local6.clear();
        let usable = |slot: usize| {
            self.addrs6
                .iter()
                .filter(move |a| a.slot == slot && a.state.usable())
        };
        for (slot, v) in self.vmknics.iter().enumerate() {
            if v.present {
                let nets = usable(slot).map(|a| a.net).collect();
                self.routing6.set_vmknic(v.cfg.id, nets, v.active());
            } else {
                self.routing6.remove_vmknic(v.cfg.id);
            }
            if v.active() {
                self.local6
                    .extend(usable(slot).map(|a| (a.net.addr(), slot)));
            }
        }
        // smoltcp's sockets bind to the usable ones (link-local included); the engine answers
        // echo and Neighbour Discovery itself, and routes what smoltcp sends.
        let (addrs6, vmknics) = (&self.addrs6, &self.vmknics);
        let mut first6 = None;
        self.iface.update_ip_addrs(|addrs| {
            addrs.retain(|c| !matches!(c, IpCidr::Ipv6(_)));
            let active = |slot: usize| vmknics.get(slot).is_some_and(|v| v.active());
            for a in addrs6.iter().filter(|a| a.state.usable() && active(a.slot)) {
                first6.get_or_insert(a.net.addr());
                let cidr = IpCidr::Ipv6(Ipv6Cidr::new(a.net.addr(), a.net.prefix_len()));
                if addrs.push(cidr).is_err() {
                    warn!(address = %a.net, "smoltcp address table full; address not local");
                }
            }
        });
        self.iface.routes_mut().remove_default_ipv6_route();
        if let Some(any) = first6 {
            let _ = self.iface.routes_mut().add_default_ipv6_route(any);
        }
    }

    /// Announces vmknic `slot`'s usable IPv6 addresses with unsolicited Neighbour
    /// Advertisements to all-nodes (RFC 4861 7.2.6), as the gratuitous ARP does for IPv4.
    /// Tentative addresses are announced when their DAD ends.
    pub(super) fn announce6(&mut self, slot: usize) {
        let mut addrs: [Option<Ipv6Addr>; 8] = [None; 8];
        for (k, a) in self
            .local6
            .iter()
            .filter(|&&(_, s)| s == slot)
            .take(8)
            .enumerate()
        {
            addrs[k] = Some(a.0);
        }
        for target in addrs.into_iter().flatten() {
            self.announce_addr6(slot, target);
        }
    }

    /// Announces `target` on vmknic `slot` with an unsolicited Neighbour Advertisement.
    pub(super) fn announce_addr6(&mut self, slot: usize, target: Ipv6Addr) {
        let Some(v) = self.vmknics.get_mut(slot).filter(|v| v.active()) else {
            return;
        };
        let router = if self.forwarding { 0x80 } else { 0 };
        let mut out = std::mem::take(&mut self.buf6);
        let n = write_nd(
            &mut out,
            NA,
            target,
            ALL_NODES,
            target,
            router | 0x20,
            Some(v.cfg.mac),
        );
        if let Some(pkt) = out.get(..n).filter(|_| n > 0) {
            send_frame(v, &mut self.tx_buf, multicast_mac(ALL_NODES), pkt);
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
            Some(MacAddr([2, 0, 0, 0, 0, 1])),
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
