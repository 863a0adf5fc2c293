//! `zsnap import sanoid`: realistic sanoid.conf files translate into configs whose prune
//! decisions equal those of the sanoid-compatible rule with the counts sanoid itself
//! would use for each dataset (templates, defaults and overrides resolved by hand
//! below, from sanoid's documented precedence).

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use zsnap_core::config::{import_sanoid, Config};
use zsnap_core::naming::Label;
use zsnap_core::policy::Policy;
use zsnap_core::retention::{evaluate, Candidate, KeepRule, RetentionPolicy, SanoidCounts};
use zsnap_core::{DatasetName, Guid, ShortName, Snapshot};

/// The shape of the sanoid.conf most installations run (sanoid's own example).
const PROXMOX: &str = r#"
######################################
# This is a sample sanoid.conf file. #
######################################

[rpool/data]
        use_template = production
        recursive = yes
        process_children_only = yes

[rpool/data/vm-100-disk-0]
        use_template = production
        hourly = 4

[backup/pve]
        use_template = backup
        recursive = yes

#############################
# templates below this line #
#############################

[template_production]
        frequently = 0
        hourly = 36
        daily = 30
        monthly = 3
        yearly = 0
        autosnap = yes
        autoprune = yes

[template_backup]
        autoprune = yes
        frequently = 0
        hourly = 30
        daily = 90
        monthly = 12
        yearly = 0
        ### don't take new snapshots - snapshots on backup
        ### datasets are replicated in from source, not
        ### generated locally
        autosnap = no
        ### monitor hourlies and dailies, but don't warn or
        ### crit until they're over 48h old, since replication
        ### is typically daily only
        hourly_warn = 2880
        hourly_crit = 3600
        daily_warn = 48
        daily_crit = 60
"#;

/// Templates layered with overrides, a file-wide template_default, frequent snapshots.
const LAYERED: &str = r#"
[template_default]
        monthly = 2

[template_fast]
        frequently = 8
        frequent_period = 5
        hourly = 12

[template_long]
        daily = 14
        weekly = 8
        yearly = 2

[tank/home]
        use_template = fast, long
        daily = 7

[tank/db]
        use_template = long
        recursive = zfs

[tank/scratch]
        use_template = fast
        autoprune = no
"#;

fn counts(f: usize, period: u32, h: usize, d: usize, w: usize, m: usize, y: usize) -> SanoidCounts {
    let mut c = SanoidCounts::zeros();
    c.frequently = f;
    c.frequent_period_minutes = period;
    c.hourly = h;
    c.daily = d;
    c.weekly = w;
    c.monthly = m;
    c.yearly = y;
    c
}

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

/// Two years of sanoid-named snapshots of every type, as sanoid would have taken them
/// with a 5-minute frequent period.
fn history(end: DateTime<Utc>) -> Vec<Snapshot> {
    let mut snaps = Vec::new();
    let from = end - Duration::days(730);
    // On the hour, as sanoid takes them.
    let mut t = from - Duration::seconds(from.timestamp() % 3600);
    let mut txg = 1;
    while t <= end {
        let mut types = vec![];
        if end - t < Duration::days(3) {
            types.push("frequently");
        }
        if t.format("%M").to_string() == "00" {
            types.push("hourly");
            if t.format("%H").to_string() == "00" {
                types.push("daily");
                if t.format("%u").to_string() == "1" {
                    types.push("weekly");
                }
                if t.format("%d").to_string() == "01" {
                    types.push("monthly");
                    if t.format("%m").to_string() == "01" {
                        types.push("yearly");
                    }
                }
            }
        }
        for ty in types {
            let name: ShortName = format!("autosnap_{}_{ty}", t.format("%Y-%m-%d_%H:%M:%S"))
                .parse()
                .unwrap();
            snaps.push(Snapshot::new(name, Guid(txg), txg, t));
            txg += 1;
        }
        t += if end - t < Duration::days(3) {
            Duration::minutes(5)
        } else {
            Duration::hours(1)
        };
    }
    snaps
}

/// The names `policy` keeps out of `snaps` at `now`, classifying them as it would.
fn kept(
    policy: &Policy,
    retention: &RetentionPolicy,
    snaps: &[Snapshot],
    now: DateTime<Utc>,
) -> BTreeSet<String> {
    let owned: Vec<(&Snapshot, Option<String>)> = snaps
        .iter()
        .filter_map(|s| {
            let o = policy.classify(s);
            o.is_owned().then(|| (s, o.label().map(str::to_owned)))
        })
        .collect();
    assert_eq!(
        owned.len(),
        snaps.len(),
        "every autosnap_* name must be adopted"
    );
    let cands: Vec<Candidate> = owned
        .iter()
        .map(|(s, l)| Candidate::new(&s.name, s.guid, s.createtxg, s.creation, l.as_deref()))
        .collect();
    evaluate(retention, &cands, now, policy.timezone)
        .iter()
        .zip(&owned)
        .filter(|(reasons, _)| !reasons.is_empty())
        .map(|(_, (s, _))| s.name.to_string())
        .collect()
}

fn policy_of<'c>(config: &'c Config, dataset: &str) -> &'c zsnap_core::config::PolicySpec {
    let ds: DatasetName = dataset.parse().unwrap();
    let entry = config
        .entry_for(&zsnap_core::config::Host::Local, &ds)
        .unwrap_or_else(|| panic!("{dataset} is not selected"));
    &config.policies[&entry.policy]
}

fn assert_same_decisions(config: &Config, dataset: &str, expected: SanoidCounts) {
    let spec = policy_of(config, dataset);
    let policy = spec.to_policy();
    let now = at(2026, 11, 23, 15, 2);
    let snaps = history(now);
    let imported = kept(&policy, &policy.retention, &snaps, now);
    let oracle = kept(
        &policy,
        &RetentionPolicy::new(vec![KeepRule::Sanoid(expected)]),
        &snaps,
        now,
    );
    assert_eq!(imported, oracle, "{dataset}");
    assert!(
        !imported.is_empty() && imported.len() < snaps.len(),
        "{dataset}: a test that prunes something"
    );
}

#[test]
fn proxmox_example() {
    let import = import_sanoid(PROXMOX, "sanoid.conf").unwrap();
    let c = &import.config;
    // The translation is itself a valid config that round-trips.
    let again = Config::from_toml(&import.to_toml("sanoid.conf"), "zsnap.toml").unwrap();
    assert_eq!(&again, c);

    let production = counts(0, 15, 36, 30, 0, 3, 0);
    assert_same_decisions(c, "rpool/data/vm-101-disk-0", production);
    assert_same_decisions(c, "rpool/data/vm-100-disk-0", counts(0, 15, 4, 30, 0, 3, 0));
    assert_same_decisions(c, "backup/pve/rpool/data", counts(0, 15, 30, 90, 0, 12, 0));
    // process_children_only: the root itself is not managed.
    assert!(c
        .entry_for(
            &zsnap_core::config::Host::Local,
            &"rpool/data".parse().unwrap()
        )
        .is_none());
    // autosnap = no: the backup policy prunes but takes nothing.
    let backup = policy_of(c, "backup/pve/x");
    assert!(backup.snapshot.is_empty() && backup.prune);
    let prod = policy_of(c, "rpool/data/vm-101-disk-0");
    let labels: Vec<&str> = prod.snapshot.keys().map(Label::as_str).collect();
    assert_eq!(labels, ["daily", "hourly", "monthly"]);
    assert_eq!(
        prod.adopt,
        [zsnap_core::config::Adopt::Tool("sanoid".to_owned())]
    );
}

#[test]
fn layered_templates_defaults_and_overrides() {
    let import = import_sanoid(LAYERED, "sanoid.conf").unwrap();
    let c = &import.config;
    Config::from_toml(&import.to_toml("sanoid.conf"), "zsnap.toml").unwrap();
    // built-in defaults < template_default < fast < long < own keys
    assert_same_decisions(c, "tank/home", counts(8, 5, 12, 7, 8, 2, 2));
    assert_same_decisions(c, "tank/db/pg", counts(0, 15, 48, 14, 8, 2, 2));
    let scratch = policy_of(c, "tank/scratch");
    assert!(!scratch.prune);
    assert!(scratch.retention.sanoid.is_none());
    assert_eq!(scratch.snapshot.len(), 4); // frequently, hourly, daily (default 90), monthly
}

#[test]
fn import_errors_say_where() {
    let e = |t: &str| import_sanoid(t, "sanoid.conf").unwrap_err().to_string();
    insta::assert_snapshot!(e("[tank]\nuse_template = prod\n"), @r#"sanoid.conf:2: use_template names `prod`, but there is no [template_prod] (templates: none)"#);
    insta::assert_snapshot!(e("[tank]\nhourly = many\n"), @r#"sanoid.conf:2: `hourly = many`: expected a count"#);
    insta::assert_snapshot!(e("[tank]\nhourlies = 3\n"), @r#"sanoid.conf:2: unknown sanoid key `hourlies`"#);
    insta::assert_snapshot!(e("hourly = 3\n"), @r#"sanoid.conf:1: a key before the first [section]"#);
    insta::assert_snapshot!(e("[tank\n"), @r#"sanoid.conf:1: section header "[tank" has no closing ']'"#);
    insta::assert_snapshot!(e("[tank]\nrecursive = maybe\n"), @r#"sanoid.conf:2: `recursive = maybe`: expected yes or no"#);
    insta::assert_snapshot!(e("[template_x]\nhourly = 1\n"), @r#"sanoid.conf: no dataset sections: nothing to translate"#);
    insta::assert_snapshot!(e("[tank//x]\nhourly = 1\n"), @r#"sanoid.conf:1: section [tank//x]: invalid dataset name "tank//x": empty component (at byte 5)"#);
    insta::assert_snapshot!(e("[tank]\njust words\n"), @r#"sanoid.conf:2: expected `key = value` or `[section]`, found "just words""#);
    insta::assert_snapshot!(e("[tank]\nhourly = 1\n[ tank ]\ndaily = 2\n"), @"sanoid.conf:3: section [tank] appears again (first on line 1); sections must be unique");
    insta::assert_snapshot!(e("[template_a]\nhourly = 1\n[tank]\nuse_template = a\n[template_a]\n"), @"sanoid.conf:5: section [template_a] appears again (first on line 1); sections must be unique");
    // Found by fuzzing: a dataset whose snapshot names would be over ZFS's limit was
    // translated into a config zsnap then refuses.
    let long = format!("tank/{}", "d".repeat(230));
    insta::assert_snapshot!(e(&format!("[{long}]\nmonthly = 1\n")).replace(&"d".repeat(230), "d…"), @"sanoid.conf:1: section [tank/d…]: its monthly snapshots would have names of 266 bytes, over ZFS's limit of 255");
}

/// The whole prune planner, not just the rule: the imported config's selections and
/// policies destroy exactly what a hand-built sanoid-compatible policy destroys.
#[test]
fn prune_plans_match_the_sanoid_mode() {
    use std::collections::BTreeMap;
    use zsnap_core::naming::Recognizer;
    use zsnap_core::policy::DatasetSelection;
    use zsnap_core::prune::{plan_prune, PruneRequest};
    use zsnap_core::{Dataset, DatasetKind, Inventory, Location, Step};

    let import = import_sanoid(PROXMOX, "sanoid.conf").unwrap();
    let c = &import.config;
    let now = at(2026, 11, 23, 15, 2);
    let mut inv = Inventory::new();
    for (i, name) in [
        "rpool",
        "rpool/data",
        "rpool/data/vm-100-disk-0",
        "rpool/data/vm-101-disk-0",
    ]
    .into_iter()
    .enumerate()
    {
        let mut ds = Dataset::new(
            name.parse().unwrap(),
            DatasetKind::Filesystem,
            Guid(900 + i as u64),
        );
        if name.contains("vm-") {
            for s in history(now) {
                ds.insert_snapshot(s);
            }
        }
        inv.insert(ds);
    }
    let destroyed = |plan: &zsnap_core::Plan| -> BTreeSet<String> {
        plan.steps
            .iter()
            .filter_map(|s| match s {
                Step::Destroy(d) => Some(
                    d.snapshots
                        .iter()
                        .map(move |r| format!("{}@{}", d.dataset, r.name)),
                ),
                _ => None,
            })
            .flatten()
            .collect()
    };
    let host = zsnap_core::config::Host::Local;
    let selections = c.selections(&host);
    let policies = c.core_policies();
    let imported = plan_prune(
        &PruneRequest::new(Location::local(), &inv, &selections, &policies),
        now,
    );

    let oracle_policy = |counts| {
        Policy::new(
            Default::default(),
            RetentionPolicy::new(vec![KeepRule::Sanoid(counts)]),
            chrono_tz::UTC,
        )
        .with_adopt(vec![Recognizer::sanoid()])
    };
    let oracle_policies = BTreeMap::from([
        (
            "production".to_owned(),
            oracle_policy(counts(0, 15, 36, 30, 0, 3, 0)),
        ),
        (
            "vm100".to_owned(),
            oracle_policy(counts(0, 15, 4, 30, 0, 3, 0)),
        ),
    ]);
    let oracle_selections = [
        DatasetSelection::new("rpool/data".parse().unwrap(), "production")
            .with_recursive(true)
            .with_children_only(true),
        DatasetSelection::new("rpool/data/vm-100-disk-0".parse().unwrap(), "vm100"),
    ];
    let oracle = plan_prune(
        &PruneRequest::new(
            Location::local(),
            &inv,
            &oracle_selections,
            &oracle_policies,
        ),
        now,
    );
    assert_eq!(destroyed(&imported), destroyed(&oracle));
    assert!(
        destroyed(&oracle).len() > 1000,
        "the history is long enough to prune"
    );
    let d = destroyed(&oracle);
    for ty in ["hourly", "daily", "monthly", "frequently"] {
        assert!(
            d.iter().any(|n| n.contains("vm-100") && n.ends_with(ty)),
            "no {ty} destroyed"
        );
    }
}

/// sanoid's times of period become each label's time: its defaults where the file sets
/// none, templates and sections overriding them in sanoid's order.
#[test]
fn times_of_period_are_translated() {
    let text = r#"
[template_default]
        daily_hour = 2
        daily_min = 30

[template_timed]
        hourly = 24
        daily = 7
        weekly = 4
        monthly = 12
        yearly = 2
        hourly_min = 15
        weekly_wday = 0
        weekly_hour = 22
        monthly_mday = 31
        monthly_hour = 1
        yearly_mon = 7
        yearly_mday = 4
        yearly_min = 5

[tank/home]
        use_template = timed
        daily_min = 45

[tank/plain]
        weekly = 1
        yearly = 1
"#;
    let import = import_sanoid(text, "sanoid.conf").unwrap();
    let c = &import.config;
    let again = Config::from_toml(&import.to_toml("sanoid.conf"), "zsnap.toml").unwrap();
    assert_eq!(&again, c);
    let describe = |ds: &str| -> Vec<String> {
        policy_of(c, ds)
            .to_policy()
            .schedule
            .labels()
            .iter()
            .map(|l| {
                let a = l.at();
                format!(
                    "{} {} {:?} day {} month {} {:02}:{:02}",
                    l.label(),
                    l.every(),
                    a.weekday(),
                    a.day(),
                    a.month(),
                    a.hour(),
                    a.minute()
                )
            })
            .collect()
    };
    insta::assert_snapshot!(describe("tank/home").join("\n"), @"
        daily daily Mon day 1 month 1 02:45
        hourly hourly Mon day 1 month 1 00:15
        monthly monthly Mon day 31 month 1 01:00
        weekly weekly Sun day 1 month 1 22:30
        yearly yearly Mon day 4 month 7 00:05
        ");
    // Without timing keys of its own: sanoid's defaults, and template_default's daily.
    insta::assert_snapshot!(describe("tank/plain").join("\n"), @"
        daily daily Mon day 1 month 1 02:30
        hourly hourly Mon day 1 month 1 00:00
        monthly monthly Mon day 1 month 1 00:00
        weekly weekly Mon day 1 month 1 23:30
        yearly yearly Mon day 1 month 1 00:00
        ");
    let e = |text: &str| import_sanoid(text, "sanoid.conf").unwrap_err().to_string();
    insta::assert_snapshot!(e("[tank]\ndaily_hour = 24\n"), @"sanoid.conf:2: `daily_hour = 24`: expected a whole number from 0 to 23");
    insta::assert_snapshot!(e("[tank]\nweekly_wday = 7\n"), @"sanoid.conf:2: `weekly_wday = 7`: expected a whole number from 0 to 6");
    insta::assert_snapshot!(e("[tank]\nmonthly_mday = 0\n"), @"sanoid.conf:2: `monthly_mday = 0`: expected a whole number from 1 to 31");
    assert!(import.notes.iter().any(|n| n.contains("timezone")));
    assert!(!import.notes.iter().any(|n| n.contains("daily_hour")));
}
