//! Details in the page's language: deadline events, alerts, network evidence and audit entries,
//! rendered from the facts the store keeps beside each English sentence ([`crate::core::details`],
//! [`crate::core::network::Evidence`]) with the strings of [`super::i18n`].
//!
//! A row written before the facts existed has only its English sentence: English pages show
//! it, Chinese pages show nothing rather than English prose.

use chrono::{DateTime, NaiveDate, Utc};

use super::Lang;
use crate::core::details::{AlertFacts, AuditFacts, DeadlineFacts};
use crate::core::network::{Evidence, SeenBy};
use crate::store::{AlertView, AuditRow, NetworkFindingView, TimelineEvent};

/// A day as the page's language writes it: `2025年10月16日`, or `2025-10-16`.
pub fn day(lang: Lang, d: NaiveDate) -> String {
    match lang {
        Lang::Zh => crate::jobs::notify::content::zh_date(d),
        Lang::En => d.to_string(),
    }
}

/// An instant as a Shanghai date and minute, `2026-11-23 14:05` (the same in both languages).
fn minute(t: DateTime<Utc>) -> String {
    t.with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// The facts stored as JSON, if there are any and they parse.
fn facts<T: serde::de::DeserializeOwned>(json: Option<&str>) -> Option<T> {
    json.and_then(|j| serde_json::from_str(j).ok())
}

/// The stored sentence where the page can show it (English pages), else nothing.
fn fallback(lang: Lang, english: &str) -> String {
    match lang {
        Lang::En => english.to_owned(),
        Lang::Zh => String::new(),
    }
}

/// `source` (confirmed, inventory, inferred, agent, released, ...) in the page's language; an
/// unknown one as it is stored (an identifier).
pub fn source(lang: Lang, source: &str) -> String {
    lang.lookup(&format!("source_{source}"))
        .map_or_else(|| source.to_owned(), str::to_owned)
}

fn provisional(lang: Lang, provisional: bool) -> &'static str {
    if provisional {
        lang.text("provisional_short")
    } else {
        ""
    }
}

/// One deadline event's detail.
pub fn deadline_event(lang: Lang, e: &TimelineEvent) -> String {
    let Some(facts) = facts::<DeadlineFacts>(e.facts.as_deref()) else {
        return fallback(lang, &e.detail);
    };
    match facts {
        DeadlineFacts::Created {
            working_days,
            start_on,
            due_on,
            provisional: p,
        } => lang.fill(
            "detail_created",
            &[
                ("n", working_days.to_string()),
                ("start", day(lang, start_on)),
                ("due", day(lang, due_on) + provisional(lang, p)),
            ],
        ),
        DeadlineFacts::Reminder {
            due_on,
            provisional: p,
            working_days_left,
        } => lang.fill(
            "detail_reminder",
            &[
                ("due", day(lang, due_on) + provisional(lang, p)),
                ("n", working_days_left.to_string()),
            ],
        ),
        DeadlineFacts::Escalation {
            due_on,
            provisional: p,
            working_days_late,
        } => lang.fill(
            "detail_escalation",
            &[
                ("due", day(lang, due_on) + provisional(lang, p)),
                ("n", working_days_late.to_string()),
            ],
        ),
        DeadlineFacts::Done { done_on, source: s } => lang.fill(
            "detail_done",
            &[("on", day(lang, done_on)), ("source", source(lang, &s))],
        ),
        DeadlineFacts::Released { released_on } => {
            lang.fill("detail_released", &[("on", day(lang, released_on))])
        }
    }
}

/// One alert's detail.
pub fn alert(lang: Lang, a: &AlertView) -> String {
    let Some(facts) = facts::<AlertFacts>(a.facts.as_deref()) else {
        return fallback(lang, &a.detail);
    };
    match facts {
        AlertFacts::SilentAgent {
            last_report_on: Some(since),
            working_days,
            ..
        } => lang.fill(
            "alert_silent_since",
            &[("since", day(lang, since)), ("n", working_days.to_string())],
        ),
        AlertFacts::SilentAgent {
            last_report_on: None,
            deployed_on,
            working_days,
        } => lang.fill(
            "alert_silent_never",
            &[
                ("deployed", day(lang, deployed_on)),
                ("n", working_days.to_string()),
            ],
        ),
        AlertFacts::NotFiled {
            project,
            first_deployed_on,
            filing_due,
            provisional: p,
        } => lang.fill(
            "alert_not_filed",
            &[
                ("project", project),
                ("first", day(lang, first_deployed_on)),
                ("due", day(lang, filing_due) + provisional(lang, p)),
            ],
        ),
        AlertFacts::ClockSkew {
            offset_secs,
            limit_secs,
        } => lang.fill(
            if offset_secs > 0 {
                "alert_clock_behind"
            } else {
                "alert_clock_ahead"
            },
            &[
                ("n", offset_secs.abs().to_string()),
                ("limit", limit_secs.to_string()),
            ],
        ),
        AlertFacts::ReportsDropped { reports } => {
            lang.fill("alert_reports_dropped", &[("n", reports.to_string())])
        }
    }
}

fn list(lang: Lang, items: impl IntoIterator<Item = String>) -> String {
    items
        .into_iter()
        .collect::<Vec<_>>()
        .join(lang.text("list_sep"))
}

fn seen_by(lang: Lang, seen: &[SeenBy]) -> String {
    list(
        lang,
        seen.iter().map(|s| {
            format!(
                "{} {}",
                lang.text(&format!("sighting_{}", s.kind.as_str())),
                s.source
            )
        }),
    )
}

/// One network finding's evidence.
pub fn network_evidence(lang: Lang, f: &NetworkFindingView) -> String {
    let Some(facts) = facts::<Evidence>(f.facts.as_deref()) else {
        return fallback(lang, &f.evidence);
    };
    let (ip, mac) = (f.ip.clone(), f.mac.clone());
    match facts {
        Evidence::Unregistered {
            seen_by: seen,
            last_seen,
        } => lang.fill(
            "evidence_unregistered",
            &[
                ("ip", ip),
                ("mac", mac),
                ("seen", seen_by(lang, &seen)),
                ("last", minute(last_seen)),
            ],
        ),
        Evidence::OtherMac {
            bound_mac,
            holder,
            seen_by: seen,
            last_seen,
        } => lang.fill(
            "evidence_other_mac",
            &[
                ("ip", ip),
                ("bound", bound_mac),
                ("holder", holder),
                ("mac", mac),
                ("seen", seen_by(lang, &seen)),
                ("last", minute(last_seen)),
            ],
        ),
        Evidence::Conflict { macs, window_days } => lang.fill(
            "evidence_conflict",
            &[
                ("ip", ip),
                ("macs", macs.join(lang.text("and_sep"))),
                ("days", window_days.to_string()),
            ],
        ),
        Evidence::Dhcp { vm, config_source } => lang.fill(
            "evidence_dhcp",
            &[
                ("vm", vm),
                ("mac", mac),
                ("ip", ip),
                (
                    "source",
                    config_source.unwrap_or_else(|| lang.text("config_source_unknown").to_owned()),
                ),
            ],
        ),
        Evidence::ManyAddresses { addresses } => lang.fill(
            "evidence_many_addresses",
            &[
                ("mac", mac),
                ("n", addresses.len().to_string()),
                ("list", list(lang, addresses)),
            ],
        ),
        Evidence::RouterMaker { maker, oui } => lang.fill(
            "evidence_router_maker",
            &[("mac", mac), ("maker", maker), ("oui", oui)],
        ),
        Evidence::Stale {
            holder,
            registered_on,
            last_seen,
            working_days,
        } => match last_seen {
            Some(t) => lang.fill(
                "evidence_stale_seen",
                &[
                    ("ip", ip),
                    ("holder", holder),
                    ("last", minute(t)),
                    ("n", working_days.to_string()),
                ],
            ),
            None => lang.fill(
                "evidence_stale_never",
                &[
                    ("ip", ip),
                    ("holder", holder),
                    ("registered", day(lang, registered_on)),
                    ("n", working_days.to_string()),
                ],
            ),
        },
    }
}

/// An audit entry's target (`vm his-db-01` -> `虚拟机 his-db-01`) and detail.
pub fn audit(lang: Lang, row: &AuditRow) -> (String, String) {
    // The target is written by the actions as `KIND ID` (or `session`): an identifier pair.
    let target = match row.target.split_once(' ') {
        Some((kind, id)) => match lang.lookup(&format!("target_{kind}")) {
            Some(word) => format!("{word} {id}"),
            None => row.target.clone(),
        },
        None => lang
            .lookup(&format!("target_{}", row.target))
            .map_or_else(|| row.target.clone(), str::to_owned),
    };
    let Some(facts) = facts::<AuditFacts>(row.facts.as_deref()) else {
        // Before the facts, a contest's detail was its reason: a person's own words.
        let detail = if row.action == "contest_notice" {
            row.detail.clone()
        } else {
            fallback(lang, &row.detail)
        };
        return (target, detail);
    };
    let mut parts = Vec::new();
    if let Some(outcome) = &facts.outcome {
        parts.push(
            lang.lookup(&format!("audit_outcome_{outcome}"))
                .map_or_else(|| outcome.clone(), str::to_owned),
        );
    }
    if let Some(on) = facts.on {
        parts.push(lang.fill("audit_on", &[("on", day(lang, on))]));
    }
    if let (Some(mac), Some(department)) = (&facts.mac, &facts.department) {
        parts.push(lang.fill(
            "audit_binding",
            &[("mac", mac.clone()), ("department", department.clone())],
        ));
    }
    if let Some(n) = facts.deadlines_closed {
        parts.push(lang.fill("audit_deadlines_closed", &[("n", n.to_string())]));
    }
    if let Some(reason) = facts.reason.filter(|r| !r.is_empty()) {
        parts.push(lang.fill("audit_reason", &[("reason", reason)]));
    }
    (target, parts.join(lang.text("clause_sep")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    fn event(facts: &DeadlineFacts) -> TimelineEvent {
        TimelineEvent {
            event: facts.event().into(),
            at: 0,
            on: "2025-09-26".into(),
            detail: facts.english("adjustment", "vm-1"),
            facts: Some(serde_json::to_string(facts).expect("json")),
        }
    }

    #[test]
    fn deadline_events_in_both_languages_from_their_facts() {
        let created = event(&DeadlineFacts::Created {
            working_days: 10,
            start_on: d("2025-09-26"),
            due_on: d("2025-10-16"),
            provisional: false,
        });
        assert_eq!(
            deadline_event(Lang::Zh, &created),
            "2025年9月26日起10个工作日，2025年10月16日截止"
        );
        // The English page says what the stored sentence says.
        assert_eq!(deadline_event(Lang::En, &created), created.detail);
        let done = event(&DeadlineFacts::Done {
            done_on: d("2025-10-10"),
            source: "confirmed".into(),
        });
        assert_eq!(
            deadline_event(Lang::Zh, &done),
            "2025年10月10日完成（人工确认）"
        );
        assert_eq!(deadline_event(Lang::En, &done), done.detail);
        // Old rows: the English sentence on English pages only.
        let old = TimelineEvent {
            facts: None,
            ..done
        };
        assert_eq!(deadline_event(Lang::Zh, &old), "");
        assert_eq!(deadline_event(Lang::En, &old), old.detail);
    }

    #[test]
    fn alerts_and_evidence_say_the_english_sentence_in_english() {
        let facts = AlertFacts::SilentAgent {
            last_report_on: None,
            deployed_on: d("2024-03-22"),
            working_days: 617,
        };
        let view = AlertView {
            kind: facts.kind().into(),
            raised_on: "2026-11-25".into(),
            detail: facts.english(),
            facts: Some(serde_json::to_string(&facts).expect("json")),
            open: true,
        };
        assert_eq!(alert(Lang::En, &view), view.detail);
        let zh = alert(Lang::Zh, &view);
        assert!(
            zh.contains("617个工作日") && zh.contains("2024年3月22日"),
            "{zh}"
        );

        let when = DateTime::from_timestamp(1_795_365_000, 0).expect("t");
        for (evidence, ip, mac) in [
            (
                Evidence::Unregistered {
                    seen_by: vec![SeenBy {
                        kind: crate::core::network::SightingKind::Arp,
                        source: "core-01".into(),
                    }],
                    last_seen: when,
                },
                "10.0.0.9",
                "aa:bb:cc:dd:ee:ff",
            ),
            (
                Evidence::Conflict {
                    macs: vec!["aa:bb:cc:00:00:01".into(), "aa:bb:cc:00:00:02".into()],
                    window_days: 7,
                },
                "10.0.0.8",
                "aa:bb:cc:00:00:01,aa:bb:cc:00:00:02",
            ),
            (
                Evidence::Stale {
                    holder: "PC-1".into(),
                    registered_on: d("2025-06-01"),
                    last_seen: None,
                    working_days: 20,
                },
                "10.0.0.7",
                "aa:bb:cc:dd:ee:01",
            ),
        ] {
            let view = NetworkFindingView {
                id: 1,
                kind: "k".into(),
                ip: ip.into(),
                mac: mac.into(),
                department: None,
                evidence: evidence.english(ip, mac),
                facts: Some(serde_json::to_string(&evidence).expect("json")),
                raised_at: 0,
                last_raised_at: 0,
                open: true,
            };
            assert_eq!(network_evidence(Lang::En, &view), view.evidence);
            let zh = network_evidence(Lang::Zh, &view);
            assert!(zh.contains(ip) && !zh.contains(" by "), "{zh}");
        }
    }

    #[test]
    fn audit_targets_and_details_in_the_page_language() {
        let row = AuditRow {
            id: 1,
            at: 0,
            username: "admin".into(),
            action: "confirm_release".into(),
            target: "vm his-app-02".into(),
            detail: "released on 2026-11-20; 1 deadlines closed".into(),
            facts: Some(
                serde_json::to_string(&AuditFacts {
                    on: Some(d("2026-11-20")),
                    deadlines_closed: Some(1),
                    ..Default::default()
                })
                .expect("json"),
            ),
        };
        let (target, detail) = audit(Lang::Zh, &row);
        assert_eq!(target, "虚拟机 his-app-02");
        assert_eq!(detail, "日期 2026年11月20日；关闭期限 1 项");
        let (target, detail) = audit(Lang::En, &row);
        assert_eq!(target, "VM his-app-02");
        assert_eq!(detail, "on 2026-11-20; 1 deadlines closed");
        let old = AuditRow { facts: None, ..row };
        assert_eq!(audit(Lang::Zh, &old).1, "");
    }
}
