//! The peripheral's server task: routes BlueZ's per-central write and notify sockets to
//! links, and runs one notify loop and one write-socket loop per link.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bluer::gatt::local::{CharacteristicControl, CharacteristicControlEvent};
use bluer::gatt::{CharacteristicReader, CharacteristicWriter};
use bluer::Address;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;

use super::lock;
use crate::link::{
    new_link, BleLink, DeviceId, IncomingQueue, LinkControl, LinkDownReason, LinkInfo, QueueConfig,
    Role, SendQueue,
};

/// Routes BlueZ's per-central sockets to links. Its maps hold at most `max_links` entries.
pub(super) struct Server {
    /// To disconnect centrals over the cap.
    pub(super) adapter: bluer::Adapter,
    pub(super) queues: QueueConfig,
    pub(super) max_links: usize,
    /// Live links: where to hand a central's write socket.
    pub(super) links: HashMap<Address, (LinkControl, mpsc::Sender<CharacteristicReader>)>,
    /// Write sockets of centrals that wrote before subscribing.
    pub(super) early_readers: HashMap<Address, CharacteristicReader>,
    pub(super) incoming: Arc<Mutex<mpsc::Sender<BleLink>>>,
}

impl Server {
    pub(super) async fn run(
        mut self,
        mut writes: CharacteristicControl,
        mut notifies: CharacteristicControl,
    ) {
        loop {
            let event = tokio::select! {
                event = writes.next() => event,
                event = notifies.next() => event,
            };
            match event {
                Some(CharacteristicControlEvent::Write(request)) => {
                    let address = request.device_address();
                    match request.accept() {
                        Ok(reader) => self.on_reader(address, reader),
                        Err(err) => {
                            tracing::debug!(error = %err, "accepting a write socket failed")
                        }
                    }
                }
                Some(CharacteristicControlEvent::Notify(writer)) => self.on_subscribe(writer),
                None => break,
            }
        }
    }

    fn prune(&mut self) {
        self.links.retain(|_, (control, _)| !control.is_down());
    }

    fn on_reader(&mut self, address: Address, reader: CharacteristicReader) {
        self.prune();
        if let Some((_, tx)) = self.links.get(&address) {
            if tx.try_send(reader).is_err() {
                tracing::debug!(%address, "link busy; write socket dropped");
            }
        } else if self.early_readers.len() < self.max_links {
            self.early_readers.insert(address, reader);
        }
    }

    fn on_subscribe(&mut self, writer: CharacteristicWriter) {
        self.prune();
        let address = writer.device_address();
        if self.links.contains_key(&address) {
            tracing::debug!(%address, "subscription ignored (already linked)");
            return;
        }
        if self.links.len() >= self.max_links {
            // Refuse the central rather than leave it subscribed to a link nobody serves:
            // it sees the disconnection at once instead of a handshake timeout.
            tracing::debug!(%address, "link cap reached; disconnecting the central");
            self.early_readers.remove(&address);
            if let Ok(device) = self.adapter.device(address) {
                tokio::spawn(async move {
                    if let Err(err) = device.disconnect().await {
                        tracing::debug!(error = %err, "disconnecting a central over the cap failed");
                    }
                });
            }
            return;
        }
        // bluer's writer allows MTU - 5 bytes per notification.
        let max_payload = writer.mtu();
        let mtu = (max_payload + 5).clamp(
            usize::from(crate::link::MIN_MTU),
            usize::from(crate::link::MAX_MTU),
        );
        let mtu = u16::try_from(mtu).unwrap_or(crate::link::MIN_MTU);
        let info = match LinkInfo::new(Role::Peripheral, DeviceId::new(address.to_string()), mtu) {
            Ok(info) => info.with_max_payload(u16::try_from(max_payload).unwrap_or(u16::MAX)),
            Err(err) => {
                tracing::debug!(error = %err, "subscription with a bad MTU ignored");
                return;
            }
        };
        let (link, driver) = new_link(info, self.queues);
        let (reader_tx, reader_rx) = mpsc::channel(1);
        if let Some(reader) = self.early_readers.remove(&address) {
            let _ = reader_tx.try_send(reader);
        }
        let device = self.adapter.device(address).ok();
        tokio::spawn(notify_loop(
            writer,
            device,
            driver.send_queue,
            driver.control.clone(),
        ));
        tokio::spawn(write_socket_loop(
            reader_rx,
            driver.incoming,
            driver.control.clone(),
        ));
        if lock(&self.incoming).try_send(link).is_err() {
            tracing::debug!(%address, "nobody accepting; link dropped");
            return;
        }
        self.links.insert(address, (driver.control, reader_tx));
    }
}

/// How long a gracefully closed link waits for the central to leave before it is
/// disconnected (the central normally leaves at once, after reading the close).
const LINGER: std::time::Duration = std::time::Duration::from_secs(2);

/// Sends queued payloads as notifications to one central, in order; watches for it leaving.
///
/// BlueZ tells a central nothing when the peripheral's notify socket closes, so a link that
/// ends on this side disconnects the central: otherwise it would wait on a silent link.
async fn notify_loop(
    writer: CharacteristicWriter,
    device: Option<bluer::Device>,
    mut send_queue: SendQueue,
    control: LinkControl,
) {
    loop {
        let next = tokio::select! {
            biased;
            _ = control.wait_down() => break,
            _ = writer.closed() => {
                // BlueZ closes the socket both when the central unsubscribes and when the
                // connection is lost; the device's state tells which.
                let connected = match &device {
                    Some(device) => device.is_connected().await.unwrap_or(false),
                    None => true,
                };
                control.set_down(if connected {
                    LinkDownReason::RemoteClose
                } else {
                    LinkDownReason::ConnectionLost
                });
                return;
            }
            next = send_queue.next() => next,
        };
        let Some(payload) = next else {
            control.set_down(LinkDownReason::LocalClose);
            // Graceful: what was queued is in the socket; let the central read it and leave.
            let _ = tokio::time::timeout(LINGER, writer.closed()).await;
            break;
        };
        if let Err(err) = writer.send(&payload).await {
            control.set_down(LinkDownReason::Failed(err.to_string()));
            break;
        }
    }
    drop(writer);
    if let Some(device) = device {
        if let Err(err) = device.disconnect().await {
            tracing::debug!(error = %err, "disconnecting the central of a closed link failed");
        }
    }
}

/// Reads the central's writes (from whichever write socket it acquired last) into the link.
async fn write_socket_loop(
    mut readers: mpsc::Receiver<CharacteristicReader>,
    incoming: IncomingQueue,
    control: LinkControl,
) {
    let mut current: Option<CharacteristicReader> = None;
    loop {
        let received = tokio::select! {
            biased;
            _ = control.wait_down() => return,
            reader = readers.recv() => {
                match reader {
                    Some(reader) => current = Some(reader),
                    None => return,
                }
                continue;
            }
            received = recv_from(current.as_ref()) => received,
        };
        match received {
            Ok(value) if !value.is_empty() => {
                let delivered = tokio::select! {
                    biased;
                    _ = control.wait_down() => return,
                    delivered = incoming.deliver(Bytes::from(value)) => delivered,
                };
                if delivered.is_err() {
                    control.set_down(LinkDownReason::LocalClose);
                    return;
                }
            }
            // End of file or an error: this write socket is gone; the notify side decides
            // whether the link is.
            Ok(_) | Err(_) => current = None,
        }
    }
}

/// Receives from the current write socket, or waits forever when there is none.
async fn recv_from(reader: Option<&CharacteristicReader>) -> std::io::Result<Vec<u8>> {
    match reader {
        Some(reader) => reader.recv().await,
        None => std::future::pending().await,
    }
}
