//! ICMP echo from the stack (`vmkping`). A ping is started by a control request and finishes
//! later, in the event loop: its reply (with the TTL it arrived with), "Host is down" when ARP
//! never resolved its next hop, or its deadline.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use smoltcp::iface::SocketHandle;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::socket::icmp;
use smoltcp::wire::{Icmpv4Packet, IpAddress, IpProtocol, Ipv4Packet, Ipv4Repr};
use thiserror::Error;
use vmkstack_api::PingReply;
use vmkstack_routing::VmknicId;

use super::Endpoint;
use crate::engine::{FailedPacket, Sent, SocketError, ECHO_IDENT};

/// Echoes in flight at once.
const MAX_PENDING: usize = 64;
/// Largest echo payload (65535 - 20 - 8).
pub const MAX_PING_SIZE: usize = 65507;

/// Identifies a ping in flight.
pub type PingId = u64;

/// Why a ping got no reply. The messages are ESX's `sendto()` wording where there is one.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PingError {
    /// DF set and larger than the egress MTU.
    #[error("Message too long")]
    MessageTooLong,
    /// No route.
    #[error("No route to host")]
    NoRoute,
    /// `-I` named a vmknic that does not exist or is disabled.
    #[error("{0} is not an enabled vmknic")]
    NotFound(VmknicId),
    /// ARP got no answer.
    #[error("Host is down")]
    HostDown,
    /// `-N` names a gateway on no vmknic subnet (of the `-I` vmknic, when given).
    #[error("next hop {0} is on no VMkernel interface subnet")]
    NextHopOffLink(Ipv4Addr),
    /// The vmknic it would leave by is enabled but its wire is down (the reason says why).
    #[error("Network is down: {0} is down: {1}")]
    LinkDown(VmknicId, String),
    /// No reply in time.
    #[error("Request timeout")]
    Timeout,
    /// Too many in flight.
    #[error("too many pings in flight")]
    Busy,
    /// A payload larger than an IPv4 datagram can carry.
    #[error("payload of {0} bytes is larger than {MAX_PING_SIZE}")]
    TooLarge(usize),
}

/// What to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PingSpec {
    /// The destination.
    pub dst: Ipv4Addr,
    /// The vmknic to leave by (`-I`); by default the routing core picks it.
    pub via: Option<VmknicId>,
    /// The gateway to send through (`-N`), bypassing the routing table: it must be on the
    /// subnet of a vmknic (of `via` when given).
    pub next_hop: Option<Ipv4Addr>,
    /// Payload bytes.
    pub size: usize,
    /// Don't fragment.
    pub df: bool,
    /// TTL.
    pub ttl: u8,
    /// Sequence number.
    pub seq: u16,
    /// How long to wait for the reply.
    pub timeout: Duration,
}

struct Pending {
    id: PingId,
    dst: Ipv4Addr,
    /// The neighbour ARP must resolve; a ping that times out while it is unresolved reports
    /// "Host is down", as ESX's sendto() does.
    next_hop: Ipv4Addr,
    seq: u16,
    sent: Instant,
    deadline: Instant,
}

/// The pings in flight and finished.
pub struct Pings {
    pending: Vec<Pending>,
    done: Vec<(PingId, Result<PingReply, PingError>)>,
    /// smoltcp socket that receives echo replies smoltcp had to reassemble (a ping larger
    /// than the path MTU without DF); whole replies are kept by the engine with their TTL.
    reassembled: Option<SocketHandle>,
    next_id: u64,
    /// IP identification of the next request.
    ip_ident: u16,
    /// An echo request being built (up to a full IPv4 datagram).
    buf: Box<[u8]>,
}

impl Default for Pings {
    fn default() -> Self {
        Pings::new()
    }
}

impl Pings {
    /// No ping in flight.
    pub fn new() -> Pings {
        Pings {
            pending: Vec::with_capacity(MAX_PENDING),
            done: Vec::with_capacity(MAX_PENDING),
            reassembled: None,
            next_id: 1,
            ip_ident: 1,
            buf: vec![0; 65536].into_boxed_slice(),
        }
    }

    /// The earliest deadline in flight.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending.iter().map(|p| p.deadline).min()
    }

    /// Sends one ICMP echo request from the stack. With `via` (vmkping `-I`) it leaves
    /// through that vmknic whatever the routing table says. Errors that ESX reports at
    /// `sendto()` come back at once; the reply, "Host is down" and timeouts arrive through
    /// [`Pings::take_results`].
    pub fn start(&mut self, ep: &mut impl Endpoint, p: PingSpec) -> Result<PingId, PingError> {
        if self.pending.len() >= MAX_PENDING {
            return Err(PingError::Busy);
        }
        if p.size > MAX_PING_SIZE {
            return Err(PingError::TooLarge(p.size));
        }
        if self.reassembled.is_none() {
            self.reassembled = echo_socket(ep);
        }
        let no_vmknic = |e| match e {
            SocketError::NoVmknic(id) => PingError::NotFound(id),
            SocketError::LinkDown(id, why) => PingError::LinkDown(id, why),
            _ => PingError::NoRoute,
        };
        let out = match p.next_hop {
            None => ep.egress_for(p.dst, p.via).map_err(no_vmknic)?,
            // The next hop must be on a vmknic subnet (of `via`'s when given): the packet
            // for `dst` is handed to that neighbour whatever the table says.
            Some(nh) => ep
                .egress_to_neighbor(nh, p.via)
                .ok_or(PingError::NextHopOffLink(nh))?,
        };
        let total = 28 + p.size;
        if p.df && total > usize::from(out.mtu) {
            return Err(PingError::MessageTooLong);
        }
        self.ip_ident = self.ip_ident.wrapping_add(1);
        let Some(buf) = self.buf.get_mut(..total) else {
            return Err(PingError::TooLarge(p.size));
        };
        write_echo(buf, out.source, p, self.ip_ident);
        let now = Instant::now();
        self.next_id += 1;
        let id = self.next_id;
        self.pending.push(Pending {
            id,
            dst: p.dst,
            next_hop: out.next_hop,
            seq: p.seq,
            sent: now,
            deadline: now + p.timeout,
        });
        let local = ep.is_local(p.dst);
        // The reply to a ping of our own address comes back at once, timed by this clock.
        ep.set_time(now);
        match ep.send_ip(&self.buf[..total], &out) {
            Sent::Unreachable => {
                self.pending.pop();
                Err(PingError::HostDown)
            }
            // Our own address: a full loopback queue is a busy stack, as on ESX.
            Sent::Dropped if local => {
                self.pending.pop();
                Err(PingError::Busy)
            }
            _ => Ok(id),
        }
    }

    /// Pings whose packets ARP could not deliver fail with "Host is down".
    pub fn neighbor_failed(&mut self, f: &FailedPacket) {
        if f.protocol != 1 || f.src_port != ECHO_IDENT {
            return;
        }
        let seq = f.dst_port;
        if let Some(pos) = self
            .pending
            .iter()
            .position(|p| p.seq == seq && std::net::IpAddr::V4(p.dst) == f.dst)
        {
            let p = self.pending.swap_remove(pos);
            self.done.push((p.id, Err(PingError::HostDown)));
        }
    }

    /// Completes pings with the replies that arrived and the deadlines that passed, then
    /// hands every finished ping to `f`.
    pub fn take_results(
        &mut self,
        ep: &mut impl Endpoint,
        mut f: impl FnMut(PingId, Result<PingReply, PingError>),
    ) {
        if self.pending.is_empty() {
            // Nothing awaits a reply (the usual case, every loop turn): stray replies are
            // dropped without reading the clock.
            ep.take_echo_replies(|_| {});
            if let Some(h) = self.reassembled {
                while ep.sockets().get_mut::<icmp::Socket>(h).recv().is_ok() {}
            }
            for (id, r) in self.done.drain(..) {
                f(id, r);
            }
            return;
        }
        let now = Instant::now();
        ep.take_echo_replies(|r| self.reply(r.from, r.seq, r.ttl, r.bytes, r.at));
        if let Some(h) = self.reassembled {
            // Replies smoltcp reassembled carry no IP header: their TTL is the first
            // fragment's, which the engine noted.
            while let Ok((data, from)) = ep.sockets().get_mut::<icmp::Socket>(h).recv() {
                let IpAddress::Ipv4(from) = from else {
                    continue;
                };
                let (Some(&0), Some(ECHO_IDENT), Some(seq)) =
                    (data.first(), be16(data, 4), be16(data, 6))
                else {
                    continue;
                };
                let bytes = data.len();
                let ttl = ep.fragment_ttl(from);
                self.reply(from, seq, ttl, bytes, now);
            }
        }
        let mut i = 0;
        while i < self.pending.len() {
            if self.pending[i].deadline <= now {
                let p = self.pending.swap_remove(i);
                let err = if ep.neighbor_resolved(p.next_hop, now) == Some(false) {
                    PingError::HostDown
                } else {
                    PingError::Timeout
                };
                self.done.push((p.id, Err(err)));
            } else {
                i += 1;
            }
        }
        for (id, r) in self.done.drain(..) {
            f(id, r);
        }
    }

    /// A reply from `from` with sequence `seq` completes the matching ping.
    fn reply(&mut self, from: Ipv4Addr, seq: u16, ttl: u8, bytes: usize, at: Instant) {
        let Some(pos) = self
            .pending
            .iter()
            .position(|p| p.seq == seq && p.dst == from)
        else {
            return;
        };
        let p = self.pending.swap_remove(pos);
        let reply = PingReply {
            bytes,
            from: from.into(),
            seq,
            ttl,
            rtt_us: at.saturating_duration_since(p.sent).as_micros() as u64,
            destination: p.dst.into(),
        };
        self.done.push((p.id, Ok(reply)));
    }
}

/// The ICMP socket that receives echo replies smoltcp reassembled from fragments.
fn echo_socket(ep: &mut impl Endpoint) -> Option<SocketHandle> {
    let meta = || vec![icmp::PacketMetadata::EMPTY; 8];
    let mut sock = icmp::Socket::new(
        icmp::PacketBuffer::new(meta(), vec![0; 2 * 65536]),
        icmp::PacketBuffer::new(meta(), vec![0; 1024]),
    );
    sock.bind(icmp::Endpoint::Ident(ECHO_IDENT)).ok()?;
    Some(ep.sockets().add(sock))
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Writes an ICMP echo request (IPv4 header included) into `buf` (`28 + size` bytes).
fn write_echo(buf: &mut [u8], src: Ipv4Addr, p: PingSpec, ip_ident: u16) {
    let caps = ChecksumCapabilities::default();
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: p.dst,
        next_header: IpProtocol::Icmp,
        payload_len: 8 + p.size,
        hop_limit: p.ttl,
    };
    let mut pkt = Ipv4Packet::new_unchecked(&mut *buf);
    ip.emit(&mut pkt, &caps);
    pkt.set_ident(ip_ident);
    pkt.set_dont_frag(p.df);
    pkt.fill_checksum();
    let payload = pkt.payload_mut();
    if let Some(data) = payload.get_mut(8..) {
        for (i, b) in data.iter_mut().enumerate() {
            *b = (i & 0xff) as u8;
        }
    }
    let mut icmp = Icmpv4Packet::new_unchecked(payload);
    icmp.set_msg_type(smoltcp::wire::Icmpv4Message::EchoRequest);
    icmp.set_msg_code(0);
    icmp.set_echo_ident(ECHO_IDENT);
    icmp.set_echo_seq_no(p.seq);
    icmp.fill_checksum();
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use smoltcp::wire::IpProtocol;
    use vmkstack_routing::VmknicId;

    use super::*;
    use crate::engine::testlab::*;

    fn spec(dst: Ipv4Addr, size: usize, df: bool) -> PingSpec {
        PingSpec {
            dst,
            via: None,
            next_hop: None,
            size,
            df,
            ttl: 64,
            seq: 7,
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn test_reply_completes_the_ping_with_its_ttl() {
        let mut lab = Lab::plain();
        lab.learn(0, HOST0, HOST0_MAC);
        let mut pings = Pings::new();
        let id = pings.start(&mut lab.engine, spec(HOST0, 56, false));
        let Ok(id) = id else {
            panic!("ping refused: {id:?}")
        };
        let sent = lab.sent(0);
        assert_eq!(sent.len(), 1, "the echo request");
        let ip = ip_of(&sent[0]);
        assert_eq!((ip.src_addr(), ip.dst_addr()), (VMK0_IP, HOST0));
        assert_eq!((ip.hop_limit(), usize::from(ip.total_len())), (64, 84));
        let req = ip.payload();
        assert_eq!(
            (req[0], be16(req, 4), be16(req, 6)),
            (8, Some(ECHO_IDENT), Some(7))
        );
        assert_eq!(smoltcp::wire::checksum::data(req), 0xffff, "ICMP checksum");

        // The host answers, three hops away.
        let mut reply = req.to_vec();
        reply[0] = 0;
        reply[2..4].fill(0);
        let sum = !smoltcp::wire::checksum::data(&reply);
        reply[2..4].copy_from_slice(&sum.to_be_bytes());
        let pkt = ipv4(HOST0, VMK0_IP, IpProtocol::Icmp, 61, false, &reply);
        lab.receive(0, &eth(VMK0_MAC, HOST0_MAC, &pkt));
        let mut got = Vec::new();
        pings.take_results(&mut lab.engine, |i, r| got.push((i, r)));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, id);
        let r = got[0].1.as_ref().map(|r| (r.from, r.seq, r.ttl, r.bytes));
        assert_eq!(r, Ok((HOST0.into(), 7, 61, 64)));
        assert_eq!(lab.engine.vmknics()[0].counters.delivered, 1);
    }

    #[test]
    fn test_host_down_when_arp_never_answers() {
        let mut lab = Lab::plain();
        let silent = Ipv4Addr::new(198, 18, 0, 77);
        let mut pings = Pings::new();
        assert!(pings
            .start(&mut lab.engine, spec(silent, 56, false))
            .is_ok());
        assert_eq!(lab.sent(0).len(), 1, "an ARP request, the echo waits");
        for ms in [600, 1000, 2000] {
            lab.advance(Duration::from_millis(ms));
        }
        lab.engine.take_failed(|f| pings.neighbor_failed(&f));
        let mut got = Vec::new();
        pings.take_results(&mut lab.engine, |_, r| got.push(r));
        assert_eq!(got, vec![Err(PingError::HostDown)]);
    }

    #[test]
    fn test_errors_at_send_time() {
        let mut lab = Lab::plain();
        let mut pings = Pings::new();
        let too_big = pings.start(&mut lab.engine, spec(HOST1, 1473, true));
        assert_eq!(too_big, Err(PingError::MessageTooLong));
        let mut via = spec(HOST1, 56, false);
        via.via = Some(VmknicId(9));
        let no_vmknic = pings.start(&mut lab.engine, via);
        assert_eq!(no_vmknic, Err(PingError::NotFound(VmknicId(9))));
        let huge = pings.start(&mut lab.engine, spec(HOST1, MAX_PING_SIZE + 1, false));
        assert_eq!(huge, Err(PingError::TooLarge(MAX_PING_SIZE + 1)));
        assert!(
            lab.sent(0).is_empty() && lab.sent(1).is_empty(),
            "nothing sent"
        );
    }

    #[test]
    fn test_next_hop_bypasses_the_routing_table() {
        // The table sends REMOTE to the gateway on vmk1; -N hands it to HOST0 on vmk0.
        let mut lab = Lab::plain();
        lab.learn(0, HOST0, HOST0_MAC);
        let mut pings = Pings::new();
        let mut via_host0 = spec(REMOTE, 56, false);
        via_host0.next_hop = Some(HOST0);
        assert!(pings.start(&mut lab.engine, via_host0).is_ok());
        let sent = lab.sent(0);
        assert_eq!(sent.len(), 1, "the echo request, to HOST0's MAC");
        assert_eq!(&sent[0][..6], &HOST0_MAC.0[..]);
        let ip = ip_of(&sent[0]);
        assert_eq!((ip.src_addr(), ip.dst_addr()), (VMK0_IP, REMOTE));
        // A next hop on no vmknic subnet, or not on the -I vmknic's, is refused.
        let mut off = spec(REMOTE, 56, false);
        off.next_hop = Some(Ipv4Addr::new(198, 18, 9, 1));
        let refused = pings.start(&mut lab.engine, off);
        assert_eq!(
            refused,
            Err(PingError::NextHopOffLink(Ipv4Addr::new(198, 18, 9, 1)))
        );
        let mut wrong_vmknic = via_host0;
        wrong_vmknic.via = Some(VmknicId(1));
        let refused = pings.start(&mut lab.engine, wrong_vmknic);
        assert_eq!(refused, Err(PingError::NextHopOffLink(HOST0)));
        assert!(lab.sent(0).is_empty() && lab.sent(1).is_empty());
    }
}
