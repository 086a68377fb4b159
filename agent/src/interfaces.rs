//! The VM's network as one collection reports it: interfaces with their addresses (classified
//! static/DHCP by [`crate::netconfig`]), the neighbour table ([`crate::neighbours`]), and the
//! traffic rates since the previous reading.
//!
//! On Linux everything comes from three rtnetlink dumps per collection ([`crate::netlink`]:
//! links, addresses, neighbours) on one socket kept open, with no child process and no file
//! read besides the network configuration files, which [`Classifier`] reads at most once a
//! minute. Elsewhere, interfaces and counters come from sysinfo and there is no neighbour table.
//!
//! Traffic ([`rates`]) is the byte counters' growth, summed over the interfaces that are not
//! loopback, divided by the time between the two readings. An interface whose counters went
//! down (it was re-created, or a driver's 32-bit counter wrapped) or that is new since the
//! previous reading adds nothing: its growth is unknown, and guessing would produce absurd rates.
//!
//! Failures (no netlink socket, a dump refused) are logged at a limited rate and leave their
//! part empty (rates `None`); the neighbour table then falls back to `/proc/net/arp`.

use std::time::Instant;

use crate::netconfig::Classifier;
use crate::ratelimit::LogLimiter;
use crate::wire::{Interface, Neighbour};

/// The byte counters of one interface at one reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkCounters {
    /// The kernel's interface index (0 where the OS gives none); with the name it identifies
    /// one incarnation of an interface.
    pub index: u32,
    pub name: String,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// The counters of every non-loopback interface at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counters {
    pub at: Instant,
    pub links: Vec<LinkCounters>,
}

/// `(received, sent)` bytes per second from `previous` to `current`, over the interfaces in
/// both readings whose counters did not go down; `None` if no time passed.
pub fn rates(previous: &Counters, current: &Counters) -> Option<(f64, f64)> {
    let seconds = current
        .at
        .checked_duration_since(previous.at)?
        .as_secs_f64();
    if seconds <= 0.0 {
        return None;
    }
    let (mut rx, mut tx) = (0u64, 0u64);
    for now in &current.links {
        let Some(before) = previous
            .links
            .iter()
            .find(|b| b.index == now.index && b.name == now.name)
        else {
            continue; // new interface: no baseline
        };
        // Either counter smaller than before: reset or wrap; this interface's growth is unknown.
        if let (Some(drx), Some(dtx)) = (
            now.rx_bytes.checked_sub(before.rx_bytes),
            now.tx_bytes.checked_sub(before.tx_bytes),
        ) {
            rx = rx.saturating_add(drx);
            tx = tx.saturating_add(dtx);
        }
    }
    Some((rx as f64 / seconds, tx as f64 / seconds))
}

/// What one reading of the network gives a report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetworkReading {
    /// Sorted by name, loopback left out, every address classified.
    pub interfaces: Vec<Interface>,
    pub neighbours: Vec<Neighbour>,
    /// `(received, sent)` bytes per second since the previous reading.
    pub rates: Option<(f64, f64)>,
}

/// Reads the network; keeps the counters of the previous reading for the rates, and (on Linux)
/// the netlink socket and its buffers between readings.
#[derive(Debug)]
pub struct Network {
    classifier: Classifier,
    source: Source,
    previous: Option<Counters>,
}

impl Network {
    /// Takes a first reading of the counters, so that the first [`Network::read`] has rates.
    pub fn new(classifier: Classifier, limiter: &mut LogLimiter) -> Self {
        let mut network = Network {
            classifier,
            source: Source::new(),
            previous: None,
        };
        network.previous = network.source.counters(limiter);
        network
    }

    /// One reading; see the module documentation. Never fails.
    pub fn read(&mut self, limiter: &mut LogLimiter) -> NetworkReading {
        let (mut interfaces, kernel, counters) = self.source.interfaces(limiter);
        self.classifier.classify(&kernel, &mut interfaces);
        let rates = match (&self.previous, &counters) {
            (Some(previous), Some(current)) => rates(previous, current),
            _ => None,
        };
        // A failed reading leaves no baseline: the next rates start from the next good one.
        self.previous = counters;
        NetworkReading {
            interfaces,
            neighbours: self.source.neighbours(limiter),
            rates,
        }
    }
}

/// Sorts addresses and interfaces: the OS's order is not stable, and a stable one makes reports
/// diffable.
fn sort(interfaces: &mut [Interface]) {
    for i in interfaces.iter_mut() {
        i.addresses.sort_by_key(|a| (a.ip, a.prefix));
    }
    interfaces.sort_by(|a, b| a.name.cmp(&b.name));
}

#[cfg(target_os = "linux")]
use linux::Source;
#[cfg(not(target_os = "linux"))]
use other::Source;

#[cfg(target_os = "linux")]
mod linux {
    use std::path::Path;
    use std::time::Instant;

    use super::{Counters, LinkCounters, sort};
    use crate::neighbours;
    use crate::netconfig::{KernelAddr, KernelView};
    use crate::netlink::{
        KernelAddress, KernelNeighbour, Link, NetlinkError, NetlinkSocket, SocketSlot,
    };
    use crate::ratelimit::LogLimiter;
    use crate::wire::{Address, AddressConfig, Interface, Neighbour};

    /// The rtnetlink socket (opened on first use, dropped after a failure and opened again at
    /// the next reading) and the tables of the last dumps, whose allocations are reused.
    #[derive(Debug)]
    pub(super) struct Source {
        socket: SocketSlot,
        links: Vec<Link>,
        addresses: Vec<KernelAddress>,
        neighbours: Vec<KernelNeighbour>,
    }

    impl Source {
        pub(super) fn new() -> Self {
            Source {
                socket: SocketSlot::new(NetlinkSocket::route),
                links: Vec::new(),
                addresses: Vec::new(),
                neighbours: Vec::new(),
            }
        }

        /// Dumps the links; `false` (logged) if that failed.
        fn dump_links(&mut self, limiter: &mut LogLimiter) -> bool {
            let links = &mut self.links;
            dump(&mut self.socket, limiter, "netlink_links", |s| {
                s.links(links)
            })
        }

        pub(super) fn counters(&mut self, limiter: &mut LogLimiter) -> Option<Counters> {
            let ok = self.dump_links(limiter);
            ok.then(|| self.current_counters())
        }

        fn current_counters(&self) -> Counters {
            Counters {
                at: Instant::now(),
                links: self
                    .links
                    .iter()
                    .filter(|l| !l.loopback)
                    .filter_map(|l| {
                        let (rx_bytes, tx_bytes) = l.counters?;
                        Some(LinkCounters {
                            index: l.index,
                            name: l.name.clone(),
                            rx_bytes,
                            tx_bytes,
                        })
                    })
                    .collect(),
            }
        }

        /// Interfaces (addresses not yet classified), the kernel's view of their addresses, and
        /// the counters read with them.
        pub(super) fn interfaces(
            &mut self,
            limiter: &mut LogLimiter,
        ) -> (Vec<Interface>, KernelView, Option<Counters>) {
            if !self.dump_links(limiter) {
                return (Vec::new(), KernelView::default(), None);
            }
            let counters = self.current_counters();
            let addresses = &mut self.addresses;
            if !dump(&mut self.socket, limiter, "netlink_addresses", |s| {
                s.addresses(addresses)
            }) {
                self.addresses.clear();
            }
            let mut kernel = KernelView::default();
            let mut interfaces: Vec<Interface> = self
                .links
                .iter()
                .filter(|l| !l.loopback)
                .map(|l| Interface {
                    name: l.name.clone(),
                    mac: l.mac.as_ref().map(neighbours::format_mac),
                    addresses: Vec::new(),
                })
                .collect();
            for a in &self.addresses {
                let Some(link) = self.links.iter().find(|l| l.index == a.index) else {
                    continue; // the interface went away between the two dumps
                };
                kernel.insert(
                    &link.name,
                    a.ip,
                    KernelAddr::from_flags(a.permanent, a.valid_life_time, a.router_advertised),
                );
                if let Some(i) = interfaces.iter_mut().find(|i| i.name == link.name) {
                    i.addresses.push(Address {
                        ip: a.ip,
                        prefix: a.prefix,
                        // Filled in by `netconfig`.
                        config: AddressConfig::Unknown,
                        config_source: None,
                    });
                }
            }
            sort(&mut interfaces);
            (interfaces, kernel, Some(counters))
        }

        /// The neighbour table over netlink, else from `/proc/net/arp`; what went wrong is
        /// logged.
        pub(super) fn neighbours(&mut self, limiter: &mut LogLimiter) -> Vec<Neighbour> {
            let table = &mut self.neighbours;
            // Quietly: a failure is logged once below, with the fallback's outcome.
            let dumped = self.socket.run(|s| s.neighbours(table));
            let mut problems = Vec::new();
            let mut list = match dumped {
                Ok(()) => {
                    let links = &self.links;
                    neighbours::from_kernel(&self.neighbours, |index| {
                        links
                            .iter()
                            .find(|l| l.index == index && !l.loopback)
                            .map(|l| l.name.as_str())
                    })
                }
                Err(e) => {
                    problems.push(format!("netlink: {e}"));
                    neighbours::read_proc_arp(Path::new("/")).unwrap_or_else(|e| {
                        problems.push(e);
                        Vec::new()
                    })
                }
            };
            problems.extend(neighbours::finish(&mut list));
            if !problems.is_empty()
                && let Some(suppressed) = limiter.allow("neighbours")
            {
                tracing::warn!(
                    kind = "neighbours",
                    problems = problems.join("; "),
                    suppressed,
                    "neighbour table read partly or not at all (IPv4 from /proc/net/arp at most)"
                );
            }
            list
        }
    }

    /// Runs one dump on `socket`; a failure is logged as `kind`, and `false` returned.
    fn dump(
        socket: &mut SocketSlot,
        limiter: &mut LogLimiter,
        kind: &'static str,
        f: impl FnOnce(&mut NetlinkSocket) -> Result<(), NetlinkError>,
    ) -> bool {
        match socket.run(f) {
            Ok(()) => true,
            Err(e) => {
                if let Some(suppressed) = limiter.allow(kind) {
                    tracing::warn!(
                        kind,
                        error = %e,
                        suppressed,
                        "cannot read the kernel's network tables over netlink; interfaces or addresses left out"
                    );
                }
                false
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod other {
    use std::time::Instant;

    use sysinfo::Networks;

    use super::{Counters, LinkCounters, sort};
    use crate::netconfig::KernelView;
    use crate::ratelimit::LogLimiter;
    use crate::wire::{Address, AddressConfig, Interface, Neighbour};

    /// sysinfo's interface list; it has no address flags and no neighbour table.
    pub(super) struct Source {
        networks: Option<Networks>,
    }

    impl std::fmt::Debug for Source {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Source").finish_non_exhaustive()
        }
    }

    fn is_loopback(name: &str) -> bool {
        name == "lo" || name.starts_with("lo0") || name.starts_with("Loopback")
    }

    impl Source {
        pub(super) fn new() -> Self {
            Source {
                networks: Networks::new().ok(),
            }
        }

        fn refresh(&mut self) -> Option<(&Networks, Counters)> {
            let networks = self.networks.as_mut()?;
            networks.refresh(true);
            let networks: &Networks = networks;
            let links = networks
                .iter()
                .filter(|(name, _)| !is_loopback(&name.to_string_lossy()))
                .map(|(name, data)| LinkCounters {
                    index: 0,
                    name: name.to_string_lossy().into_owned(),
                    rx_bytes: data.total_received(),
                    tx_bytes: data.total_transmitted(),
                })
                .collect();
            Some((
                networks,
                Counters {
                    at: Instant::now(),
                    links,
                },
            ))
        }

        pub(super) fn counters(&mut self, _limiter: &mut LogLimiter) -> Option<Counters> {
            self.refresh().map(|(_, counters)| counters)
        }

        pub(super) fn interfaces(
            &mut self,
            _limiter: &mut LogLimiter,
        ) -> (Vec<Interface>, KernelView, Option<Counters>) {
            let Some((networks, counters)) = self.refresh() else {
                return (Vec::new(), KernelView::default(), None);
            };
            let mut interfaces: Vec<Interface> = networks
                .iter()
                .filter(|(name, _)| !is_loopback(&name.to_string_lossy()))
                .map(|(name, data)| {
                    let mac = data.mac_address();
                    Interface {
                        name: name.to_string_lossy().into_owned(),
                        mac: (!mac.is_unspecified()).then(|| mac.to_string()),
                        addresses: data
                            .ip_networks()
                            .iter()
                            .map(|n| Address {
                                ip: n.addr,
                                prefix: n.prefix,
                                config: AddressConfig::Unknown,
                                config_source: None,
                            })
                            .collect(),
                    }
                })
                .collect();
            sort(&mut interfaces);
            (interfaces, KernelView::default(), Some(counters))
        }

        pub(super) fn neighbours(&mut self, _limiter: &mut LogLimiter) -> Vec<Neighbour> {
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn counters(at: Instant, links: &[(u32, &str, u64, u64)]) -> Counters {
        Counters {
            at,
            links: links
                .iter()
                .map(|&(index, name, rx_bytes, tx_bytes)| LinkCounters {
                    index,
                    name: name.into(),
                    rx_bytes,
                    tx_bytes,
                })
                .collect(),
        }
    }

    #[test]
    fn rates_sum_interfaces_over_the_interval() {
        let t0 = Instant::now();
        let before = counters(t0, &[(2, "eth0", 1_000, 500), (3, "eth1", 0, 0)]);
        let after = counters(
            t0 + Duration::from_secs(2),
            &[(2, "eth0", 5_000, 1_500), (3, "eth1", 1_000, 100)],
        );
        assert_eq!(rates(&before, &after), Some((2_500.0, 550.0)));
        // Nothing moved: zero, not None.
        let same = counters(t0 + Duration::from_secs(3), &[(2, "eth0", 5_000, 1_500)]);
        assert_eq!(rates(&after, &same), Some((0.0, 0.0)));
    }

    #[test]
    fn reset_new_and_gone_interfaces_add_nothing() {
        let t0 = Instant::now();
        let before = counters(
            t0,
            &[
                (2, "eth0", 1_000, 1_000),
                (3, "eth1", 9_000, 9_000),
                (4, "tun0", 10, 10),
            ],
        );
        let after = counters(
            t0 + Duration::from_secs(1),
            &[
                (2, "eth0", 2_000, 3_000),
                // Counter went down (re-created, or a 32-bit counter wrapped): skipped whole,
                // although tx alone grew.
                (3, "eth1", 100, 9_500),
                // Same name, new index: a new interface, no baseline.
                (5, "tun0", 50_000, 50_000),
                (6, "eth2", 7, 7),
            ],
        );
        assert_eq!(rates(&before, &after), Some((1_000.0, 2_000.0)));
    }

    #[test]
    fn no_rates_without_elapsed_time() {
        let t0 = Instant::now();
        let a = counters(t0, &[(2, "eth0", 1, 1)]);
        assert_eq!(rates(&a, &a), None);
        let later = counters(t0 + Duration::from_millis(200), &[(2, "eth0", 101, 1)]);
        assert_eq!(rates(&later, &a), None, "clock going backwards");
        assert_eq!(rates(&a, &later), Some((500.0, 0.0)));
    }

    #[test]
    fn reads_this_machines_network_with_rates_on_the_first_read() {
        let mut limiter = LogLimiter::default();
        let mut network = Network::new(Classifier::system(), &mut limiter);
        std::thread::sleep(Duration::from_millis(50));
        let r = network.read(&mut limiter);
        let (rx, tx) = r.rates.expect("rates on the first read");
        assert!(rx >= 0.0 && tx >= 0.0 && rx.is_finite() && tx.is_finite());
        let names: Vec<&str> = r.interfaces.iter().map(|i| i.name.as_str()).collect();
        assert!(!names.contains(&"lo"), "{names:?}");
        assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
        #[cfg(target_os = "linux")]
        {
            // The same interfaces as sysfs lists, loopback left out.
            let mut sysfs: Vec<String> = std::fs::read_dir("/sys/class/net")
                .expect("/sys/class/net")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .filter(|n| n != "lo")
                .collect();
            sysfs.sort();
            assert_eq!(names, sysfs);
        }
    }
}
