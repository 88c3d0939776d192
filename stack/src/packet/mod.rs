//! The forwarding path's per-packet toolbox. This module holds the shared IPv4 parse:
//! header validation ([`parse_ipv4`], [`Ipv4Info`]), martian addresses and the TTL decrement
//! with an incremental checksum update (RFC 1624). The rest is one concept per submodule, all
//! re-exported here: ICMP errors (`icmp`: RFC 792, RFC 1191, RFC 1812 4.3.2), fragmentation
//! (`frag`: RFC 791), the offloads a virtio-net header asks for and their inverse (`gso`:
//! finishing a partial checksum, cutting a TCP super-frame into segments, merging segments
//! into one), a token bucket to rate-limit ICMP errors (`ratelimit`) and the reassembly of TCP
//! datagrams for the stack's own addresses (`reasm`).
//!
//! Everything here is pure and works on caller-owned buffers: nothing allocates per packet,
//! nothing panics on packet contents, and headers are read through `smoltcp::wire` views made
//! with `new_checked`.

use std::net::Ipv4Addr;

use smoltcp::wire::{checksum, Ipv4Packet, IPV4_HEADER_LEN};
use thiserror::Error;

mod frag;
mod fragslots;
mod gso;
mod icmp;
mod ratelimit;
mod reasm;
mod reasm6;

pub use frag::fragment;
pub use gso::{
    check_offload, check_offload6, fill_tcp_checksum, finish_checksum, flow_of, segment_tcp,
    segment_tcp6, tcp_checksum_ok, tso_frame, tso_frame6, tso_headers, tso_headers6, Coalescer,
    Flow, Merged, Offload, Offload6, COALESCE_HEADROOM, TCP_MIN_MSS,
};
pub use icmp::{
    may_send_icmp_error, write_icmp_error, IcmpError, ICMP_ERROR_MAX_LEN, ICMP_ERROR_TTL,
};
pub use ratelimit::RateLimiter;
pub use reasm::{Reassembler, Reassembly};
pub use reasm6::{Fragment6, Reassembler6, Reassembly6};

/// Why a packet is not forwarded (the stack maps these to counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PacketError {
    /// Shorter than an IPv4 header, or than the header length it announces.
    #[error("truncated IPv4 header")]
    Truncated,
    /// The version field is not 4.
    #[error("IP version is not 4")]
    BadVersion,
    /// IHL below 5, or malformed IPv4 options.
    #[error("bad IPv4 header length or options")]
    BadHeaderLength,
    /// The header checksum does not verify.
    #[error("bad IPv4 header checksum")]
    BadChecksum,
    /// Total length below the header length or beyond the received bytes, or a fragment
    /// that would end beyond 65535 bytes.
    #[error("bad IPv4 total length")]
    BadTotalLength,
    /// The source address is never forwarded (see [`is_martian`]).
    #[error("martian source address")]
    MartianSource,
    /// The destination address is never forwarded (see [`is_martian`]).
    #[error("martian destination address")]
    MartianDestination,
    /// [`fragment`] was asked to split a DF packet, or the MTU (or scratch buffer) cannot
    /// carry the header plus 8 bytes of data.
    #[error("packet cannot be fragmented")]
    CannotFragment,
    /// A virtio-net header that does not match its packet (checksum offsets outside it, a
    /// super-frame that is not TCP/IPv4, a segment size below `TCP_MIN_MSS`), or a kind of offload the
    /// daemon never enabled.
    #[error("virtio-net header does not match the packet")]
    BadOffload,
    /// [`segment_tcp`]'s scratch buffer cannot hold a segment.
    #[error("TCP super-frame cannot be segmented")]
    CannotSegment,
}

/// What the forwarding path needs from a validated IPv4 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Info {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Time to live.
    pub ttl: u8,
    /// Protocol number of the payload (1 ICMP, 6 TCP, 17 UDP, ...).
    pub protocol: u8,
    /// Header length in bytes, options included (20..=60).
    pub header_len: usize,
    /// Total length in bytes from the header; trailing link padding is beyond it.
    pub total_len: usize,
    /// The "don't fragment" flag.
    pub dont_frag: bool,
    /// The "more fragments" flag.
    pub more_frags: bool,
    /// Fragment offset, in bytes.
    pub frag_offset: u16,
    /// Whether the header carries options (`header_len > 20`).
    pub has_options: bool,
}

impl Ipv4Info {
    /// Refuses a martian source or destination (see [`is_martian`]).
    pub fn check_addresses(&self) -> Result<(), PacketError> {
        if is_martian(self.src) {
            Err(PacketError::MartianSource)
        } else if is_martian(self.dst) {
            Err(PacketError::MartianDestination)
        } else {
            Ok(())
        }
    }
}

/// Validates an IPv4 packet (no Ethernet header): version 4, IHL >= 5 and within the buffer,
/// header checksum, total length <= buffer (trailing Ethernet padding allowed and ignored).
#[inline]
pub fn parse_ipv4(pkt: &[u8]) -> Result<Ipv4Info, PacketError> {
    let ver_ihl = match pkt.first() {
        Some(&byte) if pkt.len() >= IPV4_HEADER_LEN => byte,
        _ => return Err(PacketError::Truncated),
    };
    if ver_ihl >> 4 != 4 {
        return Err(PacketError::BadVersion);
    }
    let header_len = usize::from(ver_ihl & 0x0f) * 4;
    if header_len < IPV4_HEADER_LEN {
        return Err(PacketError::BadHeaderLength);
    }
    let header = pkt.get(..header_len).ok_or(PacketError::Truncated)?;
    if checksum::data(header) != !0 {
        return Err(PacketError::BadChecksum);
    }
    // What `new_checked` can still refuse is a total length below the header or beyond `pkt`.
    let packet = Ipv4Packet::new_checked(pkt).map_err(|_| PacketError::BadTotalLength)?;
    Ok(Ipv4Info {
        src: packet.src_addr(),
        dst: packet.dst_addr(),
        ttl: packet.hop_limit(),
        protocol: packet.next_header().into(),
        header_len,
        total_len: usize::from(packet.total_len()),
        dont_frag: packet.dont_frag(),
        more_frags: packet.more_frags(),
        frag_offset: packet.frag_offset(),
        has_options: header_len > IPV4_HEADER_LEN,
    })
}

/// Addresses never forwarded, as source or destination: 0.0.0.0/8, 127/8, 169.254/16
/// (link-local), 224/4 multicast, 240/4 incl. 255.255.255.255. (Destination also: the
/// directed broadcast is the caller's business.)
#[inline]
pub fn is_martian(addr: Ipv4Addr) -> bool {
    let [first, ..] = addr.octets();
    first == 0 || addr.is_loopback() || addr.is_link_local() || first >= 224
}

/// Decrements TTL by one and updates the header checksum incrementally (RFC 1624), in place.
/// Caller has checked ttl > 1; a packet that does not parse or has TTL 0 is left unchanged.
#[inline]
pub fn decrement_ttl(pkt: &mut [u8]) {
    let Ok(mut packet) = Ipv4Packet::new_checked(pkt) else {
        return;
    };
    let ttl = packet.hop_limit();
    let Some(new_ttl) = ttl.checked_sub(1) else {
        return;
    };
    let protocol = packet.next_header().into();
    let old_word = u16::from_be_bytes([ttl, protocol]);
    let new_word = u16::from_be_bytes([new_ttl, protocol]);
    // RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), which never yields the -0 of RFC 1141.
    let sum = checksum::combine(&[!packet.checksum(), !old_word, new_word]);
    packet.set_hop_limit(new_ttl);
    packet.set_checksum(!sum);
}

#[cfg(test)]
mod tests {
    //! Tests of the shared parse, and the fixtures the submodules' tests share.

    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{IpProtocol, Ipv4Repr};

    use super::*;

    pub(super) const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    pub(super) const DST: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 2);

    /// 198.18.0.1 -> 198.19.0.2, UDP 53 -> 53, id 0x1234, DF, TTL 64, 2 bytes of data.
    pub(super) static PACKET_BYTES: [u8; 30] = [
        0x45, 0x00, 0x00, 0x1e, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0x9c, 0x72, 0xc6, 0x12, 0x00,
        0x01, 0xc6, 0x13, 0x00, 0x02, 0x00, 0x35, 0x00, 0x35, 0x00, 0x0a, 0x00, 0x00, 0xaa, 0xbb,
    ];

    /// The same packet after one hop: TTL 63, checksum 0x9d72.
    static FORWARDED_BYTES: [u8; 30] = [
        0x45, 0x00, 0x00, 0x1e, 0x12, 0x34, 0x40, 0x00, 0x3f, 0x11, 0x9d, 0x72, 0xc6, 0x12, 0x00,
        0x01, 0xc6, 0x13, 0x00, 0x02, 0x00, 0x35, 0x00, 0x35, 0x00, 0x0a, 0x00, 0x00, 0xaa, 0xbb,
    ];

    /// SRC -> DST, id 0xbeef, TTL 64, no DF, with `options` (a multiple of 4 bytes).
    pub(super) fn ipv4(proto: IpProtocol, options: &[u8], payload: &[u8]) -> Vec<u8> {
        let header_len = IPV4_HEADER_LEN + options.len();
        let mut buf = vec![0u8; header_len + payload.len()];
        let repr = Ipv4Repr {
            src_addr: SRC,
            dst_addr: DST,
            next_header: proto,
            payload_len: payload.len(),
            hop_limit: 64,
        };
        let caps = ChecksumCapabilities::ignored();
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf), &caps);
        buf[IPV4_HEADER_LEN..header_len].copy_from_slice(options);
        buf[header_len..].copy_from_slice(payload);
        rewrite(&mut buf, |p| {
            p.set_header_len(header_len as u8);
            p.set_total_len((header_len + payload.len()) as u16);
            p.set_ident(0xbeef);
            p.set_dont_frag(false);
        });
        buf
    }

    /// Changes header fields, then refills the header checksum.
    pub(super) fn rewrite(buf: &mut [u8], f: impl FnOnce(&mut Ipv4Packet<&mut [u8]>)) {
        let mut packet = Ipv4Packet::new_unchecked(buf);
        f(&mut packet);
        packet.fill_checksum();
    }

    pub(super) fn addrs(list: &str) -> impl Iterator<Item = Ipv4Addr> + '_ {
        list.split_whitespace().map(|a| a.parse().unwrap())
    }

    #[test]
    fn test_parse() {
        let info = parse_ipv4(&PACKET_BYTES).unwrap();
        let expected = Ipv4Info {
            src: SRC,
            dst: DST,
            ttl: 64,
            protocol: 17,
            header_len: 20,
            total_len: 30,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
            has_options: false,
        };
        assert_eq!(info, expected);
        assert_eq!(info.check_addresses(), Ok(()));
        // Ethernet padding after the datagram is ignored.
        let padded = [&PACKET_BYTES[..], &[0; 16]].concat();
        assert_eq!(parse_ipv4(&padded), Ok(info));
    }

    #[test]
    fn test_parse_options() {
        let pkt = ipv4(IpProtocol::Udp, &[0x94, 0x04, 0x00, 0x00], &[1; 8]); // Router Alert
        let info = parse_ipv4(&pkt).unwrap();
        assert!(info.has_options);
        assert_eq!((info.header_len, info.total_len), (24, 32));
    }

    #[test]
    fn test_parse_truncated() {
        assert_eq!(parse_ipv4(&[]), Err(PacketError::Truncated));
        assert_eq!(parse_ipv4(&PACKET_BYTES[..19]), Err(PacketError::Truncated));
        let pkt = ipv4(IpProtocol::Udp, &[0x94, 0x04, 0x00, 0x00], &[]);
        assert_eq!(parse_ipv4(&pkt[..22]), Err(PacketError::Truncated));
    }

    #[test]
    fn test_parse_bad_version_ihl_checksum() {
        for (byte, value, error) in [
            (0, 0x65, PacketError::BadVersion),
            (0, 0x44, PacketError::BadHeaderLength),
            (11, 0x73, PacketError::BadChecksum),
        ] {
            let mut pkt = PACKET_BYTES;
            pkt[byte] = value;
            assert_eq!(parse_ipv4(&pkt), Err(error));
        }
    }

    #[test]
    fn test_parse_bad_total_length() {
        for total_len in [31, 19, 0] {
            let mut pkt = PACKET_BYTES;
            rewrite(&mut pkt, |p| p.set_total_len(total_len));
            assert_eq!(parse_ipv4(&pkt), Err(PacketError::BadTotalLength));
        }
    }

    #[test]
    fn test_martian() {
        let martians = "0.0.0.0 0.1.2.3 127.0.0.1 169.254.1.1 224.0.0.1 239.1.1.1 240.0.0.1 \
                        255.255.255.255";
        assert!(addrs(martians).all(is_martian));
        let fine = "198.18.0.1 198.19.255.255 1.0.0.0 223.255.255.255 169.253.0.1";
        assert!(!addrs(fine).any(is_martian));
        let mut info = parse_ipv4(&PACKET_BYTES).unwrap();
        info.dst = Ipv4Addr::BROADCAST;
        assert_eq!(info.check_addresses(), Err(PacketError::MartianDestination));
        info.src = Ipv4Addr::LOCALHOST;
        assert_eq!(info.check_addresses(), Err(PacketError::MartianSource));
    }

    #[test]
    fn test_decrement_ttl() {
        let mut pkt = PACKET_BYTES;
        decrement_ttl(&mut pkt);
        assert_eq!(pkt, FORWARDED_BYTES);
        // Not IPv4, or TTL 0: untouched, no panic.
        let mut short = [0x45u8; 10];
        decrement_ttl(&mut short);
        assert_eq!(short, [0x45; 10]);
        let mut zero = PACKET_BYTES;
        rewrite(&mut zero, |p| p.set_hop_limit(0));
        let before = zero;
        decrement_ttl(&mut zero);
        assert_eq!(zero, before);
    }

    #[test]
    fn test_decrement_ttl_random() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64; // xorshift: no rand in this crate
        let mut edges = 0;
        for i in 0..20_000 {
            let mut pkt = PACKET_BYTES;
            for byte in &mut pkt[..20] {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *byte = state as u8;
            }
            pkt[0] = 0x45;
            pkt[8] = pkt[8].max(2);
            rewrite(&mut pkt, |p| p.set_total_len(30));
            if i % 2 == 0 {
                // Steer the ident so that the header sums to 0xFFFF, i.e. a 0x0000 checksum,
                // after the decrement (i % 4 == 0) or before it.
                let mut probe = pkt;
                probe[8] -= u8::from(i % 4 == 0);
                probe[4..6].fill(0);
                probe[10..12].fill(0);
                let ident = !checksum::data(&probe[..20]);
                rewrite(&mut pkt, |p| p.set_ident(ident));
            }
            let mut expected = pkt;
            rewrite(&mut expected, |p| p.set_hop_limit(p.hop_limit() - 1));
            edges += usize::from(expected[10..12] == [0, 0] || pkt[10..12] == [0, 0]);
            decrement_ttl(&mut pkt);
            assert_eq!(pkt, expected, "round {i}");
            assert!(Ipv4Packet::new_checked(&pkt[..]).unwrap().verify_checksum());
        }
        assert!(edges >= 10_000, "{edges} edge cases");
    }
}
