//! The conformance cases, each written once against the core `Transport` trait, and what each
//! needs from a backend ([`Requirement`]) so it is reported as ignored, with the reason, where
//! it does not apply.

mod backpressure;
mod close;
mod hostile;
mod identity;
mod limits;
mod order;

use std::sync::Arc;

use bitcraps_transport_core::Capabilities;
use futures::future::BoxFuture;

use crate::Harness;

/// What a case needs from a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// Every backend.
    Any,
    /// A reliable backend (`capabilities().reliable`).
    Reliable,
    /// A reliable and ordered backend.
    ReliableOrdered,
    /// A datagram backend (not reliable).
    Datagram,
    /// Byte-level raw access to a listener ([`Harness::has_raw_access`]).
    Raw,
    /// Several connections between one pair of endpoints at once (not BLE on a real stack:
    /// one LE link per pair of devices, [`Harness::one_link_per_pair`]).
    SeveralPerPair,
    /// [`Requirement::Raw`] and [`Requirement::SeveralPerPair`].
    RawSeveralPerPair,
    /// A listener that tells a dialer refused before the handshake which limit refused it
    /// ([`Harness::refuses_explicitly`]: the TCP refusal frame, an HTTP 429).
    ExplicitRefusal,
}

/// What a backend offers, as the suite sees it when it lists the trials.
#[derive(Debug, Clone, Copy)]
pub struct Profile {
    /// The transport's capabilities (with the suite's default channel settings).
    pub capabilities: Capabilities,
    /// Whether the harness gives raw byte access.
    pub raw: bool,
    /// Whether one pair of endpoints holds at most one connection at a time.
    pub one_link_per_pair: bool,
    /// Whether the backend answers a refusal before the handshake with the limit.
    pub refuses_explicitly: bool,
}

impl Requirement {
    /// `None` if a backend with `profile` must run the case, else why it does not apply.
    pub fn skip_reason(self, profile: &Profile) -> Option<&'static str> {
        let caps = &profile.capabilities;
        match self {
            Self::Any => None,
            Self::Reliable if !caps.reliable => Some("n/a: needs a reliable backend"),
            Self::ReliableOrdered if !(caps.reliable && caps.ordered) => {
                Some("n/a: needs a reliable, ordered backend")
            }
            Self::Datagram if caps.reliable => Some("n/a: datagram backends only"),
            Self::Raw | Self::RawSeveralPerPair if !profile.raw => Some("n/a: no raw byte access"),
            Self::SeveralPerPair | Self::RawSeveralPerPair if profile.one_link_per_pair => {
                Some("n/a: one link per pair of devices")
            }
            Self::ExplicitRefusal if !profile.refuses_explicitly => {
                Some("n/a: refusals before the handshake get no answer (no amplification)")
            }
            _ => None,
        }
    }
}

/// What running a case yields: `Err` explains the failure.
pub type Outcome = Result<(), String>;

/// One conformance case.
#[derive(Clone, Copy)]
pub struct Case {
    /// The case's name (the part after `<backend>::`).
    pub name: &'static str,
    /// What it needs from a backend.
    pub requires: Requirement,
    /// Runs it against a fresh harness (inside a tokio runtime).
    pub run: fn(Arc<dyn Harness>) -> BoxFuture<'static, Outcome>,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Case")
            .field("name", &self.name)
            .field("requires", &self.requires)
            .finish_non_exhaustive()
    }
}

/// Declares a case from an `async fn(Arc<dyn Harness>) -> CaseResult`.
macro_rules! case {
    ($module:ident :: $name:ident, $requires:ident) => {
        Case {
            name: stringify!($name),
            requires: Requirement::$requires,
            run: |h| Box::pin($module::$name(h)),
        }
    };
}

/// Every case, in report order.
pub const CASES: &[Case] = &[
    // Identity & sizes.
    case!(identity::identity_right_peer, Any),
    case!(identity::identity_wrong_peer, Any),
    case!(identity::size_zero, Any),
    case!(identity::size_one, Any),
    case!(identity::size_max, Any),
    case!(identity::size_max_plus_one, Any),
    // Order & concurrency.
    case!(order::ten_thousand_in_order, ReliableOrdered),
    case!(order::concurrent_senders, Reliable),
    case!(order::datagram_no_duplicates_authentic, Datagram),
    // Close & shutdown.
    case!(close::close_seen_by_remote, Any),
    case!(close::drop_seen_by_remote, Any),
    case!(close::listener_close_frees_address, Any),
    case!(close::dial_unserved_address, Any),
    // Limits.
    case!(limits::limit_per_peer_inbound, SeveralPerPair),
    case!(limits::limit_total_inbound, Any),
    case!(limits::limit_per_peer_outbound, SeveralPerPair),
    case!(limits::limit_rate_per_source, RawSeveralPerPair),
    case!(limits::cooldown_after_garbage, Raw),
    case!(limits::refused_dialer_learns_the_limit, ExplicitRefusal),
    case!(limits::outbound_backoff_after_failed_dial, Any),
    // Hostile input.
    case!(hostile::garbage_is_refused, Raw),
    case!(hostile::oversized_length_prefix, Raw),
    case!(hostile::stalled_handshake_times_out, Raw),
    case!(hostile::many_hostile_sources_then_legit, Raw),
    // Backpressure.
    case!(backpressure::slow_receiver_holds_sender_back, Reliable),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(capabilities: Capabilities, raw: bool) -> Profile {
        Profile {
            capabilities,
            raw,
            one_link_per_pair: false,
            refuses_explicitly: raw,
        }
    }

    #[test]
    fn gating_follows_capabilities() {
        let stream = profile(Capabilities::reliable(1024), true);
        let datagram = profile(Capabilities::datagram(1024), false);
        for req in [
            Requirement::Any,
            Requirement::Reliable,
            Requirement::ReliableOrdered,
            Requirement::Raw,
        ] {
            assert_eq!(
                req.skip_reason(&stream),
                None,
                "{req:?} on a stream backend"
            );
        }
        assert!(Requirement::Datagram.skip_reason(&stream).is_some());
        assert_eq!(Requirement::Datagram.skip_reason(&datagram), None);
        assert_eq!(Requirement::Any.skip_reason(&datagram), None);
        for req in [
            Requirement::Reliable,
            Requirement::ReliableOrdered,
            Requirement::Raw,
        ] {
            assert!(req.skip_reason(&datagram).is_some(), "{req:?} on UDP");
        }
    }

    #[test]
    fn case_names_are_unique_and_test_name_safe() {
        let mut names: Vec<_> = CASES.iter().map(|c| c.name).collect();
        assert!(names.iter().all(|n| !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')));
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "duplicate case names");
    }
}
