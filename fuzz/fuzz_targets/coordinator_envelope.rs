//! Coordinator envelopes: arbitrary transport messages through the decoder, then the same bytes
//! into a peer state machine.
//! Invariants: decoding never panics; every envelope decoded re-encodes to exactly the bytes it
//! was decoded from (so the decoder accepts nothing the encoder would not write); a `DATA`
//! payload is a slice inside the message; and a state machine fed the messages never panics and
//! only ever writes transport messages that decode cleanly (or `DATA_NEXT` payloads).
#![no_main]

use std::time::{Duration, Instant};

use bitcraps_coordinator::envelope::{Envelope, Envelopes, FrameBuilder, TYPE_PING, TYPE_PONG};
use bitcraps_coordinator::machine::{LinkId, LinkInfo, MachineConfig, PeerMachine};
use bitcraps_coordinator::CoordinatorConfig;
use bitcraps_transport_core::TransportAddress;
use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;

fn reencode(env: &Envelope, f: &mut FrameBuilder) {
    match env {
        Envelope::Hello(h) => assert!(f.hello(h)),
        Envelope::Data { lane, seq, payload } => assert!(f.data(*lane, *seq, payload)),
        Envelope::DataNext { lane, seq, len } => assert!(f.data_next(*lane, *seq, *len)),
        Envelope::Ack { lane, state } => assert!(f.ack(*lane, *state)),
        Envelope::Ping(n) => assert!(f.probe(TYPE_PING, *n)),
        Envelope::Pong(n) => assert!(f.probe(TYPE_PONG, *n)),
        Envelope::Close(c) => assert!(f.close(*c)),
    }
}

fn config() -> MachineConfig {
    let mut c = MachineConfig::from_coordinator(&CoordinatorConfig::default(), 2048);
    c.recv_window = 16;
    c.recv_window_bytes = 4096;
    c
}

fuzz_target!(|data: &[u8]| {
    // Split the input into transport messages at 0xFE bytes.
    let messages: Vec<&[u8]> = data.split(|&b| b == 0xFE).collect();
    for m in &messages {
        let frame = Bytes::copy_from_slice(m);
        let mut f = FrameBuilder::new(BytesMut::new(), usize::MAX);
        let mut consumed = 0;
        for env in Envelopes::new(frame.clone()) {
            let Ok(env) = env else { break };
            if let Envelope::Data { payload, .. } = &env {
                assert!(payload.len() <= frame.len());
            }
            let before = f.len();
            reencode(&env, &mut f);
            consumed += f.len() - before;
        }
        let (again, _) = f.finish();
        assert_eq!(&again[..], &frame[..consumed], "re-encoding differs");
    }

    let mut now = Instant::now();
    let mut m = PeerMachine::new(config(), 1, None, now);
    let info = LinkInfo {
        remote: TransportAddress::Memory(1),
        reliable: data.first().is_some_and(|b| b & 1 == 0),
        max_message: 4096,
    };
    m.attach(LinkId(1), info, now);
    let mut expect_payload = false;
    for msg in messages {
        now += Duration::from_millis(3);
        m.received(LinkId(1), Bytes::copy_from_slice(msg), now);
        m.handle_timeout(now);
        while m.poll_delivery(now).is_some() {}
        while m.poll_action().is_some() {}
        while let Some((_, frame)) = m.poll_transmit(now) {
            if std::mem::take(&mut expect_payload) {
                continue;
            }
            for env in Envelopes::new(frame) {
                match env {
                    Ok(Envelope::DataNext { .. }) => expect_payload = true,
                    Ok(_) => {}
                    Err(e) => panic!("the machine wrote a malformed message: {e}"),
                }
            }
        }
        if m.is_ended() {
            break;
        }
    }
});
