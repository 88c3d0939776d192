//! Per-vmknic counters: packets and bytes each way, and drops by reason.

use super::DropReason;

/// Counters of one vmknic. Plain integers: only the data-plane thread writes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames received from the wire.
    pub rx_packets: u64,
    /// Bytes received from the wire.
    pub rx_bytes: u64,
    /// Frames sent to the wire.
    pub tx_packets: u64,
    /// Bytes sent to the wire.
    pub tx_bytes: u64,
    /// Packets forwarded out of this vmknic.
    pub forwarded: u64,
    /// Packets delivered to the local endpoint.
    pub delivered: u64,
    /// ICMP errors sent because of packets received here.
    pub icmp_errors: u64,
    /// TCP super-frames forwarded out of this vmknic whole (offloads).
    pub gso_forwarded: u64,
    /// TCP super-frames received here (delivered) or sent out of here (forwarded) that the
    /// daemon had to cut into segments itself.
    pub gso_segmented: u64,
    drops: [u64; DropReason::ALL.len()],
    /// Drops counted so far, and the last one's reason (the capture's drop point).
    drop_seq: u64,
    last_drop: Option<DropReason>,
    /// `drop_seq` when a drop was last captured where it happened.
    captured_seq: u64,
}

impl Counters {
    /// Counts one dropped packet.
    #[inline]
    pub fn drop(&mut self, reason: impl Into<DropReason>) {
        let reason = reason.into();
        if let Some(c) = self.drops.get_mut(reason.index()) {
            *c += 1;
        }
        self.drop_seq += 1;
        self.last_drop = Some(reason);
    }

    /// Counts `n` packets dropped for `reason` (what a data-plane worker counted).
    pub fn add_drops(&mut self, reason: DropReason, n: u64) {
        if n == 0 {
            return;
        }
        if let Some(c) = self.drops.get_mut(reason.index()) {
            *c += n;
        }
        self.drop_seq += n;
        self.last_drop = Some(reason);
    }

    /// Drops counted so far (all reasons).
    pub fn drop_seq(&self) -> u64 {
        self.drop_seq
    }

    /// Notes that the last drop counted was captured where it happened.
    pub fn note_drop_captured(&mut self) {
        self.captured_seq = self.drop_seq;
    }

    /// True when the last drop counted was captured where it happened.
    pub fn last_drop_captured(&self) -> bool {
        self.drop_seq > 0 && self.captured_seq == self.drop_seq
    }

    /// The reason of the last drop counted.
    pub fn last_drop(&self) -> Option<DropReason> {
        self.last_drop
    }

    /// Drops counted for `reason`.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops.get(reason.index()).copied().unwrap_or(0)
    }

    /// All drops.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// The non-zero drop counters, by reason, in [`DropReason::ALL`]'s order.
    pub fn nonzero_drops(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .iter()
            .map(|r| (*r, self.drops(*r)))
            .filter(|(_, n)| *n > 0)
    }
}
