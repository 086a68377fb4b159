//! The evaluation of one VM over its window from daily aggregates, exact: it gives the findings
//! the raw-sample evaluator (`rules::evaluate::evaluate_vm`) gives for the same samples.
//!
//! The window `(at - days, at]` rarely starts or ends on a day boundary, so its two edge days
//! come as raw samples (the evaluator keeps those inside the window), as does any day whose
//! aggregate is not current; every other day comes as its stored aggregate. The cost per VM is
//! then a fixed amount per aggregated day (a percentile reads the coarse counts of each day and
//! one bucket's exact values), plus the raw samples of the edges.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};

use super::DayView;
use super::histogram::{BUCKETS, Malformed};
use crate::core::domain::Resource;
use crate::core::rules::evaluate::{Finding, aggregate_hundredths, judge, window_bounds};
use crate::core::rules::{Aggregate, ResourceRules, Statistic, Window};
use crate::core::samples::Sample;

/// One day of a VM's window.
// A window is a month of these, built and dropped per VM: the size difference costs nothing
// worth a box per day.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum DayInput<'a> {
    /// A stored day whose samples all lie inside the window.
    Aggregated(DayView<'a>),
    /// Raw samples of a day; those outside the window are left out.
    Raw(&'a [Sample]),
}

/// Why the days could not be evaluated: a stored aggregate is malformed, or the caller passed
/// an aggregated day that is not wholly inside the window.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error(transparent)]
    Malformed(#[from] Malformed),
    #[error(
        "the aggregate of {0} is not wholly inside the window: evaluate that day from raw samples"
    )]
    Straddles(NaiveDate),
}

/// Evaluates one VM over `days` (each day at most once, in any order).
pub fn evaluate_days(
    rules: &ResourceRules,
    window: Window,
    at: DateTime<Utc>,
    days: &[DayInput<'_>],
) -> Result<[Finding; 3], WindowError> {
    let (start, end) = window_bounds(window, at);
    let (start, end) = (start.timestamp(), end.timestamp());
    let mut aggregated: Vec<&DayView<'_>> = Vec::new();
    let mut raw: Vec<&Sample> = Vec::new();
    for d in days {
        match d {
            DayInput::Aggregated(v) => {
                if v.samples == 0 {
                    continue;
                }
                if v.first_ts <= start || v.last_ts > end {
                    return Err(WindowError::Straddles(v.day));
                }
                aggregated.push(v);
            }
            DayInput::Raw(samples) => {
                raw.extend(samples.iter().filter(|s| s.ts > start && s.ts <= end))
            }
        }
    }
    let day_count = aggregated
        .iter()
        .map(|v| v.day)
        .chain(raw.iter().map(|s| s.day()))
        .collect::<BTreeSet<_>>()
        .len();
    let enough = day_count >= window.min_days_with_samples as usize;
    let mut out = Vec::with_capacity(3);
    for resource in Resource::ALL {
        let rule = rules.get(resource);
        let values: Vec<(i64, u16)> = raw
            .iter()
            .filter_map(|s| s.value(resource).map(|v| (s.ts, v.get())))
            .collect();
        let stored: u64 = aggregated
            .iter()
            .map(|v| u64::from(v.resource(resource).count))
            .sum();
        let n = stored + values.len() as u64;
        let value = if enough && n > 0 {
            statistic(rule.statistic, resource, &aggregated, &values, n)?
        } else {
            None
        };
        out.push(judge(resource, rule, value, n as usize, day_count));
    }
    out.try_into()
        .map_err(|_| WindowError::Malformed(Malformed("three resources")))
}

fn statistic(
    statistic: Statistic,
    resource: Resource,
    aggregated: &[&DayView<'_>],
    raw: &[(i64, u16)],
    n: u64,
) -> Result<Option<f64>, WindowError> {
    let days = || {
        aggregated
            .iter()
            .map(|v| v.resource(resource))
            .filter(|r| r.count > 0)
    };
    Ok(match statistic {
        Statistic::Latest => days()
            .map(|r| (r.latest_ts, r.latest))
            .chain(raw.iter().copied())
            .max_by_key(|&(ts, _)| ts)
            .map(|(_, v)| f64::from(v) / 100.0),
        Statistic::Samples(Aggregate::Max) => days()
            .map(|r| r.max)
            .chain(raw.iter().map(|&(_, v)| v))
            .max()
            .map(|v| f64::from(v) / 100.0),
        Statistic::Samples(Aggregate::Mean) => {
            let sum: u64 = days().map(|r| r.sum).sum::<u64>()
                + raw.iter().map(|&(_, v)| u64::from(v)).sum::<u64>();
            Some(sum as f64 / n as f64 / 100.0)
        }
        Statistic::Samples(Aggregate::Percentile(p)) => {
            let rank = p.rank(n as usize) as u64;
            let mut coarse = [0u64; BUCKETS];
            let histograms = days()
                .map(|r| r.histogram())
                .collect::<Result<Vec<_>, _>>()?;
            for h in &histograms {
                h.add_coarse(&mut coarse);
            }
            for &(_, v) in raw {
                coarse[usize::from(v / 100).min(100)] += 1;
            }
            let mut below = 0;
            let Some(bucket) = (0..BUCKETS).find(|&b| {
                if below + coarse[b] >= rank {
                    true
                } else {
                    below += coarse[b];
                    false
                }
            }) else {
                return Ok(None);
            };
            // The bucket's exact values are its 100 hundredths (bucket 100 holds 100.00 only):
            // counted by offset, so a month of minute samples needs no sort.
            let base = bucket as u16 * 100;
            let mut exact = [0u64; 100];
            let mut add = |v: u16, c: u64| -> Result<(), WindowError> {
                *v.checked_sub(base)
                    .and_then(|offset| exact.get_mut(usize::from(offset)))
                    .ok_or(Malformed("a value outside its bucket"))? += c;
                Ok(())
            };
            let mut entries: Vec<(u16, u32)> = Vec::new();
            for h in &histograms {
                entries.clear();
                h.bucket(bucket, &mut entries)?;
                for &(v, c) in &entries {
                    add(v, u64::from(c))?;
                }
            }
            for &(_, v) in raw {
                if usize::from(v / 100).min(100) == bucket {
                    add(v, 1)?;
                }
            }
            let mut seen = below;
            (0u16..100)
                .find(|&offset| {
                    seen += exact[usize::from(offset)];
                    seen >= rank
                })
                .map(|offset| f64::from(base + offset) / 100.0)
        }
        Statistic::DailyPeak(aggregate) => {
            let mut peaks: Vec<u16> = days().map(|r| r.max).collect();
            let mut raw_days: std::collections::BTreeMap<NaiveDate, u16> = Default::default();
            for &(ts, v) in raw {
                let peak = raw_days
                    .entry(crate::core::samples::shanghai_day_of(ts))
                    .or_insert(v);
                *peak = (*peak).max(v);
            }
            peaks.extend(raw_days.into_values());
            aggregate_hundredths(aggregate, peaks)
        }
    })
}
