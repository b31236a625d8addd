//! The parser's limits, enforced before the parser runs: how many tokens a document has and
//! how deeply its brackets nest, found in one pass over the text that allocates nothing.
//!
//! async-graphql's parser (pest) recurses once per nested `{`, `[` or `(`, with no bound of
//! its own on lists and objects, so a megabyte of `[` would overflow a worker's stack and
//! abort the process. This scan reads strings, block strings and comments exactly as the
//! grammar does, so a bracket it skips is one the parser skips too; where the text stops being
//! valid GraphQL (a bad escape, a line break in a string) the parser stops there as well.

use std::fmt;

/// How large a document may be before it is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeLimits {
    /// Most lexical tokens (names, numbers, strings, punctuation).
    pub max_tokens: usize,
    /// Deepest nesting of `{`, `[` and `(` together.
    pub max_nesting: usize,
}

/// Why a document is refused before parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TooLarge {
    Tokens { limit: usize },
    Nesting { limit: usize },
}

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tokens { limit } => write!(
                f,
                "The document has more than {limit} tokens; at most {limit} are allowed."
            ),
            Self::Nesting { limit } => write!(
                f,
                "The document nests brackets more than {limit} deep; at most {limit} levels are allowed."
            ),
        }
    }
}

/// Refuses a document over either limit, stopping at the first token past it.
pub fn check(text: &str, limits: SizeLimits) -> Result<(), TooLarge> {
    let bytes = text.as_bytes();
    let (mut at, mut tokens, mut depth) = (0, 0usize, 0usize);
    while at < bytes.len() {
        let byte = bytes[at];
        at += 1;
        match byte {
            // Ignored: white space, commas, line terminators (a BOM is ignored too; as UTF-8 it
            // is three bytes above 0x7F and counts as a token here, which only errs on the
            // side of refusing).
            b' ' | b'\t' | b',' | b'\n' | b'\r' => continue,
            b'#' => {
                while at < bytes.len() && !matches!(bytes[at], b'\n' | b'\r') {
                    at += 1;
                }
                continue;
            }
            b'"' if bytes[at..].starts_with(b"\"\"") => at = block_string_end(bytes, at + 2),
            b'"' => match string_end(bytes, at) {
                Some(end) => at = end,
                // The parser fails here and reads no further; neither does this scan.
                None => return count(tokens + 1, limits),
            },
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > limits.max_nesting {
                    return Err(TooLarge::Nesting {
                        limit: limits.max_nesting,
                    });
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            b'.' if bytes[at..].starts_with(b"..") => at += 2,
            b'_' | b'-' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z' => {
                // A name or a number (with its fraction and exponent): one token.
                while at < bytes.len()
                    && matches!(bytes[at], b'_' | b'-' | b'+' | b'.' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
                    && !bytes[at..].starts_with(b"...")
                {
                    at += 1;
                }
            }
            _ => {}
        }
        tokens += 1;
        count(tokens, limits)?;
    }
    Ok(())
}

fn count(tokens: usize, limits: SizeLimits) -> Result<(), TooLarge> {
    if tokens > limits.max_tokens {
        return Err(TooLarge::Tokens {
            limit: limits.max_tokens,
        });
    }
    Ok(())
}

/// Past the closing quote of a string whose first character is at `at`, or `None` where the
/// grammar refuses it (a line break inside, or no closing quote).
fn string_end(bytes: &[u8], mut at: usize) -> Option<usize> {
    while at < bytes.len() {
        match bytes[at] {
            b'"' => return Some(at + 1),
            b'\n' | b'\r' => return None,
            // An escape: the next character is never the string's end. An escape the grammar
            // does not know stops the parser, which reads no further than this scan.
            b'\\' => at += 2,
            _ => at += 1,
        }
    }
    None
}

/// Past the closing `"""` of a block string whose content starts at `at` (`\"""` is content);
/// the end of the text when it is not closed.
pub(super) fn block_string_end(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() {
        if bytes[at..].starts_with(b"\\\"\"\"") {
            at += 4;
        } else if bytes[at..].starts_with(b"\"\"\"") {
            return at + 3;
        } else {
            at += 1;
        }
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: SizeLimits = SizeLimits {
        max_tokens: 100,
        max_nesting: 8,
    };

    fn tokens(text: &str) -> usize {
        (0..=1000)
            .find(|&max_tokens| {
                check(
                    text,
                    SizeLimits {
                        max_tokens,
                        max_nesting: 1000,
                    },
                )
                .is_ok()
            })
            .unwrap()
    }

    #[test]
    fn counts_names_numbers_strings_and_punctuation_once_each() {
        assert_eq!(tokens("{ me { id } }"), 6);
        assert_eq!(tokens("query Q($n: Int = -1.5e+3) { a(n: $n) }"), 19);
        assert_eq!(tokens("{ ...F } fragment F on Query { __typename }"), 11);
        assert_eq!(
            tokens(r#"{ a(s: "x { [ ( \" y", b: """ { " "" \""" """) }"#),
            11
        );
        assert_eq!(tokens("# { [ (\n{ a } # }"), 3);
        assert_eq!(tokens(" , \t\r\n"), 0);
    }

    #[test]
    fn brackets_inside_strings_and_comments_do_not_nest() {
        let inside = format!(r#"{{ a(s: "{}") }} # {}"#, "[".repeat(50), "{".repeat(50));
        assert_eq!(check(&inside, LIMITS), Ok(()));
        let block = format!(r#"{{ a(s: """{}\""" """) }}"#, "(".repeat(50));
        assert_eq!(check(&block, LIMITS), Ok(()));
    }

    #[test]
    fn refuses_past_either_limit() {
        let deep = format!("{{ a(x: {}) }}", "[".repeat(8));
        assert_eq!(check(&deep, LIMITS), Err(TooLarge::Nesting { limit: 8 }));
        let long = format!("{{ {} }}", "a ".repeat(99));
        assert_eq!(check(&long, LIMITS), Err(TooLarge::Tokens { limit: 100 }));
        let just = format!("{{ {} }}", "a ".repeat(98));
        assert_eq!(check(&just, LIMITS), Ok(()));
    }

    #[test]
    fn an_unclosed_string_ends_the_scan_where_the_parser_stops() {
        // The brackets after the broken string are never parsed, so they are not limits' concern.
        let broken = format!("{{ a(s: \"oops\n{}", "[".repeat(100));
        assert_eq!(check(&broken, LIMITS), Ok(()));
        assert!(async_graphql::parser::parse_query(&broken).is_err());
    }

    /// The deepest nesting the default limits admit parses on a stack the size of a tokio
    /// worker's, in every bracket the grammar nests (debug builds use the most stack).
    #[test]
    fn the_parser_survives_the_deepest_admitted_document_on_a_worker_sized_stack() {
        let depth = crate::interfaces::graphql::Limits::default()
            .size
            .max_nesting;
        let documents = [
            format!(
                "{{ a(x: {}1{}) }}",
                "[".repeat(depth - 2),
                "]".repeat(depth - 2)
            ),
            format!(
                "{{ a(x: {}1{}) }}",
                "{a: ".repeat(depth - 2),
                "}".repeat(depth - 2)
            ),
            format!(
                "query($v: {}Int{}) {{ a }}",
                "[".repeat(depth - 2),
                "]".repeat(depth - 2)
            ),
            format!("{}a{}", "{ a ".repeat(depth), "}".repeat(depth)),
        ];
        for document in documents {
            let limits = SizeLimits {
                max_tokens: usize::MAX,
                max_nesting: depth,
            };
            assert_eq!(check(&document, limits), Ok(()));
            std::thread::Builder::new()
                .stack_size(2 * 1024 * 1024)
                .spawn(move || {
                    let _ = async_graphql::parser::parse_query(&document);
                })
                .unwrap()
                .join()
                .expect("parsing does not overflow the stack");
        }
    }
}
