//! A small simulation (100 nodes) in the normal test run: the delivery invariants, not timings.

use std::time::Duration;

use bitcraps_mesh::sim::{run, SimConfig};

#[test]
fn hundred_nodes_deliver_everything_once_within_the_caps() {
    let config = SimConfig {
        nodes: 100,
        seed: 7,
        broadcasts: 10,
        directed: 60,
        send_window: Duration::from_secs(20),
        drain: Duration::from_secs(10),
        ..SimConfig::default()
    };
    let r = run(&config).expect("valid settings");
    assert_eq!(r.duplicate_deliveries, 0, "{r}");
    assert!(r.broadcast.delivery_ratio >= 0.99, "{r}");
    assert!(r.directed.delivery_ratio >= 0.99, "{r}");
    assert!(r.transmissions_vs_naive < 1.0, "{r}");
    let m = r.memory_peak;
    let c = &config.mesh;
    assert!(
        m.dedup_entries <= c.dedup_capacity && m.routes <= c.route_capacity,
        "{r}"
    );
    assert!(m.pending_relays <= c.max_pending_relays, "{r}");
    assert!(
        m.stored_packets <= c.store.max_packets && m.stored_bytes <= c.store.max_bytes,
        "{r}"
    );
}

#[test]
fn after_a_partition_heals_stored_packets_are_delivered_once() {
    let config = SimConfig {
        nodes: 100,
        seed: 3,
        broadcasts: 0,
        directed: 40,
        partition: true,
        partition_start: Duration::from_secs(2),
        partition_time: Duration::from_secs(15),
        send_window: Duration::from_secs(15),
        drain: Duration::from_secs(10),
        ..SimConfig::default()
    };
    let r = run(&config).expect("valid settings");
    let p = r.partition.clone().expect("partition report");
    assert!(p.stored_across > 0, "the workload crossed the wall: {r}");
    assert_eq!(p.delivered_after_heal, p.stored_across, "{r}");
    assert_eq!(p.delivered_twice, 0, "{r}");
    assert_eq!(r.duplicate_deliveries, 0, "{r}");
}
