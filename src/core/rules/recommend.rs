//! The size a downsize notice or expansion advice recommends, and the statistic it would give.
//!
//! At a new size `N` the statistic scales as `projected = value * allocated / N` (the same use
//! over more or less capacity). A recommendation must *settle*: its projected statistic lies
//! strictly inside the rule's ok band (neither downsize nor expand), or the next evaluation
//! would raise the same notice again. Among the sizes on the resource's step (1 vCPU, 1 GiB of
//! memory, 10 GiB of disk; finer, 0.5 GiB and 1 GiB, where the step overshoots the band) that
//! move the asked way and settle, the one whose projection is nearest the rule's target wins.
//! Where none can (1 vCPU still under 25%), there is no recommendation, and the note says why.
//!
//! Architecture Invariant: pure, like the rest of `rules`.

use serde::Serialize;

use super::ResourceRule;
use crate::core::domain::{Direction, Resource};

/// What a notice recommends for one resource.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Recommendation {
    /// The allocation when the notice was issued (vCPUs or GiB).
    pub allocated: f64,
    /// The new allocation; `None` when no size settles.
    pub recommended: Option<f64>,
    /// The statistic at `recommended`, in percent.
    pub projected: Option<f64>,
    /// Why there is no recommendation.
    pub note: Option<NoRecommendation>,
}

/// Why no size is recommended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoRecommendation {
    /// Even the smallest allocation leaves the statistic in downsize territory (a system that
    /// is barely used: consolidate it or release it).
    BelowSmallestSize,
    /// No size on the resource's steps lands inside the band (a band narrower than a step).
    NoSizeInBand,
    /// The allocation or the statistic is not a usable number (no allocation recorded).
    NoAllocation,
}

impl NoRecommendation {
    pub fn as_str(self) -> &'static str {
        match self {
            NoRecommendation::BelowSmallestSize => "below_smallest_size",
            NoRecommendation::NoSizeInBand => "no_size_in_band",
            NoRecommendation::NoAllocation => "no_allocation",
        }
    }

    pub fn parse(s: &str) -> Option<NoRecommendation> {
        [
            NoRecommendation::BelowSmallestSize,
            NoRecommendation::NoSizeInBand,
            NoRecommendation::NoAllocation,
        ]
        .into_iter()
        .find(|n| n.as_str() == s)
    }

    /// The note in English, for the API and the CLI.
    pub fn text(self, resource: Resource) -> String {
        match self {
            NoRecommendation::BelowSmallestSize => format!(
                "no valid size: even the smallest {} allocation ({}) leaves the statistic in \
                 downsize territory; consider consolidating the system or releasing the VM",
                resource.as_str(),
                size_text(resource, smallest(resource))
            ),
            NoRecommendation::NoSizeInBand => {
                "no valid size: no allocation on the resource's steps puts the statistic inside \
                 the rule's band"
                    .into()
            }
            NoRecommendation::NoAllocation => "no valid size: the allocation is not known".into(),
        }
    }
}

/// The steps sizes are rounded to, coarsest first: the next one is tried where the coarser
/// step overshoots the band.
pub fn steps(resource: Resource) -> &'static [f64] {
    match resource {
        Resource::Cpu => &[1.0],
        Resource::Memory => &[1.0, 0.5],
        Resource::Disk => &[10.0, 1.0],
    }
}

/// The smallest allocation of a resource: one of its finest step.
pub fn smallest(resource: Resource) -> f64 {
    steps(resource).last().copied().unwrap_or(1.0)
}

/// `8 vCPU`, `16 GiB`.
pub fn size_text(resource: Resource, v: f64) -> String {
    match resource {
        Resource::Cpu => format!("{v} vCPU"),
        Resource::Memory | Resource::Disk => format!("{v} GiB"),
    }
}

/// The statistic at `size` when it is `value` at `allocated`.
pub fn projected(value: f64, allocated: f64, size: f64) -> f64 {
    value * allocated / size
}

/// The recommendation for a notice of `direction` on `resource`, whose statistic is `value`
/// percent of `allocated`, under `rule`.
pub fn recommend(
    resource: Resource,
    rule: &ResourceRule,
    direction: Direction,
    allocated: f64,
    value: f64,
) -> Recommendation {
    let none = |note| Recommendation {
        allocated,
        recommended: None,
        projected: None,
        note: Some(note),
    };
    if !(allocated.is_finite() && allocated > 0.0 && value.is_finite() && value >= 0.0) {
        return none(NoRecommendation::NoAllocation);
    }
    let target = rule.target.get();
    let ideal = projected(value, allocated, target);
    let settles = |size: f64| {
        let moves = match direction {
            Direction::Downsize => size < allocated,
            Direction::Expand => size > allocated,
            // Release advice recommends no size: the whole allocation goes.
            Direction::Release => false,
        };
        moves && size >= smallest(resource) && rule.in_band(projected(value, allocated, size))
    };
    for &step in steps(resource) {
        // The projection falls as the size grows, so the settling sizes on this step form one
        // run around the ideal: its neighbours on the step are the only candidates.
        let below = (ideal / step).floor() * step;
        let best = [below, below + step]
            .into_iter()
            .filter(|&size| settles(size))
            .min_by(|a, b| {
                let off = |s: f64| (projected(value, allocated, s) - target).abs();
                off(*a).total_cmp(&off(*b))
            });
        if let Some(size) = best {
            return Recommendation {
                allocated,
                recommended: Some(size),
                projected: Some(projected(value, allocated, size)),
                note: None,
            };
        }
    }
    let smallest_still_low = direction == Direction::Downsize
        && rule
            .downsize
            .matches(projected(value, allocated, smallest(resource)));
    none(if smallest_still_low {
        NoRecommendation::BelowSmallestSize
    } else {
        NoRecommendation::NoSizeInBand
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::rules::RuleSet;

    fn rule(resource: Resource) -> ResourceRule {
        *RuleSet::builtin()
            .expect("built-in rules")
            .defaults()
            .get(resource)
    }

    #[test]
    fn the_disk_of_the_issue_settles_inside_the_band() {
        // 40.2% of 100 GiB used to get "90 GiB": 44.7%, still below 50, downsized again.
        let r = recommend(
            Resource::Disk,
            &rule(Resource::Disk),
            Direction::Downsize,
            100.0,
            40.2,
        );
        let size = r.recommended.expect("a size");
        let p = r.projected.expect("projected");
        assert!((50.0..=75.0).contains(&p), "{size} GiB gives {p}%");
        assert_eq!(size, 70.0, "nearest the 60% target on 10 GiB steps");
    }

    #[test]
    fn one_vcpu_under_25_percent_has_no_valid_size_and_says_so() {
        let r = recommend(
            Resource::Cpu,
            &rule(Resource::Cpu),
            Direction::Downsize,
            1.0,
            10.0,
        );
        assert_eq!(r.recommended, None);
        assert_eq!(r.note, Some(NoRecommendation::BelowSmallestSize));
        assert!(r.note.expect("note").text(Resource::Cpu).contains("1 vCPU"));
    }

    #[test]
    fn the_examples_people_know() {
        let cpu = rule(Resource::Cpu);
        // p95 CPU 12% of 8 vCPUs at a 50% target: 1.92 -> 2 vCPUs (48%).
        let r = recommend(Resource::Cpu, &cpu, Direction::Downsize, 8.0, 12.0);
        assert_eq!((r.recommended, r.projected), (Some(2.0), Some(48.0)));
        // Memory peak 90% of 8 GiB: 14.4 GiB ideal -> 14 GiB (51.4%) is nearer 50 than 15.
        let r = recommend(
            Resource::Memory,
            &rule(Resource::Memory),
            Direction::Expand,
            8.0,
            90.0,
        );
        assert_eq!(r.recommended, Some(14.0));
        // Memory 30% of 1 GiB: 1 GiB steps overshoot; 0.5 GiB gives 60%.
        let r = recommend(
            Resource::Memory,
            &rule(Resource::Memory),
            Direction::Downsize,
            1.0,
            30.0,
        );
        assert_eq!((r.recommended, r.projected), (Some(0.5), Some(60.0)));
    }

    /// The whole grid: every size and every value a notice can carry, under the built-in rules
    /// and a tighter override. A recommendation moves the asked way, sits on a step, and its
    /// projection lies strictly inside the band; where there is none, no size on the finest
    /// step would have settled.
    #[test]
    fn every_recommendation_on_the_grid_settles_inside_the_band() {
        let tight = {
            let mut r = rule(Resource::Disk);
            r.downsize = "< 70".parse().expect("threshold");
            r.expand = "> 72".parse().expect("threshold");
            r.target = crate::core::domain::Percent::try_from(71.0).expect("pct");
            (Resource::Disk, r)
        };
        let cases = [
            (Resource::Cpu, rule(Resource::Cpu)),
            (Resource::Memory, rule(Resource::Memory)),
            (Resource::Disk, rule(Resource::Disk)),
            tight,
        ];
        let mut checked = 0;
        for (resource, rule) in cases {
            let sizes: Vec<f64> = match resource {
                Resource::Cpu => (1..=64).map(f64::from).collect(),
                Resource::Memory => (1..=128).map(|g| f64::from(g) / 2.0).collect(),
                Resource::Disk => (1..=100).map(|g| f64::from(g) * 10.0).collect(),
            };
            for &allocated in &sizes {
                for tenths in 0..=1000 {
                    let value = f64::from(tenths) / 10.0;
                    let direction = if rule.downsize.matches(value) {
                        Direction::Downsize
                    } else if rule.expand.matches(value) {
                        Direction::Expand
                    } else {
                        continue;
                    };
                    checked += 1;
                    let r = recommend(resource, &rule, direction, allocated, value);
                    match (r.recommended, r.projected) {
                        (Some(size), Some(p)) => {
                            assert!(
                                rule.in_band(p),
                                "{resource} {allocated} at {value}%: {size} gives {p}%"
                            );
                            assert_eq!(p, projected(value, allocated, size));
                            assert!(match direction {
                                Direction::Downsize => size < allocated,
                                Direction::Expand => size > allocated,
                                Direction::Release => false,
                            });
                            assert!(steps(resource).iter().any(|s| (size / s).fract() == 0.0));
                            assert!(r.note.is_none());
                        }
                        (None, None) => {
                            assert!(r.note.is_some());
                            let finest = smallest(resource);
                            let limit = (allocated * 4.0 / finest) as u32 + 2;
                            let any = (1..=limit).map(|k| f64::from(k) * finest).any(|size| {
                                let moves = match direction {
                                    Direction::Downsize => size < allocated,
                                    Direction::Expand => size > allocated,
                                    Direction::Release => false,
                                };
                                moves && rule.in_band(projected(value, allocated, size))
                            });
                            assert!(
                                !any,
                                "{resource} {allocated} at {value}%: a size exists but none was found"
                            );
                        }
                        other => panic!("inconsistent recommendation {other:?}"),
                    }
                }
            }
        }
        assert!(checked > 100_000, "{checked}");
    }
}
