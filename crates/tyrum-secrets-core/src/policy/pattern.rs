//! `*` wildcard patterns used by policy rules.

/// A pattern where `*` matches any run of characters (including none and
/// including `/`). Every other character matches itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pattern {
    parts: Vec<String>,
}

impl Pattern {
    /// Compiles `text`. Never fails: callers validate the alphabet first.
    pub(crate) fn new(text: &str) -> Self {
        Self {
            parts: text.split('*').map(str::to_owned).collect(),
        }
    }

    /// Whether `candidate` matches the whole pattern.
    pub(crate) fn matches(&self, candidate: &str) -> bool {
        // `split` always yields at least one part.
        let Some((first, rest)) = self.parts.split_first() else {
            return candidate.is_empty();
        };
        let Some((last, middle)) = rest.split_last() else {
            // No `*` at all: exact match.
            return candidate == first;
        };
        let Some(mut remaining) = candidate.strip_prefix(first.as_str()) else {
            return false;
        };
        // Leftmost match of each middle part is optimal for `*`-only globs.
        for part in middle {
            match remaining.find(part.as_str()) {
                Some(at) => remaining = &remaining[at + part.len()..],
                None => return false,
            }
        }
        remaining.len() >= last.len() && remaining.ends_with(last.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wildcards_match_any_run_including_slashes() {
        let cases: &[(&str, &str, bool)] = &[
            ("file:workspace/acme", "file:workspace/acme", true),
            ("file:workspace/acme", "file:workspace/acme2", false),
            ("file:workspace/*", "file:workspace/acme/ci", true),
            ("file:workspace/*", "file:workspace", false),
            ("*:workspace/acme", "vault-eu:workspace/acme", true),
            ("*", "", true),
            ("a*b*c", "abc", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "acb", false),
            ("*.github.com", "api.github.com", true),
            ("*.github.com", "github.com", false),
            ("ab*ba", "aba", false),
        ];
        for (pattern, candidate, expected) in cases {
            assert_eq!(
                Pattern::new(pattern).matches(candidate),
                *expected,
                "{pattern} vs {candidate}"
            );
        }
    }

    fn reference(pattern: &[u8], text: &[u8]) -> bool {
        match (pattern.split_first(), text.split_first()) {
            (None, _) => text.is_empty(),
            (Some((b'*', p)), _) => {
                reference(p, text) || (!text.is_empty() && reference(pattern, &text[1..]))
            }
            (Some((c, p)), Some((t, rest))) => c == t && reference(p, rest),
            (Some(_), None) => false,
        }
    }

    proptest! {
        #[test]
        fn matches_like_the_recursive_definition(pattern in "[ab*]{0,8}", text in "[ab]{0,10}") {
            prop_assert_eq!(Pattern::new(&pattern).matches(&text), reference(pattern.as_bytes(), text.as_bytes()));
        }
    }
}
