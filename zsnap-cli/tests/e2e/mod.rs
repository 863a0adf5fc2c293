//! Support for the end-to-end scenarios on real OpenZFS: the testbed guest and its
//! scenarios ([`guest`]), and the comparison of what a plan predicted with what ZFS did
//! ([`compare`]).

pub mod compare;
pub mod guest;
#[path = "../../../zsnap-exec/tests/support/skip.rs"]
pub mod skip;
