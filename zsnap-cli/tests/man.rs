//! The man pages: every page a SUBCOMMANDS section or SEE ALSO names exists, and every
//! page has the sections clap cannot write.

use std::collections::BTreeSet;
use std::process::Command;

#[test]
fn every_page_named_is_written_with_exit_status_files_and_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_zsnap"))
        .args(["man", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written: BTreeSet<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    for page in [
        "zsnap.1",
        "zsnap-snapshot.1",
        "zsnap-backups-list.1",
        "zsnap-check.1",
    ] {
        assert!(written.contains(page), "{page} missing from {written:?}");
    }
    let reference = regex::Regex::new(r"\b(zsnap(?:\\?-[a-z]+)*)\((\d)\)").unwrap();
    for name in &written {
        let roff = std::fs::read_to_string(dir.path().join(name)).unwrap();
        for section in [".SH \"EXIT STATUS\"", ".SH FILES", ".SH CONFIGURATION"] {
            assert!(roff.contains(section), "{name} lacks {section}");
        }
        for cap in reference.captures_iter(&roff) {
            let page = format!("{}.{}", cap[1].replace("\\-", "-"), &cap[2]);
            assert!(
                written.contains(&page),
                "{name} refers to {page}, which was not written"
            );
        }
    }
    let snapshot = std::fs::read_to_string(dir.path().join("zsnap-snapshot.1")).unwrap();
    for said in ["expire\\-in", "zsnap:expires", "on_demand"] {
        assert!(snapshot.contains(said), "zsnap-snapshot(1) lacks {said}");
    }
    let check = std::fs::read_to_string(dir.path().join("zsnap-check.1")).unwrap();
    assert!(
        check.contains("UNKNOWN"),
        "check's page has the Nagios codes"
    );
}

#[test]
fn zsnap_man_prints_the_root_page() {
    let out = Command::new(env!("CARGO_BIN_EXE_zsnap"))
        .arg("man")
        .output()
        .unwrap();
    assert!(out.status.success());
    let roff = String::from_utf8(out.stdout).unwrap();
    assert!(
        roff.starts_with(".ie") || roff.contains(".TH zsnap"),
        "{}",
        &roff[..200.min(roff.len())]
    );
    assert!(roff.contains(".SH \"EXIT STATUS\""));
}
