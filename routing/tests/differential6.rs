//! The IPv6 LPM table against a naive linear-scan oracle, on generated operation sequences
//! that cover ::/0, /128, nested and overlapping prefixes, crowded words that split into
//! chunks and fold back, and re-adding removed prefixes.

use std::net::Ipv6Addr;

use ipnet::Ipv6Net;
use proptest::prelude::*;
use vmkstack_routing::{
    lpm6::{SPLIT, WIDE_SPLIT},
    Lpm6Table,
};

/// The oracle: a plain list, searched end to end.
#[derive(Default)]
struct Linear(Vec<(Ipv6Net, u32)>);

impl Linear {
    fn insert(&mut self, p: Ipv6Net, v: u32) -> Option<u32> {
        match self.0.iter_mut().find(|(q, _)| *q == p) {
            Some((_, old)) => Some(std::mem::replace(old, v)),
            None => {
                self.0.push((p, v));
                None
            }
        }
    }
    fn remove(&mut self, p: Ipv6Net) -> Option<u32> {
        let i = self.0.iter().position(|(q, _)| *q == p)?;
        Some(self.0.swap_remove(i).1)
    }
    fn lookup(&self, a: Ipv6Addr) -> Option<(Ipv6Net, u32)> {
        self.0
            .iter()
            .filter(|(p, _)| p.contains(&a))
            .max_by_key(|(p, _)| p.prefix_len())
            .copied()
    }
}

#[derive(Debug, Clone)]
enum Op {
    Insert(Ipv6Net, u32),
    Remove(Ipv6Net),
    Lookup(Ipv6Addr),
}

const DOC: u128 = 0x2001_0db8 << 96;

/// Addresses that make prefixes nest and overlap: fixed bases and the ends of the space,
/// addresses varying in the bits that chunks split on (16-48) and in the low 64 bits, and
/// fully random ones.
fn address() -> impl Strategy<Value = Ipv6Addr> {
    prop_oneof![
        2 => prop::sample::select(vec![
            0u128, u128::MAX, DOC, DOC | 1, DOC | (1 << 64), DOC | u128::from(u64::MAX),
            0x2000 << 112, 0x3fff_ffff << 96, 1 << 127, (1 << 127) - 1, 0xfe80 << 112,
        ])
        .prop_map(Ipv6Addr::from),
        // Few values in bits 24-48 so /24-/48 prefixes share and split chunks, with a few
        // low bits for /64-/128.
        4 => (0u128..64, 0u128..4, 0u128..4, 0u128..8).prop_map(|(a, b, c, d)| {
            Ipv6Addr::from((0x2a00u128 << 112) | (a << 98) | (b << 80) | (c << 64) | d)
        }),
        2 => (0u128..65536).prop_map(|x| Ipv6Addr::from(DOC | (x << 80) | 0x42)),
        2 => any::<u128>().prop_map(Ipv6Addr::from),
    ]
}

fn prefix() -> impl Strategy<Value = Ipv6Net> {
    let len = prop_oneof![
        1 => Just(0u8),
        2 => Just(128u8),
        4 => prop::sample::select(vec![3u8, 16, 17, 24, 29, 32, 40, 44, 48, 56, 63, 64, 65, 127]),
        3 => 0u8..=128,
    ];
    (address(), len).prop_map(|(a, l)| Ipv6Net::new(a, l).expect("len <= 128").trunc())
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (prefix(), any::<u32>()).prop_map(|(p, v)| Op::Insert(p, v)),
        2 => prefix().prop_map(Op::Remove),
        3 => address().prop_map(Op::Lookup),
    ]
}

fn check_all(t: &Lpm6Table<u32>, o: &Linear, probes: &[Ipv6Addr]) {
    for &a in probes {
        assert_eq!(t.lookup(a).map(|(p, v)| (p, *v)), o.lookup(a), "lookup {a}");
    }
    let mut want = o.0.clone();
    want.sort_by_key(|(p, _)| (u128::from(p.network()), p.prefix_len()));
    let got: Vec<_> = t.iter().map(|(p, v)| (p, *v)).collect();
    assert_eq!(got, want, "iteration in listing order");
    assert_eq!(t.len(), o.0.len());
    for (p, v) in &o.0 {
        assert_eq!(t.get(*p), Some(v), "get {p}");
    }
}

/// Every boundary of `p` and its neighbours outside it.
fn edges(p: Ipv6Net) -> [Ipv6Addr; 4] {
    let (n, b) = (u128::from(p.network()), u128::from(p.broadcast()));
    [
        p.network(),
        p.broadcast(),
        Ipv6Addr::from(n.wrapping_sub(1)),
        Ipv6Addr::from(b.wrapping_add(1)),
    ]
}

/// Small split thresholds: few prefixes make range lists split into chunks and crowded /16s
/// into wide chunks, and fold back.
fn small_table() -> Lpm6Table<u32> {
    Lpm6Table::with_thresholds(2, 6)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn lpm6_matches_linear_scan(ops in prop::collection::vec(op(), 1..300), small in prop::bool::weighted(0.25)) {
        let mut t = if small { small_table() } else { Lpm6Table::new() };
        let mut o = Linear::default();
        let mut probes = Vec::new();
        for op in ops {
            match op {
                Op::Insert(p, v) => {
                    prop_assert_eq!(t.insert(p, v), o.insert(p, v));
                    probes.extend(edges(p));
                }
                Op::Remove(p) => prop_assert_eq!(t.remove(p), o.remove(p)),
                Op::Lookup(a) => {
                    prop_assert_eq!(t.lookup(a).map(|(p, v)| (p, *v)), o.lookup(a));
                    probes.push(a);
                }
            }
        }
        check_all(&t, &o, &probes);
    }

}

proptest! {
    // Fewer cases: every step is checked against the oracle.
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Churn: a fixed pool of nested and overlapping prefixes inserted and removed again and
    /// again in a generated order (so removals hit), every answer checked after each step
    /// near the prefix that changed, and everything at the end.
    #[test]
    fn lpm6_stays_right_under_churn(
        pool in prop::collection::vec(prefix(), 4..40),
        steps in prop::collection::vec((any::<prop::sample::Index>(), any::<bool>()), 50..400),
        small in any::<bool>(),
    ) {
        let mut t = if small { small_table() } else { Lpm6Table::new() };
        let mut o = Linear::default();
        let probes: Vec<_> = pool.iter().flat_map(|&p| edges(p)).collect();
        for (k, (i, insert)) in steps.into_iter().enumerate() {
            let p = pool[i.index(pool.len())];
            if insert {
                prop_assert_eq!(t.insert(p, k as u32), o.insert(p, k as u32));
            } else {
                prop_assert_eq!(t.remove(p), o.remove(p));
            }
            for a in edges(p) {
                prop_assert_eq!(t.lookup(a).map(|(q, v)| (q, *v)), o.lookup(a), "after step {} at {}", k, a);
            }
        }
        check_all(&t, &o, &probes);
    }
}

proptest! {
    // Fewer cases: short prefixes touch up to 2^15 first-level words each, slow in debug.
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn remove_everything_restores_empty(ps in prop::collection::vec(prefix(), 1..150)) {
        let mut t = Lpm6Table::new();
        let empty = t.memory_bytes();
        for (i, &p) in ps.iter().enumerate() {
            t.insert(p, i as u32);
        }
        for &p in &ps {
            t.remove(p);
        }
        prop_assert!(t.is_empty());
        for &p in &ps {
            for a in edges(p) {
                prop_assert!(t.lookup(a).is_none());
            }
        }
        prop_assert!(t.memory_bytes() >= empty);
        let mut o = Linear::default();
        for (i, &p) in ps.iter().enumerate().rev() {
            t.insert(p, i as u32);
            o.insert(p, i as u32);
        }
        let probes: Vec<_> = ps.iter().flat_map(|&p| edges(p)).collect();
        check_all(&t, &o, &probes);
    }
}

#[test]
fn crowded_prefixes_split_and_fold() {
    // Many more prefixes than a range list holds, in one /32, then most of them removed:
    // words split into chunks and fold back, and every answer stays the oracle's.
    let mut t = Lpm6Table::new();
    let mut o = Linear::default();
    let mut ps = Vec::new();
    for i in 0..(SPLIT as u128 * 12) {
        let len = [40u8, 48, 56, 64, 128][(i % 5) as usize];
        let a = DOC | ((i * 0x1_0001) << 72) | (i << 8);
        ps.push(Ipv6Net::new(Ipv6Addr::from(a), len).expect("len").trunc());
    }
    ps.push("2001:db8::/32".parse().expect("prefix"));
    for (i, &p) in ps.iter().enumerate() {
        t.insert(p, i as u32);
        o.insert(p, i as u32);
    }
    let probes: Vec<_> = ps.iter().flat_map(|&p| edges(p)).collect();
    check_all(&t, &o, &probes);
    for &p in ps.iter().skip(3).step_by(2) {
        assert_eq!(t.remove(p), o.remove(p));
    }
    check_all(&t, &o, &probes);
}

#[test]
fn crowded_slash16_goes_wide_and_back() {
    // More prefixes under one /16 than WIDE_SPLIT (with /32 covers, nested /56s and /128s),
    // at the real thresholds; then most removed, so the /16 folds back into ordinary chunks.
    let mut t = Lpm6Table::new();
    let mut o = Linear::default();
    let mut ps: Vec<Ipv6Net> = Vec::new();
    for i in 0..(WIDE_SPLIT as u128 * 2) {
        let a = (0x2a00u128 << 112) | ((i * 7919 % 65536) << 96) | ((i % 13) << 80);
        let len = [48u8, 32, 48, 56, 128, 48, 44][(i % 7) as usize];
        ps.push(
            Ipv6Net::new(Ipv6Addr::from(a | (i % 3)), len)
                .expect("len")
                .trunc(),
        );
    }
    ps.push("2a00::/12".parse().expect("prefix"));
    for (i, &p) in ps.iter().enumerate() {
        assert_eq!(t.insert(p, i as u32), o.insert(p, i as u32));
    }
    let probes: Vec<_> = ps.iter().flat_map(|&p| edges(p)).collect();
    check_all(&t, &o, &probes);
    for &p in ps.iter().step_by(7).skip(1) {
        assert_eq!(t.remove(p), o.remove(p));
    }
    check_all(&t, &o, &probes);
    for (i, &p) in ps.iter().enumerate() {
        if i % 10 != 0 {
            assert_eq!(t.remove(p), o.remove(p));
        }
    }
    check_all(&t, &o, &probes);
}

#[test]
fn synthetic_bgp_table_matches_linear_scan() {
    let prefixes = vmkstack_routing::synth::bgp_like_v6(3000, 7);
    let mut t = Lpm6Table::new();
    let mut o = Linear::default();
    for (i, &p) in prefixes.iter().enumerate() {
        t.insert(p, i as u32);
        o.insert(p, i as u32);
    }
    let addrs = vmkstack_routing::synth::addresses_v6(&prefixes, 3000, 0.8, 9);
    check_all(&t, &o, &addrs);
    for &p in prefixes.iter().step_by(3) {
        t.remove(p);
        o.remove(p);
    }
    check_all(&t, &o, &addrs);
}
