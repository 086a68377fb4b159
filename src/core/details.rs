//! The structured details of deadline events, VM alerts and audit entries: what the store keeps
//! beside each English sentence (the CLI and the API show those), so that a page can say the
//! same thing in its own language from the figures rather than from stored prose.
//!
//! Architecture Invariant: pure. Each value builds its English sentence itself, so the sentence
//! and the figures a page renders cannot drift apart. Rows written before these details were
//! stored have none; readers fall back to the stored sentence where its language fits.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

fn provisional_suffix(provisional: bool, long: bool) -> &'static str {
    match (provisional, long) {
        (false, _) => "",
        (true, true) => " (provisional: counted past the calendar data)",
        (true, false) => " (provisional)",
    }
}

/// What happened to a deadline, with the figures of that moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum DeadlineFacts {
    /// The deadline was created: `working_days` after `start_on`, due `due_on`.
    Created {
        working_days: u32,
        start_on: NaiveDate,
        due_on: NaiveDate,
        provisional: bool,
    },
    /// The due date is near.
    Reminder {
        due_on: NaiveDate,
        provisional: bool,
        working_days_left: u32,
    },
    /// The due date has passed; the center was told.
    Escalation {
        due_on: NaiveDate,
        provisional: bool,
        working_days_late: u32,
    },
    /// Done on `done_on`, known from `source` (confirmed, inventory, inferred, agent).
    Done { done_on: NaiveDate, source: String },
    /// The VM was released, which ends its deadlines.
    Released { released_on: NaiveDate },
}

impl DeadlineFacts {
    /// The event name stored with it (`deadline_events.event`).
    pub fn event(&self) -> &'static str {
        match self {
            DeadlineFacts::Created { .. } => "created",
            DeadlineFacts::Reminder { .. } => "reminder",
            DeadlineFacts::Escalation { .. } => "escalation",
            DeadlineFacts::Done { .. } | DeadlineFacts::Released { .. } => "done",
        }
    }

    /// The English sentence of the CLI and the API; `kind` and `vm` name the deadline.
    pub fn english(&self, kind: &str, vm: &str) -> String {
        match self {
            DeadlineFacts::Created {
                working_days,
                start_on,
                due_on,
                provisional,
            } => format!(
                "{working_days} working days after {start_on}: due {due_on}{}",
                provisional_suffix(*provisional, true)
            ),
            DeadlineFacts::Reminder {
                due_on,
                provisional,
                working_days_left,
            } => format!(
                "{kind} of {vm} due {due_on}{}: {working_days_left} working days left",
                provisional_suffix(*provisional, false)
            ),
            DeadlineFacts::Escalation {
                due_on,
                provisional,
                working_days_late,
            } => format!(
                "{kind} of {vm} was due {due_on}{}: overdue by {working_days_late} working days; escalated to the center",
                provisional_suffix(*provisional, false)
            ),
            DeadlineFacts::Done { done_on, source } => format!("done on {done_on} ({source})"),
            DeadlineFacts::Released { released_on } => format!("VM released on {released_on}"),
        }
    }
}

/// Why a VM carries an alert, with the figures of the moment it was raised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "alert", rename_all = "snake_case")]
pub enum AlertFacts {
    /// No agent report for `working_days`: since `last_report_on`, or since deployment if the
    /// agent never reported.
    SilentAgent {
        last_report_on: Option<NaiveDate>,
        deployed_on: NaiveDate,
        working_days: u32,
    },
    /// The project was deployed but not filed by `filing_due` (art. 10).
    NotFiled {
        project: String,
        first_deployed_on: NaiveDate,
        filing_due: NaiveDate,
        provisional: bool,
    },
    /// The agent's clock is `offset_secs` behind the daemon's (negative: ahead).
    ClockSkew { offset_secs: i64, limit_secs: i64 },
    /// The agent dropped reports.
    ReportsDropped { reports: u64 },
}

impl AlertFacts {
    /// The alert kind stored with it (`alerts.kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            AlertFacts::SilentAgent { .. } => "silent_agent",
            AlertFacts::NotFiled { .. } => "not_filed",
            AlertFacts::ClockSkew { .. } => "clock_skew",
            AlertFacts::ReportsDropped { .. } => "reports_dropped",
        }
    }

    /// The English sentence of the CLI and the API.
    pub fn english(&self) -> String {
        match self {
            AlertFacts::SilentAgent {
                last_report_on: Some(last),
                working_days,
                ..
            } => format!("no agent report since {last}: {working_days} working days"),
            AlertFacts::SilentAgent {
                last_report_on: None,
                deployed_on,
                working_days,
            } => format!(
                "no agent report since deployment on {deployed_on}: {working_days} working days"
            ),
            AlertFacts::NotFiled {
                project,
                first_deployed_on,
                filing_due,
                provisional,
            } => format!(
                "project {project} deployed on {first_deployed_on} is not filed; filing was due {filing_due}{} (art. 10)",
                provisional_suffix(*provisional, false)
            ),
            AlertFacts::ClockSkew {
                offset_secs,
                limit_secs,
            } => format!(
                "agent clock is {} s {} the daemon's (limit {limit_secs} s): fix NTP on the VM",
                offset_secs.abs(),
                if *offset_secs > 0 {
                    "behind"
                } else {
                    "ahead of"
                },
            ),
            AlertFacts::ReportsDropped { reports } => {
                format!("the agent dropped {reports} reports (queue or spool full)")
            }
        }
    }
}

/// What an audited action did, beside its action name and target. Every field is optional:
/// each action fills what it has.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFacts {
    /// The day the action speaks of (deployed on, done on, released on, requested on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<NaiveDate>,
    /// A person's own words (contest, release request): shown as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadlines_closed: Option<u64>,
    /// For registry edits: `registered`, `changed` or `unchanged`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn english_sentences_are_the_ones_stored_before_the_facts() {
        let created = DeadlineFacts::Created {
            working_days: 10,
            start_on: day("2025-09-26"),
            due_on: day("2025-10-16"),
            provisional: false,
        };
        assert_eq!(
            created.english("adjustment", "vm-1"),
            "10 working days after 2025-09-26: due 2025-10-16"
        );
        let escalation = DeadlineFacts::Escalation {
            due_on: day("2027-01-15"),
            provisional: true,
            working_days_late: 2,
        };
        assert_eq!(
            escalation.english("adjustment", "vm-1"),
            "adjustment of vm-1 was due 2027-01-15 (provisional): overdue by 2 working days; escalated to the center"
        );
        assert_eq!(escalation.event(), "escalation");
        let silent = AlertFacts::SilentAgent {
            last_report_on: None,
            deployed_on: day("2024-03-22"),
            working_days: 617,
        };
        assert_eq!(silent.kind(), "silent_agent");
        assert_eq!(
            silent.english(),
            "no agent report since deployment on 2024-03-22: 617 working days"
        );
        let skew = AlertFacts::ClockSkew {
            offset_secs: -300,
            limit_secs: 120,
        };
        assert!(
            skew.english().contains("300 s ahead of"),
            "{}",
            skew.english()
        );
    }

    #[test]
    fn facts_round_trip_as_tagged_json() {
        let done = DeadlineFacts::Done {
            done_on: day("2025-04-10"),
            source: "confirmed".into(),
        };
        let json = serde_json::to_string(&done).expect("json");
        assert!(json.contains(r#""event":"done""#), "{json}");
        assert_eq!(
            serde_json::from_str::<DeadlineFacts>(&json).expect("parse"),
            done
        );
        let audit = AuditFacts {
            on: Some(day("2026-01-05")),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&audit).expect("json"),
            r#"{"on":"2026-01-05"}"#
        );
    }
}
