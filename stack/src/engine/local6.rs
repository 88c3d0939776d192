//! Local delivery over IPv6 (Linux's `ip6_input_finish` and `ip6_output` for the stack's own
//! sockets): TCP and UDP for one of our IPv6 addresses go into smoltcp, which holds every
//! vmknic's IPv6 addresses (link-local included); the packets smoltcp sends over IPv6 leave
//! through the IPv6 routing table and neighbour cache (queued while a solicitation goes out:
//! no first packet is lost), or loop back when they are for us.
//!
//! As for IPv4, TCP checksums are the engine's: a received segment is checked here unless the
//! kernel behind the TAP left it partial, and each segment smoltcp sends gets its checksum
//! filled in on the way out. A TSO6 super-frame from the TAP comes in whole, its checksum
//! partial, and smoltcp takes it as one segment. With offloads, smoltcp builds TCP segments
//! larger than the MSS over IPv6 too (TSO6): each leaves whole to an offloading TAP with a
//! usable neighbour, or is cut here (`packet::segment_tcp6`). Segments of MSS size or less are
//! not merged into super-frames (IPv4's coalescer is IPv4 only). UDP checksums are smoltcp's.
//!
//! Upper-layer reachability confirmation (RFC 4861 7.3.1): a new acknowledgement on an
//! established connection of the endpoint shows that what we sent reached the peer, so the
//! neighbour it came through stays REACHABLE without Neighbour Unreachability Detection's
//! probes. The last acknowledgement number of a few flows is remembered in a fixed table
//! ([`Progress6`]); a neighbour is confirmed at most once per turn, and only once past half its
//! ReachableTime, so the cost is a few comparisons per segment and no allocation.
//!
//! ICMPv6 errors from the endpoint (RFC 4443): smoltcp answers UDP to a closed port with
//! Port Unreachable and TCP to a closed port with a reset; an unknown next header gets
//! Parameter Problem (code 1, pointing at the Next Header field) from the engine. Every error
//! shares the engine's ICMP rate limit.

use std::net::Ipv6Addr;

use smoltcp::socket::{tcp, Socket};
use smoltcp::wire::{checksum, IpAddress, IpProtocol};
use tracing::debug;
use vmkstack_api::capture::Point;
use vmkstack_routing::{is_link_local6, RoutingTable6, VmknicId};
use vmkstack_vmknic::eth::{self, ETHERTYPE_IPV6, ETH_HDR};
use vmkstack_vmknic::neighbor::{NeighborTable, Resolve};
use vmkstack_vmknic::{Port, VnetHdr, VNET_HDR_LEN};

use super::ipv6::{self, Icmp6Error, Ping6Error, IPV6_HDR};
use super::{index_of, DropReason, Engine, Vmknic};
use crate::device::{Ring, TX_HEADROOM};
use crate::packet::{self, RateLimiter};

/// Where the IP packet starts in a received buffer.
const IP: usize = VNET_HDR_LEN + ETH_HDR;
const TCP: u8 = 6;
pub(super) const UDP: u8 = 17;
const ICMPV6: u8 = 58;
/// "No Next Header": nothing follows, and nothing is answered (RFC 8200 4.7).
pub(super) const NO_NEXT_HEADER: u8 = 59;

/// TCP flows whose last acknowledgement number is remembered.
const ACK_FLOWS: usize = 16;
/// Peers whose progress is confirmed at the end of one turn.
const PROGRESS_PEERS: usize = 4;

/// One remembered flow: the peer, its port and ours, the last acknowledgement it sent.
#[derive(Debug, Clone, Copy)]
struct AckFlow {
    peer: Ipv6Addr,
    ports: (u16, u16),
    ack: u32,
}

/// New acknowledgements heard this turn, by peer (see the module docs).
#[derive(Debug)]
pub(super) struct Progress6 {
    flows: [Option<AckFlow>; ACK_FLOWS],
    /// The slot the next new flow takes (round-robin).
    next: usize,
    /// (peer, its port, our port, vmknic slot) that showed progress this turn.
    peers: [(Ipv6Addr, u16, u16, usize); PROGRESS_PEERS],
    count: usize,
}

impl Default for Progress6 {
    fn default() -> Self {
        Progress6 {
            flows: [None; ACK_FLOWS],
            next: 0,
            peers: [(Ipv6Addr::UNSPECIFIED, 0, 0, 0); PROGRESS_PEERS],
            count: 0,
        }
    }
}

impl Progress6 {
    /// Notes the TCP segment `tcp` (header first) from `peer` on vmknic `slot`: an ACK without
    /// SYN or RST whose acknowledgement number moved forward marks `peer` for confirmation.
    fn note(&mut self, peer: Ipv6Addr, slot: usize, tcp: &[u8]) {
        let (Some(p), Some(a), Some(&flags)) = (
            tcp.first_chunk::<4>(),
            tcp.get(8..12).and_then(|b| b.first_chunk::<4>()),
            tcp.get(13),
        ) else {
            return;
        };
        if flags & 0x10 == 0 || flags & 0x06 != 0 {
            return;
        }
        let ports = (
            u16::from_be_bytes([p[0], p[1]]),
            u16::from_be_bytes([p[2], p[3]]),
        );
        let ack = u32::from_be_bytes(*a);
        let known = self
            .flows
            .iter_mut()
            .flatten()
            .find(|f| f.peer == peer && f.ports == ports);
        let progress = match known {
            Some(f) => {
                // Sequence space comparison (RFC 9293 3.4): newer, within 2^31.
                let newer = (ack.wrapping_sub(f.ack) as i32) > 0;
                f.ack = ack;
                newer
            }
            None => {
                self.flows[self.next] = Some(AckFlow { peer, ports, ack });
                self.next = (self.next + 1) % ACK_FLOWS;
                false
            }
        };
        let listed = self.peers[..self.count].iter().any(|q| q.0 == peer);
        if progress && !listed && self.count < PROGRESS_PEERS {
            self.peers[self.count] = (peer, ports.0, ports.1, slot);
            self.count += 1;
        }
    }
}

/// The TCP checksum of the TCP/IPv6 packet `pkt` summed with its field as it is: `!0` when
/// it verifies. `None` when it is not a whole TCP segment behind a fixed header.
fn tcp6_sum(pkt: &[u8]) -> Option<u16> {
    let tcp = pkt.get(IPV6_HDR..).filter(|t| t.len() >= 20)?;
    let len = u32::try_from(tcp.len()).ok()?;
    let (src, dst) = (ipv6::addr_at(pkt, 8), ipv6::addr_at(pkt, 24));
    let pseudo = checksum::pseudo_header_v6(&src, &dst, IpProtocol::Tcp, len);
    Some(checksum::combine(&[pseudo, checksum::data(tcp)]))
}

/// Fills in the TCP checksum of the TCP/IPv6 segment smoltcp built (`pkt`, no extension
/// header); anything else is left as it is.
pub(super) fn fill_tcp6_checksum(pkt: &mut [u8]) {
    if pkt.get(6) != Some(&TCP) || pkt.len() < IPV6_HDR + 20 {
        return;
    }
    pkt[IPV6_HDR + 16..IPV6_HDR + 18].fill(0);
    if let Some(sum) = tcp6_sum(pkt) {
        pkt[IPV6_HDR + 16..IPV6_HDR + 18].copy_from_slice(&(!sum).to_be_bytes());
    }
}

/// True when the virtio-net header in `buf` says the TCP checksum of the IPv6 packet after
/// it is partial (built by the kernel behind the TAP, which vouches for its bytes).
fn partial_tcp6(buf: &[u8]) -> bool {
    let h = VnetHdr::read(buf);
    h.needs_csum()
        && usize::from(h.csum_start) == ETH_HDR + IPV6_HDR
        && usize::from(h.csum_offset) == 16
}

/// What the send path of smoltcp's IPv6 packets needs of the engine, borrowed apart from the
/// device ring the packets come from.
pub(super) struct Out6<'a, P> {
    pub routing6: &'a RoutingTable6,
    pub neighbors6: &'a mut NeighborTable<Ipv6Addr>,
    pub vmknics: &'a mut [Vmknic<P>],
    pub tx_buf: &'a mut [u8],
    pub local6: &'a [(Ipv6Addr, usize)],
    pub icmp_limit: &'a mut RateLimiter,
    pub rx: &'a mut Ring,
    pub echo: &'a mut super::echo::EchoTap,
    pub now: std::time::Instant,
}

impl<P: Port> Out6<'_, P> {
    /// Sends one IPv6 packet smoltcp built: looped back into smoltcp when it is for one of
    /// our addresses (returns true), else routed and resolved. An ICMPv6 error over the rate
    /// limit is dropped.
    pub(super) fn send(&mut self, pkt: &mut [u8]) -> bool {
        let (src, dst) = (ipv6::addr_at(pkt, 8), ipv6::addr_at(pkt, 24));
        if self.local6.iter().any(|&(a, _)| a == dst) {
            // A full ring drops, as a congested loopback would.
            self.rx.push(pkt);
            return true;
        }
        fill_tcp6_checksum(pkt);
        let error = pkt.get(6) == Some(&ICMPV6) && pkt.get(IPV6_HDR).is_some_and(|t| *t < 128);
        if error && !self.icmp_limit.allow(self.now) {
            return false;
        }
        let Some((e, next_hop)) = self.way(src, dst) else {
            return false;
        };
        // smoltcp sizes its segments by the smallest vmknic MTU: only a hand-made packet is
        // larger than its egress.
        if self.too_big(e, pkt.len()) {
            return false;
        }
        self.resolve(e, next_hop, pkt);
        false
    }

    /// Sends a TCP segment smoltcp built larger than the MSS (`gso`, TSO6), `slot` being
    /// [`TX_HEADROOM`] bytes then the packet: whole from where it was built, its checksum
    /// partial, to an offloading TAP whose neighbour is usable (a STALE one too, which goes
    /// to DELAY); cut into `gso`-byte segments in `seg_buf` (each with its checksum, through
    /// the neighbour cache) for a plain TAP or while the neighbour is being solicited; looped
    /// back whole into smoltcp when it is for us (returns true).
    pub(super) fn send_tso(&mut self, slot: &mut [u8], gso: u16, seg_buf: &mut [u8]) -> bool {
        let Some(pkt) = slot.get(TX_HEADROOM..) else {
            return false;
        };
        let (src, dst) = (ipv6::addr_at(pkt, 8), ipv6::addr_at(pkt, 24));
        if self.local6.iter().any(|&(a, _)| a == dst) {
            self.rx.push(pkt);
            return true;
        }
        let Some((e, next_hop)) = self.way(src, dst) else {
            return false;
        };
        // On the wire it is segments: each must fit (smoltcp's MSS is the smallest MTU's).
        let thl = pkt
            .get(IPV6_HDR + 12)
            .map_or(20, |d| usize::from(d >> 4) * 4);
        let wire = (IPV6_HDR + thl + usize::from(gso)).min(pkt.len());
        if self.too_big(e, wire) {
            return false;
        }
        let offload = self.vmknics.get(e).is_some_and(|v| v.offload());
        let mac = offload
            .then(|| self.neighbors6.use_on(next_hop, e as u32, self.now))
            .flatten();
        if let (Some(mac), Some(v)) = (mac, self.vmknics.get_mut(e)) {
            if let Some(m) = packet::tso_frame6(slot, gso) {
                let (headroom, _) = m.buf.split_at_mut(TX_HEADROOM);
                m.hdr.write(headroom);
                if let Some(h) = headroom.get_mut(VNET_HDR_LEN..) {
                    eth::write_header(h, mac, v.cfg.mac, ETHERTYPE_IPV6);
                }
                v.send_offloaded(m.buf);
                return false;
            }
        }
        let pkt = slot.get(TX_HEADROOM..).unwrap_or_default();
        let res = packet::segment_tcp6(pkt, gso, seg_buf, |seg| self.resolve(e, next_hop, seg));
        if let Err(r) = res {
            debug!(destination = %dst, "local TCPv6 segment of {} bytes not cut: {r:?}", pkt.len());
        }
        false
    }

    /// The egress vmknic and next hop toward `dst` of a packet from `src`: a link-local
    /// destination leaves by the vmknic that holds the source, any other by the IPv6 table.
    fn way(&self, src: Ipv6Addr, dst: Ipv6Addr) -> Option<(usize, Ipv6Addr)> {
        let way = way6(self.routing6, self.local6, self.vmknics, src, dst);
        if way.is_none() {
            debug!(destination = %dst, "no IPv6 route for a packet of the endpoint");
        }
        way
    }

    /// True (and the drop counted) when `len` bytes do not fit vmknic `e`'s MTU.
    fn too_big(&mut self, e: usize, len: usize) -> bool {
        match self.vmknics.get_mut(e) {
            Some(v) if len > usize::from(v.cfg.mtu) => {
                v.counters.drop(DropReason::TooBig);
                true
            }
            _ => false,
        }
    }

    /// Sends `pkt` to `next_hop` out of vmknic `e` through the neighbour cache: at once when
    /// usable, else queued while a solicitation goes out.
    fn resolve(&mut self, e: usize, next_hop: Ipv6Addr, pkt: &[u8]) {
        match self.neighbors6.resolve(next_hop, e as u32, pkt, self.now) {
            Resolve::Ready(mac) => {
                if let Some(v) = self.vmknics.get_mut(e) {
                    ipv6::send_frame(v, self.tx_buf, mac, pkt);
                }
            }
            Resolve::Queued { send_request } => {
                if let Some(v) = self.vmknics.get_mut(e).filter(|_| send_request) {
                    ipv6::solicit(v, e, self.local6, self.tx_buf, next_hop, None);
                }
            }
            Resolve::Unreachable => {
                if let Some(v) = self.vmknics.get_mut(e) {
                    v.counters.drop(DropReason::NeighborUnreachable);
                }
                // A retransmitted SYN while the neighbour is known to have failed.
                self.echo.failed6(pkt);
            }
            Resolve::Dropped(r) => {
                if let Some(v) = self.vmknics.get_mut(e) {
                    v.counters.drop(DropReason::from(r));
                }
            }
        }
    }
}

impl<P: Port> Engine<P> {
    /// Sends an ICMPv6 echo request to `dst` as [`Engine::send_echo6`] does, out of `via`
    /// when given (`vmkping -6 -I vmkN`: `dst` on its prefix or link-local, else a route that
    /// leaves by it) and through `next_hop` when given (`-N`: a neighbour on the egress
    /// vmknic's prefix, or link-local on `via`), bypassing the routing table.
    #[allow(clippy::too_many_arguments)]
    pub fn send_echo6_via(
        &mut self,
        dst: Ipv6Addr,
        via: Option<VmknicId>,
        next_hop: Option<Ipv6Addr>,
        seq: u16,
        size: usize,
        hop_limit: u8,
    ) -> Result<(), Ping6Error> {
        let on = |v: &Vmknic<P>, a: Ipv6Addr| {
            is_link_local6(a) || v.cfg.ipv6.iter().any(|n| n.contains(&a))
        };
        let (e, hop) = match (via, next_hop) {
            (None, None) => return self.send_echo6(dst, seq, size, hop_limit),
            (Some(id), nh) => {
                let e = index_of(&self.vmknics, id).ok_or(Ping6Error::NoRoute)?;
                let v = self.vmknics.get(e).ok_or(Ping6Error::NoRoute)?;
                if !v.cfg.ipv6_enabled() {
                    return Err(Ping6Error::NoRoute);
                }
                let hop = match nh {
                    Some(nh) if on(v, nh) => nh,
                    Some(_) => return Err(Ping6Error::NoRoute),
                    None if on(v, dst) => dst,
                    None => self
                        .routing6
                        .lookup(dst)
                        .filter(|r| r.next_hop.vmknic() == id)
                        .map(|r| r.next_hop.neighbor_for(dst))
                        .ok_or(Ping6Error::NoRoute)?,
                };
                (e, hop)
            }
            (None, Some(nh)) => {
                let e = self
                    .vmknics
                    .iter()
                    .position(|v| v.active() && v.cfg.ipv6.iter().any(|n| n.contains(&nh)))
                    .ok_or(Ping6Error::NoRoute)?;
                (e, nh)
            }
        };
        let Some(v) = self.vmknics.get(e) else {
            return Err(Ping6Error::NoRoute);
        };
        let n = IPV6_HDR + 8 + size;
        if n > usize::from(v.cfg.mtu) {
            return Err(Ping6Error::TooBig);
        }
        let Some(source) = ipv6::source6(v, e, &self.local6, dst) else {
            // Every address of the vmknic is still tentative (DAD) or duplicate.
            return Err(Ping6Error::NoRoute);
        };
        let mut out = std::mem::take(&mut self.buf6);
        if let Some(p) = out.get_mut(..n) {
            ipv6::write_header(p, source, dst, 8 + size, hop_limit.max(1));
            p[IPV6_HDR..IPV6_HDR + 4].copy_from_slice(&[ipv6::ECHO_REQUEST, 0, 0, 0]);
            p[IPV6_HDR + 4..IPV6_HDR + 6].copy_from_slice(&super::ECHO_IDENT.to_be_bytes());
            p[IPV6_HDR + 6..IPV6_HDR + 8].copy_from_slice(&seq.to_be_bytes());
            for (k, b) in p[IPV6_HDR + 8..].iter_mut().enumerate() {
                *b = k as u8;
            }
            ipv6::seal_icmp6(p);
            if let Err(r) = self.resolve6(e, hop, &out[..n]) {
                self.count(e, r);
            }
        }
        self.buf6 = out;
        self.flush();
        Ok(())
    }

    /// Hands an IPv6 packet for one of our addresses that is not ICMPv6 (`next_header`, the
    /// packet `total_len` bytes after the headers in `buf`, its extension headers already
    /// taken out by `ext6.rs`) to smoltcp: TCP checked here, UDP with its partial checksum
    /// finished. An unknown next header is answered with Parameter Problem.
    pub(super) fn deliver6(&mut self, i: usize, buf: &mut [u8], next_header: u8, total_len: usize) {
        if self.taps.active() {
            let id = self.vmknics.get(i).map(|v| v.cfg.id.0);
            let ip = buf.get(IP..IP + total_len).unwrap_or_default();
            self.taps.tap(Point::EndpointIn, id, None, None, 0, ip);
        }
        let verdict = match next_header {
            TCP => {
                let ip = buf.get(IP..IP + total_len).unwrap_or_default();
                if partial_tcp6(buf) || tcp6_sum(ip) == Some(!0) {
                    let tcp = ip.get(IPV6_HDR..).unwrap_or_default();
                    self.progress6.note(ipv6::addr_at(ip, 8), i, tcp);
                    Ok(())
                } else {
                    Err(DropReason::BadChecksum)
                }
            }
            UDP => {
                ipv6::finish_partial(buf);
                Ok(())
            }
            NO_NEXT_HEADER => Err(DropReason::Other),
            _ => {
                self.icmp6_error(i, buf, Icmp6Error::UnknownNextHeader);
                Err(DropReason::Other)
            }
        };
        let verdict = verdict.and_then(|()| {
            if !self.device.rx.fits(total_len) {
                // Make room first: smoltcp drains the ring when polled.
                self.poll_local();
            }
            let ip = buf.get(IP..IP + total_len).unwrap_or_default();
            self.device
                .rx
                .push(ip)
                .then_some(())
                .ok_or(DropReason::QueueFull)
        });
        if let Some(v) = self.vmknics.get_mut(i) {
            match verdict {
                Ok(()) => v.counters.delivered += 1,
                Err(r) => v.counters.drop(r),
            }
        }
    }
}

impl<P: Port> Engine<P> {
    /// Confirms the neighbours through which the endpoint's connections made progress this
    /// turn (RFC 4861 7.3.1): the next hop toward each peer, when its entry wants it and the
    /// segment belonged to an established connection. Called once per turn.
    pub(super) fn confirm_progress6(&mut self) {
        let n = std::mem::take(&mut self.progress6.count);
        for k in 0..n {
            let (peer, remote, local, slot) = self.progress6.peers[k];
            let (e, hop) = if is_link_local6(peer) {
                (slot, peer)
            } else {
                match self.routing6.lookup(peer).and_then(|r| {
                    Some((
                        index_of(&self.vmknics, r.next_hop.vmknic())?,
                        r.next_hop.neighbor_for(peer),
                    ))
                }) {
                    Some(way) => way,
                    None => continue,
                }
            };
            if self
                .neighbors6
                .wants_confirmation(hop, e as u32, self.clock)
                && self.established6(peer, remote, local)
            {
                self.neighbors6.confirm(hop, e as u32, self.clock);
            }
        }
    }

    /// True when an endpoint TCP connection between our port `local` and `peer`'s `remote`
    /// is established.
    fn established6(&self, peer: Ipv6Addr, remote: u16, local: u16) -> bool {
        self.sockets.iter().any(|(_, s)| match s {
            Socket::Tcp(t) => {
                t.state() == tcp::State::Established
                    && t.remote_endpoint()
                        .is_some_and(|r| r.addr == IpAddress::Ipv6(peer) && r.port == remote)
                    && t.local_endpoint().is_some_and(|l| l.port == local)
            }
            #[allow(unreachable_patterns)]
            _ => false,
        })
    }
}

/// The egress vmknic and next hop toward `dst` of a packet the stack sends from `src`: a
/// link-local destination leaves by the vmknic that holds the source (`local6`), any other
/// by the IPv6 table.
pub(super) fn way6<P: Port>(
    routing6: &RoutingTable6,
    local6: &[(Ipv6Addr, usize)],
    vmknics: &[Vmknic<P>],
    src: Ipv6Addr,
    dst: Ipv6Addr,
) -> Option<(usize, Ipv6Addr)> {
    if is_link_local6(dst) {
        local6
            .iter()
            .find(|&&(a, _)| a == src)
            .map(|&(_, slot)| (slot, dst))
    } else {
        routing6.lookup(dst).and_then(|r| {
            let e = index_of(vmknics, r.next_hop.vmknic())?;
            Some((e, r.next_hop.neighbor_for(dst)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_tcp6_checksum_filled_verifies() {
        let mut p = [0u8; IPV6_HDR + 24];
        p[0] = 0x60;
        p[4..6].copy_from_slice(&24u16.to_be_bytes());
        p[6] = TCP;
        p[8..24].copy_from_slice(
            &"2001:db8::1"
                .parse::<Ipv6Addr>()
                .map_or([0; 16], |a| a.octets()),
        );
        p[24..40].copy_from_slice(
            &"2001:db8::2"
                .parse::<Ipv6Addr>()
                .map_or([0; 16], |a| a.octets()),
        );
        p[IPV6_HDR + 12] = 5 << 4;
        p[IPV6_HDR + 20] = 0xab;
        fill_tcp6_checksum(&mut p);
        assert_eq!(tcp6_sum(&p), Some(!0));
        p[IPV6_HDR + 20] ^= 1;
        assert_ne!(tcp6_sum(&p), Some(!0), "a changed byte fails");
    }
}
