//! The engine's side of a vmknic's DHCP client (`apps::dhcp`): the answers of DHCP servers
//! (UDP 67 → 68) that arrive on a vmknic that takes its address from DHCP are kept for the
//! client in a small bounded queue (they may be addressed to an address the vmknic does not
//! hold yet, or to the broadcast address, so local delivery would drop them), and the
//! client's frames leave by that vmknic as they are.

use vmkstack_routing::VmknicId;
use vmkstack_vmknic::Port;

use super::ingress::Ipv4Rx;
use super::Engine;
use crate::packet;

/// DHCP answers kept between two turns of the daemon's loop (more are dropped: a server
/// answers a message once).
pub(super) const DHCP_QUEUE: usize = 8;
/// Largest DHCP answer kept (a DHCP message fits a minimum IPv4 MTU, RFC 2131 2).
pub(super) const DHCP_MAX: usize = 1500;

impl<P: Port> Engine<P> {
    /// True when `pkt` is a DHCP server's answer on a vmknic whose address comes from DHCP.
    pub(super) fn is_dhcp_answer(&self, pkt: &Ipv4Rx<'_>) -> bool {
        if pkt.info.protocol != 17 || pkt.info.more_frags || pkt.info.frag_offset > 0 {
            return false;
        }
        if !self.vmknics.get(pkt.vmknic).is_some_and(|v| v.cfg.dhcp) {
            return false;
        }
        let udp = pkt.ip().get(pkt.info.header_len..).unwrap_or_default();
        udp.len() >= 8 && udp[0..2] == 67u16.to_be_bytes() && udp[2..4] == 68u16.to_be_bytes()
    }

    /// Keeps a DHCP answer for the client (the vmknic's slot in front of the IP packet).
    pub(super) fn queue_dhcp(&mut self, pkt: &Ipv4Rx<'_>) {
        let ip = pkt.ip();
        let slot = pkt.vmknic as u8;
        let kept = self.dhcp_in.push_with(ip.len() + 1, |b| {
            b[0] = slot;
            b[1..].copy_from_slice(ip);
        });
        if kept {
            self.vmknics[pkt.vmknic].counters.delivered += 1;
        } else {
            self.count(pkt.vmknic, super::DropReason::QueueFull);
        }
    }

    /// Hands every DHCP answer kept since the last call to `f`, with its vmknic.
    pub fn take_dhcp(&mut self, mut f: impl FnMut(VmknicId, &[u8])) {
        while let Some(b) = self.dhcp_in.front() {
            let id = b
                .first()
                .and_then(|&s| self.vmknics.get(usize::from(s)))
                .map(|v| v.cfg.id);
            if let (Some(id), Some(ip)) = (id, b.get(1..)) {
                if packet::parse_ipv4(ip).is_ok() {
                    f(id, ip);
                }
            }
            self.dhcp_in.pop();
        }
    }

    /// Sends a frame the caller built whole (a DHCP client's) out of vmknic `id`. False when
    /// it is unknown or not active.
    pub fn send_frame(&mut self, id: VmknicId, frame: &[u8]) -> bool {
        match self.slot_of(id).and_then(|s| self.vmknics.get_mut(s)) {
            Some(v) if v.active() => {
                v.send(frame);
                true
            }
            _ => false,
        }
    }

    /// Records whether vmknic `id` takes its address from DHCP (its answers are then kept for
    /// the client). False if unknown.
    pub fn set_vmknic_dhcp(&mut self, id: VmknicId, on: bool) -> bool {
        match self.slot_of(id).and_then(|s| self.vmknics.get_mut(s)) {
            Some(v) => {
                v.cfg.dhcp = on;
                true
            }
            None => false,
        }
    }
}
