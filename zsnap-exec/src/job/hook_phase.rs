//! The config's hooks around a snapshot or prune phase and around a replication: the
//! pre hooks before the plan is applied (a failure with `on_failure = "skip"` takes the
//! call's datasets out of the plan), holding hooks held over the snapshots, the post
//! hooks after, told whether their datasets' steps failed.

use std::collections::{BTreeMap, BTreeSet};

use zsnap_core::config::Config;
use zsnap_core::hooks::{hook_calls, HookEvent, HookSubject, OnFailure};
use zsnap_core::{DatasetName, Note, Plan, Step};

use crate::apply::{Report, StepOutcome};
use crate::hooks::{run_call, start_held, Held, HookRun};

use super::phase::PhaseKind;

/// What the pre hooks of a phase did, and the holding hooks still running.
#[derive(Debug, Default)]
pub(super) struct Before {
    pub(super) runs: Vec<HookRun>,
    held: Vec<Held>,
    /// The datasets a failed pre hook left out.
    pub(super) skipped: BTreeSet<DatasetName>,
}

/// The events of a phase kind: (pre, post).
fn events(kind: &PhaseKind) -> Option<(HookEvent, HookEvent)> {
    match kind {
        PhaseKind::Snapshot { .. } => Some((HookEvent::PreSnapshot, HookEvent::PostSnapshot)),
        PhaseKind::Prune { .. } => Some((HookEvent::PrePrune, HookEvent::PostPrune)),
        PhaseKind::Replicate { .. } => Some((HookEvent::PreReplicate, HookEvent::PostReplicate)),
        _ => None,
    }
}

fn target_of(kind: &PhaseKind) -> Option<&str> {
    match kind {
        PhaseKind::Replicate { target } => Some(target),
        _ => None,
    }
}

/// The datasets a snapshot or prune plan touches, with the snapshots it takes or
/// destroys in each.
pub(super) fn subjects_of_plan(plan: &Plan) -> Vec<HookSubject> {
    let mut by: BTreeMap<DatasetName, Vec<String>> = BTreeMap::new();
    for step in &plan.steps {
        match step {
            Step::Snapshot(s) => {
                for n in &s.names {
                    by.entry(n.dataset().clone())
                        .or_default()
                        .push(n.to_string());
                }
            }
            Step::Destroy(d) => {
                let e = by.entry(d.dataset.clone()).or_default();
                e.extend(
                    d.snapshots
                        .iter()
                        .map(|s| format!("{}@{}", d.dataset, s.name)),
                );
            }
            _ => {}
        }
    }
    by.into_iter()
        .map(|(d, snaps)| HookSubject::new(d, snaps))
        .collect()
}

/// When `enabled`, the subjects of a phase and what its pre hooks did; nothing
/// otherwise.
pub(super) fn start(
    enabled: bool,
    config: &Config,
    kind: &PhaseKind,
    subjects: impl FnOnce() -> Vec<HookSubject>,
) -> (Vec<HookSubject>, Before) {
    if !enabled {
        return (Vec::new(), Before::default());
    }
    let subjects = subjects();
    let before = before(config, kind, &subjects);
    (subjects, before)
}

/// Runs the pre hooks of `kind` for `subjects` (starting the holding ones).
fn before(config: &Config, kind: &PhaseKind, subjects: &[HookSubject]) -> Before {
    let mut out = Before::default();
    let Some((pre, _)) = events(kind) else {
        return out;
    };
    for call in hook_calls(&config.hooks, pre, target_of(kind), subjects) {
        let result = if call.hold {
            start_held(&call).map(|h| out.held.push(h))
        } else {
            let run = run_call(&call);
            if run.failed() {
                Err(run)
            } else {
                out.runs.push(run);
                Ok(())
            }
        };
        if let Err(mut run) = result {
            if call.on_failure == OnFailure::Skip {
                run.skipped = true;
                out.skipped.extend(call.datasets.iter().cloned());
            }
            out.runs.push(run);
        }
    }
    out
}

/// `plan` without the steps of `skipped` datasets, with a note for each.
pub(super) fn without(mut plan: Plan, skipped: &BTreeSet<DatasetName>) -> Plan {
    if skipped.is_empty() {
        return plan;
    }
    plan.steps.retain_mut(|step| match step {
        Step::Snapshot(s) => {
            s.names.retain(|n| !skipped.contains(n.dataset()));
            !s.names.is_empty()
        }
        Step::Destroy(d) => !skipped.contains(&d.dataset),
        _ => true,
    });
    for d in skipped {
        plan.notes.push(Note::new(
            Some(d.clone()),
            "left out of this phase: a hook before it failed".to_owned(),
        ));
    }
    plan
}

/// Releases the holding hooks, then runs the post hooks of `kind` for `subjects` (but
/// the ones a pre hook left out: nothing was done to them), each marked failed when a
/// step of it failed or the whole phase did.
pub(super) fn after(
    config: &Config,
    kind: &PhaseKind,
    before: Before,
    subjects: Vec<HookSubject>,
    phase_failed: bool,
) -> Vec<HookRun> {
    let Before {
        mut runs,
        held,
        skipped,
    } = before;
    runs.extend(held.into_iter().map(Held::release));
    if let Some((_, post)) = events(kind) {
        let subjects: Vec<HookSubject> = subjects
            .into_iter()
            .filter(|s| !skipped.contains(&s.dataset))
            .map(|s| {
                let failed = phase_failed || s.failed;
                s.with_failed(failed)
            })
            .collect();
        runs.extend(
            hook_calls(&config.hooks, post, target_of(kind), &subjects)
                .iter()
                .map(run_call),
        );
    }
    runs
}

/// `subjects` marked failed where a step of their dataset failed in `report`.
pub(super) fn mark_failed(
    plan: &Plan,
    report: &Report,
    subjects: Vec<HookSubject>,
) -> Vec<HookSubject> {
    let mut failed: BTreeSet<&DatasetName> = BTreeSet::new();
    for r in &report.steps {
        if matches!(r.outcome, StepOutcome::Done { .. }) {
            continue;
        }
        match plan.steps.get(r.index) {
            Some(Step::Snapshot(s)) => failed.extend(s.names.iter().map(|n| n.dataset())),
            Some(Step::Destroy(d)) => {
                failed.insert(&d.dataset);
            }
            _ => {}
        }
    }
    subjects
        .into_iter()
        .map(|s| {
            let f = failed.contains(&s.dataset);
            s.with_failed(f)
        })
        .collect()
}

/// The failures among `runs`, as one error message.
pub(super) fn failures(runs: &[HookRun]) -> Option<String> {
    let failed: Vec<String> = runs
        .iter()
        .filter(|r| r.failed())
        .map(HookRun::describe)
        .collect();
    (!failed.is_empty()).then(|| failed.join("; "))
}

/// `error` with `more` added.
pub(super) fn join_errors(error: Option<String>, more: Option<String>) -> Option<String> {
    match (error, more) {
        (Some(a), Some(b)) => Some(format!("{a}; {b}")),
        (a, b) => a.or(b),
    }
}
