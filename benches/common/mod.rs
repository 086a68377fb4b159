//! What several benchmarks share: repeatable noise for generated fleets, and the process's
//! resident set from /proc. Each benchmark uses what it needs.
#![allow(dead_code)]

/// A deterministic fraction in [0, 1) from two numbers (SplitMix64), so runs are repeatable.
pub fn noise(a: u64, b: u64) -> f64 {
    let mut z = a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_add(0x632B_E59B_D9B4_E019);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// A `kB` field of /proc/self/status (e.g. VmHWM, the peak resident set) in MiB; None off Linux.
pub fn proc_status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?;
    let kib: f64 = line.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib / 1024.0)
}

/// Resets the process's peak RSS (VmHWM) to its current RSS (Linux 4.0+); false if refused.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

pub fn show_mib(mib: Option<f64>) -> String {
    mib.map_or_else(|| "unknown".into(), |m| format!("{m:.0} MiB"))
}
