//! A small pcapng writer (the IETF draft `draft-ietf-opsawg-pcapng`): one Section Header Block,
//! Interface Description Blocks (name, nanosecond timestamps) and Enhanced Packet Blocks with
//! a direction flag and a comment. Enough for `tcpdump -r` and `tshark -r`; a crate for three
//! block types would be more code to trust than this.

use std::io::{self, Write};

/// `LINKTYPE_ETHERNET`.
pub const LINKTYPE_ETHERNET: u16 = 1;
/// `LINKTYPE_RAW`: an IPv4 or IPv6 packet without a link header.
pub const LINKTYPE_RAW: u16 = 101;

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;
const EPB: u32 = 6;
const OPT_END: u16 = 0;
const OPT_COMMENT: u16 = 1;
const IF_NAME: u16 = 2;
const IF_TSRESOL: u16 = 9;
const EPB_FLAGS: u16 = 2;

/// Which way a packet went (the EPB flags' inbound/outbound bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Not said.
    Unknown = 0,
    /// Received.
    Inbound = 1,
    /// Sent.
    Outbound = 2,
}

/// Writes a pcapng stream to `W`: the section header at creation, then interfaces and
/// packets in the order given.
pub struct PcapngWriter<W: Write> {
    w: W,
    interfaces: u32,
    block: Vec<u8>,
}

fn pad4(n: usize) -> usize {
    (4 - n % 4) % 4
}

fn option(block: &mut Vec<u8>, code: u16, value: &[u8]) {
    let len = value.len().min(usize::from(u16::MAX) - 3);
    block.extend_from_slice(&code.to_le_bytes());
    block.extend_from_slice(&(len as u16).to_le_bytes());
    block.extend_from_slice(&value[..len]);
    block.resize(block.len() + pad4(len), 0);
}

impl<W: Write> PcapngWriter<W> {
    /// Starts a section on `w`.
    pub fn new(w: W) -> io::Result<PcapngWriter<W>> {
        let mut p = PcapngWriter {
            w,
            interfaces: 0,
            block: Vec::with_capacity(70 * 1024),
        };
        p.begin(SHB);
        p.block.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
        p.block.extend_from_slice(&1u16.to_le_bytes());
        p.block.extend_from_slice(&0u16.to_le_bytes());
        p.block.extend_from_slice(&(-1i64).to_le_bytes());
        option(&mut p.block, OPT_END, &[]);
        p.end()?;
        Ok(p)
    }

    fn begin(&mut self, kind: u32) {
        self.block.clear();
        self.block.extend_from_slice(&kind.to_le_bytes());
        self.block.extend_from_slice(&0u32.to_le_bytes());
    }

    fn end(&mut self) -> io::Result<()> {
        let total = (self.block.len() + 4) as u32;
        self.block[4..8].copy_from_slice(&total.to_le_bytes());
        self.block.extend_from_slice(&total.to_le_bytes());
        self.w.write_all(&self.block)
    }

    /// Describes an interface (nanosecond timestamps); returns its index for
    /// [`PcapngWriter::packet`].
    pub fn interface(&mut self, linktype: u16, name: &str) -> io::Result<u32> {
        self.begin(IDB);
        self.block.extend_from_slice(&linktype.to_le_bytes());
        self.block.extend_from_slice(&0u16.to_le_bytes());
        self.block.extend_from_slice(&0u32.to_le_bytes()); // no snap length
        option(&mut self.block, IF_NAME, name.as_bytes());
        option(&mut self.block, IF_TSRESOL, &[9]);
        option(&mut self.block, OPT_END, &[]);
        self.end()?;
        self.interfaces += 1;
        Ok(self.interfaces - 1)
    }

    /// Writes one packet captured on interface `iface` at `ts_ns` (nanoseconds since the
    /// epoch); `orig_len` is its length on the wire, `comment` may be empty.
    pub fn packet(
        &mut self,
        iface: u32,
        ts_ns: u64,
        data: &[u8],
        orig_len: u32,
        dir: Direction,
        comment: &str,
    ) -> io::Result<()> {
        self.begin(EPB);
        self.block.extend_from_slice(&iface.to_le_bytes());
        self.block
            .extend_from_slice(&((ts_ns >> 32) as u32).to_le_bytes());
        self.block.extend_from_slice(&(ts_ns as u32).to_le_bytes());
        self.block
            .extend_from_slice(&(data.len() as u32).to_le_bytes());
        self.block.extend_from_slice(&orig_len.to_le_bytes());
        self.block.extend_from_slice(data);
        self.block.resize(self.block.len() + pad4(data.len()), 0);
        if !comment.is_empty() {
            option(&mut self.block, OPT_COMMENT, comment.as_bytes());
        }
        if dir != Direction::Unknown {
            option(&mut self.block, EPB_FLAGS, &(dir as u32).to_le_bytes());
        }
        option(&mut self.block, OPT_END, &[]);
        self.end()
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(b: &[u8], i: usize) -> u32 {
        u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
    }

    #[test]
    fn test_emit() {
        let mut p = PcapngWriter::new(Vec::new()).unwrap();
        assert_eq!(p.interface(LINKTYPE_ETHERNET, "vmk0").unwrap(), 0);
        assert_eq!(p.interface(LINKTYPE_RAW, "endpoint").unwrap(), 1);
        p.packet(1, 0x1_0000_0002, &[0x45, 0, 0], 3, Direction::Inbound, "x")
            .unwrap();
        let b = p.into_inner();
        // Blocks chain by their lengths, each repeated at its end.
        let mut at = 0;
        let mut kinds = Vec::new();
        let mut epb = 0;
        while at < b.len() {
            epb = at;
            let len = u32_at(&b, at + 4) as usize;
            assert_eq!(len % 4, 0);
            assert_eq!(u32_at(&b, at + len - 4) as usize, len);
            kinds.push(u32_at(&b, at));
            at += len;
        }
        assert_eq!(at, b.len());
        assert_eq!(kinds, vec![SHB, IDB, IDB, EPB]);
        assert_eq!(u32_at(&b, 8), 0x1A2B_3C4D);
        assert_eq!(u32_at(&b, epb + 8), 1, "interface");
        assert_eq!(u32_at(&b, epb + 12), 1, "timestamp high");
        assert_eq!(u32_at(&b, epb + 16), 2, "timestamp low");
        assert_eq!(u32_at(&b, epb + 20), 3, "captured length");
        assert_eq!(&b[epb + 28..epb + 31], &[0x45, 0, 0]);
    }
}
