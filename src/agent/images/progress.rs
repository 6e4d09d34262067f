//! How often a download's progress goes through Raft, and how long a failed image waits
//! before the next try (pure; the clock is passed in). Progress is reported at most once per
//! `MIN_GAP`, and then only when it moved by a whole percent (or `UNKNOWN_STEP` bytes when the
//! server gave no size), so a fast download costs at most ~100 writes and a slow one at most
//! one a second. Owns: `ProgressGate`, `Backoff`. Uses: `model::image`.

use std::time::{Duration, Instant};

use crate::model::image::HostImageStatus;

/// Shortest time between two progress reports of one download.
pub const MIN_GAP: Duration = Duration::from_secs(1);
/// Progress step worth a report when the total size is unknown.
pub const UNKNOWN_STEP: u64 = 8 * 1024 * 1024;

/// The percent `done` is of `total` (0 when the total is unknown), never above 100.
pub fn percent(done: u64, total: u64) -> u8 {
    if total == 0 {
        return 0;
    }
    let p = (u128::from(done) * 100 / u128::from(total)).min(100);
    u8::try_from(p).unwrap_or(100)
}

/// Decides which progress updates are worth a report.
#[derive(Debug, Default)]
pub struct ProgressGate {
    last: Option<(Instant, u8, u64)>,
}

impl ProgressGate {
    /// The status to report now for `done` of `total` bytes (`total` 0: unknown), or `None`.
    /// The first call always reports, so a download shows up at once.
    pub fn next(&mut self, now: Instant, done: u64, total: u64) -> Option<HostImageStatus> {
        let done = if total > 0 { done.min(total) } else { done };
        let pct = percent(done, total);
        let due = match self.last {
            None => true,
            Some((at, last_pct, last_done)) => {
                now.saturating_duration_since(at) >= MIN_GAP
                    && if total > 0 {
                        pct > last_pct
                    } else {
                        done.saturating_sub(last_done) >= UNKNOWN_STEP
                    }
            }
        };
        if !due {
            return None;
        }
        self.last = Some((now, pct, done));
        Some(HostImageStatus::Downloading {
            percent: pct,
            bytes_done: done,
            bytes_total: total,
        })
    }
}

/// Failed tries of one image and when the next may start: 10 s, doubling to 10 minutes.
#[derive(Debug, Default, Clone)]
pub struct Backoff {
    failures: u32,
    retry_at: Option<Instant>,
}

impl Backoff {
    pub const FIRST: Duration = Duration::from_secs(10);
    pub const MAX: Duration = Duration::from_secs(600);

    pub fn failed(&mut self, now: Instant) -> Duration {
        let wait = Self::FIRST
            .saturating_mul(1u32 << self.failures.min(10))
            .min(Self::MAX);
        self.failures = self.failures.saturating_add(1);
        self.retry_at = Some(now + wait);
        wait
    }

    pub fn succeeded(&mut self) {
        *self = Backoff::default();
    }

    /// True if a try may start at `now`.
    pub fn ready(&self, now: Instant) -> bool {
        self.retry_at.is_none_or(|t| now >= t)
    }

    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pct(s: Option<HostImageStatus>) -> Option<u8> {
        match s {
            Some(HostImageStatus::Downloading { percent, .. }) => Some(percent),
            _ => None,
        }
    }

    #[test]
    fn progress_is_reported_at_most_once_a_second_and_on_whole_percents() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut g = ProgressGate::default();
        assert_eq!(
            pct(g.next(t0, 0, 1000)),
            Some(0),
            "the first always reports"
        );
        assert_eq!(g.next(ms(200), 500, 1000), None, "too soon");
        assert_eq!(pct(g.next(ms(1000), 500, 1000)), Some(50));
        assert_eq!(
            g.next(ms(2500), 504, 1000),
            None,
            "not a whole percent more"
        );
        assert_eq!(pct(g.next(ms(2600), 510, 1000)), Some(51));
        assert_eq!(
            g.next(ms(2700), 1000, 1000),
            None,
            "even 100% waits its second"
        );
        assert_eq!(pct(g.next(ms(3600), 1000, 1000)), Some(100));
        // A fast download of 10 GiB in 100 s: no more than one report a second.
        let mut g = ProgressGate::default();
        let total = 10 << 30;
        let reports = (0..=10_000u64)
            .filter_map(|i| g.next(ms(i * 10), total / 10_000 * i, total))
            .count();
        assert!(reports <= 101, "{reports}");
    }

    #[test]
    fn unknown_sizes_report_in_byte_steps() {
        let t0 = Instant::now();
        let mut g = ProgressGate::default();
        assert!(g.next(t0, 0, 0).is_some());
        let later = t0 + Duration::from_secs(5);
        assert!(g.next(later, UNKNOWN_STEP - 1, 0).is_none());
        assert_eq!(
            g.next(later, UNKNOWN_STEP, 0),
            Some(HostImageStatus::Downloading {
                percent: 0,
                bytes_done: UNKNOWN_STEP,
                bytes_total: 0
            })
        );
        assert_eq!(percent(5, 0), 0);
        assert_eq!(percent(u64::MAX, u64::MAX), 100);
        assert_eq!(percent(7, 5), 100);
    }

    #[test]
    fn failures_back_off_doubling_to_a_cap() {
        let t0 = Instant::now();
        let mut b = Backoff::default();
        assert!(b.ready(t0));
        let waits: Vec<u64> = (0..8).map(|_| b.failed(t0).as_secs()).collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 600, 600]);
        assert!(!b.ready(t0 + Duration::from_secs(599)));
        assert!(b.ready(t0 + Duration::from_secs(600)));
        b.succeeded();
        assert!(b.ready(t0));
        assert_eq!(b.failed(t0), Backoff::FIRST);
    }
}
