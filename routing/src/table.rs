//! A netstack's routing table under the ESX VMkernel rules, one implementation for both
//! address families ([`RoutingTableOf`] over [`Family`]): [`RoutingTable`] for IPv4 and
//! [`RoutingTable6`](crate::RoutingTable6) for IPv6 (`esxcfg-route -f V6`,
//! `esxcli network ip route ipv6`), kept apart per family as ESX keeps them.
//!
//! - Every enabled vmknic's subnet is a connected route (`Local Subnet`); when several vmknics
//!   share a subnet, the lowest-numbered one owns it. IPv6 link-local addresses (fe80::/10)
//!   are on every link, so they give no route.
//! - There is at most one default gateway per family; setting it again replaces it.
//! - A gateway (default or static) must lie inside a connected subnet; the static route's egress
//!   vmknic is the one whose subnet holds its gateway. An IPv6 gateway may instead be
//!   link-local with the vmknic it is reached through named (`fe80::1%vmk0`); a named vmknic
//!   is the egress.
//!
//! Configured gateways and static routes that are not (or no longer) reachable stay in the
//! table as *inactive* entries, as ESX keeps them in esx.conf: they are listed, but they do not
//! take part in lookups until a vmknic on their gateway's subnet comes up.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use crate::family::{Family, V4, V6};
use crate::lpm_core::LpmOf;
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
#[serde(rename_all = "lowercase", tag = "kind", bound = "")]
pub enum NextHopOf<F: Family> {
    /// The destination is on the vmknic's own subnet: deliver to it directly.
    Connected {
        /// Egress vmknic.
        vmknic: VmknicId,
    },
    /// Send to a gateway on the vmknic's subnet (IPv6: link-local or global).
    Gateway {
        /// The gateway's address.
        via: F::Addr,
        /// Egress vmknic.
        vmknic: VmknicId,
    },
}

/// Where an IPv4 packet goes next.
pub type NextHop = NextHopOf<V4>;

impl<F: Family> NextHopOf<F> {
    /// The egress vmknic.
    pub fn vmknic(&self) -> VmknicId {
        match *self {
            Self::Connected { vmknic } | Self::Gateway { vmknic, .. } => vmknic,
        }
    }

    /// The gateway, if the route has one.
    pub fn gateway(&self) -> Option<F::Addr> {
        match *self {
            Self::Connected { .. } => None,
            Self::Gateway { via, .. } => Some(via),
        }
    }

    /// The address to resolve (ARP, neighbour discovery) for a packet to `dst`.
    pub fn neighbor_for(&self, dst: F::Addr) -> F::Addr {
        self.gateway().unwrap_or(dst)
    }
}

/// An active route as the lookup sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct RouteOf<F: Family> {
    /// The destination network.
    pub prefix: F::Net,
    /// Egress vmknic and gateway.
    pub next_hop: NextHopOf<F>,
    /// Where the route came from.
    pub origin: Origin,
    /// Source address for locally sent packets: the egress vmknic's address on the subnet
    /// that holds the next hop (IPv6: its first global address for a link-local gateway).
    pub source: F::Addr,
}

/// An active IPv4 route.
pub type Route = RouteOf<V4>;

impl<F: Family> RouteOf<F> {
    /// A route through `gateway`, leaving by `vmknic` with `source` as its source address.
    pub fn via(
        prefix: F::Net,
        gateway: F::Addr,
        vmknic: VmknicId,
        source: F::Addr,
        origin: Origin,
    ) -> Self {
        Self {
            prefix,
            next_hop: NextHopOf::Gateway {
                via: gateway,
                vmknic,
            },
            origin,
            source,
        }
    }
}

/// One row of the route listing (`esxcfg-route -l`, `-f V6 -l`), active or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct RouteEntryOf<F: Family> {
    /// Destination network (`0.0.0.0/0` or `::/0` for the default gateway).
    pub network: F::Net,
    /// The gateway as configured; `None` for a `Local Subnet` row.
    pub gateway: Option<F::Gateway>,
    /// Egress vmknic; `None` when the route is inactive.
    pub vmknic: Option<VmknicId>,
    /// Where the route came from.
    pub origin: Origin,
    /// False for a configured route whose gateway cannot be reached.
    pub active: bool,
}

/// One row of the IPv4 route listing.
pub type RouteEntry = RouteEntryOf<V4>;

/// The answer to "which vmknic and gateway would traffic to X use?".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct ExplanationOf<F: Family> {
    /// The address asked about.
    pub destination: F::Addr,
    /// The route that wins the longest-prefix match.
    pub route: F::Net,
    /// Where that route came from.
    pub origin: Origin,
    /// Egress vmknic.
    pub vmknic: VmknicId,
    /// Gateway, if any.
    pub gateway: Option<F::Addr>,
    /// The address ARP or neighbour discovery resolves: the gateway, or the destination.
    pub next_hop: F::Addr,
    /// Source address of locally sent packets.
    pub source: F::Addr,
}

/// The IPv4 answer to "which vmknic and gateway would traffic to X use?".
pub type Explanation = ExplanationOf<V4>;

impl<F: Family> fmt::Display for ExplanationOf<F> {
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

/// Why a routing change was refused. The table is unchanged after any of these. The
/// link-local, unicast and never-routed refusals only arise for IPv6.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteErrorOf<F: Family> {
    /// The default gateway is on no vmknic subnet (ESX's own words, for both families).
    GatewayUnreachable {
        /// The refused gateway.
        gateway: F::Gateway,
    },
    /// A static route's gateway is on no vmknic subnet.
    RouteGatewayUnreachable {
        /// The route's network.
        network: F::Net,
        /// The refused gateway.
        gateway: F::Gateway,
    },
    /// A link-local gateway given without the vmknic it is reached through.
    LinkLocalNeedsVmknic {
        /// The refused gateway.
        gateway: F::Addr,
    },
    /// A gateway that cannot be a neighbour: unspecified, loopback or multicast.
    GatewayNotUnicast {
        /// The refused gateway.
        gateway: F::Addr,
    },
    /// The same network is already routed.
    Duplicate {
        /// The network.
        network: F::Net,
        /// The existing route's gateway.
        gateway: F::Gateway,
    },
    /// The network is a vmknic's local subnet.
    ConnectedSubnet {
        /// The network.
        network: F::Net,
        /// The vmknic that owns it.
        vmknic: VmknicId,
    },
    /// A static route for the /0; the default gateway has its own command.
    DefaultAsStatic,
    /// A static route to link-local or multicast space, which is never routed.
    NotRoutable {
        /// The network.
        network: F::Net,
        /// "link-local" or "multicast".
        what: &'static str,
    },
    /// Removing a route that is not there.
    NoSuchRoute(F::Net),
    /// Clearing a default gateway that is not set.
    NoDefaultGateway,
    /// Nothing routes the destination.
    NoRoute(F::Addr),
    /// A network with host bits set.
    Prefix(F::PrefixError),
    /// A gateway that is one of our own addresses.
    GatewayIsLocal {
        /// The refused gateway.
        gateway: F::Addr,
        /// Whose address it is.
        vmknic: VmknicId,
    },
}

/// Why an IPv4 routing change was refused.
pub type RouteError = RouteErrorOf<V4>;

impl<F: Family> fmt::Display for RouteErrorOf<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::GatewayUnreachable { .. } => f.write_str(GATEWAY_UNREACHABLE),
            Self::RouteGatewayUnreachable { network, gateway } => write!(
                f,
                "Unable to add route to {network} via {gateway} as there are not VMkernel \
                 interfaces on the same network"
            ),
            Self::LinkLocalNeedsVmknic { gateway } => write!(
                f,
                "{gateway} is a link-local address: name the vmknic it is reached through \
                 (as {gateway}%vmk0)"
            ),
            Self::GatewayNotUnicast { gateway } => {
                write!(
                    f,
                    "{gateway} is not a unicast address and cannot be a gateway"
                )
            }
            Self::Duplicate { network, gateway } => write!(
                f,
                "a route to {network} already exists (via {gateway}); delete it first"
            ),
            Self::ConnectedSubnet { network, vmknic } => {
                write!(
                    f,
                    "{network} is the local subnet of {vmknic}; it needs no route"
                )
            }
            Self::DefaultAsStatic => write!(
                f,
                "{} is the default route; set it with `{}`",
                F::Net::default(),
                F::SET_DEFAULT
            ),
            Self::NotRoutable { network, what } => {
                write!(f, "{network} is {what} space, which is never routed")
            }
            Self::NoSuchRoute(network) => write!(f, "no static route to {network}"),
            Self::NoDefaultGateway => write!(f, "no {}default gateway is set", F::NAME),
            Self::NoRoute(dst) => write!(f, "no route to {dst} (network unreachable)"),
            Self::Prefix(e) => fmt::Display::fmt(e, f),
            Self::GatewayIsLocal { gateway, vmknic } => {
                write!(f, "{gateway} is the address of {vmknic}, not a gateway")
            }
        }
    }
}

impl<F: Family> std::error::Error for RouteErrorOf<F> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // Transparent, as the prefix error's own message is shown.
            Self::Prefix(e) => e.source(),
            _ => None,
        }
    }
}

impl From<crate::prefix::PrefixError> for RouteErrorOf<V4> {
    fn from(e: crate::prefix::PrefixError) -> Self {
        Self::Prefix(e)
    }
}

impl From<crate::prefix6::Prefix6Error> for RouteErrorOf<V6> {
    fn from(e: crate::prefix6::Prefix6Error) -> Self {
        Self::Prefix(e)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Vmknic<F: Family> {
    /// Addresses with their prefix length (host bits are the address), IPv6 link-local
    /// included.
    addrs: Vec<F::Net>,
    enabled: bool,
}

/// One netstack's routes of one family: connected subnets from its vmknics, static routes,
/// one default gateway, and the LPM table compiled from those that are active.
#[derive(Clone)]
pub struct RoutingTableOf<F: Family> {
    vmknics: BTreeMap<VmknicId, Vmknic<F>>,
    /// Configured static routes (network → gateway), active or not.
    statics: BTreeMap<F::Net, F::Gateway>,
    default_gateway: Option<F::Gateway>,
    lpm: LpmOf<F::Structure, RouteOf<F>>,
}

/// One netstack's IPv4 routes.
pub type RoutingTable = RoutingTableOf<V4>;

// By hand: derived impls would ask the same of the family's lookup structure and gateway.
impl<F: Family> Default for RoutingTableOf<F> {
    fn default() -> Self {
        Self::new()
    }
}

impl<F: Family> fmt::Debug for RoutingTableOf<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoutingTable")
            .field("vmknics", &self.vmknics)
            .field("statics", &self.statics)
            .field("default_gateway", &self.default_gateway)
            .field("lpm", &self.lpm)
            .finish()
    }
}

impl<F: Family> RoutingTableOf<F> {
    /// A table with no vmknics and no routes.
    pub fn new() -> Self {
        Self {
            vmknics: BTreeMap::new(),
            statics: BTreeMap::new(),
            default_gateway: None,
            lpm: LpmOf::new(),
        }
    }

    /// Adds (or replaces) a vmknic with its addresses (each `ip/len`; IPv6 link-local ones
    /// included). Connected routes follow.
    pub fn set_vmknic(&mut self, id: VmknicId, addrs: Vec<F::Net>, enabled: bool) {
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
    /// lies on no enabled vmknic subnet (ESX's message), or for IPv6 is link-local without a
    /// vmknic, or is not unicast.
    pub fn set_default_gateway(&mut self, gateway: F::Gateway) -> Result<(), RouteErrorOf<F>> {
        self.check_gateway(gateway).map_err(|e| match e {
            RouteErrorOf::RouteGatewayUnreachable { gateway, .. } => {
                RouteErrorOf::GatewayUnreachable { gateway }
            }
            e => e,
        })?;
        self.default_gateway = Some(gateway);
        self.rebuild_default();
        Ok(())
    }

    /// Removes the default gateway.
    pub fn clear_default_gateway(&mut self) -> Result<F::Gateway, RouteErrorOf<F>> {
        let gw = self
            .default_gateway
            .take()
            .ok_or(RouteErrorOf::NoDefaultGateway)?;
        self.lpm.remove(F::Net::default());
        Ok(gw)
    }

    /// The configured default gateway, active or not.
    pub fn default_gateway(&self) -> Option<F::Gateway> {
        self.default_gateway
    }

    /// Adds a static route. Refused, changing nothing, for the /0, IPv6 link-local or
    /// multicast networks, a duplicate, a vmknic's own subnet, or a gateway that cannot be
    /// reached.
    pub fn add_static(
        &mut self,
        network: F::Net,
        gateway: F::Gateway,
    ) -> Result<(), RouteErrorOf<F>> {
        let network = F::check_network(network).map_err(RouteErrorOf::Prefix)?;
        if F::prefix_len(network) == 0 {
            return Err(RouteErrorOf::DefaultAsStatic);
        }
        if let Some(what) = F::not_routable(network) {
            return Err(RouteErrorOf::NotRoutable { network, what });
        }
        if let Some(&existing) = self.statics.get(&network) {
            return Err(RouteErrorOf::Duplicate {
                network,
                gateway: existing,
            });
        }
        if let Some(owner) = self.connected_owner(network) {
            return Err(RouteErrorOf::ConnectedSubnet {
                network,
                vmknic: owner,
            });
        }
        let (vmknic, source) = self.check_gateway(gateway).map_err(|e| match e {
            RouteErrorOf::RouteGatewayUnreachable { gateway, .. } => {
                RouteErrorOf::RouteGatewayUnreachable { network, gateway }
            }
            e => e,
        })?;
        self.statics.insert(network, gateway);
        let via = F::gateway_addr(gateway);
        self.lpm.insert(
            network,
            RouteOf::via(network, via, vmknic, source, Origin::Static),
        );
        Ok(())
    }

    /// Removes a static route, returning its gateway.
    pub fn remove_static(&mut self, network: F::Net) -> Result<F::Gateway, RouteErrorOf<F>> {
        let network = F::trunc(network);
        let gw = self
            .statics
            .remove(&network)
            .ok_or(RouteErrorOf::NoSuchRoute(network))?;
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
    /// message) and left inactive. Routes refused for their own form (the /0, host bits, IPv6
    /// link-local or multicast networks, link-local gateways without a vmknic) are reported
    /// and dropped.
    pub fn from_config<I, R>(
        vmknics: I,
        default_gateway: Option<F::Gateway>,
        statics: R,
    ) -> (Self, Vec<RouteErrorOf<F>>)
    where
        I: IntoIterator<Item = (VmknicId, Vec<F::Net>, bool)>,
        R: IntoIterator<Item = (F::Net, F::Gateway)>,
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
                    e @ (RouteErrorOf::RouteGatewayUnreachable { .. }
                    | RouteErrorOf::ConnectedSubnet { .. }
                    | RouteErrorOf::GatewayIsLocal { .. }),
                ) => {
                    // Keep it configured but inactive (unreachable gateway, shadowed by a
                    // vmknic's own subnet, or a gateway that is now our own address), so that
                    // it is listed and can still be deleted.
                    t.statics.insert(F::trunc(network), gateway);
                    problems.push(e);
                }
                Err(e) => problems.push(e),
            }
        }
        if let Some(gw) = default_gateway {
            match t.set_default_gateway(gw) {
                Ok(()) => {}
                Err(
                    e @ (RouteErrorOf::GatewayUnreachable { .. }
                    | RouteErrorOf::GatewayIsLocal { .. }),
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
    pub fn lookup(&self, dst: F::Addr) -> Option<&RouteOf<F>> {
        self.lpm.lookup_value(dst)
    }

    /// Which route, vmknic, gateway and source address traffic to `dst` would use.
    pub fn explain(&self, dst: F::Addr) -> Result<ExplanationOf<F>, RouteErrorOf<F>> {
        let r = self.lookup(dst).ok_or(RouteErrorOf::NoRoute(dst))?;
        Ok(ExplanationOf {
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
    pub fn lpm(&self) -> &LpmOf<F::Structure, RouteOf<F>> {
        &self.lpm
    }

    /// Every route in ESX listing order: static routes, then `Local Subnet` rows (in vmknic
    /// order), then the default gateway.
    pub fn entries(&self) -> Vec<RouteEntryOf<F>> {
        let mut out = Vec::new();
        for (&network, &gateway) in &self.statics {
            let active = self.lpm.get(network).filter(|r| r.origin == Origin::Static);
            out.push(RouteEntryOf {
                network,
                gateway: Some(gateway),
                vmknic: active.map(|r| r.next_hop.vmknic()),
                origin: Origin::Static,
                active: active.is_some(),
            });
        }
        for (id, net) in self.connected() {
            out.push(RouteEntryOf {
                network: net,
                gateway: None,
                vmknic: Some(id),
                origin: Origin::Connected,
                active: true,
            });
        }
        if let Some(gw) = self.default_gateway {
            let active = self.lpm.get(F::Net::default());
            out.push(RouteEntryOf {
                network: F::Net::default(),
                gateway: Some(gw),
                vmknic: active.map(|r| r.next_hop.vmknic()),
                origin: Origin::Default,
                active: active.is_some(),
            });
        }
        out
    }

    /// Connected subnets with their owners, in vmknic order: the first vmknic (lowest number)
    /// on a subnet owns it. Link-local prefixes are left out.
    fn connected(&self) -> Vec<(VmknicId, F::Net)> {
        let mut seen: Vec<(VmknicId, F::Net)> = Vec::new();
        for (&id, v) in self.vmknics.iter().filter(|(_, v)| v.enabled) {
            for a in v.addrs.iter().filter(|&&a| !F::is_link_local(F::addr(a))) {
                let net = F::trunc(*a);
                if !seen.iter().any(|&(_, n)| n == net) {
                    seen.push((id, net));
                }
            }
        }
        seen
    }

    fn connected_owner(&self, network: F::Net) -> Option<VmknicId> {
        self.connected()
            .into_iter()
            .find(|&(_, n)| n == network)
            .map(|(id, _)| id)
    }

    /// The egress vmknic and source address for a gateway: the vmknic named with a
    /// link-local gateway, else the owner of the most specific connected subnet that holds
    /// it (among the named vmknic's, when one is named).
    fn check_gateway(&self, gateway: F::Gateway) -> Result<(VmknicId, F::Addr), RouteErrorOf<F>> {
        let addr = F::gateway_addr(gateway);
        let named = F::gateway_vmknic(gateway);
        if F::not_unicast(addr) {
            return Err(RouteErrorOf::GatewayNotUnicast { gateway: addr });
        }
        for (&id, v) in &self.vmknics {
            if v.addrs.iter().any(|&a| F::addr(a) == addr) {
                return Err(RouteErrorOf::GatewayIsLocal {
                    gateway: addr,
                    vmknic: id,
                });
            }
        }
        let unreachable = RouteErrorOf::RouteGatewayUnreachable {
            network: F::Net::default(),
            gateway,
        };
        if F::is_link_local(addr) {
            let id = named.ok_or(RouteErrorOf::LinkLocalNeedsVmknic { gateway: addr })?;
            return match self.vmknics.get(&id) {
                Some(v) if v.enabled => Ok((id, self.first_source(id))),
                _ => Err(unreachable),
            };
        }
        self.connected()
            .into_iter()
            .filter(|&(id, n)| F::contains(n, addr) && named.is_none_or(|v| v == id))
            .max_by_key(|&(_, n)| F::prefix_len(n))
            .map(|(id, net)| (id, self.source_on(id, net)))
            .or_else(|| {
                // A named vmknic whose subnet holds the gateway but that a lower vmknic owns.
                let id = named?;
                let v = self.vmknics.get(&id).filter(|v| v.enabled)?;
                let net = v
                    .addrs
                    .iter()
                    .filter(|&&a| !F::is_link_local(F::addr(a)) && F::contains(a, addr))
                    .max_by_key(|&&a| F::prefix_len(a))?;
                Some((id, F::addr(*net)))
            })
            .ok_or(unreachable)
    }

    /// A vmknic's addresses (none for an unknown vmknic).
    fn addrs(&self, id: VmknicId) -> &[F::Net] {
        self.vmknics.get(&id).map_or(&[], |v| v.addrs.as_slice())
    }

    /// The vmknic's address on `net`, or its first source (see [`Self::first_source`]).
    fn source_on(&self, id: VmknicId, net: F::Net) -> F::Addr {
        self.addrs(id)
            .iter()
            .find(|&&a| F::trunc(a) == net)
            .map(|&a| F::addr(a))
            .unwrap_or_else(|| self.first_source(id))
    }

    /// The vmknic's first address that is not link-local, else its first address, else the
    /// unspecified address.
    fn first_source(&self, id: VmknicId) -> F::Addr {
        let addrs = self.addrs(id);
        addrs
            .iter()
            .find(|&&a| !F::is_link_local(F::addr(a)))
            .or_else(|| addrs.first())
            .map_or(F::UNSPECIFIED, |&a| F::addr(a))
    }

    /// Recompiles the LPM from vmknics, statics and the default gateway. Statics and the
    /// gateway whose next hop is gone stay configured but inactive.
    fn rebuild(&mut self) {
        self.lpm.clear();
        for (id, net) in self.connected() {
            let source = self.source_on(id, net);
            self.lpm.insert(
                net,
                RouteOf {
                    prefix: net,
                    next_hop: NextHopOf::Connected { vmknic: id },
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
                let via = F::gateway_addr(gateway);
                self.lpm.insert(
                    network,
                    RouteOf::via(network, via, vmknic, source, Origin::Static),
                );
            }
        }
        self.rebuild_default();
    }

    fn rebuild_default(&mut self) {
        let any = F::Net::default();
        self.lpm.remove(any);
        let Some(gw) = self.default_gateway else {
            return;
        };
        if let Ok((vmknic, source)) = self.check_gateway(gw) {
            let via = F::gateway_addr(gw);
            self.lpm
                .insert(any, RouteOf::via(any, via, vmknic, source, Origin::Default));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    use ipnet::Ipv4Net;

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
