//! A second front end in a few lines: `zsnap run` (snapshot, replicate, prune) driven by
//! the library's job engine, against an in-memory pool.
//!
//! Parses a small config, builds a fake ZFS holding its datasets, runs the whole job at
//! two instants an hour apart with a silent observer, and prints what each phase
//! planned and did.
//!
//! ```text
//! cargo run -p zsnap-exec --example run_job
//! ```
#![expect(clippy::print_stdout, reason = "an example prints what it did")]

use chrono::{TimeDelta, TimeZone, Utc};
use zsnap_core::config::Config;
use zsnap_exec::fake::FakeZfs;
use zsnap_exec::job::{Engine, Hooks, Job, Source};
use zsnap_exec::{NoObserver, OneBackend};

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
    let config = Config::from_toml(CONFIG, "example.toml")?;
    let start = Utc
        .with_ymd_and_hms(2026, 11, 23, 15, 0, 0)
        .single()
        .ok_or("no such instant")?;
    // One fake stands in for every location of the config (here both pools are local).
    let mut zfs = FakeZfs::for_config(&config, 1, start)?;
    let engine = Engine::new(&config);
    for now in [start, start + TimeDelta::hours(1)] {
        zfs.set_now(now);
        let mut observer = NoObserver;
        let mut hooks = Hooks::new(&mut observer);
        let outcome = engine.run(
            &Job::Run,
            now,
            false,
            Source::Backends(&mut OneBackend(&mut zfs)),
            &mut hooks,
        )?;
        println!("# run at {now}");
        for phase in &outcome.phases {
            let results = phase.results.as_deref().unwrap_or_default();
            let done = results.iter().filter(|r| r.outcome == "done").count();
            println!(
                "{}: {} steps planned, {done} done{}",
                phase.phase,
                phase.plan.steps.len(),
                if phase.failed() { ", FAILED" } else { "" }
            );
            if let Some(e) = &phase.error {
                println!("  error: {e}");
            }
            for r in results {
                if let Some(e) = &r.error {
                    println!("  step {} failed: {e}", r.index + 1);
                }
            }
        }
    }
    Ok(())
}
