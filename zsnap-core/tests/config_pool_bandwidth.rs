//! `[check]`'s pool checks, `[paths]`' `zpool` programs and `[targets.NAME]`'s
//! `bandwidth`: defaults, round trips through `to_toml`, and the error messages.

use zsnap_core::config::{Bandwidth, CapacityThresholds, Config};

const BASE: &str = r#"
[policies.p]
snapshot = { hourly = "hourly" }
keep_last = 3

[[datasets]]
root = "tank/home"
policy = "p"
"#;

fn parse(rest: &str) -> Config {
    let c = Config::from_toml(&format!("{BASE}{rest}"), "zsnap.toml").expect("valid");
    let again = Config::from_toml(&c.to_toml(), "effective.toml").expect("to_toml parses");
    assert_eq!(again, c, "round trip of:\n{}", c.to_toml());
    c
}

fn err(rest: &str) -> String {
    match Config::from_toml(&format!("{BASE}{rest}"), "zsnap.toml") {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn pool_checks_are_on_by_default_with_sanoids_thresholds() {
    let c = parse("");
    assert!(c.check.pool_health);
    assert_eq!(c.check.pool_capacity, Some(CapacityThresholds::new(80, 95)));
    assert!(c.check.is_empty());
    assert!(!c.to_toml().contains("[check]"));
    assert_eq!(c.paths.zpool, "/usr/sbin/zpool");
    assert_eq!(c.paths.remote_zpool, "/usr/sbin/zpool");
}

#[test]
fn pool_checks_set_and_turned_off() {
    let c = parse("[check]\npool_capacity = { warn = 70, crit = 90 }\npool_health = false\n");
    assert!(!c.check.pool_health);
    assert_eq!(c.check.pool_capacity, Some(CapacityThresholds::new(70, 90)));
    let c = parse("[check]\npool_capacity = false\n");
    assert_eq!(c.check.pool_capacity, None);
    assert!(
        c.to_toml().contains("pool_capacity = false"),
        "{}",
        c.to_toml()
    );
    assert_eq!(
        parse("[check]\npool_capacity = true\n").check.pool_capacity,
        Some(CapacityThresholds::default())
    );
    let c = parse("[paths]\nzpool = \"/sbin/zpool\"\nremote_zpool = \"/usr/local/sbin/zpool\"\n");
    assert_eq!(
        (c.paths.zpool.as_str(), c.paths.remote_zpool.as_str()),
        ("/sbin/zpool", "/usr/local/sbin/zpool")
    );
}

#[test]
fn pool_check_errors() {
    assert_eq!(
        err("[check]\npool_capacity = { warn = 96, crit = 95 }\n"),
        "zsnap.toml:10:17: `check.pool_capacity`: warn (96%) must not be above crit (95%)"
    );
    assert_eq!(
        err("[check]\npool_capacity = { warn = 80, crit = 101 }\n"),
        "zsnap.toml:10:37: invalid `check.pool_capacity.crit`: 101 is not a percentage; expected a whole number from 0 to 100"
    );
    assert!(err("[check]\npool_capacity = { warn = 80 }\n").contains("`crit`"));
    assert!(err("[check]\npool_capacity = \"80%\"\n").contains("`false`"));
    assert!(err("[check]\npool_health = \"yes\"\n").contains("`true` or `false`"));
    assert!(err("[paths]\nzpool = \"zpool\"\n").contains("\"/usr/sbin/zpool\""));
}

const TARGET: &str = "[policies.keep]\nkeep_last = 10\n\n[targets.nas]\nsource = \"tank/home\"\nto = \"backup/home\"\npolicy = \"keep\"\n";

#[test]
fn target_bandwidth() {
    let c = parse(TARGET);
    assert_eq!(c.targets["nas"].bandwidth, None);
    for (text, bytes, printed) in [
        ("10MiB/s", 10 << 20, "10MiB/s"),
        ("10M", 10 << 20, "10MiB/s"),
        ("10m", 10 << 20, "10MiB/s"),
        ("500KiB/s", 500 << 10, "500KiB/s"),
        ("1G/s", 1 << 30, "1GiB/s"),
        ("1536K", 1536 << 10, "1536KiB/s"),
        ("1000", 1000, "1000B/s"),
        ("100B/s", 100, "100B/s"),
        ("2TiB", 2 << 40, "2TiB/s"),
    ] {
        let c = parse(&format!("{TARGET}bandwidth = \"{text}\"\n"));
        let b = c.targets["nas"].bandwidth.expect("set");
        assert_eq!(b.bytes_per_second(), bytes, "{text}");
        assert_eq!(b.to_string(), printed);
        assert_eq!(printed.parse::<Bandwidth>(), Ok(b));
        assert!(c.to_toml().contains(&format!("bandwidth = \"{printed}\"")));
    }
}

#[test]
fn target_bandwidth_errors() {
    assert_eq!(
        err(&format!("{TARGET}bandwidth = \"10MB/s\"\n")),
        "zsnap.toml:16:13: invalid `targets.nas.bandwidth`: \"10MB/s\" is not a bandwidth: unknown unit \"MB\"; zsnap reads binary bytes per second: B, K or KiB (1024), M or MiB, G or GiB, T or TiB, as in \"10MiB/s\" (SI units and bits are not accepted)"
    );
    for bad in [
        "0",
        "0MiB/s",
        "1.5M",
        "fast",
        "-1M",
        "10 MiB/s",
        "99999999999T",
        "",
    ] {
        let e = err(&format!("{TARGET}bandwidth = \"{bad}\"\n"));
        assert!(e.contains("is not a bandwidth"), "{bad}: {e}");
    }
    assert!(err(&format!("{TARGET}bandwidth = 1000\n")).contains("a string"));
}

#[test]
fn bandwidth_display_parses_back() {
    for n in [1u64, 1023, 1024, 1025, 3 << 20, (5 << 30) + 1024, u64::MAX] {
        let b = Bandwidth::new(n).expect("not zero");
        assert_eq!(b.to_string().parse::<Bandwidth>(), Ok(b), "{n}");
    }
    assert_eq!(Bandwidth::new(0), None);
}
