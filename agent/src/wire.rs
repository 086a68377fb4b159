//! Wire types shared by the agent and the daemon: exactly what an agent sends to `POST /api/v1/ingest`.
//!
//! This module is plain serde data with no IO, so the daemon can depend on it without pulling in
//! the agent's collectors. The schema is strict (`deny_unknown_fields`): a daemon rejects what it
//! does not understand instead of silently dropping it.
//!
//! Every text field is of a type parameter `S`, `String` unless said otherwise: the agent builds
//! owned reports, the daemon reads a request's reports as [`Text`] borrowed from its body, so a
//! batch of a hundred reports is not a thousand small copies.

use std::borrow::Cow;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Path of the daemon's ingest endpoint, relative to the server URL.
pub const INGEST_PATH: &str = "/api/v1/ingest";

/// One HTTP request body: the reports an agent had queued, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "S: Deserialize<'de>"))]
pub struct IngestBatch<S = String> {
    pub reports: Vec<Report<S>>,
    /// When the agent sent this request (its clock): the daemon compares it with its own clock
    /// to record the agent's clock offset. Absent from older agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<DateTime<Utc>>,
    /// Reports the agent dropped (bounded queue or spool full) since it last told the daemon.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped_reports: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl IngestBatch {
    /// A batch of `reports`; the sender stamps `sent_at` when it posts it.
    pub fn new(reports: Vec<Report>) -> IngestBatch {
        IngestBatch {
            reports,
            sent_at: None,
            dropped_reports: 0,
        }
    }
}

/// One collection of one VM at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "S: Deserialize<'de>"))]
pub struct Report<S = String> {
    /// Per-agent sequence number, increasing by one for every collection.
    pub seq: u64,
    /// When the agent took the measurement (the agent's clock).
    pub collected_at: DateTime<Utc>,
    pub host: HostIdentity<S>,
    /// Whole-VM CPU utilisation since the previous collection, 0..=100.
    pub cpu_pct: f64,
    /// Memory in use, (total - available) / total, 0..=100.
    pub mem_pct: f64,
    /// Real (block-device backed) filesystems only; pseudo filesystems are left out by the agent.
    pub filesystems: Vec<Filesystem<S>>,
    pub capacity: Capacity,
    pub interfaces: Vec<Interface<S>>,
    /// The kernel's neighbour (ARP/NDP) table; empty where the agent cannot read it.
    #[serde(default)]
    pub neighbours: Vec<Neighbour<S>>,
    /// Bytes per second received, summed over every interface but loopback, averaged over the
    /// time since the agent's previous reading (for the first report of a run, a short baseline
    /// taken at start-up, as for `cpu_pct`). An interface whose counters went down (re-created,
    /// or wrapped) or that appeared in between adds nothing. Absent from older agents, and when
    /// the counters could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_rx_bps: Option<f64>,
    /// Bytes per second sent; as [`Report::net_rx_bps`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_tx_bps: Option<f64>,
    /// TCP connections in state ESTABLISHED whose local port is one this host listens on (in
    /// the same address family), and whose peer is not a loopback address: other hosts using
    /// this system's services, at the instant of collection. Absent from older agents, and
    /// where the agent cannot read the socket tables (Linux: sock_diag, else `/proc/net/tcp`
    /// and `tcp6`; other OSes: not read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound_connections: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "S: Deserialize<'de>"))]
pub struct HostIdentity<S = String> {
    pub hostname: S,
    /// `/etc/machine-id` on Linux; `None` where the OS has no such id.
    pub machine_id: Option<S>,
    /// Human-readable OS name and version, e.g. "Linux 12 Debian GNU/Linux".
    pub os: S,
    pub agent_version: S,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "S: Deserialize<'de>"))]
pub struct Filesystem<S = String> {
    pub mount_point: S,
    pub fs_type: S,
    pub device: S,
    /// Capacity usable by ordinary (non-root) users: `used_bytes` plus the space they can still
    /// write, the denominator of `df`'s "Use%". Blocks reserved for root (on ext4 usually 5 %)
    /// are left out, so this is smaller than the device's raw size.
    pub total_bytes: u64,
    /// Space holding data, `(f_blocks - f_bfree) * f_frsize` as `df` computes it. Reserved
    /// blocks are not counted as used, so `used_bytes / total_bytes` is `df`'s "Use%".
    pub used_bytes: u64,
}

/// What the VM has been given (its allocation), as the VM itself sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capacity {
    pub vcpus: u32,
    pub memory_bytes: u64,
    /// Sum of the real filesystems' `total_bytes`: the capacity usable by ordinary users, without
    /// the blocks reserved for root (see [`Filesystem::total_bytes`]).
    pub disk_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "S: Deserialize<'de>"))]
pub struct Interface<S = String> {
    pub name: S,
    /// As the OS reports it, e.g. "52:54:00:12:34:56"; `None` for interfaces without one.
    pub mac: Option<S>,
    pub addresses: Vec<Address<S>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "S: Deserialize<'de>"))]
pub struct Address<S = String> {
    pub ip: IpAddr,
    pub prefix: u8,
    /// How the OS configures this address.
    #[serde(default)]
    pub config: AddressConfig,
    /// Where `config` was read from, e.g. "/etc/network/interfaces" or "networkmanager".
    #[serde(default)]
    pub config_source: Option<S>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressConfig {
    Static,
    Dhcp,
    #[default]
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "S: Deserialize<'de>"))]
pub struct Neighbour<S = String> {
    pub ip: IpAddr,
    pub mac: S,
    pub interface: S,
}

/// Text read from a request body: borrowed from it where the JSON string has no escapes, owned
/// where it had to be unescaped. Serialises as the string it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text<'a>(Cow<'a, str>);

impl Text<'_> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Text<'_> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for Text<'_> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// What the daemon answers to an accepted batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestAck {
    /// Reports stored by this request.
    pub accepted: usize,
    /// Reports the daemon already had (same VM and `collected_at`), e.g. after a retry.
    pub duplicates: usize,
}

impl<S> Report<S> {
    /// Disk usage of the VM as one figure: used / total over all real filesystems, in percent.
    /// `None` when the VM reported no real filesystem (nothing to judge).
    pub fn disk_pct(&self) -> Option<f64> {
        let total: u128 = self
            .filesystems
            .iter()
            .map(|f| u128::from(f.total_bytes))
            .sum();
        if total == 0 {
            return None;
        }
        let used: u128 = self
            .filesystems
            .iter()
            .map(|f| u128::from(f.used_bytes))
            .sum();
        Some(used as f64 * 100.0 / total as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs(total: u64, used: u64) -> Filesystem {
        Filesystem {
            mount_point: "/".into(),
            fs_type: "ext4".into(),
            device: "/dev/vda1".into(),
            total_bytes: total,
            used_bytes: used,
        }
    }

    #[test]
    fn disk_pct_is_weighted_by_size_and_none_without_filesystems() {
        let mut r: Report = serde_json::from_str(SAMPLE).expect("sample parses");
        assert_eq!(r.disk_pct(), None);
        r.filesystems = vec![fs(100, 10), fs(300, 190)];
        assert_eq!(r.disk_pct(), Some(50.0));
    }

    #[test]
    fn traffic_and_inbound_fields_are_optional_both_ways() {
        // An older agent's report, without them, is read as `None`...
        let r: Report = serde_json::from_str(SAMPLE).expect("sample parses");
        assert_eq!(
            (r.net_rx_bps, r.net_tx_bps, r.inbound_connections),
            (None, None, None)
        );
        // ...and `None` is not written, so older daemons (strict) accept a newer agent's report
        // when it has no figures.
        let json = serde_json::to_value(&r).expect("encodes");
        for key in ["net_rx_bps", "net_tx_bps", "inbound_connections"] {
            assert!(json.get(key).is_none(), "{key} in {json}");
        }
        let mut v: serde_json::Value = serde_json::from_str(SAMPLE).expect("sample parses");
        v["net_rx_bps"] = 1250.5.into();
        v["net_tx_bps"] = 0.0.into();
        v["inbound_connections"] = 3.into();
        let r: Report = serde_json::from_value(v).expect("parses");
        assert_eq!(
            (r.net_rx_bps, r.net_tx_bps, r.inbound_connections),
            (Some(1250.5), Some(0.0), Some(3))
        );
        let back: Report =
            serde_json::from_str(&serde_json::to_string(&r).expect("encodes")).expect("parses");
        assert_eq!(back, r);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let mut v: serde_json::Value = serde_json::from_str(SAMPLE).expect("sample parses");
        v["cpu_percent"] = 3.into();
        let err = serde_json::from_value::<Report>(v).expect_err("unknown field must fail");
        assert!(err.to_string().contains("cpu_percent"), "{err}");
    }

    const SAMPLE: &str = r#"{
        "seq": 1, "collected_at": "2025-09-26T01:00:00Z",
        "host": {"hostname": "vm1", "machine_id": null, "os": "Linux", "agent_version": "0.1.0"},
        "cpu_pct": 12.5, "mem_pct": 40.0, "filesystems": [],
        "capacity": {"vcpus": 2, "memory_bytes": 4294967296, "disk_bytes": 0},
        "interfaces": []
    }"#;
}
