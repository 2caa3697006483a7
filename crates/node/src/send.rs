//! `bitcraps-node send`: dial a peer that must prove the expected identity, send one message or
//! N messages of a given size, close (flush, then wait for the remote's acknowledgement) and
//! report the throughput. Any failure is reported with its typed error and a non-zero exit.

use std::io::Write;
use std::time::Instant;

use anyhow::Result;
use bitcraps_transport_core::{
    ConnectionLimits, ConnectionReceiver, ConnectionSender, Error, PeerId, SharedLimiter,
    TransportAddress,
};
use bytes::{BufMut, Bytes, BytesMut};

use crate::backends::Backends;
use crate::output::{error_kind, Event, Output};
use crate::{channel_config, load_key, Reported, SendArgs};

/// Payload bytes allocated at once for `--count` messages; messages are sliced out of it.
const CHUNK_BYTES: usize = 256 * 1024;
/// The byte the `--count` payloads are padded with after their index.
const PAD: u8 = b'.';

/// Runs `send`.
pub(crate) async fn run(args: SendArgs, out: Output) -> Result<()> {
    let keypair = load_key(args.key.as_deref())?;
    let backends = Backends::new(
        keypair,
        channel_config(args.timeout_ms),
        SharedLimiter::new(ConnectionLimits::default()),
    );
    let transport = backends.for_address(&args.addr)?;
    let conn = match transport.dial(&args.addr, Some(args.peer)).await {
        Ok(conn) => conn,
        Err(error) => return Err(fail(out, None, &args.addr, "dial", &error)),
    };
    let peer = conn.remote_peer();
    let remote = conn.remote_addr().clone();
    out.emit(&Event::connected(peer, &remote));
    let (sender, receiver) = conn.split();
    // Whatever the remote sends back (an echo) is reported, and read so it never stalls us.
    let reader = tokio::spawn(read_replies(receiver, out));

    let started = Instant::now();
    let sent = match (&args.message, args.count) {
        (Some(text), _) => sender.send(Bytes::from(text.clone().into_bytes())).await,
        (None, Some(count)) => send_numbered(&sender, count, args.size).await,
        (None, None) => Ok(()), // clap requires one of the two
    };
    if let Err(error) = sent {
        sender.close("send failed").await.ok();
        return Err(fail(out, Some(peer), &remote, "send", &error));
    }
    if let Err(error) = sender.close("done").await {
        return Err(fail(out, Some(peer), &remote, "close", &error));
    }
    let elapsed = started.elapsed();
    if let Err(e) = reader.await {
        tracing::warn!(error = %e, "reply reader failed");
    }
    let stats = sender.stats();
    out.emit(&Event::Disconnected {
        peer_id: peer.to_string(),
        reason: sender
            .close_reason()
            .map_or_else(|| "closed".to_string(), |r| r.to_string()),
    });
    out.emit(&Event::summary(
        peer,
        stats.messages_sent,
        stats.bytes_sent,
        elapsed,
    ));
    Ok(())
}

/// Reports a failure (a JSON `error` event, or a line on stderr) and returns the marker that
/// makes the process exit non-zero without reporting it twice.
fn fail(
    out: Output,
    peer: Option<PeerId>,
    remote: &TransportAddress,
    what: &str,
    error: &Error,
) -> anyhow::Error {
    if out.is_json() {
        out.emit(&Event::error(peer, Some(remote), error));
    } else {
        let (kind, detail) = error_kind(error);
        let detail = detail.map(|d| format!(": {d}")).unwrap_or_default();
        eprintln!("error: {what} {remote}: {error} ({kind}{detail})");
    }
    anyhow::Error::new(Reported)
}

/// Reports every message the remote sends until the connection ends.
async fn read_replies(mut receiver: ConnectionReceiver, out: Output) {
    let peer = receiver.remote_peer();
    loop {
        match receiver.recv().await {
            Ok(Some(message)) => out.emit(&Event::message(peer, &message)),
            Ok(None) => break,
            Err(error) => {
                tracing::debug!(%error, "receive side ended");
                break;
            }
        }
    }
}

/// Sends `count` messages of `size` bytes, numbered from 0.
async fn send_numbered(sender: &ConnectionSender, count: u64, size: usize) -> Result<(), Error> {
    let mut chunk = BytesMut::new();
    for index in 0..count {
        sender.send(numbered(&mut chunk, index, size)).await?;
    }
    Ok(())
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
