//! Table tickets through real processes: `listen` prints a `ticket` event naming its peer id
//! and every bound address; `send --ticket` reaches it with no address or peer id typed; a
//! malformed ticket is refused with a clear error before anything is dialed.

#![cfg(unix)]

mod common;

use common::{node, wait_for, Listening, GUARD};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_printed_ticket_is_all_send_needs() {
    let mut listener = Listening::start(&["tcp://127.0.0.1:0", "ws://127.0.0.1:0/bitcraps"]).await;
    let ticket = listener
        .wait_for("ticket", |e| e["event"] == "ticket")
        .await;
    assert_eq!(ticket["peer_id"], listener.peer_id.as_str());
    let text = ticket["ticket"].as_str().expect("ticket text").to_string();
    assert!(text.starts_with("BCT"), "{text}");
    let out = tokio::time::timeout(
        GUARD,
        node()
            .args([
                "--json",
                "send",
                "--ticket",
                &text,
                "--message",
                "bet 5 on 7",
            ])
            .output(),
    )
    .await
    .expect("send finishes")
    .expect("send runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = wait_for(&mut listener.events, "message", |e| e["event"] == "message").await;
    assert_eq!(m["text"], "bet 5 on 7");
    listener.interrupt().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_ticket_gets_a_clear_error() {
    let good = "BCTAHVEU3DD4KOFECV66VIHWEZOYX4ZKR3WV27L464SIIPOU2IUI3JCYAQVOF2WSYZ2F4XTCMRXFYYC4MBOGE5DQNZWGYKHIY3QHIXS6MJSG4XDALRQFYYTUOBXGY2266H3CE";
    for (bad, why) in [
        (&good[..40], "truncated"),
        (&good[..good.len() - 2], "checksum"),
        ("BCT0000", "not base32"),
        ("hello", "must start with BCT"),
    ] {
        let out = tokio::time::timeout(
            GUARD,
            node()
                .args(["send", "--ticket", bad, "--message", "x"])
                .output(),
        )
        .await
        .expect("send finishes")
        .expect("send runs");
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(why), "{bad}: {stderr}");
    }
}
