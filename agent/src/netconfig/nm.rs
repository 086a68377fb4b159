//! NetworkManager: keyfile profiles, and `/run/NetworkManager/devices/<ifindex>`.

use std::collections::HashMap;
use std::net::IpAddr;

use super::ini::{self, parse_bool};
use super::{
    ConfigEntry, FamilyPlan, IfaceRuntime, Manager, Matcher, Reader, normalize_mac, parse_ip,
};

/// Keyfile directories: in-memory profiles in `/run` shadow `/etc`, which shadows `/usr/lib`.
pub(crate) const DIRS: [&str; 3] = [
    "/run/NetworkManager/system-connections",
    "/etc/NetworkManager/system-connections",
    "/usr/lib/NetworkManager/system-connections",
];

/// Every keyfile profile, directories in [`DIRS`] order, files by name.
pub(crate) fn read(r: &mut Reader) -> Vec<ConfigEntry> {
    let mut out = Vec::new();
    for dir in DIRS {
        for name in r.list(dir) {
            // NetworkManager reads `*.nmconnection` and, in /etc, legacy names without a dot.
            if !name.ends_with(".nmconnection") && name.contains('.') {
                continue;
            }
            let path = format!("{dir}/{name}");
            let Some(text) = r.text(&path) else { continue };
            match parse(&path, &text) {
                Ok(Some(entry)) => out.push(entry),
                Ok(None) => {}
                Err(message) => r.problem(&path, message),
            }
        }
    }
    out
}

/// One keyfile; `Ok(None)` for profiles without interfaces of their own (loopback).
pub(crate) fn parse(path: &str, text: &str) -> Result<Option<ConfigEntry>, String> {
    let mut kind = String::new();
    let mut uuid = None;
    let mut port = false;
    let mut matcher = Matcher::default();
    let mut method4 = "auto".to_owned();
    let mut method6 = "auto".to_owned();
    let mut addrs4: Vec<IpAddr> = Vec::new();
    let mut addrs6: Vec<IpAddr> = Vec::new();
    for a in ini::parse(text, false)? {
        match (a.section.as_str(), a.key.as_str()) {
            ("connection", "type") => kind = a.value,
            ("connection", "uuid") => uuid = Some(a.value.to_ascii_lowercase()),
            ("connection", "interface-name") if !a.value.is_empty() => {
                matcher.names.push(a.value);
            }
            ("connection", "master" | "controller") if !a.value.is_empty() => port = true,
            ("connection", "slave-type" | "port-type") if !a.value.is_empty() => port = true,
            ("match", "interface-name") => {
                // `;`-separated patterns; `~` (optional) is dropped, `!` (negative) skipped.
                matcher.names.extend(
                    a.value
                        .split(';')
                        .map(|p| p.trim().trim_start_matches('~'))
                        .filter(|p| !p.is_empty() && !p.starts_with('!'))
                        .map(str::to_owned),
                );
            }
            (
                "ethernet" | "802-3-ethernet" | "wifi" | "802-11-wireless" | "infiniband",
                "mac-address",
            ) if !a.value.is_empty() => {
                let mac = parse_keyfile_mac(&a.value)
                    .ok_or_else(|| format!("mac-address={:?} is not a MAC address", a.value))?;
                matcher.macs.push(mac);
            }
            ("ipv4", "method") => method4 = a.value,
            ("ipv6", "method") => method6 = a.value,
            (family @ ("ipv4" | "ipv6"), key) if is_address_key(key) => {
                let list = if family == "ipv4" {
                    &mut addrs4
                } else {
                    &mut addrs6
                };
                for item in a.value.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                    // "ADDR/PREFIX,GATEWAY"
                    let addr = item.split(',').next().unwrap_or(item);
                    let ip = parse_ip(addr).map_err(|e| format!("[{family}] {key}: {e}"))?;
                    if ip.is_ipv4() != (family == "ipv4") {
                        return Err(format!("[{family}] {key}: {ip} is of the other family"));
                    }
                    list.push(ip);
                }
            }
            _ => {}
        }
    }
    if kind == "loopback" {
        return Ok(None);
    }
    let source = format!("{}:{path}", Manager::NetworkManager.label());
    let (v4, v6) = if port {
        // A bond/bridge port: its addresses (if any) belong to the controller's profile.
        (None, None)
    } else {
        let dhcp4 = match method4.as_str() {
            "auto" => true,
            "manual" | "shared" | "link-local" | "disabled" => false,
            other => return Err(format!("[ipv4] method={other:?} is not a method")),
        };
        let v6 = match method6.as_str() {
            "auto" | "dhcp" => Some(true),
            "manual" | "shared" | "link-local" | "disabled" => Some(false),
            "ignore" => None,
            other => return Err(format!("[ipv6] method={other:?} is not a method")),
        };
        (
            Some(FamilyPlan {
                dhcp: dhcp4,
                addresses: addrs4,
                source: source.clone(),
            }),
            v6.map(|dhcp| FamilyPlan {
                dhcp,
                addresses: addrs6,
                source: source.clone(),
            }),
        )
    };
    Ok(Some(ConfigEntry {
        manager: Manager::NetworkManager,
        path: path.to_owned(),
        matcher,
        v4,
        v6,
        uuid,
    }))
}

/// `address1`, `addresses`, `addresses2`, ...
fn is_address_key(key: &str) -> bool {
    let digits = key
        .strip_prefix("addresses")
        .or_else(|| key.strip_prefix("address"));
    digits.is_some_and(|d| d.chars().all(|c| c.is_ascii_digit()))
}

/// `52:54:00:12:34:56`, or the old byte-list form `82;84;0;18;52;86;`.
fn parse_keyfile_mac(value: &str) -> Option<String> {
    if value.contains(';') {
        let bytes: Vec<u8> = value
            .split(';')
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.trim().parse().ok())
            .collect::<Option<_>>()?;
        if bytes.len() != 6 {
            return None;
        }
        let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
        return Some(hex.join(":"));
    }
    normalize_mac(value)
}

/// `/run/NetworkManager/devices/<ifindex>`: `[device] managed=` and `connection-uuid=`.
pub(crate) fn runtime(
    r: &mut Reader,
    ifindex: &HashMap<u32, String>,
    out: &mut HashMap<String, IfaceRuntime>,
) {
    const DEVICES: &str = "/run/NetworkManager/devices";
    for name in r.list(DEVICES) {
        let Some(iface) = name.parse::<u32>().ok().and_then(|i| ifindex.get(&i)) else {
            continue;
        };
        let path = format!("{DEVICES}/{name}");
        let Some(text) = r.text(&path) else { continue };
        let assignments = match ini::parse(&text, false) {
            Ok(a) => a,
            Err(e) => {
                r.problem(&path, e);
                continue;
            }
        };
        let rt = out.entry(iface.clone()).or_default();
        for a in assignments.iter().filter(|a| a.section == "device") {
            match a.key.as_str() {
                "managed" => rt.nm_unmanaged = parse_bool(&a.value) == Some(false),
                "connection-uuid" if !a.value.is_empty() => {
                    rt.nm_uuid = Some(a.value.to_ascii_lowercase());
                }
                _ => {}
            }
        }
        if rt.nm_unmanaged {
            rt.nm_uuid = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn manual_and_auto_profiles() {
        let e = parse(
            "/etc/NetworkManager/system-connections/eth0.nmconnection",
            "[connection]\nid=eth0\nuuid=0B9D...\ntype=ethernet\ninterface-name=eth0\n\
             [ethernet]\nmac-address=82;84;0;18;52;86;\n\
             [ipv4]\nmethod=manual\naddress1=192.0.2.10/24,192.0.2.1\naddresses2=192.0.2.11/24;\n\
             [ipv6]\nmethod=ignore\n",
        )
        .expect("valid")
        .expect("an entry");
        assert_eq!(e.uuid.as_deref(), Some("0b9d..."));
        assert_eq!(e.matcher.names, ["eth0"]);
        assert_eq!(e.matcher.macs, ["52:54:00:12:34:56"]);
        let v4 = e.v4.expect("v4");
        assert!(!v4.dhcp);
        assert_eq!(v4.addresses, [ip("192.0.2.10"), ip("192.0.2.11")]);
        assert_eq!(e.v6, None, "method=ignore leaves IPv6 alone");

        // No [ipv4]/[ipv6] sections: NetworkManager's default is auto for both.
        let e = parse("/x", "[connection]\ntype=ethernet\ninterface-name=eth1\n")
            .expect("valid")
            .expect("an entry");
        assert!(e.v4.expect("v4").dhcp);
        assert!(e.v6.expect("v6").dhcp);
    }

    #[test]
    fn ports_loopback_and_errors() {
        let e = parse(
            "/x",
            "[connection]\ntype=ethernet\ninterface-name=eth1\nmaster=bond0\n",
        )
        .expect("valid")
        .expect("an entry");
        assert_eq!((e.v4, e.v6), (None, None));
        assert_eq!(parse("/x", "[connection]\ntype=loopback\n"), Ok(None));
        let err = parse(
            "/x",
            "[connection]\ninterface-name=eth0\n[ipv4]\nmethod=magic\n",
        )
        .expect_err("bad method");
        assert!(err.contains("magic"), "{err}");
        let err = parse("/x", "[ipv4]\nmethod=manual\naddress1=2001:db8::1/64\n")
            .expect_err("v6 in ipv4");
        assert!(err.contains("other family"), "{err}");
    }
}
