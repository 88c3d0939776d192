//! The IPv6 longest-prefix-match table: a 2^16 directly indexed first level, 256-word chunks
//! only where prefixes crowd, and short sorted range lists everywhere else.
//!
//! IPv6 tables are sparse and deep (mostly /32-/48 and /64, a few /128) and concentrated in a
//! few regional blocks, so neither IPv4's fixed DIR-16-8-8 levels nor a bit-per-level trie
//! fits. Each word of the first level (one /16) and of a chunk (one /`depth`) holds one of:
//!
//! - a route id (or "no route"): every address behind the word has that answer;
//! - a *range list*: at most [`SPLIT`] prefixes lie under the word, flattened into the disjoint
//!   address ranges they make (at most 2k+1), searched by binary search; when every prefix
//!   there is /64 or shorter the range starts are stored as their upper 64 bits;
//! - a *chunk*: more prefixes than that lie under the word, so it is split by the next 8 bits.
//!
//! A lookup reads one first-level word, then a few chunk words where prefixes crowd, then one
//! range list. An update rebuilds only the deepest word (or the few words of one chunk) whose
//! range holds the prefix, from an ordered index of the prefixes, and folds chunks back into a
//! word when they become uniform. The default route (::/0) lives beside the structure, so
//! adding or removing it is O(1).

use std::collections::BTreeMap;
use std::net::Ipv6Addr;

use ipnet::Ipv6Net;

/// The "no route" id (route ids start at 1).
const NONE: u32 = 0;
/// Word tags (top two bits): a range list, or a chunk. Untagged words are route ids.
const TAG_MASK: u32 = 0b11 << 30;
const RANGES: u32 = 0b10 << 30;
const CHUNK_TAG: u32 = 0b11 << 30;
/// Words in the first level (one per /16).
const L1_SIZE: usize = 1 << 16;
/// Words in a chunk (8 bits of the address).
const CHUNK: usize = 256;
/// Most prefixes a range list holds before its word is split into a chunk.
pub const SPLIT: usize = 16;
/// Route ids must stay clear of the tag bits.
const MAX_ID: u32 = (1 << 30) - 1;

/// Range starts of one range list; the first range starts at the word's own network and is
/// not stored.
#[derive(Debug, Clone)]
enum Starts {
    /// Upper 64 bits of each start (every prefix in the list is /64 or shorter).
    Narrow(Vec<u64>),
    /// Full starts.
    Wide(Vec<u128>),
}

/// A word's prefixes flattened into disjoint ranges: range `i` starts at `starts[i - 1]` (or
/// the word's network for `i == 0`) and answers `ids[i]`.
#[derive(Debug, Clone)]
struct RangeList {
    starts: Starts,
    ids: Vec<u32>,
}

/// Where a word lives: the first level, or a chunk.
#[derive(Debug, Clone, Copy)]
enum Loc {
    Root(usize),
    Chunk(usize, usize),
}

/// A longest-prefix-match table from IPv6 prefixes to values.
///
/// ```
/// use vmkstack_routing::Lpm6Table;
/// let mut t = Lpm6Table::new();
/// t.insert("2001:db8::/32".parse().unwrap(), "lab");
/// t.insert("2001:db8:1::/48".parse().unwrap(), "vmk0");
/// let (prefix, v) = t.lookup("2001:db8:1::7".parse().unwrap()).unwrap();
/// assert_eq!((prefix.to_string().as_str(), *v), ("2001:db8:1::/48", "vmk0"));
/// assert_eq!(t.lookup("2001:db8:2::1".parse().unwrap()).map(|(_, v)| *v), Some("lab"));
/// assert!(t.lookup("2001:db9::1".parse().unwrap()).is_none());
/// ```
#[derive(Clone)]
pub struct Lpm6Table<V> {
    l1: Box<[u32]>,
    chunks: Vec<u32>,
    chunk_free: Vec<u32>,
    /// Range lists, one after another: see [`encode`].
    arena: Vec<u64>,
    /// Words of `arena` held by lists no word points to any more; compacted when large.
    garbage: usize,
    /// Route storage by id, prefixes apart from values so that a lookup of the value reads
    /// only the (small) value; id 0 is the unused "no route" slot.
    prefixes: Vec<Ipv6Net>,
    values: Vec<Option<V>>,
    free_ids: Vec<u32>,
    /// Ordered index `(network, length)` to id: exact matches, listing order, and the
    /// prefixes under a word when it is rebuilt.
    index: BTreeMap<(u128, u8), u32>,
    /// How many prefixes of each length exist, to skip empty lengths when finding covers.
    len_count: [u32; 129],
    /// Id of the ::/0 route, or `NONE`.
    default: u32,
}

impl<V> Default for Lpm6Table<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: std::fmt::Debug> std::fmt::Debug for Lpm6Table<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// The host bits of a /`len`.
#[inline]
fn host_mask(len: u8) -> u128 {
    u128::MAX.checked_shr(u32::from(len)).unwrap_or(0)
}

impl<V> Lpm6Table<V> {
    /// An empty table (256 KiB for the first level).
    pub fn new() -> Self {
        Self {
            l1: vec![NONE; L1_SIZE].into_boxed_slice(),
            chunks: Vec::new(),
            chunk_free: Vec::new(),
            arena: Vec::new(),
            garbage: 0,
            prefixes: vec![Ipv6Net::default()],
            values: vec![None],
            free_ids: Vec::new(),
            index: BTreeMap::new(),
            len_count: [0; 129],
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

    /// Bytes held by the lookup structure, the ordered index and the route storage (not
    /// counting heap data owned by the values themselves). The index is estimated at its
    /// B-tree's usual fill (two thirds of each node's slots).
    pub fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        let index_slot = size_of::<(u128, u8)>() + size_of::<u32>();
        L1_SIZE * 4
            + self.chunks.capacity() * 4
            + self.arena.capacity() * 8
            + self.prefixes.capacity() * size_of::<Ipv6Net>()
            + self.values.capacity() * size_of::<Option<V>>()
            + self.index.len() * index_slot * 3 / 2
    }

    /// Exact match: the value stored for `prefix` (host bits are ignored).
    pub fn get(&self, prefix: Ipv6Net) -> Option<&V> {
        let p = prefix.trunc();
        let id = *self.index.get(&(u128::from(p.network()), p.prefix_len()))?;
        self.values.get(id as usize)?.as_ref()
    }

    /// Exact match, mutable. Changing a value never changes which prefix wins a lookup.
    pub fn get_mut(&mut self, prefix: Ipv6Net) -> Option<&mut V> {
        let p = prefix.trunc();
        let id = *self.index.get(&(u128::from(p.network()), p.prefix_len()))?;
        self.values.get_mut(id as usize)?.as_mut()
    }

    /// True when exactly `prefix` is stored.
    pub fn contains(&self, prefix: Ipv6Net) -> bool {
        self.get(prefix).is_some()
    }

    /// Iterates over every prefix in listing order: by network address, then by length.
    pub fn iter(&self) -> impl Iterator<Item = (Ipv6Net, &V)> + '_ {
        self.index.values().filter_map(|&id| self.entry(id))
    }

    #[inline]
    fn entry(&self, id: u32) -> Option<(Ipv6Net, &V)> {
        let v = self.values.get(id as usize)?.as_ref()?;
        Some((*self.prefixes.get(id as usize)?, v))
    }

    /// The id of the longest prefix covering `a`, or 0.
    #[inline]
    fn lookup_id(&self, a: u128) -> u32 {
        let mut w = self.l1[(a >> 112) as usize];
        // The bits that pick a word in the next chunk sit `shift` bits up.
        let mut shift = 104u32;
        while w & TAG_MASK == CHUNK_TAG {
            let c = (w & !TAG_MASK) as usize;
            let i = ((a >> (shift & 127)) & 0xff) as usize;
            w = self.chunks.get(c * CHUNK + i).copied().unwrap_or(NONE);
            shift = shift.wrapping_sub(8);
        }
        if w & TAG_MASK == RANGES {
            w = find(&self.arena, (w & !TAG_MASK) as usize, a);
        }
        if w == NONE {
            self.default
        } else {
            w
        }
    }

    /// Longest-prefix match: the most specific stored prefix containing `addr`, and its value.
    #[inline]
    pub fn lookup(&self, addr: Ipv6Addr) -> Option<(Ipv6Net, &V)> {
        self.entry(self.lookup_id(u128::from(addr)))
    }

    /// Longest-prefix match returning only the value (skips building the prefix).
    #[inline]
    pub fn lookup_value(&self, addr: Ipv6Addr) -> Option<&V> {
        self.values
            .get(self.lookup_id(u128::from(addr)) as usize)?
            .as_ref()
    }

    /// Inserts `prefix` (host bits are ignored) and returns the value it replaced, if any.
    ///
    /// # Panics
    /// When more than 2^30 - 1 prefixes would be stored, or their range lists would pass
    /// 2^30 words (8 GiB): far beyond any routing table.
    pub fn insert(&mut self, prefix: Ipv6Net, value: V) -> Option<V> {
        let prefix = prefix.trunc();
        let net = u128::from(prefix.network());
        let len = prefix.prefix_len();
        if let Some(&id) = self.index.get(&(net, len)) {
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
                    self.values.len() <= MAX_ID as usize,
                    "an IPv6 LPM table holds at most {MAX_ID} prefixes"
                );
                self.prefixes.push(prefix);
                self.values.push(Some(value));
                (self.values.len() - 1) as u32
            }
        };
        self.index.insert((net, len), id);
        self.len_count[len as usize] += 1;
        if len == 0 {
            self.default = id;
        } else {
            self.update(net, len, None);
        }
        None
    }

    /// Removes `prefix` (host bits are ignored) and returns its value, if it was stored.
    pub fn remove(&mut self, prefix: Ipv6Net) -> Option<V> {
        let prefix = prefix.trunc();
        let net = u128::from(prefix.network());
        let len = prefix.prefix_len();
        let id = self.index.remove(&(net, len))?;
        self.len_count[len as usize] -= 1;
        if len == 0 {
            self.default = NONE;
        } else {
            self.update(net, len, Some(id));
        }
        let value = self.values.get_mut(id as usize).and_then(Option::take);
        self.free_ids.push(id);
        value
    }

    fn word(&self, loc: Loc) -> u32 {
        match loc {
            Loc::Root(i) => self.l1[i],
            Loc::Chunk(c, i) => self.chunks[c * CHUNK + i],
        }
    }

    fn set_word(&mut self, loc: Loc, w: u32) {
        match loc {
            Loc::Root(i) => self.l1[i] = w,
            Loc::Chunk(c, i) => self.chunks[c * CHUNK + i] = w,
        }
    }

    /// Rebuilds the words whose answers a change of `net/len` (`len` ≥ 1) can alter, then
    /// folds chunks that became uniform. `removed` is the id of a prefix just removed.
    fn update(&mut self, net: u128, len: u8, removed: Option<u32>) {
        self.repaint(net, len, removed);
        if self.garbage > 4096 && self.garbage > self.arena.len() / 2 {
            self.compact();
        }
    }

    /// Copies the live range lists into a new arena and points their words at the copies.
    fn compact(&mut self) {
        let old = std::mem::take(&mut self.arena);
        let mut arena = Vec::with_capacity(old.len() - self.garbage);
        let mut move_word = |w: u32| -> u32 {
            let at = (w & !TAG_MASK) as usize;
            let new = arena.len();
            arena.extend_from_slice(&old[at..at + encoded_len(&old, at)]);
            RANGES | new as u32
        };
        // Walk every live word: the first level, then the chunks reached from it.
        let mut stack: Vec<usize> = Vec::new();
        for w in self.l1.iter_mut() {
            match *w & TAG_MASK {
                RANGES => *w = move_word(*w),
                CHUNK_TAG => stack.push((*w & !TAG_MASK) as usize),
                _ => {}
            }
        }
        while let Some(c) = stack.pop() {
            for w in &mut self.chunks[c * CHUNK..(c + 1) * CHUNK] {
                match *w & TAG_MASK {
                    RANGES => *w = move_word(*w),
                    CHUNK_TAG => stack.push((*w & !TAG_MASK) as usize),
                    _ => {}
                }
            }
        }
        self.arena = arena;
        self.garbage = 0;
    }

    /// The rebuilding half of [`Self::update`].
    fn repaint(&mut self, net: u128, len: u8, removed: Option<u32>) {
        if len <= 16 {
            // A plain first-level word is its /16's cover, so most words need only a
            // comparison; words with longer prefixes beneath are rebuilt.
            let first = (net >> 112) as usize;
            let added = self
                .index
                .get(&(net, len))
                .copied()
                .filter(|_| removed.is_none());
            for i in first..first + (1usize << (16 - len)) {
                let w = self.l1[i];
                let base = (i as u128) << 112;
                if w & TAG_MASK != 0 {
                    self.rebuild(Loc::Root(i), base, 16);
                } else if let Some(id) = added {
                    let shorter = self.entry(w).is_none_or(|(p, _)| p.prefix_len() < len);
                    if shorter {
                        self.l1[i] = id;
                    }
                } else if removed == Some(w) {
                    self.l1[i] = self.cover(base, 16);
                }
            }
            return;
        }
        // Walk down through chunks while the prefix lies inside one word of the next chunk.
        let mut path: Vec<(Loc, u128, u8)> = Vec::new();
        let mut loc = Loc::Root((net >> 112) as usize);
        let mut depth = 16u8;
        loop {
            let w = self.word(loc);
            let base = net & !host_mask(depth);
            if w & TAG_MASK != CHUNK_TAG {
                self.rebuild(loc, base, depth);
                break;
            }
            let c = (w & !TAG_MASK) as usize;
            let shift = 120 - u32::from(depth);
            let i = ((net >> shift) & 0xff) as usize;
            path.push((loc, base, depth));
            if len > depth + 8 {
                loc = Loc::Chunk(c, i);
                depth += 8;
                continue;
            }
            // The prefix spans whole words of this chunk.
            for j in i..i + (1usize << (depth + 8 - len)) {
                self.rebuild(Loc::Chunk(c, j), base | ((j as u128) << shift), depth + 8);
            }
            break;
        }
        // Deepest first: a chunk whose words all give one answer becomes that answer, and one
        // left with few prefixes beneath becomes a range list again (at half the split size,
        // so that a word at the threshold does not flip on every update).
        while let Some((parent, base, depth)) = path.pop() {
            let c = (self.word(parent) & !TAG_MASK) as usize;
            let words = &self.chunks[c * CHUNK..(c + 1) * CHUNK];
            let first = words[0];
            if first & TAG_MASK == 0 && words.iter().all(|&w| w == first) {
                self.chunk_free.push(c as u32);
                self.set_word(parent, first);
            } else if self.under(base, depth).take(SPLIT / 2 + 1).count() <= SPLIT / 2 {
                self.rebuild(parent, base, depth);
            } else {
                break;
            }
        }
    }

    /// The prefixes strictly inside the /`depth` at `base` (`depth` < 128), in index order.
    fn under(&self, base: u128, depth: u8) -> impl Iterator<Item = (u128, u8, u32)> + '_ {
        self.index
            .range((base, depth + 1)..=(base | host_mask(depth), 128))
            .map(|(&(n, l), &id)| (n, l, id))
    }

    /// Replaces the word at `loc` (the /`depth` at `base`) with one built from the index.
    fn rebuild(&mut self, loc: Loc, base: u128, depth: u8) {
        let old = self.word(loc);
        self.free(old);
        let cover = self.cover(base, depth);
        let w = self.build(base, depth, cover);
        self.set_word(loc, w);
    }

    /// The id of the longest stored prefix of length 1..=`depth` that holds `base`, or `NONE`.
    fn cover(&self, base: u128, depth: u8) -> u32 {
        (1..=depth)
            .rev()
            .filter(|&l| self.len_count[l as usize] > 0)
            .find_map(|l| self.index.get(&(base & !host_mask(l), l)).copied())
            .unwrap_or(NONE)
    }

    /// Builds the word for the /`depth` at `base`, whose shorter prefixes give `cover`.
    fn build(&mut self, base: u128, depth: u8, cover: u32) -> u32 {
        if depth >= 128 {
            return cover;
        }
        let end = base | host_mask(depth);
        let inner: Vec<(u128, u8, u32)> = self.under(base, depth).collect();
        if inner.is_empty() {
            return cover;
        }
        if inner.len() <= SPLIT || depth > 120 {
            let list = ranges(base, end, depth, cover, &inner);
            let at = self.arena.len();
            encode(&list, &mut self.arena);
            assert!(
                at <= MAX_ID as usize,
                "IPv6 LPM range lists exceed 2^30 words"
            );
            return RANGES | at as u32;
        }
        let c = match self.chunk_free.pop() {
            Some(c) => c as usize,
            None => {
                self.chunks.resize(self.chunks.len() + CHUNK, NONE);
                self.chunks.len() / CHUNK - 1
            }
        };
        let shift = 120 - u32::from(depth);
        // Covers of the chunk's words: prefixes of length depth+1..=depth+8, shortest first.
        let mut covers = [cover; CHUNK];
        let mut short: Vec<&(u128, u8, u32)> =
            inner.iter().filter(|&&(_, l, _)| l <= depth + 8).collect();
        short.sort_by_key(|&&(_, l, _)| l);
        for &&(n, l, id) in &short {
            let first = ((n >> shift) & 0xff) as usize;
            covers[first..first + (1usize << (depth + 8 - l))].fill(id);
        }
        for (i, &word_cover) in covers.iter().enumerate() {
            let w = self.build(base | ((i as u128) << shift), depth + 8, word_cover);
            self.chunks[c * CHUNK + i] = w;
        }
        CHUNK_TAG | c as u32
    }

    /// Returns a word's chunks and range lists to their free lists.
    fn free(&mut self, w: u32) {
        match w & TAG_MASK {
            RANGES => self.garbage += encoded_len(&self.arena, (w & !TAG_MASK) as usize),
            CHUNK_TAG => {
                let c = (w & !TAG_MASK) as usize;
                for i in 0..CHUNK {
                    let child = self.chunks[c * CHUNK + i];
                    self.free(child);
                }
                self.chunk_free.push(c as u32);
            }
            _ => {}
        }
    }
}

/// Flattens `inner` (prefixes strictly inside `[base, end]`, in index order: by network,
/// then length, so a prefix comes before those nested in it) into disjoint ranges.
fn ranges(base: u128, end: u128, depth: u8, cover: u32, inner: &[(u128, u8, u32)]) -> RangeList {
    let mut starts: Vec<u128> = vec![base];
    let mut ids: Vec<u32> = vec![cover];
    // A later range starting where the last one did replaces it; equal neighbours merge.
    let mut emit = |start: u128, id: u32| {
        let n = starts.len();
        if starts[n - 1] == start {
            ids[n - 1] = id;
            if n >= 2 && ids[n - 2] == id {
                starts.pop();
                ids.pop();
            }
        } else if ids[n - 1] != id {
            starts.push(start);
            ids.push(id);
        }
    };
    // The prefixes enclosing the current position: (last address, id).
    let mut open: Vec<(u128, u32)> = vec![(end, cover)];
    for &(net, len, id) in inner {
        while open.len() > 1 && open[open.len() - 1].0 < net {
            if let Some((last, _)) = open.pop() {
                emit(last + 1, open[open.len() - 1].1);
            }
        }
        emit(net, id);
        open.push((net | host_mask(len), id));
    }
    while open.len() > 1 {
        if let Some((last, _)) = open.pop() {
            if last < end {
                emit(last + 1, open[open.len() - 1].1);
            }
        }
    }
    let narrow = depth <= 64 && inner.iter().all(|&(_, l, _)| l <= 64);
    let starts = if narrow {
        Starts::Narrow(starts[1..].iter().map(|&s| (s >> 64) as u64).collect())
    } else {
        Starts::Wide(starts[1..].to_vec())
    };
    RangeList { starts, ids }
}

/// Header bit of a list with full 128-bit starts.
const WIDE: u64 = 1 << 32;

/// Appends a range list to the arena as one contiguous run, so a lookup touches one place:
/// a header (the number of starts `n`, and [`WIDE`]), the `n` starts (upper 64 bits each, or
/// two words each, high then low, when wide), then the `n + 1` ids, two to a word.
fn encode(list: &RangeList, arena: &mut Vec<u64>) {
    match &list.starts {
        Starts::Narrow(s) => {
            arena.push(s.len() as u64);
            arena.extend_from_slice(s);
        }
        Starts::Wide(s) => {
            arena.push(s.len() as u64 | WIDE);
            for &x in s {
                arena.extend([(x >> 64) as u64, x as u64]);
            }
        }
    }
    for pair in list.ids.chunks(2) {
        let lo = u64::from(pair[0]);
        let hi = pair.get(1).map_or(0, |&x| u64::from(x));
        arena.push(lo | (hi << 32));
    }
}

/// Words the list at `at` takes (header included).
fn encoded_len(arena: &[u64], at: usize) -> usize {
    let h = arena.get(at).copied().unwrap_or(0);
    let n = (h as u32) as usize;
    let starts = if h & WIDE != 0 { 2 * n } else { n };
    1 + starts + (n + 2) / 2
}

/// The id that the list at `at` gives address `a`, or `NONE` for a damaged list.
#[inline]
fn find(arena: &[u64], at: usize, a: u128) -> u32 {
    let Some(&h) = arena.get(at) else {
        return NONE;
    };
    let n = (h as u32) as usize;
    let body = &arena[at + 1..];
    let (i, ids) = if h & WIDE == 0 {
        let Some(starts) = body.get(..n) else {
            return NONE;
        };
        let k = (a >> 64) as u64;
        // Lists as built (at most 2 * SPLIT + 1 starts): count the starts at or below the key
        // in one branch-free pass, which beats a binary search's mispredicted branches.
        let i = if n <= 64 {
            starts.iter().map(|&x| usize::from(x <= k)).sum()
        } else {
            starts.partition_point(|&x| x <= k)
        };
        (i, &body[n..])
    } else {
        let Some(starts) = body.get(..2 * n) else {
            return NONE;
        };
        let (hi, lo) = ((a >> 64) as u64, a as u64);
        let mut i = 0;
        for pair in starts.chunks_exact(2) {
            i += usize::from((pair[0], pair[1]) <= (hi, lo));
        }
        (i, &body[2 * n..])
    };
    ids.get(i / 2)
        .map_or(NONE, |&w| (w >> (32 * (i % 2))) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv6Net {
        s.parse().expect("test prefix")
    }

    fn look(t: &Lpm6Table<u32>, a: &str) -> Option<(String, u32)> {
        t.lookup(a.parse().expect("test address"))
            .map(|(p, v)| (p.to_string(), *v))
    }

    #[test]
    fn test_empty() {
        let t: Lpm6Table<u32> = Lpm6Table::new();
        assert!(t.is_empty());
        assert_eq!(look(&t, "2001:db8::1"), None);
    }

    #[test]
    fn test_nested_lengths() {
        let mut t = Lpm6Table::new();
        t.insert(net("2000::/3"), 3);
        t.insert(net("2001:db8::/32"), 32);
        t.insert(net("2001:db8:1::/48"), 48);
        t.insert(net("2001:db8:1:2::/64"), 64);
        t.insert(net("2001:db8:1:2::7/128"), 128);
        assert_eq!(look(&t, "2400::1"), Some(("2000::/3".into(), 3)));
        assert_eq!(
            look(&t, "2001:db8:ffff::1"),
            Some(("2001:db8::/32".into(), 32))
        );
        assert_eq!(
            look(&t, "2001:db8:1:3::1"),
            Some(("2001:db8:1::/48".into(), 48))
        );
        assert_eq!(
            look(&t, "2001:db8:1:2::8"),
            Some(("2001:db8:1:2::/64".into(), 64))
        );
        assert_eq!(
            look(&t, "2001:db8:1:2::7"),
            Some(("2001:db8:1:2::7/128".into(), 128))
        );
        assert_eq!(look(&t, "4000::1"), None);
    }

    #[test]
    fn test_default_and_edges() {
        let mut t = Lpm6Table::new();
        t.insert(net("::/0"), 0);
        t.insert(net("::/128"), 1);
        t.insert(net("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"), 2);
        t.insert(net("8000::/1"), 3);
        assert_eq!(look(&t, "::"), Some(("::/128".into(), 1)));
        assert_eq!(look(&t, "::1"), Some(("::/0".into(), 0)));
        assert_eq!(
            look(&t, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            Some(("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128".into(), 2))
        );
        assert_eq!(
            look(&t, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"),
            Some(("8000::/1".into(), 3))
        );
        assert_eq!(t.remove(net("::/0")), Some(0));
        assert_eq!(look(&t, "::1"), None);
    }

    #[test]
    fn test_crowded_word_splits_and_folds_back() {
        let mut t = Lpm6Table::new();
        t.insert(net("2001:db8::/32"), 1);
        let many: Vec<Ipv6Net> = (0..200u32)
            .map(|i| {
                Ipv6Net::new(
                    Ipv6Addr::from((0x2001_0db8u128 << 96) | (u128::from(i) << 80)),
                    48,
                )
                .unwrap()
            })
            .collect();
        for (i, &p) in many.iter().enumerate() {
            t.insert(p, 100 + i as u32);
        }
        assert!(!t.chunks.is_empty(), "200 prefixes under one /16 split it");
        for (i, &p) in many.iter().enumerate() {
            assert_eq!(
                t.lookup(p.network()).map(|(q, v)| (q, *v)),
                Some((p, 100 + i as u32))
            );
        }
        assert_eq!(
            look(&t, "2001:db8:ff00::1"),
            Some(("2001:db8::/32".into(), 1))
        );
        for &p in &many {
            t.remove(p);
        }
        assert_eq!(
            t.chunk_free.len() * CHUNK,
            t.chunks.len(),
            "every chunk is folded back once the word is uniform"
        );
        assert_eq!(look(&t, "2001:db8:5::1"), Some(("2001:db8::/32".into(), 1)));
        assert_eq!(t.remove(net("2001:db8::/32")), Some(1));
        assert_eq!(t.l1.iter().filter(|&&w| w != NONE).count(), 0);
    }

    #[test]
    fn test_arena_compacts_and_answers_stay() {
        // Churn: every insert rebuilds a list, leaving the old one as garbage.
        let mut t = Lpm6Table::new();
        let p = |i: u128| {
            let (a, len) = match i % 3 {
                0 => (i << 80, 48),
                1 => (i << 64, 64),
                _ => ((i << 64) | 1, 128),
            };
            Ipv6Net::new(Ipv6Addr::from((0x2a00u128 << 112) | a), len).unwrap()
        };
        for i in 0..3000u128 {
            t.insert(p(i), i as u32);
            if i % 2 == 1 {
                t.remove(p(i - 1));
            }
        }
        assert!(t.garbage <= t.arena.len() / 2 || t.garbage <= 4096);
        assert!(
            t.arena.len() < 3000 * 8,
            "compacted: {} words",
            t.arena.len()
        );
        for i in 0..3000u128 {
            let want = (i % 2 == 1).then_some(i as u32);
            assert_eq!(t.get(p(i)).copied(), want, "{}", p(i));
            if let Some(v) = want {
                assert_eq!(t.lookup_value(p(i).network()), Some(&v));
            }
        }
    }

    #[test]
    fn test_find_decodes_narrow_and_wide_lists() {
        let narrow = RangeList {
            starts: Starts::Narrow(vec![10, 20]),
            ids: vec![1, 2, 3],
        };
        let wide = RangeList {
            starts: Starts::Wide(vec![5 << 64 | 7]),
            ids: vec![4, 5],
        };
        let mut arena = vec![];
        encode(&narrow, &mut arena);
        let at = arena.len();
        assert_eq!(encoded_len(&arena, 0), at);
        encode(&wide, &mut arena);
        assert_eq!(encoded_len(&arena, at), arena.len() - at);
        let f = |at, hi: u128, lo: u128| find(&arena, at, hi << 64 | lo);
        assert_eq!(
            (f(0, 9, 99), f(0, 10, 0), f(0, 19, 0), f(0, 25, 0)),
            (1, 2, 2, 3)
        );
        assert_eq!((f(at, 5, 6), f(at, 5, 7), f(at, 6, 0)), (4, 5, 5));
        assert_eq!(find(&arena, arena.len() + 3, 0), NONE, "out of range");
    }

    #[test]
    fn test_replace_value_get_and_iter() {
        let mut t = Lpm6Table::new();
        assert_eq!(t.insert(net("2001:db8:5::/48"), 1), None);
        assert_eq!(
            t.insert(net("2001:db8:5::9/48"), 2),
            Some(1),
            "host bits ignored"
        );
        t.insert(net("2001:db8::/32"), 3);
        assert_eq!(t.get(net("2001:db8:5::/48")), Some(&2));
        assert_eq!(t.get(net("2001:db8:5::/49")), None);
        let got: Vec<_> = t.iter().map(|(p, v)| (p.to_string(), *v)).collect();
        assert_eq!(
            got,
            vec![
                ("2001:db8::/32".to_string(), 3),
                ("2001:db8:5::/48".to_string(), 2)
            ]
        );
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn test_ranges_flatten_nested_prefixes() {
        // 2001:db8::/32 holding /48s 1 and 3, and a /64 inside /48 1.
        let base = 0x2001_0db8u128 << 96;
        let p = |x: u128, l: u8, id: u32| (base | x, l, id);
        let inner = [
            p(1 << 80, 48, 10),
            p((1 << 80) | (2 << 64), 64, 11),
            p(3 << 80, 48, 12),
        ];
        let l = ranges(base, base | host_mask(32), 32, 7, &inner);
        let Starts::Narrow(s) = &l.starts else {
            panic!("all /64 or shorter")
        };
        let s: Vec<u128> = s.iter().map(|&x| u128::from(x) << 64).collect();
        assert_eq!(
            s,
            vec![
                base | (1 << 80),
                base | (1 << 80) | (2 << 64),
                base | (1 << 80) | (3 << 64),
                base | (2 << 80),
                base | (3 << 80),
                base | (4 << 80)
            ]
        );
        assert_eq!(l.ids, vec![7, 10, 11, 10, 7, 12, 7]);
    }
}
