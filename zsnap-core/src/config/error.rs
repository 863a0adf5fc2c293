//! Config errors: what is wrong, where (file, line, column) and what was expected.

use std::fmt;
use std::ops::Range;

/// Why a config was rejected, pointing at the place in the file.
///
/// `Display` gives one line, `FILE:LINE:COLUMN: problem`; [`ConfigError::snippet`] adds
/// the offending source line with a caret under the place, for terminals.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {problem}")]
#[non_exhaustive]
pub struct ConfigError {
    /// The file name as given to the parser.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Byte range in the file.
    pub span: Range<usize>,
    /// The text of the line the error is on, or of at most [`EXCERPT_CHARS`]
    /// characters of it around the place (with `…` where it was cut), so that a huge
    /// line is never quoted whole.
    pub source_line: String,
    /// The 1-based column of the place within [`source_line`](Self::source_line).
    pub excerpt_column: usize,
    /// How many characters of that excerpt the error covers (at least 1).
    pub width: usize,
    /// What is wrong (boxed to keep `Result<_, ConfigError>` small).
    pub problem: Box<ConfigProblem>,
}

impl ConfigError {
    /// Builds an error for `span` of `text`.
    pub(crate) fn at(file: &str, text: &str, span: Range<usize>, problem: ConfigProblem) -> Self {
        let start = floor_char_boundary(text, span.start.min(text.len()));
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let line = text[..start].matches('\n').count() + 1;
        let column = text[line_start..start].chars().count() + 1;
        let end = floor_char_boundary(text, span.end.clamp(start, line_end));
        let width = text[start..end].chars().count().max(1);
        let (source_line, excerpt_column, width) = excerpt(
            text[line_start..line_end].trim_end_matches('\r'),
            column,
            width,
        );
        ConfigError {
            file: file.to_owned(),
            line,
            column,
            span: start..span.end.max(start).min(text.len()),
            source_line,
            excerpt_column,
            width,
            problem: Box::new(problem),
        }
    }

    /// The error with the source line and a caret, the way compilers show them:
    ///
    /// ```text
    /// error: unknown key `kep` in [policies.standard]; did you mean `keep`?
    ///  --> zsnap.toml:7:1
    ///   |
    /// 7 | kep = { daily = 7 }
    ///   | ^^^
    /// ```
    pub fn snippet(&self) -> String {
        let pad = " ".repeat(self.line.to_string().len());
        format!(
            "error: {problem}\n{pad}--> {file}:{line}:{column}\n{pad} |\n{line} | {src}\n{pad} | {indent}{carets}",
            problem = self.problem,
            file = self.file,
            line = self.line,
            column = self.column,
            src = self.source_line,
            indent = " ".repeat(self.excerpt_column - 1),
            carets = "^".repeat(self.width.max(1)),
        )
    }
}

/// The most characters of a source line an error quotes.
pub const EXCERPT_CHARS: usize = 120;

/// `line` cut to at most [`EXCERPT_CHARS`] characters around `column` (1-based), with
/// `…` where it was cut; the column and width within the excerpt.
fn excerpt(line: &str, column: usize, width: usize) -> (String, usize, usize) {
    let count = line.chars().count();
    if count <= EXCERPT_CHARS {
        return (line.to_owned(), column, width);
    }
    // Leave some context before the place, and as much of it as fits after.
    let first = (column - 1)
        .saturating_sub(EXCERPT_CHARS / 4)
        .min(count - EXCERPT_CHARS);
    let last = first + EXCERPT_CHARS;
    let mut out: String = line.chars().skip(first).take(EXCERPT_CHARS).collect();
    let mut col = column - first;
    if first > 0 {
        out.insert(0, '…');
        col += 1;
    }
    if last < count {
        out.push('…');
    }
    let room = out.chars().count() + 1 - col;
    (out, col, width.min(room).max(1))
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Formats "; did you mean `x`?" or nothing.
struct DidYouMean<'a>(&'a Option<String>);

impl fmt::Display for DidYouMean<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(s) => write!(f, "; did you mean `{s}`?"),
            None => Ok(()),
        }
    }
}

/// Formats "`a`, `b` or `c`".
struct OneOf<'a>(&'a [String]);

impl fmt::Display for OneOf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(if i + 1 == self.0.len() { " or " } else { ", " })?;
            }
            write!(f, "`{s}`")?;
        }
        Ok(())
    }
}

/// Unknown name with a suggestion, or the list of what is allowed.
struct Expected<'a> {
    suggestion: &'a Option<String>,
    allowed: &'a [String],
}

impl fmt::Display for Expected<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.suggestion.is_some() {
            DidYouMean(self.suggestion).fmt(f)
        } else {
            write!(f, "; expected {}", OneOf(self.allowed))
        }
    }
}

/// What to do about a scheduled label no rule keeps.
struct UnkeptFix<'a> {
    label: &'a str,
    suggestion: &'a Option<String>,
}

impl fmt::Display for UnkeptFix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = self.label;
        match self.suggestion {
            Some(s) => write!(f, "did you mean `{s}` (which a rule keeps)?"),
            None => write!(
                f,
                "add a rule for it (e.g. `keep_counts = {{ {label} = 24 }}`), or list it in `keep_none = [\"{label}\"]` if that is meant"
            ),
        }
    }
}

/// The specific problem, with what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigProblem {
    /// Not valid TOML.
    #[error("invalid TOML: {message}")]
    Syntax {
        /// The TOML parser's message.
        message: String,
    },
    /// A key zsnap does not know.
    #[error("unknown key `{key}` in {table}{}", Expected { suggestion, allowed: expected })]
    UnknownKey {
        /// The key.
        key: String,
        /// The table it is in, as `[policies.x]`.
        table: String,
        /// The closest allowed key, if one is close.
        suggestion: Option<String>,
        /// Every allowed key.
        expected: Vec<String>,
    },
    /// A required key is absent.
    #[error("missing key `{key}` in {table}: {hint}")]
    MissingKey {
        /// The key.
        key: String,
        /// The table, as `[[datasets]]`.
        table: String,
        /// What it is for.
        hint: String,
    },
    /// A value of the wrong TOML type.
    #[error("`{path}` must be {expected}, found {found}")]
    WrongType {
        /// Dotted path of the value.
        path: String,
        /// The expected type, with an example.
        expected: String,
        /// The TOML type found.
        found: String,
    },
    /// A value of the right type that does not make sense.
    #[error("invalid `{path}`: {message}")]
    InvalidValue {
        /// Dotted path of the value.
        path: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// A reference to a name that is not defined.
    #[error("unknown {what} `{name}` in `{path}`{}", Expected { suggestion, allowed: defined })]
    UnknownName {
        /// What kind of name (`policy`, `time zone`, `tool`, `dataset root`).
        what: String,
        /// The name given.
        name: String,
        /// Where.
        path: String,
        /// The closest defined name, if one is close.
        suggestion: Option<String>,
        /// Every defined name (may be abridged).
        defined: Vec<String>,
    },
    /// A policy without any keep rule.
    #[error("policy `{policy}` has no keep rule, so it would destroy every snapshot but the newest; add one (e.g. `keep_last = 10` or `keep = {{ daily = 7 }}`) or set `prune = false`")]
    NoKeepRule {
        /// The policy.
        policy: String,
    },
    /// The config would let zsnap destroy snapshots another tool made.
    #[error("policy `{policy}` uses the prefix `{prefix}`, which is {tool}'s; zsnap would prune {tool}'s snapshots as its own. Choose another prefix, or adopt them explicitly with `adopt = [\"{tool}\"]`")]
    ForeignPrefix {
        /// The policy.
        policy: String,
        /// The prefix.
        prefix: String,
        /// The tool whose names those are.
        tool: String,
    },
    /// Two `[[datasets]]` entries of the same root name different policies.
    #[error("root `{dataset}` is listed in [[datasets]] #{first} and #{second} with different policies, so they would fight over it; keep one entry per root (a deeper root overrides a shallower one, so nest them instead)")]
    Overlap {
        /// The dataset.
        dataset: String,
        /// 1-based index of the first entry.
        first: usize,
        /// 1-based index of the second entry.
        second: usize,
    },
    /// A warning threshold above the critical one.
    #[error("`{path}`: warn ({warn}) must not be longer than crit ({crit})")]
    ThresholdOrder {
        /// Where.
        path: String,
        /// The warning threshold.
        warn: String,
        /// The critical threshold.
        crit: String,
    },
    /// A capacity warning threshold above the critical one.
    #[error("`{path}`: warn ({warn}%) must not be above crit ({crit}%)")]
    CapacityOrder {
        /// Where.
        path: String,
        /// The warning threshold, in percent.
        warn: u8,
        /// The critical threshold, in percent.
        crit: u8,
    },
    /// A dataset whose snapshot names would be too long for ZFS.
    #[error("`{path}`: the `{label}` snapshots of {dataset} would have names of {length} bytes, over ZFS's limit of {limit}, so they could never be taken; use a shorter dataset path, prefix or label")]
    NameTooLong {
        /// Where the dataset is named.
        path: String,
        /// The dataset.
        dataset: String,
        /// The longest label.
        label: String,
        /// The length of its snapshot names.
        length: usize,
        /// The longest name ZFS accepts.
        limit: usize,
    },
    /// Two targets write into one dataset, or one into the other's.
    #[error("target `{second}` writes to {second_to}, which overlaps target `{first}` at {first_to}: each would prune the other's history by its own policy; give each target its own dataset")]
    TargetOverlap {
        /// The earlier target.
        first: String,
        /// Where it writes.
        first_to: String,
        /// The later target.
        second: String,
        /// Where it writes.
        second_to: String,
    },
    /// A keep rule names a label no snapshot of the policy can carry.
    #[error("`{path}` names label `{label}`, which policy `{policy}` neither schedules, nor declares in `on_demand`, nor adopts from another tool, so the rule keeps nothing{}", Expected { suggestion, allowed: known })]
    UnknownLabel {
        /// Where the label is named.
        path: String,
        /// The label.
        label: String,
        /// The policy.
        policy: String,
        /// The closest known label, if one is close.
        suggestion: Option<String>,
        /// Every label the policy knows.
        known: Vec<String>,
    },
    /// A scheduled label no rule keeps, in a policy that prunes.
    #[error("policy `{policy}` schedules label `{label}` but no keep rule keeps it, so every `{label}` snapshot would be destroyed by the next prune; {}", UnkeptFix { label, suggestion })]
    UnkeptLabel {
        /// The policy.
        policy: String,
        /// The label.
        label: String,
        /// A label a rule keeps whose name is close (the probable typo).
        suggestion: Option<String>,
    },
    /// A count of 0 for a label the policy schedules.
    #[error("`{path}` = 0 keeps no `{label}` snapshot although policy `{policy}` schedules them, so each would be destroyed by the next prune; give a count above 0, or list the label in `keep_none = [\"{label}\"]` if that is meant")]
    ZeroCount {
        /// Where.
        path: String,
        /// The label.
        label: String,
        /// The policy.
        policy: String,
    },
    /// Nothing to manage.
    #[error("no [[datasets]] table, so there is nothing to manage; add one with `root = \"POOL/DATASET\"` and `policy = \"NAME\"`")]
    NoDatasets,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_and_snippet() {
        let text = "a = 1\n  bé = 2\n";
        let e = ConfigError::at(
            "f.toml",
            text,
            11..12,
            ConfigProblem::Syntax {
                message: "x".into(),
            },
        );
        assert_eq!((e.line, e.column), (2, 5));
        insta::assert_snapshot!(e.snippet(), @r"
        error: invalid TOML: x
         --> f.toml:2:5
          |
        2 |   bé = 2
          |     ^
        ");
    }

    /// Issue 12, item 12: a 32 MB line wrote 65 MB to stderr; an error quotes at most
    /// 120 characters around the place.
    #[test]
    fn huge_lines_are_quoted_in_part() {
        let long = "x".repeat(32 << 20);
        let text = format!("a = \"{long}\" b\n");
        let at = text.len() - 3;
        let e = ConfigError::at(
            "f.toml",
            &text,
            at..at + 1,
            ConfigProblem::Syntax {
                message: "x".into(),
            },
        );
        assert_eq!(e.column, 32 * 1024 * 1024 + 7);
        let snippet = e.snippet();
        assert!(snippet.len() < 600, "{} bytes", snippet.len());
        insta::assert_snapshot!(snippet, @r#"
        error: invalid TOML: x
         --> f.toml:1:33554439
          |
        1 | …xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" b
          |                                                                                                                        ^
        "#);
        // In the middle of a long line: context on both sides.
        let text = format!("{}y{}\n", "x".repeat(500), "x".repeat(500));
        let e = ConfigError::at(
            "f.toml",
            &text,
            500..501,
            ConfigProblem::Syntax {
                message: "x".into(),
            },
        );
        assert_eq!(e.source_line.chars().count(), EXCERPT_CHARS + 2);
        assert_eq!(e.source_line.chars().nth(e.excerpt_column - 1), Some('y'));
    }
}
