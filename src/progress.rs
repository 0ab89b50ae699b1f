//! Progress bars on stderr: one per song in flight and one for the run.
//! Disabled (every call a no-op) when stderr is not a terminal or with
//! `--quiet`.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::types::Frames;

/// The run's progress display.
pub struct Progress {
    multi: Option<MultiProgress>,
    overall: Option<ProgressBar>,
}

/// One song's bar.
pub struct SongBar(Option<ProgressBar>);

impl Progress {
    /// A display for `songs` songs; `enabled` false draws nothing.
    pub fn new(enabled: bool, songs: usize) -> Progress {
        if !enabled {
            return Progress {
                multi: None,
                overall: None,
            };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let overall = multi.add(ProgressBar::new(songs as u64));
        // The templates are constants checked by every run with a terminal.
        overall.set_style(
            ProgressStyle::with_template(
                "{prefix:>24} [{bar:30}] {pos}/{len} songs, {elapsed} elapsed, ETA {eta} {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        overall.set_prefix("all");
        Progress {
            multi: Some(multi),
            overall: Some(overall),
        }
    }

    /// Starts a bar for a song of `target` frames.
    pub fn song(&self, id: &str, target: Frames) -> SongBar {
        SongBar(self.multi.as_ref().map(|m| {
            let bar = m.insert_from_back(1, ProgressBar::new(target.0.max(1)));
            // A constant template: it cannot fail to parse.
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>24} [{bar:30}] {percent:>3}% ETA {eta:>4} {msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(id.chars().take(24).collect::<String>());
            bar.set_message("render");
            bar
        }))
    }

    /// Counts a finished song.
    pub fn song_done(&self) {
        if let Some(o) = &self.overall {
            o.inc(1);
        }
    }

    /// Removes the bars when the run completed; after an interrupt the
    /// overall bar stays, abandoned where the run stopped, saying so.
    pub fn finish(&self, interrupted: bool) {
        match &self.overall {
            Some(o) if interrupted => o.abandon_with_message("interrupted"),
            Some(o) => o.finish_and_clear(),
            None => {}
        }
    }
}

impl SongBar {
    /// Master frames written so far.
    pub fn frames(&self, done: Frames) {
        if let Some(b) = &self.0 {
            b.set_position(done.0);
        }
    }

    /// Names the stage the song is in.
    pub fn stage(&self, stage: &'static str) {
        if let Some(b) = &self.0 {
            b.set_message(stage);
        }
    }
}

impl Drop for SongBar {
    fn drop(&mut self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}
