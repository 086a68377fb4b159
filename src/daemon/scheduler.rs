//! Cron-driven jobs inside the daemon. Expressions are read in Asia/Shanghai time and use the
//! `cron` crate's syntax: a seconds field first, and day names (`0 0 9 * * Mon-Fri`), because the
//! crate reads numeric weekdays with 1 = Sunday.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Asia::Shanghai;
use tokio::sync::watch;

/// A parsed cron expression.
#[derive(Clone)]
pub struct CronExpr {
    text: String,
    schedule: cron::Schedule,
}

impl CronExpr {
    /// The first firing strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule
            .after(&after.with_timezone(&Shanghai))
            .next()
            .map(|t| t.with_timezone(&Utc))
    }
}

impl TryFrom<&str> for CronExpr {
    type Error = String;
    fn try_from(text: &str) -> Result<Self, Self::Error> {
        let schedule = cron::Schedule::from_str(text).map_err(|e| {
            format!(
                "cron expression {text:?} is invalid ({e}); write six or seven fields starting \
                 with seconds, and weekday names, e.g. \"0 0 9 * * Mon-Fri\""
            )
        })?;
        Ok(CronExpr {
            text: text.to_owned(),
            schedule,
        })
    }
}

impl FromStr for CronExpr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CronExpr::try_from(s)
    }
}

impl fmt::Debug for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CronExpr({:?})", self.text)
    }
}

impl fmt::Display for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Runs `job` at every firing of `expr` until `shutdown` turns true, on the replica that leads
/// (`leader`); the others skip the firing. A job that fails is logged and runs again at its next
/// firing; a firing missed while a job ran long is skipped, not queued.
pub async fn run_on_schedule<F, Fut>(
    name: &'static str,
    expr: CronExpr,
    mut shutdown: watch::Receiver<bool>,
    leader: watch::Receiver<bool>,
    mut job: F,
) where
    F: FnMut(DateTime<Utc>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    loop {
        let Some(next) = expr.next_after(Utc::now()) else {
            tracing::warn!(job = name, cron = %expr, "schedule has no future firing; job stops");
            return;
        };
        let wait = (next - Utc::now()).to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        if !*leader.borrow() {
            tracing::debug!(job = name, at = %next, "another replica leads: firing skipped");
            continue;
        }
        let started = std::time::Instant::now();
        match job(next).await {
            Ok(()) => {
                tracing::info!(job = name, at = %next, took_ms = started.elapsed().as_millis() as u64, "job done")
            }
            Err(e) => {
                tracing::error!(job = name, at = %next, error = format!("{e:#}"), "job failed")
            }
        }
    }
}

/// Runs `job` every `every` while this replica leads, and at once when it becomes the leader,
/// until shutdown: for sources polled at an interval (Kubernetes, Prometheus, switches) rather
/// than at fixed times. A failed run is logged and retried at the next tick; the daemon keeps
/// serving.
pub async fn run_every<F, Fut>(
    name: &'static str,
    every: std::time::Duration,
    mut shutdown: watch::Receiver<bool>,
    mut leader: watch::Receiver<bool>,
    mut job: F,
) where
    F: FnMut(DateTime<Utc>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    loop {
        if *leader.borrow_and_update() {
            let at = Utc::now();
            if let Err(e) = job(at).await {
                tracing::error!(job = name, at = %at, error = format!("{e:#}"), "job failed");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            changed = leader.changed() => {
                // The elector is gone (shutting down): wait for the tick rather than spin.
                if changed.is_err() {
                    tokio::time::sleep(every).await;
                }
            }
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn weekday_names_and_shanghai_time() {
        let expr = CronExpr::try_from("0 0 9 * * Mon-Fri").expect("valid");
        // Friday 2025-09-26 10:00 Shanghai -> next is Monday 2025-09-29 09:00 Shanghai (01:00 UTC).
        let after = Shanghai
            .with_ymd_and_hms(2025, 9, 26, 10, 0, 0)
            .single()
            .expect("time");
        let next = expr.next_after(after.with_timezone(&Utc)).expect("next");
        assert_eq!(
            next,
            Utc.with_ymd_and_hms(2025, 9, 29, 1, 0, 0)
                .single()
                .expect("time")
        );
    }

    #[test]
    fn five_field_expressions_are_refused_with_a_hint() {
        let err = CronExpr::try_from("0 9 * * 1-5").expect_err("no seconds field");
        assert!(
            err.contains("seconds") && err.contains("0 9 * * 1-5"),
            "{err}"
        );
    }
}
