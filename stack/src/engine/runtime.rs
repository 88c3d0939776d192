//! Per-stage cost of the data plane, in the spirit of VPP's `show runtime`: for each stage of a
//! turn, how often it ran, how many packets it handled and how long it took. Stages are timed
//! per batch, not per packet: two clock reads per stage call (the only clock reads in the
//! engine, for measurement only; no decision depends on them).

use std::time::Instant;

/// A stage of [`super::Engine::turn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Reading a batch from a port (`Port::recv`).
    PortRecv,
    /// Handling a batch's frames: ingress, ARP, forwarding, local delivery, egress.
    Handle,
    /// Giving a batch's slots back to the port (`Port::release`).
    PortRelease,
    /// smoltcp, and routing the packets the stack's own endpoint sent.
    Endpoint,
    /// The neighbour table's retries and expiries.
    Neighbors,
    /// Handing the turn's sends to the wire (`Port::flush`).
    PortFlush,
    /// Not a stage but a count within [`Stage::Endpoint`]: the stack's own TCP super-frames
    /// sent from smoltcp's socket buffer with a gathering write, without a copy (calls:
    /// frames, packets: the segments they carry; not timed).
    Gather,
}

impl Stage {
    /// Every stage, in the order a turn runs them.
    pub const ALL: [Stage; 7] = [
        Stage::PortRecv,
        Stage::Handle,
        Stage::PortRelease,
        Stage::Endpoint,
        Stage::Neighbors,
        Stage::PortFlush,
        Stage::Gather,
    ];

    /// Its name in listings.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::PortRecv => "port-recv",
            Stage::Handle => "handle",
            Stage::PortRelease => "port-release",
            Stage::Endpoint => "endpoint",
            Stage::Neighbors => "neighbors",
            Stage::PortFlush => "port-flush",
            Stage::Gather => "endpoint-gather",
        }
    }
}

/// One stage's totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StageStats {
    /// Times it ran.
    pub calls: u64,
    /// Packets it handled.
    pub packets: u64,
    /// Nanoseconds it took.
    pub nanos: u64,
}

/// Every stage's totals.
#[derive(Debug, Clone, Default)]
pub struct Runtime {
    stages: [StageStats; Stage::ALL.len()],
}

impl Runtime {
    /// Counts a call of `stage` that handled `packets` and began at `since`; returns now, the
    /// start of what follows.
    #[inline]
    pub(crate) fn add(&mut self, stage: Stage, packets: usize, since: Instant) -> Instant {
        let now = Instant::now();
        if let Some(s) = self.stages.get_mut(stage as usize) {
            s.calls += 1;
            s.packets += packets as u64;
            s.nanos += now.saturating_duration_since(since).as_nanos() as u64;
        }
        now
    }

    /// Counts a super-frame of `segments` segments sent with a gathering write
    /// ([`Stage::Gather`]).
    #[inline]
    pub(crate) fn add_gathered(&mut self, segments: usize) {
        if let Some(s) = self.stages.get_mut(Stage::Gather as usize) {
            s.calls += 1;
            s.packets += segments as u64;
        }
    }

    /// The totals, by stage, in [`Stage::ALL`]'s order.
    pub fn stages(&self) -> impl Iterator<Item = (Stage, StageStats)> + '_ {
        Stage::ALL.iter().zip(self.stages).map(|(s, t)| (*s, t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_add() {
        let mut r = Runtime::default();
        let t0 = Instant::now();
        let t1 = r.add(Stage::Handle, 32, t0);
        r.add(Stage::Handle, 8, t1);
        let (stage, h) = r.stages().nth(1).unwrap();
        assert_eq!(stage, Stage::Handle);
        assert_eq!((h.calls, h.packets), (2, 40));
        assert_eq!(r.stages().next().unwrap().1, StageStats::default());
    }
}
