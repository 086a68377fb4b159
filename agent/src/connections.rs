//! Inbound TCP connections: how many established connections other hosts hold to a port this
//! host listens on. A system that nobody connects to for weeks is a candidate for release, and
//! this count is the evidence the daemon collects for it.
//!
//! Read from `/proc/net/tcp` and `/proc/net/tcp6` (Linux): a socket in state `0A` (LISTEN) makes
//! its local port a listening port; a socket in state `01` (ESTABLISHED) is inbound if its local
//! port is a listening port (of either file: a dual-stack listener shows its IPv4 clients in
//! `tcp6`, as `::ffff:a.b.c.d`). Connections whose peer is a loopback address (`127/8`, `::1`,
//! `::ffff:127.0.0.0/104`) are local traffic and left out.
//!
//! Addresses in these files are the kernel's in-memory words printed as hex (`%08X` per 32-bit
//! word), so their bytes are the words' native-endian bytes; ports are plain hex numbers.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// `TCP_ESTABLISHED` in the `st` column.
const ESTABLISHED: u8 = 0x01;
/// `TCP_LISTEN` in the `st` column.
const LISTEN: u8 = 0x0A;

/// The files read, below a root directory.
pub const FILES: [&str; 2] = ["proc/net/tcp", "proc/net/tcp6"];

/// Sockets of interest gathered from one or more tables; the buffers are kept between
/// collections so a reading allocates nothing once they have grown.
#[derive(Debug, Default)]
pub struct TcpTables {
    /// Local ports of listening sockets.
    listening: Vec<u16>,
    /// Local ports of established connections with a non-loopback peer.
    established: Vec<u16>,
    /// The text of the file being read.
    text: String,
}

impl TcpTables {
    /// Adds the sockets of one table's text (`/proc/net/tcp` or `tcp6`); malformed lines are
    /// skipped.
    pub fn add(&mut self, text: &str) {
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
            let Some((_, port)) = parse_endpoint(local) else {
                continue;
            };
            if state == LISTEN {
                self.listening.push(port);
            } else if parse_endpoint(remote).is_some_and(|(peer, _)| !is_loopback(peer)) {
                self.established.push(port);
            }
        }
    }

    /// The number of inbound connections among the sockets added so far.
    pub fn inbound(&mut self) -> u32 {
        self.listening.sort_unstable();
        self.listening.dedup();
        let listening = &self.listening;
        let n = self
            .established
            .iter()
            .filter(|port| listening.binary_search(port).is_ok())
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Reads both tables below `root` (`/` on a machine) and counts. An error (the first) only
    /// if no table could be read: not Linux, or `/proc` not mounted.
    pub fn read(&mut self, root: &Path) -> Result<u32, std::io::Error> {
        self.listening.clear();
        self.established.clear();
        let mut first_error = None;
        let mut read_any = false;
        for file in FILES {
            let mut text = std::mem::take(&mut self.text);
            text.clear();
            match std::fs::File::open(root.join(file)).and_then(|mut f| f.read_to_string(&mut text))
            {
                Ok(_) => {
                    read_any = true;
                    self.add(&text);
                }
                // A kernel without IPv6 has no tcp6; that is no error.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && file.ends_with('6') => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
            self.text = text;
        }
        match first_error {
            Some(e) if !read_any => Err(e),
            _ => Ok(self.inbound()),
        }
    }
}

/// `ADDR:PORT` as these files print it.
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

#[cfg(test)]
mod tests {
    use super::*;

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

    // The captured text is a little-endian machine's; a big-endian kernel prints other digits.
    #[cfg(target_endian = "little")]
    #[test]
    fn endpoints_decode_as_the_kernel_prints_them() {
        assert_eq!(
            parse_endpoint("0100007F:18EB"),
            Some(("127.0.0.1".parse().expect("ip"), 6379))
        );
        assert_eq!(
            parse_endpoint("00000000000000000000000001000000:1111"),
            Some(("::1".parse().expect("ip"), 0x1111))
        );
        assert_eq!(
            parse_endpoint("B80D0120000000000000000002000000:01BB"),
            Some(("2001:db8::2".parse().expect("ip"), 443))
        );
        assert_eq!(
            parse_endpoint("0000000000000000FFFF00000100007F:C352"),
            Some(("::ffff:127.0.0.1".parse().expect("ip"), 0xC352))
        );
        assert_eq!(parse_endpoint("0100007F"), None);
        assert_eq!(parse_endpoint("0100007:0016"), None);
        assert_eq!(parse_endpoint("0100007G:0016"), None);
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn counts_established_connections_to_listening_ports_without_loopback_peers() {
        let mut t = TcpTables::default();
        t.add(TCP);
        assert_eq!(t.inbound(), 1, "the remote client of port 22");
        t.add(TCP6);
        assert_eq!(
            t.inbound(),
            3,
            "plus the v4-mapped and the IPv6 client of 443"
        );
        // A client of 443 in tcp counts against the tcp6 listener too.
        t.add(
            "header\n 0: 0200000A:01BB 0900000A:D431 01 00000000:00000000 00:00000000 00000000 0 0 1 1\n",
        );
        assert_eq!(t.inbound(), 4);
        let mut empty = TcpTables::default();
        empty.add("");
        assert_eq!(empty.inbound(), 0);
    }

    #[test]
    fn loopback_peers() {
        for ip in ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback(ip.parse().expect("ip")), "{ip}");
        }
        for ip in ["10.0.0.1", "::ffff:10.0.0.1", "2001:db8::1", "::"] {
            assert!(!is_loopback(ip.parse().expect("ip")), "{ip}");
        }
    }

    #[test]
    fn reads_fixture_trees_and_reports_missing_files() {
        let dir = std::env::temp_dir().join(format!("cloudgov-agent-tcp-{}", std::process::id()));
        let net = dir.join("proc/net");
        std::fs::create_dir_all(&net).expect("mkdir");
        let mut t = TcpTables::default();
        assert!(t.read(&dir).is_err(), "no tcp file at all");
        std::fs::write(net.join("tcp"), TCP).expect("write");
        // No tcp6 (IPv6 disabled): not an error.
        #[cfg(target_endian = "little")]
        assert_eq!(t.read(&dir).expect("tcp only"), 1);
        std::fs::write(net.join("tcp6"), TCP6).expect("write");
        #[cfg(target_endian = "little")]
        assert_eq!(
            t.read(&dir).expect("both"),
            3,
            "counts start afresh on every read"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_machines_tables() {
        use std::io::{Read as _, Write as _};
        use std::net::{TcpListener, TcpStream};

        let mut t = TcpTables::default();
        let before = t.read(Path::new("/")).expect("/proc/net/tcp is readable");
        // A connection over loopback to our own listener is not inbound...
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (mut server, _) = listener.accept().expect("accept");
        client.write_all(b"x").expect("write");
        let mut byte = [0u8; 1];
        server.read_exact(&mut byte).expect("read");
        let port = listener.local_addr().expect("addr").port();
        let text = std::fs::read_to_string("/proc/net/tcp").expect("read");
        let mut ours = TcpTables::default();
        ours.add(&text);
        assert!(
            ours.listening.contains(&port),
            "our listener on {port} is in the table"
        );
        assert!(
            !ours.established.contains(&port),
            "a loopback client is not counted"
        );
        // ...so the count is what it was, give or take other processes' connections.
        let after = t.read(Path::new("/")).expect("readable");
        assert!(after.abs_diff(before) <= 2, "{before} -> {after}");
    }
}
