//! What every `zsnap import TOOL` gives back: the translated [`Config`] and the notes
//! the user should read (keys left out, rules approximated), one shape for every tool,
//! so the CLI prints the notes both as comments in the TOML and in `--json`.
//!
//! Invariant: an [`Imported`] made by [`checked`] holds a config that
//! [`Config::from_toml`] accepts, and that parses back equal from its own TOML: an
//! importer never hands the user a config zsnap would refuse.

use serde::Serialize;

use super::model::Config;

/// The tool a config was translated from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ImportTool {
    /// `sanoid.conf`.
    Sanoid,
    /// `zrepl.yml`.
    Zrepl,
    /// `znapzendzetup export` output.
    Znapzend,
}

impl ImportTool {
    /// `sanoid`, `zrepl` or `znapzend`, as in `zsnap import TOOL`.
    pub fn as_str(self) -> &'static str {
        match self {
            ImportTool::Sanoid => "sanoid",
            ImportTool::Zrepl => "zrepl",
            ImportTool::Znapzend => "znapzend",
        }
    }
}

/// A translated config and what the user should know about it. `--json` prints this
/// object: `{"tool": …, "notes": [...], "config": {…}}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Imported {
    /// Where it came from.
    pub tool: ImportTool,
    /// Keys that were read but have no zsnap equivalent, approximations, and other
    /// remarks, each a sentence.
    pub notes: Vec<String>,
    /// The translated config.
    pub config: Config,
}

impl Imported {
    /// The config as commented TOML (the notes first, as `# note:` lines), ready to
    /// save as `/etc/zsnap/zsnap.toml`.
    pub fn to_toml(&self, source: &str) -> String {
        let mut out = format!(
            "# Translated from {source} by `zsnap import {}`.\n",
            self.tool.as_str()
        );
        for n in &self.notes {
            for (i, line) in n.lines().enumerate() {
                out.push_str(if i == 0 { "# note: " } else { "#       " });
                // A TOML comment may hold no control character but tab; notes quote
                // the input, which may.
                for c in line.chars() {
                    if c.is_control() && c != '\t' {
                        out.extend(c.escape_unicode());
                    } else {
                        out.push(c);
                    }
                }
                out.push('\n');
            }
        }
        out.push('\n');
        out.push_str(&self.config.to_toml());
        out
    }
}

/// Why another tool's config could not be translated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {problem}", location(file, *line))]
#[non_exhaustive]
pub struct ImportError {
    /// The file name given.
    pub file: String,
    /// 1-based line (0 when the problem has no single line).
    pub line: usize,
    /// What is wrong.
    pub problem: String,
}

fn location(file: &str, line: usize) -> String {
    if line == 0 {
        file.to_owned()
    } else {
        format!("{file}:{line}")
    }
}

impl ImportError {
    pub(crate) fn new(file: &str, line: usize, problem: impl Into<String>) -> Self {
        ImportError {
            file: file.to_owned(),
            line,
            problem: problem.into(),
        }
    }
}

/// Wraps a translation after checking that zsnap accepts it and that it round-trips.
pub(crate) fn checked(
    tool: ImportTool,
    config: Config,
    notes: Vec<String>,
    file: &str,
) -> Result<Imported, ImportError> {
    let text = config.to_toml();
    match Config::from_toml(&text, "translated.toml") {
        Ok(again) if again == config => Ok(Imported {
            tool,
            notes,
            config,
        }),
        Ok(_) => Err(ImportError::new(
            file,
            0,
            "the translation does not read back equal to itself (a bug in the importer)",
        )),
        Err(e) => Err(ImportError::new(
            file,
            0,
            format!("the translation is not a config zsnap accepts: {e}"),
        )),
    }
}

/// A name for a policy, target or hook made from another tool's name: letters, digits,
/// `-` and `_` kept, anything else `-`.
pub(crate) fn table_name(s: &str) -> String {
    let n: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if n.is_empty() {
        "imported".to_owned()
    } else {
        n
    }
}
