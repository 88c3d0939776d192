//! The smoltcp side of a netstack: a `Medium::Ip` device backed by two fixed rings of packet
//! slots. The data plane pushes IP packets addressed to the stack into `rx`; smoltcp writes the
//! packets it sends into `tx`, which the routing core drains. Slots are allocated once.

use smoltcp::phy::{self, Checksum, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// A fixed ring of packet slots (no allocation after `new`).
#[derive(Debug)]
pub struct Ring {
    data: Box<[u8]>,
    lens: Box<[usize]>,
    slot: usize,
    head: usize,
    len: usize,
}

impl Ring {
    /// `count` slots of `slot` bytes each.
    pub fn new(count: usize, slot: usize) -> Ring {
        Ring {
            data: vec![0; count * slot].into_boxed_slice(),
            lens: vec![0; count].into_boxed_slice(),
            slot,
            head: 0,
            len: 0,
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

    /// True when no slot is free.
    pub fn is_full(&self) -> bool {
        self.len >= self.lens.len()
    }

    /// Free slots.
    pub fn free(&self) -> usize {
        self.lens.len() - self.len
    }

    /// Bytes per slot.
    pub fn slot_size(&self) -> usize {
        self.slot
    }

    /// Copies `pkt` into the next free slot. False (and nothing stored) when the ring is full
    /// or the packet is larger than a slot.
    pub fn push(&mut self, pkt: &[u8]) -> bool {
        self.push_with(pkt.len(), |buf| buf.copy_from_slice(pkt))
    }

    /// Lets `fill` write `len` bytes into the next free slot.
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

    /// The next free slot's first `len` bytes, if a slot is free and large enough. Nothing is
    /// stored until [`Ring::commit`].
    pub fn reserve(&mut self, len: usize) -> Option<&mut [u8]> {
        if self.is_full() || len > self.slot {
            return None;
        }
        let idx = (self.head + self.len) % self.lens.len();
        let start = idx * self.slot;
        self.data.get_mut(start..start + len)
    }

    /// Stores the packet written into the slot that [`Ring::reserve`] returned.
    pub fn commit(&mut self, len: usize) {
        if self.is_full() || len > self.slot {
            return;
        }
        let idx = (self.head + self.len) % self.lens.len();
        self.lens[idx] = len;
        self.len += 1;
    }

    /// The oldest packet.
    pub fn front(&self) -> Option<&[u8]> {
        if self.is_empty() {
            return None;
        }
        let start = self.head * self.slot;
        Some(&self.data[start..start + self.lens[self.head]])
    }

    /// Drops the oldest packet.
    pub fn pop(&mut self) {
        if !self.is_empty() {
            self.head = (self.head + 1) % self.lens.len();
            self.len -= 1;
        }
    }
}

/// The device smoltcp polls.
#[derive(Debug)]
pub struct IpDevice {
    /// Packets for the stack's own addresses, waiting for smoltcp.
    pub rx: Ring,
    /// Packets smoltcp sent, waiting for the routing core.
    pub tx: Ring,
    /// MTU smoltcp sizes its packets for (the smallest vmknic MTU, so that TCP's MSS fits
    /// every egress vmknic).
    pub mtu: usize,
}

impl IpDevice {
    /// Rings of `count` slots, each large enough for the largest vmknic MTU.
    pub fn new(count: usize, slot: usize, mtu: usize) -> IpDevice {
        IpDevice {
            rx: Ring::new(count, slot),
            tx: Ring::new(count, slot),
            mtu,
        }
    }
}

/// Hands one received packet to smoltcp.
pub struct RxToken<'a>(&'a mut Ring);
/// Lets smoltcp write one packet.
pub struct TxToken<'a>(&'a mut Ring);

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let r = f(self.0.front().unwrap_or(&[]));
        self.0.pop();
        r
    }
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        match self.0.reserve(len) {
            Some(buf) => {
                let r = f(buf);
                self.0.commit(len);
                r
            }
            // `transmit` hands out a token only when a slot is free, and smoltcp never asks
            // for more than the MTU, which fits a slot: this cannot happen with a correctly
            // sized ring. Let smoltcp build the packet in scratch space and drop it.
            None => f(&mut vec![0; len]),
        }
    }
}

impl phy::Device for IpDevice {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        if self.rx.is_empty() || self.tx.is_full() {
            return None;
        }
        Some((RxToken(&mut self.rx), TxToken(&mut self.tx)))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken<'_>> {
        if self.tx.is_full() {
            None
        } else {
            Some(TxToken(&mut self.tx))
        }
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = self.mtu;
        let mut cs = ChecksumCapabilities::default();
        cs.ipv4 = Checksum::Both;
        caps.checksum = cs;
        caps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
