//! Forwarding (Linux's `ip_forward.c`, RFC 1812 5.2-5.3): route, TTL, DF against the egress
//! MTU, the TTL decrement, then the fast path (a known neighbour and a frame the egress port
//! takes as it is: MACs rewritten in place, one send) or the slow path (offloads finished,
//! fragmentation, the neighbour queue).

use std::net::Ipv4Addr;

use vmkstack_api::capture::Point;
use vmkstack_vmknic::eth::{self, ETHERTYPE_IPV4};
use vmkstack_vmknic::{Port, VNET_HDR_LEN};

use super::egress::{emit_ip, Emit};
use super::ingress::Ipv4Rx;
use super::{index_of, DropReason, Engine};
use crate::packet::{self, IcmpError};

/// What became of the packets the slow path sent.
struct Outcome {
    /// One of them met a neighbour known to be unreachable.
    unreachable: bool,
    /// All of them were sent or queued.
    onward: bool,
}

impl<P: Port> Engine<P> {
    /// Forwards a checked packet that is not for us.
    pub(super) fn forward(&mut self, pkt: &mut Ipv4Rx<'_>) {
        let (i, info, o) = (pkt.vmknic, pkt.info, pkt.offload);
        // The route first, as Linux (`ip_route_input` before `ip_forward`): a packet with no
        // route gets Net Unreachable whatever its TTL, so traceroute shows `!N` at the first
        // hop, as through a Linux router.
        let Some(route) = self.routing.lookup(info.dst).copied() else {
            self.icmp_error(pkt, IcmpError::NetUnreachable);
            return self.count(i, DropReason::NoRoute);
        };
        let Some(e) = index_of(&self.vmknics, route.next_hop.vmknic()) else {
            self.icmp_error(pkt, IcmpError::NetUnreachable);
            return self.count(i, DropReason::NoRoute);
        };
        // RFC 1812 5.3.1: a packet whose TTL would reach zero is discarded, with Time
        // Exceeded to its sender.
        if info.ttl <= 1 {
            self.icmp_error(pkt, IcmpError::TimeExceeded);
            return self.count(i, DropReason::TtlExceeded);
        }
        let mtu = self.vmknics.get(e).map_or(0, |v| v.cfg.mtu);
        let next_hop = route.next_hop.neighbor_for(info.dst);
        // A super-frame goes on the wire as segments: each of them must fit (Linux's
        // `skb_gso_validate_network_len`).
        if o.wire_len > usize::from(mtu) && info.dont_frag {
            self.icmp_error(pkt, IcmpError::FragNeeded { mtu });
            return self.count(i, DropReason::TooBig);
        }
        packet::decrement_ttl(pkt.ip_mut());
        if let Some(v) = self.vmknics.get(i).filter(|v| v.taps.active()) {
            let peer = self.vmknics.get(e).map(|v| v.cfg.id.0);
            let frame = pkt.hdr_and_frame().get(VNET_HDR_LEN..).unwrap_or_default();
            let gso = o.gso_size.unwrap_or(0);
            v.taps
                .tap(Point::Forward, Some(v.cfg.id.0), peer, None, gso, frame);
        }
        // Fast path: a known neighbour and a frame the egress port takes as it is (an
        // offloading port takes partial checksums and super-frames too): rewrite the MACs in
        // place and send the frame with its virtio-net header, in one call.
        if o.wire_len <= usize::from(mtu) {
            if let (Some(mac), Some(v)) = (
                self.neighbors.lookup_on(next_hop, e as u32, self.clock),
                self.vmknics.get_mut(e),
            ) {
                if v.offload() || o.is_plain() {
                    eth::write_header(pkt.frame_mut(), mac, v.cfg.mac, ETHERTYPE_IPV4);
                    if v.offload() {
                        v.send_offloaded(pkt.hdr_and_frame());
                    } else {
                        v.send(pkt.frame_mut());
                    }
                    v.counters.forwarded += 1;
                    if o.gso_size.is_some() {
                        v.counters.gso_forwarded += 1;
                    }
                    return;
                }
            }
        }
        self.forward_slow(pkt, e, next_hop);
    }

    /// The slow path for `pkt` (TTL already decremented) out of vmknic `e`: finishes the
    /// offloads (cuts a super-frame into segments, completes a partial checksum), fragments
    /// what exceeds the MTU, and sends each packet through the neighbour path, which queues it
    /// while ARP resolves.
    fn forward_slow(&mut self, pkt: &mut Ipv4Rx<'_>, e: usize, next_hop: Ipv4Addr) {
        let (i, info, o) = (pkt.vmknic, pkt.info, pkt.offload);
        let Self {
            frag_buf,
            seg_buf,
            neighbors,
            vmknics,
            tx_buf,
            clock,
            ..
        } = self;
        let now = *clock;
        let mtu = vmknics.get(e).map_or(0, |v| v.cfg.mtu);
        let mut out = Outcome {
            unreachable: false,
            onward: true,
        };
        let mut send = |ip: &[u8], out: &mut Outcome| {
            packet::fragment(ip, mtu, frag_buf, |f| {
                let r = emit_ip(neighbors, vmknics, tx_buf, e, next_hop, f, now);
                out.unreachable |= r == Emit::Unreachable;
                out.onward &= r.onward();
            })
        };
        let res = match o.gso_size {
            Some(gso) => {
                let mut sent = Ok(0);
                packet::segment_tcp(pkt.ip(), &info, gso, seg_buf, |seg| {
                    if sent.is_ok() {
                        sent = send(seg, &mut out);
                    }
                })
                .and(sent)
            }
            None => {
                if let Some((start, field)) = o.csum {
                    packet::finish_checksum(pkt.ip_mut(), &info, start, field);
                }
                send(pkt.ip(), &mut out)
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
            self.icmp_error(pkt, IcmpError::HostUnreachable);
        } else if let (true, Some(v)) = (out.onward, self.vmknics.get_mut(e)) {
            v.counters.forwarded += 1;
            if o.gso_size.is_some() {
                v.counters.gso_segmented += 1;
            }
        }
    }
}
