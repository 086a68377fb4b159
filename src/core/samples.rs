//! Usage samples as the core knows them: one measurement of one VM, checked at the boundary
//! and stored at a fixed resolution.
//!
//! Percentages are kept in hundredths of a point (0.00..=100.00) and network rates in whole
//! bytes per second: that is what is stored, exported and evaluated, so the evaluation over
//! daily aggregates and over raw samples see the very same numbers (`core::usage`).

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::core::domain::InvalidValue;

/// A percentage as stored: hundredths of a point, 0..=10000. Built from a checked percentage,
/// rounded half away from zero (12.345 -> 12.35).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(into = "f64")]
pub struct Hundredths(u16);

impl Hundredths {
    /// 100.00%.
    pub const MAX: Hundredths = Hundredths(10_000);
    pub const ZERO: Hundredths = Hundredths(0);

    /// The stored form of a percentage; an error for anything not a finite number in 0..=100.
    pub fn from_percent(what: &'static str, v: f64) -> Result<Hundredths, InvalidValue> {
        if !v.is_finite() {
            return Err(InvalidValue::new(what, v, "is not a finite number"));
        }
        if !(0.0..=100.0).contains(&v) {
            return Err(InvalidValue::new(what, v, "is outside 0..=100"));
        }
        // In range, so the product is within 0..=10000 and the cast exact.
        Ok(Hundredths((v * 100.0).round() as u16))
    }

    /// From hundredths; `None` above 10000.
    pub fn new(h: u16) -> Option<Hundredths> {
        (h <= 10_000).then_some(Hundredths(h))
    }

    pub fn get(self) -> u16 {
        self.0
    }

    /// As a percentage: 1234 -> 12.34.
    pub fn percent(self) -> f64 {
        f64::from(self.0) / 100.0
    }
}

impl From<Hundredths> for f64 {
    fn from(h: Hundredths) -> f64 {
        h.percent()
    }
}

impl std::fmt::Display for Hundredths {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

/// The highest network rate a sample may carry, in bytes per second: 8 Tbit/s, far above any
/// VM's interfaces, so only a broken counter reaches it.
pub const MAX_RATE_BPS: u64 = 1_000_000_000_000;

/// The most inbound connections a sample may report: far above any server's, so only a broken
/// collector reaches it.
pub const MAX_INBOUND_CONNECTIONS: u32 = 10_000_000;

/// A network rate as stored: whole bytes per second (rounded), at most [`MAX_RATE_BPS`].
pub fn rate_bps(what: &'static str, v: f64) -> Result<u64, InvalidValue> {
    if !v.is_finite() || v < 0.0 {
        return Err(InvalidValue::new(
            what,
            v,
            "is not a rate in bytes per second (a finite number, not negative)",
        ));
    }
    if v > MAX_RATE_BPS as f64 {
        return Err(InvalidValue::new(
            what,
            v,
            "is above 1e12 bytes per second (8 Tbit/s)",
        ));
    }
    Ok(v.round() as u64)
}

/// One measurement of one VM, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sample {
    /// Unix seconds.
    pub ts: i64,
    pub cpu: Hundredths,
    pub mem: Hundredths,
    /// `None`: the VM reported no filesystem.
    pub disk: Option<Hundredths>,
    /// Bytes per second received, averaged over the agent's interval; `None` from agents (and
    /// imports) that do not report it.
    pub net_rx_bps: Option<u64>,
    /// Bytes per second sent; as `net_rx_bps`.
    pub net_tx_bps: Option<u64>,
    /// Inbound TCP connections to listening ports at the instant; `None` where not reported.
    pub inbound_connections: Option<u32>,
}

impl Sample {
    /// A sample of the three percentages only (no network figures).
    pub fn usage(ts: i64, cpu: Hundredths, mem: Hundredths, disk: Option<Hundredths>) -> Sample {
        Sample {
            ts,
            cpu,
            mem,
            disk,
            net_rx_bps: None,
            net_tx_bps: None,
            inbound_connections: None,
        }
    }

    pub fn at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.ts, 0).unwrap_or_default()
    }

    /// The Asia/Shanghai day of the sample: every "day" of the rules is one.
    pub fn day(&self) -> NaiveDate {
        shanghai_day_of(self.ts)
    }

    /// The value of one resource, `None` for a disk not reported.
    pub fn value(&self, resource: crate::core::domain::Resource) -> Option<Hundredths> {
        match resource {
            crate::core::domain::Resource::Cpu => Some(self.cpu),
            crate::core::domain::Resource::Memory => Some(self.mem),
            crate::core::domain::Resource::Disk => self.disk,
        }
    }
}

/// The Asia/Shanghai calendar day of a Unix second (China has had no daylight saving since
/// 1991, so this is a fixed +8 hours).
pub fn shanghai_day_of(ts: i64) -> NaiveDate {
    DateTime::from_timestamp(ts + 8 * 3600, 0)
        .unwrap_or_default()
        .date_naive()
}

/// The first Unix second of an Asia/Shanghai day.
pub fn shanghai_day_start(day: NaiveDate) -> i64 {
    day.and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc()
        .timestamp()
        - 8 * 3600
}

/// One measurement of one VM, ready to store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleRow {
    pub vm_key: i64,
    pub sample: Sample,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_half_away_from_zero_to_hundredths() {
        let h = |v| Hundredths::from_percent("cpu", v).map(Hundredths::get);
        assert_eq!(h(12.345), Ok(1235));
        assert_eq!(h(12.344_999), Ok(1234));
        assert_eq!(h(25.0), Ok(2500));
        assert_eq!(h(100.0), Ok(10_000));
        assert_eq!(h(0.004), Ok(0));
        assert!(h(100.001).is_err() && h(-0.1).is_err() && h(f64::NAN).is_err());
        assert_eq!(
            Hundredths::new(2501).map(|h| h.to_string()),
            Some("25.01".into())
        );
        assert_eq!(Hundredths::new(2501).map(Hundredths::percent), Some(25.01));
        assert_eq!(Hundredths::new(10_001), None);
    }

    #[test]
    fn rates_are_whole_bytes_per_second() {
        assert_eq!(rate_bps("rx", 1250.5), Ok(1251));
        assert_eq!(rate_bps("rx", 0.0), Ok(0));
        assert!(rate_bps("rx", -1.0).is_err());
        assert!(rate_bps("rx", f64::INFINITY).is_err());
        assert!(rate_bps("rx", 2e12).is_err());
    }

    #[test]
    fn shanghai_days_are_eight_hours_ahead_of_utc() {
        let day = NaiveDate::from_ymd_opt(2025, 9, 26).expect("date");
        let start = shanghai_day_start(day);
        assert_eq!(shanghai_day_of(start), day);
        assert_eq!(shanghai_day_of(start - 1), day.pred_opt().expect("date"));
        assert_eq!(shanghai_day_of(start + 86_399), day);
        // 2025-09-26 00:00 +08:00 is 2025-09-25 16:00 UTC.
        assert_eq!(start, 1_758_816_000);
    }
}
