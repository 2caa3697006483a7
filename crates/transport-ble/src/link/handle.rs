//! The application's end of a link: [`BleLink`], split into a cloneable [`LinkSender`] and an
//! owned [`LinkReceiver`], plus the poll-based [`LinkSink`] that [`BleStream`](crate::BleStream)
//! writes through.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::PollSender;

use super::driver::{SendItem, Shared};
use super::{DeviceId, LinkDownReason, LinkError, LinkInfo, Role};

/// Sends ATT payloads on one link. Clones share the link's write credit and order.
#[derive(Clone, Debug)]
pub struct LinkSender {
    shared: Arc<Shared>,
    tx: mpsc::Sender<SendItem>,
}

impl LinkSender {
    pub(crate) fn new(shared: Arc<Shared>, tx: mpsc::Sender<SendItem>) -> Self {
        Self { shared, tx }
    }

    /// The link's facts.
    pub fn info(&self) -> &LinkInfo {
        &self.shared.info
    }

    /// The largest payload `send` accepts.
    pub fn max_payload(&self) -> usize {
        self.shared.info.max_payload()
    }

    /// Write credit left: payloads that can be queued now without waiting.
    pub fn credit(&self) -> usize {
        self.tx.capacity()
    }

    fn check(&self, payload: &Bytes) -> Result<(), LinkError> {
        check_payload(&self.shared, payload)
    }

    fn send_failed(&self) -> LinkError {
        send_failed(&self.shared)
    }

    /// Queues one ATT payload, waiting for write credit while the queue is full. Payloads leave
    /// in the order they were queued.
    pub async fn send(&self, payload: Bytes) -> Result<(), LinkError> {
        self.check(&payload)?;
        self.tx
            .send(SendItem::Data(payload))
            .await
            .map_err(|_| self.send_failed())
    }

    /// Queues one ATT payload if there is write credit, else fails with
    /// [`LinkError::QueueFull`].
    pub fn try_send(&self, payload: Bytes) -> Result<(), LinkError> {
        self.check(&payload)?;
        self.tx
            .try_send(SendItem::Data(payload))
            .map_err(|err| match err {
                mpsc::error::TrySendError::Full(_) => LinkError::QueueFull,
                mpsc::error::TrySendError::Closed(_) => self.send_failed(),
            })
    }

    /// Graceful close: refuses further sends, lets everything already queued go out, then
    /// brings the link down; resolves once it is down. The remote sees
    /// [`LinkDownReason::RemoteClose`]. Bound it with a timeout if the remote may stop reading.
    pub async fn close(&self) -> LinkDownReason {
        self.shared.mark_closing();
        // A failed send means the backend already stopped taking payloads: the link is going
        // down either way.
        let _ = self.tx.send(SendItem::Close).await;
        self.shared.wait_down().await
    }

    /// Graceful close without waiting: refuses further sends and queues the close behind
    /// everything already queued, if there is write credit for it now. Returns whether the
    /// close was queued (if not, the link still closes gracefully once every sender is
    /// dropped).
    pub fn try_close(&self) -> bool {
        self.shared.mark_closing();
        self.tx.try_send(SendItem::Close).is_ok()
    }

    /// Brings the link down at once; queued payloads are discarded.
    pub fn abort(&self) {
        self.shared.set_down(LinkDownReason::LocalClose);
    }

    /// Why the link is down, or `None` while it is up.
    pub fn down_reason(&self) -> Option<LinkDownReason> {
        self.shared.down_reason()
    }

    /// Resolves when the link goes down (at once if it already is).
    pub async fn down(&self) -> LinkDownReason {
        self.shared.wait_down().await
    }

    /// A poll-based sender for use inside `poll_*` functions.
    pub fn into_sink(self) -> LinkSink {
        LinkSink {
            shared: self.shared,
            tx: PollSender::new(self.tx),
        }
    }
}

fn check_payload(shared: &Shared, payload: &Bytes) -> Result<(), LinkError> {
    let max = shared.info.max_payload();
    if payload.len() > max {
        return Err(LinkError::PayloadTooLarge {
            len: payload.len(),
            max,
        });
    }
    if let Some(reason) = shared.down_reason() {
        return Err(LinkError::LinkDown(reason));
    }
    if shared.is_closing() {
        return Err(LinkError::Closing);
    }
    Ok(())
}

fn send_failed(shared: &Shared) -> LinkError {
    match shared.down_reason() {
        Some(reason) => LinkError::LinkDown(reason),
        None => LinkError::Closing,
    }
}

/// Receives ATT payloads from one link, in order.
#[derive(Debug)]
pub struct LinkReceiver {
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Bytes>,
}

impl LinkReceiver {
    pub(crate) fn new(shared: Arc<Shared>, rx: mpsc::Receiver<Bytes>) -> Self {
        Self { shared, rx }
    }

    /// The link's facts.
    pub fn info(&self) -> &LinkInfo {
        &self.shared.info
    }

    /// The next payload. After the link goes down, payloads already received are still
    /// returned; then `None`, and [`down_reason`](Self::down_reason) says why.
    pub async fn recv(&mut self) -> Option<Bytes> {
        self.rx.recv().await
    }

    /// Poll form of [`recv`](Self::recv).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        self.rx.poll_recv(cx)
    }

    /// Why the link is down, or `None` while it is up.
    pub fn down_reason(&self) -> Option<LinkDownReason> {
        self.shared.down_reason()
    }

    /// Resolves when the link goes down (at once if it already is).
    pub async fn down(&self) -> LinkDownReason {
        self.shared.wait_down().await
    }
}

/// Poll-based sending on one link (write credit through `poll_ready`), as a `Sink` would.
#[derive(Debug)]
pub struct LinkSink {
    shared: Arc<Shared>,
    tx: PollSender<SendItem>,
}

impl LinkSink {
    /// The link's facts.
    pub fn info(&self) -> &LinkInfo {
        &self.shared.info
    }

    /// Waits for one unit of write credit. Call before each [`start_send`](Self::start_send).
    pub fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LinkError>> {
        if let Some(reason) = self.shared.down_reason() {
            return Poll::Ready(Err(LinkError::LinkDown(reason)));
        }
        match self.tx.poll_reserve(cx) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
            Poll::Ready(Err(_)) => Poll::Ready(Err(send_failed(&self.shared))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Queues one payload using the credit reserved by `poll_ready`.
    pub fn start_send(&mut self, payload: Bytes) -> Result<(), LinkError> {
        check_payload(&self.shared, &payload)?;
        self.tx
            .send_item(SendItem::Data(payload))
            .map_err(|_| send_failed(&self.shared))
    }

    /// Queues a graceful close using the credit reserved by `poll_ready`: everything queued
    /// before goes out, then the link goes down.
    pub fn start_close(&mut self) -> Result<(), LinkError> {
        self.shared.mark_closing();
        self.tx
            .send_item(SendItem::Close)
            .map_err(|_| send_failed(&self.shared))
    }

    /// Brings the link down at once; queued payloads are discarded.
    pub fn abort(&self) {
        self.shared.set_down(LinkDownReason::LocalClose);
    }

    /// Why the link is down, or `None` while it is up.
    pub fn down_reason(&self) -> Option<LinkDownReason> {
        self.shared.down_reason()
    }
}

/// Watches one link's state without holding either direction open (a [`LinkSender`] clone
/// would keep the link from closing when the application drops its handles).
#[derive(Clone, Debug)]
pub struct LinkWatch {
    shared: Arc<Shared>,
}

impl LinkWatch {
    /// The link's facts.
    pub fn info(&self) -> &LinkInfo {
        &self.shared.info
    }

    /// Why the link is down, or `None` while it is up.
    pub fn down_reason(&self) -> Option<LinkDownReason> {
        self.shared.down_reason()
    }

    /// Resolves when the link goes down (at once if it already is).
    pub async fn down(&self) -> LinkDownReason {
        self.shared.wait_down().await
    }

    /// Brings the link down at once; queued payloads are discarded.
    pub fn abort(&self) {
        self.shared.set_down(LinkDownReason::LocalClose);
    }
}

/// One established BLE link: ordered ATT payloads both ways, with write credit.
#[derive(Debug)]
pub struct BleLink {
    sender: LinkSender,
    receiver: LinkReceiver,
}

impl BleLink {
    pub(crate) fn from_parts(sender: LinkSender, receiver: LinkReceiver) -> Self {
        Self { sender, receiver }
    }

    /// The link's facts.
    pub fn info(&self) -> &LinkInfo {
        self.sender.info()
    }

    /// Central or peripheral.
    pub fn role(&self) -> Role {
        self.info().role()
    }

    /// The device at the other end.
    pub fn remote(&self) -> &DeviceId {
        self.info().remote()
    }

    /// The negotiated ATT MTU, in `23..=517`.
    pub fn mtu(&self) -> u16 {
        self.info().mtu()
    }

    /// The largest payload `send` accepts (normally MTU - 3).
    pub fn max_payload(&self) -> usize {
        self.info().max_payload()
    }

    /// The sending half (cloneable).
    pub fn sender(&self) -> &LinkSender {
        &self.sender
    }

    /// Write credit left. See [`LinkSender::credit`].
    pub fn credit(&self) -> usize {
        self.sender.credit()
    }

    /// Queues one payload, waiting for credit. See [`LinkSender::send`].
    pub async fn send(&self, payload: Bytes) -> Result<(), LinkError> {
        self.sender.send(payload).await
    }

    /// Queues one payload without waiting. See [`LinkSender::try_send`].
    pub fn try_send(&self, payload: Bytes) -> Result<(), LinkError> {
        self.sender.try_send(payload)
    }

    /// The next received payload. See [`LinkReceiver::recv`].
    pub async fn recv(&mut self) -> Option<Bytes> {
        self.receiver.recv().await
    }

    /// Graceful close. See [`LinkSender::close`].
    pub async fn close(&self) -> LinkDownReason {
        self.sender.close().await
    }

    /// Immediate close. See [`LinkSender::abort`].
    pub fn abort(&self) {
        self.sender.abort()
    }

    /// Why the link is down, or `None` while it is up.
    pub fn down_reason(&self) -> Option<LinkDownReason> {
        self.sender.down_reason()
    }

    /// Resolves when the link goes down.
    pub async fn down(&self) -> LinkDownReason {
        self.sender.down().await
    }

    /// A watch on the link's state that does not keep it open.
    pub fn watch(&self) -> LinkWatch {
        LinkWatch {
            shared: self.sender.shared.clone(),
        }
    }

    /// Splits into the two directions, so sending and receiving never contend.
    pub fn into_split(self) -> (LinkSender, LinkReceiver) {
        (self.sender, self.receiver)
    }
}
