//! `bitcraps-node` over the mesh: `send mesh://<peer-id>` reaches a node two mesh hops away
//! through a `listen --relay` node, each message once and in order.

#![cfg(unix)]

mod common;

use common::{next, run_json, Listening};

#[tokio::test]
async fn send_reaches_a_peer_two_hops_away_through_a_relay() {
    // The destination D relays too (it takes the relay's link) and is reachable at mesh://D.
    let mut dest = Listening::start(&["tcp://127.0.0.1:0", "--relay", "tcp://127.0.0.1:0"]).await;
    let mesh_d = dest
        .wait_for("listening on mesh://", |e| e["event"] == "listening")
        .await;
    assert_eq!(
        mesh_d["address"].as_str().unwrap(),
        format!("mesh://{}", dest.peer_id)
    );
    let d_relay = dest
        .wait_for("relaying", |e| e["event"] == "relaying")
        .await;
    let d_relay = d_relay["address"].as_str().unwrap().to_string();

    // The relay R links to D; the sender links to R only.
    let mut relay = Listening::start(&[
        "tcp://127.0.0.1:0",
        "--relay",
        "tcp://127.0.0.1:0",
        "--mesh-via",
        &d_relay,
    ])
    .await;
    let r_relay = relay
        .wait_for("relaying", |e| e["event"] == "relaying")
        .await;
    let r_relay = r_relay["address"].as_str().unwrap().to_string();
    let linked = relay
        .wait_for("mesh_linked", |e| e["event"] == "mesh_linked")
        .await;
    assert_eq!(linked["peer_id"], dest.peer_id.as_str());

    let route = format!("mesh://{}", dest.peer_id);
    let sent = run_json(&[
        "send",
        &route,
        "--peer",
        &dest.peer_id,
        "--mesh-via",
        &r_relay,
        "--count",
        "10",
        "--size",
        "50",
    ])
    .await;
    assert!(sent.success, "send failed: {}", sent.stderr);
    let summary = common::of_kind(&sent.events, "summary");
    assert_eq!(summary.len(), 1, "{:?}", sent.events);
    assert_eq!(summary[0]["messages"], 10);

    let conn = dest
        .wait_for("connected", |e| e["event"] == "connected")
        .await;
    let sender = conn["peer_id"].as_str().unwrap().to_string();
    assert!(conn["address"].as_str().unwrap().starts_with("mesh://"));
    for i in 0..10 {
        let m = next(&mut dest.events).await;
        assert_eq!(m["event"], "message", "{m}");
        assert_eq!(m["peer_id"], sender.as_str());
        let text = m["text"].as_str().unwrap();
        assert!(text.starts_with(&format!("{i} ")), "message {i}: {text}");
    }
}

#[tokio::test]
async fn a_mesh_route_without_a_mesh_link_is_refused() {
    let peer = bitcraps_transport_core::Keypair::generate()
        .peer_id()
        .to_string();
    let route = format!("mesh://{peer}");
    let sent = run_json(&["send", &route, "--peer", &peer, "--message", "hi"]).await;
    assert!(!sent.success);
    assert!(sent.stderr.contains("--mesh-via"), "{}", sent.stderr);
}
