//! Decides for every interface address whether the OS configures it statically or by DHCP (Pingdu
//! Measures art. 14: terminals use static, registered addresses), from what the OS really uses.
//!
//! # Sources
//!
//! Every reader takes a root directory (`/` in production, a fixture tree in tests) and reads
//! the paths below it:
//!
//! - **systemd-networkd**: `*.network` files in `/etc/systemd/network`, `/run/systemd/network`,
//!   `/usr/local/lib/systemd/network`, `/usr/lib/systemd/network`, `/lib/systemd/network` (a
//!   name in an earlier directory hides the same name in later ones, so an empty file or a
//!   symlink to `/dev/null` masks it), with their `<name>.network.d/*.conf` drop-ins. `[Match] Name=`
//!   (globs, `!` inverts), `MACAddress=`/`PermanentMACAddress=`; other match keys (`Type=`,
//!   `Driver=`, ...) cannot be checked from files and are assumed to match *if* a name or MAC
//!   matched; a file with neither matches nothing (unless networkd says it applied it).
//!   `[Network] DHCP=`, `[Network] Address=`, `[Address] Address=`. Runtime state:
//!   `/run/systemd/netif/links/<ifindex>` (`ADMIN_STATE=`, `NETWORK_FILE=`).
//! - **NetworkManager** keyfiles: `/run/NetworkManager/system-connections`,
//!   `/etc/NetworkManager/system-connections`, `/usr/lib/NetworkManager/system-connections`
//!   (`*.nmconnection` and extension-less legacy names). `[connection] interface-name=`,
//!   `uuid=`, `[ethernet] mac-address=`, `[match] interface-name=`; `[ipv4]`/`[ipv6]`
//!   `method=` (absent: `auto`) and `address1=`/`addresses=`. Port profiles (`master=`,
//!   `controller=`) carry no IP configuration. Runtime state:
//!   `/run/NetworkManager/devices/<ifindex>` (`managed=`, `connection-uuid=`).
//!   Keyfiles are usually root-only: an agent without read access logs that and falls back.
//! - **ifupdown**: `/etc/network/interfaces` with its `source` (globs, relative to the including
//!   file's directory) and `source-directory` includes, at most 8 deep. `iface NAME inet
//!   static|dhcp|bootp|ipv4ll|manual|...` and `inet6 static|dhcp|auto` (`auto` counts as
//!   DHCPv6 only with `dhcp 1`); `address` (with `/prefix` or a separate `netmask`). Alias
//!   stanzas `eth0:1` belong to `eth0`; `manual` and `loopback` say nothing about addresses.
//!   Runtime state: `/run/network/ifstate` and `/run/network/ifstate.<iface>`.
//! - **netplan**: `*.yaml` in `/lib/netplan`, `/etc/netplan`, `/run/netplan` (a name in `/run`
//!   hides `/etc` hides `/lib`), merged in file-name order, later keys overriding earlier ones
//!   (the `addresses` list is replaced, not appended). Device kinds `ethernets`, `bonds`,
//!   `bridges`, `vlans`, `wifis`, ...: `dhcp4`, `dhcp6`, `addresses` (strings or the
//!   `- ADDR: {options}` form), `match: {name, macaddress}` and `set-name`; a `match` with only
//!   other keys (`driver`) and no `set-name` matches nothing. YAML is parsed by
//!   `saphyr-parser` (a maintained, safe-Rust YAML 1.2 event parser whose only dependencies are
//!   `arraydeque` and `thiserror`) into a small tree here, with anchors/aliases resolved and
//!   nodes capped; `serde_yaml` is deprecated, and its forks bring a C-to-Rust translation of
//!   libyaml (`unsafe-libyaml`), several times larger, for serde support this does not need. A
//!   hand-written parser would misread flow collections, quoting and block scalars.
//! - **DHCP leases**: dhclient (`/var/lib/dhcp/dhclient*.lease[s]`, `/var/lib/dhclient/*.lease*`,
//!   NetworkManager's `/var/lib/NetworkManager/dhclient*-*.lease`: `lease { interface "eth0";
//!   fixed-address ...; }` and `lease6 { ... iaaddr ... }`), systemd-networkd
//!   (`/run/systemd/netif/leases/<ifindex>`, `ADDRESS=`), NetworkManager's internal client
//!   (`/var/lib/NetworkManager/internal-<uuid>-<iface>.lease`, `ADDRESS=`) and dhcpcd's binary
//!   IPv4 leases (`/var/lib/dhcpcd{,5}/`, `/var/db/dhcpcd/`: `<iface>[-ssid].lease`, the raw
//!   DHCP message whose `yiaddr` is the address; its `.lease6` files are skipped). Lease expiry
//!   is not checked: stale leases are why configuration files come first.
//! - **the kernel**: the flags and lifetimes of every address, over rtnetlink (see
//!   [`crate::netlink`]; no `ip` process): an address without the permanent flag
//!   (`IFA_F_PERMANENT`), or with a finite valid lifetime, was handed out for a time.
//!
//! # Precedence
//!
//! For each address, IPv4 and IPv6 separately (`dhcp4`/`dhcp6`):
//!
//! 1. **The configuration that manages the interface.** Runtime state decides first:
//!    networkd's `NETWORK_FILE`, then NetworkManager's `connection-uuid`, then ifupdown's
//!    `ifstate`. A manager whose runtime state names a file we cannot use (unreadable,
//!    malformed, an in-memory NetworkManager profile) leaves the interface without
//!    configuration: another manager's file is not consulted. Without runtime state, the first
//!    file that names the interface (by name glob or MAC) in the order ifupdown, netplan,
//!    networkd, NetworkManager, skipping a manager whose runtime state says "unmanaged"
//!    (ifupdown first because NetworkManager leaves ifupdown's interfaces alone by default;
//!    netplan before the networkd/NetworkManager files it generates). In that file, an address
//!    listed statically is `static`; otherwise, if the file runs DHCP for the family, the
//!    address is `dhcp` (for IPv6 only a `/128`: see below).
//! 2. **Link-local addresses** (`169.254/16`, `fe80::/10`) are made by the kernel or by
//!    autoconfiguration, neither static nor DHCP: `unknown`, source `kernel:link-local`.
//! 3. **A DHCP lease naming the address** (on that interface, where the lease says): `dhcp`.
//! 4. **The kernel flag**: a dynamic IPv4 address is `dhcp` (`kernel:dynamic`). A dynamic IPv6
//!    address is `dhcp` only as a `/128` — DHCPv6 hands out single addresses, which
//!    networkd, NetworkManager, dhclient and dhcpcd install as `/128` — and otherwise
//!    router-advertised (SLAAC, also when the kernel marks it `IFAPROT_KERNEL_RA`): `unknown`,
//!    source `kernel:slaac`. SLAAC addresses are neither static nor leased; the daemon decides
//!    what they mean for the registry.
//! 5. Otherwise `unknown` with no source. A permanent address that no file explains (set by
//!    hand, by cloud-init into a format not read here such as ifcfg-rh, or by dhclient, which
//!    installs permanent addresses) is *not* guessed to be static.
//!
//! `config_source` is `"<source>:<path>"`, e.g. `systemd-networkd:/etc/systemd/network/10-eth0.network`,
//! `dhcp-lease:/var/lib/dhcp/dhclient.eth0.leases` or `kernel:dynamic`.
//!
//! # Errors
//!
//! A file that cannot be read or parsed, or holds a value that cannot be understood, is left
//! out whole (a half-understood file could claim the wrong method) and recorded as a
//! [`Problem`]; its interface falls back to the later steps and, with no other evidence, stays
//! `unknown`. [`Classifier`] logs problems at a limited rate. Nothing here panics on input.

mod ifupdown;
mod ini;
mod kernel;
mod leases;
mod netplan;
mod networkd;
mod nm;

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use kernel::{KernelAddr, KernelView};

use crate::ratelimit::LogLimiter;
use crate::wire::{AddressConfig, Interface};

/// How long configuration files, runtime state and leases are reused before being read again.
pub const REFRESH: Duration = Duration::from_secs(60);

/// Files larger than this are not read (configuration and lease files are a few KiB).
const MAX_FILE: u64 = 4 * 1024 * 1024;

/// Problems listed in one log line; the rest are counted.
const MAX_LOGGED_PROBLEMS: usize = 8;

/// A file that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The path on the machine, e.g. "/etc/netplan/50-cloud-init.yaml".
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// The software whose configuration files are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Manager {
    Ifupdown,
    Netplan,
    Networkd,
    NetworkManager,
}

impl Manager {
    /// The prefix of `config_source`.
    pub fn label(self) -> &'static str {
        match self {
            Manager::Ifupdown => "ifupdown",
            Manager::Netplan => "netplan",
            Manager::Networkd => "systemd-networkd",
            Manager::NetworkManager => "networkmanager",
        }
    }
}

/// What one configuration says about one address family of one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyPlan {
    /// A DHCP client runs for this family (DHCPv4, or DHCPv6 for IPv6).
    pub dhcp: bool,
    /// Addresses assigned statically.
    pub addresses: Vec<IpAddr>,
    /// `config_source` for verdicts drawn from this plan, e.g. "ifupdown:/etc/network/interfaces".
    pub source: String,
}

/// Which interfaces a configuration applies to: all name globs must match (or, inverted, none)
/// and the MAC must be one of `macs`, for the lists that are not empty. Both empty: none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matcher {
    pub names: Vec<String>,
    pub invert_names: bool,
    /// Lower-case, colon-separated.
    pub macs: Vec<String>,
}

impl Matcher {
    /// A matcher for exactly one interface name.
    pub fn name(name: &str) -> Self {
        Matcher {
            names: vec![name.to_owned()],
            ..Matcher::default()
        }
    }

    pub fn matches(&self, name: &str, mac: Option<&str>) -> bool {
        if self.names.is_empty() && self.macs.is_empty() {
            return false;
        }
        if !self.names.is_empty() && self.names.iter().any(|g| glob(g, name)) == self.invert_names {
            return false;
        }
        if !self.macs.is_empty() {
            let Some(mac) = mac else { return false };
            let mac = mac.to_ascii_lowercase();
            if !self.macs.contains(&mac) {
                return false;
            }
        }
        true
    }
}

/// One configuration file's (or merged netplan device's) settings for the interfaces it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub manager: Manager,
    /// The path on the machine; for networkd the path `NETWORK_FILE=` names.
    pub path: String,
    pub matcher: Matcher,
    /// `None`: the configuration leaves this family alone (e.g. ifupdown `manual`).
    pub v4: Option<FamilyPlan>,
    pub v6: Option<FamilyPlan>,
    /// NetworkManager's connection UUID.
    pub uuid: Option<String>,
}

impl ConfigEntry {
    fn plan(&self, ip: IpAddr) -> Option<&FamilyPlan> {
        match ip {
            IpAddr::V4(_) => self.v4.as_ref(),
            IpAddr::V6(_) => self.v6.as_ref(),
        }
    }
}

/// What the running network managers say about one interface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IfaceRuntime {
    /// networkd applied this `.network` file.
    pub networkd_file: Option<String>,
    /// networkd says `ADMIN_STATE=unmanaged`.
    pub networkd_unmanaged: bool,
    /// NetworkManager activated the connection with this UUID.
    pub nm_uuid: Option<String>,
    /// NetworkManager says `managed=false`.
    pub nm_unmanaged: bool,
    /// ifupdown brought the interface up.
    pub ifupdown_up: bool,
}

impl IfaceRuntime {
    fn excludes(&self, manager: Manager) -> bool {
        match manager {
            Manager::Networkd => self.networkd_unmanaged,
            Manager::NetworkManager => self.nm_unmanaged,
            Manager::Ifupdown | Manager::Netplan => false,
        }
    }
}

/// An address some DHCP client obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The interface the lease names, if it names one; `dhcpcd`'s `eth0-ssid` matches `eth0`.
    pub interface: Option<String>,
    pub ip: IpAddr,
    /// e.g. "dhcp-lease:/var/lib/dhcp/dhclient.eth0.leases".
    pub source: String,
}

impl Lease {
    fn applies_to(&self, iface: &str) -> bool {
        match &self.interface {
            None => true,
            Some(n) => {
                n == iface || (n.starts_with(iface) && n.as_bytes().get(iface.len()) == Some(&b'-'))
            }
        }
    }
}

/// Everything read from files at one moment: configurations, runtime state, leases, problems.
#[derive(Debug, Clone, Default)]
pub struct NetConfig {
    /// In the order used without runtime state: ifupdown, netplan, networkd, NetworkManager.
    pub entries: Vec<ConfigEntry>,
    /// By interface name.
    pub runtime: HashMap<String, IfaceRuntime>,
    pub leases: Vec<Lease>,
    pub problems: Vec<Problem>,
}

impl NetConfig {
    /// Reads every source below `root`. Never fails: what cannot be read is in `problems`.
    pub fn read(root: &Path) -> Self {
        let mut r = Reader::new(root);
        let ifindex = read_ifindex(&mut r);
        let mut entries = ifupdown::read(&mut r);
        entries.extend(netplan::read(&mut r));
        entries.extend(networkd::read(&mut r));
        entries.extend(nm::read(&mut r));
        let mut runtime = HashMap::new();
        networkd::runtime(&mut r, &ifindex, &mut runtime);
        nm::runtime(&mut r, &ifindex, &mut runtime);
        ifupdown::runtime(&mut r, &mut runtime);
        let leases = leases::read(&mut r, &ifindex);
        NetConfig {
            entries,
            runtime,
            leases,
            problems: r.problems,
        }
    }

    /// The configuration that manages `name` (see the module documentation), if any.
    pub fn managing_entry(&self, name: &str, mac: Option<&str>) -> Option<&ConfigEntry> {
        let rt = self.runtime.get(name);
        if let Some(rt) = rt {
            if let Some(file) = &rt.networkd_file {
                return self
                    .entries
                    .iter()
                    .find(|e| e.manager == Manager::Networkd && &e.path == file);
            }
            if let Some(uuid) = &rt.nm_uuid {
                return self.entries.iter().find(|e| {
                    e.manager == Manager::NetworkManager && e.uuid.as_deref() == Some(uuid)
                });
            }
            if rt.ifupdown_up
                && let Some(e) = self
                    .entries
                    .iter()
                    .find(|e| e.manager == Manager::Ifupdown && e.matcher.matches(name, mac))
            {
                return Some(e);
            }
        }
        self.entries.iter().find(|e| {
            !rt.is_some_and(|rt| rt.excludes(e.manager))
                && (e.v4.is_some() || e.v6.is_some())
                && e.matcher.matches(name, mac)
        })
    }

    /// How `ip`/`prefix` on interface `iface` is configured, and where that was read.
    pub fn decide(
        &self,
        kernel: &KernelView,
        iface: &str,
        mac: Option<&str>,
        ip: IpAddr,
        prefix: u8,
    ) -> (AddressConfig, Option<String>) {
        let plan = self.managing_entry(iface, mac).and_then(|e| e.plan(ip));
        if let Some(plan) = plan
            && plan.addresses.contains(&ip)
        {
            return (AddressConfig::Static, Some(plan.source.clone()));
        }
        if is_link_local(ip) {
            return (AddressConfig::Unknown, Some("kernel:link-local".into()));
        }
        if let Some(plan) = plan
            && plan.dhcp
            && (ip.is_ipv4() || prefix == 128)
        {
            return (AddressConfig::Dhcp, Some(plan.source.clone()));
        }
        if let Some(lease) = self
            .leases
            .iter()
            .find(|l| l.ip == ip && l.applies_to(iface))
        {
            return (AddressConfig::Dhcp, Some(lease.source.clone()));
        }
        if let Some(k) = kernel.get(iface, ip) {
            if ip.is_ipv6() && (k.router_advertised || (k.dynamic && prefix != 128)) {
                return (AddressConfig::Unknown, Some("kernel:slaac".into()));
            }
            if k.dynamic {
                return (AddressConfig::Dhcp, Some("kernel:dynamic".into()));
            }
        }
        (AddressConfig::Unknown, None)
    }

    /// Fills `config` and `config_source` of every address of `interfaces`.
    pub fn classify(&self, kernel: &KernelView, interfaces: &mut [Interface]) {
        for iface in interfaces {
            for a in &mut iface.addresses {
                let (config, source) =
                    self.decide(kernel, &iface.name, iface.mac.as_deref(), a.ip, a.prefix);
                a.config = config;
                a.config_source = source;
            }
        }
    }
}

fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_unicast_link_local(),
    }
}

/// Classifies the addresses of collected interfaces, re-reading files at most every
/// [`REFRESH`]; the kernel's view comes with every call. Logs problems at a limited rate.
#[derive(Debug)]
pub struct Classifier {
    root: PathBuf,
    refresh: Duration,
    cached: Option<(Instant, NetConfig)>,
    limiter: LogLimiter,
}

impl Classifier {
    /// Reads configuration files, runtime state and leases below `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Classifier {
            root: root.into(),
            refresh: REFRESH,
            cached: None,
            limiter: LogLimiter::default(),
        }
    }

    /// This machine: root `/`.
    pub fn system() -> Self {
        Self::new("/")
    }

    /// Re-read files after `refresh` instead of [`REFRESH`] (`Duration::ZERO`: on every call).
    pub fn with_refresh(mut self, refresh: Duration) -> Self {
        self.refresh = refresh;
        self
    }

    /// The files' view, read again if older than the refresh period.
    pub fn config(&mut self) -> &NetConfig {
        let current = match self.cached.take() {
            Some((at, config)) if at.elapsed() < self.refresh => (at, config),
            _ => {
                let config = NetConfig::read(&self.root);
                log_problems(&config.problems, &mut self.limiter);
                (Instant::now(), config)
            }
        };
        &self.cached.insert(current).1
    }

    /// Fills `config`/`config_source` of every address, with the kernel's view `kernel`.
    pub fn classify(&mut self, kernel: &KernelView, interfaces: &mut [Interface]) {
        self.config().classify(kernel, interfaces);
    }
}

fn log_problems(problems: &[Problem], limiter: &mut LogLimiter) {
    if problems.is_empty() {
        return;
    }
    if let Some(suppressed) = limiter.allow("netconfig") {
        let mut list: Vec<String> = problems
            .iter()
            .take(MAX_LOGGED_PROBLEMS)
            .map(Problem::to_string)
            .collect();
        if problems.len() > MAX_LOGGED_PROBLEMS {
            list.push(format!("and {} more", problems.len() - MAX_LOGGED_PROBLEMS));
        }
        tracing::warn!(
            kind = "netconfig",
            count = problems.len(),
            problems = list.join("; "),
            suppressed,
            "network configuration files left out; their addresses fall back to leases and the kernel, else unknown"
        );
    }
}

/// Interface names by ifindex, from `/sys/class/net/<name>/ifindex`.
fn read_ifindex(r: &mut Reader) -> HashMap<u32, String> {
    let mut out = HashMap::new();
    for name in r.list("/sys/class/net") {
        if let Some(text) = r.text_quiet(&format!("/sys/class/net/{name}/ifindex"))
            && let Ok(index) = text.trim().parse::<u32>()
        {
            out.insert(index, name);
        }
    }
    out
}

/// Reads files below a root directory, recording what could not be read.
pub(crate) struct Reader<'a> {
    root: &'a Path,
    pub(crate) problems: Vec<Problem>,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(root: &'a Path) -> Self {
        Reader {
            root,
            problems: Vec::new(),
        }
    }

    /// Where `os_path` (an absolute path on the machine) is below the root.
    pub(crate) fn host_path(&self, os_path: &str) -> PathBuf {
        self.root.join(os_path.trim_start_matches('/'))
    }

    pub(crate) fn problem(&mut self, os_path: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            path: os_path.to_owned(),
            message: message.into(),
        });
    }

    /// The bytes of a file; `None` if it does not exist (silently) or cannot be read (recorded).
    pub(crate) fn bytes(&mut self, os_path: &str) -> Option<Vec<u8>> {
        match read_capped(&self.host_path(os_path)) {
            Ok(bytes) => bytes,
            Err(e) => {
                self.problem(os_path, e);
                None
            }
        }
    }

    /// The text of a file; `None` if it does not exist (silently) or cannot be read (recorded).
    pub(crate) fn text(&mut self, os_path: &str) -> Option<String> {
        let bytes = self.bytes(os_path)?;
        match String::from_utf8(bytes) {
            Ok(text) => Some(text),
            Err(_) => {
                self.problem(os_path, "not UTF-8 text");
                None
            }
        }
    }

    /// Like [`Reader::text`], recording nothing (for kernel files that may vanish any time).
    pub(crate) fn text_quiet(&self, os_path: &str) -> Option<String> {
        read_capped(&self.host_path(os_path))
            .ok()
            .flatten()
            .and_then(|b| String::from_utf8(b).ok())
    }

    /// Names in a directory, sorted; empty if it does not exist. Non-UTF-8 names are skipped.
    pub(crate) fn list(&mut self, os_dir: &str) -> Vec<String> {
        let dir = self.host_path(os_dir);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                return Vec::new();
            }
            Err(e) => {
                self.problem(os_dir, format!("cannot list: {e}"));
                return Vec::new();
            }
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        names
    }
}

/// `Ok(None)` for a missing file; `Err` for any other failure or a file over [`MAX_FILE`].
fn read_capped(path: &Path) -> Result<Option<Vec<u8>>, String> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read: {e}")),
    };
    let mut bytes = Vec::new();
    file.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(format!("larger than {MAX_FILE} bytes"));
    }
    Ok(Some(bytes))
}

/// Shell-style pattern matching as `fnmatch(3)` without flags: `*`, `?`, `[abc]`, `[a-z]`,
/// `[!a]`/`[^a]`, and `\` escaping the next character.
pub fn glob(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    // Where to resume after the last `*`: (pattern index after it, name index it took up to).
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi + 1, ni));
                pi += 1;
                continue;
            }
            Some('?') => Some(1),
            Some('[') => match class(&p[pi..], n[ni]) {
                Some((true, len)) => Some(len),
                Some((false, _)) => None,
                // An unterminated `[` is a literal.
                None => (n[ni] == '[').then_some(1),
            },
            Some('\\') if pi + 1 < p.len() => (p[pi + 1] == n[ni]).then_some(2),
            Some(c) => (*c == n[ni]).then_some(1),
            None => None,
        };
        match step {
            Some(len) => {
                pi += len;
                ni += 1;
            }
            None => match star {
                Some((sp, sn)) => {
                    pi = sp;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Matches `c` against the bracket expression at the start of `p`: `(matched, length)`, or
/// `None` if the bracket is not closed.
fn class(p: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let lo = *p.get(i)?;
        if lo == ']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|h| *h != ']') {
            let hi = p[i + 2];
            matched |= lo <= c && c <= hi;
            i += 3;
        } else {
            matched |= lo == c;
            i += 1;
        }
    }
}

/// An IP address from `ADDR` or `ADDR/PREFIX`, or why not.
pub(crate) fn parse_ip(text: &str) -> Result<IpAddr, String> {
    let addr = text.split('/').next().unwrap_or(text).trim();
    // `fe80::1%eth0` zone suffixes appear in some files.
    let addr = addr.split('%').next().unwrap_or(addr);
    addr.parse()
        .map_err(|_| format!("{text:?} is not an IP address"))
}

/// A MAC address in lower-case colon form, accepting `-` separators; `None` if malformed.
pub(crate) fn normalize_mac(text: &str) -> Option<String> {
    let mac = text.trim().to_ascii_lowercase().replace('-', ":");
    let ok = mac.len() == 17
        && mac
            .split(':')
            .all(|b| b.len() == 2 && b.chars().all(|c| c.is_ascii_hexdigit()));
    ok.then_some(mac)
}

/// Splits addresses by family into a pair of plans with one source.
pub(crate) fn plans(
    dhcp4: bool,
    dhcp6: bool,
    addresses: &[IpAddr],
    source: &str,
) -> (FamilyPlan, FamilyPlan) {
    let (v4, v6): (Vec<IpAddr>, Vec<IpAddr>) = addresses.iter().partition(|a| a.is_ipv4());
    (
        FamilyPlan {
            dhcp: dhcp4,
            addresses: v4,
            source: source.to_owned(),
        },
        FamilyPlan {
            dhcp: dhcp6,
            addresses: v6,
            source: source.to_owned(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Address;

    #[test]
    fn glob_matches_like_fnmatch() {
        for (p, n) in [
            ("eth0", "eth0"),
            ("en*", "enp0s3"),
            ("en*", "en"),
            ("e?h0", "eth0"),
            ("*0", "eth0"),
            ("eth[0-3]", "eth2"),
            ("eth[!0]", "eth1"),
            ("eth[^0]", "eth1"),
            ("*p*s*", "enp0s3"),
            ("a\\*", "a*"),
            ("[]x]", "]"),
        ] {
            assert!(glob(p, n), "{p} should match {n}");
        }
        for (p, n) in [
            ("eth0", "eth1"),
            ("en*", "eth0"),
            ("e?h0", "eh0"),
            ("eth[0-3]", "eth4"),
            ("eth[!0]", "eth0"),
            ("a\\*", "ab"),
            ("eth0", "eth00"),
            ("", "x"),
        ] {
            assert!(!glob(p, n), "{p} should not match {n}");
        }
    }

    #[test]
    fn matcher_needs_names_or_macs_and_honours_inversion() {
        assert!(!Matcher::default().matches("eth0", None));
        let m = Matcher {
            names: vec!["eth0".into()],
            invert_names: true,
            macs: vec![],
        };
        assert!(!m.matches("eth0", None));
        assert!(m.matches("eth1", None));
        let m = Matcher {
            names: vec!["en*".into()],
            invert_names: false,
            macs: vec!["52:54:00:00:00:01".into()],
        };
        assert!(m.matches("ens3", Some("52:54:00:00:00:01")));
        assert!(m.matches("ens3", Some("52:54:00:00:00:01".to_uppercase().as_str())));
        assert!(!m.matches("ens3", Some("52:54:00:00:00:02")));
        assert!(!m.matches("ens3", None));
        assert!(!m.matches("eth0", Some("52:54:00:00:00:01")));
    }

    fn entry(manager: Manager, path: &str, name: &str, dhcp: bool, addrs: &[&str]) -> ConfigEntry {
        let addrs: Vec<IpAddr> = addrs.iter().map(|a| a.parse().expect("ip")).collect();
        let source = format!("{}:{path}", manager.label());
        let (v4, v6) = plans(dhcp, dhcp, &addrs, &source);
        ConfigEntry {
            manager,
            path: path.into(),
            matcher: Matcher::name(name),
            v4: Some(v4),
            v6: Some(v6),
            uuid: None,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn precedence_config_then_link_local_then_lease_then_kernel() {
        let mut kernel = KernelView::default();
        kernel.insert("eth0", ip("10.0.0.9"), KernelAddr::dynamic());
        kernel.insert("eth1", ip("10.1.0.9"), KernelAddr::dynamic());
        kernel.insert("eth1", ip("10.1.0.8"), KernelAddr::permanent());
        kernel.insert("eth1", ip("2001:db8::5"), KernelAddr::dynamic());
        kernel.insert("eth1", ip("2001:db8:1::5"), KernelAddr::dynamic());
        kernel.insert(
            "eth1",
            ip("2001:db8:2::5"),
            KernelAddr {
                dynamic: false,
                router_advertised: true,
            },
        );
        let cfg = NetConfig {
            entries: vec![entry(
                Manager::Ifupdown,
                "/etc/network/interfaces",
                "eth0",
                false,
                &["10.0.0.5", "fe80::5"],
            )],
            leases: vec![Lease {
                interface: Some("eth1".into()),
                ip: ip("10.1.0.7"),
                source: "dhcp-lease:/x".into(),
            }],
            ..NetConfig::default()
        };
        let d = |iface: &str, addr: &str, prefix: u8| {
            let (c, s) = cfg.decide(&kernel, iface, None, ip(addr), prefix);
            (c, s.unwrap_or_default())
        };
        let src = "ifupdown:/etc/network/interfaces".to_owned();
        assert_eq!(
            d("eth0", "10.0.0.5", 24),
            (AddressConfig::Static, src.clone())
        );
        // A static config that lists a link-local address wins over the link-local rule.
        assert_eq!(d("eth0", "fe80::5", 64), (AddressConfig::Static, src));
        assert_eq!(
            d("eth0", "fe80::6", 64),
            (AddressConfig::Unknown, "kernel:link-local".into())
        );
        assert_eq!(
            d("eth0", "169.254.1.1", 16),
            (AddressConfig::Unknown, "kernel:link-local".into())
        );
        // Not in the static list: the kernel flag decides.
        assert_eq!(
            d("eth0", "10.0.0.9", 24),
            (AddressConfig::Dhcp, "kernel:dynamic".into())
        );
        assert_eq!(
            d("eth1", "10.1.0.7", 24),
            (AddressConfig::Dhcp, "dhcp-lease:/x".into())
        );
        // A lease for another interface does not count.
        assert_eq!(
            d("eth2", "10.1.0.7", 24),
            (AddressConfig::Unknown, String::new())
        );
        assert_eq!(
            d("eth1", "10.1.0.9", 24),
            (AddressConfig::Dhcp, "kernel:dynamic".into())
        );
        assert_eq!(
            d("eth1", "10.1.0.8", 24),
            (AddressConfig::Unknown, String::new())
        );
        assert_eq!(
            d("eth1", "2001:db8::5", 128),
            (AddressConfig::Dhcp, "kernel:dynamic".into())
        );
        assert_eq!(
            d("eth1", "2001:db8:1::5", 64),
            (AddressConfig::Unknown, "kernel:slaac".into())
        );
        assert_eq!(
            d("eth1", "2001:db8:2::5", 64),
            (AddressConfig::Unknown, "kernel:slaac".into())
        );
    }

    #[test]
    fn dhcp_config_claims_ipv4_and_ipv6_128_only() {
        let cfg = NetConfig {
            entries: vec![entry(
                Manager::Netplan,
                "/etc/netplan/a.yaml",
                "eth0",
                true,
                &[],
            )],
            ..NetConfig::default()
        };
        let mut kernel = KernelView::default();
        kernel.insert("eth0", ip("2001:db8::1:5"), KernelAddr::dynamic());
        let d = |addr: &str, prefix: u8| cfg.decide(&kernel, "eth0", None, ip(addr), prefix).0;
        assert_eq!(d("10.0.0.5", 24), AddressConfig::Dhcp);
        assert_eq!(d("2001:db8::5", 128), AddressConfig::Dhcp);
        assert_eq!(d("2001:db8::1:5", 64), AddressConfig::Unknown);
    }

    #[test]
    fn runtime_state_picks_the_file_and_unmanaged_excludes() {
        let mut cfg = NetConfig {
            entries: vec![
                entry(
                    Manager::Ifupdown,
                    "/etc/network/interfaces",
                    "eth0",
                    true,
                    &[],
                ),
                entry(
                    Manager::Networkd,
                    "/etc/systemd/network/a.network",
                    "eth0",
                    false,
                    &["10.0.0.5"],
                ),
                entry(
                    Manager::NetworkManager,
                    "/etc/NetworkManager/x",
                    "eth1",
                    false,
                    &["10.0.1.5"],
                ),
            ],
            ..NetConfig::default()
        };
        let k = KernelView::default();
        let d =
            |cfg: &NetConfig, iface: &str, addr: &str| cfg.decide(&k, iface, None, ip(addr), 24);
        // Without runtime state, ifupdown comes first (and says DHCP).
        assert_eq!(d(&cfg, "eth0", "10.0.0.5").0, AddressConfig::Dhcp);
        cfg.runtime.insert(
            "eth0".into(),
            IfaceRuntime {
                networkd_file: Some("/etc/systemd/network/a.network".into()),
                ..IfaceRuntime::default()
            },
        );
        assert_eq!(
            d(&cfg, "eth0", "10.0.0.5"),
            (
                AddressConfig::Static,
                Some("systemd-networkd:/etc/systemd/network/a.network".into())
            )
        );
        // networkd applied a file we do not have: no other manager's file is used.
        cfg.runtime.insert(
            "eth0".into(),
            IfaceRuntime {
                networkd_file: Some("/run/systemd/network/gone.network".into()),
                ..IfaceRuntime::default()
            },
        );
        assert_eq!(d(&cfg, "eth0", "10.0.0.5"), (AddressConfig::Unknown, None));
        assert_eq!(d(&cfg, "eth1", "10.0.1.5").0, AddressConfig::Static);
        cfg.runtime.insert(
            "eth1".into(),
            IfaceRuntime {
                nm_unmanaged: true,
                ..IfaceRuntime::default()
            },
        );
        assert_eq!(d(&cfg, "eth1", "10.0.1.5").0, AddressConfig::Unknown);
    }

    #[test]
    fn classify_fills_every_address() {
        let cfg = NetConfig {
            entries: vec![entry(Manager::Ifupdown, "/e", "eth0", false, &["10.0.0.5"])],
            ..NetConfig::default()
        };
        let addr = |s: &str| Address {
            ip: ip(s),
            prefix: 24,
            config: AddressConfig::Unknown,
            config_source: Some("stale".into()),
        };
        let mut ifaces = vec![Interface {
            name: "eth0".into(),
            mac: None,
            addresses: vec![addr("10.0.0.5"), addr("10.0.0.6")],
        }];
        cfg.classify(&KernelView::default(), &mut ifaces);
        assert_eq!(ifaces[0].addresses[0].config, AddressConfig::Static);
        assert_eq!(
            ifaces[0].addresses[0].config_source.as_deref(),
            Some("ifupdown:/e")
        );
        assert_eq!(ifaces[0].addresses[1].config, AddressConfig::Unknown);
        assert_eq!(ifaces[0].addresses[1].config_source, None);
    }

    #[test]
    fn helpers() {
        assert_eq!(parse_ip("10.0.0.5/24"), Ok(ip("10.0.0.5")));
        assert_eq!(parse_ip("fe80::1%eth0"), Ok(ip("fe80::1")));
        assert!(parse_ip("10.0.0.300").is_err());
        assert_eq!(
            normalize_mac("52-54-00-AB-cd-01").as_deref(),
            Some("52:54:00:ab:cd:01")
        );
        assert_eq!(normalize_mac("52:54:00:ab:cd"), None);
        let lease = Lease {
            interface: Some("wlan0-home".into()),
            ip: ip("10.0.0.1"),
            source: String::new(),
        };
        assert!(lease.applies_to("wlan0"));
        assert!(!lease.applies_to("wlan"));
    }
}
