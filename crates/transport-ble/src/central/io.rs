//! The two tasks of a central link: writes (write-without-response, in order) and
//! notifications plus the disconnect event.

use btleplug::api::{CentralEvent, Characteristic, Peripheral as _, WriteType};
use btleplug::platform::Peripheral;
use bytes::Bytes;
use futures::StreamExt;
use uuid::Uuid;

use crate::link::{IncomingQueue, LinkControl, LinkDownReason, SendQueue};

/// Writes queued payloads in order, one write-without-response each. A write is awaited
/// before the next starts, so order is kept.
pub(super) async fn write_loop(
    peripheral: Peripheral,
    write: Characteristic,
    mut send_queue: SendQueue,
    control: LinkControl,
) {
    loop {
        let next = tokio::select! {
            biased;
            _ = control.wait_down() => break,
            next = send_queue.next() => next,
        };
        let Some(payload) = next else {
            control.set_down(LinkDownReason::LocalClose);
            break;
        };
        let written = tokio::select! {
            biased;
            _ = control.wait_down() => break,
            written = peripheral.write(&write, &payload, WriteType::WithoutResponse) => written,
        };
        if let Err(err) = written {
            control.set_down(LinkDownReason::Failed(err.to_string()));
            break;
        }
    }
    if let Err(err) = peripheral.disconnect().await {
        tracing::debug!(error = %err, "disconnect failed");
    }
}

/// Reads the notification stream into the link and watches for the disconnect event.
pub(super) async fn read_loop(
    peripheral: Peripheral,
    notify: Uuid,
    mut notifications: std::pin::Pin<
        Box<dyn futures::Stream<Item = btleplug::api::ValueNotification> + Send>,
    >,
    mut events: std::pin::Pin<Box<dyn futures::Stream<Item = CentralEvent> + Send>>,
    incoming: IncomingQueue,
    control: LinkControl,
) {
    let me = peripheral.id();
    loop {
        tokio::select! {
            biased;
            _ = control.wait_down() => break,
            event = events.next() => match event {
                Some(CentralEvent::DeviceDisconnected(id)) if id == me => {
                    control.set_down(LinkDownReason::ConnectionLost);
                    break;
                }
                Some(_) => {}
                None => {
                    control.set_down(LinkDownReason::AdapterGone);
                    break;
                }
            },
            value = notifications.next() => match value {
                Some(value) if value.uuid == notify => {
                    let delivered = tokio::select! {
                        biased;
                        _ = control.wait_down() => break,
                        delivered = incoming.deliver(Bytes::from(value.value)) => delivered,
                    };
                    if delivered.is_err() {
                        control.set_down(LinkDownReason::LocalClose);
                        break;
                    }
                }
                Some(_) => {}
                None => {
                    control.set_down(LinkDownReason::ConnectionLost);
                    break;
                }
            },
        }
    }
}
