//! Every user-facing config error message, as the user sees it (with the source line
//! and a caret under the place).

use zsnap_core::config::Config;

/// The error for `text`, rendered the way the CLI prints it.
fn err(text: &str) -> String {
    match Config::from_toml(text, "zsnap.toml") {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e.snippet(),
    }
}

const POLICY: &str = r#"
[policies.standard]
snapshot = { hourly = "hourly" }
keep = { hourly = 24 }
"#;

/// A valid policy plus `rest`.
fn with_policy(rest: &str) -> String {
    format!("{POLICY}{rest}")
}

/// A valid policy and dataset plus `rest`.
fn with_dataset(rest: &str) -> String {
    with_policy(&format!(
        "\n[[datasets]]\nroot = \"tank/home\"\nrecursive = true\npolicy = \"standard\"\n{rest}"
    ))
}

#[test]
fn base_is_valid() {
    Config::from_toml(&with_dataset(""), "zsnap.toml").unwrap();
}

#[test]
fn syntax() {
    insta::assert_snapshot!(err("[policies.standard\nkeep_last = 3\n"), @r#"
        error: invalid TOML: unclosed table, expected `]`
         --> zsnap.toml:1:19
          |
        1 | [policies.standard
          |                   ^
        "#);
    insta::assert_snapshot!(err("keep_last = = 3\n"), @r#"
        error: invalid TOML: extra `=`, expected nothing
         --> zsnap.toml:1:13
          |
        1 | keep_last = = 3
          |             ^
        "#);
    insta::assert_snapshot!(err(&with_dataset("[policies.standard]\nkeep_last = 1\n")), @r#"
        error: invalid TOML: duplicate key
          --> zsnap.toml:10:11
           |
        10 | [policies.standard]
           |           ^^^^^^^^
        "#);
}

#[test]
fn unknown_keys() {
    insta::assert_snapshot!(err("[polices.standard]\n"), @r#"
        error: unknown key `polices` in the top level; did you mean `policies`?
         --> zsnap.toml:1:2
          |
        1 | [polices.standard]
          |  ^^^^^^^
        "#);
    insta::assert_snapshot!(err("frobnicate = 1\n"), @"
    error: unknown key `frobnicate` in the top level; expected `paths`, `check`, `datasets`, `policies`, `targets`, `backups` or `hooks`
     --> zsnap.toml:1:1
      |
    1 | frobnicate = 1
      | ^^^^^^^^^^
    ");
    insta::assert_snapshot!(err("[policies.standard]\nkep = { daily = 7 }\n"), @r#"
        error: unknown key `kep` in [policies.standard]; did you mean `keep`?
         --> zsnap.toml:2:1
          |
        2 | kep = { daily = 7 }
          | ^^^
        "#);
    insta::assert_snapshot!(err("[policies.standard]\nkeep = { dayly = 7 }\n"), @r#"
        error: unknown key `dayly` in `policies.standard.keep`; did you mean `daily`?
         --> zsnap.toml:2:10
          |
        2 | keep = { dayly = 7 }
          |          ^^^^^
        "#);
    insta::assert_snapshot!(err("[policies.standard]\nsanoid = { hourlies = 7 }\n"), @r#"
        error: unknown key `hourlies` in `policies.standard.sanoid`; did you mean `hourly`?
         --> zsnap.toml:2:12
          |
        2 | sanoid = { hourlies = 7 }
          |            ^^^^^^^^
        "#);
    insta::assert_snapshot!(err(&with_policy("[[datasets]]\nroot = \"tank\"\nrecursve = true\npolicy = \"standard\"\n")), @r#"
        error: unknown key `recursve` in [[datasets]] #1; did you mean `recursive`?
         --> zsnap.toml:7:1
          |
        7 | recursve = true
          | ^^^^^^^^
        "#);
    insta::assert_snapshot!(err(&with_dataset("[targets.nas]\nto = \"backup/home\"\npolicy = \"standard\"\nallow_rollbak = true\n")), @r#"
        error: unknown key `allow_rollbak` in [targets.nas]; did you mean `allow_rollback`?
          --> zsnap.toml:13:1
           |
        13 | allow_rollbak = true
           | ^^^^^^^^^^^^^
        "#);
    insta::assert_snapshot!(err("[paths]\naudit = \"/tmp/a\"\n"), @r#"
        error: unknown key `audit` in [paths]; did you mean `audit_log`?
         --> zsnap.toml:2:1
          |
        2 | audit = "/tmp/a"
          | ^^^^^
        "#);
    insta::assert_snapshot!(err("[check]\nfresh = {}\n"), @r#"
        error: unknown key `fresh` in [check]; did you mean `freshness`?
         --> zsnap.toml:2:1
          |
        2 | fresh = {}
          | ^^^^^
        "#);
    insta::assert_snapshot!(err("[check]\nreplication_lag = { warn = \"1h\", critical = \"2h\" }\n"), @r#"
        error: unknown key `critical` in `check.replication_lag`; did you mean `crit`?
         --> zsnap.toml:2:34
          |
        2 | replication_lag = { warn = "1h", critical = "2h" }
          |                                  ^^^^^^^^
        "#);
}

#[test]
fn missing_keys() {
    insta::assert_snapshot!(err(&with_policy("[[datasets]]\nrecursive = true\npolicy = \"standard\"\n")), @r#"
        error: missing key `root` in [[datasets]] #1: the dataset to manage, e.g. root = "tank/home"
         --> zsnap.toml:5:1
          |
        5 | [[datasets]]
          | ^^^^^^^^^^^^
        "#);
    insta::assert_snapshot!(err(&with_policy("[[datasets]]\nroot = \"tank\"\n")), @r#"
        error: missing key `policy` in [[datasets]] #1: the name of a [policies.NAME] table, e.g. policy = "standard"
         --> zsnap.toml:5:1
          |
        5 | [[datasets]]
          | ^^^^^^^^^^^^
        "#);
    insta::assert_snapshot!(err(&with_dataset("[targets.nas]\npolicy = \"standard\"\n")), @r#"
    error: missing key `to` in [targets.nas]: where to replicate: "pool/path" or "ssh://user@host:port/pool/path"
      --> zsnap.toml:10:1
       |
    10 | [targets.nas]
       | ^^^^^^^^^^^^^
    "#);
    insta::assert_snapshot!(err(&with_dataset("[targets.nas]\nto = \"backup/home\"\n")), @r#"
        error: missing key `policy` in [targets.nas]: the policy that prunes the target, e.g. policy = "longterm"
          --> zsnap.toml:10:1
           |
        10 | [targets.nas]
           | ^^^^^^^^^^^^^
        "#);
    insta::assert_snapshot!(err(&with_dataset("[[datasets]]\nroot = \"tank/vm\"\npolicy = \"standard\"\n[targets.nas]\nto = \"backup/home\"\npolicy = \"standard\"\n")), @r#"
        error: missing key `source` in [targets.nas]: which [[datasets]] root to replicate, e.g. source = "tank/home" (needed when there is more than one)
          --> zsnap.toml:13:1
           |
        13 | [targets.nas]
           | ^^^^^^^^^^^^^
        "#);
    insta::assert_snapshot!(err("[check]\nreplication_lag = { warn = \"1h\" }\n"), @r#"
        error: missing key `crit` in `check.replication_lag`: the age at which `zsnap check` reports WARNING (warn) or CRITICAL (crit), e.g. { warn = "2h", crit = "6h" }
         --> zsnap.toml:2:19
          |
        2 | replication_lag = { warn = "1h" }
          |                   ^^^^^^^^^^^^^^^
        "#);
}

#[test]
fn wrong_types() {
    insta::assert_snapshot!(err(&with_policy("[[datasets]]\nroot = \"tank\"\nrecursive = \"yes\"\npolicy = \"standard\"\n")), @r#"
        error: `datasets[1].recursive` must be `true` or `false`, found the string "yes"
         --> zsnap.toml:7:13
          |
        7 | recursive = "yes"
          |             ^^^^^
        "#);
    insta::assert_snapshot!(err("[policies.standard]\nkeep_last = \"10\"\n"), @r#"
        error: `policies.standard.keep_last` must be a whole number, such as 7, found the string "10"
         --> zsnap.toml:2:13
          |
        2 | keep_last = "10"
          |             ^^^^
        "#);
    insta::assert_snapshot!(err(&with_policy("[datasets]\nroot = \"tank\"\n")), @r#"
        error: `datasets` must be an array of tables, written [[datasets]], found a table
         --> zsnap.toml:5:1
          |
        5 | [datasets]
          | ^^^^^^^^^^
        "#);
    insta::assert_snapshot!(err("policies = 3\n"), @r#"
        error: `policies` must be a table, found the integer 3
         --> zsnap.toml:1:12
          |
        1 | policies = 3
          |            ^
        "#);
    insta::assert_snapshot!(err("[policies]\nstandard = \"hourly\"\n"), @r#"
        error: `policies.standard` must be a table, found the string "hourly"
         --> zsnap.toml:2:12
          |
        2 | standard = "hourly"
          |            ^^^^^^^^
        "#);
    insta::assert_snapshot!(err("[policies.standard]\nkeep_last = 1\nsnapshot = { hourly = 60 }\n"), @r#"
        error: `policies.standard.snapshot.hourly` must be a period such as "hourly" or "15m", or a table such as { every = "daily", at = "23:59" }, found the integer 60
         --> zsnap.toml:3:23
          |
        3 | snapshot = { hourly = 60 }
          |                       ^^
        "#);
    insta::assert_snapshot!(err("[policies.standard]\nkeep_regex = [\"^a\", 3]\n"), @r#"
        error: `policies.standard.keep_regex[2]` must be a string, such as "^manual-", found the integer 3
         --> zsnap.toml:2:21
          |
        2 | keep_regex = ["^a", 3]
          |                     ^
        "#);
    insta::assert_snapshot!(err("[policies.standard]\nkeep_regex = { a = 1 }\n"), @r#"
        error: `policies.standard.keep_regex` must be an array of strings, such as ["^manual-"], found a table
         --> zsnap.toml:2:14
          |
        2 | keep_regex = { a = 1 }
          |              ^^^^^^^^^
        "#);
    insta::assert_snapshot!(err(&with_policy("[[datasets]]\nroot = 7\npolicy = \"standard\"\n")), @r#"
        error: `datasets[1].root` must be a string, such as "tank/home", found the integer 7
         --> zsnap.toml:6:8
          |
        6 | root = 7
          |        ^
        "#);
    insta::assert_snapshot!(err("[policies.standard]\nkeep_last = 1\nprune = 0\n"), @r#"
        error: `policies.standard.prune` must be `true` or `false`, found the integer 0
         --> zsnap.toml:3:9
          |
        3 | prune = 0
          |         ^
        "#);
}

#[test]
fn invalid_values() {
    insta::assert_snapshot!(err("[policies.standard]\nkeep_last = -1\n"), @r#"
        error: invalid `policies.standard.keep_last`: -1 is not a count; expected a whole number from 0 to 4294967295
         --> zsnap.toml:2:13
          |
        2 | keep_last = -1
          |             ^^
        "#);
    insta::assert_snapshot!(err("[policies.standard]\nkeep_newer_than = \"2 hours\"\n"), @r#"
        error: invalid `policies.standard.keep_newer_than`: "2 hours" is not a duration: unknown unit (use s, m, h, d or w); expected e.g. "90s", "15m", "1h30m", "7d" or "2w"
         --> zsnap.toml:2:19
          |
        2 | keep_newer_than = "2 hours"
          |                   ^^^^^^^^^
        "#);
    insta::assert_snapshot!(err(&with_policy("[[datasets]]\nroot = \"tank//home\"\npolicy = \"standard\"\n")), @r#"
        error: invalid `datasets[1].root`: "tank//home" is not a dataset name: empty component
         --> zsnap.toml:6:14
          |
        6 | root = "tank//home"
          |              ^
        "#);
    insta::assert_snapshot!(err(&with_policy("[[datasets]]\nroot = \"tank/home@daily\"\npolicy = \"standard\"\n")), @r#"
        error: invalid `datasets[1].root`: "tank/home@daily" is not a dataset name: character '@' is not allowed
         --> zsnap.toml:6:18
          |
        6 | root = "tank/home@daily"
          |                  ^
        "#);
    insta::assert_snapshot!(err(&with_policy("[[datasets]]\nroot = \"tank\"\nhost = \"server.example\"\npolicy = \"standard\"\n")), @r#"
        error: invalid `datasets[1].host`: invalid ssh address "server.example": it does not start with "ssh://"; expected "ssh://user@host:port"
         --> zsnap.toml:7:8
          |
        7 | host = "server.example"
          |        ^^^^^^^^^^^^^^^^
        "#);
    insta::assert_snapshot!(err(&with_policy("[[datasets]]\nroot = \"tank\"\nhost = \"ssh://root@server:99999\"\npolicy = \"standard\"\n")), @r#"
        error: invalid `datasets[1].host`: invalid ssh address "ssh://root@server:99999": the port is not a number from 1 to 65535; expected "ssh://user@host:port"
         --> zsnap.toml:7:8
          |
        7 | host = "ssh://root@server:99999"
          |        ^^^^^^^^^^^^^^^^^^^^^^^^^
        "#);
    insta::assert_snapshot!(err(&with_dataset("[targets.nas]\nto = \"rsync://nas/backup\"\npolicy = \"standard\"\n")), @r#"
    error: invalid `targets.nas.to`: invalid target "rsync://nas/backup": unknown scheme (use ssh://host/pool/path or a local dataset name)
      --> zsnap.toml:11:6
       |
    11 | to = "rsync://nas/backup"
       |      ^^^^^^^^^^^^^^^^^^^^
    "#);
    insta::assert_snapshot!(err(&with_dataset("[targets.nas]\nto = \"ssh://nas.example\"\npolicy = \"standard\"\n")), @r#"
        error: invalid `targets.nas.to`: invalid target "ssh://nas.example": an ssh target needs a dataset after the host, as in ssh://host/pool/path
          --> zsnap.toml:11:6
           |
        11 | to = "ssh://nas.example"
           |      ^^^^^^^^^^^^^^^^^^^
        "#);
    insta::assert_snapshot!(err(&with_dataset("[targets.nas]\nto = \"ssh://nas/backup//home\"\npolicy = \"standard\"\n")), @r#"
        error: invalid `targets.nas.to`: invalid dataset name "backup//home": empty component (at byte 7)
          --> zsnap.toml:11:6
           |
        11 | to = "ssh://nas/backup//home"
           |      ^^^^^^^^^^^^^^^^^^^^^^^^
        "#);
    insta::assert_snapshot!(err("[policies.standard]\nkeep_last = 1\nsnapshot = { daily = \"dayly\" }\n"), @r#"
        error: invalid `policies.standard.snapshot.daily`: "dayly" is not a period; expected a duration such as "15m" or "4h", or one of "hourly", "daily", "weekly", "monthly", "yearly"; did you mean "daily"?
         --> zsnap.toml:3:22
          |
        3 | snapshot = { daily = "dayly" }
          |                      ^^^^^^^
        "#);
    insta::assert_snapshot!(err("[policies.standard]\nkeep_last = 1\nsnapshot = { often = \"30s\" }\n"), @r#"
        error: invalid `policies.standard.snapshot.often`: "30s" is too short; snapshots can be taken at most once a minute
         --> zsnap.toml:3:22
          |
        3 | snapshot = { often = "30s" }
          |                      ^^^^^
        "#);
    insta::assert_snapshot!(err("[policies.standard]\nkeep_last = 1\nsnapshot = { hourly = \"every hour\" }\n"), @r#"
        error: invalid `policies.standard.snapshot.hourly`: "every hour" is not a period; expected a duration such as "15m" or "4h", or one of "hourly", "daily", "weekly", "monthly", "yearly"
         --> zsnap.toml:3:23
          |
        3 | snapshot = { hourly = "every hour" }
          |                       ^^^^^^^^^^^^
        "#);
    insta::assert_snapshot!(err("[policies.standard]\nkeep_regex = \"^(manual\"\n"), @r#"
        error: invalid `policies.standard.keep_regex[1]`: invalid regex "^(manual": unclosed group (at column 1)
         --> zsnap.toml:2:14
          |
        2 | keep_regex = "^(manual"
          |              ^^^^^^^^^^
        "#);
    insta::assert_snapshot!(err("[policies.standard]\ngrid = \"1x1h(keep=all) | 24 x\"\n"), @r#"
        error: invalid `policies.standard.grid`: invalid grid "1x1h(keep=all) | 24 x": interval 2 of 2 ("24 x"): expected COUNTxDURATION with an optional (keep=N) or (keep=all), e.g. `24x1h` or `1x1h(keep=all)`
         --> zsnap.toml:2:8
          |
        2 | grid = "1x1h(keep=all) | 24 x"
          |        ^^^^^^^^^^^^^^^^^^^^^^^
        "#);
    insta::assert_snapshot!(err("[policies.standard]\ngrid = \"\"\n"), @r#"
        error: invalid `policies.standard.grid`: invalid grid "": it is empty; expected intervals separated by `|`, e.g. `1x1h(keep=all) | 24x1h | 14x1d`
         --> zsnap.toml:2:8
          |
        2 | grid = ""
          |        ^^
        "#);
    insta::assert_snapshot!(err("[policies.standard]\nkeep_counts = { \"Hourly\" = 3 }\n"), @r#"
        error: invalid `policies.standard.keep_counts.Hourly`: invalid label "Hourly": character 'H' is not allowed (at byte 0); labels use a-z, 0-9 and '-'
         --> zsnap.toml:2:17
          |
        2 | keep_counts = { "Hourly" = 3 }
          |                 ^^^^^^^^
        "#);
    insta::assert_snapshot!(err("[policies.standard]\nkeep_last = 1\nprefix = \"my snap\"\n"), @r#"
        error: invalid `policies.standard.prefix`: invalid naming prefix "my snap": use only A-Z, a-z, 0-9, '_', '.', ':' and '-'
         --> zsnap.toml:3:10
          |
        3 | prefix = "my snap"
          |          ^^^^^^^^^
        "#);
    insta::assert_snapshot!(err("[policies.standard]\nkeep_last = 1\nprefix = \"\"\n"), @r#"
        error: invalid `policies.standard.prefix`: invalid naming prefix "": it is empty
         --> zsnap.toml:3:10
          |
        3 | prefix = ""
          |          ^^
        "#);
    insta::assert_snapshot!(err("[policies.standard]\nsanoid = { hourly = 24, frequent_period = \"90s\" }\n"), @r#"
        error: invalid `policies.standard.sanoid.frequent_period`: sanoid's frequent_period is a whole number of minutes, e.g. "15m"
         --> zsnap.toml:2:43
          |
        2 | sanoid = { hourly = 24, frequent_period = "90s" }
          |                                           ^^^^^
        "#);
    insta::assert_snapshot!(err("[paths]\naudit_log = \"\"\n"), @r#"
        error: invalid `paths.audit_log`: the path is empty
         --> zsnap.toml:2:13
          |
        2 | audit_log = ""
          |             ^^
        "#);
    insta::assert_snapshot!(err("[paths]\nssh_config = \"ssh/config\"\n"), @r#"
        error: invalid `paths.ssh_config`: the ssh config must be an absolute path, as in "/etc/zsnap/ssh_config"
         --> zsnap.toml:2:14
          |
        2 | ssh_config = "ssh/config"
          |              ^^^^^^^^^^^^
        "#);
    insta::assert_snapshot!(err(&with_policy("[[datasets]]\nroot = \"tank/home\"\nrecursive = true\nexclude = [\"tank/var\"]\npolicy = \"standard\"\n")), @r#"
        error: invalid `datasets[1].exclude[1]`: tank/var is not below the root tank/home; exclusions name descendants of the root
         --> zsnap.toml:8:12
          |
        8 | exclude = ["tank/var"]
          |            ^^^^^^^^^^
        "#);
    insta::assert_snapshot!(err(&with_policy("[[datasets]]\nroot = \"tank/home\"\nexclude = [\"tank/home/tmp\"]\npolicy = \"standard\"\n")), @r#"
        error: invalid `datasets[1].exclude`: exclude needs recursive = true (without it only the root is managed)
         --> zsnap.toml:7:11
          |
        7 | exclude = ["tank/home/tmp"]
          |           ^^^^^^^^^^^^^^^^^
        "#);
    insta::assert_snapshot!(err(&with_policy("[[datasets]]\nroot = \"tank/home\"\nchildren_only = true\npolicy = \"standard\"\n")), @r#"
        error: invalid `datasets[1].children_only`: children_only = true needs recursive = true (there are no children to manage otherwise)
         --> zsnap.toml:7:17
          |
        7 | children_only = true
          |                 ^^^^
        "#);
    insta::assert_snapshot!(err(&with_dataset("[targets.nas]\nto = \"tank/home/backup\"\npolicy = \"standard\"\n")), @r#"
        error: invalid `targets.nas.to`: tank/home/backup overlaps the source datasets under tank/home on local; a target must lie outside every [[datasets]] root
          --> zsnap.toml:11:6
           |
        11 | to = "tank/home/backup"
           |      ^^^^^^^^^^^^^^^^^^
        "#);
    insta::assert_snapshot!(err(&with_dataset("[targets.nas]\nto = \"backup/home\"\nexclude_properties = [\"mount point\"]\npolicy = \"standard\"\n")), @r#"
        error: invalid `targets.nas.exclude_properties[1]`: "mount point" is not a property name
          --> zsnap.toml:12:23
           |
        12 | exclude_properties = ["mount point"]
           |                       ^^^^^^^^^^^^^
        "#);
    insta::assert_snapshot!(err("[check.freshness]\n\"hourly_x\" = { warn = \"1h\", crit = \"2h\" }\n"), @r#"
        error: invalid `check.freshness.hourly_x`: invalid label "hourly_x": '_' separates the parts of a snapshot name and may not appear in a label (at byte 6)
         --> zsnap.toml:2:1
          |
        2 | "hourly_x" = { warn = "1h", crit = "2h" }
          | ^^^^^^^^^^
        "#);
}

#[test]
fn unknown_names() {
    insta::assert_snapshot!(err(&with_policy("[[datasets]]\nroot = \"tank\"\npolicy = \"standrad\"\n")), @r#"
        error: unknown policy `standrad` in `datasets[1].policy`; did you mean `standard`?
         --> zsnap.toml:7:10
          |
        7 | policy = "standrad"
          |          ^^^^^^^^^^
        "#);
    insta::assert_snapshot!(err(&with_policy("[[datasets]]\nroot = \"tank\"\npolicy = \"other\"\n")), @r#"
        error: unknown policy `other` in `datasets[1].policy`; expected `standard`
         --> zsnap.toml:7:10
          |
        7 | policy = "other"
          |          ^^^^^^^
        "#);
    insta::assert_snapshot!(err("[policies.standard]\nkeep_last = 1\ntimezone = \"Europe/Berln\"\n"), @r#"
        error: unknown time zone `Europe/Berln` in `policies.standard.timezone`; did you mean `Europe/Berlin`?
         --> zsnap.toml:3:12
          |
        3 | timezone = "Europe/Berln"
          |            ^^^^^^^^^^^^^^
        "#);
    insta::assert_snapshot!(err("[policies.standard]\nkeep_last = 1\ntimezone = \"Mars/Olympus\"\n"), @r#"
        error: invalid `policies.standard.timezone`: unknown time zone "Mars/Olympus"; expected an IANA name such as "UTC", "Europe/Berlin" or "America/New_York"
         --> zsnap.toml:3:12
          |
        3 | timezone = "Mars/Olympus"
          |            ^^^^^^^^^^^^^^
        "#);
    insta::assert_snapshot!(err("[policies.standard]\nkeep_last = 1\nadopt = [\"sanoyd\"]\n"), @r#"
        error: unknown tool `sanoyd` in `policies.standard.adopt[1]`; did you mean `sanoid`?
         --> zsnap.toml:3:10
          |
        3 | adopt = ["sanoyd"]
          |          ^^^^^^^^
        "#);
    insta::assert_snapshot!(err(&with_dataset("[targets.nas]\nto = \"backup/home\"\npolicy = \"standard\"\ncursor = \"bokmark\"\n")), @r#"
        error: unknown cursor `bokmark` in `targets.nas.cursor`; did you mean `bookmark`?
          --> zsnap.toml:13:10
           |
        13 | cursor = "bokmark"
           |          ^^^^^^^^^
        "#);
    insta::assert_snapshot!(err(&with_dataset("[[datasets]]\nroot = \"tank/vm\"\npolicy = \"standard\"\n[targets.nas]\nsource = \"tank/hom\"\nto = \"backup/home\"\npolicy = \"standard\"\n")), @r#"
        error: unknown dataset root `tank/hom` in `targets.nas.source`; did you mean `tank/home`?
          --> zsnap.toml:14:10
           |
        14 | source = "tank/hom"
           |          ^^^^^^^^^^
        "#);
}

#[test]
fn policy_safety() {
    insta::assert_snapshot!(err("[policies.standard]\nsnapshot = { hourly = \"hourly\" }\n"), @r#"
        error: policy `standard` has no keep rule, so it would destroy every snapshot but the newest; add one (e.g. `keep_last = 10` or `keep = { daily = 7 }`) or set `prune = false`
         --> zsnap.toml:1:1
          |
        1 | [policies.standard]
          | ^^^^^^^^^^^^^^^^^^^
        "#);
    insta::assert_snapshot!(err("[policies.standard]\nkeep_last = 5\nprefix = \"autosnap\"\n"), @r#"
        error: policy `standard` uses the prefix `autosnap`, which is sanoid's; zsnap would prune sanoid's snapshots as its own. Choose another prefix, or adopt them explicitly with `adopt = ["sanoid"]`
         --> zsnap.toml:3:10
          |
        3 | prefix = "autosnap"
          |          ^^^^^^^^^^
        "#);
    insta::assert_snapshot!(err("[policies.standard]\nkeep_last = 5\nprefix = \"zfs-auto-snap\"\nadopt = [\"sanoid\"]\n"), @r#"
        error: policy `standard` uses the prefix `zfs-auto-snap`, which is zfs-auto-snapshot's; zsnap would prune zfs-auto-snapshot's snapshots as its own. Choose another prefix, or adopt them explicitly with `adopt = ["zfs-auto-snapshot"]`
         --> zsnap.toml:3:10
          |
        3 | prefix = "zfs-auto-snap"
          |          ^^^^^^^^^^^^^^^
        "#);
}

#[test]
fn selections_and_thresholds() {
    insta::assert_snapshot!(err(&with_dataset("[policies.other]\nkeep_last = 1\n[[datasets]]\nroot = \"tank/home\"\npolicy = \"other\"\n")), @r#"
        error: root `tank/home` is listed in [[datasets]] #1 and #2 with different policies, so they would fight over it; keep one entry per root (a deeper root overrides a shallower one, so nest them instead)
          --> zsnap.toml:12:1
           |
        12 | [[datasets]]
           | ^^^^^^^^^^^^
        "#);
    insta::assert_snapshot!(err(&with_dataset("[policies.other]\nkeep_last = 1\n[[datasets]]\nroot = \"tank/home\"\nrecursive = true\nchildren_only = true\npolicy = \"other\"\n")), @r#"
        error: root `tank/home` is listed in [[datasets]] #1 and #2 with different policies, so they would fight over it; keep one entry per root (a deeper root overrides a shallower one, so nest them instead)
          --> zsnap.toml:12:1
           |
        12 | [[datasets]]
           | ^^^^^^^^^^^^
        "#);
    insta::assert_snapshot!(err("[check]\nreplication_lag = { warn = \"1d\", crit = \"2h\" }\n"), @r#"
        error: `check.replication_lag`: warn (1d) must not be longer than crit (2h)
         --> zsnap.toml:2:19
          |
        2 | replication_lag = { warn = "1d", crit = "2h" }
          |                   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^
        "#);
    insta::assert_snapshot!(err(POLICY), @r#"
        error: no [[datasets]] table, so there is nothing to manage; add one with `root = "POOL/DATASET"` and `policy = "NAME"`
         --> zsnap.toml:1:1
          |
        1 | 
          | ^
        "#);
    insta::assert_snapshot!(err(&format!("datasets = []\n{POLICY}")), @r#"
        error: no [[datasets]] table, so there is nothing to manage; add one with `root = "POOL/DATASET"` and `policy = "NAME"`
         --> zsnap.toml:1:12
          |
        1 | datasets = []
          |            ^^
        "#);
}

#[test]
fn addresses() {
    let target = |to: &str| {
        err(&with_dataset(&format!(
            "[targets.nas]\nto = \"{to}\"\npolicy = \"standard\"\n"
        )))
    };
    insta::assert_snapshot!(target("s3:///prefix"), @r#"
    error: invalid `targets.nas.to`: invalid target "s3:///prefix": a backup store is not a replication target: back up to it with a [backups.NAME] table
      --> zsnap.toml:11:6
       |
    11 | to = "s3:///prefix"
       |      ^^^^^^^^^^^^^^
    "#);
    insta::assert_snapshot!(target("ssh://@nas/backup"), @r#"
        error: invalid `targets.nas.to`: invalid ssh address "ssh://@nas/backup": the user before '@' is empty; expected "ssh://user@host:port"
          --> zsnap.toml:11:6
           |
        11 | to = "ssh://@nas/backup"
           |      ^^^^^^^^^^^^^^^^^^^
        "#);
    insta::assert_snapshot!(target("ssh://a b@nas/backup"), @r#"
        error: invalid `targets.nas.to`: invalid ssh address "ssh://a b@nas/backup": the user may hold only letters, digits, '_', '-' and '.'; expected "ssh://user@host:port"
          --> zsnap.toml:11:6
           |
        11 | to = "ssh://a b@nas/backup"
           |      ^^^^^^^^^^^^^^^^^^^^^^
        "#);
    insta::assert_snapshot!(target("ssh://[::1/backup"), @r#"
        error: invalid `targets.nas.to`: invalid ssh address "ssh://[::1/backup": an IPv6 address needs a closing ']'; expected "ssh://user@host:port"
          --> zsnap.toml:11:6
           |
        11 | to = "ssh://[::1/backup"
           |      ^^^^^^^^^^^^^^^^^^^
        "#);
    insta::assert_snapshot!(target("ssh://nas:0/backup"), @r#"
        error: invalid `targets.nas.to`: invalid ssh address "ssh://nas:0/backup": the port is not a number from 1 to 65535; expected "ssh://user@host:port"
          --> zsnap.toml:11:6
           |
        11 | to = "ssh://nas:0/backup"
           |      ^^^^^^^^^^^^^^^^^^^^
        "#);
    let host = |h: &str| {
        err(&with_policy(&format!(
            "[[datasets]]\nroot = \"tank\"\nhost = \"{h}\"\npolicy = \"standard\"\n"
        )))
    };
    insta::assert_snapshot!(host("ssh://nas/tank"), @r#"
        error: invalid `datasets[1].host`: invalid ssh address "ssh://nas/tank": a host address has no path; expected "ssh://user@host:port"
         --> zsnap.toml:7:8
          |
        7 | host = "ssh://nas/tank"
          |        ^^^^^^^^^^^^^^^^
        "#);
    insta::assert_snapshot!(host("ssh://"), @r#"
        error: invalid `datasets[1].host`: invalid ssh address "ssh://": the host is empty; expected "ssh://user@host:port"
         --> zsnap.toml:7:8
          |
        7 | host = "ssh://"
          |        ^^^^^^^^
        "#);
    insta::assert_snapshot!(host("ssh://n@s!"), @r#"
        error: invalid `datasets[1].host`: invalid ssh address "ssh://n@s!": the host may hold only letters, digits, '-', '.', '_' and ':'; expected "ssh://user@host:port"
         --> zsnap.toml:7:8
          |
        7 | host = "ssh://n@s!"
          |        ^^^^^^^^^^^^
        "#);
}

#[test]
fn backups() {
    insta::assert_snapshot!(err(&with_dataset("[backups.usb]\nto = \"dir:mnt/usb\"\n")), @r#"
    error: invalid `backups.usb.to`: invalid store "dir:mnt/usb": the path must be absolute (begin with '/')
      --> zsnap.toml:11:6
       |
    11 | to = "dir:mnt/usb"
       |      ^^^^^^^^^^^^^
    "#);
    insta::assert_snapshot!(err(&with_dataset("[backups.usb]\nto = \"dir:/mnt/usb/../etc\"\n")), @r#"
    error: invalid `backups.usb.to`: invalid store "dir:/mnt/usb/../etc": the path may not contain "." or ".." components (at byte 13)
      --> zsnap.toml:11:6
       |
    11 | to = "dir:/mnt/usb/../etc"
       |      ^^^^^^^^^^^^^^^^^^^^^
    "#);
    insta::assert_snapshot!(err(&with_dataset("[backups.usb]\nto = \"dir:/mnt/usb\"\ncompression = \"zstandard\"\n")), @r#"
    error: invalid `backups.usb.compression`: unknown compression "zstandard": expected "none" or "zstd"
      --> zsnap.toml:12:15
       |
    12 | compression = "zstandard"
       |               ^^^^^^^^^^^
    "#);
    insta::assert_snapshot!(err(&with_dataset("[backups.usb]\nto = \"dir:/mnt/usb\"\nevery = \"1d\"\nfull_every = \"12h\"\n")), @r#"
    error: invalid `backups.usb.full_every`: 12h is shorter than every = 1d: every backup would be full
      --> zsnap.toml:13:14
       |
    13 | full_every = "12h"
       |              ^^^^^
    "#);
    insta::assert_snapshot!(err(&with_dataset("[backups.usb]\nto = \"dir:/mnt/usb\"\nfull_evry = \"30d\"\n")), @r#"
    error: unknown key `full_evry` in [backups.usb]; did you mean `full_every`?
      --> zsnap.toml:12:1
       |
    12 | full_evry = "30d"
       | ^^^^^^^^^
    "#);
    insta::assert_snapshot!(err(&with_dataset("[backups.usb]\nto = \"dir:/mnt/usb\"\ns3 = { region = \"garage\" }\n")), @r#"
    error: invalid `backups.usb.s3`: s3 settings apply only to s3:// stores
      --> zsnap.toml:12:6
       |
    12 | s3 = { region = "garage" }
       |      ^^^^^^^^^^^^^^^^^^^^^
    "#);
    insta::assert_snapshot!(err(&with_dataset("[backups.b2]\nto = \"s3://zsnap\"\ns3 = { endpoint = \"http://nas:3900\" }\n")), @r#"
    error: invalid `backups.b2.s3.endpoint`: a plain http:// endpoint needs allow_http = true (credentials and data travel unencrypted)
      --> zsnap.toml:12:19
       |
    12 | s3 = { endpoint = "http://nas:3900" }
       |                   ^^^^^^^^^^^^^^^^^
    "#);
    insta::assert_snapshot!(err(&with_dataset("[backups.b2]\nto = \"s3://zsnap\"\ns3 = { secret_access_key_file = \"secret\" }\n")), @r#"
    error: invalid `backups.b2.s3.secret_access_key_file`: the secret key file must be an absolute path
      --> zsnap.toml:12:33
       |
    12 | s3 = { secret_access_key_file = "secret" }
       |                                 ^^^^^^^^
    "#);
    insta::assert_snapshot!(err(&with_dataset("[backups.b2]\nto = \"s3://Zsnap_Backups\"\n")), @r#"
    error: invalid `backups.b2.to`: invalid store "s3://Zsnap_Backups": invalid bucket name "Zsnap_Backups": a bucket name uses only a-z, 0-9, '.' and '-'
      --> zsnap.toml:11:6
       |
    11 | to = "s3://Zsnap_Backups"
       |      ^^^^^^^^^^^^^^^^^^^^
    "#);
    insta::assert_snapshot!(err(&with_dataset("[backups.b2]\nsource = \"tank/hom\"\nto = \"s3://zsnap\"\n")), @r#"
    error: unknown dataset root `tank/hom` in `backups.b2.source`; did you mean `tank/home`?
      --> zsnap.toml:11:10
       |
    11 | source = "tank/hom"
       |          ^^^^^^^^^^
    "#);
    insta::assert_snapshot!(err(&with_dataset("[targets.usb]\nto = \"file:///mnt/usb\"\npolicy = \"standard\"\n")), @r#"
    error: invalid `targets.usb.to`: invalid target "file:///mnt/usb": a backup store is not a replication target: back up to it with a [backups.NAME] table
      --> zsnap.toml:11:6
       |
    11 | to = "file:///mnt/usb"
       |      ^^^^^^^^^^^^^^^^^
    "#);
}

/// `[[datasets]]` using policy `p`, after `policy`.
fn p_used(policy: &str) -> String {
    format!("{policy}\n[[datasets]]\nroot = \"tank/home\"\npolicy = \"p\"\n")
}

/// Issue 12, item 2: a keep rule that keeps nothing by mistake is a config error with
/// its place and a "did you mean", unless `keep_none` says it is meant.
#[test]
fn keep_rules_that_keep_nothing_by_mistake() {
    // typo
    insta::assert_snapshot!(err(&p_used("[policies.p]\nsnapshot = { hourly = \"hourly\" }\nkeep_counts = { hourlyy = 5 }\n")), @r#"
        error: `policies.p.keep_counts.hourlyy` names label `hourlyy`, which policy `p` neither schedules, nor declares in `on_demand`, nor adopts from another tool, so the rule keeps nothing; did you mean `hourly`?
         --> zsnap.toml:3:17
          |
        3 | keep_counts = { hourlyy = 5 }
          |                 ^^^^^^^
        "#);
    // dayly
    insta::assert_snapshot!(err(&p_used("[policies.p]\nsnapshot = { hourly = \"hourly\", dayly = \"daily\" }\nkeep_counts = { hourly = 24, daily = 7 }\n")), @r#"
        error: policy `p` schedules label `dayly` but no keep rule keeps it, so every `dayly` snapshot would be destroyed by the next prune; did you mean `daily` (which a rule keeps)?
         --> zsnap.toml:2:33
          |
        2 | snapshot = { hourly = "hourly", dayly = "daily" }
          |                                 ^^^^^
        "#);
    // dayly_only_sched
    insta::assert_snapshot!(err(&p_used("[policies.p]\nsnapshot = { hourly = \"hourly\", dayly = \"daily\" }\nkeep_counts = { hourly = 24 }\n")), @r#"
        error: policy `p` schedules label `dayly` but no keep rule keeps it, so every `dayly` snapshot would be destroyed by the next prune; add a rule for it (e.g. `keep_counts = { dayly = 24 }`), or list it in `keep_none = ["dayly"]` if that is meant
         --> zsnap.toml:2:33
          |
        2 | snapshot = { hourly = "hourly", dayly = "daily" }
          |                                 ^^^^^
        "#);
    // keep_empty
    insta::assert_snapshot!(err(&p_used("[policies.p]\nsnapshot = { hourly = \"hourly\" }\nkeep = {}\n")), @r#"
        error: invalid `policies.p.keep`: keeps nothing (no calendar count above 0), so every snapshot but the newest would be destroyed; give a count such as `keep = { daily = 7 }`, or remove it
         --> zsnap.toml:3:8
          |
        3 | keep = {}
          |        ^^
        "#);
    // keep_last0
    insta::assert_snapshot!(err(&p_used("[policies.p]\nsnapshot = { hourly = \"hourly\" }\nkeep_last = 0\n")), @r#"
        error: invalid `policies.p.keep_last`: keep_last = 0 keeps nothing, so every snapshot but the newest would be destroyed; give a count above 0, or remove it
         --> zsnap.toml:3:13
          |
        3 | keep_last = 0
          |             ^
        "#);
    // zero
    insta::assert_snapshot!(err(&p_used("[policies.p]\nsnapshot = { hourly = \"hourly\", daily = \"daily\" }\nkeep_counts = { hourly = 0, daily = 7 }\n")), @r#"
        error: `policies.p.keep_counts.hourly` = 0 keeps no `hourly` snapshot although policy `p` schedules them, so each would be destroyed by the next prune; give a count above 0, or list the label in `keep_none = ["hourly"]` if that is meant
         --> zsnap.toml:3:17
          |
        3 | keep_counts = { hourly = 0, daily = 7 }
          |                 ^^^^^^
        "#);
    // sanoid_zero
    insta::assert_snapshot!(err(&p_used("[policies.p]\nadopt = [\"sanoid\"]\nsnapshot = { hourly = \"hourly\", daily = \"daily\" }\nsanoid = { hourly = 0, daily = 7 }\n")), @r#"
        error: `policies.p.sanoid.hourly` = 0 keeps no `hourly` snapshot although policy `p` schedules them, so each would be destroyed by the next prune; give a count above 0, or list the label in `keep_none = ["hourly"]` if that is meant
         --> zsnap.toml:4:21
          |
        4 | sanoid = { hourly = 0, daily = 7 }
          |                     ^
        "#);
    // unknown_keep_none
    insta::assert_snapshot!(err(&p_used("[policies.p]\nsnapshot = { hourly = \"hourly\" }\nkeep_last = 3\nkeep_none = [\"hourlt\"]\n")), @r#"
        error: `policies.p.keep_none[1]` names label `hourlt`, which policy `p` neither schedules, nor declares in `on_demand`, nor adopts from another tool, so the rule keeps nothing; did you mean `hourly`?
         --> zsnap.toml:4:14
          |
        4 | keep_none = ["hourlt"]
          |              ^^^^^^^^
        "#);
    // on_demand_bad
    insta::assert_snapshot!(err(&p_used("[policies.p]\nsnapshot = { hourly = \"hourly\" }\non_demand = { pre-upgrade = \"soon\" }\nkeep_last = 3\n")), @r#"
        error: invalid `policies.p.on_demand.pre-upgrade`: "soon" is not a duration: a unit without a number; expected e.g. "90s", "15m", "1h30m", "7d" or "2w"
         --> zsnap.toml:3:29
          |
        3 | on_demand = { pre-upgrade = "soon" }
          |                             ^^^^^^
        "#);
    // on_demand_sched
    insta::assert_snapshot!(err(&p_used("[policies.p]\nsnapshot = { hourly = \"hourly\" }\non_demand = { hourly = \"1d\" }\nkeep_last = 3\n")), @r#"
        error: invalid `policies.p.on_demand.hourly`: label `hourly` is scheduled in `policies.p.snapshot`; a label is either scheduled or taken on demand
         --> zsnap.toml:3:15
          |
        3 | on_demand = { hourly = "1d" }
          |               ^^^^^^
        "#);
    // Meant: a zero count or sanoid's deliberate 0 listed in keep_none, and keep
    // rules naming declared on-demand labels.
    for ok in [
        "[policies.p]\nsnapshot = { hourly = \"hourly\", daily = \"daily\" }\nkeep_counts = { hourly = 0, daily = 7 }\nkeep_none = [\"hourly\"]\n",
        "[policies.p]\nadopt = [\"sanoid\"]\nsnapshot = { hourly = \"hourly\", daily = \"daily\" }\nsanoid = { hourly = 0, daily = 7 }\nkeep_none = [\"hourly\"]\n",
        "[policies.p]\nsnapshot = { hourly = \"hourly\" }\non_demand = { pre-upgrade = \"30d\", manual = \"never\" }\nkeep_counts = { hourly = 24, pre-upgrade = 3 }\n",
    ] {
        Config::from_toml(&p_used(ok), "zsnap.toml").unwrap();
    }
}

const TWO_TARGETS: &str = "[policies.p]\nsnapshot = { hourly = \"hourly\" }\nkeep_last = 3\n\n[policies.archive]\nkeep_last = 100\n\n[policies.mirror]\nkeep_last = 1\n\n[[datasets]]\nroot = \"tank/home\"\nrecursive = true\npolicy = \"p\"\n";

/// Issue 12, item 7: two targets writing into one dataset (or one inside the other),
/// and a target inside a source root, are config errors naming both places.
#[test]
fn overlapping_targets() {
    let targets = |a: &str, b: &str| {
        format!("{TWO_TARGETS}\n[targets.archive]\nto = \"{a}\"\npolicy = \"archive\"\n\n[targets.mirror]\nto = \"{b}\"\npolicy = \"mirror\"\n")
    };
    insta::assert_snapshot!(err(&targets("bak/a", "bak/a")), @r#"
        error: target `mirror` writes to bak/a, which overlaps target `archive` at bak/a: each would prune the other's history by its own policy; give each target its own dataset
          --> zsnap.toml:21:6
           |
        21 | to = "bak/a"
           |      ^^^^^^^
        "#);
    insta::assert_snapshot!(err(&targets("bak/a", "bak/a/x")), @r#"
        error: target `mirror` writes to bak/a/x, which overlaps target `archive` at bak/a: each would prune the other's history by its own policy; give each target its own dataset
          --> zsnap.toml:21:6
           |
        21 | to = "bak/a/x"
           |      ^^^^^^^^^
        "#);
    insta::assert_snapshot!(err("[policies.p]\nsnapshot = { hourly = \"hourly\" }\nkeep_last = 3\n\n[[datasets]]\nroot = \"tank/home\"\npolicy = \"p\"\n\n[targets.t]\nto = \"tank/home/copy\"\npolicy = \"p\"\n"), @r#"
        error: invalid `targets.t.to`: tank/home/copy overlaps the source datasets under tank/home on local; a target must lie outside every [[datasets]] root
          --> zsnap.toml:10:6
           |
        10 | to = "tank/home/copy"
           |      ^^^^^^^^^^^^^^^^
        "#);
    // The same path on another host, and siblings, are fine.
    Config::from_toml(&targets("bak/a", "ssh://nas/bak/a"), "zsnap.toml").unwrap();
    Config::from_toml(&targets("bak/a", "bak/ab"), "zsnap.toml").unwrap();
}

/// Issue 12, item 11: a root (or the target dataset it lands on) whose snapshot names
/// would exceed ZFS's 255 bytes is refused by config check, with the length.
#[test]
fn snapshot_names_over_zfs_limits() {
    let config = |root: &str, to: &str| {
        format!("[policies.p]\nsnapshot = {{ hourly = \"hourly\" }}\non_demand = {{ pre-upgrade = \"30d\" }}\nkeep_last = 3\n\n[[datasets]]\nroot = \"{root}\"\npolicy = \"p\"\n\n[targets.t]\nto = \"{to}\"\npolicy = \"p\"\n")
    };
    let message = |text: &str| {
        Config::from_toml(text, "zsnap.toml")
            .unwrap_err()
            .to_string()
    };
    // tank/ + 226 bytes: 231 + "@zsnap_pre-upgrade_" (19) + 16 = 266 bytes.
    let long = format!("tank/{}", "d".repeat(226));
    let m = message(&config(&long, "bak/x"));
    assert!(
        m.starts_with(
            "zsnap.toml:7:8: `datasets[1].root`: the `pre-upgrade` snapshots of tank/ddd"
        ),
        "{m}"
    );
    assert!(m.ends_with("would have names of 266 bytes, over ZFS's limit of 255, so they could never be taken; use a shorter dataset path, prefix or label"), "{m}");
    let m = message(&config("tank/home", &format!("bak/{}", "d".repeat(230))));
    assert!(
        m.starts_with("zsnap.toml:11:6: `targets.t.to`: the `pre-upgrade` snapshots of bak/ddd"),
        "{m}"
    );
    // Exactly 255 bytes fits: 220 + 19 + 16.
    Config::from_toml(
        &config(&format!("tank/{}", "d".repeat(215)), "bak/x"),
        "zsnap.toml",
    )
    .unwrap();
    assert!(Config::from_toml(
        &config(&format!("tank/{}", "d".repeat(216)), "bak/x"),
        "zsnap.toml"
    )
    .is_err());
}

#[test]
fn hooks() {
    let hook = |body: &str| err(&with_dataset(&format!("\n[hooks.db]\n{body}")));
    insta::assert_snapshot!(hook("when = \"pre_snapshots\"\nrun = [\"/bin/true\"]\n"), @r#"
        error: unknown hook event `pre_snapshots` in `hooks.db.when`; did you mean `pre_snapshot`?
          --> zsnap.toml:12:8
           |
        12 | when = "pre_snapshots"
           |        ^^^^^^^^^^^^^^^
        "#);
    insta::assert_snapshot!(hook("when = \"pre_snapshot\"\nrun = \"pg_checkpoint\"\n"), @r#"
        error: `hooks.db.run` must be an array: the program and its arguments, such as ["/usr/local/bin/checkpoint", "--fast"], found the string "pg_checkpoint"
          --> zsnap.toml:13:7
           |
        13 | run = "pg_checkpoint"
           |       ^^^^^^^^^^^^^^^
        "#);
    insta::assert_snapshot!(hook("when = \"pre_snapshot\"\nrun = [\"pg_checkpoint\"]\n"), @r#"
        error: invalid `hooks.db.run`: the program "pg_checkpoint" is not an absolute path: zsnap runs as root and never looks a program up in PATH; write e.g. "/usr/bin/pg_checkpoint"
          --> zsnap.toml:13:7
           |
        13 | run = ["pg_checkpoint"]
           |       ^^^^^^^^^^^^^^^^^
        "#);
    insta::assert_snapshot!(hook("when = \"pre_snapshot\"\nrun = [\"/bin/true\"]\ndatasets = [\"tank/hmoe\"]\n"), @r#"
        error: unknown dataset (no [[datasets]] entry manages it) `tank/hmoe` in `hooks.db.datasets[1]`; did you mean `tank/home`?
          --> zsnap.toml:14:13
           |
        14 | datasets = ["tank/hmoe"]
           |             ^^^^^^^^^^^
        "#);
    insta::assert_snapshot!(hook("when = \"pre_snapshot\"\nrun = [\"/bin/true\"]\ntargets = [\"offsite\"]\n"), @r#"
        error: invalid `hooks.db.targets`: only replicate hooks have targets; this one runs at pre_snapshot
          --> zsnap.toml:14:11
           |
        14 | targets = ["offsite"]
           |           ^^^^^^^^^^^
        "#);
    insta::assert_snapshot!(hook("when = \"post_prune\"\nrun = [\"/bin/true\"]\non_failure = \"skip\"\n"), @r#"
        error: invalid `hooks.db.on_failure`: a post_prune hook runs after the work, so there is nothing to skip; remove it (failures are reported and the run goes on)
          --> zsnap.toml:14:14
           |
        14 | on_failure = "skip"
           |              ^^^^^^
        "#);
    insta::assert_snapshot!(hook("when = \"pre_prune\"\nrun = [\"/bin/true\"]\non_failure = \"contine\"\n"), @r#"
        error: unknown failure policy `contine` in `hooks.db.on_failure`; did you mean `continue`?
          --> zsnap.toml:14:14
           |
        14 | on_failure = "contine"
           |              ^^^^^^^^^
        "#);
    insta::assert_snapshot!(hook("when = \"pre_prune\"\nrun = [\"/bin/true\"]\nhold = true\n"), @r#"
        error: invalid `hooks.db.hold`: only a pre_snapshot hook can hold over the snapshots; this one runs at pre_prune
          --> zsnap.toml:14:8
           |
        14 | hold = true
           |        ^^^^
        "#);
    insta::assert_snapshot!(hook("run = [\"/bin/true\"]\n"), @r#"
        error: missing key `when` in [hooks.db]: say when it runs, e.g. `when = "pre_snapshot"`
          --> zsnap.toml:11:1
           |
        11 | [hooks.db]
           | ^^^^^^^^^^
        "#);
    insta::assert_snapshot!(hook("when = \"pre_snapshot\"\nrun = [\"/bin/true\"]\ntimeout = \"0s\"\n"), @r#"
        error: invalid `hooks.db.timeout`: a hook needs some time; give e.g. "30s"
          --> zsnap.toml:14:11
           |
        14 | timeout = "0s"
           |           ^^^^
        "#);
    insta::assert_snapshot!(hook("when = \"pre_snapshot\"\nrun = [\"/bin/true\"]\nonce = true\nwhen_ = 1\n"), @r#"
        error: unknown key `when_` in [hooks.db]; did you mean `when`?
          --> zsnap.toml:15:1
           |
        15 | when_ = 1
           | ^^^^^
        "#);
}

#[test]
fn hooks_round_trip_with_their_defaults() {
    let text = with_dataset(
        "\n[hooks.checkpoint]\nwhen = \"pre_snapshot\"\nrun = [\"/usr/bin/psql\", \"-c\", \"CHECKPOINT\"]\ndatasets = [\"tank/home/db\"]\n\n[hooks.notify]\nwhen = \"post_prune\"\nrun = [\"/usr/local/bin/notify\"]\nonce = true\ntimeout = \"2m\"\n",
    );
    let config = Config::from_toml(&text, "zsnap.toml").unwrap();
    let effective = config.to_toml();
    assert!(effective.contains("on_failure = \"skip\""), "{effective}");
    assert!(effective.contains("timeout = \"30s\""), "{effective}");
    assert!(
        effective.contains("on_failure = \"continue\""),
        "{effective}"
    );
    assert_eq!(
        Config::from_toml(&effective, "effective.toml").unwrap(),
        config
    );
}

/// A config whose policy `p` has `keep_rules = [ITEM]` (on line 3), with a target
/// `offsite`.
fn keep_rules_item(item: &str) -> String {
    format!("[policies.p]\nsnapshot = {{ hourly = \"hourly\" }}\nkeep_rules = [{item}]\n\n[policies.bak]\nkeep_last = 10\n\n[[datasets]]\nroot = \"tank/home\"\npolicy = \"p\"\n\n[targets.offsite]\nsource = \"tank/home\"\nto = \"backup/home\"\npolicy = \"bak\"\n")
}

#[test]
fn keep_rules_list_errors() {
    Config::from_toml(
        &keep_rules_item("{ not_replicated = \"offsite\" }"),
        "zsnap.toml",
    )
    .unwrap();
    let items = [
        "{ not_replicated = \"ofsite\" }",
        "{ last = 10 }",
        "{ grid = \"24x1h\", last_n = 3 }",
        "{ last_n = 3, negate = true }",
        "{ regex = \"^(?!keep_)\" }",
        "{ regex = \"(a)\\\\1\" }",
        "{ grid = \"24x1h\", label = \"hourly\" }",
        "{ last_n = 3, label = \"hourlyy\" }",
        "{}",
        "{ last_n = 0 }",
        "{ keep_oldest = true, regex = \"^a\" }",
        "{ grid = \"1x1h(keep=0)\" }",
        "{ calendar = { dayly = 7 } }",
        "\"last 3\"",
    ];
    let all: Vec<String> = items.iter().map(|i| err(&keep_rules_item(i))).collect();
    insta::assert_snapshot!(all.join("\n"), @r##"
        error: unknown target `ofsite` in `policies.p.keep_rules[1].not_replicated`; did you mean `offsite`?
         --> zsnap.toml:3:34
          |
        3 | keep_rules = [{ not_replicated = "ofsite" }]
          |                                  ^^^^^^^^
        error: unknown key `last` in `policies.p.keep_rules[1]`; did you mean `last_n`?
         --> zsnap.toml:3:17
          |
        3 | keep_rules = [{ last = 10 }]
          |                 ^^^^
        error: invalid `policies.p.keep_rules[1].last_n`: one rule per item: this item already has `grid`; put `last_n` in an item of its own
         --> zsnap.toml:3:33
          |
        3 | keep_rules = [{ grid = "24x1h", last_n = 3 }]
          |                                 ^^^^^^
        error: invalid `policies.p.keep_rules[1].negate`: negate needs a regex to negate, e.g. { regex = "^manual_", negate = true }
         --> zsnap.toml:3:38
          |
        3 | keep_rules = [{ last_n = 3, negate = true }]
          |                                      ^^^^
        error: invalid `policies.p.keep_rules[1].regex`: invalid regex "^(?!keep_)": look-around, including look-ahead and look-behind, is not supported (at column 1); zsnap's regexes (Rust's regex crate, like RE2 and the Go regexp zrepl uses) have no look-around and no backreferences; instead of a negative look-ahead, give a keep_rules item `negate = true`
         --> zsnap.toml:3:25
          |
        3 | keep_rules = [{ regex = "^(?!keep_)" }]
          |                         ^^^^^^^^^^^^
        error: invalid `policies.p.keep_rules[1].regex`: invalid regex "(a)\\1": backreferences are not supported (at column 4); zsnap's regexes (Rust's regex crate, like RE2 and the Go regexp zrepl uses) have no look-around and no backreferences; instead of a negative look-ahead, give a keep_rules item `negate = true`
         --> zsnap.toml:3:25
          |
        3 | keep_rules = [{ regex = "(a)\\1" }]
          |                         ^^^^^^^^
        error: invalid `policies.p.keep_rules[1].label`: label only filters last_n, not grid; filter grid by name with a regex
         --> zsnap.toml:3:41
          |
        3 | keep_rules = [{ grid = "24x1h", label = "hourly" }]
          |                                         ^^^^^^^^
        error: `policies.p.keep_rules[1].label` names label `hourlyy`, which policy `p` neither schedules, nor declares in `on_demand`, nor adopts from another tool, so the rule keeps nothing; did you mean `hourly`?
         --> zsnap.toml:3:37
          |
        3 | keep_rules = [{ last_n = 3, label = "hourlyy" }]
          |                                     ^^^^^^^^^
        error: invalid `policies.p.keep_rules[1]`: the item has no rule; give one of grid, last_n, calendar, newer_than, not_replicated or keep_oldest, or a regex alone, e.g. { last_n = 10 } or { regex = "^manual_" }
         --> zsnap.toml:3:15
          |
        3 | keep_rules = [{}]
          |               ^^
        error: invalid `policies.p.keep_rules[1].last_n`: last_n = 0 keeps nothing; give a count above 0, or remove the item
         --> zsnap.toml:3:26
          |
        3 | keep_rules = [{ last_n = 0 }]
          |                          ^
        error: invalid `policies.p.keep_rules[1].regex`: keep_oldest keeps the oldest snapshot of the dataset and takes no regex
         --> zsnap.toml:3:45
          |
        3 | keep_rules = [{ keep_oldest = true, regex = "^a" }]
          |                                             ^^^^
        error: invalid `policies.p.keep_rules[1].grid`: invalid grid "1x1h(keep=0)": interval 1 of 1 ("1x1h(keep=0)"): keep must be a whole number of at least 1, or `all` to keep every snapshot of the interval, not "0"
         --> zsnap.toml:3:24
          |
        3 | keep_rules = [{ grid = "1x1h(keep=0)" }]
          |                        ^^^^^^^^^^^^^^
        error: unknown key `dayly` in `policies.p.keep_rules[1].calendar`; did you mean `daily`?
         --> zsnap.toml:3:30
          |
        3 | keep_rules = [{ calendar = { dayly = 7 } }]
          |                              ^^^^^
        error: `policies.p.keep_rules[1]` must be a table, found the string "last 3"
         --> zsnap.toml:3:15
          |
        3 | keep_rules = ["last 3"]
          |               ^^^^^^^^
        "##);
    insta::assert_snapshot!(err("[policies.p]\nkeep_rules = { last_n = 3 }\n[[datasets]]\nroot = \"tank\"\npolicy = \"p\"\n"), @r#"
        error: `policies.p.keep_rules` must be an array of tables, such as [{ grid = "24x1h | 14x1d", regex = "^zrepl_" }, { last_n = 10 }], found a table
         --> zsnap.toml:2:14
          |
        2 | keep_rules = { last_n = 3 }
          |              ^^^^^^^^^^^^^^
        "#);
}

/// A policy whose `daily` label is taken as `timing` (TOML), with a dataset.
fn timed(timing: &str) -> String {
    format!(
        "[policies.p]\nsnapshot = {{ daily = {timing} }}\nkeep_last = 3\n\n[[datasets]]\nroot = \"tank\"\npolicy = \"p\"\n"
    )
}

#[test]
fn times_of_period() {
    insta::assert_snapshot!(err(&timed(r#"{ every = "daily", at = "24:00" }"#)), @r#"
        error: invalid `policies.p.snapshot.daily.at`: hour 24 is out of range; expected 0 to 23
         --> zsnap.toml:2:47
          |
        2 | snapshot = { daily = { every = "daily", at = "24:00" } }
          |                                               ^^
        "#);
    insta::assert_snapshot!(err(&timed(r#"{ every = "daily", at = "23:60" }"#)), @r#"
        error: invalid `policies.p.snapshot.daily.at`: minute 60 is out of range; expected 0 to 59
         --> zsnap.toml:2:50
          |
        2 | snapshot = { daily = { every = "daily", at = "23:60" } }
          |                                                  ^^
        "#);
    insta::assert_snapshot!(err(&timed(r#"{ every = "daily", at = "11pm" }"#)), @r#"
        error: invalid `policies.p.snapshot.daily.at`: "11pm" is not a time of day; expected "HH:MM" on a 24-hour clock, such as "23:59"
         --> zsnap.toml:2:46
          |
        2 | snapshot = { daily = { every = "daily", at = "11pm" } }
          |                                              ^^^^^^
        "#);
    insta::assert_snapshot!(err(&timed(r#"{ every = "hourly", minute = 60 }"#)), @r#"
        error: invalid `policies.p.snapshot.daily.minute`: minute 60 is out of range; expected 0 to 59
         --> zsnap.toml:2:51
          |
        2 | snapshot = { daily = { every = "hourly", minute = 60 } }
          |                                                   ^^
        "#);
    insta::assert_snapshot!(err(&timed(r#"{ every = "monthly", day = 0 }"#)), @r#"
        error: invalid `policies.p.snapshot.daily.day`: day 0 is out of range; expected 1 to 31
         --> zsnap.toml:2:49
          |
        2 | snapshot = { daily = { every = "monthly", day = 0 } }
          |                                                 ^
        "#);
    insta::assert_snapshot!(err(&timed(r#"{ every = "monthly", day = 32 }"#)), @r#"
        error: invalid `policies.p.snapshot.daily.day`: day 32 is out of range; expected 1 to 31
         --> zsnap.toml:2:49
          |
        2 | snapshot = { daily = { every = "monthly", day = 32 } }
          |                                                 ^^
        "#);
    insta::assert_snapshot!(err(&timed(r#"{ every = "yearly", month = 13, day = 1 }"#)), @r#"
        error: invalid `policies.p.snapshot.daily.month`: month 13 is out of range; expected 1 to 12
         --> zsnap.toml:2:50
          |
        2 | snapshot = { daily = { every = "yearly", month = 13, day = 1 } }
          |                                                  ^^
        "#);
    insta::assert_snapshot!(err(&timed(r#"{ every = "weekly", on = "sundy" }"#)), @r#"
        error: unknown weekday `sundy` in `policies.p.snapshot.daily.on`; did you mean `sunday`?
         --> zsnap.toml:2:47
          |
        2 | snapshot = { daily = { every = "weekly", on = "sundy" } }
          |                                               ^^^^^^^
        "#);
    insta::assert_snapshot!(err(&timed(r#"{ every = "daily", on = "sunday" }"#)), @r#"
        error: invalid `policies.p.snapshot.daily.on`: `on` does not apply to a daily label, which takes `at`
         --> zsnap.toml:2:41
          |
        2 | snapshot = { daily = { every = "daily", on = "sunday" } }
          |                                         ^^
        "#);
    insta::assert_snapshot!(err(&timed(r#"{ every = "15m", at = "00:05" }"#)), @r#"
        error: invalid `policies.p.snapshot.daily.at`: `at` does not apply to a label taken every 15m, which takes none: it runs on fixed spans of absolute time
         --> zsnap.toml:2:39
          |
        2 | snapshot = { daily = { every = "15m", at = "00:05" } }
          |                                       ^^
        "#);
    insta::assert_snapshot!(err(&timed(r#"{ every = "daily", time = "23:59" }"#)), @r#"
        error: unknown key `time` in `policies.p.snapshot.daily`; expected `every`, `at`, `minute`, `on`, `day` or `month`
         --> zsnap.toml:2:41
          |
        2 | snapshot = { daily = { every = "daily", time = "23:59" } }
          |                                         ^^^^
        "#);
    insta::assert_snapshot!(err(&timed(r#"{ at = "23:59" }"#)), @r#"
        error: missing key `every` in `policies.p.snapshot.daily`: the period, e.g. { every = "daily", at = "23:59" }
         --> zsnap.toml:2:22
          |
        2 | snapshot = { daily = { at = "23:59" } }
          |                      ^^^^^^^^^^^^^^^^
        "#);
    insta::assert_snapshot!(err(&timed(r#"{ every = "dayly", at = "23:59" }"#)), @r#"
        error: invalid `policies.p.snapshot.daily.every`: "dayly" is not a period; expected a duration such as "15m" or "4h", or one of "hourly", "daily", "weekly", "monthly", "yearly"; did you mean "daily"?
         --> zsnap.toml:2:32
          |
        2 | snapshot = { daily = { every = "dayly", at = "23:59" } }
          |                                ^^^^^^^
        "#);
    insta::assert_snapshot!(err(&timed("7")), @r#"
        error: `policies.p.snapshot.daily` must be a period such as "hourly" or "15m", or a table such as { every = "daily", at = "23:59" }, found the integer 7
         --> zsnap.toml:2:22
          |
        2 | snapshot = { daily = 7 }
          |                      ^
        "#);
}

/// A policy adopting `entry` (TOML), with a dataset.
fn adopting(entry: &str) -> String {
    format!(
        "[policies.p]\nadopt = [\"sanoid\", {entry}]\nkeep_last = 3\n\n[[datasets]]\nroot = \"tank\"\npolicy = \"p\"\n"
    )
}

#[test]
fn adopted_formats() {
    insta::assert_snapshot!(err(&adopting(r#"{ prefix = "auto-", format = "%Y-%m-%d" }"#)), @r#"
        error: invalid `policies.p.adopt[2].format`: "%Y-%m-%d": it does not write the time of day: give hours and minutes, e.g. "%Y-%m-%d-%H%M"
         --> zsnap.toml:2:49
          |
        2 | adopt = ["sanoid", { prefix = "auto-", format = "%Y-%m-%d" }]
          |                                                 ^^^^^^^^^^
        "#);
    insta::assert_snapshot!(err(&adopting(r#"{ prefix = "auto-", format = "%Y/%m/%d-%H%M" }"#)), @r#"
        error: invalid `policies.p.adopt[2].format`: "%Y/%m/%d-%H%M": it writes '/', which ZFS does not allow in a snapshot name
         --> zsnap.toml:2:49
          |
        2 | adopt = ["sanoid", { prefix = "auto-", format = "%Y/%m/%d-%H%M" }]
          |                                                 ^^^^^^^^^^^^^^^
        "#);
    insta::assert_snapshot!(err(&adopting(r#"{ prefix = "auto/", format = "%Y%m%d%H%M" }"#)), @r#"
        error: invalid `policies.p.adopt[2].prefix`: the prefix "auto/" has '/', which ZFS does not allow in a snapshot name
         --> zsnap.toml:2:31
          |
        2 | adopt = ["sanoid", { prefix = "auto/", format = "%Y%m%d%H%M" }]
          |                               ^^^^^^^
        "#);
    insta::assert_snapshot!(err(&adopting(r#"{ prefix = "auto-", format = "{label}%Y%m%d%H%M", label = "daily" }"#)), @r#"
        error: invalid `policies.p.adopt[2].label`: the format "{label}%Y%m%d%H%M" holds {label}, so a fixed label cannot be given too
         --> zsnap.toml:2:78
          |
        2 | adopt = ["sanoid", { prefix = "auto-", format = "{label}%Y%m%d%H%M", label = "daily" }]
          |                                                                              ^^^^^^^
        "#);
    insta::assert_snapshot!(err(&adopting(r#"{ prefix = "auto-", fromat = "%Y%m%d%H%M" }"#)), @r#"
        error: unknown key `fromat` in `policies.p.adopt[2]`; did you mean `format`?
         --> zsnap.toml:2:40
          |
        2 | adopt = ["sanoid", { prefix = "auto-", fromat = "%Y%m%d%H%M" }]
          |                                        ^^^^^^
        "#);
    insta::assert_snapshot!(err(&adopting(r#"{ prefix = "auto-" }"#)), @r#"
        error: missing key `format` in `policies.p.adopt[2]`: the strftime format of the names after the prefix, e.g. format = "%Y-%m-%d-%H%M" (with {label} where a label is)
         --> zsnap.toml:2:20
          |
        2 | adopt = ["sanoid", { prefix = "auto-" }]
          |                    ^^^^^^^^^^^^^^^^^^^^
        "#);
    insta::assert_snapshot!(err(&adopting(r#"{ format = "%Y%m%d%H%M", timezone = "Europe/Berln" }"#)), @r#"
        error: unknown time zone `Europe/Berln` in `policies.p.adopt[2].timezone`; did you mean `Europe/Berlin`?
         --> zsnap.toml:2:56
          |
        2 | adopt = ["sanoid", { format = "%Y%m%d%H%M", timezone = "Europe/Berln" }]
          |                                                        ^^^^^^^^^^^^^^
        "#);
    insta::assert_snapshot!(err(&adopting(r#"{ format = "%Y%m%d%H%M", label = "Daily" }"#)), @r#"
        error: invalid `policies.p.adopt[2].label`: invalid label "Daily": character 'D' is not allowed (at byte 0); labels use a-z, 0-9 and '-'
         --> zsnap.toml:2:53
          |
        2 | adopt = ["sanoid", { format = "%Y%m%d%H%M", label = "Daily" }]
          |                                                     ^^^^^^^
        "#);
    insta::assert_snapshot!(err(&adopting("7")), @r#"
        error: `policies.p.adopt[2]` must be a tool name such as "sanoid", or a table such as { prefix = "auto-", format = "%Y-%m-%d-%H%M" }, found the integer 7
         --> zsnap.toml:2:20
          |
        2 | adopt = ["sanoid", 7]
          |                    ^
        "#);
}
