//! What every job works with: the store, the rules, the calendar and the notifier, all read
//! once by the caller (the CLI or the daemon) and passed in.

use std::sync::Arc;

use crate::core::calendar::Calendar;
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
}
