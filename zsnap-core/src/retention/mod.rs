//! Retention: which snapshots a policy keeps, and why.
//!
//! A [`RetentionPolicy`] is a union of [`KeepRule`]s: a snapshot is destroyed only when
//! no rule keeps it. [`evaluate`] judges one dataset's [`Candidate`]s (the snapshots the
//! policy manages, oldest first) at an instant `now` in a time zone, and returns for each
//! candidate every (rule, bucket) that keeps it as a [`KeepReason`](crate::plan::KeepReason)
//! — which is what dry runs print.
//!
//! The rules follow the tools they come from exactly, so their users can switch without
//! surprises: `last N`; backupd's per-label counts; restic's calendar buckets (local
//! hours, dates, ISO weeks, months, years; DST-correct); zrepl's `grid`; sanoid's
//! age-and-count pruning; `newer than`; regular expressions on names. Each rule's
//! documentation states its semantics, edge cases included.
//!
//! Invariants: evaluation is a pure function of (policy, candidates, now, time zone);
//! each rule is evaluated on its own, so the kept set of a policy is the union of the
//! kept sets of its rules, and adding a rule never drops a snapshot. Ordering by age is
//! by `creation`, ties broken by `createtxg`, then by position — except where zrepl
//! breaks ties otherwise and its rules follow it: `last N` ranks equal seconds by name,
//! descending, and the grid keeps, among equal seconds, the later listed (higher
//! `createtxg`) first.

mod evaluate;
mod grid;
mod parse;
mod pattern;
mod replicated;
mod rule;

pub use evaluate::{evaluate, evaluate_with};
pub use grid::{Grid, GridError, GridInterval, GridKeep, GridProblem, IntervalProblem};
pub use parse::{RuleError, RuleProblem};
pub use pattern::{NameRegex, NameRegexError};
pub use replicated::Replicated;
pub use rule::{Candidate, KeepRule, RetentionPolicy, SanoidCounts};
