//! The dials in flight and the TLS 1.3 sessions they may resume, per [`PeerId`].
//!
//! rustls resumes a session only with the very verifier and client-certificate resolver that
//! made it, so a transport has one of each for all its dials; what differs per dial (the
//! `PeerId` it expects, the one a full handshake proved) lives in a [`DialSlot`], which the
//! verifier and the session store find through the dial's server name `d<id>.bitcraps`. The
//! name never leaves the process: the dialer sends no SNI.
//!
//! A resumed handshake (PSK with a fresh X25519 exchange, `psk_dhe_ke`; never 0-RTT) skips
//! both certificates and both handshake signatures: the PSK is a secret only this node and the
//! listener whose full handshake proved its `PeerId` share, so it proves that identity again
//! (rustls restores the certificates of the full handshake, on both sides). This is what raw
//! quinn does by default. A dial takes only tickets of the peer it expects, and files the
//! tickets it receives under the peer it expected or, if it expected nobody, the one its full
//! handshake proved; a dial that expects nobody never resumes. Sessions are kept in rustls's
//! bounded memory cache ([`MAX_PEERS`] peers, at most 8 tickets each, each usable once).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bitcraps_transport_core::PeerId;
use rustls::client::{ClientSessionMemoryCache, ClientSessionStore};
use rustls::client::{Tls12ClientSessionValue, Tls13ClientSessionValue};
use rustls::pki_types::{DnsName, ServerName};
use rustls::NamedGroup;

/// Peers whose sessions a transport keeps (the oldest is forgotten first).
pub(crate) const MAX_PEERS: usize = 64;

/// What one dial expects and what its full handshake proved.
#[derive(Debug)]
pub(crate) struct DialSlot {
    /// The `PeerId` the dial expects, if any.
    pub(crate) expect: Option<PeerId>,
    seen: Mutex<Option<PeerId>>,
}

impl DialSlot {
    /// Records the peer a full handshake proved.
    pub(crate) fn record(&self, peer: PeerId) {
        *lock(&self.seen) = Some(peer);
    }

    /// The peer a full handshake proved, if one did.
    pub(crate) fn seen(&self) -> Option<PeerId> {
        *lock(&self.seen)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The dials in flight (one slot each, removed when the dial ends) and the sessions.
#[derive(Debug)]
pub(crate) struct Dials {
    next: AtomicU64,
    slots: Mutex<HashMap<u64, Arc<DialSlot>>>,
    sessions: ClientSessionMemoryCache,
}

impl Default for Dials {
    fn default() -> Self {
        Self {
            next: AtomicU64::new(0),
            slots: Mutex::default(),
            sessions: ClientSessionMemoryCache::new(MAX_PEERS),
        }
    }
}

/// A dial's registration: its server name and slot, unregistered on drop.
#[derive(Debug)]
pub(crate) struct Dial {
    dials: Arc<Dials>,
    id: u64,
    slot: Arc<DialSlot>,
}

impl Dial {
    /// The server name to dial with (never sent).
    pub(crate) fn server_name(&self) -> String {
        format!("d{}.bitcraps", self.id)
    }

    /// This dial's slot.
    pub(crate) fn slot(&self) -> &DialSlot {
        &self.slot
    }
}

impl Drop for Dial {
    fn drop(&mut self) {
        lock(&self.dials.slots).remove(&self.id);
    }
}

impl Dials {
    /// Registers a dial that expects `expect`.
    pub(crate) fn register(self: &Arc<Self>, expect: Option<PeerId>) -> Dial {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(DialSlot {
            expect,
            seen: Mutex::new(None),
        });
        lock(&self.slots).insert(id, slot.clone());
        Dial {
            dials: self.clone(),
            id,
            slot,
        }
    }

    /// The slot of the dial that uses `name`, if that dial is still in flight.
    pub(crate) fn slot(&self, name: &ServerName<'_>) -> Option<Arc<DialSlot>> {
        let ServerName::DnsName(name) = name else {
            return None;
        };
        let id = name.as_ref().strip_prefix('d')?.strip_suffix(".bitcraps")?;
        lock(&self.slots).get(&id.parse().ok()?).cloned()
    }

    /// The key tickets of the dial using `name` are filed under: the peer it expected, else
    /// the one its full handshake proved.
    fn filing(&self, name: &ServerName<'_>) -> Option<ServerName<'static>> {
        let slot = self.slot(name)?;
        slot.expect.or_else(|| slot.seen()).map(key)
    }

    /// The key tickets of the dial using `name` are taken from: only the peer it expects.
    fn taking(&self, name: &ServerName<'_>) -> Option<ServerName<'static>> {
        self.slot(name)?.expect.map(key)
    }
}

/// The cache key of `peer`: its hex, as two DNS labels (a label is at most 63 bytes).
fn key(peer: PeerId) -> ServerName<'static> {
    let hex = peer.to_string();
    let (a, b) = hex.split_at(hex.len() / 2);
    let name = DnsName::try_from(format!("{a}.{b}.peer"))
        .or_else(|_| DnsName::try_from(String::from("unnamed.peer")))
        .expect("a valid DNS name");
    ServerName::DnsName(name)
}

impl ClientSessionStore for Dials {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: NamedGroup) {
        if let Some(k) = self.filing(&server_name) {
            self.sessions.set_kx_hint(k, group);
        }
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        self.taking(server_name)
            .and_then(|k| self.sessions.kx_hint(&k))
    }

    fn set_tls12_session(&self, _name: ServerName<'static>, _value: Tls12ClientSessionValue) {
        // TLS 1.3 only.
    }

    fn tls12_session(&self, _name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        None
    }

    fn remove_tls12_session(&self, _name: &ServerName<'static>) {}

    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: Tls13ClientSessionValue,
    ) {
        if let Some(k) = self.filing(&server_name) {
            self.sessions.insert_tls13_ticket(k, value);
        }
    }

    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<Tls13ClientSessionValue> {
        self.taking(server_name)
            .and_then(|k| self.sessions.take_tls13_ticket(&k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcraps_transport_core::Keypair;

    fn name(dial: &Dial) -> ServerName<'static> {
        ServerName::try_from(dial.server_name()).unwrap()
    }

    #[test]
    fn every_peer_has_its_own_valid_key() {
        let (a, b) = (Keypair::generate().peer_id(), Keypair::generate().peer_id());
        assert_ne!(key(a), key(b));
        assert_eq!(key(a), key(a));
        assert!(!matches!(key(a), ServerName::DnsName(n) if n.as_ref() == "unnamed.peer"));
    }

    #[test]
    fn a_dial_expecting_nobody_takes_nothing_and_files_under_the_proven_peer() {
        let dials = Arc::new(Dials::default());
        let anonymous = dials.register(None);
        assert_eq!(dials.taking(&name(&anonymous)), None);
        assert_eq!(dials.filing(&name(&anonymous)), None);
        let peer = Keypair::generate().peer_id();
        anonymous.slot().record(peer);
        assert_eq!(dials.filing(&name(&anonymous)), Some(key(peer)));
        let other = Keypair::generate().peer_id();
        let expecting = dials.register(Some(other));
        assert_eq!(dials.taking(&name(&expecting)), Some(key(other)));
        assert_eq!(dials.filing(&name(&expecting)), Some(key(other)));
    }

    #[test]
    fn a_finished_dial_is_forgotten_and_unknown_names_find_nothing() {
        let dials = Arc::new(Dials::default());
        let dial = dials.register(Some(Keypair::generate().peer_id()));
        let used = name(&dial);
        assert!(dials.slot(&used).is_some());
        drop(dial);
        assert!(dials.slot(&used).is_none());
        assert!(lock(&dials.slots).is_empty());
        for other in ["bitcraps", "dx.bitcraps", "d1.other", "d.bitcraps"] {
            assert!(
                dials.slot(&ServerName::try_from(other).unwrap()).is_none(),
                "{other}"
            );
        }
    }
}
