//! Input Object Field Uniqueness (GraphQL spec §5.6.3): `{email: "a", email: "b"}` is an
//! invalid document. async-graphql's parser keeps object literals in a map, so the second
//! `email` silently replaces the first and no validation rule ever sees it; the repeat is only
//! visible in the text. This pass reads the tokens of a document that has already parsed, once,
//! with an explicit stack (no recursion), and remembers the keys of each open object literal.

use std::collections::HashSet;

use async_graphql::Pos;

use super::size::block_string_end;

/// A name written twice in one object literal, and where the second one is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepeatedField {
    pub name: String,
    pub pos: Pos,
}

/// What an open bracket holds.
enum Frame<'a> {
    /// An object literal and the keys seen so far.
    Object(HashSet<&'a str>),
    /// A list literal (or a list type): a `{` inside it opens an object.
    List,
    /// A selection set, arguments, variable definitions.
    Other,
}

/// The previous significant token, as far as this pass cares.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Previous<'a> {
    /// `:` or `=`: a value follows.
    ValueStart,
    Name(&'a str, usize),
    Other,
}

/// The first repeated input field of `text`, a document the parser accepted.
pub fn first_repeat(text: &str) -> Option<RepeatedField> {
    let bytes = text.as_bytes();
    let mut stack: Vec<Frame<'_>> = Vec::new();
    let mut previous = Previous::Other;
    let mut at = 0;
    while at < bytes.len() {
        let start = at;
        let byte = bytes[at];
        at += 1;
        let token = match byte {
            b' ' | b'\t' | b',' | b'\n' | b'\r' => continue,
            b'#' => {
                while at < bytes.len() && !matches!(bytes[at], b'\n' | b'\r') {
                    at += 1;
                }
                continue;
            }
            b'"' if bytes[at..].starts_with(b"\"\"") => {
                at = block_string_end(bytes, at + 2);
                Previous::Other
            }
            b'"' => {
                at = string_end(bytes, at);
                Previous::Other
            }
            b'_' | b'a'..=b'z' | b'A'..=b'Z' => {
                while at < bytes.len()
                    && matches!(bytes[at], b'_' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
                {
                    at += 1;
                }
                Previous::Name(&text[start..at], start)
            }
            b'-' | b'0'..=b'9' => {
                while at < bytes.len()
                    && matches!(bytes[at], b'-' | b'+' | b'.' | b'0'..=b'9' | b'e' | b'E')
                    && !bytes[at..].starts_with(b"..")
                {
                    at += 1;
                }
                Previous::Other
            }
            b'{' => {
                let object =
                    previous == Previous::ValueStart || matches!(stack.last(), Some(Frame::List));
                stack.push(if object {
                    Frame::Object(HashSet::new())
                } else {
                    Frame::Other
                });
                Previous::Other
            }
            b'[' => {
                stack.push(Frame::List);
                Previous::Other
            }
            b'(' => {
                stack.push(Frame::Other);
                Previous::Other
            }
            b'}' | b']' | b')' => {
                stack.pop();
                Previous::Other
            }
            b':' => {
                // A name followed by `:` directly inside an object literal is one of its keys.
                if let (Previous::Name(name, offset), Some(Frame::Object(keys))) =
                    (previous, stack.last_mut())
                    && !keys.insert(name)
                {
                    return Some(RepeatedField {
                        name: name.to_owned(),
                        pos: position(text, offset),
                    });
                }
                Previous::ValueStart
            }
            b'=' => Previous::ValueStart,
            b'.' if bytes[at..].starts_with(b"..") => {
                at += 2;
                Previous::Other
            }
            _ => Previous::Other,
        };
        previous = token;
    }
    None
}

/// Past the closing quote of a string whose first character is at `at` (the parser accepted
/// it, so it is closed on its line).
fn string_end(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() {
        match bytes[at] {
            b'"' => return at + 1,
            b'\\' => at += 2,
            _ => at += 1,
        }
    }
    at
}

/// The line and column (in characters, both from 1) of a byte offset, as the parser counts.
fn position(text: &str, offset: usize) -> Pos {
    let before = &text[..offset];
    let line_start = before.rfind(['\n', '\r']).map_or(0, |i| i + 1);
    Pos {
        line: before.matches('\n').count() + before.matches('\r').count()
            - before.matches("\r\n").count()
            + 1,
        column: before[line_start..].chars().count() + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repeat(text: &str) -> Option<(String, usize, usize)> {
        assert!(
            async_graphql::parser::parse_query(text).is_ok(),
            "a valid document: {text}"
        );
        first_repeat(text).map(|r| (r.name, r.pos.line, r.pos.column))
    }

    #[test]
    fn finds_a_key_written_twice_in_any_object_literal() {
        assert_eq!(
            repeat(
                r#"mutation { register(input: {email: "a", password: "p", email: "b"}) { id } }"#
            ),
            Some(("email".into(), 1, 56))
        );
        assert_eq!(
            repeat("query($v: In = {a: 1, a: 2}) { f(x: $v) }"),
            Some(("a".into(), 1, 23))
        );
        assert_eq!(
            repeat("{ f(x: [{a: 1} {b: {c: 1, c: 2}}]) }"),
            Some(("c".into(), 1, 27))
        );
        assert_eq!(
            repeat("{ f @skip(if: {a: B a: C}) }"),
            Some(("a".into(), 1, 21))
        );
        assert_eq!(
            repeat("# é\n{ f(x: {a: 1,\n a: 2}) }"),
            Some(("a".into(), 3, 2))
        );
    }

    #[test]
    fn the_same_name_elsewhere_is_no_repeat() {
        for text in [
            "{ a: f(a: 1) b: f(a: {a: 1, b: {a: 2}}) }",
            r#"{ f(x: {s: "a: 1, a: 2", t: """ {a: 1, a: 2} """}) }"#,
            "# {a: 1, a: 2}\n{ f(x: {a: 1}) g(x: {a: 1}) }",
            "{ f(x: [{a: 1}, {a: 2}]) }",
            "query($a: [In] = [{a: 1}, {a: 1}], $b: Int = -1.5e+3) { ...F } fragment F on Q { f(a: $a) }",
            "{ a: f { a: g } a: f { a: g } }",
        ] {
            assert_eq!(repeat(text), None, "{text}");
        }
    }

    #[test]
    fn a_huge_flat_object_is_read_once() {
        let keys: Vec<String> = (0..50_000).map(|i| format!("k{i}: {i}")).collect();
        let text = format!("{{ f(x: {{{}, k7: 0}}) }}", keys.join(", "));
        assert_eq!(first_repeat(&text).map(|r| r.name), Some("k7".into()));
    }
}
