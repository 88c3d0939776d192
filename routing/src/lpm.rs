//! The longest-prefix-match table: a DIR-16-8-8 multibit trie with incremental updates.
//!
//! Lookups read at most three `u32` words: one in a directly indexed 2^16 first level (256 KiB),
//! then, only where longer prefixes exist, one in a 256-entry chunk per /16 and one in a
//! 256-entry chunk per /24. Each word is either "no route", the id of the longest prefix that
//! covers every address behind it (prefix expansion), or a pointer to a child chunk. Chunks are
//! created when the first longer prefix lands under them and freed when the last one leaves, so
//! memory follows the table's contents. The default route (/0) lives beside the trie instead of
//! being expanded into every word, which keeps adding or removing it O(1).

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use rustc_hash::FxHashMap;

/// Marks a word that points to a child chunk rather than holding a route id.
const CHILD: u32 = 1 << 31;
/// The "no route" word (route ids start at 1).
const NONE: u32 = 0;
const L1_SIZE: usize = 1 << 16;
const CHUNK: usize = 256;

/// One stored route.
#[derive(Debug, Clone)]
struct Entry<V> {
    prefix: Ipv4Net,
    value: V,
}

/// A longest-prefix-match table from IPv4 prefixes to values.
///
/// ```
/// use vmkstack_routing::LpmTable;
/// let mut t = LpmTable::new();
/// t.insert("198.18.0.0/15".parse().unwrap(), "lab");
/// t.insert("198.18.1.0/24".parse().unwrap(), "vmk0");
/// let (prefix, v) = t.lookup("198.18.1.7".parse().unwrap()).unwrap();
/// assert_eq!((prefix.to_string().as_str(), *v), ("198.18.1.0/24", "vmk0"));
/// assert_eq!(t.lookup("198.19.0.1".parse().unwrap()).map(|(_, v)| *v), Some("lab"));
/// assert!(t.lookup("203.0.113.1".parse().unwrap()).is_none());
/// ```
#[derive(Clone)]
pub struct LpmTable<V> {
    l1: Box<[u32; L1_SIZE]>,
    l2: Vec<u32>,
    l3: Vec<u32>,
    /// Per chunk: how many prefixes longer than the chunk's parent level live under it.
    l2_count: Vec<u32>,
    l3_count: Vec<u32>,
    l2_free: Vec<u32>,
    l3_free: Vec<u32>,
    /// Route storage; id 0 is the unused "no route" slot.
    entries: Vec<Option<Entry<V>>>,
    /// Prefix length per id, kept apart from `entries` so that updates compare lengths
    /// without touching the (larger) route storage.
    lens: Vec<u8>,
    free_ids: Vec<u32>,
    /// Exact index: `key(network, length)` to id. Keys are routes an admin configured, not
    /// packet contents, so a fast non-keyed hash is fine here.
    index: FxHashMap<u64, u32>,
    /// How many prefixes of each length exist, to skip empty lengths on removal.
    len_count: [u32; 33],
    /// Id of the /0 route, or `NONE`.
    default: u32,
}

impl<V> Default for LpmTable<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: std::fmt::Debug> std::fmt::Debug for LpmTable<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// The exact-index key of a prefix.
#[inline]
fn key(addr: u32, len: u8) -> u64 {
    (u64::from(addr) << 8) | u64::from(len)
}

#[inline]
fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

impl<V> LpmTable<V> {
    /// An empty table (256 KiB for the first level).
    pub fn new() -> Self {
        let l1: Box<[u32]> = vec![NONE; L1_SIZE].into_boxed_slice();
        let l1: Box<[u32; L1_SIZE]> = match l1.try_into() {
            Ok(b) => b,
            Err(_) => unreachable!("the vector has exactly L1_SIZE words"),
        };
        Self {
            l1,
            l2: Vec::new(),
            l3: Vec::new(),
            l2_count: Vec::new(),
            l3_count: Vec::new(),
            l2_free: Vec::new(),
            l3_free: Vec::new(),
            entries: vec![None],
            lens: vec![0],
            free_ids: Vec::new(),
            index: FxHashMap::default(),
            len_count: [0; 33],
            default: NONE,
        }
    }

    /// Number of prefixes stored.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when no prefix is stored.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Removes every prefix.
    pub fn clear(&mut self) {
        *self = Self::new();
    }

    /// Bytes held by the lookup structure and the route storage (not counting heap data owned
    /// by the values themselves).
    pub fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        L1_SIZE * 4
            + (self.l2.capacity() + self.l3.capacity()) * 4
            + (self.l2_count.capacity() + self.l3_count.capacity()) * 4
            + self.entries.capacity() * size_of::<Option<Entry<V>>>()
            // A hash map slot holds the key and value plus one control byte.
            + self.index.capacity() * (size_of::<u64>() + size_of::<u32>() + 1)
    }

    /// Exact match: the value stored for `prefix` (host bits are ignored).
    pub fn get(&self, prefix: Ipv4Net) -> Option<&V> {
        let p = prefix.trunc();
        let id = *self
            .index
            .get(&key(u32::from(p.network()), p.prefix_len()))?;
        self.entry(id).map(|e| &e.value)
    }

    /// Exact match, mutable. Changing a value never changes which prefix wins a lookup.
    pub fn get_mut(&mut self, prefix: Ipv4Net) -> Option<&mut V> {
        let p = prefix.trunc();
        let id = *self
            .index
            .get(&key(u32::from(p.network()), p.prefix_len()))?;
        self.entries
            .get_mut(id as usize)
            .and_then(Option::as_mut)
            .map(|e| &mut e.value)
    }

    /// True when exactly `prefix` is stored.
    pub fn contains(&self, prefix: Ipv4Net) -> bool {
        self.get(prefix).is_some()
    }

    /// Iterates over every prefix in listing order: by network address, then by length.
    /// (Sorts on each call: listings are rare, lookups and updates are not.)
    pub fn iter(&self) -> impl Iterator<Item = (Ipv4Net, &V)> + '_ {
        let mut all: Vec<(Ipv4Net, &V)> = self
            .entries
            .iter()
            .flatten()
            .map(|e| (e.prefix, &e.value))
            .collect();
        all.sort_unstable_by_key(|(p, _)| (u32::from(p.network()), p.prefix_len()));
        all.into_iter()
    }

    #[inline]
    fn entry(&self, id: u32) -> Option<&Entry<V>> {
        self.entries.get(id as usize).and_then(Option::as_ref)
    }

    /// The id of the longest prefix covering `addr`, or 0. Three dependent loads at most.
    #[inline]
    fn lookup_id(&self, addr: u32) -> u32 {
        let mut e = self.l1[(addr >> 16) as usize];
        if e & CHILD != 0 {
            e = self.l2[(((e & !CHILD) as usize) << 8) | ((addr >> 8) & 0xff) as usize];
            if e & CHILD != 0 {
                e = self.l3[(((e & !CHILD) as usize) << 8) | (addr & 0xff) as usize];
            }
        }
        if e == NONE {
            self.default
        } else {
            e
        }
    }

    /// Longest-prefix match: the most specific stored prefix containing `addr`, and its value.
    #[inline]
    pub fn lookup(&self, addr: Ipv4Addr) -> Option<(Ipv4Net, &V)> {
        self.entry(self.lookup_id(u32::from(addr)))
            .map(|e| (e.prefix, &e.value))
    }

    /// Longest-prefix match returning only the value (skips building the prefix).
    #[inline]
    pub fn lookup_value(&self, addr: Ipv4Addr) -> Option<&V> {
        self.entry(self.lookup_id(u32::from(addr)))
            .map(|e| &e.value)
    }

    /// Inserts `prefix` (host bits are ignored) and returns the value it replaced, if any.
    pub fn insert(&mut self, prefix: Ipv4Net, value: V) -> Option<V> {
        let prefix = prefix.trunc();
        let addr = u32::from(prefix.network());
        let len = prefix.prefix_len();
        if let Some(&id) = self.index.get(&key(addr, len)) {
            if let Some(e) = self.entries.get_mut(id as usize).and_then(Option::as_mut) {
                return Some(std::mem::replace(&mut e.value, value));
            }
        }
        let entry = Some(Entry { prefix, value });
        let id = match self.free_ids.pop() {
            Some(id) => {
                self.entries[id as usize] = entry;
                self.lens[id as usize] = len;
                id
            }
            None => {
                self.entries.push(entry);
                self.lens.push(len);
                (self.entries.len() - 1) as u32
            }
        };
        self.index.insert(key(addr, len), id);
        self.len_count[len as usize] += 1;
        if len == 0 {
            self.default = id;
        } else {
            self.paint_insert(addr, len, id);
        }
        None
    }

    /// Removes `prefix` (host bits are ignored) and returns its value, if it was stored.
    pub fn remove(&mut self, prefix: Ipv4Net) -> Option<V> {
        let prefix = prefix.trunc();
        let addr = u32::from(prefix.network());
        let len = prefix.prefix_len();
        let id = self.index.remove(&key(addr, len))?;
        self.len_count[len as usize] -= 1;
        if len == 0 {
            self.default = NONE;
        } else {
            let cover = self.cover(addr, len);
            self.paint_remove(addr, len, id, cover);
        }
        let entry = self.entries.get_mut(id as usize).and_then(Option::take);
        self.free_ids.push(id);
        entry.map(|e| e.value)
    }

    /// The id of the longest stored prefix strictly shorter than `len` (and longer than /0,
    /// which is handled beside the trie) that covers `addr`.
    fn cover(&self, addr: u32, len: u8) -> u32 {
        (1..len)
            .rev()
            .filter(|&l| self.len_count[l as usize] > 0)
            .find_map(|l| self.index.get(&key(addr & mask(l), l)).copied())
            .unwrap_or(NONE)
    }

    /// Range of word indexes `[start, end)` that a prefix of `len` covers inside a level whose
    /// words each stand for `1 << shift` addresses and which starts `top` bits deep.
    #[inline]
    fn span(addr: u32, len: u8, top: u8, bits: u8) -> (usize, usize) {
        let shift = 32 - top - bits;
        let start = ((addr >> shift) & ((1u32 << bits) - 1)) as usize;
        (start, start + (1usize << (top + bits - len)))
    }

    /// The level-2 chunk under the /16 of `addr`, created (filled with the word it replaces)
    /// when missing.
    fn l2_chunk(&mut self, addr: u32) -> usize {
        let slot = (addr >> 16) as usize;
        let e = self.l1[slot];
        if e & CHILD != 0 {
            return (e & !CHILD) as usize;
        }
        let c = alloc_chunk(&mut self.l2, &mut self.l2_count, &mut self.l2_free, e);
        self.l1[slot] = CHILD | c as u32;
        c
    }

    /// The level-3 chunk under the /24 of `addr` inside level-2 chunk `c2`.
    fn l3_chunk(&mut self, c2: usize, addr: u32) -> usize {
        let slot = c2 * CHUNK + ((addr >> 8) & 0xff) as usize;
        let e = self.l2[slot];
        if e & CHILD != 0 {
            return (e & !CHILD) as usize;
        }
        let c = alloc_chunk(&mut self.l3, &mut self.l3_count, &mut self.l3_free, e);
        self.l2[slot] = CHILD | c as u32;
        c
    }

    fn paint_insert(&mut self, addr: u32, len: u8, id: u32) {
        // Chunks are created first; then the levels are borrowed apart so that the fill loops
        // run over plain slices.
        let (c2, c3) = match len {
            0..=16 => (0, 0),
            17..=24 => {
                let c2 = self.l2_chunk(addr);
                self.l2_count[c2] += 1;
                (c2, 0)
            }
            _ => {
                let c2 = self.l2_chunk(addr);
                self.l2_count[c2] += 1;
                let c3 = self.l3_chunk(c2, addr);
                self.l3_count[c3] += 1;
                (c2, c3)
            }
        };
        let (l1, l2, l3, lens) = (&mut self.l1[..], &mut self.l2, &mut self.l3, &self.lens[..]);
        let mut fill_l3 =
            |c: usize| fill(&mut l3[c * CHUNK..(c + 1) * CHUNK], lens, id, len, |_| {});
        if len <= 16 {
            let (s, e) = Self::span(addr, len, 0, 16);
            let mut fill_l2 = |c: usize| {
                fill(
                    &mut l2[c * CHUNK..(c + 1) * CHUNK],
                    lens,
                    id,
                    len,
                    &mut fill_l3,
                )
            };
            fill(&mut l1[s..e], lens, id, len, &mut fill_l2);
        } else if len <= 24 {
            let (s, e) = Self::span(addr, len, 16, 8);
            fill(
                &mut l2[c2 * CHUNK + s..c2 * CHUNK + e],
                lens,
                id,
                len,
                &mut fill_l3,
            );
        } else {
            let (s, e) = Self::span(addr, len, 24, 8);
            fill(
                &mut l3[c3 * CHUNK + s..c3 * CHUNK + e],
                lens,
                id,
                len,
                |_| {},
            );
        }
    }

    fn paint_remove(&mut self, addr: u32, len: u8, id: u32, cover: u32) {
        if len <= 16 {
            let (s, e) = Self::span(addr, len, 0, 16);
            let (l2, l3) = (&mut self.l2, &mut self.l3);
            let mut in_l3 =
                |c: usize| replace(&mut l3[c * CHUNK..(c + 1) * CHUNK], id, cover, |_| {});
            let mut in_l2 =
                |c: usize| replace(&mut l2[c * CHUNK..(c + 1) * CHUNK], id, cover, &mut in_l3);
            replace(&mut self.l1[s..e], id, cover, &mut in_l2);
            return;
        }
        // A prefix longer than /16 has a level-2 chunk; the `else` arms only guard against a
        // corrupted table, where doing nothing is the safe answer.
        let l1_slot = (addr >> 16) as usize;
        let e1 = self.l1[l1_slot];
        if e1 & CHILD == 0 {
            return;
        }
        let c2 = (e1 & !CHILD) as usize;
        if len <= 24 {
            let (s, e) = Self::span(addr, len, 16, 8);
            let l3 = &mut self.l3;
            let mut in_l3 =
                |c: usize| replace(&mut l3[c * CHUNK..(c + 1) * CHUNK], id, cover, |_| {});
            replace(
                &mut self.l2[c2 * CHUNK + s..c2 * CHUNK + e],
                id,
                cover,
                &mut in_l3,
            );
        } else {
            let l2_slot = c2 * CHUNK + ((addr >> 8) & 0xff) as usize;
            let e2 = self.l2[l2_slot];
            if e2 & CHILD == 0 {
                return;
            }
            let c3 = (e2 & !CHILD) as usize;
            let (s, e) = Self::span(addr, len, 24, 8);
            replace(
                &mut self.l3[c3 * CHUNK + s..c3 * CHUNK + e],
                id,
                cover,
                |_| {},
            );
            self.l3_count[c3] -= 1;
            if self.l3_count[c3] == 0 {
                // No prefix longer than /24 is left here: every word now holds the same cover.
                self.l2[l2_slot] = self.l3[c3 * CHUNK];
                self.l3_free.push(c3 as u32);
            }
        }
        self.l2_count[c2] -= 1;
        if self.l2_count[c2] == 0 {
            self.l1[l1_slot] = self.l2[c2 * CHUNK];
            self.l2_free.push(c2 as u32);
        }
    }
}

/// Writes `id` (a prefix of length `len`) over every word that holds no route or a shorter
/// prefix; `child` is called for each word that points to a child chunk.
#[inline]
fn fill(words: &mut [u32], lens: &[u8], id: u32, len: u8, mut child: impl FnMut(usize)) {
    // Expanded prefixes leave long runs of equal words: decide once per run.
    let mut last = (u32::MAX, false);
    for w in words {
        let e = *w;
        if e & CHILD != 0 {
            child((e & !CHILD) as usize);
            continue;
        }
        if e != last.0 {
            let shorter = e == NONE || lens.get(e as usize).is_some_and(|&l| l < len);
            last = (e, shorter);
        }
        if last.1 {
            *w = id;
        }
    }
}

/// Writes `cover` over every word that holds `id`; `child` is called for child pointers.
#[inline]
fn replace(words: &mut [u32], id: u32, cover: u32, mut child: impl FnMut(usize)) {
    for w in words {
        if *w & CHILD != 0 {
            child((*w & !CHILD) as usize);
        } else if *w == id {
            *w = cover;
        }
    }
}

/// Takes a chunk from the free list or grows `words`, and fills it with `fill`.
fn alloc_chunk(
    words: &mut Vec<u32>,
    counts: &mut Vec<u32>,
    free: &mut Vec<u32>,
    fill: u32,
) -> usize {
    let c = match free.pop() {
        Some(c) => c as usize,
        None => {
            words.resize(words.len() + CHUNK, NONE);
            counts.push(0);
            counts.len() - 1
        }
    };
    words[c * CHUNK..(c + 1) * CHUNK].fill(fill);
    counts[c] = 0;
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().expect("test prefix")
    }

    fn look(t: &LpmTable<u32>, a: &str) -> Option<(String, u32)> {
        t.lookup(a.parse().expect("test address"))
            .map(|(p, v)| (p.to_string(), *v))
    }

    #[test]
    fn test_empty() {
        let t: LpmTable<u32> = LpmTable::new();
        assert!(t.is_empty());
        assert_eq!(look(&t, "198.18.0.1"), None);
    }

    #[test]
    fn test_nested_levels() {
        let mut t = LpmTable::new();
        t.insert(net("198.0.0.0/8"), 8);
        t.insert(net("198.18.0.0/15"), 15);
        t.insert(net("198.18.1.0/24"), 24);
        t.insert(net("198.18.1.128/25"), 25);
        t.insert(net("198.18.1.200/32"), 32);
        assert_eq!(look(&t, "198.1.1.1"), Some(("198.0.0.0/8".into(), 8)));
        assert_eq!(look(&t, "198.19.7.7"), Some(("198.18.0.0/15".into(), 15)));
        assert_eq!(look(&t, "198.18.1.1"), Some(("198.18.1.0/24".into(), 24)));
        assert_eq!(
            look(&t, "198.18.1.129"),
            Some(("198.18.1.128/25".into(), 25))
        );
        assert_eq!(
            look(&t, "198.18.1.200"),
            Some(("198.18.1.200/32".into(), 32))
        );
        assert_eq!(
            look(&t, "198.18.1.201"),
            Some(("198.18.1.128/25".into(), 25))
        );
        assert_eq!(look(&t, "199.0.0.1"), None);
    }

    #[test]
    fn test_shorter_after_longer() {
        let mut t = LpmTable::new();
        t.insert(net("198.18.1.200/32"), 32);
        t.insert(net("198.18.1.0/24"), 24);
        t.insert(net("198.0.0.0/8"), 8);
        assert_eq!(
            look(&t, "198.18.1.200"),
            Some(("198.18.1.200/32".into(), 32))
        );
        assert_eq!(look(&t, "198.18.1.201"), Some(("198.18.1.0/24".into(), 24)));
        assert_eq!(look(&t, "198.18.2.1"), Some(("198.0.0.0/8".into(), 8)));
    }

    #[test]
    fn test_default_route() {
        let mut t = LpmTable::new();
        t.insert(net("0.0.0.0/0"), 0);
        t.insert(net("198.18.0.0/24"), 24);
        assert_eq!(look(&t, "203.0.113.9"), Some(("0.0.0.0/0".into(), 0)));
        assert_eq!(look(&t, "198.18.0.9"), Some(("198.18.0.0/24".into(), 24)));
        assert_eq!(t.remove(net("0.0.0.0/0")), Some(0));
        assert_eq!(look(&t, "203.0.113.9"), None);
    }

    #[test]
    fn test_remove_restores_cover_and_frees_chunks() {
        let mut t = LpmTable::new();
        t.insert(net("198.18.0.0/16"), 16);
        t.insert(net("198.18.1.0/24"), 24);
        t.insert(net("198.18.1.7/32"), 32);
        assert_eq!(t.l2_count.iter().sum::<u32>(), 2);
        assert_eq!(t.remove(net("198.18.1.7/32")), Some(32));
        assert_eq!(look(&t, "198.18.1.7"), Some(("198.18.1.0/24".into(), 24)));
        assert_eq!(t.l3_free.len(), 1, "the /24's chunk is freed");
        assert_eq!(t.remove(net("198.18.1.0/24")), Some(24));
        assert_eq!(look(&t, "198.18.1.7"), Some(("198.18.0.0/16".into(), 16)));
        assert_eq!(t.l2_free.len(), 1, "the /16's chunk is freed");
        assert_eq!(
            t.l1[(u32::from(Ipv4Addr::new(198, 18, 0, 0)) >> 16) as usize] & CHILD,
            0
        );
        assert_eq!(
            t.remove(net("198.18.1.0/24")),
            None,
            "removing twice finds nothing"
        );
        // Re-adding reuses the freed chunk and id.
        t.insert(net("198.18.1.7/32"), 99);
        assert_eq!(look(&t, "198.18.1.7"), Some(("198.18.1.7/32".into(), 99)));
        assert_eq!(t.l3.len(), CHUNK);
    }

    #[test]
    fn test_replace_value_and_get() {
        let mut t = LpmTable::new();
        assert_eq!(t.insert(net("198.18.5.0/24"), 1), None);
        assert_eq!(
            t.insert(net("198.18.5.9/24"), 2),
            Some(1),
            "host bits ignored"
        );
        assert_eq!(t.get(net("198.18.5.0/24")), Some(&2));
        assert_eq!(t.get(net("198.18.5.0/25")), None);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn test_iter_listing_order() {
        let mut t = LpmTable::new();
        for (p, v) in [
            ("198.19.0.0/16", 3),
            ("198.18.0.0/24", 2),
            ("198.18.0.0/15", 1),
        ] {
            t.insert(net(p), v);
        }
        let got: Vec<_> = t.iter().map(|(p, v)| (p.to_string(), *v)).collect();
        assert_eq!(
            got,
            vec![
                ("198.18.0.0/15".to_string(), 1),
                ("198.18.0.0/24".to_string(), 2),
                ("198.19.0.0/16".to_string(), 3)
            ]
        );
    }

    #[test]
    fn test_host_routes_at_edges() {
        let mut t = LpmTable::new();
        t.insert(net("0.0.0.0/32"), 1);
        t.insert(net("255.255.255.255/32"), 2);
        t.insert(net("128.0.0.0/1"), 3);
        assert_eq!(look(&t, "0.0.0.0"), Some(("0.0.0.0/32".into(), 1)));
        assert_eq!(look(&t, "0.0.0.1"), None);
        assert_eq!(
            look(&t, "255.255.255.255"),
            Some(("255.255.255.255/32".into(), 2))
        );
        assert_eq!(look(&t, "255.255.255.254"), Some(("128.0.0.0/1".into(), 3)));
    }
}
