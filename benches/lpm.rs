//! Longest-prefix-match lookups and updates: vmkstack's table beside two well-kept crates
//! (prefix-trie, and treebitmap as used by ip_network_table) on the same seeded BGP-like tables.
//!
//! Run: `cargo bench --bench lpm` (add `-- lookup/1M` to pick a group).

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use ip_network_table_deps_treebitmap::IpLookupTable;
use ipnet::Ipv4Net;
use prefix_trie::PrefixMap;
use vmkstack_routing::{synth, LpmTable};

/// Addresses looked up per iteration.
const BATCH: usize = 4096;

/// One implementation under test.
trait Lpm {
    fn build(prefixes: &[Ipv4Net]) -> Self;
    fn lookup(&self, a: Ipv4Addr) -> u32;
}

impl Lpm for LpmTable<u32> {
    fn build(prefixes: &[Ipv4Net]) -> Self {
        let mut t = LpmTable::new();
        for (i, &p) in prefixes.iter().enumerate() {
            t.insert(p, i as u32);
        }
        t
    }
    #[inline]
    fn lookup(&self, a: Ipv4Addr) -> u32 {
        self.lookup_value(a).copied().unwrap_or(u32::MAX)
    }
}

impl Lpm for PrefixMap<Ipv4Net, u32> {
    fn build(prefixes: &[Ipv4Net]) -> Self {
        let mut t = PrefixMap::new();
        for (i, &p) in prefixes.iter().enumerate() {
            t.insert(p, i as u32);
        }
        t
    }
    #[inline]
    fn lookup(&self, a: Ipv4Addr) -> u32 {
        let host = Ipv4Net::new(a, 32).unwrap_or_default();
        self.get_lpm(&host).map_or(u32::MAX, |(_, v)| *v)
    }
}

impl Lpm for IpLookupTable<Ipv4Addr, u32> {
    fn build(prefixes: &[Ipv4Net]) -> Self {
        let mut t = IpLookupTable::new();
        for (i, &p) in prefixes.iter().enumerate() {
            t.insert(p.network(), u32::from(p.prefix_len()), i as u32);
        }
        t
    }
    #[inline]
    fn lookup(&self, a: Ipv4Addr) -> u32 {
        self.longest_match(a).map_or(u32::MAX, |(_, _, v)| *v)
    }
}

fn run_lookups<T: Lpm>(t: &T, addrs: &[Ipv4Addr]) -> u32 {
    let mut acc = 0u32;
    for &a in addrs {
        acc = acc.wrapping_add(t.lookup(a));
    }
    acc
}

fn lookups(c: &mut Criterion) {
    for (label, n) in [("10", 10usize), ("1k", 1_000), ("1M", 1_000_000)] {
        let prefixes = synth::bgp_like(n, 42);
        let ours = <LpmTable<u32> as Lpm>::build(&prefixes);
        let trie = <PrefixMap<Ipv4Net, u32> as Lpm>::build(&prefixes);
        let tbm = <IpLookupTable<Ipv4Addr, u32> as Lpm>::build(&prefixes);
        if n >= 1_000 {
            eprintln!(
                "lpm/{label}: vmkstack table holds {} prefixes in {:.1} MiB",
                ours.len(),
                ours.memory_bytes() as f64 / (1024.0 * 1024.0)
            );
        }
        for (kind, matching) in [("random", 0.0), ("matching", 0.9)] {
            let addrs = synth::addresses(&prefixes, BATCH, matching, 7);
            let mut g = c.benchmark_group(format!("lookup/{label}/{kind}"));
            g.throughput(Throughput::Elements(BATCH as u64));
            g.bench_function("vmkstack", |b| {
                b.iter(|| run_lookups(&ours, black_box(&addrs)))
            });
            g.bench_function("prefix-trie", |b| {
                b.iter(|| run_lookups(&trie, black_box(&addrs)))
            });
            g.bench_function("treebitmap", |b| {
                b.iter(|| run_lookups(&tbm, black_box(&addrs)))
            });
            g.finish();
        }
    }
}

fn updates(c: &mut Criterion) {
    let n = 100_000usize;
    let prefixes = synth::bgp_like(n, 43);
    let mut g = c.benchmark_group("update/100k");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(10);
    g.bench_function(BenchmarkId::new("insert", "vmkstack"), |b| {
        b.iter(|| <LpmTable<u32> as Lpm>::build(black_box(&prefixes)))
    });
    g.bench_function(BenchmarkId::new("insert", "prefix-trie"), |b| {
        b.iter(|| <PrefixMap<Ipv4Net, u32> as Lpm>::build(black_box(&prefixes)))
    });
    g.bench_function(BenchmarkId::new("insert", "treebitmap"), |b| {
        b.iter(|| <IpLookupTable<Ipv4Addr, u32> as Lpm>::build(black_box(&prefixes)))
    });
    g.bench_function(BenchmarkId::new("remove", "vmkstack"), |b| {
        b.iter_batched(
            || <LpmTable<u32> as Lpm>::build(&prefixes),
            |mut t| {
                for &p in &prefixes {
                    t.remove(p);
                }
                t
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function(BenchmarkId::new("remove", "prefix-trie"), |b| {
        b.iter_batched(
            || <PrefixMap<Ipv4Net, u32> as Lpm>::build(&prefixes),
            |mut t| {
                for p in &prefixes {
                    t.remove(p);
                }
                t
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function(BenchmarkId::new("remove", "treebitmap"), |b| {
        b.iter_batched(
            || <IpLookupTable<Ipv4Addr, u32> as Lpm>::build(&prefixes),
            |mut t| {
                for p in &prefixes {
                    t.remove(p.network(), u32::from(p.prefix_len()));
                }
                t
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = lookups, updates
}
criterion_main!(benches);
