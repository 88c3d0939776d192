//! The data plane's per-packet forwarding path on in-memory frames, with no syscalls: the same
//! steps as `Netstack::handle_frame` → `handle_ipv4` → `forward` for a frame that takes the
//! fast path (Ethernet classify, IPv4 parse with header checksum, the virtio-net header
//! checked against the packet, martian / local / directed broadcast checks, LPM lookup, MTU
//! and TTL checks, TTL decrement with the incremental
//! checksum, neighbour lookup, MAC rewrite), at 10, 1k and 1M static routes.
//!
//! Each packet is first copied from its template into one reused buffer (this restores TTL,
//! checksum and MACs); `copy_only` measures that copy alone, so the net cost per packet is
//! `forward` − `copy_only`. The time is read once per batch: the daemon calls
//! `Instant::now()` once per forwarded frame, measured on its own as `instant_now`.
//!
//! Run: `cargo bench --bench forward_path` (add `-- forward_path/1k` to pick a group).

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ipnet::Ipv4Net;
use smoltcp::wire::Ipv4Packet;
use vmkstack_routing::{synth, RoutingTable, VmknicId};
use vmkstack_stack::packet;
use vmkstack_vmknic::{
    eth, Ingress, MacAddr, NeighborConfig, NeighborTable, VnetHdr, ETH_HDR, VNET_HDR_LEN,
};

/// The virtio-net header an offloading TAP puts before a plain frame.
static PLAIN: [u8; VNET_HDR_LEN] = [0; VNET_HDR_LEN];

/// Frames forwarded per iteration.
const BATCH: usize = 4096;
/// A 60-byte frame: Ethernet, IPv4 (no options), UDP with 18 bytes of payload.
const FRAME_LEN: usize = 60;
/// Ingress vmknic (index 0) and egress vmknic (index 1) subnets; the gateway of every static
/// route and of the default route is on the egress subnet.
const VMK0: &str = "198.18.0.1/24";
const VMK1: &str = "198.18.1.1/24";
const GATEWAY: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 254);
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const CLIENT_MAC: MacAddr = MacAddr([0x02, 0xcc, 0, 0, 0, 2]);

/// What the forwarding path reads from one vmknic (the daemon's `Vmknic`, minus the TAP).
struct Nic {
    id: VmknicId,
    mac: MacAddr,
    mtu: u16,
    active: bool,
    addrs: Vec<Ipv4Net>,
}

/// The router's state as `forward` sees it.
struct Router {
    nics: Vec<Nic>,
    routing: RoutingTable,
    neighbors: NeighborTable,
}

impl Router {
    /// Two vmknics, `n` BGP-like static routes plus a default route, all via [`GATEWAY`],
    /// whose MAC is learned on vmknic 1.
    fn new(prefixes: &[Ipv4Net]) -> Router {
        let nic = |i: u32, addr: &str| Nic {
            id: VmknicId(i),
            mac: MacAddr([0x02, 0, 0, 0, 0, i as u8]),
            mtu: 1500,
            active: true,
            addrs: vec![addr.parse().expect("valid prefix")],
        };
        let nics = vec![nic(0, VMK0), nic(1, VMK1)];
        let t0 = Instant::now();
        let (routing, problems) = RoutingTable::from_config(
            nics.iter().map(|v| (v.id, v.addrs.clone(), true)),
            Some(GATEWAY),
            prefixes.iter().map(|&p| (p, GATEWAY)),
        );
        eprintln!(
            "forward_path: {} routes built with from_config in {:.2?} ({} refused)",
            prefixes.len(),
            t0.elapsed(),
            problems.len()
        );
        let mut neighbors = NeighborTable::new(NeighborConfig::default());
        let gw_mac = MacAddr([0x02, 0xaa, 0, 0, 0, 1]);
        neighbors.learn(GATEWAY, gw_mac, 1, false, Instant::now());
        Router {
            nics,
            routing,
            neighbors,
        }
    }

    fn is_local(&self, ip: Ipv4Addr) -> bool {
        self.nics
            .iter()
            .any(|v| v.active && v.addrs.iter().any(|a| a.addr() == ip))
    }

    fn is_directed_broadcast(&self, ip: Ipv4Addr) -> bool {
        self.nics.iter().filter(|v| v.active).any(|v| {
            v.addrs
                .iter()
                .any(|a| a.prefix_len() < 31 && a.broadcast() == ip)
        })
    }
}

/// Forwards `frame`, received on vmknic `rx`, in place through the fast path. Returns
/// the egress vmknic index and the frame length to send, or `None` where the daemon would
/// drop the frame or leave the fast path (ICMP error, fragmentation, ARP resolution).
#[inline(never)]
fn forward_one(r: &Router, frame: &mut [u8], rx: usize, now: Instant) -> Option<(usize, usize)> {
    let ours = r.nics.get(rx)?.mac;
    if eth::classify(frame, ours) != Ok(Ingress::Ipv4) {
        return None;
    }
    let info = packet::parse_ipv4(frame.get(ETH_HDR..)?).ok()?;
    let end = ETH_HDR + info.total_len;
    let hdr = VnetHdr::read(black_box(&PLAIN));
    let o = packet::check_offload(&hdr, frame.get(ETH_HDR..end)?, &info).ok()?;
    if packet::is_martian(info.src) || r.is_local(info.src) || r.is_directed_broadcast(info.src) {
        return None;
    }
    if r.is_local(info.dst) {
        return None;
    }
    let l2_broadcast = frame.get(..6) == Some(&[0xff; 6][..]);
    if l2_broadcast || packet::is_martian(info.dst) || r.is_directed_broadcast(info.dst) {
        return None;
    }
    if info.has_options || info.more_frags || info.frag_offset > 0 || info.ttl <= 1 {
        return None;
    }
    let route = r.routing.lookup(info.dst)?;
    let vmk = route.next_hop.vmknic();
    let e = r.nics.iter().position(|v| v.id == vmk && v.active)?;
    let out = r.nics.get(e)?;
    if o.wire_len > usize::from(out.mtu) {
        return None;
    }
    let next_hop = route.next_hop.neighbor_for(info.dst);
    packet::decrement_ttl(frame.get_mut(ETH_HDR..end)?);
    let mac = r.neighbors.lookup_on(next_hop, e as u32, now)?;
    eth::write_header(frame, mac, out.mac, eth::ETHERTYPE_IPV4);
    Some((e, end))
}

/// A UDP frame from [`CLIENT`] to `dst`, addressed to vmknic 0's MAC, with a valid IPv4
/// header checksum (UDP checksum 0).
fn frame_to(dst: Ipv4Addr, ours: MacAddr, ttl: u8) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    eth::write_header(&mut f, ours, CLIENT_MAC, eth::ETHERTYPE_IPV4);
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
    f
}

/// [`BATCH`] template frames whose destinations come from `synth::addresses(prefixes, .., 0.9,
/// ..)`, keeping only those that take the whole fast path: martian destinations (roughly 1.5%
/// of the addresses) are left out and replaced by further addresses.
fn templates(r: &Router, prefixes: &[Ipv4Net]) -> Vec<[u8; FRAME_LEN]> {
    let now = Instant::now();
    let out: Vec<_> = synth::addresses(prefixes, 2 * BATCH, 0.9, 7)
        .into_iter()
        .map(|dst| frame_to(dst, r.nics[0].mac, 64))
        .filter(|t| {
            let mut f = *t;
            let forwarded = forward_one(r, &mut f, 0, now).is_some();
            // The rewritten header still verifies, with TTL one lower.
            let ttl = packet::parse_ipv4(&f[ETH_HDR..]).map(|i| i.ttl);
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
        let router = Router::new(&prefixes);
        let frames = templates(&router, &prefixes);
        let mut buf = [0u8; FRAME_LEN];
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
                let now = Instant::now();
                let mut sent = 0usize;
                for t in black_box(&frames) {
                    buf.copy_from_slice(t);
                    sent += forward_one(&router, black_box(&mut buf), 0, now).map_or(0, |x| x.1);
                }
                sent
            })
        });
        g.finish();
    }
}

/// `parse_ipv4`, `decrement_ttl`, the route (1k) and neighbour lookups alone, and the clock
/// read the daemon does per frame.
fn pieces(c: &mut Criterion) {
    let prefixes = synth::bgp_like(1_000, 42);
    let router = Router::new(&prefixes);
    let frames = templates(&router, &prefixes);
    let mut g = c.benchmark_group("packet");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("parse_ipv4", |b| {
        b.iter(|| {
            let mut acc = 0u32;
            for t in black_box(&frames) {
                acc ^= packet::parse_ipv4(&t[ETH_HDR..]).map_or(0, |i| u32::from(i.dst));
            }
            acc
        })
    });
    // TTL 255 allows 254 decrements before the header must be restored (once per round).
    const ROUND: u64 = 254;
    let template = frame_to(Ipv4Addr::new(192, 0, 2, 1), CLIENT_MAC, 255);
    let mut buf = template;
    g.throughput(Throughput::Elements(ROUND));
    g.bench_function("decrement_ttl", |b| {
        b.iter(|| {
            buf.copy_from_slice(&template);
            for _ in 0..ROUND {
                packet::decrement_ttl(black_box(&mut buf[ETH_HDR..]));
            }
        })
    });
    g.throughput(Throughput::Elements(BATCH as u64));
    let dsts: Vec<Ipv4Addr> = frames
        .iter()
        .map(|f| Ipv4Addr::new(f[30], f[31], f[32], f[33]))
        .collect();
    let lookup = |d: &Ipv4Addr| router.routing.lookup(*d);
    g.bench_function("route_lookup_1k", |b| {
        b.iter(|| black_box(&dsts).iter().filter_map(lookup).count())
    });
    let (n, now) = (&router.neighbors, Instant::now());
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
