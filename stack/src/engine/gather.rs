//! The stack's own large TCP segments (IPv4 and IPv6) leave straight from smoltcp's socket
//! buffer: smoltcp writes only the headers (into the transmit ring's slot, which is then not
//! kept) and the engine sends headers and payload with one gathering write (`writev` on a
//! TAP), without the copy of the payload into the ring. Only when the segment would leave
//! exactly so from the ring, and at the same place in the order on the wire (see
//! [`Egress::send_direct`]); otherwise it goes through the ring as before.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use vmkstack_routing::RoutingTable6;
use vmkstack_vmknic::eth::{self, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use vmkstack_vmknic::neighbor::NeighborTable;
use vmkstack_vmknic::{Port, VNET_HDR_LEN};

use super::ipv6::{self, IPV6_HDR};
use super::local6::way6;
use super::routes::Routes;
use super::runtime::Runtime;
use super::{index_of, Vmknic};
use crate::device::{DirectSend, TX_HEADROOM};
use crate::packet;

/// What the drain of the transmit ring uses to send a TCP super-frame, lent to smoltcp for
/// one poll (disjoint borrows of the engine's fields).
pub(super) struct Egress<'a, P> {
    pub(super) routing: &'a Routes,
    pub(super) neighbors: &'a NeighborTable,
    pub(super) vmknics: &'a mut [Vmknic<P>],
    pub(super) coalescers: &'a [packet::Coalescer],
    pub(super) local_addrs: &'a [Ipv4Addr],
    pub(super) routing6: &'a RoutingTable6,
    pub(super) neighbors6: &'a mut NeighborTable<Ipv6Addr>,
    pub(super) local6: &'a [(Ipv6Addr, usize)],
    pub(super) runtime: &'a mut Runtime,
    pub(super) now: Instant,
}

impl<P: Port> DirectSend for Egress<'_, P> {
    /// Sends the segment (the caller checked that the ring is empty, so nothing is
    /// overtaken) when it would leave whole as a super-frame from the ring too: no coalescer
    /// holds a segment (their contents would go first), it is not for one of our addresses,
    /// its route and its next hop's MAC are known now, the egress port takes a super-frame in
    /// pieces, its segments fit the MTU, and no capture runs (a capture sees whole packets).
    /// The same checks as the ring's path (`tso_frame` and `send_merged`; over IPv6
    /// `Out6::send_tso`), the same bytes, the same counters.
    fn send_direct(&mut self, head: &mut [u8], payload: &[u8], gso: u16) -> bool {
        if self.coalescers.iter().any(|c| !c.is_empty()) {
            return false;
        }
        match head.get(TX_HEADROOM).map(|b| b >> 4) {
            Some(4) => self.send_direct4(head, payload, gso),
            Some(6) => self.send_direct6(head, payload, gso),
            _ => false,
        }
    }
}

impl<P: Port> Egress<'_, P> {
    /// [`DirectSend::send_direct`] over IPv4: as the ring's `tso_frame` and `send_merged`.
    fn send_direct4(&mut self, head: &mut [u8], payload: &[u8], gso: u16) -> bool {
        let Some(ip) = head.get(TX_HEADROOM..) else {
            return false;
        };
        let (Some(src), Some(dst)) = (ipv4_at(ip, 12), ipv4_at(ip, 16)) else {
            return false;
        };
        if self.local_addrs.contains(&dst) {
            return false;
        }
        let hdrs = ip.len();
        let Some((out, next_hop)) = self.routing.local_next_hop(src, dst) else {
            return false;
        };
        let Some(e) = index_of(self.vmknics, out) else {
            return false;
        };
        let Some(mac) = self.neighbors.lookup_on(next_hop, e as u32, self.now) else {
            return false;
        };
        let Some(v) = self.vmknics.get_mut(e) else {
            return false;
        };
        if !v.gathers() || hdrs + usize::from(gso) > usize::from(v.cfg.mtu) {
            return false;
        }
        let Some(hdr) = packet::tso_headers(head, payload.len(), gso) else {
            return false;
        };
        hdr.write(head);
        eth::write_header(&mut head[VNET_HDR_LEN..], mac, v.cfg.mac, ETHERTYPE_IPV4);
        v.send_offloaded_gather(head, payload);
        self.runtime
            .add_gathered(payload.len().div_ceil(usize::from(gso)));
        true
    }

    /// [`DirectSend::send_direct`] over IPv6: as the ring's `Out6::send_tso` (a STALE
    /// neighbour is used and goes to DELAY, as there).
    fn send_direct6(&mut self, head: &mut [u8], payload: &[u8], gso: u16) -> bool {
        let Some(ip) = head.get(TX_HEADROOM..) else {
            return false;
        };
        let (src, dst) = (ipv6::addr_at(ip, 8), ipv6::addr_at(ip, 24));
        if ip.len() < IPV6_HDR + 20 || self.local6.iter().any(|&(a, _)| a == dst) {
            return false;
        }
        let Some((e, next_hop)) = way6(self.routing6, self.local6, self.vmknics, src, dst) else {
            return false;
        };
        let thl = usize::from(ip[IPV6_HDR + 12] >> 4) * 4;
        let wire = (IPV6_HDR + thl + usize::from(gso)).min(ip.len() + payload.len());
        match self.vmknics.get(e) {
            Some(v) if v.gathers() && wire <= usize::from(v.cfg.mtu) => {}
            _ => return false,
        }
        let Some(mac) = self.neighbors6.use_on(next_hop, e as u32, self.now) else {
            return false;
        };
        let Some(v) = self.vmknics.get_mut(e) else {
            return false;
        };
        let Some(hdr) = packet::tso_headers6(head, payload.len(), gso) else {
            return false;
        };
        hdr.write(head);
        eth::write_header(&mut head[VNET_HDR_LEN..], mac, v.cfg.mac, ETHERTYPE_IPV6);
        v.send_offloaded_gather(head, payload);
        self.runtime
            .add_gathered(payload.len().div_ceil(usize::from(gso)));
        true
    }
}

/// The IPv4 address at `at` in `pkt`.
fn ipv4_at(pkt: &[u8], at: usize) -> Option<Ipv4Addr> {
    let b: [u8; 4] = pkt.get(at..at + 4)?.try_into().ok()?;
    Some(Ipv4Addr::from(b))
}
