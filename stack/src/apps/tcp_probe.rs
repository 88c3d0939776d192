//! A TCP connect test from the stack (`nc -z`): a smoltcp socket connects; established is
//! success, a reset is "Connection refused", a next hop that never answers ARP (or Neighbour
//! Discovery) is "Host is down", and the deadline is "Connection timed out". A connected probe is closed with a
//! reset, as `nc -z` does.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use thiserror::Error;
use vmkstack_api::ProbeResult;
use vmkstack_routing::VmknicId;

use super::Endpoint;
use crate::engine::{FailedPacket, SocketError};

/// Probes in flight at once.
pub(crate) const MAX_PENDING: usize = 64;

/// Identifies a TCP probe in flight.
pub type ProbeId = u64;

/// Why a TCP probe did not connect.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProbeError {
    /// No route.
    #[error("No route to host")]
    NoRoute,
    /// `-I` named a vmknic that does not exist or is disabled.
    #[error("{0} is not an enabled vmknic")]
    NotFound(VmknicId),
    /// `-s` named an address that is no enabled vmknic's.
    #[error("{0} is not an address of an enabled vmknic")]
    NotLocal(IpAddr),
    /// ARP got no answer.
    #[error("Host is down")]
    HostDown,
    /// No answer in time.
    #[error("Connection timed out")]
    Timeout,
    /// The peer answered with a reset.
    #[error("Connection refused")]
    Refused,
    /// Too many in flight.
    #[error("too many probes in flight")]
    Busy,
    /// smoltcp refused the connect.
    #[error("{0}")]
    Other(String),
}

struct Pending {
    id: ProbeId,
    handle: SocketHandle,
    dst: SocketAddr,
    local_port: u16,
    source: String,
    started: Instant,
    deadline: Instant,
}

/// Where a probe's connection comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeSource {
    /// The egress vmknic's address, as the routing core chooses it.
    Route,
    /// This vmknic's address (`nc -I vmkN`).
    Vmknic(VmknicId),
    /// This address, which chooses the vmknic (`nc -s ADDR`, as ESXi's netcat).
    Address(IpAddr),
}

/// The probes in flight and finished.
#[derive(Default)]
pub struct TcpProbes {
    pending: Vec<Pending>,
    done: Vec<(ProbeId, Result<ProbeResult, ProbeError>)>,
    /// Sockets of finished probes, to close and free.
    finished: Vec<SocketHandle>,
    next_id: u64,
}

impl TcpProbes {
    /// No probe in flight.
    pub fn new() -> TcpProbes {
        TcpProbes::default()
    }

    /// The earliest deadline in flight.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending.iter().map(|p| p.deadline).min()
    }

    /// Starts a TCP connection test to `dst` from the stack; the result arrives through
    /// [`TcpProbes::take_results`].
    pub fn start(
        &mut self,
        ep: &mut impl Endpoint,
        dst: SocketAddr,
        from: ProbeSource,
        timeout: Duration,
    ) -> Result<ProbeId, ProbeError> {
        if self.pending.len() >= MAX_PENDING {
            return Err(ProbeError::Busy);
        }
        let opened = match from {
            ProbeSource::Route => ep.tcp_connect(dst, None, 1024, 1024),
            ProbeSource::Vmknic(id) => ep.tcp_connect(dst, Some(id), 1024, 1024),
            ProbeSource::Address(a) => ep.tcp_connect_from(dst, a, 1024, 1024),
        };
        let handle = opened.map_err(|e| match e {
            SocketError::NoRoute(_) | SocketError::NoRoute6(_) => ProbeError::NoRoute,
            SocketError::NoVmknic(id) => ProbeError::NotFound(id),
            SocketError::NotLocal(a) => ProbeError::NotLocal(a),
            SocketError::LinkDown(id, why) => ProbeError::Other(format!("{id} is down: {why}")),
            e => ProbeError::Other(e.to_string()),
        })?;
        let sock = ep.sockets().get::<tcp::Socket>(handle);
        let (local_port, source) = sock
            .local_endpoint()
            .map_or((0, String::new()), |e| (e.port, e.to_string()));
        let now = Instant::now();
        self.next_id += 1;
        let id = self.next_id;
        self.pending.push(Pending {
            id,
            handle,
            dst,
            local_port,
            source,
            started: now,
            deadline: now + timeout,
        });
        ep.set_time(now);
        ep.poll_local();
        Ok(id)
    }

    /// Probes whose SYN ARP or Neighbour Discovery could not deliver fail with "Host is down".
    pub fn neighbor_failed(&mut self, f: &FailedPacket) {
        if f.protocol != 6 {
            return;
        }
        if let Some(pos) = self.pending.iter().position(|p| {
            p.local_port == f.src_port && p.dst.port() == f.dst_port && p.dst.ip() == f.dst
        }) {
            let p = self.pending.swap_remove(pos);
            self.done.push((p.id, Err(ProbeError::HostDown)));
            self.finished.push(p.handle);
        }
    }

    /// Completes probes whose socket connected, was refused or ran out of time, frees their
    /// sockets and hands every finished probe to `f`.
    pub fn take_results(
        &mut self,
        ep: &mut impl Endpoint,
        mut f: impl FnMut(ProbeId, Result<ProbeResult, ProbeError>),
    ) {
        // Probes `neighbor_failed` finished are no longer pending but still to be reported.
        if self.pending.is_empty() && self.done.is_empty() && self.finished.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut i = 0;
        while i < self.pending.len() {
            let p = &self.pending[i];
            let state = ep.sockets().get::<tcp::Socket>(p.handle).state();
            let outcome = match state {
                tcp::State::Established | tcp::State::CloseWait => Some(Ok(ProbeResult {
                    source: p.source.clone(),
                    connect_us: now.saturating_duration_since(p.started).as_micros() as u64,
                })),
                tcp::State::Closed => Some(Err(ProbeError::Refused)),
                _ if p.deadline <= now => Some(Err(ProbeError::Timeout)),
                _ => None,
            };
            match outcome {
                Some(r) => {
                    let p = self.pending.swap_remove(i);
                    self.done.push((p.id, r));
                    self.finished.push(p.handle);
                }
                None => i += 1,
            }
        }
        for h in self.finished.drain(..) {
            // A connected probe is closed with a reset, as `nc -z` does.
            ep.sockets().get_mut::<tcp::Socket>(h).abort();
            ep.poll_local();
            ep.sockets().remove(h);
        }
        for (id, r) in self.done.drain(..) {
            f(id, r);
        }
    }
}

#[cfg(test)]
mod tests {

    use smoltcp::wire::IpProtocol;

    use super::*;
    use crate::engine::testlab::*;

    /// Starts a probe of HOST1:3260 and returns the SYN it sent (TCP header and all).
    fn start(lab: &mut Lab, probes: &mut TcpProbes) -> (ProbeId, Vec<u8>) {
        lab.learn(1, HOST1, HOST1_MAC);
        let dst = SocketAddr::from((HOST1, 3260));
        let id = probes.start(
            &mut lab.engine,
            dst,
            ProbeSource::Route,
            Duration::from_secs(5),
        );
        let Ok(id) = id else {
            panic!("probe refused: {id:?}")
        };
        let sent = lab.sent(1);
        assert_eq!(sent.len(), 1, "a SYN");
        let ip = ip_of(&sent[0]);
        assert_eq!((ip.src_addr(), ip.dst_addr()), (VMK1_IP, HOST1));
        let syn = ip.payload().to_vec();
        assert_eq!(syn[13] & 0x12, 0x02, "SYN");
        (id, syn)
    }

    /// A TCP segment from HOST1:3260 answering `syn` with `flags`.
    fn answer(syn: &[u8], flags: u8) -> Vec<u8> {
        let seq = u32::from_be_bytes([syn[4], syn[5], syn[6], syn[7]]);
        let mut t = vec![0u8; 20];
        t[0..2].copy_from_slice(&syn[2..4]);
        t[2..4].copy_from_slice(&syn[0..2]);
        t[4..8].copy_from_slice(&5000u32.to_be_bytes());
        t[8..12].copy_from_slice(&(seq + 1).to_be_bytes());
        t[12] = 5 << 4;
        t[13] = flags;
        t[14..16].copy_from_slice(&64240u16.to_be_bytes());
        let sum = tcp_checksum(HOST1, VMK1_IP, &t);
        t[16..18].copy_from_slice(&sum.to_be_bytes());
        eth(
            VMK1_MAC,
            HOST1_MAC,
            &ipv4(HOST1, VMK1_IP, IpProtocol::Tcp, 64, true, &t),
        )
    }

    fn results(
        lab: &mut Lab,
        probes: &mut TcpProbes,
    ) -> Vec<(ProbeId, Result<String, ProbeError>)> {
        let mut got = Vec::new();
        probes.take_results(&mut lab.engine, |i, r| got.push((i, r.map(|p| p.source))));
        got
    }

    #[test]
    fn test_reset_is_connection_refused() {
        let mut lab = Lab::plain();
        let mut probes = TcpProbes::new();
        let (id, syn) = start(&mut lab, &mut probes);
        lab.receive(1, &answer(&syn, 0x14)); // RST, ACK
        assert_eq!(
            results(&mut lab, &mut probes),
            vec![(id, Err(ProbeError::Refused))]
        );
    }

    #[test]
    fn test_established_succeeds_and_is_reset() {
        let mut lab = Lab::plain();
        let mut probes = TcpProbes::new();
        let (id, syn) = start(&mut lab, &mut probes);
        lab.receive(1, &answer(&syn, 0x12)); // SYN, ACK
        let sport = u16::from_be_bytes([syn[0], syn[1]]);
        let source = format!("{VMK1_IP}:{sport}");
        assert_eq!(results(&mut lab, &mut probes), vec![(id, Ok(source))]);
        // The ACK of the handshake, then the reset `nc -z` closes with.
        let flags: Vec<u8> = lab.sent(1).iter().map(|f| ip_of(f).payload()[13]).collect();
        assert_eq!(
            flags.last().map(|f| f & 0x04),
            Some(0x04),
            "ends with RST: {flags:?}"
        );
        assert_eq!(lab.engine.sockets().iter().count(), 0, "socket freed");
    }

    #[test]
    fn test_no_route_and_unknown_vmknic() {
        let mut lab = Lab::new(&config(false, false, 1500, ""), [false, false]);
        let mut probes = TcpProbes::new();
        let far = SocketAddr::from((REMOTE, 22));
        let t = Duration::from_secs(1);
        assert_eq!(
            probes.start(&mut lab.engine, far, ProbeSource::Route, t),
            Err(ProbeError::NoRoute)
        );
        assert_eq!(
            probes.start(
                &mut lab.engine,
                far,
                ProbeSource::Address(VMK0_IP.into()),
                t
            ),
            Err(ProbeError::NoRoute)
        );
        let near = SocketAddr::from((HOST1, 22));
        let via = ProbeSource::Vmknic(VmknicId(5));
        assert_eq!(
            probes.start(&mut lab.engine, near, via, t),
            Err(ProbeError::NotFound(VmknicId(5)))
        );
        // `-s` with an address that is no vmknic's: netcat's "bind failed".
        let stranger = ProbeSource::Address(HOST0.into());
        assert_eq!(
            probes.start(&mut lab.engine, near, stranger, t),
            Err(ProbeError::NotLocal(HOST0.into()))
        );
    }

    #[test]
    fn test_source_address_is_kept_and_routing_picks_the_way_out() {
        let mut lab = Lab::plain();
        let mut probes = TcpProbes::new();
        lab.learn(1, HOST1, HOST1_MAC);
        let dst = SocketAddr::from((HOST1, 3260));
        let from = ProbeSource::Address(VMK0_IP.into());
        let id = probes.start(&mut lab.engine, dst, from, Duration::from_secs(5));
        assert!(id.is_ok(), "{id:?}");
        assert!(lab.sent(0).is_empty(), "nothing out of vmk0");
        let sent = lab.sent(1);
        assert_eq!(sent.len(), 1, "a SYN out of vmk1, toward HOST1's subnet");
        let ip = ip_of(&sent[0]);
        assert_eq!((ip.src_addr(), ip.dst_addr()), (VMK0_IP, HOST1));
    }
}
