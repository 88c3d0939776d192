//! Changes to a running engine. Each change applies at
//! once to the data plane; flows that do not use what changed are not disturbed. Device
//! operations (creating a TAP, its carrier, its MTU) are the owner's: it hands the engine a
//! ready port and tells it what changed.

use std::net::Ipv4Addr;

use ipnet::{Ipv4Net, Ipv6Net};
use tracing::{info, warn};
use vmkstack_routing::{RoutingTable, VmknicId};
use vmkstack_vmknic::Port;

use super::{Counters, Engine, Vmknic};
use crate::config::VmknicConfig;

impl<P: Port> Engine<P> {
    /// Replaces the routing table (the caller validated the change on a copy). A vmknic whose
    /// wire is down keeps its connected route withdrawn.
    pub fn set_routing(&mut self, table: RoutingTable) {
        self.routing.set_table(table);
        for v in self.vmknics.iter().filter(|v| v.present && !v.routable()) {
            self.routing.set_vmknic_enabled(v.cfg.id, false);
        }
    }

    /// Replaces the IPv6 routing table (the caller validated the change on a copy). Its
    /// vmknics are the engine's: they are set again from the running vmknics.
    pub fn set_routing6(&mut self, table: vmkstack_routing::RoutingTable6) {
        self.routing6 = table;
        self.ra6.forget_installed();
        self.refresh_addrs6();
        // A router advertised default router comes back when none is configured.
        self.apply_ra_default();
    }

    /// Sets or clears a vmknic's own default gateway (the caller checked it lies on the
    /// vmknic's subnet). False if unknown.
    pub fn set_vmknic_gateway(&mut self, id: VmknicId, gateway: Option<Ipv4Addr>) -> bool {
        let Some(slot) = self.slot_of(id) else {
            return false;
        };
        if let Some(v) = self.vmknics.get_mut(slot) {
            v.cfg.gateway = gateway;
        }
        self.refresh_addrs();
        true
    }

    /// Turns forwarding between vmknics on or off (a reloaded configuration).
    pub fn set_forwarding(&mut self, on: bool) {
        if self.forwarding != on {
            info!(forwarding = on, "forwarding changed");
        }
        self.forwarding = on;
        self.generation += 1;
    }

    /// The slot of a present vmknic.
    pub fn slot_of(&self, id: VmknicId) -> Option<usize> {
        self.vmknics
            .iter()
            .position(|v| v.present && v.cfg.id == id)
    }

    /// The slot [`Engine::add_vmknic`] will use for `id`: a removed vmknic's slot is reused
    /// (tokens and neighbour entries use slot numbers).
    pub fn free_slot(&self, id: VmknicId) -> usize {
        self.vmknics
            .iter()
            .position(|v| !v.present && v.cfg.id == id)
            .or_else(|| self.vmknics.iter().position(|v| !v.present))
            .unwrap_or(self.vmknics.len())
    }

    /// Adds a vmknic on `port` in [`Engine::free_slot`]: its subnet becomes a connected route,
    /// its addresses local, and a gratuitous ARP announces them. Returns the slot.
    pub fn add_vmknic(&mut self, cfg: &VmknicConfig, port: P) -> usize {
        let slot = self.free_slot(cfg.id);
        let v = Vmknic {
            cfg: cfg.clone(),
            counters: Counters::default(),
            port: Some(port),
            readable: true,
            present: true,
            link_down: None,
            port_failed: false,
            taps: self.taps.clone(),
            mtu6: None,
            ra_flags: None,
        };
        if slot == self.vmknics.len() {
            self.vmknics.push(v);
        } else {
            self.vmknics[slot] = v;
        }
        self.routing
            .set_vmknic(cfg.id, cfg.addresses().collect(), cfg.enabled);
        self.refresh_addrs();
        self.announce(slot);
        slot
    }

    /// Removes a vmknic: its routes are withdrawn (routes through its subnet become inactive)
    /// and its neighbours are forgotten. Returns its port (`None` if it was unknown or had
    /// none) for the owner to close.
    pub fn remove_vmknic(&mut self, id: VmknicId) -> Option<Option<P>> {
        let slot = self.slot_of(id)?;
        let port = self.vmknics.get_mut(slot).and_then(|v| {
            v.present = false;
            v.readable = false;
            v.port.take()
        });
        self.neighbors.flush_vmknic(slot as u32);
        self.neighbors6.flush_vmknic(slot as u32);
        self.routing.remove_vmknic(id);
        self.refresh_addrs();
        info!(vmknic = %id, "vmknic removed");
        Some(port)
    }

    /// Enables or disables a vmknic (the owner switched its carrier). Disabled: the connected
    /// route and local addresses are withdrawn. Enabled: both come back. False if unknown.
    pub fn set_vmknic_enabled(&mut self, id: VmknicId, on: bool) -> bool {
        let Some(slot) = self.slot_of(id) else {
            return false;
        };
        if let Some(v) = self.vmknics.get_mut(slot) {
            v.cfg.enabled = on;
            v.readable = true;
        }
        if !on {
            self.neighbors.flush_vmknic(slot as u32);
            self.neighbors6.flush_vmknic(slot as u32);
        }
        let routable = self.vmknics.get(slot).is_some_and(|v| v.routable());
        self.routing.set_vmknic_enabled(id, routable);
        self.refresh_addrs();
        if on {
            self.announce(slot);
        }
        info!(vmknic = %id, enabled = on, "vmknic {}", if on { "enabled" } else { "disabled" });
        true
    }

    /// Turns a vmknic's IPv6 router-advertisement autoconfiguration on or off. False if
    /// unknown.
    pub fn set_vmknic_ipv6_autoconf(&mut self, id: VmknicId, on: bool) -> bool {
        let Some(slot) = self.slot_of(id) else {
            return false;
        };
        if let Some(v) = self.vmknics.get_mut(slot) {
            v.cfg.ipv6_autoconf = on;
            if !on {
                v.mtu6 = None;
            }
        }
        // IPv6 may come or go with it (link-local DAD, then solicitations); autoconfigured
        // addresses and advertised routers go when it is off.
        self.refresh_addrs();
        self.forget_routers6(slot);
        if on {
            self.start_solicit6(slot);
        }
        true
    }

    /// Records a vmknic's new MTU (the owner set it on the device). False if unknown.
    pub fn set_vmknic_mtu(&mut self, id: VmknicId, mtu: u16) -> bool {
        let Some(v) = self.slot_of(id).and_then(|s| self.vmknics.get_mut(s)) else {
            return false;
        };
        v.cfg.mtu = mtu;
        self.generation += 1;
        if usize::from(mtu) < self.device.mtu {
            // smoltcp sized its TCP segments at start-up; larger ones leaving by this vmknic
            // are fragmented (or refused with DF) by the routing core.
            warn!(vmknic = %id, mtu, "MTU below the local endpoint's segment size");
        }
        info!(vmknic = %id, mtu, "vmknic MTU changed");
        true
    }

    /// Changes a vmknic's primary address (`None`: it has none, as a DHCP vmknic without a
    /// lease). False if it was unknown.
    pub fn set_vmknic_address(&mut self, id: VmknicId, address: Option<Ipv4Net>) -> bool {
        let Some(slot) = self.slot_of(id) else {
            return false;
        };
        let (addrs, enabled) = match self.vmknics.get_mut(slot) {
            Some(v) => {
                v.cfg.address = address;
                (v.cfg.addresses().collect(), v.routable())
            }
            None => return false,
        };
        self.neighbors.flush_vmknic(slot as u32);
        self.routing.set_vmknic(id, addrs, enabled);
        self.refresh_addrs();
        if address.is_some() {
            self.announce(slot);
        }
        info!(vmknic = %id, address = ?address, "vmknic address changed");
        true
    }

    /// Sets vmknic `id`'s static IPv6 addresses (IPv6 is on while it has one): smoltcp's
    /// addresses and the connected IPv6 routes follow, its IPv6 neighbours are forgotten when
    /// it loses IPv6, and its addresses are announced. False if no such vmknic.
    pub fn set_vmknic_ipv6(&mut self, id: VmknicId, ipv6: Vec<Ipv6Net>) -> bool {
        let Some(slot) = self.slot_of(id) else {
            return false;
        };
        let Some(v) = self.vmknics.get_mut(slot) else {
            return false;
        };
        v.cfg.ipv6 = ipv6;
        let on = v.cfg.ipv6_enabled();
        if !on {
            self.neighbors6.flush_vmknic(slot as u32);
        }
        self.refresh_addrs();
        self.announce6(slot);
        info!(vmknic = %id, ipv6 = ?self.vmknics.get(slot).map(|v| &v.cfg.ipv6), "vmknic IPv6 addresses changed");
        true
    }

    /// Marks vmknic `slot`'s wire down with `reason` (its connected route and addresses are
    /// withdrawn, its neighbours forgotten) or, with `None`, up again (both come back and a
    /// gratuitous ARP announces it). False if nothing changed.
    pub fn set_link_down(&mut self, slot: usize, reason: Option<String>) -> bool {
        let Some(v) = self.vmknics.get_mut(slot).filter(|v| v.present) else {
            return false;
        };
        let was_down = v.link_down.is_some();
        let now_down = reason.is_some();
        v.link_down = reason;
        v.readable = true;
        let (id, routable) = (v.cfg.id, v.routable());
        if was_down == now_down {
            return false;
        }
        if now_down {
            self.neighbors.flush_vmknic(slot as u32);
        }
        self.routing.set_vmknic_enabled(id, routable);
        self.refresh_addrs();
        if routable {
            self.announce(slot);
        }
        true
    }

    /// Puts `port` (a re-created TAP) in vmknic `slot`'s place, or takes its port away
    /// (`None`, its TAP is gone); returns the port it had, for the owner to close.
    pub fn replace_port(&mut self, slot: usize, port: Option<P>) -> Option<P> {
        let v = self.vmknics.get_mut(slot)?;
        v.port_failed = false;
        v.readable = port.is_some();
        self.generation += 1;
        std::mem::replace(&mut v.port, port)
    }

    /// The slots whose port failed to read since the last call (the owner looks at their
    /// netdevs); empty, without a scan, when none did.
    pub fn take_port_failures(&mut self) -> Vec<usize> {
        if !std::mem::take(&mut self.port_failures) {
            return Vec::new();
        }
        let failed: Vec<usize> = (0..self.vmknics.len())
            .filter(|&i| self.vmknics[i].port_failed)
            .collect();
        for &i in &failed {
            self.vmknics[i].port_failed = false;
        }
        failed
    }

    /// Forgets a neighbour. False if it was unknown.
    pub fn remove_neighbor(&mut self, ip: Ipv4Addr) -> bool {
        self.neighbors.remove(ip)
    }
}
