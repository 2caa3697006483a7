//! The pump: one task per connection owns the [`WebSocketStream`] and drives both of its
//! directions from a single `poll`, so the byte-stream halves ([`crate::WsReader`],
//! [`crate::WsWriter`]) talk to it through bounded channels and never share a lock.
//!
//! Why not `StreamExt::split`: its halves share the stream through a `BiLock`, taken on every
//! read and every write. Why not two tasks: tungstenite needs `&mut` for both directions (a
//! read may have to write a pong or a close reply), so two tasks would need that lock again.
//! One owner polling the write side, then the read side, with the same waker, needs none, and
//! neither direction can block the other: a full socket send buffer stops only the writes
//! (tungstenite keeps the bytes and `poll_ready` retries), and a slow reader stops only the
//! reads (the inbound queue is bounded; the message waits in `pending`).
//!
//! Lifetime: the pump runs while either half lives and the WebSocket is open. When the remote
//! closes, sends a text message or breaks the protocol, the reader gets EOF or a typed error.
//! When both halves are gone (or the link ended), the pump sends a close frame (1000 normal,
//! 1003 after a text message, 1009 after an oversized message, 1002 after another protocol
//! error), waits for the reply at most
//! `linger`, shuts the socket down and ends.

use std::future::poll_fn;
use std::io;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::channel::{mpsc, oneshot};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use crate::error::from_tungstenite;
use crate::WsError;

/// Received payloads (or the error that ended the stream) waiting for the reader.
pub(crate) type Inbound = Result<Bytes, io::Error>;

/// Chunks (at most [`crate::WRITE_CHUNK`] each) queued between the writer half and the pump
/// (the channel holds this + 1).
const OUTBOUND_QUEUE: usize = 7;
/// Payloads queued between the pump and the reader half (the channel holds this + 1). Small:
/// a remote's messages may be up to [`crate::MAX_WS_MESSAGE`] each, and they are buffered
/// before the handshake has authenticated anyone.
const INBOUND_QUEUE: usize = 1;
/// Steps per poll before the pump yields to other tasks.
const BUDGET: usize = 32;

/// The halves' ends of the pump's channels.
pub(crate) struct PumpHandles {
    /// Received binary payloads, in order.
    pub(crate) inbound: mpsc::Receiver<Inbound>,
    /// Dropped with the reader half: tells the pump nobody reads any more.
    pub(crate) reader_alive: oneshot::Receiver<()>,
    /// Chunks to send, one binary message each; dropping it ends the write side.
    pub(crate) outbound: mpsc::Sender<Bytes>,
}

/// Starts the pump task that owns `ws`.
pub(crate) fn spawn<S>(ws: WebSocketStream<S>, linger: Duration) -> PumpHandles
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (out_tx, out_rx) = mpsc::channel(OUTBOUND_QUEUE);
    let (in_tx, in_rx) = mpsc::channel(INBOUND_QUEUE);
    let (alive_tx, alive_rx) = oneshot::channel();
    let pump = Pump {
        ws,
        outbound: out_rx,
        writer_open: true,
        unflushed: false,
        inbound: Some(in_tx),
        reader_alive: Some(alive_tx),
        pending: None,
        read_done: false,
        close_code: CloseCode::Normal,
    };
    tokio::spawn(pump.run(linger));
    PumpHandles {
        inbound: in_rx,
        reader_alive: alive_rx,
        outbound: out_tx,
    }
}

struct Pump<S> {
    ws: WebSocketStream<S>,
    outbound: mpsc::Receiver<Bytes>,
    /// The writer half has not shut down yet.
    writer_open: bool,
    /// Messages were handed to tungstenite since the last completed flush.
    unflushed: bool,
    /// `None` once the reader half is gone or has been given EOF.
    inbound: Option<mpsc::Sender<Inbound>>,
    reader_alive: Option<oneshot::Sender<()>>,
    /// Read from the WebSocket, not yet taken by the reader (the inbound queue was full).
    pending: Option<Inbound>,
    /// The WebSocket's read side ended (close, error, text message or EOF).
    read_done: bool,
    /// The code of the close frame the pump will send.
    close_code: CloseCode,
}

impl<S> Pump<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    async fn run(mut self, linger: Duration) {
        poll_fn(|cx| self.poll_active(cx)).await;
        // Writers now see a broken pipe, the reader EOF (after what was queued).
        self.outbound.close();
        self.inbound = None;
        let Self {
            mut ws, close_code, ..
        } = self;
        let close = async move {
            let frame = CloseFrame {
                code: close_code,
                reason: "".into(),
            };
            if ws.close(Some(frame)).await.is_ok() {
                // Wait for the remote's close frame (or the end of the link).
                while let Some(Ok(_)) = ws.next().await {}
            }
            let _ = ws.get_mut().shutdown().await;
        };
        let _ = tokio::time::timeout(linger, close).await;
    }

    /// Moves data both ways until the connection is over.
    fn poll_active(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        for _ in 0..BUDGET {
            let mut progress = match self.poll_write_side(cx) {
                Ok(progress) => progress,
                Err(e) => {
                    self.fail(e);
                    return Poll::Ready(());
                }
            };
            progress |= self.poll_read_side(cx);
            if let Some(alive) = &mut self.reader_alive {
                if alive.poll_canceled(cx).is_ready() {
                    self.reader_alive = None;
                    self.inbound = None;
                    self.pending = None;
                }
            }
            let reader_gone = self.inbound.is_none() && self.pending.is_none();
            let idle_writer = !self.writer_open && !self.unflushed;
            if (reader_gone && idle_writer) || (self.read_done && self.pending.is_none()) {
                return Poll::Ready(());
            }
            if !progress {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Hands queued chunks to tungstenite, then flushes once the queue is empty.
    fn poll_write_side(&mut self, cx: &mut Context<'_>) -> io::Result<bool> {
        let mut progress = false;
        while self.writer_open {
            match self.ws.poll_ready_unpin(cx) {
                Poll::Ready(ready) => ready.map_err(from_tungstenite)?,
                Poll::Pending => return Ok(progress),
            }
            match self.outbound.poll_next_unpin(cx) {
                Poll::Ready(Some(chunk)) => {
                    self.ws
                        .start_send_unpin(Message::Binary(chunk))
                        .map_err(from_tungstenite)?;
                    self.unflushed = true;
                    progress = true;
                }
                Poll::Ready(None) => {
                    self.writer_open = false;
                    progress = true;
                }
                Poll::Pending => break,
            }
        }
        if self.unflushed {
            if let Poll::Ready(flushed) = self.ws.poll_flush_unpin(cx) {
                flushed.map_err(from_tungstenite)?;
                self.unflushed = false;
            }
        }
        Ok(progress)
    }

    /// Delivers a pending payload, then reads the next message if the reader has room.
    fn poll_read_side(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        if let Some(item) = self.pending.take() {
            if let Some(tx) = &mut self.inbound {
                match tx.poll_ready(cx) {
                    Poll::Ready(Ok(())) => {
                        let _ = tx.start_send(item);
                        progress = true;
                    }
                    Poll::Ready(Err(_)) => self.inbound = None,
                    Poll::Pending => {
                        self.pending = Some(item);
                        return progress;
                    }
                }
            }
        }
        if self.read_done {
            self.inbound = None;
            return progress;
        }
        let Poll::Ready(next) = self.ws.poll_next_unpin(cx) else {
            return progress;
        };
        match next {
            Some(Ok(Message::Binary(payload))) => {
                if !payload.is_empty() {
                    self.pending = Some(Ok(payload));
                }
            }
            Some(Ok(Message::Text(_))) => {
                self.pending = Some(Err(WsError::TextMessage.into()));
                self.read_done = true;
                self.close_code = CloseCode::Unsupported;
            }
            // The remote's close: tungstenite queued the reply; the reader gets EOF.
            Some(Ok(Message::Close(_))) | None => self.read_done = true,
            // Pings are answered by tungstenite itself; pongs and raw frames carry nothing.
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
            Some(Err(e)) => {
                self.close_code = match e {
                    tungstenite::Error::Capacity(_) => CloseCode::Size,
                    _ => CloseCode::Protocol,
                };
                self.pending = Some(Err(from_tungstenite(e)));
                self.read_done = true;
            }
        }
        true
    }

    /// A write failed: tell the reader (best effort) and stop.
    fn fail(&mut self, e: io::Error) {
        tracing::debug!(error = %e, "websocket write failed");
        if let Some(tx) = &mut self.inbound {
            if self.pending.is_none() {
                let _ = tx.try_send(Err(e));
            }
        }
        self.inbound = None;
    }
}
