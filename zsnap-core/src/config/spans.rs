//! Where things are in the config text: the parser's context (file name and text, for
//! error positions) and the spans of a policy's label-naming keys, which the checks
//! over the whole config ([`super::rules`]) point their errors at. Both the parser and
//! those checks use them; neither uses the other's internals through them.

use std::ops::Range;

use crate::naming::Label;

/// Parser state: the file name and text, for error positions.
pub(crate) struct Cx<'t> {
    pub(crate) file: &'t str,
    pub(crate) text: &'t str,
}

/// Where the label-naming parts of a policy are, for the checks that need the whole
/// config ([`super::rules`]).
pub(crate) struct PolicySpans {
    /// The policy's table.
    pub(crate) table: Range<usize>,
    /// Each key of `snapshot`.
    pub(crate) snapshot: Vec<(Label, Range<usize>)>,
    /// Each key of `keep_counts`.
    pub(crate) keep_counts: Vec<(Label, Range<usize>)>,
    /// Each count written in `sanoid` (type, span of the value, count).
    pub(crate) sanoid: Vec<(&'static str, Range<usize>, u32)>,
    /// Each item of `keep_none`.
    pub(crate) keep_none: Vec<(Label, Range<usize>)>,
    /// Each `label` of a `keep_rules` item (1-based item index, label, span).
    pub(crate) rule_labels: Vec<(usize, Label, Range<usize>)>,
    /// Each `not_replicated` of a `keep_rules` item (1-based item index, target, span).
    pub(crate) rule_targets: Vec<(usize, String, Range<usize>)>,
}
