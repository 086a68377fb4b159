//! ifupdown: `/etc/network/interfaces` with `source`/`source-directory` includes, and
//! `/run/network/ifstate*`.

use std::collections::HashMap;
use std::net::IpAddr;

use super::ini::clip;
use super::{ConfigEntry, FamilyPlan, IfaceRuntime, Manager, Matcher, Reader, glob, parse_ip};

pub(crate) const INTERFACES: &str = "/etc/network/interfaces";

/// Include depth beyond which `source` lines are ignored (and reported): include loops.
const MAX_DEPTH: usize = 8;

/// One `iface` stanza that could be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stanza {
    iface: String,
    v6: bool,
    /// `None`: the method leaves addresses to something else (`manual`, `loopback`, ...).
    plan: Option<(bool, Vec<IpAddr>)>,
    path: String,
}

/// One entry per interface named in an `iface` stanza with an address method, in the order
/// of first appearance. Each family's source is the file of its first stanza.
pub(crate) fn read(r: &mut Reader) -> Vec<ConfigEntry> {
    let mut stanzas = Vec::new();
    read_file(r, INTERFACES, 0, &mut stanzas);
    let mut out: Vec<ConfigEntry> = Vec::new();
    for s in stanzas {
        let Some((dhcp, addresses)) = s.plan else {
            continue;
        };
        let i = match out
            .iter()
            .position(|e| e.matcher.names == [s.iface.as_str()])
        {
            Some(i) => i,
            None => {
                out.push(ConfigEntry {
                    manager: Manager::Ifupdown,
                    path: s.path.clone(),
                    matcher: Matcher::name(&s.iface),
                    v4: None,
                    v6: None,
                    uuid: None,
                });
                out.len() - 1
            }
        };
        let slot = if s.v6 { &mut out[i].v6 } else { &mut out[i].v4 };
        let plan = slot.get_or_insert_with(|| FamilyPlan {
            dhcp: false,
            addresses: Vec::new(),
            source: format!("{}:{}", Manager::Ifupdown.label(), s.path),
        });
        plan.dhcp |= dhcp;
        plan.addresses.extend(addresses);
    }
    out
}

fn read_file(r: &mut Reader, path: &str, depth: usize, out: &mut Vec<Stanza>) {
    let Some(text) = r.text(path) else { return };
    match parse(&text, path) {
        Ok(parsed) => {
            for item in parsed {
                match item {
                    Item::Stanza(s) => out.push(s),
                    Item::Source(pattern) => {
                        if depth >= MAX_DEPTH {
                            r.problem(path, format!("includes nested deeper than {MAX_DEPTH}"));
                            continue;
                        }
                        for file in expand_source(r, path, &pattern) {
                            read_file(r, &file, depth + 1, out);
                        }
                    }
                    Item::SourceDirectory(dir) => {
                        if depth >= MAX_DEPTH {
                            r.problem(path, format!("includes nested deeper than {MAX_DEPTH}"));
                            continue;
                        }
                        let dir = resolve(path, &dir);
                        // run-parts names only: letters, digits, `_` and `-`.
                        for name in r.list(&dir) {
                            if name
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                            {
                                read_file(r, &format!("{dir}/{name}"), depth + 1, out);
                            }
                        }
                    }
                }
            }
        }
        Err(message) => r.problem(path, message),
    }
}

/// A relative include is relative to the including file's directory.
fn resolve(including: &str, path: &str) -> String {
    if path.starts_with('/') {
        return path.to_owned();
    }
    let dir = including.rsplit_once('/').map_or("", |(d, _)| d);
    format!("{dir}/{path}")
}

/// Files named by a `source` pattern; wildcards are honoured in the last path component only.
fn expand_source(r: &mut Reader, including: &str, pattern: &str) -> Vec<String> {
    let full = resolve(including, pattern);
    let (dir, last) = full.rsplit_once('/').unwrap_or(("", full.as_str()));
    if !last.contains(['*', '?', '[']) {
        return vec![full.clone()];
    }
    r.list(dir)
        .into_iter()
        // Like glob(3): a wildcard does not match a leading dot.
        .filter(|n| glob(last, n) && (last.starts_with('.') || !n.starts_with('.')))
        .map(|n| format!("{dir}/{n}"))
        .collect()
}

/// An `iface` stanza whose options are still being read.
struct OpenStanza {
    iface: String,
    v6: bool,
    method: String,
    options: Vec<(String, String)>,
    line: usize,
}

#[derive(Debug)]
enum Item {
    Stanza(Stanza),
    Source(String),
    SourceDirectory(String),
}

/// The stanzas and includes of one file, or the first thing that is not valid.
fn parse(text: &str, path: &str) -> Result<Vec<Item>, String> {
    // Join continued lines first.
    let mut lines: Vec<(usize, String)> = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let (n, mut line) = match pending.take() {
            Some((n, mut acc)) => {
                acc.push(' ');
                acc.push_str(raw.trim());
                (n, acc)
            }
            None => (i + 1, raw.trim().to_owned()),
        };
        if line.ends_with('\\') {
            line.pop();
            pending = Some((n, line));
        } else {
            lines.push((n, line));
        }
    }
    if let Some(p) = pending {
        lines.push(p);
    }

    let mut items = Vec::new();
    let mut open: Option<OpenStanza> = None;
    // Inside a `mapping` stanza or a non-IP `iface` stanza, whose options are not ours.
    let mut ignoring = false;
    let finish = |open: &mut Option<OpenStanza>, items: &mut Vec<Item>| -> Result<(), String> {
        if let Some(o) = open.take() {
            let plan =
                plan(o.v6, &o.method, &o.options).map_err(|e| format!("line {}: {e}", o.line))?;
            items.push(Item::Stanza(Stanza {
                // Alias interfaces `eth0:1` are addresses of `eth0`.
                iface: o.iface.split(':').next().unwrap_or(&o.iface).to_owned(),
                v6: o.v6,
                plan,
                path: path.to_owned(),
            }));
        }
        Ok(())
    };
    for (n, line) in lines {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or_default();
        let rest: Vec<&str> = words.collect();
        match first {
            "iface" => {
                finish(&mut open, &mut items)?;
                ignoring = false;
                let [iface, family, method] = rest.as_slice() else {
                    return Err(format!(
                        "line {n}: expected `iface NAME FAMILY METHOD`, found {:?}",
                        clip(&line)
                    ));
                };
                match *family {
                    "inet" | "inet6" => {
                        open = Some(OpenStanza {
                            iface: (*iface).to_owned(),
                            v6: *family == "inet6",
                            method: (*method).to_owned(),
                            options: Vec::new(),
                            line: n,
                        });
                    }
                    // ipx, can, ...: no IP addresses.
                    _ => ignoring = true,
                }
            }
            "mapping" => {
                finish(&mut open, &mut items)?;
                ignoring = true;
            }
            "source" | "source-directory" => {
                finish(&mut open, &mut items)?;
                ignoring = false;
                let Some(target) = rest.first() else {
                    return Err(format!("line {n}: `{first}` without a path"));
                };
                items.push(if first == "source" {
                    Item::Source((*target).to_owned())
                } else {
                    Item::SourceDirectory((*target).to_owned())
                });
            }
            "auto" | "no-auto-down" | "no-scripts" | "rename" | "template" => {
                finish(&mut open, &mut items)?;
                ignoring = false;
            }
            w if w.starts_with("allow-") => {
                finish(&mut open, &mut items)?;
                ignoring = false;
            }
            option => {
                if let Some(o) = &mut open {
                    o.options.push((option.to_owned(), rest.join(" ")));
                } else if !ignoring {
                    return Err(format!("line {n}: {:?} is outside any stanza", clip(&line)));
                }
            }
        }
    }
    finish(&mut open, &mut items)?;
    Ok(items)
}

/// What a method and its options say: `Ok(None)` for methods that leave addresses alone.
fn plan(
    v6: bool,
    method: &str,
    options: &[(String, String)],
) -> Result<Option<(bool, Vec<IpAddr>)>, String> {
    let addresses = || -> Result<Vec<IpAddr>, String> {
        let mut out = Vec::new();
        for (key, value) in options {
            if key == "address" {
                for a in value.split_whitespace() {
                    let ip = parse_ip(a)?;
                    if ip.is_ipv6() != v6 {
                        return Err(format!(
                            "{ip} in an {} stanza",
                            if v6 { "inet6" } else { "inet" }
                        ));
                    }
                    out.push(ip);
                }
            }
        }
        Ok(out)
    };
    let dhcp_option = options.iter().any(|(k, v)| k == "dhcp" && v.trim() == "1");
    match (v6, method) {
        (_, "static") => Ok(Some((false, addresses()?))),
        (false, "dhcp" | "bootp") | (true, "dhcp") => Ok(Some((true, Vec::new()))),
        (true, "auto") => Ok(Some((dhcp_option, Vec::new()))),
        (false, "ipv4ll") => Ok(Some((false, Vec::new()))),
        (_, "manual" | "loopback" | "ppp" | "wvdial" | "tunnel" | "v4tunnel" | "6to4") => Ok(None),
        (v6, other) => Err(format!(
            "unknown method {other:?} for {}",
            if v6 { "inet6" } else { "inet" }
        )),
    }
}

/// `/run/network/ifstate` (`eth0=eth0` lines, ifupdown 0.7) and `/run/network/ifstate.<iface>`
/// (ifupdown 0.8): interfaces ifupdown brought up.
pub(crate) fn runtime(r: &mut Reader, out: &mut HashMap<String, IfaceRuntime>) {
    const DIR: &str = "/run/network";
    let mut up = Vec::new();
    for name in r.list(DIR) {
        if name == "ifstate" {
            if let Some(text) = r.text(&format!("{DIR}/{name}")) {
                up.extend(
                    text.lines()
                        .filter_map(|l| l.split('=').next())
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(str::to_owned),
                );
            }
        } else if let Some(iface) = name.strip_prefix("ifstate.")
            && r.text(&format!("{DIR}/{name}"))
                .is_some_and(|t| !t.trim().is_empty())
        {
            up.push(iface.to_owned());
        }
    }
    for iface in up {
        let iface = iface.split(':').next().unwrap_or(&iface).to_owned();
        out.entry(iface).or_default().ifupdown_up = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stanzas(text: &str) -> Vec<Stanza> {
        parse(text, "/etc/network/interfaces")
            .expect("valid")
            .into_iter()
            .filter_map(|i| match i {
                Item::Stanza(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn methods_options_and_aliases() {
        let s = stanzas(
            "auto lo eth0\niface lo inet loopback\n\
             allow-hotplug eth0\niface eth0 inet static\n  address 192.0.2.10\n  netmask 255.255.255.0\n\
             iface eth0:1 inet static\n  address 192.0.2.11/24 \\\n 192.0.2.12/24\n\
             iface eth0 inet6 auto\n  dhcp 1\n\
             iface eth1 inet6 auto\n\
             iface eth2 inet dhcp\n\
             mapping eth3\n  script /x\n  map a b\n\
             iface eth3 inet manual\n",
        );
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert_eq!(s.len(), 7);
        assert_eq!(s[0].plan, None, "loopback");
        assert_eq!(s[1].plan, Some((false, vec![ip("192.0.2.10")])));
        assert_eq!(s[2].iface, "eth0");
        assert_eq!(
            s[2].plan,
            Some((false, vec![ip("192.0.2.11"), ip("192.0.2.12")]))
        );
        assert_eq!((s[3].v6, s[3].plan.clone()), (true, Some((true, vec![]))));
        assert_eq!(
            s[4].plan,
            Some((false, vec![])),
            "inet6 auto without dhcp 1"
        );
        assert_eq!(s[5].plan, Some((true, vec![])));
        assert_eq!(s[6].plan, None, "manual");
    }

    #[test]
    fn errors() {
        let e = parse("iface eth0 inet static\n address 10.0.0.300/24\n", "/f").expect_err("ip");
        assert!(e.starts_with("line 1:") && e.contains("10.0.0.300"), "{e}");
        let e = parse("iface eth0 inet carrier-pigeon\n", "/f").expect_err("method");
        assert!(e.contains("carrier-pigeon"), "{e}");
        let e = parse("address 10.0.0.1\n", "/f").expect_err("orphan option");
        assert!(e.contains("outside any stanza"), "{e}");
        let e = parse("iface eth0 inet\n", "/f").expect_err("short");
        assert!(e.contains("iface NAME FAMILY METHOD"), "{e}");
    }

    #[test]
    fn include_paths() {
        assert_eq!(
            resolve("/etc/network/interfaces", "interfaces.d/*"),
            "/etc/network/interfaces.d/*"
        );
        assert_eq!(resolve("/etc/network/interfaces", "/x/y"), "/x/y");
    }
}
