//! ICMP errors a router originates (RFC 792, RFC 1191, RFC 1812 4.3.2): which original
//! datagrams may trigger one, and writing one into a caller-owned buffer.

use std::net::Ipv4Addr;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    Icmpv4DstUnreachable, Icmpv4Message, Icmpv4Packet, Icmpv4TimeExceeded, IpProtocol, Ipv4Packet,
    Ipv4Repr, IPV4_HEADER_LEN,
};

use super::{is_martian, parse_ipv4};

/// Length of an ICMP error header (type, code, checksum, 4 bytes unused or next-hop MTU).
const ICMP_HEADER_LEN: usize = 8;

/// Largest ICMP error a router sends, IP header included (RFC 1812 4.3.2.3).
pub const ICMP_ERROR_MAX_LEN: usize = 576;
/// TTL of the ICMP errors this router originates.
pub const ICMP_ERROR_TTL: u8 = 64;

/// ICMP errors a router sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpError {
    /// Time Exceeded, TTL expired in transit (type 11 code 0).
    TimeExceeded,
    /// Destination Unreachable, net unreachable (type 3 code 0): no route.
    NetUnreachable,
    /// Destination Unreachable, host unreachable (type 3 code 1): neighbour unresolved.
    HostUnreachable,
    /// Destination Unreachable, fragmentation needed and DF set (type 3 code 4), with the
    /// next-hop MTU (RFC 1191).
    FragNeeded {
        /// MTU of the next-hop link.
        mtu: u16,
    },
    /// Destination Unreachable, port unreachable (type 3 code 3).
    PortUnreachable,
}

impl IcmpError {
    /// ICMP type, code and the value of bytes 6-7 (next-hop MTU or zero).
    fn encoding(self) -> (Icmpv4Message, u8, u16) {
        use Icmpv4DstUnreachable as Unreachable;
        let unreachable =
            |code: Unreachable, mtu| (Icmpv4Message::DstUnreachable, code.into(), mtu);
        match self {
            IcmpError::TimeExceeded => {
                let code = Icmpv4TimeExceeded::TtlExpired.into();
                (Icmpv4Message::TimeExceeded, code, 0)
            }
            IcmpError::NetUnreachable => unreachable(Unreachable::NetUnreachable, 0),
            IcmpError::HostUnreachable => unreachable(Unreachable::HostUnreachable, 0),
            IcmpError::FragNeeded { mtu } => unreachable(Unreachable::FragRequired, mtu),
            IcmpError::PortUnreachable => unreachable(Unreachable::PortUnreachable, 0),
        }
    }
}

/// Whether an ICMP error may be sent about `original` (RFC 1812 4.3.2.7): not about an ICMP
/// error message (only echo request/reply and other queries may trigger one), not about a
/// non-first fragment, not when the original's source is martian/broadcast/multicast or its
/// destination is broadcast/multicast. An original that does not parse gets no error either.
pub fn may_send_icmp_error(original: &[u8]) -> bool {
    let Ok(info) = parse_ipv4(original) else {
        return false;
    };
    if info.frag_offset != 0
        || is_martian(info.src)
        || info.dst.is_multicast()
        || info.dst.is_broadcast()
    {
        return false;
    }
    if info.protocol != u8::from(IpProtocol::Icmp) {
        return true;
    }
    let payload = original
        .get(info.header_len..info.total_len)
        .unwrap_or_default();
    match Icmpv4Packet::new_checked(payload).map(|icmp| icmp.msg_type()) {
        Ok(
            Icmpv4Message::EchoReply
            | Icmpv4Message::EchoRequest
            | Icmpv4Message::RouterAdvert
            | Icmpv4Message::RouterSolicit
            | Icmpv4Message::Timestamp
            | Icmpv4Message::TimestampReply,
        ) => true,
        // Information request/reply (15, 16) and address mask request/reply (17, 18).
        Ok(Icmpv4Message::Unknown(15..=18)) => true,
        // Errors, unknown types (treated as errors, like Linux) and runt ICMP messages.
        _ => false,
    }
}

/// Writes into `out` a complete IPv4 packet from `src` to the original's source: IP header
/// (TTL 64, DF clear, id `ident`), the ICMP error (type/code per kind; FragNeeded carries the
/// next-hop MTU in bytes 6-7 per RFC 1191), and as much of the original datagram as fits in
/// 576 bytes total and in `out` (at least its header + 8 bytes, or all of a shorter original).
/// Returns the length, or 0 if `out` is too small or the original is unparseable.
pub fn write_icmp_error(
    out: &mut [u8],
    kind: IcmpError,
    original: &[u8],
    src: Ipv4Addr,
    ident: u16,
) -> usize {
    let Ok(info) = parse_ipv4(original) else {
        return 0;
    };
    let room = out
        .len()
        .min(ICMP_ERROR_MAX_LEN)
        .saturating_sub(IPV4_HEADER_LEN + ICMP_HEADER_LEN);
    let quote_len = info.total_len.min(room);
    if quote_len < info.total_len.min(info.header_len + 8) {
        return 0;
    }
    let icmp_len = ICMP_HEADER_LEN + quote_len;
    let (Some(quote), Some(buf)) = (
        original.get(..quote_len),
        out.get_mut(..IPV4_HEADER_LEN + icmp_len),
    ) else {
        return 0;
    };

    let repr = Ipv4Repr {
        src_addr: src,
        dst_addr: info.src,
        next_header: IpProtocol::Icmp,
        payload_len: icmp_len,
        hop_limit: ICMP_ERROR_TTL,
    };
    let mut ip = Ipv4Packet::new_unchecked(&mut *buf);
    repr.emit(&mut ip, &ChecksumCapabilities::ignored());
    ip.set_ident(ident);
    ip.set_dont_frag(false);
    ip.fill_checksum();

    let Some((icmp_header, icmp_data)) = ip.payload_mut().split_at_mut_checked(ICMP_HEADER_LEN)
    else {
        return 0;
    };
    let (msg_type, code, mtu) = kind.encoding();
    let [mtu_hi, mtu_lo] = mtu.to_be_bytes();
    icmp_header.copy_from_slice(&[msg_type.into(), code, 0, 0, 0, 0, mtu_hi, mtu_lo]);
    icmp_data.copy_from_slice(quote);
    match Icmpv4Packet::new_checked(ip.payload_mut()) {
        Ok(mut icmp) => icmp.fill_checksum(),
        Err(_) => return 0,
    }
    IPV4_HEADER_LEN + icmp_len
}

#[cfg(test)]
mod tests {
    use smoltcp::wire::Icmpv4Repr;

    use super::*;
    use crate::packet::tests::{addrs, ipv4, rewrite, DST, PACKET_BYTES, SRC};

    const ROUTER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);

    /// Builds `kind` about `original` and checks the IP and ICMP headers and checksums.
    fn icmp_error(kind: IcmpError, original: &[u8]) -> Vec<u8> {
        let mut out = [0u8; 1500];
        let len = write_icmp_error(&mut out, kind, original, ROUTER, 0x4242);
        let ip = Ipv4Packet::new_checked(&out[..len]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(usize::from(ip.total_len()), len);
        assert_eq!((ip.src_addr(), ip.dst_addr()), (ROUTER, SRC));
        assert_eq!(
            (ip.hop_limit(), ip.ident(), ip.dont_frag()),
            (64, 0x4242, false)
        );
        assert_eq!(ip.next_header(), IpProtocol::Icmp);
        assert!(Icmpv4Packet::new_checked(ip.payload())
            .unwrap()
            .verify_checksum());
        out[..len].to_vec()
    }

    #[test]
    fn test_emit_icmp_errors() {
        let original = ipv4(IpProtocol::Udp, &[], &[7; 40]);
        let cases = [
            (IcmpError::TimeExceeded, 11, 0, 0),
            (IcmpError::NetUnreachable, 3, 0, 0),
            (IcmpError::HostUnreachable, 3, 1, 0),
            (IcmpError::PortUnreachable, 3, 3, 0),
            (IcmpError::FragNeeded { mtu: 1400 }, 3, 4, 1400),
        ];
        for (kind, msg_type, code, mtu) in cases {
            let out = icmp_error(kind, &original);
            assert_eq!(out.len(), 28 + original.len());
            assert_eq!(out[20..22], [msg_type, code]);
            assert_eq!(out[26..28], u16::to_be_bytes(mtu));
            assert_eq!(out[28..], original[..]);
            let icmp = Icmpv4Packet::new_checked(&out[20..]).unwrap();
            let (header, data) = match Icmpv4Repr::parse(&icmp, &ChecksumCapabilities::default()) {
                Ok(Icmpv4Repr::DstUnreachable {
                    reason,
                    header,
                    data,
                }) => {
                    assert_eq!(u8::from(reason), code);
                    (header, data)
                }
                Ok(Icmpv4Repr::TimeExceeded {
                    reason,
                    header,
                    data,
                }) => {
                    assert_eq!(reason, Icmpv4TimeExceeded::TtlExpired);
                    (header, data)
                }
                other => panic!("{kind:?}: {other:?}"),
            };
            assert_eq!((header.src_addr, header.dst_addr), (SRC, DST));
            assert_eq!(
                (header.next_header, data),
                (IpProtocol::Udp, &original[20..])
            );
        }
    }

    #[test]
    fn test_emit_icmp_error_limits() {
        // A big original is quoted up to 576 bytes in all.
        let original = ipv4(IpProtocol::Udp, &[], &[9; 3980]);
        let out = icmp_error(IcmpError::FragNeeded { mtu: 1500 }, &original);
        assert_eq!(out.len(), ICMP_ERROR_MAX_LEN);
        assert_eq!(out[28..], original[..548]);
        // A small `out` still gets the header + 8 bytes; smaller than that gets nothing.
        let write = |out: &mut [u8], original: &[u8]| {
            write_icmp_error(out, IcmpError::TimeExceeded, original, ROUTER, 1)
        };
        let mut out = [0u8; 56];
        assert_eq!(write(&mut out, &original), 56);
        assert_eq!(out[28..], original[..28]);
        assert_eq!(write(&mut out[..55], &original), 0);
        // A short original is quoted whole; an unparseable one gets nothing.
        let short = ipv4(IpProtocol::Udp, &[], &[1, 2, 3]);
        assert_eq!(write(&mut out, &short), 51);
        assert_eq!(write(&mut out, &short[..22]), 0);
    }

    #[test]
    fn test_may_send_icmp_error() {
        assert!(may_send_icmp_error(&PACKET_BYTES));
        let echo = [8, 0, 0xf7, 0xff, 0, 0, 0, 0];
        assert!(may_send_icmp_error(&ipv4(IpProtocol::Icmp, &[], &echo)));
        for kind in [IcmpError::HostUnreachable, IcmpError::TimeExceeded] {
            assert!(!may_send_icmp_error(&icmp_error(kind, &PACKET_BYTES)));
        }
        assert!(!may_send_icmp_error(&ipv4(
            IpProtocol::Icmp,
            &[],
            &[8, 0, 0]
        )));
        assert!(!may_send_icmp_error(&PACKET_BYTES[..19]));

        let mut pkt = ipv4(IpProtocol::Udp, &[], &[0; 16]);
        rewrite(&mut pkt, |p| p.set_more_frags(true));
        assert!(may_send_icmp_error(&pkt), "first fragment");
        rewrite(&mut pkt, |p| p.set_frag_offset(1480));
        assert!(!may_send_icmp_error(&pkt), "later fragment");

        for dst in addrs("255.255.255.255 224.0.0.5") {
            let mut pkt = ipv4(IpProtocol::Udp, &[], &[0; 8]);
            rewrite(&mut pkt, |p| p.set_dst_addr(dst));
            assert!(!may_send_icmp_error(&pkt), "dst {dst}");
        }
        for src in addrs("0.0.0.0 127.0.0.1 224.0.0.1 255.255.255.255") {
            let mut pkt = ipv4(IpProtocol::Udp, &[], &[0; 8]);
            rewrite(&mut pkt, |p| p.set_src_addr(src));
            assert!(!may_send_icmp_error(&pkt), "src {src}");
        }
    }
}
