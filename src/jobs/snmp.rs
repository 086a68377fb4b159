//! Switch ARP tables over SNMP (`cloudgov network poll-snmp`, and the daemon's `--snmp-targets`):
//! an agent's IP-MIB `ipNetToPhysicalTable`, or RFC 1213's `ipNetToMediaTable` where the agent
//! has no rows in the first, recorded as sightings exactly like an ARP export's rows.
//!
//! A poll reads the whole table before it writes anything, then writes it in one transaction:
//! a timeout, an authentication failure or an unreachable host leaves nothing half-written.
//! Communities and passwords are [`Secret`]s: never printed, logged or serialised. This module
//! reads neither the environment nor the clock: the targets file's secrets are looked up
//! through functions its caller passes ([`SnmpTargets::resolve`]), and the poll's instant is an
//! argument.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_snmp::{Auth, Client, ErrorKind, Oid, Retry, UsmConfig, Value, WalkOptions};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use async_snmp::{AuthProtocol, PrivProtocol};

use crate::core::domain::{MacAddr, check_text};
use crate::core::import::ArpRow;
use crate::store::{SightingRow, Store, StoreError};

/// `ipNetToPhysicalEntry` (IP-MIB, RFC 4293).
const PHYSICAL_ENTRY: [u32; 9] = [1, 3, 6, 1, 2, 1, 4, 35, 1];
/// Its columns: `ipNetToPhysicalPhysAddress`, `ipNetToPhysicalType`, `ipNetToPhysicalState`.
const PHYSICAL_ADDRESS: u32 = 4;
const PHYSICAL_TYPE: u32 = 6;
const PHYSICAL_STATE: u32 = 7;
/// `ipNetToMediaEntry` (RFC 1213).
const MEDIA_ENTRY: [u32; 9] = [1, 3, 6, 1, 2, 1, 4, 22, 1];
/// Its columns: `ipNetToMediaPhysAddress`, `ipNetToMediaType`.
const MEDIA_ADDRESS: u32 = 2;
const MEDIA_TYPE: u32 = 4;
/// `invalid(2)` in both tables' type column: a deleted entry the agent still lists.
const TYPE_INVALID: i32 = 2;
/// `ipNetToPhysicalState`: `invalid(5)`, `incomplete(7)`: no host answered for the address.
const STATE_INVALID: i32 = 5;
const STATE_INCOMPLETE: i32 = 7;
/// Bindings one column walk may return: far above any switch's ARP table, but a bound on the
/// memory a broken agent can make a poll take.
const MAX_COLUMN_ROWS: usize = 1_000_000;
/// Shortest v3 password (RFC 3414 section 11.2; net-snmp refuses shorter ones too).
const MIN_PASSWORD_OCTETS: usize = 8;

/// A community or password. Its `Debug` is redacted and it has no `Display` or `Serialize`,
/// so it cannot reach a log line, an error, an audit entry or JSON by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// How a poll authenticates: SNMPv2c with a community, or SNMPv3 USM with authentication and
/// privacy (authPriv: the table names every host on the network, so it is not sent in clear).
#[derive(Debug, Clone)]
pub enum SnmpCredentials {
    V2c {
        community: Secret,
    },
    V3 {
        user: String,
        auth_protocol: AuthProtocol,
        auth_password: Secret,
        priv_protocol: PrivProtocol,
        priv_password: Secret,
    },
}

impl SnmpCredentials {
    fn auth(&self) -> Result<Auth, String> {
        match self {
            SnmpCredentials::V2c { community } => Ok(Auth::v2c(community.expose())),
            SnmpCredentials::V3 {
                user,
                auth_protocol,
                auth_password,
                priv_protocol,
                priv_password,
            } => UsmConfig::new(user.clone())
                .auth_priv(
                    *auth_protocol,
                    auth_password.expose(),
                    *priv_protocol,
                    priv_password.expose(),
                )
                .map(Auth::from)
                // The crate's message names the problem (a short password), never the value.
                .map_err(|e| format!("SNMPv3 credentials for user {user:?}: {e}")),
        }
    }

    /// Checks what can be checked before any packet is sent: lengths and protocols.
    fn check(&self) -> Result<(), String> {
        match self {
            SnmpCredentials::V2c { community } => {
                if community.expose().is_empty() {
                    return Err("the community is empty".into());
                }
            }
            SnmpCredentials::V3 {
                user,
                auth_password,
                priv_password,
                ..
            } => {
                if user.is_empty() || user.len() > 32 {
                    return Err(format!("SNMPv3 user {user:?} must be 1 to 32 characters"));
                }
                for (what, password) in [("auth", auth_password), ("priv", priv_password)] {
                    if password.expose().len() < MIN_PASSWORD_OCTETS {
                        return Err(format!(
                            "the {what} password is shorter than {MIN_PASSWORD_OCTETS} characters (RFC 3414)"
                        ));
                    }
                }
            }
        }
        self.auth().map(|_| ())
    }
}

/// `md5`, `sha` (SHA-1), `sha224`, `sha256`, `sha384`, `sha512`, in any case.
pub fn parse_auth_protocol(name: &str) -> Result<AuthProtocol, String> {
    name.parse().map_err(|_| {
        format!(
            "auth protocol {name:?} is not one of md5, sha (SHA-1), sha224, sha256, sha384, sha512"
        )
    })
}

/// `des`, `3des`, `aes` (AES-128), `aes192`, `aes256` (net-snmp's key extension, Blumenthal),
/// `aes192c`, `aes256c` (Cisco's, Reeder), and the crate's own longer names, in any case.
pub fn parse_priv_protocol(name: &str) -> Result<PrivProtocol, String> {
    match name.to_ascii_lowercase().as_str() {
        "aes192" | "aes-192" => Ok(PrivProtocol::Aes192Blumenthal),
        "aes256" | "aes-256" => Ok(PrivProtocol::Aes256Blumenthal),
        "aes192c" | "aes-192-c" => Ok(PrivProtocol::Aes192Reeder),
        "aes256c" | "aes-256-c" => Ok(PrivProtocol::Aes256Reeder),
        _ => name.parse().map_err(|_| {
            format!(
                "priv protocol {name:?} is not one of des, 3des, aes (AES-128), aes192, aes256, aes192c, aes256c"
            )
        }),
    }
}

/// One switch or router to poll: where its agent listens, the name its sightings carry, and
/// how to authenticate. Built only by [`SnmpTarget::new`], so every target was checked.
#[derive(Debug, Clone)]
pub struct SnmpTarget {
    host: String,
    port: u16,
    source: String,
    credentials: SnmpCredentials,
    timeout: Duration,
    retries: u32,
}

impl SnmpTarget {
    pub const DEFAULT_PORT: u16 = 161;
    /// How long one request waits for its answer.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
    /// Requests sent again after a timeout (UDP loses packets).
    pub const RETRIES: u32 = 1;

    /// `address` is `HOST`, `HOST:PORT`, `[IPV6]:PORT` or a bare IPv6 address (port 161 by
    /// default); `source` is the name the sightings carry (1 to 128 characters), as an ARP
    /// export's `source` column.
    pub fn new(
        address: &str,
        source: &str,
        credentials: SnmpCredentials,
    ) -> Result<SnmpTarget, SnmpConfigError> {
        let invalid = |message: String| SnmpConfigError::Invalid {
            target: address.to_owned(),
            message,
        };
        let (host, port) = parse_address(address).map_err(invalid)?;
        check_source(source).map_err(invalid)?;
        credentials.check().map_err(invalid)?;
        Ok(SnmpTarget {
            host,
            port,
            source: source.to_owned(),
            credentials,
            timeout: Self::DEFAULT_TIMEOUT,
            retries: Self::RETRIES,
        })
    }

    /// The same target with another per-request timeout (1 to 60 seconds).
    pub fn with_timeout(mut self, timeout: Duration) -> Result<SnmpTarget, SnmpConfigError> {
        if timeout < Duration::from_secs(1) || timeout > Duration::from_secs(60) {
            return Err(SnmpConfigError::Invalid {
                target: self.address(),
                message: format!("timeout {} s is not 1 to 60 seconds", timeout.as_secs_f64()),
            });
        }
        self.timeout = timeout;
        Ok(self)
    }

    /// `host:port` (`[v6]:port`), as errors and reports name the target.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// `2c` or `3`.
    pub fn version(&self) -> &'static str {
        match self.credentials {
            SnmpCredentials::V2c { .. } => "2c",
            SnmpCredentials::V3 { .. } => "3",
        }
    }

    /// The longest a request can wait before it gives up: every try's timeout.
    fn patience(&self) -> Duration {
        self.timeout * (self.retries + 1)
    }
}

fn check_source(source: &str) -> Result<(), String> {
    if source.trim().is_empty() || source.chars().count() > 128 {
        return Err("source must be 1 to 128 characters".into());
    }
    check_text("source", source, 128).map_err(|e| e.to_string())
}

/// `HOST[:PORT]`, `[IPV6]:PORT`, or a bare IPv6 address.
fn parse_address(address: &str) -> Result<(String, u16), String> {
    let port_of = |p: &str| -> Result<u16, String> {
        p.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("port {p:?} is not 1 to 65535"))
    };
    let (host, port) = if let Some(rest) = address.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("address {address:?} has no closing `]`"))?;
        let port = match after {
            "" => SnmpTarget::DEFAULT_PORT,
            p => port_of(
                p.strip_prefix(':')
                    .ok_or_else(|| format!("address {address:?}: expected `:PORT` after `]`"))?,
            )?,
        };
        if host.parse::<Ipv6Addr>().is_err() {
            return Err(format!("{host:?} is not an IPv6 address"));
        }
        (host, port)
    } else if address.matches(':').count() > 1 {
        if address.parse::<Ipv6Addr>().is_err() {
            return Err(format!(
                "{address:?} is not an IPv6 address (write [ADDRESS]:PORT for a port)"
            ));
        }
        (address, SnmpTarget::DEFAULT_PORT)
    } else if let Some((host, port)) = address.split_once(':') {
        (host, port_of(port)?)
    } else {
        (address, SnmpTarget::DEFAULT_PORT)
    };
    let valid_host = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
    if !valid_host {
        return Err(format!(
            "{host:?} is not a host name or IP address (HOST[:PORT])"
        ));
    }
    Ok((host.to_owned(), port))
}

/// Errors in targets as given: a flag, a targets file, a secret that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SnmpConfigError {
    #[error("SNMP target {target}: {message}")]
    Invalid { target: String, message: String },
    #[error("{origin}: {message}")]
    File { origin: String, message: String },
    #[error("{origin}: target {number} ({source_name}): {message}")]
    Target {
        origin: String,
        number: usize,
        source_name: String,
        message: String,
    },
}

/// Why a poll failed. Each names the target; none carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum SnmpError {
    #[error(
        "SNMP target {target}: no answer within {} s ({tries} tries): the host is down or \
         unreachable, no SNMP agent listens there, or the agent drops our requests (a wrong \
         community, an access list): agents answer those with silence",
        .waited.as_secs()
    )]
    Timeout {
        target: String,
        waited: Duration,
        tries: u32,
    },
    #[error("SNMP target {target}: authentication failed: {reason}")]
    Auth { target: String, reason: String },
    #[error("SNMP target {target}: cannot reach it: {message}")]
    Unreachable { target: String, message: String },
    #[error("SNMP target {target}: {message}")]
    Protocol { target: String, message: String },
    #[error("SNMP target {target}: {message}")]
    Config { target: String, message: String },
    #[error("SNMP target {target}: recording the sightings failed, nothing was stored: {source}")]
    Store {
        target: String,
        #[source]
        source: StoreError,
    },
}

/// Which table a poll read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SnmpTable {
    #[serde(rename = "ipNetToPhysicalTable")]
    IpNetToPhysical,
    #[serde(rename = "ipNetToMediaTable")]
    IpNetToMedia,
}

impl std::fmt::Display for SnmpTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SnmpTable::IpNetToPhysical => "ipNetToPhysicalTable",
            SnmpTable::IpNetToMedia => "ipNetToMediaTable",
        })
    }
}

/// One resolved ARP entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct PollEntry {
    pub ip: IpAddr,
    pub mac: MacAddr,
}

/// What one poll read (and, unless a dry run, recorded).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PollReport {
    /// `host:port`.
    pub target: String,
    pub source: String,
    pub table: SnmpTable,
    pub at: DateTime<Utc>,
    /// Distinct (ip, mac) pairs, sorted.
    pub entries: Vec<PollEntry>,
    /// Rows left out: invalid or incomplete entries, empty or all-zero MACs, indexes that are
    /// not an IPv4 or IPv6 address.
    pub skipped: usize,
}

impl PollReport {
    /// The entries as ARP rows seen at the poll's instant by the target's source.
    pub fn arp_rows(&self) -> Vec<ArpRow> {
        self.entries
            .iter()
            .map(|e| ArpRow {
                ip: e.ip,
                mac: e.mac,
                seen_at: self.at,
                source: self.source.clone(),
            })
            .collect()
    }
}

/// Reads `target`'s ARP table and, when `persist`, records its entries as sightings seen at
/// `at`, in one transaction after the whole table was read.
pub async fn poll(
    store: &Store,
    target: &SnmpTarget,
    at: DateTime<Utc>,
    persist: bool,
) -> Result<PollReport, SnmpError> {
    let (table, rows) = read_arp_table(target).await?;
    let report = PollReport {
        target: target.address(),
        source: target.source.clone(),
        table,
        at,
        entries: rows.entries.into_iter().collect(),
        skipped: rows.skipped,
    };
    if report.entries.is_empty() {
        tracing::warn!(
            target = %report.target,
            "the SNMP agent shows no ARP entry in either table: check its view (VACM) and ACL"
        );
    }
    if persist && !report.entries.is_empty() {
        let sightings: Vec<SightingRow> = report.arp_rows().iter().map(SightingRow::from).collect();
        store
            .record_sightings(&sightings)
            .await
            .map_err(|source| SnmpError::Store {
                target: report.target.clone(),
                source,
            })?;
    }
    tracing::info!(
        target = %report.target,
        source = %report.source,
        table = %report.table,
        entries = report.entries.len(),
        skipped = report.skipped,
        persisted = persist,
        "SNMP ARP poll"
    );
    Ok(report)
}

/// `ipNetToPhysicalTable`, or `ipNetToMediaTable` when the agent has no row in the first (an
/// older agent, or one that does not implement it).
async fn read_arp_table(target: &SnmpTarget) -> Result<(SnmpTable, Rows), SnmpError> {
    let auth = target
        .credentials
        .auth()
        .map_err(|message| SnmpError::Config {
            target: target.address(),
            message,
        })?;
    let retry = Retry::fixed(target.retries, Duration::ZERO).map_err(|e| SnmpError::Config {
        target: target.address(),
        message: e.to_string(),
    })?;
    let client = Client::builder((target.host.as_str(), target.port), auth)
        .request_timeout(target.timeout)
        .construction_timeout(target.timeout)
        .retry(retry)
        .walk_options(WalkOptions {
            result_limit: Some(MAX_COLUMN_ROWS),
            ..WalkOptions::default()
        })
        .connect()
        .await
        .map_err(|e| failure(target, &e, false))?;
    // An agent answers a v3 request with wrong credentials by an unauthenticated report, which
    // the client must not trust, so the request just times out. Discovering the engine first
    // (unauthenticated by design) tells "nobody answers" from "the credentials are wrong".
    let v3 = matches!(target.credentials, SnmpCredentials::V3 { .. });
    if v3 {
        client
            .rediscover_engine()
            .await
            .map_err(|e| failure(target, &e, false))?;
    }
    // From here on a v3 agent is known to be there.
    let failed = |e: &async_snmp::Error| failure(target, e, v3);

    let physical = |column: u32| entry_column(&PHYSICAL_ENTRY, column);
    // An agent that does not serve the newer table falls back to the older one; a timeout or
    // an authentication failure would fail that too, so it ends the poll.
    let addresses =
        optional(walk(&client, &physical(PHYSICAL_ADDRESS)).await).map_err(|e| failed(&e))?;
    if !addresses.is_empty() {
        // Agents may leave out either column: then every row counts as valid.
        let types =
            optional(walk(&client, &physical(PHYSICAL_TYPE)).await).map_err(|e| failed(&e))?;
        let states =
            optional(walk(&client, &physical(PHYSICAL_STATE)).await).map_err(|e| failed(&e))?;
        let rows = physical_rows(&octets(addresses), &integers(types), &integers(states));
        return Ok((SnmpTable::IpNetToPhysical, rows));
    }
    let media = |column: u32| entry_column(&MEDIA_ENTRY, column);
    let addresses = walk(&client, &media(MEDIA_ADDRESS))
        .await
        .map_err(|e| failed(&e))?;
    let types = if addresses.is_empty() {
        Vec::new()
    } else {
        optional(walk(&client, &media(MEDIA_TYPE)).await).map_err(|e| failed(&e))?
    };
    Ok((
        SnmpTable::IpNetToMedia,
        media_rows(&octets(addresses), &integers(types)),
    ))
}

/// A walk whose table or column the agent may not serve: its protocol error (an SNMPv1-style
/// noSuchName, a genErr) reads as no rows.
fn optional(
    rows: async_snmp::Result<Vec<(Vec<u32>, Value)>>,
) -> async_snmp::Result<Vec<(Vec<u32>, Value)>> {
    match rows {
        Err(e) if e.kind() == ErrorKind::Snmp => Ok(Vec::new()),
        other => other,
    }
}

fn entry_column(entry: &[u32], column: u32) -> Oid {
    Oid::from_slice(entry).child(column)
}

/// One column's rows: each binding's index (the OID after the column) and value.
async fn walk(
    client: &async_snmp::UdpClient,
    column: &Oid,
) -> async_snmp::Result<Vec<(Vec<u32>, Value)>> {
    let bindings = client.walk(column.clone())?.collect().await?;
    Ok(bindings
        .into_iter()
        .filter_map(|vb| {
            vb.oid
                .strip_prefix(column)
                .map(|index| (index.arcs().to_vec(), vb.value))
        })
        .collect())
}

fn octets(rows: Vec<(Vec<u32>, Value)>) -> BTreeMap<Vec<u32>, Vec<u8>> {
    rows.into_iter()
        .filter_map(|(index, value)| value.as_bytes().map(|b| (index, b.to_vec())))
        .collect()
}

fn integers(rows: Vec<(Vec<u32>, Value)>) -> BTreeMap<Vec<u32>, i32> {
    rows.into_iter()
        .filter_map(|(index, value)| value.as_i32().map(|v| (index, v)))
        .collect()
}

/// A failed request as the operator needs to hear it: which target, and what to check.
/// `engine_answered`: the agent answered v3 engine discovery, so a timeout means it ignores
/// our authenticated requests.
fn failure(target: &SnmpTarget, error: &async_snmp::Error, engine_answered: bool) -> SnmpError {
    let address = target.address();
    let auth = |reason: &str| SnmpError::Auth {
        target: address.clone(),
        reason: reason.to_owned(),
    };
    match error.kind() {
        ErrorKind::Timeout if engine_answered => auth(
            "the agent answered SNMPv3 engine discovery but not the authenticated requests: \
             check the v3 user, the auth and priv protocols and passwords",
        ),
        ErrorKind::Timeout => SnmpError::Timeout {
            target: address,
            waited: target.patience(),
            tries: target.retries + 1,
        },
        ErrorKind::Auth => auth(
            "the agent's answer did not authenticate: check the v3 user, protocols and passwords",
        ),
        ErrorKind::Report => match error.exchange_source() {
            async_snmp::Error::Report { status, .. } => match status.as_ref() {
                async_snmp::v3::ReportStatus::UnknownUserName { .. } => {
                    auth("the agent does not know the v3 user")
                }
                async_snmp::v3::ReportStatus::WrongDigest { .. } => {
                    auth("wrong auth password or auth protocol")
                }
                async_snmp::v3::ReportStatus::DecryptionError { .. } => {
                    auth("wrong priv password or priv protocol")
                }
                async_snmp::v3::ReportStatus::UnsupportedSecurityLevel { .. } => {
                    auth("the v3 user is not set up for authPriv on the agent")
                }
                other => SnmpError::Protocol {
                    target: address,
                    message: format!("SNMPv3 report: {other}"),
                },
            },
            other => SnmpError::Protocol {
                target: address,
                message: other.to_string(),
            },
        },
        ErrorKind::Network | ErrorKind::ConstructionTimeout => SnmpError::Unreachable {
            target: address,
            message: error.to_string(),
        },
        // Resolution failures come back as configuration errors ("could not resolve").
        ErrorKind::Config => SnmpError::Unreachable {
            target: address,
            message: error.to_string(),
        },
        _ => SnmpError::Protocol {
            target: address,
            message: error.to_string(),
        },
    }
}

/// The entries of one table: distinct (ip, mac) pairs, and how many rows were left out.
#[derive(Debug, Default, PartialEq)]
struct Rows {
    entries: BTreeSet<PollEntry>,
    skipped: usize,
}

impl Rows {
    fn add(&mut self, index: &[u32], ip: Result<IpAddr, String>, mac: &[u8]) {
        match (ip, mac_from_octets(mac)) {
            (Ok(ip), Some(mac)) => {
                self.entries.insert(PollEntry { ip, mac });
            }
            (Err(reason), _) => {
                tracing::debug!(?index, %reason, "ARP row skipped");
                self.skipped += 1;
            }
            (Ok(_), None) => self.skipped += 1,
        }
    }
}

/// `ipNetToPhysicalTable` rows: the PhysAddress column by index, with the Type and State
/// columns (either may be missing for a row).
fn physical_rows(
    addresses: &BTreeMap<Vec<u32>, Vec<u8>>,
    types: &BTreeMap<Vec<u32>, i32>,
    states: &BTreeMap<Vec<u32>, i32>,
) -> Rows {
    let mut rows = Rows::default();
    for (index, mac) in addresses {
        let dead = types.get(index) == Some(&TYPE_INVALID)
            || matches!(states.get(index), Some(&STATE_INVALID | &STATE_INCOMPLETE));
        if dead {
            rows.skipped += 1;
            continue;
        }
        rows.add(index, physical_index_address(index), mac);
    }
    rows
}

/// `ipNetToMediaTable` rows: the PhysAddress column by index, with the Type column.
fn media_rows(addresses: &BTreeMap<Vec<u32>, Vec<u8>>, types: &BTreeMap<Vec<u32>, i32>) -> Rows {
    let mut rows = Rows::default();
    for (index, mac) in addresses {
        if types.get(index) == Some(&TYPE_INVALID) {
            rows.skipped += 1;
            continue;
        }
        rows.add(index, media_index_address(index), mac);
    }
    rows
}

/// The address in an `ipNetToPhysicalTable` index: `ifIndex.addressType.length.bytes...`
/// (InetAddressType: ipv4(1), ipv6(2), ipv4z(3), ipv6z(4); a zoned address carries its
/// 4-byte zone after the address, which is dropped).
fn physical_index_address(index: &[u32]) -> Result<IpAddr, String> {
    let [_if_index, kind, length, bytes @ ..] = index else {
        return Err(format!(
            "index {index:?} is shorter than ifIndex.type.length"
        ));
    };
    if usize::try_from(*length).ok() != Some(bytes.len()) {
        return Err(format!(
            "index {index:?} says {length} address bytes but has {}",
            bytes.len()
        ));
    }
    let bytes = octets_of(bytes).ok_or_else(|| format!("index {index:?} has an arc above 255"))?;
    match (kind, bytes.len()) {
        (1, 4) | (3, 8) => Ok(IpAddr::V4(Ipv4Addr::new(
            bytes[0], bytes[1], bytes[2], bytes[3],
        ))),
        (2, 16) | (4, 20) => {
            let mut v6 = [0u8; 16];
            v6.copy_from_slice(&bytes[..16]);
            Ok(IpAddr::V6(Ipv6Addr::from(v6)))
        }
        (1..=4, n) => Err(format!(
            "index {index:?}: {n} bytes is not the length of address type {kind}"
        )),
        _ => Err(format!(
            "index {index:?}: address type {kind} is not IPv4 or IPv6"
        )),
    }
}

/// The address in an `ipNetToMediaTable` index: `ifIndex.a.b.c.d`.
fn media_index_address(index: &[u32]) -> Result<IpAddr, String> {
    let [_if_index, a, b, c, d] = index else {
        return Err(format!("index {index:?} is not ifIndex.a.b.c.d"));
    };
    let bytes = octets_of(&[*a, *b, *c, *d])
        .ok_or_else(|| format!("index {index:?} has an arc above 255"))?;
    Ok(IpAddr::V4(Ipv4Addr::new(
        bytes[0], bytes[1], bytes[2], bytes[3],
    )))
}

fn octets_of(arcs: &[u32]) -> Option<Vec<u8>> {
    arcs.iter().map(|a| u8::try_from(*a).ok()).collect()
}

/// A PhysAddress as a MAC: six bytes, not all zero (an empty or zero address is an entry that
/// never resolved; other lengths are not Ethernet).
fn mac_from_octets(bytes: &[u8]) -> Option<MacAddr> {
    if bytes.len() != 6 || bytes.iter().all(|b| *b == 0) {
        return None;
    }
    let text = bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    text.parse().ok()
}

/// A targets file for the daemon (`serve --snmp-targets FILE`), as parsed: each target with
/// where its secrets are (an environment variable or a file), not yet the secrets.
#[derive(Debug, Clone)]
pub struct SnmpTargets {
    origin: String,
    targets: Vec<TargetSpec>,
}

#[derive(Debug, Clone)]
struct TargetSpec {
    number: usize,
    address: String,
    source: String,
    credentials: CredentialSpec,
    timeout: Option<Duration>,
}

#[derive(Debug, Clone)]
enum CredentialSpec {
    V2c {
        community: SecretRef,
    },
    V3 {
        user: String,
        auth_protocol: AuthProtocol,
        auth_password: SecretRef,
        priv_protocol: PrivProtocol,
        priv_password: SecretRef,
    },
}

/// Where a secret is: `(key, variable)` or `(key, path)`, the key naming the file's field.
#[derive(Debug, Clone)]
enum SecretRef {
    Env(&'static str, String),
    File(&'static str, PathBuf),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetsFile {
    #[serde(default)]
    target: Vec<TargetEntry>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum VersionEntry {
    Text(String),
    Number(i64),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetEntry {
    address: String,
    source: String,
    version: VersionEntry,
    community_env: Option<String>,
    community_file: Option<PathBuf>,
    user: Option<String>,
    auth_protocol: Option<String>,
    auth_password_env: Option<String>,
    auth_password_file: Option<PathBuf>,
    priv_protocol: Option<String>,
    priv_password_env: Option<String>,
    priv_password_file: Option<PathBuf>,
    timeout_seconds: Option<u64>,
}

impl SnmpTargets {
    /// Parses a targets file (`[[target]]` tables; see README.md): every field checked, each
    /// source named once, exactly one place for each secret. Reads no secret yet.
    pub fn parse(origin: &str, text: &str) -> Result<SnmpTargets, SnmpConfigError> {
        let file: TargetsFile = toml::from_str(text).map_err(|e| SnmpConfigError::File {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        let mut sources = HashSet::new();
        let mut targets = Vec::with_capacity(file.target.len());
        for (i, entry) in file.target.into_iter().enumerate() {
            let number = i + 1;
            let err = |message: String| SnmpConfigError::Target {
                origin: origin.to_owned(),
                number,
                source_name: entry.source.clone(),
                message,
            };
            parse_address(&entry.address).map_err(err)?;
            check_source(&entry.source).map_err(err)?;
            if !sources.insert(entry.source.clone()) {
                return Err(err(format!(
                    "source {:?} is named by an earlier target: each switch's sightings need their own name",
                    entry.source
                )));
            }
            let credentials = credential_spec(&entry).map_err(err)?;
            let timeout = match entry.timeout_seconds {
                None => None,
                Some(s @ 1..=60) => Some(Duration::from_secs(s)),
                Some(s) => return Err(err(format!("timeout_seconds {s} is not 1 to 60"))),
            };
            targets.push(TargetSpec {
                number,
                address: entry.address.clone(),
                source: entry.source.clone(),
                credentials,
                timeout,
            });
        }
        Ok(SnmpTargets {
            origin: origin.to_owned(),
            targets,
        })
    }

    pub fn len(&self) -> usize {
        self.targets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// The targets with their secrets, read once now: `env` looks up an environment variable,
    /// `read_file` reads a file (the caller passes the real ones; tests pass maps). A secret's
    /// trailing line ending is dropped. An unset or empty variable, an unreadable or empty file,
    /// or a password too short is an error naming the target and the variable or file.
    pub fn resolve(
        &self,
        env: impl Fn(&str) -> Option<String>,
        read_file: impl Fn(&Path) -> std::io::Result<String>,
    ) -> Result<Vec<SnmpTarget>, SnmpConfigError> {
        self.targets
            .iter()
            .map(|spec| {
                let err = |message: String| SnmpConfigError::Target {
                    origin: self.origin.clone(),
                    number: spec.number,
                    source_name: spec.source.clone(),
                    message,
                };
                let secret = |r: &SecretRef| -> Result<Secret, SnmpConfigError> {
                    read_secret(r, &env, &read_file).map_err(err)
                };
                let credentials = match &spec.credentials {
                    CredentialSpec::V2c { community } => SnmpCredentials::V2c {
                        community: secret(community)?,
                    },
                    CredentialSpec::V3 {
                        user,
                        auth_protocol,
                        auth_password,
                        priv_protocol,
                        priv_password,
                    } => SnmpCredentials::V3 {
                        user: user.clone(),
                        auth_protocol: *auth_protocol,
                        auth_password: secret(auth_password)?,
                        priv_protocol: *priv_protocol,
                        priv_password: secret(priv_password)?,
                    },
                };
                let target = SnmpTarget::new(&spec.address, &spec.source, credentials)
                    .map_err(|e| err(config_message(e)))?;
                match spec.timeout {
                    Some(t) => target.with_timeout(t).map_err(|e| err(config_message(e))),
                    None => Ok(target),
                }
            })
            .collect()
    }
}

fn config_message(e: SnmpConfigError) -> String {
    match e {
        SnmpConfigError::Invalid { message, .. } => message,
        other => other.to_string(),
    }
}

fn read_secret(
    r: &SecretRef,
    env: &impl Fn(&str) -> Option<String>,
    read_file: &impl Fn(&Path) -> std::io::Result<String>,
) -> Result<Secret, String> {
    let value =
        match r {
            SecretRef::Env(key, name) => env(name)
                .ok_or_else(|| format!("environment variable {name} ({key}) is not set"))?,
            SecretRef::File(key, path) => read_file(path)
                .map_err(|e| format!("cannot read {} ({key}): {e}", path.display()))?,
        };
    let value = value.trim_end_matches(['\n', '\r']);
    if value.is_empty() {
        return Err(match r {
            SecretRef::Env(key, name) => format!("environment variable {name} ({key}) is empty"),
            SecretRef::File(key, path) => format!("{} ({key}) is empty", path.display()),
        });
    }
    Ok(Secret::new(value))
}

/// The one place of a secret: `KEY_env` or `KEY_file`, not both, not neither.
fn secret_ref(
    key: &'static str,
    env: &Option<String>,
    file: &Option<PathBuf>,
) -> Result<SecretRef, String> {
    let (env_key, file_key) = match key {
        "community" => ("community_env", "community_file"),
        "auth_password" => ("auth_password_env", "auth_password_file"),
        _ => ("priv_password_env", "priv_password_file"),
    };
    match (env, file) {
        (Some(name), None) => {
            let valid =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if valid {
                Ok(SecretRef::Env(env_key, name.clone()))
            } else {
                Err(format!(
                    "{env_key} {name:?} is not an environment variable name"
                ))
            }
        }
        (None, Some(path)) => Ok(SecretRef::File(file_key, path.clone())),
        (Some(_), Some(_)) => Err(format!("give {env_key} or {file_key}, not both")),
        (None, None) => Err(format!(
            "{key} missing: give {env_key} (an environment variable) or {file_key} (a file); \
             secrets are not written in the targets file"
        )),
    }
}

fn credential_spec(entry: &TargetEntry) -> Result<CredentialSpec, String> {
    let version = match &entry.version {
        VersionEntry::Text(v) => v.to_ascii_lowercase(),
        VersionEntry::Number(n) => n.to_string(),
    };
    let v3_fields = [
        ("user", entry.user.is_some()),
        ("auth_protocol", entry.auth_protocol.is_some()),
        ("auth_password_env", entry.auth_password_env.is_some()),
        ("auth_password_file", entry.auth_password_file.is_some()),
        ("priv_protocol", entry.priv_protocol.is_some()),
        ("priv_password_env", entry.priv_password_env.is_some()),
        ("priv_password_file", entry.priv_password_file.is_some()),
    ];
    match version.as_str() {
        "2c" | "v2c" => {
            if let Some((field, _)) = v3_fields.iter().find(|(_, set)| *set) {
                return Err(format!(
                    "{field} is for version \"3\", this target is \"2c\""
                ));
            }
            Ok(CredentialSpec::V2c {
                community: secret_ref("community", &entry.community_env, &entry.community_file)?,
            })
        }
        "3" | "v3" => {
            if entry.community_env.is_some() || entry.community_file.is_some() {
                return Err("a community is for version \"2c\", this target is \"3\"".into());
            }
            let required = |field: &str, value: &Option<String>| {
                value
                    .clone()
                    .ok_or_else(|| format!("{field} missing (SNMPv3 is polled with authPriv)"))
            };
            let user = required("user", &entry.user)?;
            if user.is_empty() || user.len() > 32 {
                return Err(format!("user {user:?} must be 1 to 32 characters"));
            }
            Ok(CredentialSpec::V3 {
                user,
                auth_protocol: parse_auth_protocol(&required(
                    "auth_protocol",
                    &entry.auth_protocol,
                )?)?,
                auth_password: secret_ref(
                    "auth_password",
                    &entry.auth_password_env,
                    &entry.auth_password_file,
                )?,
                priv_protocol: parse_priv_protocol(&required(
                    "priv_protocol",
                    &entry.priv_protocol,
                )?)?,
                priv_password: secret_ref(
                    "priv_password",
                    &entry.priv_password_env,
                    &entry.priv_password_file,
                )?,
            })
        }
        other => Err(format!("version {other:?} is not \"2c\" or \"3\"")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(arcs: &[u32]) -> Vec<u32> {
        arcs.to_vec()
    }

    #[test]
    fn physical_index_decodes_ipv4_ipv6_and_zoned_addresses() {
        assert_eq!(
            physical_index_address(&[4, 1, 4, 192, 0, 2, 1]),
            Ok("192.0.2.1".parse().expect("ip"))
        );
        let v6: Vec<u32> = [3, 2, 16]
            .into_iter()
            .chain(
                "2001:db8::20"
                    .parse::<Ipv6Addr>()
                    .expect("v6")
                    .octets()
                    .map(u32::from),
            )
            .collect();
        assert_eq!(
            physical_index_address(&v6),
            Ok("2001:db8::20".parse().expect("ip"))
        );
        // ipv4z: the address, then a 4-byte zone index.
        assert_eq!(
            physical_index_address(&[7, 3, 8, 10, 1, 2, 3, 0, 0, 0, 5]),
            Ok("10.1.2.3".parse().expect("ip"))
        );
        let mut v6z: Vec<u32> = vec![7, 4, 20];
        v6z.extend(
            "fe80::1"
                .parse::<Ipv6Addr>()
                .expect("v6")
                .octets()
                .map(u32::from),
        );
        v6z.extend([0, 0, 0, 7]);
        assert_eq!(
            physical_index_address(&v6z),
            Ok("fe80::1".parse().expect("ip"))
        );
    }

    #[test]
    fn physical_index_refuses_what_is_not_an_address() {
        for bad in [
            &[4, 1, 4, 192, 0, 2][..],       // one byte short of its length
            &[4, 1, 5, 192, 0, 2, 1, 9][..], // IPv4 with five bytes
            &[4, 1, 4, 192, 0, 2, 256][..],  // not a byte
            &[4, 16, 4, 1, 2, 3, 4][..],     // dns(16)
            &[4, 0, 0][..],                  // unknown(0), empty
            &[4, 1][..],                     // truncated
        ] {
            assert!(physical_index_address(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn media_index_is_ifindex_and_four_bytes() {
        assert_eq!(
            media_index_address(&[2, 10, 0, 0, 1]),
            Ok("10.0.0.1".parse().expect("ip"))
        );
        assert!(media_index_address(&[2, 10, 0, 0]).is_err());
        assert!(media_index_address(&[2, 10, 0, 0, 1, 5]).is_err());
        assert!(media_index_address(&[2, 10, 0, 300, 1]).is_err());
    }

    #[test]
    fn macs_are_six_nonzero_bytes() {
        assert_eq!(
            mac_from_octets(&[0x02, 0xfc, 0, 0, 0, 5]).map(|m| m.to_string()),
            Some("02:fc:00:00:00:05".into())
        );
        assert_eq!(mac_from_octets(&[]), None);
        assert_eq!(mac_from_octets(&[0; 6]), None);
        assert_eq!(mac_from_octets(&[1, 2, 3, 4, 5, 6, 7, 8]), None);
    }

    #[test]
    fn rows_skip_invalid_incomplete_and_unresolved_entries() {
        let good = index(&[4, 1, 4, 10, 0, 0, 1]);
        let invalid = index(&[4, 1, 4, 10, 0, 0, 2]);
        let incomplete = index(&[4, 1, 4, 10, 0, 0, 3]);
        let zero = index(&[4, 1, 4, 10, 0, 0, 4]);
        let bad_index = index(&[4, 16, 3, 1, 2, 3]);
        let no_state = index(&[5, 1, 4, 10, 0, 0, 6]);
        let mac = vec![0x52, 0x54, 0, 0xaa, 0, 1];
        let addresses: BTreeMap<_, _> = [
            (good.clone(), mac.clone()),
            (invalid.clone(), mac.clone()),
            (incomplete.clone(), mac.clone()),
            (zero.clone(), vec![0; 6]),
            (bad_index.clone(), mac.clone()),
            (no_state.clone(), mac.clone()),
        ]
        .into();
        let types: BTreeMap<_, _> =
            [(good.clone(), 3), (invalid, 2), (incomplete.clone(), 3)].into();
        let states: BTreeMap<_, _> = [(good, 1), (incomplete, 7)].into();
        let rows = physical_rows(&addresses, &types, &states);
        let ips: Vec<String> = rows.entries.iter().map(|e| e.ip.to_string()).collect();
        assert_eq!(ips, ["10.0.0.1", "10.0.0.6"]);
        assert_eq!(rows.skipped, 4);

        let media: BTreeMap<_, _> = [
            (index(&[2, 10, 0, 0, 1]), mac.clone()),
            (index(&[2, 10, 0, 0, 2]), mac.clone()),
            (index(&[3, 10, 0, 0, 1]), mac.clone()),
            (index(&[2, 10, 0, 0, 3]), vec![]),
        ]
        .into();
        let types: BTreeMap<_, _> = [(index(&[2, 10, 0, 0, 2]), 2)].into();
        let rows = media_rows(&media, &types);
        // The same pair on two interfaces is one entry.
        assert_eq!(rows.entries.len(), 1);
        assert_eq!(rows.skipped, 2);
    }

    #[test]
    fn addresses_default_to_port_161() {
        assert_eq!(parse_address("10.0.0.1"), Ok(("10.0.0.1".into(), 161)));
        assert_eq!(
            parse_address("sw1.example:1161"),
            Ok(("sw1.example".into(), 1161))
        );
        assert_eq!(parse_address("[::1]:1161"), Ok(("::1".into(), 1161)));
        assert_eq!(
            parse_address("[2001:db8::1]"),
            Ok(("2001:db8::1".into(), 161))
        );
        assert_eq!(
            parse_address("2001:db8::1"),
            Ok(("2001:db8::1".into(), 161))
        );
        for bad in [
            "",
            "10.0.0.1:0",
            "10.0.0.1:99999",
            "a b",
            "[::1",
            "[x]:1",
            "1:2:zz",
        ] {
            assert!(parse_address(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let target = SnmpTarget::new(
            "10.0.0.1",
            "sw",
            SnmpCredentials::V3 {
                user: "cloudgov".into(),
                auth_protocol: AuthProtocol::Sha1,
                auth_password: Secret::new("auth-very-secret"),
                priv_protocol: PrivProtocol::Aes128,
                priv_password: Secret::new("priv-very-secret"),
            },
        )
        .expect("valid");
        let shown = format!("{target:?}");
        assert!(!shown.contains("very-secret"), "{shown}");
        assert_eq!(target.address(), "10.0.0.1:161");
        assert_eq!(target.version(), "3");
        let short = SnmpTarget::new(
            "10.0.0.1",
            "sw",
            SnmpCredentials::V3 {
                user: "cloudgov".into(),
                auth_protocol: AuthProtocol::Sha1,
                auth_password: Secret::new("short"),
                priv_protocol: PrivProtocol::Aes128,
                priv_password: Secret::new("long-enough"),
            },
        )
        .expect_err("short password");
        assert!(short.to_string().contains("auth password"), "{short}");
        assert!(!short.to_string().contains("short\""), "{short}");
    }

    #[test]
    fn a_poll_can_run_on_any_worker_thread() {
        fn is_send<T: Send>(_: T) {}
        // Type-checked, never run: the daemon spawns polls as tasks.
        let _ = |store: &Store, target: &SnmpTarget| is_send(poll(store, target, Utc::now(), true));
    }

    #[test]
    fn protocols_parse_by_their_usual_names() {
        assert_eq!(parse_auth_protocol("SHA"), Ok(AuthProtocol::Sha1));
        assert_eq!(parse_auth_protocol("sha256"), Ok(AuthProtocol::Sha256));
        assert_eq!(parse_auth_protocol("md5"), Ok(AuthProtocol::Md5));
        assert!(parse_auth_protocol("sha3").is_err());
        assert_eq!(parse_priv_protocol("aes"), Ok(PrivProtocol::Aes128));
        assert_eq!(
            parse_priv_protocol("AES256"),
            Ok(PrivProtocol::Aes256Blumenthal)
        );
        assert_eq!(
            parse_priv_protocol("aes256c"),
            Ok(PrivProtocol::Aes256Reeder)
        );
        assert_eq!(parse_priv_protocol("des"), Ok(PrivProtocol::Des));
        assert!(parse_priv_protocol("rc4").is_err());
    }

    const TARGETS: &str = r#"
[[target]]
address = "10.0.0.1:161"
source = "core-sw-1"
version = "2c"
community_env = "CORE_SW_COMMUNITY"

[[target]]
address = "10.0.0.2"
source = "agg-sw-2"
version = "3"
user = "cloudgov"
auth_protocol = "sha"
auth_password_env = "AGG_AUTH"
priv_protocol = "aes"
priv_password_file = "/etc/cloudgov/agg.priv"
timeout_seconds = 5
"#;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| vars.get(k).cloned()
    }

    fn files(path: &Path) -> std::io::Result<String> {
        if path == Path::new("/etc/cloudgov/agg.priv") {
            Ok("priv-password-1\n".into())
        } else {
            Err(std::io::Error::from(std::io::ErrorKind::NotFound))
        }
    }

    #[test]
    fn a_targets_file_parses_and_resolves_its_secrets_once() {
        let parsed = SnmpTargets::parse("targets.toml", TARGETS).expect("parses");
        assert_eq!(parsed.len(), 2);
        let targets = parsed
            .resolve(
                env_of(&[
                    ("CORE_SW_COMMUNITY", "c0mmunity"),
                    ("AGG_AUTH", "auth-password-1"),
                ]),
                files,
            )
            .expect("resolves");
        assert_eq!(targets[0].address(), "10.0.0.1:161");
        assert_eq!(targets[0].source(), "core-sw-1");
        assert_eq!(targets[0].version(), "2c");
        assert_eq!(targets[1].address(), "10.0.0.2:161");
        assert_eq!(targets[1].timeout, Duration::from_secs(5));
        match &targets[1].credentials {
            SnmpCredentials::V3 { priv_password, .. } => {
                assert_eq!(priv_password.expose(), "priv-password-1")
            }
            other => panic!("{other:?}"),
        }

        let err = parsed
            .resolve(env_of(&[("AGG_AUTH", "auth-password-1")]), files)
            .expect_err("unset");
        let text = err.to_string();
        assert!(
            text.contains("targets.toml")
                && text.contains("core-sw-1")
                && text.contains("CORE_SW_COMMUNITY"),
            "{text}"
        );
        let err = parsed
            .resolve(
                env_of(&[("CORE_SW_COMMUNITY", "c"), ("AGG_AUTH", "")]),
                files,
            )
            .expect_err("empty");
        assert!(err.to_string().contains("AGG_AUTH") && err.to_string().contains("empty"));
        let err = parsed
            .resolve(
                env_of(&[("CORE_SW_COMMUNITY", "c"), ("AGG_AUTH", "short")]),
                files,
            )
            .expect_err("short");
        assert!(err.to_string().contains("agg-sw-2") && !err.to_string().contains("short\""));
        let err = parsed
            .resolve(
                env_of(&[("CORE_SW_COMMUNITY", "c"), ("AGG_AUTH", "auth-password-1")]),
                |_: &Path| Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied)),
            )
            .expect_err("unreadable");
        assert!(err.to_string().contains("/etc/cloudgov/agg.priv"), "{err}");
    }

    #[test]
    fn a_bad_targets_file_names_the_target_and_the_field() {
        let cases = [
            (
                TARGETS.replace("version = \"2c\"", "version = \"1\""),
                "version",
            ),
            (
                TARGETS.replace("community_env = \"CORE_SW_COMMUNITY\"", ""),
                "community_env",
            ),
            (
                TARGETS.replace(
                    "community_env = \"CORE_SW_COMMUNITY\"",
                    "community_env = \"X\"\ncommunity_file = \"/x\"",
                ),
                "not both",
            ),
            (
                TARGETS.replace("auth_protocol = \"sha\"", ""),
                "auth_protocol",
            ),
            (TARGETS.replace("\"aes\"", "\"rc4\""), "rc4"),
            (TARGETS.replace("agg-sw-2", "core-sw-1"), "earlier target"),
            (TARGETS.replace("10.0.0.2", "10.0.0.2:0"), "port"),
            (
                TARGETS.replace("timeout_seconds = 5", "timeout_seconds = 0"),
                "timeout",
            ),
            (
                TARGETS.replace(
                    "community_env = \"CORE_SW_COMMUNITY\"",
                    "community_env = \"C\"\nuser = \"u\"",
                ),
                "user",
            ),
        ];
        for (text, word) in cases {
            let err = SnmpTargets::parse("t.toml", &text).expect_err(word);
            assert!(err.to_string().contains(word), "{word}: {err}");
            assert!(err.to_string().starts_with("t.toml"), "{err}");
        }
        // A secret written into the file itself is refused as an unknown field.
        let inline = TARGETS.replace(
            "community_env = \"CORE_SW_COMMUNITY\"",
            "community = \"public\"",
        );
        let err = SnmpTargets::parse("t.toml", &inline).expect_err("inline secret");
        assert!(err.to_string().contains("community"), "{err}");
        assert!(SnmpTargets::parse("t.toml", "").expect("empty").is_empty());
    }
}
