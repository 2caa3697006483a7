//! [`TransportAddress`]: where a peer can be reached, with a URI text form.
//!
//! | variant | text form |
//! |---|---|
//! | `Tcp` | `tcp://127.0.0.1:8765` |
//! | `Udp` | `udp://127.0.0.1:8765` |
//! | `Quic` | `quic://[::1]:4433` |
//! | `WebSocket` | `ws://host:80/bitcraps`, `wss://host:443/bitcraps` |
//! | `Bluetooth` | `ble://<device id>` |
//! | `Mesh` | `mesh://<peer id>` |
//! | `Memory` | `memory://7` (port 0 asks the listener to pick one) |
//! | `Custom` | `<scheme>://<data>` for any other scheme, so third-party backends plug in |
//!
//! Addresses parse from and print as these forms, and serialize with serde as the same string.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::PeerId;

/// Why a text is not a valid [`TransportAddress`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// The text has no `scheme://` prefix.
    #[error("address `{0}` has no scheme (expected e.g. tcp://127.0.0.1:8765)")]
    MissingScheme(String),
    /// The part after the scheme is not an `ip:port` socket address.
    #[error("address `{0}`: expected ip:port (IPv6 in brackets, e.g. [::1]:4433)")]
    InvalidSocketAddr(String),
    /// The host or port of a WebSocket URL is malformed.
    #[error("address `{0}`: malformed WebSocket URL (expected ws://host:port/path)")]
    InvalidWebSocket(String),
    /// The peer id of a `mesh://` address is malformed.
    #[error("address `{0}`: the peer id must be 64 hex digits of an Ed25519 key")]
    InvalidPeerId(String),
    /// The part after the scheme is empty or malformed.
    #[error("address `{0}`: missing or malformed part after the scheme")]
    InvalidData(String),
}

/// A WebSocket endpoint: `ws://` or `wss://`, host, port and path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WebSocketAddress {
    /// `wss://` (TLS) when true, `ws://` when false.
    pub secure: bool,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port (80 / 443 when the URL names none).
    pub port: u16,
    /// Path, starting with `/`.
    pub path: String,
}

impl WebSocketAddress {
    /// The URL scheme: `ws` or `wss`.
    pub fn scheme(&self) -> &'static str {
        if self.secure {
            "wss"
        } else {
            "ws"
        }
    }

    /// `host:port` as a socket address, if the host is an IP address.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        self.host
            .parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, self.port))
    }
}

impl fmt::Display for WebSocketAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        write!(f, "{}://{}:{}{}", self.scheme(), host, self.port, self.path)
    }
}

/// Where a peer can be reached.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportAddress {
    /// A TCP socket address.
    Tcp(SocketAddr),
    /// A UDP socket address (datagram backend).
    Udp(SocketAddr),
    /// A QUIC endpoint (UDP socket address).
    Quic(SocketAddr),
    /// A WebSocket URL.
    WebSocket(WebSocketAddress),
    /// A Bluetooth LE device id (platform-specific text, e.g. a MAC address).
    Bluetooth(String),
    /// A peer reached through the mesh, by identity, over any number of hops.
    Mesh(PeerId),
    /// An in-process endpoint (the memory backend); port 0 asks the listener to pick one.
    Memory(u64),
    /// A backend this crate does not know: `scheme://data`.
    Custom {
        /// The URI scheme (lowercase letters, digits, `+`, `-`, `.`).
        scheme: String,
        /// Everything after `scheme://`.
        data: String,
    },
}

impl TransportAddress {
    /// The URI scheme of this address (`tcp`, `quic`, `ws`, ...).
    pub fn scheme(&self) -> &str {
        match self {
            Self::Tcp(_) => "tcp",
            Self::Udp(_) => "udp",
            Self::Quic(_) => "quic",
            Self::WebSocket(ws) => ws.scheme(),
            Self::Bluetooth(_) => "ble",
            Self::Mesh(_) => "mesh",
            Self::Memory(_) => "memory",
            Self::Custom { scheme, .. } => scheme,
        }
    }

    /// The IP socket address for IP-based variants (and WebSocket URLs with an IP host).
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self {
            Self::Tcp(a) | Self::Udp(a) | Self::Quic(a) => Some(*a),
            Self::WebSocket(ws) => ws.socket_addr(),
            _ => None,
        }
    }
}

impl fmt::Display for TransportAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(a) => write!(f, "tcp://{a}"),
            Self::Udp(a) => write!(f, "udp://{a}"),
            Self::Quic(a) => write!(f, "quic://{a}"),
            Self::WebSocket(ws) => write!(f, "{ws}"),
            Self::Bluetooth(d) => write!(f, "ble://{d}"),
            Self::Mesh(p) => write!(f, "mesh://{p}"),
            Self::Memory(n) => write!(f, "memory://{n}"),
            Self::Custom { scheme, data } => write!(f, "{scheme}://{data}"),
        }
    }
}

fn valid_scheme(scheme: &str) -> bool {
    let mut chars = scheme.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
}

fn parse_websocket(text: &str, secure: bool, rest: &str) -> Result<WebSocketAddress, AddressError> {
    let bad = || AddressError::InvalidWebSocket(text.to_string());
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let default_port = if secure { 443 } else { 80 };
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let end = inner.find(']').ok_or_else(bad)?;
        let host = &inner[..end];
        host.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
        let after = &inner[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad())?,
            None if after.is_empty() => default_port,
            None => return Err(bad()),
        };
        (host.to_string(), port)
    } else {
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().map_err(|_| bad())?),
            None => (authority, default_port),
        };
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
        if !host_ok {
            return Err(bad());
        }
        (host.to_string(), port)
    };
    Ok(WebSocketAddress {
        secure,
        host,
        port,
        path,
    })
}

impl FromStr for TransportAddress {
    type Err = AddressError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| AddressError::MissingScheme(text.to_string()))?;
        let socket = || {
            rest.parse::<SocketAddr>()
                .map_err(|_| AddressError::InvalidSocketAddr(text.to_string()))
        };
        let data_ok =
            !rest.is_empty() && !rest.chars().any(|c| c.is_whitespace() || c.is_control());
        match scheme {
            "tcp" => Ok(Self::Tcp(socket()?)),
            "udp" => Ok(Self::Udp(socket()?)),
            "quic" => Ok(Self::Quic(socket()?)),
            "ws" => Ok(Self::WebSocket(parse_websocket(text, false, rest)?)),
            "wss" => Ok(Self::WebSocket(parse_websocket(text, true, rest)?)),
            "ble" if data_ok => Ok(Self::Bluetooth(rest.to_string())),
            "mesh" => rest
                .parse::<PeerId>()
                .map(Self::Mesh)
                .map_err(|_| AddressError::InvalidPeerId(text.to_string())),
            "memory" => rest
                .parse::<u64>()
                .map(Self::Memory)
                .map_err(|_| AddressError::InvalidData(text.to_string())),
            s if valid_scheme(s) && data_ok && !matches!(s, "ble") => Ok(Self::Custom {
                scheme: s.to_string(),
                data: rest.to_string(),
            }),
            s if valid_scheme(s) => Err(AddressError::InvalidData(text.to_string())),
            _ => Err(AddressError::MissingScheme(text.to_string())),
        }
    }
}

impl Serialize for TransportAddress {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TransportAddress {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Keypair;

    fn round_trip(text: &str) -> TransportAddress {
        let addr: TransportAddress = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(addr.to_string(), text, "prints as parsed");
        let json = serde_json::to_string(&addr).unwrap();
        assert_eq!(json, format!("\"{text}\""));
        assert_eq!(
            serde_json::from_str::<TransportAddress>(&json).unwrap(),
            addr
        );
        addr
    }

    #[test]
    fn every_variant_round_trips() {
        assert!(matches!(
            round_trip("tcp://127.0.0.1:8765"),
            TransportAddress::Tcp(_)
        ));
        assert!(matches!(
            round_trip("udp://127.0.0.1:0"),
            TransportAddress::Udp(_)
        ));
        assert!(matches!(
            round_trip("quic://[::1]:4433"),
            TransportAddress::Quic(_)
        ));
        let ws = round_trip("ws://example.org:80/bitcraps");
        assert_eq!(ws.socket_addr(), None);
        let wss = round_trip("wss://[::1]:443/a/b");
        assert_eq!(wss.socket_addr(), Some("[::1]:443".parse().unwrap()));
        assert!(matches!(
            round_trip("ble://AA:BB:CC:DD:EE:FF"),
            TransportAddress::Bluetooth(_)
        ));
        assert!(matches!(
            round_trip("memory://0"),
            TransportAddress::Memory(0)
        ));
        let peer = Keypair::generate().peer_id();
        assert_eq!(
            round_trip(&format!("mesh://{peer}")),
            TransportAddress::Mesh(peer)
        );
        assert_eq!(
            round_trip("webrtc+x://room/7"),
            TransportAddress::Custom {
                scheme: "webrtc+x".into(),
                data: "room/7".into()
            }
        );
    }

    #[test]
    fn websocket_defaults_fill_port_and_path() {
        let a: TransportAddress = "ws://localhost".parse().unwrap();
        assert_eq!(a.to_string(), "ws://localhost:80/");
        let b: TransportAddress = "wss://host.example/x".parse().unwrap();
        assert_eq!(b.to_string(), "wss://host.example:443/x");
    }

    #[test]
    fn malformed_addresses_get_clear_errors() {
        use AddressError::*;
        let err = |t: &str| t.parse::<TransportAddress>().unwrap_err();
        assert!(matches!(err("127.0.0.1:80"), MissingScheme(_)));
        assert!(matches!(err("tcp://127.0.0.1"), InvalidSocketAddr(_)));
        assert!(matches!(err("tcp://::1:80"), InvalidSocketAddr(_)));
        assert!(matches!(err("quic://host:99999"), InvalidSocketAddr(_)));
        assert!(matches!(err("ws://ho st:80/"), InvalidWebSocket(_)));
        assert!(matches!(err("ws://host:x/"), InvalidWebSocket(_)));
        assert!(matches!(err("ws://[::1/"), InvalidWebSocket(_)));
        assert!(matches!(err("mesh://abcd"), InvalidPeerId(_)));
        assert!(matches!(err("memory://-1"), InvalidData(_)));
        assert!(matches!(err("ble://"), InvalidData(_)));
        assert!(matches!(err("x://a b"), InvalidData(_)));
        assert!(matches!(err("Bad Scheme://x"), MissingScheme(_)));
        let shown = err("tcp://nope").to_string();
        assert!(
            shown.contains("tcp://nope") && shown.contains("ip:port"),
            "{shown}"
        );
    }
}
