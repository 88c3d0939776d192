//! A route's destination and gateway as written on a command line, shared by the native
//! `vmkstack route` commands and `esxcli network ip route ipv4`, and the control actions that
//! add or remove such a route.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use vmkstack_routing::{parse_addr, parse_network};

use crate::api::Action;

/// A route's destination as written on a command line: `default` (or `0.0.0.0/0`) for the
/// default gateway, else `a.b.c.d/len` without host bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteTarget {
    /// The default gateway.
    Default,
    /// A static route's network.
    Network(Ipv4Net),
}

/// clap value parser for [`RouteTarget`].
pub fn parse_route_target(s: &str) -> Result<RouteTarget, String> {
    if s.trim() == "default" {
        return Ok(RouteTarget::Default);
    }
    match parse_network(s).map_err(|e| e.to_string())? {
        net if net.prefix_len() == 0 => Ok(RouteTarget::Default),
        net => Ok(RouteTarget::Network(net)),
    }
}

/// clap value parser for an IPv4 address (the routing core's message on a bad one).
pub fn parse_ipv4(s: &str) -> Result<Ipv4Addr, String> {
    parse_addr(s).map_err(|e| e.to_string())
}

/// The action that adds `gateway` for `target`.
pub fn route_add_action(target: RouteTarget, gateway: Ipv4Addr) -> Action {
    match target {
        RouteTarget::Default => Action::GatewaySet {
            gateway: gateway.to_string(),
        },
        RouteTarget::Network(net) => Action::RouteAdd {
            network: net.to_string(),
            gateway: gateway.to_string(),
        },
    }
}

/// The action that removes `target` (through `gateway`, when named).
pub fn route_remove_action(target: RouteTarget, gateway: Option<Ipv4Addr>) -> Action {
    let gateway = gateway.map(|g| g.to_string());
    match target {
        RouteTarget::Default => Action::GatewayClear { gateway },
        RouteTarget::Network(net) => Action::RouteRemove {
            network: net.to_string(),
            gateway,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_parse_route_target() {
        assert_eq!(parse_route_target("default"), Ok(RouteTarget::Default));
        assert_eq!(parse_route_target("0.0.0.0/0"), Ok(RouteTarget::Default));
        assert_eq!(
            parse_route_target("198.18.100.0/24"),
            Ok(RouteTarget::Network("198.18.100.0/24".parse().unwrap()))
        );
        let e = parse_route_target("198.18.100.7/24").unwrap_err();
        assert!(e.contains("host bits"), "{e}");
        assert!(parse_route_target("198.18.100.0").is_err());
    }

    #[test]
    fn test_route_actions() {
        let gw: Ipv4Addr = "198.18.1.1".parse().unwrap();
        let net = RouteTarget::Network("198.18.100.0/24".parse().unwrap());
        assert_eq!(
            route_add_action(RouteTarget::Default, gw),
            Action::GatewaySet {
                gateway: "198.18.1.1".into()
            }
        );
        assert_eq!(
            route_remove_action(net, None),
            Action::RouteRemove {
                network: "198.18.100.0/24".into(),
                gateway: None
            }
        );
        assert_eq!(
            route_remove_action(RouteTarget::Default, Some(gw)),
            Action::GatewayClear {
                gateway: Some("198.18.1.1".into())
            }
        );
    }
}
