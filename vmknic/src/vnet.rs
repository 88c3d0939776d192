//! The virtio-net header a TAP opened with `IFF_VNET_HDR` puts before every frame
//! (`struct virtio_net_hdr` in `<linux/virtio_net.h>`, 10 bytes, native byte order).
//!
//! With the TAP's offloads on (`TUNSETOFFLOAD` with `TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6`), the kernel
//! hands the daemon frames whose TCP/UDP checksum is left for the "hardware" to finish
//! ([`VnetHdr::NEEDS_CSUM`]) and TCP super-frames of up to 64 KiB that the "hardware" is to cut
//! into `gso_size` segments ([`Gso::TcpV4`], [`Gso::TcpV6`]). The daemon forwards both whole to another
//! offloading TAP (the kernel on the other side finishes the job, or never needs to), and
//! finishes them itself where a packet leaves the offload world: a non-offloading TAP, the
//! ARP queue, fragmentation, and its own smoltcp endpoint.

/// Bytes of the header before each frame.
pub const VNET_HDR_LEN: usize = 10;

/// The kind of segmentation a frame asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gso {
    /// An ordinary frame.
    None,
    /// A TCP/IPv4 super-frame (TSO); `ecn` when its first segment carries CWR.
    TcpV4 {
        /// `VIRTIO_NET_HDR_GSO_ECN`.
        ecn: bool,
    },
    /// A TCP/IPv6 super-frame (TSO6); `ecn` when its first segment carries CWR.
    TcpV6 {
        /// `VIRTIO_NET_HDR_GSO_ECN`.
        ecn: bool,
    },
    /// Anything else (UFO, USO): the daemon never enables them, so such a frame is malformed
    /// input.
    Other(u8),
}

/// A parsed virtio-net header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VnetHdr {
    /// `VIRTIO_NET_HDR_F_*`.
    pub flags: u8,
    /// `VIRTIO_NET_HDR_GSO_*`.
    pub gso_type: u8,
    /// Length of the headers (a hint: Linux may put the whole linear part here).
    pub hdr_len: u16,
    /// Payload bytes per segment.
    pub gso_size: u16,
    /// Where checksumming starts, from the start of the Ethernet frame.
    pub csum_start: u16,
    /// Where the checksum goes, from `csum_start`.
    pub csum_offset: u16,
}

impl VnetHdr {
    /// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum field holds the pseudo-header sum only.
    pub const NEEDS_CSUM: u8 = 1;
    /// `VIRTIO_NET_HDR_F_DATA_VALID`: the checksum was verified.
    pub const DATA_VALID: u8 = 2;
    /// `VIRTIO_NET_HDR_GSO_TCPV4`.
    pub const GSO_TCPV4: u8 = 1;
    /// `VIRTIO_NET_HDR_GSO_TCPV6`.
    pub const GSO_TCPV6: u8 = 4;
    /// `VIRTIO_NET_HDR_GSO_ECN`.
    pub const GSO_ECN: u8 = 0x80;

    /// Reads the header at the start of `buf` (all zero if `buf` is too short).
    #[inline]
    pub fn read(buf: &[u8]) -> VnetHdr {
        let Some(b) = buf.first_chunk::<VNET_HDR_LEN>() else {
            return VnetHdr::default();
        };
        let word = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: word(2),
            gso_size: word(4),
            csum_start: word(6),
            csum_offset: word(8),
        }
    }

    /// Writes the header at the start of `buf` (nothing if `buf` is too short).
    pub fn write(&self, buf: &mut [u8]) {
        let Some(b) = buf.first_chunk_mut::<VNET_HDR_LEN>() else {
            return;
        };
        b[0] = self.flags;
        b[1] = self.gso_type;
        for (i, v) in [
            (2, self.hdr_len),
            (4, self.gso_size),
            (6, self.csum_start),
            (8, self.csum_offset),
        ] {
            b[i..i + 2].copy_from_slice(&v.to_ne_bytes());
        }
    }

    /// The segmentation asked for.
    pub fn gso(&self) -> Gso {
        match self.gso_type & !Self::GSO_ECN {
            0 if self.gso_type == 0 => Gso::None,
            Self::GSO_TCPV4 => Gso::TcpV4 {
                ecn: self.gso_type & Self::GSO_ECN != 0,
            },
            Self::GSO_TCPV6 => Gso::TcpV6 {
                ecn: self.gso_type & Self::GSO_ECN != 0,
            },
            _ => Gso::Other(self.gso_type),
        }
    }

    /// True when the checksum is left to finish.
    pub fn needs_csum(&self) -> bool {
        self.flags & Self::NEEDS_CSUM != 0
    }

    /// True for a frame that can go to any TAP as it is: no partial checksum, no segmentation.
    pub fn is_plain(&self) -> bool {
        !self.needs_csum() && self.gso_type == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_vnet_header_round_trip_and_kinds() {
        let h = VnetHdr {
            flags: VnetHdr::NEEDS_CSUM,
            gso_type: VnetHdr::GSO_TCPV4 | VnetHdr::GSO_ECN,
            hdr_len: 66,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
        };
        let mut buf = [0u8; VNET_HDR_LEN];
        h.write(&mut buf);
        assert_eq!(VnetHdr::read(&buf), h);
        assert_eq!(h.gso(), Gso::TcpV4 { ecn: true });
        assert!(h.needs_csum() && !h.is_plain());
        assert_eq!(VnetHdr::read(&[0; 10]).gso(), Gso::None);
        assert_eq!(
            VnetHdr::read(&[1, 4, 0, 0, 0, 0, 0, 0, 0, 0]).gso(),
            Gso::TcpV6 { ecn: false }
        );
        assert!(VnetHdr::read(&[0; 10]).is_plain());
        assert_eq!(
            VnetHdr::read(&[0, 3, 0, 0, 0, 0, 0, 0, 0, 0]).gso(),
            Gso::Other(3)
        );
        assert_eq!(
            VnetHdr::read(&[0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0]).gso(),
            Gso::Other(0x80)
        );
        // Too short: all zero, and writing does nothing.
        assert_eq!(VnetHdr::read(&[1, 1]), VnetHdr::default());
        let mut short = [7u8; 4];
        h.write(&mut short);
        assert_eq!(short, [7; 4]);
        // The layout Linux uses (native order; 1448 = 0x05a8).
        assert_eq!(buf[4..6], 1448u16.to_ne_bytes());
    }
}
