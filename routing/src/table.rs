//! A netstack's routing table under the ESX VMkernel rules.
//!
//! - Every enabled vmknic's subnet is a connected route (`Local Subnet`); when several vmknics
//!   share a subnet, the lowest-numbered one owns it.
//! - There is at most one default gateway; setting it again replaces it.
//! - A gateway (default or static) must lie inside a connected subnet; the static route's egress
//!   vmknic is the one whose subnet holds its gateway.
//!
//! Configured gateways and static routes that are not (or no longer) reachable stay in the
//! table as *inactive* entries, as ESX keeps them in esx.conf: they are listed, but they do not
//! take part in lookups until a vmknic on their gateway's subnet comes up.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::lpm::LpmTable;
use crate::VmknicId;

/// The ESX error text for a default gateway outside every vmknic subnet (kept verbatim).
pub const GATEWAY_UNREACHABLE: &str =
    "Unable to set VMkernel gateway as there are not VMkernel interfaces on the same network";

/// Where a route came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// A vmknic's own subnet (`Local Subnet`).
    Connected,
    /// A static route (`esxcfg-route -a <net> <gw>`).
    Static,
    /// The default gateway.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Connected => "connected",
            Origin::Static => "static",
            Origin::Default => "default",
        })
    }
}

/// Where a packet goes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum NextHop {
    /// The destination is on the vmknic's own subnet: deliver to it directly.
    Connected {
        /// Egress vmknic.
        vmknic: VmknicId,
    },
    /// Send to a gateway on the vmknic's subnet.
    Gateway {
        /// The gateway's address.
        via: Ipv4Addr,
        /// Egress vmknic.
        vmknic: VmknicId,
    },
}

impl NextHop {
    /// The egress vmknic.
    pub fn vmknic(&self) -> VmknicId {
        match *self {
            NextHop::Connected { vmknic } | NextHop::Gateway { vmknic, .. } => vmknic,
        }
    }

    /// The gateway, if the route has one.
    pub fn gateway(&self) -> Option<Ipv4Addr> {
        match *self {
            NextHop::Connected { .. } => None,
            NextHop::Gateway { via, .. } => Some(via),
        }
    }

    /// The address to resolve with ARP for a packet to `dst`.
    pub fn neighbor_for(&self, dst: Ipv4Addr) -> Ipv4Addr {
        self.gateway().unwrap_or(dst)
    }
}

/// An active route as the lookup sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// The destination network.
    pub prefix: Ipv4Net,
    /// Egress vmknic and gateway.
    pub next_hop: NextHop,
    /// Where the route came from.
    pub origin: Origin,
    /// Source address for locally sent packets: the egress vmknic's address on the subnet
    /// that holds the next hop.
    pub source: Ipv4Addr,
}

impl Route {
    /// A route through `gateway`, leaving by `vmknic` with `source` as its source address.
    pub fn via(
        prefix: Ipv4Net,
        gateway: Ipv4Addr,
        vmknic: VmknicId,
        source: Ipv4Addr,
        origin: Origin,
    ) -> Route {
        Route {
            prefix,
            next_hop: NextHop::Gateway {
                via: gateway,
                vmknic,
            },
            origin,
            source,
        }
    }
}

/// One row of the route listing (`esxcfg-route -l`), active or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteEntry {
    /// Destination network (`0.0.0.0/0` for the default gateway).
    pub network: Ipv4Net,
    /// The gateway; `None` for a `Local Subnet` row.
    pub gateway: Option<Ipv4Addr>,
    /// Egress vmknic; `None` when the route is inactive.
    pub vmknic: Option<VmknicId>,
    /// Where the route came from.
    pub origin: Origin,
    /// False for a configured route whose gateway is on no vmknic subnet.
    pub active: bool,
}

/// The answer to "which vmknic and gateway would traffic to X use?".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    /// The address asked about.
    pub destination: Ipv4Addr,
    /// The route that wins the longest-prefix match.
    pub route: Ipv4Net,
    /// Where that route came from.
    pub origin: Origin,
    /// Egress vmknic.
    pub vmknic: VmknicId,
    /// Gateway, if any.
    pub gateway: Option<Ipv4Addr>,
    /// The address ARP resolves: the gateway, or the destination itself.
    pub next_hop: Ipv4Addr,
    /// Source address of locally sent packets.
    pub source: Ipv4Addr,
}

impl fmt::Display for Explanation {
    /// `ip route get` style: `198.18.100.5 via 198.18.1.1 dev vmk0 src 198.18.1.100 ...`.
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

/// Why a routing change was refused. The table is unchanged after any of these.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RouteError {
    /// The default gateway is on no vmknic subnet (ESX's own words).
    #[error("{GATEWAY_UNREACHABLE}")]
    GatewayUnreachable {
        /// The refused gateway.
        gateway: Ipv4Addr,
    },
    /// A static route's gateway is on no vmknic subnet.
    #[error("Unable to add route to {network} via {gateway} as there are not VMkernel interfaces on the same network")]
    RouteGatewayUnreachable {
        /// The route's network.
        network: Ipv4Net,
        /// The refused gateway.
        gateway: Ipv4Addr,
    },
    /// The same network is already routed.
    #[error("a route to {network} already exists (via {gateway}); delete it first")]
    Duplicate {
        /// The network.
        network: Ipv4Net,
        /// The existing route's gateway.
        gateway: Ipv4Addr,
    },
    /// The network is a vmknic's local subnet.
    #[error("{network} is the local subnet of {vmknic}; it needs no route")]
    ConnectedSubnet {
        /// The network.
        network: Ipv4Net,
        /// The vmknic that owns it.
        vmknic: VmknicId,
    },
    /// A static route for 0.0.0.0/0; the default gateway has its own command.
    #[error("0.0.0.0/0 is the default route; set it with `esxcfg-route -a default <gateway>`")]
    DefaultAsStatic,
    /// Removing a route that is not there.
    #[error("no static route to {0}")]
    NoSuchRoute(Ipv4Net),
    /// Clearing a default gateway that is not set.
    #[error("no default gateway is set")]
    NoDefaultGateway,
    /// Nothing routes the destination.
    #[error("no route to {0} (network unreachable)")]
    NoRoute(Ipv4Addr),
    /// A network with host bits set.
    #[error(transparent)]
    Prefix(#[from] crate::prefix::PrefixError),
    /// A gateway that is one of our own addresses.
    #[error("{gateway} is the address of {vmknic}, not a gateway")]
    GatewayIsLocal {
        /// The refused gateway.
        gateway: Ipv4Addr,
        /// Whose address it is.
        vmknic: VmknicId,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Vmknic {
    /// Addresses with their prefix length (host bits are the address).
    addrs: Vec<Ipv4Net>,
    enabled: bool,
}

/// One netstack's routes: connected subnets from its vmknics, static routes, one default
/// gateway, and the LPM table compiled from those that are active.
#[derive(Debug, Clone, Default)]
pub struct RoutingTable {
    vmknics: BTreeMap<VmknicId, Vmknic>,
    /// Configured static routes (network → gateway), active or not.
    statics: BTreeMap<Ipv4Net, Ipv4Addr>,
    default_gateway: Option<Ipv4Addr>,
    lpm: LpmTable<Route>,
}

impl RoutingTable {
    /// A table with no vmknics and no routes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a vmknic with its addresses (each `ip/len`). Connected routes follow.
    pub fn set_vmknic(&mut self, id: VmknicId, addrs: Vec<Ipv4Net>, enabled: bool) {
        self.vmknics.insert(id, Vmknic { addrs, enabled });
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

    /// Sets (replaces) the one default gateway. Refused, changing nothing, when the gateway
    /// lies on no enabled vmknic subnet.
    pub fn set_default_gateway(&mut self, gateway: Ipv4Addr) -> Result<(), RouteError> {
        self.check_gateway(gateway).map_err(|e| match e {
            RouteError::RouteGatewayUnreachable { gateway, .. } => {
                RouteError::GatewayUnreachable { gateway }
            }
            e => e,
        })?;
        self.default_gateway = Some(gateway);
        self.rebuild_default();
        Ok(())
    }

    /// Removes the default gateway.
    pub fn clear_default_gateway(&mut self) -> Result<Ipv4Addr, RouteError> {
        let gw = self
            .default_gateway
            .take()
            .ok_or(RouteError::NoDefaultGateway)?;
        self.lpm.remove(Ipv4Net::default());
        Ok(gw)
    }

    /// The configured default gateway, active or not.
    pub fn default_gateway(&self) -> Option<Ipv4Addr> {
        self.default_gateway
    }

    /// Adds a static route. Refused, changing nothing, for 0.0.0.0/0, a duplicate, a vmknic's
    /// own subnet, or a gateway on no vmknic subnet.
    pub fn add_static(&mut self, network: Ipv4Net, gateway: Ipv4Addr) -> Result<(), RouteError> {
        let network = crate::prefix::check_network(network)?;
        if network.prefix_len() == 0 {
            return Err(RouteError::DefaultAsStatic);
        }
        if let Some(&existing) = self.statics.get(&network) {
            return Err(RouteError::Duplicate {
                network,
                gateway: existing,
            });
        }
        if let Some(owner) = self.connected_owner(network) {
            return Err(RouteError::ConnectedSubnet {
                network,
                vmknic: owner,
            });
        }
        let (vmknic, source) = self.check_gateway(gateway).map_err(|e| match e {
            RouteError::RouteGatewayUnreachable { gateway, .. } => {
                RouteError::RouteGatewayUnreachable { network, gateway }
            }
            e => e,
        })?;
        self.statics.insert(network, gateway);
        self.lpm.insert(
            network,
            Route::via(network, gateway, vmknic, source, Origin::Static),
        );
        Ok(())
    }

    /// Removes a static route, returning its gateway.
    pub fn remove_static(&mut self, network: Ipv4Net) -> Result<Ipv4Addr, RouteError> {
        let network = network.trunc();
        let gw = self
            .statics
            .remove(&network)
            .ok_or(RouteError::NoSuchRoute(network))?;
        // A static route that a vmknic's subnet now shadows is not in the LPM: the entry there
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
    /// message) and left inactive.
    pub fn from_config<I, R>(
        vmknics: I,
        default_gateway: Option<Ipv4Addr>,
        statics: R,
    ) -> (Self, Vec<RouteError>)
    where
        I: IntoIterator<Item = (VmknicId, Vec<Ipv4Net>, bool)>,
        R: IntoIterator<Item = (Ipv4Net, Ipv4Addr)>,
    {
        let mut t = Self::new();
        for (id, addrs, enabled) in vmknics {
            t.vmknics.insert(id, Vmknic { addrs, enabled });
        }
        t.rebuild();
        let mut problems = Vec::new();
        for (network, gateway) in statics {
            match t.add_static(network, gateway) {
                Ok(()) => {}
                Err(
                    e @ (RouteError::RouteGatewayUnreachable { .. }
                    | RouteError::ConnectedSubnet { .. }),
                ) => {
                    // Keep it configured but inactive (unreachable gateway, or shadowed by a
                    // vmknic's own subnet), so that it is listed and can still be deleted.
                    t.statics.insert(network, gateway);
                    problems.push(e);
                }
                Err(e) => problems.push(e),
            }
        }
        if let Some(gw) = default_gateway {
            if let Err(e) = t.set_default_gateway(gw) {
                t.default_gateway = Some(gw);
                problems.push(e);
            }
        }
        (t, problems)
    }

    /// Longest-prefix match over the active routes.
    #[inline]
    pub fn lookup(&self, dst: Ipv4Addr) -> Option<&Route> {
        self.lpm.lookup_value(dst)
    }

    /// Which route, vmknic, gateway and source address traffic to `dst` would use.
    pub fn explain(&self, dst: Ipv4Addr) -> Result<Explanation, RouteError> {
        let r = self.lookup(dst).ok_or(RouteError::NoRoute(dst))?;
        Ok(Explanation {
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
    pub fn lpm(&self) -> &LpmTable<Route> {
        &self.lpm
    }

    /// Every route in ESX listing order: static routes, then `Local Subnet` rows (in vmknic
    /// order), then the default gateway.
    pub fn entries(&self) -> Vec<RouteEntry> {
        let mut out = Vec::new();
        for (&network, &gateway) in &self.statics {
            let active = self.lpm.get(network).filter(|r| r.origin == Origin::Static);
            out.push(RouteEntry {
                network,
                gateway: Some(gateway),
                vmknic: active.map(|r| r.next_hop.vmknic()),
                origin: Origin::Static,
                active: active.is_some(),
            });
        }
        for (id, net) in self.connected() {
            out.push(RouteEntry {
                network: net,
                gateway: None,
                vmknic: Some(id),
                origin: Origin::Connected,
                active: true,
            });
        }
        if let Some(gw) = self.default_gateway {
            let active = self.lpm.get(Ipv4Net::default());
            out.push(RouteEntry {
                network: Ipv4Net::default(),
                gateway: Some(gw),
                vmknic: active.map(|r| r.next_hop.vmknic()),
                origin: Origin::Default,
                active: active.is_some(),
            });
        }
        out
    }

    /// Connected subnets with their owners, in vmknic order: the first vmknic (lowest number)
    /// on a subnet owns it.
    fn connected(&self) -> Vec<(VmknicId, Ipv4Net)> {
        let mut seen: Vec<(VmknicId, Ipv4Net)> = Vec::new();
        for (&id, v) in self.vmknics.iter().filter(|(_, v)| v.enabled) {
            for a in &v.addrs {
                let net = a.trunc();
                if !seen.iter().any(|&(_, n)| n == net) {
                    seen.push((id, net));
                }
            }
        }
        seen
    }

    fn connected_owner(&self, network: Ipv4Net) -> Option<VmknicId> {
        self.connected()
            .into_iter()
            .find(|&(_, n)| n == network)
            .map(|(id, _)| id)
    }

    /// The egress vmknic and source address for a gateway: the owner of the most specific
    /// connected subnet that holds it.
    fn check_gateway(&self, gateway: Ipv4Addr) -> Result<(VmknicId, Ipv4Addr), RouteError> {
        for (&id, v) in &self.vmknics {
            if v.addrs.iter().any(|a| a.addr() == gateway) {
                return Err(RouteError::GatewayIsLocal {
                    gateway,
                    vmknic: id,
                });
            }
        }
        self.connected()
            .into_iter()
            .filter(|(_, n)| n.contains(&gateway))
            .max_by_key(|(_, n)| n.prefix_len())
            .map(|(id, net)| (id, self.source_on(id, net)))
            .ok_or(RouteError::RouteGatewayUnreachable {
                network: Ipv4Net::default(),
                gateway,
            })
    }

    /// The vmknic's address on `net`, or its first address.
    fn source_on(&self, id: VmknicId, net: Ipv4Net) -> Ipv4Addr {
        let addrs = self
            .vmknics
            .get(&id)
            .map(|v| v.addrs.as_slice())
            .unwrap_or(&[]);
        addrs
            .iter()
            .find(|a| a.trunc() == net)
            .or_else(|| addrs.first())
            .map_or(Ipv4Addr::UNSPECIFIED, |a| a.addr())
    }

    /// Recompiles the LPM from vmknics, statics and the default gateway. Statics and the
    /// gateway whose next hop is gone stay configured but inactive.
    fn rebuild(&mut self) {
        self.lpm.clear();
        for (id, net) in self.connected() {
            let source = self.source_on(id, net);
            self.lpm.insert(
                net,
                Route {
                    prefix: net,
                    next_hop: NextHop::Connected { vmknic: id },
                    origin: Origin::Connected,
                    source,
                },
            );
        }
        let statics: Vec<_> = self.statics.iter().map(|(&n, &g)| (n, g)).collect();
        for (network, gateway) in statics {
            // A static that now equals a connected subnet is shadowed by it; one whose gateway
            // left every subnet is inactive.
            if self.lpm.get(network).is_some() {
                continue;
            }
            if let Ok((vmknic, source)) = self.check_gateway(gateway) {
                self.lpm.insert(
                    network,
                    Route::via(network, gateway, vmknic, source, Origin::Static),
                );
            }
        }
        self.rebuild_default();
    }

    fn rebuild_default(&mut self) {
        self.lpm.remove(Ipv4Net::default());
        let Some(gw) = self.default_gateway else {
            return;
        };
        if let Ok((vmknic, source)) = self.check_gateway(gw) {
            self.lpm.insert(
                Ipv4Net::default(),
                Route::via(Ipv4Net::default(), gw, vmknic, source, Origin::Default),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }
    fn n(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }
    fn vmk(i: u32) -> VmknicId {
        VmknicId(i)
    }

    /// The ESX article: iSCSI_SAN 192.168.1.100/24 (vmk0), VMotion 192.168.2.100/24 (vmk1).
    fn article() -> RoutingTable {
        let mut t = RoutingTable::new();
        t.set_vmknic(vmk0(), vec![n("192.168.1.100/24")], true);
        t.set_vmknic(vmk(1), vec![n("192.168.2.100/24")], true);
        t
    }
    fn vmk0() -> VmknicId {
        vmk(0)
    }

    #[test]
    fn test_connected_routes_from_enabled_vmknics() {
        let mut t = article();
        t.set_vmknic(vmk(2), vec![n("198.18.7.1/24")], false);
        let rows: Vec<_> = t
            .entries()
            .into_iter()
            .map(|e| (e.network.to_string(), e.gateway, e.vmknic))
            .collect();
        assert_eq!(
            rows,
            vec![
                ("192.168.1.0/24".to_string(), None, Some(vmk(0))),
                ("192.168.2.0/24".to_string(), None, Some(vmk(1))),
            ],
            "the disabled vmk2 gives no route"
        );
        assert_eq!(
            t.explain(a("198.18.7.9")),
            Err(RouteError::NoRoute(a("198.18.7.9")))
        );
        assert!(t.set_vmknic_enabled(vmk(2), true));
        assert_eq!(t.explain(a("198.18.7.9")).unwrap().vmknic, vmk(2));
    }

    #[test]
    fn test_shared_subnet_owned_by_lowest_vmknic() {
        let mut t = RoutingTable::new();
        // Added in the "wrong" order: ownership follows the vmk number, not insertion.
        t.set_vmknic(vmk(3), vec![n("198.18.1.30/24")], true);
        t.set_vmknic(vmk(1), vec![n("198.18.1.10/24")], true);
        let e = t.explain(a("198.18.1.99")).unwrap();
        assert_eq!((e.vmknic, e.source), (vmk(1), a("198.18.1.10")));
        assert_eq!(
            t.entries().len(),
            1,
            "one Local Subnet row for the shared subnet"
        );
        // Disabling the owner hands the subnet to the next vmknic.
        t.set_vmknic_enabled(vmk(1), false);
        let e = t.explain(a("198.18.1.99")).unwrap();
        assert_eq!((e.vmknic, e.source), (vmk(3), a("198.18.1.30")));
    }

    #[test]
    fn test_one_default_gateway_replaced() {
        let mut t = article();
        t.set_default_gateway(a("192.168.1.1")).unwrap();
        t.set_default_gateway(a("192.168.2.1")).unwrap();
        assert_eq!(t.default_gateway(), Some(a("192.168.2.1")));
        let defaults: Vec<_> = t
            .entries()
            .into_iter()
            .filter(|e| e.origin == Origin::Default)
            .collect();
        assert_eq!(defaults.len(), 1);
        let e = t.explain(a("203.0.113.5")).unwrap();
        assert_eq!(e.gateway, Some(a("192.168.2.1")));
        assert_eq!(
            (e.vmknic, e.source, e.origin),
            (vmk(1), a("192.168.2.100"), Origin::Default)
        );
        assert_eq!(t.clear_default_gateway(), Ok(a("192.168.2.1")));
        assert_eq!(t.clear_default_gateway(), Err(RouteError::NoDefaultGateway));
        assert!(t.explain(a("203.0.113.5")).is_err());
    }

    #[test]
    fn test_off_subnet_default_gateway_refused_with_esx_text() {
        let mut t = article();
        t.set_default_gateway(a("192.168.1.1")).unwrap();
        let err = t.set_default_gateway(a("192.168.0.254")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Unable to set VMkernel gateway as there are not VMkernel interfaces on the same network"
        );
        assert_eq!(t.default_gateway(), Some(a("192.168.1.1")), "unchanged");
    }

    #[test]
    fn test_startup_keeps_off_subnet_gateway_inactive() {
        let vmknics = vec![
            (vmk(0), vec![n("192.168.1.100/24")], true),
            (vmk(1), vec![n("192.168.2.100/24")], true),
        ];
        let (t, problems) = RoutingTable::from_config(vmknics, Some(a("192.168.0.254")), vec![]);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].to_string(), GATEWAY_UNREACHABLE);
        let last = t.entries().pop().unwrap();
        assert_eq!(
            (last.network, last.gateway, last.vmknic, last.active),
            (Ipv4Net::default(), Some(a("192.168.0.254")), None, false)
        );
        assert!(t.lookup(a("203.0.113.1")).is_none());
    }

    #[test]
    fn test_static_route_gateway_rules() {
        let mut t = article();
        let err = t
            .add_static(n("192.168.100.0/24"), a("192.168.0.1"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Unable to add route to 192.168.100.0/24 via 192.168.0.1 as there are not VMkernel interfaces on the same network"
        );
        assert!(
            t.entries().iter().all(|e| e.origin != Origin::Static),
            "nothing added"
        );
        t.add_static(n("192.168.100.0/24"), a("192.168.2.1"))
            .unwrap();
        let e = t.explain(a("192.168.100.20")).unwrap();
        assert_eq!(
            (e.vmknic, e.gateway, e.next_hop, e.source, e.origin),
            (
                vmk(1),
                Some(a("192.168.2.1")),
                a("192.168.2.1"),
                a("192.168.2.100"),
                Origin::Static
            )
        );
        assert_eq!(
            e.to_string(),
            "192.168.100.20 via 192.168.2.1 dev vmk1 src 192.168.2.100 route 192.168.100.0/24 (static)"
        );
    }

    #[test]
    fn test_static_route_errors() {
        let mut t = article();
        t.add_static(n("198.18.0.0/24"), a("192.168.1.1")).unwrap();
        assert_eq!(
            t.add_static(n("198.18.0.0/24"), a("192.168.2.1")),
            Err(RouteError::Duplicate {
                network: n("198.18.0.0/24"),
                gateway: a("192.168.1.1")
            })
        );
        assert_eq!(
            t.add_static(n("192.168.2.0/24"), a("192.168.1.1")),
            Err(RouteError::ConnectedSubnet {
                network: n("192.168.2.0/24"),
                vmknic: vmk(1)
            })
        );
        assert_eq!(
            t.add_static(n("0.0.0.0/0"), a("192.168.1.1")),
            Err(RouteError::DefaultAsStatic)
        );
        assert!(matches!(
            t.add_static(n("198.18.9.7/24"), a("192.168.1.1")),
            Err(RouteError::Prefix(_))
        ));
        assert_eq!(
            t.add_static(n("198.18.9.0/24"), a("192.168.1.100")),
            Err(RouteError::GatewayIsLocal {
                gateway: a("192.168.1.100"),
                vmknic: vmk(0)
            })
        );
        let err = t.remove_static(n("198.18.5.0/24")).unwrap_err();
        assert_eq!(err.to_string(), "no static route to 198.18.5.0/24");
        assert_eq!(t.remove_static(n("198.18.0.0/24")), Ok(a("192.168.1.1")));
        assert!(t.explain(a("198.18.0.1")).is_err());
        // Re-adding after removal works.
        t.add_static(n("198.18.0.0/24"), a("192.168.2.1")).unwrap();
        assert_eq!(t.explain(a("198.18.0.1")).unwrap().vmknic, vmk(1));
    }

    #[test]
    fn test_listing_order_static_local_default() {
        let mut t = article();
        t.set_default_gateway(a("192.168.1.254")).unwrap();
        t.add_static(n("198.19.0.0/16"), a("192.168.2.1")).unwrap();
        t.add_static(n("198.18.100.0/24"), a("192.168.1.1"))
            .unwrap();
        let rows: Vec<_> = t
            .entries()
            .into_iter()
            .map(|e| (e.network.to_string(), e.origin))
            .collect();
        assert_eq!(
            rows,
            vec![
                ("198.18.100.0/24".to_string(), Origin::Static),
                ("198.19.0.0/16".to_string(), Origin::Static),
                ("192.168.1.0/24".to_string(), Origin::Connected),
                ("192.168.2.0/24".to_string(), Origin::Connected),
                ("0.0.0.0/0".to_string(), Origin::Default),
            ]
        );
    }

    #[test]
    fn test_routes_follow_vmknic_state() {
        let mut t = article();
        t.add_static(n("198.18.100.0/24"), a("192.168.2.1"))
            .unwrap();
        t.set_default_gateway(a("192.168.2.254")).unwrap();
        t.set_vmknic_enabled(vmk(1), false);
        let rows = t.entries();
        assert!(rows
            .iter()
            .filter(|e| e.origin != Origin::Connected)
            .all(|e| !e.active));
        assert!(t.lookup(a("198.18.100.1")).is_none());
        t.set_vmknic_enabled(vmk(1), true);
        assert_eq!(t.explain(a("198.18.100.1")).unwrap().vmknic, vmk(1));
        assert_eq!(
            t.explain(a("203.0.113.1")).unwrap().gateway,
            Some(a("192.168.2.254"))
        );
    }

    #[test]
    fn test_longest_prefix_wins_over_default_and_connected() {
        let mut t = RoutingTable::new();
        t.set_vmknic(vmk(0), vec![n("198.18.0.10/16")], true);
        t.set_vmknic(vmk(1), vec![n("198.19.1.10/24")], true);
        t.set_default_gateway(a("198.18.0.1")).unwrap();
        t.add_static(n("198.18.5.0/24"), a("198.19.1.1")).unwrap();
        assert_eq!(
            t.explain(a("198.18.5.5")).unwrap().vmknic,
            vmk(1),
            "static /24 beats /16"
        );
        assert_eq!(
            t.explain(a("198.18.6.5")).unwrap().origin,
            Origin::Connected
        );
        assert_eq!(t.explain(a("8.8.8.8")).unwrap().origin, Origin::Default);
    }
}
