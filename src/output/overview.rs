//! `overview.svg`: the master's waveform envelope under the song's section
//! layout, one lane per stem, and the loudness figures. Drawn from per-column
//! peaks gathered while rendering, so it costs a fixed amount of memory
//! whatever the song's length.

use std::fmt::Write;

use crate::pipeline::SongOutcome;
use crate::plan::SongPlan;
use crate::verify::envelope::{COLUMNS, Envelope};

/// An SVG path of `env` filling a lane of `height` at `y`.
fn path(env: &Envelope, x0: f64, y: f64, height: f64, scale: f64) -> String {
    let mid = y + height / 2.0;
    let amp = |v: f32| (v as f64 * scale).clamp(-1.0, 1.0) * height / 2.0;
    let mut d = String::with_capacity(env.columns().len() * 24);
    let point = |d: &mut String, first: bool, x: f64, y: f64| {
        d.push(if first { 'M' } else { 'L' });
        push_fixed(d, x, 1);
        d.push(',');
        push_fixed(d, y, 2);
        d.push(' ');
    };
    for (i, (_, hi)) in env.columns().iter().enumerate() {
        point(&mut d, i == 0, x0 + i as f64, mid - amp(*hi));
    }
    for (i, (lo, _)) in env.columns().iter().enumerate().rev() {
        point(&mut d, false, x0 + i as f64, mid - amp(*lo));
    }
    d.push('Z');
    d
}

/// Text as XML character data or an attribute value. Control characters
/// (and the two non-characters) cannot appear in XML 1.0 even escaped, so
/// they become U+FFFD: the picture stays valid XML whatever a name holds.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn fig(v: Option<f64>, unit: &str) -> String {
    v.map_or("–".to_string(), |v| format!("{v:.1} {unit}"))
}

/// Layout of the picture, in SVG units.
struct Layout {
    /// Left edge of the lanes (labels sit before it).
    left: f64,
    /// Width of the lanes: one unit per envelope column.
    width: f64,
    /// Top of the master lane (titles and section names sit above it).
    top: f64,
    master_h: f64,
    lane_h: f64,
    /// Total height.
    height: f64,
}

impl Layout {
    fn new(stems: usize) -> Layout {
        let (top, master_h, lane_h) = (70.0, 180.0, 56.0);
        Layout {
            left: 130.0,
            width: COLUMNS as f64,
            top,
            master_h,
            lane_h,
            height: top + master_h + 20.0 + lane_h * stems as f64 + 30.0,
        }
    }

    fn total_width(&self) -> f64 {
        self.left + self.width + 20.0
    }
}

/// The overview picture of a rendered song.
pub fn svg(song: &SongPlan, outcome: &SongOutcome) -> String {
    let l = Layout::new(outcome.stems.len());
    let mut s = String::new();
    header(&mut s, &l, song, outcome);
    section_lines(&mut s, &l, song);
    let m = &outcome.master;
    let (top, master_h) = (l.top, l.master_h);
    let master = Lane {
        y: top,
        h: master_h,
        label: "master",
        color: "#2b6cb0",
    };
    master.draw(&mut s, &l, &fig(m.loudness.lufs, "LUFS"), &m.envelope);
    for (i, (st, env)) in outcome
        .stems
        .iter()
        .zip(&outcome.stem_envelopes)
        .enumerate()
    {
        let y = l.top + l.master_h + 20.0 + i as f64 * l.lane_h;
        let placed = st
            .placement
            .as_ref()
            .map_or(String::new(), |p| match p.regions.len() {
                1 => " · 1 region".to_string(),
                n => format!(" · {n} regions"),
            });
        let sub = format!(
            "{}{placed} · {}",
            st.align.strategy,
            fig(st.loudness.lufs, "LUFS")
        );
        let lane = Lane {
            y,
            h: l.lane_h - 6.0,
            label: &st.name,
            color: "#718096",
        };
        lane.draw(&mut s, &l, &sub, env);
    }
    time_axis(&mut s, &l, song.seconds());
    s.push_str("</svg>\n");
    s
}

/// The root element, background, title and the master's figures.
fn header(s: &mut String, l: &Layout, song: &SongPlan, outcome: &SongOutcome) {
    let (total, height) = (l.total_width(), l.height);
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="{height}" viewBox="0 0 {total} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#fbfbfb"/>"##);
    let m = &outcome.master;
    let _ = writeln!(
        s,
        r#"<text x="10" y="22" font-size="16" font-weight="bold">{} — {:.2} s, {} Hz, {} ch, {}</text>"#,
        esc(song.display_name()),
        song.seconds(),
        song.spec.sample_rate,
        song.spec.channels,
        song.spec.format.name()
    );
    let _ = writeln!(
        s,
        r#"<text x="10" y="42">master: {} integrated, {} true peak, LRA {}, peak {:.3}, RMS {:.3}, clip ratio {:.5}</text>"#,
        fig(m.loudness.lufs, "LUFS"),
        fig(m.loudness.true_peak_db, "dBTP"),
        fig(m.loudness.loudness_range, "LU"),
        m.levels.peak,
        m.levels.rms,
        m.clip_ratio
    );
}

/// Section boundaries across all lanes, names on top.
fn section_lines(s: &mut String, l: &Layout, song: &SongPlan) {
    let frames = song.target_frames().0.max(1) as f64;
    for sec in &song.timing.sections {
        let x = l.left + sec.start_frame as f64 / frames * l.width;
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="#999" stroke-dasharray="4 3"/><text x="{:.1}" y="{}" fill="#555">{}</text>"##,
            l.top - 12.0,
            l.height - 25.0,
            x + 3.0,
            l.top - 2.0,
            esc(&sec.name)
        );
    }
}

/// One lane: a framed envelope with a label and a line of figures.
struct Lane<'a> {
    y: f64,
    h: f64,
    label: &'a str,
    color: &'a str,
}

impl Lane<'_> {
    fn draw(&self, s: &mut String, l: &Layout, sub: &str, env: &Envelope) {
        let (left, width, y, h, color) = (l.left, l.width, self.y, self.h, self.color);
        let _ = writeln!(
            s,
            r##"<rect x="{left}" y="{y}" width="{width}" height="{h}" fill="#fff" stroke="#ddd"/><line x1="{left}" y1="{:.1}" x2="{}" y2="{:.1}" stroke="#eee"/>"##,
            y + h / 2.0,
            left + width,
            y + h / 2.0
        );
        let _ = writeln!(
            s,
            r#"<path d="{}" fill="{color}" stroke="none"/>"#,
            path(env, left, y, h, 1.0)
        );
        let _ = writeln!(
            s,
            r#"<text x="10" y="{:.1}" font-weight="bold">{}</text>"#,
            y + h / 2.0 - 2.0,
            esc(self.label)
        );
        let _ = writeln!(
            s,
            r##"<text x="10" y="{:.1}" fill="#666" font-size="11">{}</text>"##,
            y + h / 2.0 + 13.0,
            esc(sub)
        );
    }
}

/// Eleven time labels along the bottom.
fn time_axis(s: &mut String, l: &Layout, secs: f64) {
    for k in 0..=10 {
        let x = l.left + l.width * k as f64 / 10.0;
        let _ = writeln!(
            s,
            r##"<text x="{x:.1}" y="{:.1}" fill="#555" text-anchor="middle">{:.1} s</text>"##,
            l.height - 8.0,
            secs * k as f64 / 10.0
        );
    }
}

/// Appends `v` with `decimals` decimals (at most 3), by integer arithmetic:
/// the overview has twelve thousand coordinates, and exact float
/// formatting was a noticeable part of a short render.
fn push_fixed(d: &mut String, v: f64, decimals: u32) {
    let scale = 10i64.pow(decimals);
    let n = (v * scale as f64).round() as i64;
    if n < 0 {
        d.push('-');
    }
    let n = n.unsigned_abs();
    let _ = write!(d, "{}", n / scale as u64);
    if decimals > 0 {
        let _ = write!(
            d,
            ".{:0width$}",
            n % scale as u64,
            width = decimals as usize
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_point_coordinates() {
        for (v, decimals, want) in [
            (12.3456, 2, "12.35"),
            (-2.5, 1, "-2.5"),
            (7.0, 1, "7.0"),
            (0.996, 2, "1.00"),
            (-0.001, 2, "0.00"),
            (1019.0, 1, "1019.0"),
        ] {
            let mut d = String::new();
            push_fixed(&mut d, v, decimals);
            assert_eq!(d, want, "{v}");
        }
    }

    #[test]
    fn escaping_leaves_only_valid_xml_text() {
        assert_eq!(
            esc("a<b>&\"c'\u{1b}[31m\u{0}\u{7f}\u{85}\u{FFFE}é"),
            "a&lt;b&gt;&amp;&quot;c&apos;\u{FFFD}[31m\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}é"
        );
    }
}
