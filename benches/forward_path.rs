//! The data plane's per-packet forwarding path, the real stages on in-memory ports with no
//! syscalls: `Engine::receive_frame` for a frame that takes the fast path (Ethernet classify,
//! IPv4 parse with header checksum, the virtio-net header checked against the packet,
//! martian / local / directed broadcast checks, LPM lookup, MTU and TTL checks, TTL decrement
//! with the incremental checksum, neighbour lookup, MAC rewrite, the egress port's send and
//! the counters), at 10, 1k and 1M static routes.
//!
//! Each packet is first copied from its template into one reused buffer (this restores TTL,
//! checksum and MACs); `copy_only` measures that copy alone, so the net cost per packet is
//! `forward` − `copy_only`. The time is set once per batch, as the daemon reads the clock
//! once per loop turn (`instant_now` measures one read).
//!
//! Run: `cargo bench --bench forward_path` (add `-- forward_path/1k` to pick a group).

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ipnet::Ipv4Net;
use smoltcp::wire::Ipv4Packet;
use vmkstack_routing::{synth, RoutingTable};
use vmkstack_stack::{packet, Config, Engine};
use vmkstack_vmknic::arp::{ArpOp, ArpRepr, ARP_FRAME_LEN};
use vmkstack_vmknic::{eth, MacAddr, MemPort, ETH_HDR, VNET_HDR_LEN};

/// Frames forwarded per iteration.
const BATCH: usize = 4096;
/// A 60-byte frame: Ethernet, IPv4 (no options), UDP with 18 bytes of payload.
const FRAME_LEN: usize = 60;
/// What a port hands the engine: a (zero) virtio-net header and the frame.
const BUF_LEN: usize = VNET_HDR_LEN + FRAME_LEN;
/// Ingress vmknic (vmk0) and egress vmknic (vmk1) subnets; the gateway of every static
/// route and of the default route is on the egress subnet.
const VMK0: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const VMK1: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
const VMK0_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x10]);
const VMK1_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x11]);
const GATEWAY: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 254);
const GATEWAY_MAC: MacAddr = MacAddr([0x02, 0xaa, 0, 0, 0, 1]);
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const CLIENT_MAC: MacAddr = MacAddr([0x02, 0xcc, 0, 0, 0, 2]);

/// The engine on two in-memory ports (the egress one only counts what it is sent), with
/// `prefixes` as static routes plus a default route, all via [`GATEWAY`], whose MAC it
/// learned from an ARP request on vmk1.
fn engine(prefixes: &[Ipv4Net]) -> Engine<MemPort> {
    let text = format!(
        "forwarding = true\noffloads = false\ndefault_gateway = \"{GATEWAY}\"\n\
         [[vmknic]]\nname = \"vmk0\"\nportgroup = \"A\"\nip = \"{VMK0}/24\"\nmac = \"{VMK0_MAC}\"\n\
         [[vmknic]]\nname = \"vmk1\"\nportgroup = \"B\"\nip = \"{VMK1}/24\"\nmac = \"{VMK1_MAC}\"\n"
    );
    let cfg = Config::parse(&text, "bench.toml").expect("bench configuration");
    let (mut engine, _) = Engine::new(
        &cfg,
        [MemPort::new(false), MemPort::new(false)],
        Instant::now(),
    );
    let t0 = Instant::now();
    let (routing, problems) = RoutingTable::from_config(
        cfg.vmknics
            .iter()
            .map(|v| (v.id, v.addresses().collect(), true)),
        Some(GATEWAY),
        prefixes.iter().map(|&p| (p, GATEWAY)),
    );
    eprintln!(
        "forward_path: {} routes built with from_config in {:.2?} ({} refused)",
        prefixes.len(),
        t0.elapsed(),
        problems.len()
    );
    engine.set_routing(routing);
    let ask = ArpRepr {
        operation: ArpOp::Request,
        source_mac: GATEWAY_MAC,
        source_ip: GATEWAY,
        target_mac: MacAddr([0; 6]),
        target_ip: VMK1,
    };
    let mut arp = [0u8; VNET_HDR_LEN + ARP_FRAME_LEN];
    ask.emit_frame(&mut arp[VNET_HDR_LEN..], MacAddr::BROADCAST, GATEWAY_MAC);
    engine.receive_frame(1, &mut arp);
    let known = engine.neighbors().lookup_on(GATEWAY, 1, Instant::now());
    assert_eq!(known, Some(GATEWAY_MAC), "the gateway learned on vmk1");
    for i in 0..2 {
        let port = engine.port_mut(i).expect("port");
        port.tx.clear();
        port.keep_tx = false;
    }
    engine
}

/// Frames the egress port was sent so far.
fn sent(e: &mut Engine<MemPort>) -> u64 {
    e.port_mut(1).map_or(0, |p| p.sent)
}

/// A UDP frame from [`CLIENT`] to `dst`, addressed to vmknic 0's MAC, with a valid IPv4
/// header checksum (UDP checksum 0).
fn frame_to(dst: Ipv4Addr, ttl: u8) -> [u8; BUF_LEN] {
    let mut buf = [0u8; BUF_LEN];
    let f = &mut buf[VNET_HDR_LEN..];
    let ours = VMK0_MAC;
    eth::write_header(f, ours, CLIENT_MAC, eth::ETHERTYPE_IPV4);
    let ip_len = (FRAME_LEN - ETH_HDR) as u16;
    let ip = &mut f[ETH_HDR..ETH_HDR + 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    ip[6] = 0x40; // DF
    ip[8] = ttl;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&CLIENT.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    Ipv4Packet::new_unchecked(ip).fill_checksum();
    f[ETH_HDR + 24..ETH_HDR + 26].copy_from_slice(&(ip_len - 20).to_be_bytes()); // UDP length
    buf
}

/// [`BATCH`] template frames whose destinations come from `synth::addresses(prefixes, .., 0.9,
/// ..)`, keeping only those the engine forwards: martian destinations (roughly 1.5% of the
/// addresses) are left out and replaced by further addresses.
fn templates(e: &mut Engine<MemPort>, prefixes: &[Ipv4Net]) -> Vec<[u8; BUF_LEN]> {
    e.set_time(Instant::now());
    let out: Vec<_> = synth::addresses(prefixes, 2 * BATCH, 0.9, 7)
        .into_iter()
        .map(|dst| frame_to(dst, 64))
        .filter(|t| {
            let before = sent(e);
            let mut f = *t;
            e.receive_frame(0, &mut f);
            let forwarded = sent(e) == before + 1;
            // The rewritten header still verifies, with TTL one lower.
            let ttl = packet::parse_ipv4(&f[VNET_HDR_LEN + ETH_HDR..]).map(|i| i.ttl);
            assert!(!forwarded || ttl == Ok(63), "bad TTL/checksum rewrite");
            forwarded
        })
        .take(BATCH)
        .collect();
    assert_eq!(out.len(), BATCH, "too few forwardable destinations");
    out
}

fn forward_path(c: &mut Criterion) {
    for (label, n) in [("10", 10usize), ("1k", 1_000), ("1M", 1_000_000)] {
        let prefixes = synth::bgp_like(n, 42);
        let mut engine = engine(&prefixes);
        let frames = templates(&mut engine, &prefixes);
        let mut buf = [0u8; BUF_LEN];
        let mut g = c.benchmark_group(format!("forward_path/{label}"));
        g.throughput(Throughput::Elements(BATCH as u64));
        g.sample_size(if n >= 1_000_000 { 50 } else { 100 });
        g.bench_function("copy_only", |b| {
            b.iter(|| {
                for t in black_box(&frames) {
                    buf.copy_from_slice(t);
                    black_box(&mut buf);
                }
            })
        });
        g.bench_function("forward", |b| {
            b.iter(|| {
                engine.set_time(Instant::now());
                let before = sent(&mut engine);
                for t in black_box(&frames) {
                    buf.copy_from_slice(t);
                    engine.receive_frame(0, black_box(&mut buf));
                }
                sent(&mut engine) - before
            })
        });
        g.finish();
    }
}

/// `parse_ipv4`, `decrement_ttl`, the route (1k) and neighbour lookups alone, and the clock
/// read the daemon does per loop turn.
fn pieces(c: &mut Criterion) {
    let prefixes = synth::bgp_like(1_000, 42);
    let mut engine = engine(&prefixes);
    let frames = templates(&mut engine, &prefixes);
    let mut g = c.benchmark_group("packet");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("parse_ipv4", |b| {
        b.iter(|| {
            let mut acc = 0u32;
            for t in black_box(&frames) {
                let ip = &t[VNET_HDR_LEN + ETH_HDR..];
                acc ^= packet::parse_ipv4(ip).map_or(0, |i| u32::from(i.dst));
            }
            acc
        })
    });
    // TTL 255 allows 254 decrements before the header must be restored (once per round).
    const ROUND: u64 = 254;
    let template = frame_to(Ipv4Addr::new(198, 19, 0, 1), 255);
    let mut buf = template;
    g.throughput(Throughput::Elements(ROUND));
    g.bench_function("decrement_ttl", |b| {
        b.iter(|| {
            buf.copy_from_slice(&template);
            for _ in 0..ROUND {
                packet::decrement_ttl(black_box(&mut buf[VNET_HDR_LEN + ETH_HDR..]));
            }
        })
    });
    g.throughput(Throughput::Elements(BATCH as u64));
    let dsts: Vec<Ipv4Addr> = frames
        .iter()
        .map(|f| {
            let d = VNET_HDR_LEN + ETH_HDR + 16;
            Ipv4Addr::new(f[d], f[d + 1], f[d + 2], f[d + 3])
        })
        .collect();
    let routing = engine.routing();
    let lookup = |d: &Ipv4Addr| routing.lookup(*d);
    g.bench_function("route_lookup_1k", |b| {
        b.iter(|| black_box(&dsts).iter().filter_map(lookup).count())
    });
    let (n, now) = (engine.neighbors(), Instant::now());
    let neigh = |_| n.lookup_on(black_box(GATEWAY), 1, now);
    g.bench_function("neighbor_lookup_on", |b| {
        b.iter(|| (0..BATCH).filter_map(neigh).count())
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("instant_now", |b| b.iter(Instant::now));
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = forward_path, pieces
}
criterion_main!(benches);
