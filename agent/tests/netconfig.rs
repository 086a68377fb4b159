//! Static/DHCP classification against fixture root trees (tests/fixtures/netconfig/<case>/),
//! one per configuration format, laid out as they are on a machine.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cloudgov_agent::netconfig::{Classifier, KernelAddr, KernelView, NetConfig};
use cloudgov_agent::wire::{Address, AddressConfig, Interface};

use AddressConfig::{Dhcp, Static, Unknown};

fn root(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/netconfig")
        .join(case)
}

/// An interface as the collector builds it: every address still `unknown`.
fn iface(name: &str, mac: Option<&str>, addresses: &[&str]) -> Interface {
    Interface {
        name: name.into(),
        mac: mac.map(str::to_owned),
        addresses: addresses
            .iter()
            .map(|a| {
                let (ip, prefix) = a.split_once('/').expect("ADDR/PREFIX");
                Address {
                    ip: ip.parse().expect("ip"),
                    prefix: prefix.parse().expect("prefix"),
                    config: Unknown,
                    config_source: None,
                }
            })
            .collect(),
    }
}

/// The kernel's view for a fixture: the addresses it holds as dynamic (not `IFA_F_PERMANENT`),
/// as the collector reads them over netlink on a machine.
fn kernel(case: &str) -> KernelView {
    let dynamic: &[(&str, &str)] = match case {
        "networkd" => &[("ens3", "2001:db8:33::33"), ("ens3", "2001:db8:33::1:33")],
        "netplan" => &[("eth0", "2001:db8:50::50")],
        "ifupdown" => &[("eth2", "2001:db8:42::42")],
        _ => &[],
    };
    let mut view = KernelView::default();
    for (iface, ip) in dynamic {
        view.insert(iface, ip.parse().expect("ip"), KernelAddr::dynamic());
    }
    view
}

/// Classifies with the fixture tree as root and the fixture's kernel view.
fn classify(case: &str, mut interfaces: Vec<Interface>) -> Vec<Interface> {
    Classifier::new(root(case)).classify(&kernel(case), &mut interfaces);
    interfaces
}

/// `(config, config_source)` of one address.
fn verdict(interfaces: &[Interface], name: &str, ip: &str) -> (AddressConfig, Option<String>) {
    let ip: IpAddr = ip.parse().expect("ip");
    let a = interfaces
        .iter()
        .find(|i| i.name == name)
        .and_then(|i| i.addresses.iter().find(|a| a.ip == ip))
        .unwrap_or_else(|| panic!("{name} has no {ip}"));
    (a.config, a.config_source.clone())
}

fn is(config: AddressConfig, source: &str) -> (AddressConfig, Option<String>) {
    (config, Some(source.to_owned()))
}

#[test]
fn systemd_networkd_static_glob_masked_and_ipv6() {
    let r = classify(
        "networkd",
        vec![
            iface(
                "eth0",
                None,
                &[
                    "192.0.2.10/24",
                    "192.0.2.11/24",
                    "2001:db8:10::10/64",
                    "fe80::10/64",
                ],
            ),
            iface(
                "ens3",
                None,
                &[
                    "198.51.100.33/24",
                    "2001:db8:33::33/64",
                    "2001:db8:33::1:33/128",
                ],
            ),
            iface("ens4", None, &["203.0.113.4/24"]),
            iface("wlan0", None, &["10.99.0.1/24"]),
        ],
    );
    let eth0 = "systemd-networkd:/etc/systemd/network/10-eth0.network";
    let wired = "systemd-networkd:/etc/systemd/network/20-wired.network";
    assert_eq!(verdict(&r, "eth0", "192.0.2.10"), is(Static, eth0));
    assert_eq!(
        verdict(&r, "eth0", "192.0.2.11"),
        is(Static, eth0),
        "[Address] section"
    );
    assert_eq!(verdict(&r, "eth0", "2001:db8:10::10"), is(Static, eth0));
    assert_eq!(
        verdict(&r, "eth0", "fe80::10"),
        is(Unknown, "kernel:link-local")
    );
    // `Name=en*`, DHCP=yes; the /usr/lib file of the same name (a static address) is hidden.
    assert_eq!(verdict(&r, "ens3", "198.51.100.33"), is(Dhcp, wired));
    // DHCP=yes covers DHCPv6 (/128); the /64 with a finite lifetime is SLAAC.
    assert_eq!(verdict(&r, "ens3", "2001:db8:33::1:33"), is(Dhcp, wired));
    assert_eq!(
        verdict(&r, "ens3", "2001:db8:33::33"),
        is(Unknown, "kernel:slaac")
    );
    // 05-ens4.network is masked in /etc, so the glob file applies.
    assert_eq!(verdict(&r, "ens4", "203.0.113.4"), is(Dhcp, wired));
    // The vendor file without Name= matches nothing, although it lists this very address.
    assert_eq!(verdict(&r, "wlan0", "10.99.0.1"), (Unknown, None));
    assert!(NetConfig::read(&root("networkd")).problems.is_empty());
}

#[test]
fn runtime_state_decides_which_file_manages_the_interface() {
    let r = classify(
        "runtime",
        vec![
            iface("eth0", None, &["192.0.2.20/24"]),
            iface("eth1", None, &["192.0.2.21/24"]),
            iface("eth2", None, &["192.0.2.22/24"]),
        ],
    );
    // ifupdown's file says DHCP and comes first without runtime state, but networkd applied
    // 50-eth0.network.
    assert_eq!(
        verdict(&r, "eth0", "192.0.2.20"),
        is(
            Static,
            "systemd-networkd:/etc/systemd/network/50-eth0.network"
        )
    );
    // Two profiles name eth1; NetworkManager activated the DHCP one.
    assert_eq!(
        verdict(&r, "eth1", "192.0.2.21"),
        is(
            Dhcp,
            "networkmanager:/etc/NetworkManager/system-connections/eth1-b-dhcp.nmconnection"
        )
    );
    // NetworkManager does not manage eth2 (and networkd neither): its profile is not used.
    assert_eq!(verdict(&r, "eth2", "192.0.2.22"), (Unknown, None));
}

#[test]
fn networkmanager_manual_and_auto_by_mac() {
    let r = classify(
        "networkmanager",
        vec![
            iface("eth0", None, &["192.0.2.30/24", "2001:db8:30::30/64"]),
            iface(
                "eth1",
                Some("52:54:00:00:00:31"),
                &["192.0.2.31/24", "2001:db8:31::31/128"],
            ),
            iface("eth9", Some("52:54:00:00:00:99"), &["192.0.2.39/24"]),
        ],
    );
    let eth0 = "networkmanager:/etc/NetworkManager/system-connections/eth0.nmconnection";
    let wired =
        "networkmanager:/etc/NetworkManager/system-connections/Wired connection 1.nmconnection";
    assert_eq!(verdict(&r, "eth0", "192.0.2.30"), is(Static, eth0));
    assert_eq!(verdict(&r, "eth0", "2001:db8:30::30"), is(Static, eth0));
    // Bound by MAC; the configuration comes before the internal client's lease.
    assert_eq!(verdict(&r, "eth1", "192.0.2.31"), is(Dhcp, wired));
    assert_eq!(verdict(&r, "eth1", "2001:db8:31::31"), is(Dhcp, wired));
    assert_eq!(verdict(&r, "eth9", "192.0.2.39"), (Unknown, None));
}

#[test]
fn ifupdown_static_dhcp_and_includes() {
    let r = classify(
        "ifupdown",
        vec![
            iface("eth0", None, &["192.0.2.40/24", "2001:db8:40::40/64"]),
            iface("eth1", None, &["192.0.2.41/24", "2001:db8:41::41/128"]),
            iface("eth2", None, &["2001:db8:42::42/64"]),
        ],
    );
    let main = "ifupdown:/etc/network/interfaces";
    let included = "ifupdown:/etc/network/interfaces.d/eth1";
    assert_eq!(verdict(&r, "eth0", "192.0.2.40"), is(Static, main));
    assert_eq!(verdict(&r, "eth0", "2001:db8:40::40"), is(Static, main));
    // From `source interfaces.d/*`.
    assert_eq!(verdict(&r, "eth1", "192.0.2.41"), is(Dhcp, included));
    assert_eq!(verdict(&r, "eth1", "2001:db8:41::41"), is(Dhcp, included));
    // From `source-directory more.d`: inet6 auto without `dhcp 1` is SLAAC.
    assert_eq!(
        verdict(&r, "eth2", "2001:db8:42::42"),
        is(Unknown, "kernel:slaac")
    );
    // `.eth1.swp` and `eth2.dpkg-old` hold garbage: not read, so no problem.
    assert_eq!(NetConfig::read(&root("ifupdown")).problems, []);
}

#[test]
fn netplan_dhcp4_and_static_on_two_interfaces() {
    let r = classify(
        "netplan",
        vec![
            iface(
                "eth0",
                Some("52:54:00:00:00:50"),
                &["192.0.2.50/24", "2001:db8:50::50/64"],
            ),
            iface("eth1", None, &["192.0.2.51/24", "2001:db8:51::51/64"]),
            iface("vlan10", None, &["198.51.100.10/24"]),
            iface("eth2", None, &["203.0.113.2/24"]),
            // Same name as the `match`ed device's id would be, wrong MAC: not matched.
            iface("id0", Some("52:54:00:00:00:50"), &["192.0.2.59/24"]),
        ],
    );
    let cloud = "netplan:/etc/netplan/50-cloud-init.yaml";
    assert_eq!(verdict(&r, "eth0", "192.0.2.50"), is(Dhcp, cloud));
    // dhcp6: false and no static IPv6: the dynamic /64 is SLAAC.
    assert_eq!(
        verdict(&r, "eth0", "2001:db8:50::50"),
        is(Unknown, "kernel:slaac")
    );
    assert_eq!(verdict(&r, "eth1", "192.0.2.51"), is(Static, cloud));
    assert_eq!(verdict(&r, "eth1", "2001:db8:51::51"), is(Static, cloud));
    assert_eq!(verdict(&r, "vlan10", "198.51.100.10"), is(Static, cloud));
    // 90-eth2-static.yaml overrides 01-eth2.yaml's dhcp4: true.
    assert_eq!(
        verdict(&r, "eth2", "203.0.113.2"),
        is(Static, "netplan:/etc/netplan/90-eth2-static.yaml")
    );
    assert_eq!(verdict(&r, "id0", "192.0.2.59"), (Unknown, None));
}

#[test]
fn leases_prove_dhcp_without_any_configuration() {
    let r = classify(
        "lease-only",
        vec![
            iface(
                "eth0",
                None,
                &["192.0.2.60/24", "2001:db8:60::60/128", "192.0.2.62/24"],
            ),
            iface("eth1", None, &["192.0.2.61/24"]),
            iface("eth2", None, &["192.0.2.63/24"]),
            // Another interface holding eth0's leased address: the lease names eth0.
            iface("eth3", None, &["192.0.2.60/24"]),
        ],
    );
    assert_eq!(
        verdict(&r, "eth0", "192.0.2.60"),
        is(Dhcp, "dhcp-lease:/var/lib/dhcp/dhclient.eth0.leases")
    );
    assert_eq!(
        verdict(&r, "eth0", "2001:db8:60::60"),
        is(Dhcp, "dhcp-lease:/var/lib/dhcp/dhclient6.eth0.leases")
    );
    assert_eq!(verdict(&r, "eth0", "192.0.2.62"), (Unknown, None));
    assert_eq!(
        verdict(&r, "eth1", "192.0.2.61"),
        is(Dhcp, "dhcp-lease:/run/systemd/netif/leases/3")
    );
    assert_eq!(
        verdict(&r, "eth2", "192.0.2.63"),
        is(Dhcp, "dhcp-lease:/var/lib/dhcpcd/eth2.lease")
    );
    assert_eq!(verdict(&r, "eth3", "192.0.2.60"), (Unknown, None));
}

/// Collects what tracing writes, for asserting on log lines.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn malformed_files_leave_addresses_unknown_and_are_logged() {
    let ifaces = vec![
        iface("eth0", None, &["192.0.2.70/24"]),
        iface("eth1", None, &["192.0.2.71/24"]),
        iface("eth2", None, &["192.0.2.72/24"]),
        iface("eth3", None, &["192.0.2.73/24"]),
        iface("eth4", None, &["192.0.2.74/24"]),
        iface("eth5", None, &["192.0.2.75/24"]),
    ];
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let r = tracing::subscriber::with_default(subscriber, || {
        let mut ifaces = ifaces.clone();
        let mut c = Classifier::new(root("malformed"));
        let kernel = KernelView::default();
        c.classify(&kernel, &mut ifaces);
        // The second collection within the minute uses the cache and logs nothing new.
        let mut again = ifaces.clone();
        c.classify(&kernel, &mut again);
        assert_eq!(again, ifaces);
        ifaces
    });
    for i in &r {
        for a in &i.addresses {
            assert_eq!((a.config, &a.config_source), (Unknown, &None), "{}", i.name);
        }
    }

    let problems = NetConfig::read(&root("malformed")).problems;
    let find = |path: &str| {
        problems
            .iter()
            .find(|p| p.path == path)
            .unwrap_or_else(|| panic!("no problem recorded for {path}: {problems:?}"))
            .message
            .clone()
    };
    assert!(!find("/etc/netplan/50-broken.yaml").is_empty());
    assert!(find("/etc/systemd/network/10-eth1.network").contains("line 5"));
    assert!(find("/etc/systemd/network/20-eth5.network").contains("UTF-8"));
    assert!(find("/etc/NetworkManager/system-connections/eth2.nmconnection").contains("sometimes"));
    assert!(find("/etc/network/interfaces").contains("192.0.2.300"));
    assert!(find("/var/lib/dhcp/dhclient.eth4.leases").contains("unterminated"));
    assert_eq!(problems.len(), 6, "{problems:?}");

    let log = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
    assert_eq!(
        log.matches("WARN").count(),
        1,
        "one rate-limited line: {log}"
    );
    assert!(
        log.contains("kind=\"netconfig\"") || log.contains("kind=netconfig"),
        "{log}"
    );
    assert!(log.contains("count=6"), "{log}");
    assert!(log.contains("/etc/netplan/50-broken.yaml"), "{log}");
    assert!(log.contains("/var/lib/dhcp/dhclient.eth4.leases"), "{log}");
}

#[test]
fn files_are_cached_until_the_refresh_period() {
    let dir = std::env::temp_dir().join(format!("cloudgov-agent-netconfig-{}", std::process::id()));
    let file = dir.join("etc/network/interfaces");
    std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
    std::fs::write(&file, "iface eth0 inet dhcp\n").expect("write");
    let run = |c: &mut Classifier| {
        let mut i = vec![iface("eth0", None, &["192.0.2.80/24"])];
        c.classify(&KernelView::default(), &mut i);
        i[0].addresses[0].config
    };
    let mut cached = Classifier::new(&dir);
    let mut fresh = Classifier::new(&dir).with_refresh(Duration::ZERO);
    assert_eq!((run(&mut cached), run(&mut fresh)), (Dhcp, Dhcp));
    std::fs::write(&file, "iface eth0 inet static\n  address 192.0.2.80/24\n").expect("write");
    assert_eq!(run(&mut cached), Dhcp, "read again only after a minute");
    assert_eq!(run(&mut fresh), Static);
    let _ = std::fs::remove_dir_all(&dir);
}
