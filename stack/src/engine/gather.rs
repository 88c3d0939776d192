//! The stack's own large TCP segments leave straight from smoltcp's socket buffer: smoltcp
//! writes only the headers (into the transmit ring's slot, which is then not kept) and the
//! engine sends headers and payload with one gathering write (`writev` on a TAP), without
//! the copy of the payload into the ring. Only when the segment would leave exactly so from
//! the ring, and at the same place in the order on the wire (see [`Egress::send_direct`]);
//! otherwise it goes through the ring as before.

use std::net::Ipv4Addr;
use std::time::Instant;

use vmkstack_vmknic::eth::{self, ETHERTYPE_IPV4};
use vmkstack_vmknic::neighbor::NeighborTable;
use vmkstack_vmknic::{Port, VNET_HDR_LEN};

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
    pub(super) runtime: &'a mut Runtime,
    pub(super) now: Instant,
}

impl<P: Port> DirectSend for Egress<'_, P> {
    /// Sends the segment (IPv4; the caller checked that the ring is empty, so nothing is
    /// overtaken) when it would leave whole as a super-frame from the ring too: no coalescer
    /// holds a segment (their contents would go first), it is not for one of our addresses,
    /// its route and its next hop's MAC are known now, the egress port takes a super-frame in
    /// pieces, its segments fit the MTU, and no capture runs (a capture sees whole packets).
    /// The same checks as the ring's `tso_frame` and `send_merged`, the same bytes, the same
    /// counters.
    fn send_direct(&mut self, head: &mut [u8], payload: &[u8], gso: u16) -> bool {
        let Some(ip) = head.get(TX_HEADROOM..) else {
            return false;
        };
        let (Some(src), Some(dst)) = (ipv4_at(ip, 12), ipv4_at(ip, 16)) else {
            return false;
        };
        if ip.first().is_none_or(|b| b >> 4 != 4)
            || self.coalescers.iter().any(|c| !c.is_empty())
            || self.local_addrs.contains(&dst)
        {
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
}

/// The IPv4 address at `at` in `pkt`.
fn ipv4_at(pkt: &[u8], at: usize) -> Option<Ipv4Addr> {
    let b: [u8; 4] = pkt.get(at..at + 4)?.try_into().ok()?;
    Some(Ipv4Addr::from(b))
}
