//! Ethernet MAC addresses.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A 48-bit Ethernet MAC address, written `00:50:56:aa:bb:cc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MacAddr(pub [u8; 6]);

/// Text that is not a MAC address.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("`{0}` is not a MAC address (expected six hex bytes such as 02:50:56:00:00:01)")]
pub struct MacParseError(pub String);

impl MacAddr {
    /// The broadcast address ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

    /// A stable, locally administered unicast MAC derived from `name` (FNV-1a, then the
    /// splitmix64 finalizer so that `vmk0` and `vmk1` differ in every byte), so that a vmknic
    /// keeps its MAC across restarts without one being configured. The first byte has the
    /// locally administered bit set and the multicast bit clear.
    pub fn local_from_name(name: &str) -> MacAddr {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^= h >> 31;
        let b = h.to_be_bytes();
        MacAddr([(b[0] & 0xfc) | 0x02, b[1], b[2], b[3], b[4], b[5]])
    }

    /// True for a multicast (including broadcast) address.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// True for a unicast address that can be a vmknic's own.
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast() && self.0 != [0; 6]
    }

    /// True when the locally administered bit is set.
    pub fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl FromStr for MacAddr {
    type Err = MacParseError;
    /// Accepts `:` or `-` separators, any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || MacParseError(s.to_string());
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for byte in &mut out {
            let p = parts.next().ok_or_else(err)?;
            if p.len() != 2 {
                return Err(err());
            }
            *byte = u8::from_str_radix(p, 16).map_err(|_| err())?;
        }
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(MacAddr(out))
    }
}

impl TryFrom<String> for MacAddr {
    type Error = MacParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<MacAddr> for String {
    fn from(m: MacAddr) -> String {
        m.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_parse_and_display() {
        let m: MacAddr = "00:50:56:AA:bb:0c".parse().unwrap();
        assert_eq!(m.0, [0x00, 0x50, 0x56, 0xaa, 0xbb, 0x0c]);
        assert_eq!(m.to_string(), "00:50:56:aa:bb:0c");
        assert_eq!("00-50-56-aa-bb-0c".parse::<MacAddr>(), Ok(m));
        for bad in [
            "",
            "00:50:56:aa:bb",
            "00:50:56:aa:bb:cc:dd",
            "0:50:56:aa:bb:cc",
            "zz:50:56:aa:bb:cc",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn test_local_from_name_is_stable_local_unicast() {
        let a = MacAddr::local_from_name("vmk0");
        assert_eq!(a, MacAddr::local_from_name("vmk0"));
        assert_ne!(a, MacAddr::local_from_name("vmk1"));
        assert!(a.is_local() && a.is_unicast());
    }
}
