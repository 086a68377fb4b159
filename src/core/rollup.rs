//! Daily rollups of samples: what a year of usage is summarised into once the raw samples are
//! gone (sums, maxima, the day's exact CPU p95, and 1-point histograms for yearly percentiles).
//!
//! Architecture Invariant: pure; the store reads and writes the rows.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::NaiveDate;
use chrono_tz::Asia::Shanghai;

use crate::core::rules::Percentile;
use crate::core::rules::evaluate::SamplePoint;

/// Counts of values in 1-point buckets: bucket `b` holds values in `[b, b+1)`, bucket 100 holds 100.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram([u32; 101]);

impl Default for Histogram {
    fn default() -> Self {
        Histogram([0; 101])
    }
}

impl Histogram {
    pub fn add(&mut self, v: f64) {
        let b = v.clamp(0.0, 100.0).floor() as usize;
        self.0[b.min(100)] += 1;
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a += b;
        }
    }

    pub fn count(&self) -> u64 {
        self.0.iter().map(|&c| u64::from(c)).sum()
    }

    /// The nearest-rank percentile, as the middle of its bucket (within half a point of the
    /// raw samples' value); `None` when empty.
    pub fn percentile(&self, p: Percentile) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = p.rank(n as usize) as u64;
        let mut cumulative = 0;
        for (b, &c) in self.0.iter().enumerate() {
            cumulative += u64::from(c);
            if cumulative >= rank {
                return Some(if b == 100 { 100.0 } else { b as f64 + 0.5 });
            }
        }
        None
    }

    /// Sparse text form: `bucket:count` pairs joined by `,` (empty buckets left out).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        for (b, &c) in self.0.iter().enumerate().filter(|(_, c)| **c > 0) {
            if !out.is_empty() {
                out.push(',');
            }
            let _ = write!(out, "{b}:{c}");
        }
        out
    }

    pub fn decode(text: &str) -> Result<Histogram, String> {
        let mut h = Histogram::default();
        for pair in text.split(',').filter(|p| !p.is_empty()) {
            let (b, c) = pair
                .split_once(':')
                .ok_or_else(|| format!("histogram entry {pair:?} is not bucket:count"))?;
            let b: usize = b.parse().map_err(|_| format!("histogram bucket {b:?}"))?;
            let c: u32 = c.parse().map_err(|_| format!("histogram count {c:?}"))?;
            *h.0.get_mut(b)
                .ok_or_else(|| format!("histogram bucket {b} > 100"))? += c;
        }
        Ok(h)
    }
}

/// One VM's day.
#[derive(Debug, Clone, PartialEq)]
pub struct DayRollup {
    pub day: NaiveDate,
    pub samples: u32,
    pub cpu_sum: f64,
    pub cpu_max: f64,
    pub cpu_p95: f64,
    pub cpu_hist: Histogram,
    pub mem_sum: f64,
    pub mem_max: f64,
    pub mem_hist: Histogram,
    pub disk_samples: u32,
    pub disk_sum: f64,
    pub disk_max: f64,
    pub disk_last: Option<f64>,
    pub disk_hist: Histogram,
}

pub const P95: Percentile = Percentile::P95;

/// Rolls samples (in any order) up into Asia/Shanghai days.
pub fn roll_up(samples: &[SamplePoint]) -> Vec<DayRollup> {
    let mut by_day: BTreeMap<NaiveDate, Vec<&SamplePoint>> = BTreeMap::new();
    for s in samples {
        by_day
            .entry(s.at.with_timezone(&Shanghai).date_naive())
            .or_default()
            .push(s);
    }
    by_day
        .into_iter()
        .map(|(day, mut points)| {
            points.sort_by_key(|s| s.at);
            let mut r = DayRollup {
                day,
                samples: points.len() as u32,
                cpu_sum: 0.0,
                cpu_max: 0.0,
                cpu_p95: 0.0,
                cpu_hist: Histogram::default(),
                mem_sum: 0.0,
                mem_max: 0.0,
                mem_hist: Histogram::default(),
                disk_samples: 0,
                disk_sum: 0.0,
                disk_max: 0.0,
                disk_last: None,
                disk_hist: Histogram::default(),
            };
            let mut cpu: Vec<f64> = Vec::with_capacity(points.len());
            for s in &points {
                cpu.push(s.cpu);
                r.cpu_sum += s.cpu;
                r.cpu_max = r.cpu_max.max(s.cpu);
                r.cpu_hist.add(s.cpu);
                r.mem_sum += s.mem;
                r.mem_max = r.mem_max.max(s.mem);
                r.mem_hist.add(s.mem);
                if let Some(d) = s.disk {
                    r.disk_samples += 1;
                    r.disk_sum += d;
                    r.disk_max = r.disk_max.max(d);
                    r.disk_last = Some(d);
                    r.disk_hist.add(d);
                }
            }
            cpu.sort_by(f64::total_cmp);
            r.cpu_p95 = cpu.get(P95.rank(cpu.len()) - 1).copied().unwrap_or(0.0);
            r
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn histogram_percentiles_are_within_half_a_point_and_round_trip() {
        let mut h = Histogram::default();
        let values: Vec<f64> = (0..1000).map(|i| f64::from(i) / 10.0).collect();
        for v in &values {
            h.add(*v);
        }
        h.add(100.0);
        let raw_p95 = {
            let mut v = values.clone();
            v.push(100.0);
            v.sort_by(f64::total_cmp);
            v[P95.rank(v.len()) - 1]
        };
        let est = h.percentile(P95).expect("p95");
        assert!((est - raw_p95).abs() <= 0.5, "{est} vs {raw_p95}");
        assert_eq!(Histogram::decode(&h.encode()).expect("decode"), h);
        assert!(Histogram::decode("5:1,x").is_err());
        assert!(Histogram::decode("101:1").is_err());
    }

    #[test]
    fn days_are_shanghai_days_with_exact_daily_p95() {
        let at = |h| {
            Utc.with_ymd_and_hms(2025, 3, 1, h, 0, 0)
                .single()
                .expect("t")
        };
        // 15:00 UTC on 03-01 is 23:00 Shanghai; 17:00 UTC is 01:00 on 03-02.
        let s = [
            SamplePoint {
                at: at(15),
                cpu: 10.0,
                mem: 20.0,
                disk: Some(30.0),
            },
            SamplePoint {
                at: at(14),
                cpu: 30.0,
                mem: 40.0,
                disk: Some(31.0),
            },
            SamplePoint {
                at: at(17),
                cpu: 50.0,
                mem: 60.0,
                disk: None,
            },
        ];
        let days = roll_up(&s);
        assert_eq!(days.len(), 2);
        assert_eq!(days[0].day, NaiveDate::from_ymd_opt(2025, 3, 1).expect("d"));
        assert_eq!(
            (days[0].samples, days[0].cpu_p95, days[0].mem_max),
            (2, 30.0, 40.0)
        );
        assert_eq!(
            days[0].disk_last,
            Some(30.0),
            "the latest sample of the day"
        );
        assert_eq!((days[1].disk_samples, days[1].disk_last), (0, None));
    }
}
