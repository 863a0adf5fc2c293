//! "Did you mean …?" for misspelled keys and names.

/// The candidate closest to `input`, if it is close enough to be a likely typo.
pub(crate) fn closest<'a, I>(input: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    let lower = input.to_ascii_lowercase();
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        if c.eq_ignore_ascii_case(input) {
            return Some(c.to_owned());
        }
        let cl = c.to_ascii_lowercase();
        let distance = strsim::damerau_levenshtein(&lower, &cl);
        let limit = (cl.chars().count().max(lower.chars().count()) / 3).max(1);
        let score = strsim::jaro_winkler(&lower, &cl);
        let close = distance <= limit || score >= 0.88;
        if close && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c.to_owned())
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn typos_and_strangers() {
        let keys = [
            "keep",
            "keep_last",
            "keep_newer_than",
            "snapshot",
            "timezone",
        ];
        assert_eq!(closest("kep", keys).as_deref(), Some("keep"));
        assert_eq!(closest("keep_lsat", keys).as_deref(), Some("keep_last"));
        assert_eq!(closest("time_zone", keys).as_deref(), Some("timezone"));
        assert_eq!(closest("snapshots", keys).as_deref(), Some("snapshot"));
        assert_eq!(closest("Timezone", keys).as_deref(), Some("timezone"));
        assert_eq!(closest("frobnicate", keys), None);
        assert_eq!(closest("x", keys), None);
    }
}
