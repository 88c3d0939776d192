//! The LPM table against a naive linear-scan oracle, on generated operation sequences that
//! cover /0, /32, nested and overlapping prefixes and re-adding removed prefixes.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use proptest::prelude::*;
use vmkstack_routing::LpmTable;

/// The oracle: a plain list, searched end to end.
#[derive(Default)]
struct Linear(Vec<(Ipv4Net, u32)>);

impl Linear {
    fn insert(&mut self, p: Ipv4Net, v: u32) -> Option<u32> {
        match self.0.iter_mut().find(|(q, _)| *q == p) {
            Some((_, old)) => Some(std::mem::replace(old, v)),
            None => {
                self.0.push((p, v));
                None
            }
        }
    }
    fn remove(&mut self, p: Ipv4Net) -> Option<u32> {
        let i = self.0.iter().position(|(q, _)| *q == p)?;
        Some(self.0.swap_remove(i).1)
    }
    fn lookup(&self, a: Ipv4Addr) -> Option<(Ipv4Net, u32)> {
        self.0
            .iter()
            .filter(|(p, _)| p.contains(&a))
            .max_by_key(|(p, _)| p.prefix_len())
            .copied()
    }
}

#[derive(Debug, Clone)]
enum Op {
    Insert(Ipv4Net, u32),
    Remove(Ipv4Net),
    Lookup(Ipv4Addr),
}

/// Addresses that make prefixes nest and overlap: a few fixed bases, their neighbours, the
/// ends of the space, and fully random ones.
fn address() -> impl Strategy<Value = Ipv4Addr> {
    prop_oneof![
        3 => prop::sample::select(vec![
            0u32, 0xffff_ffff, 0xc612_0100, 0xc612_0180, 0xc612_01ff, 0xc612_0000, 0xc613_ffff,
            0xc612_0200, 0x0a00_0000, 0x8000_0000, 0x7fff_ffff,
        ])
        .prop_map(Ipv4Addr::from),
        // Near 198.18.1.0: varies the low 10 bits so /22-/32 prefixes overlap.
        3 => (0u32..1024).prop_map(|x| Ipv4Addr::from(0xc612_0000 | x)),
        // Varies bits 8-23 so that /8-/24 prefixes share and split level-2 chunks.
        2 => (0u32..65536).prop_map(|x| Ipv4Addr::from(0xc600_0000 | (x << 8) | 0x42)),
        2 => any::<u32>().prop_map(Ipv4Addr::from),
    ]
}

fn prefix() -> impl Strategy<Value = Ipv4Net> {
    let len = prop_oneof![
        1 => Just(0u8),
        2 => Just(32u8),
        2 => prop::sample::select(vec![8u8, 15, 16, 17, 23, 24, 25]),
        4 => 0u8..=32,
    ];
    (address(), len).prop_map(|(a, l)| Ipv4Net::new(a, l).expect("len <= 32").trunc())
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (prefix(), any::<u32>()).prop_map(|(p, v)| Op::Insert(p, v)),
        2 => prefix().prop_map(Op::Remove),
        4 => address().prop_map(Op::Lookup),
    ]
}

fn check_all(t: &LpmTable<u32>, o: &Linear, probes: &[Ipv4Addr]) {
    for &a in probes {
        assert_eq!(t.lookup(a).map(|(p, v)| (p, *v)), o.lookup(a), "lookup {a}");
    }
    let mut want = o.0.clone();
    want.sort_by_key(|(p, _)| (u32::from(p.network()), p.prefix_len()));
    let got: Vec<_> = t.iter().map(|(p, v)| (p, *v)).collect();
    assert_eq!(got, want, "iteration in listing order");
    assert_eq!(t.len(), o.0.len());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn lpm_matches_linear_scan(ops in prop::collection::vec(op(), 1..200)) {
        let mut t = LpmTable::new();
        let mut o = Linear::default();
        let mut probes = Vec::new();
        for op in ops {
            match op {
                Op::Insert(p, v) => {
                    prop_assert_eq!(t.insert(p, v), o.insert(p, v));
                    probes.push(p.network());
                    probes.push(p.broadcast());
                }
                Op::Remove(p) => prop_assert_eq!(t.remove(p), o.remove(p)),
                Op::Lookup(a) => {
                    prop_assert_eq!(t.lookup(a).map(|(p, v)| (p, *v)), o.lookup(a));
                    probes.push(a);
                }
            }
        }
        // Every boundary seen so far still answers like the oracle after the whole sequence.
        check_all(&t, &o, &probes);
    }

    #[test]
    fn remove_everything_restores_empty(ps in prop::collection::vec(prefix(), 1..100)) {
        let mut t = LpmTable::new();
        for (i, &p) in ps.iter().enumerate() {
            t.insert(p, i as u32);
        }
        for &p in &ps {
            t.remove(p);
        }
        prop_assert!(t.is_empty());
        for &p in &ps {
            prop_assert!(t.lookup(p.network()).is_none());
            prop_assert!(t.lookup(p.broadcast()).is_none());
        }
        // Re-adding after a full removal behaves like a fresh table.
        let mut o = Linear::default();
        for (i, &p) in ps.iter().enumerate().rev() {
            t.insert(p, i as u32);
            o.insert(p, i as u32);
        }
        let probes: Vec<_> = ps.iter().flat_map(|p| [p.network(), p.broadcast()]).collect();
        check_all(&t, &o, &probes);
    }
}

#[test]
fn synthetic_bgp_table_matches_linear_scan() {
    // A bigger table from the bench generator, checked on sampled addresses.
    let prefixes = vmkstack_routing::synth::bgp_like(3000, 7);
    let mut t = LpmTable::new();
    let mut o = Linear::default();
    for (i, &p) in prefixes.iter().enumerate() {
        t.insert(p, i as u32);
        o.insert(p, i as u32);
    }
    let addrs = vmkstack_routing::synth::addresses(&prefixes, 3000, 0.8, 9);
    check_all(&t, &o, &addrs);
    for &p in prefixes.iter().step_by(3) {
        t.remove(p);
        o.remove(p);
    }
    check_all(&t, &o, &addrs);
}
