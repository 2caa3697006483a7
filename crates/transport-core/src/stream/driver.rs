//! Drives one secured stream connection: a writer that seals what is queued into as few records
//! as it can (BATCH records for runs of small messages) and writes them with one `write_all`,
//! and a reader that decodes records into messages where they lie in its read buffer
//! ([`RecordDecoder`]), delivering a batch's messages as one queue item. Both run concurrently
//! inside one task; neither takes a lock. Both keep their large buffers while traffic flows and
//! give them back after a quiet period ([`super::idle`]).

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::idle::IdleRelease;
use super::read_buffers::ReadBuffers;
use crate::connection::{ConnectionIo, ConnectionState, IncomingSender, SendItem};
use crate::framing::ReadFrameError;
use crate::secure::decoder::{Decoded, RecordDecoder};
use crate::secure::record::{clip_reason, RecordOpener, RecordSealer, KIND_CLOSE};
use crate::Error;

/// Messages taken off the send queue per batch.
const BATCH: usize = 256;
/// Batch vectors larger than this (in messages) are released when the queue is empty.
const KEEP_BATCH: usize = 16;
/// Payload bytes sealed into the buffer before it is written (a large burst goes out in pieces
/// of about this size, so the write buffer stays bounded).
const WRITE_TARGET: usize = 256 * 1024;
/// A write buffer that grew past this is released once the connection has sent nothing for
/// [`super::idle::RELEASE_AFTER`], rather than kept while idle.
const KEEP_BUFFER: usize = 16 * 1024;

/// Spawns the task that drives a secured connection; `guard` (e.g. a limiter slot) is held
/// until the connection has fully ended.
pub(crate) fn spawn<R, W, G>(
    reader: R,
    writer: W,
    leftover: BytesMut,
    sealer: RecordSealer,
    opener: RecordOpener,
    io: ConnectionIo,
    guard: G,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
    G: Send + 'static,
{
    let ConnectionIo {
        send_queue,
        incoming,
        state,
    } = io;
    let max = state.max_message_size();
    tokio::spawn(async move {
        let read = read_loop(reader, leftover, opener, incoming, state.clone(), max);
        let write = write_loop(writer, send_queue, sealer, state.clone());
        tokio::join!(read, write);
        // Release the limiter slot before waking `close()`/`closed()` waiters, so a caller that
        // re-dials right after a close finds the slot free.
        drop(guard);
        state.finish();
    });
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut reader: R,
    leftover: BytesMut,
    opener: RecordOpener,
    incoming: IncomingSender,
    state: ConnectionState,
    max_message: usize,
) {
    let mut records = RecordDecoder::new(opener, max_message);
    let mut buffers = ReadBuffers::new(leftover, state.recv_budget());
    let mut idle = IdleRelease::default();
    let failure: Option<Error> = loop {
        let decoded = match records.decode(&mut buffers.buf) {
            Ok(Some(decoded)) => decoded,
            Ok(None) => {
                let holding = idle.arm(buffers.holds_spares());
                let read = tokio::select! {
                    biased;
                    _ = state.wait_aborted() => break None,
                    read = buffers.read(&mut reader, records.needed()) => read,
                    () = idle.expired(), if holding => {
                        if idle.fired() {
                            buffers.release_spares();
                        }
                        continue;
                    }
                };
                idle.activity();
                match read {
                    Ok(()) => continue,
                    Err(ReadFrameError::Eof { .. }) if state.is_local_closing() => break None,
                    Err(ReadFrameError::Eof { mid_frame }) => {
                        break Some(Error::LinkLost(if mid_frame {
                            "the link ended in the middle of a frame".into()
                        } else {
                            "the remote ended the link without a close".into()
                        }))
                    }
                    Err(ReadFrameError::Protocol(e)) => break Some(e.into()),
                    Err(ReadFrameError::Io(_)) if state.is_local_closing() => break None,
                    Err(ReadFrameError::Io(e)) => break Some(Error::io("read", e)),
                }
            }
            Err(e) => break Some(e.into()),
        };
        match decoded {
            Decoded::Message(message) => {
                if !state.is_local_closing() {
                    // A dropped receiver discards; keep reading so the close is seen.
                    let _ = incoming.deliver(message).await;
                }
            }
            Decoded::Batch(entries) => {
                if !state.is_local_closing() {
                    let _ = incoming.deliver_many(entries.collect()).await;
                }
            }
            Decoded::Close(reason) => {
                state.remote_closed(String::from_utf8_lossy(&reason).into_owned());
                break None;
            }
        }
    };
    // The failure is recorded before the queue closes, so a receiver that sees the end also
    // sees why (a failed link is never reported as a clean end of stream).
    state.end_reading(failure);
    drop(incoming);
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut send_queue: tokio::sync::mpsc::Receiver<SendItem>,
    mut sealer: RecordSealer,
    state: ConnectionState,
) {
    // Grown on demand by the first bursts, released when idle (memory per idle connection).
    let mut batch = Vec::new();
    let mut messages: Vec<Bytes> = Vec::new();
    let mut buf = BytesMut::new();
    let mut idle = IdleRelease::default();
    let result: Result<(), Error> = async {
        loop {
            let mut close: Option<String> = None;
            let holding =
                idle.arm(buf.capacity() > KEEP_BUFFER || messages.capacity() > KEEP_BATCH);
            tokio::select! {
                biased;
                aborted = state.wait_aborted_or_remote_closed() => {
                    if aborted {
                        return Ok(());
                    }
                    close = Some("closed by the remote".into());
                }
                () = idle.expired(), if holding => {
                    if idle.fired() {
                        // Idle with large buffers: give them back, wait again without a timer.
                        buf = BytesMut::new();
                        (batch, messages) = (Vec::new(), Vec::new());
                    }
                    continue;
                }
                n = send_queue.recv_many(&mut batch, BATCH) => {
                    idle.activity();
                    if n == 0 {
                        close = Some("connection dropped".into());
                    }
                    for item in batch.drain(..) {
                        match item {
                            SendItem::Message(m) if close.is_none() => messages.push(m),
                            SendItem::Message(m) => {
                                // Senders cannot queue behind a close (see `ConnectionSender`).
                                tracing::error!(len = m.len(), "message queued after a close");
                            }
                            SendItem::Close(reason) => {
                                close.get_or_insert(reason);
                            }
                        }
                    }
                }
            }
            // Every message queued before the close goes first, in order, in writes of about
            // WRITE_TARGET bytes (so the buffer stays bounded and reusable).
            let mut rest = &messages[..];
            while !rest.is_empty() {
                let (n, bytes) = write_group(rest);
                sealer.seal_messages(&rest[..n], &mut buf)?;
                state.record_sent_many(n as u64, bytes);
                rest = &rest[n..];
                if !rest.is_empty() && !write_out(&mut writer, &mut buf, &state).await? {
                    return Ok(());
                }
            }
            messages.clear();
            let acknowledging = state.is_remote_closed();
            if let Some(reason) = &close {
                if !acknowledging {
                    state.set_local_closing(reason);
                }
                sealer.seal(KIND_CLOSE, clip_reason(reason).as_bytes(), &mut buf)?;
            }
            if !write_out(&mut writer, &mut buf, &state).await? {
                return Ok(());
            }
            if close.is_some() {
                let _ = writer.shutdown().await;
                if !acknowledging {
                    // Wait for the remote's close (read by the reader), bounded. Boxed: the
                    // timer is needed once per connection, not in every idle task's state.
                    let wait = Box::pin(tokio::time::timeout(
                        state.close_timeout(),
                        state.wait_reader_done(),
                    ));
                    if wait.await.is_err() {
                        state.fail(Error::Timeout {
                            operation: "close acknowledgement",
                            after: state.close_timeout(),
                        });
                        state.abort();
                    }
                }
                return Ok(());
            }
        }
    }
    .await;
    if let Err(error) = result {
        if !state.is_local_closing() && !state.is_remote_closed() {
            tracing::debug!(peer = %state.info().remote_peer.short(), %error, "write failed");
            state.fail(error);
        }
        state.abort();
    }
}

/// How many messages from the front of `messages` make one write (at least one), and their
/// payload bytes.
fn write_group(messages: &[Bytes]) -> (usize, usize) {
    let mut bytes = 0;
    for (i, m) in messages.iter().enumerate() {
        if i > 0 && bytes + m.len() > WRITE_TARGET {
            return (i, bytes);
        }
        bytes += m.len();
    }
    (messages.len(), bytes)
}

/// Writes and flushes `buf`, then clears it. `Ok(false)` if the connection was aborted first.
async fn write_out<W: AsyncWrite + Unpin>(
    writer: &mut W,
    buf: &mut BytesMut,
    state: &ConnectionState,
) -> Result<bool, Error> {
    tokio::select! {
        biased;
        _ = state.wait_aborted() => return Ok(false),
        // Flush too: some streams (BLE, WebSocket adapters) buffer until flushed.
        written = async {
            writer.write_all(buf).await?;
            writer.flush().await
        } => written.map_err(|e| Error::io("write", e))?,
    }
    buf.clear();
    Ok(true)
}
