//! The address families the routing table is generic over: what differs between IPv4 and
//! IPv6 for the ESX rules (address and prefix types, gateways, the LPM structure, the
//! addresses that may never be a gateway or a route, and the wording of a few errors).

use std::fmt;
use std::hash::Hash;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::lpm::Dir16;
use crate::lpm6::Wide6;
use crate::lpm_core::Structure;
use crate::prefix::{check_network, PrefixError};
use crate::prefix6::{check_network6, is_link_local6, Gateway6, Prefix6Error};
use crate::VmknicId;

/// An address family: IPv4 ([`V4`]) or IPv6 ([`V6`]).
pub trait Family:
    Copy + Clone + fmt::Debug + Default + PartialEq + Eq + Hash + Send + Sync + 'static
{
    /// An address.
    type Addr: Copy
        + Eq
        + Ord
        + Hash
        + fmt::Debug
        + fmt::Display
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static;
    /// A prefix (`addr/len`).
    type Net: Copy
        + Eq
        + Ord
        + Hash
        + Default
        + fmt::Debug
        + fmt::Display
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static;
    /// A configured gateway: an address (IPv4), or an address with the vmknic it is
    /// reached through (IPv6 link-local).
    type Gateway: Copy
        + Eq
        + fmt::Debug
        + fmt::Display
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static;
    /// Why a prefix was refused.
    type PrefixError: std::error::Error + Clone + PartialEq + Eq + Send + Sync + 'static;
    /// The LPM lookup structure.
    type Structure: Structure<Net = Self::Net, Addr = Self::Addr> + Send + Sync;

    /// The unspecified address (`0.0.0.0`, `::`).
    const UNSPECIFIED: Self::Addr;
    /// "" or "IPv6 ", for messages that name the family.
    const NAME: &'static str;
    /// The command that sets the default gateway, for the refusal of a /0 static route.
    const SET_DEFAULT: &'static str;

    /// A prefix's address (host bits included).
    fn addr(net: Self::Net) -> Self::Addr;
    /// A prefix with its host bits cleared.
    fn trunc(net: Self::Net) -> Self::Net;
    /// A prefix's length.
    fn prefix_len(net: Self::Net) -> u8;
    /// True when `net` holds `addr`.
    fn contains(net: Self::Net, addr: Self::Addr) -> bool;
    /// The network itself, or an error naming the host bits.
    fn check_network(net: Self::Net) -> Result<Self::Net, Self::PrefixError>;
    /// A gateway's address.
    fn gateway_addr(gateway: Self::Gateway) -> Self::Addr;
    /// The vmknic a gateway names, if any.
    fn gateway_vmknic(gateway: Self::Gateway) -> Option<VmknicId>;
    /// True for a link-local address: on every link, so it gives no connected route, and as
    /// a gateway it needs its vmknic named.
    fn is_link_local(_addr: Self::Addr) -> bool {
        false
    }
    /// True for an address that cannot be a neighbour (unspecified, loopback, multicast).
    fn not_unicast(_addr: Self::Addr) -> bool {
        false
    }
    /// Why `net` may never be a static route's destination.
    fn not_routable(_net: Self::Net) -> Option<&'static str> {
        None
    }
}

/// IPv4.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct V4;

/// IPv6.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct V6;

/// The prefix methods, the same for both of ipnet's prefix types.
macro_rules! ipnet_prefix {
    () => {
        fn addr(net: Self::Net) -> Self::Addr {
            net.addr()
        }
        fn trunc(net: Self::Net) -> Self::Net {
            net.trunc()
        }
        fn prefix_len(net: Self::Net) -> u8 {
            net.prefix_len()
        }
        fn contains(net: Self::Net, addr: Self::Addr) -> bool {
            net.contains(&addr)
        }
    };
}

impl Family for V4 {
    type Addr = Ipv4Addr;
    type Net = Ipv4Net;
    type Gateway = Ipv4Addr;
    type PrefixError = PrefixError;
    type Structure = Dir16;
    const UNSPECIFIED: Ipv4Addr = Ipv4Addr::UNSPECIFIED;
    const NAME: &'static str = "";
    const SET_DEFAULT: &'static str = "esxcfg-route -a default <gateway>";

    ipnet_prefix!();
    fn check_network(net: Ipv4Net) -> Result<Ipv4Net, PrefixError> {
        check_network(net)
    }
    fn gateway_addr(gateway: Ipv4Addr) -> Ipv4Addr {
        gateway
    }
    fn gateway_vmknic(_gateway: Ipv4Addr) -> Option<VmknicId> {
        None
    }
}

impl Family for V6 {
    type Addr = Ipv6Addr;
    type Net = Ipv6Net;
    type Gateway = Gateway6;
    type PrefixError = Prefix6Error;
    type Structure = Wide6;
    const UNSPECIFIED: Ipv6Addr = Ipv6Addr::UNSPECIFIED;
    const NAME: &'static str = "IPv6 ";
    const SET_DEFAULT: &'static str = "esxcfg-route -f V6 -a default <gateway>";

    ipnet_prefix!();
    fn check_network(net: Ipv6Net) -> Result<Ipv6Net, Prefix6Error> {
        check_network6(net)
    }
    fn gateway_addr(gateway: Gateway6) -> Ipv6Addr {
        gateway.addr
    }
    fn gateway_vmknic(gateway: Gateway6) -> Option<VmknicId> {
        gateway.vmknic
    }
    fn is_link_local(addr: Ipv6Addr) -> bool {
        is_link_local6(addr)
    }
    fn not_unicast(addr: Ipv6Addr) -> bool {
        addr.is_unspecified() || addr.is_loopback() || addr.is_multicast()
    }
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
}
