//! docs/manifest.md names every key the parser accepts. The parser itself
//! says which keys a table takes: an unknown key's error lists them
//! ("expected one of `a`, `b`", or "expected `a`"). Each table gets a bogus key here, and every
//! key of the answer must appear in the reference as `` `key` ``, so a key
//! added to the parser without documentation fails this test.

use std::path::Path;

use crate::util::{stderr, stemflow};

const SONG: &str = "[[songs]]\nid = \"s\"\nbpm = 120\nduration = 4\n";
const STEM: &str = "[[songs.stems]]\nname = \"x\"\n";

/// One manifest per table, each with a key no table has.
fn probes() -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("limits", "[limits]\nbogus_key = 1\n".to_string()),
        ("defaults", "[defaults]\nbogus_key = 1\n".to_string()),
        (
            "defaults.verify",
            "[defaults.verify]\nbogus_key = 1\n".to_string(),
        ),
        ("song", format!("{SONG}bogus_key = 1\n")),
        ("master", format!("{SONG}[songs.master]\nbogus_key = 1\n")),
        (
            "deliver",
            format!("{SONG}[[songs.deliver]]\nname = \"d\"\nbogus_key = 1\n"),
        ),
        (
            "reference",
            format!("{SONG}[songs.reference]\npath = \"r.wav\"\nbogus_key = 1\n"),
        ),
        (
            "section",
            format!("{SONG}[[songs.sections]]\nname = \"a\"\nbeats = 4\nbogus_key = 1\n"),
        ),
        (
            "stem",
            format!("{SONG}{STEM}source = {{ type = \"silence\" }}\nbogus_key = 1\n"),
        ),
    ];
    for source in ["tone", "drums", "noise", "silence", "file"] {
        let text = format!("{SONG}{STEM}source = {{ type = \"{source}\", bogus_key = 1 }}\n");
        v.push(("source", text));
    }
    let effects = [
        "lowpass",
        "highpass",
        "bandpass",
        "notch",
        "peak",
        "lowshelf",
        "highshelf",
        "gain",
        "echo",
    ];
    for effect in effects {
        let text = format!(
            "{SONG}{STEM}source = {{ type = \"silence\" }}\neffects = [{{ type = \"{effect}\", bogus_key = 1 }}]\n"
        );
        v.push(("effect", text));
    }
    v
}

/// The keys an "expected one of `a`, `b`" error lists.
fn expected_keys(message: &str) -> Vec<String> {
    let Some((_, list)) = message
        .split_once("expected one of")
        .or_else(|| message.split_once("expected "))
    else {
        return Vec::new();
    };
    list.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[test]
fn every_parser_key_is_in_the_manifest_reference() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let reference = std::fs::read_to_string(root.join("docs/manifest.md")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut missing = Vec::new();
    for (table, text) in probes() {
        std::fs::write(tmp.path().join("m.toml"), &text).unwrap();
        let o = stemflow(tmp.path(), &["check", "m.toml"]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{table}: {err}");
        assert!(err.contains("bogus_key"), "{table}: {err}");
        let keys = expected_keys(&err);
        assert!(!keys.is_empty(), "{table}: no key list in {err}");
        for key in keys {
            if key != "type" && !reference.contains(&format!("`{key}`")) {
                missing.push(format!("{table}.{key}"));
            }
        }
    }
    assert!(missing.is_empty(), "not in docs/manifest.md: {missing:?}");
}
