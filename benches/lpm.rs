//! Longest-prefix-match lookups and updates: vmkstack's table beside two well-kept crates
//! (prefix-trie, and treebitmap as used by ip_network_table) on the same seeded BGP-like tables.
//!
//! The `ipv6/` groups do the same for IPv6 tables of 10, 1k and 200k prefixes (about today's
//! global IPv6 BGP table) with a BGP-like length mix.
//!
//! Run: `cargo bench --bench lpm` (add `-- lookup/1M` or `-- ipv6` to pick groups).

use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use ip_network_table_deps_treebitmap::IpLookupTable;
use ipnet::{Ipv4Net, Ipv6Net};
use prefix_trie::PrefixMap;
use vmkstack_routing::{synth, Lpm6Table, LpmTable};

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

/// One IPv6 implementation under test.
trait Lpm6 {
    fn build(prefixes: &[Ipv6Net]) -> Self;
    fn lookup(&self, a: Ipv6Addr) -> u32;
}

impl Lpm6 for Lpm6Table<u32> {
    fn build(prefixes: &[Ipv6Net]) -> Self {
        let mut t = Lpm6Table::new();
        for (i, &p) in prefixes.iter().enumerate() {
            t.insert(p, i as u32);
        }
        t
    }
    #[inline]
    fn lookup(&self, a: Ipv6Addr) -> u32 {
        self.lookup_value(a).copied().unwrap_or(u32::MAX)
    }
}

impl Lpm6 for PrefixMap<Ipv6Net, u32> {
    fn build(prefixes: &[Ipv6Net]) -> Self {
        let mut t = PrefixMap::new();
        for (i, &p) in prefixes.iter().enumerate() {
            t.insert(p, i as u32);
        }
        t
    }
    #[inline]
    fn lookup(&self, a: Ipv6Addr) -> u32 {
        let host = Ipv6Net::new(a, 128).unwrap_or_default();
        self.get_lpm(&host).map_or(u32::MAX, |(_, v)| *v)
    }
}

impl Lpm6 for IpLookupTable<Ipv6Addr, u32> {
    fn build(prefixes: &[Ipv6Net]) -> Self {
        let mut t = IpLookupTable::new();
        for (i, &p) in prefixes.iter().enumerate() {
            t.insert(p.network(), u32::from(p.prefix_len()), i as u32);
        }
        t
    }
    #[inline]
    fn lookup(&self, a: Ipv6Addr) -> u32 {
        self.longest_match(a).map_or(u32::MAX, |(_, _, v)| *v)
    }
}

fn run_lookups6<T: Lpm6>(t: &T, addrs: &[Ipv6Addr]) -> u32 {
    let mut acc = 0u32;
    for &a in addrs {
        acc = acc.wrapping_add(t.lookup(a));
    }
    acc
}

fn lookups6(c: &mut Criterion) {
    for (label, n) in [("10", 10usize), ("1k", 1_000), ("200k", 200_000)] {
        let prefixes = synth::bgp_like_v6(n, 42);
        let ours = <Lpm6Table<u32> as Lpm6>::build(&prefixes);
        let trie = <PrefixMap<Ipv6Net, u32> as Lpm6>::build(&prefixes);
        let tbm = <IpLookupTable<Ipv6Addr, u32> as Lpm6>::build(&prefixes);
        eprintln!(
            "ipv6/lpm/{label}: vmkstack table holds {} prefixes in {:.1} MiB",
            ours.len(),
            ours.memory_bytes() as f64 / (1024.0 * 1024.0)
        );
        // "random": uniform in 2000::/3, where the table's prefixes live.
        for (kind, matching) in [("random", 0.0), ("matching", 0.9)] {
            let addrs = synth::addresses_v6(&prefixes, BATCH, matching, 7);
            let mut g = c.benchmark_group(format!("ipv6/lookup/{label}/{kind}"));
            g.throughput(Throughput::Elements(BATCH as u64));
            g.bench_function("vmkstack", |b| {
                b.iter(|| run_lookups6(&ours, black_box(&addrs)))
            });
            g.bench_function("prefix-trie", |b| {
                b.iter(|| run_lookups6(&trie, black_box(&addrs)))
            });
            g.bench_function("treebitmap", |b| {
                b.iter(|| run_lookups6(&tbm, black_box(&addrs)))
            });
            g.finish();
        }
    }
}

fn updates6(c: &mut Criterion) {
    let n = 100_000usize;
    let prefixes = synth::bgp_like_v6(n, 43);
    let mut g = c.benchmark_group("ipv6/update/100k");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(10);
    g.bench_function(BenchmarkId::new("insert", "vmkstack"), |b| {
        b.iter(|| <Lpm6Table<u32> as Lpm6>::build(black_box(&prefixes)))
    });
    g.bench_function(BenchmarkId::new("insert", "prefix-trie"), |b| {
        b.iter(|| <PrefixMap<Ipv6Net, u32> as Lpm6>::build(black_box(&prefixes)))
    });
    g.bench_function(BenchmarkId::new("remove", "vmkstack"), |b| {
        b.iter_batched(
            || <Lpm6Table<u32> as Lpm6>::build(&prefixes),
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
            || <PrefixMap<Ipv6Net, u32> as Lpm6>::build(&prefixes),
            |mut t| {
                for p in &prefixes {
                    t.remove(p);
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
    targets = lookups, updates, lookups6, updates6
}
criterion_main!(benches);
