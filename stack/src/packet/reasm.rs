//! IPv4 reassembly (RFC 791, RFC 815's idea of tracking what arrived) of the TCP datagrams
//! that reach the stack's own addresses in fragments. smoltcp checks no TCP checksum (the
//! engine does, so that super-frames from the kernel behind a TAP are taken without a pass
//! over their bytes); a fragment cannot be checked alone, so the engine puts the datagram
//! together here first and checks the whole.
//!
//! Bounded: [`SLOTS`] datagrams in progress at once, the oldest given up for a new one, and
//! each given up after [`TIMEOUT`] (RFC 1122 suggests 60 to 120 s for a host; TCP
//! retransmits long before that). Buffers are allocated once.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use smoltcp::wire::Ipv4Packet;

use super::fragslots::Slots;
use super::Ipv4Info;

/// Datagrams reassembled at once.
pub const SLOTS: usize = 2;
/// How long a datagram may take to arrive whole.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// The largest datagram (IPv4 total length).
const MAX: usize = 65535;

/// Which datagram a fragment belongs to (RFC 791: source, destination, protocol and
/// identification; the protocol is always TCP here).
type Key = (Ipv4Addr, Ipv4Addr, u16);

/// What became of a fragment handed to [`Reassembler::push`].
#[derive(Debug, PartialEq, Eq)]
pub enum Reassembly<'a> {
    /// Kept; the datagram is not whole yet.
    Pending,
    /// The datagram is whole: its header (MF and offset cleared, total length and header
    /// checksum set) and payload.
    Done(&'a [u8]),
    /// Not kept: it cannot belong to a valid datagram (beyond 65,535 bytes, a middle
    /// fragment not a multiple of 8 bytes, a second "last" fragment of another length).
    Invalid,
}

/// Fragments of TCP datagrams for the stack, put back together; see the module docs.
#[derive(Debug)]
pub struct Reassembler {
    /// Each slot's buffer: the IP header (from the first fragment), then the payload at its
    /// offset after the longest header a first fragment may bring (60 bytes).
    slots: Slots<Key>,
}

impl Reassembler {
    /// Empty slots, as many as a datagram may be reassembled at once (their buffers allocated
    /// now).
    pub fn new(now: Instant) -> Reassembler {
        Reassembler {
            slots: Slots::new(SLOTS, 60 + MAX, MAX, TIMEOUT, now),
        }
    }

    /// Takes the fragment `pkt` (`info` its parsed header) at time `now`.
    pub fn push(&mut self, pkt: &[u8], info: &Ipv4Info, now: Instant) -> Reassembly<'_> {
        let hl = info.header_len;
        let (Some(header), Some(payload)) = (pkt.get(..hl), pkt.get(hl..info.total_len)) else {
            return Reassembly::Invalid;
        };
        let offset = usize::from(info.frag_offset);
        let end = offset + payload.len();
        if end + hl > MAX || (info.more_frags && !payload.len().is_multiple_of(8)) {
            return Reassembly::Invalid;
        }
        let key = (info.src, info.dst, u16::from_be_bytes([pkt[4], pkt[5]]));
        let Some(s) = self.slots.slot(key, now) else {
            return Reassembly::Invalid;
        };
        if !info.more_frags && !s.set_total(end, now) {
            return Reassembly::Invalid;
        }
        if offset == 0 {
            s.buf[..hl].copy_from_slice(header);
            s.head = hl;
        }
        s.buf[60 + offset..60 + end].copy_from_slice(payload);
        s.mark(offset, end);
        if !s.complete() {
            return Reassembly::Pending;
        }
        let (hl, total) = (s.head, s.total.unwrap_or(0));
        s.finish();
        // The header moves up against the payload.
        s.buf.copy_within(..hl, 60 - hl);
        let out = &mut s.buf[60 - hl..60 + total];
        let mut ip = Ipv4Packet::new_unchecked(&mut *out);
        ip.set_more_frags(false);
        ip.set_frag_offset(0);
        ip.set_total_len((hl + total) as u16);
        ip.fill_checksum();
        Reassembly::Done(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::tests::{ipv4, rewrite};
    use crate::packet::{fragment, parse_ipv4};
    use smoltcp::wire::IpProtocol;

    /// A TCP datagram with `n` payload bytes, IP ID `id`, DF clear.
    fn datagram(n: usize, id: u16) -> Vec<u8> {
        let payload: Vec<u8> = (0..20 + n).map(|i| (i * 13 + 7) as u8).collect();
        let mut pkt = ipv4(IpProtocol::Tcp, &[], &payload);
        rewrite(&mut pkt, |p| {
            p.set_ident(id);
            p.set_dont_frag(false);
        });
        pkt
    }

    fn pieces(pkt: &[u8], mtu: u16) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut scratch = vec![0; 9216];
        fragment(pkt, mtu, &mut scratch, |f| out.push(f.to_vec())).unwrap();
        out
    }

    fn push<'a>(r: &'a mut Reassembler, f: &[u8], now: Instant) -> Reassembly<'a> {
        let info = parse_ipv4(f).unwrap();
        r.push(f, &info, now)
    }

    #[test]
    fn test_reassemble_in_any_order() {
        let now = Instant::now();
        let pkt = datagram(3000, 7);
        let mut frags = pieces(&pkt, 576);
        assert!(frags.len() > 4);
        frags.reverse();
        frags.swap(1, 3);
        let mut r = Reassembler::new(now);
        let last = frags.pop().unwrap();
        for f in &frags {
            assert_eq!(push(&mut r, f, now), Reassembly::Pending);
        }
        // A duplicate changes nothing.
        assert_eq!(push(&mut r, &frags[0], now), Reassembly::Pending);
        match push(&mut r, &last, now) {
            Reassembly::Done(d) => assert_eq!(d, &pkt[..]),
            other => panic!("{other:?}"),
        }
        // The slot is free again: the same fragments make the datagram once more.
        for f in &frags {
            assert_eq!(push(&mut r, f, now), Reassembly::Pending);
        }
        assert!(matches!(push(&mut r, &last, now), Reassembly::Done(d) if d == &pkt[..]));
    }

    #[test]
    fn test_interleaved_datagrams_and_bounds() {
        let now = Instant::now();
        let (a, b, c) = (datagram(2000, 1), datagram(2000, 2), datagram(2000, 3));
        let (fa, fb, fc) = (pieces(&a, 576), pieces(&b, 576), pieces(&c, 576));
        let mut r = Reassembler::new(now);
        assert_eq!(push(&mut r, &fa[0], now), Reassembly::Pending);
        let later = now + Duration::from_millis(1);
        assert_eq!(push(&mut r, &fb[0], later), Reassembly::Pending);
        // A third datagram takes the oldest slot: a's first fragment is lost.
        assert_eq!(push(&mut r, &fc[0], later), Reassembly::Pending);
        for f in &fa[1..] {
            assert_eq!(push(&mut r, f, later), Reassembly::Pending);
        }
        for f in &fb[1..fb.len() - 1] {
            assert_eq!(push(&mut r, f, later), Reassembly::Pending);
        }
        assert!(
            matches!(push(&mut r, &fb[fb.len() - 1], later), Reassembly::Done(d) if d == &b[..])
        );
        // Too late: c's slot times out and its rest starts over (and never completes).
        let late = later + TIMEOUT + Duration::from_secs(1);
        for f in &fc[1..] {
            assert_eq!(push(&mut r, f, late), Reassembly::Pending);
        }
    }

    #[test]
    fn test_invalid_fragments() {
        let now = Instant::now();
        let mut r = Reassembler::new(now);
        // A middle fragment whose payload is not a multiple of 8 bytes.
        let mut f = datagram(13, 9);
        rewrite(&mut f, |p| p.set_more_frags(true));
        assert_eq!(push(&mut r, &f, now), Reassembly::Invalid);
        // Beyond 65,535 bytes.
        let mut f = datagram(1000, 9);
        rewrite(&mut f, |p| p.set_frag_offset(65000));
        assert_eq!(push(&mut r, &f, now), Reassembly::Invalid);
        // Two last fragments that disagree on the length.
        let mut f1 = datagram(100, 10);
        rewrite(&mut f1, |p| p.set_frag_offset(800));
        let mut f2 = datagram(100, 10);
        rewrite(&mut f2, |p| p.set_frag_offset(1600));
        assert_eq!(push(&mut r, &f1, now), Reassembly::Pending);
        assert_eq!(push(&mut r, &f2, now), Reassembly::Invalid);
    }
}
