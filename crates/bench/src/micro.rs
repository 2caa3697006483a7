//! Record-layer micro benchmark: seal and open of one message size on one core, no I/O. Tells
//! how much of a backend's cost is the cipher itself.

use std::time::Instant;

use bytes::BytesMut;

use bitcraps_transport_core::secure::decoder::{Decoded, RecordDecoder};
use bitcraps_transport_core::secure::handshake::{InitiatorHandshake, ResponderHandshake};
use bitcraps_transport_core::secure::{CipherSuite, LocalIdentity};
use bitcraps_transport_core::Keypair;

/// Prints seal and open throughput for `size`-byte messages with `suite`.
pub(crate) fn run(size: usize, count: usize, suite: CipherSuite) -> anyhow::Result<()> {
    let a = LocalIdentity::new(Keypair::generate());
    let b = LocalIdentity::new(Keypair::generate());
    let (mut i, m1) = InitiatorHandshake::start(&a, suite, None)?;
    let (r, m2) = ResponderHandshake::respond(&b, &CipherSuite::ALL, &m1)?;
    i.read_message2(&m2)?;
    let (m3, _, mut seal, _) = i.write_message3()?;
    let (_, _, _) = r.read_message3(&m3)?;
    let msg = vec![0x5Au8; size];
    let mut scratch = BytesMut::new();
    let start = Instant::now();
    for _ in 0..count {
        seal.seal_message(&msg, &mut scratch)?;
        scratch.clear();
    }
    let sealed = start.elapsed();
    // Seal the same number again (nonces continue) into one buffer for the open pass; the
    // opener starts at nonce 0, so open what the first pass would have produced by re-keying:
    // simplest is a fresh pair of sessions.
    let (mut i, m1) = InitiatorHandshake::start(&a, suite, None)?;
    let (r, m2) = ResponderHandshake::respond(&b, &CipherSuite::ALL, &m1)?;
    i.read_message2(&m2)?;
    let (m3, _, mut seal, _) = i.write_message3()?;
    let (_, _, open) = r.read_message3(&m3)?;
    let mut wire = BytesMut::with_capacity(count * (size + 64));
    for _ in 0..count {
        seal.seal_message(&msg, &mut wire)?;
    }
    let mut decoder = RecordDecoder::new(open, size.max(1));
    let start = Instant::now();
    let mut got = 0;
    while let Some(decoded) = decoder.decode(&mut wire)? {
        if let Decoded::Message(m) = decoded {
            got += m.len();
        }
    }
    let opened = start.elapsed();
    anyhow::ensure!(got == size * count);
    let gb = (size * count) as f64 / 1e9;
    println!(
        "{suite:?} {size} B: seal {:.2} GB/s, open {:.2} GB/s",
        gb / sealed.as_secs_f64(),
        gb / opened.as_secs_f64()
    );
    Ok(())
}
