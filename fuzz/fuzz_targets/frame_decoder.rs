//! Frame decoder: arbitrary bytes, fed in arbitrary pieces, under an arbitrary maximum.
//! Invariants: no frame exceeds the maximum; the decoded frames re-encode to exactly the bytes
//! consumed; the buffer never grows by more than what arrived plus one maximum frame (no
//! allocation sized by a remote length); a refused length is really over the maximum.
#![no_main]

use bitcraps_transport_core::framing::{encode_frame, FrameDecoder};
use bitcraps_transport_core::ProtocolError;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let max = usize::from(data[0]) * 64;
    let piece = usize::from(data[1]).max(1);
    let input = &data[2..];
    let decoder = FrameDecoder::new(max);
    let mut buf = BytesMut::new();
    let mut reencoded = BytesMut::new();
    let mut fed = 0;
    for chunk in input.chunks(piece) {
        buf.extend_from_slice(chunk);
        fed += chunk.len();
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= max);
                    encode_frame(&frame, &mut reencoded);
                }
                Ok(None) => break,
                Err(ProtocolError::FrameTooLarge { len, max: m }) => {
                    assert_eq!(m, max);
                    assert!(len > max as u64);
                    return;
                }
                Err(other) => panic!("unexpected error {other:?}"),
            }
            assert!(buf.capacity() <= 2 * (fed + max + 4) + 64, "buffer grew past what arrived");
        }
    }
    let consumed = input.len() - buf.len();
    assert_eq!(&reencoded[..], &input[..consumed]);
});
