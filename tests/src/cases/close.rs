//! Close and shutdown: a close with a reason reaches the remote, a dropped connection ends the
//! remote's receive, a closed listener frees its address, and an address of another backend's
//! scheme is "unsupported" (not "failed").

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use bitcraps_transport_core::{Bytes, CloseReason, Error, TransportAddress};

use crate::support::*;
use crate::Harness;

pub(crate) async fn close_seen_by_remote(h: Arc<dyn Harness>) -> CaseResult {
    let mut p = pair(&*h, unlimited(), channel()).await?;
    let (closed, received) = within("close + recv", async {
        tokio::join!(p.dialed.close("game over"), p.accepted.recv())
    })
    .await?;
    closed.ctx("close")?;
    match received {
        Ok(None) => {}
        other => return Err(format!("remote recv: expected Ok(None), got {other:?}")),
    }
    let reason = p.accepted.close_reason();
    ensure!(
        reason == Some(CloseReason::Remote("game over".into())),
        "remote's close_reason() is {reason:?}, expected Remote(\"game over\")"
    );
    let local = p.dialed.close_reason();
    ensure!(
        local == Some(CloseReason::Local("game over".into())),
        "closer's close_reason() is {local:?}, expected Local(\"game over\")"
    );
    let result = p.dialed.send(Bytes::from_static(b"late")).await;
    expect_err!(result, Error::Closed(_), "send after close");
    // Closing again succeeds at once.
    within("second close", p.dialed.close("again"))
        .await?
        .ctx("second close")
}

pub(crate) async fn drop_seen_by_remote(h: Arc<dyn Harness>) -> CaseResult {
    let mut p = pair(&*h, unlimited(), channel()).await?;
    exchange(&p.dialed, &mut p.accepted, Bytes::from_static(b"before")).await?;
    drop(p.dialed);
    match within("recv after the remote dropped", p.accepted.recv()).await? {
        Ok(None) => {}
        // A lost link is reported once, then the receive ends.
        Err(Error::LinkLost(_)) => {
            let next = within("recv after LinkLost", p.accepted.recv()).await?;
            ensure!(
                matches!(next, Ok(None)),
                "recv after LinkLost: expected Ok(None), got {next:?}"
            );
        }
        other => {
            return Err(format!(
                "recv after the remote dropped: expected Ok(None) or Err(LinkLost), got {other:?}"
            ))
        }
    }
    let reason = p.accepted.close_reason();
    ensure!(
        reason.is_some(),
        "the receive ended but close_reason() is None"
    );
    Ok(())
}

pub(crate) async fn listener_close_frees_address(h: Arc<dyn Harness>) -> CaseResult {
    let mut server = serve(&*h, unlimited(), channel()).await?;
    let addr = server.addr.clone();
    within("listener close", server.listener.close()).await?;
    let after = within("accept after close", server.listener.accept()).await?;
    expect_err!(after, Error::ListenerClosed, "accept after close");
    let listener = within("listen again", server.transport.listen(&addr))
        .await?
        .ctx("listen again on the address just closed")?;
    ensure!(
        listener.local_addr() == &addr,
        "listening again on {addr} bound {} instead",
        listener.local_addr()
    );
    server.listener = listener;
    still_serves(&*h, &mut server).await
}

pub(crate) async fn dial_unserved_address(h: Arc<dyn Harness>) -> CaseResult {
    let transport = client(&*h, unlimited(), channel());
    let candidates = [
        TransportAddress::Memory(1),
        TransportAddress::Tcp(SocketAddr::from((Ipv4Addr::LOCALHOST, 9))),
        TransportAddress::Udp(SocketAddr::from((Ipv4Addr::LOCALHOST, 9))),
    ];
    let addr = candidates
        .into_iter()
        .find(|a| !transport.supports(a))
        .ok_or("the transport claims to support tcp, udp and memory addresses alike")?;
    let result = within("dial", transport.dial(&addr, None)).await?;
    let err = expect_err!(result, Error::Unsupported(_), format!("dial {addr}"));
    if let Error::Unsupported(reported) = &err {
        ensure!(
            reported == &addr,
            "Unsupported names {reported}, not {addr}"
        );
    }
    ensure!(
        err.is_unsupported(),
        "is_unsupported() is false for {err:?}"
    );
    let result = within("listen", transport.listen(&addr)).await?;
    expect_err!(result, Error::Unsupported(_), format!("listen on {addr}"));
    Ok(())
}
