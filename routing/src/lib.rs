//! The pure routing core of vmkstack: IPv4 and IPv6 prefixes, fast longest-prefix-match tables
//! for each ([`LpmTable`], [`Lpm6Table`]: one API over two lookup structures), and a
//! netstack's routing tables under the ESX VMkernel rules (connected subnets, one default
//! gateway, static routes whose gateway must sit on a vmknic subnet; for IPv6, or be
//! link-local with its vmknic named), with `explain` for "which vmknic and gateway would
//! traffic to X use?". The routing table is one implementation generic over the address
//! family ([`RoutingTableOf`] over [`Family`]; [`RoutingTable`] and [`RoutingTable6`]).
//!
//! No I/O, no threads, no smoltcp: everything here is deterministic and unit-tested.

pub mod family;
pub mod lpm;
pub mod lpm6;
pub mod lpm_core;
pub mod prefix;
pub mod prefix6;
#[cfg(feature = "synth")]
pub mod synth;
pub mod table;
pub mod table6;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use family::{Family, V4, V6};
pub use lpm::LpmTable;
pub use lpm6::Lpm6Table;
pub use lpm_core::LpmOf;
pub use prefix::{
    check_network, host_address_problem, netmask_len, parse_addr, parse_netmask, parse_network,
    PrefixError,
};
pub use prefix6::{
    check_network6, host_address6_problem, is_link_local6, parse_addr6, parse_network6, Gateway6,
    Prefix6Error,
};
pub use table::{
    Explanation, ExplanationOf, NextHop, NextHopOf, Origin, Route, RouteEntry, RouteEntryOf,
    RouteError, RouteErrorOf, RouteOf, RoutingTable, RoutingTableOf, GATEWAY_UNREACHABLE,
};
pub use table6::{Explanation6, NextHop6, Route6, Route6Error, RouteEntry6, RoutingTable6};

/// A vmknic's identity: the `N` of `vmkN`. Ordering follows the number, which is how ESX
/// decides which vmknic owns a shared subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct VmknicId(pub u32);

/// A vmknic name that is not `vmkN`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("`{0}` is not a vmknic name (expected vmk0, vmk1, ...)")]
pub struct VmknicNameError(pub String);

impl fmt::Display for VmknicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "vmk{}", self.0)
    }
}

impl FromStr for VmknicId {
    type Err = VmknicNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s
            .strip_prefix("vmk")
            .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
            .filter(|d| d.len() == 1 || !d.starts_with('0'))
            .ok_or_else(|| VmknicNameError(s.to_string()))?;
        digits
            .parse()
            .map(VmknicId)
            .map_err(|_| VmknicNameError(s.to_string()))
    }
}

impl TryFrom<String> for VmknicId {
    type Error = VmknicNameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<VmknicId> for String {
    fn from(id: VmknicId) -> String {
        id.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_vmknic_id() {
        assert_eq!("vmk0".parse(), Ok(VmknicId(0)));
        assert_eq!("vmk12".parse(), Ok(VmknicId(12)));
        assert_eq!(VmknicId(3).to_string(), "vmk3");
        for bad in ["vmk", "vmk01", "eth0", "vmk-1", "vmk1a", "vmk99999999999"] {
            assert!(bad.parse::<VmknicId>().is_err(), "{bad}");
        }
        assert!(VmknicId(2) < VmknicId(10));
    }
}
