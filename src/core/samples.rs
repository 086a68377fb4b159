//! Usage samples as the core knows them: one measurement of one VM, checked at the boundary.

/// One measurement of one VM, ready to store. Percentages were validated at the boundary.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleRow {
    pub vm_key: i64,
    pub ts: i64,
    pub cpu_pct: f64,
    pub mem_pct: f64,
    pub disk_pct: Option<f64>,
}
