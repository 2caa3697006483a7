//! `BleStream` over simulated links: bulk integrity with loss, backpressure, end of stream,
//! half-close, hostile input and link loss. All under paused tokio time.

use std::io::ErrorKind;
use std::time::Duration;

use bitcraps_transport_ble::link::{BleAdapter, IncomingLinks};
use bitcraps_transport_ble::sim::{SimConfig, SimDevice, SimDeviceConfig, SimRadio};
use bitcraps_transport_ble::{AdvertisingConfig, BleLink, BleStream, LinkDownReason};
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Setup {
    radio: SimRadio,
    a: SimDevice,
    b: SimDevice,
    _incoming: IncomingLinks,
    la: BleLink,
    lb: BleLink,
}

async fn setup(config: SimConfig, mtu: u16) -> Setup {
    let radio = SimRadio::new(config);
    let b = radio.add_device(SimDeviceConfig::with_mtu(mtu));
    b.start_advertising(AdvertisingConfig::new("b"))
        .await
        .expect("adv");
    let mut incoming = b.listen().await.expect("listen");
    let a = radio.add_device(SimDeviceConfig::default());
    let la = a
        .connect(b.id(), Duration::from_secs(1))
        .await
        .expect("connect");
    let lb = incoming.accept().await.expect("accept");
    Setup {
        radio,
        a,
        b,
        _incoming: incoming,
        la,
        lb,
    }
}

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 56) as u8
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn one_mib_arrives_identical_with_loss_at_mtu_23_and_247() {
    for mtu in [23u16, 247] {
        let config = SimConfig {
            seed: u64::from(mtu),
            loss: 0.1,
            ..Default::default()
        };
        let s = setup(config, mtu).await;
        let data = random_bytes(1 << 20, u64::from(mtu));
        let mut writer = BleStream::new(s.la);
        let mut reader = BleStream::new(s.lb);
        let expected = data.clone();
        let write = tokio::spawn(async move {
            writer.write_all(&data).await.expect("write");
            writer.shutdown().await.expect("shutdown");
            writer
        });
        let mut got = Vec::new();
        reader.read_to_end(&mut got).await.expect("read");
        assert!(got == expected, "mtu {mtu}: stream differs");
        let writer = write.await.expect("writer");
        let out = writer.fragmenter_stats();
        let chunk = usize::from(mtu) - 3 - 6;
        // 256 messages of 4 KiB, plus the end-of-stream message.
        assert_eq!(out.messages_out, 257);
        assert_eq!(out.fragments_out, 256 * 4096u64.div_ceil(chunk as u64) + 1);
        let stats = reader.reassembler_stats();
        assert_eq!(stats.drops.total(), 0);
        assert_eq!(stats.fragments_in, out.fragments_out);
        assert!(s.radio.stats().retransmissions > 0);
    }
}

#[tokio::test(start_paused = true)]
async fn a_stalled_reader_holds_the_writer_back() {
    let s = setup(SimConfig::default(), 23).await;
    let data = random_bytes(64 * 1024, 9);
    let mut writer = BleStream::new(s.la);
    let mut reader = BleStream::new(s.lb);
    let mut accepted = 0;
    while accepted < data.len() {
        match tokio::time::timeout(Duration::from_secs(30), writer.write(&data[accepted..])).await {
            Ok(written) => accepted += written.expect("write"),
            Err(_) => break,
        }
    }
    // One pending 4 KiB message, plus the link's queues: 8 payloads of write credit, one in
    // flight and 32 in the receiver's queue, 14 bytes of chunk each.
    let queues = SimConfig::default().queues;
    let in_queues = (queues.send_credit + 1 + queues.recv_capacity) * 14;
    assert!(accepted >= 4096, "{accepted}");
    assert!(
        accepted <= 4096 + in_queues,
        "{accepted} > bound {}",
        4096 + in_queues
    );

    let rest = data[accepted..].to_vec();
    let write = tokio::spawn(async move {
        writer.write_all(&rest).await.expect("write");
        writer.shutdown().await.expect("shutdown");
        writer
    });
    let mut got = Vec::new();
    reader.read_to_end(&mut got).await.expect("read");
    assert!(got == data);
    drop(write.await.expect("writer"));
}

#[tokio::test(start_paused = true)]
async fn end_of_stream_is_a_zero_length_message() {
    let s = setup(SimConfig::default(), 23).await;
    let mut writer = BleStream::new(s.la);
    let mut raw = s.lb;
    writer.write_all(b"hi").await.expect("write");
    writer.shutdown().await.expect("shutdown");
    assert_eq!(
        raw.recv().await,
        Some(Bytes::from_static(&[0, 0, 0, 0, 0, 1, b'h', b'i']))
    );
    assert_eq!(
        raw.recv().await,
        Some(Bytes::from_static(&[0, 1, 0, 0, 0, 1]))
    );
    assert!(matches!(writer.write(b"late").await, Err(e) if e.kind() == ErrorKind::BrokenPipe));
}

#[tokio::test(start_paused = true)]
async fn half_close_then_full_close() {
    let s = setup(SimConfig::default(), 185).await;
    let mut a = BleStream::new(s.la);
    let mut b = BleStream::new(s.lb);
    a.write_all(b"bet 10").await.expect("write");
    a.shutdown().await.expect("shutdown");
    let mut got = Vec::new();
    b.read_to_end(&mut got).await.expect("read");
    assert_eq!(got, b"bet 10");
    // b can still answer after a's half-close.
    b.write_all(b"ok").await.expect("write");
    b.shutdown().await.expect("shutdown");
    let mut answer = Vec::new();
    a.read_to_end(&mut answer).await.expect("read");
    assert_eq!(answer, b"ok");
    // Both directions ended: the link closes by itself.
    let (ra, rb) = (a.link_down().await, b.link_down().await);
    assert!(matches!(
        (&ra, &rb),
        (LinkDownReason::LocalClose, LinkDownReason::RemoteClose)
            | (LinkDownReason::RemoteClose, LinkDownReason::LocalClose)
    ));
    assert_eq!(s.radio.link_count(s.a.id()), 0);
    assert_eq!(s.radio.link_count(s.b.id()), 0);
}

#[tokio::test(start_paused = true)]
async fn garbage_is_invalid_data_and_aborts_the_link() {
    let s = setup(SimConfig::default(), 23).await;
    let mut reader = BleStream::new(s.la);
    // Index 5 of a 2-fragment message.
    s.lb.send(Bytes::from_static(&[0, 0, 0, 5, 0, 2, 1]))
        .await
        .expect("send");
    let mut buf = [0u8; 16];
    let err = reader.read(&mut buf).await.expect_err("garbage");
    assert_eq!(err.kind(), ErrorKind::InvalidData);
    assert_eq!(s.lb.down().await, LinkDownReason::RemoteClose);
    // The error sticks.
    assert_eq!(
        reader.read(&mut buf).await.map_err(|e| e.kind()),
        Err(ErrorKind::InvalidData)
    );
}

#[tokio::test(start_paused = true)]
async fn a_lost_link_is_an_error_not_an_eof() {
    let s = setup(SimConfig::default(), 247).await;
    let mut writer = BleStream::new(s.la);
    let mut reader = BleStream::new(s.lb);
    writer.write_all(b"first").await.expect("write");
    writer.flush().await.expect("flush");
    let mut buf = [0u8; 5];
    reader.read_exact(&mut buf).await.expect("read");
    assert_eq!(&buf, b"first");
    s.radio.drop_link(s.a.id(), s.b.id());
    let err = reader.read(&mut buf).await.expect_err("lost");
    assert_eq!(err.kind(), ErrorKind::ConnectionAborted);
    let err = writer.write_all(b"more").await.and(writer.flush().await);
    assert_eq!(err.map_err(|e| e.kind()), Err(ErrorKind::ConnectionAborted));
}

/// Goodput and payload efficiency of the stream on a loss-free link match the model: the link
/// is never idle (write credit keeps it busy), and every byte on the radio is accounted for.
#[tokio::test(start_paused = true)]
async fn goodput_and_efficiency_follow_the_model() {
    use bitcraps_transport_ble::sim::LinkRate;
    for (rate, phy) in [(LinkRate::LE_1M, "1M"), (LinkRate::LE_2M, "2M")] {
        for mtu in [23u16, 185, 247] {
            let s = setup(
                SimConfig {
                    rate,
                    ..Default::default()
                },
                mtu,
            )
            .await;
            let data = random_bytes(256 * 1024, 1);
            let mut writer = BleStream::new(s.la);
            let mut reader = BleStream::new(s.lb);
            let started = tokio::time::Instant::now();
            let expected = data.clone();
            let write = tokio::spawn(async move {
                writer.write_all(&data).await.expect("write");
                writer.flush().await.expect("flush");
                writer
            });
            let mut got = vec![0; expected.len()];
            reader.read_exact(&mut got).await.expect("read");
            let elapsed = started.elapsed();
            assert!(got == expected);
            let stats = s.radio.stats();
            let airtime = Duration::from_nanos(stats.airtime_nanos);
            assert!(elapsed >= airtime && elapsed <= airtime + Duration::from_millis(1));
            let fragments = write
                .await
                .expect("writer")
                .fragmenter_stats()
                .fragments_out;
            // Radio bytes: each fragment's app bytes + 6 (fragment) + 3 (ATT) + 4 (L2CAP).
            assert_eq!(stats.radio_bytes, expected.len() as u64 + 13 * fragments);
            let efficiency = expected.len() as f64 / stats.radio_bytes as f64;
            let kbps = expected.len() as f64 * 8.0 / elapsed.as_secs_f64() / 1000.0;
            eprintln!("{phy} PHY, MTU {mtu}: efficiency {efficiency:.3}, goodput {kbps:.0} kbit/s");
        }
    }
}

/// The split halves work from separate tasks at once (the core's driver reads and writes
/// concurrently), keep the stream's semantics, and close the link once both directions ended.
#[tokio::test(start_paused = true)]
async fn split_halves_run_concurrently_and_close_the_link() {
    let s = setup(SimConfig::default(), 23).await;
    let a = BleStream::new(s.la);
    let counters = a.counters();
    let (mut ar, mut aw) = a.into_split();
    let (mut br, mut bw) = BleStream::new(s.lb).into_split();
    let data = random_bytes(20_000, 4);
    let (to_b, to_a) = (data.clone(), data.clone());
    // a writes while it reads b's echo-free stream in another task, and so does b.
    let a_writes = tokio::spawn(async move {
        aw.write_all(&to_b).await.expect("a write");
        aw.shutdown().await.expect("a shutdown");
        aw
    });
    let b_writes = tokio::spawn(async move {
        bw.write_all(&to_a).await.expect("b write");
        bw.shutdown().await.expect("b shutdown");
        bw
    });
    let a_reads = tokio::spawn(async move {
        let mut got = Vec::new();
        ar.read_to_end(&mut got).await.expect("a read");
        (ar, got)
    });
    let mut got_b = Vec::new();
    br.read_to_end(&mut got_b).await.expect("b read");
    let (ar, got_a) = a_reads.await.expect("a reader");
    assert!(got_a == data && got_b == data);
    let (_aw, _bw) = (a_writes.await.expect("a"), b_writes.await.expect("b"));
    // Both directions ended on both sides: the link closes while the halves are still alive.
    let reason = ar.link_down().await;
    assert!(matches!(
        reason,
        LinkDownReason::LocalClose | LinkDownReason::RemoteClose
    ));
    let stats = counters.snapshot();
    assert_eq!(stats.bytes_out, 20_000);
    assert_eq!(stats.bytes_in, 20_000);
    assert_eq!(
        stats.messages_out,
        5 + 1,
        "4 KiB writes plus the end of stream"
    );
    assert_eq!(stats.drops.total(), 0);
    assert_eq!(s.radio.link_count(s.a.id()), 0);
}

/// A link lost in the middle of a message: the read fails with `ConnectionAborted` and the
/// partial message held by the reassembler is freed at once.
#[tokio::test(start_paused = true)]
async fn a_link_lost_mid_message_frees_the_partial_message() {
    let s = setup(SimConfig::default(), 23).await;
    // Two fragments of a three-fragment message, then the link drops.
    for index in 0..2u16 {
        let mut f = vec![0, 9];
        f.extend_from_slice(&index.to_be_bytes());
        f.extend_from_slice(&[0, 3]);
        f.extend_from_slice(&[7; 14]);
        s.lb.send(Bytes::from(f)).await.expect("send");
    }
    let (mut reader, _writer) = BleStream::new(s.la).into_split();
    let mut buf = [0u8; 8];
    // Nothing to read yet: the reassembler holds 28 bytes.
    let pending = tokio::time::timeout(Duration::from_millis(50), reader.read(&mut buf)).await;
    assert!(pending.is_err(), "no complete message yet");
    assert_eq!(reader.buffered_bytes(), 28);
    s.radio.drop_link(s.a.id(), s.b.id());
    let err = reader.read(&mut buf).await.expect_err("lost");
    assert_eq!(err.kind(), ErrorKind::ConnectionAborted);
    assert_eq!(reader.buffered_bytes(), 0);
    assert_eq!(reader.reassembler_stats().fragments_in, 2);
}
