//! The checks a report passes before anything of it is stored: numbers in range, times in the
//! arrival window, bounded strings and lists without control characters, MACs that parse. Turns
//! an agent's batch into what the store keeps: every report's sample, the newest report's view
//! of the agent, and the (IP, MAC) pairs the reports show, collapsed as they are read.

use std::collections::HashMap;
use std::net::IpAddr;

use chrono::Utc;
use cloudgov_agent::wire::{AddressConfig, Report};
use serde::Serialize;

use crate::core::domain::{ArrivalWindow, MacAddr};
use crate::core::network::SightingKind;
use crate::core::samples::{Hundredths, MAX_INBOUND_CONNECTIONS, Sample, SampleRow, rate_bps};
use crate::store::{AgentBatch, AgentSelf, ClockReading, SightingRow};

/// Longest interface name, MAC text or filesystem type a report may carry.
pub const MAX_NAME_BYTES: usize = 64;
/// Longest path (mount point, device, configuration file) a report may carry.
pub const MAX_PATH_BYTES: usize = 4096;

/// Checks every report of one agent's batch and reduces the batch to what the store keeps (the
/// ingest handler's own step, public for the benchmark). An error names the report
/// (`reports[3]: ...`); nothing of a batch with a bad report is kept.
pub fn check_batch<S: AsRef<str> + Serialize>(
    reports: &[Report<S>],
    vm_key: i64,
    vm_id: &str,
    now: chrono::DateTime<Utc>,
    clock: Option<ClockReading>,
) -> Result<AgentBatch, String> {
    let mut samples = Vec::with_capacity(reports.len());
    let mut sightings = Sightings::default();
    let mut newest: Option<&Report<S>> = None;
    for (i, r) in reports.iter().enumerate() {
        let checked = check_report(r, vm_key, now).and_then(|sample| {
            sightings.add(r)?;
            Ok(sample)
        });
        samples.push(checked.map_err(|m| format!("reports[{i}]: {m}"))?);
        // The last of equally timed reports wins, as it would stored one by one.
        if newest.is_none_or(|n| r.collected_at >= n.collected_at) {
            newest = Some(r);
        }
    }
    let newest = newest.ok_or("a batch holds at least one report")?;
    Ok(AgentBatch {
        samples,
        agent: agent_self(newest, vm_key, clock)?,
        sightings: sightings.rows(vm_key, vm_id),
    })
}

/// Checks one report: its sample as stored, or what is wrong with it.
fn check_report<S: AsRef<str>>(
    r: &Report<S>,
    vm_key: i64,
    now: chrono::DateTime<Utc>,
) -> Result<SampleRow, String> {
    let pct =
        |name: &'static str, v: f64| Hundredths::from_percent(name, v).map_err(|e| e.to_string());
    let cpu = pct("cpu_pct", r.cpu_pct)?;
    let mem = pct("mem_pct", r.mem_pct)?;
    let disk = r
        .disk_pct()
        .map(|d| pct("disk_pct", d.clamp(0.0, 100.0)))
        .transpose()?;
    let rate = |name: &'static str, v: Option<f64>| {
        v.map(|v| rate_bps(name, v))
            .transpose()
            .map_err(|e| e.to_string())
    };
    let net_rx_bps = rate("net_rx_bps", r.net_rx_bps)?;
    let net_tx_bps = rate("net_tx_bps", r.net_tx_bps)?;
    if r.inbound_connections
        .is_some_and(|n| n > MAX_INBOUND_CONNECTIONS)
    {
        return Err(format!(
            "inbound_connections is above {MAX_INBOUND_CONNECTIONS}"
        ));
    }
    ArrivalWindow::recent(now).check("collected_at", r.collected_at)?;
    let host = [
        ("host.hostname", r.host.hostname.as_ref(), 255),
        ("host.os", r.host.os.as_ref(), 255),
        ("host.agent_version", r.host.agent_version.as_ref(), 64),
        ("host.machine_id", text_or_empty(&r.host.machine_id), 128),
    ];
    for (name, value, max) in host {
        if value.len() > max {
            return Err(format!("{name} is longer than {max} bytes"));
        }
    }
    if r.host.hostname.as_ref().is_empty() {
        return Err("host.hostname is empty".into());
    }
    // No stored string may carry a NUL (PostgreSQL text cannot) or other control characters.
    let texts = host
        .into_iter()
        .map(|(name, text, _)| (name, text))
        .chain(
            r.interfaces
                .iter()
                .map(|n| ("interfaces[].name", n.name.as_ref())),
        )
        .chain(r.interfaces.iter().flat_map(|n| {
            n.addresses.iter().map(|a| {
                (
                    "interfaces[].addresses[].config_source",
                    text_or_empty(&a.config_source),
                )
            })
        }))
        .chain(
            r.neighbours
                .iter()
                .map(|n| ("neighbours[].interface", n.interface.as_ref())),
        )
        .chain(r.filesystems.iter().flat_map(|f| {
            [
                ("filesystems[].mount_point", f.mount_point.as_ref()),
                ("filesystems[].device", f.device.as_ref()),
                ("filesystems[].fs_type", f.fs_type.as_ref()),
            ]
        }));
    for (name, text) in texts {
        if text.chars().any(|c| c.is_control()) {
            return Err(format!("{name} contains control characters"));
        }
    }
    if r.filesystems.len() > 256 || r.interfaces.len() > 256 || r.neighbours.len() > 4096 {
        return Err(
            "too many filesystems (max 256), interfaces (max 256) or neighbours (max 4096)".into(),
        );
    }
    for (i, f) in r.filesystems.iter().enumerate() {
        if f.used_bytes > f.total_bytes {
            return Err(format!("filesystems[{i}]: used_bytes exceeds total_bytes"));
        }
        if f.mount_point.as_ref().len() > MAX_PATH_BYTES
            || f.device.as_ref().len() > MAX_PATH_BYTES
            || f.fs_type.as_ref().len() > MAX_NAME_BYTES
        {
            return Err(format!(
                "filesystems[{i}]: mount point or device longer than {MAX_PATH_BYTES} bytes, or type longer than {MAX_NAME_BYTES}"
            ));
        }
    }
    for (i, n) in r.interfaces.iter().enumerate() {
        if n.name.as_ref().len() > MAX_NAME_BYTES
            || n.mac
                .as_ref()
                .is_some_and(|m| m.as_ref().len() > MAX_NAME_BYTES)
            || n.addresses.len() > 256
        {
            return Err(format!(
                "interfaces[{i}]: name or MAC longer than {MAX_NAME_BYTES} bytes, or more than 256 addresses"
            ));
        }
        for (j, a) in n.addresses.iter().enumerate() {
            let max_prefix = if a.ip.is_ipv4() { 32 } else { 128 };
            if a.prefix > max_prefix {
                return Err(format!(
                    "interfaces[{i}].addresses[{j}].prefix {} is outside 0..={max_prefix}",
                    a.prefix
                ));
            }
            if a.config_source
                .as_ref()
                .is_some_and(|s| s.as_ref().len() > MAX_PATH_BYTES)
            {
                return Err(format!(
                    "interfaces[{i}].addresses[{j}].config_source is longer than {MAX_PATH_BYTES} bytes"
                ));
            }
        }
    }
    for (i, n) in r.neighbours.iter().enumerate() {
        if n.interface.as_ref().len() > MAX_NAME_BYTES || n.mac.as_ref().len() > MAX_NAME_BYTES {
            return Err(format!(
                "neighbours[{i}]: interface or MAC longer than {MAX_NAME_BYTES} bytes"
            ));
        }
    }
    if r.capacity.vcpus == 0 {
        return Err("capacity.vcpus is 0".into());
    }
    // Checked on every report; converted again only for the newest one (`agent_self`).
    stored_int("seq", r.seq)?;
    stored_int("capacity.memory_bytes", r.capacity.memory_bytes)?;
    stored_int("capacity.disk_bytes", r.capacity.disk_bytes)?;
    Ok(SampleRow {
        vm_key,
        sample: Sample {
            ts: r.collected_at.timestamp(),
            cpu,
            mem,
            disk,
            net_rx_bps,
            net_tx_bps,
            inbound_connections: r.inbound_connections,
        },
    })
}

/// What a (checked) report says about its agent: kept from the newest report of a batch only,
/// so its filesystems and interfaces are serialised once a batch.
fn agent_self<S: AsRef<str> + Serialize>(
    r: &Report<S>,
    vm_key: i64,
    clock: Option<ClockReading>,
) -> Result<AgentSelf, String> {
    Ok(AgentSelf {
        vm_key,
        seq: stored_int("seq", r.seq)?,
        collected_at: r.collected_at.timestamp(),
        hostname: r.host.hostname.as_ref().to_owned(),
        machine_id: r.host.machine_id.as_ref().map(|m| m.as_ref().to_owned()),
        os: r.host.os.as_ref().to_owned(),
        agent_version: r.host.agent_version.as_ref().to_owned(),
        vcpus: i64::from(r.capacity.vcpus),
        memory_bytes: stored_int("capacity.memory_bytes", r.capacity.memory_bytes)?,
        disk_bytes: stored_int("capacity.disk_bytes", r.capacity.disk_bytes)?,
        filesystems_json: serde_json::to_string(&r.filesystems).map_err(|e| e.to_string())?,
        interfaces_json: serde_json::to_string(&r.interfaces).map_err(|e| e.to_string())?,
        clock,
    })
}

/// An unsigned count as stored (SQL integers are signed), or what is too large.
fn stored_int(name: &str, v: u64) -> Result<i64, String> {
    i64::try_from(v).map_err(|_| format!("{name} is too large"))
}

/// An optional text field, empty when absent (for the length and character checks).
fn text_or_empty<S: AsRef<str>>(text: &Option<S>) -> &str {
    text.as_ref().map_or("", AsRef::as_ref)
}

/// The (IP, MAC) pairs a batch's reports show, collapsed as they are read: one per pair and
/// kind, with the latest occurrence's interface and configuration and the earliest time seen
/// (what upserting every occurrence in order would leave; the rule of the store's
/// `collapse_sightings`, which merges batches of one group, applied here on parsed values so no
/// per-report row is built). MACs are parsed here; a malformed one is an error.
#[derive(Default)]
struct Sightings<'a> {
    index: HashMap<(IpAddr, MacAddr, SightingKind), usize>,
    seen: Vec<Seen<'a>>,
}

/// One pair as collapsed so far.
struct Seen<'a> {
    ip: IpAddr,
    mac: MacAddr,
    kind: SightingKind,
    interface: &'a str,
    config: &'static str,
    config_source: Option<&'a str>,
    first: i64,
    last: i64,
}

impl<'a> Sightings<'a> {
    /// Adds a report's own interface addresses (with how each is configured) and its
    /// neighbour table.
    fn add<S: AsRef<str>>(&mut self, r: &'a Report<S>) -> Result<(), String> {
        let at = r.collected_at.timestamp();
        for (i, iface) in r.interfaces.iter().enumerate() {
            let Some(mac) = &iface.mac else { continue };
            let mac: MacAddr = mac
                .as_ref()
                .parse()
                .map_err(|e| format!("interfaces[{i}].mac: {e}"))?;
            for a in &iface.addresses {
                let config = match a.config {
                    AddressConfig::Static => "static",
                    AddressConfig::Dhcp => "dhcp",
                    AddressConfig::Unknown => "unknown",
                };
                self.saw(Seen {
                    ip: a.ip,
                    mac,
                    kind: SightingKind::Interface,
                    interface: iface.name.as_ref(),
                    config,
                    config_source: a.config_source.as_ref().map(AsRef::as_ref),
                    first: at,
                    last: at,
                });
            }
        }
        for (i, n) in r.neighbours.iter().enumerate() {
            let mac: MacAddr = n
                .mac
                .as_ref()
                .parse()
                .map_err(|e| format!("neighbours[{i}].mac: {e}"))?;
            if mac.is_zero() {
                continue;
            }
            self.saw(Seen {
                ip: n.ip,
                mac,
                kind: SightingKind::Neighbour,
                interface: n.interface.as_ref(),
                config: "unknown",
                config_source: None,
                first: at,
                last: at,
            });
        }
        Ok(())
    }

    fn saw(&mut self, occurrence: Seen<'a>) {
        let key = (occurrence.ip, occurrence.mac, occurrence.kind);
        match self.index.get(&key) {
            Some(&i) => {
                let seen = &mut self.seen[i];
                let first = seen.first.min(occurrence.first);
                if occurrence.last >= seen.last {
                    *seen = occurrence;
                }
                seen.first = first;
            }
            None => {
                self.index.insert(key, self.seen.len());
                self.seen.push(occurrence);
            }
        }
    }

    /// The collapsed pairs as the store's rows, in the order first seen, each with its
    /// earliest time seen.
    fn rows(self, vm_key: i64, vm_id: &str) -> Vec<(SightingRow, i64)> {
        self.seen
            .into_iter()
            .map(|s| {
                let row = SightingRow {
                    ip: s.ip.to_string(),
                    mac: s.mac.to_string(),
                    kind: s.kind,
                    source: vm_id.to_owned(),
                    vm_key: Some(vm_key),
                    interface: s.interface.to_owned(),
                    config: s.config.to_owned(),
                    config_source: s.config_source.map(str::to_owned),
                    seen_at: s.last,
                };
                (row, s.first)
            })
            .collect()
    }
}

/// Bounded fuzzing of the report checks: any number a report carries is accepted exactly when
/// it is a valid percentage; arbitrary bodies never panic the parser.
#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::core::samples::MAX_RATE_BPS;
    use cloudgov_agent::wire::{IngestBatch, Text};
    use proptest::prelude::*;
    use serde_json::json;

    fn report(cpu: f64, mem: f64) -> Report {
        serde_json::from_value(json!({
            "seq": 1, "collected_at": Utc::now().to_rfc3339(),
            "host": {"hostname": "h", "machine_id": null, "os": "Linux", "agent_version": "t"},
            "cpu_pct": 1.0, "mem_pct": 1.0, "filesystems": [],
            "capacity": {"vcpus": 1, "memory_bytes": 1, "disk_bytes": 0}, "interfaces": []
        }))
        .map(|mut r: Report| {
            r.cpu_pct = cpu;
            r.mem_pct = mem;
            r
        })
        .expect("template report")
    }

    /// A report of VM `h` at `minute` past 10:00 with eth0's address configured as `config`.
    fn report_json(seq: u64, minute: u32, config: &str, mac: &str) -> serde_json::Value {
        let now = Utc::now() - chrono::TimeDelta::minutes(30);
        json!({
            "seq": seq, "collected_at": (now + chrono::TimeDelta::minutes(minute.into())).to_rfc3339(),
            "host": {"hostname": "h", "machine_id": null, "os": "Linux", "agent_version": "t"},
            "cpu_pct": 1.0, "mem_pct": 1.0, "filesystems": [],
            "capacity": {"vcpus": 1, "memory_bytes": 1, "disk_bytes": 0},
            "interfaces": [{"name": "eth0", "mac": mac, "addresses": [
                {"ip": "10.0.0.5", "prefix": 24, "config": config,
                 "config_source": "/etc/net\"work/interfaces"}]}]
        })
    }

    #[test]
    fn a_batch_keeps_every_sample_one_sighting_per_pair_and_the_newest_self_description() {
        let body = json!({"reports": [
            report_json(1, 1, "static", "52:54:00:12:34:56"),
            report_json(3, 3, "static", "52-54-00-12-34-56"),
            report_json(2, 2, "dhcp", "525400123456"),
        ]})
        .to_string();
        // Read as the handler reads it: text borrowed from the body (unescaped where needed).
        let batch: IngestBatch<Text> = serde_json::from_str(&body).expect("batch");
        let checked = check_batch(&batch.reports, 7, "vm-7", Utc::now(), None).expect("valid");
        assert_eq!(checked.samples.len(), 3);
        assert_eq!(
            checked.agent.seq, 3,
            "the newest report describes the agent"
        );
        assert!(
            checked
                .agent
                .interfaces_json
                .contains(r#"/etc/net\"work/interfaces"#),
            "{}",
            checked.agent.interfaces_json
        );
        let [(row, first_seen)] = checked.sightings.as_slice() else {
            panic!("one sighting per (IP, MAC): {:?}", checked.sightings);
        };
        let at = |i: usize| batch.reports[i].collected_at.timestamp();
        assert_eq!(
            (row.ip.as_str(), row.mac.as_str()),
            ("10.0.0.5", "52:54:00:12:34:56")
        );
        assert_eq!((*first_seen, row.seen_at), (at(0), at(1)));
        assert_eq!(
            row.config, "static",
            "the latest occurrence's configuration"
        );
        assert_eq!(
            row.config_source.as_deref(),
            Some("/etc/net\"work/interfaces")
        );

        let bad = json!({"reports": [
            report_json(1, 1, "static", "52:54:00:12:34:56"),
            report_json(2, 2, "static", "52:54:00:12:34"),
        ]})
        .to_string();
        let batch: IngestBatch<Text> = serde_json::from_str(&bad).expect("batch");
        let err = check_batch(&batch.reports, 7, "vm-7", Utc::now(), None).expect_err("bad MAC");
        assert!(err.starts_with("reports[1]: interfaces[0].mac:"), "{err}");
    }

    proptest! {
        #[test]
        fn network_rates_are_accepted_exactly_when_valid(rx in proptest::num::f64::ANY, tx in -10.0f64..1e13) {
            let mut r = report(1.0, 1.0);
            r.net_rx_bps = Some(rx);
            r.net_tx_bps = Some(tx);
            let ok = check_report(&r, 1, Utc::now()).is_ok();
            let valid = |v: f64| v.is_finite() && (0.0..=MAX_RATE_BPS as f64).contains(&v);
            prop_assert_eq!(ok, valid(rx) && valid(tx));
        }

        #[test]
        fn percentages_are_accepted_exactly_when_valid(cpu in proptest::num::f64::ANY, mem in -10.0f64..110.0) {
            let ok = check_report(&report(cpu, mem), 1, Utc::now()).is_ok();
            let valid = |v: f64| v.is_finite() && (0.0..=100.0).contains(&v);
            prop_assert_eq!(ok, valid(cpu) && valid(mem));
        }

        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = serde_json::from_slice::<IngestBatch>(&body);
            if let Ok(text) = std::str::from_utf8(&body) {
                let _ = serde_json::from_str::<IngestBatch<Text>>(text);
            }
        }
    }
}
