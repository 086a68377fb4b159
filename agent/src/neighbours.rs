//! The kernel's neighbour table (who this VM has talked to on its links, with their MACs), for
//! the daemon's IP-MAC binding and private-router checks of Pingdu Measures art. 14.
//!
//! - IPv4: `/proc/net/arp`, complete entries only (flags with `ATF_COM`, 0x2; incomplete and
//!   failed entries show 0x0) with a MAC that is not all zeros.
//! - IPv6: the kernel shows its NDP table only over netlink, which needs either `unsafe` code
//!   or a netlink crate; the agent asks iproute2 instead: `ip -j -6 neigh show` (see
//!   [`crate::iproute`]), keeping states REACHABLE, STALE, DELAY, PROBE and PERMANENT and
//!   skipping FAILED, INCOMPLETE, NOARP and NONE. Where `ip` is missing or fails, the report
//!   has IPv4 neighbours only, and the failure is returned for logging.
//!
//! Entries on `lo` are left out. The list is sorted by interface and IP, one entry per (IP,
//! interface), and cut at [`MAX_NEIGHBOURS`] (the daemon rejects longer lists).

use std::net::IpAddr;
use std::path::Path;

use serde::Deserialize;

use crate::iproute;
use crate::wire::Neighbour;

/// The daemon's limit for `Report.neighbours`.
pub const MAX_NEIGHBOURS: usize = 4096;

/// `ATF_COM`: the entry is complete (has a MAC).
const ATF_COM: u32 = 0x2;

/// Parses `/proc/net/arp`; see the module documentation for what is kept.
pub fn parse_proc_arp(text: &str) -> Vec<Neighbour> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        // IP address, HW type, Flags, HW address, Mask, Device
        let f: Vec<&str> = line.split_whitespace().collect();
        let [ip, _, flags, mac, _, device] = f.as_slice() else {
            continue;
        };
        let Ok(ip) = ip.parse::<IpAddr>() else {
            continue;
        };
        let Ok(flags) = u32::from_str_radix(flags.trim_start_matches("0x"), 16) else {
            continue;
        };
        if flags & ATF_COM == 0 {
            continue;
        }
        if let Some(n) = neighbour(ip, mac, device) {
            out.push(n);
        }
    }
    out
}

#[derive(Deserialize)]
struct IpNeigh {
    dst: String,
    dev: Option<String>,
    lladdr: Option<String>,
    #[serde(default)]
    state: Vec<String>,
}

/// States whose MAC the kernel has confirmed, or that were set by hand.
const USABLE_STATES: [&str; 5] = ["REACHABLE", "STALE", "DELAY", "PROBE", "PERMANENT"];

/// Parses `ip -j neigh show` (either family).
pub fn parse_ip_neigh_json(text: &str) -> Result<Vec<Neighbour>, String> {
    let entries: Vec<IpNeigh> =
        serde_json::from_str(text).map_err(|e| format!("ip -j neigh: {e}"))?;
    Ok(entries
        .into_iter()
        .filter(|e| e.state.iter().any(|s| USABLE_STATES.contains(&s.as_str())))
        .filter_map(|e| {
            let ip = e.dst.parse().ok()?;
            neighbour(ip, e.lladdr.as_deref()?, e.dev.as_deref()?)
        })
        .collect())
}

fn neighbour(ip: IpAddr, mac: &str, device: &str) -> Option<Neighbour> {
    let mac = mac.to_ascii_lowercase();
    let valid = mac.len() == 17
        && mac
            .split(':')
            .all(|b| b.len() == 2 && b.chars().all(|c| c.is_ascii_hexdigit()));
    if !valid || mac == "00:00:00:00:00:00" || device == "lo" || device.is_empty() {
        return None;
    }
    Some(Neighbour {
        ip,
        mac,
        interface: device.to_owned(),
    })
}

/// Sorts, removes duplicate (IP, interface) pairs and cuts at [`MAX_NEIGHBOURS`]; returns how
/// many were cut.
pub fn normalize(list: &mut Vec<Neighbour>) -> usize {
    list.sort_by(|a, b| (&a.interface, a.ip).cmp(&(&b.interface, b.ip)));
    list.dedup_by(|a, b| a.ip == b.ip && a.interface == b.interface);
    let cut = list.len().saturating_sub(MAX_NEIGHBOURS);
    list.truncate(MAX_NEIGHBOURS);
    cut
}

/// The neighbour table below `root` (`/proc/net/arp`) plus IPv6 from `ip` if given. Never
/// fails; what went wrong is returned as messages for the caller to log.
pub fn read(root: &Path, ip: Option<&Path>) -> (Vec<Neighbour>, Vec<String>) {
    let mut problems = Vec::new();
    let mut list = match std::fs::read_to_string(root.join("proc/net/arp")) {
        Ok(text) => parse_proc_arp(&text),
        Err(e) => {
            problems.push(format!("/proc/net/arp: {e}"));
            Vec::new()
        }
    };
    if let Some(ip) = ip {
        match iproute::run(ip, &["-j", "-6", "neigh", "show"], iproute::IP_TIMEOUT)
            .and_then(|out| parse_ip_neigh_json(&out))
        {
            Ok(v6) => list.extend(v6),
            Err(e) => problems.push(format!("IPv6 neighbours: {e}")),
        }
    }
    let cut = normalize(&mut list);
    if cut > 0 {
        problems.push(format!(
            "neighbour table has {} entries; reporting the first {MAX_NEIGHBOURS}",
            cut + MAX_NEIGHBOURS
        ));
    }
    (list, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine's `/proc/net/arp`, plus incomplete, zero-MAC and loopback entries.
    const ARP: &str = "\
IP address       HW type     Flags       HW address            Mask     Device
192.0.2.1        0x1         0x2         02:fc:00:00:00:05     *        eth0
192.0.2.9        0x1         0x0         00:00:00:00:00:00     *        eth0
192.0.2.10       0x1         0x6         52:54:00:AA:BB:CC     *        eth0
192.0.2.11       0x1         0x2         00:00:00:00:00:00     *        eth0
10.9.0.1         0x1         0x2         52:54:00:00:00:01     *        eth1
garbage line
";

    #[test]
    fn proc_net_arp_keeps_complete_entries() {
        let n = parse_proc_arp(ARP);
        let got: Vec<(String, &str, &str)> = n
            .iter()
            .map(|n| (n.ip.to_string(), n.mac.as_str(), n.interface.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("192.0.2.1".into(), "02:fc:00:00:00:05", "eth0"),
                ("192.0.2.10".into(), "52:54:00:aa:bb:cc", "eth0"),
                ("10.9.0.1".into(), "52:54:00:00:00:01", "eth1"),
            ]
        );
    }

    #[test]
    fn ip_neigh_json_keeps_usable_states() {
        // This machine's `ip -j neigh show`, plus more states.
        let json = r#"[
            {"dst":"192.0.2.1","dev":"eth0","lladdr":"02:fc:00:00:00:05","state":["STALE"]},
            {"dst":"fd00::1","dev":"eth0","state":["FAILED"]},
            {"dst":"fe80::1","dev":"eth0","lladdr":"52:54:00:00:00:01","router":null,"state":["REACHABLE"]},
            {"dst":"fd00::3","dev":"eth0","lladdr":"52:54:00:00:00:03","state":["INCOMPLETE"]},
            {"dst":"fd00::4","dev":"eth0","lladdr":"52:54:00:00:00:04","state":["PERMANENT"]},
            {"dst":"ff02::1","dev":"eth0","lladdr":"33:33:00:00:00:01","state":["NOARP"]},
            {"dst":"::1","dev":"lo","lladdr":"00:00:00:00:00:00","state":["PERMANENT"]}
        ]"#;
        let mut n = parse_ip_neigh_json(json).expect("parses");
        normalize(&mut n);
        let ips: Vec<String> = n.iter().map(|n| n.ip.to_string()).collect();
        assert_eq!(ips, ["192.0.2.1", "fd00::4", "fe80::1"]);
        assert!(parse_ip_neigh_json("not json").is_err());
    }

    #[test]
    fn normalize_dedupes_sorts_and_caps() {
        let mut list: Vec<Neighbour> = (0..5000u32)
            .rev()
            .map(|i| Neighbour {
                ip: IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i)),
                mac: "52:54:00:00:00:01".into(),
                interface: "eth0".into(),
            })
            .collect();
        list.push(list[0].clone());
        assert_eq!(normalize(&mut list), 5000 - MAX_NEIGHBOURS);
        assert_eq!(list.len(), MAX_NEIGHBOURS);
        assert_eq!(list[0].ip.to_string(), "10.0.0.0");
        assert!(list.windows(2).all(|w| w[0].ip < w[1].ip));
    }
}
