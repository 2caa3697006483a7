//! The stream handshake driver end to end over in-memory pipes: IK once the dialer knows the
//! listener's static key, the fallback to XX on a stale key, every wrong-identity guarantee, and
//! the listener's wait for the dialer's confirmation.

use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{duplex, split, AsyncReadExt, AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};

use super::handshake::{inbound, outbound, Secured};
use crate::policy::{LimitKind, LimitRejection};
use crate::secure::handshake_ik::{IK_MSG1_LEN, IK_MSG2_LEN};
use crate::secure::record::KIND_DATA;
use crate::secure::{CipherSuite, HandshakeMode, LocalIdentity};
use crate::{ChannelConfig, Error, HandshakeError, Keypair, PeerId};

type Half = (ReadHalf<DuplexStream>, WriteHalf<DuplexStream>);

fn pipe() -> (Half, Half) {
    let (a, b) = duplex(64 * 1024);
    (split(a), split(b))
}

fn config(handshake: HandshakeMode) -> ChannelConfig {
    ChannelConfig {
        handshake,
        ..ChannelConfig::default()
    }
}

/// The result of one dial and its accept, with the length and first byte of the dialer's
/// first frame (which handshake it started).
struct Outcome {
    dial: crate::Result<Secured<()>>,
    accept: crate::Result<Secured<()>>,
    first_frame: (usize, u8),
}

/// Dials `listener` from `dialer` over a pipe whose dialer-to-listener direction is recorded.
async fn handshake(
    dialer: &Arc<LocalIdentity>,
    listener: &Arc<LocalIdentity>,
    expect: Option<PeerId>,
    dialer_mode: HandshakeMode,
    listener_mode: HandshakeMode,
) -> Outcome {
    let ((mut dr, mut dw), (mut lr, mut lw)) = pipe();
    // Relay the dialer's bytes to the listener through a tap that keeps the first frame header.
    let (tap_listener, mut tap_w) = duplex(64 * 1024);
    let (mut tap_r, _) = split(tap_listener);
    let relay = tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = lr.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                let _ = tap_w.shutdown().await;
                break seen;
            }
            if seen.len() < 5 {
                seen.extend_from_slice(&buf[..n.min(5)]);
            }
            if tap_w.write_all(&buf[..n]).await.is_err() {
                break seen;
            }
        }
    });
    let listener_id = listener.clone();
    let accept = tokio::spawn(async move {
        let config = config(listener_mode);
        let result = inbound(&mut tap_r, &mut lw, &listener_id, &config, |_| Ok(())).await;
        drop(lw);
        result
    });
    let dial = outbound(
        &mut dr,
        &mut dw,
        dialer,
        &config(dialer_mode),
        expect,
        |_| Ok(()),
    )
    .await;
    drop((dr, dw));
    let accept = accept.await.expect("no panic");
    let seen = relay.await.expect("no panic");
    let len = u32::from_be_bytes([seen[0], seen[1], seen[2], seen[3]]) as usize;
    Outcome {
        dial,
        accept,
        first_frame: (len, seen[4]),
    }
}

/// Both sides hold working record keys: a record sealed by each opens at the other.
fn keys_agree(dial: &mut Secured<()>, accept: &mut Secured<()>) {
    let mut frame = BytesMut::new();
    dial.sealer.seal_message(b"bet 5", &mut frame).unwrap();
    let record = accept.opener.open(frame.split_off(4)).unwrap();
    assert_eq!((record.kind, &record.body[..]), (KIND_DATA, &b"bet 5"[..]));
    let mut frame = BytesMut::new();
    accept.sealer.seal_message(b"roll", &mut frame).unwrap();
    assert_eq!(
        &dial.opener.open(frame.split_off(4)).unwrap().body[..],
        b"roll"
    );
}

fn ids() -> (Arc<LocalIdentity>, Arc<LocalIdentity>) {
    (
        LocalIdentity::new(Keypair::generate()),
        LocalIdentity::new(Keypair::generate()),
    )
}

/// A first, successful dial from `a` to `b`: afterwards `a` holds `b`'s verified static key.
async fn meet(a: &Arc<LocalIdentity>, b: &Arc<LocalIdentity>) {
    let auto = HandshakeMode::Auto;
    assert!(handshake(a, b, Some(b.peer_id()), auto, auto)
        .await
        .dial
        .is_ok());
}

const XX1: usize = crate::secure::handshake::MSG1_LEN;

#[tokio::test]
async fn the_second_dial_to_a_known_peer_takes_one_round_trip() {
    let (a, b) = ids();
    let auto = HandshakeMode::Auto;
    let first = handshake(&a, &b, Some(b.peer_id()), auto, auto).await;
    assert_eq!(first.first_frame.0, XX1, "nothing known yet: XX");
    let (mut d, mut l) = (first.dial.unwrap(), first.accept.unwrap());
    assert_eq!((d.peer, l.peer), (b.peer_id(), a.peer_id()));
    keys_agree(&mut d, &mut l);

    let second = handshake(&a, &b, Some(b.peer_id()), auto, auto).await;
    let suite = CipherSuite::default();
    assert_eq!(second.first_frame, (IK_MSG1_LEN, suite.ik_id()), "IK");
    let (mut d, mut l) = (second.dial.unwrap(), second.accept.unwrap());
    assert_eq!((d.peer, l.peer), (b.peer_id(), a.peer_id()));
    keys_agree(&mut d, &mut l);

    // A dial that expects no particular peer, or a dialer that wants XX, uses XX.
    let any = handshake(&a, &b, None, auto, auto).await;
    assert_eq!(any.first_frame.0, XX1);
    assert!(any.dial.is_ok() && any.accept.is_ok());
    let xx = handshake(&a, &b, Some(b.peer_id()), HandshakeMode::XxOnly, auto).await;
    assert_eq!(xx.first_frame.0, XX1);
    assert!(xx.dial.is_ok() && xx.accept.is_ok());
}

#[tokio::test]
async fn a_restarted_peer_gets_a_fallback_to_xx_and_then_ik_again() {
    let (a, b) = ids();
    let auto = HandshakeMode::Auto;
    meet(&a, &b).await;
    // `b` restarts: same identity, new Noise static key.
    let b2 = LocalIdentity::new(b.keypair().clone());
    let after = handshake(&a, &b2, Some(b.peer_id()), auto, auto).await;
    assert_eq!(
        after.first_frame.0, IK_MSG1_LEN,
        "tried IK with the old key"
    );
    let (mut d, mut l) = (after.dial.unwrap(), after.accept.unwrap());
    assert_eq!((d.peer, l.peer), (b.peer_id(), a.peer_id()));
    keys_agree(&mut d, &mut l);
    assert_eq!(
        a.bindings().static_key(&b.peer_id()),
        Some(*b2.noise_public())
    );
    let again = handshake(&a, &b2, Some(b.peer_id()), auto, auto).await;
    assert_eq!(again.first_frame.0, IK_MSG1_LEN);
    assert!(again.dial.is_ok() && again.accept.is_ok());
}

#[tokio::test]
async fn a_listener_that_wants_xx_answers_ik_with_the_fallback() {
    let (a, b) = ids();
    let auto = HandshakeMode::Auto;
    meet(&a, &b).await;
    let out = handshake(&a, &b, Some(b.peer_id()), auto, HandshakeMode::XxOnly).await;
    assert_eq!(out.first_frame.0, IK_MSG1_LEN);
    let (mut d, mut l) = (out.dial.unwrap(), out.accept.unwrap());
    keys_agree(&mut d, &mut l);
}

#[tokio::test]
async fn a_dial_to_the_wrong_peer_fails_and_never_reveals_the_dialer() {
    let (a, b) = ids();
    let auto = HandshakeMode::Auto;
    meet(&a, &b).await;
    // `c` answers where `b` was expected: it cannot read the IK message sealed to b's key, the
    // fallback XX shows c's identity, and the dialer stops before its message 3.
    let c = LocalIdentity::new(Keypair::generate());
    let out = handshake(&a, &c, Some(b.peer_id()), auto, auto).await;
    assert_eq!(out.first_frame.0, IK_MSG1_LEN);
    match out.dial {
        Err(Error::PeerMismatch { expected, actual }) => {
            assert_eq!((expected, actual), (b.peer_id(), c.peer_id()));
        }
        other => panic!("expected a mismatch, got {:?}", other.map(|s| s.peer)),
    }
    assert!(
        matches!(
            out.accept,
            Err(Error::Handshake(HandshakeError::UnexpectedEof))
        ),
        "the listener never learned who dialed"
    );
    // b's key is forgotten only if b itself asked for the fallback; here c did, so the dialer
    // dropped the binding it tried and learns it again on its next dial to b.
    let back = handshake(&a, &b, Some(b.peer_id()), auto, auto).await;
    assert!(back.dial.is_ok() && back.accept.is_ok());
}

#[tokio::test]
async fn a_replayed_message_1_never_becomes_a_connection() {
    let (a, b) = ids();
    let auto = HandshakeMode::Auto;
    meet(&a, &b).await;
    // Record a genuine IK message 1 frame, then replay it from a party without a's secrets.
    let ((mut dr, mut dw), (mut lr, _lw)) = pipe();
    let (dialer_id, b_id) = (a.clone(), b.peer_id());
    let dial = tokio::spawn(async move {
        let config = config(auto);
        let _ = outbound(
            &mut dr,
            &mut dw,
            &dialer_id,
            &config,
            Some(b_id),
            |_| Ok(()),
        )
        .await;
    });
    let mut m1 = vec![0u8; 4 + IK_MSG1_LEN];
    lr.read_exact(&mut m1).await.unwrap();
    dial.abort();

    let ((mut rr, mut rw), (mut xr, mut xw)) = pipe();
    let listener_id = b.clone();
    let accept = tokio::spawn(async move {
        let config = config(auto);
        inbound(&mut xr, &mut xw, &listener_id, &config, |_| Ok(())).await
    });
    rw.write_all(&m1).await.unwrap();
    // The listener answers (message 2 and ACCEPT) and waits for a confirmation that only the
    // original dialer could seal; the replayer sends a forged record and hangs up.
    let mut reply = vec![0u8; 4 + IK_MSG2_LEN];
    rr.read_exact(&mut reply).await.unwrap();
    rw.write_all(&[0, 0, 0, 17]).await.unwrap();
    rw.write_all(&[0x55; 17]).await.unwrap();
    rw.shutdown().await.unwrap();
    assert!(matches!(
        accept.await.expect("no panic"),
        Err(Error::Protocol(_))
    ));
}

#[tokio::test]
async fn a_listener_limit_refuses_an_ik_dial_with_reject() {
    let (a, b) = ids();
    let auto = HandshakeMode::Auto;
    meet(&a, &b).await;
    let ((mut dr, mut dw), (mut lr, mut lw)) = pipe();
    let listener_id = b.clone();
    let rejection = LimitRejection {
        limit: LimitKind::ConnectionsPerPeer,
        retry_after: None,
    };
    let accept = tokio::spawn(async move {
        let config = config(auto);
        inbound(&mut lr, &mut lw, &listener_id, &config, |_| {
            Err::<(), _>(rejection)
        })
        .await
    });
    let dial = outbound(
        &mut dr,
        &mut dw,
        &a,
        &config(auto),
        Some(b.peer_id()),
        |_| Ok(()),
    )
    .await;
    assert!(matches!(dial, Err(Error::RemoteLimit(r)) if r == rejection));
    assert!(matches!(accept.await.expect("no panic"), Err(Error::Limit(r)) if r == rejection));
}
