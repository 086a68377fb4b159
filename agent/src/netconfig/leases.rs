//! DHCP leases of dhclient, systemd-networkd, NetworkManager's internal client and dhcpcd.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use super::{Lease, Reader, parse_ip};

/// Directories holding dhclient lease files (also NetworkManager's dhclient backend).
const DHCLIENT_DIRS: [&str; 3] = [
    "/var/lib/dhcp",
    "/var/lib/dhclient",
    "/var/lib/NetworkManager",
];
const NETWORKD_LEASES: &str = "/run/systemd/netif/leases";
const NM_DIR: &str = "/var/lib/NetworkManager";
const DHCPCD_DIRS: [&str; 3] = ["/var/lib/dhcpcd", "/var/lib/dhcpcd5", "/var/db/dhcpcd"];

/// Every lease found, with its file as source.
pub(crate) fn read(r: &mut Reader, ifindex: &HashMap<u32, String>) -> Vec<Lease> {
    let mut out = Vec::new();
    for dir in DHCLIENT_DIRS {
        for name in r.list(dir) {
            let is_dhclient = name.starts_with("dhclient")
                && (name.ends_with(".leases") || name.ends_with(".lease"));
            // RHEL's /var/lib/dhclient also holds `<iface>.lease` style names.
            let is_rhel = dir == "/var/lib/dhclient" && name.contains(".lease");
            if !(is_dhclient || is_rhel) {
                continue;
            }
            let path = format!("{dir}/{name}");
            let Some(text) = r.text(&path) else { continue };
            match parse_dhclient(&text) {
                Ok(leases) => out.extend(leases.into_iter().map(|(iface, ip)| Lease {
                    interface: iface,
                    ip,
                    source: source(&path),
                })),
                Err(e) => r.problem(&path, e),
            }
        }
    }
    for name in r.list(NETWORKD_LEASES) {
        let Some(iface) = name.parse::<u32>().ok().and_then(|i| ifindex.get(&i)) else {
            continue;
        };
        let path = format!("{NETWORKD_LEASES}/{name}");
        if let Some(text) = r.text(&path) {
            push_env_lease(r, &path, &text, Some(iface.clone()), &mut out);
        }
    }
    for name in r.list(NM_DIR) {
        let Some(iface) = name
            .strip_prefix("internal-")
            .and_then(|n| n.strip_suffix(".lease"))
        else {
            continue;
        };
        // internal-<36-character uuid>-<iface>.lease
        let iface = iface.get(37..).filter(|i| !i.is_empty()).map(str::to_owned);
        let path = format!("{NM_DIR}/{name}");
        if let Some(text) = r.text(&path) {
            push_env_lease(r, &path, &text, iface, &mut out);
        }
    }
    for dir in DHCPCD_DIRS {
        for name in r.list(dir) {
            // `.lease6` holds a DHCPv6 message: skipped (see the module documentation).
            let Some(stem) = name.strip_suffix(".lease") else {
                continue;
            };
            let path = format!("{dir}/{name}");
            let Some(bytes) = r.bytes(&path) else {
                continue;
            };
            match parse_dhcpcd(&bytes) {
                Some(ip) => out.push(Lease {
                    interface: Some(stem.to_owned()),
                    ip: IpAddr::V4(ip),
                    source: source(&path),
                }),
                None => r.problem(&path, "not a DHCP message"),
            }
        }
    }
    out
}

fn source(path: &str) -> String {
    format!("dhcp-lease:{path}")
}

/// `ADDRESS=` of networkd's and NetworkManager's internal client's lease files.
fn push_env_lease(
    r: &mut Reader,
    path: &str,
    text: &str,
    interface: Option<String>,
    out: &mut Vec<Lease>,
) {
    let Some(value) = text.lines().find_map(|l| l.trim().strip_prefix("ADDRESS=")) else {
        r.problem(path, "no ADDRESS= line");
        return;
    };
    match parse_ip(value) {
        Ok(ip) => out.push(Lease {
            interface,
            ip,
            source: source(path),
        }),
        Err(e) => r.problem(path, format!("ADDRESS=: {e}")),
    }
}

/// `(interface, address)` of every `lease { ... fixed-address A; }` and
/// `lease6 { ... iaaddr A { ... } }` block in a dhclient lease file.
pub(crate) fn parse_dhclient(text: &str) -> Result<Vec<(Option<String>, IpAddr)>, String> {
    let tokens = tokenize(text)?;
    let mut out = Vec::new();
    let mut depth = 0usize;
    // Depth at which the current lease block opened, its interface and addresses.
    let mut lease: Option<(usize, Option<String>, Vec<IpAddr>)> = None;
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i].as_str();
        match t {
            "{" => depth += 1,
            "}" => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| "unbalanced `}`".to_owned())?;
                if lease.as_ref().is_some_and(|(d, _, _)| *d == depth)
                    && let Some((_, iface, ips)) = lease.take()
                {
                    out.extend(ips.into_iter().map(|ip| (iface.clone(), ip)));
                }
            }
            "lease" | "lease6"
                if lease.is_none() && tokens.get(i + 1).map(String::as_str) == Some("{") =>
            {
                lease = Some((depth, None, Vec::new()));
            }
            "interface" if lease.is_some() => {
                if let (Some(name), Some((_, iface, _))) = (tokens.get(i + 1), lease.as_mut()) {
                    *iface = Some(name.clone());
                    i += 1;
                }
            }
            "fixed-address" | "iaaddr" if lease.is_some() => {
                let Some(value) = tokens.get(i + 1) else {
                    return Err(format!("`{t}` without an address"));
                };
                let ip = parse_ip(value)?;
                if let Some((_, _, ips)) = lease.as_mut() {
                    ips.push(ip);
                }
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    if depth != 0 {
        return Err("unterminated `{` block".into());
    }
    Ok(out)
}

/// Words, quoted strings (unquoted), `{`, `}` and `;`; `#` comments dropped.
fn tokenize(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '{' | '}' | ';' => out.push(c.to_string()),
            '"' => {
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => {
                            if let Some(c) = chars.next() {
                                s.push(c);
                            }
                        }
                        Some(c) => s.push(c),
                        None => return Err("unterminated string".into()),
                    }
                }
                out.push(s);
            }
            c if c.is_whitespace() => {}
            c => {
                let mut s = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || matches!(n, '{' | '}' | ';' | '"' | '#') {
                        break;
                    }
                    s.push(n);
                    chars.next();
                }
                out.push(s);
            }
        }
    }
    Ok(out)
}

/// `yiaddr` of a dhcpcd IPv4 lease (the raw BOOTP/DHCP message with its magic cookie).
pub(crate) fn parse_dhcpcd(bytes: &[u8]) -> Option<Ipv4Addr> {
    const COOKIE: [u8; 4] = [0x63, 0x82, 0x53, 0x63];
    if bytes.len() < 240 || bytes[236..240] != COOKIE {
        return None;
    }
    let ip = Ipv4Addr::new(bytes[16], bytes[17], bytes[18], bytes[19]);
    (!ip.is_unspecified()).then_some(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn dhclient_v4_and_v6_leases() {
        let text = r#"
default-duid "\000\001\000\001";
lease {
  interface "eth0";
  fixed-address 192.0.2.50;
  option subnet-mask 255.255.255.0;
  option domain-name "example; \"quoted\" {";
  renew 4 2025/09/25 10:00:00;
}
lease6 {
  interface "eth0";
  ia-na 1a:2b:3c:4d {
    starts 1758790000;
    iaaddr 2001:db8::50 {
      starts 1758790000;
      preferred-life 7200;
    }
  }
}
lease { fixed-address 192.0.2.51; }
"#;
        let leases = parse_dhclient(text).expect("valid");
        assert_eq!(
            leases,
            [
                (Some("eth0".into()), ip("192.0.2.50")),
                (Some("eth0".into()), ip("2001:db8::50")),
                (None, ip("192.0.2.51")),
            ]
        );
        assert!(parse_dhclient("lease { fixed-address 192.0.2.1;").is_err());
        assert!(parse_dhclient("lease { fixed-address banana; }").is_err());
        assert!(parse_dhclient("}").is_err());
    }

    #[test]
    fn dhcpcd_binary_lease() {
        let mut msg = vec![0u8; 300];
        msg[0] = 2; // BOOTREPLY
        msg[16..20].copy_from_slice(&[192, 0, 2, 60]);
        msg[236..240].copy_from_slice(&[0x63, 0x82, 0x53, 0x63]);
        assert_eq!(parse_dhcpcd(&msg), Some(Ipv4Addr::new(192, 0, 2, 60)));
        msg[237] = 0;
        assert_eq!(parse_dhcpcd(&msg), None);
        assert_eq!(parse_dhcpcd(b"short"), None);
    }
}
