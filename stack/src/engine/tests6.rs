//! The IPv6 stage on in-memory ports: Neighbour Discovery answered and learned, echo answered
//! after the asker is resolved (the reply waits in the pending queue, not lost), forwarding
//! with the hop limit decremented, and the ICMPv6 errors (hop limit, no route, too big).

use std::net::Ipv6Addr;
use std::time::Instant;

use vmkstack_vmknic::eth::{ETHERTYPE_IPV6, ETH_HDR};
use vmkstack_vmknic::{MacAddr, MemPort, VnetHdr, VNET_HDR_LEN};

use super::ipv6::solicited_node;
use super::testlab::gathered;
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
        Lab6::with_ports([false, false])
    }

    /// A lab whose ports offload as `offload` says (offloads on in the configuration when
    /// one does).
    fn with_ports(offload: [bool; 2]) -> Lab6 {
        let offloads = offload.contains(&true);
        let text = format!(
            r#"
forwarding = true
offloads = {offloads}
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
        let (engine, _) = Engine::new(&cfg, offload.map(MemPort::new), now);
        let mut lab = Lab6 { engine, now };
        for i in 0..2 {
            // A gratuitous ARP; the DAD probes wait their random start delay.
            assert_eq!(lab.sent(i).len(), 1, "start-up frames on vmk{i}");
        }
        // Within MAX_RTR_SOLICITATION_DELAY: two DAD probes (link-local, global); the IPv6
        // addresses are tentative.
        lab.advance(std::time::Duration::from_secs(1));
        for i in 0..2 {
            let sent = lab.sent(i);
            assert_eq!(sent.len(), 2, "DAD probes on vmk{i}");
            for probe in &sent {
                assert_dad_probe(probe);
            }
        }
        assert!(lab
            .engine
            .addresses6()
            .iter()
            .all(|a| a.state == super::Addr6State::Tentative));
        // RetransTimer later, unanswered: preferred, announced with unsolicited NAs.
        lab.advance(std::time::Duration::from_secs(1));
        for i in 0..2 {
            let sent = lab.sent(i);
            assert_eq!(sent.len(), 2, "announcements on vmk{i}");
            assert!(sent.iter().all(|f| f[ETH_HDR + 40] == 136));
        }
        assert!(lab
            .engine
            .addresses6()
            .iter()
            .all(|a| a.state == super::Addr6State::Preferred));
        lab
    }

    fn advance(&mut self, d: std::time::Duration) {
        self.now += d;
        self.engine.turn(self.now);
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

/// Checks a DAD probe (RFC 4862 5.4.2): a solicitation from :: to the target's
/// solicited-node group and its MAC, hop limit 255, no link-layer option, a valid checksum.
fn assert_dad_probe(f: &[u8]) {
    let ip = &f[ETH_HDR..];
    assert_eq!(ip.len(), 40 + 24, "no option");
    assert_eq!((ip[6], ip[7], ip[40]), (58, 255, 135));
    let target = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[48..64]).unwrap_or_default());
    let group = solicited_node(target);
    assert_eq!(&ip[8..24], &Ipv6Addr::UNSPECIFIED.octets());
    assert_eq!(&ip[24..40], &group.octets());
    assert_eq!(&f[..6], &mcast_mac(group).0);
    let mut s = sum16(&ip[8..40]) + 24 + 58 + sum16(&ip[40..]);
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    assert_eq!(s, 0xffff, "checksum");
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

/// A lab whose addresses are still tentative (no time has passed since the DAD probes).
fn tentative_lab() -> Lab6 {
    let text = format!(
        "forwarding = true\noffloads = false\n[[vmknic]]\nname = \"vmk0\"\nportgroup = \"A\"\n\
         ip = \"198.18.0.1/24\"\nmac = \"{VMK0_MAC}\"\nipv6 = [\"2001:db8:0::1/64\"]\n"
    );
    let cfg = Config::parse(&text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
    let now = Instant::now();
    let (engine, _) = Engine::new(&cfg, [MemPort::new(false)], now);
    let mut lab = Lab6 { engine, now };
    assert_eq!(lab.sent(0).len(), 1, "ARP; the DAD probes wait");
    // The random start delay is at most 1 s; the probes go out on the first turn after it.
    let mut probes = 0;
    for _ in 0..10 {
        lab.advance(std::time::Duration::from_millis(100));
        probes += lab.sent(0).len();
        if probes > 0 {
            break;
        }
    }
    assert_eq!(probes, 2, "two DAD probes within 1 s");
    lab
}

#[test]
fn test_first_dad_probe_waits_a_random_delay_but_added_addresses_do_not() {
    // The vmknic came up: no probe at once, both within 1 s (tentative_lab checks it).
    let mut lab = tentative_lab();
    assert!(lab
        .engine
        .addresses6()
        .iter()
        .all(|a| a.state == super::Addr6State::Tentative));
    // An address added to the running vmknic is probed at once.
    let added = a("2001:db8::7");
    let nets = vec![
        "2001:db8::1/64".parse().unwrap_or_else(|e| panic!("{e}")),
        "2001:db8::7/64".parse().unwrap_or_else(|e| panic!("{e}")),
    ];
    assert!(lab
        .engine
        .set_vmknic_ipv6(vmkstack_routing::VmknicId(0), nets));
    lab.engine.turn(lab.now);
    let sent = lab.sent(0);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_dad_probe(&sent[0]);
    assert_eq!(&sent[0][ETH_HDR + 48..ETH_HDR + 64], &added.octets());
}

fn state6(lab: &Lab6, addr: Ipv6Addr) -> Option<super::Addr6State> {
    lab.engine
        .addresses6()
        .iter()
        .find(|a| a.net.addr() == addr)
        .map(|a| a.state)
}

#[test]
fn test_dad_advertisement_makes_the_address_duplicate_and_unused() {
    let mut lab = tentative_lab();
    let us = a("2001:db8::1");
    // While tentative, a solicitation for it is not answered.
    let (h0, g) = (a("2001:db8::2"), solicited_node(us));
    let solicit = eth(
        mcast_mac(g),
        HOST0_MAC,
        &ipv6(h0, g, 58, 255, &ns(us, HOST0_MAC)),
    );
    lab.receive(0, &solicit);
    assert!(
        lab.sent(0).is_empty(),
        "a tentative address is not answered"
    );
    // Another node advertises it: duplicate.
    let all = a("ff02::1");
    let mut adv = na(us, HOST0_MAC);
    adv[4] = 0x20; // override, unsolicited
    lab.receive(
        0,
        &eth(mcast_mac(all), HOST0_MAC, &ipv6(h0, all, 58, 255, &adv)),
    );
    assert_eq!(state6(&lab, us), Some(super::Addr6State::Duplicate));
    // It stays so, is never announced, answered or routed from; the link-local one goes on.
    lab.advance(std::time::Duration::from_secs(2));
    let out = lab.sent(0);
    assert_eq!(out.len(), 1, "only the link-local address is announced");
    assert_ne!(&out[0][ETH_HDR + 48..ETH_HDR + 64], &us.octets());
    assert_eq!(state6(&lab, us), Some(super::Addr6State::Duplicate));
    lab.receive(0, &solicit);
    assert!(
        lab.sent(0).is_empty(),
        "a duplicate address is not answered"
    );
    assert!(
        lab.engine.routing6().lookup(h0).is_none(),
        "no connected route"
    );
    lab.receive(
        0,
        &eth(VMK0_MAC, HOST0_MAC, &ipv6(h0, us, 58, 64, &echo(1))),
    );
    assert!(
        lab.sent(0).is_empty(),
        "echo to a duplicate address unanswered"
    );
}

#[test]
fn test_dad_probe_from_another_node_makes_the_address_duplicate() {
    let mut lab = tentative_lab();
    let us = a("2001:db8::1");
    let g = solicited_node(us);
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
    assert!(lab.sent(0).is_empty());
    assert_eq!(state6(&lab, us), Some(super::Addr6State::Duplicate));
    // Our own probe, looped back (our MAC), changes nothing.
    let mut lab = tentative_lab();
    lab.receive(
        0,
        &eth(
            mcast_mac(g),
            VMK0_MAC,
            &ipv6(Ipv6Addr::UNSPECIFIED, g, 58, 255, &probe),
        ),
    );
    lab.advance(std::time::Duration::from_secs(1));
    assert_eq!(state6(&lab, us), Some(super::Addr6State::Preferred));
}

#[test]
fn test_neighbour_states_stale_delay_probe_reachable() {
    use vmkstack_vmknic::neighbor::State;
    let mut lab = Lab6::new();
    let (h0, us) = (a("2001:db8::2"), a("2001:db8::1"));
    let st = |lab: &Lab6| {
        lab.engine
            .neighbors6()
            .entries(lab.now)
            .iter()
            .find(|e| e.ip == h0)
            .map(|e| e.state)
    };
    // Echo to h0: solicited, and its solicited answer makes it REACHABLE.
    lab.receive(
        0,
        &eth(VMK0_MAC, HOST0_MAC, &ipv6(h0, us, 58, 64, &echo(1))),
    );
    lab.sent(0);
    lab.receive(
        0,
        &eth(
            VMK0_MAC,
            HOST0_MAC,
            &ipv6(h0, us, 58, 255, &na(h0, HOST0_MAC)),
        ),
    );
    assert_eq!(lab.sent(0).len(), 1, "the queued reply");
    assert_eq!(st(&lab), Some(State::Reachable));
    // ReachableTime (15-45 s, randomised) later: STALE.
    lab.advance(std::time::Duration::from_secs(46));
    assert_eq!(st(&lab), Some(State::Stale));
    // Used: the reply goes at once, the entry is DELAY.
    lab.receive(
        0,
        &eth(VMK0_MAC, HOST0_MAC, &ipv6(h0, us, 58, 64, &echo(2))),
    );
    let out = lab.sent(0);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0][ETH_HDR + 40], 129, "the reply, not a solicitation");
    assert_eq!(st(&lab), Some(State::Delay));
    // 5 s later: PROBE, a unicast solicitation to h0's MAC from our address.
    lab.advance(std::time::Duration::from_secs(5));
    let out = lab.sent(0);
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0][..6], &HOST0_MAC.0);
    assert_eq!(out[0][ETH_HDR + 40], 135);
    assert_eq!(&out[0][ETH_HDR + 24..ETH_HDR + 40], &h0.octets());
    assert_eq!(&out[0][ETH_HDR + 8..ETH_HDR + 24], &us.octets());
    assert_eq!(st(&lab), Some(State::Probe));
    // Answered: REACHABLE.
    lab.receive(
        0,
        &eth(
            VMK0_MAC,
            HOST0_MAC,
            &ipv6(h0, us, 58, 255, &na(h0, HOST0_MAC)),
        ),
    );
    assert_eq!(st(&lab), Some(State::Reachable));
    // Gone silent: STALE, DELAY, three probes 1 s apart, then removed.
    lab.advance(std::time::Duration::from_secs(46));
    lab.receive(
        0,
        &eth(VMK0_MAC, HOST0_MAC, &ipv6(h0, us, 58, 64, &echo(3))),
    );
    lab.sent(0);
    let mut probes = 0;
    for _ in 0..9 {
        lab.advance(std::time::Duration::from_secs(1));
        probes += lab
            .sent(0)
            .iter()
            .filter(|f| f[ETH_HDR + 40] == 135)
            .count();
    }
    assert_eq!(probes, 3, "MAX_UNICAST_SOLICIT");
    assert_eq!(st(&lab), None, "removed");
}

/// A Router Advertisement from `src` with hop limit `hl`: router lifetime `router_s`,
/// ReachableTime 1 s, a prefix option (A and L flags) with `valid`/`preferred` lifetimes, an
/// MTU option (1400) and the router's link-layer address.
fn ra(
    src: Ipv6Addr,
    hl: u8,
    router_s: u16,
    prefix: Ipv6Addr,
    valid: u32,
    preferred: u32,
) -> Vec<u8> {
    ra_from(src, HOST0_MAC, hl, router_s, prefix, valid, preferred)
}

/// [`ra`] from a router whose link-layer address is `mac`.
fn ra_from(
    src: Ipv6Addr,
    mac: MacAddr,
    hl: u8,
    router_s: u16,
    prefix: Ipv6Addr,
    valid: u32,
    preferred: u32,
) -> Vec<u8> {
    let mut m = vec![134, 0, 0, 0, 64, 0];
    m.extend_from_slice(&router_s.to_be_bytes());
    m.extend_from_slice(&1000u32.to_be_bytes());
    m.extend_from_slice(&0u32.to_be_bytes());
    m.extend_from_slice(&[3, 4, 64, 0xc0]);
    m.extend_from_slice(&valid.to_be_bytes());
    m.extend_from_slice(&preferred.to_be_bytes());
    m.extend_from_slice(&[0; 4]);
    m.extend_from_slice(&prefix.octets());
    m.extend_from_slice(&[5, 1, 0, 0]);
    m.extend_from_slice(&1400u32.to_be_bytes());
    m.extend_from_slice(&[1, 1]);
    m.extend_from_slice(&mac.0);
    let all = a("ff02::1");
    eth(mcast_mac(all), mac, &ipv6(src, all, 58, hl, &m))
}

#[test]
fn test_router_solicitation_and_slaac() {
    use std::time::Duration;
    let text = format!(
        "forwarding = false\noffloads = false\n[[vmknic]]\nname = \"vmk0\"\nportgroup = \"A\"\n\
         ip = \"198.18.0.1/24\"\nmac = \"{VMK0_MAC}\"\nipv6_autoconf = true\n"
    );
    let cfg = Config::parse(&text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
    let now = Instant::now();
    let (engine, _) = Engine::new(&cfg, [MemPort::new(false)], now);
    let mut lab = Lab6 { engine, now };
    assert_eq!(
        lab.sent(0).len(),
        1,
        "ARP; the DAD probe waits its random delay"
    );
    lab.advance(Duration::from_secs(1));
    let sent = lab.sent(0);
    assert_eq!(sent.len(), 1, "the link-local address's DAD probe");
    assert_dad_probe(&sent[0]);
    // DAD done: the link-local address is announced; a Router Solicitation follows after its
    // own random delay (at most 1 s).
    lab.advance(Duration::from_secs(1));
    let sent = lab.sent(0);
    let types: Vec<u8> = sent.iter().map(|f| f[ETH_HDR + 40]).collect();
    assert_eq!(types, vec![136]);
    lab.advance(Duration::from_secs(1));
    let sent = lab.sent(0);
    let types: Vec<u8> = sent.iter().map(|f| f[ETH_HDR + 40]).collect();
    assert_eq!(types, vec![133]);
    let rs = &sent[0][ETH_HDR..];
    assert_eq!(&rs[24..40], &a("ff02::2").octets());
    assert_eq!(rs[7], 255);
    assert_eq!(&rs[8..10], &[0xfe, 0x80]);
    assert_eq!(&rs[50..56], &VMK0_MAC.0, "our link-layer address");
    // Unanswered: again after 4 s, three in all.
    for _ in 0..3 {
        lab.advance(Duration::from_secs(4));
    }
    let n = lab
        .sent(0)
        .iter()
        .filter(|f| f[ETH_HDR + 40] == 133)
        .count();
    assert_eq!(n, 2);

    let router = a("fe80::1");
    let prefix = a("2001:db8:5::");
    let ours = a("2001:db8:5::ff:fe00:10");
    // Not from a link-local source, or hop limit not 255: ignored and counted.
    lab.receive(0, &ra(a("2001:db8:5::1"), 255, 60, prefix, 30, 20));
    lab.receive(0, &ra(router, 64, 60, prefix, 30, 20));
    assert_eq!(lab.drops(0, DropReason::BadNdp), 2);
    assert!(lab.engine.addresses6().iter().all(|a| a.net.addr() != ours));
    // A good one: the EUI-64 address, tentative, then preferred after its DAD probe.
    lab.receive(0, &ra(router, 255, 60, prefix, 30, 20));
    assert_eq!(state6(&lab, ours), Some(super::Addr6State::Tentative));
    let sent = lab.sent(0);
    assert_eq!(sent.len(), 1);
    assert_dad_probe(&sent[0]);
    lab.advance(Duration::from_secs(1));
    assert_eq!(state6(&lab, ours), Some(super::Addr6State::Preferred));
    // The default router, through vmk0; the MTU option caps IPv6 packets at 1400.
    let r = lab.engine.routing6().lookup(a("2001:db8:99::1"));
    assert_eq!(
        r.map(|r| r.next_hop.neighbor_for(a("2001:db8:99::1"))),
        Some(router)
    );
    assert_eq!(
        lab.engine.send_echo6(a("2001:db8:99::1"), 1, 1400, 64),
        Err(super::Ping6Error::TooBig)
    );
    // ReachableTime 1 s from the advertisement: a learned router goes STALE within 1.5 s.
    let mut answer = na(router, HOST0_MAC);
    answer[4] = 0xe0; // router, solicited, override
    lab.receive(
        0,
        &eth(VMK0_MAC, HOST0_MAC, &ipv6(router, ours, 58, 255, &answer)),
    );
    let st = |lab: &Lab6| {
        lab.engine
            .neighbors6()
            .entries(lab.now)
            .iter()
            .find(|e| e.ip == router)
            .map(|e| e.state)
    };
    assert_eq!(st(&lab), Some(vmkstack_vmknic::neighbor::State::Reachable));
    lab.advance(Duration::from_millis(1500));
    assert_eq!(st(&lab), Some(vmkstack_vmknic::neighbor::State::Stale));
    // Preferred lifetime (20 s) over: deprecated; valid lifetime (30 s) over: removed.
    lab.advance(Duration::from_secs(18));
    assert_eq!(state6(&lab, ours), Some(super::Addr6State::Deprecated));
    lab.advance(Duration::from_secs(10));
    assert_eq!(state6(&lab, ours), None);
    let r = lab.engine.routing6().lookup(a("2001:db8:5::2"));
    assert_eq!(
        r.map(|r| r.next_hop.neighbor_for(a("2001:db8:5::2"))),
        Some(router),
        "the prefix is no longer connected: only the default router reaches it"
    );
    // Router lifetime (60 s) over: no default router.
    lab.advance(Duration::from_secs(30));
    assert!(lab.engine.routing6().lookup(a("2001:db8:99::1")).is_none());
    assert_eq!(lab.engine.routing6().default_gateway(), None);
}

#[test]
fn test_advertisement_without_router_flag_drops_the_default_router() {
    use std::time::Duration;
    let text = format!(
        "[[vmknic]]\nname = \"vmk0\"\nportgroup = \"A\"\nip = \"198.18.0.1/24\"\n\
         mac = \"{VMK0_MAC}\"\nipv6_autoconf = true\n"
    );
    let cfg = Config::parse(&text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
    let now = Instant::now();
    let (engine, _) = Engine::new(&cfg, [MemPort::new(false)], now);
    let mut lab = Lab6 { engine, now };
    lab.advance(Duration::from_secs(1));
    lab.advance(Duration::from_secs(1));
    let router = a("fe80::1");
    lab.receive(0, &ra(router, 255, 600, a("2001:db8:5::"), 3600, 1800));
    lab.advance(Duration::from_secs(1));
    assert!(lab.engine.routing6().default_gateway().is_some());
    // Its own unsolicited advertisement without R: no longer a router.
    let all = a("ff02::1");
    let mut adv = na(router, HOST0_MAC);
    adv[4] = 0x20;
    lab.receive(
        0,
        &eth(mcast_mac(all), HOST0_MAC, &ipv6(router, all, 58, 255, &adv)),
    );
    assert_eq!(lab.engine.routing6().default_gateway(), None);
}

/// An autoconfiguring vmk0 (no forwarding) whose link-local address is preferred.
fn autoconf_lab() -> Lab6 {
    let text = format!(
        "[[vmknic]]\nname = \"vmk0\"\nportgroup = \"A\"\nip = \"198.18.0.1/24\"\n\
         mac = \"{VMK0_MAC}\"\nipv6_autoconf = true\n"
    );
    let cfg = Config::parse(&text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
    let now = Instant::now();
    let (engine, _) = Engine::new(&cfg, [MemPort::new(false)], now);
    let mut lab = Lab6 { engine, now };
    for _ in 0..3 {
        lab.advance(std::time::Duration::from_secs(1));
    }
    lab.sent(0);
    lab
}

#[test]
fn test_default_router_list_moves_on_when_the_router_in_use_fails() {
    use std::time::Duration;
    use vmkstack_routing::{Gateway6, VmknicId};
    let mut lab = autoconf_lab();
    let (r1, r2) = (a("fe80::1"), a("fe80::2"));
    let far = a("2001:db8:99::1");
    let prefix = a("2001:db8:5::");
    lab.receive(0, &ra_from(r1, HOST0_MAC, 255, 600, prefix, 3600, 1800));
    lab.receive(0, &ra_from(r2, HOST1_MAC, 255, 600, prefix, 3600, 1800));
    lab.advance(Duration::from_secs(1));
    lab.sent(0);
    let vmk0 = VmknicId(0);
    let gw = |lab: &Lab6| lab.engine.routing6().default_gateway();
    // Both are kept; the first one heard is in use (probably reachable: STALE from its
    // advertisement's link-layer option), and it stays while the second is heard again.
    assert_eq!(lab.engine.routers6().count(), 2);
    assert_eq!(gw(&lab), Some(Gateway6::on(r1, vmk0)));
    assert_eq!(lab.engine.learned_default6(), Some(Gateway6::on(r1, vmk0)));
    lab.receive(0, &ra_from(r2, HOST1_MAC, 255, 600, prefix, 3600, 1800));
    assert_eq!(gw(&lab), Some(Gateway6::on(r1, vmk0)));
    // Traffic goes to r1's MAC; r1 never answers: DELAY, three probes, entry removed...
    assert_eq!(lab.engine.send_echo6(far, 1, 8, 64), Ok(()));
    let out = lab.sent(0);
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0][..6], &HOST0_MAC.0, "to r1");
    for _ in 0..9 {
        lab.advance(Duration::from_secs(1));
    }
    assert!(lab
        .engine
        .neighbors6()
        .entries(lab.now)
        .iter()
        .all(|e| e.ip != r1));
    // ...and the default router is r2, which traffic now reaches.
    assert_eq!(gw(&lab), Some(Gateway6::on(r2, vmk0)));
    lab.sent(0);
    assert_eq!(lab.engine.send_echo6(far, 2, 8, 64), Ok(()));
    let out = lab.sent(0);
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0][..6], &HOST1_MAC.0, "to r2");
    // A configured default gateway wins over both; removed, r2 comes back.
    let mut table = lab.engine.routing6().clone();
    let configured = Gateway6::on(a("fe80::99"), vmk0);
    assert!(table.set_default_gateway(configured).is_ok());
    lab.engine.set_routing6(table.clone());
    assert_eq!(gw(&lab), Some(configured));
    assert_eq!(lab.engine.learned_default6(), None);
    assert!(table.clear_default_gateway().is_ok());
    lab.engine.set_routing6(table);
    assert_eq!(gw(&lab), Some(Gateway6::on(r2, vmk0)));
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

/// A TCP segment from `src`:`sport` to `dst`:`dport` over IPv6, checksummed.
#[allow(clippy::too_many_arguments)]
fn tcp6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    data: &[u8],
) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = flags;
    t[14..16].copy_from_slice(&64240u16.to_be_bytes());
    t.extend_from_slice(data);
    let mut p = ipv6(src, dst, 6, 64, &t);
    seal_transport(&mut p);
    p
}

fn be32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[test]
fn test_tcp_progress_keeps_the_neighbour_reachable_without_probes() {
    use smoltcp::socket::tcp;
    use std::net::{IpAddr, SocketAddr};
    use std::time::Duration;
    use vmkstack_vmknic::neighbor::State;
    let mut lab = Lab6::new();
    let (h1, us) = (a("2001:db8:1::2"), a("2001:db8:1::1"));
    let dst = SocketAddr::new(IpAddr::V6(h1), 3260);
    let Ok(h) = lab.engine.tcp_connect(dst, None, 4096, 4096) else {
        panic!("connect")
    };
    lab.engine.poll_local();
    lab.sent(1);
    lab.receive(
        1,
        &eth(
            VMK1_MAC,
            HOST1_MAC,
            &ipv6(h1, us, 58, 255, &na(h1, HOST1_MAC)),
        ),
    );
    let syn = lab.sent(1).remove(0);
    let t = &syn[ETH_HDR + 40..];
    let port = u16::from_be_bytes([t[0], t[1]]);
    let mut ours = be32_at(t, 4).wrapping_add(1);
    let mut theirs = 5000u32;
    let synack = tcp6(h1, us, 3260, port, theirs, ours, 0x12, b"");
    theirs += 1;
    lab.receive(1, &eth(VMK1_MAC, HOST1_MAC, &synack));
    lab.sent(1);
    let st = |lab: &Lab6| {
        lab.engine
            .neighbors6()
            .entries(lab.now)
            .iter()
            .find(|e| e.ip == h1)
            .map(|e| e.state)
    };
    assert_eq!(st(&lab), Some(State::Reachable));
    // A minute of data acknowledged every 5 s: REACHABLE all along, never a solicitation
    // (ReachableTime is 15-45 s).
    let mut solicitations = 0;
    for _ in 0..12 {
        lab.advance(Duration::from_secs(5));
        let sock = lab.engine.sockets().get_mut::<tcp::Socket>(h);
        assert_eq!(sock.send_slice(b"data"), Ok(4));
        lab.engine.poll_local();
        for f in lab.sent(1) {
            match f[ETH_HDR + 6] {
                58 if f[ETH_HDR + 40] == 135 => solicitations += 1,
                6 if f.len() > ETH_HDR + 60 => {
                    let n = (f.len() - ETH_HDR - 60) as u32;
                    ours = be32_at(&f[ETH_HDR + 40..], 4).wrapping_add(n);
                }
                _ => {}
            }
        }
        let ack = tcp6(h1, us, 3260, port, theirs, ours, 0x10, b"");
        lab.receive(1, &eth(VMK1_MAC, HOST1_MAC, &ack));
        lab.sent(1);
        assert_eq!(st(&lab), Some(State::Reachable));
    }
    assert_eq!(solicitations, 0);
    // The same acknowledgement again and again is no progress: STALE after ReachableTime.
    for _ in 0..10 {
        lab.advance(Duration::from_secs(5));
        let dup = tcp6(h1, us, 3260, port, theirs, ours, 0x10, b"");
        lab.receive(1, &eth(VMK1_MAC, HOST1_MAC, &dup));
    }
    assert_ne!(st(&lab), Some(State::Reachable));
}

#[test]
fn test_probe_to_a_silent_ipv6_neighbour_is_host_down() {
    use crate::apps::tcp_probe::{ProbeError, ProbeSource, TcpProbes};
    use std::net::{IpAddr, SocketAddr};
    use std::time::Duration;
    let mut lab = Lab6::new();
    let h1 = a("2001:db8:1::2");
    let dst = SocketAddr::new(IpAddr::V6(h1), 3260);
    let mut probes = TcpProbes::new();
    let started = probes.start(
        &mut lab.engine,
        dst,
        ProbeSource::Route,
        Duration::from_secs(60),
    );
    let Ok(id) = started else {
        panic!("{started:?}")
    };
    // Three solicitations 1 s apart, unanswered: the queued SYN is reported as failed (and
    // so are its retransmissions while the entry stays FAILED)...
    let mut failed = Vec::new();
    for _ in 0..6 {
        lab.advance(Duration::from_secs(1));
        lab.engine.take_failed(|f| failed.push(f));
    }
    assert!(!failed.is_empty());
    for f in &failed {
        assert_eq!((f.dst, f.protocol, f.dst_port), (IpAddr::V6(h1), 6, 3260));
    }
    // ...and the probe fails with "Host is down", not a timeout.
    probes.neighbor_failed(&failed[0]);
    let mut got = Vec::new();
    probes.take_results(&mut lab.engine, |i, r| got.push((i, r.map(|_| ()))));
    assert_eq!(got, vec![(id, Err(ProbeError::HostDown))]);
    assert_eq!(ProbeError::HostDown.to_string(), "Host is down");
}

/// `payload` of next header `nh` behind extension headers `ext` (each whole, its own Next
/// Header set by the caller): an IPv6 packet whose fixed header names `first`.
fn ipv6_ext(src: Ipv6Addr, dst: Ipv6Addr, first: u8, ext: &[u8], upper: &[u8], nh: u8) -> Vec<u8> {
    // The upper-layer checksum (ICMPv6, UDP) is computed without the extension headers.
    let plain = ipv6(src, dst, nh, 64, upper);
    let mut p = plain[..40].to_vec();
    p[4..6].copy_from_slice(&((ext.len() + upper.len()) as u16).to_be_bytes());
    p[6] = first;
    p.extend_from_slice(ext);
    p.extend_from_slice(&plain[40..]);
    p
}

#[test]
fn test_extension_headers_walked_to_the_upper_layer() {
    let mut lab = Lab6::new();
    learn_host0(&mut lab);
    let (h0, us) = (a("2001:db8::2"), a("2001:db8::1"));
    let to_us = |p: &[u8]| eth(VMK0_MAC, HOST0_MAC, p);
    // Hop-by-Hop (PadN), Destination Options (an option to skip), Routing with Segments Left
    // 0, an atomic fragment, then an echo request: answered.
    let ext = [
        60, 0, 1, 4, 0, 0, 0, 0, // Hop-by-Hop → Destination Options
        43, 0, 0x1e, 1, 0xaa, 1, 1, 0, // Destination Options → Routing
        44, 0, 0, 0, 0, 0, 0, 0, // Routing, Segments Left 0 → Fragment
        58, 0, 0, 0, 0, 0, 0, 7, // atomic fragment → ICMPv6
    ];
    lab.receive(0, &to_us(&ipv6_ext(h0, us, 0, &ext, &echo(5), 58)));
    let out = lab.sent(0);
    assert_eq!(out.len(), 1, "the echo reply");
    let r = &out[0][ETH_HDR..];
    assert_eq!((r[6], r[40], r[45]), (58, 129, 5));
    // Destination Options before UDP to a closed port: Port Unreachable, from smoltcp.
    let mut udp = ipv6(
        h0,
        us,
        17,
        64,
        &[0x9c, 0x40, 0x00, 0x09, 0, 10, 0, 0, b'h', b'i'],
    );
    seal_transport(&mut udp);
    let opts = [17, 0, 1, 4, 0, 0, 0, 0];
    lab.receive(0, &to_us(&ipv6_ext(h0, us, 60, &opts, &udp[40..], 17)));
    let out = lab.sent(0);
    assert_eq!(out.len(), 1, "Port Unreachable");
    assert_eq!((out[0][ETH_HDR + 40], out[0][ETH_HDR + 41]), (1, 4));

    // Refused, with a Parameter Problem (type 4) of the right code and pointer:
    let problem = |lab: &mut Lab6, first: u8, ext: &[u8]| -> Option<(u8, u32)> {
        lab.receive(0, &to_us(&ipv6_ext(h0, us, first, ext, &echo(6), 58)));
        let out = lab.sent(0);
        let r = &out.first()?[ETH_HDR..];
        assert_eq!(r[40], 4, "Parameter Problem");
        Some((r[41], u32::from_be_bytes([r[44], r[45], r[46], r[47]])))
    };
    // a Routing header (Type 0 or any) with Segments Left 1: code 0 at its Routing Type;
    assert_eq!(
        problem(&mut lab, 43, &[58, 0, 0, 1, 0, 0, 0, 0]),
        Some((0, 42))
    );
    // an unknown option whose type says "discard and report": code 2 at the option;
    assert_eq!(
        problem(&mut lab, 60, &[58, 0, 1, 0, 0x87, 0, 0, 0]),
        Some((2, 44))
    );
    // Hop-by-Hop after another header: code 1 at the Next Header field naming it;
    let late_hbh = [0, 0, 1, 4, 0, 0, 0, 0, 58, 0, 1, 4, 0, 0, 0, 0];
    assert_eq!(problem(&mut lab, 60, &late_hbh), Some((1, 40)));
    // an unknown upper layer behind an extension header: code 1 at the field naming it.
    lab.receive(
        0,
        &to_us(&ipv6_ext(
            h0,
            us,
            60,
            &[253, 0, 1, 4, 0, 0, 0, 0],
            b"zz",
            253,
        )),
    );
    let out = lab.sent(0);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0][ETH_HDR + 41], 1);
    assert_eq!(&out[0][ETH_HDR + 44..ETH_HDR + 48], &40u32.to_be_bytes());
    assert_eq!(lab.drops(0, DropReason::BadIpv6Ext), 3);
    // Silently dropped and counted: an option whose type says "discard", a cut chain.
    assert_eq!(problem(&mut lab, 60, &[58, 0, 1, 0, 0x47, 0, 0, 0]), None);
    assert_eq!(problem(&mut lab, 60, &[58, 3, 1, 0, 0, 0, 0, 0]), None);
    assert_eq!(lab.drops(0, DropReason::BadIpv6Ext), 5);
}

#[test]
fn test_fragmented_echo_reassembled_and_answered_in_fragments() {
    let mut lab = Lab6::new();
    learn_host0(&mut lab);
    let (h0, us) = (a("2001:db8::2"), a("2001:db8::1"));
    // A 3000-byte echo request as a kernel sends it on a 1500-byte link: three fragments,
    // the last first.
    let mut req = vec![128, 0, 0, 0, 0, 9, 0, 1];
    req.extend((0..3000u32).map(|k| k as u8));
    let whole = ipv6(h0, us, 58, 64, &req);
    let body = &whole[40..];
    let frag = |off: usize, end: usize, more: bool| {
        let mut ext = vec![58, 0];
        ext.extend_from_slice(&((off as u16) | u16::from(more)).to_be_bytes());
        ext.extend_from_slice(&0x1234u32.to_be_bytes());
        let mut p = whole[..40].to_vec();
        p[4..6].copy_from_slice(&((8 + end - off) as u16).to_be_bytes());
        p[6] = 44;
        p.extend_from_slice(&ext);
        p.extend_from_slice(&body[off..end]);
        eth(VMK0_MAC, HOST0_MAC, &p)
    };
    lab.receive(0, &frag(2896, body.len(), false));
    lab.receive(0, &frag(1448, 2896, true));
    assert!(
        lab.sent(0).is_empty(),
        "nothing before the datagram is whole"
    );
    lab.receive(0, &frag(0, 1448, true));
    // The reply (3048 bytes) leaves in fragments that fit vmk0's 1500 bytes.
    let out = lab.sent(0);
    assert!(out.len() >= 3, "{}", out.len());
    let mut reply = vec![0u8; 0];
    let mut id = None;
    for f in &out {
        assert!(f.len() - ETH_HDR <= 1500);
        let ip = &f[ETH_HDR..];
        assert_eq!((ip[6], ip[40]), (44, 58), "a Fragment header before ICMPv6");
        let field = u16::from_be_bytes([ip[42], ip[43]]);
        assert_eq!(usize::from(field & !7), reply.len(), "in order, no gap");
        assert_eq!(field & 1 == 1, f != out.last().unwrap_or(f));
        let this = u32::from_be_bytes([ip[44], ip[45], ip[46], ip[47]]);
        assert_eq!(*id.get_or_insert(this), this, "one identification");
        reply.extend_from_slice(&ip[48..]);
    }
    assert_eq!(reply.len(), 8 + 3000);
    assert_eq!(reply[0], 129, "echo reply");
    assert_eq!(&reply[8..], &req[8..], "the data echoed whole");
    // Its checksum verifies over the whole reply.
    let mut s = sum16(&us.octets()) + sum16(&h0.octets()) + reply.len() as u32 + 58;
    s += sum16(&reply);
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    assert_eq!(s, 0xffff);
    // A middle fragment not a multiple of 8 bytes: Parameter Problem, code 0, at Payload
    // Length, and counted.
    lab.receive(0, &frag(0, 1444, true));
    let out = lab.sent(0);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0][ETH_HDR + 40], out[0][ETH_HDR + 41]), (4, 0));
    assert_eq!(&out[0][ETH_HDR + 44..ETH_HDR + 48], &4u32.to_be_bytes());
    assert_eq!(lab.drops(0, DropReason::Fragment), 1);
}

/// Makes both hosts reachable (each solicits its vmknic's address, then advertises its
/// own, solicited): the forwarding fast path sends to REACHABLE neighbours.
fn learn_both(lab: &mut Lab6) {
    let (h0, h1) = (a("2001:db8::2"), a("2001:db8:1::2"));
    for (i, h, vmk, mac) in [
        (0, h0, "2001:db8::1", HOST0_MAC),
        (1, h1, "2001:db8:1::1", HOST1_MAC),
    ] {
        let g = solicited_node(a(vmk));
        lab.receive(
            i,
            &eth(mcast_mac(g), mac, &ipv6(h, g, 58, 255, &ns(a(vmk), mac))),
        );
        let vmk_mac = if i == 0 { VMK0_MAC } else { VMK1_MAC };
        lab.receive(
            i,
            &eth(vmk_mac, mac, &ipv6(h, a(vmk), 58, 255, &na(h, mac))),
        );
    }
    lab.sent(0);
    lab.sent(1);
}

/// Folds a 32-bit one's complement sum to 16 bits.
fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// The IPv6 pseudo-header sum (not complemented) for `len` bytes of TCP.
fn pseudo6(src: Ipv6Addr, dst: Ipv6Addr, len: usize) -> u16 {
    fold(sum16(&src.octets()) + sum16(&dst.octets()) + len as u32 + 6)
}

/// A TCP/IPv6 super-frame of `payload` bytes from host0 to host1 as an offloading TAP hands
/// it over: a virtio-net header asking for TSO6 at `mss`, the TCP checksum holding the
/// pseudo-header sum only.
fn super_frame6(payload: usize, mss: u16) -> Vec<u8> {
    super_frame6_ext(payload, mss, 6, &[])
}

/// [`super_frame6`] with the extension headers `ext` between the IPv6 header (next header
/// `nh`) and TCP; the partial checksum starts at the TCP header.
fn super_frame6_ext(payload: usize, mss: u16, nh: u8, ext: &[u8]) -> Vec<u8> {
    let (h0, h1) = (a("2001:db8::2"), a("2001:db8:1::2"));
    let mut tcp = vec![0u8; 20 + payload];
    tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
    tcp[2..4].copy_from_slice(&5201u16.to_be_bytes());
    tcp[4..8].copy_from_slice(&0xffff_f000u32.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = 0x18; // PSH, ACK
    tcp[14..16].copy_from_slice(&512u16.to_be_bytes());
    for (k, b) in tcp[20..].iter_mut().enumerate() {
        *b = (k % 251) as u8;
    }
    let partial = pseudo6(h0, h1, tcp.len());
    tcp[16..18].copy_from_slice(&partial.to_be_bytes());
    let hdr = VnetHdr {
        flags: VnetHdr::NEEDS_CSUM,
        gso_type: VnetHdr::GSO_TCPV6,
        hdr_len: (ETH_HDR + 60 + ext.len()) as u16,
        gso_size: mss,
        csum_start: (ETH_HDR + 40 + ext.len()) as u16,
        csum_offset: 16,
    };
    let mut out = vec![0; VNET_HDR_LEN];
    hdr.write(&mut out);
    let mut ip_payload = ext.to_vec();
    ip_payload.extend_from_slice(&tcp);
    out.extend_from_slice(&eth(
        VMK0_MAC,
        HOST0_MAC,
        &ipv6(h0, h1, nh, 64, &ip_payload),
    ));
    out
}

/// A Destination Options header (next header TCP) of 8 bytes: a PadN option.
const DEST_OPTS: [u8; 8] = [6, 0, 1, 4, 0, 0, 0, 0];

fn inject(lab: &mut Lab6, i: usize, hdr_and_frame: &[u8]) {
    if let Some(p) = lab.engine.port_mut(i) {
        p.inject_offloaded(hdr_and_frame);
    }
    lab.engine.set_readable(i);
    lab.engine.turn(lab.now);
}

/// Checks the segments `sent` (Ethernet frames) of [`super_frame6`]'s `payload` bytes: each
/// within vmk1's MTU, hop limit 63, its own payload length, a complete checksum, its
/// sequence number, PSH on the last only; the payload reassembles in order.
fn check_segments(sent: &[Vec<u8>], payload: usize) {
    check_segments_ext(sent, payload, 6, &[]);
}

/// [`check_segments`] for [`super_frame6_ext`]: every segment carries the extension headers
/// `ext` after an IPv6 header of next header `nh`.
fn check_segments_ext(sent: &[Vec<u8>], payload: usize, nh: u8, ext: &[u8]) {
    let (h0, h1) = (a("2001:db8::2"), a("2001:db8:1::2"));
    let mut data = Vec::new();
    for (k, f) in sent.iter().enumerate() {
        let ip = &f[ETH_HDR..];
        let plen = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
        assert_eq!(plen, ip.len() - 40, "payload length of segment {k}");
        assert!(ip.len() <= 1400, "segment {k} fits vmk1's MTU");
        assert_eq!(ip[6], nh, "next header of segment {k}");
        assert_eq!(ip[7], 63, "hop limit decremented");
        assert_eq!(
            &ip[40..40 + ext.len()],
            ext,
            "extension headers of segment {k}"
        );
        assert_eq!((&f[..6], &f[6..12]), (&HOST1_MAC.0[..], &VMK1_MAC.0[..]));
        let tcp = &ip[40 + ext.len()..];
        let sum = fold(u32::from(pseudo6(h0, h1, tcp.len())) + sum16(tcp));
        assert_eq!(sum, 0xffff, "segment {k}'s checksum is complete");
        let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
        assert_eq!(seq, 0xffff_f000u32.wrapping_add(data.len() as u32));
        let last = k + 1 == sent.len();
        assert_eq!(tcp[13], if last { 0x18 } else { 0x10 }, "flags of {k}");
        data.extend_from_slice(&tcp[20..]);
    }
    let want: Vec<u8> = (0..payload).map(|k| (k % 251) as u8).collect();
    assert_eq!(data, want, "the payload, in order");
}

#[test]
fn test_tso6_super_frame_forwarded_whole_to_an_offloading_port() {
    let mut lab = Lab6::with_ports([true, true]);
    learn_both(&mut lab);
    let sf = super_frame6(4000, 1340);
    inject(&mut lab, 0, &sf);
    let Some(out) = lab.engine.port_mut(1).and_then(|p| p.tx.pop_front()) else {
        panic!("nothing forwarded")
    };
    // The header goes as it came; the frame has new MACs and hop limit 63.
    assert_eq!(VnetHdr::read(&out), VnetHdr::read(&sf));
    assert_eq!(out.len(), sf.len());
    let f = &out[VNET_HDR_LEN..];
    assert_eq!((&f[..6], &f[6..12]), (&HOST1_MAC.0[..], &VMK1_MAC.0[..]));
    assert_eq!(f[ETH_HDR + 7], 63);
    assert_eq!(&f[ETH_HDR + 8..], &sf[VNET_HDR_LEN + ETH_HDR + 8..]);
    let c = &lab.engine.vmknics()[1].counters;
    assert_eq!((c.forwarded, c.gso_forwarded, c.gso_segmented), (1, 1, 0));
}

#[test]
fn test_tso6_super_frame_cut_for_a_plain_port() {
    let mut lab = Lab6::with_ports([true, false]);
    learn_both(&mut lab);
    inject(&mut lab, 0, &super_frame6(4000, 1340));
    let sent = lab.sent(1);
    assert_eq!(sent.len(), 3, "4000 bytes at 1340 per segment");
    check_segments(&sent, 4000);
    let c = &lab.engine.vmknics()[1].counters;
    assert_eq!((c.forwarded, c.gso_forwarded, c.gso_segmented), (1, 0, 1));
}

#[test]
fn test_tso6_super_frame_waits_for_the_neighbour_as_segments() {
    let mut lab = Lab6::with_ports([true, true]);
    let g = solicited_node(a("2001:db8::1"));
    let solicit = ipv6(
        a("2001:db8::2"),
        g,
        58,
        255,
        &ns(a("2001:db8::1"), HOST0_MAC),
    );
    lab.receive(0, &eth(mcast_mac(g), HOST0_MAC, &solicit));
    lab.sent(0);
    // Host1 unknown: the segments wait while vmk1 solicits it, and leave on its answer.
    inject(&mut lab, 0, &super_frame6(3000, 1340));
    let out = lab.sent(1);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0][ETH_HDR + 40], 135, "a solicitation");
    let h1 = a("2001:db8:1::2");
    lab.receive(
        1,
        &eth(
            VMK1_MAC,
            HOST1_MAC,
            &ipv6(h1, a("2001:db8:1::1"), 58, 255, &na(h1, HOST1_MAC)),
        ),
    );
    let sent = lab.sent(1);
    assert_eq!(sent.len(), 3, "the queued segments");
    check_segments(&sent, 3000);
}

#[test]
fn test_tso6_packet_too_big_on_the_segment_size() {
    let mut lab = Lab6::with_ports([true, true]);
    learn_both(&mut lab);
    // 40 + 20 + 1400 bytes per segment do not fit vmk1's 1400.
    inject(&mut lab, 0, &super_frame6(4000, 1400));
    let out = lab.sent(0);
    assert_eq!(out.len(), 1, "Packet Too Big");
    assert_eq!(out[0][ETH_HDR + 40], 2);
    assert_eq!(&out[0][ETH_HDR + 44..ETH_HDR + 48], &1400u32.to_be_bytes());
    assert!(lab.sent(1).is_empty());
    assert_eq!(lab.drops(0, DropReason::TooBig), 1);
}

#[test]
fn test_tso6_bad_offload_headers_counted() {
    let mut lab = Lab6::with_ports([true, true]);
    learn_both(&mut lab);
    type Spoil = fn(&mut Vec<u8>);
    let bad: [(&str, Spoil); 8] = [
        ("TCPv4 segmentation on IPv6", |f| f[1] = VnetHdr::GSO_TCPV4),
        ("UDP segmentation", |f| f[1] = 5),
        ("gso_size 0", |f| f[4..6].fill(0)),
        ("gso_size below TCP_MIN_MSS", |f| {
            f[4..6].copy_from_slice(&40u16.to_ne_bytes())
        }),
        ("no partial checksum", |f| f[0] = 0),
        ("checksum start off the TCP header", |f| {
            f[6..8].copy_from_slice(&((ETH_HDR + 20) as u16).to_ne_bytes())
        }),
        ("not TCP", |f| f[VNET_HDR_LEN + ETH_HDR + 6] = 17),
        ("TCP header past the packet", |f| {
            // 60 bytes of TCP header in a 40 + 40-byte packet.
            f.truncate(VNET_HDR_LEN + ETH_HDR + 80);
            f[VNET_HDR_LEN + ETH_HDR + 4..VNET_HDR_LEN + ETH_HDR + 6]
                .copy_from_slice(&40u16.to_be_bytes());
            f[VNET_HDR_LEN + ETH_HDR + 52] = 15 << 4;
        }),
    ];
    for (k, (what, spoil)) in bad.iter().enumerate() {
        let mut sf = super_frame6(4000, 1340);
        spoil(&mut sf);
        inject(&mut lab, 0, &sf);
        assert_eq!(lab.drops(0, DropReason::BadOffload), k as u64 + 1, "{what}");
        assert!(lab.sent(1).is_empty(), "{what}: nothing forwarded");
    }
    // The good one still crosses.
    inject(&mut lab, 0, &super_frame6(4000, 1340));
    assert_eq!(lab.engine.vmknics()[1].counters.gso_forwarded, 1);
}

#[test]
fn test_dhcp6_answers_kept_flags_and_address_through_dad() {
    use std::time::Duration;
    use vmkstack_routing::VmknicId;
    let text = format!(
        "[[vmknic]]\nname = \"vmk0\"\nportgroup = \"A\"\nip = \"198.18.0.1/24\"\n\
         mac = \"{VMK0_MAC}\"\nipv6_dhcp = true\n"
    );
    let cfg = Config::parse(&text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
    let now = Instant::now();
    let (engine, _) = Engine::new(&cfg, [MemPort::new(false)], now);
    let mut lab = Lab6 { engine, now };
    let id = VmknicId(0);
    let ll = a("fe80::ff:fe00:10");
    // DHCPv6 turns IPv6 on: the link-local address, usable once its DAD is over.
    // The DAD probe waits its random start delay (at most 1 s) behind the gratuitous ARP.
    assert_eq!(lab.sent(0).len(), 1, "ARP; the DAD probe waits");
    lab.advance(Duration::from_secs(1));
    assert_eq!(lab.sent(0).len(), 1, "the link-local address's DAD probe");
    assert_eq!(lab.engine.link_local6(id), None);
    lab.advance(Duration::from_secs(1));
    lab.sent(0);
    assert_eq!(lab.engine.link_local6(id), Some(ll));

    // A Router Advertisement's M and O flags are kept for the client (autoconf off).
    let router = a("fe80::1");
    let mut m = vec![134, 0, 0, 0, 64, 0x80, 0, 0];
    m.extend_from_slice(&[0; 8]);
    let all = a("ff02::1");
    lab.receive(
        0,
        &eth(mcast_mac(all), HOST0_MAC, &ipv6(router, all, 58, 255, &m)),
    );
    assert_eq!(lab.engine.ra_flags(id), Some((true, false)));

    // A server's answer (UDP 547 → 546) to the link-local address is kept for the client,
    // not given to smoltcp.
    let mut udp = vec![2, 35, 2, 34, 0, 12, 0, 0];
    udp.extend_from_slice(&[7, 1, 2, 3]);
    let answer = ipv6(router, ll, 17, 64, &udp);
    lab.receive(0, &eth(VMK0_MAC, HOST0_MAC, &answer));
    let mut kept = Vec::new();
    lab.engine.take_dhcp6(|v, ip| kept.push((v, ip.to_vec())));
    assert_eq!(kept, vec![(id, answer.clone())]);
    lab.engine.count_bad_dhcp6(id);
    assert_eq!(lab.drops(0, DropReason::BadDhcp6), 1);

    // The granted address: tentative (a DAD probe), then preferred with a connected /64;
    // deprecated after its preferred lifetime, gone after its valid one.
    let ours = a("2001:db8:61::10");
    let life = |p: u64, v: u64| Some((ours, Duration::from_secs(p), Duration::from_secs(v)));
    lab.engine.set_dhcp6_address(id, life(20, 30));
    assert_eq!(
        lab.engine.addr6_state(id, ours),
        Some(super::Addr6State::Tentative)
    );
    lab.advance(Duration::from_millis(10));
    let sent = lab.sent(0);
    assert_eq!(sent.len(), 1);
    assert_dad_probe(&sent[0]);
    lab.advance(Duration::from_secs(1));
    assert_eq!(
        lab.engine.addr6_state(id, ours),
        Some(super::Addr6State::Preferred)
    );
    let r = lab.engine.routing6().lookup(a("2001:db8:61::1"));
    assert_eq!(
        r.map(|r| r.next_hop.neighbor_for(a("2001:db8:61::1"))),
        Some(a("2001:db8:61::1")),
        "connected"
    );
    let origin = lab
        .engine
        .addresses6()
        .iter()
        .find(|x| x.net.addr() == ours)
        .map(|x| x.origin);
    assert_eq!(origin, Some(super::Addr6Origin::Dhcp));
    // Renewed: the same address keeps its state, with new lifetimes.
    lab.engine.set_dhcp6_address(id, life(20, 30));
    assert_eq!(
        lab.engine.addr6_state(id, ours),
        Some(super::Addr6State::Preferred)
    );
    lab.advance(Duration::from_secs(21));
    assert_eq!(
        lab.engine.addr6_state(id, ours),
        Some(super::Addr6State::Deprecated)
    );
    lab.advance(Duration::from_secs(10));
    assert_eq!(lab.engine.addr6_state(id, ours), None);

    // DHCPv6 off: answers are no longer kept, the flags forgotten, an address removed.
    lab.engine.set_dhcp6_address(id, life(20, 30));
    assert!(lab.engine.set_vmknic_ipv6_switches(id, true, false, false));
    assert_eq!(lab.engine.addr6_state(id, ours), None);
    assert_eq!(lab.engine.ra_flags(id), None);
    lab.receive(0, &eth(VMK0_MAC, HOST0_MAC, &answer));
    let mut n = 0;
    lab.engine.take_dhcp6(|_, _| n += 1);
    assert_eq!(n, 0);
    assert_eq!(lab.engine.link_local6(id), Some(ll), "IPv6 stays on");
}

#[test]
fn test_tso6_super_frame_to_a_stale_neighbour_crosses_whole() {
    use vmkstack_vmknic::neighbor::State;
    let mut lab = Lab6::with_ports([true, true]);
    learn_both(&mut lab);
    // Host1 known only from its solicitation: STALE (RFC 4861 7.2.3), usable at once.
    let h1 = a("2001:db8:1::2");
    lab.engine.neighbors6.remove(h1);
    let g = solicited_node(a("2001:db8:1::1"));
    lab.receive(
        1,
        &eth(
            mcast_mac(g),
            HOST1_MAC,
            &ipv6(h1, g, 58, 255, &ns(a("2001:db8:1::1"), HOST1_MAC)),
        ),
    );
    lab.sent(1);
    let state = |lab: &Lab6| {
        let entries = lab.engine.neighbors6().entries(lab.now);
        entries.iter().find(|e| e.ip == h1).map(|e| e.state)
    };
    assert_eq!(state(&lab), Some(State::Stale));
    let sf = super_frame6(4000, 1340);
    inject(&mut lab, 0, &sf);
    let out: Vec<_> = lab
        .engine
        .port_mut(1)
        .map(|p| p.tx.drain(..).collect())
        .unwrap_or_default();
    assert_eq!(out.len(), 1, "one super-frame, not cut");
    assert_eq!(VnetHdr::read(&out[0]), VnetHdr::read(&sf));
    let c = &lab.engine.vmknics()[1].counters;
    assert_eq!((c.forwarded, c.gso_forwarded, c.gso_segmented), (1, 1, 0));
    assert_eq!(state(&lab), Some(State::Delay), "used: DELAY");
}

#[test]
fn test_tso6_super_frame_with_destination_options_forwarded_whole() {
    let mut lab = Lab6::with_ports([true, true]);
    learn_both(&mut lab);
    let sf = super_frame6_ext(4000, 1300, 60, &DEST_OPTS);
    inject(&mut lab, 0, &sf);
    let Some(out) = lab.engine.port_mut(1).and_then(|p| p.tx.pop_front()) else {
        panic!("nothing forwarded")
    };
    assert_eq!(VnetHdr::read(&out), VnetHdr::read(&sf));
    assert_eq!(out.len(), sf.len());
    let f = &out[VNET_HDR_LEN..];
    assert_eq!(f[ETH_HDR + 7], 63);
    assert_eq!(&f[ETH_HDR + 8..], &sf[VNET_HDR_LEN + ETH_HDR + 8..]);
    let c = &lab.engine.vmknics()[1].counters;
    assert_eq!((c.forwarded, c.gso_forwarded, c.gso_segmented), (1, 1, 0));
    assert_eq!(lab.drops(0, DropReason::BadOffload), 0);
}

#[test]
fn test_tso6_super_frame_with_extension_headers_cut_for_a_plain_port() {
    let mut lab = Lab6::with_ports([true, false]);
    learn_both(&mut lab);
    // Destination options alone, then hop-by-hop, a routing header with no segments left
    // and destination options: 16 + 8 bytes before TCP.
    let hbh_rt_dst: Vec<u8> = [
        [43, 0, 1, 4, 0, 0, 0, 0],
        [60, 0, 0, 0, 0, 0, 0, 0],
        [6, 0, 1, 4, 0, 0, 0, 0],
    ]
    .concat();
    let chains: [(u8, &[u8]); 2] = [(60, &DEST_OPTS), (0, &hbh_rt_dst)];
    for (k, (nh, ext)) in chains.into_iter().enumerate() {
        inject(&mut lab, 0, &super_frame6_ext(4000, 1300, nh, ext));
        let sent = lab.sent(1);
        assert_eq!(sent.len(), 4, "4000 bytes at 1300 per segment");
        check_segments_ext(&sent, 4000, nh, ext);
        let c = &lab.engine.vmknics()[1].counters;
        assert_eq!((c.gso_forwarded, c.gso_segmented), (0, k as u64 + 1));
    }
    assert_eq!(lab.drops(0, DropReason::BadOffload), 0);
}

#[test]
fn test_tso6_extension_headers_that_cannot_be_cut_are_refused() {
    let mut lab = Lab6::with_ports([true, true]);
    learn_both(&mut lab);
    let routing_left = [6, 0, 0, 1, 0, 0, 0, 0];
    let fragment = [6, 0, 0, 0, 0, 0, 0, 1];
    let hbh_late: Vec<u8> = [[0, 0, 0, 0, 0, 0, 0, 0], [6, 0, 1, 4, 0, 0, 0, 0]].concat();
    let unknown = [6, 0, 0, 0, 0, 0, 0, 0];
    // Ten destination options headers: more than the cutter walks.
    let mut many = [60, 0, 1, 4, 0, 0, 0, 0].repeat(10);
    many[72] = 6;
    let cases: [(&str, u8, &[u8]); 5] = [
        ("a routing header with segments left", 43, &routing_left),
        ("a fragment header", 44, &fragment),
        ("hop-by-hop after another header", 60, &hbh_late),
        ("an unknown header", 253, &unknown),
        ("too many extension headers", 60, &many),
    ];
    for (k, (what, nh, ext)) in cases.into_iter().enumerate() {
        inject(&mut lab, 0, &super_frame6_ext(4000, 1300, nh, ext));
        assert_eq!(lab.drops(0, DropReason::BadOffload), k as u64 + 1, "{what}");
        assert!(lab.sent(1).is_empty(), "{what}: nothing forwarded");
    }
    // The checksum must start at the TCP header, after the extension header.
    let mut sf = super_frame6_ext(4000, 1300, 60, &DEST_OPTS);
    sf[6..8].copy_from_slice(&((ETH_HDR + 40) as u16).to_ne_bytes());
    inject(&mut lab, 0, &sf);
    assert_eq!(lab.drops(0, DropReason::BadOffload), 6);
    assert!(lab.sent(1).is_empty());
}

/// A TCP/IPv6 segment from host1 (port 40000) to vmk1's port 3260 with `flags` and TCP
/// options `opts`, its checksum complete, in an Ethernet frame to vmk1.
fn tcp6_from_host1(seq: u32, ack: u32, flags: u8, opts: &[u8]) -> Vec<u8> {
    let (h1, v1) = (a("2001:db8:1::2"), a("2001:db8:1::1"));
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&40000u16.to_be_bytes());
    t[2..4].copy_from_slice(&3260u16.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    t[12] = (((20 + opts.len()) / 4) as u8) << 4;
    t[13] = flags;
    t[14..16].copy_from_slice(&65535u16.to_be_bytes());
    t.extend_from_slice(opts);
    let sum = !fold(u32::from(pseudo6(h1, v1, t.len())) + sum16(&t));
    t[16..18].copy_from_slice(&sum.to_be_bytes());
    eth(VMK1_MAC, HOST1_MAC, &ipv6(h1, v1, 6, 64, &t))
}

/// A lab whose vmk1 port offloads or not (`offload`; offloads on in the configuration) and
/// a smoltcp socket on [2001:db8:1::1]:3260 that host1 connected to with an MSS of 1340 and
/// window scaling (shift 7): the lab, the socket, host1's next sequence number and smoltcp's.
fn connected6(offload: bool) -> (Lab6, smoltcp::iface::SocketHandle, u32, u32) {
    use smoltcp::socket::tcp;
    let mut lab = Lab6::with_ports([true, offload]);
    learn_both(&mut lab);
    let mut sock = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; 65535]),
        tcp::SocketBuffer::new(vec![0; 256 * 1024]),
    );
    assert!(sock.listen(3260).is_ok());
    let h = lab.engine.sockets().add(sock);
    // SYN with MSS 1340, NOP, window scale 7.
    let syn = tcp6_from_host1(1000, 0, 0x02, &[2, 4, 0x05, 0x3c, 1, 3, 3, 7]);
    lab.receive(1, &syn);
    let sent = lab.sent(1);
    assert_eq!(sent.len(), 1, "a SYN-ACK");
    let t = &sent[0][ETH_HDR + 40..];
    let isn = u32::from_be_bytes([t[4], t[5], t[6], t[7]]).wrapping_add(1);
    lab.receive(1, &tcp6_from_host1(1001, isn, 0x10, &[]));
    let state = lab.engine.sockets().get::<tcp::Socket>(h).state();
    assert_eq!(state, tcp::State::Established);
    (lab, h, 1001, isn)
}

/// Sends `data` through the socket, host1 acknowledging every frame that leaves vmk1, and
/// returns each frame's virtio-net header and TCP segment (its payload length checked, its
/// checksum too when complete), after checking that the bytes arrive whole and in order.
fn send_acked6(
    lab: &mut Lab6,
    h: smoltcp::iface::SocketHandle,
    data: &[u8],
    (seq, isn): (u32, u32),
) -> Vec<(VnetHdr, Vec<u8>)> {
    use smoltcp::socket::tcp;
    let (v1, h1) = (a("2001:db8:1::1"), a("2001:db8:1::2"));
    let (mut queued, mut got, mut frames) = (0, Vec::new(), Vec::new());
    for _ in 0..1000 {
        if got.len() == data.len() {
            break;
        }
        let sock = lab.engine.sockets().get_mut::<tcp::Socket>(h);
        queued += sock.send_slice(&data[queued..]).unwrap_or(0);
        lab.engine.poll_local();
        let mut acked = None;
        while let Some(out) = lab.engine.port_mut(1).and_then(|p| p.tx.pop_front()) {
            let hdr = VnetHdr::read(&out);
            let ip = &out[VNET_HDR_LEN + ETH_HDR..];
            assert_eq!(
                (ip[6], usize::from(u16::from_be_bytes([ip[4], ip[5]]))),
                (6, ip.len() - 40)
            );
            let t = ip[40..].to_vec();
            let at = u32::from_be_bytes([t[4], t[5], t[6], t[7]]).wrapping_sub(isn) as usize;
            assert_eq!(at, got.len(), "in order, nothing lost");
            if hdr.gso_type == 0 {
                let sum = fold(u32::from(pseudo6(v1, h1, t.len())) + sum16(&t));
                assert_eq!(sum, 0xffff, "checksum complete");
            }
            got.extend_from_slice(&t[usize::from(t[12] >> 4) * 4..]);
            acked = Some(isn.wrapping_add(got.len() as u32));
            frames.push((hdr, t));
        }
        match acked {
            Some(a) => lab.receive(1, &tcp6_from_host1(seq, a, 0x10, &[])),
            None => lab.advance(std::time::Duration::from_millis(10)),
        }
    }
    assert!(
        got == data,
        "{} of {} bytes; drops {:?} {:?}; tx {}",
        got.len(),
        data.len(),
        lab.engine.vmknics()[1]
            .counters
            .nonzero_drops()
            .collect::<Vec<_>>(),
        lab.engine.vmknics()[0]
            .counters
            .nonzero_drops()
            .collect::<Vec<_>>(),
        lab.engine.device.tx.len(),
    );
    frames
}

#[test]
fn test_local_tcp6_builds_large_segments_for_an_offloading_port() {
    let (mut lab, h, seq, isn) = connected6(true);
    let data: Vec<u8> = (0..1_000_000u32).map(|k| (k * 13 % 255) as u8).collect();
    let frames = send_acked6(&mut lab, h, &data, (seq, isn));
    // smoltcp built segments beyond the MSS (TSO6); each left whole with the real MSS for
    // the kernel to cut at, its checksum partial (the pseudo-header sum).
    let (v1, h1) = (a("2001:db8:1::1"), a("2001:db8:1::2"));
    let mut large = 0;
    for (hdr, t) in &frames {
        let len = t.len() - 20;
        if len > 1340 {
            large += 1;
            let want = VnetHdr {
                flags: VnetHdr::NEEDS_CSUM,
                gso_type: VnetHdr::GSO_TCPV6,
                hdr_len: (ETH_HDR + 60) as u16,
                gso_size: 1340,
                csum_start: (ETH_HDR + 40) as u16,
                csum_offset: 16,
            };
            assert_eq!(*hdr, want, "a {len}-byte segment");
            assert_eq!(&t[16..18], &pseudo6(v1, h1, t.len()).to_be_bytes());
        } else {
            assert_eq!(hdr.gso_type, 0, "a {len}-byte segment goes plain");
        }
    }
    let biggest = frames.iter().map(|(_, t)| t.len() - 20).max().unwrap_or(0);
    assert!(
        large > 0 && biggest > 16 * 1340,
        "{large} large segments, the largest {biggest} bytes"
    );
    assert!(biggest <= crate::device::tso_size6(1400) - 60, "{biggest}");
    assert!(
        frames.len() < 1_000_000 / 1340 / 4,
        "{} frames",
        frames.len()
    );
    assert_eq!(
        lab.engine.vmknics()[1].counters.drops(DropReason::TooBig),
        0
    );
}

#[test]
fn test_local_tcp6_large_segments_are_cut_for_a_plain_port() {
    // Offloads on in the configuration but not on vmk1's port: the engine cuts smoltcp's
    // large segments into MSS-sized ones with complete checksums.
    let (mut lab, h, seq, isn) = connected6(false);
    let data: Vec<u8> = (0..300_000u32).map(|k| (k * 7 % 251) as u8).collect();
    let frames = send_acked6(&mut lab, h, &data, (seq, isn));
    assert!(frames
        .iter()
        .all(|(h, t)| h.gso_type == 0 && t.len() - 20 <= 1340));
    assert!(frames.len() >= 300_000 / 1340);
}

#[test]
fn test_local_tcp6_large_segment_to_a_stale_neighbour_leaves_whole() {
    use vmkstack_vmknic::neighbor::State;
    let (mut lab, h, seq, isn) = connected6(true);
    // A first burst opens the congestion window.
    let data: Vec<u8> = (0..200_000u32).map(|k| (k % 253) as u8).collect();
    send_acked6(&mut lab, h, &data, (seq, isn));
    // Host1's entry goes STALE (ReachableTime, at most 45 s, passes without traffic).
    let h1 = a("2001:db8:1::2");
    lab.advance(std::time::Duration::from_secs(50));
    lab.sent(1);
    let state = |lab: &Lab6| {
        let entries = lab.engine.neighbors6().entries(lab.now);
        entries.iter().find(|e| e.ip == h1).map(|e| e.state)
    };
    assert_eq!(state(&lab), Some(State::Stale));
    // The next burst's first packet is a large segment: it leaves whole to the STALE entry,
    // which goes to DELAY (RFC 4861 7.3.3), instead of being cut for the pending queue.
    let next = isn.wrapping_add(data.len() as u32);
    let before = gathered(&lab.engine).0;
    let frames = send_acked6(&mut lab, h, &data, (seq, next));
    let (hdr, t) = &frames[0];
    assert!(t.len() - 20 > 1340, "a {}-byte first segment", t.len() - 20);
    assert_eq!(hdr.gso_type, VnetHdr::GSO_TCPV6);
    if t.len() - 20 >= crate::device::GATHER_MIN {
        assert!(
            gathered(&lab.engine).0 > before,
            "it left from the socket buffer"
        );
    }
    // Used, the entry left STALE for DELAY; the burst's new ACKs then confirm it REACHABLE
    // (upper-layer reachability confirmation, RFC 4861 7.3.1) without a probe.
    assert_eq!(state(&lab), Some(State::Reachable));
}

#[test]
fn test_local_tcp6_gathered_super_frames_equal_the_ring_path() {
    // The same transfer twice: vmk1's port taking frames in pieces (the payload leaves from
    // smoltcp's socket buffer) and not (every segment copied into the transmit ring).
    let data: Vec<u8> = (0..500_000u32).map(|k| (k * 17 % 251) as u8).collect();
    let run = |gather: bool| {
        let (mut lab, h, seq, isn) = connected6(true);
        if let Some(p) = lab.engine.port_mut(1) {
            p.gather = gather;
        }
        let frames: Vec<(VnetHdr, Vec<u8>)> = send_acked6(&mut lab, h, &data, (seq, isn))
            .into_iter()
            .map(|(hdr, mut t)| {
                // Sequence numbers from smoltcp's ISN, which differs run to run.
                let s = u32::from_be_bytes([t[4], t[5], t[6], t[7]]).wrapping_sub(isn);
                t[4..8].copy_from_slice(&s.to_be_bytes());
                (hdr, t)
            })
            .collect();
        let c = &lab.engine.vmknics()[1].counters;
        let counts = (c.tx_packets, c.tx_bytes, c.total_drops());
        let port = lab.engine.port_mut(1).map_or(0, |p| p.gathered);
        (frames, counts, gathered(&lab.engine), port)
    };
    let (direct, direct_counts, (calls, segments), port) = run(true);
    let (ring, ring_counts, ring_gathered, ring_port) = run(false);
    assert_eq!((ring_gathered, ring_port), ((0, 0), 0));
    let large = direct
        .iter()
        .filter(|(_, t)| t.len() - 20 >= crate::device::GATHER_MIN)
        .count() as u64;
    assert!(large > 3, "{large} large frames");
    assert!(
        calls <= large && calls * 4 >= large * 3,
        "{calls} of {large}"
    );
    assert_eq!(port, calls, "the port took them in pieces");
    assert!(segments >= calls * 6, "{segments} segments");
    assert_eq!(direct.len(), ring.len(), "frames");
    for (k, (d, r)) in direct.iter().zip(&ring).enumerate() {
        assert!(
            d == r,
            "frame {k} differs ({} and {} bytes)",
            d.1.len(),
            r.1.len()
        );
    }
    assert_eq!(direct_counts, ring_counts, "tx packets, bytes, drops");
}
