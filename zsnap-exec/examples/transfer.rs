//! One full transfer through zsnap's executor on this machine's `zfs`: the benchmark
//! helper of `benches/testbed-transfer.sh`, which copies a release build into the
//! testbed guest and times it against a bare `zfs send | zfs recv`.
//!
//! ```text
//! transfer [--counted] [--limit BYTES_PER_SECOND] SOURCE@SNAPSHOT TARGET
//! ```
//! Without `--counted` the executor joins `zfs send` and `zfs recv -s -u` with an OS
//! pipe (zsnap is not in the data path); with it, every byte passes through zsnap in
//! 1 MiB buffers and is counted (what progress reporting and bandwidth limits need).
//! Prints `bytes=N seconds=S` (bytes only when counted).
#![expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool"
)]

use std::time::Instant;

use zsnap_core::{DatasetName, Guid, TransferStep};
use zsnap_core::{Location, Plan, RecvOptions, SendSpec, SnapshotName, SnapshotRef, Step};
use zsnap_exec::apply::{apply_with, ApplyOptions, NoObserver, Observer, OneBackend, StepOutcome};
use zsnap_exec::cli::CliZfs;

/// Counts bytes (and so makes them pass through zsnap).
struct Counting;

impl Observer for Counting {
    fn wants_bytes(&self) -> bool {
        true
    }
}

fn usage() -> ! {
    eprintln!("usage: transfer [--counted] [--limit BYTES_PER_SECOND] SOURCE@SNAPSHOT TARGET");
    std::process::exit(2)
}

fn main() {
    let mut counted = false;
    let mut limit = None;
    let mut words = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--counted" => counted = true,
            "--limit" => {
                limit = args
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .or_else(|| usage())
            }
            _ => words.push(a),
        }
    }
    let [source, target] = words.as_slice() else {
        usage()
    };
    let source: SnapshotName = source.parse().unwrap_or_else(|e| {
        eprintln!("{e}");
        usage()
    });
    let target: DatasetName = target.parse().unwrap_or_else(|e| {
        eprintln!("{e}");
        usage()
    });
    let here = Location::local();
    let mut plan = Plan::new(chrono::Utc::now());
    let mut step = TransferStep::new(
        here.clone(),
        here,
        source.dataset().clone(),
        target,
        SendSpec::Full {
            // The guid is only checked by planners; zfs sends by name.
            snapshot: SnapshotRef::new(source.short().clone(), Guid(0)),
        },
        "benchmark",
    );
    step.recv = RecvOptions::safe();
    plan.steps.push(Step::Transfer(step));
    let mut zfs = CliZfs::local();
    let options = ApplyOptions::default().with_bandwidth_limit(limit);
    let started = Instant::now();
    let report = if counted {
        apply_with(
            &plan,
            &mut OneBackend(&mut zfs),
            &mut Counting,
            None,
            &options,
        )
    } else {
        apply_with(
            &plan,
            &mut OneBackend(&mut zfs),
            &mut NoObserver,
            None,
            &options,
        )
    };
    let seconds = started.elapsed().as_secs_f64();
    match &report.steps[0].outcome {
        StepOutcome::Done { bytes } => match bytes {
            Some(b) => println!("bytes={b} seconds={seconds:.3}"),
            None => println!("seconds={seconds:.3}"),
        },
        other => {
            eprintln!("transfer failed: {other:?}");
            std::process::exit(1)
        }
    }
}
