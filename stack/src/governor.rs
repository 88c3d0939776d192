//! Adaptive polling: how long the event loop keeps polling after a frame before it sleeps.
//!
//! A sleeping data plane pays a wake-up (tens of microseconds on a virtual machine) for the
//! first frame of every burst; one that polls forever burns a core. The governor, in the
//! spirit of the guest halt-polling governor (`cpuidle-haltpoll`), keeps a poll window that
//! follows the gaps between frames: a frame that came after a gap shorter than the longest
//! window grows the window to cover such gaps (a ping's reply, the next segment of a burst);
//! a gap longer than that (the line went quiet) shrinks it slowly. With no traffic the loop
//! sleeps at once: an idle daemon uses no CPU.

use std::time::{Duration, Instant};

/// Shortest useful window: below this, polling cannot beat a wake-up.
const MIN_WINDOW: Duration = Duration::from_micros(5);

/// The poll window and the time of the last frame.
#[derive(Debug, Clone)]
pub struct PollGovernor {
    window: Duration,
    max: Duration,
    last_frame: Option<Instant>,
}

impl PollGovernor {
    /// A governor whose window never exceeds `max` (zero: never poll).
    pub fn new(max: Duration) -> PollGovernor {
        PollGovernor {
            window: Duration::ZERO,
            max,
            last_frame: None,
        }
    }

    /// The current window.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// True while the loop should poll instead of sleeping at `now`.
    pub fn polling(&self, now: Instant) -> bool {
        self.last_frame
            .is_some_and(|t| now.saturating_duration_since(t) < self.window)
    }

    /// A turn at `now` handled frames: the gap since the previous one adapts the window.
    pub fn frames(&mut self, now: Instant) {
        if let Some(last) = self.last_frame {
            let gap = now.saturating_duration_since(last);
            if gap <= self.max {
                // A window of twice the gap would have caught it without a wake-up.
                self.window = self.window.max(gap * 2).max(MIN_WINDOW).min(self.max);
            } else {
                // The line went quiet: polling would not have helped; decay slowly, so that
                // one pause does not undo what a steady exchange taught.
                self.window = self.window * 7 / 8;
                if self.window < MIN_WINDOW {
                    self.window = Duration::ZERO;
                }
            }
        }
        self.last_frame = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn test_idle_never_polls() {
        let t0 = Instant::now();
        let g = PollGovernor::new(us(100));
        assert!(!g.polling(t0), "no frame yet");
        let mut g = g;
        g.frames(t0);
        assert_eq!(g.window(), Duration::ZERO, "one frame teaches nothing");
        assert!(!g.polling(t0 + us(1)));
    }

    #[test]
    fn test_request_reply_pattern_keeps_a_window_that_catches_the_reply() {
        // A ping every 2 ms whose reply comes 20 µs after the request.
        let mut g = PollGovernor::new(us(100));
        let mut t = Instant::now();
        for _ in 0..50 {
            g.frames(t); // the request
            t += us(20);
            g.frames(t); // the reply
            t += us(1980);
        }
        assert!(g.window() >= us(20), "window {:?}", g.window());
        assert!(g.window() <= us(100));
        g.frames(t);
        assert!(g.polling(t + us(19)), "the reply is awaited polling");
        assert!(!g.polling(t + us(500)), "then the loop sleeps");
    }

    #[test]
    fn test_quiet_line_shrinks_the_window_to_zero() {
        let mut g = PollGovernor::new(us(100));
        let mut t = Instant::now();
        g.frames(t);
        t += us(40);
        g.frames(t);
        assert_eq!(g.window(), us(80));
        for _ in 0..40 {
            t += Duration::from_millis(10);
            g.frames(t);
        }
        assert_eq!(g.window(), Duration::ZERO);
    }

    #[test]
    fn test_zero_max_never_polls() {
        let mut g = PollGovernor::new(Duration::ZERO);
        let t = Instant::now();
        g.frames(t);
        g.frames(t);
        assert!(!g.polling(t));
        assert_eq!(g.window(), Duration::ZERO);
    }
}
