//! `listen --metrics 127.0.0.1:0`: the node prints its scrape URL, and the Prometheus page it
//! serves over HTTP counts the traffic a real `send` made.

#![cfg(unix)]

mod common;

use std::collections::HashMap;

use common::{run_json, Listening, GUARD};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// GETs `url` (http://HOST:PORT/PATH) with a plain HTTP/1.1 request; returns status line and body.
async fn get(url: &str) -> (String, String) {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (host, path) = rest.split_once('/').expect("a path");
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    let request = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(GUARD, stream.read_to_string(&mut response))
        .await
        .expect("an answer in time")
        .expect("read the answer");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
    let status = head.lines().next().unwrap().to_string();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("Content-Length")
        .parse()
        .unwrap();
    assert_eq!(length, body.len(), "Content-Length matches the body");
    (status, body.to_string())
}

/// Parses a Prometheus text page into `series -> value`, checking every line's form: each
/// sample's family was declared with `# TYPE` before it.
fn parse(text: &str) -> HashMap<String, f64> {
    let mut types = HashMap::new();
    let mut samples = HashMap::new();
    for line in text.lines() {
        if let Some(decl) = line.strip_prefix("# TYPE ") {
            let (name, kind) = decl.split_once(' ').expect("# TYPE name kind");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            types.insert(name.to_string(), kind.to_string());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("series value");
        let name = series.split('{').next().unwrap();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| types.get(*f).is_some_and(|k| k == "histogram"))
            })
            .unwrap_or(name);
        assert!(types.contains_key(family), "undeclared family: {line}");
        let value = if value == "+Inf" {
            f64::INFINITY
        } else {
            value.parse().expect(line)
        };
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "twice: {line}"
        );
    }
    samples
}

#[tokio::test]
async fn the_metrics_endpoint_counts_a_real_send() {
    let mut listener = Listening::start(&[
        "tcp://127.0.0.1:0",
        "--metrics",
        "127.0.0.1:0",
        "--reconnect-grace-ms",
        "500",
    ])
    .await;
    let announced = listener
        .wait_for("metrics", |e| e["event"] == "metrics")
        .await;
    let url = announced["address"].as_str().unwrap().to_string();
    assert!(
        url.starts_with("http://127.0.0.1:") && !url.contains(":0/"),
        "{url}"
    );

    let (status, body) = get(&url).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let before = parse(&body);
    assert_eq!(before["bitcraps_messages_delivered_total"], 0.0);
    assert_eq!(before["bitcraps_peers"], 0.0);

    let sent = run_json(&[
        "send",
        &listener.address,
        "--peer",
        &listener.peer_id,
        "--count",
        "25",
        "--size",
        "100",
    ])
    .await;
    assert!(sent.success, "send failed: {}", sent.stderr);
    let connected = listener
        .wait_for("connected", |e| e["event"] == "connected")
        .await;
    let sender = connected["peer_id"].as_str().unwrap().to_string();

    // While the sender's session lasts or after: the totals count every message once.
    let (_, body) = get(&url).await;
    let m = parse(&body);
    assert_eq!(m["bitcraps_messages_delivered_total"], 25.0);
    assert_eq!(m["bitcraps_messages_undelivered_total"], 0.0);
    let listener_label = format!("{{listener=\"{}\"}}", listener.address);
    assert_eq!(
        m[&format!("bitcraps_listener_accepted_total{listener_label}")],
        1.0
    );
    assert_eq!(
        m[&format!("bitcraps_listener_failed_handshakes_total{listener_label}")],
        0.0
    );
    // 25 payloads of 100 bytes, each with its 14-byte DATA header, at least.
    let received = m["bitcraps_transport_bytes_received_total{transport=\"tcp\"}"];
    assert!(received >= 25.0 * 114.0, "{received}");
    if let Some(v) = m.get(&format!(
        "bitcraps_peer_messages_delivered_total{{peer=\"{sender}\"}}"
    )) {
        assert_eq!(*v, 25.0);
    }

    // Once the sender is gone, its series go and the totals stay.
    listener
        .wait_for("disconnected", |e| e["event"] == "disconnected")
        .await;
    let (_, body) = get(&url).await;
    let m = parse(&body);
    assert_eq!(m["bitcraps_messages_delivered_total"], 25.0);
    assert_eq!(m["bitcraps_peers"], 0.0);
    assert_eq!(m["bitcraps_transport_connections{transport=\"tcp\"}"], 0.0);

    let (status, _) = get(&url.replace("/metrics", "/nope")).await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    listener.interrupt().await;
}
