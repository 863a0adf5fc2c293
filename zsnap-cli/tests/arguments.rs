//! No argument value makes `zsnap` panic: random durations, counts, dates, labels,
//! datasets, keep rules and stores go through the same parse → convert → execute as
//! the binary (in process, on the fake backend), and every run ends with an exit
//! status of the README's table.

use std::ffi::OsString;
use std::path::Path;

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use zsnap_core::duration::Span;

const CONFIG: &str = r#"
[paths]
audit_log = "audit.jsonl"
journal_dir = "journal"
lock_file = "zsnap.lock"

[policies.standard]
snapshot = { hourly = "hourly", daily = "daily" }
keep_counts = { hourly = 2, daily = 2 }

[policies.archive]
keep = { daily = 3 }

[[datasets]]
root = "tank/home"
recursive = true
policy = "standard"

[targets.backup]
to = "backup/home"
policy = "archive"
"#;

/// Runs `zsnap ARGS` in process on the fake in `dir`; the exit status.
fn zsnap(dir: &Path, args: &[String]) -> u8 {
    let mut argv: Vec<OsString> = vec![
        "zsnap".into(),
        "--config".into(),
        dir.join("zsnap.toml").into(),
        "--backend".into(),
        format!("fake:{}", dir.join("state.json").display()).into(),
        "-q".into(),
    ];
    argv.extend(args.iter().map(OsString::from));
    let mut out = Vec::new();
    let mut err = Vec::new();
    let clock = || DateTime::<Utc>::from_timestamp(1_795_000_000, 0).expect("a valid instant");
    zsnap_cli::entry::run(argv, clock, &mut out, &mut err)
}

fn duration() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,22}[smhdwy]",
        "[0-9]{1,4}[hdw][0-9]{1,3}[mh]",
        Just("99999999w".to_owned()),
        Just("100000w".to_owned()),
        Just("18446744073709551615s".to_owned()),
        Just("0s".to_owned()),
        Just("-1h".to_owned()),
        ".{0,12}",
    ]
}

fn count() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        (0u32..5).prop_map(|n| n.to_string()),
        Just("4000000000".to_owned()),
        ".{0,6}",
    ]
}

fn date() -> impl Strategy<Value = String> {
    prop_oneof![
        (0i64..10_000, 1u32..13, 1u32..29, 0u32..24, 0u32..60)
            .prop_map(|(y, mo, d, h, mi)| { format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:00Z") }),
        (2000i64..2100, 1u32..13, 1u32..29, -23i32..24)
            .prop_map(|(y, mo, d, off)| { format!("{y:04}-{mo:02}-{d:02}T12:00:00{off:+03}:00") }),
        Just("9999-12-31T23:59:59Z".to_owned()),
        Just("0000-01-01T00:00:00Z".to_owned()),
        Just("2026-11-23T15:00:00Z".to_owned()),
        ".{0,25}",
    ]
}

fn label() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9-]{0,20}", ".{0,30}", "[a-z]{300}"]
}

fn dataset() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("tank/home".to_owned()),
        Just("tank".to_owned()),
        Just("backup/home".to_owned()),
        Just("tank/home@zsnap_hourly_20261123T000000Z".to_owned()),
        "[a-z]{1,8}(/[a-z0-9 _.:-]{1,8}){0,3}",
        "[a-z]{200,260}/[a-z]{10,60}",
        ".{0,20}",
    ]
}

fn keep_rule() -> impl Strategy<Value = String> {
    prop_oneof![
        count().prop_map(|n| format!("last {n}")),
        count().prop_map(|n| format!("calendar daily = {n}")),
        duration().prop_map(|d| format!("newer than {d}")),
        Just("daily 14".to_owned()),
        ".{0,20}",
    ]
}

/// A simulation short enough to run in a test: at most a few hundred steps when both
/// values are valid.
fn simulate(days: String, step: String) -> Vec<String> {
    let runs = match (days.parse::<u64>(), step.parse::<Span>()) {
        (Ok(d), Ok(s)) if s.seconds() > 0 => d.saturating_mul(86_400) / s.seconds(),
        _ => 0,
    };
    let days = match days.parse::<u64>() {
        Ok(d) if d <= 36_525 && runs > 200 => "1".to_owned(),
        _ => days,
    };
    let step = if runs > 200 { "6h".to_owned() } else { step };
    vec![
        "simulate".into(),
        "--days".into(),
        days,
        "--step".into(),
        step,
    ]
}

fn command() -> impl Strategy<Value = Vec<String>> {
    let store = Just("dir:STORE".to_owned());
    prop_oneof![
        (count(), duration()).prop_map(|(d, s)| simulate(d, s)),
        (date(), label()).prop_map(|(n, l)| vec![
            "--now".into(),
            n,
            "snapshot".into(),
            "--label".into(),
            l
        ]),
        (date(), label(), duration()).prop_map(|(n, l, d)| vec![
            "--now".into(),
            n,
            "snapshot".into(),
            "--label".into(),
            l,
            "--expire-in".into(),
            d,
            "-n".into()
        ]),
        date().prop_map(|n| vec!["--now".into(), n, "run".into()]),
        date().prop_map(|n| vec!["--now".into(), n, "plan".into(), "run".into()]),
        date().prop_map(|n| vec!["--now".into(), n, "prune".into(), "-n".into()]),
        (date(), label()).prop_map(|(n, t)| vec!["--now".into(), n, "replicate".into(), t]),
        date().prop_map(|n| vec!["--now".into(), n, "check".into()]),
        date().prop_map(|n| vec!["--now".into(), n, "status".into(), "--json".into()]),
        (store.clone(), keep_rule(), keep_rule()).prop_map(|(s, a, b)| vec![
            "backups".into(),
            "prune".into(),
            "--from".into(),
            s,
            "--keep".into(),
            a,
            "--keep".into(),
            b,
            "-n".into()
        ]),
        (store.clone(), dataset(), date(), date()).prop_map(|(s, d, a, b)| vec![
            "backups".into(),
            "list".into(),
            "--from".into(),
            s,
            "--dataset".into(),
            d,
            "--since".into(),
            a,
            "--until".into(),
            b
        ]),
        (store.clone(), dataset(), label(), dataset()).prop_map(|(s, d, l, since)| vec![
            "backup".into(),
            d,
            "--to".into(),
            s,
            "--label".into(),
            l,
            "--since".into(),
            since,
            "-n".into()
        ]),
        (store, dataset(), dataset(), date()).prop_map(|(s, d, to, at)| vec![
            "restore".into(),
            "--from".into(),
            s,
            d,
            "--to".into(),
            to,
            "--at".into(),
            at
        ]),
    ]
}

proptest! {
    // Each case runs up to three whole commands on a fake pool in a temporary
    // directory: the suite-wide PROPTEST_CASES (10,000 in scripts/test.sh) is capped at
    // 2,000 here to keep CI's time for it under a minute or two.
    #![proptest_config(ProptestConfig {
        cases: ProptestConfig::default().cases.min(2000),
        ..ProptestConfig::default()
    })]

    #[test]
    fn no_argument_value_panics(
        commands in proptest::collection::vec(command(), 1..4),
    ) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("zsnap.toml"), CONFIG).unwrap();
        let store = dir.path().join("store");
        // A store with a backup in it, so the store commands have something to read.
        let mut setup = vec![
            "--now".to_owned(), "2026-11-23T00:00:00Z".to_owned(), "run".to_owned(),
        ];
        zsnap(dir.path(), &setup);
        setup = vec![
            "backup".to_owned(), "tank/home".to_owned(), "--to".to_owned(),
            format!("dir:{}", store.display()),
        ];
        zsnap(dir.path(), &setup);
        for c in commands {
            let c: Vec<String> = c
                .into_iter()
                .map(|a| a.replace("dir:STORE", &format!("dir:{}", store.display())))
                .collect();
            let status = zsnap(dir.path(), &c);
            prop_assert!(status <= 4, "zsnap {:?} exited {}", c, status);
        }
    }
}

/// The values that panicked (time overflow) are usage errors now, or run.
#[test]
fn the_reported_overflows_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("zsnap.toml"), CONFIG).unwrap();
    let args = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        zsnap(dir.path(), &args("simulate --days 30 --step 99999999w")),
        2
    );
    assert_eq!(
        zsnap(
            dir.path(),
            &args("simulate --days 4000000000 --step 100000w")
        ),
        2
    );
    assert_eq!(
        zsnap(dir.path(), &args("simulate --days 36526 --step 1d")),
        2
    );
    // At the end of the calendar the simulation reports what it could not name.
    let end = zsnap(
        dir.path(),
        &args("--now 9999-12-31T00:00:00Z simulate --days 2 --step 12h"),
    );
    assert!(end <= 4, "{end}");
}
