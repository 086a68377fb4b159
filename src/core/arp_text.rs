//! Switch ARP tables as their own command line prints them (`cloudgov import arp --format
//! huawei|cisco`): Huawei and H3C `display arp`, Cisco `show ip arp` (IOS, and the
//! address-first layout of NX-OS and IOS XR).
//!
//! People copy these from a terminal session, so the text carries prompts, legends, headers,
//! separators, wrapped continuation lines and totals around the entries. Only lines that start
//! like an entry are read (an address first, or IOS's `Internet`); such a line that does not
//! parse is an error naming its line, and nothing from the file is kept. Unresolved entries
//! (`Incomplete`, an all-zero MAC, H3C's invalid type) are skipped: they say nothing about
//! which host holds an address. The text carries no time or device, so the caller passes the
//! instant of the import and the source's name.

use std::net::IpAddr;

use chrono::{DateTime, Utc};

use crate::core::domain::{MacAddr, check_text};
use crate::core::import::ArpRow;

/// Which command's output a text file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpTextFormat {
    /// Huawei VRP and H3C Comware `display arp`.
    Huawei,
    /// Cisco IOS `show ip arp`, NX-OS `show ip arp`, IOS XR `show arp`.
    Cisco,
}

/// Longest source name, as for CSV ARP exports.
pub const MAX_SOURCE_CHARS: usize = 128;

#[derive(Debug, thiserror::Error)]
pub enum ArpTextError {
    #[error("{origin} line {line}: {message}")]
    Line {
        origin: String,
        line: usize,
        message: String,
    },
    #[error("source {0:?}: must be 1 to {MAX_SOURCE_CHARS} characters without control characters")]
    Source(String),
}

/// Parses `text`, the output of the `format` command, into ARP rows seen at `seen_at` by
/// `source` (the switch's name). The first bad entry line stops it with an error naming the
/// line.
pub fn parse_arp_text(
    origin: &str,
    format: ArpTextFormat,
    text: &str,
    source: &str,
    seen_at: DateTime<Utc>,
) -> Result<Vec<ArpRow>, ArpTextError> {
    if source.trim().is_empty() || check_text("source", source, MAX_SOURCE_CHARS).is_err() {
        return Err(ArpTextError::Source(source.chars().take(32).collect()));
    }
    // H3C's type column says `I` for an invalid entry, Huawei's for the switch's own interface
    // address: only H3C's header (with its `Aging` column) tells which one a file is.
    let mut h3c = false;
    let mut rows = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        let tokens: Vec<&str> = line.split_whitespace().collect();
        if format == ArpTextFormat::Huawei && is_h3c_header(&tokens) {
            h3c = true;
        }
        let entry = match format {
            ArpTextFormat::Huawei => huawei_entry(&tokens, h3c),
            ArpTextFormat::Cisco => cisco_entry(&tokens),
        };
        let entry = entry.map_err(|message| ArpTextError::Line {
            origin: origin.to_owned(),
            line: i + 1,
            message,
        })?;
        if let Entry::Resolved(ip, mac) = entry {
            rows.push(ArpRow {
                ip,
                mac,
                seen_at,
                source: source.to_owned(),
            });
        }
    }
    Ok(rows)
}

/// What one line of the output is.
#[derive(Debug, PartialEq)]
enum Entry {
    /// Not an entry: a prompt, legend, header, separator, continuation or total.
    Other,
    /// An entry without a usable MAC (incomplete, all zero, invalid).
    Unresolved,
    Resolved(IpAddr, MacAddr),
}

/// H3C's column header: `IP address  MAC address  VLAN/VSI  Interface  Aging Type` (Comware
/// 7), `IP Address  MAC Address  VLAN ID  Interface  Aging Type` (Comware 5).
fn is_h3c_header(tokens: &[&str]) -> bool {
    tokens.first().is_some_and(|t| t.eq_ignore_ascii_case("ip"))
        && tokens.iter().any(|t| t.eq_ignore_ascii_case("aging"))
}

/// Whether a token is meant as an address: hexadecimal digits with dots or colons. A mistyped
/// address (`10.1.1`, `10.1.1.300`) still counts, so it is reported rather than skipped; VLAN
/// continuation lines (`10/-`), totals (`Total:4`) and headers do not.
fn looks_like_address(token: &str) -> bool {
    token.starts_with(|c: char| c.is_ascii_hexdigit())
        && token.contains(['.', ':'])
        && token
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == '.' || c == ':')
}

fn address(token: &str) -> Result<IpAddr, String> {
    token
        .parse()
        .map_err(|_| format!("address {token:?} is not an IPv4 or IPv6 address"))
}

/// The MAC column: `Incomplete` and all-zero MACs are unresolved entries.
fn mac(token: &str) -> Result<Option<MacAddr>, String> {
    if token.eq_ignore_ascii_case("incomplete") {
        return Ok(None);
    }
    let mac: MacAddr = token.parse().map_err(|e| format!("{e}"))?;
    Ok((!mac.is_zero()).then_some(mac))
}

/// Huawei: `IP ADDRESS  MAC ADDRESS  EXPIRE(M)  TYPE  INTERFACE  VPN-INSTANCE` (the expiry is
/// empty for the switch's own addresses); H3C: `IP address  MAC address  VLAN/VSI  Interface
/// Aging  Type`. Either way the address and the MAC come first.
fn huawei_entry(tokens: &[&str], h3c: bool) -> Result<Entry, String> {
    let Some(first) = tokens.first().filter(|t| looks_like_address(t)) else {
        return Ok(Entry::Other);
    };
    let ip = address(first)?;
    let Some(mac_token) = tokens.get(1) else {
        return Err(format!(
            "entry for {ip} has no MAC address column (expected `IP ADDRESS  MAC ADDRESS ...`)"
        ));
    };
    if h3c && tokens.last().is_some_and(|t| t.eq_ignore_ascii_case("i")) {
        return Ok(Entry::Unresolved);
    }
    Ok(match mac(mac_token)? {
        Some(mac) => Entry::Resolved(ip, mac),
        None => Entry::Unresolved,
    })
}

/// IOS: `Internet  10.1.1.1  0  0050.56ab.cdef  ARPA  Vlan10` (age `-` for the router's own
/// addresses). NX-OS and IOS XR: `10.1.1.1  00:10:28  0050.56ab.cdef  Vlan10`.
fn cisco_entry(tokens: &[&str]) -> Result<Entry, String> {
    let (ip_token, mac_token) = match tokens.first() {
        Some(p) if p.eq_ignore_ascii_case("internet") => {
            if tokens.len() < 4 {
                return Err(format!(
                    "expected `Internet  ADDRESS  AGE  HARDWARE-ADDR  TYPE  INTERFACE`, found {} columns",
                    tokens.len()
                ));
            }
            (tokens[1], tokens[3])
        }
        Some(t) if looks_like_address(t) => {
            if tokens.len() < 3 {
                return Err(format!(
                    "expected `ADDRESS  AGE  MAC-ADDRESS  INTERFACE`, found {} columns",
                    tokens.len()
                ));
            }
            (tokens[0], tokens[2])
        }
        _ => return Ok(Entry::Other),
    };
    let ip = address(ip_token)?;
    Ok(match mac(mac_token)? {
        Some(mac) => Entry::Resolved(ip, mac),
        None => Entry::Unresolved,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-02T08:00:00Z")
            .expect("time")
            .with_timezone(&Utc)
    }

    fn pairs(rows: &[ArpRow]) -> Vec<(String, String)> {
        rows.iter()
            .map(|r| (r.ip.to_string(), r.mac.to_string()))
            .collect()
    }

    fn pair(ip: &str, mac: &str) -> (String, String) {
        (ip.to_owned(), mac.to_owned())
    }

    const HUAWEI: &str = "\
<HUAWEI>display arp
IP ADDRESS      MAC ADDRESS     EXPIRE(M) TYPE        INTERFACE      VPN-INSTANCE
                                          VLAN/CEVLAN PVC
------------------------------------------------------------------------------
10.1.1.1        00e0-fc12-3456            I -         Vlanif10
10.1.1.20       5489-98a1-0b2c  18        D-0         GE0/0/1
                                          10/-
10.1.1.21       5489-98A1-0B2D  20        D-0         GE0/0/2        vpn-a
                                          10/-
10.1.1.22       Incomplete      1         D-0         GE0/0/3
                                          10/-
10.1.2.5        0000-0000-0000  1         D-0         GE0/0/4
10.1.3.7        e4c2-d1f6-b8a0            S--         GE0/0/5
------------------------------------------------------------------------------
Total:6         Dynamic:4       Static:1     Interface:1
";

    #[test]
    fn huawei_display_arp() {
        let rows =
            parse_arp_text("sw.txt", ArpTextFormat::Huawei, HUAWEI, "agg-sw-2", at()).expect("ok");
        assert_eq!(
            pairs(&rows),
            vec![
                pair("10.1.1.1", "00:e0:fc:12:34:56"),
                pair("10.1.1.20", "54:89:98:a1:0b:2c"),
                pair("10.1.1.21", "54:89:98:a1:0b:2d"),
                pair("10.1.3.7", "e4:c2:d1:f6:b8:a0"),
            ]
        );
        assert!(
            rows.iter()
                .all(|r| r.source == "agg-sw-2" && r.seen_at == at())
        );
    }

    #[test]
    fn h3c_display_arp_comware_7_and_5() {
        let comware7 = "\
[H3C]display arp
  Type: S-Static   D-Dynamic   O-Openflow   R-Rule   M-Multiport  I-Invalid
IP address      MAC address    VLAN/VSI name Interface                Aging Type
192.168.10.2    3822-d6e3-6f01 10            GE1/0/1                  1079  D
192.168.10.3    0cda-41b5-cf12 10            GE1/0/2                  N/A   S
192.168.10.9    0cda-41b5-cf99 10            GE1/0/3                  N/A   I
192.168.20.1    70ba-ef12-3401 20            XGE1/0/49                17    D
";
        let rows =
            parse_arp_text("h3c.txt", ArpTextFormat::Huawei, comware7, "core", at()).expect("ok");
        assert_eq!(
            pairs(&rows),
            vec![
                pair("192.168.10.2", "38:22:d6:e3:6f:01"),
                pair("192.168.10.3", "0c:da:41:b5:cf:12"),
                pair("192.168.20.1", "70:ba:ef:12:34:01"),
            ]
        );
        let comware5 = "\
<H3C>display arp
                Type: S-Static    D-Dynamic    A-Authorized
IP Address      MAC Address     VLAN ID  Interface              Aging Type
10.20.0.1       000f-e212-3456  1        GE1/0/1                20    D
10.20.0.2       000f-e212-3457  1        GE1/0/2                N/A   S
---   2 entries found   ---
";
        let rows =
            parse_arp_text("h3c5.txt", ArpTextFormat::Huawei, comware5, "old", at()).expect("ok");
        assert_eq!(
            pairs(&rows),
            vec![
                pair("10.20.0.1", "00:0f:e2:12:34:56"),
                pair("10.20.0.2", "00:0f:e2:12:34:57"),
            ]
        );
    }

    #[test]
    fn cisco_ios_nxos_and_xr() {
        let ios = "\
core-rtr#show ip arp
Protocol  Address          Age (min)  Hardware Addr   Type   Interface
Internet  10.1.1.1                -   0050.56ab.cdef  ARPA   Vlan10
Internet  10.1.1.20              12   0050.56ab.0001  ARPA   Vlan10
Internet  10.1.1.30               0   Incomplete      ARPA
Internet  10.1.2.40             231   A0B1.C2D3.E4F5  ARPA   GigabitEthernet0/1
core-rtr#
";
        let rows =
            parse_arp_text("ios.txt", ArpTextFormat::Cisco, ios, "core-rtr", at()).expect("ok");
        assert_eq!(
            pairs(&rows),
            vec![
                pair("10.1.1.1", "00:50:56:ab:cd:ef"),
                pair("10.1.1.20", "00:50:56:ab:00:01"),
                pair("10.1.2.40", "a0:b1:c2:d3:e4:f5"),
            ]
        );
        let nxos = "\
Flags: * - Adjacencies learnt on non-active FHRP router
IP ARP Table for context default
Total number of entries: 3
Address         Age       MAC Address     Interface       Flags
10.2.0.1        00:10:28  0050.56ab.1111  Vlan20
10.2.0.2        00:00:05  INCOMPLETE      Vlan20
10.2.0.3        00:04:11  0050.56ab.3333  Vlan20          *
";
        let rows = parse_arp_text("nx.txt", ArpTextFormat::Cisco, nxos, "nexus", at()).expect("ok");
        assert_eq!(
            pairs(&rows),
            vec![
                pair("10.2.0.1", "00:50:56:ab:11:11"),
                pair("10.2.0.3", "00:50:56:ab:33:33"),
            ]
        );
        let xr = "\
RP/0/RSP0/CPU0:xr#show arp
Address         Age        Hardware Addr   State      Type  Interface
10.3.0.1        -          0050.56ab.aaaa  Interface  ARPA  GigabitEthernet0/0/0/0
10.3.0.2        01:02:03   0050.56ab.bbbb  Dynamic    ARPA  GigabitEthernet0/0/0/0
";
        let rows = parse_arp_text("xr.txt", ArpTextFormat::Cisco, xr, "xr", at()).expect("ok");
        assert_eq!(rows.len(), 2);
    }

    #[test]
    fn a_bad_entry_names_its_line_and_what_is_wrong() {
        let bad_mac = HUAWEI.replace("5489-98A1-0B2D", "5489-98A1-0B2");
        let err = parse_arp_text("sw.txt", ArpTextFormat::Huawei, &bad_mac, "sw", at())
            .expect_err("bad MAC");
        assert!(matches!(&err, ArpTextError::Line { line: 8, .. }), "{err}");
        assert!(err.to_string().contains("MAC address"), "{err}");

        let bad_ip = "Protocol  Address  Age (min)  Hardware Addr  Type  Interface\n\
                      Internet  10.1.1.300  0  0050.56ab.cdef  ARPA  Vlan10\n";
        let err =
            parse_arp_text("r.txt", ArpTextFormat::Cisco, bad_ip, "r", at()).expect_err("bad ip");
        assert_eq!(err.to_string().split(':').next(), Some("r.txt line 2"));
        assert!(err.to_string().contains("10.1.1.300"), "{err}");

        let short = "Internet  10.1.1.1  0\n";
        let err =
            parse_arp_text("r.txt", ArpTextFormat::Cisco, short, "r", at()).expect_err("short");
        assert!(err.to_string().contains("line 1"), "{err}");

        let truncated = "10.1.1.5\n";
        let err = parse_arp_text("t.txt", ArpTextFormat::Huawei, truncated, "t", at())
            .expect_err("no MAC");
        assert!(err.to_string().contains("no MAC"), "{err}");
    }

    #[test]
    fn prompts_headers_and_totals_are_not_entries_and_empty_output_is_empty() {
        for format in [ArpTextFormat::Huawei, ArpTextFormat::Cisco] {
            let text = "<sw>display arp\nTotal:0  Dynamic:0  Static:0  Interface:0\n\n";
            assert!(
                parse_arp_text("e.txt", format, text, "sw", at())
                    .expect("ok")
                    .is_empty()
            );
        }
        // Windows line endings from a terminal log.
        let crlf = HUAWEI.replace('\n', "\r\n");
        let rows = parse_arp_text("w.txt", ArpTextFormat::Huawei, &crlf, "sw", at()).expect("ok");
        assert_eq!(rows.len(), 4);
    }

    #[test]
    fn the_source_is_checked() {
        for source in ["", "  ", "a\u{7}b"] {
            assert!(matches!(
                parse_arp_text("x", ArpTextFormat::Cisco, "", source, at()),
                Err(ArpTextError::Source(_))
            ));
        }
        assert!(parse_arp_text("x", ArpTextFormat::Cisco, "", &"s".repeat(129), at()).is_err());
    }
}
