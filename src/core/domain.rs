//! Domain types that parse once: identifiers, percentages, e-mail addresses, resources, verdicts.
//!
//! Everything that crosses a boundary (inventory file, CSV, HTTP, database) is turned into one of
//! these at the edge; the inside of the program never re-validates.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a value could not become a domain type; the message names the value and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} {reason}")]
pub struct InvalidValue {
    what: &'static str,
    value: String,
    reason: &'static str,
}

impl InvalidValue {
    pub fn new(what: &'static str, value: impl fmt::Display, reason: &'static str) -> Self {
        Self {
            what,
            value: value.to_string(),
            reason,
        }
    }
}

/// A utilisation percentage: finite, within 0..=100.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
#[serde(transparent)]
pub struct Percent(f64);

impl Percent {
    pub fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Percent {
    type Error = InvalidValue;
    fn try_from(v: f64) -> Result<Self, Self::Error> {
        if !v.is_finite() {
            return Err(InvalidValue::new("percentage", v, "is not a finite number"));
        }
        if !(0.0..=100.0).contains(&v) {
            return Err(InvalidValue::new("percentage", v, "is outside 0..=100"));
        }
        Ok(Self(v))
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        Percent::try_from(v).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Identifiers of departments, projects and VMs: 1..=64 characters of `A-Z a-z 0-9 . _ -`,
/// so they are safe in URLs, file names, CSV and e-mail subjects without escaping.
macro_rules! identifier {
    ($name:ident, $what:literal) => {
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<&str> for $name {
            type Error = InvalidValue;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                check_identifier($what, s)?;
                Ok(Self(s.to_owned()))
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidValue;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                check_identifier($what, &s)?;
                Ok(Self(s))
            }
        }

        impl FromStr for $name {
            type Err = InvalidValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::try_from(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::try_from(s).map_err(serde::de::Error::custom)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

identifier!(DepartmentId, "department id");
identifier!(ProjectId, "project id");
identifier!(VmId, "VM id");

fn check_identifier(what: &'static str, s: &str) -> Result<(), InvalidValue> {
    if s.is_empty() || s.len() > 64 {
        return Err(InvalidValue::new(
            what,
            s,
            "must be 1 to 64 characters long",
        ));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(InvalidValue::new(
            what,
            s,
            "may contain only letters, digits, '.', '_' and '-'",
        ));
    }
    Ok(())
}

/// An e-mail address, checked for the shape `local@domain` (delivery is the SMTP server's job).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for Email {
    type Error = InvalidValue;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        let s = s.trim();
        let valid = s.len() <= 254
            && !s.chars().any(|c| c.is_whitespace() || c == ',' || c == ';')
            && matches!(s.split_once('@'), Some((local, domain))
                if !local.is_empty() && !domain.is_empty() && !domain.contains('@') && !domain.starts_with('.') && !domain.ends_with('.'));
        if valid {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidValue::new(
                "e-mail address",
                s,
                "is not of the form name@domain",
            ))
        }
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Email::try_from(s.as_str()).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A MAC address, parsed once from any usual spelling (`AA:BB:CC:DD:EE:FF`, `aa-bb-cc-dd-ee-ff`,
/// `aabb.ccdd.eeff`, `aabbccddeeff`) and always shown as lowercase `aa:bb:cc:dd:ee:ff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr([u8; 6]);

impl MacAddr {
    /// The vendor prefix (OUI), `aa:bb:cc`.
    pub fn oui(&self) -> String {
        format!("{:02x}:{:02x}:{:02x}", self.0[0], self.0[1], self.0[2])
    }

    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }
}

impl FromStr for MacAddr {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Read without allocating (every agent report carries MACs): twelve hex digits, with
        // none, two or five separators, all the same one of `:`, `-`, `.`.
        let invalid = || {
            InvalidValue::new(
                "MAC address",
                s,
                "is not six hexadecimal bytes (e.g. 52:54:00:12:34:56)",
            )
        };
        let mut bytes = [0u8; 6];
        let (mut digits, mut separators, mut separator) = (0usize, 0usize, None);
        for c in s.trim().chars() {
            if matches!(c, ':' | '-' | '.') {
                if separator.is_some_and(|first| first != c) {
                    return Err(invalid());
                }
                separator = Some(c);
                separators += 1;
                continue;
            }
            let nibble = c.to_digit(16).ok_or_else(invalid)? as u8;
            let byte = bytes.get_mut(digits / 2).ok_or_else(invalid)?;
            *byte = (*byte << 4) | nibble;
            digits += 1;
        }
        if digits != 12 || !matches!(separators, 0 | 2 | 5) {
            return Err(invalid());
        }
        Ok(MacAddr(bytes))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The three resources of a VM that Pingdu art. 13 measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    Cpu,
    Memory,
    Disk,
}

impl Resource {
    pub const ALL: [Resource; 3] = [Resource::Cpu, Resource::Memory, Resource::Disk];

    /// The resource's name for people: `内存` / `memory`.
    pub fn title(self, language: Language) -> &'static str {
        match (self, language) {
            (Resource::Cpu, _) => "CPU",
            (Resource::Memory, Language::Zh) => "内存",
            (Resource::Memory, Language::En) => "memory",
            (Resource::Disk, Language::Zh) => "硬盘",
            (Resource::Disk, Language::En) => "disk",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Cpu => "cpu",
            Resource::Memory => "memory",
            Resource::Disk => "disk",
        }
    }
}

impl FromStr for Resource {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cpu" => Ok(Resource::Cpu),
            "memory" => Ok(Resource::Memory),
            "disk" => Ok(Resource::Disk),
            _ => Err(InvalidValue::new(
                "resource",
                s,
                "is not one of cpu, memory, disk",
            )),
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a finding judges: one resource, or whether the system is used at all (`usage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aspect {
    Cpu,
    Memory,
    Disk,
    /// The system as a whole: CPU, network, memory and connections over the lookback.
    Usage,
}

impl Aspect {
    pub const ALL: [Aspect; 4] = [Aspect::Cpu, Aspect::Memory, Aspect::Disk, Aspect::Usage];

    pub fn as_str(self) -> &'static str {
        match self {
            Aspect::Cpu => "cpu",
            Aspect::Memory => "memory",
            Aspect::Disk => "disk",
            Aspect::Usage => "usage",
        }
    }

    /// The resource, for the three that are resources.
    pub fn resource(self) -> Option<Resource> {
        match self {
            Aspect::Cpu => Some(Resource::Cpu),
            Aspect::Memory => Some(Resource::Memory),
            Aspect::Disk => Some(Resource::Disk),
            Aspect::Usage => None,
        }
    }
}

impl From<Resource> for Aspect {
    fn from(r: Resource) -> Aspect {
        match r {
            Resource::Cpu => Aspect::Cpu,
            Resource::Memory => Aspect::Memory,
            Resource::Disk => Aspect::Disk,
        }
    }
}

impl FromStr for Aspect {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Aspect::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                InvalidValue::new("resource", s, "is not one of cpu, memory, disk, usage")
            })
    }
}

impl fmt::Display for Aspect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of evaluating one resource of one VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Usage is low: notify the department to reduce resources (资源核减).
    Downsize,
    /// Usage is too high: advise expansion (资源扩容建议).
    Expand,
    Ok,
    /// Too few days with samples in the window to judge.
    InsufficientData,
    /// The system shows no use over the lookback (the `usage` finding, art. 13: 系统不再使用):
    /// advise release (释放建议).
    Unused,
    /// The system shows use over the lookback (the `usage` finding).
    InUse,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Downsize => "downsize",
            Verdict::Expand => "expand",
            Verdict::Ok => "ok",
            Verdict::InsufficientData => "insufficient_data",
            Verdict::Unused => "unused",
            Verdict::InUse => "in_use",
        }
    }

    /// The notice this verdict calls for, if any.
    pub fn direction(self) -> Option<Direction> {
        match self {
            Verdict::Downsize => Some(Direction::Downsize),
            Verdict::Expand => Some(Direction::Expand),
            Verdict::Unused => Some(Direction::Release),
            Verdict::Ok | Verdict::InsufficientData | Verdict::InUse => None,
        }
    }
}

impl FromStr for Verdict {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "downsize" => Ok(Verdict::Downsize),
            "expand" => Ok(Verdict::Expand),
            "ok" => Ok(Verdict::Ok),
            "insufficient_data" => Ok(Verdict::InsufficientData),
            "unused" => Ok(Verdict::Unused),
            "in_use" => Ok(Verdict::InUse),
            _ => Err(InvalidValue::new("verdict", s, "is not a known verdict")),
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which way a notice asks the department to adjust an allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Downsize,
    Expand,
    /// Release advice (释放建议): the system looks no longer used (art. 13).
    Release,
}

impl Direction {
    /// The obligation a notice of this direction starts when the department receives it.
    pub fn obligation(self) -> crate::core::obligations::ObligationKind {
        use crate::core::obligations::ObligationKind;
        match self {
            Direction::Downsize | Direction::Expand => ObligationKind::Adjustment,
            Direction::Release => ObligationKind::Release,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Downsize => "downsize",
            Direction::Expand => "expand",
            Direction::Release => "release",
        }
    }
}

impl FromStr for Direction {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "downsize" => Ok(Direction::Downsize),
            "expand" => Ok(Direction::Expand),
            "release" => Ok(Direction::Release),
            _ => Err(InvalidValue::new(
                "direction",
                s,
                "is not one of downsize, expand, release",
            )),
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a notice still asks for its adjustment: `open` until the adjustment is done or the
/// notice is withdrawn, then `closed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeState {
    Open,
    Closed,
}

impl NoticeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeState::Open => "open",
            NoticeState::Closed => "closed",
        }
    }
}

impl fmt::Display for NoticeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The language of e-mails and other text for people: formal Chinese or English.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    Zh,
    En,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Zh => "zh",
            Language::En => "en",
        }
    }
}

/// Checks free text people or agents give (names, reasons, notes): at most `max_chars`
/// characters, and no control characters but line breaks and tabs. A NUL would not even fit in
/// a PostgreSQL text column, and other control characters only hide what the text says.
pub fn check_text(what: &'static str, s: &str, max_chars: usize) -> Result<(), InvalidValue> {
    if s.chars().count() > max_chars {
        return Err(InvalidValue::new(
            what,
            format!("{}…", s.chars().take(32).collect::<String>()),
            "is too long",
        ));
    }
    if s.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(InvalidValue::new(
            what,
            s.chars().take(32).collect::<String>(),
            "contains control characters",
        ));
    }
    Ok(())
}

/// One entry of the IP registry: an address, the MAC registered for it, the department and
/// holder it is registered to (art. 19's static IP and IP-MAC registration). Built only by
/// [`RegistryRow::new`], so every entry, imported or edited, passed the same checks.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistryRow {
    ip: std::net::IpAddr,
    mac: MacAddr,
    department: DepartmentId,
    holder: String,
    registered_on: Option<chrono::NaiveDate>,
    note: String,
    gateway: bool,
}

impl RegistryRow {
    /// Longest holder of an entry.
    pub const MAX_HOLDER_CHARS: usize = 200;
    /// Longest note of an entry.
    pub const MAX_NOTE_CHARS: usize = 1000;

    /// Checks an entry: a holder of 1 to 200 characters, a note of at most 1000, neither with
    /// control characters, and a registration date (if given) not after `today`. Whether the
    /// department exists is the caller's to check against the inventory.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        ip: std::net::IpAddr,
        mac: MacAddr,
        department: DepartmentId,
        holder: &str,
        registered_on: Option<chrono::NaiveDate>,
        note: &str,
        gateway: bool,
        today: chrono::NaiveDate,
    ) -> Result<RegistryRow, InvalidValue> {
        if holder.is_empty() {
            return Err(InvalidValue::new("holder", holder, "is empty"));
        }
        check_text("holder", holder, Self::MAX_HOLDER_CHARS)?;
        check_text("note", note, Self::MAX_NOTE_CHARS)?;
        if let Some(day) = registered_on
            && day > today
        {
            return Err(InvalidValue::new("registered_on", day, "is in the future"));
        }
        Ok(RegistryRow {
            ip,
            mac,
            department,
            holder: holder.to_owned(),
            registered_on,
            note: note.to_owned(),
            gateway,
        })
    }

    pub fn ip(&self) -> std::net::IpAddr {
        self.ip
    }
    pub fn mac(&self) -> MacAddr {
        self.mac
    }
    pub fn department(&self) -> &DepartmentId {
        &self.department
    }
    pub fn holder(&self) -> &str {
        &self.holder
    }
    /// `None`: the day it is first registered.
    pub fn registered_on(&self) -> Option<chrono::NaiveDate> {
        self.registered_on
    }
    pub fn note(&self) -> &str {
        &self.note
    }
    /// A gateway answers for many addresses, so its MAC is expected on more than one IP.
    pub fn gateway(&self) -> bool {
        self.gateway
    }
}

/// The instants a measurement may carry when it reaches the daemon, by ingest or by import:
/// not past a small clock skew into the future, and not older than any evaluation or review
/// will read (unless a backfill asks for history explicitly). Never the future.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArrivalWindow {
    earliest: chrono::DateTime<chrono::Utc>,
    latest: chrono::DateTime<chrono::Utc>,
}

impl ArrivalWindow {
    /// How far ahead of the daemon's clock an agent's clock may be.
    pub const MAX_FUTURE_SKEW: chrono::TimeDelta = chrono::TimeDelta::minutes(5);
    /// How old a measurement may be without `--allow-history`.
    pub const MAX_AGE: chrono::TimeDelta = chrono::TimeDelta::days(400);

    /// What ingest and plain imports accept as of `now`.
    pub fn recent(now: chrono::DateTime<chrono::Utc>) -> ArrivalWindow {
        ArrivalWindow {
            earliest: now - Self::MAX_AGE,
            latest: now + Self::MAX_FUTURE_SKEW,
        }
    }

    /// A backfill of history (`--allow-history`): anything since 2000, still not the future.
    pub fn with_history(now: chrono::DateTime<chrono::Utc>) -> ArrivalWindow {
        ArrivalWindow {
            earliest: chrono::DateTime::from_timestamp(946_684_800, 0).unwrap_or(now),
            latest: now + Self::MAX_FUTURE_SKEW,
        }
    }

    /// `Err` with the reason when `at` lies outside the window.
    pub fn check(&self, what: &str, at: chrono::DateTime<chrono::Utc>) -> Result<(), String> {
        if at > self.latest {
            return Err(format!(
                "{what} {} is {} s in the future: check the clock (at most {} s ahead)",
                at.to_rfc3339(),
                (at - self.latest + Self::MAX_FUTURE_SKEW).num_seconds(),
                Self::MAX_FUTURE_SKEW.num_seconds()
            ));
        }
        if at < self.earliest {
            return Err(format!(
                "{what} {} is before {}: older measurements need an import with --allow-history",
                at.to_rfc3339(),
                self.earliest.date_naive()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_accepts_bounds_and_rejects_outside_and_nan() {
        assert!(Percent::try_from(0.0).is_ok());
        assert!(Percent::try_from(100.0).is_ok());
        assert!(Percent::try_from(-0.1).is_err());
        assert!(Percent::try_from(100.01).is_err());
        let err = Percent::try_from(f64::NAN).expect_err("NaN");
        assert!(err.to_string().contains("finite"), "{err}");
        assert!(Percent::try_from(f64::INFINITY).is_err());
    }

    #[test]
    fn identifiers_are_checked() {
        assert!(VmId::try_from("vm-01.prod_a").is_ok());
        assert!(VmId::try_from("").is_err());
        let err = VmId::try_from("vm 1").expect_err("space");
        assert!(err.to_string().contains("VM id \"vm 1\""), "{err}");
        assert!(ProjectId::try_from("x".repeat(65).as_str()).is_err());
    }

    #[test]
    fn mac_addresses_parse_from_every_usual_spelling() {
        let canonical = "52:54:00:ab:cd:ef";
        for spelling in [
            "52:54:00:AB:CD:EF",
            "52-54-00-ab-cd-ef",
            "5254.00ab.cdef",
            "525400abcdef",
            " 52:54:00:ab:cd:ef ",
        ] {
            let mac: MacAddr = spelling.parse().expect(spelling);
            assert_eq!(mac.to_string(), canonical, "{spelling}");
        }
        assert_eq!(
            "52:54:00:ab:cd:ef".parse::<MacAddr>().expect("mac").oui(),
            "52:54:00"
        );
        for bad in [
            "",
            "52:54:00:ab:cd",
            "52:54:00:ab:cd:eg",
            "52:54-00:ab:cd:ef",
            "52:54:00:ab:cd:ef:01",
        ] {
            let err = bad.parse::<MacAddr>().expect_err(bad);
            assert!(err.to_string().contains("MAC address"), "{err}");
        }
    }

    #[test]
    fn free_text_refuses_control_characters_and_excess() {
        assert!(check_text("reason", "系统已迁移\n第二行\t", 20).is_ok());
        let nul = check_text("reason", "a\0b", 20).expect_err("NUL");
        assert!(nul.to_string().contains("control characters"), "{nul}");
        assert!(check_text("reason", "\u{1b}[31m", 20).is_err());
        assert!(check_text("reason", &"x".repeat(21), 20).is_err());
    }

    #[test]
    fn emails_are_checked() {
        assert!(Email::try_from("ops@health.gov.cn").is_ok());
        for bad in ["", "a", "a@", "@b", "a b@c", "a@b@c", "a@.b", "a@b,c@d"] {
            assert!(Email::try_from(bad).is_err(), "{bad} accepted");
        }
    }
}
