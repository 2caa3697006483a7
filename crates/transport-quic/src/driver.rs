//! Drives one QUIC connection's message stream: a writer that takes queued messages in
//! batches and hands each batch to quinn as one `write_all_chunks` (small messages coalesced
//! with their length headers into one buffer reserved for the batch, large payload `Bytes`
//! passed uncopied), and a reader (see `reader`) that splits frames off the stream (length
//! checked before allocation) and delivers every frame already buffered in one batch, with
//! backpressure.
//!
//! Graceful close: the closing side flushes, finishes its send stream (FIN) and keeps reading
//! (discarding) until the remote's FIN, which acknowledges that the remote read everything;
//! then it closes the QUIC connection with code 0 and its reason. The remote, on seeing the
//! FIN, finishes its own send stream, then waits for that CONNECTION_CLOSE to learn the reason.
//! The closing side's `close` returns only once quinn has handed the CONNECTION_CLOSE to the
//! socket (bounded: see [`close_flushed`]), so an application may exit right after it.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use quinn::{ReadError, RecvStream, SendStream, WriteError};
use tokio::sync::{mpsc, oneshot};

use bitcraps_transport_core::backend::{ConnectionIo, ConnectionState, IncomingSender, SendItem};
use bitcraps_transport_core::{Error, ProtocolError};

use crate::codes::{clip_reason, ended, Ended, CLOSE_ABORT, CLOSE_NORMAL, CLOSE_PROTOCOL};
use crate::reader::{FrameReader, ReadEnd};

/// Messages taken off the send queue per batch.
const BATCH: usize = 256;
/// Batch vectors larger than this are released when the queue is empty.
const KEEP_BATCH: usize = 16;
/// Messages up to this size are copied next to their length header (one contiguous chunk
/// per run of small messages); larger ones go to quinn as their own `Bytes`, uncopied.
const COPY_LIMIT: usize = 4096;

/// Spawns the task that drives an established connection; `guard` (the limiter slot and any
/// other bookkeeping) is held until the connection has fully ended.
pub(crate) fn spawn<G: Send + 'static>(
    conn: quinn::Connection,
    send: SendStream,
    recv: RecvStream,
    io: ConnectionIo,
    guard: G,
) {
    let ConnectionIo {
        mut send_queue,
        incoming,
        state,
    } = io;
    tokio::spawn(async move {
        let (fin_tx, fin_rx) = oneshot::channel();
        let read = read_loop(recv, &conn, incoming, state.clone(), fin_tx);
        let write = write_loop(send, &conn, &mut send_queue, state.clone(), fin_rx);
        tokio::join!(read, write);
        // A no-op when a loop already closed the connection. (Boxed, as every close wait: the
        // idle task's future holds no timer.)
        Box::pin(close_flushed(&conn, CLOSE_ABORT, b"link ended")).await;
        state.finish();
        // The send queue stays open until the end, so a `close` racing the remote's close
        // waits for the finish instead of seeing a dropped queue.
        drop(send_queue);
        drop(guard);
    });
}

/// How long closing waits for quinn to hand the CONNECTION_CLOSE packet to the socket.
const CLOSE_FLUSH: Duration = Duration::from_millis(250);
/// How often that wait looks.
const CLOSE_FLUSH_POLL: Duration = Duration::from_millis(1);

/// Closes `conn` with `code` and `reason`, then waits (at most [`CLOSE_FLUSH`]) until quinn
/// has built the CONNECTION_CLOSE packet and handed it to the socket. A no-op if the
/// connection is already closed (by us, with the flush done then, or by the remote).
///
/// Why: `quinn::Connection::close` only queues the close; quinn's connection driver, another
/// task, transmits it later. `Connection::close` (ours) returns, and the connection's
/// `closed()` resolves, once this task finishes; an application that exits right then (as
/// `bitcraps-node send` does) dropped the runtime, and with it that driver, before the packet
/// left in about one close in a hundred, so the remote never learned of the close (it saw a
/// lost link after its health checks or close timeout). quinn has no event for "close sent",
/// but its connection statistics count every datagram it built, and its driver builds and
/// sends under one lock: the first datagram counted after `close` is the close packet, already
/// passed to the socket (or held until the socket is writable).
pub(crate) async fn close_flushed(conn: &quinn::Connection, code: quinn::VarInt, reason: &[u8]) {
    if conn.close_reason().is_some() {
        return;
    }
    let before = conn.stats().udp_tx.datagrams;
    conn.close(code, reason);
    let sent = async {
        while conn.stats().udp_tx.datagrams == before {
            tokio::time::sleep(CLOSE_FLUSH_POLL).await;
        }
    };
    if tokio::time::timeout(CLOSE_FLUSH, sent).await.is_err() {
        tracing::debug!("quic close not transmitted within {CLOSE_FLUSH:?}");
    }
}

/// Classifies a read failure; `None` when it is the end of a close, not a failure.
fn read_failure(error: ReadError, state: &ConnectionState) -> Option<Error> {
    match error {
        ReadError::ConnectionLost(lost) => match ended(&lost) {
            Ended::Remote(reason) => {
                state.remote_closed(reason);
                None
            }
            Ended::Local => None,
            Ended::Failed(e) => Some(e),
        },
        ReadError::Reset(code) => Some(Error::LinkLost(format!(
            "the remote reset the stream with code {code}"
        ))),
        _ if state.is_local_closing() => None,
        other => Some(Error::io("quic read", std::io::Error::from(other))),
    }
}

async fn read_loop(
    recv: RecvStream,
    conn: &quinn::Connection,
    incoming: IncomingSender,
    state: ConnectionState,
    fin_tx: oneshot::Sender<()>,
) {
    let mut reader = FrameReader::new(recv, state.max_message_size());
    let mut fin_tx = Some(fin_tx);
    let failure: Option<Error> = loop {
        // Every frame already buffered goes to the receiver in one delivery (one queue
        // operation for the lot, not one per message).
        let mut batch = Vec::new();
        let read = tokio::select! {
            biased;
            _ = state.wait_aborted() => break None,
            read = reader.read_batch(&mut batch) => read,
        };
        if !batch.is_empty() && !state.is_local_closing() {
            // A dropped receiver discards; keep reading so the close is seen.
            let _ = if batch.len() == 1 {
                incoming.deliver(batch.swap_remove(0)).await
            } else {
                incoming.deliver_many(batch).await
            };
        }
        match read {
            Ok(()) => {}
            Err(ReadEnd::Eof { mid_frame: false }) => {
                // The remote finished its stream: acknowledge with ours.
                if let Some(tx) = fin_tx.take() {
                    let _ = tx.send(());
                }
                if state.is_local_closing() {
                    break None;
                }
                // The remote is closing; its reason comes with the CONNECTION_CLOSE.
                let wait = Box::pin(tokio::time::timeout(state.close_timeout(), conn.closed()));
                break match wait.await {
                    Ok(lost) => match ended(&lost) {
                        Ended::Remote(reason) => {
                            state.remote_closed(reason);
                            None
                        }
                        Ended::Local => None,
                        Ended::Failed(e) => Some(e),
                    },
                    Err(_) => Some(Error::Timeout {
                        operation: "close after the remote's FIN",
                        after: state.close_timeout(),
                    }),
                };
            }
            Err(ReadEnd::Eof { mid_frame: true }) => {
                conn.close(CLOSE_PROTOCOL, b"stream ended in the middle of a frame");
                break Some(
                    ProtocolError::Malformed("the stream ended in the middle of a frame").into(),
                );
            }
            Err(ReadEnd::Protocol(e)) => {
                conn.close(CLOSE_PROTOCOL, clip_reason(&e.to_string()).as_bytes());
                break Some(e.into());
            }
            Err(ReadEnd::Read(e)) => break read_failure(e, &state),
        }
    };
    // The failure is recorded before the queue closes, so a receiver that sees the end also
    // sees why (a failed link is never reported as a clean end of stream).
    state.end_reading(failure);
    drop(incoming);
}

/// Maps a write failure; `Ok` when the connection ended in a way the reader reports.
fn write_failure(error: WriteError) -> Result<(), Error> {
    match error {
        WriteError::ConnectionLost(lost) => match ended(&lost) {
            Ended::Remote(_) | Ended::Local => Ok(()),
            Ended::Failed(e) => Err(e),
        },
        WriteError::Stopped(code) => Err(Error::LinkLost(format!(
            "the remote stopped reading with code {code}"
        ))),
        other => Err(Error::backend("quic", "writing", other)),
    }
}

/// The bytes a batch adds to the coalescing buffer: each message's length header, and the
/// messages copied next to theirs.
fn batch_bytes(batch: &[SendItem]) -> usize {
    batch
        .iter()
        .map(|item| match item {
            SendItem::Message(m) if m.len() <= COPY_LIMIT => 4 + m.len(),
            _ => 4,
        })
        .sum()
}

/// The writer's side of a graceful close: FIN, the remote's FIN (seen by the reader, bounded),
/// then CONNECTION_CLOSE with `reason`.
async fn close_gracefully(
    send: &mut SendStream,
    conn: &quinn::Connection,
    state: &ConnectionState,
    reason: &str,
) {
    state.set_local_closing(reason);
    let _ = send.finish();
    let wait = tokio::time::timeout(state.close_timeout(), state.wait_reader_done());
    if wait.await.is_err() {
        state.fail(Error::Timeout {
            operation: "close acknowledgement",
            after: state.close_timeout(),
        });
        state.abort();
        conn.close(CLOSE_ABORT, b"close timed out");
    } else {
        close_flushed(conn, CLOSE_NORMAL, clip_reason(reason).as_bytes()).await;
    }
}

async fn write_loop(
    mut send: SendStream,
    conn: &quinn::Connection,
    send_queue: &mut mpsc::Receiver<SendItem>,
    state: ConnectionState,
    mut fin_rx: oneshot::Receiver<()>,
) {
    // Grown on demand by bursts, released when the queue is empty (idle memory).
    let mut batch = Vec::new();
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut headers = BytesMut::new();
    let result: Result<(), Error> = async {
        loop {
            let mut close: Option<String> = None;
            tokio::select! {
                biased;
                _ = state.wait_aborted() => return Ok(()),
                fin = &mut fin_rx => {
                    if fin.is_ok() {
                        // Acknowledge the remote's close; later messages are not sent.
                        let _ = send.finish();
                    }
                    return Ok(());
                }
                n = send_queue.recv_many(&mut batch, BATCH) => {
                    if n == 0 {
                        close = Some("connection dropped".into());
                    }
                    // Room for the whole batch at once: the coalescing copy is the only one.
                    headers.reserve(batch_bytes(&batch));
                    let (mut messages, mut bytes) = (0u64, 0usize);
                    for item in batch.drain(..) {
                        match item {
                            SendItem::Message(m) => {
                                let len = u32::try_from(m.len()).map_err(|_| Error::MessageTooLarge {
                                    len: m.len(),
                                    max: state.max_message_size(),
                                })?;
                                headers.put_u32(len);
                                messages += 1;
                                bytes += m.len();
                                if m.len() <= COPY_LIMIT {
                                    // Small messages are coalesced with their headers.
                                    headers.put_slice(&m);
                                } else {
                                    chunks.push(headers.split().freeze());
                                    chunks.push(m);
                                }
                            }
                            SendItem::Close(reason) => {
                                close = Some(reason);
                                break;
                            }
                        }
                    }
                    // One count (and one return of send budget) per batch.
                    state.record_sent_many(messages, bytes);
                }
            }
            if !headers.is_empty() {
                chunks.push(headers.split().freeze());
            }
            if !chunks.is_empty() {
                tokio::select! {
                    biased;
                    _ = state.wait_aborted() => return Ok(()),
                    written = send.write_all_chunks(&mut chunks) => {
                        if let Err(e) = written {
                            return write_failure(e);
                        }
                    }
                }
                chunks.clear();
            }
            if chunks.capacity() > KEEP_BATCH && send_queue.is_empty() {
                (batch, chunks) = (Vec::new(), Vec::new());
            }
            if let Some(reason) = close {
                Box::pin(close_gracefully(&mut send, conn, &state, &reason)).await;
                return Ok(());
            }
        }
    }
    .await;
    if state.is_aborted() {
        conn.close(CLOSE_ABORT, b"aborted");
    }
    if let Err(error) = result {
        if !state.is_local_closing() && !state.is_remote_closed() {
            tracing::debug!(peer = %state.info().remote_peer.short(), %error, "quic write failed");
            state.fail(error);
        }
        state.abort();
        conn.close(CLOSE_ABORT, b"write failed");
    }
}
