//! The kernel's view of address lifetimes, by interface and address, from the flags and
//! lifetimes the kernel keeps for every address (read over rtnetlink by [`crate::netlink`] on
//! Linux; empty elsewhere).

use std::collections::HashMap;
use std::net::IpAddr;

/// `valid_life_time` of a permanent address ("forever").
pub const FOREVER: u32 = u32::MAX;

/// What the kernel says about one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelAddr {
    /// Not permanent: the address has a finite lifetime (DHCP or router advertisement).
    pub dynamic: bool,
    /// Created by the kernel from a router advertisement (`IFA_PROTO` `kernel_ra`).
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

    /// From the kernel's flags: an address is dynamic without `IFA_F_PERMANENT` (what `ip`
    /// prints as `dynamic`) or with a finite valid lifetime (`valid_lft`). The kernel keeps the
    /// two in step for addresses it is given, but either sign is enough, as before with `ip`.
    pub fn from_flags(permanent: bool, valid_life_time: u32, router_advertised: bool) -> Self {
        KernelAddr {
            dynamic: !permanent || valid_life_time != FOREVER,
            router_advertised,
        }
    }
}

/// Addresses by (interface, IP).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelView {
    addrs: HashMap<(String, IpAddr), KernelAddr>,
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_from_the_permanent_flag_or_a_finite_lifetime() {
        // The cases of this machine's `ip -j addr show`, plus a DHCP and a SLAAC address.
        // 127.0.0.1, 192.0.2.2, fd00::2: permanent, forever.
        assert_eq!(
            KernelAddr::from_flags(true, FOREVER, false),
            KernelAddr::permanent()
        );
        // networkd/NetworkManager DHCP: not permanent, 86000 s.
        assert_eq!(
            KernelAddr::from_flags(false, 86_000, false),
            KernelAddr::dynamic()
        );
        // A finite lifetime alone.
        assert_eq!(
            KernelAddr::from_flags(true, 600, false),
            KernelAddr::dynamic()
        );
        // Not permanent although "forever" (a manager that sets no lifetime).
        assert!(KernelAddr::from_flags(false, FOREVER, false).dynamic);
        // SLAAC: `protocol kernel_ra`.
        assert_eq!(
            KernelAddr::from_flags(false, 2000, true),
            KernelAddr {
                dynamic: true,
                router_advertised: true
            }
        );
    }

    #[test]
    fn view_is_keyed_by_interface_and_address() {
        let ip: IpAddr = "10.0.0.7".parse().expect("ip");
        let mut v = KernelView::default();
        assert!(v.is_empty());
        v.insert("eth0", ip, KernelAddr::dynamic());
        assert_eq!(v.get("eth0", ip), Some(KernelAddr::dynamic()));
        assert_eq!(v.get("eth1", ip), None);
        assert_eq!(v.len(), 1);
    }
}
