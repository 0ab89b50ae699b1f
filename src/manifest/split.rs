//! Finds the `[[songs]]` tables in a manifest's text so each can be parsed
//! on its own. Parsing the whole file at once holds its every token and
//! every value (with spans) in memory together: about 45 times the file's
//! size, half a gigabyte for 10,000 songs. Song by song, only one song's
//! tables are alive at a time, so the cost is the text plus the plan.
//!
//! The scan uses the TOML lexer itself (so strings, multi-line strings and
//! comments that look like headers are never mistaken for them) and only
//! tracks bracket depth to tell a table header from an array value. A song
//! is its `[[songs]]` header and everything up to the next header that is
//! not one of its own `[songs.*]`/`[[songs.*]]` sub-tables. Whatever the
//! scan is not sure of (a `songs.*` table after another table, a quoted
//! key with escapes, unbalanced brackets) makes it give up, and the caller
//! parses the file whole, as before: slower, never different.

use std::ops::Range;

use toml_parser::Source;
use toml_parser::lexer::{Token, TokenKind};

/// The byte range of every `[[songs]]` table (with its sub-tables) in
/// `text`, in order; `None` when the text must be parsed whole.
pub(super) fn song_tables(text: &str) -> Option<Vec<Range<usize>>> {
    let source = Source::new(text);
    let mut tokens = source.lex().peekable();
    let mut songs = Vec::new();
    let mut current: Option<usize> = None;
    let (mut depth, mut line_start) = (0usize, true);
    while let Some(token) = tokens.next() {
        match token.kind() {
            TokenKind::Newline => line_start = true,
            TokenKind::Whitespace => {}
            TokenKind::LeftSquareBracket if depth == 0 && line_start => {
                let start = token.span().start();
                let (array, key) = header(text, &mut tokens)?;
                match (array, key.as_str(), current) {
                    (true, "songs", _) => {
                        songs.extend(current.map(|s| s..start));
                        current = Some(start);
                    }
                    (_, k, Some(_)) if k.starts_with("songs.") => {}
                    (_, k, _) if k == "songs" || k.starts_with("songs.") => return None,
                    _ => songs.extend(current.take().map(|s| s..start)),
                }
                line_start = false;
            }
            TokenKind::LeftSquareBracket | TokenKind::LeftCurlyBracket => {
                depth += 1;
                line_start = false;
            }
            TokenKind::RightSquareBracket | TokenKind::RightCurlyBracket => {
                depth = depth.checked_sub(1)?;
                line_start = false;
            }
            TokenKind::Eof => break,
            _ => line_start = false,
        }
    }
    songs.extend(current.map(|s| s..text.len()));
    Some(songs)
}

/// Reads a table header after its first `[`: whether it is an array table
/// (`[[...]]`) and its dotted key with quotes removed. `None` for a header
/// the scan does not understand.
fn header(
    text: &str,
    tokens: &mut std::iter::Peekable<impl Iterator<Item = Token>>,
) -> Option<(bool, String)> {
    let array = tokens
        .next_if(|t| t.kind() == TokenKind::LeftSquareBracket)
        .is_some();
    let mut key = String::new();
    loop {
        let token = tokens.next()?;
        let raw = &text[token.span().start()..token.span().end()];
        match token.kind() {
            TokenKind::Whitespace => {}
            TokenKind::Atom | TokenKind::Dot => key.push_str(raw),
            TokenKind::BasicString | TokenKind::LiteralString if !raw.contains('\\') => {
                key.push_str(raw.get(1..raw.len().checked_sub(1)?)?)
            }
            TokenKind::RightSquareBracket => break,
            _ => return None,
        }
    }
    if array && tokens.next()?.kind() != TokenKind::RightSquareBracket {
        return None;
    }
    Some((array, key))
}

/// `text` without the song tables: each replaced by its newlines only, so
/// the rest (`[limits]`, `[defaults]`) parses small and keeps its lines.
pub(super) fn skeleton(text: &str, songs: &[Range<usize>]) -> String {
    let mut out = String::new();
    let mut at = 0;
    for song in songs {
        out.push_str(&text[at..song.start]);
        let lines = text[song.clone()].bytes().filter(|&b| b == b'\n').count();
        out.extend(std::iter::repeat_n('\n', lines));
        at = song.end;
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(text: &str) -> Option<Vec<&str>> {
        song_tables(text).map(|v| v.into_iter().map(|r| &text[r]).collect())
    }

    #[test]
    fn songs_end_at_the_next_song_or_other_table() {
        let text = "[limits]\nmax_stems = 3\n[[songs]]\nid = \"a\"\n[songs.reference]\npath = \"r\"\n[[songs.stems]]\nname = \"x\"\n[[ songs ]]\nid = \"b\"\n[defaults]\nseed = 1\n";
        assert_eq!(
            tables(text).unwrap(),
            vec![
                "[[songs]]\nid = \"a\"\n[songs.reference]\npath = \"r\"\n[[songs.stems]]\nname = \"x\"\n",
                "[[ songs ]]\nid = \"b\"\n",
            ]
        );
        let sk = skeleton(text, &song_tables(text).unwrap());
        assert_eq!(
            sk,
            "[limits]\nmax_stems = 3\n\n\n\n\n\n\n\n\n[defaults]\nseed = 1\n"
        );
        assert_eq!(sk.lines().count(), text.lines().count());
    }

    #[test]
    fn headers_inside_strings_comments_and_arrays_are_not_headers() {
        let text = "[[songs]]\nid = \"a\"\nnote = \"\"\"\n[[songs]]\n\"\"\"\n# [[songs]]\nx = [\n[[1]],\n]\n";
        assert_eq!(tables(text).unwrap(), vec![text]);
    }

    #[test]
    fn unclear_layouts_are_parsed_whole() {
        for text in [
            "[[songs]]\nid = \"a\"\n[defaults]\n[[songs.stems]]\nname = \"x\"\n",
            "[songs]\nid = 1\n",
            "[songs.reference]\n",
            "[[\"so\\u006egs\"]]\n",
            "x = ]\n[[songs]]\n",
        ] {
            assert_eq!(tables(text), None, "{text}");
        }
        assert_eq!(tables("[[\"songs\"]]\nid = \"a\"\n").unwrap().len(), 1);
    }
}
