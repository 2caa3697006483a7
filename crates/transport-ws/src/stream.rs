//! The byte-stream adapter: [`WsReader`] (`AsyncRead`) and [`WsWriter`] (`AsyncWrite`) over a
//! WebSocket, so the core's Noise channel runs inside it like on any other stream.
//!
//! Mapping: each `poll_write` becomes one binary message of at most [`WRITE_CHUNK`] bytes
//! (the core's connection driver writes each batch of records with one `write_all`, so a
//! batch is one message unless it is bigger than that, then it is split); reads return the
//! received binary payloads, concatenated. Pings are answered, pongs ignored; a text message
//! is a typed error ([`WsError::TextMessage`]); the remote's close frame is EOF.
//!
//! The halves own no part of the WebSocket: the [pump](crate::pump) task does, and they talk
//! to it through bounded channels, so reading and writing never take a lock. On the listener
//! side the halves start *before* the upgrade ([`lazy`]): the reader's first read runs it
//! (TLS accept, HTTP upgrade), then hands the write channel to the writer. The core's
//! responder always reads the dialer's first handshake message before writing anything, so
//! the writer never waits for a read that nobody drives; a writer polled first just waits for
//! the upgrade (bounded by the handshake timeout).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures::channel::{mpsc, oneshot};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;

use crate::pump::{self, Inbound, PumpHandles};
use crate::{WsError, WRITE_CHUNK};

/// Writes up to this size are copied into a reused buffer (no allocation per small batch);
/// bigger ones get their own allocation, freed once sent, so idle connections stay small.
const POOLED_WRITE: usize = 16 * 1024;

/// Wraps an upgraded WebSocket as a byte stream: starts its pump task (which owns `ws`) and
/// returns the two halves. `linger` bounds the closing handshake once both halves are gone.
pub fn byte_stream<S>(ws: WebSocketStream<S>, linger: Duration) -> (WsReader, WsWriter)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let handles = pump::spawn(ws, linger);
    let writer = WsWriter::open(handles.outbound.clone());
    (WsReader::open(handles), writer)
}

/// Halves whose WebSocket does not exist yet: the reader's first read runs `upgrade`.
pub(crate) fn lazy<S, F>(upgrade: F, linger: Duration) -> (WsReader, WsWriter)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Future<Output = Result<WebSocketStream<S>, WsError>> + Send + 'static,
{
    let (writer_tx, writer_rx) = oneshot::channel();
    let upgrade = upgrade.map(move |ws| ws.map(|ws| pump::spawn(ws, linger)));
    let reader = WsReader {
        state: ReadState::Upgrading {
            upgrade: upgrade.boxed(),
            writer: Some(writer_tx),
        },
        current: Bytes::new(),
    };
    let writer = WsWriter {
        state: WriteState::Waiting(writer_rx),
        buf: BytesMut::new(),
    };
    (reader, writer)
}

/// The read half of a WebSocket byte stream.
pub struct WsReader {
    state: ReadState,
    /// The rest of the payload being read.
    current: Bytes,
}

enum ReadState {
    Upgrading {
        upgrade: BoxFuture<'static, Result<PumpHandles, WsError>>,
        writer: Option<oneshot::Sender<mpsc::Sender<Bytes>>>,
    },
    Open {
        inbound: mpsc::Receiver<Inbound>,
        _alive: oneshot::Receiver<()>,
    },
    Failed,
}

impl std::fmt::Debug for WsReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            ReadState::Upgrading { .. } => "upgrading",
            ReadState::Open { .. } => "open",
            ReadState::Failed => "failed",
        };
        f.debug_struct("WsReader")
            .field("state", &state)
            .field("buffered", &self.current.len())
            .finish()
    }
}

impl WsReader {
    fn open(handles: PumpHandles) -> Self {
        Self {
            state: ReadState::Open {
                inbound: handles.inbound,
                _alive: handles.reader_alive,
            },
            current: Bytes::new(),
        }
    }
}

impl AsyncRead for WsReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.current.is_empty() {
                let n = this.current.len().min(buf.remaining());
                buf.put_slice(&this.current[..n]);
                this.current.advance(n);
                return Poll::Ready(Ok(()));
            }
            match &mut this.state {
                ReadState::Upgrading { upgrade, writer } => match ready!(upgrade.as_mut().poll(cx))
                {
                    Ok(handles) => {
                        if let Some(writer) = writer.take() {
                            // A writer already dropped needs no channel.
                            let _ = writer.send(handles.outbound.clone());
                        }
                        *this = Self::open(handles);
                    }
                    Err(e) => {
                        this.state = ReadState::Failed;
                        return Poll::Ready(Err(e.into()));
                    }
                },
                ReadState::Open { inbound, .. } => match ready!(inbound.poll_next_unpin(cx)) {
                    Some(Ok(payload)) => this.current = payload,
                    Some(Err(e)) => return Poll::Ready(Err(e)),
                    None => return Poll::Ready(Ok(())),
                },
                ReadState::Failed => return Poll::Ready(Err(WsError::UpgradeFailed.into())),
            }
        }
    }
}

/// The write half of a WebSocket byte stream.
pub struct WsWriter {
    state: WriteState,
    /// Reused for small writes.
    buf: BytesMut,
}

enum WriteState {
    Waiting(oneshot::Receiver<mpsc::Sender<Bytes>>),
    Open(mpsc::Sender<Bytes>),
    Closed,
}

impl std::fmt::Debug for WsWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            WriteState::Waiting(_) => "waiting for the upgrade",
            WriteState::Open(_) => "open",
            WriteState::Closed => "closed",
        };
        f.debug_struct("WsWriter").field("state", &state).finish()
    }
}

fn broken_pipe() -> io::Error {
    io::ErrorKind::BrokenPipe.into()
}

impl WsWriter {
    fn open(outbound: mpsc::Sender<Bytes>) -> Self {
        Self {
            state: WriteState::Open(outbound),
            buf: BytesMut::new(),
        }
    }

    /// Waits until the write channel exists (after the upgrade) and has room.
    fn poll_sender(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let WriteState::Waiting(rx) = &mut self.state {
            match ready!(rx.poll_unpin(cx)) {
                Ok(tx) => self.state = WriteState::Open(tx),
                Err(oneshot::Canceled) => {
                    self.state = WriteState::Closed;
                    return Poll::Ready(Err(WsError::UpgradeFailed.into()));
                }
            }
        }
        match &mut self.state {
            WriteState::Open(tx) => match ready!(tx.poll_ready(cx)) {
                Ok(()) => Poll::Ready(Ok(())),
                Err(_) => {
                    self.state = WriteState::Closed;
                    Poll::Ready(Err(broken_pipe()))
                }
            },
            _ => Poll::Ready(Err(broken_pipe())),
        }
    }

    fn chunk(&mut self, data: &[u8]) -> Bytes {
        if data.len() > POOLED_WRITE {
            return Bytes::copy_from_slice(data);
        }
        // Reclaims the earlier allocation once the pump has dropped the previous chunks.
        self.buf.reserve(data.len());
        self.buf.extend_from_slice(data);
        self.buf.split().freeze()
    }
}

impl AsyncWrite for WsWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        ready!(this.poll_sender(cx))?;
        let n = data.len().min(WRITE_CHUNK);
        let chunk = this.chunk(&data[..n]);
        match &mut this.state {
            WriteState::Open(tx) => tx.start_send(chunk).map_err(|_| broken_pipe())?,
            _ => return Poll::Ready(Err(broken_pipe())),
        }
        Poll::Ready(Ok(n))
    }

    /// Every accepted write is already queued for the pump, which flushes whenever its queue
    /// runs empty, so there is nothing to wait for.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Ends the write side: the pump sends what is queued; the WebSocket close frame follows
    /// once the reader is done too (the Noise channel's own close record comes first).
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().state = WriteState::Closed;
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
