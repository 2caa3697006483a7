//! Hostile input on raw connections: garbage, a 4 GiB length prefix, a silent peer, and a
//! hundred of them at once. Each gets a typed refusal and a closed connection, and the listener
//! keeps serving everyone else.

use std::sync::Arc;
use std::time::Duration;

use bitcraps_transport_core::{ChannelConfig, ConnectionLimits, Error, ProtocolError};

use crate::support::*;
use crate::Harness;

pub(crate) async fn garbage_is_refused(h: Arc<dyn Harness>) -> CaseResult {
    let mut server = serve(&*h, unlimited(), channel()).await?;
    let mut raw = raw_roundtrip(&*h, &server.addr, 3, &noise(3, 1024)).await?;
    let refusal = server.next_refusal().await?;
    ensure!(
        matches!(refusal, Error::Handshake(_) | Error::Protocol(_)),
        "garbage: expected Refused with Handshake(_) or Protocol(_), got {refusal:?}"
    );
    raw_wait_closed(&mut raw).await?;
    still_serves(&*h, &mut server).await
}

pub(crate) async fn oversized_length_prefix(h: Arc<dyn Harness>) -> CaseResult {
    let mut server = serve(&*h, unlimited(), channel()).await?;
    let mut raw = raw_roundtrip(&*h, &server.addr, 4, &[0xFF; 4]).await?;
    let refusal = server.next_refusal().await?;
    match refusal {
        Error::Protocol(ProtocolError::FrameTooLarge { len, .. }) if len == u64::from(u32::MAX) => {
        }
        other => {
            return Err(format!(
                "prefix 0xFFFFFFFF: expected Protocol(FrameTooLarge {{ len: 4294967295, .. }}), \
                 got {other:?}"
            ))
        }
    }
    raw_wait_closed(&mut raw).await?;
    still_serves(&*h, &mut server).await
}

const STALL_TIMEOUT: Duration = Duration::from_millis(300);

pub(crate) async fn stalled_handshake_times_out(h: Arc<dyn Harness>) -> CaseResult {
    let listener_channel = ChannelConfig {
        handshake_timeout: STALL_TIMEOUT,
        ..channel()
    };
    let mut server = serve(&*h, unlimited(), listener_channel).await?;
    let mut raw = raw_connect(&*h, &server.addr, 9).await?;
    let end = raw_wait_closed(&mut raw).await?;
    ensure!(
        end.received == 0,
        "the listener sent {} bytes to a peer that sent nothing",
        end.received
    );
    tracing::debug!(how = %end.how, "stalled raw connection closed by the listener");
    let refusal = server.next_refusal().await?;
    match refusal {
        Error::Timeout { after, .. } if after == STALL_TIMEOUT => {}
        other => {
            return Err(format!(
                "silent handshake: expected Timeout {{ after: {STALL_TIMEOUT:?}, .. }}, got \
                 {other:?}"
            ))
        }
    }
    let stats = server.listener.stats();
    ensure!(
        stats.failed_handshakes == 1,
        "stats().failed_handshakes is {}, expected 1 ({stats:?})",
        stats.failed_handshakes
    );
    still_serves(&*h, &mut server).await
}

/// Raw sources `FIRST_SOURCE..FIRST_SOURCE + HOSTILE`.
const FIRST_SOURCE: u8 = 10;
const HOSTILE: u8 = 100;

/// What one hostile source does.
fn hostile_bytes(source: u8) -> Vec<u8> {
    match source % 3 {
        0 => noise(u64::from(source), 300),
        1 => vec![0xFF, 0xFF, 0xFF, 0xF0],
        _ => Vec::new(),
    }
}

pub(crate) async fn many_hostile_sources_then_legit(h: Arc<dyn Harness>) -> CaseResult {
    let listener_channel = ChannelConfig {
        handshake_timeout: Duration::from_secs(1),
        ..channel()
    };
    // Realistic limits: the defaults (per-source rate and cooldown, a cap of 64 handshakes in
    // flight), which no single source can use to lock the others out.
    let mut server = serve(&*h, ConnectionLimits::default(), listener_channel).await?;
    // Each attacker reports when it has sent its bytes, then when the listener closed it.
    let (sent_tx, mut sent_rx) = tokio::sync::mpsc::channel(usize::from(HOSTILE));
    let (closed_tx, mut closed_rx) = tokio::sync::mpsc::channel(usize::from(HOSTILE));
    let mut attackers = tokio::task::JoinSet::new();
    for source in FIRST_SOURCE..FIRST_SOURCE + HOSTILE {
        let h = h.clone();
        let addr = server.addr.clone();
        let (sent, closed) = (sent_tx.clone(), closed_tx.clone());
        attackers.spawn(async move {
            let mut raw = raw_roundtrip(&*h, &addr, source, &hostile_bytes(source)).await?;
            let _ = sent.send(()).await;
            drop(sent);
            raw_wait_closed(&mut raw)
                .await
                .map_err(|e| format!("hostile source {source}: {e}"))?;
            let _ = closed.send(!hostile_bytes(source).is_empty()).await;
            Ok::<_, String>(())
        });
    }
    drop((sent_tx, closed_tx));
    within("hostile connects", async {
        while sent_rx.recv().await.is_some() {}
    })
    .await?;
    // Wait until the listener has closed every attacker that sent bytes (refused at once); the
    // silent ones may still hold their handshake slots (a third of them, under the cap of 64).
    // Dialing before that may meet a legitimately full cap of handshakes in flight.
    let noisy = (FIRST_SOURCE..FIRST_SOURCE + HOSTILE)
        .filter(|s| !hostile_bytes(*s).is_empty())
        .count();
    within("noisy attackers closed", async {
        let mut closed = 0;
        while closed < noisy {
            match closed_rx.recv().await {
                Some(true) => closed += 1,
                Some(false) => {}
                None => break,
            }
        }
    })
    .await?;
    // A normal dial (another source) gets through.
    still_serves(&*h, &mut server).await?;
    // Every hostile connection is closed by the listener: garbage at once, silence at the
    // handshake timeout.
    let mut ended = 0;
    while let Some(joined) = within("hostile sources", attackers.join_next()).await? {
        joined.ctx("attacker task")??;
        ended += 1;
    }
    ensure!(
        ended == HOSTILE,
        "{ended} of {HOSTILE} hostile connections ended"
    );
    // And the listener is alive afterwards.
    still_serves(&*h, &mut server).await
}
