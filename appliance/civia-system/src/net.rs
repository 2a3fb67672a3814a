//! Sockets and addresses from `/proc/net`, and the egress probe.

use crate::{Collector, Listener, Protocol};
use serde::Serialize;
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

/// Most sockets reported (a box has a handful).
const MAX_LISTENERS: usize = 4096;
/// Most addresses reported.
const MAX_ADDRESSES: usize = 256;
/// `TCP_LISTEN` in `/proc/net/tcp*`.
const TCP_LISTEN: u8 = 0x0A;
/// `TCP_CLOSE`: how an unconnected UDP socket shows in `/proc/net/udp*`.
const UDP_UNCONNECTED: u8 = 0x07;

impl Collector {
    pub(crate) fn listening(&self) -> Vec<Listener> {
        let mut all = BTreeSet::new();
        for (file, protocol) in [
            ("/proc/net/tcp", Protocol::Tcp),
            ("/proc/net/tcp6", Protocol::Tcp),
            ("/proc/net/udp", Protocol::Udp),
            ("/proc/net/udp6", Protocol::Udp),
        ] {
            if let Some(text) = self.read(file) {
                all.extend(parse_socket_table(&text, protocol));
            }
        }
        all.into_iter().take(MAX_LISTENERS).collect()
    }

    pub(crate) fn addresses(&self) -> Vec<IpAddr> {
        let mut all = BTreeSet::new();
        if let Some(text) = self.read("/proc/net/fib_trie") {
            all.extend(parse_fib_trie(&text).into_iter().map(IpAddr::V4));
        }
        if let Some(text) = self.read("/proc/net/if_inet6") {
            all.extend(parse_if_inet6(&text).into_iter().map(IpAddr::V6));
        }
        all.into_iter().take(MAX_ADDRESSES).collect()
    }
}

/// The listening (TCP) or unconnected (UDP) sockets of a `/proc/net/{tcp,udp}[6]` table.
/// Lines that do not parse are skipped.
pub(crate) fn parse_socket_table(text: &str, protocol: Protocol) -> Vec<Listener> {
    let wanted = match protocol {
        Protocol::Tcp => TCP_LISTEN,
        Protocol::Udp => UDP_UNCONNECTED,
    };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let _slot = fields.next()?;
            let local = fields.next()?;
            let _remote = fields.next()?;
            let state = hex_u8(fields.next()?)?;
            if state != wanted {
                return None;
            }
            let (addr, port) = local.split_once(':')?;
            let port = u16::try_from(hex_u32(port)?).ok()?;
            Some(Listener {
                protocol,
                address: proc_address(addr)?,
                port,
            })
        })
        .take(MAX_LISTENERS)
        .collect()
}

/// Hex digits only (`from_str_radix` also takes a sign), at most 8 of them.
fn hex_u32(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

fn hex_u8(s: &str) -> Option<u8> {
    u8::try_from(hex_u32(s)?).ok()
}

/// An address of `/proc/net/{tcp,udp}[6]`: 32-bit words of network-order bytes, each printed
/// as a native-endian hex number (8 digits for IPv4, 4 words for IPv6).
fn proc_address(s: &str) -> Option<IpAddr> {
    match s.len() {
        8 => Some(IpAddr::V4(Ipv4Addr::from(hex_u32(s)?.to_ne_bytes()))),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
                let word = hex_u32(s.get(i * 8..i * 8 + 8)?)?;
                chunk.copy_from_slice(&word.to_ne_bytes());
            }
            Some(IpAddr::V6(Ipv6Addr::from(bytes)))
        }
        _ => None,
    }
}

/// The box's own IPv4 addresses: the `/32 host LOCAL` leaves of `/proc/net/fib_trie`,
/// loopback excluded.
pub(crate) fn parse_fib_trie(text: &str) -> Vec<Ipv4Addr> {
    let mut out = BTreeSet::new();
    let mut last: Option<Ipv4Addr> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(addr) = line.strip_prefix("|--") {
            last = addr.trim().parse().ok();
        } else if line.starts_with("/32 host LOCAL") {
            if let Some(a) = last.take().filter(|a| !a.is_loopback()) {
                out.insert(a);
                if out.len() >= MAX_ADDRESSES {
                    break;
                }
            }
        }
    }
    out.into_iter().collect()
}

/// Global-scope IPv6 addresses of `/proc/net/if_inet6` (32 hex digits in network order, then
/// index, prefix length, scope, flags and interface name).
pub(crate) fn parse_if_inet6(text: &str) -> Vec<Ipv6Addr> {
    const SCOPE_GLOBAL: u8 = 0x00;
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().take(6).collect();
        let (Some(hex), Some(scope)) = (f.first(), f.get(3)) else {
            continue;
        };
        if hex.len() != 32 || hex_u8(scope) != Some(SCOPE_GLOBAL) {
            continue;
        }
        let mut bytes = [0u8; 16];
        let parsed = bytes.iter_mut().enumerate().all(|(i, b)| {
            hex.get(i * 2..i * 2 + 2)
                .and_then(hex_u8)
                .map(|v| *b = v)
                .is_some()
        });
        let addr = Ipv6Addr::from(bytes);
        if parsed && !addr.is_loopback() && !addr.is_unspecified() {
            out.insert(addr);
            if out.len() >= MAX_ADDRESSES {
                break;
            }
        }
    }
    out.into_iter().collect()
}

// ---- egress probe ----------------------------------------------------------------------

/// Longest a probe waits for the connection.
pub const MAX_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// What a probe saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EgressResult {
    /// Whether the TCP handshake completed (then the connection was closed at once).
    pub connected: bool,
    /// Why not: `connection_refused`, `timed_out`, `network_unreachable`, `host_unreachable`,
    /// `permission_denied` (a local firewall), `network_down`, `address_unavailable`, or
    /// `other: <system message>`.
    pub error: Option<String>,
}

/// A target the probe refuses to try.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    #[error("port 0 cannot be probed")]
    PortZero,
    #[error("address {0} names no single host (unspecified, broadcast or multicast)")]
    NotUnicast(IpAddr),
}

/// Refuses targets a TCP connect cannot mean: port 0, unspecified, broadcast, multicast.
pub fn check_probe_target(addr: SocketAddr) -> Result<(), ProbeError> {
    if addr.port() == 0 {
        return Err(ProbeError::PortZero);
    }
    let ip = addr.ip();
    let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
    if ip.is_unspecified() || ip.is_multicast() || broadcast {
        return Err(ProbeError::NotUnicast(ip));
    }
    Ok(())
}

/// Tries one TCP connection to `addr` within `timeout` (at most [`MAX_PROBE_TIMEOUT`], at
/// least a millisecond) and closes it at once: no byte of data is sent. Blocking.
pub fn probe_egress(addr: SocketAddr, timeout: Duration) -> EgressResult {
    if let Err(e) = check_probe_target(addr) {
        return EgressResult {
            connected: false,
            error: Some(format!("other: {e}")),
        };
    }
    let timeout = timeout.clamp(Duration::from_millis(1), MAX_PROBE_TIMEOUT);
    match TcpStream::connect_timeout(&addr, timeout) {
        Ok(stream) => {
            let _ = stream.shutdown(Shutdown::Both);
            EgressResult {
                connected: true,
                error: None,
            }
        }
        Err(e) => EgressResult {
            connected: false,
            error: Some(probe_error(&e)),
        },
    }
}

fn probe_error(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused | K::ConnectionReset => "connection_refused".into(),
        K::TimedOut | K::WouldBlock => "timed_out".into(),
        K::NetworkUnreachable => "network_unreachable".into(),
        K::HostUnreachable => "host_unreachable".into(),
        K::PermissionDenied => "permission_denied".into(),
        K::NetworkDown => "network_down".into(),
        K::AddrNotAvailable => "address_unavailable".into(),
        _ => format!("other: {e}"),
    }
}
