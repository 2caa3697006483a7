//! The event printer: every event the node reports goes through [`Output::emit`], which writes
//! one JSON object per line (`--json`) or one readable line to stdout. Logs go to stderr, so
//! stdout stays machine-readable.

use std::io::Write;
use std::time::Duration;

use bitcraps_transport_core::{ConnectionStats, Error, ListenerStats, PeerId, TransportAddress};
use serde::Serialize;

/// Characters of a message's text shown in a `message` event.
const TEXT_CHARS: usize = 64;
/// Bytes of a message inspected for its text (64 chars of UTF-8 fit in 256 bytes).
const TEXT_BYTES: usize = TEXT_CHARS * 4;

/// One thing the node reports. Serialized with an `event` tag in snake case.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(crate) enum Event {
    /// A listener is bound (with its real port).
    Listening { address: String, peer_id: String },
    /// A connection was authenticated.
    Connected { peer_id: String, address: String },
    /// A message arrived.
    Message {
        peer_id: String,
        bytes: usize,
        text: Option<String>,
    },
    /// A connection ended.
    Disconnected { peer_id: String, reason: String },
    /// Something failed: a refused inbound attempt, a failed connection, a failed dial.
    Error {
        peer_id: Option<String>,
        remote: Option<String>,
        error: String,
        kind: &'static str,
        /// The inner variant (handshake error, protocol error or limit), when there is one.
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// A `send` run finished: what was sent and how fast.
    Summary {
        peer_id: String,
        messages: u64,
        bytes: u64,
        seconds: f64,
        messages_per_second: f64,
        megabytes_per_second: f64,
    },
    /// A demo participant said something.
    Said {
        peer_id: String,
        name: String,
        text: String,
    },
    /// A connection's counters.
    ConnectionStats {
        name: String,
        peer_id: String,
        address: String,
        messages_sent: u64,
        messages_received: u64,
        bytes_sent: u64,
        bytes_received: u64,
        age_ms: u128,
    },
    /// A listener's counters.
    ListenerStats {
        address: String,
        accepted: u64,
        refused_by_limit: u64,
        failed_handshakes: u64,
    },
    /// The node is shutting down (Ctrl-C).
    ShuttingDown { reason: String },
}

impl Event {
    /// A `connected` event.
    pub(crate) fn connected(peer: PeerId, address: &TransportAddress) -> Self {
        Self::Connected {
            peer_id: peer.to_string(),
            address: address.to_string(),
        }
    }

    /// A `message` event; the text is the first 64 characters if the message is UTF-8.
    pub(crate) fn message(peer: PeerId, message: &[u8]) -> Self {
        Self::Message {
            peer_id: peer.to_string(),
            bytes: message.len(),
            text: preview(message),
        }
    }

    /// An `error` event for a core error.
    pub(crate) fn error(
        peer: Option<PeerId>,
        remote: Option<&TransportAddress>,
        error: &Error,
    ) -> Self {
        let (kind, detail) = error_kind(error);
        Self::Error {
            peer_id: peer.map(|p| p.to_string()),
            remote: remote.map(|r| r.to_string()),
            error: error.to_string(),
            kind,
            detail,
        }
    }

    /// A `connection_stats` event.
    pub(crate) fn connection_stats(
        name: &str,
        peer: PeerId,
        address: &TransportAddress,
        stats: ConnectionStats,
    ) -> Self {
        Self::ConnectionStats {
            name: name.to_string(),
            peer_id: peer.to_string(),
            address: address.to_string(),
            messages_sent: stats.messages_sent,
            messages_received: stats.messages_received,
            bytes_sent: stats.bytes_sent,
            bytes_received: stats.bytes_received,
            age_ms: stats.age.as_millis(),
        }
    }

    /// A `listener_stats` event.
    pub(crate) fn listener_stats(address: &TransportAddress, stats: ListenerStats) -> Self {
        Self::ListenerStats {
            address: address.to_string(),
            accepted: stats.accepted,
            refused_by_limit: stats.refused_by_limit,
            failed_handshakes: stats.failed_handshakes,
        }
    }

    /// A `summary` event for `count` messages of `bytes` payload bytes in `elapsed`.
    pub(crate) fn summary(peer: PeerId, count: u64, bytes: u64, elapsed: Duration) -> Self {
        let seconds = elapsed.as_secs_f64().max(1e-9);
        Self::Summary {
            peer_id: peer.to_string(),
            messages: count,
            bytes,
            seconds,
            messages_per_second: count as f64 / seconds,
            megabytes_per_second: bytes as f64 / seconds / 1e6,
        }
    }
}

/// The first [`TEXT_CHARS`] characters of `message` if it is UTF-8 (only a bounded prefix is
/// inspected, so a large message costs nothing extra).
fn preview(message: &[u8]) -> Option<String> {
    let head = &message[..message.len().min(TEXT_BYTES)];
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        // Cut in the middle of a character at the end of the prefix: keep what is whole.
        Err(e) if e.error_len().is_none() && head.len() < message.len() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).ok()?
        }
        Err(_) => return None,
    };
    Some(text.chars().take(TEXT_CHARS).collect())
}

/// The variant name of a core error (`kind`), and the inner variant where there is one.
pub(crate) fn error_kind(error: &Error) -> (&'static str, Option<String>) {
    use bitcraps_transport_core::ProtocolError as P;
    let inner = |d: &dyn std::fmt::Debug| {
        let text = format!("{d:?}");
        let end = text.find(['(', ' ', '{']).unwrap_or(text.len());
        text[..end].to_string()
    };
    match error {
        Error::Unsupported(_) => ("Unsupported", None),
        Error::Io { .. } => ("Io", None),
        Error::Timeout { .. } => ("Timeout", None),
        Error::PeerMismatch { .. } => ("PeerMismatch", None),
        Error::Handshake(h) => ("Handshake", Some(inner(h))),
        Error::Protocol(p) => {
            let kind = match p {
                P::FrameTooLarge { .. } => "FrameTooLarge",
                P::Decrypt => "Decrypt",
                P::EmptyRecord => "EmptyRecord",
                P::UnknownRecord(_) => "UnknownRecord",
                P::UnexpectedRecord(_) => "UnexpectedRecord",
                P::MessageTooLarge { .. } => "IncomingMessageTooLarge",
                P::Malformed(_) => "Malformed",
                _ => "Protocol",
            };
            (kind, Some(inner(p)))
        }
        Error::MessageTooLarge { .. } => ("MessageTooLarge", None),
        Error::Limit(r) => ("Limit", Some(inner(&r.limit))),
        Error::RemoteLimit(r) => ("RemoteLimit", Some(inner(&r.limit))),
        Error::Closed(_) => ("Closed", None),
        Error::LinkLost(_) => ("LinkLost", None),
        Error::ListenerClosed => ("ListenerClosed", None),
        Error::Address(_) => ("Address", None),
        Error::Key(_) => ("Key", None),
        Error::Backend { .. } => ("Backend", None),
        _ => ("Other", None),
    }
}

/// Where events go: JSON lines or readable lines, on stdout.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    json: bool,
    /// False only in unit tests, which have no use for the lines.
    enabled: bool,
}

impl Output {
    /// A printer; `json` selects one JSON object per line.
    pub(crate) fn new(json: bool) -> Self {
        Self {
            json,
            enabled: true,
        }
    }

    /// A printer that prints nothing (unit tests).
    #[cfg(test)]
    pub(crate) fn discard() -> Self {
        Self {
            json: true,
            enabled: false,
        }
    }

    /// True in `--json` mode.
    pub(crate) fn is_json(&self) -> bool {
        self.json
    }

    /// Prints one event as one line. A closed stdout is ignored (the node keeps serving).
    pub(crate) fn emit(&self, event: &Event) {
        if !self.enabled {
            return;
        }
        let line = if self.json {
            match serde_json::to_string(event) {
                Ok(line) => line,
                Err(e) => {
                    tracing::error!(error = %e, "event serialization failed");
                    return;
                }
            }
        } else {
            human(event)
        };
        print_line(&line);
    }

    /// Prints a free-form line in human mode only (headings, tables).
    pub(crate) fn note(&self, text: &str) {
        if self.enabled && !self.json {
            print_line(text);
        }
    }
}

/// Writes one line to stdout; a closed stdout is ignored.
fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// The first 8 hex digits of a peer id's text.
fn short(peer_id: &str) -> &str {
    &peer_id[..peer_id.len().min(8)]
}

fn human(event: &Event) -> String {
    match event {
        Event::Listening { address, peer_id } => format!("listening on {address} as {peer_id}"),
        Event::Connected { peer_id, address } => {
            format!("[{}] connected ({address}) {peer_id}", short(peer_id))
        }
        Event::Message {
            peer_id,
            bytes,
            text,
        } => match text {
            Some(t) => format!("[{}] {bytes} bytes: {t:?}", short(peer_id)),
            None => format!("[{}] {bytes} bytes (binary)", short(peer_id)),
        },
        Event::Disconnected { peer_id, reason } => {
            format!("[{}] disconnected: {reason}", short(peer_id))
        }
        Event::Error {
            peer_id,
            remote,
            error,
            kind,
            ..
        } => {
            let who = match (peer_id, remote) {
                (Some(p), Some(r)) => format!("[{}] {r}: ", short(p)),
                (Some(p), None) => format!("[{}] ", short(p)),
                (None, Some(r)) => format!("{r}: "),
                (None, None) => String::new(),
            };
            format!("error: {who}{error} ({kind})")
        }
        Event::Summary {
            messages,
            bytes,
            seconds,
            messages_per_second,
            megabytes_per_second,
            ..
        } => format!(
            "sent {messages} messages ({bytes} bytes) in {seconds:.3} s: \
             {messages_per_second:.0} messages/s, {megabytes_per_second:.2} MB/s"
        ),
        Event::Said {
            peer_id,
            name,
            text,
        } => format!("{} {name:>7}: {text}", short(peer_id)),
        Event::ConnectionStats {
            name,
            peer_id,
            address,
            messages_sent,
            messages_received,
            bytes_sent,
            bytes_received,
            age_ms,
        } => format!(
            "  {name:<14} {} {address:<24} sent {messages_sent:>3} msgs / {bytes_sent:>5} B, \
             received {messages_received:>3} msgs / {bytes_received:>5} B, age {age_ms} ms",
            short(peer_id)
        ),
        Event::ListenerStats {
            address,
            accepted,
            refused_by_limit,
            failed_handshakes,
        } => format!(
            "  listener {address}: accepted {accepted}, refused by limit {refused_by_limit}, \
             failed handshakes {failed_handshakes}"
        ),
        Event::ShuttingDown { reason } => format!("shutting down ({reason})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcraps_transport_core::{HandshakeError, Keypair, ProtocolError};

    #[test]
    fn preview_takes_64_chars_of_utf8_and_refuses_binary() {
        assert_eq!(preview(b"0 ....").as_deref(), Some("0 ...."));
        let long = "é".repeat(200);
        assert_eq!(preview(long.as_bytes()).unwrap().chars().count(), 64);
        assert_eq!(preview(&[0xff, 0xfe, 0x00]), None);
        assert_eq!(preview(b"").as_deref(), Some(""));
    }

    #[test]
    fn error_kinds_name_the_variant() {
        let (len, max) = (1 << 32, 33);
        let e = Error::from(ProtocolError::FrameTooLarge { len, max });
        assert_eq!(error_kind(&e).0, "FrameTooLarge");
        let e = Error::from(HandshakeError::UnsupportedSuite(0xab));
        assert_eq!(
            error_kind(&e),
            ("Handshake", Some("UnsupportedSuite".to_string()))
        );
    }

    #[test]
    fn json_events_are_tagged_in_snake_case() {
        let peer = Keypair::generate().peer_id();
        let line = serde_json::to_string(&Event::message(peer, b"hello")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["event"], "message");
        assert_eq!(v["bytes"], 5);
        assert_eq!(v["text"], "hello");
        assert_eq!(v["peer_id"], peer.to_string());
        let e = Event::error(None, None, &Error::ListenerClosed);
        let v: serde_json::Value = serde_json::to_value(&e).unwrap();
        assert_eq!(v["event"], "error");
        assert!(v["peer_id"].is_null());
        assert_eq!(v["kind"], "ListenerClosed");
    }
}
