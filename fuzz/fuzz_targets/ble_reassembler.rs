//! BLE reassembler: arbitrary fragment sequences (arbitrary headers, chunks and arrival times)
//! into a `Reassembler` with arbitrary caps.
//! Invariants: never panics; no completed message exceeds the byte cap; the partial messages
//! held never exceed the set cap, and the chunk bytes held never exceed sets x byte cap (memory
//! bounded by the caps alone, whatever the remote announces); the counters add up.
#![no_main]

use std::time::{Duration, Instant};

use bitcraps_transport_ble::{Reassembler, ReassemblerConfig};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 5 {
        return;
    }
    let config = ReassemblerConfig {
        max_fragments: u16::from(data[0]).max(1),
        max_message_bytes: usize::from(u16::from_be_bytes([data[1], data[2]])),
        max_sets: usize::from(data[3] % 16).max(1),
        timeout: Duration::from_millis(u64::from(data[4]) * 10),
    };
    let mut reassembler = Reassembler::new(config);
    let start = Instant::now();
    let mut now = start;
    let mut rest = &data[5..];
    let mut pushed = 0u64;
    let mut completed = 0u64;
    // Each record: length (1 byte), time step in ms (1 byte), then that many fragment bytes.
    while let [len, step, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (fragment, next) = tail.split_at(len);
        rest = next;
        now += Duration::from_millis(u64::from(*step));
        pushed += 1;
        if let Ok(Some(message)) = reassembler.push(Bytes::copy_from_slice(fragment), now) {
            completed += 1;
            assert!(
                message.len() <= config.max_message_bytes,
                "a message of {} bytes passed the cap of {}",
                message.len(),
                config.max_message_bytes
            );
        }
        assert!(reassembler.in_flight() <= config.max_sets);
        assert!(reassembler.buffered_bytes() <= config.max_sets * config.max_message_bytes);
        let stats = reassembler.stats();
        assert_eq!(stats.fragments_in, pushed);
        assert_eq!(stats.messages_in, completed);
    }
    reassembler.expire(now + config.timeout);
    assert_eq!(reassembler.in_flight(), 0);
    reassembler.clear();
    assert_eq!(reassembler.buffered_bytes(), 0);
});
