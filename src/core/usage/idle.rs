//! Whether a system is still used (Pingdu art. 13: 当系统不再使用时; Jilin art. 12): the `usage`
//! finding, judged day by day over the lookback from the same window days the resource rules
//! read (aggregates, and raw samples for the edge days).
//!
//! Per day: the largest CPU sample, the mean memory, the day's traffic (received plus sent, its
//! mean rate times 86,400 s) and its mean inbound connections. The VM is `unused` when no day
//! shows use; a criterion whose figure the agent never reported is not judged, and the evidence
//! says so.
//!
//! Architecture Invariant: pure; no IO, no clock.

use std::collections::BTreeMap;

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::Serialize;

use super::DayView;
use super::window::DayInput;
use crate::core::domain::Verdict;
use crate::core::rules::UnusedRule;
use crate::core::samples::shanghai_day_of;

/// The statistic a `usage` finding names: the CPU maximum over the lookback.
pub const STATISTIC: &str = "max";

/// Seconds in a day: a day's traffic is its mean rate over the whole day.
const DAY_SECONDS: f64 = 86_400.0;

/// One day of the lookback, as the criteria read it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct UsageDay {
    samples: u64,
    cpu_max: u16,
    mem_sum: u64,
    mem_count: u64,
    rx: (u64, u64),
    tx: (u64, u64),
    inbound: (u64, u64),
}

impl UsageDay {
    fn of_view(v: &DayView<'_>) -> UsageDay {
        UsageDay {
            samples: u64::from(v.samples),
            cpu_max: v.cpu.max,
            mem_sum: v.mem.sum,
            mem_count: u64::from(v.mem.count),
            rx: (u64::from(v.rx.count), v.rx.sum),
            tx: (u64::from(v.tx.count), v.tx.sum),
            inbound: (u64::from(v.inbound.count), v.inbound.sum),
        }
    }

    fn mean((count, sum): (u64, u64)) -> Option<f64> {
        (count > 0).then(|| sum as f64 / count as f64)
    }

    /// Received plus sent over the day at its mean rates; `None` where neither was reported.
    fn network_bytes(&self) -> Option<f64> {
        match (Self::mean(self.rx), Self::mean(self.tx)) {
            (None, None) => None,
            (rx, tx) => Some((rx.unwrap_or(0.0) + tx.unwrap_or(0.0)) * DAY_SECONDS),
        }
    }

    fn add(&mut self, other: &UsageDay) {
        self.samples += other.samples;
        self.cpu_max = self.cpu_max.max(other.cpu_max);
        self.mem_sum += other.mem_sum;
        self.mem_count += other.mem_count;
        for (a, b) in [
            (&mut self.rx, other.rx),
            (&mut self.tx, other.tx),
            (&mut self.inbound, other.inbound),
        ] {
            a.0 += b.0;
            a.1 = a.1.saturating_add(b.1);
        }
    }
}

/// What the usage verdict rests on, shown with the finding and in the release advice.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageEvidence {
    pub lookback_days: u32,
    /// Days with samples in the lookback.
    pub days_observed: u32,
    pub samples: u64,
    /// The largest CPU sample, percent.
    pub cpu_max_pct: Option<f64>,
    /// The busiest day's traffic, received plus sent, bytes; `None`: not reported.
    pub network_bytes_per_day: Option<u64>,
    /// The mean of the days' traffic, bytes a day; `None`: not reported.
    pub network_mean_bytes_per_day: Option<u64>,
    /// Whether the agent reported traffic rates: without them the verdict rests on CPU and
    /// memory (and connections, where reported) only.
    pub network_reported: bool,
    /// The last observed day's mean memory minus the first's, points.
    pub memory_growth_points: Option<f64>,
    /// The highest daily mean of inbound connections; `None`: not reported.
    pub inbound_connections: Option<f64>,
    /// The criteria that showed use (`cpu`, `network`, `memory`, `connections`), or `exempt`
    /// where the rules exempt the VM; empty when unused or without enough data.
    pub used_by: Vec<&'static str>,
}

/// The `usage` finding of one VM.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageFinding {
    /// `unused`, `in_use` or `insufficient_data`.
    pub verdict: Verdict,
    pub evidence: UsageEvidence,
}

/// The first day of the lookback ending on the day of `at`.
pub fn lookback_start(rule: &UnusedRule, at: DateTime<Utc>) -> NaiveDate {
    let last = shanghai_day_of(at.timestamp());
    last.checked_sub_days(Days::new(u64::from(rule.lookback_days.saturating_sub(1))))
        .unwrap_or(last)
}

/// Judges one VM from its window's days (as `window::evaluate_days` reads them): the days of
/// the lookback count, raw samples up to `at`.
pub fn judge_usage(rule: &UnusedRule, at: DateTime<Utc>, days: &[DayInput<'_>]) -> UsageFinding {
    let first = lookback_start(rule, at);
    let end = at.timestamp();
    let mut by_day: BTreeMap<NaiveDate, UsageDay> = BTreeMap::new();
    for input in days {
        match input {
            DayInput::Aggregated(v) => {
                if v.day < first || v.samples == 0 {
                    continue;
                }
                by_day.entry(v.day).or_default().add(&UsageDay::of_view(v));
            }
            DayInput::Raw(samples) => {
                for s in samples.iter().filter(|s| s.ts <= end) {
                    let d = s.day();
                    if d < first {
                        continue;
                    }
                    let mut one = UsageDay {
                        samples: 1,
                        cpu_max: s.cpu.get(),
                        mem_sum: u64::from(s.mem.get()),
                        mem_count: 1,
                        ..UsageDay::default()
                    };
                    if let Some(v) = s.net_rx_bps {
                        one.rx = (1, v);
                    }
                    if let Some(v) = s.net_tx_bps {
                        one.tx = (1, v);
                    }
                    if let Some(v) = s.inbound_connections {
                        one.inbound = (1, u64::from(v));
                    }
                    by_day.entry(d).or_default().add(&one);
                }
            }
        }
    }
    judge_days(rule, &by_day)
}

/// Whether one stored day shows no use by the rule's daily criteria (CPU maximum, the day's
/// traffic, inbound connections; memory growth spans days and is not judged here): the annual
/// review counts such VM-days. A VM exempt by the rules shows use.
pub fn day_shows_no_use(rule: &UnusedRule, v: &DayView<'_>) -> bool {
    let day = UsageDay::of_view(v);
    rule.enabled
        && day.samples > 0
        && f64::from(day.cpu_max) / 100.0 <= rule.cpu_max.get()
        && day
            .network_bytes()
            .is_none_or(|b| b <= rule.network_max_bytes_per_day as f64)
        && UsageDay::mean(day.inbound).is_none_or(|c| c <= rule.inbound_connections_max)
}

fn judge_days(rule: &UnusedRule, days: &BTreeMap<NaiveDate, UsageDay>) -> UsageFinding {
    let observed: Vec<&UsageDay> = days.values().filter(|d| d.samples > 0).collect();
    let network: Vec<f64> = observed.iter().filter_map(|d| d.network_bytes()).collect();
    let inbound: Vec<f64> = observed
        .iter()
        .filter_map(|d| UsageDay::mean(d.inbound))
        .collect();
    let memory: Vec<f64> = observed
        .iter()
        .filter_map(|d| UsageDay::mean((d.mem_count, d.mem_sum)))
        .map(|v| v / 100.0)
        .collect();
    let cpu_max = observed.iter().map(|d| d.cpu_max).max();
    let network_max = network.iter().copied().reduce(f64::max);
    let inbound_max = inbound.iter().copied().reduce(f64::max);
    let growth = match (memory.first(), memory.last()) {
        (Some(a), Some(b)) if memory.len() > 1 => Some(b - a),
        _ => None,
    };
    let mut evidence = UsageEvidence {
        lookback_days: rule.lookback_days,
        days_observed: observed.len() as u32,
        samples: observed.iter().map(|d| d.samples).sum(),
        cpu_max_pct: cpu_max.map(|v| f64::from(v) / 100.0),
        network_bytes_per_day: network_max.map(|v| v.round() as u64),
        network_mean_bytes_per_day: (!network.is_empty())
            .then(|| (network.iter().sum::<f64>() / network.len() as f64).round() as u64),
        network_reported: !network.is_empty(),
        memory_growth_points: growth.map(|g| (g * 100.0).round() / 100.0),
        inbound_connections: inbound_max.map(|v| (v * 100.0).round() / 100.0),
        used_by: Vec::new(),
    };
    if observed.len() < rule.min_days_observed as usize {
        return UsageFinding {
            verdict: Verdict::InsufficientData,
            evidence,
        };
    }
    if evidence.cpu_max_pct.is_some_and(|v| v > rule.cpu_max.get()) {
        evidence.used_by.push("cpu");
    }
    if network_max.is_some_and(|v| v > rule.network_max_bytes_per_day as f64) {
        evidence.used_by.push("network");
    }
    if growth.is_some_and(|g| g > rule.memory_growth_max_points) {
        evidence.used_by.push("memory");
    }
    if inbound_max.is_some_and(|v| v > rule.inbound_connections_max) {
        evidence.used_by.push("connections");
    }
    if !rule.enabled {
        // Exempt by the rules file (`unused = { enabled = false }`): never advised to release.
        evidence.used_by.push("exempt");
    }
    let verdict = if !evidence.used_by.is_empty() {
        Verdict::InUse
    } else {
        Verdict::Unused
    };
    UsageFinding { verdict, evidence }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::rules::RuleSet;
    use crate::core::samples::{Hundredths, Sample};
    use crate::core::usage::{DayAggregate, DayView};
    use chrono::{TimeDelta, TimeZone};
    use chrono_tz::Asia::Shanghai;

    fn rule() -> UnusedRule {
        let rules = RuleSet::builtin().expect("rules");
        rules.unused_for(
            &"d".try_into().expect("department"),
            &"p".try_into().expect("project"),
        )
    }

    fn at() -> DateTime<Utc> {
        Shanghai
            .with_ymd_and_hms(2025, 9, 26, 16, 0, 0)
            .single()
            .expect("time")
            .with_timezone(&Utc)
    }

    fn pct(v: f64) -> Hundredths {
        Hundredths::from_percent("test", v).expect("pct")
    }

    /// Hourly samples for `days` days ending at `at`, from `f(day, hour) -> (cpu, mem, net)`.
    fn fleet_vm(days: i64, f: impl Fn(i64, i64) -> (f64, f64, Option<u64>)) -> Vec<Sample> {
        let mut out = Vec::new();
        for back in (0..days * 24).rev() {
            let t = at() - TimeDelta::hours(back);
            let (day, hour) = (back / 24, 23 - back % 24);
            let (cpu, mem, net) = f(day, hour);
            let mut s = Sample::usage(t.timestamp(), pct(cpu), pct(mem), Some(pct(40.0)));
            s.net_rx_bps = net.map(|n| n / 2);
            s.net_tx_bps = net.map(|n| n - n / 2);
            out.push(s);
        }
        out
    }

    /// Judged both ways: all raw, and all whole days aggregated (today raw).
    fn judge_both(samples: &[Sample]) -> UsageFinding {
        let raw = judge_usage(&rule(), at(), &[DayInput::Raw(samples)]);
        let mut by_day: BTreeMap<NaiveDate, Vec<Sample>> = BTreeMap::new();
        for s in samples {
            by_day.entry(s.day()).or_default().push(*s);
        }
        let today = shanghai_day_of(at().timestamp());
        let encoded: Vec<(NaiveDate, Vec<u8>)> = by_day
            .iter()
            .filter(|(d, _)| **d != today)
            .filter_map(|(d, s)| DayAggregate::of(*d, s).map(|a| (*d, a.encode())))
            .collect();
        let mut inputs: Vec<DayInput<'_>> = encoded
            .iter()
            .map(|(d, b)| DayInput::Aggregated(DayView::parse(*d, b).expect("view")))
            .collect();
        inputs.push(DayInput::Raw(by_day.get(&today).map_or(&[], |v| v)));
        let aggregated = judge_usage(&rule(), at(), &inputs);
        assert_eq!(raw, aggregated, "raw and aggregated days judge alike");
        raw
    }

    #[test]
    fn an_idle_vm_is_unused() {
        let vm = fleet_vm(20, |d, h| {
            (0.3 + 0.3 * ((d + h) % 2) as f64, 20.0, Some(50))
        });
        let f = judge_both(&vm);
        assert_eq!(f.verdict, Verdict::Unused, "{f:?}");
        assert_eq!(f.evidence.days_observed, 14);
        assert_eq!(f.evidence.cpu_max_pct, Some(0.6));
        assert_eq!(f.evidence.network_bytes_per_day, Some(50 * 86_400));
        assert!(f.evidence.network_reported);
    }

    #[test]
    fn a_quiet_api_server_is_in_use_by_its_traffic() {
        let vm = fleet_vm(20, |_, h| (1.0, 30.0, Some(20_000 + 500 * h as u64)));
        let f = judge_both(&vm);
        assert_eq!(f.verdict, Verdict::InUse);
        assert_eq!(f.evidence.used_by, vec!["network"]);
    }

    #[test]
    fn a_weekly_batch_vm_is_in_use_by_its_monday_hour() {
        // 2025-09-26 is a Friday: 4 days back is Monday the 22nd, 11 back Monday the 15th.
        let vm = fleet_vm(20, |d, h| {
            let cpu = if d % 7 == 4 && h == 2 { 60.0 } else { 0.5 };
            (cpu, 25.0, Some(40))
        });
        let f = judge_both(&vm);
        assert_eq!(f.verdict, Verdict::InUse);
        assert_eq!(f.evidence.used_by, vec!["cpu"]);
        assert_eq!(f.evidence.cpu_max_pct, Some(60.0));
    }

    #[test]
    fn three_days_are_not_enough_and_ten_are() {
        let idle = |_, _| (0.4, 20.0, Some(50));
        // n x 24 hours back from 16:00 touch n + 1 days.
        let three = judge_both(&fleet_vm(2, idle));
        assert_eq!(
            (three.verdict, three.evidence.days_observed),
            (Verdict::InsufficientData, 3)
        );
        let nine = judge_both(&fleet_vm(8, idle));
        assert_eq!(
            (nine.verdict, nine.evidence.days_observed),
            (Verdict::InsufficientData, 9)
        );
        let ten = judge_both(&fleet_vm(9, idle));
        assert_eq!(
            (ten.verdict, ten.evidence.days_observed),
            (Verdict::Unused, 10)
        );
    }

    #[test]
    fn without_rates_the_verdict_rests_on_cpu_and_memory_and_says_so() {
        let f = judge_both(&fleet_vm(20, |_, _| (0.4, 20.0, None)));
        assert_eq!(f.verdict, Verdict::Unused);
        assert!(!f.evidence.network_reported);
        assert_eq!(f.evidence.network_bytes_per_day, None);
    }

    #[test]
    fn growing_memory_is_use_and_boundaries_are_inclusive() {
        // 20 -> 30 points over the lookback.
        let f = judge_both(&fleet_vm(14, |d, _| {
            (0.4, 30.0 - (d as f64) * 10.0 / 13.0, Some(50))
        }));
        assert_eq!(f.verdict, Verdict::InUse, "{f:?}");
        assert_eq!(f.evidence.used_by, vec!["memory"]);
        // Exactly at the thresholds: 5% CPU and 20 MB a day are not above them.
        let rate = 20_000_000 / 86_400; // 231 B/s, 19,958,400 B a day
        let f = judge_both(&fleet_vm(14, |_, _| (5.0, 20.0, Some(rate))));
        assert_eq!(f.verdict, Verdict::Unused, "{f:?}");
        let f = judge_both(&fleet_vm(14, |_, _| (5.01, 20.0, Some(rate))));
        assert_eq!(f.verdict, Verdict::InUse);
    }

    #[test]
    fn a_disabled_rule_never_says_unused() {
        let mut r = rule();
        r.enabled = false;
        let vm = fleet_vm(20, |_, _| (0.4, 20.0, Some(50)));
        assert_eq!(
            judge_usage(&r, at(), &[DayInput::Raw(&vm)]).verdict,
            Verdict::InUse
        );
    }
}
