//! Packet capture over the control socket (`pktcap-uw`): the request's filter
//! ([`CaptureSpec`]), the answer that opens the stream ([`CaptureStart`]), and the binary
//! records that follow it on the same connection.
//!
//! After a `capture` request is accepted the daemon writes one JSON response line and then
//! only records, until the client closes the connection:
//!
//! ```text
//! record  = len:u32le kind:u8 body        (len counts kind and body)
//! packet  = kind 1: ts_ns:u64le point:u8 vmknic:u32le peer:u32le reason:u8 gso_size:u16le
//!           orig_len:u32le data           (vmknic/peer u32::MAX: none, reason 255: none)
//! status  = kind 2: captured:u64le lost:u64le   (about once a second)
//! ```
//!
//! Endpoint records carry an IPv4 packet; the others an Ethernet frame (without the
//! virtio-net header, whose GSO size travels in `gso_size`).

use serde::{Deserialize, Serialize};

/// What a capture takes. Every field is optional; an empty spec captures every vmknic's
/// received frames (ESX's `--dir 0`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureSpec {
    /// `vmkN` or a port group: only this vmknic's frames.
    pub vmknic: Option<String>,
    /// 0 received (default), 1 sent, 2 both (ESX's `--dir`).
    pub dir: Option<u8>,
    /// A capture point instead of a vmknic's receive/transmit: `drop`, `forward` or
    /// `endpoint` (ESX's `--capture`, case-insensitive).
    pub point: Option<String>,
    /// IPv4 source address.
    pub src_ip: Option<String>,
    /// IPv4 destination address.
    pub dst_ip: Option<String>,
    /// IPv4 address either way.
    pub ip: Option<String>,
    /// IP protocol number.
    pub proto: Option<u8>,
    /// TCP port either way.
    pub tcp_port: Option<u16>,
    /// UDP port either way.
    pub udp_port: Option<u16>,
}

/// The answer to an accepted capture: what the records refer to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureStart {
    /// The vmknics present when the capture started (`vmkN`), by number.
    pub vmknics: Vec<String>,
    /// Drop reason names, indexed by a packet record's `reason`.
    pub reasons: Vec<String>,
}

/// Where a packet was captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// Received by a vmknic.
    Rx = 0,
    /// Sent by a vmknic.
    Tx = 1,
    /// Dropped (the record names the reason).
    Drop = 2,
    /// Forwarded (after the TTL decrement, before the MAC rewrite): `peer` is the egress.
    Forward = 3,
    /// An IP packet delivered to the stack's own endpoint.
    EndpointIn = 4,
    /// An IP packet the stack's own endpoint sent.
    EndpointOut = 5,
}

impl Point {
    /// Every point, in code order.
    pub const ALL: [Point; 6] = [
        Point::Rx,
        Point::Tx,
        Point::Drop,
        Point::Forward,
        Point::EndpointIn,
        Point::EndpointOut,
    ];

    /// The point of a record's code.
    pub fn from_code(c: u8) -> Option<Point> {
        Point::ALL.get(usize::from(c)).copied()
    }

    /// Its bit in a mask of points.
    pub fn bit(self) -> u8 {
        1 << self as u8
    }

    /// True when records of this point carry an IPv4 packet rather than an Ethernet frame.
    pub fn is_ip(self) -> bool {
        matches!(self, Point::EndpointIn | Point::EndpointOut)
    }

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Point::Rx => "rx",
            Point::Tx => "tx",
            Point::Drop => "drop",
            Point::Forward => "forward",
            Point::EndpointIn => "endpoint-in",
            Point::EndpointOut => "endpoint-out",
        }
    }
}

/// Record kind: a packet.
pub const KIND_PACKET: u8 = 1;
/// Record kind: the capture's counts.
pub const KIND_STATUS: u8 = 2;
/// Bytes of a packet record's fixed part (after `len` and `kind`).
pub const META_LEN: usize = 24;
/// Bytes before a packet record's data: `len`, `kind` and the fixed part.
pub const PACKET_HDR: usize = 4 + 1 + META_LEN;
/// Largest record accepted by [`next_record`].
pub const MAX_RECORD: usize = 1 << 20;

/// A packet record's fixed part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketMeta {
    /// Wall-clock time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Where.
    pub point: Point,
    /// The vmknic's number (`N` of `vmkN`), if any.
    pub vmknic: Option<u32>,
    /// The egress vmknic of a forwarded packet.
    pub peer: Option<u32>,
    /// Index into [`CaptureStart::reasons`] for a drop.
    pub reason: Option<u8>,
    /// The virtio-net header's GSO size (0: not a super-frame).
    pub gso_size: u16,
    /// Length on the wire (the data may be shorter).
    pub orig_len: u32,
}

impl PacketMeta {
    /// Writes the record header for `data_len` bytes of data into `out` (at least
    /// [`PACKET_HDR`] bytes long).
    pub fn write_header(&self, data_len: usize, out: &mut [u8; PACKET_HDR]) {
        let len = (1 + META_LEN + data_len) as u32;
        out[0..4].copy_from_slice(&len.to_le_bytes());
        out[4] = KIND_PACKET;
        out[5..13].copy_from_slice(&self.ts_ns.to_le_bytes());
        out[13] = self.point as u8;
        out[14..18].copy_from_slice(&self.vmknic.unwrap_or(u32::MAX).to_le_bytes());
        out[18..22].copy_from_slice(&self.peer.unwrap_or(u32::MAX).to_le_bytes());
        out[22] = self.reason.unwrap_or(u8::MAX);
        out[23..25].copy_from_slice(&self.gso_size.to_le_bytes());
        out[25..29].copy_from_slice(&self.orig_len.to_le_bytes());
    }

    /// Reads a packet record's body (after `kind`): the fixed part and the data.
    pub fn parse(body: &[u8]) -> Option<(PacketMeta, &[u8])> {
        let (m, data) = body.split_first_chunk::<META_LEN>()?;
        let u32_at = |i: usize| u32::from_le_bytes([m[i], m[i + 1], m[i + 2], m[i + 3]]);
        let opt = |v: u32| (v != u32::MAX).then_some(v);
        let mut ts = [0; 8];
        ts.copy_from_slice(&m[0..8]);
        Some((
            PacketMeta {
                ts_ns: u64::from_le_bytes(ts),
                point: Point::from_code(m[8])?,
                vmknic: opt(u32_at(9)),
                peer: opt(u32_at(13)),
                reason: (m[17] != u8::MAX).then_some(m[17]),
                gso_size: u16::from_le_bytes([m[18], m[19]]),
                orig_len: u32_at(20),
            },
            data,
        ))
    }
}

/// A status record: packets captured and captured copies lost so far.
pub fn status_record(captured: u64, lost: u64) -> [u8; 21] {
    let mut r = [0; 21];
    r[0..4].copy_from_slice(&17u32.to_le_bytes());
    r[4] = KIND_STATUS;
    r[5..13].copy_from_slice(&captured.to_le_bytes());
    r[13..21].copy_from_slice(&lost.to_le_bytes());
    r
}

/// One record read from a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record<'a> {
    /// A packet and its data.
    Packet(PacketMeta, &'a [u8]),
    /// Captured and lost counts.
    Status {
        /// Packets captured.
        captured: u64,
        /// Captured copies lost (the reader was too slow).
        lost: u64,
    },
    /// A kind this client does not know (skipped).
    Unknown,
}

/// Reads the next record from `r` into `buf`. `Ok(None)` at a clean end of stream.
pub fn next_record<'a>(
    r: &mut impl std::io::Read,
    buf: &'a mut Vec<u8>,
) -> std::io::Result<Option<Record<'a>>> {
    let mut len = [0; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len == 0 || len > MAX_RECORD {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("capture record of {len} bytes"),
        ));
    }
    buf.resize(len, 0);
    r.read_exact(buf)?;
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "bad capture record");
    let (kind, body) = buf.split_first().ok_or_else(bad)?;
    Ok(Some(match *kind {
        KIND_PACKET => {
            let (m, d) = PacketMeta::parse(body).ok_or_else(bad)?;
            Record::Packet(m, d)
        }
        KIND_STATUS if body.len() >= 16 => {
            let mut a = [0; 8];
            let mut b = [0; 8];
            a.copy_from_slice(&body[0..8]);
            b.copy_from_slice(&body[8..16]);
            Record::Status {
                captured: u64::from_le_bytes(a),
                lost: u64::from_le_bytes(b),
            }
        }
        _ => Record::Unknown,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_round_trip() {
        let m = PacketMeta {
            ts_ns: 1_700_000_000_123_456_789,
            point: Point::Forward,
            vmknic: Some(1),
            peer: Some(2),
            reason: None,
            gso_size: 1448,
            orig_len: 98,
        };
        let mut hdr = [0; PACKET_HDR];
        m.write_header(3, &mut hdr);
        let mut stream = hdr.to_vec();
        stream.extend_from_slice(&[1, 2, 3]);
        stream.extend_from_slice(&status_record(5, 7));
        let mut r = &stream[..];
        let mut buf = Vec::new();
        assert_eq!(
            next_record(&mut r, &mut buf).unwrap(),
            Some(Record::Packet(m, &[1, 2, 3]))
        );
        assert_eq!(
            next_record(&mut r, &mut buf).unwrap(),
            Some(Record::Status {
                captured: 5,
                lost: 7
            })
        );
        assert_eq!(next_record(&mut r, &mut buf).unwrap(), None);
    }

    #[test]
    fn test_bad_records() {
        let mut buf = Vec::new();
        let mut r: &[u8] = &[0, 0, 0, 0];
        assert!(next_record(&mut r, &mut buf).is_err(), "zero length");
        let mut r: &[u8] = &[2, 0, 0, 0, KIND_PACKET, 0];
        assert!(next_record(&mut r, &mut buf).is_err(), "short packet");
        let mut r: &[u8] = &[5, 0, 0, 0, KIND_PACKET];
        assert!(next_record(&mut r, &mut buf).is_err(), "truncated stream");
        assert_eq!(Point::from_code(6), None);
    }
}
