//! The engine's side of a vmknic's DHCPv6 client (`apps::dhcp6`) and of its other IPv6
//! switches: the answers of DHCPv6 servers (UDP 547 → 546, to the vmknic's link-local
//! address) that arrive on a vmknic with DHCPv6 on are kept for the client in a small bounded
//! queue instead of going to smoltcp; the address a server grants becomes one of the vmknic's
//! IPv6 addresses (origin DHCP), tentative until duplicate address detection passes, removed
//! at the end of its valid lifetime; a Router Advertisement's M and O flags are kept for the
//! client.

use std::net::Ipv6Addr;
use std::time::Duration;

use ipnet::Ipv6Net;
use tracing::info;
use vmkstack_routing::VmknicId;
use vmkstack_vmknic::Port;

use super::addr6::{Addr6, Addr6Origin, Addr6State};
use super::{DropReason, Engine};

/// DHCPv6 answers kept between two turns of the daemon's loop (more are dropped: a server
/// answers a message once).
pub(super) const DHCP6_QUEUE: usize = 8;
/// Largest DHCPv6 answer kept (IPv6 packet).
pub(super) const DHCP6_MAX: usize = 1500;
/// Prefix length given to a DHCPv6 address: IA_NA addresses carry none (RFC 8415 21.6), and
/// a vmknic needs its link's prefix as a connected route to answer its peers; /64 is the
/// length of nearly every IPv6 link (RFC 7421).
pub const DHCP6_PREFIX_LEN: u8 = 64;

impl<P: Port> Engine<P> {
    /// True when `ip` (an IPv6 packet for us on vmknic `i`, UDP) is a DHCPv6 server's answer
    /// and the vmknic runs a DHCPv6 client.
    pub(super) fn is_dhcp6_answer(&self, i: usize, ip: &[u8]) -> bool {
        let ports = ip.get(40..44).unwrap_or_default();
        ports == [2, 35, 2, 34] && self.vmknics.get(i).is_some_and(|v| v.cfg.ipv6_dhcp)
    }

    /// Keeps a DHCPv6 answer (`ip`, the IPv6 packet) for the client, behind its vmknic's slot.
    pub(super) fn queue_dhcp6(&mut self, i: usize, ip: &[u8]) {
        if ip.len() > DHCP6_MAX {
            return self.count(i, DropReason::BadDhcp6);
        }
        let kept = self.dhcp6_in.push_with(ip.len() + 1, |b| {
            b[0] = i as u8;
            b[1..].copy_from_slice(ip);
        });
        if kept {
            if let Some(v) = self.vmknics.get_mut(i) {
                v.counters.delivered += 1;
            }
        } else {
            self.count(i, DropReason::QueueFull);
        }
    }

    /// Hands every DHCPv6 answer kept since the last call to `f`, with its vmknic.
    pub fn take_dhcp6(&mut self, mut f: impl FnMut(VmknicId, &[u8])) {
        while let Some(b) = self.dhcp6_in.front() {
            let id = b
                .first()
                .and_then(|&s| self.vmknics.get(usize::from(s)))
                .map(|v| v.cfg.id);
            if let (Some(id), Some(ip)) = (id, b.get(1..)) {
                f(id, ip);
            }
            self.dhcp6_in.pop();
        }
    }

    /// Counts a DHCPv6 answer the client found malformed (`bad_dhcp6`) on vmknic `id`.
    pub fn count_bad_dhcp6(&mut self, id: VmknicId) {
        if let Some(slot) = self.slot_of(id) {
            self.count(slot, DropReason::BadDhcp6);
        }
    }

    /// Vmknic `id`'s link-local address once it is usable (DAD passed, the vmknic active):
    /// the source of its DHCPv6 messages.
    pub fn link_local6(&self, id: VmknicId) -> Option<Ipv6Addr> {
        let slot = self.slot_of(id)?;
        let ll = self.vmknics.get(slot)?.cfg.link_local6().addr();
        self.local6
            .iter()
            .any(|&(a, s)| a == ll && s == slot)
            .then_some(ll)
    }

    /// The state of `addr` on vmknic `id`, if it holds it.
    pub fn addr6_state(&self, id: VmknicId, addr: Ipv6Addr) -> Option<Addr6State> {
        let slot = self.slot_of(id)?;
        self.addrs6
            .iter()
            .find(|a| a.slot == slot && a.net.addr() == addr)
            .map(|a| a.state)
    }

    /// The M (managed address) and O (other configuration) flags of the last Router
    /// Advertisement on vmknic `id`, if one came.
    pub fn ra_flags(&self, id: VmknicId) -> Option<(bool, bool)> {
        let slot = self.slot_of(id)?;
        self.vmknics.get(slot)?.ra_flags
    }

    /// Sets vmknic `id`'s IPv6 switches: IPv6 on with its link-local address alone
    /// (`enabled`), router-advertisement autoconfiguration, DHCPv6. Addresses come and go with
    /// them (a DHCPv6 address goes when DHCPv6 is off). False if unknown.
    pub fn set_vmknic_ipv6_switches(
        &mut self,
        id: VmknicId,
        enabled: bool,
        autoconf: bool,
        dhcp: bool,
    ) -> bool {
        let Some(v) = self.slot_of(id).and_then(|s| self.vmknics.get_mut(s)) else {
            return false;
        };
        v.cfg.ipv6_on = enabled;
        v.cfg.ipv6_dhcp = dhcp;
        if !dhcp {
            v.ra_flags = None;
        }
        self.set_vmknic_ipv6_autoconf(id, autoconf)
    }

    /// Applies what vmknic `id`'s DHCPv6 client holds: `Some((address, preferred, valid))`
    /// adds the address (tentative: DAD first) or extends its lifetimes; `None` removes it.
    pub fn set_dhcp6_address(
        &mut self,
        id: VmknicId,
        lease: Option<(Ipv6Addr, Duration, Duration)>,
    ) {
        let Some(slot) = self.slot_of(id) else {
            return;
        };
        let now = self.clock;
        let at = |d: Duration| now.checked_add(d);
        let held = self
            .addrs6
            .iter()
            .position(|a| a.slot == slot && a.origin == Addr6Origin::Dhcp);
        match (held, lease) {
            (Some(k), Some((addr, preferred, valid))) if self.addrs6[k].net.addr() == addr => {
                let a = &mut self.addrs6[k];
                a.valid_until = at(valid);
                a.preferred_until = at(preferred);
                if a.state == Addr6State::Deprecated && !preferred.is_zero() {
                    a.state = Addr6State::Preferred;
                    self.apply_addrs6();
                }
            }
            (held, lease) => {
                if let Some(k) = held {
                    let old = self.addrs6.remove(k);
                    info!(vmknic = %id, address = %old.net, "DHCPv6 address removed");
                }
                if let Some((addr, preferred, valid)) = lease {
                    let taken = self
                        .addrs6
                        .iter()
                        .any(|a| a.slot == slot && a.net.addr() == addr);
                    if let (false, Ok(net)) = (taken, Ipv6Net::new(addr, DHCP6_PREFIX_LEN)) {
                        let mut a = Addr6::tentative(slot, net, Addr6Origin::Dhcp, now);
                        a.valid_until = at(valid);
                        a.preferred_until = at(preferred);
                        self.addrs6.push(a);
                    }
                }
                self.apply_addrs6();
            }
        }
    }
}
