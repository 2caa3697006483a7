//! The shell's direct links: each one's reader task, writes with a bounded stash while the
//! link's send queue is full, and links coming up and going down.

use std::collections::VecDeque;

use bitcraps_transport_core::policy::TokenBucket;
use bitcraps_transport_core::{Bytes, Connection, ConnectionSender};

use super::{clock, Shell};
use crate::transport::MeshTransportError;
use crate::LinkId;

/// What the tasks of direct links report.
pub(super) enum LinkEvent {
    Packet(LinkId, Bytes),
    Down(LinkId),
    /// The link's send queue has room again.
    Ready(LinkId),
}

/// Packets held per direct link while its send queue is full; more are dropped.
const LINK_STASH: usize = 256;

/// One direct link: its sender and what waits for room in its send queue.
pub(super) struct DirectLink {
    sender: ConnectionSender,
    stash: VecDeque<Bytes>,
    /// What the link may still bring in.
    bucket: TokenBucket,
}

impl Shell {
    /// Writes on a direct link, or holds the packet (bounded) until its queue has room. A
    /// failed link is reported by its reader.
    pub(super) fn transmit(&mut self, id: LinkId, bytes: Bytes) {
        let Some(link) = self.links.get_mut(&id) else {
            return;
        };
        if link.stash.is_empty() {
            match link.sender.try_send(bytes.clone()) {
                Ok(true) => return,
                Ok(false) => self.wait_ready(id),
                Err(_) => return,
            }
        }
        let Some(link) = self.links.get_mut(&id) else {
            return;
        };
        if link.stash.len() < LINK_STASH {
            link.stash.push_back(bytes);
        } else {
            self.stats.dropped_transmissions += 1;
        }
    }

    fn wait_ready(&self, id: LinkId) {
        let Some(link) = self.links.get(&id) else {
            return;
        };
        let sender = link.sender.clone();
        let tx = self.link_tx.clone();
        tokio::spawn(async move {
            if sender.ready().await.is_ok() {
                let _ = tx.send(LinkEvent::Ready(id)).await;
            }
        });
    }

    fn on_ready(&mut self, id: LinkId) {
        let Some(link) = self.links.get_mut(&id) else {
            return;
        };
        while let Some(bytes) = link.stash.pop_front() {
            match link.sender.try_send(bytes.clone()) {
                Ok(true) => {}
                Ok(false) => {
                    link.stash.push_front(bytes);
                    return self.wait_ready(id);
                }
                Err(_) => return link.stash.clear(),
            }
        }
    }

    pub(super) fn add_link(
        &mut self,
        conn: Connection,
    ) -> std::result::Result<(), MeshTransportError> {
        let peer = conn.remote_peer();
        if peer == self.me {
            return Err(MeshTransportError::LinkToSelf);
        }
        let cap = self.config.max_direct_links.min(crate::MAX_LINKS);
        if self.links.len() >= cap {
            return Err(MeshTransportError::TooManyLinks(cap));
        }
        let id = LinkId(self.next_link);
        self.next_link += 1;
        let (sender, mut receiver) = conn.split();
        self.links.insert(
            id,
            DirectLink {
                sender,
                stash: VecDeque::new(),
                bucket: TokenBucket::new(
                    self.config.link_packet_burst.max(1),
                    f64::from(self.config.link_packets_per_second),
                    clock(),
                ),
            },
        );
        self.mesh.link_up(id, peer, clock());
        let tx = self.link_tx.clone();
        tokio::spawn(async move {
            while let Ok(Some(bytes)) = receiver.recv().await {
                if tx.send(LinkEvent::Packet(id, bytes)).await.is_err() {
                    return;
                }
            }
            let _ = tx.send(LinkEvent::Down(id)).await;
        });
        tracing::debug!(link = id.0, peer = %peer.short(), "mesh direct link up");
        Ok(())
    }

    pub(super) fn link_event(&mut self, event: LinkEvent) {
        let now = clock();
        match event {
            LinkEvent::Packet(link, bytes) => {
                let over = self
                    .links
                    .get_mut(&link)
                    .is_some_and(|l| l.bucket.try_take(1, now).is_err());
                if over {
                    self.stats.rate_limited += 1;
                    return;
                }
                if let Err(e) = self.mesh.handle_packet(link, bytes, now) {
                    tracing::trace!(link = link.0, error = %e, "mesh packet dropped");
                }
            }
            LinkEvent::Down(link) => {
                self.links.remove(&link);
                self.mesh.link_down(link, now);
                tracing::debug!(link = link.0, "mesh direct link down");
            }
            LinkEvent::Ready(link) => self.on_ready(link),
        }
    }
}
