//! The annual project performance review (Pingdu art. 10, Jilin art. 12): a year of day aggregates,
//! notices, deadlines and network findings per project, turned into a score, a grade and a
//! verdict, each explained line by line from the numbers.
//!
//! Architecture Invariant: `review::score` is pure: callers gather the year's figures
//! ([`ProjectYear`]) from the store; the review rules come from `rules/review.toml`.

pub mod rules;
pub mod score;

use serde::{Deserialize, Serialize};

/// Usage of one resource over the year, in percent of the allocation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub avg: f64,
    /// Nearest-rank p95 over the year's samples (from daily 1%-bucket histograms: exact to
    /// within 1 point of the raw samples).
    pub p95: f64,
}

/// One VM's year.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmYear {
    pub vm: String,
    pub vcpus: f64,
    pub memory_gib: f64,
    pub disk_gib: f64,
    pub cpu: Usage,
    pub memory: Usage,
    pub disk: Usage,
    /// Days of the year the VM was in service (delivered, not released).
    pub days_in_service: u32,
    /// Days with at least one sample.
    pub days_with_data: u32,
    /// Days whose daily statistic (CPU p95, memory peak, latest disk) was in downsize territory,
    /// per resource [cpu, memory, disk].
    pub downsize_days: [u32; 3],
    /// The same for expansion territory.
    pub expand_days: [u32; 3],
    /// Daily points for the utilisation chart: (day `YYYY-MM-DD`, CPU p95, memory peak, disk).
    pub daily: Vec<(String, f64, f64, f64)>,
    /// Days with data that showed no use by the unused-system rule's daily criteria (CPU
    /// maximum, the day's traffic, inbound connections; art. 13, Jilin art. 12).
    #[serde(default)]
    pub unused_days: u32,
}

/// A project's year as gathered from the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectYear {
    pub project: String,
    pub name: String,
    pub department: String,
    pub department_name: String,
    pub filed_on: Option<String>,
    /// The earliest deployment of the project's VMs, if any.
    pub first_deployed_on: Option<String>,
    /// The last day the project could be filed on time (first deployment + the rules' working days).
    pub filing_due: Option<String>,
    /// `filing_due` was counted into a year without calendar data (Monday-Friday assumed).
    #[serde(default)]
    pub filing_due_provisional: bool,
    pub vms: Vec<VmYear>,
    pub notices_received: u32,
    pub notices_done_on_time: u32,
    pub notices_done_late: u32,
    pub notices_overdue: u32,
    pub deployments_on_time: u32,
    pub deployments_late: u32,
    pub deployments_missing: u32,
    pub network_findings: u32,
    /// Resource requests of the project delivered this year (none: `None`).
    #[serde(default)]
    pub requested: Option<RequestedVsUsed>,
}

/// vCPUs, memory and disk in GiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Amounts {
    pub vcpus: f64,
    pub memory_gib: f64,
    pub disk_gib: f64,
}

impl Amounts {
    pub fn plus(self, vcpus: f64, memory_gib: f64, disk_gib: f64) -> Amounts {
        Amounts {
            vcpus: self.vcpus + vcpus,
            memory_gib: self.memory_gib + memory_gib,
            disk_gib: self.disk_gib + disk_gib,
        }
    }
}

/// A project's delivered requests: asked, approved, and used (the delivered VMs' year p95
/// times their allocation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestedVsUsed {
    pub requests: u32,
    pub vms: u32,
    pub asked: Amounts,
    pub approved: Amounts,
    pub used: Amounts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewVerdict {
    Keep,
    Consolidate,
    Cancel,
    /// Not filed (in time): the budget stops whatever the score (art. 10).
    NotFiled,
}

/// One component of the score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScorePart {
    pub name: String,
    pub weight: f64,
    /// 0..=100 before weighting.
    pub value: f64,
    pub points: f64,
}

/// The review of one project for one year.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectReview {
    pub year: i32,
    pub project: String,
    pub name: String,
    pub department: String,
    pub department_name: String,
    pub score: f64,
    pub grade: String,
    pub verdict: ReviewVerdict,
    /// Why, line by line, each line naming the figures it rests on.
    pub explanation: Vec<String>,
    pub parts: Vec<ScorePart>,
    /// Capacity allocated beyond what the p95 needs at the target utilisation, and its cost.
    pub idle_vcpus: f64,
    pub idle_memory_gib: f64,
    pub idle_disk_gib: f64,
    pub idle_cost_yuan: f64,
    pub facts: ProjectYear,
}
