//! The bookkeeping both reassemblers share (IPv4: [`super::Reassembler`], IPv6:
//! [`super::Reassembler6`]): a fixed set of slots, one datagram in progress each, keyed by
//! what identifies a datagram in its family, with a bitmap of the 8-byte blocks that arrived
//! (RFC 815's idea of tracking holes, as bits). A slot's datagram is given up after the
//! family's timeout, and the oldest one for a new datagram when every slot is busy. Buffers
//! are allocated once; where a fragment's bytes go in a slot's buffer is the family's
//! business.

use std::time::{Duration, Instant};

/// One datagram in progress.
#[derive(Debug)]
pub(super) struct Slot<K> {
    key: Option<K>,
    started: Instant,
    /// The datagram's bytes, laid out as the family wants.
    pub buf: Box<[u8]>,
    /// Length of the headers the first fragment brought (0: it has not arrived yet).
    pub head: usize,
    /// Length of the fragmentable part, once the last fragment arrived.
    pub total: Option<usize>,
    /// One bit per 8-byte block of the fragmentable part that arrived.
    have: Box<[u64]>,
}

impl<K: Copy + Eq> Slot<K> {
    fn new(now: Instant, buf_len: usize, max: usize) -> Slot<K> {
        Slot {
            key: None,
            started: now,
            buf: vec![0; buf_len].into_boxed_slice(),
            head: 0,
            total: None,
            have: vec![0; max.div_ceil(8).div_ceil(64)].into_boxed_slice(),
        }
    }

    /// Gives the slot to `key` (or frees it with `None`), forgetting what arrived.
    pub fn reset(&mut self, key: Option<K>, now: Instant) {
        self.key = key;
        self.started = now;
        self.head = 0;
        self.total = None;
        self.have.fill(0);
    }

    /// Frees the slot once its datagram is handed on.
    pub fn finish(&mut self) {
        self.key = None;
    }

    fn has(&self, b: usize) -> bool {
        self.have
            .get(b / 64)
            .is_some_and(|w| w & (1 << (b % 64)) != 0)
    }

    /// True when some byte of `offset..end` arrived already.
    pub fn overlaps(&self, offset: usize, end: usize) -> bool {
        (offset / 8..end.div_ceil(8)).any(|b| self.has(b))
    }

    /// Records that the bytes `offset..end` arrived.
    pub fn mark(&mut self, offset: usize, end: usize) {
        for b in offset / 8..end.div_ceil(8) {
            if let Some(w) = self.have.get_mut(b / 64) {
                *w |= 1 << (b % 64);
            }
        }
    }

    /// Records the last fragment's end: false (the datagram is given up, the slot freed) when
    /// an earlier "last" fragment said another length.
    pub fn set_total(&mut self, end: usize, now: Instant) -> bool {
        if self.total.is_some_and(|t| t != end) {
            self.reset(None, now);
            return false;
        }
        self.total = Some(end);
        true
    }

    /// True when the first fragment and every block up to the last fragment's end arrived.
    pub fn complete(&self) -> bool {
        let Some(total) = self.total else {
            return false;
        };
        self.head > 0 && (0..total.div_ceil(8)).all(|b| self.has(b))
    }
}

/// The slots of one reassembler (the default has none: a placeholder that takes nothing).
#[derive(Debug)]
pub(super) struct Slots<K> {
    slots: Vec<Slot<K>>,
    timeout: Duration,
}

impl<K> Default for Slots<K> {
    fn default() -> Self {
        Slots {
            slots: Vec::new(),
            timeout: Duration::ZERO,
        }
    }
}

impl<K: Copy + Eq> Slots<K> {
    /// `count` slots of `buf_len` bytes each, for fragmentable parts of up to
    /// `max` bytes, each datagram given up `timeout` after its first fragment.
    pub fn new(count: usize, buf_len: usize, max: usize, timeout: Duration, now: Instant) -> Self {
        Slots {
            slots: (0..count).map(|_| Slot::new(now, buf_len, max)).collect(),
            timeout,
        }
    }

    /// The slot of datagram `key` at time `now`: its own if it is in progress, else a free
    /// one, else the oldest datagram's (given up). Datagrams past the timeout are given up
    /// first. None only when there are no slots.
    pub fn slot(&mut self, key: K, now: Instant) -> Option<&mut Slot<K>> {
        for s in &mut self.slots {
            if s.key.is_some() && now.saturating_duration_since(s.started) > self.timeout {
                s.reset(None, now);
            }
        }
        if let Some(i) = self.slots.iter().position(|s| s.key == Some(key)) {
            return self.slots.get_mut(i);
        }
        let s = self
            .slots
            .iter_mut()
            .min_by_key(|s| (s.key.is_some(), s.started))?;
        s.reset(Some(key), now);
        Some(s)
    }
}
