//! Full-text search: what a query means, and the results with their matches marked.
//!
//! A query is a few words; a message matches when it has every one of them as a word (ignoring
//! letter case), or, for a word typed with a trailing `*`, a word starting with it. Anything that
//! is not a letter or a digit separates words, in the query as in the messages, so a query has no
//! syntax to get wrong: `"`, `AND` or `(` are not operators but text. [`Query::parse`] reads what a
//! person typed; the server's and the client's indexes are asked it in their own syntax
//! ([`Query::fts5`] for SQLite's FTS5, [`Query::tsquery`] for PostgreSQL), and [`Query::highlight`]
//! marks the words it matched in a result, the same way for every index.

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use super::model::Message;

/// The longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 200;
/// The most words a query may have.
pub const MAX_QUERY_WORDS: usize = 8;
/// The fewest characters a word typed with a trailing `*` needs before it: a shorter prefix
/// would match most of the index.
pub const MIN_PREFIX_CHARS: usize = 3;
/// The longest stretch of a message a hit shows, in characters (as [`Query::highlight`] cuts it).
pub const HIT_CHARS: usize = 200;
/// How many hits one answer holds when the request does not say.
pub const DEFAULT_SEARCH_LIMIT: u32 = 20;
/// The most hits one answer holds.
pub const MAX_SEARCH_LIMIT: u32 = 50;

/// Search results, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchResults {
    pub hits: Vec<SearchHit>,
    /// Whether older hits exist: ask again with `before` set to the last hit's id.
    pub has_more: bool,
    /// Answered from a client's own copy of the messages, because the server could not be
    /// asked (offline or locked): what that client never loaded is missing. The server always
    /// says `false`.
    #[serde(default)]
    pub cached: bool,
}

/// A message that matched, and the stretch of its body to show with the matched words marked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchHit {
    pub message: Message,
    /// The body (or, when long, the stretch around its first match, with `…` where it was cut)
    /// as consecutive pieces; joined they are the text to show. Plain text, never HTML.
    pub highlight: Vec<Fragment>,
}

/// A piece of a hit's text: a matched word, or the text between matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Fragment {
    pub text: String,
    /// Whether this piece is a word the query matched.
    pub hit: bool,
}

/// Why a query cannot be run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryError {
    /// No word to search for.
    Empty,
    /// Over [`MAX_QUERY_CHARS`] characters or [`MAX_QUERY_WORDS`] words.
    TooLong,
    /// A `*` after fewer than [`MIN_PREFIX_CHARS`] characters.
    ShortPrefix,
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueryError::Empty => f.write_str("type a word to search for"),
            QueryError::TooLong => write!(
                f,
                "a search is at most {MAX_QUERY_WORDS} words and {MAX_QUERY_CHARS} characters"
            ),
            QueryError::ShortPrefix => write!(
                f,
                "a word ending in * needs at least {MIN_PREFIX_CHARS} letters before it"
            ),
        }
    }
}

impl std::error::Error for QueryError {}

/// One word of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Word {
    /// In lower case; only letters and digits.
    text: String,
    /// Typed with a trailing `*`: matches any word starting with `text`.
    prefix: bool,
}

/// A parsed query: one or more words, every one of which a message must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    words: Vec<Word>,
}

impl Query {
    /// Reads what a person typed. Words repeated count once.
    pub fn parse(input: &str) -> Result<Query, QueryError> {
        if input.chars().nth(MAX_QUERY_CHARS).is_some() {
            return Err(QueryError::TooLong);
        }
        let mut words: Vec<Word> = Vec::new();
        for (range, text) in words_of(input) {
            let prefix = input[range.end..].starts_with('*');
            if prefix && text.chars().count() < MIN_PREFIX_CHARS {
                return Err(QueryError::ShortPrefix);
            }
            let word = Word { text, prefix };
            if !words.contains(&word) {
                words.push(word);
            }
        }
        if words.is_empty() {
            return Err(QueryError::Empty);
        }
        if words.len() > MAX_QUERY_WORDS {
            return Err(QueryError::TooLong);
        }
        Ok(Query { words })
    }

    /// The query in SQLite FTS5's syntax: each word a quoted string (prefixes starred), all
    /// required. The words hold only letters and digits, so nothing in them is syntax.
    pub fn fts5(&self) -> String {
        let mut out = String::new();
        for (i, word) in self.words.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push('"');
            out.push_str(&word.text);
            out.push('"');
            if word.prefix {
                out.push('*');
            }
        }
        out
    }

    /// The query as PostgreSQL's `to_tsquery('simple', …)` reads it: the words joined by `&`,
    /// prefixes marked `:*`. The words hold only letters and digits, so nothing in them is syntax.
    pub fn tsquery(&self) -> String {
        let mut out = String::new();
        for (i, word) in self.words.iter().enumerate() {
            if i > 0 {
                out.push_str(" & ");
            }
            out.push_str(&word.text);
            if word.prefix {
                out.push_str(":*");
            }
        }
        out
    }

    /// Whether `word` (as [`words_of`] gives it) is one the query asks for. Accents are ignored,
    /// as SQLite's index ignores them.
    fn matches(&self, word: &str) -> bool {
        let word = unaccented(word);
        self.words.iter().any(|w| {
            let wanted = unaccented(&w.text);
            if w.prefix {
                word.starts_with(&wanted)
            } else {
                word == wanted
            }
        })
    }

    /// `body` as pieces, the words the query matched marked; a body longer than [`HIT_CHARS`]
    /// is cut to a stretch of that many characters that starts a little before its first match.
    pub fn highlight(&self, body: &str) -> Vec<Fragment> {
        let hits: Vec<std::ops::Range<usize>> = words_of(body)
            .filter(|(_, word)| self.matches(word))
            .map(|(range, _)| range)
            .collect();
        let (start, end) = stretch(body, hits.first().map_or(0, |r| r.start));
        let mut out = Vec::new();
        let mut push = |text: &str, hit: bool| {
            if !text.is_empty() {
                out.push(Fragment {
                    text: text.to_owned(),
                    hit,
                });
            }
        };
        let mut at = start;
        let mut lead = if start > 0 { "…" } else { "" }.to_owned();
        for range in hits
            .into_iter()
            .filter(|r| r.start >= start && r.end <= end)
        {
            lead.push_str(&body[at..range.start]);
            push(&lead, false);
            lead.clear();
            push(&body[range.clone()], true);
            at = range.end;
        }
        lead.push_str(&body[at..end]);
        if end < body.len() {
            lead.push('…');
        }
        push(&lead, false);
        out
    }
}

/// Each word of `text` with its byte range: a run of letters and digits, in lower case.
fn words_of(text: &str) -> impl Iterator<Item = (std::ops::Range<usize>, String)> + '_ {
    let mut chars = text.char_indices().peekable();
    std::iter::from_fn(move || {
        while chars.peek().is_some_and(|&(_, c)| !is_word_char(c)) {
            chars.next();
        }
        let &(start, _) = chars.peek()?;
        let mut end = start;
        while let Some(&(at, c)) = chars.peek() {
            if !is_word_char(c) {
                break;
            }
            end = at + c.len_utf8();
            chars.next();
        }
        Some((start..end, text[start..end].to_lowercase()))
    })
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || is_combining_mark(c)
}

/// `word` without its accents: decomposed, combining marks dropped.
fn unaccented(word: &str) -> String {
    word.nfd().filter(|&c| !is_combining_mark(c)).collect()
}

/// The byte range of `body` a hit shows: all of it when short enough, else [`HIT_CHARS`]
/// characters starting a few words before `first` (the first match) — or ending at the end.
fn stretch(body: &str, first: usize) -> (usize, usize) {
    /// How many characters of context come before the first match.
    const BEFORE: usize = 40;
    if body.chars().nth(HIT_CHARS).is_none() {
        return (0, body.len());
    }
    let before = body[..first].chars().count();
    let after = body[first..].chars().count();
    // Start BEFORE characters ahead of the match, earlier if the stretch would run out of body.
    let back = BEFORE.max(HIT_CHARS.saturating_sub(after)).min(before);
    let start = body[..first]
        .char_indices()
        .nth(before - back)
        .map_or(first, |(at, _)| at);
    let end = body[start..]
        .char_indices()
        .nth(HIT_CHARS)
        .map_or(body.len(), |(at, _)| start + at);
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(fragments: &[Fragment]) -> String {
        fragments
            .iter()
            .map(|f| {
                if f.hit {
                    format!("[{}]", f.text)
                } else {
                    f.text.clone()
                }
            })
            .collect()
    }

    #[test]
    fn words_are_letters_and_digits_in_lower_case() {
        let q = Query::parse("  Deploy, the \"v2\" (AND) release!").unwrap();
        assert_eq!(q.fts5(), r#""deploy" "the" "v2" "and" "release""#);
        assert_eq!(q.tsquery(), "deploy & the & v2 & and & release");
    }

    #[test]
    fn a_trailing_star_asks_for_a_prefix() {
        let q = Query::parse("depl* notes").unwrap();
        assert_eq!(q.fts5(), r#""depl"* "notes""#);
        assert_eq!(q.tsquery(), "depl:* & notes");
        assert_eq!(Query::parse("de*"), Err(QueryError::ShortPrefix));
    }

    #[test]
    fn a_query_without_words_or_too_long_is_refused() {
        assert_eq!(Query::parse(""), Err(QueryError::Empty));
        assert_eq!(Query::parse(" \"*()&|' "), Err(QueryError::Empty));
        assert_eq!(
            Query::parse(&"a ".repeat(9)),
            Ok(Query::parse("a").unwrap())
        );
        assert_eq!(Query::parse("a b c d e f g h i"), Err(QueryError::TooLong));
        assert_eq!(
            Query::parse(&"x".repeat(MAX_QUERY_CHARS + 1)),
            Err(QueryError::TooLong)
        );
        assert!(Query::parse(&"x".repeat(MAX_QUERY_CHARS)).is_ok());
    }

    #[test]
    fn highlight_marks_every_matched_word_and_keeps_the_text() {
        let q = Query::parse("deploy café").unwrap();
        let body = "Deploy at the cafe; deployment after. DEPLOY!";
        let fragments = q.highlight(body);
        assert_eq!(
            shown(&fragments),
            "[Deploy] at the [cafe]; deployment after. [DEPLOY]!"
        );
        let joined: String = fragments.iter().map(|f| f.text.as_str()).collect();
        assert_eq!(joined, body);
        let prefixed = Query::parse("deploy*").unwrap().highlight(body);
        assert_eq!(
            shown(&prefixed),
            "[Deploy] at the cafe; [deployment] after. [DEPLOY]!"
        );
    }

    #[test]
    fn a_long_body_is_cut_around_its_first_match() {
        let body = format!("{} needle {}", "lead ".repeat(100), "tail ".repeat(100));
        let fragments = Query::parse("needle").unwrap().highlight(&body);
        let text = shown(&fragments);
        assert!(text.starts_with('…') && text.ends_with('…'), "{text}");
        assert!(text.contains("[needle]"), "{text}");
        // The cut text plus the two ellipses.
        assert_eq!(
            fragments
                .iter()
                .map(|f| f.text.chars().count())
                .sum::<usize>(),
            HIT_CHARS + 2
        );
        // A match near the end shows the stretch that ends there.
        let late = format!("{} needle", "lead ".repeat(100));
        let text = shown(&Query::parse("needle").unwrap().highlight(&late));
        assert!(
            text.starts_with('…') && text.ends_with("[needle]"),
            "{text}"
        );
    }

    #[test]
    fn multibyte_text_is_cut_on_character_boundaries() {
        let body = format!("{}ÉTÉ {}", "é中😀 ".repeat(80), "中😀 ".repeat(80));
        let fragments = Query::parse("été").unwrap().highlight(&body);
        assert!(shown(&fragments).contains("[ÉTÉ]"));
    }
}
