//! The checks a report passes before anything of it is stored: numbers in range, times in the
//! arrival window, bounded strings and lists without control characters, MACs that parse. Turns
//! a report into the rows the store keeps.

use chrono::Utc;
use cloudgov_agent::wire::{AddressConfig, Report};

use crate::core::domain::{ArrivalWindow, MacAddr};
use crate::core::network::SightingKind;
use crate::core::samples::{Hundredths, MAX_INBOUND_CONNECTIONS, Sample, SampleRow, rate_bps};
use crate::store::{SightingRow, StoredReport};

/// Longest interface name, MAC text or filesystem type a report may carry.
pub const MAX_NAME_BYTES: usize = 64;
/// Longest path (mount point, device, configuration file) a report may carry.
pub const MAX_PATH_BYTES: usize = 4096;

/// Checks one report and turns it into what the store keeps (the ingest handler's own step,
/// public for the benchmark).
pub fn check_report(
    r: &Report,
    vm_key: i64,
    vm_id: &str,
    now: chrono::DateTime<Utc>,
) -> Result<StoredReport, String> {
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
    for (name, value, max) in [
        ("host.hostname", r.host.hostname.as_str(), 255),
        ("host.os", r.host.os.as_str(), 255),
        ("host.agent_version", r.host.agent_version.as_str(), 64),
        (
            "host.machine_id",
            r.host.machine_id.as_deref().unwrap_or(""),
            128,
        ),
    ] {
        if value.len() > max {
            return Err(format!("{name} is longer than {max} bytes"));
        }
    }
    if r.host.hostname.is_empty() {
        return Err("host.hostname is empty".into());
    }
    // No stored string may carry a NUL (PostgreSQL text cannot) or other control characters.
    let texts = [
        ("host.hostname", r.host.hostname.as_str()),
        ("host.os", r.host.os.as_str()),
        ("host.agent_version", r.host.agent_version.as_str()),
        (
            "host.machine_id",
            r.host.machine_id.as_deref().unwrap_or(""),
        ),
    ]
    .into_iter()
    .chain(
        r.interfaces
            .iter()
            .map(|n| ("interfaces[].name", n.name.as_str())),
    )
    .chain(r.interfaces.iter().flat_map(|n| {
        n.addresses.iter().map(|a| {
            (
                "interfaces[].addresses[].config_source",
                a.config_source.as_deref().unwrap_or(""),
            )
        })
    }))
    .chain(
        r.neighbours
            .iter()
            .map(|n| ("neighbours[].interface", n.interface.as_str())),
    )
    .chain(r.filesystems.iter().flat_map(|f| {
        [
            ("filesystems[].mount_point", f.mount_point.as_str()),
            ("filesystems[].device", f.device.as_str()),
            ("filesystems[].fs_type", f.fs_type.as_str()),
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
        if f.mount_point.len() > MAX_PATH_BYTES
            || f.device.len() > MAX_PATH_BYTES
            || f.fs_type.len() > MAX_NAME_BYTES
        {
            return Err(format!(
                "filesystems[{i}]: mount point or device longer than {MAX_PATH_BYTES} bytes, or type longer than {MAX_NAME_BYTES}"
            ));
        }
    }
    for (i, n) in r.interfaces.iter().enumerate() {
        if n.name.len() > MAX_NAME_BYTES
            || n.mac.as_ref().is_some_and(|m| m.len() > MAX_NAME_BYTES)
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
                .is_some_and(|s| s.len() > MAX_PATH_BYTES)
            {
                return Err(format!(
                    "interfaces[{i}].addresses[{j}].config_source is longer than {MAX_PATH_BYTES} bytes"
                ));
            }
        }
    }
    for (i, n) in r.neighbours.iter().enumerate() {
        if n.interface.len() > MAX_NAME_BYTES || n.mac.len() > MAX_NAME_BYTES {
            return Err(format!(
                "neighbours[{i}]: interface or MAC longer than {MAX_NAME_BYTES} bytes"
            ));
        }
    }
    if r.capacity.vcpus == 0 {
        return Err("capacity.vcpus is 0".into());
    }
    let as_i64 = |name: &str, v: u64| i64::try_from(v).map_err(|_| format!("{name} is too large"));
    let seq = as_i64("seq", r.seq)?;
    Ok(StoredReport {
        sample: SampleRow {
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
        },
        seq,
        hostname: r.host.hostname.clone(),
        machine_id: r.host.machine_id.clone(),
        os: r.host.os.clone(),
        agent_version: r.host.agent_version.clone(),
        vcpus: i64::from(r.capacity.vcpus),
        memory_bytes: as_i64("capacity.memory_bytes", r.capacity.memory_bytes)?,
        disk_bytes: as_i64("capacity.disk_bytes", r.capacity.disk_bytes)?,
        filesystems_json: serde_json::to_string(&r.filesystems).map_err(|e| e.to_string())?,
        interfaces_json: serde_json::to_string(&r.interfaces).map_err(|e| e.to_string())?,
        sightings: sightings(r, vm_key, vm_id)?,
    })
}

/// The (IP, MAC) pairs a report shows: its own interface addresses (with how each is
/// configured) and its neighbour table. MACs are parsed once here; a malformed one is an error.
fn sightings(r: &Report, vm_key: i64, vm_id: &str) -> Result<Vec<SightingRow>, String> {
    let seen_at = r.collected_at.timestamp();
    let mut out = Vec::new();
    for (i, iface) in r.interfaces.iter().enumerate() {
        let Some(mac) = &iface.mac else { continue };
        let mac: MacAddr = mac
            .parse()
            .map_err(|e| format!("interfaces[{i}].mac: {e}"))?;
        for a in &iface.addresses {
            out.push(SightingRow {
                ip: a.ip.to_string(),
                mac: mac.to_string(),
                kind: SightingKind::Interface,
                source: vm_id.to_owned(),
                vm_key: Some(vm_key),
                interface: iface.name.clone(),
                config: match a.config {
                    AddressConfig::Static => "static",
                    AddressConfig::Dhcp => "dhcp",
                    AddressConfig::Unknown => "unknown",
                }
                .to_owned(),
                config_source: a.config_source.clone(),
                seen_at,
            });
        }
    }
    for (i, n) in r.neighbours.iter().enumerate() {
        let mac: MacAddr = n
            .mac
            .parse()
            .map_err(|e| format!("neighbours[{i}].mac: {e}"))?;
        if mac.is_zero() {
            continue;
        }
        out.push(SightingRow {
            ip: n.ip.to_string(),
            mac: mac.to_string(),
            kind: SightingKind::Neighbour,
            source: vm_id.to_owned(),
            vm_key: Some(vm_key),
            interface: n.interface.clone(),
            config: "unknown".to_owned(),
            config_source: None,
            seen_at,
        });
    }
    Ok(out)
}

/// Bounded fuzzing of the report checks: any number a report carries is accepted exactly when
/// it is a valid percentage; arbitrary bodies never panic the parser.
#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::core::samples::MAX_RATE_BPS;
    use cloudgov_agent::wire::IngestBatch;
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

    proptest! {
        #[test]
        fn network_rates_are_accepted_exactly_when_valid(rx in proptest::num::f64::ANY, tx in -10.0f64..1e13) {
            let mut r = report(1.0, 1.0);
            r.net_rx_bps = Some(rx);
            r.net_tx_bps = Some(tx);
            let ok = check_report(&r, 1, "vm", Utc::now()).is_ok();
            let valid = |v: f64| v.is_finite() && (0.0..=MAX_RATE_BPS as f64).contains(&v);
            prop_assert_eq!(ok, valid(rx) && valid(tx));
        }

        #[test]
        fn percentages_are_accepted_exactly_when_valid(cpu in proptest::num::f64::ANY, mem in -10.0f64..110.0) {
            let ok = check_report(&report(cpu, mem), 1, "vm", Utc::now()).is_ok();
            let valid = |v: f64| v.is_finite() && (0.0..=100.0).contains(&v);
            prop_assert_eq!(ok, valid(cpu) && valid(mem));
        }

        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = serde_json::from_slice::<IngestBatch>(&body);
        }
    }
}
