//! Runs the sans-IO handshake machines over a byte stream with length-prefixed frames: Noise IK
//! (one round trip) when the dialer holds a verified static key of the PeerId it expects, Noise
//! XX otherwise, and the fallback from IK to XX on the same stream when the listener cannot read
//! the IK message (`docs/protocol.md`, section 3).

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::framing::{encode_frame, read_frame, FrameDecoder, ReadFrameError};
use crate::policy::LimitRejection;
use crate::refusal::{decode_refusal, is_refusal_len};
use crate::secure::handshake::{
    InitiatorHandshake, ResponderHandshake, MSG1_LEN, MSG2_LEN, MSG3_LEN,
};
use crate::secure::handshake_ik::{self, is_ik, IkInitiator, FALLBACK, IK_MSG1_LEN, IK_MSG2_LEN};
use crate::secure::record::{
    decode_reject, encode_reject, RecordOpener, RecordSealer, KIND_ACCEPT, KIND_REJECT,
    MAX_NOISE_MESSAGE,
};
use crate::secure::{HandshakeMode, LocalIdentity};
use crate::{ChannelConfig, Error, HandshakeError, PeerId, Result};

/// The outcome of a handshake on a stream.
pub(crate) struct Secured<G> {
    pub(crate) peer: PeerId,
    pub(crate) sealer: RecordSealer,
    pub(crate) opener: RecordOpener,
    pub(crate) guard: G,
    /// Bytes read past the handshake (the start of the remote's first records).
    pub(crate) leftover: BytesMut,
}

fn map_read(e: ReadFrameError) -> Error {
    match e {
        ReadFrameError::Eof { .. } => HandshakeError::UnexpectedEof.into(),
        ReadFrameError::Protocol(p) => p.into(),
        ReadFrameError::Io(e) => Error::io("handshake read", e),
    }
}

async fn write<W: AsyncWrite + Unpin>(w: &mut W, buf: &mut BytesMut) -> Result<()> {
    w.write_all(buf)
        .await
        .map_err(|e| Error::io("handshake write", e))?;
    w.flush()
        .await
        .map_err(|e| Error::io("handshake flush", e))?;
    buf.clear();
    Ok(())
}

/// The frames and buffers of one side of a handshake.
struct Io<'a, R, W> {
    r: &'a mut R,
    w: &'a mut W,
    /// Bytes to send.
    out: BytesMut,
    /// Bytes read and not yet consumed.
    buf: BytesMut,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Io<'_, R, W> {
    async fn read(&mut self, max: usize) -> Result<BytesMut> {
        read_frame(self.r, &mut self.buf, &FrameDecoder::new(max))
            .await
            .map_err(map_read)
    }

    async fn send_frame(&mut self, payload: &[u8]) -> Result<()> {
        encode_frame(payload, &mut self.out);
        write(self.w, &mut self.out).await
    }

    async fn flush(&mut self) -> Result<()> {
        write(self.w, &mut self.out).await
    }

    /// The outcome, with the bytes read past the handshake.
    fn secured<G>(
        self,
        peer: PeerId,
        sealer: RecordSealer,
        opener: RecordOpener,
        guard: G,
    ) -> Secured<G> {
        Secured {
            peer,
            sealer,
            opener,
            guard,
            leftover: self.buf,
        }
    }

    /// Reads the listener's first record: ACCEPT, or REJECT (the dialer's error).
    async fn read_verdict(&mut self, opener: &mut RecordOpener) -> Result<()> {
        let verdict = self.read(MAX_NOISE_MESSAGE).await?;
        let record = opener.open(verdict)?;
        match record.kind {
            KIND_ACCEPT => Ok(()),
            KIND_REJECT => Err(Error::RemoteLimit(decode_reject(&record.body)?)),
            other => Err(HandshakeError::UnexpectedRecord(other).into()),
        }
    }
}

/// The static key for a 1-RTT dial to `expect`, if this node holds a verified one and may use it.
fn ik_key(
    identity: &LocalIdentity,
    config: &ChannelConfig,
    expect: Option<PeerId>,
) -> Option<(PeerId, [u8; 32])> {
    if config.handshake != HandshakeMode::Auto {
        return None;
    }
    let peer = expect?;
    Some((peer, identity.bindings().static_key(&peer)?))
}

/// Dialer side. `admit` is consulted once the responder's identity is known, before ours is
/// revealed (for IK, that is before message 1, with the PeerId the dial expects: message 1 can
/// only be read by the holder of that peer's static key).
pub(crate) async fn outbound<R, W, G>(
    r: &mut R,
    w: &mut W,
    identity: &LocalIdentity,
    config: &ChannelConfig,
    expect: Option<PeerId>,
    admit: impl FnOnce(PeerId) -> std::result::Result<G, LimitRejection>,
) -> Result<Secured<G>>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut io = Io {
        r,
        w,
        out: BytesMut::with_capacity(256),
        buf: BytesMut::with_capacity(256),
    };
    let Some((peer, key)) = ik_key(identity, config, expect) else {
        return outbound_xx(io, identity, config, expect, admit).await;
    };
    let guard = admit(peer).map_err(Error::Limit)?;
    let (hs, m1) = IkInitiator::start(identity, config.suite, peer, &key)?;
    io.send_frame(&m1).await?;
    // Message 2, a refusal (6 bytes) or a fallback to XX (1 byte).
    let m2 = io.read(IK_MSG2_LEN).await?;
    if is_refusal_len(m2.len()) {
        return Err(Error::RemoteLimit(decode_refusal(&m2)?));
    }
    if handshake_ik::is_fallback(&m2)? {
        tracing::debug!(%peer, "1-RTT handshake fell back to XX: the peer has a new static key");
        identity.bindings().forget(&peer, &key);
        return outbound_xx(io, identity, config, Some(peer), |_| Ok(guard)).await;
    }
    let (mut sealer, mut opener) = hs.read_message2(&m2)?;
    io.read_verdict(&mut opener).await?;
    // The confirmation: the listener reports the connection only once it has a record from us.
    sealer.seal(KIND_ACCEPT, &[], &mut io.out)?;
    io.flush().await?;
    Ok(io.secured(peer, sealer, opener, guard))
}

async fn outbound_xx<R, W, G>(
    mut io: Io<'_, R, W>,
    identity: &LocalIdentity,
    config: &ChannelConfig,
    expect: Option<PeerId>,
    admit: impl FnOnce(PeerId) -> std::result::Result<G, LimitRejection>,
) -> Result<Secured<G>>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (mut hs, m1) = InitiatorHandshake::start(identity, config.suite, expect)?;
    io.send_frame(&m1).await?;
    // Message 2, or the listener's pre-handshake refusal (a shorter frame: see `refusal`).
    let m2 = io.read(MSG2_LEN).await?;
    if is_refusal_len(m2.len()) {
        return Err(Error::RemoteLimit(decode_refusal(&m2)?));
    }
    if m2.len() == FALLBACK.len() {
        return Err(HandshakeError::UnexpectedFallback.into());
    }
    let peer = hs.read_message2(&m2)?;
    let guard = admit(peer).map_err(Error::Limit)?;
    let (m3, _, sealer, mut opener) = hs.write_message3()?;
    io.send_frame(&m3).await?;
    io.read_verdict(&mut opener).await?;
    Ok(io.secured(peer, sealer, opener, guard))
}

/// Listener side. `admit` is consulted once the initiator's identity is proven; a refusal is
/// sent to the dialer as a REJECT record before the error is returned.
pub(crate) async fn inbound<R, W, G>(
    r: &mut R,
    w: &mut W,
    identity: &LocalIdentity,
    config: &ChannelConfig,
    admit: impl FnOnce(PeerId) -> std::result::Result<G, LimitRejection>,
) -> Result<Secured<G>>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut io = Io {
        r,
        w,
        out: BytesMut::with_capacity(256),
        buf: BytesMut::with_capacity(256),
    };
    let mut m1 = io.read(IK_MSG1_LEN).await?;
    if m1.first().is_some_and(|&id| is_ik(id)) {
        let answer = if config.handshake == HandshakeMode::Auto {
            handshake_ik::respond(identity, &config.accepted_suites, &m1)
        } else {
            Err(HandshakeError::StaleKey)
        };
        match answer {
            Ok(ik) => return inbound_ik(io, ik, admit).await,
            Err(HandshakeError::StaleKey) => {
                // Ask for XX on this stream; the dialer's next frame must be XX message 1.
                io.send_frame(&FALLBACK).await?;
                m1 = io.read(MSG1_LEN).await?;
                if m1.first().is_some_and(|&id| is_ik(id)) {
                    return Err(HandshakeError::UnexpectedFallback.into());
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    let (hs, m2) = ResponderHandshake::respond(identity, &config.accepted_suites, &m1)?;
    io.send_frame(&m2).await?;
    let m3 = io.read(MSG3_LEN).await?;
    let (peer, mut sealer, opener) = hs.read_message3(&m3)?;
    let guard = answer(&mut io, peer, &mut sealer, admit).await?;
    Ok(io.secured(peer, sealer, opener, guard))
}

/// The listener's half of IK after message 1: message 2 and the verdict in one write, then the
/// dialer's confirmation record.
async fn inbound_ik<R, W, G>(
    mut io: Io<'_, R, W>,
    ik: handshake_ik::IkResponse,
    admit: impl FnOnce(PeerId) -> std::result::Result<G, LimitRejection>,
) -> Result<Secured<G>>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let handshake_ik::IkResponse {
        peer,
        msg2,
        mut sealer,
        mut opener,
        ..
    } = ik;
    encode_frame(&msg2, &mut io.out);
    let guard = answer(&mut io, peer, &mut sealer, admit).await?;
    // Anyone can replay message 1; only the dialer that made it can seal this record.
    let confirm = io.read(MAX_NOISE_MESSAGE).await?;
    match opener.open(confirm)?.kind {
        KIND_ACCEPT => Ok(io.secured(peer, sealer, opener, guard)),
        other => Err(HandshakeError::UnexpectedRecord(other).into()),
    }
}

/// Applies the limits to the proven `peer`: ACCEPT (sent after whatever `io.out` holds), or
/// REJECT, the end of the stream and the error.
async fn answer<R, W, G>(
    io: &mut Io<'_, R, W>,
    peer: PeerId,
    sealer: &mut RecordSealer,
    admit: impl FnOnce(PeerId) -> std::result::Result<G, LimitRejection>,
) -> Result<G>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    match admit(peer) {
        Ok(guard) => {
            sealer.seal(KIND_ACCEPT, &[], &mut io.out)?;
            io.flush().await?;
            Ok(guard)
        }
        Err(rejection) => {
            sealer.seal(KIND_REJECT, &encode_reject(&rejection), &mut io.out)?;
            // Best effort: the dialer learns why; the error below is ours either way.
            let _ = io.flush().await;
            let _ = io.w.shutdown().await;
            Err(Error::Limit(rejection))
        }
    }
}
