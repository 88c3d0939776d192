//! What the engine keeps for the stack's diagnostics (`vmkping`, `nc -z`), which run as
//! applications outside it: ICMP echo replies to the stack's own identifier, with the TTL that
//! smoltcp's sockets do not report, and the stack's own packets that ARP or Neighbour
//! Discovery could not deliver ("Host is down"). Both queues are bounded and allocated once.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use crate::packet::{self, Ipv4Info};

/// ICMP identifier of the stack's echo requests ("VK"): replies to it are kept here instead
/// of going to smoltcp.
pub const ECHO_IDENT: u16 = 0x564b;
/// Echo replies kept until the application takes them.
const REPLIES: usize = 64;
/// Failed packets kept until the application takes them.
const FAILED: usize = 64;
/// Peers whose last ICMP first-fragment TTL is remembered.
const FRAG_PEERS: usize = 16;

/// An echo reply to [`ECHO_IDENT`] that reached one of our addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoReply {
    /// Its sender.
    pub from: Ipv4Addr,
    /// Its TTL on arrival.
    pub ttl: u8,
    /// Its sequence number.
    pub seq: u16,
    /// Its ICMP length (header and data).
    pub bytes: usize,
    /// The time of the turn it arrived in.
    pub at: Instant,
}

/// A packet the stack sent itself that was dropped because its next hop never answered ARP
/// (IPv4) or Neighbour Discovery (IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailedPacket {
    /// Its destination.
    pub dst: IpAddr,
    /// Its IP protocol or IPv6 next header (1 ICMP, 6 TCP, 58 ICMPv6, ...).
    pub protocol: u8,
    /// TCP/UDP source port, or the ICMP echo identifier.
    pub src_port: u16,
    /// TCP/UDP destination port, or the ICMP echo sequence number.
    pub dst_port: u16,
}

/// The queues themselves.
#[derive(Debug)]
pub(super) struct EchoTap {
    replies: VecDeque<EchoReply>,
    failed: VecDeque<FailedPacket>,
    /// TTL of the first fragment of the last fragmented ICMP datagram from each peer: the
    /// reply smoltcp reassembles has lost its header.
    frag_ttl: VecDeque<(Ipv4Addr, u8)>,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

impl EchoTap {
    pub(super) fn new() -> EchoTap {
        EchoTap {
            replies: VecDeque::with_capacity(REPLIES),
            failed: VecDeque::with_capacity(FAILED),
            frag_ttl: VecDeque::with_capacity(FRAG_PEERS),
        }
    }

    /// Keeps `pkt` if it is a whole echo reply to [`ECHO_IDENT`]; true when it was taken
    /// (it then does not go to smoltcp). A full queue leaves it to smoltcp, which drops it.
    pub(super) fn capture(&mut self, pkt: &[u8], info: &Ipv4Info, at: Instant) -> bool {
        if info.protocol != 1 || info.more_frags || info.frag_offset > 0 {
            return false;
        }
        let Some(icmp) = pkt.get(info.header_len..info.total_len) else {
            return false;
        };
        // type 0 (echo reply), code, checksum, ident, seq
        let (Some(&0), Some(ECHO_IDENT), Some(seq)) = (icmp.first(), be16(icmp, 4), be16(icmp, 6))
        else {
            return false;
        };
        if self.replies.len() >= REPLIES {
            return false;
        }
        self.replies.push_back(EchoReply {
            from: info.src,
            ttl: info.ttl,
            seq,
            bytes: icmp.len(),
            at,
        });
        true
    }

    /// Notes the TTL of the first fragment of an ICMP datagram.
    pub(super) fn note_fragment(&mut self, info: &Ipv4Info) {
        if info.protocol == 1 && info.more_frags && info.frag_offset == 0 {
            self.frag_ttl.retain(|(a, _)| *a != info.src);
            if self.frag_ttl.len() >= FRAG_PEERS {
                self.frag_ttl.pop_front();
            }
            self.frag_ttl.push_back((info.src, info.ttl));
        }
    }

    /// The TTL of the last ICMP first-fragment from `peer` (0 if none was seen).
    pub(super) fn fragment_ttl(&self, peer: Ipv4Addr) -> u8 {
        self.frag_ttl
            .iter()
            .find(|(a, _)| *a == peer)
            .map_or(0, |(_, t)| *t)
    }

    /// Records one of our packets that ARP could not deliver (the oldest record goes when
    /// the queue is full).
    pub(super) fn failed(&mut self, pkt: &[u8]) {
        let Ok(info) = packet::parse_ipv4(pkt) else {
            return;
        };
        let l4 = pkt.get(info.header_len..info.total_len).unwrap_or_default();
        let (src_port, dst_port) = match (info.protocol, l4.first()) {
            // Echo requests only: our ICMP errors are nobody's to wait for.
            (1, Some(&8)) => (be16(l4, 4), be16(l4, 6)),
            (1, _) => return,
            _ => (be16(l4, 0), be16(l4, 2)),
        };
        self.record(FailedPacket {
            dst: IpAddr::V4(info.dst),
            protocol: info.protocol,
            src_port: src_port.unwrap_or(0),
            dst_port: dst_port.unwrap_or(0),
        });
    }

    /// Records one of our IPv6 packets (fixed header, no extension header: the endpoint's and
    /// `vmkping -6`'s) that Neighbour Discovery could not deliver.
    pub(super) fn failed6(&mut self, pkt: &[u8]) {
        let (Some(h), Some(l4)) = (pkt.first_chunk::<40>(), pkt.get(40..)) else {
            return;
        };
        let dst = h[24..40]
            .first_chunk::<16>()
            .map_or(Ipv6Addr::UNSPECIFIED, |a| Ipv6Addr::from(*a));
        let (src_port, dst_port) = match (h[6], l4.first()) {
            // Echo requests only: our ICMPv6 errors are nobody's to wait for.
            (58, Some(&128)) => (be16(l4, 4), be16(l4, 6)),
            (58, _) => return,
            _ => (be16(l4, 0), be16(l4, 2)),
        };
        self.record(FailedPacket {
            dst: IpAddr::V6(dst),
            protocol: h[6],
            src_port: src_port.unwrap_or(0),
            dst_port: dst_port.unwrap_or(0),
        });
    }

    /// Keeps `f` (the oldest record goes when the queue is full).
    fn record(&mut self, f: FailedPacket) {
        if self.failed.len() >= FAILED {
            self.failed.pop_front();
        }
        self.failed.push_back(f);
    }

    /// Hands every echo reply kept so far to `f`.
    pub(super) fn take_replies(&mut self, f: impl FnMut(EchoReply)) {
        self.replies.drain(..).for_each(f);
    }

    /// Hands every failed packet recorded so far to `f`.
    pub(super) fn take_failed(&mut self, f: impl FnMut(FailedPacket)) {
        self.failed.drain(..).for_each(f);
    }
}
