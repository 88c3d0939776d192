//! Packet capture (ESXi's `pktcap-uw`): taps at the data plane's stages copy matching packets
//! into each running capture's bounded ring, which a control client thread drains.
//!
//! With no capture running a stage pays one branch (an empty list). With captures running, a
//! matching packet costs a filter check and a copy into a preallocated ring under a lock the
//! data plane only *tries*: when the reader holds it, or the ring is full, the copy is lost
//! and counted, and forwarding goes on unslowed.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use vmkstack_api::capture::{PacketMeta, Point, PACKET_HDR};
use vmkstack_vmknic::eth::{ETHERTYPE_IPV4, ETH_HDR};

use super::DropReason;

/// Captures running at once.
pub const MAX_CAPTURES: usize = 8;
/// Bytes of one capture's ring (about 2,700 full-size frames or 60 super-frames).
pub const RING_BYTES: usize = 4 << 20;

/// Which packets a capture takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureFilter {
    /// Only this vmknic (`N` of `vmkN`); for forwarded packets, either side.
    pub vmknic: Option<u32>,
    /// Mask of [`Point::bit`]s.
    pub points: u8,
    /// IPv4 source.
    pub src: Option<Ipv4Addr>,
    /// IPv4 destination.
    pub dst: Option<Ipv4Addr>,
    /// IPv4 address either way.
    pub any: Option<Ipv4Addr>,
    /// IP protocol.
    pub proto: Option<u8>,
    /// TCP port either way.
    pub tcp_port: Option<u16>,
    /// UDP port either way.
    pub udp_port: Option<u16>,
}

impl CaptureFilter {
    fn has_l3(&self) -> bool {
        self.src.is_some()
            || self.dst.is_some()
            || self.any.is_some()
            || self.proto.is_some()
            || self.tcp_port.is_some()
            || self.udp_port.is_some()
    }

    /// True when the IPv4 packet `ip` passes the address, protocol and port filters. A
    /// packet too short for a field a filter names does not pass.
    fn l3_matches(&self, ip: &[u8]) -> bool {
        if ip.len() < 20 || ip[0] >> 4 != 4 {
            return false;
        }
        let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
        let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
        let proto = ip[9];
        if self.src.is_some_and(|a| a != src)
            || self.dst.is_some_and(|a| a != dst)
            || self.any.is_some_and(|a| a != src && a != dst)
            || self.proto.is_some_and(|p| p != proto)
        {
            return false;
        }
        let port = match (self.tcp_port, self.udp_port) {
            (Some(p), _) if proto == 6 => p,
            (None, Some(p)) if proto == 17 => p,
            (None, None) => return true,
            _ => return false,
        };
        // Only a first fragment carries the ports.
        let frag_off = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff;
        let ihl = usize::from(ip[0] & 0xf) * 4;
        match ip.get(ihl..ihl + 4) {
            Some(p) if frag_off == 0 => {
                u16::from_be_bytes([p[0], p[1]]) == port || u16::from_be_bytes([p[2], p[3]]) == port
            }
            _ => false,
        }
    }

    fn matches(&self, point: Point, vmknic: Option<u32>, peer: Option<u32>, data: &[u8]) -> bool {
        if self.points & point.bit() == 0 {
            return false;
        }
        if let Some(want) = self.vmknic {
            if vmknic != Some(want) && peer != Some(want) {
                return false;
            }
        }
        if !self.has_l3() {
            return true;
        }
        let ip = if point.is_ip() {
            data
        } else {
            match data.get(12..14) {
                Some(t) if u16::from_be_bytes([t[0], t[1]]) == ETHERTYPE_IPV4 => {
                    data.get(ETH_HDR..).unwrap_or_default()
                }
                _ => return false,
            }
        };
        self.l3_matches(ip)
    }
}

/// The ring's bytes: records back to back, wrapping at the end.
struct RingBuf {
    buf: Box<[u8]>,
    /// Where the oldest unread byte is.
    head: usize,
    /// Unread bytes.
    len: usize,
}

impl RingBuf {
    fn push(&mut self, parts: [&[u8]; 2]) -> bool {
        let need: usize = parts.iter().map(|p| p.len()).sum();
        let cap = self.buf.len();
        if cap - self.len < need {
            return false;
        }
        let mut at = (self.head + self.len) % cap;
        for p in parts {
            let first = p.len().min(cap - at);
            self.buf[at..at + first].copy_from_slice(&p[..first]);
            self.buf[..p.len() - first].copy_from_slice(&p[first..]);
            at = (at + p.len()) % cap;
        }
        self.len += need;
        true
    }

    fn drain_into(&mut self, out: &mut Vec<u8>) {
        let cap = self.buf.len();
        let first = self.len.min(cap - self.head);
        out.extend_from_slice(&self.buf[self.head..self.head + first]);
        out.extend_from_slice(&self.buf[..self.len - first]);
        self.head = 0;
        self.len = 0;
    }
}

/// One running capture: its filter, its ring of records (in the control protocol's format,
/// [`vmkstack_api::capture`]) and its counts. Shared by the data plane (which fills it) and
/// the control client thread (which drains it).
pub struct Capture {
    filter: CaptureFilter,
    ring: Mutex<RingBuf>,
    captured: AtomicU64,
    lost: AtomicU64,
    closed: AtomicBool,
    /// Wall clock at `base`, in nanoseconds since the epoch: a record's time is the turn's
    /// clock converted through it (the engine reads no clock of its own).
    base: Instant,
    base_ns: u64,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("filter", &self.filter)
            .finish()
    }
}

impl Capture {
    /// A capture with `filter` and a ring of `bytes` (allocated now, not per packet).
    pub fn new(filter: CaptureFilter, bytes: usize) -> Capture {
        Capture {
            filter,
            ring: Mutex::new(RingBuf {
                buf: vec![0; bytes.max(PACKET_HDR + 64)].into_boxed_slice(),
                head: 0,
                len: 0,
            }),
            captured: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            base: Instant::now(),
            base_ns: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
        }
    }

    /// Its filter.
    pub fn filter(&self) -> &CaptureFilter {
        &self.filter
    }

    /// Moves every record waiting into `out` (the reader's side).
    pub fn drain_into(&self, out: &mut Vec<u8>) {
        if let Ok(mut r) = self.ring.lock() {
            r.drain_into(out);
        }
    }

    /// Packets captured and copies lost so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.captured.load(Ordering::Relaxed),
            self.lost.load(Ordering::Relaxed),
        )
    }

    /// Ends the capture (its client left): the data plane lets go of it at its next turn.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }

    /// True once closed.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    fn record(&self, meta: &PacketMeta, data: &[u8]) {
        let mut hdr = [0; PACKET_HDR];
        meta.write_header(data.len(), &mut hdr);
        // Never wait for the reader: a busy lock or a full ring loses this copy.
        let stored = match self.ring.try_lock() {
            Ok(mut r) => r.push([&hdr, data]),
            Err(_) => false,
        };
        let counter = if stored { &self.captured } else { &self.lost };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The captures a stage taps: empty (one branch per packet) unless a capture runs. The
/// engine keeps one list and each vmknic a copy, so that a vmknic's send path taps without
/// the engine.
#[derive(Debug, Clone, Default)]
pub(crate) struct Taps {
    list: Vec<Arc<Capture>>,
    /// The time of the current turn.
    now: Option<Instant>,
}

impl Taps {
    /// True when some capture runs.
    #[inline(always)]
    pub(crate) fn active(&self) -> bool {
        !self.list.is_empty()
    }

    pub(crate) fn set_now(&mut self, now: Instant) {
        self.now = Some(now);
    }

    pub(crate) fn add(&mut self, c: Arc<Capture>) {
        self.list.push(c);
    }

    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    /// Forgets closed captures; true when any was.
    pub(crate) fn prune(&mut self) -> bool {
        let before = self.list.len();
        self.list.retain(|c| !c.is_closed());
        self.list.len() != before
    }

    /// Offers a packet at `point` to every capture. `data` is an Ethernet frame, or an IPv4
    /// packet at the endpoint points.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn tap(
        &self,
        point: Point,
        vmknic: Option<u32>,
        peer: Option<u32>,
        reason: Option<DropReason>,
        gso_size: u16,
        data: &[u8],
    ) {
        for c in &self.list {
            if !c.filter.matches(point, vmknic, peer, data) {
                continue;
            }
            let ts_ns = self.now.map_or(c.base_ns, |now| {
                c.base_ns + now.saturating_duration_since(c.base).as_nanos() as u64
            });
            let meta = PacketMeta {
                ts_ns,
                point,
                vmknic,
                peer,
                reason: reason.map(|r| r.index() as u8),
                gso_size,
                orig_len: data.len() as u32,
            };
            c.record(&meta, data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmkstack_api::capture::{next_record, Record};

    fn frame(src: [u8; 4], dst: [u8; 4], proto: u8, ports: (u16, u16)) -> Vec<u8> {
        let mut f = vec![0u8; ETH_HDR + 28];
        f[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        let ip = &mut f[ETH_HDR..];
        ip[0] = 0x45;
        ip[9] = proto;
        ip[12..16].copy_from_slice(&src);
        ip[16..20].copy_from_slice(&dst);
        ip[20..22].copy_from_slice(&ports.0.to_be_bytes());
        ip[22..24].copy_from_slice(&ports.1.to_be_bytes());
        f
    }

    #[test]
    fn test_filter() {
        let tcp = frame([198, 18, 0, 1], [198, 18, 1, 1], 6, (40000, 5201));
        let udp = frame([198, 18, 0, 1], [198, 18, 1, 1], 17, (53, 40000));
        let all = Point::Rx.bit() | Point::Tx.bit();
        let f = |g: CaptureFilter| CaptureFilter { points: all, ..g };
        let any = f(CaptureFilter::default());
        assert!(any.matches(Point::Rx, Some(0), None, &tcp));
        assert!(!any.matches(Point::Drop, Some(0), None, &tcp), "point");
        let vmk1 = f(CaptureFilter {
            vmknic: Some(1),
            ..Default::default()
        });
        assert!(!vmk1.matches(Point::Rx, Some(0), None, &tcp));
        assert!(vmk1.matches(Point::Rx, Some(0), Some(1), &tcp), "peer");
        let port = f(CaptureFilter {
            tcp_port: Some(5201),
            ..Default::default()
        });
        assert!(port.matches(Point::Tx, None, None, &tcp));
        assert!(!port.matches(Point::Tx, None, None, &udp), "not tcp");
        let uport = f(CaptureFilter {
            udp_port: Some(53),
            ..Default::default()
        });
        assert!(uport.matches(Point::Tx, None, None, &udp));
        let src = f(CaptureFilter {
            src: Some(Ipv4Addr::new(198, 18, 1, 1)),
            ..Default::default()
        });
        assert!(!src.matches(Point::Rx, None, None, &tcp));
        let either = f(CaptureFilter {
            any: Some(Ipv4Addr::new(198, 18, 1, 1)),
            proto: Some(6),
            ..Default::default()
        });
        assert!(either.matches(Point::Rx, None, None, &tcp));
        assert!(!either.matches(Point::Rx, None, None, &udp));
        assert!(!either.matches(Point::Rx, None, None, &tcp[..30]), "short");
    }

    #[test]
    fn test_ring_bounded_and_wraps() {
        let c = Arc::new(Capture::new(
            CaptureFilter {
                points: Point::Rx.bit(),
                ..Default::default()
            },
            PACKET_HDR * 3 + 100,
        ));
        let mut taps = Taps::default();
        taps.add(c.clone());
        let data = [7u8; 60];
        let mut out = Vec::new();
        for round in 0..5 {
            taps.tap(Point::Rx, Some(0), None, None, 0, &data);
            taps.tap(Point::Rx, Some(0), None, None, 0, &data);
            taps.tap(Point::Rx, Some(0), None, None, 0, &data);
            out.clear();
            c.drain_into(&mut out);
            let mut r = &out[..];
            let mut buf = Vec::new();
            let mut n = 0;
            while let Some(rec) = next_record(&mut r, &mut buf).unwrap() {
                match rec {
                    Record::Packet(m, d) => {
                        assert_eq!(d, &data[..]);
                        assert_eq!(m.vmknic, Some(0));
                    }
                    other => panic!("{other:?}"),
                }
                n += 1;
            }
            assert_eq!(n, 2, "round {round}: the third does not fit");
        }
        assert_eq!(c.counts(), (10, 5));
        c.close();
        assert!(taps.prune());
        assert!(!taps.active());
    }
}
