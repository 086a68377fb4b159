//! `rules/review.toml`: filing period, unit prices, score weights, grade and verdict thresholds.

use serde::Deserialize;

pub const BUILTIN_REVIEW_RULES: &str = include_str!("../../../rules/review.toml");

#[derive(Debug, thiserror::Error)]
pub enum ReviewRulesError {
    #[error("review rules {origin}: {source}")]
    Syntax {
        origin: String,
        #[source]
        source: toml::de::Error,
    },
    #[error("review rules {origin}: {message}")]
    Invalid { origin: String, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prices {
    pub vcpu_month: f64,
    pub memory_gib_month: f64,
    pub disk_gib_month: f64,
}

impl Prices {
    /// What `vcpus`, `memory_gib` and `disk_gib` of allocation cost a month, yuan.
    pub fn monthly(&self, vcpus: f64, memory_gib: f64, disk_gib: f64) -> f64 {
        vcpus * self.vcpu_month
            + memory_gib * self.memory_gib_month
            + disk_gib * self.disk_gib_month
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    pub utilisation: f64,
    pub adjustments: f64,
    pub deployment: f64,
    pub coverage: f64,
    pub network: f64,
}

#[derive(Debug, Clone)]
pub struct ReviewRules {
    pub prices: Prices,
    pub target_utilisation: f64,
    pub weights: Weights,
    /// (grade, lowest score), best first; below the last: "D".
    pub grades: Vec<(String, f64)>,
    pub keep_from: f64,
    pub consolidate_from: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    prices: RawPrices,
    idle: RawIdle,
    weights: RawWeights,
    grades: RawGrades,
    verdicts: RawVerdicts,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrices {
    vcpu_month: f64,
    memory_gib_month: f64,
    disk_gib_month: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdle {
    target_utilisation_pct: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWeights {
    utilisation: f64,
    adjustments: f64,
    deployment: f64,
    coverage: f64,
    network: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
struct RawGrades {
    A: f64,
    B: f64,
    C: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVerdicts {
    keep: f64,
    consolidate: f64,
}

impl ReviewRules {
    pub fn builtin() -> Result<ReviewRules, ReviewRulesError> {
        ReviewRules::parse("(built-in rules/review.toml)", BUILTIN_REVIEW_RULES)
    }

    pub fn parse(origin: &str, text: &str) -> Result<ReviewRules, ReviewRulesError> {
        let raw: Raw = toml::from_str(text).map_err(|source| ReviewRulesError::Syntax {
            origin: origin.to_owned(),
            source,
        })?;
        let invalid = |message: String| ReviewRulesError::Invalid {
            origin: origin.to_owned(),
            message,
        };
        let w = raw.weights;
        let weights = Weights {
            utilisation: w.utilisation,
            adjustments: w.adjustments,
            deployment: w.deployment,
            coverage: w.coverage,
            network: w.network,
        };
        let all = [
            w.utilisation,
            w.adjustments,
            w.deployment,
            w.coverage,
            w.network,
        ];
        if all.iter().any(|x| !x.is_finite() || *x < 0.0)
            || (all.iter().sum::<f64>() - 100.0).abs() > 1e-6
        {
            return Err(invalid(format!(
                "[weights] must be non-negative and sum to 100, they sum to {}",
                all.iter().sum::<f64>()
            )));
        }
        let p = raw.prices;
        if [p.vcpu_month, p.memory_gib_month, p.disk_gib_month]
            .iter()
            .any(|x| !x.is_finite() || *x < 0.0)
        {
            return Err(invalid("[prices] must be non-negative numbers".into()));
        }
        let g = raw.grades;
        if !(g.A > g.B && g.B > g.C) {
            return Err(invalid("[grades] must satisfy A > B > C".into()));
        }
        let v = raw.verdicts;
        if !(v.keep > v.consolidate && v.consolidate >= 0.0 && v.keep <= 100.0) {
            return Err(invalid(
                "[verdicts] must satisfy 100 >= keep > consolidate >= 0".into(),
            ));
        }
        let target = raw.idle.target_utilisation_pct;
        if !(target > 0.0 && target <= 100.0) {
            return Err(invalid(
                "[idle] target_utilisation_pct must be within (0, 100]".into(),
            ));
        }
        Ok(ReviewRules {
            prices: Prices {
                vcpu_month: p.vcpu_month,
                memory_gib_month: p.memory_gib_month,
                disk_gib_month: p.disk_gib_month,
            },
            target_utilisation: target,
            weights,
            grades: vec![("A".into(), g.A), ("B".into(), g.B), ("C".into(), g.C)],
            keep_from: v.keep,
            consolidate_from: v.consolidate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_review_rules_parse_and_bad_weights_are_refused() {
        let r = ReviewRules::builtin().expect("parses");
        assert_eq!(r.weights.utilisation, 40.0);
        let bad = BUILTIN_REVIEW_RULES.replace("utilisation = 40", "utilisation = 50");
        let err = ReviewRules::parse("r.toml", &bad)
            .expect_err("sum 110")
            .to_string();
        assert!(err.contains("sum to 100") && err.contains("110"), "{err}");
    }
}
