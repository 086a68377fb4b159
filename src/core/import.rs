//! CSV importers: usage samples backfilled from existing monitoring (`cloudgov import samples`),
//! the IP registry (`import ip-registry`) and ARP exports from switches (`import arp`).
//!
//! A file is parsed and checked whole before anything is written: the first bad row stops the
//! import with an error naming its line, and nothing from that file is stored.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use chrono::{DateTime, NaiveDate, Utc};

use crate::core::domain::{ArrivalWindow, DepartmentId, MacAddr, Percent, RegistryRow, check_text};
use crate::core::samples::SampleRow;

pub const SAMPLES_HEADER: [&str; 5] = ["vm", "ts", "cpu_pct", "mem_pct", "disk_pct"];

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{origin}: header must be exactly `{expected}`, found `{found}`")]
    Header {
        origin: String,
        expected: String,
        found: String,
    },
    #[error("{origin} line {line}: {message}")]
    Row {
        origin: String,
        line: u64,
        message: String,
    },
    #[error("{origin}: cannot read: {source}")]
    Read {
        origin: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}: {source}")]
    Csv {
        origin: String,
        #[source]
        source: csv::Error,
    },
}

/// A CSV reader whose header is exactly `required`, optionally followed by a prefix of
/// `optional` (in that order).
fn open_csv(
    origin: &str,
    mut input: impl std::io::Read,
    required: &[&str],
    optional: &[&str],
) -> Result<csv::Reader<std::io::Cursor<Vec<u8>>>, ImportError> {
    let mut bytes = Vec::new();
    input
        .read_to_end(&mut bytes)
        .map_err(|source| ImportError::Read {
            origin: origin.to_owned(),
            source,
        })?;
    // Windows line endings: the csv crate would report each error one line early.
    if bytes.contains(&b'\r') {
        let mut unix = Vec::with_capacity(bytes.len());
        let mut it = bytes.iter().peekable();
        while let Some(&b) = it.next() {
            if !(b == b'\r' && it.peek() == Some(&&b'\n')) {
                unix.push(b);
            }
        }
        bytes = unix;
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(std::io::Cursor::new(bytes));
    let header: Vec<String> = reader
        .headers()
        .map_err(|source| ImportError::Csv {
            origin: origin.to_owned(),
            source,
        })?
        .iter()
        .map(str::to_owned)
        .collect();
    let allowed = required.iter().chain(optional).copied();
    let matches = header.len() >= required.len()
        && header.len() <= required.len() + optional.len()
        && header.iter().zip(allowed).all(|(h, want)| h == want);
    if !matches {
        let mut expected = required.join(",");
        if !optional.is_empty() {
            expected.push_str(&format!(" (optionally followed by {})", optional.join(",")));
        }
        return Err(ImportError::Header {
            origin: origin.to_owned(),
            expected,
            found: header.join(","),
        });
    }
    Ok(reader)
}

/// One record with its line number, or the CSV error naming the line.
fn records<R: std::io::Read>(
    origin: &str,
    reader: &mut csv::Reader<R>,
) -> impl Iterator<Item = Result<(u64, csv::StringRecord), ImportError>> {
    reader.records().map(move |record| {
        record
            .map(|r| (r.position().map_or(0, |p| p.line()), r))
            .map_err(|e| ImportError::Row {
                origin: origin.to_owned(),
                line: e.position().map_or(0, |p| p.line()),
                message: e.to_string(),
            })
    })
}

fn row_error(origin: &str, line: u64, message: String) -> ImportError {
    ImportError::Row {
        origin: origin.to_owned(),
        line,
        message,
    }
}

pub const IP_REGISTRY_HEADER: [&str; 4] = ["ip", "mac", "department", "holder"];
pub const IP_REGISTRY_OPTIONAL: [&str; 3] = ["registered_on", "note", "gateway"];
pub const ARP_HEADER: [&str; 4] = ["ip", "mac", "seen_at", "source"];

/// Parses an IP registry CSV: `ip,mac,department,holder`, optionally followed by
/// `registered_on,note,gateway`. Every department must be in `departments`; an IP may appear
/// once; `registered_on` is not after `today`.
pub fn parse_ip_registry(
    origin: &str,
    input: impl std::io::Read,
    departments: &HashSet<String>,
    today: NaiveDate,
) -> Result<Vec<RegistryRow>, ImportError> {
    let mut reader = open_csv(origin, input, &IP_REGISTRY_HEADER, &IP_REGISTRY_OPTIONAL)?;
    let mut rows: Vec<RegistryRow> = Vec::new();
    let mut seen: HashMap<IpAddr, u64> = HashMap::new();
    for record in records(origin, &mut reader) {
        let (line, record) = record?;
        let err = |m: String| row_error(origin, line, m);
        let field = |i: usize| record.get(i).unwrap_or("");
        let ip: IpAddr = field(0)
            .parse()
            .map_err(|_| err(format!("ip {:?} is not an IPv4 or IPv6 address", field(0))))?;
        if let Some(first) = seen.insert(ip, line) {
            return Err(err(format!("ip {ip} is already on line {first}")));
        }
        let mac: MacAddr = field(1).parse().map_err(|e| err(format!("{e}")))?;
        let department = DepartmentId::try_from(field(2)).map_err(|e| err(e.to_string()))?;
        if !departments.contains(department.as_str()) {
            return Err(err(format!(
                "department {department} is not in the inventory"
            )));
        }
        let registered_on = match field(4) {
            "" => None,
            d => Some(
                NaiveDate::parse_from_str(d, "%Y-%m-%d")
                    .map_err(|_| err(format!("registered_on {d:?} is not YYYY-MM-DD")))?,
            ),
        };
        let gateway = match field(6) {
            "" | "false" | "no" | "0" => false,
            "true" | "yes" | "1" => true,
            other => return Err(err(format!("gateway {other:?} is not true or false"))),
        };
        rows.push(
            RegistryRow::new(
                ip,
                mac,
                department,
                field(3),
                registered_on,
                field(5),
                gateway,
                today,
            )
            .map_err(|e| err(e.to_string()))?,
        );
    }
    Ok(rows)
}

/// One entry of an exported ARP/neighbour table.
#[derive(Debug, Clone, PartialEq)]
pub struct ArpRow {
    pub ip: IpAddr,
    pub mac: MacAddr,
    pub seen_at: DateTime<Utc>,
    pub source: String,
}

/// Parses an ARP export CSV: `ip,mac,seen_at,source` (seen_at RFC 3339, inside `window`).
pub fn parse_arp(
    origin: &str,
    input: impl std::io::Read,
    window: ArrivalWindow,
) -> Result<Vec<ArpRow>, ImportError> {
    let mut reader = open_csv(origin, input, &ARP_HEADER, &[])?;
    let mut rows = Vec::new();
    for record in records(origin, &mut reader) {
        let (line, record) = record?;
        let err = |m: String| row_error(origin, line, m);
        let field = |i: usize| record.get(i).unwrap_or("");
        let ip: IpAddr = field(0)
            .parse()
            .map_err(|_| err(format!("ip {:?} is not an IPv4 or IPv6 address", field(0))))?;
        let mac: MacAddr = field(1).parse().map_err(|e| err(format!("{e}")))?;
        let seen_at = DateTime::parse_from_rfc3339(field(2))
            .map_err(|e| {
                err(format!(
                    "seen_at {:?} is not an RFC 3339 time with offset: {e}",
                    field(2)
                ))
            })?
            .with_timezone(&Utc);
        window.check("seen_at", seen_at).map_err(err)?;
        let source = field(3);
        if source.is_empty() || source.len() > 128 {
            return Err(err("source must be 1 to 128 characters".into()));
        }
        check_text("source", source, 128).map_err(|e| err(e.to_string()))?;
        rows.push(ArpRow {
            ip,
            mac,
            seen_at,
            source: source.to_owned(),
        });
    }
    Ok(rows)
}

/// Parses a samples CSV (`vm,ts,cpu_pct,mem_pct,disk_pct`; `ts` RFC 3339 with offset, inside
/// `window`; `disk_pct` may be empty). `vm_keys` maps known VM ids to their store keys.
pub fn parse_samples(
    origin: &str,
    input: impl std::io::Read,
    vm_keys: &HashMap<String, i64>,
    window: ArrivalWindow,
) -> Result<Vec<SampleRow>, ImportError> {
    let mut reader = open_csv(origin, input, &SAMPLES_HEADER, &[])?;
    let mut rows = Vec::new();
    for record in records(origin, &mut reader) {
        let (line, record) = record?;
        let row_err = |message: String| row_error(origin, line, message);
        let field = |i: usize| record.get(i).unwrap_or("");
        let vm = field(0);
        let vm_key = *vm_keys
            .get(vm)
            .ok_or_else(|| row_err(format!("unknown VM {vm:?} (import the inventory first)")))?;
        let ts = DateTime::parse_from_rfc3339(field(1)).map_err(|e| {
            row_err(format!(
                "ts {:?} is not an RFC 3339 time with offset: {e}",
                field(1)
            ))
        })?;
        window
            .check("ts", ts.with_timezone(&Utc))
            .map_err(row_err)?;
        let percent = |i: usize| -> Result<f64, ImportError> {
            let name = SAMPLES_HEADER[i];
            let v: f64 = field(i)
                .parse()
                .map_err(|_| row_err(format!("{name} {:?} is not a number", field(i))))?;
            Percent::try_from(v)
                .map(Percent::get)
                .map_err(|e| row_err(format!("{name}: {e}")))
        };
        let disk_pct = if field(4).is_empty() {
            None
        } else {
            Some(percent(4)?)
        };
        rows.push(SampleRow {
            vm_key,
            ts: ts.timestamp(),
            cpu_pct: percent(2)?,
            mem_pct: percent(3)?,
            disk_pct,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> HashMap<String, i64> {
        HashMap::from([("vm-1".to_string(), 7)])
    }

    /// What a plain import accepts as of 2026-01-01.
    fn window() -> ArrivalWindow {
        ArrivalWindow::recent(DateTime::from_timestamp(1_767_225_600, 0).expect("instant"))
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 1, 1).expect("date")
    }

    fn parse(text: &str) -> Result<Vec<SampleRow>, ImportError> {
        parse_samples("s.csv", text.as_bytes(), &keys(), window())
    }

    #[test]
    fn times_outside_the_arrival_window_are_refused_unless_history_is_asked_for() {
        let head = "vm,ts,cpu_pct,mem_pct,disk_pct\n";
        let future = format!("{head}vm-1,9999-01-01T00:00:00Z,1,2,3\n");
        let err = parse(&future).expect_err("future").to_string();
        assert!(err.contains("line 2") && err.contains("future"), "{err}");
        let old = format!("{head}vm-1,2019-05-01T00:00:00+08:00,1,2,3\n");
        let err = parse(&old).expect_err("old").to_string();
        assert!(err.contains("--allow-history"), "{err}");
        let history = ArrivalWindow::with_history(
            DateTime::from_timestamp(1_767_225_600, 0).expect("instant"),
        );
        assert!(parse_samples("s.csv", old.as_bytes(), &keys(), history).is_ok());
        assert!(parse_samples("s.csv", future.as_bytes(), &keys(), history).is_err());
        let arp = "ip,mac,seen_at,source\n10.1.0.5,52:54:00:ab:cd:ef,9999-01-01T00:00:00Z,sw\n";
        assert!(parse_arp("a.csv", arp.as_bytes(), window()).is_err());
        let departments = HashSet::from(["health".to_string()]);
        let registry = "ip,mac,department,holder,registered_on\n10.1.0.5,52:54:00:00:00:01,health,pc,9999-01-01\n";
        let err = parse_ip_registry("r.csv", registry.as_bytes(), &departments, today())
            .expect_err("future registration")
            .to_string();
        assert!(err.contains("future"), "{err}");
        let long = format!(
            "ip,mac,department,holder\n10.1.0.5,52:54:00:00:00:01,health,{}\n",
            "x".repeat(RegistryRow::MAX_HOLDER_CHARS + 1)
        );
        assert!(parse_ip_registry("r.csv", long.as_bytes(), &departments, today()).is_err());
    }

    #[test]
    fn parses_rows_with_offsets_and_empty_disk() {
        let rows =
            parse("vm,ts,cpu_pct,mem_pct,disk_pct\nvm-1,2025-09-26T08:00:00+08:00,12.5,40,\n")
                .expect("parses");
        assert_eq!(
            rows,
            vec![SampleRow {
                vm_key: 7,
                ts: 1_758_844_800,
                cpu_pct: 12.5,
                mem_pct: 40.0,
                disk_pct: None
            }]
        );
    }

    #[test]
    fn errors_name_the_line_and_the_problem() {
        let head = "vm,ts,cpu_pct,mem_pct,disk_pct\nvm-1,2025-09-26T08:00:00+08:00,1,2,3\n";
        let cases = [
            (
                "vm-2,2025-09-26T08:00:00+08:00,1,2,3",
                "unknown VM \"vm-2\"",
            ),
            ("vm-1,2025-09-26 08:00,1,2,3", "RFC 3339"),
            ("vm-1,2025-09-26T08:00:00+08:00,101,2,3", "cpu_pct"),
            ("vm-1,2025-09-26T08:00:00+08:00,1,-2,3", "mem_pct"),
            ("vm-1,2025-09-26T08:00:00+08:00,1,2,NaN", "disk_pct"),
            ("vm-1,2025-09-26T08:00:00+08:00,1,x,3", "not a number"),
        ];
        for (row, want) in cases {
            let err = parse(&format!("{head}{row}\n")).expect_err(row).to_string();
            assert!(
                err.contains("s.csv line 3") && err.contains(want),
                "{row}: {err}"
            );
        }
        let err = parse("vm,time,cpu,mem,disk\n")
            .expect_err("header")
            .to_string();
        assert!(err.contains("header must be exactly"), "{err}");
        // Windows line endings name the same line.
        let crlf = "vm,ts,cpu_pct,mem_pct,disk_pct\r\nvm-1,2025-09-26T08:00:00+08:00,1,2,3\r\nvm-1,2025-09-26T09:00:00+08:00,1,200,3\r\n";
        let err = parse(crlf).expect_err("bad row").to_string();
        assert!(err.contains("s.csv line 3"), "{err}");
    }

    #[test]
    fn registry_rows_parse_any_mac_spelling_and_refuse_bad_lines() {
        let departments = HashSet::from(["health".to_string()]);
        let text = "ip,mac,department,holder\n10.1.0.5,52-54-00-AB-CD-EF,health,PC-1\n2001:db8::5,5254.00ab.cd01,health,PC-2\n";
        let rows =
            parse_ip_registry("r.csv", text.as_bytes(), &departments, today()).expect("parses");
        assert_eq!(rows[0].mac().to_string(), "52:54:00:ab:cd:ef");
        assert_eq!(rows[1].ip().to_string(), "2001:db8::5");
        let with_optional = "ip,mac,department,holder,registered_on,note,gateway\n10.1.0.1,52:54:00:00:00:01,health,GW,2025-01-02,core,true\n";
        let rows = parse_ip_registry("r.csv", with_optional.as_bytes(), &departments, today())
            .expect("parses");
        assert!(rows[0].gateway() && rows[0].registered_on().is_some());
        for (row, want) in [
            (
                "10.1.0.300,52:54:00:00:00:01,health,x",
                "not an IPv4 or IPv6",
            ),
            ("10.1.0.6,52:54:00:00:00,health,x", "MAC address"),
            ("10.1.0.6,52:54:00:00:00:01,police,x", "department police"),
            ("10.1.0.5,52:54:00:00:00:01,health,x", "already on line 2"),
        ] {
            let text =
                format!("ip,mac,department,holder\n10.1.0.5,52:54:00:00:00:09,health,a\n{row}\n");
            let err = parse_ip_registry("r.csv", text.as_bytes(), &departments, today())
                .expect_err(row)
                .to_string();
            assert!(
                err.contains("r.csv line 3") && err.contains(want),
                "{row}: {err}"
            );
        }
    }

    #[test]
    fn arp_rows_parse_and_refuse_bad_times() {
        let good = "ip,mac,seen_at,source\n10.1.0.5,52:54:00:ab:cd:ef,2025-06-20T09:00:00+08:00,core-sw1\n";
        let rows = parse_arp("a.csv", good.as_bytes(), window()).expect("parses");
        assert_eq!(rows[0].seen_at.to_rfc3339(), "2025-06-20T01:00:00+00:00");
        let bad = "ip,mac,seen_at,source\n10.1.0.5,52:54:00:ab:cd:ef,yesterday,core-sw1\n";
        let err = parse_arp("a.csv", bad.as_bytes(), window())
            .expect_err("bad time")
            .to_string();
        assert!(
            err.contains("a.csv line 2") && err.contains("seen_at"),
            "{err}"
        );
    }
}

/// Bounded fuzzing of the importers: any input is either imported with valid values or
/// refused with an error; nothing panics (256 cases per property, in every test run).
#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn keys() -> HashMap<String, i64> {
        HashMap::from([("vm-1".to_string(), 1)])
    }

    fn window() -> ArrivalWindow {
        ArrivalWindow::recent(DateTime::from_timestamp(1_767_225_600, 0).expect("instant"))
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 1, 1).expect("date")
    }

    proptest! {
        #[test]
        fn samples_parser_never_panics_and_keeps_only_valid_rows(body in "(vm-1|x|,|[0-9]{1,3}(\\.[0-9])?|2025-0[1-9]-1[0-9]T0[0-9]:00:00\\+08:00|\\r?\\n|NaN|-1){0,40}") {
            let text = format!("vm,ts,cpu_pct,mem_pct,disk_pct\n{body}");
            if let Ok(rows) = parse_samples("f.csv", text.as_bytes(), &keys(), window()) {
                for r in rows {
                    prop_assert!((0.0..=100.0).contains(&r.cpu_pct) && (0.0..=100.0).contains(&r.mem_pct));
                    prop_assert!(r.disk_pct.is_none_or(|d| (0.0..=100.0).contains(&d)));
                }
            }
        }

        #[test]
        fn any_text_is_handled_by_every_importer(text in "\\PC{0,200}") {
            let departments = HashSet::from(["health".to_string()]);
            let _ = parse_samples("f.csv", text.as_bytes(), &keys(), window());
            let _ = parse_ip_registry("r.csv", text.as_bytes(), &departments, today());
            let _ = parse_arp("a.csv", text.as_bytes(), window());
        }

        #[test]
        fn registry_rows_with_random_macs_parse_or_name_the_line(mac in "[0-9a-fA-F:.\\-]{0,20}") {
            let text = format!("ip,mac,department,holder\n10.0.0.1,{mac},health,pc\n");
            let departments = HashSet::from(["health".to_string()]);
            match parse_ip_registry("r.csv", text.as_bytes(), &departments, today()) {
                Ok(rows) => prop_assert_eq!(rows[0].mac().to_string().len(), 17),
                Err(e) => prop_assert!(e.to_string().contains("line 2"), "{}", e),
            }
        }
    }
}
