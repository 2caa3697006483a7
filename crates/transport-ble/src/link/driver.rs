//! The backend's end of a link: the other ends of the bounded queues and the shared down state.
//!
//! [`new_link`] returns the application's [`BleLink`] and the backend's [`LinkDriver`]. The
//! backend runs tasks that take payloads from [`SendQueue`] and put them on the radio, put
//! received payloads into [`IncomingQueue`], and report the link going down through
//! [`LinkControl`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, watch};

use super::handle::{BleLink, LinkReceiver, LinkSender};
use super::{LinkDownReason, LinkInfo, QueueConfig};

/// What the application queues for the backend.
#[derive(Debug)]
pub(crate) enum SendItem {
    /// One ATT payload.
    Data(Bytes),
    /// Graceful close: everything queued before has been taken.
    Close,
}

/// State shared by every handle of one end of a link.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) info: LinkInfo,
    /// `None` while up; the first reason set wins.
    pub(crate) down: watch::Sender<Option<LinkDownReason>>,
    /// Set by a graceful close: no more sends are accepted.
    pub(crate) closing: AtomicBool,
}

impl Shared {
    pub(crate) fn set_down(&self, reason: LinkDownReason) -> bool {
        self.down.send_if_modified(|state| {
            if state.is_none() {
                *state = Some(reason);
                true
            } else {
                false
            }
        })
    }

    pub(crate) fn down_reason(&self) -> Option<LinkDownReason> {
        self.down.borrow().clone()
    }

    pub(crate) async fn wait_down(&self) -> LinkDownReason {
        let mut rx = self.down.subscribe();
        loop {
            if let Some(reason) = rx.borrow_and_update().clone() {
                return reason;
            }
            if rx.changed().await.is_err() {
                // Unreachable while `self` holds the sender; report a local close to be safe.
                return LinkDownReason::LocalClose;
            }
        }
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    pub(crate) fn mark_closing(&self) {
        self.closing.store(true, Ordering::Release);
    }
}

/// Creates one end of a link: the application's [`BleLink`] and the backend's [`LinkDriver`].
pub fn new_link(info: LinkInfo, queues: QueueConfig) -> (BleLink, LinkDriver) {
    let (out_tx, out_rx) = mpsc::channel(queues.send_credit.max(1));
    let (in_tx, in_rx) = mpsc::channel(queues.recv_capacity.max(1));
    let shared = Arc::new(Shared {
        info,
        down: watch::Sender::new(None),
        closing: AtomicBool::new(false),
    });
    let link = BleLink::from_parts(
        LinkSender::new(shared.clone(), out_tx),
        LinkReceiver::new(shared.clone(), in_rx),
    );
    let driver = LinkDriver {
        control: LinkControl {
            shared: shared.clone(),
        },
        send_queue: SendQueue { rx: out_rx },
        incoming: IncomingQueue { tx: in_tx },
    };
    (link, driver)
}

/// The backend's end of one link. Its three parts may go to different tasks.
#[derive(Debug)]
pub struct LinkDriver {
    /// Down state and link facts.
    pub control: LinkControl,
    /// Payloads the application sent, in order.
    pub send_queue: SendQueue,
    /// Where received payloads go, in order.
    pub incoming: IncomingQueue,
}

/// The link's down state, as the backend sees it. Cheap to clone.
#[derive(Clone, Debug)]
pub struct LinkControl {
    shared: Arc<Shared>,
}

impl LinkControl {
    /// The link's facts.
    pub fn info(&self) -> &LinkInfo {
        &self.shared.info
    }

    /// Marks the link down with `reason`. The first reason set wins; returns whether this call
    /// set it. Senders fail and waiters wake from then on.
    pub fn set_down(&self, reason: LinkDownReason) -> bool {
        self.shared.set_down(reason)
    }

    /// Why the link is down, or `None` while it is up.
    pub fn down_reason(&self) -> Option<LinkDownReason> {
        self.shared.down_reason()
    }

    /// Whether the link is down.
    pub fn is_down(&self) -> bool {
        self.down_reason().is_some()
    }

    /// Resolves when the link goes down (at once if it already is).
    pub async fn wait_down(&self) -> LinkDownReason {
        self.shared.wait_down().await
    }
}

/// The payloads the application queued, in order.
#[derive(Debug)]
pub struct SendQueue {
    rx: mpsc::Receiver<SendItem>,
}

impl SendQueue {
    /// The next payload to put on the radio. `None` means the application closed the link
    /// gracefully (after everything it queued before) or dropped every sender: the backend
    /// should then bring the link down with [`LinkDownReason::LocalClose`].
    ///
    /// Taking a payload frees one unit of write credit.
    pub async fn next(&mut self) -> Option<Bytes> {
        match self.rx.recv().await {
            Some(SendItem::Data(payload)) => Some(payload),
            Some(SendItem::Close) | None => {
                self.rx.close();
                None
            }
        }
    }
}

/// Where the backend puts received payloads.
#[derive(Clone, Debug)]
pub struct IncomingQueue {
    tx: mpsc::Sender<Bytes>,
}

/// The application dropped its receiver; the payload was not delivered.
#[derive(Debug, thiserror::Error)]
#[error("the link's receiver was dropped")]
pub struct ReceiverGone;

impl IncomingQueue {
    /// Queues one received payload, waiting while the application's receive queue is full (this
    /// is what holds the remote writer back). Fails when the application dropped its receiver.
    pub async fn deliver(&self, payload: Bytes) -> Result<(), ReceiverGone> {
        self.tx.send(payload).await.map_err(|_| ReceiverGone)
    }

    /// Resolves when the application dropped its receiver.
    pub async fn closed(&self) {
        self.tx.closed().await
    }
}
