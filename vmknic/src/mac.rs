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
        let b = name_hash(name).to_be_bytes();
        MacAddr([(b[0] & 0xfc) | 0x02, b[1], b[2], b[3], b[4], b[5]])
    }

    /// A stable MAC in VMware's OUI, as ESXi gives the vmknics it creates
    /// (`00:50:56:XX:YY:ZZ`), derived from `name` like [`MacAddr::local_from_name`]. `XX` stays
    /// within 0x40-0x7f: VMware reserves 0x00-0x3f for addresses set by hand and 0x80-0xbf for
    /// vCenter's, and ESXi's own vmknics show up above 0x3f (`00:50:56:6c:fe:c5`). Globally
    /// administered: a lab that uses it on a network with real ESXi hosts may collide.
    pub fn vmware_from_name(name: &str) -> MacAddr {
        let b = name_hash(name).to_be_bytes();
        MacAddr([0x00, 0x50, 0x56, 0x40 | (b[0] & 0x3f), b[1], b[2]])
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

/// FNV-1a of `name`, then the splitmix64 finalizer (so that `vmk0` and `vmk1` differ in every
/// byte).
fn name_hash(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
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
        // Pinned (the README's demo shows them): a vmknic keeps its MAC across releases.
        assert_eq!(a.to_string(), "16:60:84:e4:42:fd");
        assert_eq!(
            MacAddr::local_from_name("vmk1").to_string(),
            "ca:65:0c:4c:ae:d7"
        );
    }

    #[test]
    fn test_vmware_from_name_is_stable_in_vmwares_oui() {
        let names: Vec<String> = (0..256).map(|n| format!("vmk{n}")).collect();
        let macs: Vec<MacAddr> = names.iter().map(|n| MacAddr::vmware_from_name(n)).collect();
        for (n, m) in names.iter().zip(&macs) {
            assert_eq!(m.0[..3], [0x00, 0x50, 0x56], "{n}: {m}");
            assert!((0x40..=0x7f).contains(&m.0[3]), "{n}: {m} outside 40-7f");
            assert!(m.is_unicast() && !m.is_local(), "{n}: {m}");
            assert_eq!(*m, MacAddr::vmware_from_name(n), "stable");
        }
        let mut distinct = macs.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), macs.len(), "256 vmknics, 256 MACs");
        // The same hash as the local style, so both are pinned together.
        let l = MacAddr::local_from_name("vmk1").0;
        let v = MacAddr::vmware_from_name("vmk1").0;
        assert_eq!((v[3] & 0x3f, v[4], v[5]), (l[0] & 0x3f, l[1], l[2]));
    }
}
