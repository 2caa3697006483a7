//! `bitcraps-node listen`: one accept loop per address, one task per connection, until Ctrl-C
//! (or SIGTERM), then every listener closes and every connection closes cleanly.

use anyhow::{Context, Result};
use bitcraps_transport_core::{
    Connection, ConnectionLimits, Error, Inbound, Listener, SharedLimiter,
};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::backends::Backends;
use crate::output::{Event, Output};
use crate::{channel_config, load_key, ListenArgs};

/// Runs `listen` until a shutdown signal.
pub(crate) async fn run(args: ListenArgs, out: Output) -> Result<()> {
    let keypair = load_key(args.key.as_deref())?;
    let limits = ConnectionLimits {
        max_total_connections: args.max_connections,
        max_new_connections_per_minute: args.max_new_per_minute,
        ..ConnectionLimits::default()
    };
    let backends = Backends::new(
        keypair,
        channel_config(args.handshake_timeout_ms),
        SharedLimiter::new(limits),
    );
    let peer_id = backends.peer_id();

    let signals = Signals::install()?;
    // Bind everything first: a bad address fails the command before anything is announced.
    let mut listeners = Vec::with_capacity(args.addrs.len());
    for addr in &args.addrs {
        let transport = backends.for_address(addr)?;
        let listener = transport
            .listen(addr)
            .await
            .with_context(|| format!("listen on {addr}"))?;
        listeners.push(listener);
    }
    for listener in &listeners {
        out.emit(&Event::Listening {
            address: listener.local_addr().to_string(),
            peer_id: peer_id.to_string(),
        });
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut loops = JoinSet::new();
    for listener in listeners {
        loops.spawn(accept_loop(listener, out, args.echo, stop_rx.clone()));
    }
    let reason = signals.wait().await?;
    tracing::info!(reason, "shutting down");
    out.emit(&Event::ShuttingDown {
        reason: reason.to_string(),
    });
    let _ = stop_tx.send(true);
    while loops.join_next().await.is_some() {}
    tracing::debug!(snapshot = ?backends.limiter().snapshot(), "limiter at exit");
    Ok(())
}

/// The shutdown signals, installed before anything is announced so that a signal sent as soon
/// as `listening` is printed is never missed (nor fatal).
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt()).context("install SIGINT handler")?,
                terminate: signal(SignalKind::terminate()).context("install SIGTERM handler")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Waits for Ctrl-C (or SIGTERM on Unix) and says which.
    async fn wait(mut self) -> Result<&'static str> {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => Ok("interrupt"),
                _ = self.terminate.recv() => Ok("terminate"),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await.context("wait for Ctrl-C")?;
            Ok("interrupt")
        }
    }
}

/// Accepts on one listener until told to stop; then closes it, lets every connection close,
/// and reports the listener's counters.
async fn accept_loop(
    mut listener: Box<dyn Listener>,
    out: Output,
    echo: bool,
    stop: watch::Receiver<bool>,
) {
    let mut stopped = stop.clone();
    // Connections are bounded by the limiter's total; finished tasks are reaped as we go.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped.wait_for(|s| *s) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            inbound = listener.accept() => match inbound {
                Ok(Inbound::Connection(conn)) => {
                    connections.spawn(serve(conn, out, echo, stop.clone()));
                }
                Ok(Inbound::Refused { remote, error }) => {
                    out.emit(&Event::error(None, Some(&remote), &error));
                }
                Ok(other) => tracing::debug!(?other, "unknown inbound event ignored"),
                Err(error) => {
                    out.emit(&Event::error(None, Some(listener.local_addr()), &error));
                    break;
                }
            }
        }
    }
    listener.close().await;
    while connections.join_next().await.is_some() {}
    out.emit(&Event::listener_stats(
        listener.local_addr(),
        listener.stats(),
    ));
}

/// Serves one connection: reports every message (echoing it with `--echo`) until it ends or
/// the node stops, then reports why it ended.
async fn serve(conn: Connection, out: Output, echo: bool, mut stop: watch::Receiver<bool>) {
    let peer = conn.remote_peer();
    let remote = conn.remote_addr().clone();
    out.emit(&Event::connected(peer, &remote));
    let (sender, mut receiver) = conn.split();
    let stopping = loop {
        let received = tokio::select! {
            _ = stop.wait_for(|s| *s) => break true,
            r = receiver.recv() => r,
        };
        match received {
            Ok(Some(message)) => {
                out.emit(&Event::message(peer, &message));
                if echo {
                    // Waits while the remote is slow to read: backpressure, not buffering.
                    tokio::select! {
                        _ = stop.wait_for(|s| *s) => break true,
                        sent = sender.send(message) => match sent {
                            // The remote closed: the receive side reports how.
                            Ok(()) | Err(Error::Closed(_)) => {}
                            Err(error) => out.emit(&Event::error(Some(peer), Some(&remote), &error)),
                        },
                    }
                }
            }
            Ok(None) => break false,
            Err(error) => {
                out.emit(&Event::error(Some(peer), Some(&remote), &error));
                break false;
            }
        }
    };
    if stopping {
        if let Err(error) = sender.close("listener shutting down").await {
            out.emit(&Event::error(Some(peer), Some(&remote), &error));
        }
    }
    let reason = sender
        .close_reason()
        .map_or_else(|| "ended".to_string(), |r| r.to_string());
    out.emit(&Event::Disconnected {
        peer_id: peer.to_string(),
        reason,
    });
}
