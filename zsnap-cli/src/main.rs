//! The `zsnap` command: everything is in [`zsnap_cli::entry::run`]; this only wires it
//! to the process.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    // Buffered: stdout is line-buffered, and a plan for a million snapshots has a
    // million lines.
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut err = std::io::stderr().lock();
    let status = zsnap_cli::entry::run(
        std::env::args_os().collect(),
        || std::time::SystemTime::now().into(),
        &mut out,
        &mut err,
    );
    zsnap_cli::exit::code(status)
}
