//! `stemflow summary OUT --html`: the catalogue as one self-contained page
//! for QA — no external file, font or script, so it can be mailed, stored
//! as a CI artefact or opened offline. Songs that need a look come first;
//! each row carries the song's overview picture as a data URI (an `<img>`,
//! so nothing in an SVG can run in the page), and a few lines of inline
//! JavaScript sort the table by any column.
//!
//! Opened with `#selfcheck` after its address, the page checks itself once
//! loaded (every row there, every picture decoded, failures first, sorting
//! in order) and writes the verdict into its title and `#check`: a headless
//! browser can then test the page as a user's browser runs it.

use std::fmt::Write;

use super::catalogue::Entry;

/// Page style: plain, readable, printable.
const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;color:#1a202c}\
table{border-collapse:collapse;width:100%}\
th,td{border-bottom:1px solid #e2e8f0;padding:4px 8px;text-align:left;vertical-align:top}\
th{cursor:pointer;background:#edf2f7;position:sticky;top:0}\
td:first-child{white-space:nowrap}td.num{text-align:right;font-variant-numeric:tabular-nums}\
tr.bad td{background:#fff5f5}tr.bad td.status{color:#c53030;font-weight:bold}\
img.overview{width:480px;max-width:40vw;display:block}";

/// Sorting and the self-check. Numbers sort as numbers, empty figures last.
const SCRIPT: &str = r#"(function () {
  var table = document.getElementById('catalogue');
  var body = table.tBodies[0];
  var heads = table.tHead.rows[0].cells;
  function key(row, col) {
    var cell = row.cells[col];
    return cell.hasAttribute('data-value') ? cell.getAttribute('data-value') : cell.textContent;
  }
  function sortBy(col, descending) {
    var numeric = heads[col].getAttribute('data-type') === 'num';
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a, col), y = key(b, col), r;
      if (numeric) {
        if (x === '' || y === '') return (x === '') - (y === '');
        r = parseFloat(x) - parseFloat(y);
      } else {
        r = x.localeCompare(y);
      }
      return descending ? -r : r;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  Array.prototype.forEach.call(heads, function (th, col) {
    th.addEventListener('click', function () {
      var descending = th.getAttribute('data-sorted') === 'up';
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute('data-sorted'); });
      th.setAttribute('data-sorted', descending ? 'down' : 'up');
      sortBy(col, descending);
    });
  });
  function selfCheck() {
    var rows = body.rows.length, want = +table.getAttribute('data-songs');
    var imgs = body.querySelectorAll('img.overview'), shown = 0;
    Array.prototype.forEach.call(imgs, function (i) { if (i.complete && i.naturalWidth > 0) shown++; });
    var pictures = +table.getAttribute('data-pictures');
    var seenOk = false, failuresFirst = true;
    Array.prototype.forEach.call(body.rows, function (r) {
      if (r.classList.contains('bad')) { if (seenOk) failuresFirst = false; } else seenOk = true;
    });
    // Sort as a user does: click the LUFS heading, then click it again.
    var th = table.querySelector('th[data-key=lufs]');
    var lufs = Array.prototype.indexOf.call(heads, th);
    function inOrder(up) {
      var values = Array.prototype.map.call(body.rows, function (r) { return key(r, lufs); })
        .filter(function (v) { return v !== ''; }).map(parseFloat);
      return values.length > 1 && values.every(function (v, i) {
        return i === 0 || (up ? values[i - 1] <= v : values[i - 1] >= v);
      });
    }
    th.click();
    var sorted = inOrder(true);
    th.click();
    sorted = sorted && inOrder(false);
    var pass = rows === want && shown === pictures && failuresFirst && sorted;
    var verdict = 'selfcheck rows=' + rows + '/' + want + ' pictures=' + shown + '/' + pictures +
      ' failures-first=' + failuresFirst + ' sorted=' + sorted + ': ' + (pass ? 'PASS' : 'FAIL');
    document.getElementById('check').textContent = verdict;
    document.title = verdict;
  }
  if (location.hash === '#selfcheck') window.addEventListener('load', selfCheck);
})();"#;

/// The columns: heading, sort key, whether numeric.
const COLUMNS: [(&str, &str, bool); 9] = [
    ("id", "id", false),
    ("title", "title", false),
    ("status", "status", false),
    ("duration (s)", "duration", true),
    ("LUFS", "lufs", true),
    ("dBTP", "dbtp", true),
    ("clip ratio", "clip", true),
    ("errors", "errors", false),
    ("overview", "overview", false),
];

/// The page for `entries`; `overview` reads a song's picture (SVG text).
pub fn page(entries: &[Entry], overview: impl Fn(&Entry) -> Option<String>) -> String {
    let mut order: Vec<&Entry> = entries.iter().collect();
    // Failures first, each group in catalogue order (sort is stable).
    order.sort_by_key(|e| !e.is_failure());
    let rows: Vec<(&Entry, Option<String>)> = order.into_iter().map(|e| (e, overview(e))).collect();
    let failed = entries.iter().filter(|e| e.is_failure()).count();
    let pictures = rows.iter().filter(|(_, svg)| svg.is_some()).count();
    let mut s = String::with_capacity(4096 + rows.len() * 8192);
    s.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    s.push_str("<title>stemflow catalogue</title>\n");
    let _ = writeln!(s, "<style>{STYLE}</style>\n</head>\n<body>");
    let _ = writeln!(
        s,
        "<h1>stemflow catalogue</h1>\n<p>{} songs: {} ok, {failed} not ok (listed first). Click a heading to sort.</p>",
        entries.len(),
        entries.len() - failed
    );
    let _ = write!(
        s,
        "<table id=\"catalogue\" data-songs=\"{}\" data-pictures=\"{pictures}\">\n<thead><tr>",
        rows.len()
    );
    for (name, key, numeric) in COLUMNS {
        let kind = if numeric { "num" } else { "text" };
        let _ = write!(s, "<th data-key=\"{key}\" data-type=\"{kind}\">{name}</th>");
    }
    s.push_str("</tr></thead>\n<tbody>\n");
    for (e, svg) in &rows {
        row(&mut s, e, svg.as_deref());
    }
    s.push_str("</tbody>\n</table>\n<p id=\"check\"></p>\n");
    let _ = writeln!(s, "<script>\n{SCRIPT}\n</script>\n</body>\n</html>");
    s
}

/// One song's row.
fn row(s: &mut String, e: &Entry, svg: Option<&str>) {
    let class = if e.is_failure() { "song bad" } else { "song" };
    let num = |v: Option<f64>, d: usize| match v {
        Some(v) => format!("<td class=\"num\" data-value=\"{v}\">{v:.d$}</td>"),
        None => "<td class=\"num\" data-value=\"\">-</td>".to_string(),
    };
    let _ = write!(
        s,
        "<tr class=\"{class}\"><td>{}</td><td>{}</td><td class=\"status\">{}</td>",
        esc(&e.id),
        esc(&e.title),
        esc(&e.status)
    );
    let _ = write!(
        s,
        "{}{}{}{}",
        num(Some(e.duration), 1),
        num(e.lufs, 1),
        num(e.true_peak_db, 1),
        num(e.clip_ratio, 5)
    );
    let _ = write!(s, "<td>{}</td>", esc(&e.errors.join("; ")));
    match svg {
        Some(svg) => {
            let _ = writeln!(
                s,
                "<td><img class=\"overview\" alt=\"overview of {}\" src=\"data:image/svg+xml;base64,{}\"></td></tr>",
                esc(&e.id),
                base64(svg.as_bytes())
            );
        }
        None => s.push_str("<td>no overview</td></tr>\n"),
    }
}

/// Text safe inside HTML elements and quoted attributes.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Standard base64 with padding (RFC 4648), for the data URIs.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
