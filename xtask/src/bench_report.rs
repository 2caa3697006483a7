//! The benchmark report: parses the runner's JSON records, merges the rust-libp2p figures into
//! them, and renders `target/bench/report.json`, `docs/benchmarks.md` and the SVG plots in
//! `docs/bench/`.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::svg;

/// Backends in report order.
const BACKENDS: [&str; 5] = ["tcp", "udp", "quic", "ws", "memory"];

/// Scenarios in report order: (name in the records, section title).
const SCENARIOS: [(&str, &str); 6] = [
    ("throughput", "One-way throughput"),
    ("rtt_p50", "Round trip of a 64 B message, median"),
    ("rtt_p99", "Round trip of a 64 B message, 99th percentile"),
    ("setup_p50", "Connection setup, median"),
    ("setup_p99", "Connection setup, 99th percentile"),
    (
        "idle_memory",
        "Resident memory per idle connection (both ends)",
    ),
];

/// The JSON records among `stdout`'s lines (other lines are ignored).
pub(crate) fn parse_records(stdout: &str) -> Result<Vec<Value>> {
    stdout
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(|l| serde_json::from_str(l).with_context(|| format!("bad record line: {l}")))
        .collect()
}

fn key(r: &Value) -> (String, String, u64) {
    (
        r["backend"].as_str().unwrap_or_default().to_string(),
        r["scenario"].as_str().unwrap_or_default().to_string(),
        r["size"].as_u64().unwrap_or_default(),
    )
}

/// Sets each record's `libp2p` field: the matching libp2p figure, or null.
pub(crate) fn merge_libp2p(records: &mut [Value], libp2p: &[Value]) {
    for r in records.iter_mut() {
        let k = key(r);
        let found = libp2p
            .iter()
            .find(|l| key(l) == k)
            .and_then(|l| l["value"].as_f64());
        if let Some(obj) = r.as_object_mut() {
            obj.insert("libp2p".into(), found.map_or(Value::Null, Value::from));
        }
    }
}

/// The whole report as JSON.
pub(crate) fn report_json(
    machine: &str,
    command: &str,
    date: &str,
    libp2p: &str,
    records: &[Value],
) -> Value {
    json!({
        "machine": machine,
        "command": command,
        "date": date,
        "libp2p": libp2p,
        "records": records,
    })
}

fn num(v: &Value, digits: usize) -> String {
    v.as_f64()
        .map_or_else(|| "-".to_string(), |x| format!("{x:.digits$}"))
}

fn size_label(size: u64) -> String {
    match size {
        s if s >= 1024 && s % 1024 == 0 => format!("{} KiB", s / 1024),
        s => format!("{s} B"),
    }
}

fn of<'a>(records: &'a [Value], scenario: &str) -> impl Iterator<Item = &'a Value> + 'a {
    let scenario = scenario.to_string();
    BACKENDS.iter().flat_map(move |b| {
        let scenario = scenario.clone();
        records
            .iter()
            .filter(move |r| r["backend"] == *b && r["scenario"] == scenario.as_str())
    })
}

/// The Markdown report.
pub(crate) fn render_markdown(report: &Value, plots: &[(String, String)]) -> String {
    let records = report["records"].as_array().map_or(&[][..], Vec::as_slice);
    let mut out = String::new();
    let _ = writeln!(out, "# Benchmarks\n");
    let _ = writeln!(
        out,
        "Written by `cargo xtask bench`; do not edit by hand (the figures of one run, also in \
         `target/bench/report.json`). Everything runs on loopback with both ends in one process. \
         Each figure of ours is measured in the same run as the best straightforward use of the \
         raw library the backend wraps, with the same framing and no encryption on the raw side:\n\n\
         - TCP: tokio `TcpStream`, a 256 KiB `BufWriter`, u32 big-endian length frames, the \
         reader splitting frames off a 256 KiB buffer.\n\
         - QUIC: quinn on the same rustls/ring stack and default windows, 64 frames per \
         `write_all_chunks` (small frames copied into one chunk), 256 KiB reads.\n\
         - WebSocket: tokio-tungstenite, u32 length frames packed into binary messages of at most 64 KiB (as our backend packs its records), one `flush` per 256 KiB; round trips one message per WebSocket message.\n\
         - UDP: tokio `UdpSocket` through quinn-udp as ours: every free slot of the same in-flight \
         window leaves in one segmented (GSO) send, reads use GRO/`recvmmsg`; one datagram per \
         message; the delivered share is counted on both sides.\n\
         - Memory: `tokio::io::duplex` with the framing and buffering of the TCP baseline.\n\n\
         Ratios read \"as good as raw\" = 1.0: ours / raw for throughput, raw / ours for times \
         and memory. Our side pays for Noise AEAD on every message; the raw side pays nothing, \
         so a ratio above 1.0 means a baseline or the measurement is wrong.\n"
    );
    let _ = writeln!(
        out,
        "- Machine: {}\n- Command: `{}`\n- Date: {}\n- rust-libp2p: {}\n",
        report["machine"].as_str().unwrap_or("?"),
        report["command"].as_str().unwrap_or("?"),
        report["date"].as_str().unwrap_or("?"),
        report["libp2p"].as_str().unwrap_or("?"),
    );
    let above: Vec<String> = records
        .iter()
        .filter(|r| r["ratio"].as_f64().is_some_and(|x| x > 1.0))
        .map(|r| {
            let (b, s, z) = key(r);
            format!("{b} {s} {}", size_label(z))
        })
        .collect();
    if above.is_empty() {
        let _ = writeln!(out, "No ratio above 1.0 in this run.\n");
    } else {
        let _ = writeln!(
            out,
            "Ratios above 1.0 in this run (see \"Reading the figures\"): {}.\n",
            above.join(", ")
        );
    }
    for (scenario, title) in SCENARIOS {
        let rows: Vec<&Value> = of(records, scenario).collect();
        let Some(first) = rows.first() else { continue };
        let unit = first["unit"].as_str().unwrap_or("");
        let size_col = if scenario == "idle_memory" {
            "connections"
        } else {
            "message"
        };
        let _ = writeln!(out, "## {title} ({unit})\n");
        let _ = writeln!(
            out,
            "| backend | {size_col} | ours | raw | raw library | ratio | delivered (ours / raw) | rust-libp2p |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
        let digits = if unit == "GB/s" { 3 } else { 1 };
        for r in rows {
            let size = r["size"].as_u64().unwrap_or_default();
            let size = match scenario {
                "idle_memory" => size.to_string(),
                s if s.starts_with("setup") => "-".to_string(),
                _ => size_label(size),
            };
            let delivered = r["delivered"].as_array().map_or("-".to_string(), |d| {
                format!("{}% / {}%", num_pct(&d[0]), num_pct(&d[1]))
            });
            let _ = writeln!(
                out,
                "| {} | {size} | {} | {} | {} | {} | {delivered} | {} |",
                r["backend"].as_str().unwrap_or("?"),
                num(&r["ours"], digits),
                num(&r["raw"], digits),
                r["raw_name"].as_str().unwrap_or("-"),
                num(&r["ratio"], 2),
                num(r.get("libp2p").unwrap_or(&Value::Null), digits),
            );
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "## Plots\n");
    for (file, caption) in plots {
        let _ = writeln!(out, "![{caption}](bench/{file})\n");
    }
    out.push_str(READING);
    out
}

fn num_pct(v: &Value) -> String {
    v.as_f64()
        .map_or_else(|| "-".to_string(), |x| format!("{:.1}", x * 100.0))
}

/// What earlier reports got wrong and what the figures mean.
const READING: &str = "## Reading the figures

- Earlier reports had TCP 1 KiB at 3.02x raw: the raw writer made one unbuffered `write` \
syscall per frame while ours batches. With a 256 KiB `BufWriter` the raw side moves several \
GB/s and the ratio is far below 1.0. The baseline was wrong.
- QUIC 64 KiB at 1.23-1.49x: the raw side wrote one message per call and read each frame with \
two `read_exact` calls into a freshly zeroed buffer, and then (in a first fix here) read one \
`read_chunk` per call, one connection-lock round and one wakeup per ~1.2 KB packet. Ours \
batches 64 messages per `write_all_chunks` and reads large buffers. With the same batching and \
256 KiB reads on the raw side, ours lands at raw within noise: 0.93 at 256 MiB and 5 \
repetitions, 0.95-1.02 in `--quick` runs (and 1 KiB likewise: 0.86-1.15 in single-repetition \
runs, 0.89-1.10 with three repetitions on a quiet machine). That \
remainder is parity, not a wrong baseline: at \
64 KiB both are bound by quinn's connection task (packet crypto and packetisation on one \
core), and our extra work (framing and the message queues; QUIC carries no Noise, its only \
AEAD is QUIC's own TLS) runs in our own tasks on the second core. The baseline was wrong. Ours \
reads with `read_chunks` (up to 32 chunks per connection lock, copied once into a buffer sized \
for them) and reserves each write batch's coalescing buffer once; before that, its reader \
re-copied the partial frame every ~2 KB and its writer's buffer grew by doubling (callgrind, \
1 KiB one way: 1016M -> 836M instructions for 50 MB).
- TCP 64 KiB at 0.38-0.47x in the first runs of this report (and 1 KiB at 0.45-0.55x): not a \
baseline error, ours was slow. A 64 KiB message is two records (a full 65,518-byte chunk and 18 \
bytes); the reader gathered them into a new buffer of the message's size, and because the \
messages handed to the application keep their read buffer alive, the reader and the writer \
allocated a fresh 64-256 KiB buffer for most messages. glibc gave the freed pages back to the \
kernel (`madvise`, about two page faults per message) and faulted them in again: the same \
binary with `MALLOC_TRIM_THRESHOLD_` raised moved 2.1-2.6 GB/s instead of 1.27. Now the reader \
gathers a chunked message where it lies in its read buffer (an 18-byte move instead of a 64 KiB \
copy and allocation, `secure::decoder`), reuses read buffers once the application has dropped \
their messages (as many as the receive budget can fill), and the writer keeps its buffer \
between bursts; both give them back after 200 ms without traffic, with one timer per busy \
period. Same machine, A/B against the previous commit (`examples/tcp_throughput`, 4 runs each): \
1 KiB 1.11-1.39 -> 1.55-1.84 GB/s, 64 KiB 1.17-1.57 -> 1.68-2.27 GB/s. What is left at 64 KiB \
is CPU: 512 MiB one way costs ours about 0.40 s of CPU (user + system) in 0.22 s, both cores \
nearly full (AES-GCM sealing and opening is 76 % of our instructions, 2.6 instructions per byte \
each way, callgrind), and raw 0.20 s, one core's worth: the same bytes with two copies and no \
cipher. With both cores busy ours cannot reach 0.9x of raw on this machine; the levers left are \
the cipher's cost and the sender's one copy (in-place sealing needs a private buffer), not the \
I/O path.
- UDP 1 KiB at 1.15x: the old harness counted a lost datagram by stalling the sender 20 ms per \
loss inside the timed interval, and a blasting sender overruns the receiver's socket buffer \
(here ~70 % lost on both sides without a window). The measurement was wrong: the figure \
depended on how many losses each side happened to have. Now both sides use the same small \
in-flight window (no loss on loopback) and report the delivered share.
- WebSocket 64 B round trip at 1.03-1.19x: tungstenite zero-fills the spare capacity of its \
read buffer before every read; the raw side ran with the default 128 KiB buffer (a 128 KiB \
memset per read), ours configures 64 KiB. The raw side now uses our buffer sizes. The \
baseline was wrong.
- TCP 64 B round trip p99 at 1.12-1.23x in the first runs here: the raw echo wrote the header \
and the body with two calls, two segments under `TCP_NODELAY` and two wakeups at the pinging \
side (raw p50 6.3 us). It now reads through a buffer and writes each frame with one call (raw \
p50 4.3 us). The baseline was wrong. Since then ours and raw make the same calls per round \
trip (one write and one read on each side; ours adds its queue and connection task), and the \
ratio sits at parity within this machine's noise: p50 0.83-1.02 and p99 0.66-1.00 across the \
runs of 2026-12-03, ours steady at 15.0 us p50 while raw moved between 12.4 and 15.2 us.
- UDP 1 KiB at 0.74x with one `send` per datagram on both sides (0.555 vs 0.750 GB/s): ours now \
seals what it finds queued back to back and sends it segmented (GSO) and reads coalesced (GRO) \
through quinn-udp, about 4x less CPU per datagram and 3-4x the throughput. The raw side got the \
same batching (all free window slots in one send), so the ratio fell: with the kernel's \
per-datagram cost gone, ours is bound by AES-GCM sealing and opening each 1 KiB record (about \
1.4 GB/s each way in `--micro`, both together more than the raw side's whole per-datagram cost) \
and the record and queue work around it; raw needs about 670 instructions per datagram, ours \
about 12,000 (half of them AES-GCM). The price: a 64 B round trip about 2 us slower and a \
setup about 0.1 ms slower than with plain `send`/`recv` (quinn-udp's per-socket setup, \
probing GSO on a socket of its own, and its control-message handling), measured in the runs \
that moved throughput from 0.11 to 0.49 GB/s on the shared machine.
- UDP has no 64 KiB row: one message is one datagram, and 64 KiB does not fit one.
- Memory: the raw pipe copies bytes between two buffers with no per-message work; ours runs the \
full record layer (seal, open, framing, queues), so small messages show the per-message cost.
- Setup: the time from the dial until both ends hold the connection, over repeated dials to \
the same listener. On TCP, WebSocket and memory, the first dial is Noise XX (three messages and \
the verdict, Ed25519 identity proof) and every later one Noise IK (one round trip for the \
dialer; the listener also waits for the dialer's confirmation, which this figure includes), on \
top of what the raw library does; UDP is always XX; UDP and memory have no raw connection to \
compare with. Both handshakes cost about the same CPU (callgrind, both sides: XX 4.76M, IK \
4.78M instructions between known peers; X25519 is two thirds of it), so on loopback IK saves \
little; on a LAN or a BLE link it saves a round trip \
(`cargo run --release -p bitcraps-transport-tcp --example setup_handshakes`). QUIC has no \
Noise. Raw quinn, as configured by default, resumes TLS sessions: after the first setup every \
handshake is a PSK resumption with a fresh X25519 exchange and no certificate or signature \
(callgrind of `examples/quic_prof raw-setup`: no ECDSA signing at all; that is why a raw \
setup with client certificates measured the same as without). Ours made a full mutual \
handshake on every dial (two Ed25519 signatures and two strict checks in sequence, about 1.26M \
instructions of 5.5M per setup) until the dialer kept one session ticket per peer: a dial that \
expects a PeerId it reached before now resumes (protocol.md section 7), setup 1.01 ms -> \
0.69-0.77 ms median on the same machine. The raw side now also gets our backend's quinn \
settings (one stream, no datagrams, path MTU probes in 100-byte steps), which made it faster \
too; callgrind, both with the same settings: ours 4.50M instructions per setup, raw 4.33M (the \
rest of the gap in time is our tasks: the listener's accept loop, the limiter, one driver task \
per connection end, each a wake-up on the critical path). (Making the TLS key P-256 and binding it to the Ed25519 identity, as libp2p's TLS does, \
was measured first and was slower: ring's P-256 verification costs 0.75M instructions here, \
Ed25519's 0.41M.) Each certificate's self-signature is checked once per transport (a \
certificate seen before is recognised by its bytes), and path MTU discovery probes in 100-byte \
steps (quinn's default 20-byte search sent about five padded probes per side of every \
connection).
- QUIC setup around 1.0: raw / ours between 0.76 and 1.11 in ten runs of 2026-12-03 on the \
same build (median 0.92, ours about 1.09x raw's time): parity, not a baseline doing more \
than ours. Both sides resume and \
use the same quinn settings, and callgrind counts more work on ours (4.50M instructions per \
setup against 4.33M); the spread is the 2-core machine's, so a single run can land on either \
side of 1.0.
- Idle memory: resident set growth over 1,000 connections (both ends in one process), after \
their tasks settle. Every raw end has one task waiting to read, as any application that \
receives has: TCP waits for readability, quinn in `read_chunk` (a connection with its one \
stream announced both ways and our backend's settings; with quinn's defaults, 100 streams of \
each kind allowed, it held about 75 KiB), tokio-tungstenite in `next`, which holds its 64 KiB \
read buffer as ours does. Ours on QUIC holds about 10 KiB more than raw quinn per connection \
(dhat, heap at the peak, both ends): per end one driver task (its future about 1.3 KB: the \
reader and the writer, each waiting), the bounded send and receive queues (tokio allocates a \
block of 32 slots per queue up front, 1 KB), the connection's shared state (0.7 KB) and the \
reader's 32 chunk slots (1 KB). Reaching 1.05x would take no task of ours per idle \
connection (the reader polled from the application's `recv`, the writer run by `send`, \
quinn's driver the only task) and queues allocated on first use; the task is what gives every \
connection its backpressure and its close and failure reports, so we keep it. WebSocket's \
gap is the same machinery on top of the same tungstenite buffers.
- rust-libp2p column: the same workloads through one libp2p-stream stream (TCP+Noise+yamux, \
and QUIC), with a 256 KiB `BufWriter` in the application as the raw baselines have: small \
messages are batched before libp2p sees them, which our API does not do (each send is one \
message with its own record), so at 64 B libp2p moves more bytes than ours. Its 64 B round trip varied between runs here \
(p50 16-20 us in some, 76 us in others) on the shared machine. Its setup is `Swarm::dial` until the first \
libp2p-stream stream on the new connection is open (transport connect, Noise and yamux or QUIC's TLS 1.3, and the \
stream's multistream-select round), over as many setups as ours, each on a fresh connection: the moment our `dial` \
returns an authenticated connection. Its idle memory is two swarms in one process holding that many connections \
with no stream open (both ends counted, a process of its own, as ours).
- Any ratio at or just above 1.0 in a single run (TCP 1 KiB and the TCP round trips, QUIC, \
WebSocket 64 KiB): one run on this shared 2-core machine moves either side by up to about 30 % \
(raw TCP 1 KiB measured 2.1-3.2 GB/s in the runs of 2026-12-03, same binary, same load). Ours \
does strictly more work than raw in every scenario (AES-GCM on every byte both ways, framing, \
queues: at 64 KiB over TCP about twice raw's CPU time per byte, 0.40 s against 0.20 s for 512 \
MiB), so such a figure is a disturbed raw sample, not a wrong baseline; the ranges quoted \
above are across runs.
- Times on a 2-core machine shared with other jobs (load average near 10 during these runs): \
p99 figures are noisy; compare within one run only.
";

/// The SVG plots: (file name, caption, SVG text).
pub(crate) fn plots(report: &Value) -> Vec<(String, String, String)> {
    let records = report["records"].as_array().map_or(&[][..], Vec::as_slice);
    let points = |backend: &str, field: &str| -> Vec<(f64, f64)> {
        records
            .iter()
            .filter(|r| r["backend"] == backend && r["scenario"] == "throughput")
            .filter_map(|r| Some((r["size"].as_f64()?, r[field].as_f64()?)))
            .collect()
    };
    let mut out = Vec::new();
    for backend in BACKENDS {
        let ours = points(backend, "ours");
        if ours.is_empty() {
            continue;
        }
        let mut series = vec![("ours", ours), ("raw", points(backend, "raw"))];
        let libp2p = points(backend, "libp2p");
        if !libp2p.is_empty() {
            series.push(("rust-libp2p", libp2p));
        }
        let caption = format!("{backend}: throughput against message size");
        let svg = svg::line_chart(caption.clone(), "bytes", "GB/s", &series, None);
        out.push((format!("throughput-{backend}.svg"), caption, svg));
    }
    let ratios: Vec<(&str, Vec<(f64, f64)>)> = BACKENDS
        .iter()
        .map(|b| (*b, points(b, "ratio")))
        .filter(|(_, p)| !p.is_empty())
        .collect();
    if !ratios.is_empty() {
        let caption = "Throughput ours / raw against message size".to_string();
        let svg = svg::line_chart(
            caption.clone(),
            "bytes",
            "ours / raw",
            &ratios,
            Some((0.0, 1.2)),
        );
        out.push(("ratio.svg".into(), caption, svg));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINES: &str = r#"noise line
{"backend":"tcp","scenario":"throughput","size":1024,"unit":"GB/s","ours":1.0,"raw":4.0,"raw_name":"tokio","ratio":0.25}
{"backend":"udp","scenario":"throughput","size":1024,"unit":"GB/s","ours":0.1,"raw":0.2,"raw_name":"sock","ratio":0.5,"delivered":[1.0,0.98]}
{"backend":"quic","scenario":"rtt_p50","size":64,"unit":"us","ours":20.0,"raw":10.0,"raw_name":"quinn","ratio":1.5}
{"backend":"tcp","scenario":"setup_p50","size":0,"unit":"us","ours":900.0,"raw":100.0,"raw_name":"tokio","ratio":0.11}
"#;

    #[test]
    fn records_merge_libp2p_and_render() {
        let mut records = parse_records(LINES).unwrap();
        assert_eq!(records.len(), 4);
        let libp2p = parse_records(
            r#"{"backend":"tcp","scenario":"throughput","size":1024,"value":0.5}
{"backend":"tcp","scenario":"setup_p50","size":0,"value":1300.0}"#,
        )
        .unwrap();
        merge_libp2p(&mut records, &libp2p);
        assert_eq!(records[0]["libp2p"], 0.5);
        assert!(records[1]["libp2p"].is_null());
        assert_eq!(records[3]["libp2p"], 1300.0, "setup merges by scenario");
        let report = report_json("2 cores", "cargo run", "today", "built", &records);
        let plots = plots(&report);
        let names: Vec<&str> = plots.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(
            names,
            ["throughput-tcp.svg", "throughput-udp.svg", "ratio.svg"]
        );
        assert!(plots[0].2.contains("rust-libp2p"));
        let md = render_markdown(
            &report,
            &plots
                .iter()
                .map(|p| (p.0.clone(), p.1.clone()))
                .collect::<Vec<_>>(),
        );
        assert!(
            md.contains("| tcp | 1 KiB | 1.000 | 4.000 | tokio | 0.25 | - | 0.500 |"),
            "{md}"
        );
        assert!(md.contains("| udp | 1 KiB | 0.100 | 0.200 | sock | 0.50 | 100.0% / 98.0% | - |"));
        assert!(
            md.contains("| tcp | - | 900.0 | 100.0 | tokio | 0.11 | - | 1300.0 |"),
            "{md}"
        );
        assert!(md.contains("Ratios above 1.0 in this run"));
        assert!(md.contains("quic rtt_p50 64 B"));
        assert!(md.contains("![tcp: throughput against message size](bench/throughput-tcp.svg)"));
    }

    #[test]
    fn a_bad_record_line_is_an_error() {
        assert!(parse_records("{not json").is_err());
    }
}
