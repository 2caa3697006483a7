//! Identity and message sizes: the handshake proves each side's `PeerId`, a dial expecting
//! someone else fails before any connection exists, and messages of 0, 1 and the maximum size
//! arrive byte-exact while one byte more is refused without harming the connection.

use std::sync::Arc;

use bitcraps_transport_core::{Bytes, ChannelConfig, Error, Keypair};

use crate::support::*;
use crate::Harness;

pub(crate) async fn identity_right_peer(h: Arc<dyn Harness>) -> CaseResult {
    let mut server = serve(&*h, unlimited(), channel()).await?;
    let dialer = client(&*h, unlimited(), channel());
    let (dialed, mut accepted) = connect(&*dialer, &mut server).await?;
    ensure!(
        dialed.remote_peer() == server.peer(),
        "the dialer sees {} instead of the listener's {}",
        dialed.remote_peer(),
        server.peer()
    );
    ensure!(
        accepted.remote_peer() == dialer.local_peer_id(),
        "the listener sees {} instead of the dialer's {}",
        accepted.remote_peer(),
        dialer.local_peer_id()
    );
    ensure!(
        dialed.info().outbound && !accepted.info().outbound,
        "direction flags wrong: dialed.outbound={}, accepted.outbound={}",
        dialed.info().outbound,
        accepted.info().outbound
    );
    exchange(&dialed, &mut accepted, Bytes::from_static(b"hello")).await
}

pub(crate) async fn identity_wrong_peer(h: Arc<dyn Harness>) -> CaseResult {
    // A short handshake timeout at the listener: a datagram listener only learns of the
    // abandoned handshake when it times out, and that must happen well within the guard.
    let listener_channel = ChannelConfig {
        handshake_timeout: std::time::Duration::from_secs(2),
        ..channel()
    };
    let mut server = serve(&*h, unlimited(), listener_channel).await?;
    let dialer = client(&*h, unlimited(), channel());
    let wrong = Keypair::generate().peer_id();
    let result = within("dial", dialer.dial(&server.addr, Some(wrong))).await?;
    let err = expect_err!(
        result,
        Error::PeerMismatch { .. },
        "dial expecting another peer"
    );
    if let Error::PeerMismatch { expected, actual } = err {
        ensure!(
            expected == wrong,
            "PeerMismatch.expected is {expected}, not {wrong}"
        );
        ensure!(
            actual == server.peer(),
            "PeerMismatch.actual is {actual}, not the listener's {}",
            server.peer()
        );
    }
    // The listener's next event must be the failed attempt, not a connection.
    // (The dialer hangs up mid-handshake; how the listener words that depends on the link: a
    // datagram listener, which has no connection to see end, reports its handshake timeout.)
    let refusal = server.next_refusal().await?;
    ensure!(
        matches!(
            refusal,
            Error::Handshake(_) | Error::Io { .. } | Error::LinkLost(_) | Error::Protocol(_)
        ) || (matches!(refusal, Error::Timeout { .. })
            && !server.transport.capabilities().reliable),
        "listener reported {refusal:?} for the abandoned handshake, expected Handshake, Io, \
         LinkLost or Protocol"
    );
    // A later, correct dial from someone else is the first connection handed out.
    let other = client(&*h, unlimited(), channel());
    let (dialed, mut accepted) = connect(&*other, &mut server).await?;
    ensure!(
        accepted.remote_peer() == other.local_peer_id(),
        "the listener handed out a connection from {} (the mismatched dialer is {})",
        accepted.remote_peer(),
        dialer.local_peer_id()
    );
    exchange(&dialed, &mut accepted, Bytes::from_static(b"ok")).await
}

/// Sends `message` both ways on a fresh pair.
async fn both_ways(h: &dyn Harness, message: Bytes) -> CaseResult {
    let mut p = pair(h, unlimited(), channel()).await?;
    exchange(&p.dialed, &mut p.accepted, message.clone()).await?;
    exchange(&p.accepted, &mut p.dialed, message).await
}

pub(crate) async fn size_zero(h: Arc<dyn Harness>) -> CaseResult {
    both_ways(&*h, Bytes::new()).await
}

pub(crate) async fn size_one(h: Arc<dyn Harness>) -> CaseResult {
    both_ways(&*h, Bytes::from_static(&[0xA5])).await
}

pub(crate) async fn size_max(h: Arc<dyn Harness>) -> CaseResult {
    let mut p = pair(&*h, unlimited(), channel()).await?;
    let max = p.dialer.capabilities().max_message_size;
    ensure!(max > 0, "capabilities().max_message_size is 0");
    let message = numbered(0x5EED, max);
    exchange(&p.dialed, &mut p.accepted, message.clone()).await?;
    exchange(&p.accepted, &mut p.dialed, numbered(0xFEED, max)).await
}

pub(crate) async fn size_max_plus_one(h: Arc<dyn Harness>) -> CaseResult {
    let mut p = pair(&*h, unlimited(), channel()).await?;
    let max = p.dialer.capabilities().max_message_size;
    let too_big = numbered(1, max + 1);
    let result = within("send max+1", p.dialed.send(too_big.clone())).await?;
    let err = expect_err!(result, Error::MessageTooLarge { .. }, "send of max+1 bytes");
    if let Error::MessageTooLarge { len, max: reported } = err {
        ensure!(
            len == max + 1 && reported == max,
            "MessageTooLarge {{ len: {len}, max: {reported} }}, expected len {} and max {max}",
            max + 1
        );
    }
    let result = p.dialed.sender().try_send(too_big);
    expect_err!(
        result,
        Error::MessageTooLarge { .. },
        "try_send of max+1 bytes"
    );
    // The connection is still usable, and nothing of the refused message went out: the next
    // message received is the normal one.
    exchange(&p.dialed, &mut p.accepted, Bytes::from_static(b"after")).await?;
    exchange(&p.accepted, &mut p.dialed, Bytes::from_static(b"reply")).await
}
