//! Pure evaluation: one VM's samples in, one finding per resource out.
//!
//! This is the reference evaluator over raw samples; `core::usage::window` gives the same
//! findings from daily aggregates (a property test holds them equal). Both compute on the
//! stored hundredths, so a mean or a percentile is the same number either way.
//!
//! Architecture Invariant: no IO, no clock. The evaluation instant is an argument, so the same
//! samples and rules always give the same findings.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::Serialize;

use super::{Aggregate, ResourceRule, ResourceRules, Statistic, Window};
use crate::core::domain::{Resource, Verdict};
use crate::core::samples::Sample;

/// The result for one resource of one VM, with the evidence that produced it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub resource: Resource,
    pub verdict: Verdict,
    /// The statistic's value; `None` with `insufficient_data`.
    pub value: Option<f64>,
    /// The threshold the verdict rests on: the downsize threshold for `downsize`, the expansion
    /// threshold for `expand`; for `ok`, the nearer of the two.
    pub threshold: Option<f64>,
    /// The comparison that decided, e.g. "<= 25"; for `ok` the comparison of `threshold`.
    pub comparison: Option<String>,
    pub statistic: String,
    /// Samples of this resource inside the window.
    pub samples: usize,
    /// Distinct Asia/Shanghai days with samples inside the window.
    pub days_with_samples: usize,
}

/// The window `(at - days, at]` in UTC instants.
pub fn window_bounds(window: Window, at: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    (at - TimeDelta::days(i64::from(window.days)), at)
}

/// Evaluates one VM. `samples` may be in any order and may include samples outside the window
/// (they are ignored).
pub fn evaluate_vm(
    rules: &ResourceRules,
    window: Window,
    at: DateTime<Utc>,
    samples: &[Sample],
) -> [Finding; 3] {
    let (start, end) = window_bounds(window, at);
    let (start, end) = (start.timestamp(), end.timestamp());
    let mut inside: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.ts > start && s.ts <= end)
        .collect();
    inside.sort_by_key(|s| s.ts);
    let days = inside
        .iter()
        .map(|s| s.day())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let enough = days >= window.min_days_with_samples as usize;

    Resource::ALL.map(|resource| {
        let series: Vec<(i64, u16)> = inside
            .iter()
            .filter_map(|s| s.value(resource).map(|v| (s.ts, v.get())))
            .collect();
        let rule = rules.get(resource);
        let value = if enough {
            compute(rule.statistic, &series)
        } else {
            None
        };
        judge(resource, rule, value, series.len(), days)
    })
}

/// The finding of one resource from its statistic's value (`None`: insufficient data).
pub(crate) fn judge(
    resource: Resource,
    rule: &ResourceRule,
    value: Option<f64>,
    samples: usize,
    days: usize,
) -> Finding {
    let statistic = rule.statistic.to_string();
    let Some(v) = value else {
        return Finding {
            resource,
            verdict: Verdict::InsufficientData,
            value: None,
            threshold: None,
            comparison: None,
            statistic,
            samples,
            days_with_samples: days,
        };
    };
    let (verdict, deciding) = if rule.downsize.matches(v) {
        (Verdict::Downsize, rule.downsize)
    } else if rule.expand.matches(v) {
        (Verdict::Expand, rule.expand)
    } else if (v - rule.downsize.value()).abs() <= (rule.expand.value() - v).abs() {
        (Verdict::Ok, rule.downsize)
    } else {
        (Verdict::Ok, rule.expand)
    };
    Finding {
        resource,
        verdict,
        value: Some(v),
        threshold: Some(deciding.value()),
        comparison: Some(deciding.to_string()),
        statistic,
        samples,
        days_with_samples: days,
    }
}

/// The statistic over a time-ordered series of (instant, hundredths); `None` for an empty one.
fn compute(statistic: Statistic, series: &[(i64, u16)]) -> Option<f64> {
    match statistic {
        Statistic::Latest => series.last().map(|&(_, v)| f64::from(v) / 100.0),
        Statistic::Samples(agg) => {
            aggregate_hundredths(agg, series.iter().map(|&(_, v)| v).collect())
        }
        Statistic::DailyPeak(agg) => {
            let mut peaks: BTreeMap<NaiveDate, u16> = BTreeMap::new();
            for &(ts, v) in series {
                let peak = peaks
                    .entry(crate::core::samples::shanghai_day_of(ts))
                    .or_insert(v);
                *peak = (*peak).max(v);
            }
            aggregate_hundredths(agg, peaks.into_values().collect())
        }
    }
}

/// An aggregate of values in hundredths, as a percentage: the mean from the exact sum, the
/// percentile by nearest rank. `None` for no values.
pub(crate) fn aggregate_hundredths(agg: Aggregate, mut values: Vec<u16>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let v = match agg {
        Aggregate::Max => return values.into_iter().max().map(|v| f64::from(v) / 100.0),
        Aggregate::Mean => {
            let sum: u64 = values.iter().map(|&v| u64::from(v)).sum();
            return Some(sum as f64 / values.len() as f64 / 100.0);
        }
        Aggregate::Percentile(p) => {
            values.sort_unstable();
            *values.get(p.rank(values.len()) - 1)?
        }
    };
    Some(f64::from(v) / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::rules::RuleSet;
    use crate::core::samples::Hundredths;
    use chrono::TimeZone;
    use chrono_tz::Asia::Shanghai;

    fn pct(v: f64) -> Hundredths {
        Hundredths::from_percent("test", v).expect("percentage")
    }

    fn point(at: DateTime<Utc>, cpu: f64, mem: f64, disk: Option<f64>) -> Sample {
        Sample::usage(at.timestamp(), pct(cpu), pct(mem), disk.map(pct))
    }

    fn rules() -> (ResourceRules, Window) {
        let r = RuleSet::builtin().expect("built-in rules");
        (*r.defaults(), r.window())
    }

    /// Evaluation instant: 2025-06-30 12:00 Asia/Shanghai.
    fn at() -> DateTime<Utc> {
        Shanghai
            .with_ymd_and_hms(2025, 6, 30, 12, 0, 0)
            .single()
            .expect("valid time")
            .with_timezone(&Utc)
    }

    /// One sample per day at 10:00 Shanghai for `days` days ending on the evaluation day.
    fn daily(days: i64, cpu: f64, mem: f64, disk: f64) -> Vec<Sample> {
        (0..days)
            .map(|d| {
                point(
                    at() - TimeDelta::days(d) - TimeDelta::hours(2),
                    cpu,
                    mem,
                    Some(disk),
                )
            })
            .collect()
    }

    fn verdicts(samples: &[Sample]) -> [(Verdict, Option<f64>, Option<f64>); 3] {
        let (r, w) = rules();
        evaluate_vm(&r, w, at(), samples).map(|f| (f.verdict, f.value, f.threshold))
    }

    #[test]
    fn cpu_boundary_25_is_downsize_25_1_is_not() {
        assert_eq!(
            verdicts(&daily(10, 25.0, 50.0, 60.0))[0],
            (Verdict::Downsize, Some(25.0), Some(25.0))
        );
        assert_eq!(verdicts(&daily(10, 25.1, 50.0, 60.0))[0].0, Verdict::Ok);
    }

    #[test]
    fn memory_boundary_30_is_downsize_30_1_is_not() {
        assert_eq!(
            verdicts(&daily(10, 50.0, 30.0, 60.0))[1],
            (Verdict::Downsize, Some(30.0), Some(30.0))
        );
        assert_eq!(verdicts(&daily(10, 50.0, 30.1, 60.0))[1].0, Verdict::Ok);
    }

    #[test]
    fn disk_boundary_49_9_is_downsize_50_is_not() {
        assert_eq!(
            verdicts(&daily(10, 50.0, 50.0, 49.9))[2],
            (Verdict::Downsize, Some(49.9), Some(50.0))
        );
        assert_eq!(verdicts(&daily(10, 50.0, 50.0, 50.0))[2].0, Verdict::Ok);
    }

    #[test]
    fn expansion_boundary_75_is_ok_75_1_expands_for_every_resource() {
        let at_75 = verdicts(&daily(10, 75.0, 75.0, 75.0));
        assert!(at_75.iter().all(|v| v.0 == Verdict::Ok), "{at_75:?}");
        let above = verdicts(&daily(10, 75.1, 75.1, 75.1));
        for v in above {
            assert_eq!(v, (Verdict::Expand, Some(75.1), Some(75.0)));
        }
    }

    #[test]
    fn seven_distinct_days_are_needed() {
        assert!(
            verdicts(&daily(6, 10.0, 10.0, 10.0))
                .iter()
                .all(|v| v.0 == Verdict::InsufficientData)
        );
        assert!(
            verdicts(&daily(7, 10.0, 10.0, 10.0))
                .iter()
                .all(|v| v.0 == Verdict::Downsize)
        );
        // Many samples on 6 days are still 6 days.
        let mut many: Vec<Sample> = daily(6, 10.0, 10.0, 10.0);
        many.extend(daily(6, 10.0, 10.0, 10.0).into_iter().map(|mut s| {
            s.ts -= 30 * 60;
            s
        }));
        assert!(
            verdicts(&many)
                .iter()
                .all(|v| v.0 == Verdict::InsufficientData)
        );
    }

    #[test]
    fn days_are_shanghai_days_not_utc_days() {
        // 7 samples at 23:30 UTC = 07:30 next day in Shanghai, plus 7 at 00:30 UTC the same
        // Shanghai day: 7 Shanghai days, though 14 UTC days are touched.
        let mut s = Vec::new();
        for d in 1..=7 {
            let day = Utc
                .with_ymd_and_hms(2025, 6, 20 + d, 0, 30, 0)
                .single()
                .expect("time");
            s.push(point(day, 5.0, 5.0, Some(5.0)));
            s.push(point(day - TimeDelta::hours(1), 5.0, 5.0, Some(5.0)));
        }
        let (r, w) = rules();
        let f = evaluate_vm(&r, w, at(), &s);
        assert_eq!(f[0].days_with_samples, 7);
    }

    #[test]
    fn window_is_open_at_the_start_and_closed_at_the_end() {
        let (r, w) = rules();
        let mut s = daily(7, 10.0, 10.0, 10.0);
        // Exactly 30 days old: outside. At the evaluation instant: inside.
        s.push(point(at() - TimeDelta::days(30), 99.0, 99.0, Some(99.0)));
        let f = evaluate_vm(&r, w, at(), &s);
        assert_eq!(f[0].value, Some(10.0));
        assert_eq!(f[0].samples, 7);
        s.push(point(at(), 10.0, 10.0, Some(80.0)));
        let f = evaluate_vm(&r, w, at(), &s);
        assert_eq!(
            f[2].value,
            Some(80.0),
            "latest disk sample is the one at `at`"
        );
        assert_eq!(f[2].verdict, Verdict::Expand);
        // One second past the evaluation instant: ignored.
        s.push(point(at() + TimeDelta::seconds(1), 10.0, 10.0, Some(1.0)));
        assert_eq!(evaluate_vm(&r, w, at(), &s)[2].value, Some(80.0));
    }

    #[test]
    fn cpu_uses_nearest_rank_p95() {
        // 20 samples 1..=20: rank ceil(0.95*20) = 19 -> 19.
        let mut s = daily(7, 1.0, 50.0, 60.0);
        s.truncate(0);
        for i in 1..=20 {
            s.push(point(
                at() - TimeDelta::days(i64::from(i % 10)) - TimeDelta::hours(1),
                f64::from(i),
                50.0,
                Some(60.0),
            ));
        }
        assert_eq!(verdicts(&s)[0].1, Some(19.0));
    }

    #[test]
    fn memory_is_the_largest_daily_peak() {
        let mut s = daily(10, 50.0, 20.0, 60.0);
        // One short spike to 31% on one day lifts that day's peak above 30: no downsize.
        s[3].mem = pct(31.0);
        assert_eq!(verdicts(&s)[1], (Verdict::Ok, Some(31.0), Some(30.0)));
    }

    #[test]
    fn disk_missing_is_insufficient_for_disk_only() {
        let mut s = daily(10, 50.0, 50.0, 60.0);
        for p in &mut s {
            p.disk = None;
        }
        let v = verdicts(&s);
        assert_eq!(v[0].0, Verdict::Ok);
        assert_eq!(v[2].0, Verdict::InsufficientData);
    }
}
