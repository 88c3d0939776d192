//! Changes to a running netstack, and the views the control API lists. Each change applies at
//! once to the data plane; flows that do not use what changed are not disturbed.

use std::net::Ipv4Addr;
use std::os::fd::RawFd;
use std::time::Instant;

use ipnet::Ipv4Net;
use mio::unix::SourceFd;
use mio::Token;
use tracing::{info, warn};
use vmkstack_routing::{RoutingTable, VmknicId};

use super::{open_tap, Counters, Netstack, StackError, Vmknic};
use crate::config::VmknicConfig;
use crate::control::{NeighborInfo, StatsInfo, VmknicInfo};

impl Netstack {
    /// Replaces the routing table (the caller validated the change on a copy).
    pub fn set_routing(&mut self, table: RoutingTable) {
        self.routing = table;
    }

    fn slot_of(&self, id: VmknicId) -> Option<usize> {
        self.vmknics
            .iter()
            .position(|v| v.present && v.cfg.id == id)
    }

    /// Adds a vmknic: its TAP comes up (or stays unplugged if disabled), its subnet becomes a
    /// connected route, its addresses local, and a gratuitous ARP announces them.
    pub fn add_vmknic(&mut self, cfg: &VmknicConfig) -> Result<(), StackError> {
        // A removed vmknic's slot is reused; tokens and neighbour entries use slot numbers.
        let slot = self
            .vmknics
            .iter()
            .position(|v| !v.present && v.cfg.id == cfg.id)
            .or_else(|| self.vmknics.iter().position(|v| !v.present))
            .unwrap_or(self.vmknics.len());
        let tap = open_tap(cfg, self.offloads, &self.poll, Token(slot))?;
        let v = Vmknic {
            cfg: cfg.clone(),
            counters: Counters::default(),
            tap: Some(tap),
            readable: true,
            present: true,
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
        Ok(())
    }

    /// Removes a vmknic: its TAP disappears, its routes are withdrawn (routes through its
    /// subnet become inactive) and its neighbours are forgotten. False if it was unknown.
    pub fn remove_vmknic(&mut self, id: VmknicId) -> bool {
        let Some(slot) = self.slot_of(id) else {
            return false;
        };
        if let Some(v) = self.vmknics.get_mut(slot) {
            if let Some(tap) = v.tap.take() {
                let fd: RawFd = tap.as_raw_fd();
                let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
                info!(vmknic = %id, tap = %tap.name(), "vmknic removed");
            }
            v.present = false;
            v.readable = false;
        }
        self.neighbors.flush_vmknic(slot as u32);
        self.routing.remove_vmknic(id);
        self.refresh_addrs();
        true
    }

    /// Enables or disables a vmknic. Disabled: the TAP's carrier goes off, the connected
    /// route and local addresses are withdrawn. Enabled: both come back.
    pub fn set_vmknic_enabled(&mut self, id: VmknicId, on: bool) -> Result<bool, StackError> {
        let Some(slot) = self.slot_of(id) else {
            return Ok(false);
        };
        if let Some(v) = self.vmknics.get_mut(slot) {
            if let Some(tap) = &v.tap {
                tap.set_carrier(on)
                    .map_err(|source| StackError::Carrier { vmknic: id, source })?;
            }
            v.cfg.enabled = on;
            v.readable = true;
        }
        if !on {
            self.neighbors.flush_vmknic(slot as u32);
        }
        self.routing.set_vmknic_enabled(id, on);
        self.refresh_addrs();
        if on {
            self.announce(slot);
        }
        info!(vmknic = %id, enabled = on, "vmknic {}", if on { "enabled" } else { "disabled" });
        Ok(true)
    }

    /// Changes a vmknic's MTU (its TAP's too). False if it was unknown.
    pub fn set_vmknic_mtu(&mut self, id: VmknicId, mtu: u16) -> Result<bool, StackError> {
        let Some(slot) = self.slot_of(id) else {
            return Ok(false);
        };
        if let Some(v) = self.vmknics.get_mut(slot) {
            if let Some(tap) = &mut v.tap {
                tap.set_mtu(mtu)
                    .map_err(|source| StackError::Tap { vmknic: id, source })?;
            }
            v.cfg.mtu = mtu;
        }
        if usize::from(mtu) < self.device.mtu {
            // smoltcp sized its TCP segments at start-up; larger ones leaving by this vmknic
            // are fragmented (or refused with DF) by the routing core.
            warn!(vmknic = %id, mtu, "MTU below the local endpoint's segment size");
        }
        info!(vmknic = %id, mtu, "vmknic MTU changed");
        Ok(true)
    }

    /// Changes a vmknic's primary address. False if it was unknown.
    pub fn set_vmknic_address(&mut self, id: VmknicId, address: Ipv4Net) -> bool {
        let Some(slot) = self.slot_of(id) else {
            return false;
        };
        let (addrs, enabled) = match self.vmknics.get_mut(slot) {
            Some(v) => {
                v.cfg.address = address;
                (v.cfg.addresses().collect(), v.cfg.enabled)
            }
            None => return false,
        };
        self.neighbors.flush_vmknic(slot as u32);
        self.routing.set_vmknic(id, addrs, enabled);
        self.refresh_addrs();
        self.announce(slot);
        info!(vmknic = %id, %address, "vmknic address changed");
        true
    }

    /// Forgets a neighbour. False if it was unknown.
    pub fn remove_neighbor(&mut self, ip: Ipv4Addr) -> bool {
        self.neighbors.remove(ip)
    }

    /// The vmknics, as `vmknic_list` shows them.
    pub fn vmknic_info(&self) -> Vec<VmknicInfo> {
        self.vmknics
            .iter()
            .filter(|v| v.present)
            .map(|v| VmknicInfo {
                name: v.cfg.id,
                portgroup: v.cfg.portgroup.clone(),
                addresses: v.cfg.addresses().collect(),
                mac: v.cfg.mac.to_string(),
                mtu: v.cfg.mtu,
                enabled: v.cfg.enabled,
                tap: v.cfg.tap.clone(),
                bridge: v.cfg.bridge.clone(),
                netns: v.cfg.netns.clone(),
            })
            .collect()
    }

    /// The neighbour table, as `neighbor_list` shows it.
    pub fn neighbor_info(&self) -> Vec<NeighborInfo> {
        let now = Instant::now();
        let mut out: Vec<NeighborInfo> = self
            .neighbors
            .entries(now)
            .into_iter()
            .filter_map(|e| {
                let v = self.vmknics.get(e.vmknic as usize)?;
                Some(NeighborInfo {
                    ip: e.ip,
                    mac: e.mac.map(|m| m.to_string()),
                    vmknic: v.cfg.id,
                    state: e.state.as_str().to_string(),
                    expiry_s: e.expires_in.map(|d| d.as_secs()),
                })
            })
            .collect();
        out.sort_by_key(|n| (n.vmknic, n.ip));
        out
    }

    /// Per-vmknic counters.
    pub fn stats(&self) -> Vec<StatsInfo> {
        self.vmknics
            .iter()
            .filter(|v| v.present)
            .map(|v| StatsInfo {
                vmknic: v.cfg.id,
                counters: v.counters.view(),
            })
            .collect()
    }
}
