//! Deadline logic of Pingdu art. 13: states as of a day, and when a reminder or an escalation is due.
//!
//! Architecture Invariant: pure; no IO, no clock. Dates are Asia/Shanghai calendar days; a
//! deadline's due date is the last day to act (it ends at the end of that day).

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::Serialize;

use crate::calendar::{Calendar, Checked, WorkingDays};
use crate::domain::InvalidValue;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineKind {
    /// Deploy the system within N working days after the resources are delivered.
    Deployment,
    /// Complete the adjustment within N working days after receiving the notice.
    Adjustment,
}

impl DeadlineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeadlineKind::Deployment => "deployment",
            DeadlineKind::Adjustment => "adjustment",
        }
    }
}

impl FromStr for DeadlineKind {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "deployment" => Ok(DeadlineKind::Deployment),
            "adjustment" => Ok(DeadlineKind::Adjustment),
            _ => Err(InvalidValue::new(
                "deadline kind",
                s,
                "is not deployment or adjustment",
            )),
        }
    }
}

impl fmt::Display for DeadlineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineState {
    Open,
    Overdue,
    DoneOnTime,
    DoneLate,
}

impl DeadlineState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeadlineState::Open => "open",
            DeadlineState::Overdue => "overdue",
            DeadlineState::DoneOnTime => "done_on_time",
            DeadlineState::DoneLate => "done_late",
        }
    }
}

impl fmt::Display for DeadlineState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The due date: `n` working days after `start` (`start` not counted).
pub fn due_date(calendar: &Calendar, start: NaiveDate, n: WorkingDays) -> Checked<NaiveDate> {
    calendar.add_workdays(start, n)
}

/// The state as of `today`. Work done after `today` is not known yet as of `today`.
pub fn state(due: NaiveDate, done_on: Option<NaiveDate>, today: NaiveDate) -> DeadlineState {
    match done_on.filter(|d| *d <= today) {
        Some(done) if done <= due => DeadlineState::DoneOnTime,
        Some(_) => DeadlineState::DoneLate,
        None if today > due => DeadlineState::Overdue,
        None => DeadlineState::Open,
    }
}

/// What a check on `today` should do for a deadline that is not done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Tell the department the due date is near.
    Remind,
    /// Tell the department and the center the deadline has passed.
    Escalate,
}

/// The action due on `today`, if any: a reminder from `reminder_before` working days before
/// the due date up to the due date itself, an escalation from the day after. Whether it was
/// already sent is the caller's record (each is sent once); a reminder that was never sent is
/// skipped once the deadline is overdue, because the escalation says more.
pub fn action_due(
    calendar: &Calendar,
    due: NaiveDate,
    reminder_before: WorkingDays,
    today: NaiveDate,
) -> Option<Action> {
    if today > due {
        return Some(Action::Escalate);
    }
    let remind_from = calendar.workdays_before(due, reminder_before).value;
    (today >= remind_from).then_some(Action::Remind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    fn cal() -> Calendar {
        Calendar::builtin().expect("built-in calendar")
    }

    fn wd(n: u32) -> WorkingDays {
        WorkingDays::new(n).expect("working days")
    }

    #[test]
    fn the_brief_example_is_due_on_thursday_16_october() {
        let due = due_date(&cal(), d("2025-09-26"), wd(10));
        assert_eq!(due.value, d("2025-10-16"));
        assert!(!due.provisional);
    }

    #[test]
    fn states_follow_the_due_day_inclusively() {
        let due = d("2025-10-16");
        assert_eq!(state(due, None, d("2025-10-16")), DeadlineState::Open);
        assert_eq!(state(due, None, d("2025-10-17")), DeadlineState::Overdue);
        assert_eq!(
            state(due, Some(d("2025-10-16")), d("2025-10-20")),
            DeadlineState::DoneOnTime
        );
        assert_eq!(
            state(due, Some(d("2025-10-17")), d("2025-10-20")),
            DeadlineState::DoneLate
        );
        // Done later than the day asked about: as of that day it was not done.
        assert_eq!(
            state(due, Some(d("2025-10-17")), d("2025-10-10")),
            DeadlineState::Open
        );
    }

    #[test]
    fn reminder_starts_three_working_days_before_and_escalation_the_day_after() {
        let c = cal();
        let due = d("2025-10-16");
        // Three working days before Thu 16 Oct are Mon 13, Tue 14, Wed 15: reminders from the 13th
        // (between(13, 16) == 3).
        assert_eq!(action_due(&c, due, wd(3), d("2025-10-12")), None);
        assert_eq!(
            action_due(&c, due, wd(3), d("2025-10-13")),
            Some(Action::Remind)
        );
        assert_eq!(
            action_due(&c, due, wd(3), d("2025-10-16")),
            Some(Action::Remind)
        );
        assert_eq!(
            action_due(&c, due, wd(3), d("2025-10-17")),
            Some(Action::Escalate)
        );
    }
}
