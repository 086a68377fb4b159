//! The rtnetlink reader against this machine's real kernel tables, cross-checked with what
//! sysfs and `/proc` show of the same tables.
#![cfg(target_os = "linux")]

use std::collections::BTreeSet;
use std::net::IpAddr;

use cloudgov_agent::neighbours;
use cloudgov_agent::netlink::{INFINITY_LIFE_TIME, KernelAddress, Link, NetlinkSocket};

fn links(nl: &mut NetlinkSocket) -> Vec<Link> {
    let mut out = Vec::new();
    nl.links(&mut out).expect("link dump");
    out
}

#[test]
fn links_match_sysfs_and_loopback_is_flagged() {
    let mut nl = NetlinkSocket::route().expect("netlink socket");
    let links = links(&mut nl);
    let lo = links.iter().find(|l| l.name == "lo").expect("lo");
    assert!(lo.loopback);
    assert_eq!(lo.mac, None);
    let (rx, tx) = lo.counters.expect("lo has counters");
    assert!(
        rx > 0 && tx > 0,
        "loopback has carried traffic ({rx}, {tx})"
    );
    assert!(links.iter().filter(|l| l.name != "lo").all(|l| !l.loopback));
    // The same names and indexes as /sys/class/net/<name>/ifindex.
    let from_netlink: BTreeSet<(String, u32)> =
        links.iter().map(|l| (l.name.clone(), l.index)).collect();
    let from_sysfs: BTreeSet<(String, u32)> = std::fs::read_dir("/sys/class/net")
        .expect("/sys/class/net")
        .map(|e| {
            let name = e.expect("entry").file_name().to_string_lossy().into_owned();
            let index = std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex"))
                .expect("ifindex")
                .trim()
                .parse()
                .expect("a number");
            (name, index)
        })
        .collect();
    assert_eq!(from_netlink, from_sysfs);
    // Each interface's MAC is sysfs' `address` (where it is a MAC).
    for l in &links {
        let sysfs =
            std::fs::read_to_string(format!("/sys/class/net/{}/address", l.name)).expect("address");
        if let Some(mac) = &l.mac {
            assert_eq!(neighbours::format_mac(mac), sysfs.trim(), "{}", l.name);
        }
    }
}

#[test]
fn loopback_addresses_are_permanent() {
    let mut nl = NetlinkSocket::route().expect("netlink socket");
    let lo = links(&mut nl)
        .into_iter()
        .find(|l| l.loopback)
        .expect("a loopback interface");
    let mut addresses = Vec::new();
    nl.addresses(&mut addresses).expect("address dump");
    let find = |ip: &str| -> Option<KernelAddress> {
        let ip: IpAddr = ip.parse().expect("ip");
        addresses
            .iter()
            .find(|a| a.ip == ip && a.index == lo.index)
            .copied()
    };
    let v4 = find("127.0.0.1").expect("127.0.0.1 on lo");
    assert_eq!(v4.prefix, 8);
    assert!(v4.permanent, "{v4:?}");
    assert_eq!(v4.valid_life_time, INFINITY_LIFE_TIME);
    assert!(!v4.router_advertised);
    // ::1 where IPv6 is on (it is listed in /proc/net/if_inet6 then).
    let if_inet6 = std::fs::read_to_string("/proc/net/if_inet6").unwrap_or_default();
    if if_inet6.contains("00000000000000000000000000000001") {
        let v6 = find("::1").expect("::1 on lo");
        assert_eq!(v6.prefix, 128);
        assert!(v6.permanent, "{v6:?}");
    }
    // Every IPv6 address of /proc/net/if_inet6 is in the dump, with the same permanent flag.
    for line in if_inet6.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [hex, index, prefix, _, flags, _] = f.as_slice() else {
            continue;
        };
        let ip = IpAddr::V6(u128::from_str_radix(hex, 16).expect("hex").into());
        let index = u32::from_str_radix(index, 16).expect("hex");
        let a = addresses
            .iter()
            .find(|a| a.ip == ip && a.index == index)
            .unwrap_or_else(|| panic!("{ip} (if {index}) missing from {addresses:?}"));
        assert_eq!(a.prefix, u8::from_str_radix(prefix, 16).expect("hex"));
        let permanent = u32::from_str_radix(flags, 16).expect("hex") & 0x80 != 0;
        assert_eq!(a.permanent, permanent, "{a:?}");
    }
}

#[test]
fn ipv4_neighbours_agree_with_proc_net_arp() {
    let mut nl = NetlinkSocket::route().expect("netlink socket");
    // The table may change between the two reads; a few tries make that unlikely to matter.
    let mut last = String::new();
    for _ in 0..5 {
        let links = links(&mut nl);
        let mut table = Vec::new();
        nl.neighbours(&mut table).expect("neighbour dump");
        let name = |index: u32| {
            links
                .iter()
                .find(|l| l.index == index && !l.loopback)
                .map(|l| l.name.as_str())
        };
        let reported: Vec<_> = neighbours::from_kernel(&table, name)
            .into_iter()
            .filter(|n| n.ip.is_ipv4())
            .collect();
        let complete = neighbours::read_proc_arp(std::path::Path::new("/")).expect("/proc/net/arp");
        // Every entry /proc/net/arp calls complete is in the dump, with its MAC and interface...
        let raw: Vec<_> = table
            .iter()
            .filter_map(|e| {
                let mac: &[u8; 6] = e.lladdr.as_slice().try_into().ok()?;
                Some((e.ip, neighbours::format_mac(mac), name(e.index)?))
            })
            .collect();
        let missing: Vec<_> = complete
            .iter()
            .filter(|n| !raw.contains(&(n.ip, n.mac.clone(), n.interface.as_str())))
            .collect();
        // ...and what the agent reports of it is among them (it also leaves NOARP entries out,
        // which /proc/net/arp shows as complete).
        let extra: Vec<_> = reported.iter().filter(|n| !complete.contains(n)).collect();
        if missing.is_empty() && extra.is_empty() {
            return;
        }
        last = format!("missing from netlink: {missing:?}; not in /proc/net/arp: {extra:?}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{last}");
}

#[test]
fn one_socket_serves_repeated_dumps() {
    let mut nl = NetlinkSocket::route().expect("netlink socket");
    let first = links(&mut nl);
    assert!(!first.is_empty());
    for _ in 0..3 {
        let mut again = links(&mut nl);
        // Counters move; names and indexes do not.
        again
            .iter_mut()
            .zip(&first)
            .for_each(|(a, f)| a.counters = f.counters);
        assert_eq!(again, first);
        let mut addresses = Vec::new();
        nl.addresses(&mut addresses).expect("address dump");
        assert!(!addresses.is_empty());
    }
}
