//! Per-kind log rate limiting, so a persistent fault (a dead server, an unreadable file) produces
//! one log line per period instead of one per collection or retry.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Default period: at most one line per kind per minute.
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(60);

/// Decides whether a log line of a given kind may be written now.
///
/// Callers log only when [`LogLimiter::allow`] returns `Some`, and include the returned count of
/// suppressed lines so the reader knows how often the fault really happened.
#[derive(Debug)]
pub struct LogLimiter {
    period: Duration,
    kinds: HashMap<&'static str, Slot>,
}

#[derive(Debug)]
struct Slot {
    last_logged: Instant,
    suppressed: u64,
}

impl LogLimiter {
    pub fn new(period: Duration) -> Self {
        Self {
            period,
            kinds: HashMap::new(),
        }
    }

    /// `Some(suppressed)` if a line of `kind` may be logged now (with the number of lines of that
    /// kind suppressed since the last one), `None` if it must be dropped.
    pub fn allow(&mut self, kind: &'static str) -> Option<u64> {
        self.allow_at(kind, Instant::now())
    }

    fn allow_at(&mut self, kind: &'static str, now: Instant) -> Option<u64> {
        match self.kinds.get_mut(kind) {
            Some(slot) if now.saturating_duration_since(slot.last_logged) < self.period => {
                slot.suppressed += 1;
                None
            }
            Some(slot) => {
                let suppressed = std::mem::take(&mut slot.suppressed);
                slot.last_logged = now;
                Some(suppressed)
            }
            None => {
                self.kinds.insert(
                    kind,
                    Slot {
                        last_logged: now,
                        suppressed: 0,
                    },
                );
                Some(0)
            }
        }
    }
}

impl Default for LogLimiter {
    fn default() -> Self {
        Self::new(DEFAULT_PERIOD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_once_per_period_per_kind_and_counts_suppressed() {
        let mut l = LogLimiter::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(l.allow_at("a", t0), Some(0));
        assert_eq!(l.allow_at("a", t0 + Duration::from_secs(1)), None);
        assert_eq!(l.allow_at("a", t0 + Duration::from_secs(59)), None);
        // Another kind has its own budget.
        assert_eq!(l.allow_at("b", t0 + Duration::from_secs(2)), Some(0));
        assert_eq!(l.allow_at("a", t0 + Duration::from_secs(60)), Some(2));
        assert_eq!(l.allow_at("a", t0 + Duration::from_secs(61)), None);
    }
}
