//! How a test that needs a service (the real-OpenZFS testbed, the S3 server) says it was
//! skipped: on stderr, and as one line in the file `ZSNAP_TEST_SKIPS` names, which
//! `scripts/test.sh` counts so that its summary reports skipped tests as skipped, never
//! as passed. Under `CI=true` the callers fail instead of skipping.
//! Shared by the test trees of zsnap-exec and zsnap-cli (`#[path]`).

use std::io::Write as _;

/// Records that `test` was skipped, and why.
#[expect(clippy::print_stderr, reason = "a skipped test says so")]
pub fn skipped(test: &str, why: &str) {
    eprintln!("skipping {test}: {why}");
    let Some(path) = std::env::var_os("ZSNAP_TEST_SKIPS") else {
        return;
    };
    let line = format!("{test}\t{}\n", why.replace(['\t', '\n'], " "));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path);
    if let Ok(mut f) = file {
        // One write of one short line: appends from parallel tests do not interleave.
        let _ = f.write_all(line.as_bytes());
    }
}
