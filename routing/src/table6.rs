//! A netstack's IPv6 routing table under the ESX VMkernel rules (`esxcfg-route -f V6`,
//! `esxcli network ip route ipv6`), kept apart from the IPv4 table as ESX keeps them.
//!
//! - Every enabled vmknic's IPv6 prefixes are connected routes (`Local Subnet`); when several
//!   vmknics share a prefix, the lowest-numbered one owns it. Link-local addresses (fe80::/10)
//!   are on every link, so they give no route.
//! - There is at most one IPv6 default gateway; setting it again replaces it.
//! - A gateway (default or static) must lie on a vmknic prefix, or be link-local with the vmknic
//!   it is reached through named (`fe80::1%vmk0`). A named vmknic is the egress; a global
//!   gateway on a vmknic names one whose prefix holds it.
//!
//! As for IPv4, configured gateways and routes that cannot be reached stay in the table as
//! inactive entries, listed but not routed, until a vmknic brings their gateway back.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv6Addr;

use ipnet::Ipv6Net;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::lpm6::Lpm6Table;
use crate::prefix6::{check_network6, is_link_local6, Gateway6, Prefix6Error};
use crate::table::{Origin, GATEWAY_UNREACHABLE};
use crate::VmknicId;

/// Where an IPv6 packet goes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum NextHop6 {
    /// The destination is on the vmknic's own prefix: deliver to it directly.
    Connected {
        /// Egress vmknic.
        vmknic: VmknicId,
    },
    /// Send to a gateway on the vmknic's link.
    Gateway {
        /// The gateway's address (link-local or global).
        via: Ipv6Addr,
        /// Egress vmknic.
        vmknic: VmknicId,
    },
}

impl NextHop6 {
    /// The egress vmknic.
    pub fn vmknic(&self) -> VmknicId {
        match *self {
            NextHop6::Connected { vmknic } | NextHop6::Gateway { vmknic, .. } => vmknic,
        }
    }

    /// The gateway, if the route has one.
    pub fn gateway(&self) -> Option<Ipv6Addr> {
        match *self {
            NextHop6::Connected { .. } => None,
            NextHop6::Gateway { via, .. } => Some(via),
        }
    }

    /// The address neighbour discovery resolves for a packet to `dst`.
    pub fn neighbor_for(&self, dst: Ipv6Addr) -> Ipv6Addr {
        self.gateway().unwrap_or(dst)
    }
}

/// An active IPv6 route as the lookup sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route6 {
    /// The destination network.
    pub prefix: Ipv6Net,
    /// Egress vmknic and gateway.
    pub next_hop: NextHop6,
    /// Where the route came from.
    pub origin: Origin,
    /// Source address for locally sent packets: the egress vmknic's address on the prefix
    /// that holds the next hop (its first global address for a link-local gateway).
    pub source: Ipv6Addr,
}

impl Route6 {
    /// A route through `gateway`, leaving by `vmknic` with `source` as its source address.
    pub fn via(
        prefix: Ipv6Net,
        gateway: Ipv6Addr,
        vmknic: VmknicId,
        source: Ipv6Addr,
        origin: Origin,
    ) -> Route6 {
        Route6 {
            prefix,
            next_hop: NextHop6::Gateway {
                via: gateway,
                vmknic,
            },
            origin,
            source,
        }
    }
}

/// One row of the IPv6 route listing (`esxcfg-route -f V6 -l`), active or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteEntry6 {
    /// Destination network (`::/0` for the default gateway).
    pub network: Ipv6Net,
    /// The gateway as configured; `None` for a `Local Subnet` row.
    pub gateway: Option<Gateway6>,
    /// Egress vmknic; `None` when the route is inactive.
    pub vmknic: Option<VmknicId>,
    /// Where the route came from.
    pub origin: Origin,
    /// False for a configured route whose gateway cannot be reached.
    pub active: bool,
}

/// The answer to "which vmknic and gateway would IPv6 traffic to X use?".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation6 {
    /// The address asked about.
    pub destination: Ipv6Addr,
    /// The route that wins the longest-prefix match.
    pub route: Ipv6Net,
    /// Where that route came from.
    pub origin: Origin,
    /// Egress vmknic.
    pub vmknic: VmknicId,
    /// Gateway, if any.
    pub gateway: Option<Ipv6Addr>,
    /// The address neighbour discovery resolves: the gateway, or the destination itself.
    pub next_hop: Ipv6Addr,
    /// Source address of locally sent packets.
    pub source: Ipv6Addr,
}

impl fmt::Display for Explanation6 {
    /// `ip -6 route get` style: `2001:db8:100::5 via fe80::1 dev vmk0 src 2001:db8:1::100 ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.destination)?;
        if let Some(gw) = self.gateway {
            write!(f, " via {gw}")?;
        }
        write!(
            f,
            " dev {} src {} route {} ({})",
            self.vmknic, self.source, self.route, self.origin
        )
    }
}

/// Why an IPv6 routing change was refused. The table is unchanged after any of these.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Route6Error {
    /// The default gateway is on no vmknic prefix (ESX's own words, as for IPv4).
    #[error("{GATEWAY_UNREACHABLE}")]
    GatewayUnreachable {
        /// The refused gateway.
        gateway: Gateway6,
    },
    /// A static route's gateway is on no vmknic prefix.
    #[error("Unable to add route to {network} via {gateway} as there are not VMkernel interfaces on the same network")]
    RouteGatewayUnreachable {
        /// The route's network.
        network: Ipv6Net,
        /// The refused gateway.
        gateway: Gateway6,
    },
    /// A link-local gateway given without the vmknic it is reached through.
    #[error("{gateway} is a link-local address: name the vmknic it is reached through (as {gateway}%vmk0)")]
    LinkLocalNeedsVmknic {
        /// The refused gateway.
        gateway: Ipv6Addr,
    },
    /// A gateway that cannot be a neighbour: unspecified, loopback or multicast.
    #[error("{gateway} is not a unicast address and cannot be a gateway")]
    GatewayNotUnicast {
        /// The refused gateway.
        gateway: Ipv6Addr,
    },
    /// The same network is already routed.
    #[error("a route to {network} already exists (via {gateway}); delete it first")]
    Duplicate {
        /// The network.
        network: Ipv6Net,
        /// The existing route's gateway.
        gateway: Gateway6,
    },
    /// The network is a vmknic's local prefix.
    #[error("{network} is the local subnet of {vmknic}; it needs no route")]
    ConnectedSubnet {
        /// The network.
        network: Ipv6Net,
        /// The vmknic that owns it.
        vmknic: VmknicId,
    },
    /// A static route for ::/0; the default gateway has its own command.
    #[error("::/0 is the default route; set it with `esxcfg-route -f V6 -a default <gateway>`")]
    DefaultAsStatic,
    /// A static route to link-local or multicast space, which is never routed.
    #[error("{network} is {what} space, which is never routed")]
    NotRoutable {
        /// The network.
        network: Ipv6Net,
        /// "link-local" or "multicast".
        what: &'static str,
    },
    /// Removing a route that is not there.
    #[error("no static route to {0}")]
    NoSuchRoute(Ipv6Net),
    /// Clearing a default gateway that is not set.
    #[error("no IPv6 default gateway is set")]
    NoDefaultGateway,
    /// Nothing routes the destination.
    #[error("no route to {0} (network unreachable)")]
    NoRoute(Ipv6Addr),
    /// A network with host bits set.
    #[error(transparent)]
    Prefix(#[from] Prefix6Error),
    /// A gateway that is one of our own addresses.
    #[error("{gateway} is the address of {vmknic}, not a gateway")]
    GatewayIsLocal {
        /// The refused gateway.
        gateway: Ipv6Addr,
        /// Whose address it is.
        vmknic: VmknicId,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Vmknic6 {
    /// Addresses with their prefix length (host bits are the address), link-local included.
    addrs: Vec<Ipv6Net>,
    enabled: bool,
}

/// One netstack's IPv6 routes: connected prefixes from its vmknics, static routes, one
/// default gateway, and the LPM table compiled from those that are active.
#[derive(Debug, Clone, Default)]
pub struct RoutingTable6 {
    vmknics: BTreeMap<VmknicId, Vmknic6>,
    /// Configured static routes (network → gateway), active or not.
    statics: BTreeMap<Ipv6Net, Gateway6>,
    default_gateway: Option<Gateway6>,
    lpm: Lpm6Table<Route6>,
}

impl RoutingTable6 {
    /// A table with no vmknics and no routes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a vmknic with its IPv6 addresses (each `addr/len`, link-local ones
    /// included). Connected routes follow.
    pub fn set_vmknic(&mut self, id: VmknicId, addrs: Vec<Ipv6Net>, enabled: bool) {
        self.vmknics.insert(id, Vmknic6 { addrs, enabled });
        self.rebuild();
    }

    /// Removes a vmknic; routes through it become inactive. Returns false if it was unknown.
    pub fn remove_vmknic(&mut self, id: VmknicId) -> bool {
        let had = self.vmknics.remove(&id).is_some();
        self.rebuild();
        had
    }

    /// Enables or disables a vmknic. Returns false if it was unknown.
    pub fn set_vmknic_enabled(&mut self, id: VmknicId, enabled: bool) -> bool {
        match self.vmknics.get_mut(&id) {
            Some(v) => v.enabled = enabled,
            None => return false,
        }
        self.rebuild();
        true
    }

    /// Sets (replaces) the one IPv6 default gateway. Refused, changing nothing, when it cannot
    /// be reached (ESX's message), is link-local without a vmknic, or is not unicast.
    pub fn set_default_gateway(&mut self, gateway: Gateway6) -> Result<(), Route6Error> {
        self.check_gateway(gateway).map_err(|e| match e {
            Route6Error::RouteGatewayUnreachable { gateway, .. } => {
                Route6Error::GatewayUnreachable { gateway }
            }
            e => e,
        })?;
        self.default_gateway = Some(gateway);
        self.rebuild_default();
        Ok(())
    }

    /// Removes the IPv6 default gateway.
    pub fn clear_default_gateway(&mut self) -> Result<Gateway6, Route6Error> {
        let gw = self
            .default_gateway
            .take()
            .ok_or(Route6Error::NoDefaultGateway)?;
        self.lpm.remove(Ipv6Net::default());
        Ok(gw)
    }

    /// The configured IPv6 default gateway, active or not.
    pub fn default_gateway(&self) -> Option<Gateway6> {
        self.default_gateway
    }

    /// Adds a static route. Refused, changing nothing, for ::/0, link-local or multicast
    /// networks, a duplicate, a vmknic's own prefix, or a gateway that cannot be reached.
    pub fn add_static(&mut self, network: Ipv6Net, gateway: Gateway6) -> Result<(), Route6Error> {
        let network = check_network6(network)?;
        if network.prefix_len() == 0 {
            return Err(Route6Error::DefaultAsStatic);
        }
        if let Some(what) = not_routable(network) {
            return Err(Route6Error::NotRoutable { network, what });
        }
        if let Some(&existing) = self.statics.get(&network) {
            return Err(Route6Error::Duplicate {
                network,
                gateway: existing,
            });
        }
        if let Some(owner) = self.connected_owner(network) {
            return Err(Route6Error::ConnectedSubnet {
                network,
                vmknic: owner,
            });
        }
        let (vmknic, source) = self.check_gateway(gateway).map_err(|e| match e {
            Route6Error::RouteGatewayUnreachable { gateway, .. } => {
                Route6Error::RouteGatewayUnreachable { network, gateway }
            }
            e => e,
        })?;
        self.statics.insert(network, gateway);
        self.lpm.insert(
            network,
            Route6::via(network, gateway.addr, vmknic, source, Origin::Static),
        );
        Ok(())
    }

    /// Removes a static route, returning its gateway.
    pub fn remove_static(&mut self, network: Ipv6Net) -> Result<Gateway6, Route6Error> {
        let network = network.trunc();
        let gw = self
            .statics
            .remove(&network)
            .ok_or(Route6Error::NoSuchRoute(network))?;
        // A static route that a vmknic's prefix now shadows is not in the LPM: the entry there
        // is the connected route, which stays.
        if self
            .lpm
            .get(network)
            .is_some_and(|r| r.origin == Origin::Static)
        {
            self.lpm.remove(network);
        }
        Ok(gw)
    }

    /// Builds a table the way ESX starts up: every configured gateway and route is kept, and
    /// each one that cannot be activated is reported (the default gateway with ESX's exact
    /// message) and left inactive. Routes refused for their own form (::/0, host bits,
    /// link-local or multicast networks, link-local gateways without a vmknic) are reported
    /// and dropped.
    pub fn from_config<I, R>(
        vmknics: I,
        default_gateway: Option<Gateway6>,
        statics: R,
    ) -> (Self, Vec<Route6Error>)
    where
        I: IntoIterator<Item = (VmknicId, Vec<Ipv6Net>, bool)>,
        R: IntoIterator<Item = (Ipv6Net, Gateway6)>,
    {
        let mut t = Self::new();
        for (id, addrs, enabled) in vmknics {
            t.vmknics.insert(id, Vmknic6 { addrs, enabled });
        }
        t.rebuild();
        let mut problems = Vec::new();
        for (network, gateway) in statics {
            match t.add_static(network, gateway) {
                Ok(()) => {}
                Err(
                    e @ (Route6Error::RouteGatewayUnreachable { .. }
                    | Route6Error::ConnectedSubnet { .. }
                    | Route6Error::GatewayIsLocal { .. }),
                ) => {
                    t.statics.insert(network, gateway);
                    problems.push(e);
                }
                Err(e) => problems.push(e),
            }
        }
        if let Some(gw) = default_gateway {
            match t.set_default_gateway(gw) {
                Ok(()) => {}
                Err(
                    e @ (Route6Error::GatewayUnreachable { .. }
                    | Route6Error::GatewayIsLocal { .. }),
                ) => {
                    t.default_gateway = Some(gw);
                    problems.push(e);
                }
                Err(e) => problems.push(e),
            }
        }
        (t, problems)
    }

    /// Longest-prefix match over the active routes.
    #[inline]
    pub fn lookup(&self, dst: Ipv6Addr) -> Option<Route6> {
        self.lpm.lookup_value(dst).copied()
    }

    /// "Which vmknic and gateway would traffic to `dst` use?"
    pub fn explain(&self, dst: Ipv6Addr) -> Result<Explanation6, Route6Error> {
        let r = self.lookup(dst).ok_or(Route6Error::NoRoute(dst))?;
        Ok(Explanation6 {
            destination: dst,
            route: r.prefix,
            origin: r.origin,
            vmknic: r.next_hop.vmknic(),
            gateway: r.next_hop.gateway(),
            next_hop: r.next_hop.neighbor_for(dst),
            source: r.source,
        })
    }

    /// The compiled LPM table of active routes (the data plane's view).
    pub fn lpm(&self) -> &Lpm6Table<Route6> {
        &self.lpm
    }

    /// Every route in ESX listing order: static routes, then `Local Subnet` rows (in vmknic
    /// order), then the default gateway.
    pub fn entries(&self) -> Vec<RouteEntry6> {
        let mut out = Vec::new();
        for (&network, &gateway) in &self.statics {
            let active = self.lpm.get(network).filter(|r| r.origin == Origin::Static);
            out.push(RouteEntry6 {
                network,
                gateway: Some(gateway),
                vmknic: active.map(|r| r.next_hop.vmknic()),
                origin: Origin::Static,
                active: active.is_some(),
            });
        }
        for (id, net) in self.connected() {
            out.push(RouteEntry6 {
                network: net,
                gateway: None,
                vmknic: Some(id),
                origin: Origin::Connected,
                active: true,
            });
        }
        if let Some(gw) = self.default_gateway {
            let active = self.lpm.get(Ipv6Net::default());
            out.push(RouteEntry6 {
                network: Ipv6Net::default(),
                gateway: Some(gw),
                vmknic: active.map(|r| r.next_hop.vmknic()),
                origin: Origin::Default,
                active: active.is_some(),
            });
        }
        out
    }

    /// Connected prefixes with their owners, in vmknic order: the first vmknic (lowest
    /// number) on a prefix owns it. Link-local prefixes are left out.
    fn connected(&self) -> Vec<(VmknicId, Ipv6Net)> {
        let mut seen: Vec<(VmknicId, Ipv6Net)> = Vec::new();
        for (&id, v) in self.vmknics.iter().filter(|(_, v)| v.enabled) {
            for a in v.addrs.iter().filter(|a| !is_link_local6(a.addr())) {
                let net = a.trunc();
                if !seen.iter().any(|&(_, n)| n == net) {
                    seen.push((id, net));
                }
            }
        }
        seen
    }

    fn connected_owner(&self, network: Ipv6Net) -> Option<VmknicId> {
        self.connected()
            .into_iter()
            .find(|&(_, n)| n == network)
            .map(|(id, _)| id)
    }

    /// The egress vmknic and source address for a gateway.
    fn check_gateway(&self, gateway: Gateway6) -> Result<(VmknicId, Ipv6Addr), Route6Error> {
        let addr = gateway.addr;
        if addr.is_unspecified() || addr.is_loopback() || addr.is_multicast() {
            return Err(Route6Error::GatewayNotUnicast { gateway: addr });
        }
        for (&id, v) in &self.vmknics {
            if v.addrs.iter().any(|a| a.addr() == addr) {
                return Err(Route6Error::GatewayIsLocal {
                    gateway: addr,
                    vmknic: id,
                });
            }
        }
        let unreachable = Route6Error::RouteGatewayUnreachable {
            network: Ipv6Net::default(),
            gateway,
        };
        if is_link_local6(addr) {
            let id = gateway
                .vmknic
                .ok_or(Route6Error::LinkLocalNeedsVmknic { gateway: addr })?;
            return match self.vmknics.get(&id) {
                Some(v) if v.enabled => Ok((id, self.source_for_link_local(id))),
                _ => Err(unreachable),
            };
        }
        self.connected()
            .into_iter()
            .filter(|(id, n)| n.contains(&addr) && gateway.vmknic.is_none_or(|v| v == *id))
            .max_by_key(|(_, n)| n.prefix_len())
            .map(|(id, net)| (id, self.source_on(id, net)))
            .or_else(|| {
                // A named vmknic whose prefix holds the gateway but that a lower vmknic owns.
                let id = gateway.vmknic?;
                let v = self.vmknics.get(&id).filter(|v| v.enabled)?;
                let net = v
                    .addrs
                    .iter()
                    .filter(|a| !is_link_local6(a.addr()) && a.contains(&addr))
                    .max_by_key(|a| a.prefix_len())?;
                Some((id, net.addr()))
            })
            .ok_or(unreachable)
    }

    /// The vmknic's address on `net`, or its first global address, or its first address.
    fn source_on(&self, id: VmknicId, net: Ipv6Net) -> Ipv6Addr {
        let addrs = self
            .vmknics
            .get(&id)
            .map(|v| v.addrs.as_slice())
            .unwrap_or(&[]);
        addrs
            .iter()
            .find(|a| a.trunc() == net)
            .map(|a| a.addr())
            .unwrap_or_else(|| self.source_for_link_local(id))
    }

    /// The source for traffic through a link-local gateway: the vmknic's first global
    /// address, else its link-local one, else ::.
    fn source_for_link_local(&self, id: VmknicId) -> Ipv6Addr {
        let addrs = self
            .vmknics
            .get(&id)
            .map(|v| v.addrs.as_slice())
            .unwrap_or(&[]);
        addrs
            .iter()
            .find(|a| !is_link_local6(a.addr()))
            .or_else(|| addrs.first())
            .map_or(Ipv6Addr::UNSPECIFIED, |a| a.addr())
    }

    /// Recompiles the LPM from vmknics, statics and the default gateway. Statics and the
    /// gateway whose next hop is gone stay configured but inactive.
    fn rebuild(&mut self) {
        self.lpm.clear();
        for (id, net) in self.connected() {
            let source = self.source_on(id, net);
            self.lpm.insert(
                net,
                Route6 {
                    prefix: net,
                    next_hop: NextHop6::Connected { vmknic: id },
                    origin: Origin::Connected,
                    source,
                },
            );
        }
        let statics: Vec<_> = self.statics.iter().map(|(&n, &g)| (n, g)).collect();
        for (network, gateway) in statics {
            if self.lpm.get(network).is_some() {
                continue;
            }
            if let Ok((vmknic, source)) = self.check_gateway(gateway) {
                self.lpm.insert(
                    network,
                    Route6::via(network, gateway.addr, vmknic, source, Origin::Static),
                );
            }
        }
        self.rebuild_default();
    }

    fn rebuild_default(&mut self) {
        self.lpm.remove(Ipv6Net::default());
        let Some(gw) = self.default_gateway else {
            return;
        };
        if let Ok((vmknic, source)) = self.check_gateway(gw) {
            self.lpm.insert(
                Ipv6Net::default(),
                Route6::via(Ipv6Net::default(), gw.addr, vmknic, source, Origin::Default),
            );
        }
    }
}

/// Why a network may never be a static route's destination.
fn not_routable(network: Ipv6Net) -> Option<&'static str> {
    let a = network.network();
    if network.prefix_len() >= 10 && is_link_local6(a) {
        Some("link-local (fe80::/10)")
    } else if network.prefix_len() >= 8 && a.is_multicast() {
        Some("multicast (ff00::/8)")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }
    fn n(s: &str) -> Ipv6Net {
        s.parse().unwrap()
    }
    fn g(s: &str) -> Gateway6 {
        s.parse().unwrap()
    }
    fn vmk(i: u32) -> VmknicId {
        VmknicId(i)
    }

    /// The ESX article's two vmknics with IPv6 prefixes and their link-local addresses.
    fn lab() -> RoutingTable6 {
        let mut t = RoutingTable6::new();
        t.set_vmknic(
            vmk(0),
            vec![n("2001:db8:1::100/64"), n("fe80::1:100/64")],
            true,
        );
        t.set_vmknic(
            vmk(1),
            vec![n("2001:db8:2::100/64"), n("fe80::2:100/64")],
            true,
        );
        t
    }

    #[test]
    fn test_connected_routes_leave_out_link_local() {
        let mut t = lab();
        t.set_vmknic(vmk(2), vec![n("2001:db8:7::1/64")], false);
        let rows: Vec<_> = t
            .entries()
            .into_iter()
            .map(|e| (e.network.to_string(), e.vmknic))
            .collect();
        assert_eq!(
            rows,
            vec![
                ("2001:db8:1::/64".to_string(), Some(vmk(0))),
                ("2001:db8:2::/64".to_string(), Some(vmk(1))),
            ]
        );
        let e = t.explain(a("2001:db8:2::42")).unwrap();
        assert_eq!(
            (e.vmknic, e.next_hop, e.source, e.origin),
            (
                vmk(1),
                a("2001:db8:2::42"),
                a("2001:db8:2::100"),
                Origin::Connected
            )
        );
        assert_eq!(
            t.explain(a("fe80::9")),
            Err(Route6Error::NoRoute(a("fe80::9")))
        );
        assert!(t.set_vmknic_enabled(vmk(2), true));
        assert_eq!(t.explain(a("2001:db8:7::9")).unwrap().vmknic, vmk(2));
    }

    #[test]
    fn test_shared_prefix_owned_by_lowest_vmknic() {
        let mut t = RoutingTable6::new();
        t.set_vmknic(vmk(3), vec![n("2001:db8:1::30/64")], true);
        t.set_vmknic(vmk(1), vec![n("2001:db8:1::10/64")], true);
        let e = t.explain(a("2001:db8:1::99")).unwrap();
        assert_eq!((e.vmknic, e.source), (vmk(1), a("2001:db8:1::10")));
        t.set_vmknic_enabled(vmk(1), false);
        let e = t.explain(a("2001:db8:1::99")).unwrap();
        assert_eq!((e.vmknic, e.source), (vmk(3), a("2001:db8:1::30")));
    }

    #[test]
    fn test_one_default_gateway_replaced() {
        let mut t = lab();
        t.set_default_gateway(g("2001:db8:1::1")).unwrap();
        t.set_default_gateway(g("fe80::2:1%vmk1")).unwrap();
        assert_eq!(t.default_gateway(), Some(g("fe80::2:1%vmk1")));
        let defaults = t
            .entries()
            .into_iter()
            .filter(|e| e.origin == Origin::Default)
            .count();
        assert_eq!(defaults, 1);
        let e = t.explain(a("2001:db8:ffff::5")).unwrap();
        assert_eq!(
            (e.vmknic, e.gateway, e.next_hop, e.source),
            (
                vmk(1),
                Some(a("fe80::2:1")),
                a("fe80::2:1"),
                a("2001:db8:2::100")
            )
        );
        assert_eq!(
            e.to_string(),
            "2001:db8:ffff::5 via fe80::2:1 dev vmk1 src 2001:db8:2::100 route ::/0 (default)"
        );
        assert_eq!(t.clear_default_gateway(), Ok(g("fe80::2:1%vmk1")));
        assert_eq!(
            t.clear_default_gateway(),
            Err(Route6Error::NoDefaultGateway)
        );
        assert!(t.explain(a("2001:db8:ffff::5")).is_err());
    }

    #[test]
    fn test_off_prefix_default_gateway_refused_with_esx_text() {
        let mut t = lab();
        t.set_default_gateway(g("2001:db8:1::1")).unwrap();
        for bad in ["2001:db8:0::254", "fe80::1%vmk7", "2001:db8:1::1%vmk1"] {
            let err = t.set_default_gateway(g(bad)).unwrap_err();
            assert_eq!(err.to_string(), GATEWAY_UNREACHABLE, "{bad}");
        }
        let err = t.set_default_gateway(g("fe80::1")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "fe80::1 is a link-local address: name the vmknic it is reached through (as fe80::1%vmk0)"
        );
        let err = t.set_default_gateway(g("ff02::2%vmk0")).unwrap_err();
        assert_eq!(
            err,
            Route6Error::GatewayNotUnicast {
                gateway: a("ff02::2")
            }
        );
        let err = t.set_default_gateway(g("fe80::1:100%vmk0")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "fe80::1:100 is the address of vmk0, not a gateway"
        );
        assert_eq!(t.default_gateway(), Some(g("2001:db8:1::1")), "unchanged");
    }

    #[test]
    fn test_startup_keeps_off_prefix_gateway_inactive() {
        let vmknics = vec![(vmk(0), vec![n("2001:db8:1::100/64")], true)];
        let statics = vec![
            (n("2001:db8:100::/48"), g("2001:db8:9::1")),
            (n("fe80::/64"), g("2001:db8:1::1")),
        ];
        let (t, problems) =
            RoutingTable6::from_config(vmknics, Some(g("2001:db8:0::254")), statics);
        let texts: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            texts,
            vec![
                "Unable to add route to 2001:db8:100::/48 via 2001:db8:9::1 as there are not VMkernel interfaces on the same network".to_string(),
                "fe80::/64 is link-local (fe80::/10) space, which is never routed".to_string(),
                GATEWAY_UNREACHABLE.to_string(),
            ]
        );
        let rows: Vec<_> = t
            .entries()
            .into_iter()
            .map(|e| (e.network.to_string(), e.origin, e.active))
            .collect();
        assert_eq!(
            rows,
            vec![
                ("2001:db8:100::/48".to_string(), Origin::Static, false),
                ("2001:db8:1::/64".to_string(), Origin::Connected, true),
                ("::/0".to_string(), Origin::Default, false),
            ]
        );
        assert!(t.lookup(a("2001:db8:100::1")).is_none());
    }

    #[test]
    fn test_static_routes() {
        let mut t = lab();
        let err = t
            .add_static(n("2001:db8:100::/48"), g("2001:db8:9::1"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Unable to add route to 2001:db8:100::/48 via 2001:db8:9::1 as there are not VMkernel interfaces on the same network"
        );
        t.add_static(n("2001:db8:100::/48"), g("2001:db8:2::1"))
            .unwrap();
        t.add_static(n("2001:db8:200::/48"), g("fe80::1%vmk0"))
            .unwrap();
        let e = t.explain(a("2001:db8:100::20")).unwrap();
        assert_eq!(
            (e.vmknic, e.next_hop, e.source, e.origin),
            (
                vmk(1),
                a("2001:db8:2::1"),
                a("2001:db8:2::100"),
                Origin::Static
            )
        );
        let e = t.explain(a("2001:db8:200::20")).unwrap();
        assert_eq!((e.vmknic, e.next_hop), (vmk(0), a("fe80::1")));
        assert_eq!(
            t.add_static(n("2001:db8:100::/48"), g("2001:db8:1::1")),
            Err(Route6Error::Duplicate {
                network: n("2001:db8:100::/48"),
                gateway: g("2001:db8:2::1")
            })
        );
        assert_eq!(
            t.add_static(n("2001:db8:2::/64"), g("2001:db8:1::1")),
            Err(Route6Error::ConnectedSubnet {
                network: n("2001:db8:2::/64"),
                vmknic: vmk(1)
            })
        );
        assert_eq!(
            t.add_static(n("::/0"), g("2001:db8:1::1")),
            Err(Route6Error::DefaultAsStatic)
        );
        assert!(matches!(
            t.add_static(n("2001:db8:300::7/48"), g("2001:db8:1::1")),
            Err(Route6Error::Prefix(Prefix6Error::HostBits { .. }))
        ));
        assert!(matches!(
            t.add_static(n("ff05::/16"), g("2001:db8:1::1")),
            Err(Route6Error::NotRoutable { .. })
        ));
        assert!(matches!(
            t.add_static(n("2001:db8:300::/48"), g("fe80::1")),
            Err(Route6Error::LinkLocalNeedsVmknic { .. })
        ));
        // Disabling vmk0 takes its link-local route down; it comes back with the vmknic.
        t.set_vmknic_enabled(vmk(0), false);
        assert!(t.lookup(a("2001:db8:200::20")).is_none());
        t.set_vmknic_enabled(vmk(0), true);
        assert_eq!(t.explain(a("2001:db8:200::20")).unwrap().vmknic, vmk(0));
        assert_eq!(
            t.remove_static(n("2001:db8:100::/48")),
            Ok(g("2001:db8:2::1"))
        );
        assert_eq!(
            t.remove_static(n("2001:db8:100::/48"))
                .unwrap_err()
                .to_string(),
            "no static route to 2001:db8:100::/48"
        );
        assert!(t.lookup(a("2001:db8:100::20")).is_none());
    }
}
