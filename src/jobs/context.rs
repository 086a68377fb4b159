//! What every job works with: the store, the rules, the calendar, the notifier and the prices, all read
//! once by the caller (the CLI or the daemon) and passed in.

use std::sync::Arc;

use crate::core::calendar::Calendar;
use crate::core::review::rules::Prices;
use crate::core::rules::RuleSet;
use crate::jobs::notify::Notifier;
use crate::store::Store;

/// What the jobs work with; cheap to clone.
#[derive(Clone)]
pub struct JobContext {
    pub store: Store,
    pub rules: Arc<RuleSet>,
    pub calendar: Arc<Calendar>,
    pub notifier: Arc<Notifier>,
    /// Unit prices of the cloud (`rules/review.toml`): what an idle allocation costs a month.
    pub prices: Prices,
}
