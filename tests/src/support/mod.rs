//! Helpers shared by the cases: assertion macros that name the typed variant they expected,
//! hang guards, listener/dialer setup ([`serve`], [`pair`]); raw byte connections live in
//! [`raw`], message payloads in [`data`].

mod data;
mod raw;

pub(crate) use data::*;
pub(crate) use raw::*;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bitcraps_transport_core::{
    Bytes, ChannelConfig, Connection, ConnectionLimits, Error, Inbound, Keypair, Listener, PeerId,
    SharedLimiter, Transport, TransportAddress,
};
use futures::FutureExt;

use crate::Harness;

/// What a case returns: `Err` holds what went wrong, for the test report.
pub(crate) type CaseResult<T = ()> = Result<T, String>;

/// Fails the case with a message unless the condition holds.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

/// Unwraps `Err(pattern)`, failing the case (naming the expected variant and what came instead)
/// on `Ok` or on any other error. Evaluates to the matched error.
macro_rules! expect_err {
    ($res:expr, $pat:pat $(if $guard:expr)?, $what:expr) => {
        match $res {
            Err(e) => match e {
                $pat $(if $guard)? => e,
                #[allow(unreachable_patterns)]
                other => {
                    return Err(format!(
                        "{}: expected Err({}), got Err({:?})",
                        $what,
                        stringify!($pat),
                        other
                    ))
                }
            },
            Ok(_) => {
                return Err(format!(
                    "{}: expected Err({}), got Ok",
                    $what,
                    stringify!($pat)
                ))
            }
        }
    };
}

/// Guards each step against hangs only: a step that takes this long has failed.
pub(crate) const GUARD: Duration = Duration::from_secs(20);

/// Channel settings for most cases: default, with 256 KiB messages (fast `size_max`).
pub(crate) fn channel() -> ChannelConfig {
    ChannelConfig {
        max_message_size: 256 * 1024,
        ..ChannelConfig::default()
    }
}

/// Limits with everything off; cases set the one they test.
pub(crate) fn unlimited() -> ConnectionLimits {
    ConnectionLimits::unlimited()
}

/// Adds context to any error with a `Debug` form.
pub(crate) trait Context<T> {
    /// `Err(e)` becomes `"<what>: <e:?>"`.
    fn ctx(self, what: &str) -> CaseResult<T>;
}

impl<T, E: std::fmt::Debug> Context<T> for Result<T, E> {
    fn ctx(self, what: &str) -> CaseResult<T> {
        self.map_err(|e| format!("{what}: {e:?}"))
    }
}

/// Awaits `f`, failing with `what` if it takes longer than [`GUARD`].
pub(crate) async fn within<F: Future>(what: &str, f: F) -> CaseResult<F::Output> {
    tokio::time::timeout(GUARD, f)
        .await
        .map_err(|_| format!("{what}: no result within {GUARD:?} (hang)"))
}

/// A listening transport.
pub(crate) struct Server {
    /// The listener's transport.
    pub(crate) transport: Arc<dyn Transport>,
    /// The listener.
    pub(crate) listener: Box<dyn Listener>,
    /// The concrete address it is bound to.
    pub(crate) addr: TransportAddress,
}

impl Server {
    /// The listener's identity.
    pub(crate) fn peer(&self) -> PeerId {
        self.transport.local_peer_id()
    }

    /// The next inbound event.
    pub(crate) async fn next_event(&mut self) -> CaseResult<Inbound> {
        within("listener accept", self.listener.accept())
            .await?
            .ctx("listener accept")
    }

    /// The next event, which must be a refusal: its error.
    pub(crate) async fn next_refusal(&mut self) -> CaseResult<Error> {
        match self.next_event().await? {
            Inbound::Refused { error, .. } => Ok(error),
            Inbound::Connection(c) => Err(format!(
                "expected the listener to refuse, but it handed out a connection from {}",
                c.remote_peer()
            )),
            other => Err(format!("unexpected inbound event {other:?}")),
        }
    }
}

/// A transport listening on the harness's listen address, with these limits and settings.
pub(crate) async fn serve(
    h: &dyn Harness,
    limits: ConnectionLimits,
    channel: ChannelConfig,
) -> CaseResult<Server> {
    let transport = h.transport(Keypair::generate(), channel, SharedLimiter::new(limits));
    let listener = within("listen", transport.listen(&h.listen_addr()))
        .await?
        .ctx("listen")?;
    let addr = listener.local_addr().clone();
    Ok(Server {
        transport,
        listener,
        addr,
    })
}

/// A transport for dialing, with its own identity and these limits and settings.
pub(crate) fn client(
    h: &dyn Harness,
    limits: ConnectionLimits,
    channel: ChannelConfig,
) -> Arc<dyn Transport> {
    h.transport(Keypair::generate(), channel, SharedLimiter::new(limits))
}

/// Dials `server` from `dialer` (expecting the server's identity) and accepts it: both ends.
pub(crate) async fn connect(
    dialer: &dyn Transport,
    server: &mut Server,
) -> CaseResult<(Connection, Connection)> {
    let expect = Some(server.peer());
    // Whichever side fails first ends the wait (a failed dial must not leave us waiting for
    // an accept that cannot come).
    let dial = async { dialer.dial(&server.addr, expect).await.ctx("dial") };
    let accept = async { server.listener.accept_connection().await.ctx("accept") };
    within("dial + accept", async { tokio::try_join!(dial, accept) }).await?
}

/// A connected pair: the dialer's transport, the listening server, and both connections.
pub(crate) struct Pair {
    /// The dialer's transport (unlimited, same channel settings).
    pub(crate) dialer: Arc<dyn Transport>,
    /// The listener side (kept so the listener lives as long as the pair).
    pub(crate) _server: Server,
    /// The dialer's connection.
    pub(crate) dialed: Connection,
    /// The listener's connection.
    pub(crate) accepted: Connection,
}

/// Listens with `listener_limits` and `channel`, dials from a fresh unlimited transport with the
/// same `channel`, and returns everything.
pub(crate) async fn pair(
    h: &dyn Harness,
    listener_limits: ConnectionLimits,
    channel: ChannelConfig,
) -> CaseResult<Pair> {
    let mut server = serve(h, listener_limits, channel.clone()).await?;
    let dialer = client(h, unlimited(), channel);
    let (dialed, accepted) = connect(&*dialer, &mut server).await?;
    Ok(Pair {
        dialer,
        _server: server,
        dialed,
        accepted,
    })
}

/// Sends `message` on `from` and checks that `to` receives exactly it.
pub(crate) async fn exchange(from: &Connection, to: &mut Connection, message: Bytes) -> CaseResult {
    within("send", from.send(message.clone()))
        .await?
        .ctx("send")?;
    let got = within("recv", to.recv()).await?.ctx("recv")?;
    match got {
        Some(m) if m == message => Ok(()),
        Some(m) => Err(format!(
            "received a different message: {} bytes instead of {} (first differing byte at {:?})",
            m.len(),
            message.len(),
            m.iter().zip(message.iter()).position(|(a, b)| a != b)
        )),
        None => Err("the connection ended instead of delivering the message".into()),
    }
}

/// Dials `server` from a fresh transport and checks a message gets through: the listener
/// still serves.
pub(crate) async fn still_serves(h: &dyn Harness, server: &mut Server) -> CaseResult {
    let dialer = client(h, unlimited(), channel());
    let (dialed, mut accepted) = match connect(&*dialer, server).await {
        Ok(pair) => pair,
        Err(e) => {
            // Say why, if the listener reported it.
            let mut refusals = Vec::new();
            while let Some(Ok(event)) = server.listener.accept().now_or_never() {
                if let Inbound::Refused { error, .. } = event {
                    refusals.push(error);
                }
            }
            let last = &refusals[refusals.len().saturating_sub(3)..];
            return Err(format!(
                "the listener no longer serves a normal dial: {e}; its last refusals: {last:?}"
            ));
        }
    };
    exchange(&dialed, &mut accepted, Bytes::from_static(b"still serving")).await
}
