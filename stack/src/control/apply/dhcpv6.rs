//! The daemon's side of the vmknics' IPv6 switches (`esxcli network ip interface ipv6 set -e
//! -r -d`) and of their DHCPv6 clients (`apps::dhcp6`): each client runs on the event loop's
//! turn, sends through its vmknic's engine once the link-local address is usable, takes the
//! answers the engine kept, and its address goes into the engine (DAD first; a duplicate one
//! is declined). A Router Advertisement's M flag makes a soliciting client ask at once; the O
//! flag (DNS servers and other configuration) asks for nothing a vmknic uses, so it changes
//! nothing.

use std::time::Instant;

use serde_json::Value;
use tracing::{info, warn};
use vmkstack_api::RemoteError;
use vmkstack_routing::VmknicId;

use super::{invalid, Daemon};
use crate::apps::dhcp6;
use crate::control::command::VmknicRef;
use crate::engine::Addr6State;

// The DHCPv4 clients' frame buffer carries the DHCPv6 ones' too.
const _: () = assert!(dhcp6::MAX_FRAME <= crate::apps::dhcp::MAX_FRAME);

impl Daemon {
    /// Sets a vmknic's IPv6 switches in one change: live, then saved (undone if the file
    /// cannot be written). IPv6 off is refused while an address source remains; DHCPv6 off
    /// releases the address first, while the link-local address still carries the RELEASE.
    pub(super) fn vmknic_ipv6_set(
        &mut self,
        vmknic: &VmknicRef,
        enabled: Option<bool>,
        autoconf: Option<bool>,
        dhcp: Option<bool>,
    ) -> Result<Value, RemoteError> {
        let id = self.resolve(vmknic)?;
        let Some(cur) = self.cfg.vmknics.iter().find(|v| v.id == id).cloned() else {
            return Err(invalid(format!("no vmknic {id}")));
        };
        let autoconf = autoconf.unwrap_or(cur.ipv6_autoconf);
        let dhcp = dhcp.unwrap_or(cur.ipv6_dhcp);
        let on = match enabled {
            Some(false) if !cur.ipv6.is_empty() || autoconf || dhcp => {
                let mut why = Vec::new();
                if !cur.ipv6.is_empty() {
                    why.push(format!(
                        "holds static IPv6 addresses (remove them with `esxcli network ip \
                         interface ipv6 address remove -i {id} -I ADDR/LEN`)"
                    ));
                }
                if autoconf {
                    why.push("takes router advertisements (-r false)".to_string());
                }
                if dhcp {
                    why.push("takes a DHCPv6 address (-d false)".to_string());
                }
                return Err(invalid(format!(
                    "cannot turn IPv6 off on {id}: it {}",
                    why.join(" and ")
                )));
            }
            Some(on) => on,
            None => cur.ipv6_on,
        };
        let new = self.with_vmknic(id, |v| {
            v.ipv6_enabled = on.then_some(true);
            v.ipv6_autoconf = autoconf.then_some(true);
            v.ipv6_dhcp = dhcp.then_some(true);
        })?;
        if cur.ipv6_dhcp && !dhcp {
            self.dhcp6_stop(id);
        }
        self.stack.set_vmknic_ipv6_switches(id, on, autoconf, dhcp);
        if let Err(e) = self.commit(new) {
            self.stack
                .set_vmknic_ipv6_switches(id, cur.ipv6_on, cur.ipv6_autoconf, cur.ipv6_dhcp);
            if cur.ipv6_dhcp && !dhcp {
                self.dhcp6_start(id);
            }
            return Err(e);
        }
        if dhcp && !self.dhcp6.contains_key(&id) {
            self.dhcp6_start(id);
        }
        info!(vmknic = %id, enabled = on, autoconf, dhcp, "IPv6 settings");
        Ok(Value::Null)
    }

    /// Starts vmknic `id`'s DHCPv6 client (it solicits once its link-local address is usable).
    pub(super) fn dhcp6_start(&mut self, id: VmknicId) {
        let Some(mac) = self.cfg.vmknics.iter().find(|v| v.id == id).map(|v| v.mac) else {
            return;
        };
        self.dhcp6
            .insert(id, dhcp6::Client::new(id, mac, Instant::now()));
        info!(vmknic = %id, "DHCPv6 client started");
    }

    /// Stops vmknic `id`'s DHCPv6 client, releasing its address; true when a RELEASE went out.
    /// The address leaves the engine.
    pub(super) fn dhcp6_stop(&mut self, id: VmknicId) -> bool {
        let Some(client) = self.dhcp6.remove(&id) else {
            return false;
        };
        let Some(engine) = self
            .stack
            .stack_of(id)
            .and_then(|ns| self.stack.engine_mut(ns))
        else {
            return false;
        };
        let n = engine
            .link_local6(id)
            .map_or(0, |ll| client.release(ll, &mut self.dhcp_frame));
        let sent = n > 0 && engine.send_frame(id, &self.dhcp_frame[..n]);
        engine.flush();
        engine.set_dhcp6_address(id, None);
        if sent {
            info!(vmknic = %id, "DHCPv6 address released");
        }
        sent
    }

    /// The DHCPv6 clients' turn: the answers that arrived (malformed ones counted), the
    /// advertisements' M flag, a duplicate address declined, then the timers; addresses
    /// applied.
    pub(super) fn poll_dhcp6(&mut self) {
        if self.dhcp6.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut events = Vec::new();
        let mut bad = Vec::new();
        let clients = &mut self.dhcp6;
        for ns in 0..self.stack.netstack_slots() {
            if let Some(engine) = self.stack.engine_mut(ns) {
                engine.take_dhcp6(|id, ip| {
                    match clients.get_mut(&id).map(|c| c.receive(ip, now)) {
                        Some(Ok(Some(e))) => events.push((id, e)),
                        Some(Err(why)) => bad.push((id, why)),
                        _ => {}
                    }
                });
            }
        }
        for (id, c) in self.dhcp6.iter_mut() {
            let Some(engine) = self
                .stack
                .stack_of(*id)
                .and_then(|ns| self.stack.engine_mut(ns))
            else {
                continue;
            };
            if let Some(k) = bad.iter().position(|(b, _)| b == id) {
                let (_, why) = bad.swap_remove(k);
                engine.count_bad_dhcp6(*id);
                warn!(vmknic = %id, "malformed DHCPv6 answer dropped: {}", why.0);
            }
            let ll = engine.link_local6(*id);
            if let Some((managed, _other)) = engine.ra_flags(*id) {
                c.on_router_advertisement(managed, now);
            }
            if let (Some(lease), Some(ll)) = (c.lease(), ll) {
                if engine.addr6_state(*id, lease.address) == Some(Addr6State::Duplicate) {
                    let n = c.decline(ll, &mut self.dhcp_frame, now);
                    engine.send_frame(*id, &self.dhcp_frame[..n]);
                    engine.set_dhcp6_address(*id, None);
                    warn!(vmknic = %id, address = %lease.address,
                        "DHCPv6 address declined: another node holds it");
                }
            }
            if now < c.next_deadline() {
                continue;
            }
            let (n, e) = c.poll(now, ll, &mut self.dhcp_frame);
            if n > 0 {
                engine.send_frame(*id, &self.dhcp_frame[..n]);
            }
            events.extend(e.map(|e| (*id, e)));
        }
        for (id, e) in events {
            let Some(engine) = self
                .stack
                .stack_of(id)
                .and_then(|ns| self.stack.engine_mut(ns))
            else {
                continue;
            };
            match e {
                dhcp6::Event::Bound(l) => {
                    info!(vmknic = %id, address = %l.address, preferred_s = l.preferred.as_secs(),
                        valid_s = l.valid.as_secs(), "DHCPv6 address");
                    engine.set_dhcp6_address(id, Some((l.address, l.preferred, l.valid)));
                }
                dhcp6::Event::Lost => {
                    warn!(vmknic = %id, "DHCPv6 address lost");
                    engine.set_dhcp6_address(id, None);
                }
            }
        }
    }
}
