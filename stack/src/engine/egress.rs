//! Egress (Linux's `ip_output.c` and `neigh_output`): an IP packet that leaves by a vmknic,
//! forwarded or our own, gets its next hop's MAC, or waits in the neighbour table's bounded
//! queue while ARP resolves (so the first packet to a new neighbour is not lost). Packets the
//! stack sent itself are routed here like any other; with offloads, smoltcp's TCP segments
//! leave merged into super-frames.

use std::net::Ipv4Addr;
use std::time::Instant;

use tracing::debug;
use vmkstack_vmknic::eth::{self, ETHERTYPE_IPV4, ETH_HDR};
use vmkstack_vmknic::neighbor::{NeighborTable, Resolve};
use vmkstack_vmknic::{Port, VNET_HDR_LEN};

use super::routes::Routes;
use super::{arp_request, index_of, DropReason, Vmknic};
use crate::packet;

/// What became of a packet handed to [`emit_ip`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Emit {
    /// Written to the port (or it was full: counted there).
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
    pub(super) fn onward(self) -> bool {
        matches!(self, Emit::Sent | Emit::Queued)
    }
}

/// Sends the IP packet `pkt` out of vmknic `e` toward `next_hop`, building the frame in
/// `frame`, or queues it until ARP answers.
pub(super) fn emit_ip<P: Port>(
    neighbors: &mut NeighborTable,
    vmknics: &mut [Vmknic<P>],
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

/// Routes a packet the stack sent itself (smoltcp's, or an ICMP error) like any other: LPM,
/// egress vmknic, next hop.
pub(super) fn route_local<P: Port>(
    routing: &Routes,
    neighbors: &mut NeighborTable,
    vmknics: &mut [Vmknic<P>],
    frame: &mut [u8],
    pkt: &[u8],
    now: Instant,
) {
    let Ok(info) = packet::parse_ipv4(pkt) else {
        return;
    };
    let Some((out, next_hop)) = routing.local_next_hop(info.src, info.dst) else {
        debug!(dst = %info.dst, "local packet: no route");
        return;
    };
    let Some(e) = index_of(vmknics, out) else {
        return;
    };
    let _ = emit_ip(neighbors, vmknics, frame, e, next_hop, pkt, now);
}

/// Routes a TCP segment the stack built larger than its MSS (`gso`) where no coalescer took
/// it: cut into `gso`-byte segments, each with its checksums, as a NIC doing TSO would.
#[allow(clippy::too_many_arguments)]
pub(super) fn route_tso<P: Port>(
    routing: &Routes,
    neighbors: &mut NeighborTable,
    vmknics: &mut [Vmknic<P>],
    frame: &mut [u8],
    seg_buf: &mut [u8],
    pkt: &[u8],
    gso: u16,
    now: Instant,
) {
    let Ok(info) = packet::parse_ipv4(pkt) else {
        return;
    };
    let res = packet::segment_tcp(pkt, &info, gso, seg_buf, |seg| {
        route_local(routing, neighbors, vmknics, frame, seg, now);
    });
    if let Err(e) = res {
        debug!(dst = %info.dst, "local TCP segment of {} bytes not cut: {e:?}", pkt.len());
    }
}

/// Sends what the coalescer holds, a packet the stack sent itself: a super-frame whole to an
/// offloading egress port with a known neighbour whose MTU fits its segments, otherwise as
/// segments through the routing core (and so through the ARP queue); a lone segment as it is.
pub(super) fn send_coalesced<P: Port>(
    c: &mut packet::Coalescer,
    routing: &Routes,
    neighbors: &mut NeighborTable,
    vmknics: &mut [Vmknic<P>],
    frame: &mut [u8],
    seg_buf: &mut [u8],
    now: Instant,
) {
    if let Some(m) = c.take() {
        send_merged(m, routing, neighbors, vmknics, frame, seg_buf, now);
    }
}

/// Sends a super-frame the stack built (see [`send_coalesced`]).
pub(super) fn send_merged<P: Port>(
    m: packet::Merged<'_>,
    routing: &Routes,
    neighbors: &mut NeighborTable,
    vmknics: &mut [Vmknic<P>],
    frame: &mut [u8],
    seg_buf: &mut [u8],
    now: Instant,
) {
    let (segments, hdr, gso_size) = (m.segments, m.hdr, m.gso_size);
    let (headroom, pkt) = m.buf.split_at_mut(packet::COALESCE_HEADROOM);
    if segments == 1 {
        packet::fill_tcp_checksum(pkt);
        return route_local(routing, neighbors, vmknics, frame, pkt, now);
    }
    let Ok(info) = packet::parse_ipv4(pkt) else {
        return;
    };
    let Some((out, next_hop)) = routing.local_next_hop(info.src, info.dst) else {
        return;
    };
    let Some(e) = index_of(vmknics, out) else {
        return;
    };
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
