//! systemd-networkd: `.network` files with drop-ins, and `/run/systemd/netif/links/<ifindex>`.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use super::ini::{self, parse_bool};
use super::{ConfigEntry, IfaceRuntime, Manager, Matcher, Reader, normalize_mac, parse_ip, plans};

/// Search path, highest priority first.
pub(crate) const DIRS: [&str; 5] = [
    "/etc/systemd/network",
    "/run/systemd/network",
    "/usr/local/lib/systemd/network",
    "/usr/lib/systemd/network",
    "/lib/systemd/network",
];

/// Every unmasked `.network` file, in networkd's order (file name).
pub(crate) fn read(r: &mut Reader) -> Vec<ConfigEntry> {
    let mut out = Vec::new();
    for (name, path) in first_by_name(r, &DIRS, ".network", None) {
        let before = r.problems.len();
        let Some(text) = r.text(&path) else { continue };
        let mut texts = vec![(path.clone(), text)];
        for (_, dropin) in first_by_name(r, &DIRS, ".conf", Some(&format!("{name}.d"))) {
            if let Some(t) = r.text(&dropin) {
                texts.push((dropin, t));
            }
        }
        if r.problems.len() > before {
            continue; // a drop-in could not be read: the file's meaning is incomplete
        }
        match parse(&path, &texts) {
            Ok(entry) => out.push(entry),
            Err((p, message)) => r.problem(&p, message),
        }
    }
    out
}

/// `name -> path` of files ending in `suffix` in `dirs` (or their `subdir`), the first
/// directory winning. A mask (empty file, symlink to `/dev/null`) wins the same way and then
/// configures nothing: no `[Match]`, so it matches no interface.
fn first_by_name(
    r: &mut Reader,
    dirs: &[&str],
    suffix: &str,
    subdir: Option<&str>,
) -> BTreeMap<String, String> {
    let mut chosen = BTreeMap::new();
    for dir in dirs {
        let dir = match subdir {
            Some(sub) => format!("{dir}/{sub}"),
            None => (*dir).to_owned(),
        };
        for name in r.list(&dir) {
            if name.ends_with(suffix) && !chosen.contains_key(&name) {
                let path = format!("{dir}/{name}");
                chosen.insert(name, path);
            }
        }
    }
    chosen
}

/// One `.network` file and its drop-ins, in order. `Err((path, message))` for the first file
/// that is not valid.
pub(crate) fn parse(
    path: &str,
    texts: &[(String, String)],
) -> Result<ConfigEntry, (String, String)> {
    let mut matcher = Matcher::default();
    let (mut dhcp4, mut dhcp6) = (false, false);
    let mut addresses: Vec<IpAddr> = Vec::new();
    for (file, text) in texts {
        let err = |m: String| (file.clone(), m);
        for a in ini::parse(text, true).map_err(err)? {
            match (a.section.as_str(), a.key.as_str()) {
                ("Match", "Name" | "OriginalName") => {
                    if a.value.is_empty() {
                        matcher.names.clear();
                        matcher.invert_names = false;
                        continue;
                    }
                    let value = match a.value.strip_prefix('!') {
                        Some(rest) => {
                            matcher.invert_names = true;
                            rest
                        }
                        None => a.value.as_str(),
                    };
                    matcher
                        .names
                        .extend(value.split_whitespace().map(str::to_owned));
                }
                ("Match", "MACAddress" | "PermanentMACAddress") => {
                    if a.value.is_empty() {
                        matcher.macs.clear();
                        continue;
                    }
                    for m in a.value.split_whitespace() {
                        let mac = normalize_mac(m)
                            .ok_or_else(|| err(format!("{}={m:?} is not a MAC address", a.key)))?;
                        matcher.macs.push(mac);
                    }
                }
                ("Network", "DHCP") => {
                    (dhcp4, dhcp6) = parse_dhcp(&a.value)
                        .ok_or_else(|| err(format!("DHCP={:?} is not a DHCP mode", a.value)))?;
                }
                ("Network" | "Address", "Address") => {
                    if a.value.is_empty() {
                        continue;
                    }
                    let ip = parse_ip(&a.value).map_err(|e| err(format!("Address=: {e}")))?;
                    // 0.0.0.0/24 and ::/64 ask networkd to pick a free address from a pool.
                    if !ip.is_unspecified() {
                        addresses.push(ip);
                    }
                }
                _ => {}
            }
        }
    }
    let source = format!("{}:{path}", Manager::Networkd.label());
    let (v4, v6) = plans(dhcp4, dhcp6, &addresses, &source);
    Ok(ConfigEntry {
        manager: Manager::Networkd,
        path: path.to_owned(),
        matcher,
        v4: Some(v4),
        v6: Some(v6),
        uuid: None,
    })
}

/// `DHCP=`: `(dhcp4, dhcp6)`.
fn parse_dhcp(value: &str) -> Option<(bool, bool)> {
    match value.trim().to_ascii_lowercase().as_str() {
        "ipv4" | "v4" => Some((true, false)),
        "ipv6" | "v6" => Some((false, true)),
        "both" => Some((true, true)),
        "" | "none" => Some((false, false)),
        other => parse_bool(other).map(|b| (b, b)),
    }
}

/// `/run/systemd/netif/links/<ifindex>`: which file networkd applied, or that it leaves the
/// link alone.
pub(crate) fn runtime(
    r: &mut Reader,
    ifindex: &HashMap<u32, String>,
    out: &mut HashMap<String, IfaceRuntime>,
) {
    const LINKS: &str = "/run/systemd/netif/links";
    for name in r.list(LINKS) {
        let Some(iface) = name.parse::<u32>().ok().and_then(|i| ifindex.get(&i)) else {
            continue;
        };
        let Some(text) = r.text(&format!("{LINKS}/{name}")) else {
            continue;
        };
        let mut admin_state = None;
        let mut network_file = None;
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("ADMIN_STATE=") {
                admin_state = Some(v.trim().to_owned());
            } else if let Some(v) = line.strip_prefix("NETWORK_FILE=") {
                network_file = Some(v.trim().to_owned()).filter(|v| !v.is_empty());
            }
        }
        let rt = out.entry(iface.clone()).or_default();
        if admin_state.as_deref() == Some("unmanaged") {
            rt.networkd_unmanaged = true;
        } else if network_file.is_some() {
            rt.networkd_file = network_file;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(t: &[(&str, &str)]) -> Vec<(String, String)> {
        t.iter()
            .map(|(p, s)| ((*p).to_owned(), (*s).to_owned()))
            .collect()
    }

    #[test]
    fn dhcp_modes() {
        assert_eq!(parse_dhcp("yes"), Some((true, true)));
        assert_eq!(parse_dhcp("ipv4"), Some((true, false)));
        assert_eq!(parse_dhcp("ipv6"), Some((false, true)));
        assert_eq!(parse_dhcp("no"), Some((false, false)));
        assert_eq!(parse_dhcp("sometimes"), None);
    }

    #[test]
    fn match_network_address_and_dropins() {
        let e = parse(
            "/etc/systemd/network/10-lan.network",
            &texts(&[
                (
                    "/etc/systemd/network/10-lan.network",
                    "[Match]\nName=!eth9 wlan*\nMACAddress=52-54-00-00-00-0A\n\
                     [Network]\nDHCP=ipv4\nAddress=10.0.0.5/24\nAddress=0.0.0.0/24\n\
                     [Address]\nAddress=2001:db8::5/64\n",
                ),
                (
                    "/etc/systemd/network/10-lan.network.d/v6.conf",
                    "[Network]\nDHCP=yes\n",
                ),
            ]),
        )
        .expect("valid");
        assert!(e.matcher.invert_names);
        assert_eq!(e.matcher.names, ["eth9", "wlan*"]);
        assert_eq!(e.matcher.macs, ["52:54:00:00:00:0a"]);
        let v4 = e.v4.expect("v4");
        let v6 = e.v6.expect("v6");
        assert!(v4.dhcp && v6.dhcp, "drop-in overrides DHCP=ipv4");
        assert_eq!(v4.addresses, ["10.0.0.5".parse::<IpAddr>().expect("ip")]);
        assert_eq!(v6.addresses, ["2001:db8::5".parse::<IpAddr>().expect("ip")]);
        assert_eq!(
            v4.source,
            "systemd-networkd:/etc/systemd/network/10-lan.network"
        );
    }

    #[test]
    fn bad_values_name_the_file() {
        let (p, m) = parse(
            "/a.network",
            &texts(&[
                ("/a.network", "[Match]\nName=eth0\n"),
                ("/a.network.d/x.conf", "[Network]\nDHCP=perhaps\n"),
            ]),
        )
        .expect_err("bad DHCP=");
        assert_eq!(p, "/a.network.d/x.conf");
        assert!(m.contains("perhaps"), "{m}");
        let (_, m) = parse(
            "/a",
            &texts(&[("/a", "[Network]\nAddress=10.0.0.300/24\n")]),
        )
        .expect_err("bad address");
        assert!(m.contains("10.0.0.300"), "{m}");
    }
}
