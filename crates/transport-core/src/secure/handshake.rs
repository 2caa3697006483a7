//! Sans-IO Noise XX handshake state machines with identity binding.
//!
//! ```text
//! initiator                                   responder
//!   msg1: suite id (1) || e (32)          ->
//!                                         <-  msg2: e, ee, s, es + identity payload (193 bytes)
//!   msg3: s, se + identity payload (161)  ->
//!                                         <-  first record: ACCEPT or REJECT (see record.rs)
//! ```
//!
//! The initiator learns and checks the responder's identity from msg2, before it reveals its own
//! in msg3, so a dial to the wrong peer stops without telling that peer who we are. No I/O
//! happens here: the stream, WebSocket, BLE and UDP backends all drive these same machines.

use snow::{Builder, HandshakeState};

use std::sync::Arc;

use super::bindings::BindingCache;
use super::dh::HandshakeDh;
use super::payload::IDENTITY_PAYLOAD_LEN;
use super::record::{RecordOpener, RecordSealer};
use super::{CipherSuite, LocalIdentity, PROLOGUE};
use crate::{Error, HandshakeError, PeerId};

pub(super) const DH_LEN: usize = 32;
pub(super) const TAG_LEN: usize = 16;
/// Length of handshake message 1: suite id and the initiator's ephemeral key.
pub const MSG1_LEN: usize = 1 + DH_LEN;
/// Length of handshake message 2.
pub const MSG2_LEN: usize = DH_LEN + (DH_LEN + TAG_LEN) + (IDENTITY_PAYLOAD_LEN + TAG_LEN);
/// Length of handshake message 3.
pub const MSG3_LEN: usize = (DH_LEN + TAG_LEN) + (IDENTITY_PAYLOAD_LEN + TAG_LEN);

pub(super) fn noise(e: snow::Error) -> HandshakeError {
    HandshakeError::Noise(e.to_string())
}

pub(super) fn builder<'a>(
    params: snow::params::NoiseParams,
    identity: &'a LocalIdentity,
    dh: &HandshakeDh,
    ephemeral: Option<&'a [u8; 32]>,
) -> Result<Builder<'a>, HandshakeError> {
    let mut b = Builder::with_resolver(params, dh.resolver())
        .local_private_key(identity.noise_private())
        .map_err(noise)?
        .prologue(PROLOGUE)
        .map_err(noise)?;
    if let Some(e) = ephemeral {
        b = b.fixed_ephemeral_key_for_testing_only(e);
    }
    Ok(b)
}

/// Reads the remote's identity payload out of a handshake message and checks its signature
/// over the Noise static key the remote used; then lets `dh` cache what it computed with that
/// proven key.
pub(super) fn read_identity(
    state: &mut HandshakeState,
    bindings: &BindingCache,
    dh: &HandshakeDh,
    message: &[u8],
    which: u8,
    expected_len: usize,
) -> Result<PeerId, HandshakeError> {
    if message.len() != expected_len {
        return Err(HandshakeError::BadLength {
            message: which,
            len: message.len(),
            expected: expected_len,
        });
    }
    let mut payload = [0u8; IDENTITY_PAYLOAD_LEN + TAG_LEN];
    let n = state.read_message(message, &mut payload).map_err(noise)?;
    let remote_static: [u8; 32] = state
        .get_remote_static()
        .and_then(|s| s.try_into().ok())
        .ok_or(HandshakeError::BadPayload("no remote static key"))?;
    let peer = bindings.decode(&payload[..n], &remote_static)?;
    dh.commit(&remote_static);
    Ok(peer)
}

pub(super) fn into_records(
    mut state: HandshakeState,
    suite: CipherSuite,
) -> Result<(RecordSealer, RecordOpener), HandshakeError> {
    if !state.is_handshake_finished() {
        return Err(HandshakeError::Noise("handshake not finished".into()));
    }
    let initiator = state.is_initiator();
    Ok(RecordSealer::pair(
        suite,
        initiator,
        state.dangerously_get_raw_split(),
    ))
}

/// The dialing side of a handshake.
pub struct InitiatorHandshake {
    state: HandshakeState,
    suite: CipherSuite,
    expect: Option<PeerId>,
    remote: Option<PeerId>,
    payload: [u8; IDENTITY_PAYLOAD_LEN],
    bindings: Arc<BindingCache>,
    dh: HandshakeDh,
}

impl InitiatorHandshake {
    /// Starts a handshake with `suite`; returns the machine and message 1 to send.
    pub fn start(
        identity: &LocalIdentity,
        suite: CipherSuite,
        expect: Option<PeerId>,
    ) -> Result<(Self, Vec<u8>), HandshakeError> {
        Self::start_inner(identity, suite, expect, None)
    }

    /// Like [`InitiatorHandshake::start`] with a fixed ephemeral key. Only for test vectors:
    /// reusing an ephemeral key destroys forward secrecy.
    #[doc(hidden)]
    pub fn start_with_fixed_ephemeral(
        identity: &LocalIdentity,
        suite: CipherSuite,
        expect: Option<PeerId>,
        ephemeral: &[u8; 32],
    ) -> Result<(Self, Vec<u8>), HandshakeError> {
        Self::start_inner(identity, suite, expect, Some(ephemeral))
    }

    fn start_inner(
        identity: &LocalIdentity,
        suite: CipherSuite,
        expect: Option<PeerId>,
        ephemeral: Option<&[u8; 32]>,
    ) -> Result<(Self, Vec<u8>), HandshakeError> {
        let dh = HandshakeDh::new(identity.statics().clone());
        let mut state = builder(suite.params(), identity, &dh, ephemeral)?
            .build_initiator()
            .map_err(noise)?;
        // snow wants room for a tag even where message 1 has none.
        let mut msg = vec![0u8; MSG1_LEN + TAG_LEN];
        msg[0] = suite.id();
        let n = state.write_message(&[], &mut msg[1..]).map_err(noise)?;
        debug_assert_eq!(n, DH_LEN);
        msg.truncate(1 + n);
        let hs = Self {
            state,
            suite,
            expect,
            remote: None,
            payload: *identity.payload(),
            bindings: identity.bindings().clone(),
            dh,
        };
        Ok((hs, msg))
    }

    /// Reads message 2: the responder's proven identity. Fails with
    /// [`Error::PeerMismatch`] if the dial expected someone else.
    pub fn read_message2(&mut self, msg2: &[u8]) -> Result<PeerId, Error> {
        let peer = read_identity(&mut self.state, &self.bindings, &self.dh, msg2, 2, MSG2_LEN)?;
        if let Some(expected) = self.expect {
            if expected != peer {
                return Err(Error::PeerMismatch {
                    expected,
                    actual: peer,
                });
            }
        }
        self.remote = Some(peer);
        Ok(peer)
    }

    /// Writes message 3 (our identity) and finishes: the message to send, the responder's
    /// identity and the record layer.
    pub fn write_message3(
        mut self,
    ) -> Result<(Vec<u8>, PeerId, RecordSealer, RecordOpener), HandshakeError> {
        let remote = self
            .remote
            .ok_or(HandshakeError::BadPayload("message 2 not read"))?;
        let mut msg = vec![0u8; MSG3_LEN];
        let n = self
            .state
            .write_message(&self.payload, &mut msg)
            .map_err(noise)?;
        msg.truncate(n);
        let (sealer, opener) = into_records(self.state, self.suite)?;
        Ok((msg, remote, sealer, opener))
    }
}

/// The listening side of a handshake.
pub struct ResponderHandshake {
    state: HandshakeState,
    suite: CipherSuite,
    bindings: Arc<BindingCache>,
    dh: HandshakeDh,
}

impl ResponderHandshake {
    /// Reads message 1 and answers it: returns the machine and message 2 to send. Refuses a
    /// suite not in `accepted` and any message 1 of the wrong length, before any DH work.
    pub fn respond(
        identity: &LocalIdentity,
        accepted: &[CipherSuite],
        msg1: &[u8],
    ) -> Result<(Self, Vec<u8>), HandshakeError> {
        Self::respond_inner(identity, accepted, msg1, None)
    }

    /// Like [`ResponderHandshake::respond`] with a fixed ephemeral key. Only for test vectors.
    #[doc(hidden)]
    pub fn respond_with_fixed_ephemeral(
        identity: &LocalIdentity,
        accepted: &[CipherSuite],
        msg1: &[u8],
        ephemeral: &[u8; 32],
    ) -> Result<(Self, Vec<u8>), HandshakeError> {
        Self::respond_inner(identity, accepted, msg1, Some(ephemeral))
    }

    fn respond_inner(
        identity: &LocalIdentity,
        accepted: &[CipherSuite],
        msg1: &[u8],
        ephemeral: Option<&[u8; 32]>,
    ) -> Result<(Self, Vec<u8>), HandshakeError> {
        if msg1.len() != MSG1_LEN {
            return Err(HandshakeError::BadLength {
                message: 1,
                len: msg1.len(),
                expected: MSG1_LEN,
            });
        }
        let suite = CipherSuite::from_id(msg1[0])
            .filter(|s| accepted.contains(s))
            .ok_or(HandshakeError::UnsupportedSuite(msg1[0]))?;
        let dh = HandshakeDh::new(identity.statics().clone());
        let mut state = builder(suite.params(), identity, &dh, ephemeral)?
            .build_responder()
            .map_err(noise)?;
        let mut empty = [0u8; 0];
        state.read_message(&msg1[1..], &mut empty).map_err(noise)?;
        let mut msg = vec![0u8; MSG2_LEN];
        let n = state
            .write_message(identity.payload(), &mut msg)
            .map_err(noise)?;
        msg.truncate(n);
        let bindings = identity.bindings().clone();
        Ok((
            Self {
                state,
                suite,
                bindings,
                dh,
            },
            msg,
        ))
    }

    /// The suite the initiator chose.
    pub fn suite(&self) -> CipherSuite {
        self.suite
    }

    /// Reads message 3: the initiator's proven identity and the record layer. The caller then
    /// decides (limits) and sends ACCEPT or REJECT as its first record.
    pub fn read_message3(
        mut self,
        msg3: &[u8],
    ) -> Result<(PeerId, RecordSealer, RecordOpener), HandshakeError> {
        let peer = read_identity(&mut self.state, &self.bindings, &self.dh, msg3, 3, MSG3_LEN)?;
        let (sealer, opener) = into_records(self.state, self.suite)?;
        Ok((peer, sealer, opener))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Keypair;

    fn pair() -> (std::sync::Arc<LocalIdentity>, std::sync::Arc<LocalIdentity>) {
        (
            LocalIdentity::new(Keypair::generate()),
            LocalIdentity::new(Keypair::generate()),
        )
    }

    #[test]
    fn both_sides_prove_their_identity_with_every_suite() {
        for suite in CipherSuite::ALL {
            let (a, b) = pair();
            let (mut i, m1) = InitiatorHandshake::start(&a, suite, Some(b.peer_id())).unwrap();
            assert_eq!(m1.len(), MSG1_LEN);
            let (r, m2) = ResponderHandshake::respond(&b, &CipherSuite::ALL, &m1).unwrap();
            assert_eq!(m2.len(), MSG2_LEN);
            assert_eq!(r.suite(), suite);
            assert_eq!(i.read_message2(&m2).unwrap(), b.peer_id());
            let (m3, remote, _, _) = i.write_message3().unwrap();
            assert_eq!(m3.len(), MSG3_LEN);
            assert_eq!(remote, b.peer_id());
            let (peer, _, _) = r.read_message3(&m3).unwrap();
            assert_eq!(peer, a.peer_id());
        }
    }

    #[test]
    fn a_dial_expecting_another_peer_fails_before_revealing_itself() {
        let (a, b) = pair();
        let other = Keypair::generate().peer_id();
        let (mut i, m1) =
            InitiatorHandshake::start(&a, CipherSuite::default(), Some(other)).unwrap();
        let (_, m2) = ResponderHandshake::respond(&b, &CipherSuite::ALL, &m1).unwrap();
        match i.read_message2(&m2) {
            Err(Error::PeerMismatch { expected, actual }) => {
                assert_eq!(expected, other);
                assert_eq!(actual, b.peer_id());
            }
            other => panic!("expected a mismatch, got {other:?}"),
        }
    }

    #[test]
    fn refused_suites_and_bad_lengths_cost_no_dh() {
        let (a, b) = pair();
        let (_, m1) = InitiatorHandshake::start(&a, CipherSuite::ChaChaPolyBlake2s, None).unwrap();
        assert!(matches!(
            ResponderHandshake::respond(&b, &[CipherSuite::AesGcmSha256], &m1),
            Err(HandshakeError::UnsupportedSuite(1))
        ));
        assert!(matches!(
            ResponderHandshake::respond(&b, &CipherSuite::ALL, &m1[..10]),
            Err(HandshakeError::BadLength { message: 1, .. })
        ));
        let mut bad = m1.clone();
        bad[0] = 0x77;
        assert!(matches!(
            ResponderHandshake::respond(&b, &CipherSuite::ALL, &bad),
            Err(HandshakeError::UnsupportedSuite(0x77))
        ));
    }

    #[test]
    fn tampered_handshake_messages_are_refused() {
        let (a, b) = pair();
        let (_, m1) = InitiatorHandshake::start(&a, CipherSuite::default(), None).unwrap();
        let (_, m2) = ResponderHandshake::respond(&b, &CipherSuite::ALL, &m1).unwrap();
        for i in [0, 40, 100, MSG2_LEN - 1] {
            let (mut init, m1) =
                InitiatorHandshake::start(&a, CipherSuite::default(), None).unwrap();
            let (_, mut m2) = ResponderHandshake::respond(&b, &CipherSuite::ALL, &m1).unwrap();
            m2[i] ^= 1;
            assert!(init.read_message2(&m2).is_err(), "flip at {i}");
        }
        let (mut init, _) = InitiatorHandshake::start(&a, CipherSuite::default(), None).unwrap();
        assert!(init.read_message2(&m2[..MSG2_LEN - 1]).is_err());
        // msg3 tampering
        let (mut init, m1) = InitiatorHandshake::start(&a, CipherSuite::default(), None).unwrap();
        let (resp, m2) = ResponderHandshake::respond(&b, &CipherSuite::ALL, &m1).unwrap();
        init.read_message2(&m2).unwrap();
        let (mut m3, ..) = init.write_message3().unwrap();
        m3[70] ^= 1;
        assert!(resp.read_message3(&m3).is_err());
    }
}
