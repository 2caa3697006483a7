//! The byte-stream adapter: [`WsReader`] (`AsyncRead`) and [`WsWriter`] (`AsyncWrite`) over a
//! WebSocket, so the core's Noise channel runs inside it like on any other stream.
//!
//! Mapping: each `poll_write` becomes one binary message of at most [`WRITE_CHUNK`] bytes
//! (the core's connection driver writes each batch of records with one `write_all` and then
//! flushes, so a batch is one message unless it is bigger than that, then it is split); reads
//! return the received binary payloads, concatenated. Pings are answered (by tungstenite, on
//! the next read), pongs ignored; a text message is a typed error ([`WsError::TextMessage`])
//! and closes with 1003; an oversized or malformed frame closes with 1009 / 1002; the
//! remote's close frame is EOF. Like a `BufWriter`, the writer must be flushed: data may sit
//! in tungstenite's write buffer until then. Shutdown sends a close frame (1000) without
//! waiting for the socket: it never blocks, and reads go on until the remote's close.
//!
//! ## Why the halves share the stream through a mutex
//!
//! tungstenite needs `&mut` for both directions (a read may write a pong or a close reply),
//! so the halves must either share the stream or hand every chunk to a task that owns it. We
//! built the task design first (one pump task per connection owning the stream, bounded
//! channels both ways, no lock) and measured it: two extra task hand-offs per chunk, each a
//! cross-thread wake. Byte stream alone (no Noise), 256 MiB one way over loopback, 2 workers,
//! one debug run: pump 1.03-1.30 GB/s with ~8,700 context switches per run, this design
//! 1.43-1.52 GB/s with 500-3,700, raw tokio-tungstenite 1.52-1.75 GB/s. Full stack in release
//! with the pump: 0.87 GB/s at 64 KiB messages against 3.74 GB/s raw.
//!
//! The core's connection driver polls its reader and writer from *one* task (`tokio::join!`),
//! and so does its handshake, so a lock between the two halves is never contended there: each
//! poll takes an uncontended `std::sync::Mutex` (two atomic operations), held only inside that
//! poll, never across an `.await`, and the data path has no extra task, queue or wake-up,
//! like the TCP backend. (`StreamExt::split` would give the same with a `BiLock`, but then a
//! half could not answer a text message with a close frame.) Used from two tasks, the halves
//! still work (tokio-tungstenite keeps separate read and write wakers); polls are then briefly
//! serialized.
//!
//! On the listener side the halves start *before* the upgrade ([`lazy`]): the reader's first
//! read runs it (TLS accept, HTTP upgrade), then hands the stream to the writer. The core's
//! responder always reads the dialer's first handshake message before writing anything, so
//! the writer never waits for a read that nobody drives; a writer polled first just waits for
//! the upgrade (bounded by the handshake timeout).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{ready, Context, Poll};

use bitcraps_transport_core::LimitRejection;
use bytes::{Buf, Bytes, BytesMut};
use futures::channel::oneshot;
use futures::future::BoxFuture;
use futures::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use crate::error::from_tungstenite;
use crate::{WsError, WRITE_CHUNK};

/// Writes up to this size are copied into a reused buffer (no allocation per small batch);
/// bigger ones get their own allocation, freed as soon as tungstenite has framed it, so idle
/// connections keep no large buffer.
const POOLED_WRITE: usize = 16 * 1024;

/// An upgraded WebSocket of any underlying stream.
trait Duplex:
    Stream<Item = Result<Message, tungstenite::Error>>
    + Sink<Message, Error = tungstenite::Error>
    + Send
    + Unpin
{
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Duplex for WebSocketStream<S> {}

type Shared = Arc<Mutex<Box<dyn Duplex>>>;

fn lock(shared: &Shared) -> MutexGuard<'_, Box<dyn Duplex>> {
    // A panic inside a poll leaves tungstenite's state as consistent as any error would.
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn share<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(ws: WebSocketStream<S>) -> Shared {
    Arc::new(Mutex::new(Box::new(ws)))
}

/// Wraps an upgraded WebSocket as a byte stream: the two halves share `ws`.
pub fn byte_stream<S>(ws: WebSocketStream<S>) -> (WsReader, WsWriter)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shared = share(ws);
    let writer = WsWriter::open(shared.clone());
    (WsReader::open(shared), writer)
}

/// Halves whose WebSocket does not exist yet: the reader's first read runs `upgrade`.
pub(crate) fn lazy<S, F>(upgrade: F) -> (WsReader, WsWriter)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Future<Output = Result<WebSocketStream<S>, WsError>> + Send + 'static,
{
    let (writer_tx, writer_rx) = oneshot::channel();
    let reader = WsReader {
        state: ReadState::Upgrading {
            upgrade: upgrade.map(|ws| ws.map(share)).boxed(),
            writer: Some(writer_tx),
        },
        current: Bytes::new(),
        refusal: None,
    };
    let writer = WsWriter {
        state: WriteState::Waiting(writer_rx),
        buf: BytesMut::new(),
    };
    (reader, writer)
}

/// Queues a close frame and tries once to flush it; never waits.
fn close_now(ws: &mut Box<dyn Duplex>, cx: &mut Context<'_>, code: CloseCode) {
    let frame = CloseFrame {
        code,
        reason: "".into(),
    };
    if ws.start_send_unpin(Message::Close(Some(frame))).is_ok() {
        let _ = ws.poll_flush_unpin(cx);
    }
}

/// The read half of a WebSocket byte stream.
pub struct WsReader {
    state: ReadState,
    /// The rest of the payload being read.
    current: Bytes,
    /// On a listener's lazy stream: where a source-limit refusal is left for the upgrade to
    /// answer (with 429) instead of upgrading.
    pub(crate) refusal: Option<Arc<OnceLock<LimitRejection>>>,
}

enum ReadState {
    Upgrading {
        upgrade: BoxFuture<'static, Result<Shared, WsError>>,
        writer: Option<oneshot::Sender<Shared>>,
    },
    Open(Shared),
    /// The stream ended (EOF returned) or failed (error returned).
    Done {
        failed: bool,
    },
}

impl std::fmt::Debug for WsReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            ReadState::Upgrading { .. } => "upgrading",
            ReadState::Open(_) => "open",
            ReadState::Done { failed: false } => "ended",
            ReadState::Done { failed: true } => "failed",
        };
        f.debug_struct("WsReader")
            .field("state", &state)
            .field("buffered", &self.current.len())
            .finish()
    }
}

impl WsReader {
    fn open(shared: Shared) -> Self {
        Self {
            state: ReadState::Open(shared),
            current: Bytes::new(),
            refusal: None,
        }
    }

    /// The next binary payload: `Ok(None)` at the end, after the remote's close.
    fn poll_payload(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<Bytes>>> {
        loop {
            match &mut self.state {
                ReadState::Upgrading { upgrade, writer } => match ready!(upgrade.as_mut().poll(cx))
                {
                    Ok(shared) => {
                        if let Some(writer) = writer.take() {
                            // A writer already dropped needs no stream.
                            let _ = writer.send(shared.clone());
                        }
                        self.state = ReadState::Open(shared);
                    }
                    Err(e) => {
                        self.state = ReadState::Done { failed: true };
                        return Poll::Ready(Err(e.into()));
                    }
                },
                ReadState::Open(shared) => {
                    let mut ws = lock(shared);
                    let next = ready!(ws.poll_next_unpin(cx));
                    let (result, code) = match next {
                        Some(Ok(Message::Binary(payload))) => {
                            return Poll::Ready(Ok(Some(payload)))
                        }
                        // Pings are answered by tungstenite; pongs and raw frames carry nothing.
                        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {
                            continue
                        }
                        Some(Ok(Message::Text(_))) => (
                            Err(WsError::TextMessage.into()),
                            Some(CloseCode::Unsupported),
                        ),
                        // The remote's close (tungstenite queued the reply): flush it, then EOF.
                        Some(Ok(Message::Close(_))) | None => {
                            let _ = ws.poll_flush_unpin(cx);
                            (Ok(None), None)
                        }
                        // The link ended without a close frame: EOF, as on TCP (the core
                        // reports a lost link unless it was closing anyway).
                        Some(Err(tungstenite::Error::Protocol(
                            tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                        ))) => (Ok(None), None),
                        Some(Err(e)) => {
                            let code = match e {
                                tungstenite::Error::Capacity(_) => CloseCode::Size,
                                _ => CloseCode::Protocol,
                            };
                            (Err(from_tungstenite(e)), Some(code))
                        }
                    };
                    if let Some(code) = code {
                        close_now(&mut ws, cx, code);
                    }
                    drop(ws);
                    self.state = ReadState::Done {
                        failed: result.is_err(),
                    };
                    return Poll::Ready(result);
                }
                ReadState::Done { failed: false } => return Poll::Ready(Ok(None)),
                ReadState::Done { failed: true } => {
                    return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()))
                }
            }
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
        while this.current.is_empty() {
            match ready!(this.poll_payload(cx))? {
                Some(payload) => this.current = payload,
                None => return Poll::Ready(Ok(())),
            }
        }
        let n = this.current.len().min(buf.remaining());
        buf.put_slice(&this.current[..n]);
        this.current.advance(n);
        Poll::Ready(Ok(()))
    }
}

/// The write half of a WebSocket byte stream.
pub struct WsWriter {
    state: WriteState,
    /// Reused for small writes.
    buf: BytesMut,
}

enum WriteState {
    Waiting(oneshot::Receiver<Shared>),
    Open(Shared),
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
    fn open(shared: Shared) -> Self {
        Self {
            state: WriteState::Open(shared),
            buf: BytesMut::new(),
        }
    }

    /// The shared stream, once the upgrade has produced it.
    fn poll_shared(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Shared>> {
        if let WriteState::Waiting(rx) = &mut self.state {
            match ready!(rx.poll_unpin(cx)) {
                Ok(shared) => self.state = WriteState::Open(shared),
                Err(oneshot::Canceled) => {
                    self.state = WriteState::Closed;
                    return Poll::Ready(Err(WsError::UpgradeFailed.into()));
                }
            }
        }
        match &self.state {
            WriteState::Open(shared) => Poll::Ready(Ok(shared.clone())),
            _ => Poll::Ready(Err(broken_pipe())),
        }
    }

    fn chunk(&mut self, data: &[u8]) -> Bytes {
        if data.len() > POOLED_WRITE {
            return Bytes::copy_from_slice(data);
        }
        // tungstenite drops each chunk once framed, so this reclaims the same allocation.
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
        let shared = ready!(this.poll_shared(cx))?;
        let mut ws = lock(&shared);
        ready!(ws.poll_ready_unpin(cx)).map_err(from_tungstenite)?;
        let n = data.len().min(WRITE_CHUNK);
        let chunk = this.chunk(&data[..n]);
        ws.start_send_unpin(Message::Binary(chunk))
            .map_err(from_tungstenite)?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match &this.state {
            WriteState::Open(shared) => {
                let flushed = ready!(lock(shared).poll_flush_unpin(cx));
                Poll::Ready(flushed.map_err(from_tungstenite))
            }
            // Nothing was written before the upgrade; nothing can be after a shutdown.
            WriteState::Waiting(_) | WriteState::Closed => Poll::Ready(Ok(())),
        }
    }

    /// Queues a close frame (1000) after what was written and tries once to send it, without
    /// waiting: a remote that stopped reading cannot hold the connection open. The read half
    /// keeps reading until the remote's close.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let WriteState::Open(shared) = &this.state {
            close_now(&mut lock(shared), cx, CloseCode::Normal);
        }
        this.state = WriteState::Closed;
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
