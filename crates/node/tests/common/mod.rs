//! Drives the built `bitcraps-node` binary: spawns it with piped stdout and hands its JSON
//! events to the test as they arrive. Every wait is on an event, under a generous guard
//! timeout that only catches hangs.

#![allow(dead_code, unreachable_pub)]

pub mod doc;

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

/// Guard against hangs (never a timing assertion).
pub const GUARD: Duration = Duration::from_secs(20);

/// The binary under test.
pub fn node() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bitcraps-node"));
    cmd.kill_on_drop(true)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("RUST_LOG", "warn");
    cmd
}

/// A running `bitcraps-node listen --json`.
pub struct Listening {
    pub child: Child,
    /// The control input (`close ADDR` lines), when started with [`Listening::with_control`].
    pub stdin: Option<ChildStdin>,
    pub events: mpsc::Receiver<Value>,
    pub address: String,
    pub peer_id: String,
}

impl Listening {
    /// Starts `listen --json ARGS...` and waits for its `listening` event.
    pub async fn start(args: &[&str]) -> Self {
        Self::spawn(args, false).await
    }

    /// Like [`Listening::start`], with stdin piped for control lines.
    pub async fn with_control(args: &[&str]) -> Self {
        Self::spawn(args, true).await
    }

    async fn spawn(args: &[&str], control: bool) -> Self {
        let mut cmd = node();
        cmd.arg("--json").arg("listen").args(args);
        if control {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd.spawn().expect("spawn listener");
        let stdin = child.stdin.take();
        let mut events = json_lines(&mut child);
        let first = next(&mut events).await;
        assert_eq!(first["event"], "listening", "{first}");
        let address = first["address"].as_str().unwrap().to_string();
        assert!(!address.ends_with(":0"), "real port expected: {address}");
        let peer_id = first["peer_id"].as_str().unwrap().to_string();
        Self {
            child,
            stdin,
            events,
            address,
            peer_id,
        }
    }

    /// Writes one control line.
    pub async fn control(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("started with_control");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();
    }

    /// The addresses of every `listening` event: this one's first, then `more` others.
    pub async fn addresses(&mut self, more: usize) -> Vec<String> {
        let mut all = vec![self.address.clone()];
        while all.len() < more + 1 {
            let l = self
                .wait_for("listening", |e| e["event"] == "listening")
                .await;
            all.push(l["address"].as_str().unwrap().to_string());
        }
        all
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("listener running")
    }

    /// The bound socket address.
    pub fn socket_addr(&self) -> std::net::SocketAddr {
        self.address
            .strip_prefix("tcp://")
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Waits for the next event that satisfies `pred`, skipping others.
    pub async fn wait_for(&mut self, what: &str, pred: impl FnMut(&Value) -> bool) -> Value {
        wait_for(&mut self.events, what, pred).await
    }

    /// Sends SIGINT and waits for a clean exit; returns the events printed until then.
    pub async fn interrupt(mut self) -> Vec<Value> {
        let status = std::process::Command::new("kill")
            .args(["-INT", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let mut rest = Vec::new();
        tokio::time::timeout(GUARD, async {
            while let Some(v) = self.events.recv().await {
                rest.push(v);
            }
        })
        .await
        .expect("listener output ends after SIGINT");
        let status = tokio::time::timeout(GUARD, self.child.wait())
            .await
            .expect("listener exits after SIGINT")
            .unwrap();
        assert!(status.success(), "listener exit status {status}");
        rest
    }
}

/// Parses the child's stdout as JSON lines into a channel (large enough never to stall the
/// child in these tests). A line that is not JSON fails the test.
pub fn json_lines(child: &mut Child) -> mpsc::Receiver<Value> {
    let stdout = child.stdout.take().expect("stdout piped");
    let (tx, rx) = mpsc::channel(8192);
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let value: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
            if tx.send(value).await.is_err() {
                break;
            }
        }
    });
    rx
}

/// The next event (guarded).
pub async fn next(events: &mut mpsc::Receiver<Value>) -> Value {
    tokio::time::timeout(GUARD, events.recv())
        .await
        .expect("an event in time")
        .expect("the process is still printing")
}

/// Waits for the next event that satisfies `pred`, skipping others.
pub async fn wait_for(
    events: &mut mpsc::Receiver<Value>,
    what: &str,
    mut pred: impl FnMut(&Value) -> bool,
) -> Value {
    tokio::time::timeout(GUARD, async {
        loop {
            match events.recv().await {
                Some(v) if pred(&v) => return v,
                Some(_) => {}
                None => panic!("output ended before {what}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// A finished run: exit success, stdout JSON events, stderr text.
pub struct Finished {
    pub success: bool,
    pub events: Vec<Value>,
    pub stderr: String,
}

/// Runs the binary to completion with `args` (guarded) and parses its stdout as JSON lines.
pub async fn run_json(args: &[&str]) -> Finished {
    let out = tokio::time::timeout(GUARD, node().arg("--json").args(args).output())
        .await
        .expect("command finishes")
        .expect("command runs");
    let stdout = String::from_utf8(out.stdout).expect("stdout is UTF-8");
    let events = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    Finished {
        success: out.status.success(),
        events,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The events of one kind.
pub fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}
