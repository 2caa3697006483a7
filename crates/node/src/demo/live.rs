//! The demo's live terminal view (`ratatui`), shown when stdout is a terminal and `--json` is
//! off: a table of the players (backend, current route, breaker of each route, bets
//! acknowledged, round-trip times) above the story's latest lines. [`LiveState`] is built
//! from the same [`Event`]s the plain output prints (plus the seats and acknowledgements the
//! demo tells it), and [`draw`] renders it; both are pure, so tests render into a
//! `TestBackend`. [`LiveView`] redraws the state on a thread until the demo ends, leaving the
//! last frame in the terminal (an inline viewport: no alternate screen, no raw mode).

use std::collections::VecDeque;
use std::io::Stdout;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use ratatui::backend::{Backend, CrosstermBackend};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};
use ratatui::{Frame, Terminal, TerminalOptions, Viewport};

use crate::output::{human, Event};

/// Story lines kept (older ones scroll away).
const STORY_LINES: usize = 10;
/// Rows of the players' table: borders, header and four players.
const TABLE_ROWS: u16 = 8;
/// Rows the view takes in the terminal: the players' table and the story.
pub(super) const HEIGHT: u16 = TABLE_ROWS + STORY_LINES as u16 + 2;
/// How often the view is redrawn (a refresh rate: nothing waits on it).
const FRAME: Duration = Duration::from_millis(100);

/// One player's row.
#[derive(Debug, Clone, Default, PartialEq)]
struct Player {
    name: String,
    peer_id: String,
    transport: String,
    route: Option<String>,
    /// Each route's breaker state, in the order first seen.
    breakers: Vec<(String, &'static str)>,
    acknowledged: u64,
    undelivered: u64,
    rtt_mean_ms: Option<f64>,
}

/// What the view shows.
#[derive(Debug, Default)]
pub(super) struct LiveState {
    table: Option<String>,
    routes: Vec<String>,
    players: Vec<Player>,
    story: VecDeque<String>,
    finished: bool,
}

impl LiveState {
    /// A player took a seat, connected over `route`.
    pub(super) fn seat(&mut self, name: &str, transport: &str, peer_id: String, route: String) {
        self.players.push(Player {
            name: name.to_string(),
            peer_id,
            transport: transport.to_string(),
            route: Some(route),
            ..Player::default()
        });
    }

    /// A bet of `name`'s got its receipt: delivered after `rtt`, or not delivered (`None`).
    pub(super) fn receipt(&mut self, name: &str, rtt: Option<Duration>) {
        if let Some(p) = self.players.iter_mut().find(|p| p.name == name) {
            match rtt {
                Some(rtt) => {
                    let total = p.rtt_mean_ms.unwrap_or(0.0) * p.acknowledged as f64;
                    p.acknowledged += 1;
                    let ms = rtt.as_secs_f64() * 1e3;
                    p.rtt_mean_ms = Some((total + ms) / p.acknowledged as f64);
                }
                None => p.undelivered += 1,
            }
        }
    }

    /// The run is over.
    pub(super) fn finish(&mut self) {
        self.finished = true;
    }

    fn player(&mut self, peer_id: &str) -> Option<&mut Player> {
        self.players.iter_mut().find(|p| p.peer_id == peer_id)
    }

    /// Takes one event of the demo.
    pub(super) fn apply(&mut self, event: &Event) {
        match event {
            Event::Listening { address, peer_id } => {
                self.table = Some(peer_id.clone());
                self.routes.push(address.clone());
                return;
            }
            Event::RouteChanged { peer_id, to, .. } => {
                if let Some(p) = self.player(peer_id) {
                    p.route = Some(to.clone());
                }
            }
            Event::Breaker {
                peer_id,
                route,
                state,
                ..
            } => {
                if let Some(p) = self.player(peer_id) {
                    match p.breakers.iter_mut().find(|(r, _)| r == route) {
                        Some(entry) => entry.1 = state,
                        None => p.breakers.push((route.clone(), state)),
                    }
                }
            }
            Event::PlayerStats {
                peer_id,
                acknowledged,
                undelivered,
                rtt_mean_ms,
                ..
            } => {
                if let Some(p) = self.player(peer_id) {
                    p.acknowledged = *acknowledged;
                    p.undelivered = *undelivered;
                    p.rtt_mean_ms = Some(*rtt_mean_ms);
                }
                return;
            }
            _ => {}
        }
        if self.story.len() == STORY_LINES {
            self.story.pop_front();
        }
        self.story.push_back(human(event));
    }
}

/// The first 8 hex digits of a peer id.
fn short(id: &str) -> &str {
    &id[..id.len().min(8)]
}

/// Renders `state` into `frame`.
pub(super) fn draw(frame: &mut Frame<'_>, state: &LiveState) {
    let [top, bottom] =
        Layout::vertical([Constraint::Length(TABLE_ROWS), Constraint::Min(3)]).areas(frame.area());
    let title = match (&state.table, state.finished) {
        (Some(t), false) => format!(" table {} ({} routes) ", short(t), state.routes.len()),
        (Some(t), true) => format!(" table {} closed ", short(t)),
        (None, _) => " table ".to_string(),
    };
    let header = Row::new([
        "player",
        "over",
        "route now",
        "breakers",
        "bets ok",
        "rtt ms",
    ])
    .style(Style::default().add_modifier(Modifier::BOLD));
    let rows = state.players.iter().map(|p| {
        let breakers: Vec<String> = p
            .breakers
            .iter()
            .map(|(route, s)| format!("{}:{s}", route.split("://").next().unwrap_or(route)))
            .collect();
        let open = p.breakers.iter().any(|(_, s)| *s != "closed");
        let bets = match p.undelivered {
            0 => p.acknowledged.to_string(),
            n => format!("{} ({n} lost)", p.acknowledged),
        };
        Row::new([
            Cell::from(p.name.clone()),
            Cell::from(p.transport.clone()),
            Cell::from(p.route.clone().unwrap_or_else(|| "-".into())),
            Cell::from(breakers.join(" ")).style(if open {
                Style::default().fg(Color::Red)
            } else {
                Style::default()
            }),
            Cell::from(bets),
            Cell::from(
                p.rtt_mean_ms
                    .map_or_else(|| "-".into(), |m| format!("{m:.1}")),
            ),
        ])
    });
    let widths = [
        Constraint::Length(7),
        Constraint::Length(5),
        Constraint::Length(24),
        Constraint::Min(16),
        Constraint::Length(12),
        Constraint::Length(7),
    ];
    let table = Table::new(rows, widths)
        .header(header)
        .block(Block::default().borders(Borders::ALL).title(title));
    frame.render_widget(table, top);
    let story: Vec<Line<'_>> = state.story.iter().map(|l| Line::from(l.as_str())).collect();
    let story =
        Paragraph::new(story).block(Block::default().borders(Borders::ALL).title(" story "));
    frame.render_widget(story, bottom);
}

/// The view on the terminal: the state, and the thread redrawing it.
#[derive(Debug)]
pub(super) struct LiveView {
    state: Arc<Mutex<LiveState>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Locks the state (a panic elsewhere does not stop the view).
fn lock(state: &Mutex<LiveState>) -> MutexGuard<'_, LiveState> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl LiveView {
    /// Starts drawing on stdout (a terminal) below the cursor.
    pub(super) fn start() -> std::io::Result<Self> {
        let backend = CrosstermBackend::new(std::io::stdout());
        let mut terminal = Terminal::with_options(
            backend,
            TerminalOptions {
                viewport: Viewport::Inline(HEIGHT),
            },
        )?;
        terminal.hide_cursor()?;
        let state = Arc::new(Mutex::new(LiveState::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (state.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("demo-view".into())
            .spawn(move || render_until(terminal, &s, &st))?;
        Ok(Self {
            state,
            stop,
            thread: Some(thread),
        })
    }

    /// The state the demo reports into (the next frame shows it).
    pub(super) fn state(&self) -> Arc<Mutex<LiveState>> {
        self.state.clone()
    }

    /// Draws the last frame and gives the terminal back.
    pub(super) fn finish(mut self) {
        lock(&self.state).finish();
        self.stop_thread();
    }

    fn stop_thread(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for LiveView {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

/// Redraws every [`FRAME`] until `stop`, then once more, and leaves the cursor below the view.
fn render_until(
    mut terminal: Terminal<CrosstermBackend<Stdout>>,
    state: &Mutex<LiveState>,
    stop: &AtomicBool,
) {
    let mut bottom = None;
    loop {
        let last = stop.load(Ordering::Relaxed);
        let mut area = None;
        let drawn = terminal.draw(|f| {
            area = Some(f.area());
            draw(f, &lock(state));
        });
        match drawn {
            Ok(_) => bottom = area.map(|a| a.bottom().saturating_sub(1)),
            Err(e) => {
                tracing::warn!(error = %e, "live view stopped");
                break;
            }
        }
        if last {
            break;
        }
        std::thread::sleep(FRAME);
    }
    // The cursor goes to the view's last row; the newline puts what follows below it.
    if let Some(y) = bottom {
        let _ = terminal.set_cursor_position((0, y));
    }
    let _ = terminal.show_cursor();
    let _ = terminal.backend_mut().flush();
    println!();
}

#[cfg(test)]
mod tests {
    use ratatui::backend::TestBackend;

    use super::*;

    fn text(terminal: &Terminal<TestBackend>) -> String {
        let buffer = terminal.backend().buffer();
        let width = buffer.area.width as usize;
        let cells: Vec<&str> = buffer.content.iter().map(|c| c.symbol()).collect();
        cells
            .chunks(width)
            .map(|row| row.concat())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_view_shows_seats_routes_breakers_receipts_and_the_story() {
        let mut s = LiveState::default();
        let table = "aa".repeat(32);
        let dave = "dd".repeat(32);
        s.apply(&Event::Listening {
            address: "tcp://127.0.0.1:1".into(),
            peer_id: table.clone(),
        });
        s.seat("dave", "quic", dave.clone(), "quic://127.0.0.1:9".into());
        s.seat("bob", "tcp", "bb".repeat(32), "tcp://127.0.0.1:1".into());
        s.apply(&Event::RouteChanged {
            peer_id: dave.clone(),
            from: Some("quic://127.0.0.1:9".into()),
            to: "tcp://127.0.0.1:1".into(),
        });
        s.apply(&Event::Breaker {
            peer_id: dave.clone(),
            route: "quic://127.0.0.1:9".into(),
            state: "open",
            retry_in_ms: Some(300),
        });
        s.receipt("dave", Some(Duration::from_millis(10)));
        s.receipt("dave", Some(Duration::from_millis(20)));
        s.receipt("dave", None);
        for i in 0..(STORY_LINES + 3) {
            s.apply(&Event::Said {
                peer_id: table.clone(),
                name: "shooter".into(),
                text: format!("roll {i}"),
            });
        }
        let mut terminal = Terminal::new(TestBackend::new(100, HEIGHT)).unwrap();
        terminal.draw(|f| draw(f, &s)).unwrap();
        let shown = text(&terminal);
        for needle in [
            "table aaaaaaaa (1 routes)",
            "dave",
            "quic",
            "tcp://127.0.0.1:1",
            "quic:open",
            "2 (1 lost)",
            "15.0",
            "bob",
            &format!("roll {}", STORY_LINES + 2),
        ] {
            assert!(shown.contains(needle), "{needle:?} not in:\n{shown}");
        }
        // The story keeps only its last lines.
        assert!(!shown.contains("roll 2 "), "{shown}");
        assert_eq!(s.story.len(), STORY_LINES);
        s.apply(&Event::Breaker {
            peer_id: dave.clone(),
            route: "quic://127.0.0.1:9".into(),
            state: "closed",
            retry_in_ms: None,
        });
        s.finish();
        terminal.draw(|f| draw(f, &s)).unwrap();
        let shown = text(&terminal);
        assert!(shown.contains("quic:closed"), "{shown}");
        assert!(shown.contains("closed"), "{shown}");
        assert!(shown.contains("table aaaaaaaa closed"), "{shown}");
    }
}
