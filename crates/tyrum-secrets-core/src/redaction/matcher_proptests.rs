//! Properties of the matcher against a plain reference, and of the
//! writer's exact hold-back.
//!
//! - Differential: the redactor (on its few-values path and on the index)
//!   and [`Reference`] (aho-corasick leftmost-longest over the same
//!   patterns, with the same merge) give identical output on text seeded
//!   with values, variants, near-misses, cut-off variants and overlaps, for
//!   values sharing prefixes and values inside other values, after
//!   registrations and removals.
//! - Hold-back: any split of any input through the writer gives what
//!   `redact_bytes` gives; after each write the writer holds back exactly
//!   the longest tail that is a proper prefix of a pattern (when nothing
//!   matched), and nothing when no tail can begin one.

use std::io::Write as _;

use proptest::prelude::*;

use super::reference::Reference;
use super::tests::{handle, secret};
use super::*;

/// Values that stress the matcher: token-like, arbitrary bytes, sharing a
/// prefix with each other, continuing another value, lying inside one, or
/// overlapping one.
fn values() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let one = prop_oneof![
        "[A-Za-z0-9_+/=-]{8,40}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 8..32),
        "\\PC{4,12}".prop_map(String::into_bytes),
    ]
    .prop_filter("at least the minimum", |v| v.len() >= DEFAULT_MIN_VALUE_LEN);
    (
        proptest::collection::vec(one, 1..10),
        proptest::collection::vec(
            (any::<prop::sample::Index>(), 0u8..5, "[a-z0-9]{1,12}"),
            0..6,
        ),
    )
        .prop_map(|(mut values, derived)| {
            for (which, how, extra) in derived {
                let base = which.get(&values).clone();
                let derived = match how {
                    // Shares a prefix (the anchor and more) with `base`.
                    0 => [&base[..base.len().min(12)], extra.as_bytes()].concat(),
                    // Lies inside `base`.
                    1 => base[base.len() / 4..].to_vec(),
                    // Has `base` inside it.
                    2 => [extra.as_bytes(), &base, extra.as_bytes()].concat(),
                    // Continues `base` (which is then a prefix of it).
                    3 => [&base[..], extra.as_bytes()].concat(),
                    // Starts where `base` ends (overlap).
                    _ => [&base[base.len() / 2..], extra.as_bytes(), b"-tail"].concat(),
                };
                if derived.len() >= DEFAULT_MIN_VALUE_LEN {
                    values.push(derived);
                }
            }
            values
        })
}

/// Text built from ordinary pieces and forms of `forms`: whole, with one
/// byte changed, cut short, or two run together.
fn text_from(forms: &[Vec<u8>], pieces: &[(String, prop::sample::Index, u8, usize)]) -> Vec<u8> {
    let mut text = Vec::new();
    for (filler, which, how, at) in pieces {
        text.extend_from_slice(filler.as_bytes());
        let form = which.get(forms);
        match how {
            0 | 1 => text.extend_from_slice(form),
            2 => {
                let mut near = form.clone();
                let i = at % near.len();
                near[i] = near[i].wrapping_add(1);
                text.extend_from_slice(&near);
            }
            3 => text.extend_from_slice(&form[..at % form.len()]),
            _ => {
                text.extend_from_slice(form);
                text.extend_from_slice(&which.get(forms)[at % form.len()..]);
            }
        }
    }
    text
}

/// Every (variant, placeholder) a redactor with minimum length `min`
/// holding `values` (value `i` under `handle(owners[i])`, in order)
/// matches, in registration order.
fn patterns_min(values: &[Vec<u8>], owners: &[u32], min: usize) -> Vec<(Vec<u8>, String)> {
    values
        .iter()
        .zip(owners)
        .flat_map(|(v, owner)| {
            encoded_variants(&secret(v), min)
                .into_iter()
                .map(move |form| {
                    (
                        form.expose_secret().to_vec(),
                        format!("[{}]", handle(*owner)),
                    )
                })
        })
        .collect()
}

fn patterns(values: &[Vec<u8>], owners: &[u32]) -> Vec<(Vec<u8>, String)> {
    patterns_min(values, owners, DEFAULT_MIN_VALUE_LEN)
}

fn through_writer(redactor: &Redactor, input: &[u8], chunks: &[usize]) -> Vec<u8> {
    let mut writer = redactor.writer(Vec::new());
    let mut rest = input;
    for size in chunks.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at((*size).min(rest.len()));
        writer.write_all(chunk).unwrap();
        rest = tail;
    }
    writer.finish().unwrap()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The longest tail of `stream` that is a proper prefix of a pattern.
fn open_tail(stream: &[u8], patterns: &[(Vec<u8>, String)]) -> usize {
    patterns
        .iter()
        .flat_map(|(p, _)| (1..p.len()).filter(|&t| stream.ends_with(&p[..t])))
        .max()
        .unwrap_or(0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn matcher_agrees_with_the_aho_corasick_reference(
        values in values(),
        shared_handles in proptest::collection::vec(0u32..4, 0..12),
        removed in proptest::collection::vec(any::<prop::sample::Index>(), 0..3),
        pieces in proptest::collection::vec(
            ("[ -~]{0,12}", any::<prop::sample::Index>(), 0u8..5, any::<usize>()), 1..10),
        index_only in any::<bool>(),
        min in prop_oneof![Just(DEFAULT_MIN_VALUE_LEN), 1usize..13],
    ) {
        // Shorter minimums shrink the scan's window (below 8 bytes) and
        // stride; longer ones refuse some values.
        let redactor = Redactor::with_min_value_len(min);
        let redactor = if index_only { redactor.index_only() } else { redactor };
        let values: Vec<Vec<u8>> = values.into_iter().filter(|v| v.len() >= min).collect();
        // Value `i` goes under handle `i`, or a shared handle (several
        // values per handle, as versions of one secret).
        let owners: Vec<u32> = (0..values.len())
            .map(|i| shared_handles.get(i).copied().unwrap_or(100 + u32::try_from(i).unwrap()))
            .collect();
        for (value, owner) in values.iter().zip(&owners) {
            redactor.register(&handle(*owner), &secret(value)).unwrap();
        }
        let mut kept: Vec<(Vec<u8>, u32)> = Vec::new();
        for (value, owner) in values.iter().zip(&owners) {
            if !kept.iter().any(|(v, o)| v == value && o == owner) {
                kept.push((value.clone(), *owner));
            }
        }
        for which in removed {
            if kept.is_empty() {
                break;
            }
            let (value, owner) = kept.remove(which.index(kept.len()));
            prop_assert!(redactor.remove_value(&handle(owner), &secret(&value)));
        }
        let (kept_values, kept_owners): (Vec<Vec<u8>>, Vec<u32>) = kept.into_iter().unzip();
        let expected_patterns = patterns_min(&kept_values, &kept_owners, min);
        let reference = Reference::new(&expected_patterns);

        let mut forms: Vec<Vec<u8>> =
            patterns_min(&values, &owners, min).into_iter().map(|(p, _)| p).collect();
        prop_assume!(!forms.is_empty());
        forms.push(b"ordinary text".to_vec());
        let text = text_from(&forms, &pieces);
        let expected = reference.replace_bytes(&text);
        let redacted = redactor.redact_bytes(&text).into_inner().into_owned();
        prop_assert_eq!(&redacted, &expected);
        if let (Ok(text), Ok(expected)) = (std::str::from_utf8(&text), std::str::from_utf8(&expected)) {
            let out = redactor.redact_str(text);
            prop_assert_eq!(out.as_str(), expected);
        }
    }

    #[test]
    fn writer_output_is_redact_bytes_and_holds_back_exactly_an_open_tail(
        values in values(),
        pieces in proptest::collection::vec(
            ("[ -~]{0,12}", any::<prop::sample::Index>(), 0u8..5, any::<usize>()), 1..8),
        chunks in proptest::collection::vec(1usize..24, 1..8),
        index_only in any::<bool>(),
        min in prop_oneof![Just(DEFAULT_MIN_VALUE_LEN), 1usize..9],
    ) {
        let redactor = Redactor::with_min_value_len(min);
        let redactor = if index_only { redactor.index_only() } else { redactor };
        let owners: Vec<u32> = (0..values.len()).map(|i| u32::try_from(i).unwrap()).collect();
        for (value, owner) in values.iter().zip(&owners) {
            redactor.register(&handle(*owner), &secret(value)).unwrap();
        }
        let patterns = patterns_min(&values, &owners, min);
        let forms: Vec<Vec<u8>> = patterns.iter().map(|(p, _)| p.clone()).collect();
        let text = text_from(&forms, &pieces);

        let expected = redactor.redact_bytes(&text).into_inner().into_owned();
        prop_assert_eq!(through_writer(&redactor, &text, &chunks), expected);

        // While no pattern has matched, what is held back is exactly the
        // longest tail that may still become one.
        let mut writer = redactor.writer(Vec::new());
        let mut written = 0;
        for size in chunks.iter().cycle() {
            if written == text.len() {
                break;
            }
            let end = (written + size).min(text.len());
            writer.write_all(&text[written..end]).unwrap();
            written = end;
            let stream = &text[..written];
            if patterns.iter().any(|(p, _)| contains(stream, p)) {
                break;
            }
            prop_assert_eq!(writer.held_back(), open_tail(stream, &patterns));
        }
    }

    #[test]
    fn writer_holds_back_nothing_when_no_tail_can_begin_a_pattern(
        values in values(),
        text in proptest::collection::vec(any::<u8>(), 0..400),
        chunks in proptest::collection::vec(1usize..24, 1..8),
        index_only in any::<bool>(),
    ) {
        let redactor = if index_only { Redactor::new().index_only() } else { Redactor::new() };
        let owners: Vec<u32> = (0..values.len()).map(|i| u32::try_from(i).unwrap()).collect();
        for (value, owner) in values.iter().zip(&owners) {
            redactor.register(&handle(*owner), &secret(value)).unwrap();
        }
        // Text in the bytes no pattern begins with: it shares no window
        // with any pattern, and none of its tails begins one.
        let patterns = patterns(&values, &owners);
        let alphabet: Vec<u8> = (0..=255u8)
            .filter(|b| !patterns.iter().any(|(p, _)| p.first() == Some(b)))
            .collect();
        prop_assume!(!alphabet.is_empty());
        let text: Vec<u8> = text.iter().map(|b| alphabet[usize::from(*b) % alphabet.len()]).collect();

        let sink = Vec::new();
        let mut writer = redactor.writer(sink);
        let mut rest = &text[..];
        for size in chunks.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (chunk, tail) = rest.split_at((*size).min(rest.len()));
            writer.write_all(chunk).unwrap();
            prop_assert_eq!(writer.held_back(), 0);
            rest = tail;
        }
        prop_assert_eq!(writer.finish().unwrap(), text);
    }
}
