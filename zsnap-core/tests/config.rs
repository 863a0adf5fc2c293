//! Valid configs: what they parse to, and the effective-config round trip.

use zsnap_core::config::{CalendarUnit, Config, CursorKind, Host, TargetAddress};
use zsnap_core::duration::Span;
use zsnap_core::schedule::Period;
use zsnap_core::DatasetName;

const FULL: &str = r#"
[paths]
audit_log = "audit.jsonl"
lock_file = "/tmp/zsnap.lock"

[check]
freshness = { hourly = { warn = "90m", crit = "3h" } }
replication_lag = { warn = "2h", crit = "1d" }

[policies.standard]
timezone = "Europe/Berlin"
snapshot = { frequently = "15m", hourly = "hourly", daily = "daily" }
keep = { hourly = 24, daily = 7, weekly = 4, monthly = 12, yearly = 1 }
keep_last = 3
keep_newer_than = "2h"
keep_counts = { frequently = 4 }
keep_regex = "^manual-"
keep_oldest = true

[policies.longterm]
grid = "1x1h(keep=all) | 24x1h | 14x1d"

[policies.legacy]
adopt = ["sanoid"]
prefix = "autosnap"
sanoid = { hourly = 36, daily = 30, monthly = 3 }

[[datasets]]
root = "tank/home"
recursive = true
exclude = ["tank/home/tmp", "tank/home/cache"]
policy = "standard"

[[datasets]]
root = "tank/vm"
recursive = true
children_only = true
policy = "legacy"

[[datasets]]
root = "tank/home"
host = "ssh://root@server.example:2222"
policy = "standard"

[targets.nas]
source = "tank/home"
to = "ssh://backup@nas.example/backup/home"
policy = "longterm"
cursor = "bookmark"
exclude_properties = ["mountpoint"]

[targets.local]
source = "tank/vm"
to = "backup/vm"
policy = "longterm"
allow_rollback = true

[backups.cloud]
source = "tank/vm"
to = "s3://bucket/zsnap/"
every = "6h"
full_every = "30d"
policy = "longterm"
compression = "zstd"
verify = true
s3 = { endpoint = "http://127.0.0.1:3900", region = "garage", access_key_id = "GK1", secret_access_key_file = "/etc/zsnap/s3-secret", allow_http = true }

[backups.usb]
source = "tank/home"
to = "dir:/mnt/usb/zsnap"
"#;

fn label(s: &str) -> zsnap_core::naming::Label {
    s.parse().unwrap()
}

fn name(s: &str) -> DatasetName {
    s.parse().unwrap()
}

#[test]
fn full_config_parses_to_what_it_says() {
    let c = Config::from_toml(FULL, "full.toml").unwrap();
    assert_eq!(c.paths.audit_log, "audit.jsonl");
    assert_eq!(c.paths.journal_dir, "/var/lib/zsnap/journal");
    assert_eq!(
        c.check.freshness[&label("hourly")].warn,
        Span::from_secs(5400)
    );
    assert_eq!(
        c.check.replication_lag.unwrap().crit,
        Span::from_secs(86_400)
    );

    let std = c.policy("standard").unwrap();
    assert_eq!(std.timezone, chrono_tz::Europe::Berlin);
    assert_eq!(std.prefix, "zsnap");
    assert!(std.prune);
    assert_eq!(
        std.snapshot[&label("frequently")].every,
        Period::Every(Span::from_secs(900))
    );
    assert_eq!(std.snapshot[&label("daily")].every, Period::Daily);
    let keep = std.retention.keep.unwrap();
    assert_eq!(keep.count(CalendarUnit::Week), Some(4));
    assert_eq!(std.retention.keep_last, Some(3));
    assert_eq!(std.retention.keep_regex, vec!["^manual-".to_owned()]);
    assert!(std.retention.keep_oldest);
    let legacy = c.policy("legacy").unwrap();
    assert_eq!(
        legacy.adopt,
        vec![zsnap_core::config::Adopt::Tool("sanoid".to_owned())]
    );
    assert_eq!(legacy.retention.sanoid.unwrap().daily, 30);
    assert_eq!(
        legacy.retention.sanoid.unwrap().frequent_period,
        Span::from_secs(900)
    );

    assert_eq!(c.datasets.len(), 3);
    let home = &c.datasets[0];
    assert!(home.selects(&name("tank/home")));
    assert!(home.selects(&name("tank/home/alice")));
    assert!(!home.selects(&name("tank/home/tmp")));
    assert!(!home.selects(&name("tank/home/cache/x")));
    assert!(!home.selects(&name("tank/homework")));
    let vm = &c.datasets[1];
    assert!(!vm.selects(&name("tank/vm")));
    assert!(vm.selects(&name("tank/vm/win10")));
    let remote = &c.datasets[2];
    assert_eq!(
        remote.host,
        Host::Ssh {
            user: Some("root".into()),
            host: "server.example".into(),
            port: Some(2222)
        }
    );
    assert_eq!(remote.host.location_id(), "root@server.example:2222");
    assert_eq!(
        remote.host.location(),
        zsnap_core::Location("root@server.example:2222".into())
    );
    assert_eq!(Host::Local.location(), zsnap_core::Location::local());
    assert!(remote.selects(&name("tank/home")));
    assert!(!remote.selects(&name("tank/home/alice")));
    assert_eq!(
        c.entry_for(&Host::Local, &name("tank/home/bob"))
            .map(|e| &e.policy),
        Some(&"standard".to_owned())
    );
    assert!(c.entry_for(&Host::Local, &name("tank/vm")).is_none());

    let nas = &c.targets["nas"];
    assert_eq!(nas.cursor, CursorKind::Bookmark);
    assert!(!nas.allow_rollback);
    match &nas.to {
        TargetAddress::Dataset { host, dataset } => {
            assert_eq!(host.location_id(), "backup@nas.example");
            assert_eq!(dataset, &name("backup/home"));
        }
        other => panic!("{other:?}"),
    }
    assert!(c.targets["local"].allow_rollback);
    assert_eq!(c.targets["local"].cursor, CursorKind::Hold);
    let cloud = &c.backups["cloud"];
    assert_eq!(cloud.to.to_string(), "s3://bucket/zsnap");
    assert_eq!(cloud.every.seconds(), 6 * 3600);
    assert_eq!(cloud.full_every.map(|s| s.seconds()), Some(30 * 86_400));
    assert_eq!(cloud.policy.as_deref(), Some("longterm"));
    assert_eq!(cloud.compression.as_str(), "zstd");
    assert!(cloud.verify);
    assert_eq!(cloud.s3.endpoint.as_deref(), Some("http://127.0.0.1:3900"));
    assert_eq!(cloud.s3.region.as_deref(), Some("garage"));
    assert!(cloud.s3.allow_http);
    let usb = &c.backups["usb"];
    assert_eq!(usb.to.to_string(), "dir:/mnt/usb/zsnap");
    assert_eq!(usb.every.seconds(), 86_400);
    assert_eq!(usb.full_every, None);
    assert_eq!(usb.policy, None);
    assert_eq!(usb.label.to_string(), "backup");
    assert!(!usb.verify);
    assert!(usb.s3.is_empty());
}

#[test]
fn effective_config_round_trips() {
    let c = Config::from_toml(FULL, "full.toml").unwrap();
    let printed = c.to_toml();
    let again = Config::from_toml(&printed, "effective.toml")
        .unwrap_or_else(|e| panic!("{}\n{printed}", e.snippet()));
    assert_eq!(again, c);
    assert_eq!(again.to_toml(), printed);
}

#[test]
fn effective_config_makes_defaults_explicit() {
    let c = Config::from_toml(
        "[policies.p]\nkeep_last = 5\n\n[[datasets]]\nroot = \"tank\"\npolicy = \"p\"\n",
        "min.toml",
    )
    .unwrap();
    insta::assert_snapshot!(c.to_toml(), @r#"
        [paths]
        audit_log = "/var/log/zsnap/audit.jsonl"
        journal_dir = "/var/lib/zsnap/journal"
        lock_file = "/run/zsnap.lock"
        zfs = "/usr/sbin/zfs"
        remote_zfs = "/usr/sbin/zfs"
        ssh = "/usr/bin/ssh"
        zpool = "/usr/sbin/zpool"
        remote_zpool = "/usr/sbin/zpool"

        [[datasets]]
        root = "tank"
        host = "local"
        recursive = false
        children_only = false
        policy = "p"

        [policies.p]
        timezone = "UTC"
        prefix = "zsnap"
        prune = true
        keep_last = 5
        keep_oldest = false
        "#);
}

/// The commented example configs shipped in `examples/` (read at compile time: this
/// crate's lints forbid file I/O, tests included).
const EXAMPLES: [(&str, &str); 5] = [
    (
        "single-host.toml",
        include_str!("../../examples/single-host.toml"),
    ),
    ("push.toml", include_str!("../../examples/push.toml")),
    ("pull.toml", include_str!("../../examples/pull.toml")),
    (
        "sanoid-like.toml",
        include_str!("../../examples/sanoid-like.toml"),
    ),
    ("hooks.toml", include_str!("../../examples/hooks.toml")),
];

#[test]
fn examples_parse_and_round_trip() {
    for (file, text) in EXAMPLES {
        let c = Config::from_toml(text, file).unwrap_or_else(|e| panic!("{}", e.snippet()));
        let again = Config::from_toml(&c.to_toml(), file).unwrap();
        assert_eq!(again, c, "{file}");
        assert!(!c.datasets.is_empty(), "{file}");
    }
}

#[test]
fn host_and_target_addresses_round_trip() {
    for s in [
        "local",
        "ssh://host",
        "ssh://u@host",
        "ssh://u@host:22",
        "ssh://[::1]:2222",
    ] {
        let h: Host = s.parse().unwrap();
        assert_eq!(h.to_string(), s);
    }
    for s in ["pool/a", "ssh://u@h:2/pool/a b"] {
        let t: TargetAddress = s.parse().unwrap();
        assert_eq!(t.to_string(), s);
        assert_eq!(t.to_string().parse::<TargetAddress>().unwrap(), t);
    }
    for s in ["dir:/srv/z", "file:///srv/z", "s3://bucket/p"] {
        let e = s.parse::<TargetAddress>().unwrap_err();
        assert!(e.to_string().contains("[backups.NAME]"), "{e}");
    }
}

#[test]
fn conversions_to_engine_types() {
    use zsnap_core::config::Host;
    use zsnap_core::replicate::Cursor;
    use zsnap_core::retention::KeepRule;
    let c = Config::from_toml(FULL, "full.toml").unwrap();

    let std = c.policy("standard").unwrap().to_policy();
    assert_eq!(std.timezone, chrono_tz::Europe::Berlin);
    assert_eq!(std.naming.prefix(), "zsnap");
    assert_eq!(std.schedule.labels().len(), 3);
    assert_eq!(
        std.schedule.get("frequently").unwrap().every(),
        Period::Every(Span::from_secs(900))
    );
    let rules: Vec<String> = std
        .retention
        .rules
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        rules,
        [
            "calendar hourly = 24, daily = 7, weekly = 4, monthly = 12, yearly = 1",
            "last 3",
            "labels frequently = 4",
            "newer than 2h",
            "regex ^manual-",
        ]
    );
    assert!(std.retention.keep_oldest);

    let legacy = c.policy("legacy").unwrap().to_policy();
    assert_eq!(legacy.adopt.len(), 1);
    assert_eq!(legacy.adopt[0].tool(), "sanoid");
    assert!(
        matches!(&legacy.retention.rules[..], [KeepRule::Sanoid(s)] if s.hourly == 36 && s.daily == 30 && s.monthly == 3 && s.weekly == 0)
    );

    let longterm = c.policy("longterm").unwrap().to_policy();
    assert!(matches!(&longterm.retention.rules[..], [KeepRule::Grid(_)]));

    let local = c.selections(&Host::Local);
    assert_eq!(local.len(), 2);
    assert!(local[1].children_only && local[1].recursive);
    assert_eq!(c.source_hosts()[0], Host::Local);
    assert_eq!(c.source_hosts().len(), 2);

    let nas = &c.targets["nas"];
    let o = nas.replication_options();
    assert_eq!(o.cursor, Cursor::Bookmark);
    assert!(!o.allow_rollback);
    assert_eq!(o.exclude_props, ["mountpoint"]);
    let m = nas.mapping(&c.datasets[0]).unwrap();
    assert_eq!(
        m.target_of(&name("tank/home/alice")).unwrap(),
        Some(name("backup/home/alice"))
    );
    assert_eq!(m.target_of(&name("tank/home/tmp")).unwrap(), None);
    assert!(c.targets["local"].replication_options().allow_rollback);
}

#[test]
fn ssh_config_path_is_kept_and_printed() {
    let dataset = "[policies.p]\nkeep_last = 3\n\n[[datasets]]\nroot = \"tank\"\npolicy = \"p\"\n";
    let text = format!("[paths]\nssh_config = \"/etc/zsnap/ssh_config\"\n{dataset}");
    let c = Config::from_toml(&text, "zsnap.toml").unwrap();
    assert_eq!(c.paths.ssh_config.as_deref(), Some("/etc/zsnap/ssh_config"));
    let again = Config::from_toml(&c.to_toml(), "again.toml").unwrap();
    assert_eq!(again, c);
    let none = Config::from_toml(dataset, "zsnap.toml").unwrap();
    assert_eq!(none.paths.ssh_config, None);
    assert!(!none.to_toml().contains("ssh_config"));
}

const KEEP_RULES: &str = r#"
[policies.zr]
snapshot = { hourly = "hourly" }
keep_rules = [
  { grid = "1x1h(keep=all) | 24x1h | 14x1d", regex = "^zrepl_" },
  { grid = "6x30d", regex = "^manual_" },
  { last_n = 10, regex = "^backup_" },
  { last_n = 3, label = "hourly" },
  { last_n = 2, regex = "^zsnap_", negate = true },
  { regex = "^keep_", negate = true },
  { regex = "^pinned_" },
  { calendar = { daily = 7, weekly = 4 }, regex = "hourly" },
  { newer_than = "7d" },
  { not_replicated = "offsite" },
  { keep_oldest = true },
]

[policies.bak]
prune = false

[[datasets]]
root = "tank/a"
policy = "zr"

[targets.offsite]
source = "tank/a"
to = "backup/a"
policy = "bak"
"#;

#[test]
fn keep_rules_convert_in_order_with_their_filters() {
    let c = Config::from_toml(KEEP_RULES, "zsnap.toml").unwrap_or_else(|e| panic!("{e}"));
    let policy = c.policies["zr"].retention_policy();
    let texts: Vec<String> = policy.rules.iter().map(ToString::to_string).collect();
    insta::assert_snapshot!(texts.join("\n"), @r"
    grid 1x1h(keep=all) | 24x1h | 14x1d (regex ^zrepl_)
    grid 6x30d (regex ^manual_)
    last 10 (regex ^backup_)
    last 3 (label hourly)
    last 2 (not regex ^zsnap_)
    not regex ^keep_
    regex ^pinned_
    calendar daily = 7, weekly = 4 (regex hourly)
    newer than 7d
    not replicated to offsite
    ");
    assert!(policy.keep_oldest);
    // Each text is the rule's own: parsing it gives the same rule back.
    for (text, rule) in texts.iter().zip(&policy.rules) {
        assert_eq!(
            &text.parse::<zsnap_core::retention::KeepRule>().unwrap(),
            rule
        );
    }
}

#[test]
fn keep_rules_round_trip() {
    let c = Config::from_toml(KEEP_RULES, "zsnap.toml").unwrap();
    let printed = c.to_toml();
    let again = Config::from_toml(&printed, "effective.toml")
        .unwrap_or_else(|e| panic!("{}\n{printed}", e.snippet()));
    assert_eq!(again, c);
    assert_eq!(again.to_toml(), printed);
    // Printed as an array of tables, each item's rule key first.
    assert!(printed
        .contains("[[policies.zr.keep_rules]]\nlast_n = 2\nregex = \"^zsnap_\"\nnegate = true\n"));
}

/// Times of period: every form parses to the schedule it says, prints back in the
/// shortest form, and round-trips.
#[test]
fn times_of_period_round_trip() {
    use chrono::{TimeZone, Utc, Weekday};
    let text = r#"
[policies.p]
timezone = "Europe/Berlin"
snapshot = { frequently = "15m", hourly = { every = "hourly", minute = 15 }, daily = { every = "daily", at = "23:59" }, weekly = { every = "weekly", on = "Sun", at = "23:30" }, monthly = { every = "monthly", day = 31, at = "00:00" }, yearly = { every = "yearly", month = 1, day = 1 }, plain = { every = "daily", at = "00:00" } }
keep_last = 3

[[datasets]]
root = "tank"
policy = "p"
"#;
    let c = Config::from_toml(text, "zsnap.toml").unwrap();
    let printed = c.to_toml();
    let again = Config::from_toml(&printed, "effective.toml").unwrap();
    assert_eq!(again, c);
    let s = c.policy("p").unwrap().schedule();
    let w = s.get("weekly").unwrap().at();
    assert_eq!((w.weekday(), w.hour(), w.minute()), (Weekday::Sun, 23, 30));
    assert_eq!(s.get("monthly").unwrap().at().day(), 31);
    assert_eq!(s.get("hourly").unwrap().at().minute(), 15);
    assert!(s.get("yearly").unwrap().at().is_start());
    assert!(s.get("plain").unwrap().at().is_start());
    // The daily label at 23:59 Berlin time is due from 22:59 UTC in winter.
    let tz = chrono_tz::Europe::Berlin;
    let daily = s.get("daily").unwrap();
    assert_eq!(
        daily.next_start(tz, Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()),
        Utc.with_ymd_and_hms(2026, 11, 23, 22, 59, 0).unwrap()
    );
    let snapshot_part: String = printed
        .lines()
        .skip_while(|l| !l.starts_with("[policies.p.snapshot"))
        .take_while(|l| !l.starts_with("[[") && !l.starts_with("[datasets"))
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!(snapshot_part, @r#"
        [policies.p.snapshot]
        frequently = "15m"
        plain = "daily"
        yearly = "yearly"

        [policies.p.snapshot.daily]
        every = "daily"
        at = "23:59"

        [policies.p.snapshot.hourly]
        every = "hourly"
        minute = 15

        [policies.p.snapshot.monthly]
        every = "monthly"
        day = 31
        at = "00:00"

        [policies.p.snapshot.weekly]
        every = "weekly"
        on = "sunday"
        at = "23:30"
        "#);
}

/// Adopting by prefix and format: parsed, converted, written back, and the policy's
/// keep rules may name the labels such names carry.
#[test]
fn adopted_formats_round_trip() {
    use zsnap_core::policy::Ownership;
    use zsnap_core::{Guid, Snapshot};
    let text = r#"
[policies.p]
timezone = "Europe/Berlin"
adopt = ["sanoid", { prefix = "pyznap_", format = "%Y-%m-%d_%H:%M:%S_{label}" }, { prefix = "zrepl_", format = "%Y%m%d_%H%M%S_000", timezone = "UTC" }, { prefix = "auto-", format = "%Y-%m-%d-%H%M", timezone = "America/New_York", label = "nightly" }]
keep_counts = { frequent = 4, nightly = 7 }
keep_last = 3

[[datasets]]
root = "tank"
policy = "p"
"#;
    let c = Config::from_toml(text, "zsnap.toml").unwrap();
    let printed = c.to_toml();
    let again = Config::from_toml(&printed, "effective.toml").unwrap();
    assert_eq!(again, c);
    let policy = c.policy("p").unwrap().to_policy();
    assert_eq!(policy.adopt.len(), 4);
    let at = chrono::DateTime::from_timestamp(1_795_446_000, 0).unwrap();
    let snap = |name: &str| Snapshot::new(name.parse().unwrap(), Guid(1), 1, at);
    // pyznap wrote 16:00 Berlin time: 15:00 UTC.
    match policy.classify(&snap("pyznap_2026-11-23_16:00:00_hourly")) {
        Ownership::Adopted { label, time, tool } => {
            assert_eq!(label.as_deref(), Some("hourly"));
            assert_eq!(time, at);
            assert_eq!(tool, "format");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        policy.classify(&snap("auto-2026-11-23-1000")).label(),
        Some("nightly")
    );
    assert_eq!(
        policy.classify(&snap("zrepl_20261123_150000_000")).time(),
        Some(at)
    );
    assert_eq!(
        policy.classify(&snap("other_20261123_150000_000")),
        Ownership::Unmanaged
    );
    let adopt: Vec<&str> = printed
        .lines()
        .skip_while(|l| !l.starts_with("adopt"))
        .take_while(|l| !l.is_empty() && !l.starts_with("prune"))
        .collect();
    insta::assert_snapshot!(adopt.join("\n"), @r#"
        adopt = [
            "sanoid",
            { prefix = "pyznap_", format = "%Y-%m-%d_%H:%M:%S_{label}", timezone = "local" },
            { prefix = "zrepl_", format = "%Y%m%d_%H%M%S_000", timezone = "UTC" },
            { prefix = "auto-", format = "%Y-%m-%d-%H%M", timezone = "America/New_York", label = "nightly" },
        ]
        "#);
}
