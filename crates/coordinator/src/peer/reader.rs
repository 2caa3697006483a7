//! The reader task of one connection: decodes envelopes, hands `DATA` to the peer's inbox and
//! control envelopes to the actor. It never writes to a connection, so two coordinators
//! sending to each other can never deadlock on full queues.

use std::sync::Arc;

use bitcraps_transport_core::{Bytes, CloseReason, ConnectionReceiver};
use tokio::sync::mpsc;

use super::{Control, Ctl, LinkEnd};
use crate::envelope::Envelope;
use crate::stats::Counters;

pub(crate) struct Reader {
    pub(crate) link: u64,
    pub(crate) receiver: ConnectionReceiver,
    pub(crate) ctl: mpsc::Sender<Ctl>,
    pub(crate) inbox: mpsc::Sender<(u64, Bytes)>,
    pub(crate) handle: Arc<super::PeerHandle>,
    pub(crate) transport_counters: Arc<Counters>,
}

impl Reader {
    pub(crate) async fn run(mut self) {
        let end = loop {
            let frame = match self.receiver.recv().await {
                Ok(Some(frame)) => frame,
                Ok(None) => {
                    break LinkEnd::Closed(
                        self.receiver
                            .close_reason()
                            .unwrap_or_else(|| CloseReason::Remote("closed".into())),
                    )
                }
                Err(e) => break LinkEnd::Closed(CloseReason::Failed(e.to_string())),
            };
            self.handle.counters.received(frame.len());
            self.transport_counters.received(frame.len());
            let control = match Envelope::decode(frame) {
                Ok(Envelope::Data { id, payload }) => {
                    if self.inbox.send((id, payload)).await.is_err() {
                        return;
                    }
                    continue;
                }
                Ok(Envelope::Ack(ids)) => Control::Ack(ids),
                Ok(Envelope::Ping(n)) => Control::Ping(n),
                Ok(Envelope::Pong(n)) => Control::Pong(n),
                Err(e) => break LinkEnd::Protocol(e.to_string()),
            };
            let msg = Ctl::Received {
                link: self.link,
                control,
            };
            if self.ctl.send(msg).await.is_err() {
                return;
            }
        };
        let _ = self
            .ctl
            .send(Ctl::LinkEnded {
                link: self.link,
                end,
            })
            .await;
    }
}
