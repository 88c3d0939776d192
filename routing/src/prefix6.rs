//! IPv6 prefixes, gateways and the address rules users meet on the command line and in config.

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

use ipnet::Ipv6Net;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::VmknicId;

/// Why an IPv6 prefix, address or gateway was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Prefix6Error {
    /// The text is not `addr/len`.
    #[error("`{0}` is not an IPv6 prefix (expected addr/len with len 0-128)")]
    Syntax(String),
    /// The text is not an IPv6 address.
    #[error("`{0}` is not an IPv6 address")]
    Address(String),
    /// The text is not an IPv6 gateway (`addr` or `addr%vmkN`).
    #[error(
        "`{0}` is not an IPv6 gateway (expected an address, or fe80::1%vmk0 for a link-local one)"
    )]
    Gateway(String),
    /// Host bits are set; routes name networks.
    #[error("{given} has host bits set; the network is {network}")]
    HostBits {
        /// What the user wrote.
        given: Ipv6Net,
        /// The network it would be.
        network: Ipv6Net,
    },
}

/// Parses an IPv6 address, naming the text on error.
pub fn parse_addr6(s: &str) -> Result<Ipv6Addr, Prefix6Error> {
    s.trim()
        .parse()
        .map_err(|_| Prefix6Error::Address(s.to_string()))
}

/// Parses an IPv6 network `addr/len`, refusing host bits
/// (`2001:db8:1::7/48` is refused, naming `2001:db8:1::/48`).
pub fn parse_network6(s: &str) -> Result<Ipv6Net, Prefix6Error> {
    let net: Ipv6Net = s
        .trim()
        .parse()
        .map_err(|_| Prefix6Error::Syntax(s.to_string()))?;
    check_network6(net)
}

/// Refuses an IPv6 prefix with host bits set.
pub fn check_network6(net: Ipv6Net) -> Result<Ipv6Net, Prefix6Error> {
    if net.trunc() == net {
        Ok(net)
    } else {
        Err(Prefix6Error::HostBits {
            given: net,
            network: net.trunc(),
        })
    }
}

/// True for fe80::/10, the link-local unicast addresses.
pub fn is_link_local6(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// Why `net` (an address with its prefix length, as `2001:db8:1::100/64`) cannot be a vmknic's
/// IPv6 address, or `None` when it can. One rule for the config file and the command line.
pub fn host_address6_problem(net: Ipv6Net) -> Option<String> {
    let ip = net.addr();
    let reason = if ip.is_unspecified() {
        ":: is the unspecified address".to_string()
    } else if ip.is_loopback() {
        "::1 is loopback".to_string()
    } else if ip.is_multicast() {
        "ff00::/8 is multicast".to_string()
    } else if ip.to_ipv4_mapped().is_some() {
        format!("{ip} is an IPv4-mapped address (::ffff:0:0/96)")
    } else if net.prefix_len() == 0 {
        "a vmknic prefix needs a length of 1-128".to_string()
    } else if net.prefix_len() <= 126 && ip == net.network() {
        // RFC 4291 2.6.1; /127 point-to-point links (RFC 6164) use both addresses.
        format!(
            "{ip} is the subnet-router anycast address of {}",
            net.trunc()
        )
    } else {
        return None;
    };
    Some(reason)
}

/// An IPv6 gateway: its address and, for a link-local one, the vmknic it is reached through
/// (a link-local address means nothing without its link). Written `addr` or `addr%vmkN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Gateway6 {
    /// The gateway's address.
    pub addr: Ipv6Addr,
    /// The vmknic it is reached through, when named.
    pub vmknic: Option<VmknicId>,
}

impl Gateway6 {
    /// A gateway found through the vmknic prefixes.
    pub fn new(addr: Ipv6Addr) -> Self {
        Gateway6 { addr, vmknic: None }
    }

    /// A gateway reached through `vmknic` (required for a link-local one).
    pub fn on(addr: Ipv6Addr, vmknic: VmknicId) -> Self {
        Gateway6 {
            addr,
            vmknic: Some(vmknic),
        }
    }
}

impl fmt::Display for Gateway6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.vmknic {
            Some(v) => write!(f, "{}%{v}", self.addr),
            None => write!(f, "{}", self.addr),
        }
    }
}

impl FromStr for Gateway6 {
    type Err = Prefix6Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || Prefix6Error::Gateway(s.to_string());
        let t = s.trim();
        let (addr, vmknic) = match t.split_once('%') {
            Some((a, v)) => (a, Some(v.parse::<VmknicId>().map_err(|_| bad())?)),
            None => (t, None),
        };
        let addr: Ipv6Addr = addr.parse().map_err(|_| bad())?;
        Ok(Gateway6 { addr, vmknic })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_parse_network6() {
        assert_eq!(
            parse_network6("2001:db8:100::/48").map(|n| n.to_string()),
            Ok("2001:db8:100::/48".into())
        );
        assert!(matches!(
            parse_network6("2001:db8::"),
            Err(Prefix6Error::Syntax(_))
        ));
        assert!(matches!(
            parse_network6("2001:db8::/129"),
            Err(Prefix6Error::Syntax(_))
        ));
        let err = parse_network6("2001:db8:100::7/48").unwrap_err();
        assert_eq!(
            err.to_string(),
            "2001:db8:100::7/48 has host bits set; the network is 2001:db8:100::/48"
        );
        assert!(parse_addr6("198.18.0.1").is_err());
        assert_eq!(
            parse_addr6(" 2001:db8::1 "),
            Ok("2001:db8::1".parse().unwrap())
        );
    }

    #[test]
    fn test_host_address6_problem() {
        let p = |s: &str| host_address6_problem(s.parse().unwrap());
        assert_eq!(p("2001:db8:1::100/64"), None);
        assert_eq!(p("fe80::1/64"), None, "link-local addresses are addresses");
        assert_eq!(p("2001:db8::/127"), None, "RFC 6164 point-to-point");
        assert_eq!(p("2001:db8::5/128"), None);
        assert_eq!(
            p("2001:db8:1::/64").unwrap(),
            "2001:db8:1:: is the subnet-router anycast address of 2001:db8:1::/64"
        );
        assert!(p("::/64").unwrap().contains("unspecified"));
        assert!(p("::1/128").unwrap().contains("loopback"));
        assert!(p("ff02::1/64").unwrap().contains("multicast"));
        assert!(p("::ffff:198.18.0.1/96").unwrap().contains("IPv4-mapped"));
        assert!(p("2001:db8::1/0").unwrap().contains("1-128"));
    }

    #[test]
    fn test_gateway6() {
        let g: Gateway6 = "fe80::1%vmk2".parse().unwrap();
        assert_eq!(g, Gateway6::on("fe80::1".parse().unwrap(), VmknicId(2)));
        assert_eq!(g.to_string(), "fe80::1%vmk2");
        let g: Gateway6 = "2001:db8::1".parse().unwrap();
        assert_eq!(g.to_string(), "2001:db8::1");
        for bad in [
            "fe80::1%",
            "fe80::1%eth0",
            "198.18.0.1",
            "fe80::1%vmk1%vmk2",
            "",
        ] {
            let e = bad.parse::<Gateway6>().unwrap_err();
            assert!(e.to_string().contains("not an IPv6 gateway"), "{bad}: {e}");
        }
        assert!(is_link_local6("fe80::1".parse().unwrap()));
        assert!(is_link_local6("febf::1".parse().unwrap()));
        assert!(!is_link_local6("fec0::1".parse().unwrap()));
    }
}
