//! `bitcraps-node demo`: a table and three players in one process. The table listens on
//! loopback TCP and on an in-memory network; alice and carol dial it over TCP, bob over
//! memory, each checking the table's PeerId. Three come-out rolls are played: the table opens
//! betting, each player bets, the shooter rolls two dice (a fixed-seed generator, so every run
//! plays the same game), bets are settled and every player acknowledges with its balance,
//! which the table checks against its own ledger. Then stats are printed and all closes.

use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use bitcraps_transport_core::{
    ChannelConfig, Connection, ConnectionReceiver, ConnectionSender, Keypair, Listener, PeerId,
    SharedLimiter, TransportAddress,
};
use bitcraps_transport_mem::MemoryNetwork;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::backends::Backends;
use crate::output::{Event, Output};
use crate::tls::TlsArgs;

/// The whole demo must finish within this (a guard against hangs, not a measurement).
const GUARD: Duration = Duration::from_secs(20);
/// Rounds played.
const ROUNDS: u32 = 3;
/// The dice generator's seed.
const SEED: u64 = 0xB17C_4A95_D1CE_0007;
/// Players: name, key seed, and whether they come over memory (else TCP).
const PLAYERS: [(&str, u8, bool); 3] = [("alice", 2, false), ("bob", 3, true), ("carol", 4, false)];

/// What goes over the wire (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Msg {
    Join { name: String },
    Welcome { seat: usize },
    Open { round: u32 },
    Bet { round: u32, on: Wager, amount: i64 },
    Roll { round: u32, dice: [u8; 2] },
    Settle { round: u32, net: i64 },
    Ack { round: u32, balance: i64 },
}

/// The bets on offer (all decided, or not, by the come-out roll).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Wager {
    Pass,
    DontPass,
    Field,
}

impl Wager {
    /// The player's net result for `amount` on this wager at a come-out total (0: no decision
    /// or a push).
    fn net(self, total: u8, amount: i64) -> i64 {
        match (self, total) {
            (Self::Pass, 7 | 11) | (Self::DontPass, 2 | 3) => amount,
            (Self::Pass, 2 | 3 | 12) | (Self::DontPass, 7 | 11) => -amount,
            (Self::Pass | Self::DontPass, _) => 0,
            (Self::Field, 2 | 12) => 2 * amount,
            (Self::Field, 3 | 4 | 9 | 10 | 11) => amount,
            (Self::Field, _) => -amount,
        }
    }

    /// The bet a player in `seat` makes in `round` (fixed, so the game is reproducible).
    fn choose(seat: usize, round: u32) -> (Self, i64) {
        let on = [Self::Pass, Self::Field, Self::DontPass][(seat + round as usize) % 3];
        (on, 5 * (seat as i64 + 1))
    }
}

/// A xorshift64* generator: enough for reproducible dice.
struct Dice(u64);

impl Dice {
    fn roll(&mut self) -> u8 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let r = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        // Take the high bits (the best ones); the modulo bias over 2^32 is negligible.
        1 + ((r >> 32) % 6) as u8
    }
}

async fn send(sender: &ConnectionSender, msg: &Msg) -> Result<()> {
    let bytes = serde_json::to_vec(msg).context("encode")?;
    sender.send(Bytes::from(bytes)).await.context("send")
}

async fn recv(receiver: &mut ConnectionReceiver) -> Result<Option<Msg>> {
    match receiver.recv().await.context("receive")? {
        Some(bytes) => Ok(Some(serde_json::from_slice(&bytes).context("decode")?)),
        None => Ok(None),
    }
}

/// A table-side seat.
struct Seat {
    name: String,
    peer: PeerId,
    addr: TransportAddress,
    sender: ConnectionSender,
    receiver: ConnectionReceiver,
    balance: i64,
}

/// What a player ends with.
struct PlayerEnd {
    name: &'static str,
    sender: ConnectionSender,
    balance: i64,
}

fn backends(seed: u8, network: &MemoryNetwork) -> Result<Backends> {
    Ok(Backends::new(
        Keypair::from_secret_bytes([seed; 32]),
        ChannelConfig::default(),
        SharedLimiter::unlimited(),
        &TlsArgs::default(),
    )?
    .with_memory(network))
}

/// Runs the demo.
pub(crate) async fn run(out: Output) -> Result<()> {
    tokio::time::timeout(GUARD, play(out))
        .await
        .context("the demo did not finish in time")?
}

async fn play(out: Output) -> Result<()> {
    let network = MemoryNetwork::new();
    let table = backends(1, &network)?;
    let table_id = table.peer_id();
    let mut tcp = listen(&table, "tcp://127.0.0.1:0", out).await?;
    let mut mem = listen(&table, "memory://0", out).await?;
    let said = |peer: PeerId, name: &str, text: String| {
        out.emit(&Event::Said {
            peer_id: peer.to_string(),
            name: name.to_string(),
            text,
        })
    };

    // Seat the players one by one, so seats and output are the same every run.
    let mut seats = Vec::new();
    let mut players = Vec::new();
    for (seat, (name, key, over_memory)) in PLAYERS.into_iter().enumerate() {
        let (listener, target) = if over_memory {
            (&mut mem, "memory")
        } else {
            (&mut tcp, "tcp")
        };
        let addr = listener.local_addr().clone();
        let node = backends(key, &network)?;
        let transport = node.for_address(&addr)?;
        let dial = tokio::spawn(async move { transport.dial(&addr, Some(table_id)).await });
        let accepted = listener.accept_connection().await.context("accept")?;
        let conn = dial
            .await
            .context("dial task")?
            .with_context(|| format!("{name} dials"))?;
        ensure!(
            conn.remote_peer() == table_id,
            "{name} reached the wrong table"
        );
        players.push(tokio::spawn(player(name, seat, conn)));
        let peer = accepted.remote_peer();
        let addr = accepted.remote_addr().clone();
        let (sender, mut receiver) = accepted.split();
        match recv(&mut receiver).await? {
            Some(Msg::Join { name: n }) if n == name => {}
            other => bail!("expected {name} to join, got {other:?}"),
        }
        said(peer, name, format!("joins over {target} from {addr}"));
        send(&sender, &Msg::Welcome { seat }).await?;
        said(table_id, "table", format!("seats {name} at {seat}"));
        seats.push(Seat {
            name: name.to_string(),
            peer,
            addr,
            sender,
            receiver,
            balance: 0,
        });
    }

    let mut dice = Dice(SEED);
    for round in 1..=ROUNDS {
        said(table_id, "table", format!("round {round}: place your bets"));
        for s in &seats {
            send(&s.sender, &Msg::Open { round }).await?;
        }
        let mut bets = Vec::new();
        for s in &mut seats {
            match recv(&mut s.receiver).await? {
                Some(Msg::Bet {
                    round: r,
                    on,
                    amount,
                }) if r == round && amount > 0 => {
                    said(s.peer, &s.name, format!("bets {amount} on {on:?}"));
                    bets.push((on, amount));
                }
                other => bail!("expected a bet from {}, got {other:?}", s.name),
            }
        }
        let dice_pair = [dice.roll(), dice.roll()];
        let total = dice_pair[0] + dice_pair[1];
        said(
            table_id,
            "shooter",
            format!("rolls {} + {} = {total}", dice_pair[0], dice_pair[1]),
        );
        for s in &seats {
            send(
                &s.sender,
                &Msg::Roll {
                    round,
                    dice: dice_pair,
                },
            )
            .await?;
        }
        for (s, (on, amount)) in seats.iter_mut().zip(bets) {
            let net = on.net(total, amount);
            s.balance += net;
            let outcome = match net {
                0 => format!("no decision on {total}"),
                n => format!("{n:+}"),
            };
            let text = format!("{}: {amount} on {on:?}, {outcome}", s.name);
            said(table_id, "table", text);
            send(&s.sender, &Msg::Settle { round, net }).await?;
        }
        for s in &mut seats {
            match recv(&mut s.receiver).await? {
                Some(Msg::Ack { round: r, balance }) if r == round => {
                    said(
                        s.peer,
                        &s.name,
                        format!("acknowledges, balance {balance:+}"),
                    );
                    ensure!(balance == s.balance, "{} disagrees on the balance", s.name);
                }
                other => bail!("expected an acknowledgement from {}, got {other:?}", s.name),
            }
        }
    }

    said(table_id, "table", "closes the table".to_string());
    for s in &seats {
        s.sender
            .close("table closed")
            .await
            .with_context(|| format!("close {}", s.name))?;
    }
    let mut ends = Vec::new();
    for p in players {
        ends.push(p.await.context("player task")??);
    }

    out.note("\nconnections:");
    for s in &seats {
        let name = format!("table->{}", s.name);
        out.emit(&Event::connection_stats(
            &name,
            s.peer,
            &s.addr,
            s.sender.stats(),
        ));
    }
    for (end, s) in ends.iter().zip(&seats) {
        ensure!(
            end.balance == s.balance,
            "{} ends with a different balance",
            end.name
        );
        let c = &end.sender;
        let name = format!("{}->table", end.name);
        let addr = &c.info().remote_addr;
        out.emit(&Event::connection_stats(
            &name,
            c.remote_peer(),
            addr,
            c.stats(),
        ));
    }
    out.note("listeners:");
    for l in [&mut tcp, &mut mem] {
        out.emit(&Event::listener_stats(l.local_addr(), l.stats()));
        l.close().await;
    }
    Ok(())
}

async fn listen(node: &Backends, addr: &str, out: Output) -> Result<Box<dyn Listener>> {
    let addr: TransportAddress = addr.parse()?;
    let listener = node.for_address(&addr)?.listen(&addr).await?;
    out.emit(&Event::Listening {
        address: listener.local_addr().to_string(),
        peer_id: node.peer_id().to_string(),
    });
    Ok(listener)
}

/// A player: joins, bets when betting opens, acknowledges each settlement with its balance,
/// until the table closes.
async fn player(name: &'static str, seat: usize, connection: Connection) -> Result<PlayerEnd> {
    let (sender, mut receiver) = connection.split();
    send(
        &sender,
        &Msg::Join {
            name: name.to_string(),
        },
    )
    .await?;
    let mut balance = 0;
    while let Some(msg) = recv(&mut receiver).await? {
        match msg {
            Msg::Welcome { seat: s } => ensure!(s == seat, "{name} got seat {s}"),
            Msg::Open { round } => {
                let (on, amount) = Wager::choose(seat, round);
                send(&sender, &Msg::Bet { round, on, amount }).await?;
            }
            Msg::Roll { .. } => {}
            Msg::Settle { round, net } => {
                balance += net;
                send(&sender, &Msg::Ack { round, balance }).await?;
            }
            other => bail!("{name} did not expect {other:?}"),
        }
    }
    Ok(PlayerEnd {
        name,
        sender,
        balance,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn come_out_rules() {
        assert_eq!(Wager::Pass.net(7, 5), 5);
        assert_eq!(Wager::Pass.net(12, 5), -5);
        assert_eq!(Wager::Pass.net(8, 5), 0);
        assert_eq!(Wager::DontPass.net(3, 5), 5);
        assert_eq!(Wager::DontPass.net(12, 5), 0);
        assert_eq!(Wager::DontPass.net(11, 5), -5);
        assert_eq!(Wager::Field.net(2, 5), 10);
        assert_eq!(Wager::Field.net(9, 5), 5);
        assert_eq!(Wager::Field.net(7, 5), -5);
    }

    #[test]
    fn dice_are_fair_faces_and_reproducible() {
        let mut a = Dice(SEED);
        let mut b = Dice(SEED);
        let mut seen = [0u32; 7];
        for _ in 0..6000 {
            let r = a.roll();
            assert_eq!(r, b.roll());
            seen[usize::from(r)] += 1;
        }
        assert_eq!(seen[0], 0);
        assert!(
            seen[1..].iter().all(|&n| (800..1200).contains(&n)),
            "{seen:?}"
        );
    }

    #[tokio::test]
    async fn the_game_plays_to_the_end() {
        play(Output::discard()).await.unwrap();
    }
}
