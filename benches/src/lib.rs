//! Generators of realistic, deterministic inputs for the benchmarks: `zfs list` output
//! and inventories of many datasets with many snapshots each.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::fmt::Write as _;

/// A small deterministic generator (xorshift64*), so every run benches the same input.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed` (any value but 0 is fine; 0 is replaced).
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    /// The next pseudo-random value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// The name of the `i`-th generated dataset: a mix of home directories (some with a
/// space), virtual machine disks and service datasets, three to four levels deep.
pub fn dataset_name(i: usize) -> String {
    match i % 4 {
        0 => format!("tank/home/user{i:05}"),
        1 => format!("tank/home/shared {i:05}/documents"),
        2 => format!("tank/vm/guest-{i:05}/disk0"),
        _ => format!("tank/srv/postgres/db{i:05}"),
    }
}

/// The parent dataset [`dataset_name`] needs listed for the `i`-th dataset besides the
/// fixed ones of [`PARENTS`], if any.
fn own_parent(i: usize) -> Option<String> {
    match i % 4 {
        1 => Some(format!("tank/home/shared {i:05}")),
        2 => Some(format!("tank/vm/guest-{i:05}")),
        _ => None,
    }
}

/// The datasets above every generated one.
pub const PARENTS: [&str; 5] = [
    "tank",
    "tank/home",
    "tank/srv",
    "tank/srv/postgres",
    "tank/vm",
];

/// `zfs list -H -p` output (the columns of `zsnap_core::LIST_COLUMNS`) for `datasets`
/// datasets with `snapshots` hourly zsnap snapshots each, listed as zfs lists them (each
/// dataset, then its snapshots in createtxg order). Returns the text and its number of
/// rows. Their parents are not listed: see [`list_text_with_parents`].
///
/// The snapshots of all datasets are taken together once an hour, so they share a
/// createtxg and a creation second per hour, as with one atomic `zfs snapshot` call.
pub fn list_text(datasets: usize, snapshots: usize) -> (String, usize) {
    generate(datasets, snapshots, false)
}

/// Like [`list_text`], with the parents of the datasets listed too (without snapshots):
/// [`PARENTS`] and one per shared directory and per guest, as `zfs list -r tank` would.
pub fn list_text_with_parents(datasets: usize, snapshots: usize) -> (String, usize) {
    generate(datasets, snapshots, true)
}

fn generate(datasets: usize, snapshots: usize, parents: bool) -> (String, usize) {
    let mut rng = Rng::new(0x5eed);
    let mut out = String::with_capacity(datasets * (snapshots + 1) * 120);
    let start: i64 = 1_795_446_000; // 2026-11-23T15:00:00Z
    let mut rows = 0;
    let parent_row = |out: &mut String, rng: &mut Rng, name: &str, txg: usize| {
        writeln!(
            out,
            "{name}\tfilesystem\t{}\t{txg}\t{}\t-\t-\t-\toff\t-\t-\t/{name}\t{}\t-\t-",
            rng.next_u64(),
            start - 2 * 86_400,
            rng.next_u64() % (1 << 44),
        )
        .expect("writing to a String cannot fail");
    };
    if parents {
        for (i, p) in PARENTS.iter().enumerate() {
            parent_row(&mut out, &mut rng, p, 1 + i);
            rows += 1;
        }
    }
    for d in 0..datasets {
        if let Some(p) = own_parent(d).filter(|_| parents) {
            parent_row(&mut out, &mut rng, &p, 50 + d);
            rows += 1;
        }
        let name = dataset_name(d);
        let (kind, mountpoint) = if d % 4 == 2 {
            ("volume", "-".to_owned())
        } else {
            ("filesystem", format!("/{name}"))
        };
        let used = rng.next_u64() % (1 << 40);
        writeln!(
            out,
            "{name}\t{kind}\t{}\t{}\t{}\t-\t-\t-\toff\t-\t-\t{mountpoint}\t{used}\t-\t-",
            rng.next_u64(),
            100 + d,
            start - 86_400,
        )
        .expect("writing to a String cannot fail");
        for s in 0..snapshots {
            let t = start + 3600 * s as i64;
            let stamp = chrono::DateTime::from_timestamp(t, 0)
                .expect("generated times are in range")
                .format("%Y%m%dT%H%M%SZ");
            let used = rng.next_u64() % (1 << 30);
            let userrefs = u64::from(s % 97 == 0);
            writeln!(
                out,
                "{name}@zsnap_hourly_{stamp}\tsnapshot\t{}\t{}\t{t}\t{userrefs}\t\t-\toff\t-\t-\t-\t{used}\tyes\t-",
                rng.next_u64(),
                100_000 + s,
            )
            .expect("writing to a String cannot fail");
        }
    }
    (out, rows + datasets * (snapshots + 1))
}

/// A config of `datasets` `[[datasets]]` entries (`tank/dN`, every tenth recursive with
/// an exclusion), one policy, one target and one backup: the input of `config check` at
/// the scale of a large host.
pub fn config_text(datasets: usize) -> String {
    let mut text = String::with_capacity(datasets * 64 + 512);
    text.push_str(
        "[policies.standard]\nsnapshot = { hourly = \"hourly\", daily = \"daily\" }\nkeep_counts = { hourly = 24, daily = 7 }\n\n[policies.archive]\nkeep = { daily = 30, weekly = 12 }\n\n",
    );
    for i in 0..datasets {
        if i % 10 == 0 {
            text.push_str(&format!(
                "[[datasets]]\nroot = \"tank/d{i}\"\nrecursive = true\nexclude = [\"tank/d{i}/tmp\"]\npolicy = \"standard\"\n\n"
            ));
        } else {
            text.push_str(&format!(
                "[[datasets]]\nroot = \"tank/d{i}\"\npolicy = \"standard\"\n\n"
            ));
        }
    }
    text.push_str(
        "[targets.nas]\nsource = \"tank/d0\"\nto = \"backup/d0\"\npolicy = \"archive\"\n\n",
    );
    text.push_str(
        "[backups.usb]\nsource = \"tank/d0\"\nto = \"dir:/mnt/usb/zsnap\"\npolicy = \"archive\"\n",
    );
    text
}
