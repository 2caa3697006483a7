//! `bitcraps-node demo`: a table and four players under `TransportCoordinator`s, over mixed
//! transports, in one process (loopback and the simulated BLE radio only). alice plays over
//! the simulated BLE radio, bob over TCP, carol over WebSocket, dave over QUIC (through a UDP
//! relay that can go dark) with TCP as his second route. Every bet carries a delivery receipt.
//! After round 2 dave's QUIC route goes dark; his coordinator notices by itself, fails over to
//! TCP and its breaker for QUIC opens; the route comes back, the breaker closes and traffic
//! switches back. A typed `player_stats` event per player closes the run.
//!
//! Players find the table by discovery ([`find`]): the table announces its [`Ticket`] over
//! mDNS on the loopback interface, and each player dials the routes it heard, expecting the
//! announced peer id.

mod find;
mod live;
mod proxy;
mod report;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use bitcraps_coordinator::{
    BreakerConfig, BreakerState, CoordinatorEvent, Priority, TransportCoordinator,
};
use bitcraps_transport_ble::sim::{SimConfig, SimDeviceConfig, SimRadio};
use bitcraps_transport_ble::BleTransport;
use bitcraps_transport_core::{Bytes, Keypair, PeerId, Ticket, Transport, TransportAddress};
use bitcraps_transport_quic::QuicTransport;
use bitcraps_transport_tcp::TcpTransport;
use bitcraps_transport_ws::WebSocketTransport;
use tokio::sync::mpsc;

use crate::output::{Event, Output};
use live::LiveView;
use proxy::Blackhole;
use report::Report;

/// The whole demo must finish within this (a guard against hangs, not a measurement).
const GUARD: Duration = Duration::from_secs(50);
/// Rounds played; dave's QUIC route goes dark after round [`DARK_AFTER`].
const ROUNDS: u32 = 5;
/// The round after which dave's QUIC route goes dark.
const DARK_AFTER: u32 = 2;
/// The players, in seat order, and the backend each comes over.
const PLAYERS: [(&str, &str); 4] = [
    ("alice", "ble"),
    ("bob", "tcp"),
    ("carol", "ws"),
    ("dave", "quic"),
];

/// One player's tally.
#[derive(Debug, Default)]
struct Tally {
    sent: u64,
    acknowledged: u64,
    undelivered: u64,
    total_rtt: Duration,
    max_rtt: Duration,
}

/// What a player's event task reports to the demo.
#[derive(Debug)]
enum Milestone {
    Route(TransportAddress),
    BreakerOpen(TransportAddress),
}

fn transport(kind: &str, key: [u8; 32], radio: &SimRadio) -> Result<Arc<dyn Transport>> {
    let keypair = Keypair::from_secret_bytes(key);
    Ok(match kind {
        "ble" => {
            let device = Arc::new(radio.add_device(SimDeviceConfig::default()));
            Arc::new(BleTransport::new(device, keypair))
        }
        "tcp" => Arc::new(TcpTransport::new(keypair)),
        "ws" => Arc::new(WebSocketTransport::new(keypair)),
        "quic" => Arc::new(QuicTransport::new(keypair)?),
        other => bail!("no backend {other}"),
    })
}

/// A coordinator with quick health checks and a breaker that opens after two failures, so
/// the failover and the switch-back fit in a few seconds.
fn coordinator(kinds: &[&str], key: [u8; 32], radio: &SimRadio) -> Result<TransportCoordinator> {
    let mut b = TransportCoordinator::builder()
        .health_interval(Duration::from_millis(200))
        .dial_timeout(Duration::from_millis(500))
        .breaker(BreakerConfig {
            consecutive_failures: 2,
            base_cooldown: Duration::from_millis(300),
            ..BreakerConfig::default()
        });
    for kind in kinds {
        b = b.transport(transport(kind, key, radio)?);
    }
    Ok(b.build()?)
}

/// The table's ticket: its peer id and its routes, as it announces them.
fn table_ticket(peer: PeerId, routes: Vec<TransportAddress>) -> Result<Ticket> {
    Ok(Ticket::new(peer, routes)?)
}

/// The routes a player of `kind` takes from the ticket: its own backend's, and dave's TCP
/// second route. dave's QUIC goes through the relay.
fn player_routes(ticket: &Ticket, kind: &str, relay: &TransportAddress) -> Vec<TransportAddress> {
    let mut routes: Vec<TransportAddress> = ticket
        .routes()
        .iter()
        .filter(|r| r.scheme() == kind)
        .cloned()
        .collect();
    if kind == "quic" {
        routes = vec![relay.clone()];
        routes.extend(
            ticket
                .routes()
                .iter()
                .filter(|r| r.scheme() == "tcp")
                .cloned(),
        );
    }
    routes
}

/// Runs the demo.
/// With readable output on a terminal the run is shown as a live view; otherwise as lines.
pub(crate) async fn run(out: Output) -> Result<()> {
    use std::io::IsTerminal;
    let view = if !out.is_json() && std::io::stdout().is_terminal() {
        LiveView::start()
            .map_err(|e| tracing::warn!(error = %e, "no live view; plain lines instead"))
            .ok()
    } else {
        None
    };
    let report = match &view {
        Some(v) => Report::live(out, v.state()),
        None => Report::lines(out),
    };
    let result = tokio::time::timeout(GUARD, play(report))
        .await
        .context("the demo did not finish in time");
    if let Some(view) = view {
        view.finish();
    }
    result?
}

async fn play(out: Report) -> Result<()> {
    let radio = SimRadio::new(SimConfig::default());
    let table = coordinator(&["ble", "tcp", "ws", "quic"], [1; 32], &radio)?;
    let table_id = table.local_peer_id();
    let mut routes = Vec::new();
    for addr in [
        "ble://local",
        "tcp://127.0.0.1:0",
        "ws://127.0.0.1:0/bitcraps",
        "quic://127.0.0.1:0",
    ] {
        let bound = table.listen(&addr.parse()?).await?;
        out.emit(Event::Listening {
            address: bound.to_string(),
            peer_id: table_id.to_string(),
        });
        routes.push(bound);
    }
    let quic = routes
        .last()
        .and_then(|r| r.socket_addr())
        .context("quic address")?;
    let relay = Blackhole::start(quic).await?;
    let relay_addr = TransportAddress::Quic(relay.addr());
    let service_type = find::service_type();
    let announcement =
        find::Announcement::start(&table, &table_ticket(table_id, routes)?, &service_type)?;
    let said = |peer: PeerId, name: &str, text: String| {
        out.emit(Event::Said {
            peer_id: peer.to_string(),
            name: name.to_string(),
            text,
        })
    };

    // The table counts what it receives: (player, round) must arrive exactly once.
    let mut table_events = table.events().context("table events")?;
    let (bets_tx, mut bets_rx) = mpsc::channel::<(PeerId, Bytes)>(64);
    tokio::spawn(async move {
        while let Some(e) = table_events.recv().await {
            if let CoordinatorEvent::DataReceived { peer, data } = e {
                if bets_tx.send((peer, data)).await.is_err() {
                    break;
                }
            }
        }
    });

    let (mut seated, mut players) = (Vec::new(), Vec::new());
    let (miles_tx, mut milestones) = mpsc::channel::<Milestone>(64);
    for (seat, (name, kind)) in PLAYERS.into_iter().enumerate() {
        let kinds: &[&str] = if kind == "quic" {
            &["quic", "tcp"]
        } else {
            &[kind]
        };
        let c = coordinator(kinds, [10 + seat as u8; 32], &radio)?;
        let mut events = c.events().context("player events")?;
        let (peer, tx, report) = (c.local_peer_id(), miles_tx.clone(), out.clone());
        let changes = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = changes.clone();
        tokio::spawn(async move {
            while let Some(e) = events.recv().await {
                match e {
                    CoordinatorEvent::RouteChanged { from, to, .. } => {
                        report.emit(Event::route_changed(peer, from.as_ref(), &to));
                        // The first route (from none) is the connect, not a change.
                        if from.is_some() {
                            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let _ = tx.send(Milestone::Route(to)).await;
                        }
                    }
                    CoordinatorEvent::Breaker { route, state, .. } => {
                        report.emit(Event::breaker(peer, &route, state));
                        if matches!(state, BreakerState::Open { .. }) {
                            let _ = tx.send(Milestone::BreakerOpen(route)).await;
                        }
                    }
                    _ => {}
                }
            }
        });
        // Every player looks for the table at once.
        let finding = tokio::spawn({
            let (c, ty) = (c.clone(), service_type.clone());
            async move { find::find_table(&c, &ty).await }
        });
        seated.push((name, kind, c, changes, finding));
    }
    for (name, kind, c, changes, finding) in seated {
        let peer = c.local_peer_id();
        let ticket = finding.await.context("the search for the table")??;
        said(
            peer,
            name,
            format!(
                "finds the table {} over mdns ({} routes)",
                ticket.peer(),
                ticket.routes().len()
            ),
        );
        let my_routes = player_routes(&ticket, kind, &relay_addr);
        let first = my_routes
            .first()
            .map(ToString::to_string)
            .unwrap_or_default();
        c.connect_to_peer(ticket.peer(), my_routes).await?;
        out.seat(name, kind, peer.to_string(), first);
        said(peer, name, format!("sits at the table over {kind}"));
        players.push((name, kind, c, changes, Tally::default()));
    }
    drop(miles_tx);

    let mut dice = 0xB17C_4A95_D1CE_0007_u64;
    for round in 1..=ROUNDS {
        for (name, _, c, _, tally) in &mut players {
            let bet = Bytes::from(format!("{name} round {round}: 5 on pass"));
            let started = Instant::now();
            tally.sent += 1;
            let receipt = c
                .send_with_receipt(table_id, bet, Priority::Interactive)
                .await?;
            let outcome = receipt.await;
            out.receipt(name, outcome.is_ok().then(|| started.elapsed()));
            match outcome {
                Ok(()) => {
                    tally.acknowledged += 1;
                    let rtt = started.elapsed();
                    tally.total_rtt += rtt;
                    tally.max_rtt = tally.max_rtt.max(rtt);
                }
                Err(reason) => {
                    tally.undelivered += 1;
                    said(
                        c.local_peer_id(),
                        name,
                        format!("bet undelivered: {reason:?}"),
                    );
                }
            }
        }
        for _ in &players {
            let (peer, data) = bets_rx.recv().await.context("table gone")?;
            said(
                peer,
                "table",
                format!("takes {}", String::from_utf8_lossy(&data)),
            );
        }
        let mut roll = || {
            dice ^= dice >> 12;
            dice ^= dice << 25;
            dice ^= dice >> 27;
            1 + (dice.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) % 6
        };
        let (a, b) = (roll(), roll());
        said(
            table_id,
            "shooter",
            format!("round {round}: rolls {a} + {b} = {}", a + b),
        );
        for (peer, result) in table
            .broadcast(Bytes::from(format!("round {round}: {a} {b}")))
            .await
        {
            result.with_context(|| format!("roll to {peer}"))?;
        }
        if round == DARK_AFTER {
            said(table_id, "demo", "dave's QUIC route goes dark".into());
            relay.set_dark(true);
        }
        if round == DARK_AFTER + 1 {
            // dave's round-3 bet was acknowledged, so his coordinator found another way; wait
            // for its own reports: the move to TCP and the QUIC breaker opening.
            let (mut moved, mut opened) = (false, false);
            while !(moved && opened) {
                match milestones.recv().await.context("events ended")? {
                    Milestone::Route(to) => moved |= to.scheme() == "tcp",
                    Milestone::BreakerOpen(r) => opened |= r == relay_addr,
                }
            }
            said(table_id, "demo", "dave's QUIC route comes back".into());
            relay.set_dark(false);
            while !matches!(milestones.recv().await.context("events ended")?, Milestone::Route(to) if to == relay_addr)
            {
            }
        }
    }

    said(table_id, "table", "closes the table".into());
    announcement.withdraw().await;
    out.note("\nstats:");
    let stats = table.stats();
    for (name, kind, c, changes, tally) in &players {
        let peer = c.local_peer_id();
        let received_by_table = stats
            .per_peer
            .iter()
            .find(|p| p.peer == peer)
            .map_or(0, |p| p.delivered);
        out.emit(Event::PlayerStats {
            name: (*name).to_string(),
            peer_id: peer.to_string(),
            transport: (*kind).to_string(),
            sent: tally.sent,
            acknowledged: tally.acknowledged,
            undelivered: tally.undelivered,
            received_by_table,
            route_changes: changes.load(std::sync::atomic::Ordering::Relaxed),
            rtt_mean_ms: tally.total_rtt.as_secs_f64() * 1e3 / tally.acknowledged.max(1) as f64,
            rtt_max_ms: tally.max_rtt.as_secs_f64() * 1e3,
        });
        ensure!(tally.acknowledged == u64::from(ROUNDS), "{name} lost bets");
        c.shutdown(Duration::from_secs(5)).await;
    }
    table.shutdown(Duration::from_secs(5)).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dave_takes_the_relay_then_tcp_and_others_their_own_backend() {
        let peer = Keypair::from_secret_bytes([1; 32]).peer_id();
        let routes = [
            "ble://local",
            "tcp://127.0.0.1:1",
            "ws://127.0.0.1:2/x",
            "quic://127.0.0.1:3",
        ];
        let routes = routes.iter().map(|r| r.parse().unwrap()).collect();
        let ticket = table_ticket(peer, routes).unwrap();
        let relay: TransportAddress = "quic://127.0.0.1:9".parse().unwrap();
        let dave = player_routes(&ticket, "quic", &relay);
        assert_eq!(
            dave,
            vec![relay.clone(), "tcp://127.0.0.1:1".parse().unwrap()]
        );
        let carol = player_routes(&ticket, "ws", &relay);
        assert_eq!(carol, vec!["ws://127.0.0.1:2/x".parse().unwrap()]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_table_fails_over_and_back_and_plays_to_the_end() {
        play(Report::lines(Output::discard())).await.unwrap();
    }
}
