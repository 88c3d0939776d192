//! DHCPv6 for a vmknic (`esxcli network ip interface ipv6 set -d true`, config `ipv6_dhcp`):
//! a stateful client per vmknic (RFC 8415, one IA_NA): SOLICIT, ADVERTISE, REQUEST, REPLY;
//! RENEW at T1 to the server that granted the address, REBIND at T2 to any server, the address
//! lost at the end of its valid lifetime; RELEASE when DHCPv6 is turned off or the vmknic is
//! removed; DECLINE when duplicate address detection finds another holder. The client
//! identifier is a DUID-LL from the vmknic's MAC (RFC 8415 11.4), the IAID the vmknic's number.
//!
//! As the DHCPv4 client (`dhcp.rs`), and for the same reason, this is no smoltcp UDP socket on
//! port 546: the netstack's one smoltcp interface holds every vmknic's link-local address, so
//! a socket's multicast to ff02::1:2 could not be tied to one vmknic nor its answers told
//! apart. The client builds whole Ethernet frames from its vmknic's link-local address to
//! All_DHCP_Relay_Agents_and_Servers, which the engine sends out of that vmknic, and the engine
//! hands it the UDP 547 → 546 packets that arrive on that vmknic. Pure and without allocation:
//! the caller passes the time and sends the frames; the server's DUID is kept in a fixed array.
//!
//! A lab client's simplifications: the first ADVERTISE that offers an address is taken (no
//! wait for a higher preference); no random delay before the first SOLICIT; retransmissions
//! start at 1 s and double up to 8 s (RFC 8415's SOL_MAX_RT is 3600 s); one address per
//! vmknic; a RELEASE is sent once, not retransmitted (the vmknic may be going).

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use smoltcp::wire::checksum;
use vmkstack_routing::VmknicId;
use vmkstack_vmknic::MacAddr;

/// DHCPv6 client and server ports.
pub const CLIENT_PORT: u16 = 546;
/// The servers' (and relays') port.
pub const SERVER_PORT: u16 = 547;
/// All_DHCP_Relay_Agents_and_Servers.
const ALL_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);
/// Ethernet + IPv6 + UDP headers in front of a DHCPv6 message.
const HEADERS: usize = 14 + 40 + 8;
/// Longest DUID (RFC 8415 11.1).
const MAX_DUID: usize = 130;
/// Longest frame a client sends: headers, message header, client and server identifiers,
/// IA_NA with one address, elapsed time, option request.
pub const MAX_FRAME: usize = HEADERS + 4 + (4 + 10) + (4 + MAX_DUID) + (4 + 12 + 4 + 24) + 6 + 6;

const SOLICIT: u8 = 1;
const ADVERTISE: u8 = 2;
const REQUEST: u8 = 3;
const RENEW: u8 = 5;
const REBIND: u8 = 6;
const REPLY: u8 = 7;
const RELEASE: u8 = 8;
const DECLINE: u8 = 9;

const OPT_CLIENTID: u16 = 1;
const OPT_SERVERID: u16 = 2;
const OPT_IA_NA: u16 = 3;
const OPT_IAADDR: u16 = 5;
const OPT_ORO: u16 = 6;
const OPT_ELAPSED_TIME: u16 = 8;
const OPT_STATUS_CODE: u16 = 13;
const OPT_SOL_MAX_RT: u16 = 82;

/// First retransmission delay (SOL_TIMEOUT, REQ_TIMEOUT); doubled each time up to
/// [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// Longest retransmission delay (a lab wants answers sooner than RFC 8415's minutes).
const MAX_RETRY: Duration = Duration::from_secs(8);
/// REQUESTs sent for one ADVERTISE before soliciting again (REQ_MAX_RC).
const REQ_MAX_RC: u32 = 10;
/// How often a client waiting for its link-local address (DAD) looks again.
const WAIT_LINK_LOCAL: Duration = Duration::from_millis(100);
/// Shortest T1 taken (a server's 0 or tiny T1 must not make the client spin).
const MIN_T1: Duration = Duration::from_secs(1);

/// An address the server granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The address (IA_NA addresses carry no prefix length).
    pub address: Ipv6Addr,
    /// Its preferred lifetime.
    pub preferred: Duration,
    /// Its valid lifetime.
    pub valid: Duration,
    /// When to renew (T1), from the grant.
    pub t1: Duration,
    /// When to rebind (T2), from the grant.
    pub t2: Duration,
}

/// What changed for the vmknic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// An address was granted or its lifetimes extended: apply it.
    Bound(Lease),
    /// The address ended (valid lifetime over, or the server took it back): it goes.
    Lost,
}

/// A packet that is no well-formed DHCPv6 answer (cut options, bad checksum, no server
/// identifier...): the caller counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Multicasting SOLICITs.
    Soliciting,
    /// Asking the chosen server for the address it advertised.
    Requesting { address: Ipv6Addr, sent: u32 },
    /// Holding an address until T1.
    Bound,
    /// T1 passed: asking the granting server to extend it.
    Renewing,
    /// T2 passed: asking any server to extend it.
    Rebinding,
}

/// A server's DUID, kept without allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Duid {
    len: u8,
    bytes: [u8; MAX_DUID],
}

impl Duid {
    fn new(b: &[u8]) -> Option<Duid> {
        if b.is_empty() || b.len() > MAX_DUID {
            return None;
        }
        let mut bytes = [0; MAX_DUID];
        bytes[..b.len()].copy_from_slice(b);
        Some(Duid {
            len: b.len() as u8,
            bytes,
        })
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// The DHCPv6 client of one vmknic.
#[derive(Debug)]
pub struct Client {
    /// Its vmknic.
    pub vmknic: VmknicId,
    mac: MacAddr,
    iaid: u32,
    state: State,
    /// Transaction ID (24 bits).
    xid: u32,
    /// When the current exchange began (the Elapsed Time option).
    started: Instant,
    /// When to send next (or, bound, when T1 comes).
    next: Instant,
    retry: Duration,
    /// The server of the exchange (the advertising one, then the granting one).
    server: Option<Duid>,
    lease: Option<(Lease, Instant)>,
    /// The last Router Advertisement's M flag (RFC 4861 4.2).
    managed: bool,
}

/// A 24-bit transaction ID: the time and the MAC mixed, different per vmknic and per restart
/// (an identifier, no secret).
fn new_xid(mac: MacAddr, salt: u32) -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let m = u32::from_be_bytes([mac.0[2], mac.0[3], mac.0[4], mac.0[5]]);
    (nanos.rotate_left(11) ^ m ^ salt.wrapping_mul(0x9e37_79b9)) & 0x00ff_ffff
}

/// `now + d`, saturating.
fn after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .unwrap_or(now + Duration::from_secs(86400 * 365))
}

/// The options of a DHCPv6 message or option body: `(code, data)` until the end; `Err` when
/// one is cut.
fn options<'a>(mut b: &'a [u8]) -> impl Iterator<Item = Result<(u16, &'a [u8]), Malformed>> + 'a {
    std::iter::from_fn(move || {
        if b.is_empty() {
            return None;
        }
        let Some(h) = b.first_chunk::<4>() else {
            b = &[];
            return Some(Err(Malformed("option header cut")));
        };
        let code = u16::from_be_bytes([h[0], h[1]]);
        let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
        let Some(data) = b.get(4..4 + len) else {
            b = &[];
            return Some(Err(Malformed("option longer than its message")));
        };
        b = &b[4 + len..];
        Some(Ok((code, data)))
    })
}

fn be32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| s.first_chunk::<4>())
        .map_or(0, |s| u32::from_be_bytes(*s))
}

/// The status code of a Status Code option body (0: success).
fn status(data: &[u8]) -> Result<u16, Malformed> {
    data.first_chunk::<2>()
        .map(|s| u16::from_be_bytes(*s))
        .ok_or(Malformed("status code cut"))
}

/// What an IA_NA of an answer holds: T1, T2, its status, and its first address with
/// lifetimes.
#[derive(Debug, Default)]
struct IaNa {
    t1: u32,
    t2: u32,
    status: u16,
    address: Option<(Ipv6Addr, u32, u32)>,
}

fn parse_ia_na(data: &[u8], iaid: u32) -> Result<Option<IaNa>, Malformed> {
    if data.len() < 12 {
        return Err(Malformed("IA_NA shorter than 12 bytes"));
    }
    if be32(data, 0) != iaid {
        return Ok(None);
    }
    let mut ia = IaNa {
        t1: be32(data, 4),
        t2: be32(data, 8),
        ..IaNa::default()
    };
    for o in options(&data[12..]) {
        match o? {
            (OPT_IAADDR, a) => {
                let addr = a
                    .first_chunk::<16>()
                    .map(|a| Ipv6Addr::from(*a))
                    .ok_or(Malformed("IA address shorter than 24 bytes"))?;
                if a.len() < 24 {
                    return Err(Malformed("IA address shorter than 24 bytes"));
                }
                let (preferred, valid) = (be32(a, 16), be32(a, 20));
                let mut st = 0;
                for o in options(&a[24..]) {
                    if let (OPT_STATUS_CODE, s) = o? {
                        st = status(s)?;
                    }
                }
                // RFC 8415 21.6: a preferred lifetime above the valid one is discarded.
                if st == 0 && preferred <= valid && ia.address.is_none() {
                    ia.address = Some((addr, preferred, valid));
                }
            }
            (OPT_STATUS_CODE, s) => ia.status = status(s)?,
            _ => {}
        }
    }
    Ok(Some(ia))
}

/// What heads a message the client sends.
#[derive(Debug, Clone, Copy)]
struct Message {
    kind: u8,
    xid: u32,
    /// Since the exchange began.
    elapsed: Duration,
}

/// An answer's parts that the client uses.
struct Answer<'a> {
    kind: u8,
    server: &'a [u8],
    status: u16,
    ia: Option<IaNa>,
}

impl Client {
    /// A client that solicits as soon as its vmknic's link-local address is usable.
    pub fn new(vmknic: VmknicId, mac: MacAddr, now: Instant) -> Client {
        Client {
            vmknic,
            mac,
            iaid: vmknic.0,
            state: State::Soliciting,
            xid: new_xid(mac, vmknic.0),
            started: now,
            next: now,
            retry: FIRST_RETRY,
            server: None,
            lease: None,
            managed: false,
        }
    }

    /// The address held, if any.
    pub fn lease(&self) -> Option<Lease> {
        self.lease.map(|(l, _)| l)
    }

    /// When [`Client::poll`] has something to do.
    pub fn next_deadline(&self) -> Instant {
        self.next
    }

    /// A Router Advertisement on the vmknic said `managed` (its M flag): an address is to be
    /// had from DHCPv6. A client still soliciting does so at once instead of waiting out its
    /// back-off. (The O flag, other configuration such as DNS servers, asks for nothing a
    /// vmknic uses.)
    pub fn on_router_advertisement(&mut self, managed: bool, now: Instant) {
        if managed && !self.managed && self.state == State::Soliciting {
            self.retry = FIRST_RETRY;
            self.next = now;
        }
        self.managed = managed;
    }

    fn backoff(&mut self, now: Instant) {
        self.next = after(now, self.retry);
        self.retry = (self.retry * 2).min(MAX_RETRY);
    }

    /// A new exchange (new transaction ID, elapsed time from `now`), its first message due now.
    fn exchange(&mut self, state: State, now: Instant) {
        self.state = state;
        self.xid = new_xid(self.mac, self.xid);
        self.started = now;
        self.retry = FIRST_RETRY;
        self.next = now;
    }

    /// Runs the timers: writes the message due now, from `link_local` (the vmknic's usable
    /// link-local address; `None` while DAD runs, and nothing is sent), into `frame` and
    /// returns its length (0 if none), with the event the timers caused (an address whose
    /// valid lifetime ended).
    pub fn poll(
        &mut self,
        now: Instant,
        link_local: Option<Ipv6Addr>,
        frame: &mut [u8],
    ) -> (usize, Option<Event>) {
        let mut event = None;
        if let Some((lease, at)) = self.lease {
            if now >= after(at, lease.valid) {
                self.lease = None;
                self.server = None;
                self.exchange(State::Soliciting, now);
                event = Some(Event::Lost);
            } else if self.state == State::Renewing && now >= after(at, lease.t2) {
                self.exchange(State::Rebinding, now);
            }
        }
        if now < self.next {
            return (0, event);
        }
        let Some(src) = link_local else {
            self.next = now + WAIT_LINK_LOCAL;
            return (0, event);
        };
        let held = self.lease.map(|(l, _)| l.address);
        let n = match self.state {
            State::Soliciting => {
                self.backoff(now);
                self.write(frame, self.message(SOLICIT, now), src, None, None)
            }
            State::Requesting { address, sent } => {
                if sent >= REQ_MAX_RC {
                    self.exchange(State::Soliciting, now);
                    return (0, event);
                }
                self.state = State::Requesting {
                    address,
                    sent: sent + 1,
                };
                self.backoff(now);
                self.write(
                    frame,
                    self.message(REQUEST, now),
                    src,
                    self.server,
                    Some(address),
                )
            }
            State::Bound => {
                // T1: start renewing with the granting server.
                self.exchange(State::Renewing, now);
                self.backoff(now);
                self.write(frame, self.message(RENEW, now), src, self.server, held)
            }
            State::Renewing => {
                self.backoff(now);
                self.write(frame, self.message(RENEW, now), src, self.server, held)
            }
            State::Rebinding => {
                self.backoff(now);
                self.write(frame, self.message(REBIND, now), src, None, held)
            }
        };
        (n, event)
    }

    /// Takes a packet the engine handed on (`ip`: the IPv6 packet, UDP 547 → 546) that arrived
    /// on the vmknic. `Ok(None)`: nothing changed (another transaction, another client, an
    /// answer with no address); `Err`: malformed, to be counted and dropped.
    pub fn receive(&mut self, ip: &[u8], now: Instant) -> Result<Option<Event>, Malformed> {
        let msg = udp_payload(ip)?;
        let Some(&[kind, x0, x1, x2]) = msg.first_chunk::<4>() else {
            return Err(Malformed("message shorter than its header"));
        };
        if !matches!(kind, ADVERTISE | REPLY) || u32::from_be_bytes([0, x0, x1, x2]) != self.xid {
            return Ok(None);
        }
        let Some(a) = self.parse(kind, &msg[4..])? else {
            return Ok(None);
        };
        Ok(self.on_answer(a, now))
    }

    /// The parts of an ADVERTISE or REPLY for our transaction; `None` when it is for another
    /// client.
    fn parse<'a>(&self, kind: u8, body: &'a [u8]) -> Result<Option<Answer<'a>>, Malformed> {
        let mut client = None;
        let mut server = None;
        let mut st = 0;
        let mut ia = None;
        for o in options(body) {
            match o? {
                (OPT_CLIENTID, c) => client = Some(c),
                (OPT_SERVERID, s) => server = Some(s),
                (OPT_STATUS_CODE, s) => st = status(s)?,
                (OPT_IA_NA, d) => {
                    if let Some(x) = parse_ia_na(d, self.iaid)? {
                        ia.get_or_insert(x);
                    }
                }
                _ => {}
            }
        }
        let server = server.ok_or(Malformed("no server identifier"))?;
        if server.is_empty() || server.len() > MAX_DUID {
            return Err(Malformed("server identifier of a wrong length"));
        }
        let client = client.ok_or(Malformed("no client identifier"))?;
        if client != self.duid() {
            return Ok(None);
        }
        Ok(Some(Answer {
            kind,
            server,
            status: st,
            ia,
        }))
    }

    fn on_answer(&mut self, a: Answer<'_>, now: Instant) -> Option<Event> {
        let offered =
            a.ia.as_ref()
                .filter(|ia| a.status == 0 && ia.status == 0)
                .and_then(|ia| ia.address.map(|x| (ia, x)));
        match (a.kind, self.state) {
            (ADVERTISE, State::Soliciting) => {
                let (_, (address, _, valid)) = offered?;
                if valid == 0 {
                    return None;
                }
                self.server = Duid::new(a.server);
                self.exchange(State::Requesting { address, sent: 0 }, now);
                None
            }
            (REPLY, State::Requesting { .. } | State::Renewing | State::Rebinding) => {
                let Some((ia, (address, preferred, valid))) = offered else {
                    // Refused (NoAddrsAvail, NotOnLink, NoBinding...): a new request for an
                    // address; one still held stays until its valid lifetime ends.
                    if matches!(self.state, State::Requesting { .. }) {
                        self.exchange(State::Soliciting, now);
                    } else {
                        self.server = None;
                        self.exchange(State::Soliciting, now);
                    }
                    return None;
                };
                if valid == 0 {
                    // The server took it back.
                    self.lease = None;
                    self.server = None;
                    self.exchange(State::Soliciting, now);
                    return Some(Event::Lost);
                }
                let secs = |s: u32| Duration::from_secs(u64::from(s));
                let preferred_d = secs(preferred);
                // RFC 8415 21.4: T1 and T2 of 0 are the client's choice: 0.5 and 0.8 times
                // the preferred lifetime.
                let mut t1 = if ia.t1 == 0 {
                    preferred_d / 2
                } else {
                    secs(ia.t1)
                };
                let mut t2 = if ia.t2 == 0 {
                    preferred_d * 4 / 5
                } else {
                    secs(ia.t2)
                };
                t1 = t1.max(MIN_T1);
                t2 = t2.max(t1);
                let lease = Lease {
                    address,
                    preferred: preferred_d,
                    valid: secs(valid),
                    t1,
                    t2,
                };
                if self.state == State::Rebinding || self.server.is_none() {
                    self.server = Duid::new(a.server);
                }
                self.lease = Some((lease, now));
                self.state = State::Bound;
                self.retry = FIRST_RETRY;
                self.next = after(now, t1);
                Some(Event::Bound(lease))
            }
            _ => None,
        }
    }

    /// Writes a RELEASE of the address held, from `link_local` (0 if none is held).
    pub fn release(&self, link_local: Ipv6Addr, frame: &mut [u8]) -> usize {
        match self.lease {
            Some((l, _)) => {
                let xid = new_xid(self.mac, self.xid);
                let m = Message {
                    kind: RELEASE,
                    xid,
                    elapsed: Duration::ZERO,
                };
                self.write(frame, m, link_local, self.server, Some(l.address))
            }
            None => 0,
        }
    }

    /// Duplicate address detection found the address held by another node: writes a DECLINE
    /// of it (0 if none is held), drops it and solicits again.
    pub fn decline(&mut self, link_local: Ipv6Addr, frame: &mut [u8], now: Instant) -> usize {
        let Some((l, _)) = self.lease.take() else {
            return 0;
        };
        let server = self.server.take();
        self.exchange(State::Soliciting, now);
        // The next SOLICIT waits a retransmission time (the server learns of the decline
        // first).
        self.backoff(now);
        let m = self.message(DECLINE, now);
        self.write(frame, m, link_local, server, Some(l.address))
    }

    /// Our DUID-LL: type 3, hardware type 1 (Ethernet), the MAC.
    fn duid(&self) -> [u8; 10] {
        let m = self.mac.0;
        [0, 3, 0, 1, m[0], m[1], m[2], m[3], m[4], m[5]]
    }

    /// The header of a message of `kind` in the current exchange at `now`.
    fn message(&self, kind: u8, now: Instant) -> Message {
        Message {
            kind,
            xid: self.xid,
            elapsed: now.saturating_duration_since(self.started),
        }
    }

    /// Writes DHCPv6 message `m` in a frame from `src` to ff02::1:2 and returns its length, 0
    /// if `frame` is too short.
    fn write(
        &self,
        frame: &mut [u8],
        m: Message,
        src: Ipv6Addr,
        server: Option<Duid>,
        address: Option<Ipv6Addr>,
    ) -> usize {
        let kind = m.kind;
        let Some(frame) = frame.get_mut(..MAX_FRAME) else {
            return 0;
        };
        frame.fill(0);
        let mut at = HEADERS;
        let mut put = |frame: &mut [u8], b: &[u8]| {
            frame[at..at + b.len()].copy_from_slice(b);
            at += b.len();
        };
        let x = m.xid.to_be_bytes();
        put(frame, &[kind, x[1], x[2], x[3]]);
        let opt = |code: u16, len: usize| -> [u8; 4] {
            let (c, l) = (code.to_be_bytes(), (len as u16).to_be_bytes());
            [c[0], c[1], l[0], l[1]]
        };
        put(frame, &opt(OPT_CLIENTID, 10));
        put(frame, &self.duid());
        if let Some(s) = server {
            put(frame, &opt(OPT_SERVERID, s.as_slice().len()));
            put(frame, s.as_slice());
        }
        let addr_len = if address.is_some() { 4 + 24 } else { 0 };
        put(frame, &opt(OPT_IA_NA, 12 + addr_len));
        // T1 and T2 0: the server chooses.
        put(frame, &self.iaid.to_be_bytes());
        put(frame, &[0; 8]);
        if let Some(a) = address {
            put(frame, &opt(OPT_IAADDR, 24));
            put(frame, &a.octets());
            // Lifetimes 0: the server chooses (RFC 8415 18.2).
            put(frame, &[0; 8]);
        }
        // Hundredths of a second (RFC 8415 21.9).
        let elapsed = m.elapsed.as_millis() / 10;
        put(frame, &opt(OPT_ELAPSED_TIME, 2));
        put(frame, &(elapsed.min(0xffff) as u16).to_be_bytes());
        if !matches!(kind, RELEASE | DECLINE) {
            put(frame, &opt(OPT_ORO, 2));
            put(frame, &OPT_SOL_MAX_RT.to_be_bytes());
        }
        let total = at;
        let udp_len = total - 14 - 40;
        let (eth, rest) = frame.split_at_mut(14);
        eth[..6].copy_from_slice(&[0x33, 0x33, 0, 1, 0, 2]);
        eth[6..12].copy_from_slice(&self.mac.0);
        eth[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
        let (ip, udp) = rest.split_at_mut(40);
        ip[0] = 0x60;
        ip[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
        ip[6] = 17;
        // Link scope: the servers are on the link (no relay here).
        ip[7] = 1;
        ip[8..24].copy_from_slice(&src.octets());
        ip[24..40].copy_from_slice(&ALL_SERVERS.octets());
        let udp = &mut udp[..udp_len];
        udp[0..2].copy_from_slice(&CLIENT_PORT.to_be_bytes());
        udp[2..4].copy_from_slice(&SERVER_PORT.to_be_bytes());
        udp[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
        let sum = !udp6_sum(src, ALL_SERVERS, udp);
        // UDP over IPv6 always carries a checksum; a computed 0 is sent as all ones.
        let sum = if sum == 0 { 0xffff } else { sum };
        udp[6..8].copy_from_slice(&sum.to_be_bytes());
        total
    }
}

/// The one's complement sum of a UDP datagram over IPv6 with its pseudo-header (RFC 8200 8.1).
fn udp6_sum(src: Ipv6Addr, dst: Ipv6Addr, udp: &[u8]) -> u16 {
    let len = (udp.len() as u32).to_be_bytes();
    checksum::combine(&[
        checksum::data(&src.octets()),
        checksum::data(&dst.octets()),
        checksum::data(&len),
        checksum::data(&[0, 0, 0, 17]),
        checksum::data(udp),
    ])
}

/// The DHCPv6 message in an IPv6 packet from a server (UDP 547 → 546, checksum verified).
fn udp_payload(ip: &[u8]) -> Result<&[u8], Malformed> {
    let h = ip
        .first_chunk::<40>()
        .ok_or(Malformed("shorter than an IPv6 header"))?;
    if h[0] >> 4 != 6 || h[6] != 17 {
        return Err(Malformed("not UDP over IPv6"));
    }
    let plen = usize::from(u16::from_be_bytes([h[4], h[5]]));
    let udp = ip.get(40..40 + plen).ok_or(Malformed("IPv6 payload cut"))?;
    let Some(u) = udp.first_chunk::<8>() else {
        return Err(Malformed("UDP header cut"));
    };
    let ulen = usize::from(u16::from_be_bytes([u[4], u[5]]));
    if u16::from_be_bytes([u[0], u[1]]) != SERVER_PORT
        || u16::from_be_bytes([u[2], u[3]]) != CLIENT_PORT
    {
        return Err(Malformed("not from port 547 to port 546"));
    }
    let udp = udp
        .get(..ulen)
        .filter(|_| ulen >= 8)
        .ok_or(Malformed("UDP length wrong"))?;
    let src = Ipv6Addr::from(*h[8..24].first_chunk::<16>().unwrap_or(&[0; 16]));
    let dst = Ipv6Addr::from(*h[24..40].first_chunk::<16>().unwrap_or(&[0; 16]));
    if u16::from_be_bytes([u[6], u[7]]) == 0 || udp6_sum(src, dst, udp) != 0xffff {
        return Err(Malformed("bad UDP checksum"));
    }
    Ok(&udp[8..])
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: MacAddr = MacAddr([0x02, 0x50, 0x56, 0, 0, 0x42]);
    const LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x50, 0x56ff, 0xfe00, 0x42);
    const SRV_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
    const ADDR: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x61, 0, 0, 0, 0, 0x10);
    const SERVER_DUID: &[u8] = &[0, 1, 0, 1, 1, 2, 3, 4, 0xa, 0xb, 0xc, 0xd, 0xe, 0xf];

    /// What a client's message says.
    #[derive(Debug)]
    struct Msg {
        kind: u8,
        xid: u32,
        server: Option<Vec<u8>>,
        address: Option<Ipv6Addr>,
        elapsed: Option<u16>,
    }

    /// The DHCPv6 message in a frame a client wrote (checks its headers and checksum).
    fn message(frame: &[u8]) -> Msg {
        assert_eq!(&frame[..6], &[0x33, 0x33, 0, 1, 0, 2]);
        assert_eq!(&frame[6..12], &MAC.0);
        let ip = &frame[14..];
        assert_eq!(&ip[8..24], &LL.octets());
        assert_eq!(&ip[24..40], &ALL_SERVERS.octets());
        let plen = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
        assert_eq!(frame.len(), 14 + 40 + plen);
        let udp = &ip[40..];
        assert_eq!(udp6_sum(LL, ALL_SERVERS, udp), 0xffff, "checksum");
        assert_eq!(&udp[..4], &[2, 34, 2, 35]);
        let m = &udp[8..];
        let mut msg = Msg {
            kind: m[0],
            xid: u32::from_be_bytes([0, m[1], m[2], m[3]]),
            server: None,
            address: None,
            elapsed: None,
        };
        let mut client = None;
        for o in options(&m[4..]) {
            match o.unwrap() {
                (OPT_CLIENTID, c) => client = Some(c.to_vec()),
                (OPT_SERVERID, s) => msg.server = Some(s.to_vec()),
                (OPT_ELAPSED_TIME, e) => msg.elapsed = Some(u16::from_be_bytes([e[0], e[1]])),
                (OPT_IA_NA, d) => {
                    assert_eq!(be32(d, 0), 2, "IAID");
                    for o in options(&d[12..]) {
                        if let (OPT_IAADDR, a) = o.unwrap() {
                            msg.address = Some(Ipv6Addr::from(*a.first_chunk::<16>().unwrap()));
                        }
                    }
                }
                _ => {}
            }
        }
        assert_eq!(client.unwrap(), [0, 3, 0, 1, 2, 0x50, 0x56, 0, 0, 0x42]);
        msg
    }

    fn opt(code: u16, data: &[u8]) -> Vec<u8> {
        let mut v = code.to_be_bytes().to_vec();
        v.extend_from_slice(&(data.len() as u16).to_be_bytes());
        v.extend_from_slice(data);
        v
    }

    /// A server's answer as the IP packet the engine hands on: `ia` the IA_NA body after its
    /// IAID (T1, T2, sub-options); `client` our DUID or another.
    fn answer(kind: u8, xid: u32, client: &[u8], ia: Option<Vec<u8>>) -> Vec<u8> {
        let x = xid.to_be_bytes();
        let mut m = vec![kind, x[1], x[2], x[3]];
        m.extend(opt(OPT_SERVERID, SERVER_DUID));
        m.extend(opt(OPT_CLIENTID, client));
        if let Some(ia) = ia {
            let mut body = 2u32.to_be_bytes().to_vec();
            body.extend(ia);
            m.extend(opt(OPT_IA_NA, &body));
        }
        let udp_len = 8 + m.len();
        let mut p = vec![0u8; 40 + udp_len];
        p[0] = 0x60;
        p[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
        p[6] = 17;
        p[7] = 64;
        p[8..24].copy_from_slice(&SRV_LL.octets());
        p[24..40].copy_from_slice(&LL.octets());
        p[40..42].copy_from_slice(&SERVER_PORT.to_be_bytes());
        p[42..44].copy_from_slice(&CLIENT_PORT.to_be_bytes());
        p[44..46].copy_from_slice(&(udp_len as u16).to_be_bytes());
        p[48..].copy_from_slice(&m);
        let sum = !udp6_sum(SRV_LL, LL, &p[40..]);
        p[46..48].copy_from_slice(&sum.to_be_bytes());
        p
    }

    /// An IA_NA body (after the IAID) with T1, T2 and one address with its lifetimes.
    fn ia(t1: u32, t2: u32, preferred: u32, valid: u32) -> Vec<u8> {
        let mut b = t1.to_be_bytes().to_vec();
        b.extend(t2.to_be_bytes());
        let mut a = ADDR.octets().to_vec();
        a.extend(preferred.to_be_bytes());
        a.extend(valid.to_be_bytes());
        b.extend(opt(OPT_IAADDR, &a));
        b
    }

    /// Makes the IPv6 and UDP lengths and the checksum of `p` right after a change.
    fn reseal(p: &mut [u8]) {
        let udp_len = (p.len() - 40) as u16;
        p[4..6].copy_from_slice(&udp_len.to_be_bytes());
        p[44..46].copy_from_slice(&udp_len.to_be_bytes());
        p[46..48].copy_from_slice(&[0, 0]);
        let sum = !udp6_sum(SRV_LL, LL, &p[40..]);
        p[46..48].copy_from_slice(&sum.to_be_bytes());
    }

    const OURS: [u8; 10] = [0, 3, 0, 1, 2, 0x50, 0x56, 0, 0, 0x42];

    fn bound(c: &mut Client, t0: Instant, frame: &mut [u8]) -> Lease {
        let (n, _) = c.poll(t0, Some(LL), frame);
        let sol = message(&frame[..n]);
        assert_eq!(sol.kind, SOLICIT);
        assert_eq!(
            c.receive(
                &answer(ADVERTISE, sol.xid, &OURS, Some(ia(0, 0, 60, 120))),
                t0
            ),
            Ok(None)
        );
        let (n, _) = c.poll(t0, Some(LL), frame);
        let req = message(&frame[..n]);
        assert_eq!(req.kind, REQUEST);
        assert_ne!(req.xid, sol.xid, "a new transaction");
        assert_eq!(req.server.as_deref(), Some(SERVER_DUID));
        assert_eq!(req.address, Some(ADDR));
        let ev = c
            .receive(
                &answer(REPLY, req.xid, &OURS, Some(ia(10, 16, 60, 120))),
                t0,
            )
            .unwrap();
        let Some(Event::Bound(l)) = ev else {
            panic!("not bound: {ev:?}")
        };
        l
    }

    #[test]
    fn test_solicit_request_reply_renew_rebind_expire() {
        let t0 = Instant::now();
        let mut c = Client::new(VmknicId(2), MAC, t0);
        let mut frame = [0u8; MAX_FRAME];
        // Nothing while the link-local address is tentative.
        assert_eq!(c.poll(t0, None, &mut frame).0, 0);
        let l = bound(&mut c, t0 + WAIT_LINK_LOCAL, &mut frame);
        let t0 = t0 + WAIT_LINK_LOCAL;
        assert_eq!(
            l,
            Lease {
                address: ADDR,
                preferred: Duration::from_secs(60),
                valid: Duration::from_secs(120),
                t1: Duration::from_secs(10),
                t2: Duration::from_secs(16),
            }
        );
        assert_eq!(c.lease(), Some(l));
        // T1: a RENEW to the server with the address; its REPLY extends it.
        assert_eq!(
            c.poll(t0 + Duration::from_secs(9), Some(LL), &mut frame).0,
            0
        );
        let t1 = t0 + Duration::from_secs(10);
        let (n, _) = c.poll(t1, Some(LL), &mut frame);
        let renew = message(&frame[..n]);
        assert_eq!(renew.kind, RENEW);
        assert_eq!(renew.server.as_deref(), Some(SERVER_DUID));
        assert_eq!(renew.address, Some(ADDR));
        assert_eq!(renew.elapsed, Some(0));
        assert_eq!(
            c.receive(
                &answer(REPLY, renew.xid, &OURS, Some(ia(10, 16, 60, 120))),
                t1
            ),
            Ok(Some(Event::Bound(l)))
        );
        // Unanswered from the next T1: RENEWs until T2, then REBINDs without a server
        // identifier, and the address lost at the end of its valid lifetime.
        let t1 = t1 + Duration::from_secs(10);
        let mut t = t1;
        let mut kinds = Vec::new();
        let mut lost = None;
        while t < t1 + Duration::from_secs(200) {
            let (n, e) = c.poll(t, Some(LL), &mut frame);
            if n > 0 {
                let m = message(&frame[..n]);
                if m.kind == REBIND {
                    assert_eq!(m.server, None);
                }
                kinds.push(m.kind);
            }
            if e == Some(Event::Lost) {
                lost = Some(t);
                break;
            }
            t += Duration::from_millis(500);
        }
        let lost = lost.expect("never lost");
        assert_eq!(
            lost,
            t1 - Duration::from_secs(10) + Duration::from_secs(120)
        );
        assert!(kinds.starts_with(&[RENEW, RENEW]), "{kinds:?}");
        assert!(kinds.contains(&REBIND), "{kinds:?}");
        assert_eq!(c.lease(), None);
        // Soliciting again, in the same turn.
        assert_eq!(kinds.last(), Some(&SOLICIT), "{kinds:?}");
    }

    #[test]
    fn test_foreign_refused_and_malformed_answers() {
        let t0 = Instant::now();
        let mut c = Client::new(VmknicId(2), MAC, t0);
        let mut frame = [0u8; MAX_FRAME];
        let (n, _) = c.poll(t0, Some(LL), &mut frame);
        let xid = message(&frame[..n]).xid;
        let good = answer(ADVERTISE, xid, &OURS, Some(ia(0, 0, 60, 120)));
        // Another transaction, another client, no address: ignored.
        assert_eq!(
            c.receive(
                &answer(ADVERTISE, xid ^ 1, &OURS, Some(ia(0, 0, 60, 120))),
                t0
            ),
            Ok(None)
        );
        assert_eq!(
            c.receive(
                &answer(
                    ADVERTISE,
                    xid,
                    &[0, 3, 0, 1, 9, 9, 9, 9, 9, 9],
                    Some(ia(0, 0, 60, 120))
                ),
                t0
            ),
            Ok(None)
        );
        assert_eq!(
            c.receive(&answer(ADVERTISE, xid, &OURS, None), t0),
            Ok(None)
        );
        // A preferred lifetime above the valid one: the address is discarded.
        assert_eq!(
            c.receive(&answer(ADVERTISE, xid, &OURS, Some(ia(0, 0, 200, 120))), t0),
            Ok(None)
        );
        // Malformed: every truncation of the packet, and of the message with its lengths
        // and checksum made right (options cut: only the cut right after our client
        // identifier is a whole message, one without an address).
        for cut in 0..good.len() {
            assert!(c.receive(&good[..cut], t0).is_err(), "cut at {cut}");
        }
        let mut whole = Vec::new();
        for cut in 48..good.len() {
            let mut p = good[..cut].to_vec();
            reseal(&mut p);
            match c.receive(&p, t0) {
                Err(_) => {}
                Ok(None) => whole.push(cut),
                Ok(e) => panic!("cut at {cut}: {e:?}"),
            }
        }
        assert_eq!(whole, [48 + 4 + 4 + SERVER_DUID.len() + 4 + 10]);
        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x55;
        assert_eq!(c.receive(&flipped, t0), Err(Malformed("bad UDP checksum")));
        let mut m = vec![ADVERTISE];
        m.extend(&xid.to_be_bytes()[1..]);
        m.extend(opt(OPT_CLIENTID, &OURS));
        let mut p = answer(ADVERTISE, xid, &OURS, None);
        p.truncate(48);
        p.extend(&m);
        reseal(&mut p);
        assert_eq!(c.receive(&p, t0), Err(Malformed("no server identifier")));
        // Still soliciting: the good one is taken.
        assert_eq!(c.receive(&good, t0), Ok(None));
        let (n, _) = c.poll(t0, Some(LL), &mut frame);
        let req = message(&frame[..n]);
        assert_eq!(req.kind, REQUEST);
        // A REPLY with NoAddrsAvail in the IA: soliciting again.
        let mut refused = 0u32.to_be_bytes().to_vec();
        refused.extend(0u32.to_be_bytes());
        let mut st = 2u16.to_be_bytes().to_vec();
        st.extend(b"none left");
        refused.extend(opt(OPT_STATUS_CODE, &st));
        assert_eq!(
            c.receive(&answer(REPLY, req.xid, &OURS, Some(refused)), t0),
            Ok(None)
        );
        let (n, _) = c.poll(t0, Some(LL), &mut frame);
        assert_eq!(message(&frame[..n]).kind, SOLICIT);
    }

    #[test]
    fn test_release_decline_and_managed_flag() {
        let t0 = Instant::now();
        let mut c = Client::new(VmknicId(2), MAC, t0);
        let mut frame = [0u8; MAX_FRAME];
        assert_eq!(c.release(LL, &mut frame), 0, "nothing to release");
        bound(&mut c, t0, &mut frame);
        let n = c.release(LL, &mut frame);
        let rel = message(&frame[..n]);
        assert_eq!(rel.kind, RELEASE);
        assert_eq!(rel.server.as_deref(), Some(SERVER_DUID));
        assert_eq!(rel.address, Some(ADDR));
        // DAD found it duplicate: a DECLINE, the address dropped, a SOLICIT a second later.
        let n = c.decline(LL, &mut frame, t0);
        let dec = message(&frame[..n]);
        assert_eq!((dec.kind, dec.address), (DECLINE, Some(ADDR)));
        assert_eq!(c.lease(), None);
        assert_eq!(c.poll(t0, Some(LL), &mut frame).0, 0);
        let t = t0 + Duration::from_secs(1);
        let (n, _) = c.poll(t, Some(LL), &mut frame);
        assert_eq!(message(&frame[..n]).kind, SOLICIT);
        // Backing off (next in 2 s); an advertisement with M set makes it solicit at once,
        // one without M (or M again) changes nothing.
        assert_eq!(c.poll(t, Some(LL), &mut frame).0, 0);
        c.on_router_advertisement(false, t);
        assert_eq!(c.poll(t, Some(LL), &mut frame).0, 0);
        c.on_router_advertisement(true, t);
        let (n, _) = c.poll(t, Some(LL), &mut frame);
        assert_eq!(message(&frame[..n]).kind, SOLICIT);
        c.on_router_advertisement(true, t);
        assert_eq!(c.poll(t, Some(LL), &mut frame).0, 0);
    }
}
