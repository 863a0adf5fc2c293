//! `zsnap check`'s pool health and capacity, computed on fake pools: the levels of each
//! state, the thresholds, pools that are gone, and locations that cannot be asked.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use zsnap_core::config::Config;
use zsnap_core::zpool::Health;
use zsnap_core::Location;
use zsnap_exec::fake::{FakeZfs, Fault, FaultEffect, FaultOp};
use zsnap_exec::job::{Engine, Job, Source};
use zsnap_exec::status::{check, pool_status, status, CheckReport, Level};
use zsnap_exec::{NoObserver, OneBackend, ZfsBackend};

const BASE: &str = r#"
[policies.p]
snapshot = { hourly = "hourly" }
keep_last = 3

[[datasets]]
root = "tank/home"
policy = "p"

[[datasets]]
root = "tank/vm"
policy = "p"

[targets.backup]
source = "tank/home"
to = "backup/home"
policy = "p"
"#;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap()
}

fn config(check: &str) -> Config {
    Config::from_toml(&format!("{BASE}{check}"), "c.toml").unwrap()
}

/// Snapshots taken (so freshness is fine), then the check of the pools as `setup`
/// leaves them.
fn report(config: &Config, setup: impl FnOnce(&mut FakeZfs)) -> CheckReport {
    let engine = Engine::new(config);
    let mut z = FakeZfs::for_config(config, 7, t0()).unwrap();
    let mut observer = NoObserver;
    let mut reporters = zsnap_exec::job::Reporters::new(&mut observer);
    let outcome = engine
        .run(
            &Job::Run,
            t0(),
            false,
            Source::Backends(&mut OneBackend(&mut z)),
            &mut reporters,
        )
        .unwrap();
    assert!(!outcome.failed());
    setup(&mut z);
    let listing = engine
        .list_each(&mut Source::Backends(&mut OneBackend(&mut z)))
        .unwrap();
    let mut st = status(&engine, &listing, t0()).unwrap();
    let calls = z.calls(FaultOp::Zpool);
    st.pools = pool_status(&engine, &mut OneBackend(&mut z));
    // One `zpool list` and one `zpool status` for the location, not one per dataset.
    let asked = z.calls(FaultOp::Zpool) - calls;
    assert!(asked <= 2, "{asked} zpool calls");
    check(&engine, &st, Ok(&BTreeMap::new()))
}

fn messages(r: &CheckReport) -> Vec<(Level, String)> {
    r.findings
        .iter()
        .map(|f| (f.level, f.message.clone()))
        .collect()
}

#[test]
fn healthy_pools_are_ok_and_counted() {
    let r = report(&config(""), |_| {});
    assert_eq!(messages(&r), []);
    assert_eq!(r.level(), Level::Ok);
    let pools: Vec<(&str, Level, Option<&str>)> = r
        .pools
        .iter()
        .map(|p| (p.pool.as_str(), p.level, p.health.as_deref()))
        .collect();
    assert_eq!(
        pools,
        [
            ("tank", Level::Ok, Some("ONLINE")),
            ("backup", Level::Ok, Some("ONLINE"))
        ]
    );
    assert!(
        r.summary().ends_with(", 2 pools healthy"),
        "{}",
        r.summary()
    );
}

#[test]
fn states_as_sanoid_judges_them() {
    for (health, level) in [
        (Health::Degraded, Level::Warning),
        (Health::Faulted, Level::Critical),
        (Health::Unavail, Level::Critical),
        (Health::Suspended, Level::Critical),
        (Health::Other("WEIRD".to_owned()), Level::Critical),
    ] {
        let r = report(&config(""), |z| {
            z.set_pool_health("tank", health.clone(), None).unwrap();
        });
        assert_eq!(r.level(), level, "{health}: {:?}", messages(&r));
        assert_eq!(
            messages(&r)[0],
            (level, format!("pool tank is {health}: fake0 {health}"))
        );
        let tank = r.pools.iter().find(|p| p.pool == "tank").unwrap();
        assert_eq!(tank.level, level);
    }
}

#[test]
fn capacity_thresholds() {
    let gib = 1u64 << 30;
    let at = |pct: u64, check: &str| {
        report(&config(check), |z| {
            z.set_pool_health("tank", Health::Online, Some((100 * gib, pct * gib)))
                .unwrap();
        })
    };
    assert_eq!(at(79, "").level(), Level::Ok);
    assert_eq!(
        messages(&at(80, "")),
        [(
            Level::Warning,
            "pool tank is 80% full (warn 80%)".to_owned()
        )]
    );
    assert_eq!(
        messages(&at(95, "")),
        [(
            Level::Critical,
            "pool tank is 95% full (crit 95%)".to_owned()
        )]
    );
    let custom = "[check]\npool_capacity = { warn = 50, crit = 60 }\n";
    assert_eq!(at(55, custom).level(), Level::Warning);
    assert_eq!(
        at(99, "[check]\npool_capacity = false\n").level(),
        Level::Ok
    );
    assert_eq!(at(55, custom).pools[0].capacity, Some(55));
}

#[test]
fn device_and_data_errors() {
    let r = report(&config(""), |z| z.set_pool_errors("tank", 145, 0).unwrap());
    assert_eq!(
        messages(&r),
        [(
            Level::Warning,
            "pool tank has device errors: fake0 (0 read, 0 write, 145 checksum) (zpool clear once resolved)".to_owned()
        )]
    );
    let r = report(&config(""), |z| z.set_pool_errors("tank", 81, 21).unwrap());
    assert_eq!(r.level(), Level::Critical);
    assert!(messages(&r).contains(&(
        Level::Critical,
        "pool tank has 21 permanent data errors (zpool status -v tank lists them)".to_owned()
    )));
}

#[test]
fn health_checks_off() {
    let r = report(&config("[check]\npool_health = false\n"), |z| {
        z.set_pool_health("tank", Health::Faulted, None).unwrap()
    });
    assert_eq!(r.level(), Level::Ok);
    let r = report(
        &config("[check]\npool_health = false\npool_capacity = false\n"),
        |_| {},
    );
    assert!(r.pools.is_empty());
}

#[test]
fn unreachable_locations_leave_pools_unknown() {
    let r = report(&config(""), |z| {
        z.inject(Fault::on_call(
            FaultOp::Zpool,
            z.calls(FaultOp::Zpool) + 1,
            FaultEffect::SshDropped,
        ));
    });
    assert_eq!(r.level(), Level::Unknown);
    assert_eq!(r.exit_code(), 3);
    let (level, msg) = &messages(&r)[0];
    assert_eq!(*level, Level::Unknown);
    assert!(
        msg.starts_with("pools tank, backup: health unknown: run zpool list"),
        "{msg}"
    );
    assert!(r.pools.iter().all(|p| p.level == Level::Unknown));
}

#[test]
fn a_remote_location_without_answer_is_unknown_and_a_missing_pool_critical() {
    let config = Config::from_toml(
        &format!("{BASE}\n[targets.far]\nsource = \"tank/vm\"\nto = \"ssh://nas.example/vault/vm\"\npolicy = \"p\"\n"),
        "c.toml",
    )
    .unwrap();
    let engine = Engine::new(&config);
    let mut local = FakeZfs::for_config(&config, 7, t0()).unwrap();
    let mut far = FakeZfs::new(8, t0());
    far.add_pool("vault").unwrap();
    far.inject(Fault::on_call(FaultOp::Zpool, 1, FaultEffect::SshDropped));
    let mut backends: BTreeMap<Location, &mut dyn ZfsBackend> = BTreeMap::new();
    backends.insert(Location::local(), &mut local);
    backends.insert(Location("nas.example".to_owned()), &mut far);
    let pools = pool_status(&engine, &mut backends);
    assert_eq!(pools.len(), 2);
    let listing = {
        let mut one = OneBackend(&mut local);
        engine.list_each(&mut Source::Backends(&mut one)).unwrap()
    };
    let mut st = status(&engine, &listing, t0()).unwrap();
    st.pools = pools;
    let r = check(&engine, &st, Ok(&BTreeMap::new()));
    let far = r
        .pools
        .iter()
        .find(|p| p.pool == "vault")
        .expect("reported");
    assert_eq!((far.level, far.health.as_deref()), (Level::Unknown, None));
    assert!(messages(&r).iter().any(|(l, m)| *l == Level::Unknown
        && m.starts_with("pool vault at nas.example: health unknown: ")));

    // The remote pool answers, but the pool is gone.
    let mut far = FakeZfs::new(8, t0());
    far.add_pool("other").unwrap();
    let mut backends: BTreeMap<Location, &mut dyn ZfsBackend> = BTreeMap::new();
    backends.insert(Location::local(), &mut local);
    backends.insert(Location("nas.example".to_owned()), &mut far);
    st.pools = pool_status(&engine, &mut backends);
    let r = check(&engine, &st, Ok(&BTreeMap::new()));
    assert!(messages(&r).contains(&(
        Level::Critical,
        "pool vault at nas.example is not imported".to_owned()
    )));
}
