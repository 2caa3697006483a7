//! Secured connections over any byte stream: the handshake, the connection driver and a
//! generic listener. TCP, WebSocket, BLE and the memory backend are thin shells over this.
//!
//! A backend supplies raw streams (read and write halves, so the two directions never share a
//! lock); a [`StreamContext`] holds what every connection of a transport shares: the identity,
//! the [`ChannelConfig`] and the [`SharedLimiter`].

mod driver;
mod handshake;
#[cfg(test)]
mod handshake_tests;
mod idle;
mod listener;
mod read_buffers;

pub use listener::{
    spawn_stream_listener, AcceptedStream, RefusalTask, StreamAcceptor, StreamListener,
};

use std::future::Future;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::connection::{new_connection, ConnectionInfo};
use crate::policy::Direction;
use crate::secure::LocalIdentity;
use crate::{
    ChannelConfig, Connection, PeerId, Result, SharedLimiter, TransportAddress, TransportKind,
};

/// What every stream connection of one transport shares.
#[derive(Debug, Clone)]
pub struct StreamContext {
    /// This node's prepared identity.
    pub identity: Arc<LocalIdentity>,
    /// Channel settings.
    pub config: Arc<ChannelConfig>,
    /// Limits, consulted on dials and accepts.
    pub limiter: SharedLimiter,
    /// The backend's kind, recorded in each connection's info.
    pub kind: TransportKind,
}

/// The raw halves of a freshly connected stream and its addresses.
#[derive(Debug)]
pub struct RawStream<R, W> {
    /// The read half.
    pub reader: R,
    /// The write half.
    pub writer: W,
    /// This side's address.
    pub local_addr: TransportAddress,
    /// The remote's address.
    pub remote_addr: TransportAddress,
}

impl StreamContext {
    /// Dials `addr`: checks the outbound limits, runs `connect` to get a raw stream, then the
    /// handshake, all within the handshake timeout. A failure backs off later dials to `addr`.
    pub async fn dial<R, W, F, Fut>(
        &self,
        addr: &TransportAddress,
        expect: Option<PeerId>,
        connect: F,
    ) -> Result<Connection>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<RawStream<R, W>>>,
    {
        let attempt = async {
            let raw = connect().await?;
            self.secure_outbound(raw, expect).await
        };
        self.limiter
            .guard_dial(
                addr,
                self.config.handshake_timeout,
                "dial and handshake",
                attempt,
            )
            .await
    }

    /// Runs the dialer's handshake on `raw` and starts the connection (no timeout, no dial
    /// limits: see [`StreamContext::dial`]).
    pub async fn secure_outbound<R, W>(
        &self,
        raw: RawStream<R, W>,
        expect: Option<PeerId>,
    ) -> Result<Connection>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let RawStream {
            mut reader,
            mut writer,
            local_addr,
            remote_addr,
        } = raw;
        let limiter = self.limiter.clone();
        let secured = handshake::outbound(
            &mut reader,
            &mut writer,
            &self.identity,
            &self.config,
            expect,
            |peer| limiter.admit(peer, Direction::Outbound),
        )
        .await?;
        Ok(self.start(reader, writer, secured, local_addr, remote_addr, true))
    }

    /// Runs the listener's handshake on `raw` and starts the connection (no timeout: the
    /// listener applies it).
    pub async fn secure_inbound<R, W>(&self, raw: RawStream<R, W>) -> Result<Connection>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let RawStream {
            mut reader,
            mut writer,
            local_addr,
            remote_addr,
        } = raw;
        let limiter = self.limiter.clone();
        let secured = handshake::inbound(
            &mut reader,
            &mut writer,
            &self.identity,
            &self.config,
            |peer| limiter.admit(peer, Direction::Inbound),
        )
        .await?;
        Ok(self.start(reader, writer, secured, local_addr, remote_addr, false))
    }

    fn start<R, W, G: Send + 'static>(
        &self,
        reader: R,
        writer: W,
        secured: handshake::Secured<G>,
        local_addr: TransportAddress,
        remote_addr: TransportAddress,
        outbound: bool,
    ) -> Connection
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let info = ConnectionInfo {
            local_peer: self.identity.peer_id(),
            remote_peer: secured.peer,
            local_addr,
            remote_addr,
            kind: self.kind,
            outbound,
        };
        let (connection, io) = new_connection(info, &self.config);
        driver::spawn(
            reader,
            writer,
            secured.leftover,
            secured.sealer,
            secured.opener,
            io,
            secured.guard,
        );
        connection
    }
}
