//! The kernel's view of address lifetimes: `ip -j addr show`, or `/proc/net/if_inet6` for IPv6
//! where `ip` is missing or fails.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::path::Path;

use serde::Deserialize;

use super::Reader;
use crate::iproute;

/// `valid_life_time` of a permanent address ("forever").
const FOREVER: u64 = 4_294_967_295;

/// `IFA_F_PERMANENT` in `/proc/net/if_inet6`'s flags column.
const IFA_F_PERMANENT: u32 = 0x80;

/// What the kernel says about one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelAddr {
    /// Not permanent: the address has a finite lifetime (DHCP or router advertisement).
    pub dynamic: bool,
    /// Created by the kernel from a router advertisement (iproute2's `protocol kernel_ra`).
    pub router_advertised: bool,
}

impl KernelAddr {
    pub fn dynamic() -> Self {
        KernelAddr {
            dynamic: true,
            router_advertised: false,
        }
    }

    pub fn permanent() -> Self {
        KernelAddr {
            dynamic: false,
            router_advertised: false,
        }
    }
}

/// Addresses by (interface, IP).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelView {
    addrs: HashMap<(String, IpAddr), KernelAddr>,
}

#[derive(Deserialize)]
struct IpLink {
    ifname: String,
    #[serde(default)]
    addr_info: Vec<IpAddrInfo>,
}

#[derive(Deserialize)]
struct IpAddrInfo {
    local: Option<String>,
    #[serde(default)]
    dynamic: bool,
    valid_life_time: Option<u64>,
    protocol: Option<serde_json::Value>,
}

impl KernelView {
    pub fn insert(&mut self, iface: &str, ip: IpAddr, addr: KernelAddr) {
        self.addrs.insert((iface.to_owned(), ip), addr);
    }

    pub fn get(&self, iface: &str, ip: IpAddr) -> Option<KernelAddr> {
        self.addrs.get(&(iface.to_owned(), ip)).copied()
    }

    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }

    /// Parses `ip -j addr show`.
    pub fn from_ip_json(text: &str) -> Result<Self, String> {
        let links: Vec<IpLink> =
            serde_json::from_str(text).map_err(|e| format!("ip -j addr: {e}"))?;
        let mut view = KernelView::default();
        for link in links {
            for a in link.addr_info {
                let Some(ip) = a.local.and_then(|l| l.parse::<IpAddr>().ok()) else {
                    continue;
                };
                let dynamic = a.dynamic || a.valid_life_time.is_some_and(|v| v != FOREVER);
                let router_advertised = a
                    .protocol
                    .as_ref()
                    .is_some_and(|p| p.as_str() == Some("kernel_ra"));
                view.insert(
                    &link.ifname,
                    ip,
                    KernelAddr {
                        dynamic,
                        router_advertised,
                    },
                );
            }
        }
        Ok(view)
    }

    /// Parses `/proc/net/if_inet6` ("address ifindex prefix scope flags name", hex); lines
    /// that do not parse are skipped.
    pub fn from_if_inet6(text: &str) -> Self {
        let mut view = KernelView::default();
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let [hex, _, _, _, flags, name] = f.as_slice() else {
                continue;
            };
            let (Ok(bits), Ok(flags)) = (
                u128::from_str_radix(hex, 16),
                u32::from_str_radix(flags, 16),
            ) else {
                continue;
            };
            if hex.len() != 32 {
                continue;
            }
            let dynamic = flags & IFA_F_PERMANENT == 0;
            view.insert(
                name,
                IpAddr::V6(Ipv6Addr::from(bits)),
                KernelAddr {
                    dynamic,
                    router_advertised: false,
                },
            );
        }
        view
    }

    /// `ip -j addr show` through `ip` if given; else, or if that fails (returned as the error),
    /// `<root>/proc/net/if_inet6`.
    pub fn read(root: &Path, ip: Option<&Path>) -> (Self, Option<String>) {
        let mut error = None;
        if let Some(ip) = ip {
            match iproute::run(ip, &["-j", "addr", "show"], iproute::IP_TIMEOUT)
                .and_then(|out| Self::from_ip_json(&out))
            {
                Ok(view) => return (view, None),
                Err(e) => error = Some(e),
            }
        }
        let r = Reader::new(root);
        let view = r
            .text_quiet("/proc/net/if_inet6")
            .map(|t| Self::from_if_inet6(&t))
            .unwrap_or_default();
        (view, error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn parses_ip_json_dynamic_and_lifetimes() {
        // This machine's `ip -j addr show`, plus a DHCP address, a SLAAC address and junk.
        let json = r#"[
          {"ifindex":1,"ifname":"lo","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"valid_life_time":4294967295}]},
          {"ifindex":2,"ifname":"ifb0","addr_info":[]},
          {"ifindex":4,"ifname":"eth0","address":"02:fc:00:00:00:01","addr_info":[
            {"family":"inet","local":"192.0.2.2","prefixlen":24,"scope":"global","valid_life_time":4294967295,"preferred_life_time":4294967295},
            {"family":"inet","local":"10.0.0.7","prefixlen":24,"dynamic":true,"valid_life_time":86000},
            {"family":"inet","local":"10.0.0.8","prefixlen":24,"valid_life_time":600},
            {"family":"inet6","local":"2001:db8::1:2","prefixlen":64,"dynamic":true,"protocol":"kernel_ra","valid_life_time":2000},
            {"family":"inet6","local":"fd00::2","prefixlen":64,"nodad":true,"valid_life_time":4294967295},
            {}
          ]},
          {"ifindex":5,"ifname":"eth1"}
        ]"#;
        let v = KernelView::from_ip_json(json).expect("parses");
        assert_eq!(v.len(), 6);
        assert_eq!(
            v.get("eth0", ip("192.0.2.2")),
            Some(KernelAddr::permanent())
        );
        assert_eq!(v.get("eth0", ip("10.0.0.7")), Some(KernelAddr::dynamic()));
        assert_eq!(v.get("eth0", ip("10.0.0.8")), Some(KernelAddr::dynamic()));
        assert_eq!(
            v.get("eth0", ip("2001:db8::1:2")),
            Some(KernelAddr {
                dynamic: true,
                router_advertised: true
            })
        );
        assert_eq!(v.get("eth0", ip("fd00::2")), Some(KernelAddr::permanent()));
        assert_eq!(v.get("eth1", ip("192.0.2.2")), None);
        assert!(KernelView::from_ip_json("Object \"addr\" is unknown").is_err());
    }

    #[test]
    fn parses_if_inet6_flags() {
        let text = "fe8000000000000000fc00fffe000001 04 40 20 80     eth0\n\
                    00000000000000000000000000000001 01 80 10 80       lo\n\
                    fd000000000000000000000000000002 04 40 00 82     eth0\n\
                    20010db8000000000000000000000005 04 40 00 00     eth0\n\
                    garbage\n";
        let v = KernelView::from_if_inet6(text);
        assert_eq!(v.len(), 4);
        assert_eq!(
            v.get("eth0", ip("fe80::fc:ff:fe00:1")),
            Some(KernelAddr::permanent())
        );
        assert_eq!(v.get("eth0", ip("fd00::2")), Some(KernelAddr::permanent()));
        assert_eq!(
            v.get("eth0", ip("2001:db8::5")),
            Some(KernelAddr::dynamic())
        );
        assert_eq!(v.get("lo", ip("::1")), Some(KernelAddr::permanent()));
    }
}
