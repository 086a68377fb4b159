//! The one model of a duty with a working-day deadline: an obligation.
//!
//! Every duty the regulations count in working days is a kind of obligation: deployment and
//! adjustment (Pingdu art. 13), filing (art. 10), keeping a registration current (art. 14),
//! answering release advice for a system no longer used (art. 13), the center's answer to a
//! resource request (art. 12).
//! A kind says which article it comes from, whom it binds, what it is about, what starts its
//! clock, which entry of the rules file gives its period, what completes it, whether it is
//! reminded and escalated, and how it reads in both languages. Everything downstream (the
//! store's clock-start and evidence queries, the jobs, e-mail, pages, API, CLI, the review)
//! matches on the kind exhaustively, so a new kind cannot be silently dropped anywhere.
//!
//! Adding a kind: one arm in [`ObligationKind`] (its article, subject, clock start, evidence,
//! rules key, wording), its period in the rules file, and its e-mail templates. ARCHITECTURE.md
//! has a worked example.
//!
//! Architecture Invariant: pure; no IO, no clock. Dates are Asia/Shanghai calendar days; a
//! due date is the last day to act (the obligation ends at the end of that day).

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::Serialize;

use crate::core::calendar::{Calendar, Checked, WorkingDays};
use crate::core::domain::{InvalidValue, Language};

/// The kinds of obligation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObligationKind {
    /// Deploy the system within N working days after the resources are delivered (art. 13).
    Deployment,
    /// Complete the adjustment within N working days after receiving the notice (art. 13).
    Adjustment,
    /// File the project within N working days after its first deployment (art. 10).
    Filing,
    /// A registered address is seen on the network within N working days, or its registration
    /// is corrected (art. 14). Recomputed from sightings by every network check; its
    /// escalation is the `stale_registration` network finding.
    Registration,
    /// Answer release advice (释放建议) within N working days after receiving it: request the
    /// release, or contest the advice with a reason (art. 13: 当系统不再使用时...释放资源).
    Release,
    /// The center answers a department's resource request (approve, amend or reject) within N
    /// working days after it is submitted (art. 12: 应当向市大数据发展中心提出申请; the period
    /// is the center's own commitment, see the rules file).
    RequestAnswer,
}

/// What an obligation is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    Vm,
    /// A notice (and so its VM).
    Notice,
    Project,
    /// A registered IP address.
    Address,
    /// A department's resource request.
    Request,
}

/// Who must act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    /// The department that uses the resources (使用部门).
    Department,
    /// The big-data center itself (市大数据发展中心).
    Center,
}

/// What starts an obligation's clock (that day itself is not counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockStart {
    /// The VM's resources were delivered (`delivered_on`).
    Delivered,
    /// The department received the notice: the day it was approved for sending.
    NoticeReceived,
    /// The project's first VM was deployed.
    FirstDeployment,
    /// The registered address was last seen (or registered, if never seen).
    LastSeen,
    /// The department submitted a resource request.
    RequestSubmitted,
}

/// What completes an obligation: evidence the daemon finds, or a person's confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Evidence {
    /// A deployment record: confirmed (`vm mark-deployed`), from the inventory's
    /// `deployed_on`, or inferred from the agent's samples (the rules' inference rule).
    Deployed,
    /// The allocation moved the way the notice asked (inventory or agent capacity), or staff
    /// confirmed the adjustment (`notices complete`).
    AllocationMoved,
    /// The project is filed: the inventory's `filed_on` or a staff action (`project file`).
    Filed,
    /// The address was seen again, or its registration changed or was removed.
    SeenOrChanged,
    /// The department requested the release (`vm request-release`), or staff withdrew the
    /// advice after a contest.
    ReleaseRequested,
    /// Staff decided the request (approved, amended or rejected).
    Answered,
}

/// How an obligation is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Keeping {
    /// Stored with its timeline (created, reminder, escalation, done), listed by
    /// `cloudgov deadlines` and the API.
    Stored,
    /// Recomputed from what the network shows on every check (one per registered address;
    /// thousands of them, and each sighting resets the clock).
    Recomputed,
}

/// The article an obligation comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Article {
    /// `平度市电子政务和政务数据管理办法(暂行)`.
    pub regulation: &'static str,
    /// 13 for 第十三条.
    pub number: u32,
    /// The article's own words about this duty.
    pub text: &'static str,
}

/// The Pingdu Measures (PDDR-2020-0020001).
pub const PINGDU: &str = "平度市电子政务和政务数据管理办法(暂行)";

impl ObligationKind {
    pub const ALL: [ObligationKind; 6] = [
        ObligationKind::Deployment,
        ObligationKind::Adjustment,
        ObligationKind::Filing,
        ObligationKind::Registration,
        ObligationKind::Release,
        ObligationKind::RequestAnswer,
    ];

    /// The kind's place in [`ObligationKind::ALL`].
    pub fn index(self) -> usize {
        match self {
            ObligationKind::Deployment => 0,
            ObligationKind::Adjustment => 1,
            ObligationKind::Filing => 2,
            ObligationKind::Registration => 3,
            ObligationKind::Release => 4,
            ObligationKind::RequestAnswer => 5,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ObligationKind::Deployment => "deployment",
            ObligationKind::Adjustment => "adjustment",
            ObligationKind::Filing => "filing",
            ObligationKind::Registration => "registration",
            ObligationKind::Release => "release",
            ObligationKind::RequestAnswer => "request_answer",
        }
    }

    pub fn subject(self) -> Subject {
        match self {
            ObligationKind::Deployment => Subject::Vm,
            ObligationKind::Adjustment => Subject::Notice,
            ObligationKind::Filing => Subject::Project,
            ObligationKind::Registration => Subject::Address,
            ObligationKind::Release => Subject::Notice,
            ObligationKind::RequestAnswer => Subject::Request,
        }
    }

    pub fn party(self) -> Party {
        match self {
            ObligationKind::Deployment
            | ObligationKind::Adjustment
            | ObligationKind::Filing
            | ObligationKind::Registration
            | ObligationKind::Release => Party::Department,
            ObligationKind::RequestAnswer => Party::Center,
        }
    }

    pub fn starts(self) -> ClockStart {
        match self {
            ObligationKind::Deployment => ClockStart::Delivered,
            ObligationKind::Adjustment => ClockStart::NoticeReceived,
            ObligationKind::Filing => ClockStart::FirstDeployment,
            ObligationKind::Registration => ClockStart::LastSeen,
            ObligationKind::Release => ClockStart::NoticeReceived,
            ObligationKind::RequestAnswer => ClockStart::RequestSubmitted,
        }
    }

    pub fn evidence(self) -> Evidence {
        match self {
            ObligationKind::Deployment => Evidence::Deployed,
            ObligationKind::Adjustment => Evidence::AllocationMoved,
            ObligationKind::Filing => Evidence::Filed,
            ObligationKind::Registration => Evidence::SeenOrChanged,
            ObligationKind::Release => Evidence::ReleaseRequested,
            ObligationKind::RequestAnswer => Evidence::Answered,
        }
    }

    pub fn keeping(self) -> Keeping {
        match self {
            ObligationKind::Deployment
            | ObligationKind::Adjustment
            | ObligationKind::Filing
            | ObligationKind::Release
            | ObligationKind::RequestAnswer => Keeping::Stored,
            ObligationKind::Registration => Keeping::Recomputed,
        }
    }

    /// Whether the department is reminded before the due date, and the overdue obligation
    /// escalated to the center, by e-mail (each once).
    pub fn reminded_and_escalated(self) -> bool {
        match self {
            ObligationKind::Deployment
            | ObligationKind::Adjustment
            | ObligationKind::Filing
            | ObligationKind::Release
            | ObligationKind::RequestAnswer => true,
            // Its escalation is the network finding `stale_registration`, e-mailed with the
            // other network findings.
            ObligationKind::Registration => false,
        }
    }

    /// Whether an undecided contest holds the reminder and the escalation: the department has
    /// answered, and the center decides (uphold or withdraw) before the clock can be pressed.
    /// Adjustments are not held: a contest of a downsize notice is read, not decided.
    pub fn held_while_contested(self) -> bool {
        match self {
            ObligationKind::Release => true,
            ObligationKind::Deployment
            | ObligationKind::Adjustment
            | ObligationKind::Filing
            | ObligationKind::Registration
            | ObligationKind::RequestAnswer => false,
        }
    }

    /// Where the rules file gives the period: (section, key).
    pub fn period_key(self) -> (&'static str, &'static str) {
        match self {
            ObligationKind::Deployment => ("deadlines", "deployment_working_days"),
            ObligationKind::Adjustment => ("deadlines", "adjustment_working_days"),
            ObligationKind::Filing => ("deadlines", "filing_working_days_after_deployment"),
            ObligationKind::Registration => ("network", "stale_registration_working_days"),
            ObligationKind::Release => ("deadlines", "release_working_days"),
            ObligationKind::RequestAnswer => ("deadlines", "request_answer_working_days"),
        }
    }

    pub fn article(self) -> Article {
        match self {
            ObligationKind::Deployment => Article {
                regulation: PINGDU,
                number: 13,
                text: "各部门应在云资源交付后10个工作日内应完成系统部署。",
            },
            ObligationKind::Adjustment => Article {
                regulation: PINGDU,
                number: 13,
                text: "各部门收到市大数据发展中心云资源调整通知后,应当积极配合,在10个工作日内完成资源调整。",
            },
            ObligationKind::Filing => Article {
                regulation: PINGDU,
                number: 10,
                text: "本市各级各部门已开发部署的电子政务和政务数据项目,应当向市大数据发展中心进行全口径备案。",
            },
            ObligationKind::Registration => Article {
                regulation: PINGDU,
                number: 14,
                text: "各部门电脑终端接入电子政务网络时应当配置静态IP地址,并做好IP地址分配备案、IP与MAC绑定工作。",
            },
            ObligationKind::Release => Article {
                regulation: PINGDU,
                number: 13,
                text: "当系统不再使用时,使用部门应当及时通知市大数据发展中心释放资源。",
            },
            ObligationKind::RequestAnswer => Article {
                regulation: PINGDU,
                number: 12,
                text: "本市各级各部门依托青岛政务云平台开展部署业务系统、应用管理等活动时,应当向市大数据发展中心提出申请。",
            },
        }
    }

    /// The duty's name: `系统部署` / `deployment`.
    pub fn title(self, language: Language) -> &'static str {
        match (self, language) {
            (ObligationKind::Deployment, Language::Zh) => "系统部署",
            (ObligationKind::Deployment, Language::En) => "deployment",
            (ObligationKind::Adjustment, Language::Zh) => "资源调整",
            (ObligationKind::Adjustment, Language::En) => "adjustment",
            (ObligationKind::Filing, Language::Zh) => "项目全口径备案",
            (ObligationKind::Filing, Language::En) => "project filing",
            (ObligationKind::Registration, Language::Zh) => "IP地址备案核实",
            (ObligationKind::Registration, Language::En) => "registration check",
            (ObligationKind::Release, Language::Zh) => "闲置资源释放答复",
            (ObligationKind::Release, Language::En) => "answer to release advice",
            (ObligationKind::RequestAnswer, Language::Zh) => "资源申请答复",
            (ObligationKind::RequestAnswer, Language::En) => "answer to a resource request",
        }
    }

    /// The rule as one sentence with its period: what must be done by when.
    pub fn rule(self, language: Language, n: u32) -> String {
        match (self, language) {
            (ObligationKind::Deployment, Language::Zh) => {
                format!("各部门应在云资源交付后{n}个工作日内完成系统部署。")
            }
            (ObligationKind::Deployment, Language::En) => format!(
                "a department deploys its system within {n} working days after the cloud resources are delivered."
            ),
            (ObligationKind::Adjustment, Language::Zh) => {
                format!("各部门收到云资源调整通知后,应在{n}个工作日内完成资源调整。")
            }
            (ObligationKind::Adjustment, Language::En) => format!(
                "a department completes a resource adjustment within {n} working days of receiving the notice."
            ),
            (ObligationKind::Filing, Language::Zh) => format!(
                "已部署的电子政务项目应在首台云主机部署后{n}个工作日内向市大数据发展中心全口径备案;未按时备案的停止安排运维经费。"
            ),
            (ObligationKind::Filing, Language::En) => format!(
                "a deployed project is filed with the big-data center within {n} working days of its first deployment; a project not filed in time loses its operating budget."
            ),
            (ObligationKind::Registration, Language::Zh) => {
                format!("备案的IP地址应在网络中使用;连续{n}个工作日未出现的,应核实并更正备案。")
            }
            (ObligationKind::Registration, Language::En) => format!(
                "a registered address is in use on the network; one not seen for {n} working days has its registration checked and corrected."
            ),
            (ObligationKind::Release, Language::Zh) => format!(
                "系统不再使用时,使用部门应当及时通知市大数据发展中心释放资源;收到释放建议后{n}个工作日内申请释放或说明理由提出异议。"
            ),
            (ObligationKind::Release, Language::En) => format!(
                "a system no longer used is released; within {n} working days of receiving release advice the department requests the release or contests the advice with its reason."
            ),
            (ObligationKind::RequestAnswer, Language::Zh) => format!(
                "各部门部署业务系统应当向市大数据发展中心提出资源申请;市大数据发展中心在收到申请后{n}个工作日内审核答复。"
            ),
            (ObligationKind::RequestAnswer, Language::En) => format!(
                "a department applies to the big-data center for cloud resources; the center answers within {n} working days of receiving the request."
            ),
        }
    }
}

impl FromStr for ObligationKind {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ObligationKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                InvalidValue::new(
                    "obligation kind",
                    s,
                    "is not deployment, adjustment, filing, registration, release or request_answer",
                )
            })
    }
}

impl fmt::Display for ObligationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an obligation stands on a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObligationState {
    Open,
    Overdue,
    DoneOnTime,
    DoneLate,
}

impl ObligationState {
    pub fn as_str(self) -> &'static str {
        match self {
            ObligationState::Open => "open",
            ObligationState::Overdue => "overdue",
            ObligationState::DoneOnTime => "done_on_time",
            ObligationState::DoneLate => "done_late",
        }
    }
}

impl fmt::Display for ObligationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The due date: `n` working days after `start` (`start` not counted).
pub fn due_date(calendar: &Calendar, start: NaiveDate, n: WorkingDays) -> Checked<NaiveDate> {
    calendar.add_workdays(start, n)
}

/// The state as of `today`. Work done after `today` is not known yet as of `today`.
pub fn state(due: NaiveDate, done_on: Option<NaiveDate>, today: NaiveDate) -> ObligationState {
    match done_on.filter(|d| *d <= today) {
        Some(done) if done <= due => ObligationState::DoneOnTime,
        Some(_) => ObligationState::DoneLate,
        None if today > due => ObligationState::Overdue,
        None => ObligationState::Open,
    }
}

/// What a check on `today` should do for an obligation that is not done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Tell the department the due date is near.
    Remind,
    /// Tell the department and the center the due date has passed.
    Escalate,
}

/// The action due on `today`, if any: a reminder from `reminder_before` working days before
/// the due date up to the due date itself, an escalation from the day after. Whether it was
/// already sent is the caller's record (each is sent once); a reminder that was never sent is
/// skipped once the obligation is overdue, because the escalation says more.
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
    fn filing_is_due_20_working_days_after_the_first_deployment() {
        // Deployed Fri 2025-09-19: the National Day holiday and the adjusted workdays of
        // 28 Sep and 11 Oct included, the 20th working day is Thu 23 Oct.
        let due = due_date(&cal(), d("2025-09-19"), wd(20));
        assert_eq!(due.value, d("2025-10-23"));
    }

    #[test]
    fn states_follow_the_due_day_inclusively() {
        let due = d("2025-10-16");
        assert_eq!(state(due, None, d("2025-10-16")), ObligationState::Open);
        assert_eq!(state(due, None, d("2025-10-17")), ObligationState::Overdue);
        assert_eq!(
            state(due, Some(d("2025-10-16")), d("2025-10-20")),
            ObligationState::DoneOnTime
        );
        assert_eq!(
            state(due, Some(d("2025-10-17")), d("2025-10-20")),
            ObligationState::DoneLate
        );
        // Done later than the day asked about: as of that day it was not done.
        assert_eq!(
            state(due, Some(d("2025-10-17")), d("2025-10-10")),
            ObligationState::Open
        );
    }

    #[test]
    fn reminder_starts_three_working_days_before_and_escalation_the_day_after() {
        let c = cal();
        let due = d("2025-10-16");
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

    #[test]
    fn every_kind_names_itself_its_article_and_its_rules_entry_distinctly() {
        let mut keys = std::collections::HashSet::new();
        for kind in ObligationKind::ALL {
            assert_eq!(kind.as_str().parse::<ObligationKind>(), Ok(kind));
            assert_eq!(ObligationKind::ALL[kind.index()], kind);
            assert!(
                keys.insert(kind.period_key()),
                "{kind} shares a rules entry"
            );
            assert!(kind.article().number > 0 && !kind.article().text.is_empty());
            for language in [Language::Zh, Language::En] {
                assert!(!kind.title(language).is_empty());
                assert!(kind.rule(language, 7).contains('7'), "{kind} {language:?}");
            }
        }
        assert!("catalogue".parse::<ObligationKind>().is_err());
    }
}
