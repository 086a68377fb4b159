//! Network registration checks of Pingdu art. 14 (static IP, registered, IP-MAC binding, no
//! private routers): the registry compared with what agents and switches saw.
//!
//! Architecture Invariant: pure. Callers pass the registry, the sightings and the instant.
//! A sighting is one (IP, MAC) pair seen by one source between `first_seen` and `last_seen`;
//! keeping both ends is what tells a host that changed its MAC (intervals one after the other)
//! from two hosts fighting over one address (intervals that overlap).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use chrono_tz::Asia::Shanghai;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::core::calendar::{Calendar, WorkingDays};
use crate::core::domain::MacAddr;

/// The consumer router makers' OUIs shipped with cloudgov (see `rules/network/`).
pub const BUILTIN_ROUTER_OUIS: &str = include_str!("../../rules/network/consumer-router-ouis.csv");

#[derive(Debug, Clone, PartialEq)]
pub struct RegistryEntry {
    pub ip: IpAddr,
    pub mac: MacAddr,
    pub department: String,
    pub holder: String,
    pub registered_on: NaiveDate,
    pub gateway: bool,
    /// When the binding last moved to another MAC; sightings of other MACs that ended before
    /// it are history, not a mismatch. `None` for a binding never changed.
    pub mac_since: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SightingKind {
    /// An agent's own interface address.
    Interface,
    /// An entry of an agent's neighbour table.
    Neighbour,
    /// An ARP/neighbour table exported from a switch or router.
    Arp,
}

impl SightingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SightingKind::Interface => "interface",
            SightingKind::Neighbour => "neighbour",
            SightingKind::Arp => "arp",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sighting {
    pub ip: IpAddr,
    pub mac: MacAddr,
    pub kind: SightingKind,
    /// The agent's VM id, or the ARP export's source.
    pub source: String,
    /// The department of the reporting VM (agent interface sightings only).
    pub department: Option<String>,
    /// `static`, `dhcp` or `unknown`; meaningful for interface sightings.
    pub config: String,
    pub config_source: Option<String>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

/// The rules file's `[network]` section, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkRules {
    /// Empty: every address seen counts as on a managed network.
    pub managed: Vec<IpNet>,
    pub window_days: u32,
    pub stale_after: WorkingDays,
    /// A MAC answering for at least this many IPv4 addresses looks like a router doing NAT or proxy ARP.
    pub router_min_ips: usize,
    /// OUI (`aa:bb:cc`) -> maker.
    pub router_ouis: HashMap<String, String>,
}

/// Parses `oui,maker,organization` lines (header first).
pub fn parse_router_ouis(text: &str) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let mut fields = line.splitn(3, ',');
        let (Some(oui), Some(maker)) = (fields.next(), fields.next()) else {
            return Err(format!(
                "OUI list line {}: expected oui,maker,organization",
                i + 1
            ));
        };
        let valid = oui.len() == 8
            && oui
                .split(':')
                .all(|b| b.len() == 2 && b.chars().all(|c| c.is_ascii_hexdigit()));
        if !valid {
            return Err(format!("OUI list line {}: {oui:?} is not aa:bb:cc", i + 1));
        }
        out.insert(oui.to_ascii_lowercase(), maker.to_owned());
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkFindingKind {
    UnregisteredIp,
    MacMismatch,
    IpConflict,
    DhcpAddress,
    SuspectedRouter,
    StaleRegistration,
}

impl NetworkFindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkFindingKind::UnregisteredIp => "unregistered_ip",
            NetworkFindingKind::MacMismatch => "mac_mismatch",
            NetworkFindingKind::IpConflict => "ip_conflict",
            NetworkFindingKind::DhcpAddress => "dhcp_address",
            NetworkFindingKind::SuspectedRouter => "suspected_router",
            NetworkFindingKind::StaleRegistration => "stale_registration",
        }
    }
}

impl fmt::Display for NetworkFindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct NetworkFinding {
    pub kind: NetworkFindingKind,
    pub ip: String,
    /// The MAC concerned; several joined by `,` for a conflict; absent where none applies.
    pub mac: Option<String>,
    pub department: Option<String>,
    /// What the finding rests on, in English (`facts` as a sentence).
    pub evidence: String,
    /// The same as data, for readers in other languages.
    pub facts: Evidence,
}

impl NetworkFinding {
    fn new(
        kind: NetworkFindingKind,
        ip: String,
        mac: Option<String>,
        department: Option<String>,
        facts: Evidence,
    ) -> NetworkFinding {
        NetworkFinding {
            evidence: facts.english(&ip, mac.as_deref().unwrap_or("")),
            kind,
            ip,
            mac,
            department,
            facts,
        }
    }
}

/// One sighting source of an address: how it was seen and by whom (an agent's VM id, or an
/// ARP export's source).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SeenBy {
    pub kind: SightingKind,
    pub source: String,
}

/// What a network finding rests on, as data. The store keeps it beside the English
/// [`NetworkFinding::evidence`], so the dashboard says the same in the page's language.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "evidence", rename_all = "snake_case")]
pub enum Evidence {
    /// The address is not registered.
    Unregistered {
        seen_by: Vec<SeenBy>,
        last_seen: DateTime<Utc>,
    },
    /// The address is registered to `bound_mac` (of `holder`) but was seen with another MAC.
    OtherMac {
        bound_mac: String,
        holder: String,
        seen_by: Vec<SeenBy>,
        last_seen: DateTime<Utc>,
    },
    /// `macs` used the address at the same time within the window.
    Conflict { macs: Vec<String>, window_days: u32 },
    /// The address of VM `vm` is configured by DHCP (read from `config_source`).
    Dhcp {
        vm: String,
        config_source: Option<String>,
    },
    /// One MAC answers for all of `addresses`.
    ManyAddresses { addresses: Vec<String> },
    /// The MAC's OUI belongs to `maker`, a consumer router maker.
    RouterMaker { maker: String, oui: String },
    /// Registered to `holder` on `registered_on`, not seen for `working_days` (last seen at
    /// `last_seen`, or never).
    Stale {
        holder: String,
        registered_on: NaiveDate,
        last_seen: Option<DateTime<Utc>>,
        working_days: u32,
    },
}

/// Sorted like their English text, so the sentence lists sources in a stable order.
fn seen_by(seen: &[&Sighting]) -> Vec<SeenBy> {
    let mut out: Vec<SeenBy> = seen
        .iter()
        .map(|s| SeenBy {
            kind: s.kind,
            source: s.source.clone(),
        })
        .collect();
    out.sort_by(|a, b| (a.kind.as_str(), &a.source).cmp(&(b.kind.as_str(), &b.source)));
    out.dedup();
    out
}

impl Evidence {
    /// The English sentence the CLI, the API and e-mails carry; `ip` and `mac` are the
    /// finding's.
    pub fn english(&self, ip: &str, mac: &str) -> String {
        let sources = |seen: &[SeenBy]| {
            seen.iter()
                .map(|s| format!("{} {}", s.kind.as_str(), s.source))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Evidence::Unregistered { seen_by, last_seen } => format!(
                "{ip} with MAC {mac} is not in the IP registry; seen by {} until {}",
                sources(seen_by),
                when(*last_seen)
            ),
            Evidence::OtherMac {
                bound_mac,
                holder,
                seen_by,
                last_seen,
            } => format!(
                "{ip} is bound to {bound_mac} ({holder}) but was seen with {mac} by {} until {}",
                sources(seen_by),
                when(*last_seen)
            ),
            Evidence::Conflict { macs, window_days } => format!(
                "{ip} was in use by {} at the same time within the last {window_days} days",
                macs.join(" and ")
            ),
            Evidence::Dhcp { vm, config_source } => format!(
                "VM {vm} interface {mac} gets {ip} by DHCP ({}); art. 14 requires a static address",
                config_source.as_deref().unwrap_or("source unknown")
            ),
            Evidence::ManyAddresses { addresses } => format!(
                "{mac} answers for {} addresses ({}): a router or NAT device behind one port",
                addresses.len(),
                addresses.join(", ")
            ),
            Evidence::RouterMaker { maker, oui } => {
                format!("{mac} belongs to {maker} (OUI {oui}), a maker of consumer routers")
            }
            Evidence::Stale {
                holder,
                registered_on,
                last_seen,
                working_days,
            } => {
                let seen = match last_seen {
                    Some(t) => format!("last seen {}", when(*t)),
                    None => format!("never seen since registration on {registered_on}"),
                };
                format!("{ip} ({holder}) {seen}: {working_days} working days")
            }
        }
    }
}

impl NetworkRules {
    /// Whether `ip` is on a managed network. Link-local, loopback, multicast and unspecified
    /// addresses are never registrable and never count.
    pub fn manages(&self, ip: IpAddr) -> bool {
        let special = match ip {
            IpAddr::V4(v4) => {
                v4.is_loopback()
                    || v4.is_link_local()
                    || v4.is_multicast()
                    || v4.is_unspecified()
                    || v4.is_broadcast()
            }
            IpAddr::V6(v6) => {
                v6.is_loopback()
                    || v6.is_multicast()
                    || v6.is_unspecified()
                    || v6.is_unicast_link_local()
            }
        };
        !special && (self.managed.is_empty() || self.managed.iter().any(|net| net.contains(&ip)))
    }
}

fn when(t: DateTime<Utc>) -> String {
    t.with_timezone(&Shanghai)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// Runs every check as of `at`. Findings come out sorted, one per (kind, ip, mac).
pub fn check(
    registry: &[RegistryEntry],
    sightings: &[Sighting],
    rules: &NetworkRules,
    calendar: &Calendar,
    at: DateTime<Utc>,
) -> Vec<NetworkFinding> {
    let window_start = at - TimeDelta::days(i64::from(rules.window_days));
    let recent: Vec<&Sighting> = sightings
        .iter()
        .filter(|s| s.last_seen > window_start && s.first_seen <= at && rules.manages(s.ip))
        .collect();
    let by_ip: HashMap<IpAddr, &RegistryEntry> = registry.iter().map(|r| (r.ip, r)).collect();
    let gateway_macs: BTreeSet<MacAddr> = registry
        .iter()
        .filter(|r| r.gateway)
        .map(|r| r.mac)
        .collect();
    let department_of = |ip: IpAddr, seen: &[&Sighting]| -> Option<String> {
        by_ip
            .get(&ip)
            .map(|r| r.department.clone())
            .or_else(|| seen.iter().find_map(|s| s.department.clone()))
    };
    let mut findings = BTreeSet::new();

    // Group the recent sightings by IP and MAC.
    let mut per_ip: BTreeMap<IpAddr, BTreeMap<MacAddr, Vec<&Sighting>>> = BTreeMap::new();
    for s in &recent {
        per_ip
            .entry(s.ip)
            .or_default()
            .entry(s.mac)
            .or_default()
            .push(s);
    }
    for (&ip, macs) in &per_ip {
        let all: Vec<&Sighting> = macs.values().flatten().copied().collect();
        let department = department_of(ip, &all);
        match by_ip.get(&ip) {
            None => {
                for (mac, seen) in macs {
                    let last = seen.iter().map(|s| s.last_seen).max().unwrap_or(at);
                    findings.insert(NetworkFinding::new(
                        NetworkFindingKind::UnregisteredIp,
                        ip.to_string(),
                        Some(mac.to_string()),
                        department.clone(),
                        Evidence::Unregistered {
                            seen_by: seen_by(seen),
                            last_seen: last,
                        },
                    ));
                }
            }
            Some(entry) => {
                for (mac, seen) in macs.iter().filter(|(mac, _)| **mac != entry.mac) {
                    let last = seen.iter().map(|s| s.last_seen).max().unwrap_or(at);
                    if entry.mac_since.is_some_and(|since| last < since) {
                        continue;
                    }
                    findings.insert(NetworkFinding::new(
                        NetworkFindingKind::MacMismatch,
                        ip.to_string(),
                        Some(mac.to_string()),
                        Some(entry.department.clone()),
                        Evidence::OtherMac {
                            bound_mac: entry.mac.to_string(),
                            holder: entry.holder.clone(),
                            seen_by: seen_by(seen),
                            last_seen: last,
                        },
                    ));
                }
            }
        }
        // Two MACs whose sighting intervals overlap are two hosts using the address at once.
        let spans: Vec<(MacAddr, DateTime<Utc>, DateTime<Utc>)> = macs
            .iter()
            .filter_map(|(mac, seen)| {
                let first = seen.iter().map(|s| s.first_seen).min()?;
                let last = seen.iter().map(|s| s.last_seen).max()?;
                Some((*mac, first, last))
            })
            .collect();
        let mut fighting = BTreeSet::new();
        for (i, a) in spans.iter().enumerate() {
            for b in &spans[i + 1..] {
                if a.1 <= b.2 && b.1 <= a.2 {
                    fighting.insert(a.0);
                    fighting.insert(b.0);
                }
            }
        }
        if fighting.len() >= 2 {
            let macs: Vec<String> = fighting.iter().map(MacAddr::to_string).collect();
            findings.insert(NetworkFinding::new(
                NetworkFindingKind::IpConflict,
                ip.to_string(),
                Some(macs.join(",")),
                department,
                Evidence::Conflict {
                    macs,
                    window_days: rules.window_days,
                },
            ));
        }
    }

    for s in recent
        .iter()
        .filter(|s| s.kind == SightingKind::Interface && s.config == "dhcp")
    {
        findings.insert(NetworkFinding::new(
            NetworkFindingKind::DhcpAddress,
            s.ip.to_string(),
            Some(s.mac.to_string()),
            s.department.clone(),
            Evidence::Dhcp {
                vm: s.source.clone(),
                config_source: s.config_source.clone(),
            },
        ));
    }

    // Private routers: a MAC answering for many IPv4 addresses, or a consumer router maker's MAC.
    // A host's own addresses (VIPs, several IPs on one NIC) are not a router's: only what
    // neighbours and switches saw counts towards "one MAC, many addresses".
    let mut per_mac: BTreeMap<MacAddr, BTreeSet<IpAddr>> = BTreeMap::new();
    for s in recent
        .iter()
        .filter(|s| s.ip.is_ipv4() && s.kind != SightingKind::Interface)
    {
        per_mac.entry(s.mac).or_default().insert(s.ip);
    }
    for (mac, ips) in per_mac
        .iter()
        .filter(|(mac, _)| !gateway_macs.contains(mac))
    {
        let Some(first_ip) = ips.iter().next() else {
            continue;
        };
        let department = ips
            .iter()
            .find_map(|ip| by_ip.get(ip).map(|r| r.department.clone()));
        if ips.len() >= rules.router_min_ips {
            findings.insert(NetworkFinding::new(
                NetworkFindingKind::SuspectedRouter,
                first_ip.to_string(),
                Some(mac.to_string()),
                department.clone(),
                Evidence::ManyAddresses {
                    addresses: ips.iter().map(IpAddr::to_string).collect(),
                },
            ));
        } else if let Some(maker) = rules.router_ouis.get(&mac.oui()) {
            findings.insert(NetworkFinding::new(
                NetworkFindingKind::SuspectedRouter,
                first_ip.to_string(),
                Some(mac.to_string()),
                department,
                Evidence::RouterMaker {
                    maker: maker.clone(),
                    oui: mac.oui(),
                },
            ));
        }
    }

    // Registrations nobody has seen for a while.
    let today = at.with_timezone(&Shanghai).date_naive();
    let mut last_seen: HashMap<IpAddr, DateTime<Utc>> = HashMap::new();
    for s in sightings.iter().filter(|s| s.first_seen <= at) {
        let t = s.last_seen.min(at);
        last_seen
            .entry(s.ip)
            .and_modify(|l| *l = (*l).max(t))
            .or_insert(t);
    }
    for r in registry {
        let since = last_seen
            .get(&r.ip)
            .map(|t| t.with_timezone(&Shanghai).date_naive())
            .unwrap_or(r.registered_on)
            .max(r.registered_on);
        let idle = calendar.between(since, today).value;
        if idle >= rules.stale_after.get() {
            findings.insert(NetworkFinding::new(
                NetworkFindingKind::StaleRegistration,
                r.ip.to_string(),
                Some(r.mac.to_string()),
                Some(r.department.clone()),
                Evidence::Stale {
                    holder: r.holder.clone(),
                    registered_on: r.registered_on,
                    last_seen: last_seen.get(&r.ip).copied(),
                    working_days: idle,
                },
            ));
        }
    }
    findings.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(day: u32, hour: u32) -> DateTime<Utc> {
        Shanghai
            .with_ymd_and_hms(2025, 6, day, hour, 0, 0)
            .single()
            .expect("time")
            .with_timezone(&Utc)
    }

    fn mac(s: &str) -> MacAddr {
        s.parse().expect("mac")
    }

    fn rules() -> NetworkRules {
        NetworkRules {
            managed: vec![],
            window_days: 7,
            stale_after: WorkingDays::new(20).expect("wd"),
            router_min_ips: 3,
            router_ouis: parse_router_ouis(BUILTIN_ROUTER_OUIS).expect("ouis"),
        }
    }

    fn seen(ip: &str, m: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Sighting {
        Sighting {
            ip: ip.parse().expect("ip"),
            mac: mac(m),
            kind: SightingKind::Arp,
            source: "core-switch".into(),
            department: None,
            config: "unknown".into(),
            config_source: None,
            first_seen: from,
            last_seen: to,
        }
    }

    fn entry(ip: &str, m: &str) -> RegistryEntry {
        RegistryEntry {
            ip: ip.parse().expect("ip"),
            mac: mac(m),
            department: "health".into(),
            holder: "PC-1".into(),
            registered_on: NaiveDate::from_ymd_opt(2025, 6, 1).expect("date"),
            gateway: false,
            mac_since: None,
        }
    }

    fn kinds(f: &[NetworkFinding]) -> Vec<(NetworkFindingKind, String)> {
        f.iter().map(|f| (f.kind, f.ip.clone())).collect()
    }

    fn run(registry: &[RegistryEntry], sightings: &[Sighting]) -> Vec<NetworkFinding> {
        check(
            registry,
            sightings,
            &rules(),
            &Calendar::builtin().expect("calendar"),
            t(20, 12),
        )
    }

    #[test]
    fn a_host_that_changed_mac_is_a_mismatch_not_a_conflict() {
        let f = run(
            &[entry("10.1.0.5", "52:54:00:00:00:01")],
            &[
                seen("10.1.0.5", "52:54:00:00:00:01", t(14, 9), t(16, 9)),
                seen("10.1.0.5", "52:54:00:00:00:02", t(17, 9), t(20, 9)),
            ],
        );
        assert_eq!(
            kinds(&f),
            vec![(NetworkFindingKind::MacMismatch, "10.1.0.5".into())]
        );
        assert_eq!(f[0].mac.as_deref(), Some("52:54:00:00:00:02"));
        assert_eq!(f[0].department.as_deref(), Some("health"));
    }

    #[test]
    fn two_hosts_at_once_are_a_conflict() {
        let f = run(
            &[entry("10.1.0.5", "52:54:00:00:00:01")],
            &[
                seen("10.1.0.5", "52:54:00:00:00:01", t(14, 9), t(20, 9)),
                seen("10.1.0.5", "52:54:00:00:00:02", t(17, 9), t(17, 10)),
            ],
        );
        let k = kinds(&f);
        assert!(
            k.contains(&(NetworkFindingKind::IpConflict, "10.1.0.5".into())),
            "{k:?}"
        );
        assert!(
            k.contains(&(NetworkFindingKind::MacMismatch, "10.1.0.5".into())),
            "{k:?}"
        );
    }

    #[test]
    fn unregistered_ipv6_and_link_local_ignored() {
        let f = run(
            &[],
            &[
                seen("2001:db8::5", "52:54:00:00:00:03", t(19, 9), t(20, 9)),
                seen("fe80::1", "52:54:00:00:00:04", t(19, 9), t(20, 9)),
            ],
        );
        assert_eq!(
            kinds(&f),
            vec![(NetworkFindingKind::UnregisteredIp, "2001:db8::5".into())]
        );
    }

    #[test]
    fn routers_by_many_addresses_or_by_maker_but_not_registered_gateways() {
        let many: Vec<Sighting> = (1..=3)
            .map(|i| {
                seen(
                    &format!("10.2.0.{i}"),
                    "52:54:00:00:00:09",
                    t(19, 9),
                    t(20, 9),
                )
            })
            .collect();
        let f = run(&[], &many);
        assert!(
            f.iter()
                .any(|f| f.kind == NetworkFindingKind::SuspectedRouter
                    && f.evidence.contains("3 addresses")),
            "{f:?}"
        );
        let mut gw = entry("10.2.0.1", "52:54:00:00:00:09");
        gw.gateway = true;
        assert!(
            run(&[gw], &many)
                .iter()
                .all(|f| f.kind != NetworkFindingKind::SuspectedRouter)
        );
        // A TP-Link prefix from the shipped IEEE subset.
        let oui = rules()
            .router_ouis
            .iter()
            .find(|(_, m)| *m == "TP-Link")
            .map(|(o, _)| o.clone())
            .expect("a TP-Link OUI");
        let f = run(
            &[],
            &[seen(
                "10.3.0.7",
                &format!("{oui}:12:34:56"),
                t(19, 9),
                t(20, 9),
            )],
        );
        assert!(
            f.iter()
                .any(|f| f.kind == NetworkFindingKind::SuspectedRouter
                    && f.evidence.contains("TP-Link")),
            "{f:?}"
        );
    }

    #[test]
    fn each_finding_carries_its_evidence_as_data_and_as_the_english_sentence() {
        let f = run(
            &[entry("10.1.0.5", "52:54:00:00:00:01")],
            &[
                seen("10.1.0.5", "52:54:00:00:00:01", t(14, 9), t(20, 9)),
                seen("10.1.0.5", "52:54:00:00:00:02", t(17, 9), t(17, 10)),
            ],
        );
        for finding in &f {
            // The sentence is the facts', and the facts survive the store's JSON.
            let mac = finding.mac.as_deref().unwrap_or("");
            assert_eq!(finding.evidence, finding.facts.english(&finding.ip, mac));
            let json = serde_json::to_string(&finding.facts).expect("json");
            assert_eq!(
                serde_json::from_str::<Evidence>(&json).expect("parse"),
                finding.facts
            );
        }
        let mismatch = f
            .iter()
            .find(|f| f.kind == NetworkFindingKind::MacMismatch)
            .expect("mismatch");
        assert_eq!(
            mismatch.evidence,
            "10.1.0.5 is bound to 52:54:00:00:00:01 (PC-1) but was seen with 52:54:00:00:00:02 \
             by arp core-switch until 2025-06-17 10:00"
        );
        assert!(
            matches!(&mismatch.facts, Evidence::OtherMac { holder, seen_by, .. }
                if holder == "PC-1" && seen_by.len() == 1 && seen_by[0].kind == SightingKind::Arp),
            "{:?}",
            mismatch.facts
        );
    }

    #[test]
    fn stale_after_twenty_working_days_and_window_and_cidr_rules() {
        // Registered Sunday 06-01, never seen. 06-02 was Dragon Boat Festival (off): 06-27 is 19
        // working days later, 06-30 the 20th.
        let registered = [entry("10.1.0.9", "52:54:00:00:00:05")];
        let calendar = Calendar::builtin().expect("calendar");
        assert!(check(&registered, &[], &rules(), &calendar, t(27, 12)).is_empty());
        let f = check(&registered, &[], &rules(), &calendar, t(30, 12));
        assert_eq!(
            kinds(&f),
            vec![(NetworkFindingKind::StaleRegistration, "10.1.0.9".into())]
        );
        assert!(
            f[0].evidence.contains("never seen") && f[0].evidence.contains("20 working days"),
            "{f:?}"
        );
        // Seen on 06-20: not stale on 06-30.
        let f = check(
            &registered,
            &[seen("10.1.0.9", "52:54:00:00:00:05", t(20, 9), t(20, 10))],
            &rules(),
            &calendar,
            t(30, 12),
        );
        assert!(f.is_empty(), "{f:?}");
        // Outside the window: not an unregistered address any more.
        assert!(
            run(
                &[],
                &[seen("10.9.0.1", "52:54:00:00:00:06", t(1, 9), t(2, 9))]
            )
            .is_empty()
        );
        // Outside the managed CIDRs: ignored.
        let mut narrow = rules();
        narrow.managed = vec!["10.1.0.0/16".parse().expect("net")];
        let f = check(
            &[],
            &[seen("192.0.2.1", "52:54:00:00:00:07", t(19, 9), t(20, 9))],
            &narrow,
            &Calendar::builtin().expect("c"),
            t(20, 12),
        );
        assert!(f.is_empty());
    }
}
