//! Local delivery (Linux's `ip_local_deliver`): packets for one of our addresses go to the echo
//! tap (replies to our pings) or into smoltcp. TCP is checked here, not by smoltcp: a segment
//! the kernel behind the TAP vouched for (partial checksum) goes in as it is, a 64 KiB
//! super-frame whole, any other after its checksum is checked (a fragmented one after
//! reassembly); smoltcp reads a TCP segment straight from the receive batch when nothing waits
//! before it (else it queues in the device's ring). Other protocols get their partial
//! checksums finished and go through the ring; smoltcp checks them.
//! Packets smoltcp sends come back here and leave through the routing core (TCP segments
//! merged into super-frames, or with their checksum filled in), or loop back into smoltcp when
//! they are for us.

use std::net::Ipv4Addr;

use vmkstack_api::capture::Point;
use vmkstack_vmknic::Port;

use super::egress::{route_local, route_tso, send_coalesced, send_merged};
use super::gather::Egress;
use super::ingress::Ipv4Rx;
use super::local6::Out6;
use super::{smol_time, DropReason, Engine};
use crate::device::{Gathering, IpDevice, OnePacket, MAX_DATAGRAM, TX_HEADROOM};
use crate::packet;

/// IP protocol number of TCP.
const TCP: u8 = 6;

/// Rounds of smoltcp per [`Engine::poll_local`]: packets smoltcp sends to one of our own
/// addresses loop back into it (or complete a ping); each round only moves what is queued.
const LOOPBACK_ROUNDS: usize = 4;

impl<P: Port> Engine<P> {
    /// Hands a packet for one of our addresses to the echo tap or to smoltcp.
    pub(super) fn deliver_local(&mut self, pkt: &mut Ipv4Rx<'_>) {
        let (i, info, o) = (pkt.vmknic, pkt.info, pkt.offload);
        if self.taps.active() {
            let id = self.vmknics.get(i).map(|v| v.cfg.id.0);
            let gso = o.gso_size.unwrap_or(0);
            self.taps
                .tap(Point::EndpointIn, id, None, None, gso, pkt.ip());
        }
        if info.protocol == TCP {
            return self.deliver_tcp(pkt);
        }
        if let Some((start, field)) = o.csum {
            packet::finish_checksum(pkt.ip_mut(), &info, start, field);
        }
        self.echo.note_fragment(&info);
        let delivered =
            self.echo.capture(pkt.ip(), &info, self.clock) || self.device.rx.push(pkt.ip());
        match self.vmknics.get_mut(i) {
            Some(v) if delivered => v.counters.delivered += 1,
            Some(v) => v.counters.drop(DropReason::QueueFull),
            None => {}
        }
    }

    /// Hands a TCP segment, or a whole super-frame, to smoltcp. smoltcp checks no TCP
    /// checksum (see the device's capabilities): a segment whose checksum the kernel behind
    /// the TAP left partial (`CHECKSUM_PARTIAL`: built on that host, it never crossed a wire)
    /// is taken as it is, super-frames included, which smoltcp takes as one segment; any
    /// other is checked here, a fragmented one once it is whole again.
    fn deliver_tcp(&mut self, pkt: &mut Ipv4Rx<'_>) {
        let (i, info, o) = (pkt.vmknic, pkt.info, pkt.offload);
        let fragment = info.more_frags || info.frag_offset > 0;
        // Make room first: smoltcp drains the ring when polled.
        let need = if fragment {
            MAX_DATAGRAM
        } else {
            info.total_len
        };
        if !self.device.rx.fits(need) {
            self.poll_local();
        }
        let verdict = if fragment {
            let Self {
                reasm,
                device,
                clock,
                ..
            } = self;
            match reasm.push(pkt.ip(), &info, *clock) {
                packet::Reassembly::Pending => Ok(()),
                packet::Reassembly::Invalid => Err(DropReason::Fragment),
                packet::Reassembly::Done(whole) => match packet::parse_ipv4(whole) {
                    Ok(w) if packet::tcp_checksum_ok(whole, &w) => device
                        .rx
                        .push(whole)
                        .then_some(())
                        .ok_or(DropReason::QueueFull),
                    _ => Err(DropReason::BadChecksum),
                },
            }
        } else if !partial_tcp_checksum(&info, &o) && !packet::tcp_checksum_ok(pkt.ip(), &info) {
            Err(DropReason::BadChecksum)
        } else if self.device.rx.is_empty() && !self.device.tx.is_full() {
            // Nothing queued before it: smoltcp takes it from the receive batch, no copy.
            // (Its ACK leaves with the turn's poll, one for all the turn's segments.)
            let Self {
                iface,
                device,
                sockets,
                epoch,
                clock,
                ..
            } = self;
            let mut one = OnePacket {
                pkt: Some(pkt.ip()),
                tx: &mut device.tx,
                mtu: device.mtu,
                tso: device.tso,
            };
            iface.poll_ingress_single(smol_time(*epoch, *clock), &mut one, sockets);
            Ok(())
        } else {
            self.device
                .rx
                .push(pkt.ip())
                .then_some(())
                .ok_or(DropReason::QueueFull)
        };
        let Some(v) = self.vmknics.get_mut(i) else {
            return;
        };
        match verdict {
            Ok(()) => v.counters.delivered += 1,
            Err(r) => v.counters.drop(r),
        }
    }

    /// Runs smoltcp once. With offloads on and no capture, a large TCP segment it sends
    /// may leave at once from its socket buffer, without the copy into the transmit ring
    /// (`gather.rs`).
    fn poll_smoltcp(&mut self, now: std::time::Instant) {
        let Self {
            iface,
            device,
            sockets,
            epoch,
            routing,
            neighbors,
            vmknics,
            coalescers,
            local_addrs,
            offloads,
            taps,
            runtime,
            routing6,
            neighbors6,
            local6,
            ..
        } = self;
        let at = smol_time(*epoch, now);
        if !*offloads || taps.active() {
            iface.poll(at, device, sockets);
            return;
        }
        let mut egress = Egress {
            routing,
            neighbors,
            vmknics,
            coalescers,
            local_addrs,
            routing6,
            neighbors6,
            local6,
            runtime,
            now,
        };
        let mut dev = Gathering {
            dev: device,
            direct: &mut egress,
        };
        iface.poll(at, &mut dev, sockets);
    }

    /// Runs smoltcp and routes what it sent (call after changing a socket to send promptly).
    pub fn poll_local(&mut self) {
        for _ in 0..LOOPBACK_ROUNDS {
            let now = self.clock;
            self.poll_smoltcp(now);
            let mut looped = false;
            let Self {
                routing,
                neighbors,
                vmknics,
                tx_buf,
                seg_buf,
                device,
                echo,
                coalescers,
                local_addrs,
                offloads,
                taps,
                routing6,
                neighbors6,
                local6,
                icmp_limit,
                ..
            } = self;
            let IpDevice { rx, tx, .. } = device;
            // The coalescer given up next when every one holds another flow.
            let mut victim = 0;
            loop {
                // A TCP segment larger than the MSS (device TSO, offloads on) carries the
                // segment size it is to be cut into.
                let gso = tx.front_tag();
                let Some(slot) = tx.front_mut() else {
                    break;
                };
                let Some(pkt) = slot.get_mut(TX_HEADROOM..) else {
                    tx.pop();
                    continue;
                };
                if taps.active() {
                    taps.tap(Point::EndpointOut, None, None, None, gso, pkt);
                }
                if pkt.first().is_some_and(|b| b >> 4 == 6) {
                    let mut out = Out6 {
                        routing6,
                        neighbors6,
                        vmknics,
                        tx_buf,
                        local6,
                        icmp_limit,
                        rx,
                        echo,
                        now,
                    };
                    // A TCP segment larger than the MSS (TSO6) leaves whole from where it
                    // was built, or cut.
                    looped |= if gso > 0 {
                        out.send_tso(slot, gso, seg_buf)
                    } else {
                        out.send(pkt)
                    };
                    tx.pop();
                    continue;
                }
                match local_destination(local_addrs, pkt) {
                    Some(info) => {
                        looped = true;
                        // A full rx ring drops, as a congested loopback would.
                        if !echo.capture(pkt, &info, now) {
                            rx.push(pkt);
                        }
                    }
                    // A segment smoltcp built larger than the MSS leaves whole from where it
                    // was built, after what the same flow's coalescer holds (in order).
                    None if *offloads && gso > 0 => {
                        let flow = packet::flow_of(pkt);
                        let held = coalescers
                            .iter_mut()
                            .find(|c| flow.is_some() && c.flow() == flow);
                        if let Some(c) = held {
                            send_coalesced(c, routing, neighbors, vmknics, tx_buf, seg_buf, now);
                        }
                        match packet::tso_frame(slot, gso) {
                            Some(m) => {
                                send_merged(m, routing, neighbors, vmknics, tx_buf, seg_buf, now)
                            }
                            None => route_tso(
                                routing,
                                neighbors,
                                vmknics,
                                tx_buf,
                                seg_buf,
                                &slot[TX_HEADROOM..],
                                gso,
                                now,
                            ),
                        }
                    }
                    // With offloads, a burst of TCP segments leaves as one super-frame: each
                    // flow's in a coalescer of its own (smoltcp sends its sockets' segments in
                    // turn), else a free one, else one given up to make room.
                    None if *offloads => {
                        let flow = packet::flow_of(pkt);
                        let slot = flow
                            .and_then(|f| coalescers.iter().position(|c| c.flow() == Some(f)))
                            .or_else(|| coalescers.iter().position(|c| c.is_empty()));
                        let i = match (flow, slot) {
                            (Some(_), Some(i)) => Some(i),
                            (Some(_), None) => {
                                victim = (victim + 1) % coalescers.len();
                                Some(victim)
                            }
                            (None, _) => None,
                        };
                        let merged = i.and_then(|i| coalescers.get_mut(i)).is_some_and(|c| {
                            c.push(pkt) || {
                                // Not a continuation: what is held goes first, in order.
                                send_coalesced(
                                    c, routing, neighbors, vmknics, tx_buf, seg_buf, now,
                                );
                                c.push(pkt)
                            }
                        });
                        if !merged {
                            packet::fill_tcp_checksum(pkt);
                            route_local(routing, neighbors, vmknics, tx_buf, pkt, now);
                        }
                    }
                    None if gso > 0 => {
                        route_tso(routing, neighbors, vmknics, tx_buf, seg_buf, pkt, gso, now);
                    }
                    None => {
                        packet::fill_tcp_checksum(pkt);
                        route_local(routing, neighbors, vmknics, tx_buf, pkt, now);
                    }
                }
                tx.pop();
            }
            for c in coalescers.iter_mut() {
                send_coalesced(c, routing, neighbors, vmknics, tx_buf, seg_buf, now);
            }
            self.flush_deferred();
            if !looped {
                break;
            }
        }
    }
}

/// True when the virtio-net header says the TCP checksum field itself holds a partial sum:
/// the kernel behind the TAP built the segment and vouches for its bytes.
fn partial_tcp_checksum(info: &packet::Ipv4Info, o: &packet::Offload) -> bool {
    o.csum == Some((info.header_len, info.header_len + 16))
}

/// The header of a packet the stack sent to one of its own addresses (`local`: the active
/// vmknics' addresses).
fn local_destination(local: &[Ipv4Addr], pkt: &[u8]) -> Option<packet::Ipv4Info> {
    let info = packet::parse_ipv4(pkt).ok()?;
    local.contains(&info.dst).then_some(info)
}
