//! The event printer: every event the node reports goes through [`Output::emit`], which writes
//! one JSON object per line (`--json`, stamped with `ts_ms`, milliseconds since the Unix epoch,
//! so events of several processes can be put on one time line) or one readable line to stdout.
//! Every JSON event carries `"v"`, the schema version ([`SCHEMA_VERSION`]). docs/cli.md
//! documents each event and its fields, and `tests/cli_doc.rs` checks real output against it.
//! Logs go to stderr, so stdout stays machine-readable.

mod event;
mod human;

use std::io::Write;
use std::time::SystemTime;

use serde::Serialize;

pub(crate) use event::{coordinator_error_kind, error_kind, Event};
pub(crate) use human::human;

/// The version of the JSON event schema (docs/cli.md), printed as `"v"` in every event. It
/// changes when a field is removed or changes meaning; new events and new fields keep it.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// An event with the schema version and the time it was printed, as one JSON object.
#[derive(Serialize)]
struct Stamped<'a> {
    v: u32,
    #[serde(flatten)]
    event: &'a Event,
    ts_ms: u128,
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
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
            let stamped = Stamped {
                v: SCHEMA_VERSION,
                event,
                ts_ms: now_ms(),
            };
            match serde_json::to_string(&stamped) {
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

#[cfg(test)]
mod tests {
    use super::event::preview;
    use super::*;
    use bitcraps_coordinator::CoordinatorError;
    use bitcraps_transport_core::{Error, TransportAddress};
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

    #[test]
    fn printed_json_is_stamped_and_keeps_its_tag() {
        let peer = Keypair::generate().peer_id();
        let to: TransportAddress = "tcp://127.0.0.1:9".parse().unwrap();
        let event = Event::route_changed(peer, None, &to);
        let line = serde_json::to_string(&Stamped {
            v: SCHEMA_VERSION,
            event: &event,
            ts_ms: 42,
        })
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["event"], "route_changed");
        assert_eq!(v["to"], "tcp://127.0.0.1:9");
        assert!(v["from"].is_null());
        assert_eq!(v["ts_ms"], 42);
        assert_eq!(v["v"], 1);
        assert!(
            line.starts_with("{\"v\":1,\"event\":\"route_changed\""),
            "{line}"
        );
        assert!(now_ms() > 1_600_000_000_000);
    }

    #[test]
    fn coordinator_errors_keep_the_core_kind_inside() {
        let e = CoordinatorError::Transport(Error::ListenerClosed);
        let v = serde_json::to_value(Event::coordinator_error(None, None, &e)).unwrap();
        assert_eq!(v["kind"], "ListenerClosed");
        let e = CoordinatorError::NoRoutes;
        let v = serde_json::to_value(Event::coordinator_error(None, None, &e)).unwrap();
        assert_eq!(v["kind"], "NoRoutes");
    }
}
