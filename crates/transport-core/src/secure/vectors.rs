//! The test vectors of `docs/protocol.md`: computed here from fixed keys and compared with the
//! document, so the document cannot drift from the code. Run with `BITCRAPS_PRINT_VECTORS=1` to
//! print them.

use std::time::Duration;

use bytes::BytesMut;

use super::batch::encode_batch_body;
use super::handshake::{InitiatorHandshake, ResponderHandshake};
use super::handshake_ik::{self, IkInitiator, FALLBACK};
use super::record::{KIND_ACCEPT, KIND_CLOSE};
use super::{CipherSuite, LocalIdentity};
use crate::framing::encode_frame;
use crate::policy::{LimitKind, LimitRejection};
use crate::refusal::encode_refusal;
use crate::Keypair;

/// The messages of the BATCH vector: the responder's record 1, right after its ACCEPT.
const BATCH: [&[u8]; 3] = [b"bet 5", b"", b"roll 3 4"];

fn compute() -> Vec<(String, String)> {
    let init = LocalIdentity::with_noise_key(Keypair::from_secret_bytes([0x01; 32]), [0x11; 32]);
    let resp = LocalIdentity::with_noise_key(Keypair::from_secret_bytes([0x02; 32]), [0x12; 32]);
    let mut v = vec![
        ("initiator.peer_id".into(), init.peer_id().to_string()),
        (
            "initiator.noise_static".into(),
            hex::encode(init.noise_public()),
        ),
        (
            "initiator.identity_payload".into(),
            hex::encode(init.payload()),
        ),
        ("responder.peer_id".into(), resp.peer_id().to_string()),
        (
            "responder.noise_static".into(),
            hex::encode(resp.noise_public()),
        ),
        (
            "responder.identity_payload".into(),
            hex::encode(resp.payload()),
        ),
    ];
    for (name, suite) in [
        ("aesgcm", CipherSuite::AesGcmSha256),
        ("chachapoly", CipherSuite::ChaChaPolyBlake2s),
    ] {
        let (mut i, m1) = InitiatorHandshake::start_with_fixed_ephemeral(
            &init,
            suite,
            Some(resp.peer_id()),
            &[0x21; 32],
        )
        .unwrap();
        let (r, m2) = ResponderHandshake::respond_with_fixed_ephemeral(
            &resp,
            &CipherSuite::ALL,
            &m1,
            &[0x22; 32],
        )
        .unwrap();
        i.read_message2(&m2).unwrap();
        let (m3, _, mut i_seal, _) = i.write_message3().unwrap();
        let (_, mut r_seal, _) = r.read_message3(&m3).unwrap();
        let mut accept = BytesMut::new();
        r_seal.seal(KIND_ACCEPT, &[], &mut accept).unwrap();
        let mut batch = BytesMut::new();
        r_seal.seal_batch(&BATCH, &mut batch).unwrap();
        let mut data = BytesMut::new();
        i_seal.seal_message(b"roll 3 4", &mut data).unwrap();
        let mut close = BytesMut::new();
        i_seal.seal(KIND_CLOSE, b"done", &mut close).unwrap();
        let mut m1_frame = BytesMut::new();
        encode_frame(&m1, &mut m1_frame);
        v.push((format!("{name}.msg1"), hex::encode(&m1)));
        v.push((format!("{name}.msg1_frame"), hex::encode(&m1_frame)));
        v.push((format!("{name}.msg2"), hex::encode(&m2)));
        v.push((format!("{name}.msg3"), hex::encode(&m3)));
        v.push((
            format!("{name}.responder_accept_frame"),
            hex::encode(&accept),
        ));
        v.push((format!("{name}.responder_batch_frame"), hex::encode(&batch)));
        v.push((format!("{name}.initiator_data_frame"), hex::encode(&data)));
        v.push((format!("{name}.initiator_close_frame"), hex::encode(&close)));
        v.extend(ik_vectors(name, suite, &init, &resp));
    }
    let mut fallback = BytesMut::new();
    encode_frame(&FALLBACK, &mut fallback);
    v.push(("ik.fallback_frame".into(), hex::encode(&fallback)));
    let mut body = BytesMut::new();
    encode_batch_body(&BATCH, &mut body).unwrap();
    v.push(("batch.body".into(), hex::encode(&body)));
    let rate = LimitRejection {
        limit: LimitKind::NewConnectionRate,
        retry_after: Some(Duration::from_millis(2500)),
    };
    let in_flight = LimitRejection {
        limit: LimitKind::HandshakesInFlight,
        retry_after: None,
    };
    v.push((
        "refusal.rate_frame".into(),
        hex::encode(encode_refusal(&rate)),
    ));
    v.push((
        "refusal.in_flight_frame".into(),
        hex::encode(encode_refusal(&in_flight)),
    ));
    v
}

/// The IK vectors of one suite: the initiator already holds the responder's static key.
fn ik_vectors(
    name: &str,
    suite: CipherSuite,
    init: &LocalIdentity,
    resp: &LocalIdentity,
) -> Vec<(String, String)> {
    let (i, m1) = IkInitiator::start_with_fixed_ephemeral(
        init,
        suite,
        resp.peer_id(),
        resp.noise_public(),
        &[0x31; 32],
    )
    .unwrap();
    let mut r =
        handshake_ik::respond_with_fixed_ephemeral(resp, &CipherSuite::ALL, &m1, &[0x32; 32])
            .unwrap();
    assert_eq!(r.peer, init.peer_id());
    let (mut i_seal, _) = i.read_message2(&r.msg2).unwrap();
    let mut accept = BytesMut::new();
    r.sealer.seal(KIND_ACCEPT, &[], &mut accept).unwrap();
    let mut confirm = BytesMut::new();
    i_seal.seal(KIND_ACCEPT, &[], &mut confirm).unwrap();
    vec![
        (format!("{name}.ik_msg1"), hex::encode(&m1)),
        (format!("{name}.ik_msg2"), hex::encode(&r.msg2)),
        (
            format!("{name}.ik_responder_accept_frame"),
            hex::encode(&accept),
        ),
        (
            format!("{name}.ik_initiator_confirm_frame"),
            hex::encode(&confirm),
        ),
    ]
}

/// Reads `name = hex` lines from the ```test-vectors blocks of docs/protocol.md.
fn documented() -> Vec<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/protocol.md");
    let text = std::fs::read_to_string(path).expect("docs/protocol.md exists");
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```test-vectors") {
            inside = true;
        } else if trimmed.starts_with("```") {
            inside = false;
        } else if inside {
            if let Some((k, v)) = trimmed.split_once(" = ") {
                out.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
    }
    out
}

#[test]
fn protocol_document_vectors_match_the_code() {
    let computed = compute();
    if std::env::var_os("BITCRAPS_PRINT_VECTORS").is_some() {
        for (k, v) in &computed {
            println!("{k} = {v}");
        }
    }
    let documented = documented();
    for (name, value) in &computed {
        let doc = documented.iter().find(|(k, _)| k == name);
        assert_eq!(
            doc.map(|(_, v)| v),
            Some(value),
            "vector `{name}` in docs/protocol.md"
        );
    }
    assert_eq!(
        documented.len(),
        computed.len(),
        "no stale vectors in the document"
    );
}
