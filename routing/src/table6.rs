//! The IPv6 routing table (`esxcfg-route -f V6`, `esxcli network ip route ipv6`): the one
//! table of [`crate::table`] over [`V6`], kept apart from the IPv4 table as ESX keeps them.
//! The IPv6 rules that differ (link-local prefixes give no route, link-local gateways name
//! their vmknic, link-local and multicast networks are never routed, only unicast gateways)
//! are [`V6`]'s answers to [`crate::family::Family`].

pub use crate::table::V6;
use crate::table::{ExplanationOf, NextHopOf, RouteEntryOf, RouteErrorOf, RouteOf, RoutingTableOf};

/// Where an IPv6 packet goes next.
pub type NextHop6 = NextHopOf<V6>;

/// An active IPv6 route as the lookup sees it.
pub type Route6 = RouteOf<V6>;

/// One row of the IPv6 route listing (`esxcfg-route -f V6 -l`), active or not.
pub type RouteEntry6 = RouteEntryOf<V6>;

/// The answer to "which vmknic and gateway would IPv6 traffic to X use?".
pub type Explanation6 = ExplanationOf<V6>;

/// Why an IPv6 routing change was refused. The table is unchanged after any of these.
pub type Route6Error = RouteErrorOf<V6>;

/// One netstack's IPv6 routes: connected prefixes from its vmknics, static routes, one
/// default gateway, and the LPM table compiled from those that are active.
pub type RoutingTable6 = RoutingTableOf<V6>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    use ipnet::Ipv6Net;

    use crate::prefix6::{Gateway6, Prefix6Error};
    use crate::table::{Origin, GATEWAY_UNREACHABLE};
    use crate::VmknicId;

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
