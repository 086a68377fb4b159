//! Resource requests (资源申请; Pingdu art. 12, 8, 7 and 9; Shandong art. 17): the request as a
//! department files it, and the size recommended for each requested VM from the measured usage
//! of the department's own most similar VMs.
//!
//! Sizing: each comparable VM's statistic (the rules' own: CPU p95, memory daily peak, latest
//! disk) times its allocation is what it actually uses. The largest such use among the
//! comparables, put on the requested size, is the projected statistic; where it lies in
//! downsize territory the size comes down, where it lies in expansion territory it goes up,
//! by the same arithmetic as notices' recommendations (`rules::recommend`), so the result lands
//! inside the rule's ok band. Inside the band, the size is as asked.
//!
//! Architecture Invariant: pure; no IO, no clock. The store hands in the comparables.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::core::domain::{
    DepartmentId, Direction, InvalidValue, Language, ProjectId, Resource, VmId, check_text,
};
use crate::core::rules::ResourceRules;
use crate::core::rules::recommend::{recommend, size_text};

/// Longest purpose or expected-load text.
pub const MAX_TEXT_CHARS: usize = 4000;
/// Most VMs in one request.
pub const MAX_VMS: usize = 200;

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    Submitted,
    Approved,
    Rejected,
    Delivered,
}

impl RequestState {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Submitted => "submitted",
            RequestState::Approved => "approved",
            RequestState::Rejected => "rejected",
            RequestState::Delivered => "delivered",
        }
    }
}

impl std::str::FromStr for RequestState {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            RequestState::Submitted,
            RequestState::Approved,
            RequestState::Rejected,
            RequestState::Delivered,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
        .ok_or_else(|| {
            InvalidValue::new(
                "request state",
                s,
                "is not submitted, approved, rejected or delivered",
            )
        })
    }
}

/// An allocation: vCPUs, memory and disk in GiB.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Size {
    pub vcpus: f64,
    pub memory_gib: f64,
    pub disk_gib: f64,
}

impl Size {
    pub fn get(&self, r: Resource) -> f64 {
        match r {
            Resource::Cpu => self.vcpus,
            Resource::Memory => self.memory_gib,
            Resource::Disk => self.disk_gib,
        }
    }

    fn set(&mut self, r: Resource, v: f64) {
        match r {
            Resource::Cpu => self.vcpus = v,
            Resource::Memory => self.memory_gib = v,
            Resource::Disk => self.disk_gib = v,
        }
    }

    /// Checks a size as someone typed it: whole vCPUs 1..=512, memory 0.5..=4096 GiB, disk
    /// 1..=65536 GiB.
    pub fn checked(vcpus: f64, memory_gib: f64, disk_gib: f64) -> Result<Size, String> {
        let bound = |name: &str, v: f64, lo: f64, hi: f64| {
            if v.is_finite() && (lo..=hi).contains(&v) {
                Ok(v)
            } else {
                Err(format!("{name} = {v} must be within {lo}..={hi}"))
            }
        };
        let vcpus = bound("vcpus", vcpus, 1.0, 512.0)?;
        if vcpus.fract() != 0.0 {
            return Err(format!("vcpus = {vcpus} must be a whole number"));
        }
        Ok(Size {
            vcpus,
            memory_gib: bound("memory_gib", memory_gib, 0.5, 4096.0)?,
            disk_gib: bound("disk_gib", disk_gib, 1.0, 65536.0)?,
        })
    }
}

/// One requested VM.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestedVm {
    pub id: VmId,
    pub size: Size,
}

/// A request as filed: checked once, fields private.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestForm {
    department: DepartmentId,
    project: ProjectId,
    /// The new project's name; `None`: an existing project.
    project_name: Option<String>,
    purpose: String,
    expected_load: String,
    desired_on: Option<NaiveDate>,
    submitted_on: Option<NaiveDate>,
    vms: Vec<RequestedVm>,
}

/// The TOML of `cloudgov requests submit FILE.toml` and the JSON of `POST /api/v1/requests`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequest {
    pub department: String,
    /// An existing project's id, or a new project's (then `project_name` names it).
    pub project: String,
    #[serde(default)]
    pub project_name: Option<String>,
    pub purpose: String,
    /// From the project's 资源需求分析 (art. 8).
    pub expected_load: String,
    /// `YYYY-MM-DD`.
    #[serde(default, deserialize_with = "optional_day")]
    pub desired_on: Option<NaiveDate>,
    /// Back-dated entry by staff, `YYYY-MM-DD`; default today.
    #[serde(default, deserialize_with = "optional_day")]
    pub submitted_on: Option<NaiveDate>,
    #[serde(rename = "vm")]
    pub vms: Vec<RawRequestVm>,
}

/// A day as a TOML date (`2025-09-26`), a string (`"2025-09-26"`), or JSON `null` (none).
fn optional_day<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Day {
        Toml(toml::value::Datetime),
        Text(String),
    }
    let text = match Option::<Day>::deserialize(d)? {
        None => return Ok(None),
        Some(Day::Toml(dt)) if dt.time.is_none() && dt.offset.is_none() => dt.to_string(),
        Some(Day::Toml(dt)) => {
            return Err(serde::de::Error::custom(format!(
                "expected a date YYYY-MM-DD, found {dt}"
            )));
        }
        Some(Day::Text(s)) => s,
    };
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("{text:?} is not a date YYYY-MM-DD: {e}")))
}

/// One `[[vm]]` of a request, or of an amendment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequestVm {
    pub id: String,
    pub vcpus: f64,
    pub memory_gib: f64,
    pub disk_gib: f64,
}

impl RawRequestVm {
    pub fn checked(&self, at: usize) -> Result<RequestedVm, String> {
        let id = VmId::try_from(self.id.trim()).map_err(|e| format!("vm #{at}: {e}"))?;
        let size = Size::checked(self.vcpus, self.memory_gib, self.disk_gib)
            .map_err(|e| format!("vm #{at} ({id}): {e}"))?;
        Ok(RequestedVm { id, size })
    }
}

/// Checks a list of `[[vm]]`: 1..=[`MAX_VMS`], ids distinct.
pub fn checked_vms(raw: &[RawRequestVm]) -> Result<Vec<RequestedVm>, String> {
    if raw.is_empty() || raw.len() > MAX_VMS {
        return Err(format!(
            "a request names 1 to {MAX_VMS} VMs ([[vm]]), not {}",
            raw.len()
        ));
    }
    let vms = raw
        .iter()
        .enumerate()
        .map(|(i, v)| v.checked(i + 1))
        .collect::<Result<Vec<_>, _>>()?;
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = vms.iter().find(|v| !seen.insert(v.id.as_str())) {
        return Err(format!("vm {} is named twice", dup.id));
    }
    Ok(vms)
}

impl RequestForm {
    /// Checks what was filed; `today` bounds the dates (nothing in the future is submitted).
    pub fn parse(raw: RawRequest, today: NaiveDate) -> Result<RequestForm, String> {
        let department = DepartmentId::try_from(raw.department.trim())
            .map_err(|e: InvalidValue| e.to_string())?;
        let project =
            ProjectId::try_from(raw.project.trim()).map_err(|e: InvalidValue| e.to_string())?;
        let text = |name: &'static str, v: &str, max: usize| -> Result<String, String> {
            let v = v.trim();
            if v.is_empty() {
                return Err(format!("{name} is empty"));
            }
            check_text(name, v, max).map_err(|e| e.to_string())?;
            Ok(v.to_owned())
        };
        let project_name = raw
            .project_name
            .as_deref()
            .map(|n| text("project_name", n, 200))
            .transpose()?;
        if let Some(d) = raw.submitted_on.filter(|d| *d > today) {
            return Err(format!(
                "submitted_on = {d} is in the future (today is {today})"
            ));
        }
        if let Some(d) = raw
            .submitted_on
            .filter(|d| *d < NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or(*d))
        {
            return Err(format!("submitted_on = {d} is before 2000"));
        }
        Ok(RequestForm {
            department,
            project,
            project_name,
            purpose: text("purpose", &raw.purpose, MAX_TEXT_CHARS)?,
            expected_load: text("expected_load", &raw.expected_load, MAX_TEXT_CHARS)?,
            desired_on: raw.desired_on,
            submitted_on: raw.submitted_on,
            vms: checked_vms(&raw.vms)?,
        })
    }

    pub fn department(&self) -> &DepartmentId {
        &self.department
    }
    pub fn project(&self) -> &ProjectId {
        &self.project
    }
    pub fn project_name(&self) -> Option<&str> {
        self.project_name.as_deref()
    }
    pub fn purpose(&self) -> &str {
        &self.purpose
    }
    pub fn expected_load(&self) -> &str {
        &self.expected_load
    }
    pub fn desired_on(&self) -> Option<NaiveDate> {
        self.desired_on
    }
    pub fn submitted_on(&self) -> Option<NaiveDate> {
        self.submitted_on
    }
    pub fn vms(&self) -> &[RequestedVm] {
        &self.vms
    }
}

/// An existing VM whose usage is evidence: its allocation and its latest statistics (percent;
/// `None` where the finding had too few days).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparable {
    pub vm: String,
    /// Of the request's own project (else only of its department).
    pub same_project: bool,
    pub size: Size,
    pub cpu: Option<f64>,
    pub memory: Option<f64>,
    pub disk: Option<f64>,
}

impl Comparable {
    fn statistic(&self, r: Resource) -> Option<f64> {
        match r {
            Resource::Cpu => self.cpu,
            Resource::Memory => self.memory,
            Resource::Disk => self.disk,
        }
    }

    /// How unlike `size` it is: the sum of the absolute log ratios of the three resources.
    fn distance(&self, size: &Size) -> f64 {
        Resource::ALL
            .iter()
            .map(|&r| {
                (self.size.get(r).max(0.1) / size.get(r).max(0.1))
                    .ln()
                    .abs()
            })
            .sum()
    }
}

/// Most comparables a recommendation rests on.
pub const MAX_COMPARABLES: usize = 5;

/// The recommendation for one requested VM.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sizing {
    pub recommended: Size,
    /// The VMs it rests on, most similar first (the same project's before the department's).
    pub comparables: Vec<String>,
    /// One line per resource (cpu, memory, disk), citing the figures.
    pub reasons_zh: Vec<String>,
    pub reasons_en: Vec<String>,
}

impl Sizing {
    pub fn reasons(&self, language: Language) -> &[String] {
        match language {
            Language::Zh => &self.reasons_zh,
            Language::En => &self.reasons_en,
        }
    }
}

fn statistic_zh(r: Resource) -> &'static str {
    match r {
        Resource::Cpu => "CPU使用率第95百分位数",
        Resource::Memory => "内存周期性(日)峰值",
        Resource::Disk => "硬盘使用率最新值",
    }
}

fn statistic_en(r: Resource) -> &'static str {
    match r {
        Resource::Cpu => "CPU p95",
        Resource::Memory => "memory daily peak",
        Resource::Disk => "latest disk use",
    }
}

/// The size to recommend for `asked` from `comparables` (any order), under `rules`.
pub fn size_request(asked: Size, comparables: &[Comparable], rules: &ResourceRules) -> Sizing {
    // The same project's VMs if it has any with data, else the department's; the most similar
    // in size first.
    let mut recommended = asked;
    let (mut reasons_zh, mut reasons_en) = (Vec::new(), Vec::new());
    let mut used = Vec::new();
    for r in Resource::ALL {
        let rule = rules.get(r);
        let with_data = |same: bool| -> Vec<&Comparable> {
            comparables
                .iter()
                .filter(|c| {
                    c.same_project == same && c.statistic(r).is_some() && c.size.get(r) > 0.0
                })
                .collect()
        };
        let (mut similar, same_project) = match with_data(true) {
            v if !v.is_empty() => (v, true),
            _ => (with_data(false), false),
        };
        similar.sort_by(|a, b| {
            a.distance(&asked)
                .total_cmp(&b.distance(&asked))
                .then(a.vm.cmp(&b.vm))
        });
        similar.truncate(MAX_COMPARABLES);
        let asked_r = asked.get(r);
        let unit = if r == Resource::Cpu { "vCPU" } else { "GiB" };
        if similar.is_empty() {
            reasons_zh.push(format!(
                "{}:本部门暂无可比较的在用云主机监测数据,按申请配置{}推荐。",
                r.title(Language::Zh),
                size_text(r, asked_r)
            ));
            reasons_en.push(format!(
                "{}: no comparable VM of the department has usage data; recommended as asked ({}).",
                r.as_str(),
                size_text(r, asked_r)
            ));
            continue;
        }
        // What each similar VM should have: the notices' arithmetic on its own size and
        // statistic (its size where it is inside the band already).
        let mut expansion = false;
        let mut settled: Vec<f64> = similar
            .iter()
            .map(|c| {
                let (size, value) = (c.size.get(r), c.statistic(r).unwrap_or(0.0));
                let direction = if rule.downsize.matches(value) {
                    Some(Direction::Downsize)
                } else if rule.expand.matches(value) {
                    expansion = true;
                    Some(Direction::Expand)
                } else {
                    None
                };
                direction
                    .and_then(|d| recommend(r, rule, d, size, value).recommended)
                    .unwrap_or(size)
            })
            .collect();
        settled.sort_by(f64::total_cmp);
        let median = settled[settled.len() / 2];
        // Never more than asked, unless the similar VMs are in expansion territory.
        let size = if median > asked_r && !expansion {
            asked_r
        } else {
            median
        };
        recommended.set(r, size);
        for c in &similar {
            if !used.contains(&c.vm) {
                used.push(c.vm.clone());
            }
        }
        let names: Vec<&str> = similar.iter().map(|c| c.vm.as_str()).collect();
        let stats: Vec<f64> = similar.iter().filter_map(|c| c.statistic(r)).collect();
        let (lo, hi) = (
            stats.iter().copied().fold(f64::INFINITY, f64::min),
            stats.iter().copied().fold(0.0, f64::max),
        );
        let (first, last) = (settled[0], settled[settled.len() - 1]);
        let (change_zh, change_en) = if size < asked_r {
            ("建议核减为", "recommended down to")
        } else if size > asked_r {
            ("建议增加为", "recommended up to")
        } else {
            ("建议按申请配置", "recommended as asked,")
        };
        reasons_zh.push(format!(
            "{}:{}相似云主机{}({}台){}为{:.1}%至{:.1}%;按其实际使用、使合理区间({}以外、{}以内)的配置为{}至{} {unit},取中位数{} {unit};申请{},{change_zh}{}。",
            r.title(Language::Zh),
            if same_project { "同项目" } else { "本部门" },
            names.join("、"),
            names.len(),
            statistic_zh(r),
            lo,
            hi,
            rule.downsize,
            rule.expand,
            first,
            last,
            median,
            size_text(r, asked_r),
            size_text(r, size),
        ));
        reasons_en.push(format!(
            "{}: {} similar VMs {} ({}) are at {:.1}% to {:.1}% ({}); sized to their use inside the band (neither {} nor {}) they need {} to {} {unit}, median {} {unit}; {} asked, {change_en} {}.",
            r.as_str(),
            if same_project { "the same project's" } else { "the department's" },
            names.join(", "),
            names.len(),
            lo,
            hi,
            statistic_en(r),
            rule.downsize,
            rule.expand,
            first,
            last,
            median,
            size_text(r, asked_r),
            size_text(r, size),
        ));
    }
    Sizing {
        recommended,
        comparables: used,
        reasons_zh,
        reasons_en,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::rules::RuleSet;

    fn rules() -> ResourceRules {
        *RuleSet::builtin().expect("rules").defaults()
    }

    fn web(vm: &str, cpu: f64, mem: f64, disk: f64) -> Comparable {
        Comparable {
            vm: vm.into(),
            same_project: true,
            size: Size {
                vcpus: 8.0,
                memory_gib: 16.0,
                disk_gib: 200.0,
            },
            cpu: Some(cpu),
            memory: Some(mem),
            disk: Some(disk),
        }
    }

    const ASKED: Size = Size {
        vcpus: 8.0,
        memory_gib: 16.0,
        disk_gib: 200.0,
    };

    #[test]
    fn four_quiet_web_vms_cut_every_resource_of_two_more() {
        let fleet = [
            web("web-01", 12.0, 22.0, 30.0),
            web("web-02", 11.5, 21.0, 29.0),
            web("web-03", 12.3, 22.4, 30.5),
            web("web-04", 10.9, 20.0, 28.0),
        ];
        let s = size_request(ASKED, &fleet, &rules());
        let r = s.recommended;
        assert!(
            r.vcpus < 8.0 && r.memory_gib < 16.0 && r.disk_gib < 200.0,
            "{r:?}"
        );
        // About 12% of 8 vCPU is about 1 vCPU: 2 vCPU puts it near 48%, inside (25, 75].
        assert_eq!((r.vcpus, r.memory_gib, r.disk_gib), (2.0, 7.0, 100.0));
        // At the recommended size, the typical (median) similar VM lands inside the band.
        for resource in Resource::ALL {
            let mut used: Vec<f64> = fleet
                .iter()
                .map(|c| c.statistic(resource).unwrap_or(0.0) / 100.0 * c.size.get(resource))
                .collect();
            used.sort_by(f64::total_cmp);
            let projected = used[used.len() / 2] / r.get(resource) * 100.0;
            assert!(
                rules().get(resource).in_band(projected),
                "{resource}: {projected}% at {}",
                r.get(resource)
            );
        }
        assert_eq!(s.reasons_zh.len(), 3);
        assert!(s.reasons_zh[0].contains("web-03") && s.reasons_zh[0].contains("12.3%"));
        assert!(
            s.reasons_en[0].contains("recommended down to 2 vCPU"),
            "{}",
            s.reasons_en[0]
        );
    }

    #[test]
    fn a_busy_department_is_not_cut() {
        let fleet = [
            web("app-01", 85.0, 60.0, 60.0),
            web("app-02", 80.0, 55.0, 60.0),
        ];
        let s = size_request(ASKED, &fleet, &rules());
        assert!(s.recommended.vcpus >= 8.0, "{:?}", s.recommended);
        assert!(
            s.reasons_zh[0].contains("建议增加为"),
            "{}",
            s.reasons_zh[0]
        );
        // Memory and disk in band: as asked.
        assert_eq!(s.recommended.memory_gib, 16.0);
        assert_eq!(s.recommended.disk_gib, 200.0);
    }

    #[test]
    fn without_comparables_the_request_stands_and_says_so() {
        let s = size_request(ASKED, &[], &rules());
        assert_eq!(s.recommended, ASKED);
        assert!(s.reasons_zh.iter().all(|l| l.contains("暂无可比较")));
        assert!(s.comparables.is_empty());
    }

    #[test]
    fn a_large_unlike_vm_does_not_inflate_the_recommendation() {
        // An application server asked like a database: two quiet app VMs and a busy, big-disk
        // database in the same project; the median follows the typical VM.
        let mut db = web("db-01", 55.0, 70.0, 62.0);
        db.size = Size {
            vcpus: 16.0,
            memory_gib: 64.0,
            disk_gib: 2000.0,
        };
        let fleet = [
            web("app-01", 14.0, 27.0, 22.0),
            web("app-02", 17.0, 46.0, 35.0),
            db,
        ];
        let asked = Size {
            vcpus: 16.0,
            memory_gib: 64.0,
            disk_gib: 500.0,
        };
        let s = size_request(asked, &fleet, &rules());
        assert!(s.recommended.disk_gib <= 500.0, "{:?}", s.recommended);
        assert!(s.recommended.vcpus < 16.0, "{:?}", s.recommended);
    }

    #[test]
    fn the_same_project_comes_before_the_department() {
        let mut other = web("dept-01", 70.0, 70.0, 70.0);
        other.same_project = false;
        let mut near = web("proj-01", 12.0, 22.0, 30.0);
        near.size.vcpus = 64.0; // far in size, but the same project
        let mut fleet = vec![other];
        fleet.extend((1..=5).map(|i| {
            let mut c = near.clone();
            c.vm = format!("proj-0{i}");
            c
        }));
        let s = size_request(ASKED, &fleet, &rules());
        assert!(
            !s.comparables.contains(&"dept-01".to_owned()),
            "{:?}",
            s.comparables
        );
    }

    #[test]
    fn a_form_is_checked_once() {
        let today = NaiveDate::from_ymd_opt(2025, 9, 26).expect("d");
        let raw = |vcpus: f64| RawRequest {
            department: "agri".into(),
            project: "portal".into(),
            project_name: None,
            purpose: "门户扩容".into(),
            expected_load: "日访问量约2万次".into(),
            desired_on: None,
            submitted_on: None,
            vms: vec![RawRequestVm {
                id: "web-05".into(),
                vcpus,
                memory_gib: 16.0,
                disk_gib: 200.0,
            }],
        };
        assert!(RequestForm::parse(raw(8.0), today).is_ok());
        let e = RequestForm::parse(raw(2.5), today).expect_err("half a vCPU");
        assert!(e.contains("vcpus"), "{e}");
        let mut future = raw(8.0);
        future.submitted_on = NaiveDate::from_ymd_opt(2025, 9, 27);
        assert!(RequestForm::parse(future, today).is_err());
        let mut twice = raw(8.0);
        twice.vms.push(twice.vms[0].clone());
        assert!(
            RequestForm::parse(twice, today)
                .expect_err("twice")
                .contains("named twice")
        );
    }
}
