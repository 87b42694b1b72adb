//! Header and other templates: `{{secret:<id>}}` placeholders among
//! literal text.

use super::{InjectError, contains_handle};
use crate::HandleId;
use crate::handle::HANDLE_PREFIX;

/// One piece of a parsed template.
pub(super) enum Segment<'a> {
    Literal(&'a str),
    Handle(HandleId),
}

pub(super) fn parse_template(template: &str) -> Result<Vec<Segment<'_>>, InjectError> {
    let mut segments = Vec::new();
    let mut rest = template;
    let mut offset = 0;
    while let Some(open) = rest.find("{{") {
        let inner_start = open + 2;
        let inner = rest[inner_start..].trim_start_matches(' ');
        if !inner.starts_with(HANDLE_PREFIX) {
            // Step over one `{` only, so that `{{{secret:<id>}}}` still finds
            // the placeholder that starts at the second brace.
            literal(&mut segments, &rest[..open + 1], offset)?;
            offset += open + 1;
            rest = &rest[open + 1..];
            continue;
        }
        let Some(close) = rest[inner_start..].find("}}") else {
            return Err(InjectError::UnterminatedPlaceholder {
                position: offset + open,
            });
        };
        let text = rest[inner_start..inner_start + close].trim_matches(' ');
        let id = text
            .parse::<HandleId>()
            .map_err(|source| InjectError::MalformedHandle {
                at: format!("byte {}", offset + open),
                source,
            })?;
        if open > 0 {
            literal(&mut segments, &rest[..open], offset)?;
        }
        segments.push(Segment::Handle(id));
        let end = inner_start + close + 2;
        offset += end;
        rest = &rest[end..];
    }
    if !rest.is_empty() {
        literal(&mut segments, rest, offset)?;
    }
    Ok(segments)
}

/// Adds literal template text, refusing a handle written outside `{{ }}`:
/// it would be sent as the handle's text rather than its value.
fn literal<'a>(
    segments: &mut Vec<Segment<'a>>,
    text: &'a str,
    offset: usize,
) -> Result<(), InjectError> {
    if contains_handle(text) {
        return Err(InjectError::EmbeddedHandle {
            at: format!("byte {offset}"),
        });
    }
    segments.push(Segment::Literal(text));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_parser_splits_literals_and_handles() {
        let id = HandleId::generate().unwrap();
        let template = format!("Bearer {{{{ {id} }}}} and {{{{name}}}}");
        let segments = parse_template(&template).unwrap();
        let shape: Vec<String> = segments
            .iter()
            .map(|s| match s {
                Segment::Literal(t) => format!("L({t})"),
                Segment::Handle(h) => format!("H({h})"),
            })
            .collect();
        assert_eq!(
            shape.concat(),
            format!("L(Bearer )H({id})L( and {{)L({{name}}}})")
        );
    }

    #[test]
    fn malformed_and_unterminated_placeholders_are_errors() {
        assert!(matches!(
            parse_template("x {{secret:short}}"),
            Err(InjectError::MalformedHandle { .. })
        ));
        assert!(matches!(
            parse_template("x {{secret:abcdefghijklmnopqrstuvwxyz"),
            Err(InjectError::UnterminatedPlaceholder { position: 2 })
        ));
        assert_eq!(parse_template("plain {{ name }}").unwrap().len(), 2);
    }

    proptest::proptest! {
        #[test]
        fn template_parser_never_panics_and_keeps_every_literal_byte(
            template in "(\\{|\\}| |secret:|[A-Za-z0-9_-]{1,30}|é|😀)*"
        ) {
            if let Ok(segments) = parse_template(&template) {
                // Without handles, the literals are the template itself.
                if segments.iter().all(|s| matches!(s, Segment::Literal(_))) {
                    let joined: String = segments
                        .iter()
                        .map(|s| match s {
                            Segment::Literal(t) => *t,
                            Segment::Handle(_) => "",
                        })
                        .collect();
                    proptest::prop_assert_eq!(joined, template);
                }
            }
        }
    }
}
