//! Sans-IO Noise IK: the 1-RTT handshake of a dialer that already holds a verified Noise static
//! key for the PeerId it expects (learned by an earlier handshake with that peer).
//!
//! ```text
//! initiator                                          responder
//!   msg1: id (0x10 | suite) || e, es, s, ss
//!         + identity payload (194 bytes)         ->
//!                                                <-  msg2: e, ee, se, empty payload (48 bytes)
//!                                                <-  first record: ACCEPT or REJECT
//!   first record: ACCEPT (the confirmation)      ->
//! ```
//!
//! Message 1 is encrypted to the responder's static key, which an identity signature bound to
//! the expected PeerId when it was cached, so only that peer can read who is dialing: a dial to
//! the wrong peer still reveals nothing. A responder that cannot decrypt message 1 (it restarted
//! with a new static key, or the bytes were damaged) gets [`HandshakeError::StaleKey`]; the
//! stream driver then asks the dialer to fall back to XX on the same connection. The dialer is
//! done after one round trip; the responder waits for the dialer's first record, so a replayed
//! message 1 (which anyone could send again) never yields a connection. No I/O happens here.

use snow::HandshakeState;

use super::dh::HandshakeDh;
use super::handshake::{builder, into_records, noise, read_identity, DH_LEN, TAG_LEN};
use super::payload::IDENTITY_PAYLOAD_LEN;
use super::record::{RecordOpener, RecordSealer};
use super::{CipherSuite, LocalIdentity};
use crate::{HandshakeError, PeerId};

/// The bit that marks message 1 of an IK handshake in its first byte (the suite id).
pub const IK_FLAG: u8 = 0x10;
/// Length of IK message 1: id, e, encrypted s and the encrypted identity payload.
pub const IK_MSG1_LEN: usize = 1 + DH_LEN + (DH_LEN + TAG_LEN) + (IDENTITY_PAYLOAD_LEN + TAG_LEN);
/// Length of IK message 2: e and an empty encrypted payload.
pub const IK_MSG2_LEN: usize = DH_LEN + TAG_LEN;

/// The fallback frame's payload: a listener that cannot read an IK message 1 sends it instead of
/// message 2, and the dialer continues with XX message 1 on the same stream.
pub const FALLBACK: [u8; 1] = [0xFE];

/// True if `reply` (a frame payload read where IK message 2 is expected) is the fallback;
/// a 1-byte reply that is not is a protocol error.
pub fn is_fallback(reply: &[u8]) -> Result<bool, HandshakeError> {
    match reply {
        [0xFE] => Ok(true),
        [_] => Err(HandshakeError::BadPayload("unknown 1-byte handshake reply")),
        _ => Ok(false),
    }
}

/// True if `first_byte` (of a message 1) names an IK handshake.
pub fn is_ik(first_byte: u8) -> bool {
    first_byte & 0xF0 == IK_FLAG
}

/// The dialing side of an IK handshake.
pub struct IkInitiator {
    state: HandshakeState,
    suite: CipherSuite,
    remote: PeerId,
    remote_static: [u8; 32],
    dh: HandshakeDh,
}

impl IkInitiator {
    /// Starts an IK handshake to `remote`, whose Noise static key is `remote_static` (a binding
    /// this node verified). Returns the machine and message 1 to send.
    pub fn start(
        identity: &LocalIdentity,
        suite: CipherSuite,
        remote: PeerId,
        remote_static: &[u8; 32],
    ) -> Result<(Self, Vec<u8>), HandshakeError> {
        Self::start_inner(identity, suite, remote, remote_static, None)
    }

    /// Like [`IkInitiator::start`] with a fixed ephemeral key. Only for test vectors: reusing
    /// an ephemeral key destroys forward secrecy.
    #[doc(hidden)]
    pub fn start_with_fixed_ephemeral(
        identity: &LocalIdentity,
        suite: CipherSuite,
        remote: PeerId,
        remote_static: &[u8; 32],
        ephemeral: &[u8; 32],
    ) -> Result<(Self, Vec<u8>), HandshakeError> {
        Self::start_inner(identity, suite, remote, remote_static, Some(ephemeral))
    }

    fn start_inner(
        identity: &LocalIdentity,
        suite: CipherSuite,
        remote: PeerId,
        remote_static: &[u8; 32],
        ephemeral: Option<&[u8; 32]>,
    ) -> Result<(Self, Vec<u8>), HandshakeError> {
        let dh = HandshakeDh::new(identity.statics().clone());
        let mut state = builder(suite.ik_params(), identity, &dh, ephemeral)?
            .remote_public_key(remote_static)
            .map_err(noise)?
            .build_initiator()
            .map_err(noise)?;
        let mut msg = vec![0u8; IK_MSG1_LEN];
        msg[0] = suite.ik_id();
        let n = state
            .write_message(identity.payload(), &mut msg[1..])
            .map_err(noise)?;
        debug_assert_eq!(1 + n, IK_MSG1_LEN);
        let hs = Self {
            state,
            suite,
            remote,
            remote_static: *remote_static,
            dh,
        };
        Ok((hs, msg))
    }

    /// The PeerId this handshake is addressed to.
    pub fn remote(&self) -> PeerId {
        self.remote
    }

    /// The static key message 1 was encrypted to.
    pub fn remote_static(&self) -> &[u8; 32] {
        &self.remote_static
    }

    /// Reads message 2 and finishes: the record layer. Only the holder of the static key (so
    /// the expected peer) can have produced it.
    pub fn read_message2(
        mut self,
        msg2: &[u8],
    ) -> Result<(RecordSealer, RecordOpener), HandshakeError> {
        if msg2.len() != IK_MSG2_LEN {
            return Err(HandshakeError::BadLength {
                message: 2,
                len: msg2.len(),
                expected: IK_MSG2_LEN,
            });
        }
        let mut payload = [0u8; TAG_LEN];
        let n = self.state.read_message(msg2, &mut payload).map_err(noise)?;
        if n != 0 {
            return Err(HandshakeError::BadPayload("message 2 carries a payload"));
        }
        // The key's binding was verified before it was cached; message 2 proves the responder
        // holds it.
        self.dh.commit(&self.remote_static);
        into_records(self.state, self.suite)
    }
}

/// What the responder gets from a readable IK message 1.
pub struct IkResponse {
    /// The dialer's proven identity.
    pub peer: PeerId,
    /// The suite the dialer chose.
    pub suite: CipherSuite,
    /// Message 2, to send before the first record.
    pub msg2: Vec<u8>,
    /// The responder's record sealer.
    pub sealer: RecordSealer,
    /// The responder's record opener.
    pub opener: RecordOpener,
}

/// Reads IK message 1 and answers it. Refuses a suite not in `accepted` and a message of the
/// wrong length before any DH work; [`HandshakeError::StaleKey`] if it was not encrypted to
/// this node's static key (the caller falls back to XX).
pub fn respond(
    identity: &LocalIdentity,
    accepted: &[CipherSuite],
    msg1: &[u8],
) -> Result<IkResponse, HandshakeError> {
    respond_inner(identity, accepted, msg1, None)
}

/// Like [`respond`] with a fixed ephemeral key. Only for test vectors.
#[doc(hidden)]
pub fn respond_with_fixed_ephemeral(
    identity: &LocalIdentity,
    accepted: &[CipherSuite],
    msg1: &[u8],
    ephemeral: &[u8; 32],
) -> Result<IkResponse, HandshakeError> {
    respond_inner(identity, accepted, msg1, Some(ephemeral))
}

fn respond_inner(
    identity: &LocalIdentity,
    accepted: &[CipherSuite],
    msg1: &[u8],
    ephemeral: Option<&[u8; 32]>,
) -> Result<IkResponse, HandshakeError> {
    if msg1.len() != IK_MSG1_LEN {
        return Err(HandshakeError::BadLength {
            message: 1,
            len: msg1.len(),
            expected: IK_MSG1_LEN,
        });
    }
    let suite = Some(msg1[0])
        .filter(|&id| is_ik(id))
        .and_then(|id| CipherSuite::from_id(id & !IK_FLAG))
        .filter(|s| accepted.contains(s))
        .ok_or(HandshakeError::UnsupportedSuite(msg1[0]))?;
    let dh = HandshakeDh::new(identity.statics().clone());
    let mut state = builder(suite.ik_params(), identity, &dh, ephemeral)?
        .build_responder()
        .map_err(noise)?;
    // `es` is the first DH: a message sealed to another static key fails to decrypt `s`.
    let peer = read_identity(
        &mut state,
        identity.bindings(),
        &dh,
        &msg1[1..],
        1,
        IK_MSG1_LEN - 1,
    )
    .map_err(|e| match e {
        HandshakeError::Noise(_) => HandshakeError::StaleKey,
        other => other,
    })?;
    let mut msg2 = vec![0u8; IK_MSG2_LEN];
    let n = state.write_message(&[], &mut msg2).map_err(noise)?;
    debug_assert_eq!(n, IK_MSG2_LEN);
    let (sealer, opener) = into_records(state, suite)?;
    Ok(IkResponse {
        peer,
        suite,
        msg2,
        sealer,
        opener,
    })
}

#[cfg(test)]
#[path = "handshake_ik_tests.rs"]
mod tests;
