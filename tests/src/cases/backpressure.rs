//! Backpressure: a receiver that never reads holds the sender back within a bounded number of
//! messages (the transport does not buffer without limit), and once it drains, every message
//! arrives intact and in order.

use std::sync::Arc;
use std::time::Duration;

use bitcraps_transport_core::{ChannelConfig, Connection};

use crate::support::*;
use crate::Harness;

const MESSAGE: usize = 16 * 1024;
/// More messages than this accepted while nobody reads (about 31 MiB) means no backpressure.
const BOUND: u64 = 2_000;
/// A send still blocked after this long, with the queue full, is held back by the receiver.
/// This is a probe, not an assertion on time: a send that completes only adds to the count
/// that must stay under [`BOUND`].
const STALL_PROBE: Duration = Duration::from_millis(500);

/// Small queues and buffers on both sides.
fn small_channel() -> ChannelConfig {
    ChannelConfig {
        send_queue: 4,
        recv_queue: 4,
        recv_buffer_bytes: 64 * 1024,
        max_message_size: MESSAGE,
        ..ChannelConfig::default()
    }
}

/// Pushes messages until the sender is held back; returns how many were accepted.
async fn fill(dialed: &Connection) -> CaseResult<u64> {
    let sender = dialed.sender();
    let mut accepted = 0u64;
    while accepted < BOUND {
        let message = numbered(accepted, MESSAGE);
        if sender.try_send(message.clone()).ctx("try_send")? {
            accepted += 1;
            continue;
        }
        // The queue is full now; is it still full a while later?
        match tokio::time::timeout(STALL_PROBE, sender.send(message)).await {
            Err(_) => return Ok(accepted),
            Ok(sent) => {
                sent.ctx("send")?;
                accepted += 1;
            }
        }
    }
    Err(format!(
        "the transport accepted {BOUND} messages of {MESSAGE} bytes ({} MiB) while the receiver \
         read nothing: the sender is not held back",
        BOUND * MESSAGE as u64 / (1024 * 1024)
    ))
}

pub(crate) async fn slow_receiver_holds_sender_back(h: Arc<dyn Harness>) -> CaseResult {
    let p = pair(&*h, unlimited(), small_channel()).await?;
    let ordered = p.dialer.capabilities().ordered;
    let (dialed, mut accepted) = (p.dialed, p.accepted);
    let sent = within("filling the pipe", fill(&dialed)).await??;
    tracing::debug!(sent, "sender held back");
    ensure!(sent > 0, "not a single message was accepted for sending");
    // Now drain: everything accepted arrives, intact, in order; then the close.
    let reader = tokio::spawn(async move {
        let mut seen = vec![false; sent as usize];
        let mut next = 0u64;
        let mut count = 0u64;
        loop {
            match accepted.recv().await {
                Ok(Some(m)) => {
                    let Some(seq) = check_numbered(&m, MESSAGE).filter(|s| *s < sent) else {
                        return Err(format!("message {count} is corrupt or was never sent"));
                    };
                    if std::mem::replace(&mut seen[seq as usize], true) {
                        return Err(format!("message #{seq} delivered twice"));
                    }
                    if ordered && seq != next {
                        return Err(format!("expected message #{next}, got #{seq}"));
                    }
                    next = seq + 1;
                    count += 1;
                }
                Ok(None) => return Ok(count),
                Err(e) => return Err(format!("recv failed after {count} messages: {e:?}")),
            }
        }
    });
    within("close after draining", dialed.close("drained"))
        .await?
        .ctx("close")?;
    let count = within("receiver", reader).await?.ctx("receiver task")??;
    ensure!(
        count == sent,
        "{count} of the {sent} messages accepted for sending arrived"
    );
    Ok(())
}
