//! Local delivery (Linux's `ip_local_deliver`): packets for one of our addresses go to the echo
//! tap (replies to our pings) or into smoltcp, after the offloads are finished (smoltcp verifies
//! checksums and takes MTU-sized segments); packets smoltcp sends come back here and leave
//! through the routing core, or loop back into smoltcp when they are for us.

use std::net::Ipv4Addr;

use vmkstack_api::capture::Point;
use vmkstack_vmknic::Port;

use super::egress::{route_local, send_coalesced};
use super::ingress::Ipv4Rx;
use super::{smol_time, DropReason, Engine};
use crate::device::IpDevice;
use crate::packet;

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
        if let Some(gso) = o.gso_size {
            // Make room for every segment first: smoltcp drains the ring when polled.
            if self.device.rx.free() < info.total_len.div_ceil(usize::from(gso)) {
                self.poll_local();
            }
            let Self {
                seg_buf,
                device,
                vmknics,
                ..
            } = self;
            let (mut stored, mut lost) = (0, 0);
            let res = packet::segment_tcp(pkt.ip(), &info, gso, seg_buf, |seg| {
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

    /// Runs smoltcp and routes what it sent (call after changing a socket to send promptly).
    pub fn poll_local(&mut self) {
        for _ in 0..LOOPBACK_ROUNDS {
            let now = self.clock;
            self.iface.poll(
                smol_time(self.epoch, now),
                &mut self.device,
                &mut self.sockets,
            );
            let mut looped = false;
            let Self {
                routing,
                neighbors,
                vmknics,
                tx_buf,
                seg_buf,
                device,
                echo,
                coalescer,
                local_addrs,
                offloads,
                taps,
                ..
            } = self;
            let IpDevice { rx, tx, .. } = device;
            while let Some(pkt) = tx.front() {
                if taps.active() {
                    taps.tap(Point::EndpointOut, None, None, None, 0, pkt);
                }
                match local_destination(local_addrs, pkt) {
                    Some(info) => {
                        looped = true;
                        // A full rx ring drops, as a congested loopback would.
                        if !echo.capture(pkt, &info, now) {
                            rx.push(pkt);
                        }
                    }
                    // With offloads, a burst of TCP segments leaves as one super-frame.
                    None if *offloads => {
                        if !coalescer.push(pkt) {
                            send_coalesced(
                                coalescer, routing, neighbors, vmknics, tx_buf, seg_buf, now,
                            );
                            if !coalescer.push(pkt) {
                                route_local(routing, neighbors, vmknics, tx_buf, pkt, now);
                            }
                        }
                    }
                    None => route_local(routing, neighbors, vmknics, tx_buf, pkt, now),
                }
                tx.pop();
            }
            send_coalesced(coalescer, routing, neighbors, vmknics, tx_buf, seg_buf, now);
            self.flush_deferred();
            if !looped {
                break;
            }
        }
    }
}

/// The header of a packet the stack sent to one of its own addresses (`local`: the active
/// vmknics' addresses).
fn local_destination(local: &[Ipv4Addr], pkt: &[u8]) -> Option<packet::Ipv4Info> {
    let info = packet::parse_ipv4(pkt).ok()?;
    local.contains(&info.dst).then_some(info)
}
