//! Connection limits, inbound and outbound: per peer, total, the per-source rate, the cooldown
//! after a failed handshake, and the backoff after a failed dial. Each case makes only the limit
//! it tests small; every refusal must name its limit.

use std::sync::Arc;
use std::time::Duration;

use bitcraps_transport_core::{ConnectionLimits, Error, LimitKind, LimitRejection};

use crate::support::*;
use crate::Harness;

/// Limits with only the failure backoff on (one minute, so it cannot run out mid-case).
fn backoff_limits() -> ConnectionLimits {
    ConnectionLimits {
        failure_backoff: Duration::from_secs(60),
        connection_cooldown: Duration::from_secs(60),
        ..unlimited()
    }
}

pub(crate) async fn limit_per_peer_inbound(h: Arc<dyn Harness>) -> CaseResult {
    let limits = ConnectionLimits {
        max_connections_per_peer: 1,
        ..unlimited()
    };
    let mut server = serve(&*h, limits, channel()).await?;
    let dialer = client(&*h, unlimited(), channel());
    let (first, mut first_accepted) = connect(&*dialer, &mut server).await?;
    let second = within(
        "second dial",
        dialer.dial(&server.addr, Some(server.peer())),
    )
    .await?;
    expect_err!(
        second,
        Error::RemoteLimit(LimitRejection {
            limit: LimitKind::ConnectionsPerPeer,
            ..
        }),
        "second dial from the same identity"
    );
    let refusal = server.next_refusal().await?;
    ensure!(
        matches!(
            refusal,
            Error::Limit(LimitRejection {
                limit: LimitKind::ConnectionsPerPeer,
                ..
            })
        ),
        "listener reported {refusal:?}, expected Limit(ConnectionsPerPeer)"
    );
    // Close the first; once the listener's side has ended, the identity may connect again.
    within("close", first.close("make room"))
        .await?
        .ctx("close")?;
    let end = within("listener side recv", first_accepted.recv()).await?;
    ensure!(
        matches!(end, Ok(None)),
        "listener side: expected Ok(None), got {end:?}"
    );
    within("listener side closed", first_accepted.sender().closed()).await?;
    let (again, mut again_accepted) = connect(&*dialer, &mut server)
        .await
        .map_err(|e| format!("dial after the first connection closed: {e}"))?;
    exchange(&again, &mut again_accepted, "again".into()).await
}

pub(crate) async fn limit_total_inbound(h: Arc<dyn Harness>) -> CaseResult {
    let limits = ConnectionLimits {
        max_total_connections: 2,
        ..unlimited()
    };
    let mut server = serve(&*h, limits, channel()).await?;
    let mut kept = Vec::new();
    for _ in 0..2 {
        let dialer = client(&*h, unlimited(), channel());
        kept.push(connect(&*dialer, &mut server).await?);
    }
    let third = client(&*h, unlimited(), channel());
    let result = within("third dial", third.dial(&server.addr, Some(server.peer()))).await?;
    expect_err!(
        result,
        Error::RemoteLimit(LimitRejection {
            limit: LimitKind::TotalConnections,
            ..
        }),
        "dial from a third peer"
    );
    let refusal = server.next_refusal().await?;
    ensure!(
        matches!(
            refusal,
            Error::Limit(LimitRejection {
                limit: LimitKind::TotalConnections,
                ..
            })
        ),
        "listener reported {refusal:?}, expected Limit(TotalConnections)"
    );
    // The two admitted connections are unaffected.
    for (dialed, accepted) in &mut kept {
        exchange(dialed, accepted, "still here".into()).await?;
    }
    Ok(())
}

pub(crate) async fn limit_per_peer_outbound(h: Arc<dyn Harness>) -> CaseResult {
    let mut server = serve(&*h, unlimited(), channel()).await?;
    let limits = ConnectionLimits {
        max_connections_per_peer: 1,
        ..unlimited()
    };
    let dialer = client(&*h, limits, channel());
    let (first, _first_accepted) = connect(&*dialer, &mut server).await?;
    let second = within(
        "second dial",
        dialer.dial(&server.addr, Some(server.peer())),
    )
    .await?;
    expect_err!(
        second,
        Error::Limit(LimitRejection {
            limit: LimitKind::ConnectionsPerPeer,
            ..
        }),
        "second dial to the same peer"
    );
    within("close", first.close("make room"))
        .await?
        .ctx("close")?;
    within("closed", first.sender().closed()).await?;
    let (again, mut again_accepted) = connect(&*dialer, &mut server)
        .await
        .map_err(|e| format!("dial after the first connection closed: {e}"))?;
    exchange(&again, &mut again_accepted, "again".into()).await
}

const RATE_SOURCE: u8 = 5;

pub(crate) async fn limit_rate_per_source(h: Arc<dyn Harness>) -> CaseResult {
    let limits = ConnectionLimits {
        max_new_connections_per_minute: 3,
        ..unlimited()
    };
    let mut server = serve(&*h, limits, channel()).await?;
    // Three handshakes start (and stall: the raw side sends nothing); the fourth is refused.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(raw_connect(&*h, &server.addr, RATE_SOURCE).await?);
    }
    let before = server.listener.stats().refused_by_limit;
    let mut fourth = raw_connect(&*h, &server.addr, RATE_SOURCE).await?;
    let refusal = server.next_refusal().await?;
    match refusal {
        Error::Limit(LimitRejection {
            limit: LimitKind::NewConnectionRate,
            retry_after: Some(wait),
        }) if !wait.is_zero() => {}
        other => {
            return Err(format!(
                "4th connection from one source: expected Limit(NewConnectionRate, retry_after \
                 Some(>0)), got {other:?}"
            ))
        }
    }
    let after = server.listener.stats().refused_by_limit;
    ensure!(
        after == before + 1,
        "stats().refused_by_limit went from {before} to {after}, expected +1"
    );
    raw_wait_closed(&mut fourth).await?;
    // Another source is not affected.
    still_serves(&*h, &mut server).await?;
    drop(held);
    Ok(())
}

/// A dialer over its source's rate is told so: `RemoteLimit(NewConnectionRate)` with a retry
/// time, not a link that ends mid-handshake; the dial within the allowance is unaffected.
pub(crate) async fn refused_dialer_learns_the_limit(h: Arc<dyn Harness>) -> CaseResult {
    let limits = ConnectionLimits {
        max_new_connections_per_minute: 1,
        ..unlimited()
    };
    let mut server = serve(&*h, limits, channel()).await?;
    let dialer = client(&*h, unlimited(), channel());
    let (first, mut first_accepted) = connect(&*dialer, &mut server).await?;
    exchange(&first, &mut first_accepted, "within the allowance".into()).await?;
    let second = within(
        "second dial",
        dialer.dial(&server.addr, Some(server.peer())),
    )
    .await?;
    match second {
        Err(Error::RemoteLimit(LimitRejection {
            limit: LimitKind::NewConnectionRate,
            retry_after: Some(wait),
        })) if !wait.is_zero() => {}
        Err(other) => {
            return Err(format!(
                "second dial from one source: expected RemoteLimit(NewConnectionRate, \
                 retry_after Some(>0)), got Err({other:?})"
            ))
        }
        Ok(_) => return Err("second dial connected despite the rate limit".into()),
    }
    let refusal = server.next_refusal().await?;
    ensure!(
        matches!(
            refusal,
            Error::Limit(LimitRejection {
                limit: LimitKind::NewConnectionRate,
                ..
            })
        ),
        "listener reported {refusal:?}, expected Limit(NewConnectionRate)"
    );
    exchange(&first, &mut first_accepted, "still open".into()).await
}

const GARBAGE_SOURCE: u8 = 7;

pub(crate) async fn cooldown_after_garbage(h: Arc<dyn Harness>) -> CaseResult {
    let mut server = serve(&*h, backoff_limits(), channel()).await?;
    let mut raw = raw_roundtrip(&*h, &server.addr, GARBAGE_SOURCE, &noise(7, 512)).await?;
    let refusal = server.next_refusal().await?;
    ensure!(
        matches!(refusal, Error::Handshake(_) | Error::Protocol(_)),
        "garbage: expected Handshake(_) or Protocol(_), got {refusal:?}"
    );
    raw_wait_closed(&mut raw).await?;
    let mut again = raw_connect(&*h, &server.addr, GARBAGE_SOURCE).await?;
    let refusal = server.next_refusal().await?;
    ensure!(
        matches!(
            refusal,
            Error::Limit(LimitRejection {
                limit: LimitKind::Cooldown,
                retry_after: Some(_)
            })
        ),
        "reconnect after garbage: expected Limit(Cooldown, Some(_)), got {refusal:?}"
    );
    raw_wait_closed(&mut again).await?;
    still_serves(&*h, &mut server).await
}

pub(crate) async fn outbound_backoff_after_failed_dial(h: Arc<dyn Harness>) -> CaseResult {
    let mut server = serve(&*h, unlimited(), channel()).await?;
    let addr = server.addr.clone();
    within("listener close", server.listener.close()).await?;
    let dialer = client(&*h, backoff_limits(), channel());
    let first = within("first dial", dialer.dial(&addr, None)).await?;
    let err = expect_err!(
        first,
        Error::Io { .. } | Error::LinkLost(_) | Error::Handshake(_) | Error::Timeout { .. },
        "dial to a closed listener"
    );
    tracing::debug!(?err, "first dial failed");
    // Serve the address again: a dial that touched the network would now succeed, so the
    // refusal below proves it did not.
    let mut listener = within("listen again", server.transport.listen(&addr))
        .await?
        .ctx("listen again on the same address")?;
    let second = within("second dial", dialer.dial(&addr, None)).await?;
    match second {
        Err(Error::Limit(LimitRejection {
            limit: LimitKind::Cooldown,
            retry_after: Some(wait),
        })) if !wait.is_zero() => {}
        Err(other) => {
            return Err(format!(
                "immediate redial: expected Limit(Cooldown, Some(>0)), got Err({other:?})"
            ))
        }
        Ok(_) => return Err("immediate redial went out and connected despite the backoff".into()),
    }
    let stats = listener.stats();
    ensure!(
        stats.accepted == 0 && stats.refused_by_limit == 0 && stats.failed_handshakes == 0,
        "the backed-off dial reached the listener: {stats:?}"
    );
    listener.close().await;
    Ok(())
}
