//! Prometheus as a usage source: the node_exporter target a VM names, the one PromQL query that
//! reads a VM's usage, and its `query_range` answer turned into samples with the agent's own
//! arithmetic (CPU without idle and iowait, `MemTotal - MemAvailable`, df over the filesystems
//! the agent counts, traffic without loopback).
//!
//! Verdicts keep their exact meaning: Prometheus gives one raw point per step, and the rules
//! compute the nearest-rank p95 and the daily peaks from those points as from an agent's
//! reports; no PromQL quantile is involved. A step without CPU or memory is a gap, not zeros.
//! Architecture Invariant: no IO here; the job layer sends the query and passes the answer in.

use std::collections::BTreeMap;

use cloudgov_agent::collect::{Mount, real_filesystems};
use cloudgov_agent::wire::{Capacity, Filesystem};
use serde::Deserialize;

use crate::core::samples::{Hundredths, Sample, rate_bps};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PromError {
    #[error("{what} {text:?}: {reason}")]
    Selector {
        what: &'static str,
        text: String,
        reason: String,
    },
    #[error("Prometheus answered with an error ({kind}): {message}")]
    Answer { kind: String, message: String },
    #[error("Prometheus's answer is not a range query result: {0}")]
    Shape(String),
}

/// The longest instance or selector text a VM may carry.
const MAX_SELECTOR_BYTES: usize = 1024;

/// A label selector naming one VM's node_exporter series, e.g. `{job="node",instance="a:9100"}`.
/// Built only by [`Selector::instance`] or [`Selector::parse`], so the text spliced into PromQL
/// is always a well-formed list of matchers (no injection through the inventory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    matchers: Vec<Matcher>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Matcher {
    name: String,
    op: &'static str,
    value: String,
}

impl Selector {
    /// The selector of a node_exporter target: `{instance="HOST:PORT"}`.
    pub fn instance(host_port: &str) -> Result<Selector, PromError> {
        let bad = |reason: &str| PromError::Selector {
            what: "prometheus_instance",
            text: host_port.to_owned(),
            reason: reason.to_owned(),
        };
        if host_port.is_empty() || host_port.len() > MAX_SELECTOR_BYTES {
            return Err(bad("must be HOST:PORT, 1 to 1024 characters"));
        }
        if host_port
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(bad("contains spaces or control characters"));
        }
        match host_port.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {}
            _ => {
                return Err(bad(
                    "must be HOST:PORT, as in the target's `instance` label",
                ));
            }
        }
        Ok(Selector {
            matchers: vec![Matcher {
                name: "instance".into(),
                op: "=",
                value: host_port.to_owned(),
            }],
        })
    }

    /// Parses a PromQL label selector: `{name OP "value", ...}` with OP one of `=`, `!=`,
    /// `=~`, `!~` and values in double or single quotes. At least one matcher.
    pub fn parse(text: &str) -> Result<Selector, PromError> {
        let bad = |reason: String| PromError::Selector {
            what: "prometheus_selector",
            text: text.to_owned(),
            reason,
        };
        if text.len() > MAX_SELECTOR_BYTES {
            return Err(bad("is longer than 1024 bytes".into()));
        }
        let inner = text
            .trim()
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .ok_or_else(|| bad("must be a label selector in braces, e.g. {job=\"node\"}".into()))?;
        let mut rest = inner.trim_start();
        let mut matchers = Vec::new();
        while !rest.is_empty() {
            let name_len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let name = &rest[..name_len];
            if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
                return Err(bad(format!("expected a label name at {rest:?}")));
            }
            rest = rest[name_len..].trim_start();
            let op = ["=~", "!~", "!=", "="]
                .into_iter()
                .find(|op| rest.starts_with(op))
                .ok_or_else(|| bad(format!("expected =, !=, =~ or !~ after {name}")))?;
            rest = rest[op.len()..].trim_start();
            let (value, after) =
                quoted(rest).ok_or_else(|| bad(format!("the value of {name} is not quoted")))?;
            if value.chars().any(char::is_control) {
                return Err(bad(format!("the value of {name} has control characters")));
            }
            matchers.push(Matcher {
                name: name.to_owned(),
                op,
                value,
            });
            rest = after.trim_start();
            match rest.strip_prefix(',') {
                Some(after_comma) => rest = after_comma.trim_start(),
                None if rest.is_empty() => {}
                None => return Err(bad(format!("expected , or }} at {rest:?}"))),
            }
        }
        if matchers.is_empty() {
            return Err(bad("names no label: it would select every node".into()));
        }
        Ok(Selector { matchers })
    }

    /// The matchers without braces, values re-quoted, plus `extra` (PromQL text) if not empty.
    fn inner_with(&self, extra: &str) -> String {
        let mut parts: Vec<String> = self
            .matchers
            .iter()
            .map(|m| {
                let value = m.value.replace('\\', "\\\\").replace('"', "\\\"");
                format!("{}{}\"{value}\"", m.name, m.op)
            })
            .collect();
        if !extra.is_empty() {
            parts.push(extra.to_owned());
        }
        parts.join(",")
    }
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{{{}}}", self.inner_with(""))
    }
}

/// A quoted PromQL string at the start of `text`: its value and the text after it.
fn quoted(text: &str) -> Option<(String, &str)> {
    let quote = text.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let mut value = String::new();
    let mut chars = text[1..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                let (_, escaped) = chars.next()?;
                // PromQL's (Go's) escapes; a regex's `\.` is written `\\.`.
                value.push(match escaped {
                    'n' => '\n',
                    't' => '\t',
                    '\\' | '"' | '\'' => escaped,
                    _ => return None,
                });
            }
            c if c == quote => return Some((value, &text[1 + i + 1..])),
            c => value.push(c),
        }
    }
    None
}

/// The part of a VM's usage each series of the query's answer carries (its `cloudgov` label).
const PART_LABEL: &str = "cloudgov";

/// The one query that reads a VM's usage: every part labelled `cloudgov=PART` and joined with
/// `or`, so one `query_range` answers all of them. Rates are averaged over `rate_window_secs`.
pub fn usage_query(selector: &Selector, rate_window_secs: u32) -> String {
    query_by(selector, rate_window_secs, "")
}

/// The same for many node_exporter targets at once: one query names up to a batch of
/// instances, and each part is kept per `instance` ([`split_by_instance`] parts the answer), so
/// a province's fleet needs a query per batch rather than per VM.
pub fn usage_query_for_instances(instances: &[&str], rate_window_secs: u32) -> String {
    let alternatives: Vec<String> = instances.iter().map(|i| regex_escape(i)).collect();
    let selector = Selector {
        matchers: vec![Matcher {
            name: "instance".into(),
            op: "=~",
            value: alternatives.join("|"),
        }],
    };
    query_by(&selector, rate_window_secs, " by (instance)")
}

/// A literal as an RE2 pattern (PromQL regexes are anchored at both ends).
fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn query_by(selector: &Selector, rate_window_secs: u32, by: &str) -> String {
    let s = |extra: &str| format!("{{{}}}", selector.inner_with(extra));
    let w = format!("[{rate_window_secs}s]");
    let part = |name: &str, expr: String| {
        format!("label_replace({expr}, \"{PART_LABEL}\", \"{name}\", \"\", \"\")")
    };
    [
        // sysinfo (the agent) counts idle and iowait as idle; so does this.
        part(
            "cpu",
            format!(
                "100 * sum{by}(rate(node_cpu_seconds_total{}{w})) / sum{by}(rate(node_cpu_seconds_total{}{w}))",
                s("mode!~\"idle|iowait\""),
                s("")
            ),
        ),
        part(
            "mem",
            format!(
                "100 * (1 - sum{by}(node_memory_MemAvailable_bytes{}) / sum{by}(node_memory_MemTotal_bytes{}))",
                s(""),
                s("")
            ),
        ),
        part(
            "rx",
            format!(
                "sum{by}(rate(node_network_receive_bytes_total{}{w}))",
                s("device!=\"lo\"")
            ),
        ),
        part(
            "tx",
            format!(
                "sum{by}(rate(node_network_transmit_bytes_total{}{w}))",
                s("device!=\"lo\"")
            ),
        ),
        part(
            "vcpus",
            format!("count{by}(node_cpu_seconds_total{})", s("mode=\"idle\"")),
        ),
        part(
            "mem_total",
            format!("sum{by}(node_memory_MemTotal_bytes{})", s("")),
        ),
        // Filesystems one by one: the agent's own rule picks the real ones (see `samples`).
        part("fs_size", format!("node_filesystem_size_bytes{}", s(""))),
        part("fs_free", format!("node_filesystem_free_bytes{}", s(""))),
        part("fs_avail", format!("node_filesystem_avail_bytes{}", s(""))),
    ]
    .join(" or ")
}

/// The series of a batched answer by their `instance` label.
pub fn split_by_instance(series: Vec<Series>) -> BTreeMap<String, Vec<Series>> {
    let mut out: BTreeMap<String, Vec<Series>> = BTreeMap::new();
    for s in series {
        let instance = s.metric.get("instance").cloned().unwrap_or_default();
        out.entry(instance).or_default().push(s);
    }
    out
}

/// One series of a `query_range` answer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Series {
    metric: BTreeMap<String, String>,
    values: Vec<(f64, String)>,
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<AnswerData>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct AnswerData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<Series>,
}

/// Reads the body of a `query_range` answer (also an error answer, which Prometheus sends with
/// status 400 or 422).
pub fn parse_answer(body: &[u8]) -> Result<Vec<Series>, PromError> {
    let answer: Answer =
        serde_json::from_slice(body).map_err(|e| PromError::Shape(e.to_string()))?;
    if answer.status != "success" {
        return Err(PromError::Answer {
            kind: answer.error_type.unwrap_or_else(|| answer.status.clone()),
            message: answer.error.unwrap_or_default(),
        });
    }
    let data = answer
        .data
        .ok_or_else(|| PromError::Shape("no data".into()))?;
    if data.result_type != "matrix" {
        return Err(PromError::Shape(format!(
            "resultType is {}, not matrix",
            data.result_type
        )));
    }
    Ok(data.result)
}

/// What one VM's answer holds, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pulled {
    /// One sample per step with both CPU and memory, oldest first.
    pub samples: Vec<Sample>,
    /// The allocation at the newest step that shows it (vCPUs, memory, real filesystems).
    pub capacity: Option<Capacity>,
    /// The real filesystems at that step, as an agent reports them.
    pub filesystems: Vec<Filesystem>,
    /// Steps of the range without CPU or memory: gaps, stored as nothing.
    pub gaps: usize,
}

/// The figures of one step.
#[derive(Default)]
struct Step {
    cpu: Option<f64>,
    mem: Option<f64>,
    rx: Option<f64>,
    tx: Option<f64>,
    vcpus: Option<f64>,
    mem_total: Option<f64>,
    /// (device, mount point, type) -> (size, free, avail) bytes.
    filesystems: BTreeMap<(String, String, String), [Option<f64>; 3]>,
}

impl Step {
    /// The real filesystems of this step with df's figures: used = size - free, usable total =
    /// used + avail (root's reserved blocks left out), as the agent reads `statvfs`.
    fn real_filesystems(&self) -> Vec<Filesystem> {
        let mounts = self.filesystems.iter().filter_map(|((dev, mnt, ty), f)| {
            let [size, free, avail] = [f[0]?, f[1]?, f[2]?].map(|v| v.max(0.0) as u64);
            let used = size.saturating_sub(free);
            Some(Mount {
                device: dev.clone(),
                mount_point: mnt.clone(),
                fs_type: ty.clone(),
                total_bytes: used + avail,
                used_bytes: used,
            })
        });
        real_filesystems(mounts)
    }
}

/// Turns the answer for `start..=end` at `step` seconds into samples: a step becomes a sample
/// when it has CPU and memory (disk and traffic when present); percentages are clamped to
/// 0..=100 as the agent clamps its own (float rounding), and NaN is no value.
pub fn samples_from(
    series: &[Series],
    start: i64,
    end: i64,
    step: i64,
) -> Result<Pulled, PromError> {
    let mut steps: BTreeMap<i64, Step> = BTreeMap::new();
    for s in series {
        let part = s.metric.get(PART_LABEL).map(String::as_str).unwrap_or("");
        for (ts, value) in &s.values {
            let Ok(value) = value.parse::<f64>() else {
                return Err(PromError::Shape(format!("value {value:?} is not a number")));
            };
            if !value.is_finite() {
                continue;
            }
            let step = steps.entry(ts.round() as i64).or_default();
            let label = |name: &str| s.metric.get(name).cloned().unwrap_or_default();
            let fs_field = |i: usize, step: &mut Step| {
                let key = (label("device"), label("mountpoint"), label("fstype"));
                step.filesystems.entry(key).or_insert([None; 3])[i] = Some(value);
            };
            match part {
                "cpu" => step.cpu = Some(value),
                "mem" => step.mem = Some(value),
                "rx" => step.rx = Some(value),
                "tx" => step.tx = Some(value),
                "vcpus" => step.vcpus = Some(value),
                "mem_total" => step.mem_total = Some(value),
                "fs_size" => fs_field(0, step),
                "fs_free" => fs_field(1, step),
                "fs_avail" => fs_field(2, step),
                other => {
                    return Err(PromError::Shape(format!(
                        "a series without a known {PART_LABEL} label ({other:?})"
                    )));
                }
            }
        }
    }
    let pct = |what: &'static str, v: f64| {
        Hundredths::from_percent(what, v.clamp(0.0, 100.0))
            .map_err(|e| PromError::Shape(e.to_string()))
    };
    let rate = |what: &'static str, v: Option<f64>| {
        v.map(|v| rate_bps(what, v.max(0.0)))
            .transpose()
            .map_err(|e| PromError::Shape(e.to_string()))
    };
    let mut pulled = Pulled::default();
    for (&ts, step) in &steps {
        let (Some(cpu), Some(mem)) = (step.cpu, step.mem) else {
            continue;
        };
        let filesystems = step.real_filesystems();
        let total: u128 = filesystems.iter().map(|f| u128::from(f.total_bytes)).sum();
        let used: u128 = filesystems.iter().map(|f| u128::from(f.used_bytes)).sum();
        let disk = (total > 0)
            .then(|| pct("disk", used as f64 * 100.0 / total as f64))
            .transpose()?;
        pulled.samples.push(Sample {
            ts,
            cpu: pct("cpu", cpu)?,
            mem: pct("memory", mem)?,
            disk,
            net_rx_bps: rate("net_rx_bps", step.rx)?,
            net_tx_bps: rate("net_tx_bps", step.tx)?,
            inbound_connections: None,
        });
        if let (Some(vcpus), Some(mem_total)) = (step.vcpus, step.mem_total) {
            pulled.capacity = Some(Capacity {
                vcpus: vcpus.round().clamp(1.0, f64::from(u32::MAX)) as u32,
                memory_bytes: mem_total.max(0.0) as u64,
                disk_bytes: u64::try_from(total).unwrap_or(u64::MAX),
            });
            pulled.filesystems = filesystems;
        }
    }
    let expected = if end >= start && step > 0 {
        usize::try_from((end - start) / step + 1).unwrap_or(usize::MAX)
    } else {
        0
    };
    pulled.gaps = expected.saturating_sub(pulled.samples.len());
    Ok(pulled)
}

/// The largest range one `query_range` may cover at `step` (Prometheus refuses more than 11,000
/// points per series); longer pulls are split into such pieces.
pub const MAX_POINTS_PER_QUERY: i64 = 10_000;

/// Splits `start..=end` (aligned to `step`) into pieces of at most [`MAX_POINTS_PER_QUERY`]
/// points each.
pub fn pieces(start: i64, end: i64, step: i64) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let span = step * (MAX_POINTS_PER_QUERY - 1);
    let mut from = start;
    while step > 0 && from <= end {
        let to = (from + span).min(end);
        out.push((from, to));
        from = to + step;
    }
    out
}

/// `t` rounded up to a multiple of `step`: a pull's points fall on the same instants whatever
/// its start, so a repeated pull writes the same samples again (and they are kept once).
pub fn align_up(t: i64, step: i64) -> i64 {
    if step <= 0 {
        return t;
    }
    t.div_euclid(step) * step + if t.rem_euclid(step) == 0 { 0 } else { step }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_parse_once_and_refuse_injection() {
        let s = Selector::parse(r#"{job="node", instance=~'10\\.0\\..*'}"#).expect("parses");
        assert_eq!(s.matchers[1].value, r"10\.0\..*");
        assert_eq!(s.to_string(), r#"{job="node",instance=~"10\\.0\\..*"}"#);
        assert_eq!(Selector::parse(&s.to_string()).expect("reparses"), s);
        assert_eq!(
            Selector::instance("10.0.0.5:9100").expect("ok").to_string(),
            r#"{instance="10.0.0.5:9100"}"#
        );
        assert!(Selector::instance("[::1]:9100").is_ok());
        for bad in [
            "{}",
            "job=\"node\"",
            "{job=node}",
            "{job=\"node\"} or vector(1)",
            "{job=\"node\" instance=\"a\"}",
            "{1a=\"x\"}",
            "{job==\"x\"}",
            r#"{instance=~"10\.0"}"#,
        ] {
            let err = Selector::parse(bad).expect_err(bad).to_string();
            assert!(err.contains("prometheus_selector"), "{bad}: {err}");
        }
        for bad in ["", "host", "host:port", "a b:9100", ":9100"] {
            assert!(Selector::instance(bad).is_err(), "{bad}");
        }
        // A quote in a value stays inside the value.
        let s = Selector::parse(r#"{instance="a\"}) or vector(1) #"}"#).expect("parses");
        assert_eq!(s.matchers[0].value, "a\"}) or vector(1) #");
        assert!(usage_query(&s, 60).contains(r#"instance="a\"}) or vector(1) #""#));
    }

    fn series(part: &str, labels: &[(&str, &str)], values: &[(i64, &str)]) -> Series {
        let mut metric: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        metric.insert(PART_LABEL.into(), part.into());
        Series {
            metric,
            values: values
                .iter()
                .map(|(t, v)| (*t as f64, (*v).to_owned()))
                .collect(),
        }
    }

    fn fs(part: &str, dev: &str, mnt: &str, ty: &str, v: &str) -> Series {
        series(
            part,
            &[("device", dev), ("mountpoint", mnt), ("fstype", ty)],
            &[(60, v), (120, v)],
        )
    }

    #[test]
    fn an_answer_becomes_samples_with_the_agents_arithmetic() {
        let answer = vec![
            series(
                "cpu",
                &[],
                &[(60, "12.345"), (120, "100.0000001"), (180, "5")],
            ),
            series("mem", &[], &[(60, "40"), (120, "-0.0000001")]),
            series("rx", &[], &[(60, "1000.4"), (120, "NaN")]),
            series("tx", &[], &[(60, "10")]),
            series("vcpus", &[], &[(60, "4"), (120, "4")]),
            series("mem_total", &[], &[(60, "8589934592"), (120, "8589934592")]),
            // ext4 at / with 5 % reserved: size 100, free 40, avail 35 -> used 60 of 95.
            fs("fs_size", "/dev/vda1", "/", "ext4", "100"),
            fs("fs_free", "/dev/vda1", "/", "ext4", "40"),
            fs("fs_avail", "/dev/vda1", "/", "ext4", "35"),
            // The same device again (a bind mount) and a tmpfs: not counted.
            fs("fs_size", "/dev/vda1", "/var/lib/x", "ext4", "100"),
            fs("fs_free", "/dev/vda1", "/var/lib/x", "ext4", "40"),
            fs("fs_avail", "/dev/vda1", "/var/lib/x", "ext4", "35"),
            fs("fs_size", "tmpfs", "/run", "tmpfs", "50"),
            fs("fs_free", "tmpfs", "/run", "tmpfs", "0"),
            fs("fs_avail", "tmpfs", "/run", "tmpfs", "0"),
        ];
        let pulled = samples_from(&answer, 60, 240, 60).expect("samples");
        // 180 has CPU without memory and 240 nothing: two gaps, not zeros.
        assert_eq!(pulled.samples.len(), 2);
        assert_eq!(pulled.gaps, 2);
        let first = pulled.samples[0];
        assert_eq!(
            (first.ts, first.cpu.get(), first.mem.get()),
            (60, 1235, 4000)
        );
        assert_eq!(first.disk.map(Hundredths::get), Some(6316)); // 60 / 95
        assert_eq!((first.net_rx_bps, first.net_tx_bps), (Some(1000), Some(10)));
        let second = pulled.samples[1];
        assert_eq!((second.cpu.get(), second.mem.get()), (10_000, 0));
        assert_eq!((second.net_rx_bps, second.net_tx_bps), (None, None));
        let capacity = pulled.capacity.expect("capacity");
        assert_eq!(
            (capacity.vcpus, capacity.memory_bytes, capacity.disk_bytes),
            (4, 8_589_934_592, 95)
        );
        assert_eq!(pulled.filesystems.len(), 1);
        assert_eq!(pulled.filesystems[0].mount_point, "/");
    }

    #[test]
    fn answers_are_read_strictly() {
        let ok = br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"cloudgov":"cpu"},"values":[[1700000000,"1.5"]]}]}}"#;
        assert_eq!(parse_answer(ok).expect("parses").len(), 1);
        let err = br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        assert_eq!(
            parse_answer(err).expect_err("error").to_string(),
            "Prometheus answered with an error (bad_data): parse error"
        );
        let vector = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert!(parse_answer(vector).is_err());
        let unknown = vec![series("load", &[], &[(60, "1")])];
        assert!(samples_from(&unknown, 60, 60, 60).is_err());
    }

    #[test]
    fn a_batch_of_instances_is_one_query_kept_per_instance() {
        let q = usage_query_for_instances(&["10.0.0.5:9100", "web(1)"], 120);
        assert!(
            q.contains(r#"instance=~"10\\.0\\.0\\.5:9100|web\\(1\\)""#),
            "{q}"
        );
        assert!(
            q.contains("sum by (instance)(rate(node_cpu_seconds_total"),
            "{q}"
        );
        assert!(!usage_query(&Selector::instance("a:1").expect("ok"), 60).contains(" by "));
        let mut a = series("cpu", &[("instance", "a:1")], &[(60, "1")]);
        let b = series("cpu", &[("instance", "b:1")], &[(60, "2")]);
        a.metric.insert("x".into(), "y".into());
        let split = split_by_instance(vec![a, b]);
        assert_eq!(split.len(), 2);
        assert_eq!(split["b:1"][0].values[0].1, "2");
    }

    #[test]
    fn long_ranges_split_into_pieces_on_the_step_grid() {
        assert_eq!(align_up(61, 60), 120);
        assert_eq!(align_up(120, 60), 120);
        assert_eq!(align_up(-1, 60), 0);
        let p = pieces(0, 60 * 25_000, 60);
        assert_eq!(p.len(), 3);
        assert_eq!(p[0], (0, 60 * 9_999));
        assert_eq!(p[1].0, 60 * 10_000);
        assert_eq!(p[2].1, 60 * 25_000);
        let covered: i64 = p.iter().map(|(a, b)| (b - a) / 60 + 1).sum();
        assert_eq!(covered, 25_001);
        assert!(pieces(10, 0, 60).is_empty());
    }
}
