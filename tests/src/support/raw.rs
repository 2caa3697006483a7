//! Raw, unauthenticated byte connections to a listener, for the hostile-input and per-source
//! limit cases: connect from a numbered source, send bytes, wait for the listener to hang up.

use bitcraps_transport_core::TransportAddress;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{within, CaseResult, Context};
use crate::{Harness, RawIo};

/// A raw byte connection from `source` (the case is only listed when the harness has raw
/// access, so `None` is a harness bug).
pub(crate) async fn raw_connect(
    h: &dyn Harness,
    addr: &TransportAddress,
    source: u8,
) -> CaseResult<Box<dyn RawIo>> {
    match within("raw connect", h.connect_raw(addr, source)).await? {
        Some(r) => r.ctx("raw connect"),
        None => Err(format!(
            "harness {} says it has raw access, but connect_raw returned None",
            h.name()
        )),
    }
}

/// How a raw connection ended, as its owner saw it.
#[derive(Debug)]
pub(crate) struct RawEnd {
    /// Bytes the listener sent before closing.
    pub(crate) received: usize,
    /// `"eof"`, or the read error.
    pub(crate) how: String,
}

/// Reads until the listener closes the raw connection (end of stream or a reset); fails if it
/// does not within [`GUARD`].
pub(crate) async fn raw_wait_closed(raw: &mut Box<dyn RawIo>) -> CaseResult<RawEnd> {
    let mut buf = [0u8; 4096];
    let mut received = 0usize;
    within(
        "waiting for the listener to close the raw connection",
        async {
            loop {
                match raw.read(&mut buf).await {
                    Ok(0) => {
                        break RawEnd {
                            received,
                            how: "eof".into(),
                        }
                    }
                    Ok(n) => received += n,
                    Err(e) => {
                        break RawEnd {
                            received,
                            how: format!("{:?}", e.kind()),
                        }
                    }
                }
            }
        },
    )
    .await
}

/// Writes `bytes` to `raw`; a write refused because the listener already hung up is fine.
pub(crate) async fn raw_send(raw: &mut Box<dyn RawIo>, bytes: &[u8]) -> CaseResult {
    let write = async {
        raw.write_all(bytes).await?;
        raw.flush().await
    };
    match within("raw write", write).await? {
        Ok(()) => Ok(()),
        Err(e) if is_hangup(&e) => Ok(()),
        Err(e) => Err(format!("raw write: {e:?}")),
    }
}

fn is_hangup(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), BrokenPipe | ConnectionReset | ConnectionAborted)
}

/// Connects raw from `source`, sends `bytes` and returns the open connection (the caller waits
/// for the listener's verdict, then for the close with [`raw_wait_closed`]).
pub(crate) async fn raw_roundtrip(
    h: &dyn Harness,
    addr: &TransportAddress,
    source: u8,
    bytes: &[u8],
) -> CaseResult<Box<dyn RawIo>> {
    let mut raw = raw_connect(h, addr, source).await?;
    raw_send(&mut raw, bytes).await?;
    Ok(raw)
}
