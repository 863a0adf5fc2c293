//! The text form of keep rules (`last 3`, `calendar daily = 7`, `grid 24x1h`, …).

use std::collections::BTreeMap;
use std::str::FromStr;

use super::grid::{Grid, GridProblem};
use super::pattern::NameRegex;
use super::rule::{KeepRule, SanoidCounts, CALENDAR_UNITS};
use crate::duration::Span;

/// Why a keep rule's text did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid keep rule {input:?}: {problem}")]
#[non_exhaustive]
pub struct RuleError {
    /// The text, verbatim.
    pub input: String,
    /// What is wrong.
    pub problem: RuleProblem,
}

/// What is wrong with a keep rule's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleProblem {
    /// The first word names no rule.
    #[error("unknown rule; expected `last N`, `labels LABEL = N, …`, `calendar daily = N, …`, `grid SPEC`, `sanoid daily = N, …`, `newer than DURATION`, `regex PATTERN`, `not regex PATTERN` or `not replicated to TARGET`")]
    UnknownRule,
    /// A count that is not a whole number.
    #[error("{0:?} is not a count (a whole number)")]
    BadCount(String),
    /// Something after `last N` that is not `(label L)`, `(regex R)` or both.
    #[error(
        "expected `(label L)`, `(regex R)` or `(label L, regex R)` after the count, not {0:?}"
    )]
    BadLastOptions(String),
    /// A list item that is not `NAME = N`.
    #[error("expected `NAME = N`, not {0:?}")]
    BadAssignment(String),
    /// A key that the rule does not know.
    #[error("unknown key {key:?}; expected one of {expected}")]
    UnknownKey {
        /// The key.
        key: String,
        /// The keys the rule knows.
        expected: &'static str,
    },
    /// A key given twice.
    #[error("{0:?} is given twice")]
    DuplicateKey(String),
    /// A bad grid.
    #[error("{0}")]
    Grid(GridProblem),
    /// A bad regular expression.
    #[error("invalid regex: {0}")]
    Pattern(String),
    /// A bad duration.
    #[error("invalid duration: {0}")]
    Span(&'static str),
    /// A trailing filter that is not `(regex R)` or `(not regex R)`.
    #[error("expected the filter `(regex R)` or `(not regex R)` at the end, not {0:?}")]
    BadFilter(String),
    /// `not replicated to` without a target name.
    #[error("expected `not replicated to TARGET`, with the name of a [targets.NAME] table")]
    NoTarget,
}

const SANOID_KEYS: &str = "frequently, frequent_period, hourly, daily, weekly, monthly, yearly";
const CALENDAR_KEYS: &str = "hourly, daily, weekly, monthly, yearly";

fn count(text: &str) -> Result<usize, RuleProblem> {
    let t = text.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RuleProblem::BadCount(t.to_owned()));
    }
    t.parse().map_err(|_| RuleProblem::BadCount(t.to_owned()))
}

/// `a = 1, b = 2` (or nothing) into ordered pairs, rejecting repeated keys.
fn assignments(text: &str) -> Result<Vec<(&str, usize)>, RuleProblem> {
    let mut out: Vec<(&str, usize)> = Vec::new();
    if text.trim().is_empty() {
        return Ok(out);
    }
    for item in text.split(',') {
        let Some((k, v)) = item.split_once('=') else {
            return Err(RuleProblem::BadAssignment(item.trim().to_owned()));
        };
        let k = k.trim();
        if k.is_empty() {
            return Err(RuleProblem::BadAssignment(item.trim().to_owned()));
        }
        if out.iter().any(|(seen, _)| *seen == k) {
            return Err(RuleProblem::DuplicateKey(k.to_owned()));
        }
        out.push((k, count(v)?));
    }
    Ok(out)
}

/// Splits off the first word; the rest keeps its leading blanks trimmed but nothing else.
fn first_word(s: &str) -> (&str, &str) {
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], s[i..].trim_start()),
        None => (s, ""),
    }
}

fn parse_last(rest: &str) -> Result<KeepRule, RuleProblem> {
    let (n, options) = match rest.find('(') {
        Some(i) => (&rest[..i], Some(rest[i..].trim_end())),
        None => (rest, None),
    };
    let count = count(n)?;
    let (mut label, mut regex) = (None, None);
    if let Some(opts) = options {
        let bad = || RuleProblem::BadLastOptions(opts.to_owned());
        let inner = opts
            .strip_prefix('(')
            .and_then(|o| o.strip_suffix(')'))
            .ok_or_else(bad)?;
        let inner = inner.trim_start();
        let regex_text = if let Some(l) = inner.strip_prefix("label ") {
            let (l, after) = match l.find(',') {
                Some(i) => (&l[..i], Some(l[i + 1..].trim_start())),
                None => (l, None),
            };
            let l = l.trim();
            if l.is_empty() {
                return Err(bad());
            }
            label = Some(l.to_owned());
            match after {
                None => None,
                Some(a) => Some(a.strip_prefix("regex ").ok_or_else(bad)?),
            }
        } else {
            Some(inner.strip_prefix("regex ").ok_or_else(bad)?)
        };
        if let Some(r) = regex_text {
            regex = Some(NameRegex::new(r).map_err(|e| RuleProblem::Pattern(e.problem))?);
        }
    }
    Ok(KeepRule::Last {
        count,
        label,
        regex,
    })
}

fn parse_calendar(text: &str) -> Result<KeepRule, RuleProblem> {
    let mut counts = [0usize; 5];
    for (k, n) in assignments(text)? {
        let Some(i) = CALENDAR_UNITS.iter().position(|u| *u == k) else {
            return Err(RuleProblem::UnknownKey {
                key: k.to_owned(),
                expected: CALENDAR_KEYS,
            });
        };
        counts[i] = n;
    }
    let [hourly, daily, weekly, monthly, yearly] = counts;
    Ok(KeepRule::Calendar {
        hourly,
        daily,
        weekly,
        monthly,
        yearly,
    })
}

fn parse_sanoid(text: &str) -> Result<KeepRule, RuleProblem> {
    let mut s = SanoidCounts::default();
    for (k, n) in assignments(text)? {
        match k {
            "frequently" => s.frequently = n,
            "frequent_period" => {
                s.frequent_period_minutes =
                    u32::try_from(n).map_err(|_| RuleProblem::BadCount(n.to_string()))?;
            }
            "hourly" => s.hourly = n,
            "daily" => s.daily = n,
            "weekly" => s.weekly = n,
            "monthly" => s.monthly = n,
            "yearly" => s.yearly = n,
            _ => {
                return Err(RuleProblem::UnknownKey {
                    key: k.to_owned(),
                    expected: SANOID_KEYS,
                })
            }
        }
    }
    Ok(KeepRule::Sanoid(s))
}

/// Where a trailing `(regex R)` or `(not regex R)` filter starts in the text of a rule
/// whose first word is `word`, and whether it is negated. `last` keeps its own
/// `(regex R)`; regex rules take no filter (their pattern runs to the end).
fn filter_start(word: &str, s: &str) -> Option<(usize, bool)> {
    let negated = s.find(" (not regex ").map(|i| (i, true));
    match word {
        "regex" => None,
        "not" if first_word(first_word(s).1).0 == "regex" => None,
        // `last N (…)` has options of its own, `(regex R)` among them: a filter
        // follows them (`last 3 (regex ^a) (regex _1$)`) or is negated.
        "last" => {
            let after_options = [") (regex ", ") (not regex "]
                .iter()
                .filter_map(|p| s.find(p).map(|i| (i + 1, p.contains("not"))))
                .min_by_key(|(i, _)| *i);
            match (after_options, negated) {
                (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
                (a, b) => a.or(b),
            }
        }
        _ => {
            let plain = s.find(" (regex ").map(|i| (i, false));
            match (plain, negated) {
                (Some(a), Some(b)) => Some(if a.0 < b.0 { a } else { b }),
                (a, b) => a.or(b),
            }
        }
    }
}

fn parse_rule(s: &str) -> Result<KeepRule, RuleProblem> {
    let s = s.trim_start();
    let (word, rest) = first_word(s);
    if let Some((at, negate)) = filter_start(word, s) {
        let filter = s[at..].trim_end();
        let pattern = filter
            .strip_prefix(if negate { " (not regex " } else { " (regex " })
            .and_then(|p| p.strip_suffix(')'))
            .ok_or_else(|| RuleProblem::BadFilter(filter.trim_start().to_owned()))?;
        let regex = NameRegex::new(pattern).map_err(|e| RuleProblem::Pattern(e.problem))?;
        let rule = parse_rule(&s[..at])?;
        return Ok(KeepRule::Filtered {
            regex,
            negate,
            rule: Box::new(rule),
        });
    }
    match word {
        "not" => {
            let (what, after) = first_word(rest);
            match what {
                "regex" => {
                    let pattern = rest["regex".len()..]
                        .strip_prefix(char::is_whitespace)
                        .ok_or(RuleProblem::UnknownRule)?;
                    NameRegex::new(pattern)
                        .map(KeepRule::NotRegex)
                        .map_err(|e| RuleProblem::Pattern(e.problem))
                }
                "replicated" => {
                    let (to, target) = first_word(after);
                    let target = target.trim();
                    if to != "to" || target.is_empty() {
                        return Err(RuleProblem::NoTarget);
                    }
                    Ok(KeepRule::NotReplicated(target.to_owned()))
                }
                _ => Err(RuleProblem::UnknownRule),
            }
        }
        "last" => parse_last(rest),
        "labels" => {
            let map: BTreeMap<String, usize> = assignments(rest)?
                .into_iter()
                .map(|(k, n)| (k.to_owned(), n))
                .collect();
            Ok(KeepRule::LabelCounts(map))
        }
        "calendar" => parse_calendar(rest),
        "grid" => rest
            .parse::<Grid>()
            .map(KeepRule::Grid)
            .map_err(|e| RuleProblem::Grid(e.problem)),
        "sanoid" => parse_sanoid(rest),
        "newer" => {
            let (than, span) = first_word(rest);
            if than != "than" {
                return Err(RuleProblem::UnknownRule);
            }
            span.trim()
                .parse::<Span>()
                .map(KeepRule::NewerThan)
                .map_err(|e| RuleProblem::Span(e.problem))
        }
        "regex" => {
            // Exactly one separator: everything after it, blanks included, is the pattern.
            let pattern = s["regex".len()..]
                .strip_prefix(char::is_whitespace)
                .ok_or(RuleProblem::UnknownRule)?;
            NameRegex::new(pattern)
                .map(KeepRule::Regex)
                .map_err(|e| RuleProblem::Pattern(e.problem))
        }
        _ => {
            // `daily = 7, weekly = 4`: the calendar without its keyword, as reasons
            // quote it.
            let key = s.split(['=', ' ']).next().unwrap_or_default();
            if s.contains('=') && CALENDAR_UNITS.contains(&key) {
                parse_calendar(s)
            } else {
                Err(RuleProblem::UnknownRule)
            }
        }
    }
}

impl FromStr for KeepRule {
    type Err = RuleError;
    fn from_str(s: &str) -> Result<Self, RuleError> {
        parse_rule(s).map_err(|problem| RuleError {
            input: s.to_owned(),
            problem,
        })
    }
}
