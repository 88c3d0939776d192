//! Ethernet II framing for a vmknic: ingress checks, header writing and drop reasons.
//!
//! smoltcp's `EthernetFrame` needs its `medium-ethernet` feature, which the workspace does not
//! enable (the netstack's smoltcp `Interface` uses `Medium::Ip`), so the 14-byte header is read
//! here through `first_chunk`, which cannot panic.

use crate::MacAddr;

/// Length of an Ethernet II header (no VLAN tag, no FCS).
pub const ETH_HDR: usize = 14;
/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;

/// Why the link layer refused a frame or a packet: Ethernet, ARP and the neighbour table.
/// The router's own reasons (TTL, no route, forwarding off, ...) are the data plane's
/// (`vmkstack_stack::engine::LinkDrop`), which counts these under the same names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkDrop {
    /// Shorter than its headers.
    Truncated,
    /// Destination MAC neither ours nor broadcast.
    NotForUs,
    /// EtherType other than IPv4 or ARP.
    UnknownEthertype,
    /// Malformed or unsupported ARP packet.
    BadArp,
    /// ARP request or reply about an address that is not ours.
    ArpNotForUs,
    /// A bounded queue or table is full.
    QueueFull,
    /// Larger than a buffer.
    TooBig,
    /// Anything else.
    Other,
}

/// What an accepted frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingress {
    /// An IPv4 packet after `ETH_HDR` bytes.
    Ipv4,
    /// An ARP packet after `ETH_HDR` bytes.
    Arp,
    /// An IPv6 packet after `ETH_HDR` bytes (to our MAC or an IPv6 multicast MAC, 33:33:…).
    Ipv6,
}

/// The six bytes at `at` as a MAC (zero if out of range).
pub(crate) fn mac_at(b: &[u8], at: usize) -> MacAddr {
    MacAddr(
        b.get(at..)
            .and_then(|s| s.first_chunk::<6>())
            .copied()
            .unwrap_or_default(),
    )
}

/// Checks a received frame for a vmknic with MAC `ours`: long enough, dst is ours or broadcast
/// (or an IPv6 multicast MAC for IPv6), ethertype IPv4, ARP or IPv6.
#[inline]
pub fn classify(frame: &[u8], ours: MacAddr) -> Result<Ingress, LinkDrop> {
    let hdr = frame.first_chunk::<ETH_HDR>().ok_or(LinkDrop::Truncated)?;
    let dst = mac_at(hdr, 0);
    let ethertype = u16::from_be_bytes([hdr[12], hdr[13]]);
    if dst != ours && dst != MacAddr::BROADCAST {
        // RFC 2464 7: IPv6 multicast goes to 33:33 and the group's last 32 bits; which groups
        // we listen to is the IPv6 stage's to check.
        if !(ethertype == ETHERTYPE_IPV6 && hdr[0] == 0x33 && hdr[1] == 0x33) {
            return Err(LinkDrop::NotForUs);
        }
    }
    match ethertype {
        ETHERTYPE_IPV4 => Ok(Ingress::Ipv4),
        ETHERTYPE_ARP => Ok(Ingress::Arp),
        ETHERTYPE_IPV6 => Ok(Ingress::Ipv6),
        _ => Err(LinkDrop::UnknownEthertype),
    }
}

/// Writes an Ethernet header at the front of `buf` (also the MAC rewrite of the forwarding
/// path). Returns `ETH_HDR`, or 0 and writes nothing if `buf` is shorter than a header.
#[inline]
pub fn write_header(buf: &mut [u8], dst: MacAddr, src: MacAddr, ethertype: u16) -> usize {
    let Some(hdr) = buf.first_chunk_mut::<ETH_HDR>() else {
        return 0;
    };
    hdr[..6].copy_from_slice(&dst.0);
    hdr[6..12].copy_from_slice(&src.0);
    hdr[12..].copy_from_slice(&ethertype.to_be_bytes());
    ETH_HDR
}

/// The source MAC of `frame`, if it holds a whole header.
pub fn src_mac(frame: &[u8]) -> Option<MacAddr> {
    frame.first_chunk::<ETH_HDR>().map(|h| mac_at(h, 6))
}

/// The bytes after the Ethernet header (empty if `frame` is shorter than a header).
pub fn payload(frame: &[u8]) -> &[u8] {
    frame.get(ETH_HDR..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: MacAddr = MacAddr([0x02, 0x50, 0x56, 0x00, 0x00, 0x01]);
    const PEER: MacAddr = MacAddr([0x02, 0x50, 0x56, 0x00, 0x00, 0x02]);

    static FRAME_BYTES: [u8; 18] = [
        0x02, 0x50, 0x56, 0x00, 0x00, 0x01, // dst
        0x02, 0x50, 0x56, 0x00, 0x00, 0x02, // src
        0x08, 0x00, // IPv4
        0x45, 0x00, 0x00, 0x14, // payload
    ];

    fn with(dst: MacAddr, ethertype: u16) -> [u8; 18] {
        let mut f = FRAME_BYTES;
        assert_eq!(write_header(&mut f, dst, PEER, ethertype), ETH_HDR);
        f
    }

    #[test]
    fn test_parse() {
        assert_eq!(classify(&FRAME_BYTES, OURS), Ok(Ingress::Ipv4));
        assert_eq!(src_mac(&FRAME_BYTES), Some(PEER));
        assert_eq!(payload(&FRAME_BYTES), &[0x45, 0x00, 0x00, 0x14]);
    }

    #[test]
    fn test_emit() {
        let mut buf = [0u8; 18];
        buf[ETH_HDR..].copy_from_slice(&FRAME_BYTES[ETH_HDR..]);
        assert_eq!(write_header(&mut buf, OURS, PEER, ETHERTYPE_IPV4), ETH_HDR);
        assert_eq!(buf, FRAME_BYTES);
    }

    #[test]
    fn test_emit_too_short() {
        let mut buf = [0xaau8; 13];
        assert_eq!(write_header(&mut buf, OURS, PEER, ETHERTYPE_ARP), 0);
        assert_eq!(buf, [0xaa; 13]);
    }

    #[test]
    fn test_classify() {
        assert_eq!(classify(&FRAME_BYTES, OURS), Ok(Ingress::Ipv4));
        let arp = with(MacAddr::BROADCAST, ETHERTYPE_ARP);
        assert_eq!(classify(&arp, OURS), Ok(Ingress::Arp));
        // Exactly a header is enough for classification.
        assert_eq!(classify(&FRAME_BYTES[..ETH_HDR], OURS), Ok(Ingress::Ipv4));
    }

    #[test]
    fn test_classify_not_for_us() {
        assert_eq!(classify(&FRAME_BYTES, PEER), Err(LinkDrop::NotForUs));
        let mcast = with(
            MacAddr([0x01, 0x00, 0x5e, 0x00, 0x00, 0x01]),
            ETHERTYPE_IPV4,
        );
        assert_eq!(classify(&mcast, OURS), Err(LinkDrop::NotForUs));
    }

    #[test]
    fn test_classify_unknown_ethertype() {
        for ethertype in [0x8100, 0x0000, 0x88b5] {
            let f = with(OURS, ethertype);
            assert_eq!(classify(&f, OURS), Err(LinkDrop::UnknownEthertype));
        }
    }

    #[test]
    fn test_classify_ipv6_and_its_multicast() {
        assert_eq!(
            classify(&with(OURS, ETHERTYPE_IPV6), OURS),
            Ok(Ingress::Ipv6)
        );
        let group = MacAddr([0x33, 0x33, 0xff, 0, 0, 1]);
        assert_eq!(
            classify(&with(group, ETHERTYPE_IPV6), OURS),
            Ok(Ingress::Ipv6)
        );
        // A 33:33 MAC is IPv6's only: IPv4 in it is not for us.
        assert_eq!(
            classify(&with(group, ETHERTYPE_IPV4), OURS),
            Err(LinkDrop::NotForUs)
        );
    }

    #[test]
    fn test_classify_truncated() {
        for len in 0..ETH_HDR {
            assert_eq!(
                classify(&FRAME_BYTES[..len], OURS),
                Err(LinkDrop::Truncated)
            );
            assert_eq!(src_mac(&FRAME_BYTES[..len]), None);
            assert!(payload(&FRAME_BYTES[..len]).is_empty());
        }
    }
}
