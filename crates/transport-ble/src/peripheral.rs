//! The peripheral (GATT server) role on Linux through BlueZ (bluer), behind the cargo feature
//! `peripheral`.
//!
//! It publishes one GATT service with a write characteristic (write-without-response,
//! central -> peripheral) and a notify characteristic (peripheral -> central), both in bluer's
//! IO mode: BlueZ hands over one socket per central for each (`AcquireWrite`,
//! `AcquireNotify`), so every connected central is notified separately and each link gets its
//! own backpressure.
//!
//! A link comes up when a central subscribes to the notify characteristic; its write socket
//! joins the link when the central first writes (which may happen before or after). The link
//! goes down when the central unsubscribes or disconnects.
//!
//! # MTU
//!
//! The link's MTU is the one BlueZ negotiated. BlueZ loses the tail of a notification that
//! uses the full `MTU - 3`, so bluer allows `MTU - 5` per notification and the link's
//! [`max_payload`](crate::link::LinkInfo::max_payload) is lowered to that.
//!
//! This backend cannot scan or connect; those fail with [`LinkError::Unsupported`].
//! Hardware tests: `tests/hardware.rs`, ignored by default ("needs a Bluetooth adapter").

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bluer::adv::{Advertisement, AdvertisementHandle};
use bluer::gatt::local::{
    characteristic_control, Application, ApplicationHandle, Characteristic, CharacteristicControl,
    CharacteristicControlEvent, CharacteristicNotify, CharacteristicNotifyMethod,
    CharacteristicWrite, CharacteristicWriteMethod, Service,
};
use bluer::gatt::{CharacteristicReader, CharacteristicWriter};
use bluer::Address;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::link::{
    new_link, AdvertisingConfig, BleAdapter, BleLink, DeviceId, IncomingLinks, IncomingQueue,
    LinkControl, LinkDownReason, LinkError, LinkInfo, OutgoingQueue, QueueConfig, Role, Scan,
};
use crate::uuids;

const BACKEND: &str = "bluer";

/// Settings of a [`PeripheralAdapter`].
#[derive(Clone, Debug)]
pub struct PeripheralConfig {
    /// The GATT service to publish.
    pub service: Uuid,
    /// The characteristic centrals write to.
    pub write_characteristic: Uuid,
    /// The characteristic centrals subscribe to.
    pub notify_characteristic: Uuid,
    /// The adapter to use (`hci0`, ...); `None` for BlueZ's default.
    pub adapter_name: Option<String>,
    /// Queue sizes of each link.
    pub queues: QueueConfig,
    /// Most centrals linked at once; later subscriptions are ignored (7 by default).
    pub max_links: usize,
}

impl Default for PeripheralConfig {
    fn default() -> Self {
        Self {
            service: uuids::SERVICE,
            write_characteristic: uuids::WRITE_CHARACTERISTIC,
            notify_characteristic: uuids::NOTIFY_CHARACTERISTIC,
            adapter_name: None,
            queues: QueueConfig::default(),
            max_links: 7,
        }
    }
}

fn stack(err: bluer::Error) -> LinkError {
    LinkError::Stack(err.to_string())
}

/// The peripheral role on a BlueZ adapter.
pub struct PeripheralAdapter {
    adapter: bluer::Adapter,
    local: DeviceId,
    max_links: usize,
    advertisement: Mutex<Option<AdvertisementHandle>>,
    /// Where the server hands new links; replaced by each `listen` once the last listener
    /// is gone.
    incoming: Arc<Mutex<mpsc::Sender<BleLink>>>,
    _app: ApplicationHandle,
    _server: AbortOnDrop,
}

impl std::fmt::Debug for PeripheralAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeripheralAdapter")
            .field("local", &self.local)
            .field("max_links", &self.max_links)
            .finish_non_exhaustive()
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl PeripheralAdapter {
    /// Opens the adapter, powers it on and publishes the GATT service. Advertising starts with
    /// [`BleAdapter::start_advertising`]; links arrive through [`BleAdapter::listen`].
    pub async fn new(config: PeripheralConfig) -> Result<Self, LinkError> {
        let unavailable = |e: bluer::Error| LinkError::AdapterUnavailable(e.to_string());
        let session = bluer::Session::new().await.map_err(unavailable)?;
        let adapter = match &config.adapter_name {
            Some(name) => session.adapter(name).map_err(unavailable)?,
            None => session.default_adapter().await.map_err(unavailable)?,
        };
        adapter.set_powered(true).await.map_err(unavailable)?;
        let local = DeviceId::new(adapter.address().await.map_err(unavailable)?.to_string());

        let (write_control, write_handle) = characteristic_control();
        let (notify_control, notify_handle) = characteristic_control();
        let app = Application {
            services: vec![Service {
                uuid: config.service,
                primary: true,
                characteristics: vec![
                    Characteristic {
                        uuid: config.write_characteristic,
                        write: Some(CharacteristicWrite {
                            write_without_response: true,
                            method: CharacteristicWriteMethod::Io,
                            ..Default::default()
                        }),
                        control_handle: write_handle,
                        ..Default::default()
                    },
                    Characteristic {
                        uuid: config.notify_characteristic,
                        notify: Some(CharacteristicNotify {
                            notify: true,
                            method: CharacteristicNotifyMethod::Io,
                            ..Default::default()
                        }),
                        control_handle: notify_handle,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        };
        let app_handle = adapter.serve_gatt_application(app).await.map_err(stack)?;
        let max_links = config.max_links.max(1);
        // Nobody listens yet: a closed channel, replaced by `listen`.
        let (tx, _) = mpsc::channel(1);
        let incoming = Arc::new(Mutex::new(tx));
        let server = Server {
            queues: config.queues,
            max_links,
            links: HashMap::new(),
            early_readers: HashMap::new(),
            incoming: incoming.clone(),
        };
        let task = tokio::spawn(server.run(write_control, notify_control));
        Ok(Self {
            adapter,
            local,
            max_links,
            advertisement: Mutex::new(None),
            incoming,
            _app: app_handle,
            _server: AbortOnDrop(task),
        })
    }
}

#[async_trait]
impl BleAdapter for PeripheralAdapter {
    fn local_id(&self) -> DeviceId {
        self.local.clone()
    }

    fn max_links(&self) -> usize {
        self.max_links
    }

    async fn start_advertising(&self, config: AdvertisingConfig) -> Result<(), LinkError> {
        let advertisement = Advertisement {
            service_uuids: [config.service].into_iter().collect(),
            local_name: Some(config.local_name),
            discoverable: Some(true),
            min_interval: config.interval,
            max_interval: config.interval,
            tx_power: config.tx_power_dbm.map(i16::from),
            ..Default::default()
        };
        let handle = self.adapter.advertise(advertisement).await.map_err(stack)?;
        // Replacing the handle unregisters the previous advertisement.
        let previous = lock(&self.advertisement).replace(handle);
        drop(previous);
        Ok(())
    }

    async fn stop_advertising(&self) -> Result<(), LinkError> {
        let previous = lock(&self.advertisement).take();
        drop(previous);
        Ok(())
    }

    async fn scan(&self, _service: Uuid) -> Result<Scan, LinkError> {
        Err(LinkError::Unsupported {
            operation: "scanning",
            backend: BACKEND,
        })
    }

    async fn connect(&self, _device: &DeviceId, _timeout: Duration) -> Result<BleLink, LinkError> {
        Err(LinkError::Unsupported {
            operation: "connecting as central",
            backend: BACKEND,
        })
    }

    async fn listen(&self) -> Result<IncomingLinks, LinkError> {
        let mut tx = lock(&self.incoming);
        if !tx.is_closed() {
            return Err(LinkError::AlreadyListening);
        }
        let (new_tx, rx) = mpsc::channel(self.max_links);
        *tx = new_tx;
        Ok(IncomingLinks::new(rx, None))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Routes BlueZ's per-central sockets to links. Its maps hold at most `max_links` entries.
struct Server {
    queues: QueueConfig,
    max_links: usize,
    /// Live links: where to hand a central's write socket.
    links: HashMap<Address, (LinkControl, mpsc::Sender<CharacteristicReader>)>,
    /// Write sockets of centrals that wrote before subscribing.
    early_readers: HashMap<Address, CharacteristicReader>,
    incoming: Arc<Mutex<mpsc::Sender<BleLink>>>,
}

impl Server {
    async fn run(mut self, mut writes: CharacteristicControl, mut notifies: CharacteristicControl) {
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
        if self.links.len() >= self.max_links || self.links.contains_key(&address) {
            tracing::debug!(%address, "subscription ignored (cap reached or already linked)");
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
        tokio::spawn(notify_loop(writer, driver.outgoing, driver.control.clone()));
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

/// Sends queued payloads as notifications to one central, in order; watches for it leaving.
async fn notify_loop(
    writer: CharacteristicWriter,
    mut outgoing: OutgoingQueue,
    control: LinkControl,
) {
    loop {
        let next = tokio::select! {
            biased;
            _ = control.wait_down() => return,
            _ = writer.closed() => {
                control.set_down(LinkDownReason::RemoteClose);
                return;
            }
            next = outgoing.next() => next,
        };
        let Some(payload) = next else {
            control.set_down(LinkDownReason::LocalClose);
            return;
        };
        if let Err(err) = writer.send(&payload).await {
            control.set_down(LinkDownReason::Failed(err.to_string()));
            return;
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
