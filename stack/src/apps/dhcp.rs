//! DHCP for a vmknic (`esxcli network ip interface ipv4 set -t dhcp`, `esxcfg-vmknic -a -i
//! DHCP`): a client per vmknic (RFC 2131: DISCOVER, OFFER, REQUEST, ACK; RENEWING at T1,
//! REBINDING at T2, the lease lost at its end; RELEASE when the vmknic stops using DHCP or is
//! removed).
//!
//! smoltcp's own DHCP socket is not used: the stack's one smoltcp `Interface` holds every
//! vmknic's addresses, so a socket's broadcasts could not be tied to one vmknic nor its
//! answers told apart. Instead each client builds whole Ethernet frames (smoltcp's DHCP wire
//! types for the message) that the engine sends out of that vmknic, and the engine hands it
//! the DHCP answers (UDP 67 → 68) that arrive on that vmknic. Pure: the caller passes the
//! time and sends the frames.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;
use smoltcp::wire::{
    DhcpMessageType, DhcpPacket, DhcpRepr, EthernetAddress, IpProtocol, Ipv4Packet, UdpPacket,
    DHCP_CLIENT_PORT, DHCP_SERVER_PORT,
};
use vmkstack_routing::VmknicId;
use vmkstack_vmknic::MacAddr;

/// Ethernet + IPv4 + UDP headers in front of a DHCP message.
const HEADERS: usize = 14 + 20 + 8;
/// Longest frame a client sends (a DHCP message with our few options fits in 350 bytes).
pub const MAX_FRAME: usize = 576;
/// First retransmission delay; doubled each time, up to [`MAX_RETRY`] (RFC 2131 4.1 uses 4 s
/// doubling to 64 s; a lab wants answers sooner).
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// Longest retransmission delay.
const MAX_RETRY: Duration = Duration::from_secs(8);
/// REQUESTs sent for one OFFER before discovering again.
const MAX_REQUESTS: u32 = 4;
/// Lease length assumed when the server names none.
const DEFAULT_LEASE: Duration = Duration::from_secs(3600);
/// Options asked for: subnet mask, router, DNS servers, lease time.
const PARAMETERS: &[u8] = &[1, 3, 6, 51];

/// A lease the server granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The address and its subnet.
    pub address: Ipv4Net,
    /// The router the server named, if any.
    pub router: Option<Ipv4Addr>,
    /// The server that granted it.
    pub server: Ipv4Addr,
    /// Its length.
    pub duration: Duration,
}

/// What changed for the vmknic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A lease was granted or renewed: apply it.
    Bound(Lease),
    /// The lease ended or the server refused it: the address goes.
    Lost,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Broadcasting DISCOVERs.
    Selecting,
    /// Asking for an offered address.
    Requesting {
        offered: Ipv4Addr,
        server: Ipv4Addr,
        sent: u32,
    },
    /// Holding a lease until T1.
    Bound,
    /// T1 passed: asking to extend it.
    Renewing,
    /// T2 passed: asking any server to extend it.
    Rebinding,
}

/// The DHCP client of one vmknic.
#[derive(Debug)]
pub struct Client {
    /// Its vmknic.
    pub vmknic: VmknicId,
    mac: MacAddr,
    state: State,
    xid: u32,
    /// When to send next (or, bound, when T1 comes).
    next: Instant,
    retry: Duration,
    lease: Option<(Lease, Instant)>,
}

/// The transaction ID of a new exchange: the time and the MAC mixed, different per vmknic
/// and per restart (no secret here, only an identifier).
fn new_xid(mac: MacAddr, salt: u32) -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let m = u32::from_be_bytes([mac.0[2], mac.0[3], mac.0[4], mac.0[5]]);
    nanos.rotate_left(7) ^ m ^ salt.wrapping_mul(0x9e37_79b9)
}

impl Client {
    /// A client that starts by discovering at `now`.
    pub fn new(vmknic: VmknicId, mac: MacAddr, now: Instant) -> Client {
        Client {
            vmknic,
            mac,
            state: State::Selecting,
            xid: new_xid(mac, vmknic.0),
            next: now,
            retry: FIRST_RETRY,
            lease: None,
        }
    }

    /// The lease held, if any.
    pub fn lease(&self) -> Option<Lease> {
        self.lease.map(|(l, _)| l)
    }

    /// When [`Client::poll`] has something to do.
    pub fn next_deadline(&self) -> Instant {
        self.next
    }

    fn backoff(&mut self, now: Instant) {
        self.next = now + self.retry;
        self.retry = (self.retry * 2).min(MAX_RETRY);
    }

    fn restart(&mut self, now: Instant) {
        self.state = State::Selecting;
        self.xid = new_xid(self.mac, self.xid);
        self.retry = FIRST_RETRY;
        self.next = now;
    }

    /// Runs the timers: writes the message due now into `frame` and returns its length (0 if
    /// none), with the event the timers caused (a lease that ran out).
    pub fn poll(&mut self, now: Instant, frame: &mut [u8]) -> (usize, Option<Event>) {
        let mut event = None;
        if let Some((lease, at)) = self.lease {
            if now >= at + lease.duration {
                self.lease = None;
                self.restart(now);
                event = Some(Event::Lost);
            } else if self.state == State::Renewing && now >= at + t2(lease.duration) {
                self.state = State::Rebinding;
            }
        }
        if now < self.next {
            return (0, event);
        }
        let n = match self.state {
            State::Selecting => {
                self.backoff(now);
                self.write(frame, DhcpMessageType::Discover, None, None, None)
            }
            State::Requesting {
                offered,
                server,
                sent,
            } => {
                if sent >= MAX_REQUESTS {
                    self.restart(now);
                    return (0, event);
                }
                self.state = State::Requesting {
                    offered,
                    server,
                    sent: sent + 1,
                };
                self.backoff(now);
                self.write(
                    frame,
                    DhcpMessageType::Request,
                    None,
                    Some(offered),
                    Some(server),
                )
            }
            State::Bound => {
                // T1: start renewing.
                self.state = State::Renewing;
                self.retry = FIRST_RETRY;
                self.xid = new_xid(self.mac, self.xid);
                self.backoff(now);
                let ip = self.lease.map(|(l, _)| l.address.addr());
                self.write(frame, DhcpMessageType::Request, ip, None, None)
            }
            State::Renewing | State::Rebinding => {
                self.backoff(now);
                let ip = self.lease.map(|(l, _)| l.address.addr());
                self.write(frame, DhcpMessageType::Request, ip, None, None)
            }
        };
        (n, event)
    }

    /// Takes a DHCP answer (`ip`: the IP packet, UDP 67 → 68) that arrived on the vmknic.
    pub fn receive(&mut self, ip: &[u8], now: Instant) -> Option<Event> {
        let ipv4 = Ipv4Packet::new_checked(ip).ok()?;
        if ipv4.next_header() != IpProtocol::Udp {
            return None;
        }
        let udp = UdpPacket::new_checked(ipv4.payload()).ok()?;
        if udp.src_port() != DHCP_SERVER_PORT || udp.dst_port() != DHCP_CLIENT_PORT {
            return None;
        }
        let dhcp = DhcpPacket::new_checked(udp.payload()).ok()?;
        let repr = DhcpRepr::parse(&dhcp).ok()?;
        if repr.transaction_id != self.xid || repr.client_hardware_address.0 != self.mac.0 {
            return None;
        }
        match (repr.message_type, self.state) {
            (DhcpMessageType::Offer, State::Selecting) => {
                let server = repr.server_identifier?;
                self.state = State::Requesting {
                    offered: repr.your_ip,
                    server,
                    sent: 0,
                };
                self.retry = FIRST_RETRY;
                self.next = now;
                None
            }
            (
                DhcpMessageType::Ack,
                State::Requesting { .. } | State::Renewing | State::Rebinding,
            ) => {
                let mask = repr.subnet_mask?;
                let len = u32::from(mask).leading_ones() as u8;
                let address = Ipv4Net::new(repr.your_ip, len).ok()?;
                let duration = repr
                    .lease_duration
                    .map_or(DEFAULT_LEASE, |s| Duration::from_secs(u64::from(s)));
                let server = repr
                    .server_identifier
                    .or_else(|| self.lease.map(|(l, _)| l.server))?;
                let lease = Lease {
                    address,
                    router: repr.router,
                    server,
                    duration,
                };
                self.lease = Some((lease, now));
                self.state = State::Bound;
                let renew = repr
                    .renew_duration
                    .map_or(duration / 2, |s| Duration::from_secs(u64::from(s)));
                self.next = now + renew.max(Duration::from_secs(1));
                Some(Event::Bound(lease))
            }
            (DhcpMessageType::Nak, State::Requesting { .. }) => {
                self.restart(now);
                None
            }
            (DhcpMessageType::Nak, State::Renewing | State::Rebinding) => {
                self.lease = None;
                self.restart(now);
                Some(Event::Lost)
            }
            _ => None,
        }
    }

    /// Writes a RELEASE of the lease held (0 if none).
    pub fn release(&self, frame: &mut [u8]) -> usize {
        match self.lease {
            Some((l, _)) => self.write(
                frame,
                DhcpMessageType::Release,
                Some(l.address.addr()),
                None,
                Some(l.server),
            ),
            None => 0,
        }
    }

    /// Writes a DHCP message in a broadcast frame from 0.0.0.0 (or `ciaddr`) and returns its
    /// length, 0 if `frame` is too short.
    fn write(
        &self,
        frame: &mut [u8],
        kind: DhcpMessageType,
        ciaddr: Option<Ipv4Addr>,
        requested: Option<Ipv4Addr>,
        server: Option<Ipv4Addr>,
    ) -> usize {
        let repr = DhcpRepr {
            message_type: kind,
            transaction_id: self.xid,
            secs: 0,
            client_hardware_address: EthernetAddress(self.mac.0),
            client_ip: ciaddr.unwrap_or(Ipv4Addr::UNSPECIFIED),
            your_ip: Ipv4Addr::UNSPECIFIED,
            server_ip: Ipv4Addr::UNSPECIFIED,
            router: None,
            subnet_mask: None,
            relay_agent_ip: Ipv4Addr::UNSPECIFIED,
            // Ask for broadcast answers while we have no address (they reach us without ARP).
            broadcast: ciaddr.is_none(),
            requested_ip: requested,
            client_identifier: Some(EthernetAddress(self.mac.0)),
            server_identifier: server,
            parameter_request_list: (kind != DhcpMessageType::Release).then_some(PARAMETERS),
            dns_servers: None,
            max_size: None,
            lease_duration: None,
            renew_duration: None,
            rebind_duration: None,
            additional_options: &[],
        };
        let dhcp_len = repr.buffer_len();
        let total = HEADERS + dhcp_len;
        let Some(frame) = frame.get_mut(..total) else {
            return 0;
        };
        frame.fill(0);
        let (eth, rest) = frame.split_at_mut(14);
        // Every frame is a link-layer broadcast (no ARP needed); a RELEASE is addressed to
        // the server at the IP layer.
        eth[..6].copy_from_slice(&[0xff; 6]);
        eth[6..12].copy_from_slice(&self.mac.0);
        eth[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let src = ciaddr.unwrap_or(Ipv4Addr::UNSPECIFIED);
        let dst = match kind {
            DhcpMessageType::Release => server.unwrap_or(Ipv4Addr::BROADCAST),
            _ => Ipv4Addr::BROADCAST,
        };
        let ip_len = 20 + 8 + dhcp_len;
        let (ip, udp) = rest.split_at_mut(20);
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
        ip[8] = 64;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&src.octets());
        ip[16..20].copy_from_slice(&dst.octets());
        let sum = !smoltcp::wire::checksum::data(ip);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        udp[0..2].copy_from_slice(&DHCP_CLIENT_PORT.to_be_bytes());
        udp[2..4].copy_from_slice(&DHCP_SERVER_PORT.to_be_bytes());
        udp[4..6].copy_from_slice(&((8 + dhcp_len) as u16).to_be_bytes());
        // UDP checksum 0: none (RFC 768, allowed over IPv4).
        let mut pkt = DhcpPacket::new_unchecked(&mut udp[8..]);
        if repr.emit(&mut pkt).is_err() {
            return 0;
        }
        total
    }
}

/// T2: seven eighths of the lease (RFC 2131 4.4.5).
fn t2(lease: Duration) -> Duration {
    lease * 7 / 8
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x42]);
    const SERVER: Ipv4Addr = Ipv4Addr::new(198, 18, 7, 1);
    const OFFER: Ipv4Addr = Ipv4Addr::new(198, 18, 7, 50);

    /// What a client's message says.
    struct Msg {
        message_type: DhcpMessageType,
        transaction_id: u32,
        broadcast: bool,
        client_ip: Ipv4Addr,
        requested_ip: Option<Ipv4Addr>,
        server_identifier: Option<Ipv4Addr>,
    }

    /// The DHCP message in a frame a client wrote.
    fn message(frame: &[u8]) -> Msg {
        let ip = Ipv4Packet::new_checked(&frame[14..]).unwrap();
        assert!(ip.verify_checksum());
        let udp = UdpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!((udp.src_port(), udp.dst_port()), (68, 67));
        let dhcp = DhcpPacket::new_checked(udp.payload()).unwrap();
        let r = DhcpRepr::parse(&dhcp).unwrap();
        Msg {
            message_type: r.message_type,
            transaction_id: r.transaction_id,
            broadcast: r.broadcast,
            client_ip: r.client_ip,
            requested_ip: r.requested_ip,
            server_identifier: r.server_identifier,
        }
    }

    /// A server's answer of `kind` to transaction `xid`, as the IP packet the engine hands on.
    fn answer(kind: DhcpMessageType, xid: u32, lease: u32) -> Vec<u8> {
        let repr = DhcpRepr {
            message_type: kind,
            transaction_id: xid,
            secs: 0,
            client_hardware_address: EthernetAddress(MAC.0),
            client_ip: Ipv4Addr::UNSPECIFIED,
            your_ip: OFFER,
            server_ip: Ipv4Addr::UNSPECIFIED,
            router: Some(SERVER),
            subnet_mask: Some(Ipv4Addr::new(255, 255, 255, 0)),
            relay_agent_ip: Ipv4Addr::UNSPECIFIED,
            broadcast: true,
            requested_ip: None,
            client_identifier: None,
            server_identifier: Some(SERVER),
            parameter_request_list: None,
            dns_servers: None,
            max_size: None,
            lease_duration: Some(lease),
            renew_duration: None,
            rebind_duration: None,
            additional_options: &[],
        };
        let n = repr.buffer_len();
        let mut pkt = vec![0u8; 28 + n];
        pkt[0] = 0x45;
        pkt[2..4].copy_from_slice(&((28 + n) as u16).to_be_bytes());
        pkt[8] = 64;
        pkt[9] = 17;
        pkt[12..16].copy_from_slice(&SERVER.octets());
        pkt[16..20].copy_from_slice(&Ipv4Addr::BROADCAST.octets());
        pkt[20..22].copy_from_slice(&67u16.to_be_bytes());
        pkt[22..24].copy_from_slice(&68u16.to_be_bytes());
        pkt[24..26].copy_from_slice(&((8 + n) as u16).to_be_bytes());
        let mut d = DhcpPacket::new_unchecked(&mut pkt[28..]);
        repr.emit(&mut d).unwrap();
        pkt
    }

    #[test]
    fn test_discover_request_ack_renew_expire() {
        let t0 = Instant::now();
        let mut c = Client::new(VmknicId(2), MAC, t0);
        let mut frame = [0u8; MAX_FRAME];
        let (n, ev) = c.poll(t0, &mut frame);
        assert!(n > 0 && ev.is_none());
        assert_eq!(&frame[..6], &[0xff; 6], "broadcast");
        let discover = message(&frame[..n]);
        assert_eq!(discover.message_type, DhcpMessageType::Discover);
        assert!(discover.broadcast);
        let xid = discover.transaction_id;
        // Nothing more until the retransmission time; then the DISCOVER again.
        assert_eq!(c.poll(t0 + Duration::from_millis(500), &mut frame).0, 0);
        assert!(c.poll(t0 + Duration::from_secs(1), &mut frame).0 > 0);

        // An answer to another transaction is ignored; the OFFER brings a REQUEST at once.
        assert_eq!(
            c.receive(&answer(DhcpMessageType::Offer, xid ^ 1, 60), t0),
            None
        );
        assert_eq!(
            c.receive(&answer(DhcpMessageType::Offer, xid, 60), t0),
            None
        );
        let (n, _) = c.poll(t0, &mut frame);
        let request = message(&frame[..n]);
        assert_eq!(request.message_type, DhcpMessageType::Request);
        assert_eq!(
            (request.requested_ip, request.server_identifier),
            (Some(OFFER), Some(SERVER))
        );
        let lease = Lease {
            address: "198.18.7.50/24".parse().unwrap(),
            router: Some(SERVER),
            server: SERVER,
            duration: Duration::from_secs(60),
        };
        assert_eq!(
            c.receive(&answer(DhcpMessageType::Ack, xid, 60), t0),
            Some(Event::Bound(lease))
        );
        assert_eq!(c.lease(), Some(lease));

        // T1 (30 s): a REQUEST from the leased address; the ACK renews it.
        assert_eq!(c.poll(t0 + Duration::from_secs(29), &mut frame).0, 0);
        let t1 = t0 + Duration::from_secs(30);
        let (n, _) = c.poll(t1, &mut frame);
        let renew = message(&frame[..n]);
        assert_eq!(renew.client_ip, OFFER);
        assert_eq!(renew.requested_ip, None);
        assert_eq!(
            c.receive(&answer(DhcpMessageType::Ack, renew.transaction_id, 60), t1),
            Some(Event::Bound(lease))
        );

        // Unanswered renewals: at the end of the lease it is lost and discovery restarts.
        let mut t = t1;
        let mut lost = None;
        while t < t1 + Duration::from_secs(61) {
            t += Duration::from_secs(1);
            if let (n, Some(Event::Lost)) = c.poll(t, &mut frame) {
                lost = Some(n);
                break;
            }
        }
        assert!(t >= t1 + Duration::from_secs(60), "lost before its end");
        let n = lost.expect("the lease never ended");
        assert_eq!(c.lease(), None);
        // Discovery again, in the same turn.
        assert_eq!(message(&frame[..n]).message_type, DhcpMessageType::Discover);
    }

    #[test]
    fn test_nak_and_release() {
        let t0 = Instant::now();
        let mut c = Client::new(VmknicId(0), MAC, t0);
        let mut frame = [0u8; MAX_FRAME];
        let (n, _) = c.poll(t0, &mut frame);
        let xid = message(&frame[..n]).transaction_id;
        assert_eq!(c.release(&mut frame), 0, "nothing to release");
        c.receive(&answer(DhcpMessageType::Offer, xid, 60), t0);
        assert_eq!(c.receive(&answer(DhcpMessageType::Nak, xid, 60), t0), None);
        let (n, _) = c.poll(t0, &mut frame);
        let again = message(&frame[..n]);
        assert_eq!(again.message_type, DhcpMessageType::Discover);
        let xid = again.transaction_id;
        c.receive(&answer(DhcpMessageType::Offer, xid, 60), t0);
        c.poll(t0, &mut frame);
        assert!(c
            .receive(&answer(DhcpMessageType::Ack, xid, 60), t0)
            .is_some());
        let n = c.release(&mut frame);
        let release = message(&frame[..n]);
        assert_eq!(release.message_type, DhcpMessageType::Release);
        assert_eq!(
            (release.client_ip, release.server_identifier),
            (OFFER, Some(SERVER))
        );
        // Truncated or foreign packets are ignored.
        assert_eq!(c.receive(&[0x45, 0, 0], t0), None);
    }
}
