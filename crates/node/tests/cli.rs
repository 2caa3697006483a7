//! End-to-end tests of the `bitcraps-node` binary: listen + send, identity checks, dial
//! failures, key files, echo (the demo: `demo.rs`).

#![cfg(unix)]

mod common;

use std::sync::Arc;

use bitcraps_coordinator::{CoordinatorEvent, Priority, TransportCoordinator};
use bitcraps_transport_core::{Bytes, Keypair, TransportAddress};
use bitcraps_transport_tcp::TcpTransport;
use common::{node, of_kind, run_json, Listening, GUARD};

#[tokio::test]
async fn send_delivers_numbered_messages_in_order_and_closes_cleanly() {
    // The peer is reported gone once the grace for reconnecting on another route is over.
    let mut listener =
        Listening::start(&["tcp://127.0.0.1:0", "--reconnect-grace-ms", "500"]).await;
    let sent = run_json(&[
        "send",
        &listener.address,
        "--peer",
        &listener.peer_id,
        "--count",
        "20",
        "--size",
        "100",
    ])
    .await;
    assert!(sent.success, "send failed: {}", sent.stderr);
    let connected = &of_kind(&sent.events, "connected")[0];
    assert_eq!(connected["peer_id"], listener.peer_id.as_str());
    let summary = of_kind(&sent.events, "summary");
    assert_eq!(summary.len(), 1, "{:?}", sent.events);
    assert_eq!(summary[0]["messages"], 20);
    assert_eq!(summary[0]["bytes"], 2000);
    assert!(summary[0]["messages_per_second"].as_f64().unwrap() > 0.0);

    let conn = listener
        .wait_for("connected", |e| e["event"] == "connected")
        .await;
    let sender_id = conn["peer_id"].as_str().unwrap().to_string();
    for i in 0..20 {
        let m = common::next(&mut listener.events).await;
        assert_eq!(m["event"], "message", "{m}");
        assert_eq!(m["peer_id"], sender_id.as_str());
        assert_eq!(m["bytes"], 100);
        let text = m["text"].as_str().unwrap();
        assert!(text.starts_with(&format!("{i} ")), "message {i}: {text}");
        assert_eq!(text.chars().count(), 64);
    }
    let gone = common::next(&mut listener.events).await;
    assert_eq!(gone["event"], "disconnected", "{gone}");
    assert_eq!(gone["peer_id"], sender_id.as_str());
    // The sender's coordinator closed its connection gracefully when it shut down.
    let reason = gone["reason"].as_str().unwrap();
    assert!(
        reason.contains("closed by the remote") && reason.contains("goodbye"),
        "{gone}"
    );

    let rest = listener.interrupt().await;
    assert_eq!(of_kind(&rest, "shutting_down").len(), 1, "{rest:?}");
    let stats = of_kind(&rest, "listener_stats");
    assert_eq!(stats.len(), 1, "{rest:?}");
    assert_eq!(stats[0]["accepted"], 1);
    assert_eq!(stats[0]["failed_handshakes"], 0);
}

#[tokio::test]
async fn send_to_the_wrong_peer_fails_with_peer_mismatch() {
    let listener = Listening::start(&["tcp://127.0.0.1:0"]).await;
    let wrong = Keypair::generate().peer_id().to_string();
    let sent = run_json(&[
        "send",
        &listener.address,
        "--peer",
        &wrong,
        "--message",
        "x",
    ])
    .await;
    assert!(!sent.success);
    let errors = of_kind(&sent.events, "error");
    assert_eq!(errors.len(), 1, "{:?}", sent.events);
    assert_eq!(errors[0]["kind"], "PeerMismatch");
    assert_eq!(errors[0]["remote"], listener.address.as_str());
    let text = errors[0]["error"].as_str().unwrap();
    assert!(
        text.contains(&wrong) && text.contains(&listener.peer_id),
        "{text}"
    );
    assert!(of_kind(&sent.events, "summary").is_empty());
}

#[tokio::test]
async fn human_mode_prints_the_typed_error_on_stderr() {
    let listener = Listening::start(&["tcp://127.0.0.1:0"]).await;
    let wrong = Keypair::generate().peer_id().to_string();
    let out = tokio::time::timeout(
        GUARD,
        node()
            .args(["send", &listener.address, "--peer", &wrong])
            .args(["--message", "x"])
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("(PeerMismatch)"), "{stderr}");
}

#[tokio::test]
async fn send_to_a_closed_port_fails() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let peer = Keypair::generate().peer_id().to_string();
    let addr = format!("tcp://127.0.0.1:{port}");
    let sent = run_json(&["send", &addr, "--peer", &peer, "--message", "x"]).await;
    assert!(!sent.success);
    let errors = of_kind(&sent.events, "error");
    assert_eq!(errors.len(), 1, "{:?}", sent.events);
    assert_eq!(errors[0]["kind"], "Io");
    assert_eq!(errors[0]["remote"], addr.as_str());
}

/// Two routes, neither usable: the first refused by the remote's limit, the second a closed
/// port. Each failure is reported with its typed error and route, and the exit is non-zero.
#[tokio::test]
async fn every_route_failing_reports_each_typed_error() {
    let full = Listening::start(&["tcp://127.0.0.1:0", "--max-connections", "0"]).await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("tcp://{}", l.local_addr().unwrap())
    };
    let sent = run_json(&[
        "send",
        &full.address,
        &closed,
        "--peer",
        &full.peer_id,
        "--message",
        "x",
    ])
    .await;
    assert!(!sent.success);
    let errors = of_kind(&sent.events, "error");
    assert_eq!(errors.len(), 2, "{:?}", sent.events);
    assert_eq!(errors[0]["kind"], "RemoteLimit", "{}", errors[0]);
    assert_eq!(errors[0]["detail"], "TotalConnections", "{}", errors[0]);
    assert_eq!(errors[0]["remote"], full.address.as_str());
    assert_eq!(errors[1]["kind"], "Io", "{}", errors[1]);
    assert_eq!(errors[1]["remote"], closed.as_str());
    assert!(of_kind(&sent.events, "summary").is_empty());
    full.interrupt().await;
}

#[tokio::test]
async fn unsupported_schemes_are_refused_before_listening() {
    let out = run_json(&["listen", "ble://AA:BB:CC:DD:EE:FF"]).await;
    assert!(!out.success);
    assert!(of_kind(&out.events, "listening").is_empty());
    let errors = of_kind(&out.events, "error");
    assert_eq!(errors.len(), 1, "{:?}", out.events);
    assert!(errors[0]["error"].as_str().unwrap().contains("ble"));
}

#[tokio::test]
async fn key_file_is_created_private_and_reused() {
    let dir = std::env::temp_dir().join(format!(
        "bitcraps-node-key-{}-{}",
        std::process::id(),
        line!()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("node.key");
    let _ = std::fs::remove_file(&key);
    let key_arg = key.to_str().unwrap();
    let first = Listening::start(&["tcp://127.0.0.1:0", "--key", key_arg]).await;
    let id = first.peer_id.clone();
    first.interrupt().await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let second = Listening::start(&["tcp://127.0.0.1:0", "--key", key_arg]).await;
    assert_eq!(second.peer_id, id);
    second.interrupt().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn echo_sends_every_message_back_and_listens_on_several_addresses() {
    let mut cmd = node();
    cmd.args([
        "--json",
        "listen",
        "tcp://127.0.0.1:0",
        "tcp://127.0.0.1:0",
        "--echo",
    ]);
    let mut child = cmd.spawn().unwrap();
    let mut events = common::json_lines(&mut child);
    let a = common::next(&mut events).await;
    let b = common::next(&mut events).await;
    assert_eq!(
        (&a["event"], &b["event"]),
        (&"listening".into(), &"listening".into())
    );
    assert_ne!(a["address"], b["address"]);
    assert_eq!(a["peer_id"], b["peer_id"]);
    let peer = a["peer_id"].as_str().unwrap().parse().unwrap();
    // The node speaks the coordinator's protocol: the client is a coordinator too, one per
    // address so each address carries the traffic.
    for l in [&a, &b] {
        let addr: TransportAddress = l["address"].as_str().unwrap().parse().unwrap();
        let client = TransportCoordinator::builder()
            .transport(Arc::new(TcpTransport::new(Keypair::generate())))
            .build()
            .unwrap();
        let mut events = client.events().unwrap();
        client.connect_to_peer(peer, vec![addr]).await.unwrap();
        for roll in ["roll 3 4", "bet 5 on 7"] {
            client
                .send_to_peer(peer, Bytes::from(roll), Priority::Interactive)
                .await
                .unwrap();
            let back = tokio::time::timeout(GUARD, async {
                loop {
                    match events.recv().await {
                        Some(CoordinatorEvent::DataReceived { data, .. }) => return data,
                        Some(_) => {}
                        None => panic!("client events ended"),
                    }
                }
            })
            .await
            .expect("the echo in time");
            assert_eq!(&back[..], roll.as_bytes());
        }
        assert!(client.shutdown(GUARD).await.flushed);
    }
}

/// A self-signed certificate for 127.0.0.1 and localhost, written as PEM files; returns the
/// certificate and key paths.
fn test_certificate(dir: &std::path::Path) -> (String, String) {
    std::fs::create_dir_all(dir).unwrap();
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let (crt, key) = (dir.join("node.crt"), dir.join("node.key"));
    std::fs::write(&crt, cert.cert.pem()).unwrap();
    std::fs::write(&key, cert.key_pair.serialize_pem()).unwrap();
    let path = |p: std::path::PathBuf| p.to_str().unwrap().to_string();
    (path(crt), path(key))
}

/// One node listening on every network backend at once; `send` reaches it over each scheme
/// (wss:// with a certificate made at test time, trusted by the sender with --tls-ca).
#[tokio::test]
async fn one_node_listens_and_receives_over_every_network_backend() {
    let dir = std::env::temp_dir().join(format!("bitcraps-node-wss-{}", std::process::id()));
    let (crt, key) = test_certificate(&dir);
    let schemes = [
        "tcp://127.0.0.1:0",
        "quic://127.0.0.1:0",
        "udp://127.0.0.1:0",
        "ws://127.0.0.1:0/bitcraps",
        "wss://127.0.0.1:0/bitcraps",
    ];
    let mut args = schemes.to_vec();
    args.extend(["--tls-cert", &crt, "--tls-key", &key]);
    let mut listener = Listening::start(&args).await;
    let addresses = listener.addresses(schemes.len() - 1).await;
    for scheme in ["tcp", "quic", "udp", "ws", "wss"] {
        let address = addresses
            .iter()
            .find(|a| a.starts_with(&format!("{scheme}://")))
            .unwrap_or_else(|| panic!("no {scheme} listener in {addresses:?}"));
        let text = format!("hello over {scheme}");
        let mut send = vec![
            "send",
            address,
            "--peer",
            &listener.peer_id,
            "--message",
            &text,
        ];
        if scheme == "wss" {
            send.extend(["--tls-ca", &crt]);
        }
        let sent = run_json(&send).await;
        assert!(sent.success, "send over {scheme} failed: {}", sent.stderr);
        let got = listener
            .wait_for("message", |e| e["event"] == "message")
            .await;
        assert_eq!(got["text"], text.as_str(), "{got}");
    }
    // Without the CA, the sender refuses to dial wss:// (no TLS trust configured).
    let wss = addresses.iter().find(|a| a.starts_with("wss://")).unwrap();
    let refused = run_json(&["send", wss, "--peer", &listener.peer_id, "--message", "x"]).await;
    assert!(!refused.success);
    let rest = listener.interrupt().await;
    assert_eq!(
        of_kind(&rest, "listener_stats").len(),
        schemes.len(),
        "{rest:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
