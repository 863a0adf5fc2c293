//! The whole `zsnap` command as one function of its arguments, so tests run it in
//! process: parse (a usage error is exit status 2, or 3 UNKNOWN for `zsnap check`),
//! convert once, execute, and print a failure — its chain on stderr and, with
//! `--json`, one JSON object on stdout.

use std::ffi::OsString;
use std::io::Write;

use chrono::{DateTime, Utc};
use clap::error::ErrorKind;
use clap::Parser as _;

use crate::args::{Args, Cmd};
use crate::exit;
use crate::failure::Failure;
use crate::request::Request;

/// Runs `zsnap` with `argv` (the program name first), reading the clock only when
/// `--now` is absent, writing results to `out` and messages to `err`. Returns the exit
/// status; never panics on any argument value.
pub fn run(
    argv: Vec<OsString>,
    clock: impl FnOnce() -> DateTime<Utc>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let args = match Args::try_parse_from(&argv) {
        Ok(a) => a,
        Err(e) => return usage(&e, &argv, out, err),
    };
    let json = args.json;
    let check = matches!(args.command, Cmd::Check);
    let result = Request::from_args(args, clock).and_then(|req| {
        let status = crate::commands::execute(&req, out)?;
        out.flush().map_err(Failure::from)?;
        Ok(status)
    });
    match result {
        Ok(status) => status,
        Err(f) if f.is_broken_pipe() => exit::OK,
        Err(f) if check => {
            let _ = err.write_all(f.render().as_bytes());
            let status = crate::status::unknown_line(json, &format!("{:#}", f.error), out)
                .unwrap_or(exit::NAGIOS_UNKNOWN);
            let _ = out.flush();
            status
        }
        Err(f) => report(&f, json, out, err),
    }
}

/// Prints `f` (on stderr, and as JSON on stdout with `--json`); its exit status.
fn report(f: &Failure, json: bool, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let _ = err.write_all(f.render().as_bytes());
    if json {
        let _ = crate::output::json(out, &f.to_json());
        let _ = out.flush();
    }
    f.status
}

/// What a clap error means: help and version go to stdout with success; anything else
/// is a usage error (exit status 2; 3 UNKNOWN for `zsnap check`, which monitoring reads).
fn usage(e: &clap::Error, argv: &[OsString], out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = write!(out, "{}", e.render());
        let _ = out.flush();
        return exit::OK;
    }
    // Which subcommand and whether --json, from what clap could make of the arguments.
    let partial = crate::args::command()
        .ignore_errors(true)
        .try_get_matches_from(argv)
        .ok();
    let json = partial
        .as_ref()
        .and_then(|m| m.try_get_one::<bool>("json").ok().flatten().copied())
        .unwrap_or(false)
        // clap stops at the first bad argument; a `--json` after it still counts.
        || argv
            .iter()
            .skip(1)
            .take_while(|a| *a != "--")
            .any(|a| a == "--json");
    let check = partial
        .as_ref()
        .is_some_and(|m| m.subcommand_name() == Some("check"));
    let rendered = e.render().to_string();
    if check {
        let _ = err.write_all(rendered.as_bytes());
        let first = rendered.lines().next().unwrap_or("invalid arguments");
        let first = first.strip_prefix("error: ").unwrap_or(first);
        return crate::status::unknown_line(json, &format!("invalid arguments: {first}"), out)
            .unwrap_or(exit::NAGIOS_UNKNOWN);
    }
    if json {
        let _ = err.write_all(rendered.as_bytes());
        let message = rendered.lines().next().unwrap_or("invalid arguments");
        let message = message.strip_prefix("error: ").unwrap_or(message);
        let f = Failure::usage(anyhow::anyhow!("{message}"));
        let _ = crate::output::json(out, &f.to_json());
        let _ = out.flush();
        return exit::USAGE;
    }
    let _ = err.write_all(rendered.as_bytes());
    exit::USAGE
}
