//! A second front end in a few lines: `zsnap run` (snapshot, replicate, prune) driven by
//! the library's job engine, against an in-memory pool.
//!
//! Parses a small config, builds a fake ZFS holding its datasets, runs the whole job at
//! two instants an hour apart with a silent observer, prints what each phase planned
//! and did, and checks the result: each run took its snapshot and replicated it.
//!
//! ```text
//! cargo run -p zsnap-exec --example run_job
//! ```
//!
//! `cargo test -p zsnap-exec` runs it too (`test = true` in the crate's manifest).
#![expect(clippy::print_stdout, reason = "an example prints what it did")]

use std::fmt::Write as _;

use chrono::{TimeDelta, TimeZone, Utc};
use zsnap_core::config::Config;
use zsnap_core::DatasetName;
use zsnap_exec::fake::FakeZfs;
use zsnap_exec::job::{Engine, Job, Reporters, Source};
use zsnap_exec::{NoObserver, OneBackend, ZfsBackend};

const CONFIG: &str = r#"
[policies.hourly]
snapshot = { hourly = "hourly" }
keep_counts = { hourly = 24 }

[[datasets]]
root = "tank/home"
policy = "hourly"

[targets.backup]
to = "backup/home"
policy = "hourly"
"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    print!("{}", run_job()?);
    Ok(())
}

/// Runs the job twice, an hour apart, checks what it did, and returns the report.
fn run_job() -> Result<String, Box<dyn std::error::Error>> {
    let config = Config::from_toml(CONFIG, "example.toml")?;
    let start = Utc
        .with_ymd_and_hms(2026, 11, 23, 15, 0, 0)
        .single()
        .ok_or("no such instant")?;
    // One fake stands in for every location of the config (here both pools are local).
    let mut zfs = FakeZfs::for_config(&config, 1, start)?;
    let engine = Engine::new(&config);
    let mut report = String::new();
    for now in [start, start + TimeDelta::hours(1)] {
        zfs.set_now(now);
        let mut observer = NoObserver;
        let mut reporters = Reporters::new(&mut observer);
        let outcome = engine.run(
            &Job::Run,
            now,
            false,
            Source::Backends(&mut OneBackend(&mut zfs)),
            &mut reporters,
        )?;
        writeln!(report, "# run at {now}")?;
        for phase in &outcome.phases {
            let results = phase.results.as_deref().unwrap_or_default();
            let done = results.iter().filter(|r| r.outcome == "done").count();
            writeln!(
                report,
                "{}: {} steps planned, {done} done{}",
                phase.phase,
                phase.plan.steps.len(),
                if phase.failed() { ", FAILED" } else { "" }
            )?;
            if let Some(e) = &phase.error {
                writeln!(report, "  error: {e}")?;
            }
            for r in results {
                if let Some(e) = &r.error {
                    writeln!(report, "  step {} failed: {e}", r.index + 1)?;
                }
            }
        }
        if outcome.failed() {
            return Err(format!("the run at {now} failed:\n{report}").into());
        }
    }

    // What the report shows: each run took its hourly snapshot, and both reached the
    // backup pool; nothing is old enough to be pruned.
    let names = |dataset: &str| -> Result<Vec<String>, Box<dyn std::error::Error>> {
        let dataset: DatasetName = dataset.parse()?;
        let inventory = zfs.list(std::slice::from_ref(&dataset))?;
        let snapshots = &inventory.dataset(&dataset).ok_or("not listed")?.snapshots;
        Ok(snapshots.iter().map(|s| s.name.to_string()).collect())
    };
    let expected = [
        "zsnap_hourly_20261123T150000Z",
        "zsnap_hourly_20261123T160000Z",
    ];
    assert_eq!(names("tank/home")?, expected, "{report}");
    assert_eq!(names("backup/home")?, expected, "{report}");
    Ok(report)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_job_does_what_the_example_shows() {
        let report = super::run_job().expect("the job runs");
        assert!(
            report.contains("snapshot at local: 1 steps planned, 1 done\n"),
            "{report}"
        );
        assert!(!report.contains("FAILED"), "{report}");
        assert_eq!(report.matches("# run at").count(), 2, "{report}");
    }
}
