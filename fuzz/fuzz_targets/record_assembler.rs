//! Message reassembly from hostile record sequences. Invariants: no message over the maximum is
//! ever produced, and each produced message is exactly the concatenation of its chunks.
#![no_main]

use bitcraps_transport_core::secure::record::{MessageAssembler, Record};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

const MAX: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let mut assembler = MessageAssembler::new(MAX);
    let mut expected: Vec<u8> = Vec::new();
    let mut rest = data;
    while rest.len() >= 3 {
        let kind = rest[0] % 6;
        let len = (usize::from(rest[1]) << 8 | usize::from(rest[2])).min(rest.len() - 3);
        let body = &rest[3..3 + len];
        rest = &rest[3 + len..];
        let record = Record {
            kind,
            body: Bytes::copy_from_slice(body),
        };
        match assembler.push(record) {
            Ok(Some(message)) => {
                expected.extend_from_slice(body);
                assert!(message.len() <= MAX);
                assert_eq!(&message[..], &expected[..]);
                expected.clear();
            }
            Ok(None) => expected.extend_from_slice(body),
            Err(_) => return,
        }
    }
});
