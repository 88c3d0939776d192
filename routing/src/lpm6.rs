//! The IPv6 longest-prefix-match table: a 2^16 directly indexed first level, 2^16-word wide
//! chunks under the crowded /16s, 256-word chunks only where prefixes crowd further, and short
//! sorted range lists everywhere else.
//!
//! IPv6 tables are sparse and deep (mostly /32-/48 and /64, a few /128) and concentrated in a
//! few regional blocks, so neither IPv4's fixed DIR-16-8-8 levels nor a bit-per-level trie
//! fits. Each word of the first level (one /16) and of a chunk (one /`depth`) holds one of:
//!
//! - a route id (or "no route"): every address behind the word has that answer;
//! - a *range list*: at most [`SPLIT`] prefixes lie under the word, flattened into the disjoint
//!   address ranges they make (at most 2k+1), searched by a branch-free count; when every
//!   prefix there is /64 or shorter the range starts are stored as their upper 64 bits;
//! - a *wide chunk* (first level only): more than [`WIDE_SPLIT`] prefixes lie under the /16,
//!   so it is split by the next 16 bits at once, straight down to its /32s;
//! - a *chunk*: more than [`SPLIT`] prefixes lie under the word, so it is split by the next 8
//!   bits.
//!
//! A lookup reads one first-level word, one wide-chunk word in the busy blocks, a chunk word
//! where prefixes crowd further, then one range list (one or two cache lines for the usual
//! one or two prefixes). An update rebuilds only the deepest word (or the few words of one
//! chunk) whose range holds the prefix, from an ordered index of the prefixes, and folds
//! chunks back into a word when they become uniform. The default route (::/0) lives beside
//! the structure, so adding or removing it is O(1).
//!
//! Memory at 200k BGP-like prefixes is about 40 MiB (the wide chunks, 256 KiB each under
//! about fifty busy /16s, are a quarter of it); an empty table takes 256 KiB.
//!
//! The route storage, the ordered index and the table's API are shared with the IPv4 table
//! ([`crate::lpm_core::LpmOf`]); this file holds the IPv6 lookup structure, [`Wide6`].

use std::net::Ipv6Addr;

use ipnet::Ipv6Net;

use crate::lpm_core::{Index, LpmOf, Pool, Structure, NONE};
/// Word tags (top two bits): a range list, a chunk, or a wide chunk. Untagged words are route
/// ids.
const TAG_MASK: u32 = 0b11 << 30;
const RANGES: u32 = 0b10 << 30;
const CHUNK_TAG: u32 = 0b11 << 30;
const WIDE_TAG: u32 = 0b01 << 30;
/// Words in the first level (one per /16).
const L1_SIZE: usize = 1 << 16;
/// Words in a chunk (8 bits of the address).
const CHUNK: usize = 256;
/// Most prefixes a range list holds before its word is split into a chunk.
pub const SPLIT: usize = 8;
/// Words in a wide chunk (16 bits of the address: a /16 split into its /32s).
const WIDE_WORDS: usize = 1 << 16;
/// Most prefixes longer than /16 under one first-level word before that word becomes a wide
/// chunk: where a /16 is this crowded (the registries' busy blocks), one 256 KiB load level
/// replaces two chunk levels on the way to the /32s and /48s that dominate IPv6 tables.
pub const WIDE_SPLIT: usize = 1024;
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
    Wide(usize, usize),
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
pub type Lpm6Table<V> = LpmOf<Wide6, V>;

/// The IPv6 lookup structure: a 2^16 first level, wide chunks, chunks and range lists.
#[derive(Clone)]
pub struct Wide6 {
    l1: Box<[u32]>,
    chunks: Pool<CHUNK>,
    /// Wide chunks (2^16 words each), only under crowded first-level words.
    wide: Pool<WIDE_WORDS>,
    /// Thresholds: [`SPLIT`] and [`WIDE_SPLIT`] unless a test asked for others.
    split: usize,
    wide_split: usize,
    /// Range lists, one after another: see [`encode`].
    arena: Vec<u64>,
    /// Words of `arena` held by lists no word points to any more; compacted when large.
    garbage: usize,
}

impl Default for Wide6 {
    fn default() -> Self {
        Self {
            l1: vec![NONE; L1_SIZE].into_boxed_slice(),
            chunks: Pool::default(),
            wide: Pool::default(),
            split: SPLIT,
            wide_split: WIDE_SPLIT,
            arena: Vec::new(),
            garbage: 0,
        }
    }
}

/// The host bits of a /`len`.
#[inline]
fn host_mask(len: u8) -> u128 {
    u128::MAX.checked_shr(u32::from(len)).unwrap_or(0)
}

impl<V> Lpm6Table<V> {
    /// An empty table that splits words at other thresholds than [`SPLIT`] and
    /// [`WIDE_SPLIT`] (at least 2 and 4): small ones let tests reach every shape with few
    /// prefixes.
    #[doc(hidden)]
    pub fn with_thresholds(split: usize, wide_split: usize) -> Self {
        Self::with_structure(Wide6 {
            split: split.max(2),
            wide_split: wide_split.max(4),
            ..Wide6::default()
        })
    }
}

impl Structure for Wide6 {
    type Key = u128;
    type Net = Ipv6Net;
    type Addr = Ipv6Addr;
    const MAX_ID: u32 = MAX_ID;

    #[inline]
    fn key(addr: Ipv6Addr) -> u128 {
        u128::from(addr)
    }

    #[inline]
    fn parts(prefix: Ipv6Net) -> (Ipv6Net, u128, u8) {
        let p = prefix.trunc();
        (p, u128::from(p.network()), p.prefix_len())
    }

    #[inline]
    fn lookup_id(&self, a: u128) -> u32 {
        let mut w = self.l1[(a >> 112) as usize];
        // The bits that pick a word in the next chunk sit `shift` bits up.
        let mut shift = 104u32;
        if w & TAG_MASK == WIDE_TAG {
            let c = (w & !TAG_MASK) as usize;
            let i = ((a >> 96) & 0xffff) as usize;
            w = self
                .wide
                .words
                .get(c * WIDE_WORDS + i)
                .copied()
                .unwrap_or(NONE);
            shift = 88;
        }
        while w & TAG_MASK == CHUNK_TAG {
            let c = (w & !TAG_MASK) as usize;
            let i = ((a >> (shift & 127)) & 0xff) as usize;
            w = self
                .chunks
                .words
                .get(c * CHUNK + i)
                .copied()
                .unwrap_or(NONE);
            shift = shift.wrapping_sub(8);
        }
        if w & TAG_MASK == RANGES {
            w = find(&self.arena, (w & !TAG_MASK) as usize, a);
        }
        w
    }

    fn inserted(&mut self, index: &Index<u128>, net: u128, len: u8, id: u32) {
        self.update(index, net, len, Some(id), None);
    }

    fn removed(&mut self, index: &Index<u128>, net: u128, len: u8, id: u32) {
        self.update(index, net, len, None, Some(id));
    }

    fn memory_bytes(&self) -> usize {
        L1_SIZE * 4
            + self.chunks.memory_bytes()
            + self.wide.memory_bytes()
            + self.arena.capacity() * 8
    }
}

impl Wide6 {
    fn word(&self, loc: Loc) -> u32 {
        match loc {
            Loc::Root(i) => self.l1[i],
            Loc::Chunk(c, i) => self.chunks.words[c * CHUNK + i],
            Loc::Wide(c, i) => self.wide.words[c * WIDE_WORDS + i],
        }
    }

    fn set_word(&mut self, loc: Loc, w: u32) {
        match loc {
            Loc::Root(i) => self.l1[i] = w,
            Loc::Chunk(c, i) => self.chunks.words[c * CHUNK + i] = w,
            Loc::Wide(c, i) => self.wide.words[c * WIDE_WORDS + i] = w,
        }
    }

    /// Rebuilds the words whose answers a change of `net/len` (`len` ≥ 1) can alter, then
    /// folds chunks that became uniform. `added` is the id of a prefix just added, `removed`
    /// that of one just removed.
    fn update(
        &mut self,
        index: &Index<u128>,
        net: u128,
        len: u8,
        added: Option<u32>,
        removed: Option<u32>,
    ) {
        self.repaint(index, net, len, added, removed);
        if self.garbage > 4096 && self.garbage > self.arena.len() / 4 {
            self.compact();
        }
    }

    /// Copies the live range lists into a new arena and points their words at the copies.
    fn compact(&mut self) {
        let old = std::mem::take(&mut self.arena);
        let live = old.len() - self.garbage;
        let mut arena = Vec::with_capacity(live + live / 4);
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
                WIDE_TAG => {
                    let c = (*w & !TAG_MASK) as usize;
                    for w in self.wide.chunk_mut(c) {
                        match *w & TAG_MASK {
                            RANGES => *w = move_word(*w),
                            CHUNK_TAG => stack.push((*w & !TAG_MASK) as usize),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        while let Some(c) = stack.pop() {
            for w in self.chunks.chunk_mut(c) {
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
    fn repaint(
        &mut self,
        index: &Index<u128>,
        net: u128,
        len: u8,
        added: Option<u32>,
        removed: Option<u32>,
    ) {
        if len <= 16 {
            let first = (net >> 112) as usize;
            let words =
                (first..first + (1usize << (16 - len))).map(|i| (Loc::Root(i), (i as u128) << 112));
            self.paint_span(index, words.collect(), 16, len, added, removed);
            return;
        }
        // Walk down through chunks while the prefix lies inside one word of the next chunk.
        let mut path: Vec<(Loc, u128, u8)> = Vec::new();
        let mut loc = Loc::Root((net >> 112) as usize);
        let mut depth = 16u8;
        loop {
            let w = self.word(loc);
            let base = net & !host_mask(depth);
            let bits = match w & TAG_MASK {
                CHUNK_TAG => 8u8,
                WIDE_TAG => 16,
                _ => {
                    self.rebuild(index, loc, base, depth);
                    break;
                }
            };
            let c = (w & !TAG_MASK) as usize;
            let shift = 128 - u32::from(depth + bits);
            let i = ((net >> shift) & ((1u128 << bits) - 1)) as usize;
            let at = |j: usize| {
                if bits == 8 {
                    Loc::Chunk(c, j)
                } else {
                    Loc::Wide(c, j)
                }
            };
            path.push((loc, base, depth));
            if len > depth + bits {
                loc = at(i);
                depth += bits;
                continue;
            }
            // The prefix spans whole words of this chunk.
            let words = (i..i + (1usize << (depth + bits - len)))
                .map(|j| (at(j), base | ((j as u128) << shift)));
            self.paint_span(index, words.collect(), depth + bits, len, added, removed);
            break;
        }
        // Deepest first: a chunk whose words all give one answer becomes that answer, and one
        // left with few prefixes beneath becomes a range list again (at half the split size,
        // so that a word at the threshold does not flip on every update). A crowded /16
        // becomes a wide chunk, and one left with half that few prefixes an ordinary one.
        // (Every level is checked, up to the first: a /16 may cross the wide threshold
        // whatever happens deeper.)
        while let Some((parent, base, depth)) = path.pop() {
            let w = self.word(parent);
            let c = (w & !TAG_MASK) as usize;
            if w & TAG_MASK == WIDE_TAG {
                let half = self.wide_split / 2;
                if index.under(base, depth).take(half + 1).count() <= half {
                    self.rebuild(index, parent, base, depth);
                }
                break;
            }
            let words = self.chunks.chunk(c);
            let first = words[0];
            let half = self.split / 2;
            if first & TAG_MASK == 0 && words.iter().all(|&w| w == first) {
                self.chunks.release(c);
                self.set_word(parent, first);
            } else if index.under(base, depth).take(half + 1).count() <= half
                || (depth == 16
                    && index.under(base, depth).take(self.wide_split + 1).count() > self.wide_split)
            {
                self.rebuild(index, parent, base, depth);
            }
        }
    }

    /// Brings the words `words` (each a /`depth` at its base) up to date after `len` (at most
    /// `depth`) covering them all was added (`added`) or removed (`removed`). A plain word is
    /// the whole answer for its range, so it needs only a comparison; words with longer
    /// prefixes beneath are rebuilt.
    fn paint_span(
        &mut self,
        index: &Index<u128>,
        words: Vec<(Loc, u128)>,
        depth: u8,
        len: u8,
        added: Option<u32>,
        removed: Option<u32>,
    ) {
        for (loc, base) in words {
            let w = self.word(loc);
            if w & TAG_MASK != 0 {
                self.rebuild(index, loc, base, depth);
            } else if let Some(id) = added {
                let shorter = w == NONE || index.len_of(w) < len;
                if shorter {
                    self.set_word(loc, id);
                }
            } else if removed == Some(w) {
                let cover = index.cover(base, depth);
                self.set_word(loc, cover);
            }
        }
    }

    /// Replaces the word at `loc` (the /`depth` at `base`) with one built from the index.
    fn rebuild(&mut self, index: &Index<u128>, loc: Loc, base: u128, depth: u8) {
        let old = self.word(loc);
        self.free(old);
        let cover = index.cover(base, depth);
        let w = self.build(index, base, depth, cover);
        self.set_word(loc, w);
    }

    /// Builds the word for the /`depth` at `base`, whose shorter prefixes give `cover`.
    fn build(&mut self, index: &Index<u128>, base: u128, depth: u8, cover: u32) -> u32 {
        if depth >= 128 {
            return cover;
        }
        let end = base | host_mask(depth);
        let inner: Vec<(u128, u8, u32)> = index.under(base, depth).collect();
        if inner.is_empty() {
            return cover;
        }
        if inner.len() <= self.split || depth > 120 {
            let list = ranges(base, end, depth, cover, &inner);
            let at = self.arena.len();
            encode(&list, &mut self.arena);
            assert!(
                at <= MAX_ID as usize,
                "IPv6 LPM range lists exceed 2^30 words"
            );
            return RANGES | at as u32;
        }
        // A crowded /16 is split by its next 16 bits at once, any other word by 8.
        let wide = depth == 16 && inner.len() > self.wide_split;
        let (bits, n, tag) = if wide {
            (16u8, WIDE_WORDS, WIDE_TAG)
        } else {
            (8u8, CHUNK, CHUNK_TAG)
        };
        let c = if wide {
            self.wide.alloc(NONE)
        } else {
            self.chunks.alloc(NONE)
        };
        let shift = 128 - u32::from(depth + bits);
        let pick = |a: u128| ((a >> shift) as usize) & (n - 1);
        // Covers of the chunk's words: prefixes of length depth+1..=depth+bits, shortest
        // first; and which words have longer prefixes beneath (only those are built further).
        let mut covers = vec![cover; n];
        let mut deep = vec![false; n];
        let mut short: Vec<&(u128, u8, u32)> = Vec::new();
        for p in &inner {
            if p.1 <= depth + bits {
                short.push(p);
            } else {
                deep[pick(p.0)] = true;
            }
        }
        short.sort_by_key(|&&(_, l, _)| l);
        for &&(net, l, id) in &short {
            let first = pick(net);
            covers[first..first + (1usize << (depth + bits - l))].fill(id);
        }
        for i in 0..n {
            let w = if deep[i] {
                self.build(
                    index,
                    base | ((i as u128) << shift),
                    depth + bits,
                    covers[i],
                )
            } else {
                covers[i]
            };
            let words = if wide {
                &mut self.wide.words
            } else {
                &mut self.chunks.words
            };
            words[c * n + i] = w;
        }
        tag | c as u32
    }

    /// Returns a word's chunks and range lists to their free lists.
    fn free(&mut self, w: u32) {
        match w & TAG_MASK {
            RANGES => self.garbage += encoded_len(&self.arena, (w & !TAG_MASK) as usize),
            tag @ (CHUNK_TAG | WIDE_TAG) => {
                let c = (w & !TAG_MASK) as usize;
                let wide = tag == WIDE_TAG;
                let n = if wide { WIDE_WORDS } else { CHUNK };
                for i in c * n..(c + 1) * n {
                    let child = if wide {
                        self.wide.words[i]
                    } else {
                        self.chunks.words[i]
                    };
                    self.free(child);
                }
                if wide {
                    self.wide.release(c);
                } else {
                    self.chunks.release(c);
                }
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
        assert!(
            !t.s.chunks.words.is_empty(),
            "200 prefixes under one /16 split it"
        );
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
            t.s.chunks.free.len() * CHUNK,
            t.s.chunks.words.len(),
            "every chunk is folded back once the word is uniform"
        );
        assert_eq!(look(&t, "2001:db8:5::1"), Some(("2001:db8::/32".into(), 1)));
        assert_eq!(t.remove(net("2001:db8::/32")), Some(1));
        assert_eq!(t.s.l1.iter().filter(|&&w| w != NONE).count(), 0);
    }

    #[test]
    fn test_crowded_slash16_goes_wide_and_folds_back() {
        let mut t = Lpm6Table::with_thresholds(4, 16);
        t.insert(net("2a00::/16"), 1);
        let many: Vec<Ipv6Net> = (0..40u128)
            .map(|i| Ipv6Net::new(Ipv6Addr::from((0x2a00u128 << 112) | (i << 98)), 40).unwrap())
            .collect();
        for (i, &p) in many.iter().enumerate() {
            t.insert(p, 100 + i as u32);
        }
        assert_eq!(
            t.s.l1[0x2a00] & TAG_MASK,
            WIDE_TAG,
            "40 prefixes under the /16 make it wide"
        );
        for (i, &p) in many.iter().enumerate() {
            assert_eq!(t.lookup_value(p.network()), Some(&(100 + i as u32)));
        }
        assert_eq!(look(&t, "2a00:ffff::1"), Some(("2a00::/16".into(), 1)));
        for &p in &many[..36] {
            t.remove(p);
        }
        assert_ne!(
            t.s.l1[0x2a00] & TAG_MASK,
            WIDE_TAG,
            "4 left: an ordinary word again"
        );
        assert_eq!(t.s.wide.free.len() * WIDE_WORDS, t.s.wide.words.len());
        for (i, &p) in many.iter().enumerate().skip(36) {
            assert_eq!(t.lookup_value(p.network()), Some(&(100 + i as u32)));
        }
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
        assert!(t.s.garbage <= t.s.arena.len() / 4 || t.s.garbage <= 4096);
        assert!(
            t.s.arena.len() < 3000 * 8,
            "compacted: {} words",
            t.s.arena.len()
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
