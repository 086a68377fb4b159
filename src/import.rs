//! CSV importers: usage samples backfilled from existing monitoring (`cloudgov import samples`).
//!
//! A file is parsed and checked whole before anything is written: the first bad row stops the
//! import with an error naming its line, and nothing from that file is stored.

use std::collections::HashMap;

use chrono::DateTime;

use crate::domain::Percent;
use crate::store::SampleRow;

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
    #[error("{origin}: {source}")]
    Csv {
        origin: String,
        #[source]
        source: csv::Error,
    },
}

/// Parses a samples CSV (`vm,ts,cpu_pct,mem_pct,disk_pct`; `ts` RFC 3339 with offset; `disk_pct`
/// may be empty). `vm_keys` maps known VM ids to their store keys.
pub fn parse_samples(
    origin: &str,
    input: impl std::io::Read,
    vm_keys: &HashMap<String, i64>,
) -> Result<Vec<SampleRow>, ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let csv_err = |source| ImportError::Csv {
        origin: origin.to_owned(),
        source,
    };
    let header = reader.headers().map_err(csv_err)?.clone();
    if header.iter().collect::<Vec<_>>() != SAMPLES_HEADER {
        return Err(ImportError::Header {
            origin: origin.to_owned(),
            expected: SAMPLES_HEADER.join(","),
            found: header.iter().collect::<Vec<_>>().join(","),
        });
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            ImportError::Row {
                origin: origin.to_owned(),
                line,
                message: e.to_string(),
            }
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let row_err = |message: String| ImportError::Row {
            origin: origin.to_owned(),
            line,
            message,
        };
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

    fn parse(text: &str) -> Result<Vec<SampleRow>, ImportError> {
        parse_samples("s.csv", text.as_bytes(), &keys())
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
    }
}
