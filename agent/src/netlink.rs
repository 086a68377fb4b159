//! The kernel's network tables over netlink, read in-process on every collection without
//! running `ip` or `ss` (a fork and exec cost more than everything else the agent does in a
//! collection): over rtnetlink, interfaces with their byte counters, addresses with their flags
//! and lifetimes, and the neighbour (ARP/NDP) table; over sock_diag, TCP sockets by state.
//!
//! Sockets come from `netlink-sys` (synchronous, no async runtime) and messages are encoded and
//! decoded with `netlink-packet-route` and `netlink-packet-sock-diag`, so no `unsafe` is written
//! here. Each table is one dump request (`NLM_F_DUMP`) whose answer is read into a reused
//! buffer and parsed in place:
//!
//! - links (`RTM_GETLINK`): only `IFLA_IFNAME`, `IFLA_ADDRESS` and `IFLA_STATS64` are decoded.
//!   A link message carries dozens of nested attributes the agent does not use; skipping them
//!   saves work and keeps an attribute this crate version cannot decode (a newer kernel's) from
//!   losing the whole interface.
//! - addresses (`RTM_GETADDR`) and neighbours (`RTM_GETNEIGH`): whole messages, both families.
//! - TCP sockets (`SOCK_DIAG_BY_FAMILY`, one family and a set of states per dump): the fixed
//!   header only (state, addresses, ports), no attributes requested.
//!
//! A dump the kernel flags as interrupted (`NLM_F_DUMP_INTR`: the table changed while it was
//! read) is read again, up to [`DUMP_ATTEMPTS`] times, and then used as it is. Replies are
//! matched by sequence number, so the rest of an abandoned dump (after a receive time-out) is
//! skipped by the next one. Every failure is an `Err` for the caller to log at a limited rate.

use std::io;
use std::net::IpAddr;
use std::time::Duration;

use netlink_packet_core::{
    DecodeError, Emitable, ErrorBuffer, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NLMSG_DONE,
    NLMSG_ERROR, NetlinkBuffer, NlasIterator, Parseable, parse_string,
};
use netlink_packet_route::AddressFamily;
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeader, AddressHeaderFlags, AddressMessage,
    AddressProtocol,
};
use netlink_packet_route::link::{LinkFlags, LinkHeader, Stats64};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourHeader, NeighbourMessage, NeighbourState,
};
use netlink_packet_sock_diag::inet::{
    ExtensionFlags, InetRequest, InetResponseHeader, SocketId, StateFlags,
};
use netlink_packet_sock_diag::{AF_INET, AF_INET6, IPPROTO_TCP, SOCK_DIAG_BY_FAMILY};
use netlink_sys::protocols::{NETLINK_ROUTE, NETLINK_SOCK_DIAG};
use netlink_sys::{Socket, SocketAddr};

use crate::connections::{Family, TcpSocket};

/// Message types of requests and answers (`<linux/rtnetlink.h>`, stable kernel ABI; the crate
/// keeps its own copies private). Requests are framed here rather than through the crate's
/// `RouteNetlinkMessage`, whose encoder covers every message type (routes, traffic control, ...)
/// and would bring hundreds of KiB of code into the binary for three fixed requests.
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const RTM_NEWNEIGH: u16 = 28;
const RTM_GETNEIGH: u16 = 30;

/// The length of `struct nlmsghdr`.
const NETLINK_HEADER_LEN: usize = 16;

/// Link attributes decoded (`<linux/if_link.h>`).
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_STATS64: u16 = 23;

/// `ifa_valid` of an address that never expires.
pub const INFINITY_LIFE_TIME: u32 = u32::MAX;

/// One datagram of a dump answer is at most this long: the kernel sizes dump messages to the
/// reader's buffer, capped at 32 KiB (`netlink_recvmsg`), so nothing is ever truncated.
const RECV_BUFFER: usize = 32 * 1024;

/// `MSG_TRUNC` (`<sys/socket.h>` on Linux): a receive returns the datagram's real length even
/// when it did not fit, so a truncated answer is an error instead of silently cut.
const MSG_TRUNC: i32 = 0x20;

/// How long one receive may wait; the kernel answers dumps at once, so this only bounds a
/// kernel (or seccomp filter) that never answers.
const RECV_TIMEOUT: Duration = Duration::from_secs(2);

/// Attempts at a dump the kernel keeps flagging as interrupted.
pub const DUMP_ATTEMPTS: usize = 3;

/// One network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// The hardware address if it is a 6-byte (Ethernet-style) one that is not all zeros.
    pub mac: Option<[u8; 6]>,
    /// `IFF_LOOPBACK`.
    pub loopback: bool,
    /// Bytes received and sent since the interface was created (`IFLA_STATS64`, the counters
    /// `/proc/net/dev` shows); `None` if the kernel sent no statistics.
    pub counters: Option<(u64, u64)>,
}

/// One address of one interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelAddress {
    pub index: u32,
    pub ip: IpAddr,
    pub prefix: u8,
    /// `IFA_F_PERMANENT`: configured, not handed out for a time (DHCP, router advertisement).
    pub permanent: bool,
    /// Seconds the address stays valid (`IFA_CACHEINFO`), [`INFINITY_LIFE_TIME`] for ever.
    pub valid_life_time: u32,
    /// `IFA_PROTO` is `IFAPROT_KERNEL_RA`: made by the kernel from a router advertisement.
    pub router_advertised: bool,
}

/// One entry of the neighbour table, IPv4 or IPv6.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelNeighbour {
    pub index: u32,
    pub ip: IpAddr,
    /// The link-layer address as the kernel has it (empty while unresolved).
    pub lladdr: Vec<u8>,
    pub state: NeighbourState,
}

/// Why a dump failed.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("netlink socket: {0}")]
    Io(#[from] io::Error),
    #[error("the kernel refused the request: {0}")]
    Kernel(io::Error),
    #[error("malformed netlink message: {0}")]
    Decode(String),
    #[error("netlink answer of {0} bytes is larger than the receive buffer")]
    Truncated(usize),
}

impl From<DecodeError> for NetlinkError {
    fn from(e: DecodeError) -> Self {
        NetlinkError::Decode(e.to_string())
    }
}

/// A netlink socket with its receive buffer, kept between collections. The table methods
/// need a socket of their protocol: rtnetlink ([`NetlinkSocket::route`]) for links, addresses
/// and neighbours, sock_diag ([`NetlinkSocket::sock_diag`]) for TCP sockets; on the other, the
/// kernel refuses the request.
pub struct NetlinkSocket {
    socket: Socket,
    buffer: Vec<u8>,
    seq: u32,
}

impl std::fmt::Debug for NetlinkSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetlinkSocket")
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl NetlinkSocket {
    /// A `NETLINK_ROUTE` socket.
    pub fn route() -> Result<Self, NetlinkError> {
        Self::open(NETLINK_ROUTE)
    }

    /// A `NETLINK_SOCK_DIAG` socket.
    pub fn sock_diag() -> Result<Self, NetlinkError> {
        Self::open(NETLINK_SOCK_DIAG)
    }

    fn open(protocol: isize) -> Result<Self, NetlinkError> {
        let mut socket = Socket::new(protocol)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        rustix::net::sockopt::set_socket_timeout(
            &socket,
            rustix::net::sockopt::Timeout::Recv,
            Some(RECV_TIMEOUT),
        )
        .map_err(io::Error::from)?;
        Ok(NetlinkSocket {
            socket,
            buffer: vec![0; RECV_BUFFER],
            seq: 0,
        })
    }

    /// Every interface, in the kernel's order (by index).
    pub fn links(&mut self, out: &mut Vec<Link>) -> Result<(), NetlinkError> {
        let request = LinkHeader::default();
        self.dump(RTM_GETLINK, &request, RTM_NEWLINK, parse_link, out)
    }

    /// Every IPv4 and IPv6 address of every interface.
    pub fn addresses(&mut self, out: &mut Vec<KernelAddress>) -> Result<(), NetlinkError> {
        let request = AddressHeader::default();
        self.dump(RTM_GETADDR, &request, RTM_NEWADDR, parse_address, out)
    }

    /// The IPv4 (ARP) and IPv6 (NDP) neighbour tables, every state.
    pub fn neighbours(&mut self, out: &mut Vec<KernelNeighbour>) -> Result<(), NetlinkError> {
        let request = NeighbourHeader::default();
        self.dump(RTM_GETNEIGH, &request, RTM_NEWNEIGH, parse_neighbour, out)
    }

    /// The TCP sockets of `family` in any of `states` (e.g. `StateFlags::LISTEN`).
    pub fn tcp_sockets(
        &mut self,
        family: Family,
        states: StateFlags,
        out: &mut Vec<TcpSocket>,
    ) -> Result<(), NetlinkError> {
        let request = InetRequest {
            family: match family {
                Family::V4 => AF_INET,
                Family::V6 => AF_INET6,
            },
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states,
            socket_id: match family {
                Family::V4 => SocketId::new_v4(),
                Family::V6 => SocketId::new_v6(),
            },
        };
        let ty = SOCK_DIAG_BY_FAMILY;
        self.dump(ty, &request, ty, parse_tcp_socket, out)
    }

    /// Sends a dump request (`message_type` with `body`) and parses the answer's messages of type
    /// `answer` into `out` until `NLMSG_DONE`. `out` is cleared before every attempt, so an
    /// interrupted attempt leaves nothing behind.
    fn dump<T>(
        &mut self,
        message_type: u16,
        body: &impl Emitable,
        answer: u16,
        parse: Parser<T>,
        out: &mut Vec<T>,
    ) -> Result<(), NetlinkError> {
        for attempt in 1..=DUMP_ATTEMPTS {
            out.clear();
            self.seq = self.seq.wrapping_add(1);
            let seq = self.seq;
            self.socket
                .send(&dump_request(message_type, body, seq), 0)?;
            let mut interrupted = false;
            loop {
                let n = self.socket.recv(&mut &mut self.buffer[..], MSG_TRUNC)?;
                if n > self.buffer.len() {
                    return Err(NetlinkError::Truncated(n));
                }
                let state = parse_answer(&self.buffer[..n], seq, answer, parse, out)?;
                interrupted |= state.interrupted;
                if state.done {
                    break;
                }
            }
            if !interrupted || attempt == DUMP_ATTEMPTS {
                break;
            }
        }
        Ok(())
    }
}

/// Decodes the payload of one answer message; `None` for an entry that is not wanted.
pub type Parser<T> = fn(&[u8]) -> Result<Option<T>, NetlinkError>;

/// Appends the entries `parse` finds in the messages of type `answer` of dump `seq` in one
/// datagram to `out` (see [`parse_datagram`]).
pub fn parse_answer<T>(
    bytes: &[u8],
    seq: u32,
    answer: u16,
    parse: Parser<T>,
    out: &mut Vec<T>,
) -> Result<DatagramState, NetlinkError> {
    parse_datagram(bytes, seq, |ty, payload| {
        if ty == answer
            && let Some(entry) = parse(payload)?
        {
            out.push(entry);
        }
        Ok(())
    })
}

/// A socket opened on first use and dropped after any failure, so the next use starts afresh
/// (a half-read answer or a broken socket cannot spoil later dumps).
pub struct SocketSlot {
    socket: Option<NetlinkSocket>,
    open: fn() -> Result<NetlinkSocket, NetlinkError>,
}

impl std::fmt::Debug for SocketSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketSlot")
            .field("open", &self.socket.is_some())
            .finish_non_exhaustive()
    }
}

impl SocketSlot {
    /// A slot whose socket `open` makes, e.g. [`NetlinkSocket::route`].
    pub fn new(open: fn() -> Result<NetlinkSocket, NetlinkError>) -> Self {
        SocketSlot { socket: None, open }
    }

    /// Runs `f` on the socket, opening it first if needed; on failure the socket is dropped.
    pub fn run<R>(
        &mut self,
        f: impl FnOnce(&mut NetlinkSocket) -> Result<R, NetlinkError>,
    ) -> Result<R, NetlinkError> {
        let result = match &mut self.socket {
            Some(s) => f(s),
            None => (self.open)().and_then(|s| f(self.socket.insert(s))),
        };
        if result.is_err() {
            self.socket = None;
        }
        result
    }
}

/// The bytes of a dump request of `message_type` with `body` and sequence number `seq`.
pub fn dump_request(message_type: u16, body: &impl Emitable, seq: u32) -> Vec<u8> {
    let length = NETLINK_HEADER_LEN + body.buffer_len();
    let mut bytes = vec![0; length];
    let mut header = NetlinkBuffer::new(&mut bytes[..]);
    header.set_length(u32::try_from(length).unwrap_or(u32::MAX));
    header.set_message_type(message_type);
    header.set_flags(NLM_F_REQUEST | NLM_F_DUMP);
    header.set_sequence_number(seq);
    body.emit(&mut bytes[NETLINK_HEADER_LEN..]);
    bytes
}

/// What one datagram of a dump answer said about the dump as a whole.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DatagramState {
    /// `NLMSG_DONE` was seen: the dump is complete.
    pub done: bool,
    /// A message carried `NLM_F_DUMP_INTR`: the table changed during the dump.
    pub interrupted: bool,
}

/// Walks the netlink messages of one datagram, handing `(type, payload)` of each message of dump
/// `seq` to `each`; messages of other sequence numbers (an earlier, abandoned dump) are skipped.
/// An `NLMSG_ERROR` with a non-zero code is the kernel's refusal.
pub fn parse_datagram(
    mut bytes: &[u8],
    seq: u32,
    mut each: impl FnMut(u16, &[u8]) -> Result<(), NetlinkError>,
) -> Result<DatagramState, NetlinkError> {
    let mut state = DatagramState::default();
    while !bytes.is_empty() {
        let message = NetlinkBuffer::new_checked(bytes)?;
        let length = message.length() as usize;
        if message.sequence_number() == seq {
            state.interrupted |= message.flags() & NLM_F_DUMP_INTR != 0;
            match message.message_type() {
                NLMSG_DONE => state.done = true,
                NLMSG_ERROR => {
                    let error = ErrorBuffer::new_checked(message.payload())?;
                    if let Some(code) = error.code() {
                        // The kernel sends -errno.
                        let errno = code.get().checked_neg().unwrap_or(i32::MAX);
                        return Err(NetlinkError::Kernel(io::Error::from_raw_os_error(errno)));
                    }
                }
                ty => each(ty, message.payload())?,
            }
        }
        // Messages are padded to 4 bytes; `new_checked` made sure `length` fits.
        let next = length.next_multiple_of(4).min(bytes.len());
        if next == 0 {
            break;
        }
        bytes = &bytes[next..];
    }
    Ok(state)
}

/// The link in an `RTM_NEWLINK` payload; `None` for a link without a name.
pub fn parse_link(payload: &[u8]) -> Result<Option<Link>, NetlinkError> {
    let header = LinkHeader::parse(payload)?;
    let attributes = payload.get(header.buffer_len()..).unwrap_or_default();
    let mut name = None;
    let mut mac = None;
    let mut counters = None;
    for nla in NlasIterator::new(attributes) {
        let nla = nla?;
        // Decoded one by one: the crate's `LinkAttribute` decoder covers every kind (bridge,
        // VF, XDP, ...) and would be linked in whole.
        match nla.kind() {
            IFLA_IFNAME => name = Some(parse_string(nla.value())?),
            IFLA_ADDRESS => {
                mac = <[u8; 6]>::try_from(nla.value())
                    .ok()
                    .filter(|m| m.iter().any(|b| *b != 0));
            }
            IFLA_STATS64 => {
                let s = Stats64::parse(nla.value())?;
                counters = Some((s.rx_bytes, s.tx_bytes));
            }
            _ => {}
        }
    }
    Ok(name.map(|name| Link {
        index: header.index,
        name,
        mac,
        loopback: header.flags.contains(LinkFlags::Loopback),
        counters,
    }))
}

/// The address in an `RTM_NEWADDR` payload; `None` for families other than IPv4 and IPv6.
pub fn parse_address(payload: &[u8]) -> Result<Option<KernelAddress>, NetlinkError> {
    let message = AddressMessage::parse(payload)?;
    let mut local = None;
    let mut address = None;
    // `IFA_FLAGS` holds all 32 bits; the header only the low 8 (older kernels send only those).
    let mut permanent = message.header.flags.contains(AddressHeaderFlags::Permanent);
    let mut valid_life_time = INFINITY_LIFE_TIME;
    let mut router_advertised = false;
    for attribute in message.attributes {
        match attribute {
            AddressAttribute::Local(ip) => local = Some(ip),
            AddressAttribute::Address(ip) => address = Some(ip),
            AddressAttribute::Flags(flags) => permanent = flags.contains(AddressFlags::Permanent),
            AddressAttribute::CacheInfo(info) => valid_life_time = info.ifa_valid,
            AddressAttribute::Protocol(p) => {
                router_advertised = p == AddressProtocol::RouterAnnouncement;
            }
            _ => {}
        }
    }
    // On point-to-point links `IFA_ADDRESS` is the peer and `IFA_LOCAL` our own address; on
    // others they are equal, and IPv6 often sends `IFA_ADDRESS` only (as `ip` and getifaddrs).
    let Some(ip) = local.or(address) else {
        return Ok(None);
    };
    let family_matches = matches!(
        (message.header.family, ip),
        (AddressFamily::Inet, IpAddr::V4(_)) | (AddressFamily::Inet6, IpAddr::V6(_))
    );
    Ok(family_matches.then_some(KernelAddress {
        index: message.header.index,
        ip,
        prefix: message.header.prefix_len,
        permanent,
        valid_life_time,
        router_advertised,
    }))
}

/// The entry in an `RTM_NEWNEIGH` payload; `None` for families other than IPv4 and IPv6 or an
/// entry without a destination.
pub fn parse_neighbour(payload: &[u8]) -> Result<Option<KernelNeighbour>, NetlinkError> {
    let message = NeighbourMessage::parse(payload)?;
    let mut ip = None;
    let mut lladdr = Vec::new();
    for attribute in message.attributes {
        match attribute {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                ip = Some(IpAddr::V4(v4));
            }
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                ip = Some(IpAddr::V6(v6));
            }
            NeighbourAttribute::LinkLayerAddress(bytes) => lladdr = bytes,
            _ => {}
        }
    }
    Ok(ip.map(|ip| KernelNeighbour {
        index: message.header.ifindex,
        ip,
        lladdr,
        state: message.header.state,
    }))
}

/// The socket in a `SOCK_DIAG_BY_FAMILY` answer (its fixed header; attributes are not read).
pub fn parse_tcp_socket(payload: &[u8]) -> Result<Option<TcpSocket>, NetlinkError> {
    let header = InetResponseHeader::parse(payload)?;
    let id = header.socket_id;
    Ok(Some(TcpSocket {
        state: header.state,
        local: id.source_address,
        local_port: id.source_port,
        peer: id.destination_address,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{NLMSG_ALIGNTO, NetlinkHeader, NetlinkMessage, NetlinkPayload};
    use netlink_packet_route::RouteNetlinkMessage;
    use netlink_packet_route::address::CacheInfo;
    use netlink_packet_route::link::{LinkAttribute, LinkMessage};
    use netlink_packet_sock_diag::SockDiagMessage;

    /// One answer message of dump `seq`, as the kernel frames it.
    fn framed(message: RouteNetlinkMessage, seq: u32, flags: u16) -> Vec<u8> {
        let mut header = NetlinkHeader::default();
        header.sequence_number = seq;
        header.flags = flags;
        let mut m = NetlinkMessage::new(header, NetlinkPayload::from(message));
        m.finalize();
        let mut bytes = vec![0; m.buffer_len()];
        m.serialize(&mut bytes);
        bytes.resize(bytes.len().next_multiple_of(usize::from(NLMSG_ALIGNTO)), 0);
        bytes
    }

    /// `NLMSG_DONE` of dump `seq` (type 3, a 4-byte status of 0).
    fn done(seq: u32) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&20u32.to_ne_bytes());
        bytes.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
        bytes.extend_from_slice(&2u16.to_ne_bytes()); // NLM_F_MULTI
        bytes.extend_from_slice(&seq.to_ne_bytes());
        bytes.extend_from_slice(&0u32.to_ne_bytes());
        bytes.extend_from_slice(&0i32.to_ne_bytes());
        bytes
    }

    fn link(index: u32, name: &str, mac: &[u8], flags: LinkFlags, rx: u64, tx: u64) -> Vec<u8> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.flags = flags;
        let mut stats = Stats64::default();
        stats.rx_bytes = rx;
        stats.tx_bytes = tx;
        m.attributes = vec![
            LinkAttribute::IfName(name.into()),
            LinkAttribute::Mtu(1500),
            LinkAttribute::Address(mac.to_vec()),
            LinkAttribute::Stats64(stats),
        ];
        let mut bytes = vec![0; m.buffer_len()];
        m.emit(&mut bytes);
        bytes
    }

    fn address(
        family: AddressFamily,
        index: u32,
        ip: &str,
        prefix: u8,
        flags: AddressFlags,
        valid: u32,
        protocol: Option<AddressProtocol>,
    ) -> AddressMessage {
        let ip: IpAddr = ip.parse().expect("ip");
        let mut m = AddressMessage::default();
        m.header.family = family;
        m.header.index = index;
        m.header.prefix_len = prefix;
        m.attributes = vec![AddressAttribute::Address(ip)];
        if ip.is_ipv4() {
            m.attributes.push(AddressAttribute::Local(ip));
        }
        let mut info = CacheInfo::default();
        info.ifa_valid = valid;
        info.ifa_preferred = valid;
        m.attributes.push(AddressAttribute::CacheInfo(info));
        m.attributes.push(AddressAttribute::Flags(flags));
        if let Some(p) = protocol {
            m.attributes.push(AddressAttribute::Protocol(p));
        }
        m
    }

    fn neighbour(
        family: AddressFamily,
        ip: NeighbourAddress,
        mac: &[u8],
        state: NeighbourState,
    ) -> NeighbourMessage {
        let mut m = NeighbourMessage::default();
        m.header.family = family;
        m.header.ifindex = 4;
        m.header.state = state;
        m.attributes = vec![NeighbourAttribute::Destination(ip)];
        if !mac.is_empty() {
            m.attributes
                .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
        }
        m
    }

    /// Parses a whole answer (datagrams concatenated) with one of the `parse_*` functions.
    fn parse_all<T>(
        bytes: &[u8],
        seq: u32,
        answer: u16,
        parse: Parser<T>,
    ) -> Result<(Vec<T>, DatagramState), NetlinkError> {
        let mut out = Vec::new();
        let state = parse_answer(bytes, seq, answer, parse, &mut out)?;
        Ok((out, state))
    }

    /// The crate's own encoding of a request, to compare the hand-framed ones with.
    fn crate_request<M: netlink_packet_core::NetlinkSerializable>(m: M, seq: u32) -> Vec<u8> {
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        header.sequence_number = seq;
        let mut m = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(m));
        m.finalize();
        let mut bytes = vec![0; m.buffer_len()];
        m.serialize(&mut bytes);
        bytes
    }

    #[test]
    fn requests_are_framed_as_the_crate_would() {
        let bytes = dump_request(RTM_GETADDR, &AddressHeader::default(), 7);
        let b = NetlinkBuffer::new_checked(&bytes[..]).expect("valid");
        assert_eq!(b.message_type(), 22); // RTM_GETADDR
        assert_eq!(b.flags(), NLM_F_REQUEST | NLM_F_DUMP);
        assert_eq!(b.sequence_number(), 7);
        assert_eq!(b.length() as usize, bytes.len());
        let get = |m| crate_request(m, 7);
        assert_eq!(
            bytes,
            get(RouteNetlinkMessage::GetAddress(AddressMessage::default()))
        );
        assert_eq!(
            dump_request(RTM_GETNEIGH, &NeighbourHeader::default(), 7),
            get(RouteNetlinkMessage::GetNeighbour(
                NeighbourMessage::default()
            ))
        );
        assert_eq!(
            dump_request(RTM_GETLINK, &LinkHeader::default(), 7),
            get(RouteNetlinkMessage::GetLink(LinkMessage::default()))
        );
    }

    #[test]
    fn links_keep_name_mac_loopback_and_counters() {
        let mut m = LinkMessage::default();
        m.header.index = 4;
        let payload = link(
            4,
            "eth0",
            &[2, 0xfc, 0, 0, 0, 1],
            LinkFlags::Up,
            383_729_603,
            551_581,
        );
        let l = parse_link(&payload).expect("parses").expect("named");
        assert_eq!(
            l,
            Link {
                index: 4,
                name: "eth0".into(),
                mac: Some([2, 0xfc, 0, 0, 0, 1]),
                loopback: false,
                counters: Some((383_729_603, 551_581)),
            }
        );
        let lo = link(1, "lo", &[0; 6], LinkFlags::Loopback | LinkFlags::Up, 5, 5);
        let lo = parse_link(&lo).expect("parses").expect("named");
        assert!(lo.loopback);
        assert_eq!(lo.mac, None, "all zeros is no MAC");
        // A tunnel's 4-byte "hardware address" is not a MAC.
        let gre = parse_link(&link(9, "gre1", &[192, 0, 2, 1], LinkFlags::Up, 0, 0))
            .expect("parses")
            .expect("named");
        assert_eq!(gre.mac, None);
        // An attribute that does not parse in a kind the agent does not read is ignored...
        let mut odd = link(5, "eth1", &[2, 0, 0, 0, 0, 2], LinkFlags::Up, 1, 2);
        odd.extend_from_slice(&[8, 0, 0xfe, 0x7f, 1, 2, 3, 4]); // kind 0x7ffe, 4 bytes
        assert_eq!(
            parse_link(&odd).expect("parses").expect("named").name,
            "eth1"
        );
        // ...but a truncated header is an error, not a panic.
        assert!(parse_link(&payload[..10]).is_err());
    }

    #[test]
    fn addresses_carry_permanent_lifetime_and_protocol() {
        let seq = 41;
        let mut answer = Vec::new();
        for m in [
            address(
                AddressFamily::Inet,
                1,
                "127.0.0.1",
                8,
                AddressFlags::Permanent,
                INFINITY_LIFE_TIME,
                None,
            ),
            address(
                AddressFamily::Inet,
                4,
                "10.0.0.7",
                24,
                AddressFlags::empty(),
                86_000,
                None,
            ),
            address(
                AddressFamily::Inet6,
                4,
                "2001:db8::1:2",
                64,
                AddressFlags::Managetempaddr,
                2000,
                Some(AddressProtocol::RouterAnnouncement),
            ),
            address(
                AddressFamily::Inet6,
                4,
                "fd00::2",
                64,
                AddressFlags::Permanent | AddressFlags::Nodad,
                INFINITY_LIFE_TIME,
                None,
            ),
        ] {
            answer.extend(framed(RouteNetlinkMessage::NewAddress(m), seq, 2));
        }
        // A message of an older, abandoned dump in the same datagram is skipped.
        answer.extend(framed(
            RouteNetlinkMessage::NewAddress(address(
                AddressFamily::Inet,
                9,
                "192.0.2.9",
                24,
                AddressFlags::Permanent,
                INFINITY_LIFE_TIME,
                None,
            )),
            seq - 1,
            2,
        ));
        answer.extend(done(seq));
        let (list, state) = parse_all(&answer, seq, RTM_NEWADDR, parse_address).expect("parses");
        assert_eq!(
            state,
            DatagramState {
                done: true,
                interrupted: false
            }
        );
        let got: Vec<(u32, String, u8, bool, u32, bool)> = list
            .iter()
            .map(|a| {
                (
                    a.index,
                    a.ip.to_string(),
                    a.prefix,
                    a.permanent,
                    a.valid_life_time,
                    a.router_advertised,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (1, "127.0.0.1".into(), 8, true, INFINITY_LIFE_TIME, false),
                (4, "10.0.0.7".into(), 24, false, 86_000, false),
                (4, "2001:db8::1:2".into(), 64, false, 2000, true),
                (4, "fd00::2".into(), 64, true, INFINITY_LIFE_TIME, false),
            ]
        );
    }

    #[test]
    fn point_to_point_addresses_use_the_local_side_and_header_flags_count() {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet;
        m.header.index = 7;
        m.header.prefix_len = 32;
        m.header.flags = AddressHeaderFlags::Permanent;
        m.attributes = vec![
            AddressAttribute::Address("10.8.0.1".parse().expect("ip")),
            AddressAttribute::Local("10.8.0.2".parse().expect("ip")),
        ];
        let mut payload = vec![0; m.buffer_len()];
        m.emit(&mut payload);
        let a = parse_address(&payload)
            .expect("parses")
            .expect("an address");
        assert_eq!(a.ip.to_string(), "10.8.0.2");
        assert!(a.permanent, "no IFA_FLAGS: the header's flags count");
        assert_eq!(a.valid_life_time, INFINITY_LIFE_TIME);
    }

    #[test]
    fn neighbours_of_both_families_with_state() {
        let seq = 3;
        let mac = [2, 0xfc, 0, 0, 0, 5];
        let mut answer = Vec::new();
        for m in [
            neighbour(
                AddressFamily::Inet,
                NeighbourAddress::Inet("192.0.2.1".parse().expect("ip")),
                &mac,
                NeighbourState::Stale,
            ),
            neighbour(
                AddressFamily::Inet6,
                NeighbourAddress::Inet6("fd00::1".parse().expect("ip")),
                &[],
                NeighbourState::Failed,
            ),
            neighbour(
                AddressFamily::Inet6,
                NeighbourAddress::Inet6("fe80::1".parse().expect("ip")),
                &mac,
                NeighbourState::Reachable,
            ),
        ] {
            answer.extend(framed(
                RouteNetlinkMessage::NewNeighbour(m),
                seq,
                2 | NLM_F_DUMP_INTR,
            ));
        }
        let (list, state) = parse_all(&answer, seq, RTM_NEWNEIGH, parse_neighbour).expect("parses");
        assert_eq!(
            state,
            DatagramState {
                done: false,
                interrupted: true
            }
        );
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].ip.to_string(), "192.0.2.1");
        assert_eq!(list[0].lladdr, mac);
        assert_eq!(list[0].state, NeighbourState::Stale);
        assert_eq!(list[1].state, NeighbourState::Failed);
        assert!(list[1].lladdr.is_empty());
        assert_eq!(
            (list[2].index, list[2].state),
            (4, NeighbourState::Reachable)
        );
    }

    #[test]
    fn tcp_sockets_of_a_sock_diag_answer() {
        use netlink_packet_sock_diag::inet::{InetResponse, InetResponseHeader};
        let response = |state: u8, local: &str, port: u16, peer: &str| {
            let mut id = SocketId::new_v6();
            id.source_address = local.parse().expect("ip");
            id.source_port = port;
            id.destination_address = peer.parse().expect("ip");
            id.destination_port = 50_000;
            SockDiagMessage::InetResponse(Box::new(InetResponse {
                header: InetResponseHeader {
                    family: AF_INET6,
                    state,
                    timer: None,
                    socket_id: id,
                    recv_queue: 0,
                    send_queue: 0,
                    uid: 0,
                    inode: 1,
                },
                nlas: Default::default(),
            }))
        };
        let seq = 11;
        let mut answer = Vec::new();
        for m in [
            response(10, "::", 443, "::"),
            response(1, "2001:db8::2", 443, "2001:db8::9"),
        ] {
            let mut header = NetlinkHeader::default();
            header.sequence_number = seq;
            let mut m = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(m));
            m.finalize();
            let mut bytes = vec![0; m.buffer_len()];
            m.serialize(&mut bytes);
            answer.extend(bytes);
        }
        answer.extend(done(seq));
        let (list, state) =
            parse_all(&answer, seq, SOCK_DIAG_BY_FAMILY, parse_tcp_socket).expect("parses");
        assert!(state.done);
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert_eq!(
            list,
            [
                TcpSocket {
                    state: 10,
                    local: ip("::"),
                    local_port: 443,
                    peer: ip("::")
                },
                TcpSocket {
                    state: 1,
                    local: ip("2001:db8::2"),
                    local_port: 443,
                    peer: ip("2001:db8::9")
                },
            ]
        );
        assert!(parse_tcp_socket(&[0; 10]).is_err(), "short header");
        let listeners = InetRequest {
            family: AF_INET,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::LISTEN,
            socket_id: SocketId::new_v4(),
        };
        let request = dump_request(SOCK_DIAG_BY_FAMILY, &listeners, 4);
        assert_eq!(
            request,
            crate_request(SockDiagMessage::InetRequest(listeners), 4)
        );
        let b = NetlinkBuffer::new_checked(&request[..]).expect("valid");
        assert_eq!(b.message_type(), SOCK_DIAG_BY_FAMILY);
        // inet_diag_req_v2: family, protocol, ext, pad, states (1 << TCP_LISTEN).
        assert_eq!(&b.payload()[..4], &[AF_INET, IPPROTO_TCP, 0, 0]);
        assert_eq!(&b.payload()[4..8], &(1u32 << 10).to_ne_bytes());
    }

    #[test]
    fn kernel_errors_and_garbage_are_errors() {
        // NLMSG_ERROR with -EPERM (1) for dump 5.
        let mut error = Vec::new();
        error.extend_from_slice(&36u32.to_ne_bytes());
        error.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        error.extend_from_slice(&0u16.to_ne_bytes());
        error.extend_from_slice(&5u32.to_ne_bytes());
        error.extend_from_slice(&0u32.to_ne_bytes());
        error.extend_from_slice(&(-1i32).to_ne_bytes());
        error.extend_from_slice(&[0; 16]); // the request's header, echoed
        let err = parse_datagram(&error, 5, |_, _| Ok(())).expect_err("EPERM");
        match err {
            NetlinkError::Kernel(e) => assert_eq!(e.kind(), io::ErrorKind::PermissionDenied),
            other => panic!("{other:?}"),
        }
        // An error of another dump is not ours.
        assert!(parse_datagram(&error, 6, |_, _| Ok(())).is_ok());
        // A length beyond the datagram.
        let mut bad = done(1);
        bad[0] = 200;
        assert!(parse_datagram(&bad, 1, |_, _| Ok(())).is_err());
        assert!(parse_datagram(&[1, 2, 3], 1, |_, _| Ok(())).is_err());
    }
}
