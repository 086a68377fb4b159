//! The fleet's past, replayed through the jobs themselves: from the first Monday of the
//! previous year up to now, every Monday at 10:00 the deadline checks of `cloudgov tick --at T`
//! run, and at the start of each quarter's last month the evaluation too, so notices, their
//! deadlines, reminders, escalations and alerts are those the daemon would have written. The
//! departments answer as their VMs' profiles say (staff confirm the adjustment on the day it
//! was done, some within the 10 working days, some after, some never). Then the previous year
//! is reviewed and the review stored, as the daemon does each 15 January.
//!
//! The network checks are left out of the replay: the demo's sightings are today's, and a
//! check at a past instant would find every registered address unseen.

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, TimeZone, Utc, Weekday};
use chrono_tz::Asia::Shanghai;

use super::fleet::{Answer, profile};
use crate::core::calendar::shanghai_day;
use crate::core::obligations::ObligationKind;
use crate::jobs::evaluation::evaluate;
use crate::jobs::{JobContext, TickSummary, check_deadlines};
use crate::store::StoreError;

/// An adjustment confirmed this close to now would leave its VM fewer than 7 days of fresh
/// samples, and today's evaluation `insufficient_data`: later answers are still to come.
const ANSWERS_SETTLED_DAYS: i64 = 10;

/// What the replay did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Replay {
    /// Passes of the deadline checks (one a week).
    pub passes: usize,
    /// Evaluations among them.
    pub evaluations: usize,
    pub notices_opened: u64,
    /// Adjustments the departments completed (confirmed by staff).
    pub adjustments_done: u64,
}

/// Evaluations run at the start of March, June, September and December: often enough for
/// every department to get notices, rarely enough that an answered notice is not reissued
/// every few weeks.
fn evaluates_on(day: NaiveDate) -> bool {
    day.day() <= 7 && matches!(day.month(), 3 | 6 | 9 | 12)
}

/// Replays the checks up to (not including) `now`'s day.
pub async fn replay(ctx: &JobContext, now: DateTime<Utc>) -> Result<Replay, StoreError> {
    let today = shanghai_day(now);
    let settled = today - TimeDelta::days(ANSWERS_SETTLED_DAYS);
    let mut replay = Replay::default();
    let Some(mut day) = NaiveDate::from_ymd_opt(today.year() - 1, 1, 1) else {
        return Ok(replay);
    };
    while day.weekday() != Weekday::Mon {
        day += TimeDelta::days(1);
    }
    let mut summary = TickSummary::default();
    while day < today {
        let Some(at) = day
            .and_hms_opt(10, 0, 0)
            .and_then(|t| Shanghai.from_local_datetime(&t).earliest())
            .map(|t| t.with_timezone(&Utc))
        else {
            break;
        };
        if evaluates_on(day) {
            replay.notices_opened += evaluate(&ctx.store, &ctx.rules, at, true)
                .await?
                .notices_opened;
            replay.evaluations += 1;
        }
        // Answers first: an adjustment done since the last pass is no longer due a reminder.
        replay.adjustments_done += answer_notices(ctx, at, day.min(settled)).await?;
        check_deadlines(ctx, at, &mut summary).await?;
        replay.passes += 1;
        day += TimeDelta::days(7);
    }
    Ok(replay)
}

/// Staff confirm, at `at`, the adjustments done by `until`: each VM's department does them the
/// number of working days after receiving the notice its profile says.
async fn answer_notices(
    ctx: &JobContext,
    at: DateTime<Utc>,
    until: NaiveDate,
) -> Result<u64, StoreError> {
    let mut done = 0;
    for d in ctx.store.deadlines().await? {
        if d.kind != ObligationKind::Adjustment || d.done_on.is_some() {
            continue;
        }
        let Some(Answer::After(n)) = d.vm.as_deref().and_then(profile).map(|p| p.answer) else {
            continue;
        };
        let Ok(n) = crate::core::calendar::WorkingDays::new(n) else {
            continue;
        };
        let on = ctx.calendar.add_workdays(d.start_on, n).value;
        if on <= until {
            done += u64::from(
                ctx.store
                    .complete_deadline(d.id, on, "confirmed", at)
                    .await?,
            );
        }
    }
    Ok(done)
}
