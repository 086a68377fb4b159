//! The kernel's neighbour table (who this VM has talked to on its links, with their MACs), for
//! the daemon's IP-MAC binding and private-router checks of Pingdu Measures art. 14.
//!
//! - Linux: both families over rtnetlink ([`crate::netlink`], no `ip` process), keeping states
//!   REACHABLE, STALE, DELAY, PROBE and PERMANENT (the MAC was confirmed, or set by hand) and
//!   skipping FAILED, INCOMPLETE, NOARP and NONE.
//! - Where the netlink dump fails: `/proc/net/arp`, IPv4 only, complete entries (flags with
//!   `ATF_COM`, 0x2; incomplete and failed entries show 0x0), and the failure is returned for
//!   logging.
//!
//! Only 6-byte MACs that are not all zeros are kept, and no entry on `lo`. The list is sorted by
//! interface and IP, one entry per (IP, interface), and cut at [`MAX_NEIGHBOURS`] (the daemon
//! rejects longer lists).

use std::net::IpAddr;
use std::path::Path;

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

/// The entries of a netlink neighbour dump worth reporting (see the module documentation);
/// `name` gives the interface name of an index (`None`: the interface is gone, entry skipped).
#[cfg(target_os = "linux")]
pub fn from_kernel<'a>(
    entries: &[crate::netlink::KernelNeighbour],
    name: impl Fn(u32) -> Option<&'a str>,
) -> Vec<Neighbour> {
    use netlink_packet_route::neighbour::NeighbourState as S;
    entries
        .iter()
        .filter(|e| {
            matches!(
                e.state,
                S::Reachable | S::Stale | S::Delay | S::Probe | S::Permanent
            )
        })
        .filter_map(|e| {
            let mac: &[u8; 6] = e.lladdr.as_slice().try_into().ok()?;
            neighbour(e.ip, &format_mac(mac), name(e.index)?)
        })
        .collect()
}

/// `52:54:00:ab:cd:ef`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
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

/// `<root>/proc/net/arp`, for when the netlink dump fails: IPv4 only.
pub fn read_proc_arp(root: &Path) -> Result<Vec<Neighbour>, String> {
    std::fs::read_to_string(root.join("proc/net/arp"))
        .map(|text| parse_proc_arp(&text))
        .map_err(|e| format!("/proc/net/arp: {e}"))
}

/// Normalises `list` (see [`normalize`]) and returns the message to log if it was cut.
pub fn finish(list: &mut Vec<Neighbour>) -> Option<String> {
    let cut = normalize(list);
    (cut > 0).then(|| {
        format!(
            "neighbour table has {} entries; reporting the first {MAX_NEIGHBOURS}",
            cut + MAX_NEIGHBOURS
        )
    })
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

    /// `(ip, mac, interface)` of each entry, for comparing with a literal list.
    fn triples(list: &[Neighbour]) -> Vec<(String, &str, &str)> {
        list.iter()
            .map(|n| (n.ip.to_string(), n.mac.as_str(), n.interface.as_str()))
            .collect()
    }

    #[test]
    fn proc_net_arp_keeps_complete_entries() {
        let n = parse_proc_arp(ARP);
        assert_eq!(
            triples(&n),
            [
                ("192.0.2.1".into(), "02:fc:00:00:00:05", "eth0"),
                ("192.0.2.10".into(), "52:54:00:aa:bb:cc", "eth0"),
                ("10.9.0.1".into(), "52:54:00:00:00:01", "eth1"),
            ]
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn kernel_entries_keep_usable_states_and_real_macs() {
        use crate::netlink::KernelNeighbour;
        use netlink_packet_route::neighbour::NeighbourState as S;
        // This machine's neighbour dump (192.0.2.1 STALE, fd00::1 FAILED), plus more states.
        let e = |index: u32, ip: &str, mac: &[u8], state: S| KernelNeighbour {
            index,
            ip: ip.parse().expect("ip"),
            lladdr: mac.to_vec(),
            state,
        };
        let mac = |last: u8| [0x52, 0x54, 0, 0, 0, last];
        let entries = [
            e(4, "192.0.2.1", &[2, 0xfc, 0, 0, 0, 5], S::Stale),
            e(4, "fd00::1", &[], S::Failed),
            e(4, "fe80::1", &mac(1), S::Reachable),
            e(4, "fd00::3", &mac(3), S::Incomplete),
            e(4, "fd00::4", &mac(4), S::Permanent),
            e(4, "10.0.0.5", &mac(5), S::Delay),
            e(4, "10.0.0.6", &mac(6), S::Probe),
            e(4, "ff02::1", &[0x33, 0x33, 0, 0, 0, 1], S::Noarp),
            e(4, "10.0.0.7", &[0; 6], S::Permanent),
            e(4, "10.0.0.8", &[0xAB; 20], S::Reachable), // InfiniBand: not a MAC
            e(1, "::1", &mac(9), S::Permanent),
            e(99, "10.0.0.9", &mac(9), S::Reachable), // interface gone
        ];
        let name = |index: u32| match index {
            1 => Some("lo"),
            4 => Some("eth0"),
            _ => None,
        };
        let mut n = from_kernel(&entries, name);
        assert_eq!(finish(&mut n), None);
        assert_eq!(
            triples(&n),
            [
                ("10.0.0.5".into(), "52:54:00:00:00:05", "eth0"),
                ("10.0.0.6".into(), "52:54:00:00:00:06", "eth0"),
                ("192.0.2.1".into(), "02:fc:00:00:00:05", "eth0"),
                ("fd00::4".into(), "52:54:00:00:00:04", "eth0"),
                ("fe80::1".into(), "52:54:00:00:00:01", "eth0"),
            ]
        );
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
        let message = finish(&mut list).expect("cut");
        assert!(message.contains("5000 entries"), "{message}");
        assert_eq!(list.len(), MAX_NEIGHBOURS);
        assert_eq!(list[0].ip.to_string(), "10.0.0.0");
        assert!(list.windows(2).all(|w| w[0].ip < w[1].ip));
    }
}
