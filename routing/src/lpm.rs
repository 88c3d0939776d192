//! The longest-prefix-match table: a DIR-16-8-8 multibit trie with incremental updates.
//!
//! Lookups read at most three `u32` words: one in a directly indexed 2^16 first level (256 KiB),
//! then, only where longer prefixes exist, one in a 256-entry chunk per /16 and one in a
//! 256-entry chunk per /24. Each word is either "no route", the id of the longest prefix that
//! covers every address behind it (prefix expansion), or a pointer to a child chunk. Chunks are
//! created when the first longer prefix lands under them and freed when the last one leaves, so
//! memory follows the table's contents. The default route (/0) lives beside the trie instead of
//! being expanded into every word, which keeps adding or removing it O(1).
//!
//! The route storage, the ordered index and the table's API are shared with the IPv6 table
//! ([`crate::lpm_core::LpmOf`]); this file holds the IPv4 lookup structure, [`Dir16`].

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::lpm_core::{Index, LpmOf, Pool, Structure, NONE};

/// Marks a word that points to a child chunk rather than holding a route id.
const CHILD: u32 = 1 << 31;
const L1_SIZE: usize = 1 << 16;
const CHUNK: usize = 256;

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
pub type LpmTable<V> = LpmOf<Dir16, V>;

/// The IPv4 lookup structure: a DIR-16-8-8 multibit trie (256 KiB for the first level).
#[derive(Clone)]
pub struct Dir16 {
    l1: Box<[u32; L1_SIZE]>,
    l2: Pool<CHUNK>,
    l3: Pool<CHUNK>,
    /// Per chunk: how many prefixes longer than the chunk's parent level live under it.
    l2_count: Vec<u32>,
    l3_count: Vec<u32>,
}

impl Default for Dir16 {
    fn default() -> Self {
        let l1: Box<[u32]> = vec![NONE; L1_SIZE].into_boxed_slice();
        let l1: Box<[u32; L1_SIZE]> = match l1.try_into() {
            Ok(b) => b,
            Err(_) => unreachable!("the vector has exactly L1_SIZE words"),
        };
        Self {
            l1,
            l2: Pool::default(),
            l3: Pool::default(),
            l2_count: Vec::new(),
            l3_count: Vec::new(),
        }
    }
}

impl Structure for Dir16 {
    type Key = u32;
    type Net = Ipv4Net;
    type Addr = Ipv4Addr;
    const MAX_ID: u32 = CHILD - 1;

    #[inline]
    fn key(addr: Ipv4Addr) -> u32 {
        u32::from(addr)
    }

    #[inline]
    fn parts(prefix: Ipv4Net) -> (Ipv4Net, u32, u8) {
        let p = prefix.trunc();
        (p, u32::from(p.network()), p.prefix_len())
    }

    /// Three dependent loads at most.
    #[inline]
    fn lookup_id(&self, addr: u32) -> u32 {
        let mut e = self.l1[(addr >> 16) as usize];
        if e & CHILD != 0 {
            e = self.l2.words[(((e & !CHILD) as usize) << 8) | ((addr >> 8) & 0xff) as usize];
            if e & CHILD != 0 {
                e = self.l3.words[(((e & !CHILD) as usize) << 8) | (addr & 0xff) as usize];
            }
        }
        e
    }

    fn inserted(&mut self, index: &Index<u32>, addr: u32, len: u8, id: u32) {
        self.paint_insert(addr, len, id, index.lens());
    }

    fn removed(&mut self, index: &Index<u32>, addr: u32, len: u8, id: u32) {
        let cover = index.cover(addr, len - 1);
        self.paint_remove(addr, len, id, cover);
    }

    fn memory_bytes(&self) -> usize {
        L1_SIZE * 4
            + self.l2.memory_bytes()
            + self.l3.memory_bytes()
            + (self.l2_count.capacity() + self.l3_count.capacity()) * 4
    }
}

/// Takes a chunk from `pool` filled with `fill`, with its prefix count at 0.
fn alloc_chunk(pool: &mut Pool<CHUNK>, counts: &mut Vec<u32>, fill: u32) -> usize {
    let c = pool.alloc(fill);
    if counts.len() <= c {
        counts.resize(c + 1, 0);
    }
    counts[c] = 0;
    c
}

impl Dir16 {
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
        let c = alloc_chunk(&mut self.l2, &mut self.l2_count, e);
        self.l1[slot] = CHILD | c as u32;
        c
    }

    /// The level-3 chunk under the /24 of `addr` inside level-2 chunk `c2`.
    fn l3_chunk(&mut self, c2: usize, addr: u32) -> usize {
        let slot = c2 * CHUNK + ((addr >> 8) & 0xff) as usize;
        let e = self.l2.words[slot];
        if e & CHILD != 0 {
            return (e & !CHILD) as usize;
        }
        let c = alloc_chunk(&mut self.l3, &mut self.l3_count, e);
        self.l2.words[slot] = CHILD | c as u32;
        c
    }

    fn paint_insert(&mut self, addr: u32, len: u8, id: u32, lens: &[u8]) {
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
        let (l1, l2, l3) = (&mut self.l1[..], &mut self.l2.words, &mut self.l3.words);
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
            let (l2, l3) = (&mut self.l2.words, &mut self.l3.words);
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
            let l3 = &mut self.l3.words;
            let mut in_l3 =
                |c: usize| replace(&mut l3[c * CHUNK..(c + 1) * CHUNK], id, cover, |_| {});
            replace(
                &mut self.l2.words[c2 * CHUNK + s..c2 * CHUNK + e],
                id,
                cover,
                &mut in_l3,
            );
        } else {
            let l2_slot = c2 * CHUNK + ((addr >> 8) & 0xff) as usize;
            let e2 = self.l2.words[l2_slot];
            if e2 & CHILD == 0 {
                return;
            }
            let c3 = (e2 & !CHILD) as usize;
            let (s, e) = Self::span(addr, len, 24, 8);
            replace(
                &mut self.l3.words[c3 * CHUNK + s..c3 * CHUNK + e],
                id,
                cover,
                |_| {},
            );
            self.l3_count[c3] -= 1;
            if self.l3_count[c3] == 0 {
                // No prefix longer than /24 is left here: every word now holds the same cover.
                self.l2.words[l2_slot] = self.l3.words[c3 * CHUNK];
                self.l3.release(c3);
            }
        }
        self.l2_count[c2] -= 1;
        if self.l2_count[c2] == 0 {
            self.l1[l1_slot] = self.l2.words[c2 * CHUNK];
            self.l2.release(c2);
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
        assert_eq!(t.s.l2_count.iter().sum::<u32>(), 2);
        assert_eq!(t.remove(net("198.18.1.7/32")), Some(32));
        assert_eq!(look(&t, "198.18.1.7"), Some(("198.18.1.0/24".into(), 24)));
        assert_eq!(t.s.l3.free.len(), 1, "the /24's chunk is freed");
        assert_eq!(t.remove(net("198.18.1.0/24")), Some(24));
        assert_eq!(look(&t, "198.18.1.7"), Some(("198.18.0.0/16".into(), 16)));
        assert_eq!(t.s.l2.free.len(), 1, "the /16's chunk is freed");
        assert_eq!(
            t.s.l1[(u32::from(Ipv4Addr::new(198, 18, 0, 0)) >> 16) as usize] & CHILD,
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
        assert_eq!(t.s.l3.words.len(), CHUNK);
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
