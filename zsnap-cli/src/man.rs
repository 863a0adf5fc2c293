//! Man pages: `zsnap(1)` and one page per subcommand (`zsnap-snapshot(1)`,
//! `zsnap-backups-list(1)`, …), so every page the SUBCOMMANDS section names exists.
//!
//! clap_mangen renders what clap knows (name, synopsis, description, options,
//! subcommands); each page then gets the sections clap does not know about: EXIT STATUS
//! (the table in [`crate::exit`]; `check` has the Nagios codes), FILES and
//! CONFIGURATION, and SEE ALSO.

use clap::Command;
use roff::{bold, roman, Roff};

/// One rendered man page.
#[derive(Debug, Clone)]
pub struct Page {
    /// The file name, e.g. `zsnap-backups-list.1`.
    pub file_name: String,
    /// The roff source.
    pub roff: String,
}

/// The command as the pages see it: built (so subcommands carry their `zsnap-…`
/// display names) and without clap's `help` subcommand, which has no page.
fn built() -> Command {
    let mut cmd = crate::args::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// `zsnap(1)` alone (what `zsnap man` prints).
pub fn root_page() -> std::io::Result<Page> {
    let cmd = built();
    render(&cmd, &[])
}

/// Every page: `zsnap(1)` first, then each visible subcommand, depth first.
pub fn pages() -> std::io::Result<Vec<Page>> {
    fn walk(cmd: &Command, path: &[String], out: &mut Vec<Page>) -> std::io::Result<()> {
        out.push(render(cmd, path)?);
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            let mut p = path.to_vec();
            p.push(sub.get_name().to_string());
            walk(sub, &p, out)?;
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(&built(), &[], &mut out)?;
    Ok(out)
}

fn render(cmd: &Command, path: &[String]) -> std::io::Result<Page> {
    let man = clap_mangen::Man::new(cmd.clone());
    let mut buf = Vec::new();
    man.render_title(&mut buf)?;
    man.render_name_section(&mut buf)?;
    man.render_synopsis_section(&mut buf)?;
    man.render_description_section(&mut buf)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut buf)?;
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(&mut buf)?;
    }
    let mut extra = Roff::new();
    exit_status(&mut extra, path);
    files(&mut extra);
    configuration(&mut extra, path);
    see_also(&mut extra, path);
    buf.extend_from_slice(extra.render().as_bytes());
    let roff = String::from_utf8(buf)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    Ok(Page {
        file_name: man.get_filename(),
        roff,
    })
}

fn item(r: &mut Roff, term: &str, text: &str) {
    r.control("TP", []);
    r.text([bold(term)]);
    r.text([roman(text)]);
}

fn exit_status(r: &mut Roff, path: &[String]) {
    r.control("SH", ["EXIT STATUS"]);
    if path.first().map(String::as_str) == Some("check") {
        r.text([roman("Nagios plugin codes:")]);
        item(r, "0", "OK");
        item(
            r,
            "1",
            "WARNING: a threshold is crossed, or the last run partly failed",
        );
        item(
            r,
            "2",
            "CRITICAL: a critical threshold is crossed, or the last run failed",
        );
        item(
            r,
            "3",
            "UNKNOWN: the check could not run (bad usage, a config it cannot read)",
        );
        return;
    }
    item(
        r,
        "0",
        "success (also when standard output was closed early, e.g. by head)",
    );
    item(
        r,
        "1",
        "the command failed and changed nothing (or stopped before its first change)",
    );
    item(
        r,
        "2",
        "usage or config error: bad flags, a config that does not parse or validate",
    );
    item(
        r,
        "3",
        "partial failure: something was changed and something failed (see the output and the journal)",
    );
    item(r, "4", "another zsnap run holds the lock");
}

fn files(r: &mut Roff) {
    r.control("SH", ["FILES"]);
    item(
        r,
        "/etc/zsnap/zsnap.toml",
        "the config file (another with --config FILE)",
    );
    item(
        r,
        "/var/log/zsnap/audit.jsonl",
        "every change zsnap makes, one JSON object per line ([paths] audit_log)",
    );
    item(
        r,
        "/var/lib/zsnap/journal",
        "one journal per run: each step before and after it runs ([paths] journal_dir)",
    );
    item(
        r,
        "/run/zsnap.lock",
        "makes runs exclusive ([paths] lock_file)",
    );
}

fn configuration(r: &mut Roff, path: &[String]) {
    r.control("SH", ["CONFIGURATION"]);
    let what = match path.first().map(String::as_str) {
        Some("snapshot") => "what is due comes from each policy's snapshot table ([policies.NAME] snapshot); labels taken by hand may be declared with on_demand, each with the expiry a new snapshot of it gets (\"30d\" or \"never\"); --expire-in overrides it for one snapshot.",
        Some("prune") => "the keep rules of each dataset's policy ([policies.NAME]); prune = false turns pruning off for a policy.",
        Some("replicate") => "[targets.NAME]: source, to, policy, allow_rollback, cursor, exclude_properties.",
        Some("run") => "everything due: [policies.NAME] schedules, [targets.NAME] and [backups.NAME]; [paths] for the lock, journal and audit log.",
        Some("backup" | "backups" | "restore") => "[backups.NAME]: source, to, every, full_every, policy, label, compression, verify, s3.",
        Some("check" | "status") => "[check]: freshness per label and replication_lag thresholds.",
        _ => "TOML, in /etc/zsnap/zsnap.toml or --config FILE: [paths], [[datasets]], [policies.NAME], [targets.NAME], [backups.NAME], [check]. zsnap config check validates a file and prints it with every default written out.",
    };
    r.text([roman(what)]);
    r.control("PP", []);
    r.text([roman(
        "Every key is described in docs/config.md of the zsnap sources. Unknown keys are errors, named with file, line and column.",
    )]);
}

fn see_also(r: &mut Roff, path: &[String]) {
    r.control("SH", ["SEE ALSO"]);
    let mut refs = Vec::new();
    if !path.is_empty() {
        refs.push("zsnap(1)".to_string());
    }
    refs.extend(["zfs(8)", "zfs-snapshot(8)", "zfs-send(8)", "zfs-receive(8)"].map(String::from));
    r.text([roman(refs.join(", "))]);
}
