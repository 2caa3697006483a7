//! `bitcraps-node listen`: one coordinator listening on every address given (one node
//! reachable over several transports), printing its events, until Ctrl-C or SIGTERM; then a
//! graceful `shutdown` and the counters. Lines on stdin are control commands (see
//! [`CONTROL_HELP`]).

use std::time::Duration;

use anyhow::{Context, Result};
use bitcraps_coordinator::{CoordinatorConfig, Priority};
use bitcraps_transport_core::{
    ConnectionLimits, PeerId, SharedLimiter, Ticket, TransportAddress, MAX_TICKET_ROUTES,
};
use tokio::sync::mpsc;

use crate::backends::Backends;
use crate::node::{Node, Pump};
use crate::output::{Event, Output};
use crate::{channel_config, load_key, ListenArgs};

/// What the stdin control lines are (also in `--help`).
pub(crate) const CONTROL_HELP: &str = "\
Control input (a test and operations affordance): each line on stdin is a command.
  close ADDR   stop the listener bound to ADDR (as printed by `listening`) and close the
               connections it accepted; their peers fail over to another address.
  send ID TEXT send TEXT to the connected peer ID (64 hex digits) with a receipt: a
               `delivered` event once its application has it (or `undelivered`).
End of input is not a shutdown: the node keeps serving until Ctrl-C or SIGTERM.";

/// How long the shutdown waits for queued messages to be acknowledged.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);
/// How long the shutdown waits for every peer's `disconnected` event.
const DISCONNECT_GUARD: Duration = Duration::from_secs(5);
/// Control lines queued at most (the reader thread waits when they are not handled).
const CONTROL_QUEUE: usize = 16;

/// The coordinator's settings for a listener: `limits`, and a reconnect grace of `grace`
/// (a peer whose last connection ended is kept that long, its dedup state with it, so it can
/// fail over to another address; the coordinator's grace is dial timeout + health interval,
/// so the health interval is at most half the grace).
fn coordinator_config(limits: ConnectionLimits, grace: Duration) -> CoordinatorConfig {
    let mut config = CoordinatorConfig::default();
    config.limits = limits;
    let grace = grace.max(Duration::from_millis(2));
    config.health_interval = config.health_interval.min(grace / 2);
    config.dial_timeout = grace - config.health_interval;
    config
}

/// Runs `listen` until a shutdown signal.
pub(crate) async fn run(args: ListenArgs, out: Output) -> Result<()> {
    let keypair = load_key(args.key.as_deref())?;
    let limits = ConnectionLimits {
        max_total_connections: args.max_connections,
        max_new_connections_per_minute: args.max_new_per_minute,
        ..ConnectionLimits::default()
    };
    let mut backends = Backends::new(
        keypair,
        channel_config(args.handshake_timeout_ms),
        SharedLimiter::new(limits.clone()),
        &args.tls,
    )?;
    let peer_id = backends.peer_id();
    let config = coordinator_config(limits, Duration::from_millis(args.reconnect_grace_ms));
    // A relaying node is also reachable through the mesh, at mesh://<its peer id>.
    let mesh = args.mesh.start(&mut backends, &args.addrs)?;
    let mut addrs = args.addrs.clone();
    if mesh.is_some() {
        addrs.push(TransportAddress::Mesh(peer_id));
    }
    let node = Node::build(&backends, &addrs, config)?;
    let coordinator = node.coordinator.clone();
    let events = coordinator.events().context("the event stream")?;

    let mut signals = Signals::install()?;
    // Bind everything first: a bad address fails the command before anything is announced.
    let mut bound = Vec::with_capacity(addrs.len());
    for addr in &addrs {
        let local = coordinator
            .listen(addr)
            .await
            .with_context(|| format!("listen on {addr}"))?;
        bound.push(local);
    }
    let metrics = match args.metrics {
        Some(addr) => Some(crate::metrics::serve(addr, &coordinator).await?),
        None => None,
    };
    for address in &bound {
        out.emit(&Event::Listening {
            address: address.to_string(),
            peer_id: peer_id.to_string(),
        });
    }
    // One line with the identity and every bound address, for `send --ticket`.
    let routes: Vec<TransportAddress> = bound.iter().take(MAX_TICKET_ROUTES).cloned().collect();
    let ticket = Ticket::new(peer_id, routes);
    if let Ok(ticket) = &ticket {
        out.emit(&Event::Ticket {
            peer_id: peer_id.to_string(),
            ticket: ticket.to_string(),
        });
    }
    if let Some(server) = &metrics {
        out.emit(&Event::Metrics {
            address: server.url(),
        });
    }
    if let Some(mesh) = &mesh {
        args.mesh.link(mesh, out).await?;
    }
    let pump = Pump::start(&node, events, out, args.echo);
    // Discovery starts once the pump prints its events: no `peer_discovered` is missed.
    let discovery = match &ticket {
        Ok(ticket) => args.discovery.start(&coordinator, ticket)?,
        Err(e) if args.discovery.discover => {
            anyhow::bail!("--discover needs a ticket of the bound routes: {e}")
        }
        Err(_) => None,
    };
    let mut control = control_lines();

    let reason = loop {
        tokio::select! {
            reason = signals.wait() => break reason?,
            Some(line) = control.recv() => on_control(&node, out, &line).await,
        }
    };
    tracing::info!(reason, "shutting down");
    out.emit(&Event::ShuttingDown {
        reason: reason.to_string(),
    });
    // The goodbye first, so peers drop this node from their discovery tables at once.
    if let Some(discovery) = discovery {
        discovery.shutdown().await;
    }
    let peers = coordinator.stats().per_peer;
    let report = coordinator.shutdown(SHUTDOWN_DEADLINE).await;
    tracing::debug!(?report, "shutdown");
    pump.finish(DISCONNECT_GUARD).await;
    node.print_stats(out, &peers);
    Ok(())
}

/// Handles one control line.
async fn on_control(node: &Node, out: Output, line: &str) {
    let mut words = line.split_whitespace();
    let control_error = |error: String| Event::Error {
        peer_id: None,
        remote: None,
        error,
        kind: "Control",
        detail: None,
    };
    match (words.next(), words.next(), words.next()) {
        (None, ..) => {}
        (Some("close"), Some(addr), None) => match addr.parse::<TransportAddress>() {
            Ok(addr) => match node.coordinator.close_listener(&addr).await {
                Ok(()) => out.emit(&Event::ListenerClosed {
                    address: addr.to_string(),
                }),
                Err(e) => out.emit(&Event::coordinator_error(None, Some(&addr), &e)),
            },
            Err(e) => out.emit(&control_error(format!("close {addr}: {e}"))),
        },
        (Some("send"), Some(peer), Some(_)) => match peer.parse::<PeerId>() {
            Ok(peer) => {
                send_with_receipt(node, out, peer, send_text(line).to_string()).await;
            }
            Err(e) => out.emit(&control_error(format!("send {peer}: {e}"))),
        },
        _ => out.emit(&control_error(format!(
            "unknown control command {line:?} (expected: close ADDR, or send ID TEXT)"
        ))),
    }
}

/// The text of a `send ID TEXT` line: everything after the peer id, as typed.
fn send_text(line: &str) -> &str {
    let mut rest = line.trim_start();
    for _ in 0..2 {
        rest = rest
            .split_once(char::is_whitespace)
            .map_or("", |(_, tail)| tail.trim_start());
    }
    rest
}

/// Sends `text` to `peer` with a receipt; a task waits for it and prints `delivered` (a
/// message not delivered is reported by the coordinator's `undelivered` event instead).
async fn send_with_receipt(node: &Node, out: Output, peer: PeerId, text: String) {
    let data = bytes::Bytes::from(text.into_bytes());
    let bytes = data.len();
    match node
        .coordinator
        .send_with_receipt(peer, data, Priority::Interactive)
        .await
    {
        Ok(receipt) => {
            tokio::spawn(async move {
                let id = receipt.id().0;
                match receipt.await {
                    Ok(()) => out.emit(&Event::Delivered {
                        peer_id: peer.to_string(),
                        id,
                        bytes,
                    }),
                    Err(reason) => tracing::debug!(%peer, id, %reason, "not delivered"),
                }
            });
        }
        Err(e) => out.emit(&Event::coordinator_error(Some(peer), None, &e)),
    }
}

/// Lines from stdin, read on a plain thread (a blocking read on the runtime's blocking pool
/// would hold up the process's exit); the thread ends at end of input.
fn control_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(CONTROL_QUEUE);
    let spawned = std::thread::Builder::new()
        .name("stdin-control".into())
        .spawn(move || {
            use std::io::BufRead;
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.blocking_send(line).is_err() {
                    break;
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no control input");
    }
    rx
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

    /// Waits for Ctrl-C (or SIGTERM on Unix) and says which. Cancel-safe.
    async fn wait(&mut self) -> Result<&'static str> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_send_text_is_the_rest_of_the_line() {
        assert_eq!(send_text("send abc hello  world "), "hello  world ");
        assert_eq!(send_text("  send\tabc\t x"), "x");
        assert_eq!(send_text("send abc"), "");
    }

    #[test]
    fn the_grace_is_dial_timeout_plus_health_interval() {
        for ms in [2, 1_000, 15_000, 60_000] {
            let grace = Duration::from_millis(ms);
            let c = coordinator_config(ConnectionLimits::default(), grace);
            assert_eq!(c.dial_timeout + c.health_interval, grace);
            assert!(c.health_interval <= grace / 2);
        }
        let default = coordinator_config(ConnectionLimits::default(), Duration::from_secs(15));
        assert_eq!(default.health_interval, Duration::from_secs(5));
    }
}
