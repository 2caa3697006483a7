//! `bitcraps-node send`: connect to a peer over one or more routes (its addresses, most
//! preferred first; the coordinator fails over between them), each dial checking the
//! expected identity; send one message or N numbered ones (optionally paced); then shut down
//! gracefully: exit 0 only once every message was acknowledged by the peer's application and
//! every connection closed cleanly. Otherwise it exits non-zero and says how many messages
//! were not delivered and why; any failure is reported with its typed error. With
//! `--discover` the peer and its routes are not typed: the first node heard over mDNS (or the
//! one `--peer` names) is taken, on its announced routes, and its announced id is proven by
//! the handshake.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bitcraps_coordinator::{CoordinatorConfig, CoordinatorError, PeerSender, Priority};
use bitcraps_transport_core::{ConnectionLimits, PeerId, SharedLimiter};
use bytes::{BufMut, Bytes, BytesMut};
use tokio::time::MissedTickBehavior;

use crate::backends::Backends;
use crate::node::{Node, Pump};
use crate::output::{Event, Output};
use crate::{channel_config, load_key, Reported, SendArgs};

/// Payload bytes allocated at once for `--count` messages; messages are sliced out of it.
const CHUNK_BYTES: usize = 256 * 1024;
/// How long `--discover` looks for a node unless `--wait-ms` says otherwise.
const DISCOVER_WAIT_MS: u64 = 10_000;
/// The byte the `--count` payloads are padded with after their index.
const PAD: u8 = b'.';

/// Runs `send`.
pub(crate) async fn run(args: SendArgs, out: Output) -> Result<()> {
    // The peer and its routes, unless they are to be discovered.
    args.discovery.check()?;
    if args.wait_ms.is_some() && !args.discovery.discover {
        anyhow::bail!("--wait-ms needs --discover");
    }
    let known = if args.discovery.discover {
        None
    } else {
        Some(args.target()?)
    };
    let keypair = load_key(args.key.as_deref())?;
    let timeout = Duration::from_millis(args.timeout_ms.max(1));
    let mut backends = Backends::new(
        keypair,
        channel_config(args.timeout_ms),
        SharedLimiter::new(ConnectionLimits::default()),
        &args.tls,
    )?;
    let given = known
        .as_ref()
        .map_or(&[][..], |(_, addrs)| addrs.as_slice());
    let mesh = args.mesh.start(&mut backends, given)?;
    let mut config = CoordinatorConfig::default();
    config.dial_timeout = timeout;
    let node = match &known {
        Some((_, addrs)) => Node::build(&backends, addrs, config)?,
        // Whatever routes are announced: every backend.
        None => Node::build_all(&backends, config)?,
    };
    let coordinator = node.coordinator.clone();
    let events = coordinator.events().context("the event stream")?;
    if let Some(mesh) = &mesh {
        args.mesh.link(mesh, out).await?;
    }
    let pump = Pump::start(&node, events, out, false);
    let tally = pump.tally.clone();
    let (peer, addrs) = match known {
        Some(target) => target,
        None => {
            let wait = Duration::from_millis(args.wait_ms.unwrap_or(DISCOVER_WAIT_MS));
            match args.discovery.find(&coordinator, args.peer, wait).await {
                Ok(found) => found,
                Err(e) => {
                    coordinator.shutdown(Duration::ZERO).await;
                    pump.stop_now().await;
                    return Err(e);
                }
            }
        }
    };

    let connected = coordinator.connect_to_peer(peer, addrs).await;
    let sender = match connected.and_then(|()| coordinator.peer_sender(peer)) {
        Ok(sender) => sender,
        Err(error) => {
            coordinator.shutdown(Duration::ZERO).await;
            pump.stop_now().await;
            // Every failed dial was already reported with its typed error.
            let reported = matches!(error, CoordinatorError::AllRoutesFailed { .. })
                && tally.dial_failures.load(Ordering::Relaxed) > 0;
            return Err(if reported {
                anyhow::Error::new(Reported)
            } else {
                fail(out, Some(peer), &error)
            });
        }
    };

    let started = Instant::now();
    let requested = args.count.unwrap_or(1);
    let (messages, bytes, failed) = match (&args.message, args.count) {
        (Some(text), _) => {
            let payload = Bytes::from(text.clone().into_bytes());
            let len = payload.len() as u64;
            match sender.send(payload, Priority::Interactive).await {
                Ok(_) => (1, len, None),
                Err(e) => (0, 0, Some(e)),
            }
        }
        (None, Some(count)) => send_numbered(&sender, count, args.size, args.interval).await,
        (None, None) => (0, 0, None), // clap requires one of the two
    };
    if let Some(error) = failed {
        // The session ended while sending: report the error, then what became of the
        // messages already accepted (each reported undelivered, or delivered).
        report_event(out, &Event::coordinator_error(Some(peer), None, &error));
        coordinator.shutdown(Duration::ZERO).await;
        pump.finish(timeout).await;
        let undelivered = tally.undelivered.load(Ordering::Relaxed);
        let text = format!(
            "{undelivered} of {messages} accepted messages were not delivered and {} were \
             never sent: {}",
            requested.saturating_sub(messages),
            last_reason(&tally).unwrap_or_else(|| error.to_string())
        );
        return Err(fail_other(out, peer, "Undelivered", text));
    }
    // Graceful: waits until the peer's application has everything, then ends the session
    // with a goodbye; whatever is unfinished then is reported undelivered.
    let report = coordinator.shutdown(timeout).await;
    let elapsed = started.elapsed();
    pump.finish(timeout).await;
    let undelivered = tally.undelivered.load(Ordering::Relaxed);
    let undelivered = undelivered.max(report.unfinished as u64);
    if undelivered > 0 {
        let reason =
            last_reason(&tally).unwrap_or_else(|| format!("not acknowledged within {timeout:?}"));
        let text = format!("{undelivered} of {messages} messages were not delivered: {reason}");
        return Err(fail_other(out, peer, "Undelivered", text));
    }
    if !report.unclean.is_empty() {
        let list: Vec<String> = report
            .unclean
            .iter()
            .map(|(addr, e)| format!("{addr}: {e}"))
            .collect();
        let text = format!("connections did not close cleanly: {}", list.join("; "));
        return Err(fail_other(out, peer, "UncleanClose", text));
    }
    out.emit(&Event::summary(peer, messages, bytes, elapsed));
    Ok(())
}

/// The reason of the last `undelivered` event, if any.
fn last_reason(tally: &crate::node::Tally) -> Option<String> {
    tally
        .last_reason
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

/// Reports a coordinator failure (a JSON `error` event, or a line on stderr) and returns the
/// marker that makes the process exit non-zero without reporting it twice.
fn fail(out: Output, peer: Option<PeerId>, error: &CoordinatorError) -> anyhow::Error {
    let event = Event::coordinator_error(peer, None, error);
    report_event(out, &event);
    anyhow::Error::new(Reported)
}

/// Reports a failure that is not an error value of the coordinator.
fn fail_other(out: Output, peer: PeerId, kind: &'static str, text: String) -> anyhow::Error {
    let event = Event::Error {
        peer_id: Some(peer.to_string()),
        remote: None,
        error: text,
        kind,
        detail: None,
    };
    report_event(out, &event);
    anyhow::Error::new(Reported)
}

fn report_event(out: Output, event: &Event) {
    if out.is_json() {
        out.emit(event);
    } else if let Event::Error { error, kind, .. } = event {
        eprintln!("error: {error} ({kind})");
    }
}

/// Sends `count` messages of `size` bytes, numbered from 0, one every `interval_ms` if given;
/// returns the messages and payload bytes accepted, and the error that stopped it early.
async fn send_numbered(
    sender: &PeerSender,
    count: u64,
    size: usize,
    interval_ms: Option<u64>,
) -> (u64, u64, Option<CoordinatorError>) {
    let mut pace = interval_ms.map(|ms| {
        let mut t = tokio::time::interval(Duration::from_millis(ms.max(1)));
        t.set_missed_tick_behavior(MissedTickBehavior::Delay);
        t
    });
    let mut chunk = BytesMut::new();
    let mut bytes = 0u64;
    for index in 0..count {
        if let Some(pace) = &mut pace {
            pace.tick().await;
        }
        let payload = numbered(&mut chunk, index, size);
        let len = payload.len() as u64;
        if let Err(e) = sender.send(payload, Priority::Bulk).await {
            return (index, bytes, Some(e));
        }
        bytes += len;
    }
    (count, bytes, None)
}

/// Message `index` of `size` bytes: the index in decimal, a space, then padding (cut to `size`
/// if the index does not fit). Sliced out of `chunk`, which is refilled a large block at a
/// time, so there is no allocation per message.
fn numbered(chunk: &mut BytesMut, index: u64, size: usize) -> Bytes {
    if chunk.capacity() < size {
        *chunk = BytesMut::with_capacity(size.max(CHUNK_BYTES));
    }
    let mut prefix = [0u8; 24];
    let mut cursor = std::io::Cursor::new(&mut prefix[..]);
    // 20 digits and a space always fit in 24 bytes.
    let _ = write!(cursor, "{index} ");
    let written = usize::try_from(cursor.position()).unwrap_or(0).min(size);
    chunk.put_slice(&prefix[..written]);
    chunk.put_bytes(PAD, size - written);
    chunk.split().freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_payloads_begin_with_their_index_and_have_the_size() {
        let mut chunk = BytesMut::new();
        let a = numbered(&mut chunk, 0, 10);
        let b = numbered(&mut chunk, 17, 10);
        assert_eq!(&a[..], b"0 ........");
        assert_eq!(&b[..], b"17 .......");
        assert_eq!(&numbered(&mut chunk, 12345, 3)[..], b"123");
        assert!(numbered(&mut chunk, 1, 0).is_empty());
        let big = numbered(&mut chunk, 9, CHUNK_BYTES * 2);
        assert_eq!(big.len(), CHUNK_BYTES * 2);
        assert!(big.starts_with(b"9 ."));
    }

    #[test]
    fn consecutive_payloads_share_one_allocation() {
        let mut chunk = BytesMut::new();
        let a = numbered(&mut chunk, 0, 100);
        let b = numbered(&mut chunk, 1, 100);
        // b sits right after a in the same block.
        assert_eq!(a.as_ptr().wrapping_add(100), b.as_ptr());
    }
}
