//! Quoting words for the remote POSIX shell.
//!
//! ssh does not pass an argv to the remote host: it joins its arguments with spaces and
//! the remote login shell parses the result. Every word zsnap sends is therefore wrapped
//! in single quotes, inside which a POSIX shell (dash, bash, busybox ash, ksh) gives no
//! character a special meaning — not `$`, not a backtick, not `;`, not a newline. A
//! single quote itself is written as `'\''` (close, escaped quote, reopen).
//!
//! The remote login shell must be a POSIX shell; csh-family shells treat `!` and newlines
//! inside quotes differently and are not supported.

/// Quotes one word so a POSIX shell reads it back as exactly `word`.
///
/// # Example
/// ```
/// use zsnap_exec::quote::quote;
/// assert_eq!(quote("tank/a b"), "'tank/a b'");
/// assert_eq!(quote("it's"), r"'it'\''s'");
/// assert_eq!(quote(""), "''");
/// ```
pub fn quote(word: &str) -> String {
    let mut out = String::with_capacity(word.len() + 2);
    out.push('\'');
    for c in word.chars() {
        if c == '\'' {
            out.push_str(r"'\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// The command line for the remote shell: `LC_ALL=C` then every word of `argv` quoted.
///
/// The `LC_ALL=C` prefix is a literal assignment (not quoted, so the shell reads it as
/// one), which keeps `zfs`'s messages in English for [`crate::failure::classify`].
pub fn remote_command(argv: &[String]) -> String {
    let mut out = String::from("LC_ALL=C");
    for word in argv {
        out.push(' ');
        out.push_str(&quote(word));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Words that would do something if a shell saw them unquoted.
    const HOSTILE: &[&str] = &[
        "plain",
        "with space",
        "it's",
        "\"double\"",
        "$HOME",
        "${HOME}",
        "$(touch MARKER)",
        "`touch MARKER`",
        "a; touch MARKER",
        "a && touch MARKER",
        "a | touch MARKER",
        "a > MARKER",
        "line1\nline2\ntouch MARKER",
        "\\",
        "'",
        "''",
        "'\\''",
        "*",
        "~",
        "!",
        "#comment",
        "-n",
        "tab\there",
        "",
        "é ü ☃",
    ];

    /// Runs `sh -c` on the quoted words and returns what the shell passed to printf.
    fn round_trip(words: &[String], dir: &std::path::Path) -> Vec<String> {
        let mut script = String::from("for a in");
        for w in words {
            script.push(' ');
            script.push_str(&quote(w));
        }
        script.push_str("; do printf '%s\\0' \"$a\"; done");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .current_dir(dir)
            .output()
            .expect("sh runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).expect("utf-8 back");
        let mut got: Vec<String> = text.split('\0').map(str::to_owned).collect();
        assert_eq!(got.pop().as_deref(), Some(""), "output ends with a NUL");
        got
    }

    #[test]
    fn hostile_words_survive_a_real_shell_and_execute_nothing() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let words: Vec<String> = HOSTILE.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(round_trip(&words, dir.path()), words);
        assert!(!dir.path().join("MARKER").exists(), "a word was executed");
    }

    #[test]
    fn remote_command_shape() {
        let argv = vec!["zfs".to_owned(), "list".to_owned(), "tank/a b".to_owned()];
        insta::assert_snapshot!(remote_command(&argv), @"LC_ALL=C 'zfs' 'list' 'tank/a b'");
    }

    #[test]
    fn remote_command_runs_with_c_locale() {
        let argv = vec![
            "sh".to_owned(),
            "-c".to_owned(),
            "printf %s \"$LC_ALL\"".to_owned(),
        ];
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(remote_command(&argv))
            .output()
            .expect("sh runs");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "C");
    }

    proptest::proptest! {
        #[test]
        fn quoting_is_injective_and_closed(a in "\\PC{0,12}", b in "\\PC{0,12}") {
            // Two different words never quote to the same text, and a quoted word never
            // has an unescaped quote inside.
            if a != b {
                proptest::prop_assert_ne!(quote(&a), quote(&b));
            }
            let q = quote(&a);
            let inner = &q[1..q.len() - 1];
            proptest::prop_assert_eq!(inner.replace(r"'\''", ""), a.replace('\'', ""));
        }
    }

    #[test]
    fn random_words_round_trip_through_sh() {
        use proptest::strategy::{Strategy, ValueTree};
        use proptest::test_runner::TestRunner;
        // One shell run for many words keeps this fast.
        let mut runner = TestRunner::deterministic();
        let strat = proptest::collection::vec("[^\\x00]{0,16}", 200);
        let words = strat.new_tree(&mut runner).expect("a value").current();
        let dir = tempfile::tempdir().expect("a temp dir");
        assert_eq!(round_trip(&words, dir.path()), words);
        assert!(std::fs::read_dir(dir.path())
            .expect("readable")
            .next()
            .is_none());
    }
}
