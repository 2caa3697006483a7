//! Runs the sans-IO handshake machines over a byte stream with length-prefixed frames.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::framing::{encode_frame, read_frame, FrameDecoder, ReadFrameError};
use crate::policy::LimitRejection;
use crate::refusal::{decode_refusal, is_refusal_len};
use crate::secure::handshake::{
    InitiatorHandshake, ResponderHandshake, MSG1_LEN, MSG2_LEN, MSG3_LEN,
};
use crate::secure::record::{
    decode_reject, encode_reject, RecordOpener, RecordSealer, KIND_ACCEPT, KIND_REJECT,
    MAX_NOISE_MESSAGE,
};
use crate::secure::LocalIdentity;
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

/// Dialer side. `admit` is consulted once the responder's identity is known, before ours is
/// revealed.
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
    let mut out = BytesMut::with_capacity(256);
    let mut buf = BytesMut::with_capacity(256);
    let (mut hs, m1) = InitiatorHandshake::start(identity, config.suite, expect)?;
    encode_frame(&m1, &mut out);
    write(w, &mut out).await?;
    // Message 2, or the listener's pre-handshake refusal (a shorter frame: see `refusal`).
    let m2 = read_frame(r, &mut buf, &FrameDecoder::new(MSG2_LEN))
        .await
        .map_err(map_read)?;
    if is_refusal_len(m2.len()) {
        return Err(Error::RemoteLimit(decode_refusal(&m2)?));
    }
    let peer = hs.read_message2(&m2)?;
    let guard = admit(peer).map_err(Error::Limit)?;
    let (m3, _, sealer, mut opener) = hs.write_message3()?;
    encode_frame(&m3, &mut out);
    write(w, &mut out).await?;
    let verdict = read_frame(r, &mut buf, &FrameDecoder::new(MAX_NOISE_MESSAGE))
        .await
        .map_err(map_read)?;
    let record = opener.open(verdict)?;
    match record.kind {
        KIND_ACCEPT => Ok(Secured {
            peer,
            sealer,
            opener,
            guard,
            leftover: buf,
        }),
        KIND_REJECT => Err(Error::RemoteLimit(decode_reject(&record.body)?)),
        other => Err(HandshakeError::UnexpectedRecord(other).into()),
    }
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
    let mut out = BytesMut::with_capacity(256);
    let mut buf = BytesMut::with_capacity(256);
    let m1 = read_frame(r, &mut buf, &FrameDecoder::new(MSG1_LEN))
        .await
        .map_err(map_read)?;
    let (hs, m2) = ResponderHandshake::respond(identity, &config.accepted_suites, &m1)?;
    encode_frame(&m2, &mut out);
    write(w, &mut out).await?;
    let m3 = read_frame(r, &mut buf, &FrameDecoder::new(MSG3_LEN))
        .await
        .map_err(map_read)?;
    let (peer, mut sealer, opener) = hs.read_message3(&m3)?;
    match admit(peer) {
        Ok(guard) => {
            sealer.seal(KIND_ACCEPT, &[], &mut out)?;
            write(w, &mut out).await?;
            Ok(Secured {
                peer,
                sealer,
                opener,
                guard,
                leftover: buf,
            })
        }
        Err(rejection) => {
            sealer.seal(KIND_REJECT, &encode_reject(&rejection), &mut out)?;
            // Best effort: the dialer learns why; the error below is ours either way.
            let _ = write(w, &mut out).await;
            let _ = w.shutdown().await;
            Err(Error::Limit(rejection))
        }
    }
}
