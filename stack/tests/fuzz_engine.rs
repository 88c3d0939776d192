//! The AFL target `engine` (`fuzz/afl/`, which includes this file), and its regression test:
//! every input in `fuzz/corpus/engine/` replayed (a crash AFL found goes there).
//!
//! The target: frames into the whole data plane (`Engine` on two in-memory ports:
//! Ethernet, ARP, the virtio-net header, IPv4 checks, forwarding, ICMP errors, fragmentation,
//! the neighbour queue, smoltcp's endpoint; and IPv6: NDP, echo, forwarding and ICMPv6 errors,
//! both vmknics holding an IPv6 prefix), with time passing between them.
//!
//! Input: one flags byte (bit 0: offloads on both ports), then records of a port byte (bit 0:
//! vmk0 or vmk1), a big-endian u16 length and that many bytes: a 10-byte virtio-net header
//! and an Ethernet frame, as a TAP hands them over. A short last record takes what is left.
//!
//! Beyond "no panic": every frame the engine sends carries the sending vmknic's MAC as its
//! source and is at least an Ethernet header long; an IP frame that is not a super-frame fits
//! the MTU, an IPv4 one has a valid IPv4 header, and an IPv6 one a whole header with an exact
//! payload length, a hop limit and a unicast source.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use vmkstack_stack::{packet, Config, Engine};
use vmkstack_vmknic::{MacAddr, MemPort, VnetHdr, ETHERTYPE_IPV4, ETH_HDR, VNET_HDR_LEN};

/// vmk0's and vmk1's MACs.
pub const MACS: [MacAddr; 2] = [
    MacAddr([0x02, 0x50, 0x56, 0x00, 0x00, 0x01]),
    MacAddr([0x02, 0x50, 0x56, 0x00, 0x00, 0x11]),
];
/// vmk0's and vmk1's addresses (/24 each).
pub const ADDRS: [Ipv4Addr; 2] = [Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 19, 0, 1)];
/// The default gateway, on vmk1's subnet.
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 254);
/// Both vmknics' MTU.
pub const MTU: usize = 1500;

/// Most records one input is cut into (a longer tail is ignored).
const MAX_RECORDS: usize = 64;

/// Runs one input; panics where an invariant breaks.
pub fn run(data: &[u8]) {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let offloads = flags & 1 != 0;
    let text = format!(
        "forwarding = true\noffloads = {offloads}\ndefault_gateway = \"{GATEWAY}\"\n\
         [[route]]\nnetwork = \"198.20.0.0/16\"\ngateway = \"198.18.0.254\"\n\
         [[vmknic]]\nname = \"vmk0\"\nportgroup = \"A\"\nip = \"{}/24\"\nmac = \"{}\"\nmtu = {MTU}\n\
         ipv6 = [\"2001:db8:1::1/64\"]\n\
         [[vmknic]]\nname = \"vmk1\"\nportgroup = \"B\"\nip = \"{}/24\"\nmac = \"{}\"\nmtu = {MTU}\n\
         ipv6 = [\"2001:db8:2::1/64\"]\n",
        ADDRS[0], MACS[0], ADDRS[1], MACS[1]
    );
    let cfg = match Config::parse(&text, "engine.toml") {
        Ok(cfg) => cfg,
        Err(e) => panic!("the target's own configuration is refused: {e}"),
    };
    let t0 = Instant::now();
    let ports = [MemPort::new(offloads), MemPort::new(offloads)];
    let (mut engine, _) = Engine::new(&cfg, ports, t0);
    drain(&mut engine);
    // The IPv6 addresses are tentative for a second (DAD): the records start once they are
    // preferred, so that the seeds reach the IPv6 paths they were written for.
    let mut now = t0 + Duration::from_secs(1);
    engine.turn(now);
    drain(&mut engine);
    for _ in 0..MAX_RECORDS {
        let Some((&port, tail)) = rest.split_first() else {
            break;
        };
        let (len, tail) = match tail {
            [hi, lo, tail @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), tail),
            _ => (tail.len(), &[][..]),
        };
        let (frame, tail) = tail.split_at(len.min(tail.len()));
        rest = tail;
        let slot = usize::from(port & 1);
        if let Some(p) = engine.port_mut(slot) {
            p.rx.push_back(frame.to_vec());
        }
        engine.set_readable(slot);
        // Time moves on by 0-2.55 s per record, so timers, retries and expiries run too.
        now += Duration::from_millis(u64::from(port >> 1) * 20);
        engine.turn(now);
        drain(&mut engine);
    }
    for later in [1, 5, 60] {
        engine.turn(now + Duration::from_secs(later));
        drain(&mut engine);
    }
}

/// Checks and clears what each port was sent.
fn drain(engine: &mut Engine<MemPort>) {
    for (slot, mac) in MACS.iter().enumerate() {
        let Some(port) = engine.port_mut(slot) else {
            continue;
        };
        while let Some(buf) = port.tx.pop_front() {
            check_sent(slot, *mac, &buf);
        }
    }
}

fn check_sent(slot: usize, mac: MacAddr, buf: &[u8]) {
    assert!(
        buf.len() >= VNET_HDR_LEN + ETH_HDR,
        "vmk{slot} sent a {}-byte buffer",
        buf.len()
    );
    let hdr = VnetHdr::read(buf);
    let frame = &buf[VNET_HDR_LEN..];
    assert_eq!(
        frame[6..12],
        mac.0,
        "vmk{slot} sent a frame from another MAC"
    );
    let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    if hdr.gso_type != 0 || (ethertype != ETHERTYPE_IPV4 && ethertype != ETHERTYPE_IPV6) {
        return;
    }
    assert!(
        frame.len() <= ETH_HDR + MTU,
        "vmk{slot} sent a {}-byte IP frame over its MTU",
        frame.len()
    );
    let ip = &frame[ETH_HDR..];
    if ethertype == ETHERTYPE_IPV4 {
        if let Err(e) = packet::parse_ipv4(ip) {
            panic!("vmk{slot} sent an IPv4 packet it would refuse: {e:?}");
        }
        return;
    }
    // IPv6: a whole header, its payload length exact (our frames are never padded: the
    // smallest, an echo reply without data, is 62 bytes), a hop limit, a unicast source.
    assert!(
        ip.len() >= 40,
        "vmk{slot} sent a {}-byte IPv6 packet",
        ip.len()
    );
    assert_eq!(
        ip[0] >> 4,
        6,
        "vmk{slot} sent IPv6 with version {}",
        ip[0] >> 4
    );
    let payload = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
    assert_eq!(
        40 + payload,
        ip.len(),
        "vmk{slot} sent IPv6 with a wrong payload length"
    );
    assert!(ip[7] > 0, "vmk{slot} sent IPv6 with hop limit 0");
    assert_ne!(ip[8], 0xff, "vmk{slot} sent IPv6 from a multicast source");
}

/// The IPv6 ethertype.
const ETHERTYPE_IPV6: u16 = 0x86dd;

/// Every input of the `engine` corpus (the seeds and any crash kept there) runs without a
/// broken invariant.
#[test]
fn engine_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/engine");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    files.sort();
    assert!(
        files.len() > 50,
        "the engine corpus is missing: {}",
        dir.display()
    );
    for path in files {
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        eprintln!("{}", path.display());
        run(&data);
    }
}
