//! The replication scenarios on the fake (in memory) and on the CLI backend driving the
//! `zfs` shim, plus what only a fake can show: estimates against the exact stream, a
//! bandwidth limit's sleeps on an injected clock.

#[macro_use]
mod contract;
#[macro_use]
mod replication;

mod on_fake {
    use crate::contract::beds::FakeBed;
    replication_scenarios!(FakeBed::boxed);
}

mod on_shim {
    use crate::contract::beds::ShimBed;
    replication_scenarios!(ShimBed::local);
}
