//! The cases run through the fault proxy, each judged by what the profile breaks for the
//! backend ([`Expect`]): `handshake` (the dial proves both identities, or fails typed), and
//! `messages` (a burst of numbered messages of varied sizes, each checked byte for byte).

use std::collections::HashSet;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use bitcraps_transport_core::{Bytes, ChannelConfig, Connection, TransportAddress};
use futures::future::BoxFuture;
use tokio::sync::watch;

use super::tcp::TcpProxy;
use super::udp::UdpProxy;
use super::{cut_for, Expect, FaultProfile, PathKind, DATAGRAM_FLOOR_PERCENT};
use crate::cases::Outcome;
use crate::support::*;
use crate::Harness;

/// One backend under one profile.
#[derive(Clone)]
pub struct FaultRun {
    /// The backend's harness.
    pub harness: Arc<dyn Harness>,
    /// How its path is proxied.
    pub kind: PathKind,
    /// The profile.
    pub profile: FaultProfile,
}

impl FaultRun {
    fn expect(&self) -> Expect {
        (self.profile.expect)(self.kind)
    }
}

/// A case run through the proxy.
#[derive(Clone, Copy)]
pub struct FaultCase {
    /// Its name in trial names.
    pub name: &'static str,
    /// Runs it.
    pub run: fn(FaultRun) -> BoxFuture<'static, Outcome>,
}

/// Every fault case, in report order.
pub const FAULT_CASES: &[FaultCase] = &[
    FaultCase {
        name: "handshake",
        run: |r| Box::pin(handshake(r)),
    },
    FaultCase {
        name: "messages",
        run: |r| Box::pin(messages(r)),
    },
];

/// The path kind of a backend in the fault run, by harness name; `None` if it rides on
/// neither TCP nor UDP.
pub fn path_kind(backend: &str) -> Option<PathKind> {
    match backend {
        "tcp" | "websocket" | "wss" => Some(PathKind::Stream),
        "quic" => Some(PathKind::Quic),
        "udp" => Some(PathKind::Datagram),
        _ => None,
    }
}

/// Channel settings under faults: short handshake and close timeouts, so a fault that stalls
/// a peer ends in a typed timeout quickly.
fn fault_channel() -> ChannelConfig {
    ChannelConfig {
        handshake_timeout: Duration::from_secs(2),
        close_timeout: Duration::from_secs(2),
        ..channel()
    }
}

/// A running proxy of either kind (held: dropping it stops the proxy).
enum Proxy {
    Tcp(#[allow(dead_code)] TcpProxy),
    Udp(#[allow(dead_code)] UdpProxy),
}

/// Starts the proxy in front of `addr`; returns it and the address dialers use.
async fn proxy(run: &FaultRun, addr: &TransportAddress) -> CaseResult<(Proxy, TransportAddress)> {
    let faults = run.profile.faults;
    let cut = cut_for(&faults, run.kind);
    let resolve = |host: &str, port: u16| -> CaseResult<SocketAddr> {
        (host, port)
            .to_socket_addrs()
            .ctx("resolve")?
            .next()
            .ok_or_else(|| format!("{host}:{port} does not resolve"))
    };
    Ok(match addr {
        TransportAddress::Tcp(a) => {
            let p = TcpProxy::start(*a, faults, cut).await.ctx("tcp proxy")?;
            let front = TransportAddress::Tcp(p.addr());
            (Proxy::Tcp(p), front)
        }
        TransportAddress::WebSocket(ws) => {
            let p = TcpProxy::start(resolve(&ws.host, ws.port)?, faults, cut)
                .await
                .ctx("tcp proxy")?;
            let mut front = ws.clone();
            front.port = p.addr().port();
            (Proxy::Tcp(p), TransportAddress::WebSocket(front))
        }
        TransportAddress::Quic(a) => {
            let p = UdpProxy::start(*a, faults, cut).await.ctx("udp proxy")?;
            let front = TransportAddress::Quic(p.addr());
            (Proxy::Udp(p), front)
        }
        TransportAddress::Udp(a) => {
            let p = UdpProxy::start(*a, faults, cut).await.ctx("udp proxy")?;
            let front = TransportAddress::Udp(p.addr());
            (Proxy::Udp(p), front)
        }
        other => return Err(format!("no fault proxy for {other}")),
    })
}

/// A listener, the proxy in front of it, and a dialer.
struct Setup {
    server: Server,
    _proxy: Proxy,
    front: TransportAddress,
    dialer: Arc<dyn bitcraps_transport_core::Transport>,
}

async fn setup(run: &FaultRun) -> CaseResult<Setup> {
    let h = &*run.harness;
    let server = serve(h, unlimited(), fault_channel()).await?;
    let (proxy, front) = proxy(run, &server.addr).await?;
    let dialer = client(h, unlimited(), fault_channel());
    Ok(Setup {
        server,
        _proxy: proxy,
        front,
        dialer,
    })
}

/// Dials through the proxy while the listener accepts; the dial's result decides.
async fn dial_and_accept(
    s: &mut Setup,
) -> CaseResult<bitcraps_transport_core::Result<(Connection, Connection)>> {
    let expect = Some(s.server.peer());
    let dial = s.dialer.dial(&s.front, expect);
    let listener = &mut s.server.listener;
    within("dial through the proxy", async {
        let accept = listener.accept_connection();
        tokio::pin!(accept);
        tokio::select! {
            dialed = dial => match dialed {
                Err(e) => Ok(Err(e)),
                Ok(c) => match (&mut accept).await {
                    Ok(a) => Ok(Ok((c, a))),
                    Err(e) => Err(format!("dial succeeded but the listener failed: {e:?}")),
                },
            },
        }
    })
    .await?
}

async fn handshake(run: FaultRun) -> CaseResult {
    let expect = run.expect();
    let mut s = setup(&run).await?;
    let outcome = dial_and_accept(&mut s).await?;
    match (expect, outcome) {
        (Expect::DialFails, Err(e)) => {
            tracing::debug!(error = %e, "dial failed as expected");
            let stats = s.server.listener.stats();
            ensure!(
                stats.accepted == 0,
                "the listener handed out a connection: {stats:?}"
            );
            Ok(())
        }
        (Expect::DialFails, Ok(_)) => Err("the dial succeeded through a cut path".into()),
        (Expect::TypedFailure, Err(e)) => {
            tracing::debug!(error = %e, "dial failed typed");
            Ok(())
        }
        (_, Err(e)) => Err(format!("dial: {e:?}")),
        (_, Ok((dialed, accepted))) => {
            ensure!(
                dialed.remote_peer() == s.server.peer(),
                "the dialer sees {} instead of the listener",
                dialed.remote_peer()
            );
            ensure!(
                accepted.remote_peer() == s.dialer.local_peer_id(),
                "the listener sees {} instead of the dialer",
                accepted.remote_peer()
            );
            Ok(())
        }
    }
}

/// Numbered messages sent in the burst.
const STREAM_MESSAGES: u32 = 120;
const DATAGRAM_MESSAGES: u32 = 300;
/// The largest message of a burst on a reliable backend.
const STREAM_MAX: usize = 16 * 1024;
/// Datagrams the sender may be ahead of the highest one received.
const WINDOW: u32 = 32;
/// Marks the end of a datagram burst (sent until the receiver has seen it).
const END: u32 = u32::MAX;

/// Message `seq`: its number, then bytes derived from it; `max` bounds the size.
fn payload(seq: u32, max: usize) -> Bytes {
    let len = 4 + (seq as usize).wrapping_mul(977) % (max - 4);
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend((4..len).map(|j| (seq as usize * 31 + j) as u8));
    m.into()
}

async fn messages(run: FaultRun) -> CaseResult {
    let expect = run.expect();
    let mut s = setup(&run).await?;
    let (dialed, mut accepted) = match dial_and_accept(&mut s).await? {
        Ok(pair) => pair,
        Err(e) if matches!(expect, Expect::TypedFailure | Expect::DialFails) => {
            tracing::debug!(error = %e, "dial failed typed");
            return Ok(());
        }
        Err(e) => return Err(format!("dial: {e:?}")),
    };
    let datagram = run.kind == PathKind::Datagram;
    let (count, max) = if datagram {
        (DATAGRAM_MESSAGES, dialed.sender().max_message_size())
    } else {
        (STREAM_MESSAGES, STREAM_MAX)
    };
    let (progress_tx, mut progress_rx) = watch::channel(0u32);
    let (done_tx, mut done_rx) = watch::channel(false);
    let sender = dialed.sender();
    let send = tokio::spawn(async move {
        for seq in 0..count {
            if datagram {
                // Paced like a datagram application: at most WINDOW ahead of the receiver.
                let _ = progress_rx
                    .wait_for(|high| seq < high + WINDOW)
                    .await
                    .is_ok();
            }
            if sender.send(payload(seq, max)).await.is_err() {
                return;
            }
        }
        if datagram {
            let mut tick = tokio::time::interval(Duration::from_millis(5));
            for _ in 0..400 {
                let stop = tokio::select! {
                    done = done_rx.wait_for(|d| *d) => done.is_ok(),
                    _ = tick.tick() => false,
                };
                if stop
                    || sender
                        .send(Bytes::copy_from_slice(&END.to_be_bytes()))
                        .await
                        .is_err()
                {
                    return;
                }
            }
        }
    });
    let mut seen = HashSet::new();
    let mut next = 0u32;
    let ended = within("receiving the burst", async {
        loop {
            match accepted.recv().await {
                Ok(Some(m)) => {
                    let Some(seq) = m
                        .get(..4)
                        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                    else {
                        return Err(format!("a message of {} bytes was never sent", m.len()));
                    };
                    if datagram && seq == END {
                        return Ok(None);
                    }
                    if seq >= count || m != payload(seq, max) {
                        return Err(format!(
                            "message {seq} ({} bytes) is not what was sent",
                            m.len()
                        ));
                    }
                    if datagram {
                        if !seen.insert(seq) {
                            return Err(format!("datagram {seq} delivered twice"));
                        }
                        progress_tx.send_if_modified(|high| {
                            let higher = seq > *high;
                            *high = (*high).max(seq);
                            higher
                        });
                    } else {
                        if seq != next {
                            return Err(format!("message {seq} arrived when {next} was due"));
                        }
                        next += 1;
                        if next == count {
                            return Ok(None);
                        }
                    }
                }
                Ok(None) => {
                    // The reason is final once the connection has fully ended.
                    let _ = within("connection end", accepted.sender().closed()).await;
                    let reason = accepted.close_reason();
                    return Ok(Some(format!("ended, close reason {reason:?}")));
                }
                Err(e) => return Ok(Some(format!("{e:?}"))),
            }
        }
    })
    .await??;
    let _ = done_tx.send(true);
    let _ = within("sender", send).await?;
    let received = if datagram { seen.len() } else { next as usize };
    match expect {
        Expect::Deliver => {
            ensure!(ended.is_none(), "after {received} of {count}: {ended:?}");
            within("close", dialed.close("done")).await?.ctx("close")
        }
        Expect::DeliverMost => {
            ensure!(ended.is_none(), "after {received} of {count}: {ended:?}");
            let floor = count as usize * DATAGRAM_FLOOR_PERCENT / 100;
            ensure!(
                received >= floor,
                "{received} of {count} datagrams arrived, expected at least {floor}"
            );
            Ok(())
        }
        Expect::TypedFailure => match ended {
            None => Ok(()),
            Some(how) if how.starts_with("ended") => Err(format!(
                "the receive ended without an error after {received} of {count} messages (silent \
                 loss): {how}"
            )),
            Some(how) => {
                tracing::debug!(%how, received, "failed typed");
                Ok(())
            }
        },
        Expect::DialFails => Err("the dial succeeded through a cut path".into()),
        Expect::NotApplicable(why) => Err(format!("ran a case that does not apply: {why}")),
    }
}
