//! CSV importers: usage samples backfilled from existing monitoring (`cloudgov import samples`),
//! the IP registry (`import ip-registry`) and ARP exports from switches (`import arp`).
//!
//! A file is checked row by row as it streams (memory does not grow with its size); the first
//! bad row stops the import with an error naming its line, and nothing from that file is
//! stored (the caller writes it in one transaction and commits only after the last row).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use chrono::{DateTime, NaiveDate, Utc};

use crate::core::domain::{ArrivalWindow, DepartmentId, MacAddr, RegistryRow, check_text};
use crate::core::samples::{Hundredths, MAX_INBOUND_CONNECTIONS, Sample, SampleRow, rate_bps};

pub const SAMPLES_HEADER: [&str; 5] = ["vm", "ts", "cpu_pct", "mem_pct", "disk_pct"];
/// Columns a samples file may add, in this order: network bytes per second received and sent,
/// and inbound connections to listening ports (what `cloudgov samples export` prints).
pub const SAMPLES_OPTIONAL: [&str; 3] = ["net_rx_bps", "net_tx_bps", "inbound_connections"];

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

/// A reader that drops the `\r` of each `\r\n` as it streams (Windows line endings: the csv
/// crate would report each error one line early).
pub struct StripCr<R> {
    inner: R,
    buf: Vec<u8>,
    /// Unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    eof: bool,
}

impl<R: std::io::Read> StripCr<R> {
    pub fn new(inner: R) -> Self {
        StripCr {
            inner,
            buf: vec![0; 64 * 1024],
            start: 0,
            end: 0,
            eof: false,
        }
    }

    /// Moves the unread bytes to the front and reads more after them; false at end of input.
    fn refill(&mut self) -> std::io::Result<bool> {
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        let n = self.inner.read(&mut self.buf[self.end..])?;
        self.end += n;
        self.eof = n == 0;
        Ok(n > 0)
    }
}

impl<R: std::io::Read> std::io::Read for StripCr<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let mut written = 0;
        while written < out.len() {
            if self.start == self.end && !self.refill()? {
                break;
            }
            let b = self.buf[self.start];
            if b == b'\r' && self.start + 1 == self.end && !self.eof {
                // A `\r` with nothing after it yet: hand over what is written, or look ahead.
                if written > 0 {
                    break;
                }
                self.refill()?;
                continue;
            }
            self.start += 1;
            if b == b'\r' && self.start < self.end && self.buf[self.start] == b'\n' {
                continue;
            }
            out[written] = b;
            written += 1;
        }
        Ok(written)
    }
}

/// A CSV reader whose header is exactly `required`, optionally followed by a prefix of
/// `optional` (in that order). It streams: memory does not grow with the file.
fn open_csv<R: std::io::Read>(
    origin: &str,
    input: R,
    required: &[&str],
    optional: &[&str],
) -> Result<csv::Reader<StripCr<R>>, ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(StripCr::new(input));
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

/// Parses a samples CSV (`vm,ts,cpu_pct,mem_pct,disk_pct[,net_rx_bps,net_tx_bps]`; `ts` RFC 3339
/// with offset, inside `window`; `disk_pct` and the rates may be empty). Percentages are stored
/// to 0.01, rates to whole bytes per second. `vm_keys` maps known VM ids to their store keys.
pub fn parse_samples(
    origin: &str,
    input: impl std::io::Read,
    vm_keys: &HashMap<String, i64>,
    window: ArrivalWindow,
) -> Result<Vec<SampleRow>, ImportError> {
    let mut parser = SampleParser::new(origin, input, vm_keys, window)?;
    let mut rows = Vec::new();
    loop {
        let chunk = parser.next_chunk(usize::MAX)?;
        if chunk.is_empty() {
            return Ok(rows);
        }
        rows.extend(chunk);
    }
}

/// A samples CSV read a chunk at a time, so a file of any size is checked in bounded memory
/// (see [`parse_samples`] for the format). The first bad row ends it with an error naming its
/// line.
pub struct SampleParser<'a, R: std::io::Read> {
    origin: &'a str,
    reader: csv::Reader<StripCr<R>>,
    vm_keys: &'a HashMap<String, i64>,
    window: ArrivalWindow,
    record: csv::StringRecord,
}

impl<'a, R: std::io::Read> SampleParser<'a, R> {
    pub fn new(
        origin: &'a str,
        input: R,
        vm_keys: &'a HashMap<String, i64>,
        window: ArrivalWindow,
    ) -> Result<Self, ImportError> {
        Ok(SampleParser {
            origin,
            reader: open_csv(origin, input, &SAMPLES_HEADER, &SAMPLES_OPTIONAL)?,
            vm_keys,
            window,
            record: csv::StringRecord::new(),
        })
    }

    /// Bytes of the input read so far (for progress).
    pub fn bytes_read(&self) -> u64 {
        self.reader.position().byte()
    }

    /// The next rows, at most `max`; empty at the end of the file.
    pub fn next_chunk(&mut self, max: usize) -> Result<Vec<SampleRow>, ImportError> {
        let mut rows = Vec::with_capacity(max.min(64 * 1024));
        while rows.len() < max {
            let more = self
                .reader
                .read_record(&mut self.record)
                .map_err(|e| ImportError::Row {
                    origin: self.origin.to_owned(),
                    line: e.position().map_or(0, |p| p.line()),
                    message: e.to_string(),
                })?;
            if !more {
                break;
            }
            let line = self.record.position().map_or(0, |p| p.line());
            rows.push(self.row(line)?);
        }
        Ok(rows)
    }

    fn row(&self, line: u64) -> Result<SampleRow, ImportError> {
        let record = &self.record;
        let row_err = |message: String| row_error(self.origin, line, message);
        let field = |i: usize| record.get(i).unwrap_or("");
        let vm = field(0);
        let vm_key = *self
            .vm_keys
            .get(vm)
            .ok_or_else(|| row_err(format!("unknown VM {vm:?} (import the inventory first)")))?;
        let ts = DateTime::parse_from_rfc3339(field(1)).map_err(|e| {
            row_err(format!(
                "ts {:?} is not an RFC 3339 time with offset: {e}",
                field(1)
            ))
        })?;
        self.window
            .check("ts", ts.with_timezone(&Utc))
            .map_err(row_err)?;
        let number = |i: usize, name: &str| -> Result<f64, ImportError> {
            field(i)
                .parse()
                .map_err(|_| row_err(format!("{name} {:?} is not a number", field(i))))
        };
        let percent = |i: usize| -> Result<Hundredths, ImportError> {
            let name = SAMPLES_HEADER[i];
            Hundredths::from_percent(name, number(i, name)?).map_err(|e| row_err(e.to_string()))
        };
        let rate = |i: usize| -> Result<Option<u64>, ImportError> {
            let name = SAMPLES_OPTIONAL[i - SAMPLES_HEADER.len()];
            if field(i).is_empty() {
                return Ok(None);
            }
            rate_bps(name, number(i, name)?)
                .map(Some)
                .map_err(|e| row_err(e.to_string()))
        };
        let disk = if field(4).is_empty() {
            None
        } else {
            Some(percent(4)?)
        };
        let inbound = match field(7) {
            "" => None,
            text => Some(
                text.parse::<u32>()
                    .ok()
                    .filter(|n| *n <= MAX_INBOUND_CONNECTIONS)
                    .ok_or_else(|| {
                        row_err(format!(
                            "inbound_connections {text:?} is not a whole number from 0 to {MAX_INBOUND_CONNECTIONS}"
                        ))
                    })?,
            ),
        };
        Ok(SampleRow {
            vm_key,
            sample: Sample {
                net_rx_bps: rate(5)?,
                net_tx_bps: rate(6)?,
                inbound_connections: inbound,
                ..Sample::usage(ts.timestamp(), percent(2)?, percent(3)?, disk)
            },
        })
    }
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
        let pct = |v| Hundredths::from_percent("test", v).expect("percentage");
        assert_eq!(
            rows,
            vec![SampleRow {
                vm_key: 7,
                sample: Sample::usage(1_758_844_800, pct(12.5), pct(40.0), None),
            }]
        );
    }

    #[test]
    fn network_rates_are_optional_columns_in_whole_bytes_per_second() {
        let text = "vm,ts,cpu_pct,mem_pct,disk_pct,net_rx_bps,net_tx_bps\n\
                    vm-1,2025-09-26T08:00:00+08:00,12.345,40,50,1250.5,0\n\
                    vm-1,2025-09-26T08:01:00+08:00,1,2,3,,\n";
        let rows = parse(text).expect("parses");
        assert_eq!(rows[0].sample.cpu.get(), 1235, "stored to 0.01");
        assert_eq!(
            (rows[0].sample.net_rx_bps, rows[0].sample.net_tx_bps),
            (Some(1251), Some(0))
        );
        assert_eq!(
            (rows[1].sample.net_rx_bps, rows[1].sample.net_tx_bps),
            (None, None)
        );
        let bad = "vm,ts,cpu_pct,mem_pct,disk_pct,net_rx_bps,net_tx_bps\n\
                   vm-1,2025-09-26T08:00:00+08:00,1,2,3,-5,0\n";
        let err = parse(bad).expect_err("negative rate").to_string();
        assert!(
            err.contains("line 2") && err.contains("net_rx_bps"),
            "{err}"
        );
        let err = parse("vm,ts,cpu_pct,mem_pct,disk_pct,net_tx_bps\n")
            .expect_err("order")
            .to_string();
        assert!(err.contains("net_rx_bps,net_tx_bps"), "{err}");
    }

    /// Hands out at most `step` bytes per read, so `\r\n` falls across reads.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn strip_cr_drops_only_the_cr_of_crlf_whatever_the_read_sizes() {
        let input = b"a\r\nb\rc\r\r\n\r\nend\r";
        for step in 1..=input.len() {
            for out_len in [1, 2, 3, 64] {
                let mut reader = StripCr::new(Trickle { data: input, step });
                let mut got = Vec::new();
                let mut buf = vec![0; out_len];
                loop {
                    let n = std::io::Read::read(&mut reader, &mut buf).expect("read");
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                assert_eq!(got, b"a\nb\rc\r\n\nend\r", "step {step}, buffer {out_len}");
            }
        }
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
                    prop_assert!(r.sample.cpu <= Hundredths::MAX && r.sample.mem <= Hundredths::MAX);
                    prop_assert!(r.sample.disk.is_none_or(|d| d <= Hundredths::MAX));
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
