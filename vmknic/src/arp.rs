//! ARP (RFC 826) for a vmknic: answers for our own addresses only, tells the caller what to
//! learn, and writes requests and gratuitous announcements.
//!
//! `ArpRepr` mirrors smoltcp's `ArpRepr::EthernetIpv4`, whose type needs smoltcp's
//! `medium-ethernet` feature (not enabled in this workspace).

use std::net::Ipv4Addr;

use crate::eth::{
    classify, payload, write_header, Ingress, LinkDrop, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETH_HDR,
};
use crate::MacAddr;

/// Length of an Ethernet/IPv4 ARP packet.
pub const ARP_LEN: usize = 28;
/// Length of an Ethernet frame carrying one (no padding to 60 bytes: a TAP needs none).
pub const ARP_FRAME_LEN: usize = ETH_HDR + ARP_LEN;

mod field {
    use std::ops::Range;
    pub const HTYPE: Range<usize> = 0..2;
    pub const PTYPE: Range<usize> = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Range<usize> = 6..8;
    pub const SHA: usize = 8;
    pub const SPA: usize = 14;
    pub const THA: usize = 18;
    pub const TPA: usize = 24;
}

/// ARP operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpOp {
    /// Who has `target_ip`?
    Request,
    /// `source_ip` is at `source_mac`.
    Reply,
}

/// An Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpRepr {
    /// Request or reply.
    pub operation: ArpOp,
    /// Sender hardware address.
    pub source_mac: MacAddr,
    /// Sender protocol address.
    pub source_ip: Ipv4Addr,
    /// Target hardware address.
    pub target_mac: MacAddr,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

fn be16(b: &[u8; ARP_LEN], r: std::ops::Range<usize>) -> u16 {
    b.get(r)
        .and_then(|s| s.first_chunk::<2>())
        .map_or(0, |s| u16::from_be_bytes(*s))
}

fn ip_at(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::from(
        b.get(at..)
            .and_then(|s| s.first_chunk::<4>())
            .copied()
            .unwrap_or_default(),
    )
}

impl ArpRepr {
    /// Parses the ARP packet at the front of `payload` (an Ethernet payload; trailing padding is
    /// ignored). Anything but Ethernet/IPv4 requests and replies is `BadArp`.
    pub fn parse(payload: &[u8]) -> Result<ArpRepr, LinkDrop> {
        let b = payload.first_chunk::<ARP_LEN>().ok_or(LinkDrop::BadArp)?;
        if be16(b, field::HTYPE) != 1
            || be16(b, field::PTYPE) != ETHERTYPE_IPV4
            || b[field::HLEN] != 6
            || b[field::PLEN] != 4
        {
            return Err(LinkDrop::BadArp);
        }
        let operation = match be16(b, field::OPER) {
            1 => ArpOp::Request,
            2 => ArpOp::Reply,
            _ => return Err(LinkDrop::BadArp),
        };
        Ok(ArpRepr {
            operation,
            source_mac: crate::eth::mac_at(b, field::SHA),
            source_ip: ip_at(b, field::SPA),
            target_mac: crate::eth::mac_at(b, field::THA),
            target_ip: ip_at(b, field::TPA),
        })
    }

    /// Writes the packet at the front of `payload`; returns `ARP_LEN`, or 0 if it is too short.
    pub fn emit(&self, payload: &mut [u8]) -> usize {
        let Some(b) = payload.first_chunk_mut::<ARP_LEN>() else {
            return 0;
        };
        let op: u16 = match self.operation {
            ArpOp::Request => 1,
            ArpOp::Reply => 2,
        };
        b[field::HTYPE].copy_from_slice(&1u16.to_be_bytes());
        b[field::PTYPE].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        b[field::HLEN] = 6;
        b[field::PLEN] = 4;
        b[field::OPER].copy_from_slice(&op.to_be_bytes());
        b[field::SHA..field::SPA].copy_from_slice(&self.source_mac.0);
        b[field::SPA..field::THA].copy_from_slice(&self.source_ip.octets());
        b[field::THA..field::TPA].copy_from_slice(&self.target_mac.0);
        b[field::TPA..].copy_from_slice(&self.target_ip.octets());
        ARP_LEN
    }

    /// Writes this packet in an Ethernet frame to `dst` from `src` at the front of `out`;
    /// returns `ARP_FRAME_LEN`, or 0 if `out` is too short.
    pub fn emit_frame(&self, out: &mut [u8], dst: MacAddr, src: MacAddr) -> usize {
        match out.get_mut(ETH_HDR..).map(|p| self.emit(p)) {
            Some(ARP_LEN) => write_header(out, dst, src, ETHERTYPE_ARP) + ARP_LEN,
            _ => 0,
        }
    }
}

/// What to do with a received ARP frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ArpAction {
    /// A full Ethernet+ARP reply of this length was written into `out`: send it.
    pub reply_len: Option<usize>,
    /// The sender's binding, for `NeighborTable::learn`.
    pub learn: Option<(Ipv4Addr, MacAddr)>,
    /// Pass to `learn`: refresh an existing entry only, never create one.
    pub update_only: bool,
    /// After any learning the frame counts as dropped for this reason (`ArpNotForUs` for a
    /// request or reply about somebody else, `Other` if `out` could not hold the reply).
    pub drop: Option<LinkDrop>,
}

/// Handles an ARP frame (full Ethernet frame) received on a vmknic with MAC `our_mac` and
/// addresses for which `is_ours(ip)` is true.
///
/// - Answers requests for our own addresses only, probes (sender 0.0.0.0) included, which
///   defends the address (RFC 5227); the reply goes to the requester's MAC.
/// - Learns the sender of a request for one of our addresses or of a reply addressed to us
///   (`update_only: false`); a gratuitous ARP or a request/reply about somebody else gives
///   `update_only: true`, the latter with `drop: Some(ArpNotForUs)`.
/// - Never learns sender 0.0.0.0, broadcast, multicast or loopback senders, or our own
///   address as sender (an address conflict). A sender MAC that is not unicast is `BadArp`.
/// - Frames sent with our own MAC (echoes) are ignored.
pub fn handle(
    frame: &[u8],
    our_mac: MacAddr,
    is_ours: impl Fn(Ipv4Addr) -> bool,
    out: &mut [u8],
) -> Result<ArpAction, LinkDrop> {
    match classify(frame, our_mac) {
        Ok(Ingress::Arp) | Err(LinkDrop::NotForUs) => {}
        _ => return Err(LinkDrop::BadArp),
    }
    let arp = ArpRepr::parse(payload(frame))?;
    if !arp.source_mac.is_unicast() {
        return Err(LinkDrop::BadArp);
    }
    let mut action = ArpAction::default();
    if arp.source_mac == our_mac {
        return Ok(action);
    }
    let sip = arp.source_ip;
    let learnable = !(sip.is_unspecified()
        || sip.is_broadcast()
        || sip.is_multicast()
        || sip.is_loopback()
        || is_ours(sip));
    let gratuitous = sip == arp.target_ip;
    let for_us = !gratuitous
        && is_ours(arp.target_ip)
        && match arp.operation {
            ArpOp::Request => true,
            ArpOp::Reply => arp.target_mac == our_mac || frame.first_chunk() == Some(&our_mac.0),
        };
    if learnable {
        action.learn = Some((sip, arp.source_mac));
        action.update_only = !for_us;
    }
    if !gratuitous && !for_us {
        action.drop = Some(LinkDrop::ArpNotForUs);
    }
    if for_us && arp.operation == ArpOp::Request {
        let reply = ArpRepr {
            operation: ArpOp::Reply,
            source_mac: our_mac,
            source_ip: arp.target_ip,
            target_mac: arp.source_mac,
            target_ip: sip,
        };
        match reply.emit_frame(out, arp.source_mac, our_mac) {
            0 => action.drop = Some(LinkDrop::Other),
            n => action.reply_len = Some(n),
        }
    }
    Ok(action)
}

/// Writes a broadcast ARP request for `target`; returns the frame length (42), or 0 if `out`
/// is too short.
pub fn write_request(
    out: &mut [u8],
    our_mac: MacAddr,
    our_ip: Ipv4Addr,
    target: Ipv4Addr,
) -> usize {
    let req = ArpRepr {
        operation: ArpOp::Request,
        source_mac: our_mac,
        source_ip: our_ip,
        target_mac: MacAddr([0; 6]),
        target_ip: target,
    };
    req.emit_frame(out, MacAddr::BROADCAST, our_mac)
}

/// Writes a gratuitous ARP (broadcast request with sender = target = ip); returns the frame
/// length (42), or 0 if `out` is too short.
pub fn write_gratuitous(out: &mut [u8], mac: MacAddr, ip: Ipv4Addr) -> usize {
    write_request(out, mac, ip, ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: MacAddr = MacAddr([0x02, 0x50, 0x56, 0x00, 0x00, 0x01]);
    const PEER: MacAddr = MacAddr([0x02, 0x50, 0x56, 0x00, 0x00, 0x02]);
    const OUR_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const PEER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    const OTHER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 3);

    /// PEER (198.18.0.2) asks, by broadcast, who has 198.18.0.1.
    static REQUEST_BYTES: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x50, 0x56, 0x00, 0x00, 0x02, 0x08, 0x06, //
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, //
        0x02, 0x50, 0x56, 0x00, 0x00, 0x02, 198, 18, 0, 2, //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 198, 18, 0, 1,
    ];

    /// Our answer: 198.18.0.1 is at OURS, sent to PEER.
    static REPLY_BYTES: [u8; 42] = [
        0x02, 0x50, 0x56, 0x00, 0x00, 0x02, 0x02, 0x50, 0x56, 0x00, 0x00, 0x01, 0x08, 0x06, //
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, //
        0x02, 0x50, 0x56, 0x00, 0x00, 0x01, 198, 18, 0, 1, //
        0x02, 0x50, 0x56, 0x00, 0x00, 0x02, 198, 18, 0, 2,
    ];

    fn ours(ip: Ipv4Addr) -> bool {
        ip == OUR_IP
    }

    fn frame(repr: ArpRepr, dst: MacAddr) -> [u8; 42] {
        let mut f = [0u8; 42];
        assert_eq!(repr.emit_frame(&mut f, dst, repr.source_mac), ARP_FRAME_LEN);
        f
    }

    fn request(sha: MacAddr, spa: Ipv4Addr, tpa: Ipv4Addr) -> [u8; 42] {
        let mut f = [0u8; 42];
        assert_eq!(write_request(&mut f, sha, spa, tpa), 42);
        f
    }

    #[test]
    fn test_parse() {
        let repr = ArpRepr::parse(&REQUEST_BYTES[ETH_HDR..]).unwrap();
        assert_eq!(
            repr,
            ArpRepr {
                operation: ArpOp::Request,
                source_mac: PEER,
                source_ip: PEER_IP,
                target_mac: MacAddr([0; 6]),
                target_ip: OUR_IP,
            }
        );
        // Ethernet padding after the packet is ignored.
        let mut padded = [0u8; 46];
        padded[..ARP_LEN].copy_from_slice(&REQUEST_BYTES[ETH_HDR..]);
        assert_eq!(ArpRepr::parse(&padded), Ok(repr));
    }

    #[test]
    fn test_emit() {
        assert_eq!(request(PEER, PEER_IP, OUR_IP), REQUEST_BYTES);
        let mut small = [0u8; 41];
        assert_eq!(write_request(&mut small, PEER, PEER_IP, OUR_IP), 0);
        assert_eq!(write_gratuitous(&mut small, PEER, PEER_IP), 0);
    }

    #[test]
    fn test_emit_gratuitous() {
        let mut f = [0u8; 42];
        assert_eq!(write_gratuitous(&mut f, OURS, OUR_IP), 42);
        let repr = ArpRepr::parse(&f[ETH_HDR..]).unwrap();
        assert_eq!((repr.source_ip, repr.target_ip), (OUR_IP, OUR_IP));
        assert_eq!(repr.source_mac, OURS);
        assert_eq!(&f[..6], &[0xff; 6]);
    }

    #[test]
    fn test_parse_truncated_or_garbage() {
        for len in 0..ARP_LEN {
            assert_eq!(
                ArpRepr::parse(&REQUEST_BYTES[ETH_HDR..ETH_HDR + len]),
                Err(LinkDrop::BadArp)
            );
        }
        // htype, ptype, hlen, plen, opcode
        for (at, value) in [(0, 0x09), (2, 0x86), (4, 8), (5, 16), (7, 3)] {
            let mut f = REQUEST_BYTES;
            f[ETH_HDR + at] = value;
            assert_eq!(handle(&f, OURS, ours, &mut [0; 64]), Err(LinkDrop::BadArp));
        }
        assert_eq!(
            handle(&REQUEST_BYTES[..30], OURS, ours, &mut [0; 64]),
            Err(LinkDrop::BadArp)
        );
        assert_eq!(
            handle(&REQUEST_BYTES[..10], OURS, ours, &mut [0; 64]),
            Err(LinkDrop::BadArp)
        );
        let mut ipv4 = REQUEST_BYTES;
        ipv4[13] = 0x00;
        assert_eq!(
            handle(&ipv4, OURS, ours, &mut [0; 64]),
            Err(LinkDrop::BadArp)
        );
    }

    #[test]
    fn test_request_for_us_is_answered() {
        let mut out = [0u8; 64];
        let a = handle(&REQUEST_BYTES, OURS, ours, &mut out).unwrap();
        assert_eq!(a.reply_len, Some(42));
        assert_eq!(out[..42], REPLY_BYTES);
        assert_eq!(a.learn, Some((PEER_IP, PEER)));
        assert!(!a.update_only);
        assert_eq!(a.drop, None);
    }

    #[test]
    fn test_request_for_other_ip() {
        let f = request(PEER, PEER_IP, OTHER_IP);
        let mut out = [0u8; 64];
        let a = handle(&f, OURS, ours, &mut out).unwrap();
        assert_eq!(a.reply_len, None);
        assert_eq!(a.drop, Some(LinkDrop::ArpNotForUs));
        assert_eq!(a.learn, Some((PEER_IP, PEER)));
        assert!(a.update_only);
        assert_eq!(out, [0; 64]);
    }

    #[test]
    fn test_reply_for_us_is_learned() {
        let reply = ArpRepr::parse(&REPLY_BYTES[ETH_HDR..]).unwrap();
        // PEER answers our request.
        let back = ArpRepr {
            operation: ArpOp::Reply,
            source_mac: PEER,
            source_ip: PEER_IP,
            target_mac: OURS,
            target_ip: OUR_IP,
        };
        assert_eq!(reply.operation, ArpOp::Reply);
        let a = handle(&frame(back, OURS), OURS, ours, &mut [0; 64]).unwrap();
        assert_eq!(
            (a.learn, a.update_only, a.reply_len, a.drop),
            (Some((PEER_IP, PEER)), false, None, None)
        );
        // A reply to somebody else only refreshes.
        let other = ArpRepr {
            target_mac: MacAddr([2, 0, 0, 0, 0, 9]),
            target_ip: OTHER_IP,
            ..back
        };
        let a = handle(&frame(other, MacAddr::BROADCAST), OURS, ours, &mut [0; 64]).unwrap();
        assert_eq!(
            (a.learn, a.update_only, a.drop),
            (Some((PEER_IP, PEER)), true, Some(LinkDrop::ArpNotForUs))
        );
    }

    #[test]
    fn test_gratuitous_is_update_only() {
        let mut f = [0u8; 42];
        write_gratuitous(&mut f, PEER, PEER_IP);
        let a = handle(&f, OURS, ours, &mut [0; 64]).unwrap();
        assert_eq!(
            (a.learn, a.update_only, a.reply_len, a.drop),
            (Some((PEER_IP, PEER)), true, None, None)
        );
    }

    #[test]
    fn test_probe_is_answered_not_learned() {
        let f = request(PEER, Ipv4Addr::UNSPECIFIED, OUR_IP);
        let mut out = [0u8; 64];
        let a = handle(&f, OURS, ours, &mut out).unwrap();
        assert_eq!(a.learn, None);
        assert_eq!(a.reply_len, Some(42));
        let reply = ArpRepr::parse(&out[ETH_HDR..42]).unwrap();
        assert_eq!(
            (reply.target_mac, reply.target_ip),
            (PEER, Ipv4Addr::UNSPECIFIED)
        );
        // A probe for somebody else: nothing to learn, nothing to say.
        let f = request(PEER, Ipv4Addr::UNSPECIFIED, OTHER_IP);
        let a = handle(&f, OURS, ours, &mut out).unwrap();
        assert_eq!((a.learn, a.reply_len), (None, None));
    }

    #[test]
    fn test_conflict_not_learned() {
        // Somebody else claims our address.
        let mut f = [0u8; 42];
        write_gratuitous(&mut f, PEER, OUR_IP);
        let a = handle(&f, OURS, ours, &mut [0; 64]).unwrap();
        assert_eq!((a.learn, a.reply_len), (None, None));
    }

    #[test]
    fn test_bad_sender_mac() {
        for mac in [
            MacAddr::BROADCAST,
            MacAddr([0x01, 0, 0x5e, 0, 0, 1]),
            MacAddr([0; 6]),
        ] {
            let f = request(mac, PEER_IP, OUR_IP);
            assert_eq!(handle(&f, OURS, ours, &mut [0; 64]), Err(LinkDrop::BadArp));
        }
        // Our own frame looped back: ignored.
        let f = request(OURS, OUR_IP, PEER_IP);
        assert_eq!(
            handle(&f, OURS, ours, &mut [0; 64]),
            Ok(ArpAction::default())
        );
    }

    #[test]
    fn test_reply_buffer_too_small() {
        let mut out = [0u8; 41];
        let a = handle(&REQUEST_BYTES, OURS, ours, &mut out).unwrap();
        assert_eq!((a.reply_len, a.drop), (None, Some(LinkDrop::Other)));
        assert_eq!(a.learn, Some((PEER_IP, PEER)));
    }
}
