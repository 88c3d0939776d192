//! The IPv6 stage on in-memory ports: Neighbour Discovery answered and learned, echo answered
//! after the asker is resolved (the reply waits in the pending queue, not lost), forwarding
//! with the hop limit decremented, and the ICMPv6 errors (hop limit, no route, too big).

use std::net::Ipv6Addr;
use std::time::Instant;

use vmkstack_vmknic::eth::{ETHERTYPE_IPV6, ETH_HDR};
use vmkstack_vmknic::{MacAddr, MemPort};

use super::ipv6::solicited_node;
use super::{DropReason, Engine};
use crate::config::Config;

const VMK0_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x10]);
const VMK1_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x11]);
const HOST0_MAC: MacAddr = MacAddr([0x02, 0xaa, 0, 0, 0, 2]);
const HOST1_MAC: MacAddr = MacAddr([0x02, 0xbb, 0, 0, 0, 2]);

fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap_or(Ipv6Addr::UNSPECIFIED)
}

struct Lab6 {
    engine: Engine<MemPort>,
    now: Instant,
}

impl Lab6 {
    fn new() -> Lab6 {
        let text = format!(
            r#"
forwarding = true
offloads = false
[[vmknic]]
name = "vmk0"
portgroup = "A"
ip = "198.18.0.1/24"
mac = "{VMK0_MAC}"
ipv6 = ["2001:db8:0::1/64"]
[[vmknic]]
name = "vmk1"
portgroup = "B"
ip = "198.18.1.1/24"
mac = "{VMK1_MAC}"
mtu = 1400
ipv6 = ["2001:db8:1::1/64"]
"#
        );
        let cfg = Config::parse(&text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
        let now = Instant::now();
        let (engine, _) = Engine::new(&cfg, [MemPort::new(false), MemPort::new(false)], now);
        let mut lab = Lab6 { engine, now };
        for i in 0..2 {
            // A gratuitous ARP and two unsolicited advertisements (link-local, global).
            let sent = lab.sent(i);
            assert_eq!(sent.len(), 3, "start-up announcements on vmk{i}");
            assert_eq!(sent[2][ETH_HDR + 40], 136);
        }
        lab
    }

    fn receive(&mut self, i: usize, frame: &[u8]) {
        if let Some(p) = self.engine.port_mut(i) {
            p.inject(frame);
        }
        self.engine.set_readable(i);
        self.engine.turn(self.now);
    }

    fn sent(&mut self, i: usize) -> Vec<Vec<u8>> {
        let Some(p) = self.engine.port_mut(i) else {
            return Vec::new();
        };
        std::iter::from_fn(|| p.take_frame()).collect()
    }

    fn drops(&self, i: usize, r: DropReason) -> u64 {
        self.engine.vmknics()[i].counters.drops(r)
    }
}

fn sum16(b: &[u8]) -> u32 {
    b.chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum()
}

/// An IPv6 packet carrying `payload` of next header `nh`; ICMPv6 gets its checksum.
fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, nh: u8, hl: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    p.extend_from_slice(&[nh, hl]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(payload);
    if nh == 58 {
        let mut s = sum16(&src.octets()) + sum16(&dst.octets()) + payload.len() as u32 + 58;
        s += sum16(&p[40..]);
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        let c = !(s as u16);
        p[42..44].copy_from_slice(&c.to_be_bytes());
    }
    p
}

fn eth(dst: MacAddr, src: MacAddr, ip: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
    f.extend_from_slice(ip);
    f
}

fn ns(target: Ipv6Addr, mac: MacAddr) -> Vec<u8> {
    let mut m = vec![135, 0, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&target.octets());
    m.extend_from_slice(&[1, 1]);
    m.extend_from_slice(&mac.0);
    m
}

fn na(target: Ipv6Addr, mac: MacAddr) -> Vec<u8> {
    let mut m = vec![136, 0, 0, 0, 0x60, 0, 0, 0];
    m.extend_from_slice(&target.octets());
    m.extend_from_slice(&[2, 1]);
    m.extend_from_slice(&mac.0);
    m
}

fn echo(id: u8) -> Vec<u8> {
    vec![128, 0, 0, 0, 0, id, 0, 1, b'h', b'i']
}

fn mcast_mac(g: Ipv6Addr) -> MacAddr {
    let o = g.octets();
    MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

#[test]
fn test_ns_answered_and_sender_learned() {
    let mut lab = Lab6::new();
    let (h0, us) = (a("2001:db8::2"), a("2001:db8::1"));
    let g = solicited_node(us);
    lab.receive(
        0,
        &eth(
            mcast_mac(g),
            HOST0_MAC,
            &ipv6(h0, g, 58, 255, &ns(us, HOST0_MAC)),
        ),
    );
    let out = lab.sent(0);
    assert_eq!(out.len(), 1, "one advertisement");
    let f = &out[0];
    assert_eq!(&f[..6], &HOST0_MAC.0);
    assert_eq!(f[ETH_HDR + 40], 136);
    assert_eq!(f[ETH_HDR + 44] & 0x60, 0x60, "solicited, override");
    assert_eq!(&f[ETH_HDR + 48..ETH_HDR + 64], &us.octets());
    assert_eq!(&f[ETH_HDR + 66..ETH_HDR + 72], &VMK0_MAC.0);
    let n = lab.engine.neighbors6().entries(lab.now);
    assert_eq!((n.len(), n[0].ip, n[0].mac), (1, h0, Some(HOST0_MAC)));

    // A solicitation for someone else's address, and one with hop limit 64: dropped, counted.
    let other = a("2001:db8::9");
    let g9 = solicited_node(other);
    lab.receive(
        0,
        &eth(
            mcast_mac(g9),
            HOST0_MAC,
            &ipv6(h0, g9, 58, 255, &ns(other, HOST0_MAC)),
        ),
    );
    lab.receive(
        0,
        &eth(
            mcast_mac(g),
            HOST0_MAC,
            &ipv6(h0, g, 58, 64, &ns(us, HOST0_MAC)),
        ),
    );
    assert!(lab.sent(0).is_empty());
    assert_eq!(
        lab.drops(0, DropReason::NdpNotForUs),
        0,
        "not our group: not for us at L3"
    );
    assert_eq!(lab.drops(0, DropReason::NotForUs), 1);
    assert_eq!(lab.drops(0, DropReason::BadNdp), 1);

    // A DAD probe (from ::, no option) for our address is answered to all-nodes.
    let mut probe = ns(us, HOST0_MAC);
    probe.truncate(24);
    lab.receive(
        0,
        &eth(
            mcast_mac(g),
            HOST0_MAC,
            &ipv6(Ipv6Addr::UNSPECIFIED, g, 58, 255, &probe),
        ),
    );
    let out = lab.sent(0);
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0][..6], &[0x33, 0x33, 0, 0, 0, 1]);
}

#[test]
fn test_echo_reply_waits_for_resolution() {
    let mut lab = Lab6::new();
    let (h0, us) = (a("2001:db8::2"), a("2001:db8::1"));
    lab.receive(
        0,
        &eth(VMK0_MAC, HOST0_MAC, &ipv6(h0, us, 58, 64, &echo(7))),
    );
    let out = lab.sent(0);
    assert_eq!(out.len(), 1, "a solicitation, the reply queued");
    assert_eq!(out[0][ETH_HDR + 40], 135);
    assert_eq!(
        &out[0][ETH_HDR + 24..ETH_HDR + 40],
        &solicited_node(h0).octets()
    );
    lab.receive(
        0,
        &eth(
            VMK0_MAC,
            HOST0_MAC,
            &ipv6(h0, us, 58, 255, &na(h0, HOST0_MAC)),
        ),
    );
    let out = lab.sent(0);
    assert_eq!(out.len(), 1, "the queued reply");
    let r = &out[0][ETH_HDR..];
    assert_eq!((r[40], r[45]), (129, 7));
    assert_eq!(&r[8..24], &us.octets());
    assert_eq!(&r[24..40], &h0.octets());
    assert_eq!(&r[48..], b"hi");
    // A bad checksum is dropped and counted.
    let mut bad = ipv6(h0, us, 58, 64, &echo(8));
    bad[43] ^= 1;
    lab.receive(0, &eth(VMK0_MAC, HOST0_MAC, &bad));
    assert!(lab.sent(0).is_empty());
    assert_eq!(lab.drops(0, DropReason::BadIcmpv6), 1);
    // Truncated and bad-version headers.
    lab.receive(0, &eth(VMK0_MAC, HOST0_MAC, &bad[..30]));
    let mut v4 = bad.clone();
    v4[0] = 0x40;
    lab.receive(0, &eth(VMK0_MAC, HOST0_MAC, &v4));
    assert_eq!(lab.drops(0, DropReason::Truncated), 1);
    assert_eq!(lab.drops(0, DropReason::BadIpv6), 1);
}

#[test]
fn test_forward_and_errors() {
    let mut lab = Lab6::new();
    let (h0, h1) = (a("2001:db8::2"), a("2001:db8:1::2"));
    // Both hosts known.
    let g = solicited_node(a("2001:db8::1"));
    lab.receive(
        0,
        &eth(
            mcast_mac(g),
            HOST0_MAC,
            &ipv6(h0, g, 58, 255, &ns(a("2001:db8::1"), HOST0_MAC)),
        ),
    );
    let g1 = solicited_node(a("2001:db8:1::1"));
    lab.receive(
        1,
        &eth(
            mcast_mac(g1),
            HOST1_MAC,
            &ipv6(h1, g1, 58, 255, &ns(a("2001:db8:1::1"), HOST1_MAC)),
        ),
    );
    lab.sent(0);
    lab.sent(1);

    lab.receive(
        0,
        &eth(VMK0_MAC, HOST0_MAC, &ipv6(h0, h1, 17, 64, &[0; 16])),
    );
    let out = lab.sent(1);
    assert_eq!(out.len(), 1, "forwarded");
    assert_eq!(
        (&out[0][..6], &out[0][6..12]),
        (&HOST1_MAC.0[..], &VMK1_MAC.0[..])
    );
    assert_eq!(out[0][ETH_HDR + 7], 63, "hop limit decremented");

    // Hop limit 1: Time Exceeded back to h0.
    lab.receive(0, &eth(VMK0_MAC, HOST0_MAC, &ipv6(h0, h1, 17, 1, &[0; 16])));
    let out = lab.sent(0);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0][ETH_HDR + 40], out[0][ETH_HDR + 41]), (3, 0));
    assert_eq!(
        &out[0][ETH_HDR + 8..ETH_HDR + 24],
        &a("2001:db8::1").octets()
    );

    // No route: Destination Unreachable, no route (code 0).
    lab.receive(
        0,
        &eth(
            VMK0_MAC,
            HOST0_MAC,
            &ipv6(h0, a("2001:db8:99::1"), 17, 64, &[0; 16]),
        ),
    );
    let out = lab.sent(0);
    assert_eq!((out[0][ETH_HDR + 40], out[0][ETH_HDR + 41]), (1, 0));
    assert_eq!(lab.drops(0, DropReason::NoRoute), 1);

    // Bigger than vmk1's MTU (1400): Packet Too Big with 1400.
    lab.receive(
        0,
        &eth(VMK0_MAC, HOST0_MAC, &ipv6(h0, h1, 17, 64, &[0; 1400])),
    );
    let out = lab.sent(0);
    assert_eq!(out[0][ETH_HDR + 40], 2);
    assert_eq!(&out[0][ETH_HDR + 44..ETH_HDR + 48], &1400u32.to_be_bytes());
    assert!(out[0].len() - ETH_HDR <= 1280, "within the minimum MTU");
    assert!(lab.sent(1).is_empty());

    // Link-local destinations are never forwarded.
    lab.receive(
        0,
        &eth(
            VMK0_MAC,
            HOST0_MAC,
            &ipv6(h0, a("fe80::5"), 17, 64, &[0; 8]),
        ),
    );
    assert!(lab.sent(1).is_empty());
    assert_eq!(lab.drops(0, DropReason::Martian), 1);
}

#[test]
fn test_forward_waits_for_the_neighbour_or_reports_it_unreachable() {
    let mut lab = Lab6::new();
    let (h0, h1) = (a("2001:db8::2"), a("2001:db8:1::2"));
    let g = solicited_node(a("2001:db8::1"));
    let solicit = ipv6(h0, g, 58, 255, &ns(a("2001:db8::1"), HOST0_MAC));
    lab.receive(0, &eth(mcast_mac(g), HOST0_MAC, &solicit));
    lab.sent(0);
    // h1 unknown: the packet waits while vmk1 solicits it; h1's answer releases it.
    lab.receive(
        0,
        &eth(VMK0_MAC, HOST0_MAC, &ipv6(h0, h1, 17, 64, &[1; 16])),
    );
    let out = lab.sent(1);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0][ETH_HDR + 40], 135, "a solicitation");
    lab.receive(
        1,
        &eth(
            VMK1_MAC,
            HOST1_MAC,
            &ipv6(h1, a("2001:db8:1::1"), 58, 255, &na(h1, HOST1_MAC)),
        ),
    );
    let out = lab.sent(1);
    assert_eq!(out.len(), 1, "the queued packet");
    assert_eq!((&out[0][..6], out[0][ETH_HDR + 7]), (&HOST1_MAC.0[..], 63));

    // A neighbour that never answers: solicited again, then Address Unreachable to h0.
    let h9 = a("2001:db8:1::9");
    lab.receive(
        0,
        &eth(VMK0_MAC, HOST0_MAC, &ipv6(h0, h9, 17, 64, &[2; 16])),
    );
    for _ in 0..10 {
        lab.now += std::time::Duration::from_millis(500);
        lab.engine.turn(lab.now);
    }
    let retries = lab
        .sent(1)
        .iter()
        .filter(|f| f[ETH_HDR + 40] == 135)
        .count();
    assert_eq!(retries, 3, "a solicitation and two retries");
    let out = lab.sent(0);
    assert_eq!(out.len(), 1, "one error");
    assert_eq!((out[0][ETH_HDR + 40], out[0][ETH_HDR + 41]), (1, 3));
    assert_eq!(lab.drops(1, DropReason::NeighborUnreachable), 1);
}

#[test]
fn test_stack_echo6_and_its_reply() {
    let mut lab = Lab6::new();
    let (h0, us) = (a("2001:db8::2"), a("2001:db8::1"));
    let g = solicited_node(us);
    lab.receive(
        0,
        &eth(
            mcast_mac(g),
            HOST0_MAC,
            &ipv6(h0, g, 58, 255, &ns(us, HOST0_MAC)),
        ),
    );
    lab.sent(0);
    assert_eq!(lab.engine.send_echo6(h0, 5, 8, 64), Ok(()));
    let out = lab.sent(0);
    assert_eq!(out.len(), 1);
    let q = &out[0][ETH_HDR..];
    assert_eq!(
        (q[40], &q[44..46], &q[46..48]),
        (
            128,
            &super::ECHO_IDENT.to_be_bytes()[..],
            &5u16.to_be_bytes()[..]
        )
    );
    assert_eq!(&q[8..24], &us.octets(), "from the route's source");
    let mut reply = q[40..].to_vec();
    reply[0] = 129;
    reply[2..4].copy_from_slice(&[0, 0]);
    lab.receive(0, &eth(VMK0_MAC, HOST0_MAC, &ipv6(h0, us, 58, 61, &reply)));
    let mut got = Vec::new();
    lab.engine
        .take_echo6(|r| got.push((r.from, r.seq, r.hop_limit, r.bytes)));
    assert_eq!(got, vec![(h0, 5, 61, 16)]);
    assert_eq!(
        lab.engine.send_echo6(a("2001:db8:77::1"), 1, 8, 64),
        Err(super::Ping6Error::NoRoute)
    );
    assert_eq!(
        lab.engine.send_echo6(a("2001:db8:1::2"), 1, 1400, 64),
        Err(super::Ping6Error::TooBig)
    );
}

/// The checksum of a TCP (16) or UDP (6) payload over IPv6, written into `p` (a packet
/// built by [`ipv6`]).
fn seal_transport(p: &mut [u8]) {
    let field = match p[6] {
        6 => 40 + 16,
        17 => 40 + 6,
        _ => return,
    };
    p[field..field + 2].fill(0);
    let len = (p.len() - 40) as u32;
    let mut s = sum16(&p[8..40]) + len + u32::from(p[6]) + sum16(&p[40..]);
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    let c = !(s as u16);
    p[field..field + 2].copy_from_slice(&c.to_be_bytes());
}

/// Host 0 (2001:db8::2) made known on vmk0 with a solicitation for our address.
fn learn_host0(lab: &mut Lab6) {
    let (h0, us) = (a("2001:db8::2"), a("2001:db8::1"));
    let g = solicited_node(us);
    let frame = eth(
        mcast_mac(g),
        HOST0_MAC,
        &ipv6(h0, g, 58, 255, &ns(us, HOST0_MAC)),
    );
    lab.receive(0, &frame);
    assert_eq!(lab.sent(0).len(), 1, "our advertisement");
}

#[test]
fn test_endpoint_answers_closed_ports_and_unknown_next_headers() {
    let mut lab = Lab6::new();
    learn_host0(&mut lab);
    let (h0, us) = (a("2001:db8::2"), a("2001:db8::1"));
    // UDP to a closed port: Port Unreachable (type 1, code 4) quoting the datagram.
    let mut udp = ipv6(
        h0,
        us,
        17,
        64,
        &[0x9c, 0x40, 0x00, 0x09, 0, 12, 0, 0, b'a', b'b', b'c', b'd'],
    );
    seal_transport(&mut udp);
    lab.receive(0, &eth(VMK0_MAC, HOST0_MAC, &udp));
    let out = lab.sent(0);
    assert_eq!(out.len(), 1, "one error: {out:?}");
    let r = &out[0][ETH_HDR..];
    assert_eq!((r[6], r[40], r[41]), (58, 1, 4), "Port Unreachable");
    assert_eq!(&r[8..24], &us.octets());
    assert_eq!(&r[24..40], &h0.octets());
    assert_eq!(
        &r[48..48 + udp.len()],
        &udp[..],
        "the datagram quoted whole"
    );
    assert_eq!(&out[0][..6], &HOST0_MAC.0);

    // TCP SYN to a closed port: a reset.
    let mut syn = vec![0u8; 20];
    syn[0..2].copy_from_slice(&40000u16.to_be_bytes());
    syn[2..4].copy_from_slice(&3260u16.to_be_bytes());
    syn[4..8].copy_from_slice(&1000u32.to_be_bytes());
    syn[12] = 5 << 4;
    syn[13] = 0x02;
    syn[14..16].copy_from_slice(&64240u16.to_be_bytes());
    let mut p = ipv6(h0, us, 6, 64, &syn);
    seal_transport(&mut p);
    lab.receive(0, &eth(VMK0_MAC, HOST0_MAC, &p));
    let out = lab.sent(0);
    assert_eq!(out.len(), 1, "one reset");
    let r = &out[0][ETH_HDR..];
    assert_eq!(r[6], 6);
    assert_eq!(r[40 + 13] & 0x14, 0x14, "RST, ACK");
    let mut check = r.to_vec();
    let sent_sum = u16::from_be_bytes([check[56], check[57]]);
    seal_transport(&mut check);
    assert_eq!(
        u16::from_be_bytes([check[56], check[57]]),
        sent_sum,
        "TCP checksum filled in by the engine"
    );
    // A bad TCP checksum is dropped, not answered.
    p[56] ^= 0xff;
    lab.receive(0, &eth(VMK0_MAC, HOST0_MAC, &p));
    assert!(lab.sent(0).is_empty());
    assert_eq!(lab.drops(0, DropReason::BadChecksum), 1);

    // An unknown next header: Parameter Problem, code 1, pointing at the Next Header field.
    let odd = ipv6(h0, us, 253, 64, b"whatever");
    lab.receive(0, &eth(VMK0_MAC, HOST0_MAC, &odd));
    let out = lab.sent(0);
    assert_eq!(out.len(), 1, "one error");
    let r = &out[0][ETH_HDR..];
    assert_eq!((r[40], r[41]), (4, 1));
    assert_eq!(&r[44..48], &6u32.to_be_bytes());
    // No Next Header: nothing.
    let none = ipv6(h0, us, 59, 64, b"");
    lab.receive(0, &eth(VMK0_MAC, HOST0_MAC, &none));
    assert!(lab.sent(0).is_empty());
}

#[test]
fn test_endpoint_connects_over_ipv6_after_solicitation() {
    use std::net::{IpAddr, SocketAddr};
    let mut lab = Lab6::new();
    let (h1, us) = (a("2001:db8:1::2"), a("2001:db8:1::1"));
    let dst = SocketAddr::new(IpAddr::V6(h1), 3260);
    let h = lab.engine.tcp_connect(dst, None, 4096, 4096);
    assert!(h.is_ok(), "{h:?}");
    lab.engine.poll_local();
    let out = lab.sent(1);
    assert_eq!(out.len(), 1, "a solicitation, the SYN queued");
    assert_eq!(out[0][ETH_HDR + 40], 135);
    lab.receive(
        1,
        &eth(
            VMK1_MAC,
            HOST1_MAC,
            &ipv6(h1, us, 58, 255, &na(h1, HOST1_MAC)),
        ),
    );
    let out = lab.sent(1);
    assert_eq!(out.len(), 1, "the queued SYN, not lost");
    let r = &out[0][ETH_HDR..];
    assert_eq!(&out[0][..6], &HOST1_MAC.0);
    assert_eq!((r[6], r[40 + 13] & 0x12), (6, 0x02), "TCP SYN");
    assert_eq!(&r[8..24], &us.octets(), "from vmk1's address on the prefix");
    let mut check = r.to_vec();
    seal_transport(&mut check);
    assert_eq!(&check[56..58], &r[56..58], "valid TCP checksum");

    // The source chosen by address, and the refusals.
    let from = lab
        .engine
        .tcp_connect_from(dst, IpAddr::V6(a("2001:db8::1")), 4096, 4096);
    assert!(from.is_ok(), "{from:?}");
    let stranger = lab
        .engine
        .tcp_connect_from(dst, IpAddr::V6(a("2001:db8::77")), 4096, 4096);
    assert!(
        matches!(stranger, Err(super::SocketError::NotLocal(_))),
        "{stranger:?}"
    );
    let mixed = lab.engine.tcp_connect_from(
        dst,
        "198.18.0.1".parse().unwrap_or(IpAddr::V6(us)),
        4096,
        4096,
    );
    assert!(
        matches!(mixed, Err(super::SocketError::Family { .. })),
        "{mixed:?}"
    );
    let far = SocketAddr::new(IpAddr::V6(a("2001:db8:99::1")), 22);
    let no_route = lab.engine.tcp_connect(far, None, 4096, 4096);
    assert!(
        matches!(no_route, Err(super::SocketError::NoRoute6(_))),
        "{no_route:?}"
    );
}
