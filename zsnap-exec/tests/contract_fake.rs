//! The contract suite against the in-memory fake.

#[macro_use]
mod contract;

use contract::beds::FakeBed;

contract_tests!(FakeBed::boxed);
