//! Inbound TCP connections: how many established connections other hosts hold to a port this
//! host listens on. A system that nobody connects to for weeks is a candidate for release, and
//! this count is the evidence the daemon collects for it.
//!
//! Per address family: a socket in state LISTEN makes its local port a listening port, and a
//! socket in state ESTABLISHED is inbound if its local port is a listening port of the same
//! family (a dual-stack IPv6 listener's IPv4 clients are IPv6 sockets, `::ffff:a.b.c.d`).
//! Connections whose peer is a loopback address (`127/8`, `::1`, `::ffff:127.0.0.0/104`) are
//! local traffic and left out.
//!
//! # Where the sockets come from
//!
//! Listing established sockets makes the kernel walk its whole TCP hash table, whose size grows
//! with the machine's memory (262,144 buckets on a 24 GiB VM), however few sockets there are.
//! Reading `/proc/net/tcp` and `tcp6` walks it four times (each file's last page, then again for
//! the end of file): about 7 ms of kernel time on such a VM, more than the rest of a
//! collection. So on Linux the agent asks sock_diag ([`crate::netlink`]) instead, as `ss` does:
//! listeners of both families first (a walk of the small listening table only), then the
//! established sockets of a family only where a listener of that family is bound to an address
//! other hosts can reach (not loopback): one table walk per such family, about 0.15 ms.
//!
//! Where sock_diag fails (a kernel without `inet_diag`), the same count comes from
//! `/proc/net/tcp` and `/proc/net/tcp6` (state `0A` LISTEN, `01` ESTABLISHED). Their addresses
//! are the kernel's native-endian words printed as hex (`%08X` per 32-bit word), ports plain hex.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use crate::ratelimit::LogLimiter;

/// `TCP_ESTABLISHED`.
pub const ESTABLISHED: u8 = 0x01;
/// `TCP_LISTEN`.
pub const LISTEN: u8 = 0x0A;

/// The socket tables of `/proc`, by family, below a root directory.
pub const PROC_FILES: [(Family, &str); 2] =
    [(Family::V4, "proc/net/tcp"), (Family::V6, "proc/net/tcp6")];

/// An address family of TCP sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

/// One TCP socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSocket {
    /// [`ESTABLISHED`], [`LISTEN`], ... (`<netinet/tcp.h>`).
    pub state: u8,
    pub local: IpAddr,
    pub local_port: u16,
    /// Unspecified (`0.0.0.0`, `::`) for a listening socket.
    pub peer: IpAddr,
}

/// The inbound connections among `established` (sockets of one family; others are ignored)
/// given that family's `listeners` (sockets in other states are ignored). `ports` is scratch
/// space, kept by the caller so counting allocates nothing.
pub fn count_inbound(
    listeners: &[TcpSocket],
    established: &[TcpSocket],
    ports: &mut Vec<u16>,
) -> u32 {
    ports.clear();
    ports.extend(
        listeners
            .iter()
            .filter(|s| s.state == LISTEN)
            .map(|s| s.local_port),
    );
    ports.sort_unstable();
    ports.dedup();
    let n = established
        .iter()
        .filter(|s| {
            s.state == ESTABLISHED
                && !is_loopback(s.peer)
                && ports.binary_search(&s.local_port).is_ok()
        })
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Whether one of `listeners` can be reached by other hosts: bound to a wildcard or to an
/// address that is not loopback. If none can, the family has no inbound connections, and its
/// established sockets need not be listed.
pub fn reachable_listener(listeners: &[TcpSocket]) -> bool {
    listeners
        .iter()
        .any(|s| s.state == LISTEN && !is_loopback(s.local))
}

/// Appends the LISTEN and ESTABLISHED sockets of one `/proc/net/tcp` or `tcp6` text to `out`;
/// other states and malformed lines are skipped.
pub fn parse_proc(text: &str, out: &mut Vec<TcpSocket>) {
    for line in text.lines().skip(1) {
        let mut fields = line.split_ascii_whitespace();
        let (Some(_sl), Some(local), Some(remote), Some(state)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let Ok(state) = u8::from_str_radix(state, 16) else {
            continue;
        };
        if state != LISTEN && state != ESTABLISHED {
            continue;
        }
        let (Some((local, local_port)), Some((peer, _))) =
            (parse_endpoint(local), parse_endpoint(remote))
        else {
            continue;
        };
        out.push(TcpSocket {
            state,
            local,
            local_port,
            peer,
        });
    }
}

/// `ADDR:PORT` as the `/proc` tables print it.
fn parse_endpoint(text: &str) -> Option<(IpAddr, u16)> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(addr)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
                chunk.copy_from_slice(&word(addr.get(i * 8..i * 8 + 8)?)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some((ip, port))
}

/// The bytes of one 32-bit word printed as `%08X`.
fn word(hex: &str) -> Option<[u8; 4]> {
    u32::from_str_radix(hex, 16).ok().map(u32::to_ne_bytes)
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Counts inbound connections on every collection; keeps its socket and buffers between them.
#[derive(Debug)]
pub struct Connections {
    root: PathBuf,
    #[cfg(target_os = "linux")]
    diag: crate::netlink::SocketSlot,
    listeners: Vec<TcpSocket>,
    established: Vec<TcpSocket>,
    ports: Vec<u16>,
    text: String,
}

impl Connections {
    /// This machine.
    pub fn system() -> Self {
        Connections {
            root: PathBuf::from("/"),
            #[cfg(target_os = "linux")]
            diag: crate::netlink::SocketSlot::new(crate::netlink::NetlinkSocket::sock_diag),
            listeners: Vec::new(),
            established: Vec::new(),
            ports: Vec::new(),
            text: String::new(),
        }
    }

    /// The count now; `None` (logged at a limited rate) if no source could be read.
    pub fn read(&mut self, limiter: &mut LogLimiter) -> Option<u32> {
        #[cfg(target_os = "linux")]
        match self.read_sock_diag() {
            Ok(n) => return Some(n),
            Err(e) => {
                if let Some(suppressed) = limiter.allow("sock_diag") {
                    tracing::warn!(
                        kind = "sock_diag",
                        error = %e,
                        suppressed,
                        "cannot list TCP sockets over netlink; reading /proc/net/tcp instead (slower)"
                    );
                }
            }
        }
        match self.read_proc() {
            Ok(n) => Some(n),
            Err(e) => {
                if let Some(suppressed) = limiter.allow("connections") {
                    tracing::warn!(
                        kind = "connections",
                        error = %e,
                        suppressed,
                        "cannot read /proc/net/tcp; inbound connections not reported"
                    );
                }
                None
            }
        }
    }

    /// The count over sock_diag; see the module documentation.
    #[cfg(target_os = "linux")]
    pub fn read_sock_diag(&mut self) -> Result<u32, crate::netlink::NetlinkError> {
        use netlink_packet_sock_diag::inet::StateFlags;
        let mut total = 0u32;
        for family in [Family::V4, Family::V6] {
            let listeners = &mut self.listeners;
            self.diag
                .run(|s| s.tcp_sockets(family, StateFlags::LISTEN, listeners))?;
            if !reachable_listener(&self.listeners) {
                continue;
            }
            let established = &mut self.established;
            self.diag
                .run(|s| s.tcp_sockets(family, StateFlags::ESTABLISHED, established))?;
            total = total.saturating_add(count_inbound(
                &self.listeners,
                &self.established,
                &mut self.ports,
            ));
        }
        Ok(total)
    }

    /// The count from `<root>/proc/net/tcp` and `tcp6`. An error (the first) only if no table
    /// could be read: not Linux, or `/proc` not mounted. A missing `tcp6` (IPv6 disabled) is
    /// no error.
    pub fn read_proc(&mut self) -> Result<u32, std::io::Error> {
        let mut total = 0u32;
        let mut first_error = None;
        let mut read_any = false;
        for (family, file) in PROC_FILES {
            self.text.clear();
            self.listeners.clear();
            match std::fs::File::open(self.root.join(file))
                .and_then(|mut f| f.read_to_string(&mut self.text))
            {
                Ok(_) => read_any = true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && family == Family::V6 => {
                    continue;
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                    continue;
                }
            }
            parse_proc(&self.text, &mut self.listeners);
            // One table holds both states; `count_inbound` picks each by state.
            total = total.saturating_add(count_inbound(
                &self.listeners,
                &self.listeners,
                &mut self.ports,
            ));
        }
        match first_error {
            Some(e) if !read_any => Err(e),
            _ => Ok(total),
        }
    }

    /// Reads `/proc` tables below `root` instead of `/` (fixture trees in tests).
    pub fn with_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = root.into();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn socket(state: u8, local: &str, local_port: u16, peer: &str) -> TcpSocket {
        TcpSocket {
            state,
            local: ip(local),
            local_port,
            peer: ip(peer),
        }
    }

    #[test]
    fn counts_established_connections_to_listening_ports_without_loopback_peers() {
        let listeners = [
            socket(LISTEN, "0.0.0.0", 22, "0.0.0.0"),
            socket(LISTEN, "127.0.0.1", 6379, "0.0.0.0"),
            socket(LISTEN, "10.0.0.2", 80, "0.0.0.0"),
            // Twice on one port (SO_REUSEPORT): still one listening port.
            socket(LISTEN, "10.0.0.2", 80, "0.0.0.0"),
        ];
        let established = [
            socket(ESTABLISHED, "10.0.0.2", 22, "10.0.0.9"), // inbound
            socket(ESTABLISHED, "10.0.0.2", 80, "192.0.2.7"), // inbound
            socket(ESTABLISHED, "10.0.0.2", 80, "192.0.2.8"), // inbound
            socket(ESTABLISHED, "127.0.0.1", 6379, "127.0.0.1"), // loopback peer
            socket(ESTABLISHED, "10.0.0.2", 22, "127.0.0.5"), // loopback peer
            socket(ESTABLISHED, "10.0.0.2", 40000, "192.0.2.1"), // outbound
            socket(0x06, "10.0.0.2", 22, "10.0.0.10"),       // TIME_WAIT
        ];
        let mut ports = Vec::new();
        assert_eq!(count_inbound(&listeners, &established, &mut ports), 3);
        assert_eq!(count_inbound(&[], &established, &mut ports), 0);
        // IPv6, with v4-mapped clients of a dual-stack listener.
        let v6 = [
            socket(LISTEN, "::", 443, "::"),
            socket(ESTABLISHED, "::ffff:10.0.0.2", 443, "::ffff:10.0.0.9"),
            socket(ESTABLISHED, "2001:db8::2", 443, "2001:db8::9"),
            socket(ESTABLISHED, "::ffff:10.0.0.2", 443, "::ffff:127.0.0.1"),
            socket(ESTABLISHED, "::1", 443, "::1"),
        ];
        assert_eq!(count_inbound(&v6, &v6, &mut ports), 2);
    }

    #[test]
    fn only_listeners_off_loopback_are_reachable() {
        let lo = [
            socket(LISTEN, "127.0.0.1", 5432, "0.0.0.0"),
            socket(LISTEN, "::1", 631, "::"),
            socket(ESTABLISHED, "10.0.0.2", 22, "10.0.0.9"),
        ];
        assert!(!reachable_listener(&lo));
        assert!(!reachable_listener(&[]));
        for local in ["0.0.0.0", "::", "10.0.0.2", "fe80::1"] {
            assert!(
                reachable_listener(&[socket(LISTEN, local, 22, "0.0.0.0")]),
                "{local}"
            );
        }
    }

    #[test]
    fn loopback_peers() {
        for a in ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback(ip(a)), "{a}");
        }
        for a in ["10.0.0.1", "::ffff:10.0.0.1", "2001:db8::1", "::"] {
            assert!(!is_loopback(ip(a)), "{a}");
        }
    }

    /// This machine's `/proc/net/tcp`, shortened, plus established connections: one from a
    /// remote host to the listening port 22, one from loopback to 6379, one outbound (local
    /// port 40000 not listened on), and one closing (TIME_WAIT, 06) to 22.
    const TCP: &str = "\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:18EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4944 1 0000000000000000 100 0 0 10 0
   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1195 1 0000000000000000 100 0 0 10 0
   2: 0200000A:0016 0900000A:D431 01 00000000:00000000 02:000A7B4F 00000000     0        0 5123 4 0000000000000000 20 4 29 10 -1
   3: 0100007F:18EB 0100007F:A1B2 01 00000000:00000000 00:00000000 00000000     0        0 5124 1 0000000000000000 20 4 29 10 -1
   4: 0200000A:9C40 0100A8C0:01BB 01 00000000:00000000 00:00000000 00000000     0        0 5125 1 0000000000000000 20 4 29 10 -1
   5: 0200000A:0016 0A00000A:D432 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000
garbage
";

    /// `/proc/net/tcp6`: a dual-stack listener on 443, a v4-mapped client of it, an IPv6
    /// client, and a v4-mapped loopback client.
    const TCP6: &str = "\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 7267 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000200000A:01BB 0000000000000000FFFF00000900000A:C350 01 00000000:00000000 00:00000000 00000000     0        0 7268 1 0000000000000000 20 4 29 10 -1
   2: B80D0120000000000000000002000000:01BB B80D0120000000000000000009000000:C351 01 00000000:00000000 00:00000000 00000000     0        0 7269 1 0000000000000000 20 4 29 10 -1
   3: 0000000000000000FFFF00000200000A:01BB 0000000000000000FFFF00000100007F:C352 01 00000000:00000000 00:00000000 00000000     0        0 7270 1 0000000000000000 20 4 29 10 -1
";

    // The captured texts are a little-endian machine's; a big-endian kernel prints other digits.
    #[cfg(target_endian = "little")]
    #[test]
    fn proc_tables_decode_as_the_kernel_prints_them() {
        assert_eq!(
            parse_endpoint("0100007F:18EB"),
            Some((ip("127.0.0.1"), 6379))
        );
        assert_eq!(
            parse_endpoint("00000000000000000000000001000000:1111"),
            Some((ip("::1"), 0x1111))
        );
        assert_eq!(
            parse_endpoint("B80D0120000000000000000002000000:01BB"),
            Some((ip("2001:db8::2"), 443))
        );
        assert_eq!(parse_endpoint("0100007F"), None);
        assert_eq!(parse_endpoint("0100007:0016"), None);
        assert_eq!(parse_endpoint("0100007G:0016"), None);
        let mut sockets = Vec::new();
        parse_proc(TCP, &mut sockets);
        assert_eq!(sockets.len(), 5, "LISTEN and ESTABLISHED lines only");
        assert_eq!(sockets[2], socket(ESTABLISHED, "10.0.0.2", 22, "10.0.0.9"));
        let mut ports = Vec::new();
        assert_eq!(count_inbound(&sockets, &sockets, &mut ports), 1);
        sockets.clear();
        parse_proc(TCP6, &mut sockets);
        assert_eq!(
            sockets[1],
            socket(ESTABLISHED, "::ffff:10.0.0.2", 443, "::ffff:10.0.0.9")
        );
        assert_eq!(count_inbound(&sockets, &sockets, &mut ports), 2);
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn proc_fixture_trees_and_missing_files() {
        let dir = std::env::temp_dir().join(format!("cloudgov-agent-tcp-{}", std::process::id()));
        let net = dir.join("proc/net");
        std::fs::create_dir_all(&net).expect("mkdir");
        let mut c = Connections::system().with_root(&dir);
        assert!(c.read_proc().is_err(), "no table at all");
        std::fs::write(net.join("tcp"), TCP).expect("write");
        // No tcp6 (IPv6 disabled): not an error.
        assert_eq!(c.read_proc().expect("tcp only"), 1);
        std::fs::write(net.join("tcp6"), TCP6).expect("write");
        assert_eq!(c.read_proc().expect("both"), 3);
        assert_eq!(c.read_proc().expect("again"), 3, "every read starts afresh");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn sock_diag_and_proc_agree_on_this_machine() {
        use std::io::Write as _;
        use std::net::{TcpListener, TcpStream};

        use netlink_packet_sock_diag::inet::StateFlags;

        // A listener and a loopback client of our own.
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let mut client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let (_server, _) = listener.accept().expect("accept");
        client.write_all(b"x").expect("write");

        let mut socket = crate::netlink::NetlinkSocket::sock_diag().expect("sock_diag socket");
        let mut listeners = Vec::new();
        socket
            .tcp_sockets(Family::V4, StateFlags::LISTEN, &mut listeners)
            .expect("listeners");
        assert!(
            listeners
                .iter()
                .any(|s| s.state == LISTEN && s.local_port == port && s.local == ip("127.0.0.1")),
            "our listener on {port} in {listeners:?}"
        );
        let mut established = Vec::new();
        socket
            .tcp_sockets(Family::V4, StateFlags::ESTABLISHED, &mut established)
            .expect("established");
        let ours: Vec<&TcpSocket> = established
            .iter()
            .filter(|s| s.local_port == port)
            .collect();
        assert_eq!(ours.len(), 1, "the accepted side: {established:?}");
        assert_eq!(ours[0].peer, ip("127.0.0.1"));
        let mut ports = Vec::new();
        let only_ours: Vec<TcpSocket> = listeners
            .iter()
            .filter(|s| s.local_port == port)
            .copied()
            .collect();
        assert_eq!(
            count_inbound(&only_ours, &established, &mut ports),
            0,
            "a loopback client is not inbound"
        );

        // Both sources count the same (other processes' connections may come and go).
        let mut c = Connections::system();
        let mut last = None;
        for _ in 0..5 {
            let diag = c.read_sock_diag().expect("sock_diag");
            let proc = c.read_proc().expect("/proc/net/tcp");
            if diag == proc {
                return;
            }
            last = Some((diag, proc));
        }
        panic!("sock_diag and /proc disagree: {last:?}");
    }
}
