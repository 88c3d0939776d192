//! The smoltcp side of a netstack: a `Medium::Ip` device backed by two fixed rings of packet
//! slots. The data plane pushes IP packets addressed to the stack into `rx`; smoltcp writes the
//! packets it sends into `tx`, which the routing core drains. Slots are allocated once.

use std::num::NonZeroUsize;

use smoltcp::phy::{self, Checksum, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// A fixed ring of packets (no allocation after `new`): up to `count` packets of at most
/// `max` bytes each, stored one after the other in one buffer, so that a few 64 KiB
/// super-frames and many small packets share the same memory.
#[derive(Debug)]
pub struct Ring {
    data: Box<[u8]>,
    /// Start and length of each packet held, the oldest at `head`.
    slots: Box<[(usize, usize)]>,
    /// A number kept with each packet (the TCP segment size a large segment is to be cut
    /// into; 0: none).
    tags: Box<[u16]>,
    max: usize,
    head: usize,
    len: usize,
    /// Where the last [`Ring::reserve`] put its region: start and length.
    reserved: Option<(usize, usize)>,
}

impl Ring {
    /// `count` packets of at most `slot` bytes each: whenever fewer than `count` are held,
    /// one more fits, however the others lie. (`count + 1` slots' bytes: with at most
    /// `count - 1` packets held, the free bytes are two slots' worth in two pieces, or, once
    /// the ring wrapped, more than one slot's worth in one piece beside a gap smaller than a
    /// slot at the end.)
    pub fn new(count: usize, slot: usize) -> Ring {
        Ring::with_bytes(count, (count + 1) * slot, slot)
    }

    /// At most `count` packets of at most `max` bytes each, in `bytes` bytes of storage.
    pub fn with_bytes(count: usize, bytes: usize, max: usize) -> Ring {
        Ring {
            data: vec![0; bytes].into_boxed_slice(),
            slots: vec![(0, 0); count.max(1)].into_boxed_slice(),
            tags: vec![0; count.max(1)].into_boxed_slice(),
            max: max.min(bytes),
            head: 0,
            len: 0,
            reserved: None,
        }
    }

    /// Packets waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when no more packets can be held (however small).
    pub fn is_full(&self) -> bool {
        self.len >= self.slots.len()
    }

    /// How many more packets may be held (if their bytes fit).
    pub fn free(&self) -> usize {
        self.slots.len() - self.len
    }

    /// The largest packet it holds.
    pub fn slot_size(&self) -> usize {
        self.max
    }

    /// Where a packet of `len` bytes would go: after the newest packet, or at the start of
    /// the buffer when it does not fit at the end and the oldest has moved on (the bytes left
    /// at the end stay unused until the oldest packet before them is gone). Every packet
    /// takes at least one byte, so that no two start at the same place and the newest lies
    /// before the oldest exactly when the ring has wrapped.
    fn place(&self, len: usize) -> Option<usize> {
        if self.is_full() || len > self.max {
            return None;
        }
        let len = len.max(1);
        if self.len == 0 {
            return (len <= self.data.len()).then_some(0);
        }
        let n = self.slots.len();
        let (first, _) = self.slots[self.head];
        let (last, last_len) = self.slots[(self.head + self.len - 1) % n];
        let end = last + last_len.max(1);
        if last >= first {
            // Free: [end, capacity) and [0, first).
            if end + len <= self.data.len() {
                Some(end)
            } else {
                (len <= first).then_some(0)
            }
        } else {
            // Wrapped: free is [end, first).
            (end + len <= first).then_some(end)
        }
    }

    /// True when a packet of `len` bytes would fit now.
    pub fn fits(&self, len: usize) -> bool {
        self.place(len).is_some()
    }

    /// Copies `pkt` into the ring. False (and nothing stored) when it is full or the packet
    /// is larger than [`Ring::slot_size`].
    pub fn push(&mut self, pkt: &[u8]) -> bool {
        self.push_with(pkt.len(), |buf| buf.copy_from_slice(pkt))
    }

    /// Lets `fill` write `len` bytes into the ring.
    pub fn push_with<R>(&mut self, len: usize, fill: impl FnOnce(&mut [u8]) -> R) -> bool {
        match self.reserve(len) {
            Some(buf) => {
                fill(buf);
                self.commit(len);
                true
            }
            None => false,
        }
    }

    /// `len` bytes of room for the next packet, if it fits. Nothing is stored until
    /// [`Ring::commit`].
    pub fn reserve(&mut self, len: usize) -> Option<&mut [u8]> {
        let start = self.place(len);
        self.reserved = start.map(|s| (s, len));
        let start = start?;
        let buf = self.data.get_mut(start..start + len)?;
        // Unit tests see a region full of junk, not what an earlier packet left there: code
        // that relies on stale bytes (a header it forgot to write) fails them.
        #[cfg(test)]
        buf.fill(0xa5);
        Some(buf)
    }

    /// Stores the first `len` bytes of the region that [`Ring::reserve`] returned as the
    /// newest packet (nothing if none was reserved or `len` exceeds it).
    pub fn commit(&mut self, len: usize) {
        self.commit_tagged(len, 0);
    }

    /// [`Ring::commit`], keeping `tag` with the packet (see [`Ring::front_tag`]).
    pub fn commit_tagged(&mut self, len: usize, tag: u16) {
        let Some((start, room)) = self.reserved.take() else {
            return;
        };
        if self.is_full() || len > room {
            return;
        }
        let n = self.slots.len();
        let at = (self.head + self.len) % n;
        self.slots[at] = (start, len);
        self.tags[at] = tag;
        self.len += 1;
    }

    /// Forgets what the last [`Ring::reserve`] set aside (nothing was stored).
    pub fn cancel(&mut self) {
        self.reserved = None;
    }

    /// The tag kept with the oldest packet (0 when empty or untagged).
    pub fn front_tag(&self) -> u16 {
        if self.is_empty() {
            0
        } else {
            self.tags[self.head]
        }
    }

    /// The oldest packet.
    pub fn front(&self) -> Option<&[u8]> {
        if self.is_empty() {
            return None;
        }
        let (start, len) = self.slots[self.head];
        self.data.get(start..start + len)
    }

    /// The oldest packet, to change in place.
    pub fn front_mut(&mut self) -> Option<&mut [u8]> {
        if self.is_empty() {
            return None;
        }
        let (start, len) = self.slots[self.head];
        self.data.get_mut(start..start + len)
    }

    /// Drops the oldest packet.
    pub fn pop(&mut self) {
        if !self.is_empty() {
            self.head = (self.head + 1) % self.slots.len();
            self.len -= 1;
        }
    }
}

/// The largest IPv4 datagram.
pub const MAX_DATAGRAM: usize = 65535;

/// Bytes kept free before each packet smoltcp writes into the transmit ring: room for the
/// virtio-net and Ethernet headers it leaves with, so that a super-frame goes to the TAP from
/// where smoltcp built it, without a copy.
pub const TX_HEADROOM: usize = crate::packet::COALESCE_HEADROOM;

/// The device smoltcp polls.
#[derive(Debug)]
pub struct IpDevice {
    /// Packets for the stack's own addresses, waiting for smoltcp.
    pub rx: Ring,
    /// Packets smoltcp sent, waiting for the routing core, each after [`TX_HEADROOM`] bytes.
    pub tx: Ring,
    /// MTU smoltcp sizes its packets for (the smallest vmknic MTU, so that TCP's MSS fits
    /// every egress vmknic).
    pub mtu: usize,
    /// smoltcp may send TCP segments larger than the MSS (up to [`MAX_DATAGRAM`], over IPv4
    /// and IPv6), each tagged in `tx` with the segment size it is to be cut into: what TSO
    /// and TSO6 are to a NIC. Set
    /// with offloads on, before the smoltcp `Interface` is made (it reads the capabilities
    /// once).
    pub tso: bool,
}

impl IpDevice {
    /// Rings of `count` packets of `slot` bytes (the largest vmknic MTU) each way; both
    /// also take whole TCP super-frames (up to the largest IPv4 datagram) in the same bytes:
    /// smoltcp handles a received one as one segment, and with [`IpDevice::tso`] builds
    /// them itself.
    pub fn new(count: usize, slot: usize, mtu: usize) -> IpDevice {
        IpDevice {
            rx: Ring::with_bytes(count, count * slot, MAX_DATAGRAM),
            tx: Ring::with_bytes(count, (count + 1) * slot, TX_HEADROOM + MAX_DATAGRAM),
            mtu,
            tso: false,
        }
    }
}

/// True when the transmit ring can take whatever smoltcp may write next: any packet while
/// a slot is free (they are at most a slot's size, headroom included), a largest datagram
/// with `tso` (a little more than [`tso_size`]).
fn tx_room(tx: &Ring, tso: bool) -> bool {
    !tx.is_full() && (!tso || tx.fits(TX_HEADROOM + MAX_DATAGRAM))
}

/// TCP payloads from this size on may leave from smoltcp's socket buffer without being
/// copied into the transmit ring ([`DirectSend`]); smaller ones cost less to copy than a
/// second piece in the write.
pub const GATHER_MIN: usize = 8 * 1024;

/// Sends a large TCP segment of the stack's own straight to the wire, its payload from where
/// it lies in smoltcp's socket buffer (a gathering write), while smoltcp builds it: the
/// engine's egress, lent to smoltcp for one poll ([`Gathering`]).
pub trait DirectSend {
    /// Sends the segment whose IP and TCP headers fill `head` after [`TX_HEADROOM`] bytes
    /// (room for the headers it leaves with) and whose payload is `payload`, to be cut into
    /// `gso`-byte segments, if it can leave now exactly as it would from the transmit ring.
    /// True when it was handled (sent, or dropped and counted as from the ring); false, with
    /// `head` unchanged, when it must go through the ring.
    fn send_direct(&mut self, head: &mut [u8], payload: &[u8], gso: u16) -> bool;
}

/// Hands one received packet to smoltcp.
pub struct RxToken<'a>(&'a mut Ring);
/// Lets smoltcp write one packet.
pub struct TxToken<'a> {
    ring: &'a mut Ring,
    /// The segment size smoltcp asked a large TCP segment to be cut into (0: none).
    gso: u16,
    /// Where a large TCP segment may go instead of the ring (see [`DirectSend`]).
    direct: Option<&'a mut dyn DirectSend>,
}

impl<'a> TxToken<'a> {
    fn new(ring: &'a mut Ring) -> TxToken<'a> {
        TxToken {
            ring,
            gso: 0,
            direct: None,
        }
    }
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let r = f(self.0.front().unwrap_or(&[]));
        self.0.pop();
        r
    }
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        match self.ring.reserve(TX_HEADROOM + len) {
            Some(buf) => {
                let r = f(&mut buf[TX_HEADROOM..]);
                self.ring.commit_tagged(TX_HEADROOM + len, self.gso);
                r
            }
            // `transmit` hands out a token only when the ring has room for the largest packet
            // smoltcp may write (see `tx_room`): this cannot happen with a correctly sized
            // ring. Let smoltcp build the packet in scratch space and drop it.
            None => f(&mut vec![0; len]),
        }
    }

    fn set_meta(&mut self, meta: phy::PacketMeta) {
        self.gso = meta.segmentation_offload_size.map_or(0, |s| s.get());
    }

    /// smoltcp's TCP segment, its payload still in the socket's buffer: a large one (a
    /// super-frame) leaves from there when nothing waits in the ring before it and the
    /// engine can send it now ([`DirectSend`]); anything else is copied into the ring whole,
    /// as [`phy::TxToken::consume`] would.
    fn consume_gather<R, F: FnOnce(&mut [u8]) -> R>(
        self,
        hdr_len: usize,
        payload: &[u8],
        f: F,
    ) -> R {
        let len = TX_HEADROOM + hdr_len + payload.len();
        // Only with an empty ring: a packet queued before it must not be overtaken.
        let first = self.ring.is_empty();
        let Some(buf) = self.ring.reserve(len) else {
            // As in `consume`: cannot happen with a correctly sized ring.
            return f(&mut vec![0; hdr_len]);
        };
        let (head, tail) = buf.split_at_mut(TX_HEADROOM + hdr_len);
        let r = f(&mut head[TX_HEADROOM..]);
        let direct = first && self.gso > 0 && payload.len() >= GATHER_MIN;
        if let Some(d) = self.direct.filter(|_| direct) {
            if d.send_direct(head, payload, self.gso) {
                self.ring.cancel();
                return r;
            }
        }
        tail.copy_from_slice(payload);
        self.ring.commit_tagged(len, self.gso);
        r
    }
}

/// The device for one poll of smoltcp that may send large TCP segments of its own straight
/// to the wire ([`DirectSend`]); everything else goes through `dev`'s rings as with
/// [`IpDevice`] itself.
pub struct Gathering<'a> {
    /// The device.
    pub dev: &'a mut IpDevice,
    /// The engine's egress.
    pub direct: &'a mut dyn DirectSend,
}

impl phy::Device for Gathering<'_> {
    type RxToken<'b>
        = RxToken<'b>
    where
        Self: 'b;
    type TxToken<'b>
        = TxToken<'b>
    where
        Self: 'b;

    fn receive(&mut self, _now: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        let dev = &mut *self.dev;
        if dev.rx.is_empty() || !tx_room(&dev.tx, dev.tso) {
            return None;
        }
        let tx = TxToken {
            ring: &mut dev.tx,
            gso: 0,
            direct: Some(&mut *self.direct),
        };
        Some((RxToken(&mut dev.rx), tx))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken<'_>> {
        let dev = &mut *self.dev;
        if !tx_room(&dev.tx, dev.tso) {
            return None;
        }
        Some(TxToken {
            ring: &mut dev.tx,
            gso: 0,
            direct: Some(&mut *self.direct),
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        capabilities(self.dev.mtu, self.dev.tso)
    }
}

/// A device that hands smoltcp one packet straight from the caller's buffer, without the copy
/// into the receive ring, for `Interface::poll_ingress_single`; what smoltcp answers at once
/// (an ACK to an out-of-order segment, a reset) goes to the transmit ring as usual.
pub struct OnePacket<'a> {
    /// The packet, until smoltcp took it.
    pub pkt: Option<&'a [u8]>,
    /// The device's transmit ring.
    pub tx: &'a mut Ring,
    /// The device's MTU.
    pub mtu: usize,
    /// The device's [`IpDevice::tso`].
    pub tso: bool,
}

/// Hands smoltcp a packet in the caller's buffer.
pub struct SliceToken<'a>(&'a [u8]);

impl phy::RxToken for SliceToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

impl phy::Device for OnePacket<'_> {
    type RxToken<'b>
        = SliceToken<'b>
    where
        Self: 'b;
    type TxToken<'b>
        = TxToken<'b>
    where
        Self: 'b;

    fn receive(&mut self, _now: Instant) -> Option<(SliceToken<'_>, TxToken<'_>)> {
        if !tx_room(self.tx, self.tso) {
            return None;
        }
        let pkt = self.pkt.take()?;
        Some((SliceToken(pkt), TxToken::new(&mut *self.tx)))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken<'_>> {
        tx_room(self.tx, self.tso).then(|| TxToken::new(&mut *self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        capabilities(self.mtu, self.tso)
    }
}

/// What smoltcp may expect of the device: IP packets of `mtu` bytes, which checksums it
/// computes and checks, and with `tso` TCP segments (IPv4 and IPv6) up to nearly 64 KiB, which the
/// engine hands whole to an offloading TAP (the kernel behind it cuts them) or cuts itself.
/// smoltcp keeps its congestion window and MSS in real segments either way: only the
/// packets are larger.
fn capabilities(mtu: usize, tso: bool) -> DeviceCapabilities {
    let mut caps = DeviceCapabilities::default();
    caps.medium = Medium::Ip;
    caps.max_transmission_unit = mtu;
    let mut cs = ChecksumCapabilities::default();
    // The engine checks every IPv4 header it hands over (ingress) and every TCP checksum
    // that the kernel behind a TAP did not vouch for (local delivery), and fills in the
    // TCP checksum of each segment that leaves as it is (merged into a super-frame, it
    // gets a partial one instead): smoltcp checks only UDP's and ICMP's.
    cs.ipv4 = Checksum::Tx;
    cs.tcp = Checksum::None;
    caps.checksum = cs;
    if tso {
        caps.segmentation.tcpv4 = NonZeroUsize::new(tso_size(mtu));
        caps.segmentation.tcpv6 = NonZeroUsize::new(tso_size6(mtu));
    }
    caps
}

/// Bytes of GSO room a Linux device leaves below its `gso_max_size` (64 KiB) for the headers
/// in front of the IP packet: a super-frame whose IP packet reaches 64 KiB with its Ethernet
/// header is not handed on as one by the kernel behind the TAP but cut (copied) in software
/// at its next hop (`gso_features_check`), which costs more than the segments it saves.
const GSO_SLACK: usize = 512;

/// The largest TCP/IPv4 packet smoltcp builds with TSO on an `mtu`-byte device: a whole
/// number of segments of the MSS that MTU allows (no short segment at the end of each
/// super-frame when the peer's MSS is the same), its length with an Ethernet header well
/// below 64 KiB (512 bytes of slack).
pub fn tso_size(mtu: usize) -> usize {
    tso_size_with(mtu, 20 + 20)
}

/// [`tso_size`] for TCP/IPv6 (a 40-byte IP header): 45 segments of 1440 bytes at MTU 1500.
pub fn tso_size6(mtu: usize) -> usize {
    tso_size_with(mtu, 40 + 20)
}

/// The largest TCP packet of whole `mtu - headers`-byte segments below 64 KiB less the slack
/// (`headers`: IP and TCP headers).
fn tso_size_with(mtu: usize, headers: usize) -> usize {
    let room = 65536 - GSO_SLACK - headers;
    let mss = mtu.saturating_sub(headers).clamp(1, room);
    headers + room / mss * mss
}

impl phy::Device for IpDevice {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        if self.rx.is_empty() || !tx_room(&self.tx, self.tso) {
            return None;
        }
        Some((RxToken(&mut self.rx), TxToken::new(&mut self.tx)))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken<'_>> {
        tx_room(&self.tx, self.tso).then(|| TxToken::new(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        capabilities(self.mtu, self.tso)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_tso_size_is_whole_segments_below_64_kib() {
        // 44 segments of 1460 bytes, 7 of 8960: with the Ethernet header, far enough below
        // the 64 KiB at which the kernel would cut a super-frame in software.
        assert_eq!(tso_size(1500), 40 + 44 * 1460);
        assert_eq!(tso_size(9000), 40 + 7 * 8960);
        // IPv6: 45 segments of 1440 bytes, 7 of 8940.
        assert_eq!(tso_size6(1500), 60 + 45 * 1440);
        assert_eq!(tso_size6(9000), 60 + 7 * 8940);
        for mtu in [68, 576, 1280, 1500, 4000, 9000, 65535] {
            for n in [tso_size(mtu), tso_size6(mtu)] {
                assert!(n <= 65536 - GSO_SLACK && n > mtu.min(32768), "{mtu}: {n}");
            }
        }
    }

    #[test]
    fn test_capabilities_offer_tso_for_both_families() {
        let caps = capabilities(1500, true);
        let seg = |n: Option<NonZeroUsize>| n.map_or(0, NonZeroUsize::get);
        assert_eq!(seg(caps.segmentation.tcpv4), tso_size(1500));
        assert_eq!(seg(caps.segmentation.tcpv6), tso_size6(1500));
        let plain = capabilities(1500, false);
        assert_eq!(
            (plain.segmentation.tcpv4, plain.segmentation.tcpv6),
            (None, None)
        );
    }

    #[test]
    fn test_ring_fifo_and_bounds() {
        let mut r = Ring::new(2, 4);
        assert!(r.push(&[1, 2]));
        assert!(r.push(&[3]));
        assert!(!r.push(&[4]), "full");
        assert_eq!(r.front(), Some(&[1u8, 2][..]));
        r.pop();
        assert!(r.push(&[5, 6, 7, 8]));
        assert!(!r.push(&[0; 5]), "larger than a slot");
        assert_eq!(r.front(), Some(&[3u8][..]));
        r.pop();
        assert_eq!(r.front(), Some(&[5u8, 6, 7, 8][..]));
        r.pop();
        assert!(r.is_empty());
        r.pop();
        assert!(r.front().is_none());
    }

    #[test]
    fn test_ring_of_mixed_sizes_wraps_and_never_overlaps() {
        // 4 packets, 10 bytes, each at most 8.
        let mut r = Ring::with_bytes(4, 10, 8);
        assert!(!r.fits(9), "larger than the largest");
        assert!(r.push(&[1; 6]));
        assert!(!r.push(&[2; 5]), "5 more do not fit behind 6 in 10");
        assert!(r.push(&[2; 4]));
        assert!(!r.fits(1), "the bytes are used up");
        r.pop();
        // The oldest left [0, 6): a packet of up to 6 goes to the front.
        assert!(r.fits(6) && !r.fits(7));
        assert!(r.push(&[3; 5]));
        assert!(!r.fits(2), "wrapped: only [5, 6) is free");
        assert!(r.push(&[4; 1]));
        assert_eq!(r.front(), Some(&[2u8; 4][..]));
        r.pop();
        assert_eq!(r.front(), Some(&[3u8; 5][..]));
        r.pop();
        assert_eq!(r.front(), Some(&[4u8; 1][..]));
        r.pop();
        assert!(r.is_empty() && r.fits(8));
    }

    /// Pseudo-random pushes (of 0..=`max` bytes) and pops on `r`, checked against a queue of
    /// copies: every packet comes out as it went in, in order; no two held share a byte; a
    /// push is refused only when the slots are used up or the free bytes are too few (with
    /// `uniform`, only when the slots are used up). The free bytes lie in at most two pieces,
    /// or in one with a gap shorter than `max` left at the end when the ring wrapped.
    fn check_ring(mut r: Ring, count: usize, bytes: usize, max: usize, uniform: bool) {
        let mut model: std::collections::VecDeque<Vec<u8>> = Default::default();
        let mut x: u32 = 12345;
        for n in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if x.is_multiple_of(3) {
                assert_eq!(r.front(), model.front().map(|v| &v[..]));
                r.pop();
                model.pop_front();
                continue;
            }
            let len = (x >> 8) as usize % (max + 1);
            let pkt: Vec<u8> = (0..len).map(|k| (k as u32 + n) as u8).collect();
            let held: usize = model.iter().map(|p| p.len().max(1)).sum();
            if r.push(&pkt) {
                model.push_back(pkt);
                let mut spans: Vec<(usize, usize)> =
                    (0..r.len).map(|i| r.slots[(r.head + i) % count]).collect();
                spans.sort_unstable();
                let apart = spans.windows(2).all(|w| w[0].0 + w[0].1.max(1) <= w[1].0);
                assert!(apart, "{spans:?}");
            } else {
                let too_few = !uniform && held + 2 * len.max(1) + max > bytes;
                assert!(
                    model.len() == count || too_few,
                    "refused {len} bytes with {held} bytes in {} packets",
                    model.len()
                );
            }
        }
    }

    #[test]
    fn test_ring_against_a_queue_of_copies() {
        check_ring(Ring::with_bytes(8, 300, 120), 8, 300, 120, false);
        // Uniform slots: one more always fits while a slot is free.
        check_ring(Ring::new(8, 37), 8, 9 * 37, 37, true);
    }

    #[test]
    fn test_ring_reserve_then_commit_less() {
        let mut r = Ring::new(2, 16);
        let Some(buf) = r.reserve(16) else {
            panic!("room for a slot")
        };
        buf[..3].copy_from_slice(b"abc");
        r.commit(3);
        assert_eq!(r.front(), Some(&b"abc"[..]));
        r.commit(3);
        assert_eq!(r.len(), 1, "a commit without a reservation stores nothing");
    }
}
