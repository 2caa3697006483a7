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
//! goes down when the central unsubscribes or disconnects. A central that subscribes while
//! [`PeripheralConfig::max_links`] links are up is disconnected.
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
    characteristic_control, Application, ApplicationHandle, Characteristic, CharacteristicNotify,
    CharacteristicNotifyMethod, CharacteristicWrite, CharacteristicWriteMethod, Service,
};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::link::{
    AdvertisingConfig, BleAdapter, BleLink, DeviceId, IncomingLinks, LinkError, QueueConfig, Scan,
};
use crate::uuids;

mod server;
use server::Server;

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
            adapter: adapter.clone(),
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
