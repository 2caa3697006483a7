//! The BLE listener: incoming links as raw streams for the core's stream listener
//! ([`BleAcceptor`]), and [`BleListener`], which stops advertising when it closes.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bitcraps_transport_core::stream::{AcceptedStream, StreamAcceptor, StreamListener};
use bitcraps_transport_core::{Inbound, Listener, ListenerStats, Result, TransportAddress};

use super::{raw_stream, source_key};
use crate::link::{BleAdapter, IncomingLinks};
use crate::registry::LinkRegistry;
use crate::stream::{BleReadHalf, BleStreamConfig, BleWriteHalf};

/// Hands incoming links to the core's listener, keyed by the remote device.
pub(super) struct BleAcceptor {
    pub(super) incoming: IncomingLinks,
    pub(super) adapter: Arc<dyn BleAdapter>,
    pub(super) stream: BleStreamConfig,
    pub(super) links: LinkRegistry,
}

impl StreamAcceptor for BleAcceptor {
    type Reader = BleReadHalf;
    type Writer = BleWriteHalf;

    async fn accept(&mut self) -> io::Result<AcceptedStream<BleReadHalf, BleWriteHalf>> {
        let link = self.incoming.accept().await.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotConnected,
                "the adapter stopped taking incoming links",
            )
        })?;
        let source = source_key(link.remote());
        Ok(AcceptedStream {
            raw: raw_stream(link, self.stream, &self.adapter, &self.links, None),
            source,
        })
    }
}

/// A listening BLE transport: the core's stream listener, plus the advertisement, which stops
/// when the listener is closed or dropped.
pub struct BleListener {
    inner: StreamListener,
    adapter: Option<Arc<dyn BleAdapter>>,
    /// The transport's listen generation, and this listener's: a listener dropped late must
    /// not stop the advertisement of a newer one.
    generation: (Arc<AtomicU64>, u64),
}

impl std::fmt::Debug for BleListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BleListener")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl BleListener {
    pub(super) fn new(
        inner: StreamListener,
        adapter: Arc<dyn BleAdapter>,
        generation: (Arc<AtomicU64>, u64),
    ) -> Self {
        Self {
            inner,
            adapter: Some(adapter),
            generation,
        }
    }

    fn is_current(&self) -> bool {
        self.generation.0.load(Ordering::Acquire) == self.generation.1
    }
}

#[async_trait]
impl Listener for BleListener {
    fn local_addr(&self) -> &TransportAddress {
        self.inner.local_addr()
    }

    async fn accept(&mut self) -> Result<Inbound> {
        self.inner.accept().await
    }

    fn stats(&self) -> ListenerStats {
        self.inner.stats()
    }

    async fn close(&mut self) {
        self.inner.close().await;
        let current = self.is_current();
        if let Some(adapter) = self.adapter.take().filter(|_| current) {
            if let Err(err) = adapter.stop_advertising().await {
                tracing::debug!(error = %err, "ble: stop advertising failed");
            }
        }
    }
}

impl Drop for BleListener {
    fn drop(&mut self) {
        // Incoming links are refused from now on (the acceptor is gone); stop advertising too.
        if let (Some(adapter), Ok(handle)) =
            (self.adapter.take(), tokio::runtime::Handle::try_current())
        {
            let (generation, mine) = (self.generation.0.clone(), self.generation.1);
            handle.spawn(async move {
                if generation.load(Ordering::Acquire) == mine {
                    let _ = adapter.stop_advertising().await;
                }
            });
        }
    }
}
