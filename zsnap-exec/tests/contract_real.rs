//! The contract suite against real OpenZFS, over ssh to the testbed guest.
//!
//! Needs `ZSNAP_TESTBED_SSH_CONFIG` (an ssh_config) and `ZSNAP_TESTBED_HOST` (its host
//! alias); the guest has pools `src` and `dst`. Without them each test prints why it is
//! skipped, except under `CI=true`, where it fails: CI always has the testbed.

#[macro_use]
mod contract;

use contract::real::RealBed;

contract_tests!(RealBed::boxed);
