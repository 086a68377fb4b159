//! The inventory file (`cloudgov import inventory FILE.toml`): departments, projects and VMs.
//!
//! Parsing checks everything that can be checked without the database (shapes, duplicates,
//! references inside the file, dates); the store checks references to rows it already holds.
//! Architecture Invariant: no IO here; the caller reads the file.

use std::collections::HashSet;

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer};

use crate::core::domain::{DepartmentId, Email, ProjectId, VmId, check_text};
use crate::core::prometheus::{PromError, Selector};

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("inventory {origin}: {source}")]
    Syntax {
        origin: String,
        #[source]
        source: toml::de::Error,
    },
    #[error("inventory {origin}: {message}")]
    Invalid { origin: String, message: String },
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Inventory {
    pub center: Option<Center>,
    pub departments: Vec<Department>,
    pub projects: Vec<Project>,
    pub vms: Vec<Vm>,
}

/// The big-data center's own addresses: escalations and review results go there.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Center {
    #[serde(default)]
    pub emails: Vec<Email>,
    #[serde(default)]
    pub finance_emails: Vec<Email>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Department {
    pub id: DepartmentId,
    pub name: String,
    #[serde(default)]
    pub emails: Vec<Email>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Project {
    pub id: ProjectId,
    pub name: String,
    pub department: DepartmentId,
    /// Filing date (全口径备案); absent while the project is not filed.
    #[serde(default, deserialize_with = "optional_date")]
    pub filed_on: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vm {
    pub id: VmId,
    pub project: ProjectId,
    pub vcpus: u32,
    pub memory_gib: f64,
    pub disk_gib: f64,
    #[serde(deserialize_with = "date")]
    pub delivered_on: NaiveDate,
    #[serde(default, deserialize_with = "optional_date")]
    pub deployed_on: Option<NaiveDate>,
    /// The VM's node_exporter target as Prometheus labels it (`instance`, `HOST:PORT`): its
    /// usage may be pulled from Prometheus instead of reported by an agent.
    #[serde(default)]
    pub prometheus_instance: Option<String>,
    /// A label selector for other setups, e.g. `{job="node",instance="..."}`.
    #[serde(default)]
    pub prometheus_selector: Option<String>,
}

impl Vm {
    /// The Prometheus selector of this VM's series, if it names one (checked by
    /// [`Inventory::parse`], so an error here is a file that was not parsed).
    pub fn prometheus(&self) -> Result<Option<Selector>, PromError> {
        match (&self.prometheus_instance, &self.prometheus_selector) {
            (Some(instance), None) => Selector::instance(instance).map(Some),
            (None, Some(selector)) => Selector::parse(selector).map(Some),
            (None, None) => Ok(None),
            (Some(_), Some(_)) => Err(PromError::Selector {
                what: "prometheus_selector",
                text: self.prometheus_selector.clone().unwrap_or_default(),
                reason: "give prometheus_instance or prometheus_selector, not both".into(),
            }),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInventory {
    center: Option<Center>,
    #[serde(default, rename = "department")]
    departments: Vec<Department>,
    #[serde(default, rename = "project")]
    projects: Vec<Project>,
    #[serde(default, rename = "vm")]
    vms: Vec<Vm>,
}

impl Inventory {
    pub fn parse(origin: &str, text: &str) -> Result<Inventory, InventoryError> {
        let raw: RawInventory = toml::from_str(text).map_err(|source| InventoryError::Syntax {
            origin: origin.to_owned(),
            source,
        })?;
        let invalid = |message: String| InventoryError::Invalid {
            origin: origin.to_owned(),
            message,
        };
        let mut seen = HashSet::new();
        for d in &raw.departments {
            if d.name.trim().is_empty() {
                return Err(invalid(format!("department {}: name is empty", d.id)));
            }
            check_text("name", &d.name, 200)
                .map_err(|e| invalid(format!("department {}: {e}", d.id)))?;
            if !seen.insert(("department", d.id.as_str())) {
                return Err(invalid(format!("department {} is listed twice", d.id)));
            }
        }
        for p in &raw.projects {
            if p.name.trim().is_empty() {
                return Err(invalid(format!("project {}: name is empty", p.id)));
            }
            check_text("name", &p.name, 200)
                .map_err(|e| invalid(format!("project {}: {e}", p.id)))?;
            if !seen.insert(("project", p.id.as_str())) {
                return Err(invalid(format!("project {} is listed twice", p.id)));
            }
        }
        for v in &raw.vms {
            if !seen.insert(("vm", v.id.as_str())) {
                return Err(invalid(format!("vm {} is listed twice", v.id)));
            }
            if !(1..=4096).contains(&v.vcpus) {
                return Err(invalid(format!(
                    "vm {}: vcpus = {} must be 1..=4096",
                    v.id, v.vcpus
                )));
            }
            for (name, gib) in [("memory_gib", v.memory_gib), ("disk_gib", v.disk_gib)] {
                if !(gib.is_finite() && gib > 0.0 && gib <= 1_048_576.0) {
                    return Err(invalid(format!(
                        "vm {}: {name} = {gib} must be a positive number of GiB",
                        v.id
                    )));
                }
            }
            v.prometheus()
                .map_err(|e| invalid(format!("vm {}: {e}", v.id)))?;
            if let Some(deployed) = v.deployed_on
                && deployed < v.delivered_on
            {
                return Err(invalid(format!(
                    "vm {}: deployed_on {deployed} is before delivered_on {}",
                    v.id, v.delivered_on
                )));
            }
        }
        Ok(Inventory {
            center: raw.center,
            departments: raw.departments,
            projects: raw.projects,
            vms: raw.vms,
        })
    }

    /// Refuses dates after `today`: a VM is not delivered, deployed or filed in the future.
    /// (A separate step from [`Inventory::parse`], which has no clock.)
    pub fn check_not_future(&self, origin: &str, today: NaiveDate) -> Result<(), InventoryError> {
        let future = |what: String, day: NaiveDate| InventoryError::Invalid {
            origin: origin.to_owned(),
            message: format!("{what} {day} is in the future (today is {today})"),
        };
        for p in &self.projects {
            if let Some(filed) = p.filed_on.filter(|d| *d > today) {
                return Err(future(format!("project {}: filed_on", p.id), filed));
            }
        }
        for v in &self.vms {
            if v.delivered_on > today {
                return Err(future(format!("vm {}: delivered_on", v.id), v.delivered_on));
            }
            if let Some(deployed) = v.deployed_on.filter(|d| *d > today) {
                return Err(future(format!("vm {}: deployed_on", v.id), deployed));
            }
        }
        Ok(())
    }
}

/// Dates may be written as TOML dates (`2025-09-26`) or strings (`"2025-09-26"`).
fn date<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
    let value = toml::Value::deserialize(d)?;
    let text = match &value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Datetime(dt) if dt.time.is_none() && dt.offset.is_none() => dt.to_string(),
        other => {
            return Err(serde::de::Error::custom(format!(
                "expected a date YYYY-MM-DD, found {other}"
            )));
        }
    };
    NaiveDate::parse_from_str(&text, "%Y-%m-%d")
        .map_err(|e| serde::de::Error::custom(format!("{text:?} is not a date YYYY-MM-DD: {e}")))
}

fn optional_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
    date(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[center]
emails = ["ops@bigdata.example.cn"]

[[department]]
id = "health"
name = "市卫健局"
emails = ["it@health.example.cn"]

[[project]]
id = "his"
name = "医院信息系统"
department = "health"
filed_on = 2024-03-01

[[project]]
id = "unfiled"
name = "未备案系统"
department = "health"

[[vm]]
id = "his-db-01"
project = "his"
vcpus = 8
memory_gib = 32
disk_gib = 500
delivered_on = "2025-09-26"
deployed_on = 2025-10-09
"#;

    #[test]
    fn parses_a_good_file() {
        let inv = Inventory::parse("inv.toml", GOOD).expect("parses");
        assert_eq!(inv.departments.len(), 1);
        assert_eq!(
            inv.projects[0].filed_on,
            NaiveDate::from_ymd_opt(2024, 3, 1)
        );
        assert_eq!(inv.projects[1].filed_on, None);
        let vm = &inv.vms[0];
        assert_eq!(
            vm.delivered_on,
            NaiveDate::from_ymd_opt(2025, 9, 26).expect("date")
        );
        assert_eq!(vm.deployed_on, NaiveDate::from_ymd_opt(2025, 10, 9));
        assert_eq!(inv.center.expect("center").emails.len(), 1);
    }

    fn err(text: &str) -> String {
        Inventory::parse("inv.toml", text)
            .expect_err("must fail")
            .to_string()
    }

    #[test]
    fn rejects_bad_files_with_a_message_naming_the_problem() {
        assert!(err(&GOOD.replace("vcpus = 8", "vcpus = 0")).contains("vcpus = 0"));
        assert!(err(&GOOD.replace("\"2025-09-26\"", "\"2025-02-30\"")).contains("2025-02-30"));
        assert!(
            err(&GOOD.replace("deployed_on = 2025-10-09", "deployed_on = 2025-09-01"))
                .contains("before delivered_on")
        );
        assert!(err(&GOOD.replace("memory_gib = 32", "memory_gib = -1")).contains("memory_gib"));
        assert!(err(&GOOD.replace("id = \"unfiled\"", "id = \"his\"")).contains("listed twice"));
        assert!(err(&GOOD.replace("disk_gib", "disk_gb")).contains("disk_gb"));
        assert!(
            err(&GOOD.replace("it@health.example.cn", "not-an-address")).contains("not-an-address")
        );
        assert!(err(&GOOD.replace("id = \"his-db-01\"", "id = \"his db\"")).contains("VM id"));
        let with = |line: &str| GOOD.replace("disk_gib = 500", &format!("disk_gib = 500\n{line}"));
        assert!(err(&with("prometheus_instance = \"his-db-01\"")).contains("HOST:PORT"));
        assert!(err(&with("prometheus_selector = 'job=\"node\"'")).contains("braces"));
        assert!(
            err(&with(
                "prometheus_instance = \"a:9100\"\nprometheus_selector = '{job=\"node\"}'"
            ))
            .contains("not both")
        );
        let inv = Inventory::parse("inv.toml", &with("prometheus_instance = \"10.0.0.5:9100\""))
            .expect("parses");
        assert_eq!(
            inv.vms[0].prometheus().expect("ok").map(|s| s.to_string()),
            Some("{instance=\"10.0.0.5:9100\"}".to_owned())
        );
    }
}
