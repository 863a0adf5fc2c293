//! The `zsnap` command.
#![forbid(unsafe_code)]

fn main() {}
