//! The contract suite against the CLI backend driving the `zfs` shim: locally, and
//! through a stand-in ssh that hands the command line to `sh -c` like sshd does (so
//! every quoted word really goes through a POSIX shell).

#[macro_use]
mod contract;

mod local {
    use crate::contract::beds::ShimBed;
    contract_tests!(ShimBed::local);
}

mod over_ssh {
    use crate::contract::beds::ShimBed;
    contract_tests!(ShimBed::over_ssh);
}
