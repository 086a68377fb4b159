//! `cloudgov calendar ...`: working-day arithmetic on the Chinese calendar (no database).

use chrono::NaiveDate;
use clap::Subcommand;

use crate::core::calendar::{Calendar, WorkingDays};

#[derive(Debug, Subcommand)]
pub enum CalendarCommand {
    /// Print the date N working days after DATE (DATE not counted).
    AddWorkdays { date: NaiveDate, n: i64 },
    /// Print `workday` or `day-off`.
    IsWorkday { date: NaiveDate },
    /// Print the number of working days after A up to and including B.
    Between { a: NaiveDate, b: NaiveDate },
}

pub(super) fn run(calendar: &Calendar, command: CalendarCommand) -> anyhow::Result<()> {
    let warn_provisional = |provisional: bool| {
        if provisional {
            eprintln!(
                "warning: provisional: the answer reaches years without calendar data ({}); \
                 Monday-Friday was assumed there",
                super::calendar::years_text(calendar)
            );
        }
    };
    match command {
        CalendarCommand::AddWorkdays { date, n } => {
            let n = WorkingDays::try_from(n).map_err(|e| anyhow::anyhow!("N: {e}"))?;
            let due = calendar.add_workdays(date, n);
            warn_provisional(due.provisional);
            println!("{}", due.value.format("%Y-%m-%d"));
        }
        CalendarCommand::IsWorkday { date } => {
            let day = calendar.is_workday(date);
            warn_provisional(day.provisional);
            println!("{}", if day.value { "workday" } else { "day-off" });
        }
        CalendarCommand::Between { a, b } => {
            let n = calendar.between(a, b);
            warn_provisional(n.provisional);
            println!("{}", n.value);
        }
    }
    Ok(())
}

pub(super) fn years_text(calendar: &Calendar) -> String {
    match (calendar.years().first(), calendar.years().last()) {
        (Some(first), Some(last)) => format!("data covers {first}-{last}"),
        _ => "no calendar data loaded".into(),
    }
}
