//! Seeded synthetic route tables and address streams for benches and differential tests.
//!
//! The prefix-length mix follows a global BGP table: about 60% /24, most of the rest /16-/23,
//! a few shorter than /16 and a few host-ish routes longer than /24.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
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
