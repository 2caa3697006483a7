//! Tests of the peer state machine through the deterministic [`harness`]: one scenario per
//! rule (`scenarios`), and property tests over random schedules of faults (`properties`).

mod harness;
mod properties;
mod scenarios;
