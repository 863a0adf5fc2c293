//! The replication scenarios on real OpenZFS: pool to pool (`src` → `dst`) through one
//! CLI backend over ssh to the testbed guest, every stream crossing the host.
//!
//! Needs `ZSNAP_TESTBED_SSH_CONFIG` and `ZSNAP_TESTBED_HOST` (see `testbed/`). Without
//! them each test prints why it is skipped, except under `CI=true`, where it fails.

#[macro_use]
mod contract;
#[macro_use]
mod replication;

use contract::real::RealBed;

replication_scenarios!(RealBed::boxed);
