//! The rules file (`rules/pingdu.toml`): thresholds, statistics and windows as data staff edit.
//!
//! Parsing turns the text into checked types once ([`Threshold`], [`Statistic`], ...); a typo in
//! a key, an unknown statistic or a threshold outside 0..=100 is an error that names the place.
//! Architecture Invariant: this module and [`evaluate`] do no IO and know nothing of sqlx, axum
//! or lettre; callers hand them text and samples.

pub mod evaluate;
pub mod recommend;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use crate::core::calendar::WorkingDays;
use crate::core::domain::{DepartmentId, Percent, ProjectId, Resource};
use crate::core::obligations::ObligationKind;

/// The Pingdu defaults, shipped in the binary so the daemon runs without a rules directory.
pub const BUILTIN_RULES: &str = include_str!("../../../rules/pingdu.toml");

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("rules file {origin}: {source}")]
    Syntax {
        origin: String,
        #[source]
        source: toml::de::Error,
    },
    #[error("rules file {origin}: {message}")]
    Invalid { origin: String, message: String },
}

/// How a statistic is compared with its threshold. The article's words map exactly:
/// 未超过 "not above" is `<=`, 不到 "below" is `<`, 超过 "above" is `>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn as_str(self) -> &'static str {
        match self {
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// A comparison such as `<= 25`: written in the rules file as a string.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    op: CmpOp,
    value: Percent,
}

impl Threshold {
    pub fn value(&self) -> f64 {
        self.value.get()
    }

    pub fn op(&self) -> CmpOp {
        self.op
    }

    /// Whether a statistic of `v` meets this comparison.
    pub fn matches(&self, v: f64) -> bool {
        let t = self.value.get();
        match self.op {
            CmpOp::Lt => v < t,
            CmpOp::Le => v <= t,
            CmpOp::Gt => v > t,
            CmpOp::Ge => v >= t,
        }
    }
}

impl FromStr for Threshold {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (op, rest) = if let Some(r) = s.strip_prefix("<=") {
            (CmpOp::Le, r)
        } else if let Some(r) = s.strip_prefix(">=") {
            (CmpOp::Ge, r)
        } else if let Some(r) = s.strip_prefix('<') {
            (CmpOp::Lt, r)
        } else if let Some(r) = s.strip_prefix('>') {
            (CmpOp::Gt, r)
        } else {
            return Err(format!(
                "threshold {s:?} must start with <, <=, > or >= (e.g. \"<= 25\")"
            ));
        };
        let number: f64 = rest
            .trim()
            .trim_end_matches('%')
            .trim()
            .parse()
            .map_err(|_| format!("threshold {s:?}: {:?} is not a number", rest.trim()))?;
        let value = Percent::try_from(number).map_err(|e| format!("threshold {s:?}: {e}"))?;
        Ok(Threshold { op, value })
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op.as_str(), self.value)
    }
}

/// A percentile in hundredths of a percent (p95 = 9500), so ranks are computed in integers
/// and `ceil(0.95 * n)` never suffers from floating-point error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Percentile(u32);

impl Percentile {
    pub const P95: Percentile = Percentile(9500);

    /// Nearest-rank (1-based) for `n` sorted values: `ceil(p * n)`, at least 1.
    pub fn rank(self, n: usize) -> usize {
        let n = n as u64;
        let rank = (u64::from(self.0) * n).div_ceil(10_000);
        rank.max(1) as usize
    }
}

impl fmt::Display for Percentile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_multiple_of(100) {
            write!(f, "p{}", self.0 / 100)
        } else {
            write!(f, "p{}", f64::from(self.0) / 100.0)
        }
    }
}

/// How the samples in the window are summarised into one figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    Max,
    Mean,
    Percentile(Percentile),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statistic {
    /// The aggregate over all samples in the window.
    Samples(Aggregate),
    /// The latest sample in the window.
    Latest,
    /// Each day's peak (max, Asia/Shanghai days), then the aggregate over the daily peaks.
    /// "Memory periodic peak" (内存周期性峰值) with the period a day.
    DailyPeak(Aggregate),
}

impl FromStr for Statistic {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        fn aggregate(s: &str) -> Option<Aggregate> {
            match s {
                "max" => Some(Aggregate::Max),
                "mean" => Some(Aggregate::Mean),
                _ => {
                    let p: f64 = s.strip_prefix('p')?.parse().ok()?;
                    let hundredths = (p * 100.0).round();
                    (p > 0.0 && p <= 100.0 && (hundredths / 100.0 - p).abs() < 1e-9)
                        .then_some(Aggregate::Percentile(Percentile(hundredths as u32)))
                }
            }
        }
        let parsed = match s {
            "latest" => Some(Statistic::Latest),
            _ => match s.strip_prefix("daily_peak.") {
                Some(agg) => aggregate(agg).map(Statistic::DailyPeak),
                None => aggregate(s).map(Statistic::Samples),
            },
        };
        parsed.ok_or_else(|| {
            format!(
                "statistic {s:?} is not one of: latest, max, mean, pNN (e.g. p95), \
                 daily_peak.max, daily_peak.mean, daily_peak.pNN"
            )
        })
    }
}

impl fmt::Display for Statistic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn agg(a: &Aggregate) -> String {
            match a {
                Aggregate::Max => "max".into(),
                Aggregate::Mean => "mean".into(),
                Aggregate::Percentile(p) => p.to_string(),
            }
        }
        match self {
            Statistic::Latest => f.write_str("latest"),
            Statistic::Samples(a) => f.write_str(&agg(a)),
            Statistic::DailyPeak(a) => write!(f, "daily_peak.{}", agg(a)),
        }
    }
}

/// The rule for one resource.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResourceRule {
    pub statistic: Statistic,
    pub downsize: Threshold,
    pub expand: Threshold,
    /// The utilisation a recommended new size aims at: inside the ok band (neither downsize
    /// nor expand), checked when the rules are read.
    pub target: Percent,
}

impl ResourceRule {
    /// Whether a statistic of `v` is in neither downsize nor expansion territory.
    pub fn in_band(&self, v: f64) -> bool {
        !self.downsize.matches(v) && !self.expand.matches(v)
    }
}

/// The rules for the three resources, as they apply to one VM.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResourceRules {
    pub cpu: ResourceRule,
    pub memory: ResourceRule,
    pub disk: ResourceRule,
}

impl ResourceRules {
    pub fn get(&self, r: Resource) -> &ResourceRule {
        match r {
            Resource::Cpu => &self.cpu,
            Resource::Memory => &self.memory,
            Resource::Disk => &self.disk,
        }
    }

    fn get_mut(&mut self, r: Resource) -> &mut ResourceRule {
        match r {
            Resource::Cpu => &mut self.cpu,
            Resource::Memory => &mut self.memory,
            Resource::Disk => &mut self.disk,
        }
    }
}

/// Which samples count and how many days of them are needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Samples with `at - days < ts <= at` count.
    pub days: u32,
    /// Fewer distinct Asia/Shanghai days with samples than this -> `insufficient_data`.
    pub min_days_with_samples: u32,
}

#[derive(Debug, Clone, PartialEq)]
enum Scope {
    Department(DepartmentId),
    Project(ProjectId),
}

#[derive(Debug, Clone, PartialEq)]
struct Override {
    scope: Scope,
    changes: Vec<(Resource, RawResourcePatch)>,
    unused: Option<RawUnused>,
}

/// When a system counts as no longer used (Pingdu art. 13: 当系统不再使用时; Jilin art. 12:
/// 使用范围小、频度低): over the last `lookback_days` Asia/Shanghai days, every day shows no
/// use. Defaults and their sources are in the rules file's `[unused]` section.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UnusedRule {
    /// `false`: the VM is never judged unused (e.g. a disaster-recovery standby project).
    pub enabled: bool,
    /// Days judged: the evaluation day and the days before it.
    pub lookback_days: u32,
    /// Fewer days with samples in the lookback than this -> `insufficient_data`.
    pub min_days_observed: u32,
    /// No sample's CPU above this (the maximum over the lookback).
    pub cpu_max: Percent,
    /// No day's network traffic, received plus sent, above this many bytes (a day's mean rate
    /// times 86,400 s). Not judged where the agent reports no rates.
    pub network_max_bytes_per_day: u64,
    /// Memory not growing: the last day's mean at most this many points above the first day's.
    pub memory_growth_max_points: f64,
    /// No day with more inbound connections than this on average. Not judged where the agent
    /// reports none.
    pub inbound_connections_max: f64,
}

/// Working-day periods of the obligations and the center's reminder practice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadlineRules {
    /// Each kind's period, in [`ObligationKind::ALL`] order, read from the rules file entry
    /// [`ObligationKind::period_key`] names.
    periods: [WorkingDays; ObligationKind::ALL.len()],
    pub reminder_before: WorkingDays,
    pub silent_agent: WorkingDays,
}

impl DeadlineRules {
    /// The period of an obligation of `kind` (from the rules file entry its kind names).
    pub fn period(&self, kind: ObligationKind) -> WorkingDays {
        self.periods[kind.index()]
    }
}

/// When agent evidence counts as "deployed": the first day with `min_samples` samples whose
/// CPU is above `cpu_above`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeploymentInference {
    pub min_samples: u32,
    pub cpu_above: Percent,
}

/// How long samples are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub raw_samples_days: u32,
    pub rollup_days: u32,
}

pub use crate::core::domain::Language;

/// How notices reach departments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoticeRules {
    /// Hold new notices until staff approve them (`cloudgov notices approve`).
    pub require_approval: bool,
    pub language: Language,
    /// The utilisation a recommended new size aims at, for resources whose rule names no
    /// `target_pct` of its own.
    pub target_utilisation: Percent,
}

/// A parsed, checked rules file.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSet {
    window: Window,
    defaults: ResourceRules,
    overrides: Vec<Override>,
    deadlines: DeadlineRules,
    deployment_inference: Option<DeploymentInference>,
    notices: NoticeRules,
    network: crate::core::network::NetworkRules,
    retention: Retention,
    unused: UnusedRule,
}

impl RuleSet {
    pub fn builtin() -> Result<RuleSet, RulesError> {
        RuleSet::parse("(built-in rules/pingdu.toml)", BUILTIN_RULES)
    }

    pub fn window(&self) -> Window {
        self.window
    }

    pub fn defaults(&self) -> &ResourceRules {
        &self.defaults
    }

    pub fn deadlines(&self) -> DeadlineRules {
        self.deadlines
    }

    pub fn notices(&self) -> NoticeRules {
        self.notices
    }

    pub fn retention(&self) -> Retention {
        self.retention
    }

    pub fn network(&self) -> &crate::core::network::NetworkRules {
        &self.network
    }

    /// `None` when inference is switched off: only confirmations count.
    pub fn deployment_inference(&self) -> Option<DeploymentInference> {
        self.deployment_inference
    }

    /// The unused-system rule without overrides (`[unused]`).
    pub fn unused_default(&self) -> UnusedRule {
        self.unused
    }

    /// The unused-system rule for a VM of `project` in `department`: the default, then the
    /// department's override, then the project's (field by field, as [`RuleSet::for_vm`]).
    pub fn unused_for(&self, department: &DepartmentId, project: &ProjectId) -> UnusedRule {
        let mut raw = self.unused.to_raw();
        for o in self.scoped(department, project) {
            if let Some(patch) = &o.unused {
                raw.patch(patch);
            }
        }
        // Each override was checked merged into the defaults; a department's and a project's
        // that contradict each other (a lookback shorter than the other's minimum) fall back
        // to the project's alone.
        check_unused(&raw, self.window).unwrap_or_else(|_| {
            let mut project_only = self.unused.to_raw();
            for o in self.scoped(department, project) {
                if let (Scope::Project(_), Some(patch)) = (&o.scope, &o.unused) {
                    project_only.patch(patch);
                }
            }
            check_unused(&project_only, self.window).unwrap_or(self.unused)
        })
    }

    /// The overrides that apply to a VM of `project` in `department`, the department's first.
    fn scoped<'a>(
        &'a self,
        department: &'a DepartmentId,
        project: &'a ProjectId,
    ) -> impl Iterator<Item = &'a Override> {
        self.overrides
            .iter()
            .filter(move |o| matches!(&o.scope, Scope::Department(d) if d == department))
            .chain(
                self.overrides
                    .iter()
                    .filter(move |o| matches!(&o.scope, Scope::Project(p) if p == project)),
            )
    }

    /// The rules for a VM of `project` in `department`: defaults, then the department's
    /// override, then the project's (the most specific wins, field by field).
    pub fn for_vm(&self, department: &DepartmentId, project: &ProjectId) -> ResourceRules {
        let mut rules = self.defaults;
        for o in self.scoped(department, project) {
            for (resource, patch) in &o.changes {
                patch.apply(rules.get_mut(*resource));
            }
        }
        rules
    }

    pub fn parse(origin: &str, text: &str) -> Result<RuleSet, RulesError> {
        let mut raw: RawRules = toml::from_str(text).map_err(|source| RulesError::Syntax {
            origin: origin.to_owned(),
            source,
        })?;
        let invalid = |message: String| RulesError::Invalid {
            origin: origin.to_owned(),
            message,
        };
        let window = Window {
            days: raw.evaluation.window_days,
            min_days_with_samples: raw.evaluation.min_days_with_samples,
        };
        if window.days == 0 || window.days > 366 {
            return Err(invalid(format!(
                "[evaluation] window_days = {} must be 1..=366",
                window.days
            )));
        }
        if window.min_days_with_samples > window.days {
            return Err(invalid(format!(
                "[evaluation] min_days_with_samples = {} exceeds window_days = {}",
                window.min_days_with_samples, window.days
            )));
        }
        let default_target = raw.notices.target_utilisation_pct;
        let resource = |name: &str, r: RawResource| -> Result<ResourceRule, RulesError> {
            let target = r.target_pct.unwrap_or(default_target);
            let rule = ResourceRule {
                target: Percent::try_from(target)
                    .map_err(|e| invalid(format!("[{name}] target_pct: {e}")))?,
                statistic: r
                    .statistic
                    .parse()
                    .map_err(|e| invalid(format!("[{name}] {e}")))?,
                downsize: r
                    .downsize
                    .parse()
                    .map_err(|e| invalid(format!("[{name}] downsize: {e}")))?,
                expand: r
                    .expand
                    .parse()
                    .map_err(|e| invalid(format!("[{name}] expand: {e}")))?,
            };
            check_rule(&rule).map_err(|e| invalid(format!("[{name}] {e}")))?;
            Ok(rule)
        };
        let defaults = ResourceRules {
            cpu: resource("cpu", raw.cpu)?,
            memory: resource("memory", raw.memory)?,
            disk: resource("disk", raw.disk)?,
        };
        let mut overrides = Vec::new();
        for (i, o) in raw.overrides.into_iter().enumerate() {
            let at = |m: String| invalid(format!("[[override]] #{}: {m}", i + 1));
            let scope = match (o.department, o.project) {
                (Some(d), None) => Scope::Department(d),
                (None, Some(p)) => Scope::Project(p),
                _ => return Err(at("name exactly one of department or project".into())),
            };
            let mut changes = Vec::new();
            for (resource, patch) in [
                (Resource::Cpu, o.cpu),
                (Resource::Memory, o.memory),
                (Resource::Disk, o.disk),
            ] {
                let Some(patch) = patch else { continue };
                let patch = patch.check().map_err(|e| at(format!("{resource}: {e}")))?;
                // Check the patched rule against the defaults so a half-override cannot make
                // downsize and expand overlap.
                let mut merged = *defaults.get(resource);
                patch.apply(&mut merged);
                check_rule(&merged).map_err(|e| at(format!("{resource}: {e}")))?;
                changes.push((resource, patch));
            }
            let unused = match o.unused {
                Some(patch) => {
                    let mut merged = raw.unused.clone();
                    merged.patch(&patch);
                    check_unused(&merged, window).map_err(|e| at(format!("unused: {e}")))?;
                    Some(patch)
                }
                None => None,
            };
            overrides.push(Override {
                scope,
                changes,
                unused,
            });
        }
        let unused =
            check_unused(&raw.unused, window).map_err(|e| invalid(format!("[unused] {e}")))?;
        let d = raw.deadlines;
        let positive = |section: &str, name: &str, n: u32| -> Result<WorkingDays, RulesError> {
            match WorkingDays::new(n) {
                Ok(w) if !w.is_zero() => Ok(w),
                Ok(_) => Err(invalid(format!("[{section}] {name} must be at least 1"))),
                Err(e) => Err(invalid(format!("[{section}] {name}: {e}"))),
            }
        };
        // Each obligation kind's period is the entry its kind names; an entry of a section
        // that no kind claims is a typo, named as such.
        let mut entries = BTreeMap::from([
            ("deadlines", d.periods),
            ("network", std::mem::take(&mut raw.network.periods)),
        ]);
        let claimed: Vec<(&str, &str)> =
            ObligationKind::ALL.map(ObligationKind::period_key).to_vec();
        if let Some((section, key)) = entries.iter().find_map(|(section, rest)| {
            rest.keys()
                .find(|key| !claimed.contains(&(*section, key.as_str())))
                .map(|key| (section, key))
        }) {
            return Err(invalid(format!("[{section}] {key} is not a known entry")));
        }
        let mut periods = Vec::with_capacity(ObligationKind::ALL.len());
        for kind in ObligationKind::ALL {
            let (section, key) = kind.period_key();
            let value = entries
                .get_mut(section)
                .and_then(|entries| entries.remove(key))
                .ok_or_else(|| {
                    invalid(format!(
                        "[{section}] {key} is missing: the period of {kind} obligations, in working days"
                    ))
                })?;
            let n = value
                .as_integer()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    invalid(format!(
                        "[{section}] {key} = {value} is not a number of working days"
                    ))
                })?;
            periods.push(positive(section, key, n)?);
        }
        let deadlines = DeadlineRules {
            periods: periods
                .try_into()
                .map_err(|_| invalid("every obligation kind has one period".into()))?,
            reminder_before: positive(
                "deadlines",
                "reminder_working_days_before",
                d.reminder_working_days_before,
            )?,
            silent_agent: positive(
                "deadlines",
                "silent_agent_working_days",
                d.silent_agent_working_days,
            )?,
        };
        let adjustment = deadlines.period(ObligationKind::Adjustment);
        if deadlines.reminder_before.get() >= adjustment.get() {
            return Err(invalid(format!(
                "[deadlines] reminder_working_days_before = {} must be less than adjustment_working_days = {adjustment}",
                deadlines.reminder_before
            )));
        }
        let inference = raw.deployment_inference;
        let deployment_inference = if inference.enabled {
            if inference.min_samples == 0 {
                return Err(invalid(
                    "[deployment_inference] min_samples must be at least 1".into(),
                ));
            }
            Some(DeploymentInference {
                min_samples: inference.min_samples,
                cpu_above: Percent::try_from(inference.cpu_above_pct)
                    .map_err(|e| invalid(format!("[deployment_inference] cpu_above_pct: {e}")))?,
            })
        } else {
            None
        };
        let target = raw.notices.target_utilisation_pct;
        let notices = NoticeRules {
            require_approval: raw.notices.require_approval,
            language: raw.notices.language,
            target_utilisation: Percent::try_from(target)
                .ok()
                .filter(|p| p.get() > 0.0)
                .ok_or_else(|| {
                    invalid(format!(
                        "[notices] target_utilisation_pct = {target} must be within (0, 100]"
                    ))
                })?,
        };
        let n = raw.network;
        let managed = n
            .managed_cidrs
            .iter()
            .map(|c| {
                c.parse::<ipnet::IpNet>().map_err(|e| {
                    invalid(format!("[network] managed_cidrs: {c:?} is not a CIDR: {e}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if n.window_days == 0 || n.window_days > 366 {
            return Err(invalid(format!(
                "[network] window_days = {} must be 1..=366",
                n.window_days
            )));
        }
        if n.router_min_ips < 2 {
            return Err(invalid(format!(
                "[network] router_min_ips = {} must be at least 2",
                n.router_min_ips
            )));
        }
        let network = crate::core::network::NetworkRules {
            managed,
            window_days: n.window_days,
            // The registration obligation's period (art. 14): see `ObligationKind::Registration`.
            stale_after: deadlines.period(ObligationKind::Registration),
            router_min_ips: n.router_min_ips as usize,
            router_ouis: crate::core::network::parse_router_ouis(
                crate::core::network::BUILTIN_ROUTER_OUIS,
            )
            .map_err(|e| invalid(format!("built-in OUI list: {e}")))?,
        };
        let retention = Retention {
            raw_samples_days: raw.retention.raw_samples_days,
            rollup_days: raw.retention.rollup_days,
        };
        if retention.raw_samples_days < window.days {
            return Err(invalid(format!(
                "[retention] raw_samples_days = {} is shorter than the evaluation window ({} days)",
                retention.raw_samples_days, window.days
            )));
        }
        if retention.rollup_days < 3 * 366 {
            return Err(invalid(format!(
                "[retention] rollup_days = {} must keep at least three years (1098)",
                retention.rollup_days
            )));
        }
        Ok(RuleSet {
            window,
            defaults,
            overrides,
            deadlines,
            deployment_inference,
            notices,
            network,
            retention,
            unused,
        })
    }
}

/// Checks the `[unused]` section (or an override merged into it) against the window it is
/// judged in: the lookback lies inside the evaluation window, whose days are what is read.
fn check_unused(raw: &RawUnused, window: Window) -> Result<UnusedRule, String> {
    let lookback = raw.lookback_days.ok_or("lookback_days is missing")?;
    if lookback == 0 || lookback > window.days {
        return Err(format!(
            "lookback_days = {lookback} must be 1..={} (the evaluation window)",
            window.days
        ));
    }
    let min_days = raw
        .min_days_observed
        .ok_or("min_days_observed is missing")?;
    if min_days == 0 || min_days > lookback {
        return Err(format!(
            "min_days_observed = {min_days} must be 1..={lookback} (the lookback)"
        ));
    }
    let cpu = raw.cpu_max_pct.ok_or("cpu_max_pct is missing")?;
    let cpu_max = Percent::try_from(cpu).map_err(|e| format!("cpu_max_pct: {e}"))?;
    let number = |name: &str, v: Option<f64>| -> Result<f64, String> {
        match v {
            Some(v) if v.is_finite() && v >= 0.0 => Ok(v),
            Some(v) => Err(format!("{name} = {v} must be a number of at least 0")),
            None => Err(format!("{name} is missing")),
        }
    };
    Ok(UnusedRule {
        enabled: raw.enabled.ok_or("enabled is missing")?,
        lookback_days: lookback,
        min_days_observed: min_days,
        cpu_max,
        network_max_bytes_per_day: raw
            .network_max_bytes_per_day
            .ok_or("network_max_bytes_per_day is missing")?,
        memory_growth_max_points: number("memory_growth_max_points", raw.memory_growth_max_points)?,
        inbound_connections_max: number("inbound_connections_max", raw.inbound_connections_max)?,
    })
}

/// A VM must never be told to downsize and expand at once; downsize is a "below" comparison
/// and expand an "above" one (the article's words), and the target lies between them.
fn check_rule(rule: &ResourceRule) -> Result<(), String> {
    if !matches!(rule.downsize.op(), CmpOp::Lt | CmpOp::Le) {
        return Err(format!(
            "downsize ({}) must be a < or <= comparison",
            rule.downsize
        ));
    }
    if !matches!(rule.expand.op(), CmpOp::Gt | CmpOp::Ge) {
        return Err(format!(
            "expand ({}) must be a > or >= comparison",
            rule.expand
        ));
    }

    for v in (0..=10_000).map(|i| f64::from(i) / 100.0) {
        if rule.downsize.matches(v) && rule.expand.matches(v) {
            return Err(format!(
                "downsize ({}) and expand ({}) overlap at {v}",
                rule.downsize, rule.expand
            ));
        }
    }
    if !rule.in_band(rule.target.get()) {
        return Err(format!(
            "target_pct = {} must lie between downsize ({}) and expand ({})",
            rule.target, rule.downsize, rule.expand
        ));
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    evaluation: RawEvaluation,
    cpu: RawResource,
    memory: RawResource,
    disk: RawResource,
    deadlines: RawDeadlines,
    deployment_inference: RawInference,
    notices: RawNotices,
    network: RawNetwork,
    retention: RawRetention,
    unused: RawUnused,
    #[serde(default, rename = "override")]
    overrides: Vec<RawOverride>,
}

/// `[unused]`, and an override's `unused = { ... }` (every field optional there).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUnused {
    enabled: Option<bool>,
    lookback_days: Option<u32>,
    min_days_observed: Option<u32>,
    cpu_max_pct: Option<f64>,
    network_max_bytes_per_day: Option<u64>,
    memory_growth_max_points: Option<f64>,
    inbound_connections_max: Option<f64>,
}

impl RawUnused {
    /// Sets the fields `patch` names.
    fn patch(&mut self, patch: &RawUnused) {
        macro_rules! take {
            ($($f:ident),*) => { $( if patch.$f.is_some() { self.$f = patch.$f; } )* }
        }
        take!(
            enabled,
            lookback_days,
            min_days_observed,
            cpu_max_pct,
            network_max_bytes_per_day,
            memory_growth_max_points,
            inbound_connections_max
        );
    }
}

impl UnusedRule {
    /// The comparison a `usage` finding states: unused when the CPU maximum is not above the
    /// rule's, e.g. `<= 5`.
    pub fn comparison(&self) -> String {
        format!("<= {}", self.cpu_max)
    }

    fn to_raw(self) -> RawUnused {
        RawUnused {
            enabled: Some(self.enabled),
            lookback_days: Some(self.lookback_days),
            min_days_observed: Some(self.min_days_observed),
            cpu_max_pct: Some(self.cpu_max.get()),
            network_max_bytes_per_day: Some(self.network_max_bytes_per_day),
            memory_growth_max_points: Some(self.memory_growth_max_points),
            inbound_connections_max: Some(self.inbound_connections_max),
        }
    }
}

// No `deny_unknown_fields` (serde cannot with `flatten`): the parser names leftover entries.
#[derive(Debug, Deserialize)]
struct RawDeadlines {
    reminder_working_days_before: u32,
    silent_agent_working_days: u32,
    /// The obligations' periods (see `ObligationKind::period_key`), and anything else, which
    /// the parser names as unknown.
    #[serde(flatten)]
    periods: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    raw_samples_days: u32,
    rollup_days: u32,
}

// As `RawDeadlines`.
#[derive(Debug, Deserialize)]
struct RawNetwork {
    managed_cidrs: Vec<String>,
    window_days: u32,
    router_min_ips: u32,
    /// As [`RawDeadlines::periods`].
    #[serde(flatten)]
    periods: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotices {
    require_approval: bool,
    language: Language,
    target_utilisation_pct: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInference {
    enabled: bool,
    min_samples: u32,
    cpu_above_pct: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvaluation {
    window_days: u32,
    min_days_with_samples: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResource {
    statistic: String,
    downsize: String,
    expand: String,
    /// Default: `[notices] target_utilisation_pct`.
    target_pct: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOverride {
    department: Option<DepartmentId>,
    project: Option<ProjectId>,
    cpu: Option<RawPatch>,
    memory: Option<RawPatch>,
    disk: Option<RawPatch>,
    unused: Option<RawUnused>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPatch {
    statistic: Option<String>,
    downsize: Option<String>,
    expand: Option<String>,
    target_pct: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct RawResourcePatch {
    statistic: Option<Statistic>,
    downsize: Option<Threshold>,
    expand: Option<Threshold>,
    target: Option<Percent>,
}

impl RawPatch {
    fn check(self) -> Result<RawResourcePatch, String> {
        Ok(RawResourcePatch {
            statistic: self.statistic.map(|s| s.parse()).transpose()?,
            downsize: self
                .downsize
                .map(|s| s.parse())
                .transpose()
                .map_err(|e| format!("downsize: {e}"))?,
            expand: self
                .expand
                .map(|s| s.parse())
                .transpose()
                .map_err(|e| format!("expand: {e}"))?,
            target: self
                .target_pct
                .map(Percent::try_from)
                .transpose()
                .map_err(|e| format!("target_pct: {e}"))?,
        })
    }
}

impl RawResourcePatch {
    fn apply(&self, rule: &mut ResourceRule) {
        if let Some(s) = self.statistic {
            rule.statistic = s;
        }
        if let Some(t) = self.downsize {
            rule.downsize = t;
        }
        if let Some(t) = self.expand {
            rule.expand = t;
        }
        if let Some(t) = self.target {
            rule.target = t;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builtin() -> RuleSet {
        RuleSet::builtin().expect("built-in rules parse")
    }

    #[test]
    fn builtin_rules_are_the_pingdu_defaults() {
        let r = builtin();
        assert_eq!(
            r.window(),
            Window {
                days: 30,
                min_days_with_samples: 7
            }
        );
        let d = r.defaults();
        assert_eq!(d.cpu.statistic.to_string(), "p95");
        assert_eq!(d.cpu.downsize.to_string(), "<= 25");
        assert_eq!(d.cpu.expand.to_string(), "> 75");
        assert_eq!(d.memory.statistic.to_string(), "daily_peak.max");
        assert_eq!(d.memory.downsize.to_string(), "<= 30");
        assert_eq!(d.memory.expand.to_string(), "> 75");
        assert_eq!(d.disk.statistic.to_string(), "latest");
        assert_eq!(d.disk.downsize.to_string(), "< 50");
        assert_eq!(d.disk.expand.to_string(), "> 75");
        let dl = r.deadlines();
        assert_eq!(
            (
                dl.period(ObligationKind::Deployment).get(),
                dl.period(ObligationKind::Adjustment).get(),
                dl.period(ObligationKind::Filing).get(),
            ),
            (10, 10, 20)
        );
        assert_eq!((dl.reminder_before.get(), dl.silent_agent.get()), (3, 5));
        assert!(r.deployment_inference().is_some());
    }

    #[test]
    fn thresholds_parse_and_compare_exactly() {
        let le: Threshold = "<= 25".parse().expect("parse");
        assert!(le.matches(25.0) && !le.matches(25.1));
        let lt: Threshold = "<50".parse().expect("parse");
        assert!(lt.matches(49.9) && !lt.matches(50.0));
        let gt: Threshold = "> 75%".parse().expect("parse");
        assert!(!gt.matches(75.0) && gt.matches(75.1));
        assert!("= 3".parse::<Threshold>().is_err());
        assert!(
            "<= 101"
                .parse::<Threshold>()
                .unwrap_err()
                .contains("outside 0..=100")
        );
        assert!(
            "<= abc"
                .parse::<Threshold>()
                .unwrap_err()
                .contains("not a number")
        );
    }

    #[test]
    fn statistics_parse() {
        assert_eq!(
            "p95".parse(),
            Ok(Statistic::Samples(Aggregate::Percentile(Percentile(9500))))
        );
        assert_eq!(
            "p99.9".parse::<Statistic>().map(|s| s.to_string()),
            Ok("p99.9".into())
        );
        assert_eq!(
            "daily_peak.p50".parse::<Statistic>().map(|s| s.to_string()),
            Ok("daily_peak.p50".into())
        );
        assert!("p0".parse::<Statistic>().is_err());
        assert!("p101".parse::<Statistic>().is_err());
        assert!(
            "median"
                .parse::<Statistic>()
                .unwrap_err()
                .contains("not one of")
        );
    }

    #[test]
    fn nearest_rank_is_integer_exact() {
        let p95 = Percentile(9500);
        assert_eq!(p95.rank(20), 19);
        assert_eq!(p95.rank(100), 95);
        assert_eq!(p95.rank(101), 96);
        assert_eq!(p95.rank(1), 1);
        assert_eq!(Percentile(10_000).rank(7), 7);
    }

    #[test]
    fn overrides_apply_department_then_project() {
        let text = format!(
            "{BUILTIN_RULES}\n[[override]]\ndepartment = \"health\"\ncpu = {{ downsize = \"<= 10\" }}\n\
             [[override]]\nproject = \"his\"\ncpu = {{ expand = \"> 90\" }}\nmemory = {{ statistic = \"daily_peak.p95\" }}\n"
        );
        let r = RuleSet::parse("test", &text).expect("parse");
        let health = DepartmentId::try_from("health").expect("id");
        let other = DepartmentId::try_from("other").expect("id");
        let his = ProjectId::try_from("his").expect("id");
        let x = ProjectId::try_from("x").expect("id");
        let rules = r.for_vm(&health, &his);
        assert_eq!(rules.cpu.downsize.to_string(), "<= 10");
        assert_eq!(rules.cpu.expand.to_string(), "> 90");
        assert_eq!(rules.memory.statistic.to_string(), "daily_peak.p95");
        assert_eq!(r.for_vm(&other, &x), *r.defaults());
    }

    #[test]
    fn bad_files_name_what_is_wrong() {
        for (typo, named) in [
            (
                "silent_agent_working_days",
                "missing field `silent_agent_working_days`",
            ),
            (
                "filing_working_days_after_deployment",
                "[deadlines] filing_working_days_after_deploymenz",
            ),
            (
                "stale_registration_working_days",
                "[network] stale_registration_working_dayz",
            ),
        ] {
            let text = BUILTIN_RULES.replace(typo, &format!("{}z", &typo[..typo.len() - 1]));
            let err = RuleSet::parse("f.toml", &text)
                .expect_err("typo")
                .to_string();
            assert!(err.contains(named), "{err}");
        }
        let text = BUILTIN_RULES.replace(
            "adjustment_working_days = 10",
            "adjustment_working_days = \"ten\"",
        );
        let err = RuleSet::parse("f.toml", &text)
            .expect_err("not a number")
            .to_string();
        assert!(
            err.contains("[deadlines] adjustment_working_days = \"ten\" is not a number"),
            "{err}"
        );
        let text = BUILTIN_RULES.replace(
            "filing_working_days_after_deployment = 20",
            "filing_working_days_after_deployment = 0",
        );
        let err = RuleSet::parse("f.toml", &text)
            .expect_err("zero")
            .to_string();
        assert!(err.contains("at least 1"), "{err}");

        let typo = BUILTIN_RULES.replace("window_days", "window_dayz");
        let err = RuleSet::parse("f.toml", &typo)
            .expect_err("typo")
            .to_string();
        assert!(
            err.contains("f.toml") && err.contains("window_dayz"),
            "{err}"
        );

        let overlap = BUILTIN_RULES.replacen("\"> 75\"", "\"> 20\"", 1);
        let err = RuleSet::parse("f.toml", &overlap)
            .expect_err("overlap")
            .to_string();
        assert!(err.contains("[cpu]") && err.contains("overlap"), "{err}");

        let outside = BUILTIN_RULES.replacen("target_pct = 60", "target_pct = 45", 1);
        let err = RuleSet::parse("f.toml", &outside)
            .expect_err("target outside the band")
            .to_string();
        assert!(
            err.contains("[disk]") && err.contains("target_pct"),
            "{err}"
        );
        let upward = BUILTIN_RULES.replacen("downsize = \"< 50\"", "downsize = \"> 90\"", 1);
        let err = RuleSet::parse("f.toml", &upward)
            .expect_err("downsize must look down")
            .to_string();
        assert!(err.contains("< or <="), "{err}");

        let both = format!("{BUILTIN_RULES}\n[[override]]\ndepartment = \"a\"\nproject = \"b\"\n");
        let err = RuleSet::parse("f.toml", &both)
            .expect_err("scope")
            .to_string();
        assert!(err.contains("exactly one"), "{err}");
    }
}
