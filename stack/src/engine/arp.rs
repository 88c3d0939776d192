//! ARP (RFC 826) for the engine: answering and learning from what arrives, announcing our
//! addresses, and the neighbour table's events (retries, and failures that turn queued
//! packets into ICMP Host Unreachable).

use std::net::Ipv4Addr;

use tracing::debug;
use vmkstack_vmknic::arp as arp_wire;
use vmkstack_vmknic::eth::{self, ETHERTYPE_IPV4, ETH_HDR};
use vmkstack_vmknic::neighbor::NeighborEvent;
use vmkstack_vmknic::Port;

use super::icmp::push_icmp;
use super::{arp_request, DropReason, Engine};
use crate::packet::{self, IcmpError};

impl<P: Port> Engine<P> {
    /// Handles an ARP frame received on vmknic `i`: answers requests for our addresses and
    /// learns the sender where the rules allow, then sends what waited for it.
    pub(super) fn handle_arp(&mut self, i: usize, frame: &[u8]) {
        let Some(v) = self.vmknics.get_mut(i) else {
            return;
        };
        let action = arp_wire::handle(
            frame,
            v.cfg.mac,
            |ip| v.cfg.addresses().any(|a| a.addr() == ip),
            &mut self.tx_buf,
        );
        let action = match action {
            Ok(a) => a,
            Err(r) => {
                v.counters.drop(r);
                return;
            }
        };
        if let Some(r) = action.drop {
            v.counters.drop(r);
        }
        if let Some(len) = action.reply_len {
            v.send(&self.tx_buf[..len]);
        }
        // Learn only neighbours on this wire's subnets that are not our own addresses: a
        // host may ARP from an address of another interface (Linux arp_announce=0), and that
        // must not teach us a MAC for a subnet behind another vmknic.
        let on_wire = action
            .learn
            .filter(|(ip, _)| v.cfg.addresses().any(|a| a.contains(ip)));
        let learn = on_wire.filter(|(ip, _)| !self.is_local(*ip));
        if let Some((ip, mac)) = learn {
            let now = self.clock;
            if self
                .neighbors
                .learn(ip, mac, i as u32, action.update_only, now)
            {
                self.send_pending(ip);
            }
        }
    }

    /// Sends every packet that waited for `ip` to resolve.
    fn send_pending(&mut self, ip: Ipv4Addr) {
        let Self {
            neighbors,
            vmknics,
            tx_buf,
            ..
        } = self;
        neighbors.drain_ready(ip, |vmk, mac, pkt| {
            let Some(v) = vmknics.get_mut(vmk as usize) else {
                return;
            };
            let len = ETH_HDR + pkt.len();
            if len > tx_buf.len() {
                v.counters.drop(DropReason::TooBig);
                return;
            }
            eth::write_header(tx_buf, mac, v.cfg.mac, ETHERTYPE_IPV4);
            tx_buf[ETH_HDR..len].copy_from_slice(pkt);
            v.send(&tx_buf[..len]);
        });
    }

    /// Sends a gratuitous ARP for every address of vmknic `i`.
    pub(super) fn announce(&mut self, i: usize) {
        let Some(v) = self.vmknics.get_mut(i).filter(|v| v.active()) else {
            return;
        };
        for a in v.cfg.addresses().collect::<Vec<_>>() {
            let n = arp_wire::write_gratuitous(&mut self.tx_buf, v.cfg.mac, a.addr());
            if n > 0 {
                v.send(&self.tx_buf[..n]);
            }
        }
        self.announce6(i);
    }

    /// Runs the neighbour table's timers: ARP retries go out; a neighbour that never
    /// answered fails what waited for it (Host Unreachable to the sender, or a failed ping or
    /// probe when the packet was our own).
    pub(super) fn poll_neighbors(&mut self) {
        let Self {
            routing,
            neighbors,
            vmknics,
            tx_buf,
            deferred,
            icmp_limit,
            ident,
            echo,
            clock,
            ..
        } = self;
        let now = *clock;
        neighbors.poll_events(now, |event| match event {
            NeighborEvent::Retry { vmknic, ip } => {
                if let Some(v) = vmknics.get_mut(vmknic as usize) {
                    arp_request(v, tx_buf, ip);
                }
            }
            NeighborEvent::Probe { .. } => {}
            NeighborEvent::Failed {
                vmknic,
                ip,
                packet: pkt,
            } => {
                debug!(neighbor = %ip, "neighbour unreachable");
                // Packets the stack sent itself get no ICMP error (their source is ours).
                let ours = packet::parse_ipv4(pkt)
                    .is_ok_and(|p| vmknics.iter().any(|x| x.has_addr(p.src)));
                if let Some(v) = vmknics.get_mut(vmknic as usize) {
                    v.counters.drop(DropReason::NeighborUnreachable);
                }
                if ours {
                    echo.failed(pkt);
                } else {
                    let source = |peer| routing.lookup(peer).map(|r| r.source);
                    let sent = push_icmp(
                        deferred,
                        icmp_limit,
                        ident,
                        now,
                        IcmpError::HostUnreachable,
                        pkt,
                        source,
                    );
                    if let (true, Some(v)) = (sent, vmknics.get_mut(vmknic as usize)) {
                        v.counters.icmp_errors += 1;
                    }
                }
            }
        });
        self.flush_deferred();
    }
}
