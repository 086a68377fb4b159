//! netplan: `*.yaml` in `/lib/netplan`, `/etc/netplan`, `/run/netplan`, merged per device.

use std::collections::BTreeMap;
use std::net::IpAddr;

use saphyr_parser::{Event, Parser};

use super::ini::clip;
use super::{ConfigEntry, Manager, Matcher, Reader, normalize_mac, parse_ip, plans};

/// Highest priority first: a file name in `/run/netplan` hides the same name in `/etc/netplan`,
/// which hides `/lib/netplan`.
pub(crate) const DIRS: [&str; 3] = ["/run/netplan", "/etc/netplan", "/lib/netplan"];

/// The device kinds of `network:` whose entries are interfaces.
const DEVICE_KINDS: [&str; 10] = [
    "ethernets",
    "bonds",
    "bridges",
    "vlans",
    "wifis",
    "tunnels",
    "vrfs",
    "modems",
    "dummy-devices",
    "virtual-ethernets",
];

/// YAML nodes allowed in one file (aliases copy nodes: a bound against alias bombs).
const MAX_NODES: usize = 100_000;
/// Nesting allowed in one file.
const MAX_DEPTH: usize = 64;

/// A YAML node; scalars keep their text whatever their style.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Scalar(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(pairs) => pairs
                .iter()
                .rev() // the last of duplicate keys wins
                .find(|(k, _)| matches!(k, Node::Scalar(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    fn scalar(&self) -> Option<&str> {
        match self {
            Node::Scalar(s) => Some(s),
            _ => None,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Node::Scalar(_) => "a scalar",
            Node::Seq(_) => "a list",
            Node::Map(_) => "a mapping",
        }
    }
}

/// The first document of `text` as a tree (an empty document is `None`).
pub(crate) fn parse_yaml(text: &str) -> Result<Option<Node>, String> {
    enum Open {
        Seq(Vec<Node>, usize),
        Map(Vec<(Node, Node)>, Option<Node>, usize),
    }
    let mut stack: Vec<Open> = Vec::new();
    let mut anchors: BTreeMap<usize, Node> = BTreeMap::new();
    let mut nodes = 0usize;
    let mut root: Option<Node> = None;
    let mut parser = Parser::new_from_str(text);
    // Adds a finished node to its parent, or makes it the root; true when the document is done.
    fn place(stack: &mut [Open], root: &mut Option<Node>, node: Node) -> bool {
        match stack.last_mut() {
            None => {
                *root = Some(node);
                true
            }
            Some(Open::Seq(items, _)) => {
                items.push(node);
                false
            }
            Some(Open::Map(pairs, key, _)) => {
                match key.take() {
                    None => *key = Some(node),
                    Some(k) => pairs.push((k, node)),
                }
                false
            }
        }
    }
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| e.to_string())?;
        let node = match event {
            Event::StreamEnd | Event::DocumentEnd => break,
            Event::Nothing | Event::StreamStart | Event::DocumentStart(_) => continue,
            Event::Scalar(value, _, anchor, _) => {
                let node = Node::Scalar(value.into_owned());
                if anchor > 0 {
                    anchors.insert(anchor, node.clone());
                }
                node
            }
            Event::Alias(id) => {
                let node = anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| format!("line {}: unknown alias", span.start.line()))?;
                nodes += count(&node);
                node
            }
            Event::SequenceStart(anchor, _) => {
                stack.push(Open::Seq(Vec::new(), anchor));
                if stack.len() > MAX_DEPTH {
                    return Err(format!("nested deeper than {MAX_DEPTH}"));
                }
                continue;
            }
            Event::MappingStart(anchor, _) => {
                stack.push(Open::Map(Vec::new(), None, anchor));
                if stack.len() > MAX_DEPTH {
                    return Err(format!("nested deeper than {MAX_DEPTH}"));
                }
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match stack.pop() {
                    Some(Open::Seq(items, a)) => (Node::Seq(items), a),
                    Some(Open::Map(pairs, _, a)) => (Node::Map(pairs), a),
                    None => return Err("unbalanced collection".into()),
                };
                if anchor > 0 {
                    anchors.insert(anchor, node.clone());
                }
                node
            }
        };
        nodes += 1;
        if nodes > MAX_NODES {
            return Err(format!("more than {MAX_NODES} YAML nodes"));
        }
        if place(&mut stack, &mut root, node) {
            break;
        }
    }
    Ok(root)
}

fn count(node: &Node) -> usize {
    match node {
        Node::Scalar(_) => 1,
        Node::Seq(items) => 1 + items.iter().map(count).sum::<usize>(),
        Node::Map(pairs) => {
            1 + pairs
                .iter()
                .map(|(k, v)| count(k) + count(v))
                .sum::<usize>()
        }
    }
}

/// netplan's booleans.
fn parse_bool(node: &Node) -> Option<bool> {
    match node.scalar()?.to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "on" => Some(true),
        "false" | "no" | "n" | "off" => Some(false),
        _ => None,
    }
}

/// One device's settings, merged over the files that mention it.
#[derive(Debug, Clone, Default)]
struct Device {
    dhcp4: Option<bool>,
    dhcp6: Option<bool>,
    addresses: Option<Vec<IpAddr>>,
    match_names: Option<Vec<String>>,
    match_macs: Option<Vec<String>>,
    has_match: bool,
    set_name: Option<String>,
    /// The last file that mentions the device.
    path: String,
}

/// Every device defined by the netplan files, in order of first definition.
pub(crate) fn read(r: &mut Reader) -> Vec<ConfigEntry> {
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for dir in DIRS {
        for name in r.list(dir) {
            if name.ends_with(".yaml") && !files.contains_key(&name) {
                let path = format!("{dir}/{name}");
                files.insert(name, path);
            }
        }
    }
    let mut devices: Vec<(String, Device)> = Vec::new();
    for path in files.into_values() {
        let Some(text) = r.text(&path) else { continue };
        // A file is applied whole or not at all.
        let mut merged = devices.clone();
        match merge_file(&text, &path, &mut merged) {
            Ok(()) => devices = merged,
            Err(message) => r.problem(&path, message),
        }
    }
    devices
        .into_iter()
        .map(|(id, d)| {
            let mut matcher = Matcher::default();
            if let Some(name) = &d.set_name {
                matcher.names.push(name.clone());
            } else if d.has_match {
                matcher.names = d.match_names.clone().unwrap_or_default();
            } else {
                matcher.names.push(id);
            }
            if d.has_match {
                matcher.macs = d.match_macs.clone().unwrap_or_default();
            }
            let source = format!("{}:{}", Manager::Netplan.label(), d.path);
            let (v4, v6) = plans(
                d.dhcp4.unwrap_or(false),
                d.dhcp6.unwrap_or(false),
                d.addresses.as_deref().unwrap_or_default(),
                &source,
            );
            ConfigEntry {
                manager: Manager::Netplan,
                path: d.path,
                matcher,
                v4: Some(v4),
                v6: Some(v6),
                uuid: None,
            }
        })
        .collect()
}

fn merge_file(text: &str, path: &str, devices: &mut Vec<(String, Device)>) -> Result<(), String> {
    let Some(root) = parse_yaml(text)? else {
        return Ok(()); // an empty file configures nothing
    };
    if !matches!(root, Node::Map(_)) {
        return Err(format!("the document is {}, not a mapping", root.kind()));
    }
    let Some(network) = root.get("network") else {
        return Ok(());
    };
    let Node::Map(sections) = network else {
        return Err(format!("`network` is {}, not a mapping", network.kind()));
    };
    for (key, value) in sections {
        let Some(kind) = key.scalar().filter(|k| DEVICE_KINDS.contains(k)) else {
            continue;
        };
        let Node::Map(defs) = value else {
            return Err(format!(
                "`network.{kind}` is {}, not a mapping",
                value.kind()
            ));
        };
        for (id, def) in defs {
            let Some(id) = id.scalar() else {
                return Err(format!("`network.{kind}` has a key that is not a name"));
            };
            let at = |what: &str| format!("network.{kind}.{id}.{what}");
            let slot = match devices.iter().position(|(n, _)| n == id) {
                Some(i) => i,
                None => {
                    devices.push((id.to_owned(), Device::default()));
                    devices.len() - 1
                }
            };
            let d = &mut devices[slot].1;
            d.path = path.to_owned();
            let Node::Map(_) = def else {
                // `eth0: {}` written as `eth0:` is a null scalar: a device with defaults.
                if def
                    .scalar()
                    .is_some_and(|s| s.is_empty() || s == "~" || s == "null")
                {
                    continue;
                }
                return Err(format!("`{}` is {}, not a mapping", at(""), def.kind()));
            };
            for (flag, field) in [("dhcp4", &mut d.dhcp4), ("dhcp6", &mut d.dhcp6)] {
                if let Some(v) = def.get(flag) {
                    *field = Some(parse_bool(v).ok_or_else(|| {
                        format!(
                            "`{}` is not a boolean: {:?}",
                            at(flag),
                            clip(v.scalar().unwrap_or(""))
                        )
                    })?);
                }
            }
            if let Some(list) = def.get("addresses") {
                let Node::Seq(items) = list else {
                    return Err(format!(
                        "`{}` is {}, not a list",
                        at("addresses"),
                        list.kind()
                    ));
                };
                let mut addresses = Vec::new();
                for item in items {
                    // "10.0.0.5/24", or `- 10.0.0.5/24: {lifetime: 0, label: ...}`.
                    let text = match item {
                        Node::Scalar(s) => s.as_str(),
                        Node::Map(pairs) if pairs.len() == 1 => {
                            pairs[0].0.scalar().unwrap_or_default()
                        }
                        other => {
                            return Err(format!("`{}` has {}", at("addresses"), other.kind()));
                        }
                    };
                    addresses
                        .push(parse_ip(text).map_err(|e| format!("`{}`: {e}", at("addresses")))?);
                }
                d.addresses = Some(addresses);
            }
            if let Some(m) = def.get("match") {
                d.has_match = true;
                if let Some(name) = m.get("name").and_then(Node::scalar) {
                    d.match_names = Some(vec![name.to_owned()]);
                }
                if let Some(mac) = m.get("macaddress").and_then(Node::scalar) {
                    let mac = normalize_mac(mac).ok_or_else(|| {
                        format!("`{}` is not a MAC address", at("match.macaddress"))
                    })?;
                    d.match_macs = Some(vec![mac]);
                }
            }
            if let Some(name) = def.get("set-name").and_then(Node::scalar) {
                d.set_name = Some(name.to_owned());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Node {
        Node::Scalar(v.into())
    }

    #[test]
    fn yaml_tree_with_flow_anchors_and_quotes() {
        let tree = parse_yaml(
            "# comment\nnetwork:\n  version: 2\n  ethernets:\n    eth0: &base\n      dhcp4: 'yes'\n\
             \x20     addresses: [10.0.0.5/24, \"2001:db8::5/64\"]\n    eth1: *base\n",
        )
        .expect("valid")
        .expect("a document");
        let eth = tree
            .get("network")
            .and_then(|n| n.get("ethernets"))
            .expect("ethernets");
        let eth0 = eth.get("eth0").expect("eth0");
        assert_eq!(eth0.get("dhcp4"), Some(&s("yes")));
        assert_eq!(
            eth0.get("addresses"),
            Some(&Node::Seq(vec![s("10.0.0.5/24"), s("2001:db8::5/64")]))
        );
        assert_eq!(
            eth.get("eth1"),
            Some(eth0),
            "alias copies the anchored node"
        );
        assert_eq!(parse_yaml("").expect("empty is valid"), None);
        assert!(parse_yaml("network: [unclosed\n").is_err());
        assert!(
            parse_yaml("a:\n  b: 1\n c: 2\n").is_err(),
            "bad indentation"
        );
    }

    #[test]
    fn alias_bomb_is_bounded() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = parse_yaml(&text).expect_err("too many nodes");
        assert!(err.contains("YAML nodes"), "{err}");
    }

    #[test]
    fn merge_later_files_override_keys() {
        let mut devices = Vec::new();
        merge_file(
            "network:\n  ethernets:\n    eth0:\n      dhcp4: true\n      addresses: [10.0.0.5/24]\n",
            "/etc/netplan/01.yaml",
            &mut devices,
        )
        .expect("valid");
        merge_file(
            "network:\n  ethernets:\n    eth0:\n      addresses:\n        - 10.0.0.6/24:\n            label: eth0:1\n",
            "/etc/netplan/02.yaml",
            &mut devices,
        )
        .expect("valid");
        let d = &devices[0].1;
        assert_eq!(d.dhcp4, Some(true));
        assert_eq!(
            d.addresses,
            Some(vec!["10.0.0.6".parse::<IpAddr>().expect("ip")])
        );
        assert_eq!(d.path, "/etc/netplan/02.yaml");
        let err = merge_file(
            "network:\n  ethernets:\n    eth0:\n      dhcp4: sometimes\n",
            "/x",
            &mut devices,
        )
        .expect_err("bad boolean");
        assert!(err.contains("network.ethernets.eth0.dhcp4"), "{err}");
        let err = merge_file("network: 2\n", "/x", &mut devices).expect_err("not a mapping");
        assert!(err.contains("not a mapping"), "{err}");
    }
}
