//! Order, loss and concurrency: 10,000 numbered messages arrive in order, exactly once; eight
//! tasks sending on clones of one sender lose nothing (and keep their own order where the
//! backend is ordered); a datagram backend delivers only authentic messages, never twice.

use std::sync::Arc;
use std::time::Duration;

use bitcraps_transport_core::{Bytes, CloseReason};

use crate::support::*;
use crate::Harness;

const IN_ORDER: u64 = 10_000;
/// Bytes per message of `ten_thousand_in_order`.
const IN_ORDER_LEN: usize = 24;

pub(crate) async fn ten_thousand_in_order(h: Arc<dyn Harness>) -> CaseResult {
    let p = pair(&*h, unlimited(), channel()).await?;
    let (dialed, mut accepted) = (p.dialed, p.accepted);
    let reader = tokio::spawn(async move {
        let mut next = 0u64;
        loop {
            match accepted.recv().await {
                Ok(Some(m)) => {
                    let Some(seq) = check_numbered(&m, IN_ORDER_LEN) else {
                        return Err(format!("message #{next} is corrupt ({} bytes)", m.len()));
                    };
                    if seq != next {
                        return Err(format!("expected message #{next}, got #{seq}"));
                    }
                    next += 1;
                }
                Ok(None) => return Ok((next, accepted.close_reason())),
                Err(e) => return Err(format!("recv failed after {next} messages: {e:?}")),
            }
        }
    });
    for seq in 0..IN_ORDER {
        within("send", dialed.send(numbered(seq, IN_ORDER_LEN)))
            .await?
            .ctx("send")?;
    }
    within("close", dialed.close("done")).await?.ctx("close")?;
    let (count, reason) = within("receiver", reader).await?.ctx("receiver task")??;
    ensure!(
        count == IN_ORDER,
        "received {count} of {IN_ORDER} messages before the close"
    );
    ensure!(
        reason == Some(CloseReason::Remote("done".into())),
        "receiver's close reason is {reason:?}"
    );
    Ok(())
}

const SENDERS: u8 = 8;
const PER_SENDER: u32 = 500;

pub(crate) async fn concurrent_senders(h: Arc<dyn Harness>) -> CaseResult {
    let mut p = pair(&*h, unlimited(), channel()).await?;
    let ordered = p.dialer.capabilities().ordered;
    let mut tasks = Vec::new();
    for task in 0..SENDERS {
        let sender = p.dialed.sender();
        tasks.push(tokio::spawn(async move {
            for seq in 0..PER_SENDER {
                let mut m = vec![task];
                m.extend_from_slice(&seq.to_be_bytes());
                m.extend_from_slice(&noise(u64::from(seq) << 8 | u64::from(task), 27));
                sender.send(Bytes::from(m)).await?;
            }
            Ok::<_, bitcraps_transport_core::Error>(())
        }));
    }
    let total = usize::from(SENDERS) * PER_SENDER as usize;
    let mut seen = vec![vec![false; PER_SENDER as usize]; usize::from(SENDERS)];
    let mut last: Vec<Option<u32>> = vec![None; usize::from(SENDERS)];
    for i in 0..total {
        let m = within("recv", p.accepted.recv())
            .await?
            .ctx("recv")?
            .ok_or_else(|| format!("the connection ended after {i} of {total} messages"))?;
        ensure!(
            m.len() == 32,
            "message {i} has {} bytes, expected 32",
            m.len()
        );
        let task = m[0];
        let seq = u32::from_be_bytes([m[1], m[2], m[3], m[4]]);
        ensure!(
            task < SENDERS && seq < PER_SENDER,
            "message {i} names sender {task} seq {seq}, which was never sent"
        );
        ensure!(
            m[5..] == noise(u64::from(seq) << 8 | u64::from(task), 27)[..],
            "message {i} (sender {task} seq {seq}) is corrupt"
        );
        let slot = &mut seen[usize::from(task)][seq as usize];
        ensure!(!*slot, "sender {task} seq {seq} delivered twice");
        *slot = true;
        if ordered {
            let prev = &mut last[usize::from(task)];
            ensure!(
                prev.is_none_or(|p| p < seq),
                "sender {task}: seq {seq} arrived after seq {prev:?}"
            );
            *prev = Some(seq);
        }
    }
    for task in tasks {
        within("sender task", task)
            .await?
            .ctx("sender task")?
            .ctx("send")?;
    }
    Ok(())
}

const DATAGRAMS: u64 = 1_000;
/// Bytes per datagram.
const DATAGRAM_LEN: usize = 64;
/// A datagram receiver gives up after this long without a message (the rest were lost).
const DATAGRAM_IDLE: Duration = Duration::from_secs(2);
/// Datagrams the sender may have ahead of the highest one received.
const DATAGRAM_WINDOW: u64 = 64;
/// How long the sender waits for the receiver to catch up before sending anyway (a datagram may
/// be lost; the sender must not stall on it).
const DATAGRAM_WINDOW_WAIT: Duration = Duration::from_millis(200);

pub(crate) async fn datagram_no_duplicates_authentic(h: Arc<dyn Harness>) -> CaseResult {
    let p = pair(&*h, unlimited(), channel()).await?;
    let (dialed, mut accepted) = (p.dialed, p.accepted);
    // The sender keeps at most a window of datagrams unaccounted for (as a real datagram user
    // paces itself): a blasting sender measures the receiver's socket buffer, not the backend.
    let (progress_tx, mut progress) = tokio::sync::watch::channel(0u64);
    let reader = tokio::spawn(async move {
        let mut seen = vec![false; DATAGRAMS as usize];
        let mut count = 0u64;
        while count < DATAGRAMS {
            let m = match tokio::time::timeout(DATAGRAM_IDLE, accepted.recv()).await {
                Err(_) | Ok(Ok(None)) => break,
                Ok(Err(e)) => return Err(format!("recv failed after {count} messages: {e:?}")),
                Ok(Ok(Some(m))) => m,
            };
            let Some(seq) = check_numbered(&m, DATAGRAM_LEN).filter(|s| *s < DATAGRAMS) else {
                return Err(format!(
                    "received a message that was never sent ({} bytes)",
                    m.len()
                ));
            };
            if std::mem::replace(&mut seen[seq as usize], true) {
                return Err(format!("message #{seq} delivered twice"));
            }
            count += 1;
            progress_tx.send_if_modified(|highest| {
                let ahead = seq + 1 > *highest;
                if ahead {
                    *highest = seq + 1;
                }
                ahead
            });
        }
        Ok(count)
    });
    for seq in 0..DATAGRAMS {
        // Wait (briefly: a lost datagram must not stall the sender) until the receiver has got
        // close enough to this one.
        let caught_up = progress.wait_for(|highest| seq < highest + DATAGRAM_WINDOW);
        let _ = tokio::time::timeout(DATAGRAM_WINDOW_WAIT, caught_up).await;
        within("send", dialed.send(numbered(seq, DATAGRAM_LEN)))
            .await?
            .ctx("send")?;
    }
    let count = within("receiver", reader).await?.ctx("receiver task")??;
    ensure!(
        count * 10 >= DATAGRAMS * 9,
        "only {count} of {DATAGRAMS} datagrams arrived on loopback (at least 90% expected)"
    );
    Ok(())
}
