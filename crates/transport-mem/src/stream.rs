//! [`MemoryStream`]: one end of an in-memory connection, made of two one-way pipes so its read
//! and write halves share nothing (no lock between the directions).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};

/// A bidirectional in-memory byte stream: reads from one pipe, writes to another. Used raw by
/// tests that speak bytes to a memory listener (garbage, stalls) and as the halves of secured
/// connections.
#[derive(Debug)]
pub struct MemoryStream {
    pub(crate) read: DuplexStream,
    pub(crate) write: DuplexStream,
}

impl MemoryStream {
    /// Splits into the read and write halves.
    pub fn into_split(self) -> (DuplexStream, DuplexStream) {
        (self.read, self.write)
    }
}

impl AsyncRead for MemoryStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl AsyncWrite for MemoryStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.write).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.write).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.write).poll_shutdown(cx)
    }
}
