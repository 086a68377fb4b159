//! The aggregates' tests: exact merging, the stored form, and the property that matters most:
//! evaluating from aggregates gives exactly the raw-sample evaluator's findings.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use proptest::prelude::*;

use super::window::{DayInput, evaluate_days};
use super::*;
use crate::core::rules::RuleSet;
use crate::core::rules::evaluate::{evaluate_vm, window_bounds};

/// Values on and next to every threshold of the built-in rules, and the ends of the range.
const EDGES: [u16; 17] = [
    0, 1, 2499, 2500, 2501, 2999, 3000, 3001, 4999, 5000, 5001, 7499, 7500, 7501, 9999, 10_000,
    1234,
];

fn pct(h: u16) -> Hundredths {
    Hundredths::new(h).expect("hundredths")
}

fn value() -> impl Strategy<Value = u16> {
    prop_oneof![3 => proptest::sample::select(EDGES.to_vec()), 1 => 0u16..=10_000]
}

prop_compose! {
    fn sample(day_start: i64)(second in 0i64..86_400, cpu in value(), mem in value(),
                              disk in proptest::option::weighted(0.9, value()),
                              rx in proptest::option::of(0u64..100_000)) -> Sample {
        Sample {
            ts: day_start + second,
            cpu: pct(cpu),
            mem: pct(mem),
            disk: disk.map(pct),
            net_rx_bps: rx,
            net_tx_bps: rx.map(|r| r / 3),
            inbound_connections: rx.map(|r| (r % 7) as u32),
        }
    }
}

/// The statistics a rules file may name.
const STATISTICS: [&str; 9] = [
    "latest",
    "max",
    "mean",
    "p95",
    "p50",
    "p99.9",
    "daily_peak.max",
    "daily_peak.mean",
    "daily_peak.p90",
];

fn rules_with(statistics: [&str; 3]) -> RuleSet {
    let mut text = crate::core::rules::BUILTIN_RULES.to_owned();
    for (section, statistic) in ["[cpu]", "[memory]", "[disk]"].iter().zip(statistics) {
        let at = text.find(section).expect("section");
        let line = at + text[at..].find("statistic = ").expect("statistic");
        let end = line + text[line..].find('\n').expect("line end");
        text.replace_range(line..end, &format!("statistic = \"{statistic}\""));
    }
    RuleSet::parse("test", &text).expect("rules parse")
}

fn day_start(days_ago: i64) -> i64 {
    let day = Shanghai
        .with_ymd_and_hms(2025, 6, 30, 0, 0, 0)
        .single()
        .expect("day")
        .timestamp();
    day - days_ago * 86_400
}

/// A fleet member: samples on up to 40 days before 2025-06-30, each day possibly empty.
fn vm_samples() -> impl Strategy<Value = Vec<Sample>> {
    proptest::collection::vec(0usize..25, 40).prop_flat_map(|per_day| {
        per_day
            .into_iter()
            .enumerate()
            .map(|(d, n)| proptest::collection::vec(sample(day_start(d as i64)), n))
            .collect::<Vec<_>>()
            .prop_map(|days| {
                let mut all: Vec<Sample> = days.into_iter().flatten().collect();
                all.sort_by_key(|s| s.ts);
                all.dedup_by_key(|s| s.ts);
                all
            })
    })
}

fn by_day(samples: &[Sample]) -> BTreeMap<NaiveDate, Vec<Sample>> {
    let mut out: BTreeMap<NaiveDate, Vec<Sample>> = BTreeMap::new();
    for s in samples {
        out.entry(s.day()).or_default().push(*s);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Aggregate and raw evaluation agree on every verdict, value, sample and day count, for
    /// any statistic, any instant, and any choice of which days come aggregated (some built by
    /// merging two partial aggregates, as the incremental fold does).
    #[test]
    fn aggregates_evaluate_exactly_like_raw_samples(
        samples in vm_samples(),
        statistics in proptest::array::uniform3(proptest::sample::select(STATISTICS.to_vec())),
        at_offset in 0i64..(3 * 86_400),
        aggregate_mask in any::<u64>(),
        split_mask in any::<u64>(),
        min_days in 1u32..10,
    ) {
        let rules = rules_with(statistics);
        let vm_rules = *rules.defaults();
        let window = crate::core::rules::Window { days: 30, min_days_with_samples: min_days };
        let at: DateTime<Utc> = DateTime::from_timestamp(day_start(2) + at_offset, 0).expect("instant");
        let (start, end) = window_bounds(window, at);
        let raw = evaluate_vm(&vm_rules, window, at, &samples);

        let encoded: Vec<(NaiveDate, Vec<Sample>, Option<Vec<u8>>)> = by_day(&samples)
            .into_iter()
            .enumerate()
            .map(|(i, (day, day_samples))| {
                let inside = day_samples.iter().all(|s| s.ts > start.timestamp() && s.ts <= end.timestamp());
                let aggregate = inside && aggregate_mask & (1 << (i % 64)) != 0;
                let bytes = aggregate.then(|| {
                    let agg = if split_mask & (1 << (i % 64)) != 0 && day_samples.len() > 1 {
                        let (a, b) = day_samples.split_at(day_samples.len() / 2);
                        let mut agg = DayAggregate::of(day, b).expect("samples");
                        agg.merge(&DayAggregate::of(day, a).expect("samples"));
                        agg
                    } else {
                        DayAggregate::of(day, &day_samples).expect("samples")
                    };
                    agg.encode()
                });
                (day, day_samples, bytes)
            })
            .collect();
        let days: Vec<DayInput<'_>> = encoded
            .iter()
            .map(|(day, day_samples, bytes)| match bytes {
                Some(b) => DayInput::Aggregated(DayView::parse(*day, b).expect("parses")),
                None => DayInput::Raw(day_samples),
            })
            .collect();
        let from_aggregates = evaluate_days(&vm_rules, window, at, &days).expect("evaluates");
        prop_assert_eq!(from_aggregates, raw);
    }

    /// The aggregate of a day equals the merge of the aggregates of any split of it, and reads
    /// back from its stored form unchanged.
    #[test]
    fn merging_is_exact_and_the_stored_form_round_trips(
        samples in proptest::collection::vec(sample(day_start(0)), 1..200),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut samples = samples;
        samples.sort_by_key(|s| s.ts);
        samples.dedup_by_key(|s| s.ts);
        let day = samples[0].day();
        let whole = DayAggregate::of(day, &samples).expect("samples");
        let at = cut.index(samples.len());
        if at > 0 && at < samples.len() {
            let mut merged = DayAggregate::of(day, &samples[at..]).expect("samples");
            merged.merge(&DayAggregate::of(day, &samples[..at]).expect("samples"));
            prop_assert_eq!(&merged, &whole);
        }
        prop_assert_eq!(DayAggregate::decode(day, &whole.encode()).expect("decodes"), whole);
    }
}

#[test]
fn an_aggregate_that_straddles_the_window_is_refused() {
    let day = NaiveDate::from_ymd_opt(2025, 6, 29).expect("day");
    let start = day_start(1);
    let samples: Vec<Sample> = (0..24)
        .map(|h| Sample::usage(start + h * 3600, pct(1000), pct(2000), None))
        .collect();
    let bytes = DayAggregate::of(day, &samples).expect("samples").encode();
    let view = DayView::parse(day, &bytes).expect("parses");
    let rules = RuleSet::builtin().expect("rules");
    // The window ends at noon of that day: half of its samples are after it.
    let at = DateTime::from_timestamp(start + 12 * 3600, 0).expect("instant");
    let err = evaluate_days(
        rules.defaults(),
        rules.window(),
        at,
        &[DayInput::Aggregated(view)],
    )
    .expect_err("straddles");
    assert!(err.to_string().contains("2025-06-29"), "{err}");
}

#[test]
fn a_minute_day_is_about_a_kilobyte_and_hours_add_up() {
    let day = NaiveDate::from_ymd_opt(2025, 6, 29).expect("day");
    let start = day_start(1);
    let mut noise = 7u32;
    let samples: Vec<Sample> = (0..1440)
        .map(|i| {
            noise = noise.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let busy = if (540..1080).contains(&i) { 2000 } else { 500 };
            let cpu = busy + (noise >> 16) as u16 % 700;
            Sample {
                net_rx_bps: Some(u64::from(noise >> 20)),
                net_tx_bps: Some(u64::from(noise >> 22)),
                inbound_connections: Some(2),
                ..Sample::usage(
                    start + i * 60,
                    pct(cpu),
                    pct(4100 + (i / 60) as u16),
                    Some(pct(5500)),
                )
            }
        })
        .collect();
    let agg = DayAggregate::of(day, &samples).expect("samples");
    let bytes = agg.encode();
    assert!(
        bytes.len() < 2048,
        "{} bytes for a day of minute samples",
        bytes.len()
    );
    assert_eq!(agg.hours.len(), 24);
    assert_eq!(agg.hours.iter().map(|h| h.samples).sum::<u32>(), 1440);
    assert_eq!(
        agg.hours.iter().map(|h| h.cpu_sum).sum::<u64>(),
        agg.cpu.sum
    );
    assert_eq!(agg.rx.count, 1440);
    assert_eq!(agg.inbound.max, 2);
    assert!(TimeDelta::seconds(agg.last_ts - agg.first_ts) == TimeDelta::minutes(1439));
}
