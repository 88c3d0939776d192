//! Seeded synthetic route tables and address streams for benches and differential tests.
//!
//! The prefix-length mix follows a global BGP table: about 60% /24, most of the rest /16-/23,
//! a few shorter than /16 and a few host-ish routes longer than /24.
//!
//! The IPv6 mix ([`bgp_like_v6`]) follows a global IPv6 BGP table of about 200k prefixes: half
//! /48, then /32, /44, /40, /29, /36 and the rest of /19-/47, a few /56 and /64 and a handful of
//! /128, inside the regional registries' blocks where real tables concentrate.

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

/// (prefix length, weight in per-mille).
const BGP_MIX: &[(u8, u32)] = &[
    (8, 2),
    (10, 2),
    (11, 3),
    (12, 5),
    (13, 8),
    (14, 12),
    (15, 18),
    (16, 35),
    (17, 20),
    (18, 30),
    (19, 45),
    (20, 55),
    (21, 55),
    (22, 95),
    (23, 80),
    (24, 600),
    (25, 5),
    (26, 5),
    (27, 5),
    (28, 5),
    (29, 4),
    (30, 3),
    (32, 3),
];

fn bgp_len(rng: &mut Pcg64Mcg) -> u8 {
    let total: u32 = BGP_MIX.iter().map(|&(_, w)| w).sum();
    let mut pick = rng.random_range(0..total);
    for &(len, w) in BGP_MIX {
        if pick < w {
            return len;
        }
        pick -= w;
    }
    24
}

/// `n` distinct prefixes with a BGP-like length mix, in unicast space (1.0.0.0-223.255.255.255),
/// reproducible from `seed`.
pub fn bgp_like(n: usize, seed: u64) -> Vec<Ipv4Net> {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let mut seen = HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let len = bgp_len(&mut rng);
        let addr = rng.random_range(0x0100_0000u32..0xE000_0000);
        let Ok(net) = Ipv4Net::new(Ipv4Addr::from(addr), len) else {
            continue;
        };
        let net = net.trunc();
        if seen.insert(net) {
            out.push(net);
        }
    }
    out
}

/// `n` addresses: a fraction `matching` of them (0.0-1.0) drawn from inside `prefixes`, the
/// rest uniformly random.
pub fn addresses(prefixes: &[Ipv4Net], n: usize, matching: f64, seed: u64) -> Vec<Ipv4Addr> {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            if !prefixes.is_empty() && rng.random_bool(matching.clamp(0.0, 1.0)) {
                let p = prefixes[rng.random_range(0..prefixes.len())];
                let host_bits = 32 - u32::from(p.prefix_len());
                let host = if host_bits == 0 {
                    0
                } else {
                    rng.random::<u32>() >> (32 - host_bits)
                };
                Ipv4Addr::from(u32::from(p.network()) | host)
            } else {
                Ipv4Addr::from(rng.random::<u32>())
            }
        })
        .collect()
}

/// IPv6 (prefix length, weight in per-mille), after the length histogram of a global IPv6 BGP
/// table.
const BGP_MIX_V6: &[(u8, u32)] = &[
    (19, 1),
    (20, 2),
    (22, 1),
    (24, 2),
    (28, 8),
    (29, 50),
    (30, 5),
    (31, 5),
    (32, 125),
    (33, 8),
    (34, 8),
    (35, 5),
    (36, 30),
    (37, 6),
    (38, 10),
    (39, 6),
    (40, 55),
    (41, 8),
    (42, 18),
    (43, 6),
    (44, 75),
    (45, 12),
    (46, 30),
    (47, 32),
    (48, 470),
    (52, 2),
    (56, 10),
    (60, 2),
    (64, 6),
    (128, 2),
];

/// The registries' blocks that hold most of the IPv6 table, with per-mille weights: RIPE,
/// ARIN, APNIC, the early 2001::/16, LACNIC and AFRINIC.
const BLOCKS_V6: &[(u128, u8, u32)] = &[
    (0x2a00 << 112, 12, 400),
    (0x2600 << 112, 12, 200),
    (0x2400 << 112, 12, 200),
    (0x2001 << 112, 16, 100),
    (0x2800 << 112, 12, 70),
    (0x2c00 << 112, 12, 30),
];

fn pick<T: Copy>(rng: &mut Pcg64Mcg, table: &[T], weight: impl Fn(T) -> u32) -> T {
    let total: u32 = table.iter().map(|&t| weight(t)).sum();
    let mut x = rng.random_range(0..total);
    for &t in table {
        if x < weight(t) {
            return t;
        }
        x -= weight(t);
    }
    table[0]
}

/// `n` distinct IPv6 prefixes with a BGP-like length mix inside the registries' blocks,
/// reproducible from `seed`.
pub fn bgp_like_v6(n: usize, seed: u64) -> Vec<Ipv6Net> {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let mut seen = HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let (len, _) = pick(&mut rng, BGP_MIX_V6, |(_, w)| w);
        let (block, block_len, _) = pick(&mut rng, BLOCKS_V6, |(_, _, w)| w);
        let addr = block | (rng.random::<u128>() >> block_len);
        let Ok(net) = Ipv6Net::new(Ipv6Addr::from(addr), len) else {
            continue;
        };
        let net = net.trunc();
        if seen.insert(net) {
            out.push(net);
        }
    }
    out
}

/// `n` IPv6 addresses: a fraction `matching` of them (0.0-1.0) drawn from inside `prefixes`,
/// the rest uniformly random in global unicast space (2000::/3).
pub fn addresses_v6(prefixes: &[Ipv6Net], n: usize, matching: f64, seed: u64) -> Vec<Ipv6Addr> {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            if !prefixes.is_empty() && rng.random_bool(matching.clamp(0.0, 1.0)) {
                let p = prefixes[rng.random_range(0..prefixes.len())];
                let host = rng
                    .random::<u128>()
                    .checked_shr(u32::from(p.prefix_len()))
                    .unwrap_or(0);
                Ipv6Addr::from(u128::from(p.network()) | host)
            } else {
                Ipv6Addr::from((0x2u128 << 125) | (rng.random::<u128>() >> 3))
            }
        })
        .collect()
}
