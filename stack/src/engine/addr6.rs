//! The life of our own IPv6 addresses (RFC 4862): every new address (link-local, static,
//! autoconfigured) is *tentative* while Duplicate Address Detection runs — one Neighbour
//! Solicitation from `::` to its solicited-node group (DupAddrDetectTransmits = 1), then
//! RetransTimer of silence — and only then *preferred*: answered, used as a source, and
//! announced with an unsolicited Neighbour Advertisement. An advertisement for a tentative
//! address, or another node's DAD probe for it, makes it *duplicate*: never used, logged, and
//! shown as such in the listings. Autoconfigured addresses are *deprecated* after their
//! preferred lifetime and removed after their valid lifetime. When a vmknic comes up, its
//! first DAD probes wait a random delay of up to MAX_RTR_SOLICITATION_DELAY (RFC 4862 5.4.2).

use std::net::Ipv6Addr;
use std::time::Instant;

use ipnet::Ipv6Net;
use tracing::{error, info};
use vmkstack_vmknic::Port;

use super::Engine;

/// DupAddrDetectTransmits (RFC 4862 5.1).
const DAD_TRANSMITS: u8 = 1;

/// Where an IPv6 address of ours stands (ESXi's Status column: `PREFERRED`, `DUPLICATE`...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addr6State {
    /// DAD running: not used, not answered.
    Tentative,
    /// In use.
    Preferred,
    /// (Autoconfigured) past its preferred lifetime: still answered, still a source for
    /// existing use.
    Deprecated,
    /// Another node holds it: never used.
    Duplicate,
}

impl Addr6State {
    /// ESXi's upper-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Addr6State::Tentative => "TENTATIVE",
            Addr6State::Preferred => "PREFERRED",
            Addr6State::Deprecated => "DEPRECATED",
            Addr6State::Duplicate => "DUPLICATE",
        }
    }

    /// True when the address may be used (answered, a source, a connected prefix).
    pub fn usable(self) -> bool {
        matches!(self, Addr6State::Preferred | Addr6State::Deprecated)
    }
}

/// How an IPv6 address of ours was configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addr6Origin {
    /// The link-local address derived from the MAC.
    LinkLocal,
    /// A static address of the configuration.
    Static,
    /// Stateless autoconfiguration from a Router Advertisement's prefix (RFC 4862 5.5.3).
    Autoconf,
    /// Granted by a DHCPv6 server (RFC 8415 IA_NA).
    Dhcp,
}

impl Addr6Origin {
    /// Lower-case name for the API: `link-local`, `static`, `autoconf`, `dhcp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Addr6Origin::LinkLocal => "link-local",
            Addr6Origin::Static => "static",
            Addr6Origin::Autoconf => "autoconf",
            Addr6Origin::Dhcp => "dhcp",
        }
    }
}

/// One IPv6 address of a vmknic, with its DAD state and (autoconfigured) lifetimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addr6 {
    /// The vmknic's slot.
    pub slot: usize,
    /// Address and prefix length.
    pub net: Ipv6Net,
    /// DAD state.
    pub state: Addr6State,
    /// How it was configured.
    pub origin: Addr6Origin,
    /// (Autoconf, DHCP) when it is removed; `None`: never.
    pub valid_until: Option<Instant>,
    /// (Autoconf, DHCP) when it is deprecated; `None`: never.
    pub preferred_until: Option<Instant>,
    /// Next DAD step (Tentative).
    deadline: Instant,
    /// DAD probes sent.
    sent: u8,
}

impl Addr6 {
    /// A new tentative address whose first DAD probe is due at `now` (its start time).
    pub(super) fn tentative(slot: usize, net: Ipv6Net, origin: Addr6Origin, now: Instant) -> Addr6 {
        Addr6 {
            slot,
            net,
            state: Addr6State::Tentative,
            origin,
            valid_until: None,
            preferred_until: None,
            deadline: now,
            sent: 0,
        }
    }

    /// The earliest time this address has work: a DAD step or a lifetime.
    fn next_deadline(&self) -> Option<Instant> {
        let dad = (self.state == Addr6State::Tentative).then_some(self.deadline);
        let preferred = self
            .preferred_until
            .filter(|_| self.state == Addr6State::Preferred);
        [dad, preferred, self.valid_until]
            .into_iter()
            .flatten()
            .min()
    }
}

impl<P: Port> Engine<P> {
    /// Our IPv6 addresses with their state (active vmknics only), by slot then age.
    pub fn addresses6(&self) -> &[Addr6] {
        &self.addrs6
    }

    /// Brings the address list in line with the vmknics: addresses of inactive vmknics and
    /// configured addresses no longer configured go; new ones start tentative. Autoconfigured
    /// addresses stay while their vmknic is active with autoconfiguration on.
    pub(super) fn sync_addrs6(&mut self) {
        let now = self.clock;
        let vmknics = &self.vmknics;
        self.addrs6.retain(|a| {
            vmknics.get(a.slot).is_some_and(|v| {
                v.active()
                    && match a.origin {
                        Addr6Origin::Autoconf => v.cfg.ipv6_autoconf,
                        Addr6Origin::Dhcp => v.cfg.ipv6_dhcp,
                        _ => v.cfg.addresses6().any(|n| n == a.net),
                    }
            })
        });
        for (slot, v) in self.vmknics.iter().enumerate().filter(|(_, v)| v.active()) {
            let ll = v.cfg.link_local6();
            // A vmknic with no address yet just came up (started, enabled, its link back, IPv6
            // turned on): its first DAD probes wait a random delay (RFC 4862 5.4.2). Addresses
            // added to a running vmknic are probed at once.
            let first = if self.addrs6.iter().any(|a| a.slot == slot) {
                now
            } else {
                now.checked_add(self.ra6.start_delay()).unwrap_or(now)
            };
            for net in v.cfg.addresses6() {
                if self.addrs6.iter().any(|a| a.slot == slot && a.net == net) {
                    continue;
                }
                let origin = if net == ll {
                    Addr6Origin::LinkLocal
                } else {
                    Addr6Origin::Static
                };
                self.addrs6.push(Addr6::tentative(slot, net, origin, first));
            }
        }
    }

    /// When [`Engine::poll_addrs6`] next has work.
    pub(super) fn addrs6_deadline(&self) -> Option<Instant> {
        self.addrs6.iter().filter_map(Addr6::next_deadline).min()
    }

    /// DAD probes due go out; tentative addresses whose probes went unanswered become
    /// preferred and are announced; autoconfigured addresses past their lifetimes are
    /// deprecated or removed. Cheap when nothing is due (a few addresses).
    pub(super) fn poll_addrs6(&mut self) {
        let now = self.clock;
        if self.addrs6_deadline().is_none_or(|t| now < t) {
            return;
        }
        let retrans = self.neighbors6.config().first_retry;
        let mut changed = false;
        let mut k = 0;
        while let Some(a) = self.addrs6.get(k).copied() {
            if a.valid_until.is_some_and(|t| now >= t) {
                info!(vmknic = %self.vmknic_name(a.slot), address = %a.net, origin = a.origin.as_str(),
                    "IPv6 address removed: its valid lifetime ended");
                self.addrs6.remove(k);
                changed = true;
                continue;
            }
            if a.state == Addr6State::Preferred && a.preferred_until.is_some_and(|t| now >= t) {
                self.addrs6[k].state = Addr6State::Deprecated;
                changed = true;
            }
            if a.state == Addr6State::Tentative && now >= a.deadline {
                if a.sent < DAD_TRANSMITS {
                    if let Some(v) = self.vmknics.get_mut(a.slot) {
                        super::ipv6::dad_probe(v, &mut self.tx_buf, a.net.addr());
                    }
                    let e = &mut self.addrs6[k];
                    e.sent += 1;
                    e.deadline = now.checked_add(retrans).unwrap_or(now);
                } else {
                    self.addrs6[k].state = Addr6State::Preferred;
                    info!(vmknic = %self.vmknic_name(a.slot), address = %a.net,
                        "IPv6 address preferred: duplicate address detection found no other holder");
                    changed = true;
                    self.announce_addr6(a.slot, a.net.addr());
                    if a.origin == Addr6Origin::LinkLocal {
                        // Usable as the source of Router Solicitations from now on.
                        self.apply_addrs6();
                        self.start_solicit6(a.slot);
                    }
                }
            }
            k += 1;
        }
        if changed {
            self.apply_addrs6();
        }
    }

    /// True when `addr` is tentative on vmknic `slot`.
    pub(super) fn tentative6(&self, slot: usize, addr: Ipv6Addr) -> bool {
        self.addrs6
            .iter()
            .any(|a| a.slot == slot && a.net.addr() == addr && a.state == Addr6State::Tentative)
    }

    /// Another node holds the tentative `addr` of vmknic `slot` (`why`): it becomes duplicate,
    /// is never used, and the reason is logged (RFC 4862 5.4.5).
    pub(super) fn duplicate6(&mut self, slot: usize, addr: Ipv6Addr, why: &str) {
        let name = self.vmknic_name(slot);
        let Some(a) = self
            .addrs6
            .iter_mut()
            .find(|a| a.slot == slot && a.net.addr() == addr && a.state == Addr6State::Tentative)
        else {
            return;
        };
        a.state = Addr6State::Duplicate;
        error!(vmknic = %name, address = %a.net,
            "duplicate IPv6 address: {why}; the address is not used (remove it or give another)");
        self.apply_addrs6();
    }

    /// The name of the vmknic in `slot`, for logs.
    fn vmknic_name(&self, slot: usize) -> String {
        self.vmknics
            .get(slot)
            .map_or_else(String::new, |v| v.cfg.id.to_string())
    }
}
