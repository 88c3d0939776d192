//! Longest-prefix-match lookups and updates: vmkstack's tables beside two well-kept crates
//! (prefix-trie, and treebitmap as used by ip_network_table) on the same seeded BGP-like tables.
//!
//! One set of groups serves both address families ([`Family`]): IPv4 at 10, 1k and 1M
//! prefixes, and under `ipv6/` IPv6 at 10, 1k and 200k (about today's global IPv6 BGP table)
//! with a BGP-like IPv6 length mix.
//!
//! Run: `cargo bench --bench lpm` (add `-- lookup/1M` or `-- ipv6` to pick groups).

use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use ip_network_table_deps_treebitmap::{address::Address, IpLookupTable};
use ipnet::{Ipv4Net, Ipv6Net};
use prefix_trie::{Prefix, PrefixMap};
use vmkstack_routing::{synth, Lpm6Table, LpmTable};

/// Addresses looked up per iteration.
const BATCH: usize = 4096;

/// An address family: its prefix and address types, vmkstack's table for it, and its data.
trait Family: 'static {
    type Net: Copy + Prefix;
    type Addr: Copy + Address;
    type Ours: Lpm<Self>;
    /// Group name prefix ("" or "ipv6/").
    const GROUP: &'static str;
    /// Table sizes measured, with their labels.
    const SIZES: &'static [(&'static str, usize)];
    fn prefixes(n: usize, seed: u64) -> Vec<Self::Net>;
    fn addresses(prefixes: &[Self::Net], n: usize, matching: f64, seed: u64) -> Vec<Self::Addr>;
    /// The host prefix of an address, and a prefix's network and length.
    fn host(a: Self::Addr) -> Self::Net;
    fn parts(p: Self::Net) -> (Self::Addr, u32);
    fn memory(t: &Self::Ours) -> (usize, usize);
}

struct V4;
struct V6;

impl Family for V4 {
    type Net = Ipv4Net;
    type Addr = Ipv4Addr;
    type Ours = LpmTable<u32>;
    const GROUP: &'static str = "";
    const SIZES: &'static [(&'static str, usize)] = &[("10", 10), ("1k", 1_000), ("1M", 1_000_000)];
    fn prefixes(n: usize, seed: u64) -> Vec<Ipv4Net> {
        synth::bgp_like(n, seed)
    }
    fn addresses(p: &[Ipv4Net], n: usize, matching: f64, seed: u64) -> Vec<Ipv4Addr> {
        synth::addresses(p, n, matching, seed)
    }
    fn host(a: Ipv4Addr) -> Ipv4Net {
        Ipv4Net::new(a, 32).unwrap_or_default()
    }
    fn parts(p: Ipv4Net) -> (Ipv4Addr, u32) {
        (p.network(), u32::from(p.prefix_len()))
    }
    fn memory(t: &LpmTable<u32>) -> (usize, usize) {
        (t.len(), t.memory_bytes())
    }
}

impl Family for V6 {
    type Net = Ipv6Net;
    type Addr = Ipv6Addr;
    type Ours = Lpm6Table<u32>;
    const GROUP: &'static str = "ipv6/";
    const SIZES: &'static [(&'static str, usize)] = &[("10", 10), ("1k", 1_000), ("200k", 200_000)];
    fn prefixes(n: usize, seed: u64) -> Vec<Ipv6Net> {
        synth::bgp_like_v6(n, seed)
    }
    // "random" addresses are uniform in 2000::/3, where the table's prefixes live.
    fn addresses(p: &[Ipv6Net], n: usize, matching: f64, seed: u64) -> Vec<Ipv6Addr> {
        synth::addresses_v6(p, n, matching, seed)
    }
    fn host(a: Ipv6Addr) -> Ipv6Net {
        Ipv6Net::new(a, 128).unwrap_or_default()
    }
    fn parts(p: Ipv6Net) -> (Ipv6Addr, u32) {
        (p.network(), u32::from(p.prefix_len()))
    }
    fn memory(t: &Lpm6Table<u32>) -> (usize, usize) {
        (t.len(), t.memory_bytes())
    }
}

/// One implementation under test.
trait Lpm<F: Family + ?Sized>: Sized {
    fn empty() -> Self;
    fn insert(&mut self, p: F::Net, v: u32);
    fn remove(&mut self, p: F::Net);
    fn lookup(&self, a: F::Addr) -> u32;
    fn build(prefixes: &[F::Net]) -> Self {
        let mut t = Self::empty();
        for (i, &p) in prefixes.iter().enumerate() {
            t.insert(p, i as u32);
        }
        t
    }
}

impl Lpm<V4> for LpmTable<u32> {
    fn empty() -> Self {
        LpmTable::new()
    }
    fn insert(&mut self, p: Ipv4Net, v: u32) {
        LpmTable::insert(self, p, v);
    }
    fn remove(&mut self, p: Ipv4Net) {
        LpmTable::remove(self, p);
    }
    #[inline]
    fn lookup(&self, a: Ipv4Addr) -> u32 {
        self.lookup_value(a).copied().unwrap_or(u32::MAX)
    }
}

impl Lpm<V6> for Lpm6Table<u32> {
    fn empty() -> Self {
        Lpm6Table::new()
    }
    fn insert(&mut self, p: Ipv6Net, v: u32) {
        Lpm6Table::insert(self, p, v);
    }
    fn remove(&mut self, p: Ipv6Net) {
        Lpm6Table::remove(self, p);
    }
    #[inline]
    fn lookup(&self, a: Ipv6Addr) -> u32 {
        self.lookup_value(a).copied().unwrap_or(u32::MAX)
    }
}

impl<F: Family> Lpm<F> for PrefixMap<F::Net, u32> {
    fn empty() -> Self {
        PrefixMap::new()
    }
    fn insert(&mut self, p: F::Net, v: u32) {
        PrefixMap::insert(self, p, v);
    }
    fn remove(&mut self, p: F::Net) {
        PrefixMap::remove(self, &p);
    }
    #[inline]
    fn lookup(&self, a: F::Addr) -> u32 {
        self.get_lpm(&F::host(a)).map_or(u32::MAX, |(_, v)| *v)
    }
}

impl<F: Family> Lpm<F> for IpLookupTable<F::Addr, u32> {
    fn empty() -> Self {
        IpLookupTable::new()
    }
    fn insert(&mut self, p: F::Net, v: u32) {
        let (a, len) = F::parts(p);
        IpLookupTable::insert(self, a, len, v);
    }
    fn remove(&mut self, p: F::Net) {
        let (a, len) = F::parts(p);
        IpLookupTable::remove(self, a, len);
    }
    #[inline]
    fn lookup(&self, a: F::Addr) -> u32 {
        self.longest_match(a).map_or(u32::MAX, |(_, _, v)| *v)
    }
}

fn run_lookups<F: Family, T: Lpm<F>>(t: &T, addrs: &[F::Addr]) -> u32 {
    let mut acc = 0u32;
    for &a in addrs {
        acc = acc.wrapping_add(t.lookup(a));
    }
    acc
}

fn lookups<F: Family>(c: &mut Criterion) {
    type Trie<F> = PrefixMap<<F as Family>::Net, u32>;
    type Tbm<F> = IpLookupTable<<F as Family>::Addr, u32>;
    for &(label, n) in F::SIZES {
        let prefixes = F::prefixes(n, 42);
        let ours = <F::Ours as Lpm<F>>::build(&prefixes);
        let trie = <Trie<F> as Lpm<F>>::build(&prefixes);
        let tbm = <Tbm<F> as Lpm<F>>::build(&prefixes);
        let (len, bytes) = F::memory(&ours);
        eprintln!(
            "{}lpm/{label}: vmkstack table holds {len} prefixes in {:.1} MiB",
            F::GROUP,
            bytes as f64 / (1024.0 * 1024.0)
        );
        for (kind, matching) in [("random", 0.0), ("matching", 0.9)] {
            let addrs = F::addresses(&prefixes, BATCH, matching, 7);
            let mut g = c.benchmark_group(format!("{}lookup/{label}/{kind}", F::GROUP));
            g.throughput(Throughput::Elements(BATCH as u64));
            g.bench_function("vmkstack", |b| {
                b.iter(|| run_lookups::<F, _>(&ours, black_box(&addrs)))
            });
            g.bench_function("prefix-trie", |b| {
                b.iter(|| run_lookups::<F, _>(&trie, black_box(&addrs)))
            });
            g.bench_function("treebitmap", |b| {
                b.iter(|| run_lookups::<F, _>(&tbm, black_box(&addrs)))
            });
            g.finish();
        }
    }
}

/// Inserting and removing one implementation's table of `prefixes`.
fn update_pair<F: Family, T: Lpm<F>>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    prefixes: &[F::Net],
) {
    g.bench_function(BenchmarkId::new("insert", name), |b| {
        b.iter(|| T::build(black_box(prefixes)))
    });
    g.bench_function(BenchmarkId::new("remove", name), |b| {
        b.iter_batched(
            || T::build(prefixes),
            |mut t| {
                for &p in prefixes {
                    t.remove(p);
                }
                t
            },
            BatchSize::LargeInput,
        )
    });
}

fn updates<F: Family>(c: &mut Criterion) {
    let n = 100_000usize;
    let prefixes = F::prefixes(n, 43);
    let mut g = c.benchmark_group(format!("{}update/100k", F::GROUP));
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(10);
    update_pair::<F, F::Ours>(&mut g, "vmkstack", &prefixes);
    update_pair::<F, PrefixMap<F::Net, u32>>(&mut g, "prefix-trie", &prefixes);
    update_pair::<F, IpLookupTable<F::Addr, u32>>(&mut g, "treebitmap", &prefixes);
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = lookups::<V4>, updates::<V4>, lookups::<V6>, updates::<V6>
}
criterion_main!(benches);
