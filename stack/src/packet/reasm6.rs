//! IPv6 reassembly (RFC 8200 4.5) of the datagrams that reach the stack's own addresses in
//! fragments: a kernel host sends `ping -6 -s 3000` as three fragments on a 1500-byte link,
//! and the engine answers echo itself and checks TCP checksums itself, so smoltcp's own
//! reassembly (`proto-ipv6-fragmentation`) would see only what the engine already had to put
//! together.
//!
//! Bounded: [`SLOTS`] datagrams in progress at once (the oldest given up for a new one), each
//! given up [`TIMEOUT`] after its first fragment (RFC 8200's 60 s), the unfragmentable part at
//! most [`UNFRAG_MAX`] bytes. Overlapping fragments abandon their datagram (RFC 5722).
//! Buffers are allocated once.
//!
//! A slot's buffer holds the datagram as the engine handles a received frame: room for the
//! virtio-net and Ethernet headers and the unfragmentable part (the first fragment's, its
//! Next Header field now naming the fragmentable part), then the fragmentable part at its
//! offset. So the datagram, once whole, is handed on without another copy.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use vmkstack_vmknic::eth::ETH_HDR;

use super::fragslots::Slots;
use vmkstack_vmknic::VNET_HDR_LEN;

/// Datagrams reassembled at once.
pub const SLOTS: usize = 2;
/// How long a datagram may take to arrive whole (RFC 8200 4.5).
pub const TIMEOUT: Duration = Duration::from_secs(60);
/// The longest unfragmentable part taken (fixed header and the headers before the Fragment
/// header).
pub const UNFRAG_MAX: usize = 512;
/// The largest IPv6 payload.
const MAX: usize = 65535;
/// Where the IP packet starts in a received buffer.
const IP: usize = VNET_HDR_LEN + ETH_HDR;
/// Where the fragmentable part starts in a slot's buffer.
const DATA: usize = IP + UNFRAG_MAX;
/// Which datagram a fragment belongs to (RFC 8200 4.5: source, destination, identification).
type Key = (Ipv6Addr, Ipv6Addr, u32);

/// Where a fragment sits in its packet (offsets from the start of the IPv6 header), as the
/// extension header walk found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment6 {
    /// Where the Fragment header starts: the unfragmentable part is everything before it.
    pub at: usize,
    /// The Next Header field that names the Fragment header.
    pub naming_field: usize,
    /// The Fragment header's Next Header.
    pub next_header: u8,
    /// Fragment Offset, in bytes.
    pub offset: usize,
    /// More fragments follow.
    pub more: bool,
    /// Identification.
    pub id: u32,
}

/// What became of a fragment handed to [`Reassembler6::push`].
#[derive(Debug, PartialEq, Eq)]
pub enum Reassembly6<'a> {
    /// Kept; the datagram is not whole yet.
    Pending,
    /// The datagram is whole: a buffer laid out as a received frame (zeroed virtio-net header,
    /// the first fragment's Ethernet header, the IPv6 packet without its Fragment header).
    Done(&'a mut [u8]),
    /// Not kept, with the Parameter Problem (code, pointer) RFC 8200 asks for, if any: a
    /// middle fragment not a multiple of 8 bytes (code 0 at the Payload Length), a datagram
    /// past 65,535 bytes (code 0 at the Fragment Offset), overlapping fragments or a second
    /// "last" fragment of another length (none), an unfragmentable part too long or cut.
    Invalid(Option<(u8, u32)>),
}

/// Fragments of IPv6 datagrams for the stack, put back together; see the module docs. (The
/// default has no slots and takes no fragment: a placeholder.)
#[derive(Debug, Default)]
pub struct Reassembler6 {
    /// Each slot's buffer: see the module docs; its `head` is the unfragmentable part's
    /// length.
    slots: Slots<Key>,
}

impl Reassembler6 {
    /// Empty slots (their buffers allocated now).
    pub fn new(now: Instant) -> Reassembler6 {
        Reassembler6 {
            slots: Slots::new(SLOTS, DATA + MAX, MAX, TIMEOUT, now),
        }
    }

    /// Takes the fragment in `frame` (a received buffer: virtio-net header, Ethernet header,
    /// IPv6 packet cut to its length) from `src` to `dst`, at time `now`.
    pub fn push(
        &mut self,
        frame: &[u8],
        src: Ipv6Addr,
        dst: Ipv6Addr,
        f: &Fragment6,
        now: Instant,
    ) -> Reassembly6<'_> {
        let ip = frame.get(IP..).unwrap_or_default();
        let (Some(unfrag), Some(data)) = (ip.get(..f.at), ip.get(f.at + 8..)) else {
            return Reassembly6::Invalid(None);
        };
        if f.at > UNFRAG_MAX || f.naming_field >= f.at {
            return Reassembly6::Invalid(None);
        }
        if f.more && !data.len().is_multiple_of(8) {
            return Reassembly6::Invalid(Some((0, 4)));
        }
        let end = f.offset + data.len();
        if end + (f.at - 40) > MAX {
            return Reassembly6::Invalid(Some((0, (f.at + 2) as u32)));
        }
        let Some(s) = self.slots.slot((src, dst, f.id), now) else {
            return Reassembly6::Invalid(None);
        };
        // Overlap with what arrived (a duplicate included): the datagram is abandoned.
        if s.overlaps(f.offset, end) {
            s.reset(None, now);
            return Reassembly6::Invalid(None);
        }
        if !f.more && !s.set_total(end, now) {
            return Reassembly6::Invalid(None);
        }
        if f.offset == 0 {
            // The unfragmentable part (and the frame's headers) go right before the data.
            let start = DATA - IP - f.at;
            s.buf[start..start + IP].copy_from_slice(&frame[..IP]);
            s.buf[start + IP..DATA].copy_from_slice(unfrag);
            s.head = f.at;
        }
        s.buf[DATA + f.offset..DATA + end].copy_from_slice(data);
        s.mark(f.offset, end);
        if !s.complete() {
            return Reassembly6::Pending;
        }
        let (unfrag, total) = (s.head, s.total.unwrap_or(0));
        s.finish();
        let start = DATA - IP - unfrag;
        let out = &mut s.buf[start..DATA + total];
        out[..VNET_HDR_LEN].fill(0);
        let payload = (unfrag - 40 + total) as u16;
        out[IP + 4..IP + 6].copy_from_slice(&payload.to_be_bytes());
        out[IP + f.naming_field] = f.next_header;
        Reassembly6::Done(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
    const DST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

    /// A received buffer holding the fragment of `data` at `offset` (M as `more`) of
    /// datagram `id`, upper layer 17.
    fn frag(id: u32, offset: usize, more: bool, data: &[u8]) -> (Vec<u8>, Fragment6) {
        let mut b = vec![0u8; IP];
        b[VNET_HDR_LEN + 12..VNET_HDR_LEN + 14].copy_from_slice(&0x86ddu16.to_be_bytes());
        let mut h = vec![0x60, 0, 0, 0];
        h.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
        h.extend_from_slice(&[44, 64]);
        h.extend_from_slice(&SRC.octets());
        h.extend_from_slice(&DST.octets());
        let field = ((offset / 8) as u16) << 3 | u16::from(more);
        h.extend_from_slice(&[17, 0]);
        h.extend_from_slice(&field.to_be_bytes());
        h.extend_from_slice(&id.to_be_bytes());
        h.extend_from_slice(data);
        b.extend_from_slice(&h);
        let f = Fragment6 {
            at: 40,
            naming_field: 6,
            next_header: 17,
            offset,
            more,
            id,
        };
        (b, f)
    }

    fn push<'a>(
        r: &'a mut Reassembler6,
        p: &(Vec<u8>, Fragment6),
        now: Instant,
    ) -> Reassembly6<'a> {
        r.push(&p.0, SRC, DST, &p.1, now)
    }

    #[test]
    fn test_reassemble_out_of_order() {
        let now = Instant::now();
        let data: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
        let pieces = [
            frag(9, 1448, true, &data[1448..2896]),
            frag(9, 2896, false, &data[2896..]),
            frag(9, 0, true, &data[..1448]),
        ];
        let mut r = Reassembler6::new(now);
        assert_eq!(push(&mut r, &pieces[0], now), Reassembly6::Pending);
        assert_eq!(push(&mut r, &pieces[1], now), Reassembly6::Pending);
        let Reassembly6::Done(whole) = push(&mut r, &pieces[2], now) else {
            panic!("not whole")
        };
        let ip = &whole[IP..];
        assert_eq!(ip.len(), 40 + 3000);
        assert_eq!(u16::from_be_bytes([ip[4], ip[5]]), 3000);
        assert_eq!(ip[6], 17, "the Fragment header is gone");
        assert_eq!(&ip[8..24], &SRC.octets());
        assert_eq!(&ip[40..], &data[..]);
        assert_eq!(&whole[VNET_HDR_LEN + 12..VNET_HDR_LEN + 14], &[0x86, 0xdd]);
    }

    #[test]
    fn test_refusals_bounds_and_timeout() {
        let now = Instant::now();
        let mut r = Reassembler6::new(now);
        // A middle fragment not a multiple of 8 bytes: Parameter Problem at Payload Length.
        assert_eq!(
            push(&mut r, &frag(1, 0, true, &[0; 12]), now),
            Reassembly6::Invalid(Some((0, 4)))
        );
        // Past 65,535 bytes: Parameter Problem at the Fragment Offset.
        assert_eq!(
            push(&mut r, &frag(1, 65528, false, &[0; 16]), now),
            Reassembly6::Invalid(Some((0, 42)))
        );
        // Overlap (a duplicate too) abandons the datagram: its rest never completes it.
        assert_eq!(
            push(&mut r, &frag(2, 0, true, &[0; 16]), now),
            Reassembly6::Pending
        );
        assert_eq!(
            push(&mut r, &frag(2, 8, true, &[0; 16]), now),
            Reassembly6::Invalid(None)
        );
        assert_eq!(
            push(&mut r, &frag(2, 16, false, &[0; 8]), now),
            Reassembly6::Pending
        );
        // Two datagrams at once; a third gives up the oldest.
        let later = now + Duration::from_millis(1);
        assert_eq!(
            push(&mut r, &frag(3, 8, false, &[3; 8]), later),
            Reassembly6::Pending
        );
        assert_eq!(
            push(&mut r, &frag(4, 8, false, &[4; 8]), later),
            Reassembly6::Pending
        );
        assert!(matches!(
            push(&mut r, &frag(4, 0, true, &[4; 8]), later),
            Reassembly6::Done(_)
        ));
        // Too late: datagram 3's first part arrives after the timeout and starts it over.
        let late = later + TIMEOUT + Duration::from_secs(1);
        assert_eq!(
            push(&mut r, &frag(3, 0, true, &[3; 8]), late),
            Reassembly6::Pending
        );
    }
}
