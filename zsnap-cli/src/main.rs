//! The `zsnap` command: parse, convert once, run, print the error chain, exit.
#![forbid(unsafe_code)]

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;
use zsnap_cli::{args::Args, commands, exit, request::Request};

fn main() -> ExitCode {
    let args = Args::parse();
    let result = Request::from_args(args, || std::time::SystemTime::now().into()).and_then(|req| {
        // Buffered: stdout is line-buffered, and a plan for a million snapshots has a
        // million lines.
        let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
        let status = commands::execute(&req, &mut out)?;
        out.flush().map_err(zsnap_cli::failure::Failure::from)?;
        Ok(status)
    });
    match result {
        Ok(status) => exit::code(status),
        Err(f) if f.is_broken_pipe() => exit::code(exit::OK),
        Err(f) => {
            let _ = std::io::stderr().write_all(f.render().as_bytes());
            exit::code(f.status)
        }
    }
}
