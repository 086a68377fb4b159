//! VM alerts that are not obligations: a silent agent has no duty with a due date behind it
//! (nobody must do something by a day), only a signal that the system may be unused.

use chrono::{DateTime, Utc};

use super::JobContext;
use crate::core::calendar::shanghai_day;
use crate::core::details::AlertFacts;
use crate::store::StoreError;

/// Raises `silent_agent` for deployed VMs not heard from for the rules' number of working days
/// (a system that may no longer be used, art. 13), and clears it when the agent speaks again.
pub(crate) async fn flag_silent_agents(
    ctx: &JobContext,
    at: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let today = shanghai_day(at);
    let limit = ctx.rules.deadlines().silent_agent.get();
    let mut raised = 0;
    for (vm_key, deployed_on, last) in ctx.store.deployed_vms_last_heard().await? {
        let last_day = last
            .and_then(|ts| DateTime::from_timestamp(ts, 0))
            .map(shanghai_day)
            .unwrap_or(deployed_on);
        let silent = ctx.calendar.between(last_day, today).value;
        if silent >= limit {
            let facts = AlertFacts::SilentAgent {
                last_report_on: last.is_some().then_some(last_day),
                deployed_on,
                working_days: silent,
            };
            raised += u64::from(ctx.store.raise_alert(vm_key, &facts, at, today).await?);
        } else {
            ctx.store.clear_alert(vm_key, "silent_agent", at).await?;
        }
    }
    Ok(raised)
}
