//! IPv4 prefixes, netmasks and the parsing rules users meet on the command line and in config.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use thiserror::Error;

/// Why a prefix, netmask or address was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PrefixError {
    /// The text is not `a.b.c.d/len`.
    #[error("`{0}` is not an IPv4 prefix (expected a.b.c.d/len with len 0-32)")]
    Syntax(String),
    /// The text is not an IPv4 address.
    #[error("`{0}` is not an IPv4 address")]
    Address(String),
    /// Host bits are set; routes name networks.
    #[error("{given} has host bits set; the network is {network}")]
    HostBits {
        /// What the user wrote.
        given: Ipv4Net,
        /// The network it would be.
        network: Ipv4Net,
    },
    /// A netmask whose one bits are not contiguous, such as 255.0.255.0.
    #[error(
        "netmask {0} is not contiguous (its one bits must all come first, as in 255.255.255.0)"
    )]
    Netmask(Ipv4Addr),
}

/// Parses an IPv4 address, naming the text on error.
pub fn parse_addr(s: &str) -> Result<Ipv4Addr, PrefixError> {
    s.trim()
        .parse()
        .map_err(|_| PrefixError::Address(s.to_string()))
}

/// Parses a network prefix `a.b.c.d/len`, refusing host bits
/// (`192.168.100.7/24` is refused, naming `192.168.100.0/24`).
pub fn parse_network(s: &str) -> Result<Ipv4Net, PrefixError> {
    let net: Ipv4Net = s
        .trim()
        .parse()
        .map_err(|_| PrefixError::Syntax(s.to_string()))?;
    check_network(net)
}

/// Refuses a prefix with host bits set.
pub fn check_network(net: Ipv4Net) -> Result<Ipv4Net, PrefixError> {
    if net.trunc() == net {
        Ok(net)
    } else {
        Err(PrefixError::HostBits {
            given: net,
            network: net.trunc(),
        })
    }
}

/// The prefix length of a netmask, refusing non-contiguous masks.
pub fn netmask_len(mask: Ipv4Addr) -> Result<u8, PrefixError> {
    let m = u32::from(mask);
    let len = m.leading_ones();
    if m.checked_shl(len).unwrap_or(0) != 0 {
        return Err(PrefixError::Netmask(mask));
    }
    Ok(len as u8)
}

/// Parses a netmask in dotted form (`255.255.255.0`) or as a length (`24` or `/24`).
pub fn parse_netmask(s: &str) -> Result<u8, PrefixError> {
    let t = s.trim().trim_start_matches('/');
    if let Ok(len) = t.parse::<u8>() {
        if len <= 32 {
            return Ok(len);
        }
    }
    let mask: Ipv4Addr = t
        .parse()
        .map_err(|_| PrefixError::Syntax(format!("netmask {s}")))?;
    netmask_len(mask)
}

/// Joins a network address and netmask (`192.168.100.0 255.255.255.0`), refusing host bits.
pub fn network_with_mask(addr: Ipv4Addr, mask: Ipv4Addr) -> Result<Ipv4Net, PrefixError> {
    let len = netmask_len(mask)?;
    let net = Ipv4Net::new(addr, len).map_err(|_| PrefixError::Netmask(mask))?;
    check_network(net)
}

/// Why `net` (an address with its prefix length, as `192.168.1.100/24`) cannot be a vmknic's
/// address, or `None` when it can. One rule for the config file and the command line.
pub fn host_address_problem(net: Ipv4Net) -> Option<String> {
    let ip = net.addr();
    let first = ip.octets()[0];
    let reason = if first == 0 {
        "0.0.0.0/8 is not a host address".to_string()
    } else if ip.is_loopback() {
        "127.0.0.0/8 is loopback".to_string()
    } else if ip.is_multicast() {
        "224.0.0.0/4 is multicast".to_string()
    } else if first >= 240 {
        "240.0.0.0/4 is reserved (and 255.255.255.255 is broadcast)".to_string()
    } else if net.prefix_len() == 0 {
        "a vmknic subnet needs a prefix length of 1-32".to_string()
    } else if net.prefix_len() <= 30 && ip == net.network() {
        format!("{ip} is the network address of {}", net.trunc())
    } else if net.prefix_len() <= 30 && ip == net.broadcast() {
        format!("{ip} is the broadcast address of {}", net.trunc())
    } else {
        return None;
    };
    Some(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_parse_network() {
        assert_eq!(
            parse_network("192.168.100.0/24").map(|n| n.to_string()),
            Ok("192.168.100.0/24".into())
        );
        assert!(matches!(
            parse_network("192.168.100.0"),
            Err(PrefixError::Syntax(_))
        ));
        assert!(matches!(
            parse_network("192.168.100.0/33"),
            Err(PrefixError::Syntax(_))
        ));
    }

    #[test]
    fn test_host_bits_refused_naming_network() {
        let err = parse_network("192.168.100.7/24").unwrap_err();
        assert_eq!(
            err.to_string(),
            "192.168.100.7/24 has host bits set; the network is 192.168.100.0/24"
        );
    }

    #[test]
    fn test_netmask() {
        assert_eq!(netmask_len("255.255.255.0".parse().unwrap()), Ok(24));
        assert_eq!(netmask_len("0.0.0.0".parse().unwrap()), Ok(0));
        assert_eq!(netmask_len("255.255.255.255".parse().unwrap()), Ok(32));
        assert_eq!(netmask_len("255.255.254.0".parse().unwrap()), Ok(23));
        let e = netmask_len("255.0.255.0".parse().unwrap()).unwrap_err();
        assert!(
            e.to_string().contains("255.0.255.0 is not contiguous"),
            "{e}"
        );
        assert_eq!(parse_netmask("/16"), Ok(16));
        assert_eq!(parse_netmask("255.255.0.0"), Ok(16));
        assert!(parse_netmask("33").is_err());
    }

    #[test]
    fn test_host_address_problem() {
        let p = |s: &str| host_address_problem(s.parse().unwrap());
        assert_eq!(p("192.168.1.100/24"), None);
        assert_eq!(p("198.18.0.1/31"), None);
        assert_eq!(
            p("198.18.0.0/31"),
            None,
            "/31 has no network or broadcast address"
        );
        assert_eq!(
            p("198.18.1.0/24").unwrap(),
            "198.18.1.0 is the network address of 198.18.1.0/24"
        );
        assert!(p("198.18.1.255/24")
            .unwrap()
            .contains("broadcast address of 198.18.1.0/24"));
        assert!(p("127.0.0.1/8").unwrap().contains("loopback"));
        assert!(p("0.0.0.0/8").is_some());
        assert!(p("224.0.0.1/24").unwrap().contains("multicast"));
        assert!(p("255.255.255.255/32").is_some());
        assert!(p("198.18.0.1/0").is_some());
    }

    #[test]
    fn test_network_with_mask() {
        let n = network_with_mask(
            "192.168.100.0".parse().unwrap(),
            "255.255.255.0".parse().unwrap(),
        );
        assert_eq!(n.map(|n| n.to_string()), Ok("192.168.100.0/24".into()));
        assert!(matches!(
            network_with_mask(
                "192.168.100.1".parse().unwrap(),
                "255.255.255.0".parse().unwrap()
            ),
            Err(PrefixError::HostBits { .. })
        ));
    }
}
