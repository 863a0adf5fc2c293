//! # zsnap-exec
//!
//! Carries out what `zsnap-core` decides.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
