//! The testbed guest (real OpenZFS in a QEMU guest, reached over ssh) and the scenarios
//! run in it.
//!
//! The freshly built `zsnap` is copied into the guest once per test process, under a
//! name derived from its content (`/tmp/zsnap-e2e-<hash>`; copies older than half an
//! hour are removed), and every scenario runs it
//! there against the guest's pools `src` and `dst` (`--backend local`), or on this
//! machine against the guest over ssh. Each scenario owns `src/e2e-<name>-<random>`,
//! `dst/e2e-<name>-<random>` and `/tmp/e2e-<name>-<random>` in the guest (its config,
//! lock, journal and audit log), and removes them when dropped, so scenarios of several
//! test processes can share the guest.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::hash::BuildHasher;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use serde_json::Value;
use zsnap_core::{list_argv, parse_list, DatasetName, Inventory, Plan};
use zsnap_exec::quote::quote;

use super::compare;

/// The guest, as the testbed's environment describes it.
#[derive(Debug)]
pub struct Guest {
    /// `ZSNAP_TESTBED_SSH_CONFIG`.
    pub ssh_config: PathBuf,
    /// `ZSNAP_TESTBED_HOST`: the host alias in that config.
    pub host: String,
    /// Where the `zsnap` under test lives in the guest.
    pub zsnap: String,
}

static GUEST: OnceLock<Option<Guest>> = OnceLock::new();
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The guest with `zsnap` installed, or `None` (after saying why) when the testbed is
/// not set up. Under `CI=true` a missing testbed fails the test instead: CI always has
/// one, and a real-ZFS test must never pass there by skipping.
pub fn guest(test: &str) -> Option<&'static Guest> {
    let g = GUEST.get_or_init(Guest::connect).as_ref();
    if g.is_none() {
        super::skip::skipped(
            test,
            "ZSNAP_TESTBED_SSH_CONFIG is not set. To run the end-to-end scenarios on real \
             OpenZFS: `. \"$(testbed/up.sh)\"` (as root, from the repository root), then \
             `cargo test -p zsnap-cli --test e2e_real`",
        );
    }
    g
}

impl Guest {
    fn connect() -> Option<Guest> {
        let (Some(config), Ok(host)) = (
            std::env::var_os("ZSNAP_TESTBED_SSH_CONFIG"),
            std::env::var("ZSNAP_TESTBED_HOST"),
        ) else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but ZSNAP_TESTBED_SSH_CONFIG/ZSNAP_TESTBED_HOST are not set: the \
                 real-OpenZFS testbed did not start, and these scenarios must not be skipped in CI"
            );
            return None;
        };
        let mut g = Guest {
            ssh_config: PathBuf::from(config),
            host,
            zsnap: String::new(),
        };
        g.zsnap = g.install();
        Some(g)
    }

    /// Copies the `zsnap` under test into the guest (stripped, which makes it ~10 times
    /// smaller) unless a copy with the same content is already there.
    fn install(&self) -> String {
        let started = Instant::now();
        let bin = Path::new(env!("CARGO_BIN_EXE_zsnap"));
        let dir = tempfile::tempdir().expect("a temporary directory");
        let stripped = dir.path().join("zsnap");
        let bytes = match Command::new("strip")
            .arg("-o")
            .arg(&stripped)
            .arg(bin)
            .status()
        {
            Ok(s) if s.success() => std::fs::read(&stripped),
            _ => std::fs::read(bin),
        }
        .unwrap_or_else(|e| panic!("read {}: {e}", bin.display()));
        let path = format!("/tmp/zsnap-e2e-{:016x}", fnv1a(&bytes));
        let p = quote(&path);
        // Copies of older builds go after half an hour (a suite takes minutes); a reused
        // copy is touched so that no other test process removes it meanwhile.
        let reuse = format!(
            "find /tmp -maxdepth 1 -name 'zsnap-e2e-*' -mmin +30 -exec rm -f {{}} + ; \
             test -x {p} && touch {p}"
        );
        if self.sh(&reuse).status.success() {
            return path;
        }
        self.ok_in(
            &format!("cat > {p}.$$ && chmod +x {p}.$$ && mv -f {p}.$$ {p}"),
            &bytes,
        );
        eprintln!(
            "copied zsnap ({} bytes) into the guest as {path} in {:.1} s",
            bytes.len(),
            started.elapsed().as_secs_f64()
        );
        path
    }

    /// `ssh` to the guest (the caller adds the script for its shell, busybox ash).
    ///
    /// One connection per command, not the testbed's shared one: the guest's dropbear
    /// (2022.83) sometimes closes a new session of a shared connection, without running
    /// it or sending an exit status (ssh exits 255, stderr empty), when another session
    /// of that connection ends at the same moment (mkj/dropbear#173); the scenarios run
    /// in parallel, and so do other users of the guest.
    pub fn ssh(&self) -> Command {
        let mut c = Command::new("ssh");
        c.arg("-F").arg(&self.ssh_config).args([
            "-o",
            "BatchMode=yes",
            "-o",
            "ControlMaster=no",
            "-o",
            "ControlPath=none",
            "--",
            &self.host,
        ]);
        c
    }

    /// Runs `script` in the guest with `input` on its stdin.
    pub fn sh_in(&self, script: &str, input: &[u8]) -> Output {
        // A remote shell ended by a signal makes ssh exit 255 with nothing on stderr;
        // say which signal, where it can be caught.
        let mut traps = String::new();
        for sig in ["HUP", "INT", "TERM", "PIPE"] {
            traps.push_str(&format!(
                "trap 'echo \"e2e: the remote shell got SIG{sig}\" >&2; exit 1' {sig}\n"
            ));
        }
        let mut child = self
            .ssh()
            .arg(format!("{traps}{script}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ssh starts");
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            // The script may not read all of it; that is its business.
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().expect("ssh runs");
        writer.join().expect("the stdin writer does not panic");
        out
    }

    /// Runs `script` in the guest.
    pub fn sh(&self, script: &str) -> Output {
        self.sh_in(script, &[])
    }

    /// Runs `script` in the guest with `input`, which must succeed; returns its stdout.
    pub fn ok_in(&self, script: &str, input: &[u8]) -> String {
        let out = self.sh_in(script, input);
        assert!(
            out.status.success(),
            "in the guest: {script}\nexited {:?}{}\nstdout:\n{}\nstderr:\n{}",
            out.status.code(),
            if out.status.code() == Some(255) {
                " (ssh: the connection failed, or the remote shell was killed by a signal)"
            } else {
                ""
            },
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `script` in the guest, which must succeed; returns its stdout.
    pub fn ok(&self, script: &str) -> String {
        self.ok_in(script, &[])
    }
}

/// FNV-1a: a content hash that needs no dependency.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A short random id.
fn unique() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let seed = (std::process::id(), n, std::time::SystemTime::now());
    let r = std::collections::hash_map::RandomState::new().hash_one(seed);
    format!("{:08x}", r & 0xffff_ffff)
}

/// Where `zsnap` runs.
enum Runner {
    /// In the guest, on its own pools.
    Guest,
    /// On this machine, against the guest over ssh (`--backend ssh://…`); the config
    /// and run files live in `dir`, and `path` puts an `ssh` wrapper first.
    Host {
        dir: tempfile::TempDir,
        path: OsString,
        backend: String,
    },
}

/// What one `zsnap` invocation did.
#[derive(Debug)]
pub struct Run {
    /// Exit status (`None`: killed by a signal).
    pub code: Option<i32>,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
}

impl Run {
    /// The stdout as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "zsnap's stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Panics unless it exited 0.
    pub fn assert_ok(&self, what: &str) {
        assert!(
            self.code == Some(0),
            "{what}: zsnap exited {:?}\nstdout:\n{}\nstderr:\n{}",
            self.code,
            self.stdout,
            self.stderr
        );
    }
}

/// One checked run: the listing before, the dry-run plan, the run, the listing after.
#[derive(Debug)]
pub struct Checked {
    /// `zfs list` of the scenario's roots before.
    pub before: Inventory,
    /// `zsnap plan JOB --json`, made just before the run.
    pub plan: Value,
    /// `zsnap JOB --json`.
    pub run: Run,
    /// `zfs list` after.
    pub after: Inventory,
}

/// One scenario's datasets, directory and config.
pub struct Scenario {
    /// The guest.
    pub guest: &'static Guest,
    /// `<name>-<random>`.
    pub id: String,
    /// `src/e2e-<id>` (created by [`Scenario::new`]).
    pub src: String,
    /// `dst/e2e-<id>` (created by [`Scenario::new`]; targets go below it).
    pub dst: String,
    /// `/tmp/e2e-<id>` in the guest.
    pub dir: String,
    runner: Runner,
    started: Instant,
}

impl Scenario {
    /// A scenario whose `zsnap` runs in the guest; `src_options` are `zfs create`
    /// options of its source root.
    pub fn new(guest: &'static Guest, name: &str, src_options: &str) -> Scenario {
        let id = format!("{name}-{}", unique());
        let s = Scenario {
            guest,
            src: format!("src/e2e-{id}"),
            dst: format!("dst/e2e-{id}"),
            dir: format!("/tmp/e2e-{id}"),
            id,
            runner: Runner::Guest,
            started: Instant::now(),
        };
        guest.ok(&format!(
            "mkdir -p {d} && zfs create {src_options} {s} && zfs create {t}",
            d = quote(&s.dir),
            s = quote(&s.src),
            t = quote(&s.dst)
        ));
        s
    }

    /// A scenario whose `zsnap` runs on this machine with `--backend ssh://…` to the
    /// guest; its config names the testbed's ssh client config (`[paths] ssh_config`),
    /// which holds the key, the port and the pinned host key.
    pub fn on_host(guest: &'static Guest, name: &str) -> Scenario {
        let mut s = Scenario::new(guest, name, "");
        let dir = tempfile::tempdir().expect("a temporary directory");
        s.runner = Runner::Host {
            dir,
            path: std::env::var_os("PATH").unwrap_or_default(),
            backend: format!("ssh://root@{}", guest.host),
        };
        s
    }

    /// Writes the scenario's `zsnap.toml` (paths for the lock, journal and audit log are
    /// added, relative to it).
    pub fn config(&self, body: &str) {
        let text = format!(
            "[paths]\naudit_log = \"audit.jsonl\"\njournal_dir = \"journal\"\nlock_file = \"zsnap.lock\"\n\n{body}"
        );
        match &self.runner {
            Runner::Guest => {
                self.guest.ok_in(
                    &format!("cat > {}/zsnap.toml", quote(&self.dir)),
                    text.as_bytes(),
                );
            }
            Runner::Host { dir, .. } => {
                let ssh = format!(
                    "ssh_config = {:?}\n",
                    self.guest.ssh_config.display().to_string()
                );
                let text = text.replacen("\n\n", &format!("\n{ssh}\n"), 1);
                std::fs::write(dir.path().join("zsnap.toml"), text).expect("write the config");
            }
        }
    }

    /// The shell words that run `zsnap` in the guest at `now` (from the scenario's
    /// directory; the caller appends the command).
    pub fn zsnap_words(&self, now: &str) -> String {
        format!(
            "{} --config zsnap.toml --backend local --now {}",
            quote(&self.guest.zsnap),
            quote(now)
        )
    }

    /// Runs `zsnap ARGS` at `now` (in the guest or here, as the scenario says).
    pub fn zsnap(&self, now: &str, args: &[&str]) -> Run {
        match &self.runner {
            Runner::Guest => {
                let words: Vec<String> = args.iter().map(|a| quote(a)).collect();
                let out = self.guest.sh(&format!(
                    "cd {} && {} {}",
                    quote(&self.dir),
                    self.zsnap_words(now),
                    words.join(" ")
                ));
                to_run(&out)
            }
            Runner::Host { dir, path, backend } => {
                let out = Command::new(env!("CARGO_BIN_EXE_zsnap"))
                    .current_dir(dir.path())
                    .env("PATH", path)
                    .args(["--config", "zsnap.toml", "--backend", backend, "--now", now])
                    .args(args)
                    .output()
                    .expect("zsnap starts");
                to_run(&out)
            }
        }
    }

    /// The roots listed: the source root and the target parent.
    fn roots(&self) -> Vec<DatasetName> {
        [&self.src, &self.dst]
            .iter()
            .map(|r| r.parse().expect("a valid dataset name"))
            .collect()
    }

    /// The `zfs list` zsnap itself runs, for the scenario's roots, as a shell command.
    pub fn list_command(&self) -> String {
        let words: Vec<String> = list_argv(&self.roots()).iter().map(|w| quote(w)).collect();
        format!("LC_ALL=C zfs {}", words.join(" "))
    }

    /// The current listing of the scenario's roots.
    pub fn list(&self) -> Inventory {
        parse(&self.guest.ok(&self.list_command()))
    }

    /// Runs `zsnap JOB --json` at `now` between two listings, with `zsnap plan JOB
    /// --json` just before it; for the guest, all in one ssh round trip.
    pub fn checked(&self, now: &str, job: &str) -> Checked {
        match &self.runner {
            Runner::Guest => {
                let z = self.zsnap_words(now);
                let l = self.list_command();
                let script = format!(
                    "cd {dir} || exit 99\n\
                     {l} > before.tsv 2> before.err; echo $? > before.rc\n\
                     {z} --json plan {job} > plan.json 2> plan.err; echo $? > plan.rc\n\
                     {z} --json {job} > run.json 2> run.err; echo $? > run.rc\n\
                     {l} > after.tsv 2> after.err; echo $? > after.rc\n\
                     for f in before.tsv before.err before.rc plan.json plan.err plan.rc run.json run.err run.rc after.tsv after.err after.rc; do\n\
                     printf '\\n@@e2e@@ %s\\n' $f; cat $f\n\
                     done",
                    dir = quote(&self.dir),
                );
                let out = self.guest.ok(&script);
                let parts = sections(&out);
                let part = |k: &str| -> &str {
                    parts
                        .get(k)
                        .map(String::as_str)
                        .unwrap_or_else(|| panic!("no section {k} in:\n{out}"))
                };
                for l in ["before", "after"] {
                    assert_eq!(
                        part(&format!("{l}.rc")).trim(),
                        "0",
                        "zfs list {l} the run failed: {}",
                        part(&format!("{l}.err"))
                    );
                }
                let plan = Run {
                    code: part("plan.rc").trim().parse().ok(),
                    stdout: part("plan.json").to_owned(),
                    stderr: part("plan.err").to_owned(),
                };
                Checked {
                    before: parse(part("before.tsv")),
                    plan: plan.json(),
                    run: Run {
                        code: part("run.rc").trim().parse().ok(),
                        stdout: part("run.json").to_owned(),
                        stderr: part("run.err").to_owned(),
                    },
                    after: parse(part("after.tsv")),
                }
            }
            Runner::Host { .. } => {
                let before = self.list();
                let plan = self.zsnap(now, &["--json", "plan", job]).json();
                let run = self.zsnap(now, &["--json", job]);
                let after = self.list();
                Checked {
                    before,
                    plan,
                    run,
                    after,
                }
            }
        }
    }

    /// [`Scenario::checked`], then asserts that the run exited `code`, did what the
    /// dry run showed (the same steps), and left exactly what the plan predicted.
    /// `fix` may complete the dry-run plans before they are simulated.
    pub fn checked_expect(
        &self,
        now: &str,
        job: &str,
        code: i32,
        fix: &dyn Fn(&mut Plan),
    ) -> Checked {
        let c = self.checked(now, job);
        let what = format!("{} at {now}: zsnap {job}", self.id);
        assert!(
            c.run.code == Some(code),
            "{what}: exited {:?}, expected {code}\nstdout:\n{}\nstderr:\n{}",
            c.run.code,
            c.run.stdout,
            c.run.stderr
        );
        assert_eq!(
            compare::step_reasons(&c.plan),
            compare::step_reasons(&c.run.json()),
            "{what}: the run did other steps than the dry run showed"
        );
        let predicted = compare::predict(&c.before, &c.plan, fix);
        compare::assert_same(&what, &c.before, &predicted, &c.after);
        c
    }

    /// [`Scenario::checked_expect`] for a run that must succeed, with the plans as
    /// zsnap printed them.
    pub fn checked_ok(&self, now: &str, job: &str) -> Checked {
        self.checked_expect(now, job, 0, &|_| {})
    }

    /// Writes `mib` MiB of random data to `file` in the mounted dataset `dataset`.
    pub fn write(&self, dataset: &str, file: &str, mib: u32) {
        self.guest.ok(&format!(
            "dd if=/dev/urandom of={} bs=1M count={mib} 2>/dev/null",
            quote(&format!("/{dataset}/{file}"))
        ));
    }

    /// `zfs get -H -o value PROP DATASET` in the guest.
    pub fn prop(&self, dataset: &str, prop: &str) -> String {
        self.guest
            .ok(&format!(
                "zfs get -H -o value {} {}",
                quote(prop),
                quote(dataset)
            ))
            .trim()
            .to_owned()
    }

    /// Says how long the scenario took.
    pub fn done(&self) {
        eprintln!(
            "scenario {} took {:.1} s",
            self.id,
            self.started.elapsed().as_secs_f64()
        );
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        // Holds and interrupted receives would block `destroy -r`.
        let mut script = String::new();
        for r in [&self.src, &self.dst] {
            let r = quote(r);
            script.push_str(&format!(
                "if zfs list -H -o name {r} > /dev/null 2>&1; then\n\
                 zfs list -H -o name,userrefs -t snapshot -r {r} | awk -F'\\t' '$2 > 0 {{ print $1 }}' | while IFS= read -r s; do\n\
                 zfs holds -H \"$s\" | cut -f2 | while IFS= read -r t; do zfs release -- \"$t\" \"$s\"; done\n\
                 done\n\
                 zfs list -H -o name,receive_resume_token -r {r} | awk -F'\\t' '$2 != \"-\" {{ print $1 }}' | while IFS= read -r d; do zfs recv -A \"$d\"; done\n\
                 zfs destroy -r {r} || echo \"could not destroy {r}\" >&2\n\
                 fi\n"
            ));
        }
        script.push_str(&format!(
            "rm -rf {} /root/k-{}",
            quote(&self.dir),
            quote(&self.id)
        ));
        let out = self.guest.sh(&script);
        if !out.status.success() || !out.stderr.is_empty() {
            eprintln!(
                "cleaning up {} in the guest: {}",
                self.id,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

fn to_run(out: &Output) -> Run {
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn parse(text: &str) -> Inventory {
    parse_list(text).unwrap_or_else(|e| panic!("zfs list output does not parse: {e}\n{text}"))
}

/// Splits `\n@@e2e@@ NAME\n` separated output into NAME → content.
fn sections(out: &str) -> BTreeMap<String, String> {
    out.split("\n@@e2e@@ ")
        .skip(1)
        .filter_map(|p| p.split_once('\n').or(Some((p, ""))))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}
