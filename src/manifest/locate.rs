//! Where in the manifest text a problem is. The TOML parser gives byte
//! spans, but a user needs the line, the song and the stem, and for a
//! validation error the line of the offending key rather than of its table:
//! these helpers find them by reading the text around a span. They only
//! look, never judge, so every check in `validate` can share them.

use std::ops::Range;

use super::error::ManifestError;

/// Turns a TOML/serde error into one line, with the song and stem found by
/// looking back from the error's position.
pub(super) fn syntax_error(text: &str, file: &str, e: &toml::de::Error) -> ManifestError {
    let pos = e.span().map_or(0, |s| s.start);
    let line = line_of(text, pos);
    let (song, stem) = enclosing_song_and_stem(text, pos);
    let message = e.message().to_string();
    let key = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split('`').next())
        .map(str::to_string);
    // Type errors point at the value: the key is the name before its `=`.
    let key = key.or_else(|| key_before(text, pos));
    let message = if message.starts_with("unknown field") {
        match message.split_once(", expected") {
            Some((_, rest)) => format!("unknown key; expected{rest}"),
            None => "unknown key".to_string(),
        }
    } else {
        user_words(&message)
    };
    ManifestError {
        file: file.to_string(),
        line: Some(line),
        song,
        stem,
        key,
        message,
    }
}

/// serde names the Rust type it expected ("expected internally tagged
/// enum RawSource", "expected struct RawMaster"): the user wrote TOML and
/// needs to hear what TOML goes there instead.
fn user_words(message: &str) -> String {
    const WORDS: [(&str, &str); 4] = [
        (
            "internally tagged enum RawSource",
            "a source table with a `type`, e.g. { type = \"tone\", freq = 440.0 }",
        ),
        (
            "internally tagged enum RawEffect",
            "an effect table with a `type`, e.g. { type = \"lowpass\", cutoff = 8000.0 }",
        ),
        ("struct ", "a table"),
        ("enum ", "one of the allowed names"),
    ];
    let Some((head, rest)) = message.split_once("expected ") else {
        return message.to_string();
    };
    match WORDS.iter().find(|(rust, _)| rest.starts_with(rust)) {
        Some((_, words)) => format!("{head}expected {words}"),
        None => message.to_string(),
    }
}

/// The key whose value starts at `pos` (`key = <pos>`), if any.
fn key_before(text: &str, pos: usize) -> Option<String> {
    let before = text[..pos.min(text.len())]
        .trim_end()
        .strip_suffix('=')?
        .trim_end();
    let key: String = before
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    (!key.is_empty()).then_some(key)
}

/// The 1-based line of byte `pos`.
fn line_of(text: &str, pos: usize) -> usize {
    text[..pos.min(text.len())].matches('\n').count() + 1
}

/// The `id` of the `[[songs]]` table and the `name` of the
/// `[[songs.stems]]` table that enclose byte `pos`, read from the text.
fn enclosing_song_and_stem(text: &str, pos: usize) -> (Option<String>, Option<String>) {
    let before = &text[..pos.min(text.len())];
    let header = |rest: &str, name: &str| is_header(rest, name);
    let song_start = before
        .match_indices('\n')
        .map(|(i, _)| i + 1)
        .chain(std::iter::once(0))
        .filter(|&i| header(&text[i..], "songs"))
        .max();
    let Some(song_start) = song_start else {
        return (None, None);
    };
    let song_end = text[song_start + 1..]
        .match_indices('\n')
        .map(|(i, _)| song_start + 1 + i + 1)
        .find(|&i| header(&text[i..], "songs"))
        .unwrap_or(text.len());
    let song = find_string_key(&text[song_start..song_end], "id");
    let stem_start = text[song_start..pos.min(text.len())]
        .match_indices('\n')
        .map(|(i, _)| song_start + i + 1)
        .filter(|&i| header(&text[i..], "songs.stems"))
        .max();
    let stem = stem_start.and_then(|s| {
        let end = text[s + 1..]
            .match_indices('\n')
            .map(|(i, _)| s + 1 + i + 1)
            .find(|&i| text[i..].trim_start().starts_with('['))
            .unwrap_or(text.len());
        // A later table (`[[songs.deliver]]`) is no longer the stem's.
        (pos < end)
            .then(|| find_string_key(&text[s..end], "name"))
            .flatten()
    });
    (song, stem)
}

/// Whether the line starting `rest` is the `[[name]]` table header
/// (spaces inside the brackets allowed). Looks at that one line only.
fn is_header(rest: &str, name: &str) -> bool {
    let line = rest.split('\n').next().unwrap_or("");
    let compact: String = line.chars().filter(|c| !c.is_whitespace()).collect();
    compact.starts_with(&format!("[[{name}]]"))
}

/// The string value of `key = "..."` at the start of a line in `block`.
fn find_string_key(block: &str, key: &str) -> Option<String> {
    block.lines().find_map(|l| {
        let rest = l.trim_start().strip_prefix(key)?.trim_start();
        let rest = rest.strip_prefix('=')?.trim();
        let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        rest[1..].split(quote).next().map(str::to_string)
    })
}

/// The line of `key = ` inside `span` of `text` (for a dotted key, of its
/// last part), or the span's first line.
pub(super) fn key_line(text: &str, span: &Range<usize>, key: Option<&str>) -> usize {
    let end = span.end.min(text.len());
    let block = &text[span.start.min(end)..end];
    let leaf = key.map(|k| k.rsplit('.').next().unwrap_or(k));
    let offset = leaf.and_then(|k| {
        block.match_indices(k).map(|(i, _)| i).find(|&i| {
            let before_ok = block[..i]
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_ascii_alphanumeric() && c != '_');
            let after = block[i + k.len()..].trim_start();
            before_ok && after.starts_with('=')
        })
    });
    line_of(text, span.start + offset.unwrap_or(0))
}

/// Which table a span belongs to, for [`table_region`].
#[derive(Clone, Copy)]
pub(super) enum Table {
    /// A `[[songs]]` table: its sub-tables belong to it.
    Song,
    /// Any other table: it ends at the next header.
    Other,
}

/// The text a table occupies. The parser's span of a `[[header]]` table
/// covers only the header; its keys run to the next header (for a song,
/// to the next `[[songs]]`, since its sub-tables belong to it too).
pub(super) fn table_region(text: &str, span: Range<usize>, table: Table) -> Range<usize> {
    if !text[span.start..].starts_with('[') {
        return span; // an inline table: the span is the whole table
    }
    let next = text[span.end..]
        .match_indices('\n')
        .map(|(i, _)| span.end + i + 1)
        .find(|&i| match table {
            Table::Song => is_header(&text[i..], "songs"),
            Table::Other => text[i..].trim_start().starts_with('['),
        });
    span.start..next.unwrap_or(text.len())
}

#[cfg(test)]
mod tests {
    use crate::manifest::tests::{SONG, parse_str};

    #[test]
    fn unknown_key_names_key_line_song_and_stem() {
        let text = SONG.replace("source = {", "colour = 3\nsource = {");
        let e = parse_str(&text).unwrap_err().to_string();
        assert!(
            e.starts_with("m.toml:13: song \"s1\" stem \"bass\": key `colour`: unknown key"),
            "{e}"
        );
    }

    #[test]
    fn validation_error_points_at_the_key() {
        let text = SONG.replace("bpm = 120", "bpm = -5");
        let e = parse_str(&text).unwrap_err().to_string();
        assert!(
            e.starts_with("m.toml:4: song \"s1\": key `bpm`: must be > 0"),
            "{e}"
        );
    }
}
