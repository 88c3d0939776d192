//! What the IPv4 and IPv6 longest-prefix-match tables share: route storage by id, the ordered
//! index of prefixes, the default route beside the structure, the chunk pools, and the whole
//! API (`insert`, `remove`, `get`, `iter`, `lookup`, ...), written once in [`LpmOf`].
//!
//! What differs is the lookup structure ([`Structure`]): IPv4's DIR-16-8-8 trie
//! ([`crate::lpm::Dir16`]) and IPv6's wide chunks and range lists ([`crate::lpm6::Wide6`]).
//! [`LpmOf`] is generic over it, so each family's lookup is monomorphised and inlined into
//! the table's: no dynamic dispatch on the lookup path.

use std::collections::BTreeMap;
use std::fmt;

/// The "no route" id (route ids start at 1).
pub(crate) const NONE: u32 = 0;

/// An address as an unsigned integer (`u32` for IPv4, `u128` for IPv6).
pub trait Bits: Copy + Ord + fmt::Debug + Send + Sync + 'static {
    /// Address width in bits.
    const WIDTH: u8;
    /// The address with the host bits of a /`len` cleared.
    fn network(self, len: u8) -> Self;
    /// The address with the host bits of a /`len` set: the last address of the prefix.
    fn last(self, len: u8) -> Self;
}

macro_rules! bits {
    ($t:ty, $w:expr) => {
        impl Bits for $t {
            const WIDTH: u8 = $w;
            #[inline]
            fn network(self, len: u8) -> Self {
                self & !<$t>::MAX.checked_shr(u32::from(len)).unwrap_or(0)
            }
            #[inline]
            fn last(self, len: u8) -> Self {
                self | <$t>::MAX.checked_shr(u32::from(len)).unwrap_or(0)
            }
        }
    };
}
bits!(u32, 32);
bits!(u128, 128);

/// One address family's lookup structure: it maps an address to the id of the longest
/// stored prefix (longer than /0) that holds it, and is repainted as prefixes come and go.
/// The prefixes themselves, their ids and the default route live in [`LpmOf`].
pub trait Structure: Clone + Default {
    /// The address as an integer.
    type Key: Bits;
    /// The prefix type (`Ipv4Net`, `Ipv6Net`).
    type Net: Copy + Default + fmt::Debug;
    /// The address type (`Ipv4Addr`, `Ipv6Addr`).
    type Addr: Copy;
    /// The largest route id the structure's words can hold.
    const MAX_ID: u32;
    /// The address as an integer.
    fn key(addr: Self::Addr) -> Self::Key;
    /// A prefix with its host bits cleared, its network as an integer, and its length.
    fn parts(prefix: Self::Net) -> (Self::Net, Self::Key, u8);
    /// The id of the longest stored prefix of length 1 or more holding `key`, or 0.
    fn lookup_id(&self, key: Self::Key) -> u32;
    /// `id` (the prefix `net/len`, `len` ≥ 1) was just added to `index`.
    fn inserted(&mut self, index: &Index<Self::Key>, net: Self::Key, len: u8, id: u32);
    /// `id` (the prefix `net/len`, `len` ≥ 1) was just removed from `index`.
    fn removed(&mut self, index: &Index<Self::Key>, net: Self::Key, len: u8, id: u32);
    /// Bytes held by the structure.
    fn memory_bytes(&self) -> usize;
}

/// The ordered index of the stored prefixes: `(network, length)` to id, each id's length,
/// and how many prefixes of each length exist (to skip empty lengths).
#[derive(Debug, Clone)]
pub struct Index<K> {
    map: BTreeMap<(K, u8), u32>,
    lens: Vec<u8>,
    len_count: Vec<u32>,
}

impl<K: Bits> Index<K> {
    fn new() -> Self {
        Self {
            map: BTreeMap::new(),
            lens: vec![0],
            len_count: vec![0; usize::from(K::WIDTH) + 1],
        }
    }

    /// The id of exactly `net/len`.
    #[inline]
    pub fn id(&self, net: K, len: u8) -> Option<u32> {
        self.map.get(&(net, len)).copied()
    }

    /// The length of the prefix with id `id` (0 for "no route").
    #[inline]
    pub fn len_of(&self, id: u32) -> u8 {
        self.lens.get(id as usize).copied().unwrap_or(0)
    }

    /// Every id's length, by id.
    #[inline]
    pub fn lens(&self) -> &[u8] {
        &self.lens
    }

    /// The id of the longest stored prefix of length 1..=`max` that holds `addr`, or 0.
    pub fn cover(&self, addr: K, max: u8) -> u32 {
        (1..=max)
            .rev()
            .filter(|&l| self.len_count[usize::from(l)] > 0)
            .find_map(|l| self.id(addr.network(l), l))
            .unwrap_or(NONE)
    }

    /// The prefixes strictly inside the /`depth` at `base` (`depth` below the address
    /// width), in index order: by network, then length.
    pub fn under(&self, base: K, depth: u8) -> impl Iterator<Item = (K, u8, u32)> + '_ {
        self.map
            .range((base, depth + 1)..=(base.last(depth), K::WIDTH))
            .map(|(&(n, l), &id)| (n, l, id))
    }

    fn add(&mut self, net: K, len: u8, id: u32) {
        self.map.insert((net, len), id);
        let i = id as usize;
        if self.lens.len() <= i {
            self.lens.resize(i + 1, 0);
        }
        self.lens[i] = len;
        self.len_count[usize::from(len)] += 1;
    }

    fn take(&mut self, net: K, len: u8) -> Option<u32> {
        let id = self.map.remove(&(net, len))?;
        self.len_count[usize::from(len)] -= 1;
        Some(id)
    }
}

/// A longest-prefix-match table from prefixes to values over the lookup structure `S`; use
/// it as [`crate::LpmTable`] (IPv4) or [`crate::Lpm6Table`] (IPv6).
#[derive(Clone)]
pub struct LpmOf<S: Structure, V> {
    pub(crate) s: S,
    pub(crate) index: Index<S::Key>,
    /// Route storage by id, prefixes apart from values so that a lookup of the value reads
    /// only the value; id 0 is the unused "no route" slot.
    prefixes: Vec<S::Net>,
    values: Vec<Option<V>>,
    free_ids: Vec<u32>,
    /// Id of the /0 route, or 0: it lives beside the structure, so adding or removing it is
    /// O(1).
    default: u32,
}

impl<S: Structure, V> Default for LpmOf<S, V> {
    fn default() -> Self {
        Self::with_structure(S::default())
    }
}

impl<S: Structure, V: fmt::Debug> fmt::Debug for LpmOf<S, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<S: Structure, V> LpmOf<S, V> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn with_structure(s: S) -> Self {
        Self {
            s,
            index: Index::new(),
            prefixes: vec![S::Net::default()],
            values: vec![None],
            free_ids: Vec::new(),
            default: NONE,
        }
    }

    /// Number of prefixes stored.
    pub fn len(&self) -> usize {
        self.index.map.len()
    }

    /// True when no prefix is stored.
    pub fn is_empty(&self) -> bool {
        self.index.map.is_empty()
    }

    /// Removes every prefix.
    pub fn clear(&mut self) {
        *self = Self::new();
    }

    /// Bytes held by the lookup structure, the ordered index and the route storage (not
    /// counting heap data owned by the values themselves). The index is estimated at its
    /// B-tree's usual fill (two thirds of each node's slots).
    pub fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        let index_slot = size_of::<(S::Key, u8)>() + size_of::<u32>();
        self.s.memory_bytes()
            + self.prefixes.capacity() * size_of::<S::Net>()
            + self.values.capacity() * size_of::<Option<V>>()
            + self.index.lens.capacity()
            + self.index.map.len() * index_slot * 3 / 2
    }

    /// Exact match: the value stored for `prefix` (host bits are ignored).
    pub fn get(&self, prefix: S::Net) -> Option<&V> {
        let (_, net, len) = S::parts(prefix);
        let id = self.index.id(net, len)?;
        self.values.get(id as usize)?.as_ref()
    }

    /// Exact match, mutable. Changing a value never changes which prefix wins a lookup.
    pub fn get_mut(&mut self, prefix: S::Net) -> Option<&mut V> {
        let (_, net, len) = S::parts(prefix);
        let id = self.index.id(net, len)?;
        self.values.get_mut(id as usize)?.as_mut()
    }

    /// True when exactly `prefix` is stored.
    pub fn contains(&self, prefix: S::Net) -> bool {
        self.get(prefix).is_some()
    }

    /// Iterates over every prefix in listing order: by network address, then by length.
    pub fn iter(&self) -> impl Iterator<Item = (S::Net, &V)> + '_ {
        self.index.map.values().filter_map(|&id| self.entry(id))
    }

    #[inline]
    fn entry(&self, id: u32) -> Option<(S::Net, &V)> {
        let v = self.values.get(id as usize)?.as_ref()?;
        Some((*self.prefixes.get(id as usize)?, v))
    }

    /// The id of the longest prefix covering `addr`, or 0.
    #[inline]
    fn lookup_id(&self, addr: S::Addr) -> u32 {
        let id = self.s.lookup_id(S::key(addr));
        if id == NONE {
            self.default
        } else {
            id
        }
    }

    /// Longest-prefix match: the most specific stored prefix containing `addr`, and its value.
    #[inline]
    pub fn lookup(&self, addr: S::Addr) -> Option<(S::Net, &V)> {
        self.entry(self.lookup_id(addr))
    }

    /// Longest-prefix match returning only the value (skips reading the prefix).
    #[inline]
    pub fn lookup_value(&self, addr: S::Addr) -> Option<&V> {
        self.values.get(self.lookup_id(addr) as usize)?.as_ref()
    }

    /// Inserts `prefix` (host bits are ignored) and returns the value it replaced, if any.
    ///
    /// # Panics
    /// When more prefixes would be stored than the structure's words can name (2^31 - 1 for
    /// IPv4, 2^30 - 1 for IPv6): far beyond any routing table.
    pub fn insert(&mut self, prefix: S::Net, value: V) -> Option<V> {
        let (prefix, net, len) = S::parts(prefix);
        if let Some(id) = self.index.id(net, len) {
            if let Some(v) = self.values.get_mut(id as usize).and_then(Option::as_mut) {
                return Some(std::mem::replace(v, value));
            }
        }
        let id = match self.free_ids.pop() {
            Some(id) => {
                self.prefixes[id as usize] = prefix;
                self.values[id as usize] = Some(value);
                id
            }
            None => {
                assert!(
                    self.values.len() <= S::MAX_ID as usize,
                    "an LPM table holds at most {} prefixes",
                    S::MAX_ID
                );
                self.prefixes.push(prefix);
                self.values.push(Some(value));
                (self.values.len() - 1) as u32
            }
        };
        self.index.add(net, len, id);
        if len == 0 {
            self.default = id;
        } else {
            self.s.inserted(&self.index, net, len, id);
        }
        None
    }

    /// Removes `prefix` (host bits are ignored) and returns its value, if it was stored.
    pub fn remove(&mut self, prefix: S::Net) -> Option<V> {
        let (_, net, len) = S::parts(prefix);
        let id = self.index.take(net, len)?;
        if len == 0 {
            self.default = NONE;
        } else {
            self.s.removed(&self.index, net, len, id);
        }
        let value = self.values.get_mut(id as usize).and_then(Option::take);
        self.free_ids.push(id);
        value
    }
}

/// A pool of equal chunks of `N` words, one after another, with a free list.
#[derive(Debug, Clone, Default)]
pub struct Pool<const N: usize> {
    /// The chunks' words: chunk `c` is `words[c * N..(c + 1) * N]`.
    pub words: Vec<u32>,
    /// Chunks no word points to.
    pub free: Vec<u32>,
}

impl<const N: usize> Pool<N> {
    /// Takes a chunk from the free list or grows the pool, and fills it with `fill`.
    pub fn alloc(&mut self, fill: u32) -> usize {
        let c = match self.free.pop() {
            Some(c) => c as usize,
            None => {
                self.words.resize(self.words.len() + N, NONE);
                self.words.len() / N - 1
            }
        };
        self.chunk_mut(c).fill(fill);
        c
    }

    /// Returns chunk `c` to the free list.
    pub fn release(&mut self, c: usize) {
        self.free.push(c as u32);
    }

    /// The words of chunk `c`.
    pub fn chunk(&self, c: usize) -> &[u32] {
        &self.words[c * N..(c + 1) * N]
    }

    /// The words of chunk `c`, mutable.
    pub fn chunk_mut(&mut self, c: usize) -> &mut [u32] {
        &mut self.words[c * N..(c + 1) * N]
    }

    /// Bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.words.capacity() * 4
    }
}
