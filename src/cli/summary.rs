//! `stemflow summary OUT`: the catalogue of every song report under OUT,
//! as a table, JSON, CSV or a self-contained HTML page, on stdout. Exit 1
//! when a song is not ok, so a pipeline can gate on the catalogue.

use std::path::PathBuf;

use super::exit::{CliResult, EXIT_OK, EXIT_SONG_FAILED, Failure};
use super::print::out_str;
use super::print_json;
use crate::output::{catalogue, catalogue_html};

/// Arguments of `summary`.
#[derive(clap::Args, Debug)]
pub struct SummaryArgs {
    /// The output folder of one or more renders (any shards and runs; the
    /// reports are found in its song folders and their sub-folders).
    pub out: PathBuf,
    /// Print the catalogue as JSON.
    #[arg(long, conflicts_with_all = ["csv", "html"])]
    pub json: bool,
    /// Print the catalogue as CSV (one row per song, header first).
    #[arg(long, conflicts_with = "html")]
    pub csv: bool,
    /// Print one self-contained HTML page: a sortable table, failures
    /// first, each song's overview picture inline.
    #[arg(long)]
    pub html: bool,
}

/// Runs `summary`.
pub fn run(args: SummaryArgs) -> CliResult {
    let entries = catalogue::gather(&args.out).map_err(Failure::usage)?;
    if entries.is_empty() {
        return Err(Failure::usage(format!(
            "{}: no song reports found (render into it first)",
            args.out.display()
        )));
    }
    if args.json {
        print_json(&serde_json::json!({ "songs": entries }));
    } else if args.csv {
        out_str(&catalogue::csv(&entries));
    } else if args.html {
        let svg = |e: &catalogue::Entry| {
            e.overview
                .as_ref()
                .and_then(|p| std::fs::read_to_string(p).ok())
        };
        out_str(&catalogue_html::page(&entries, svg));
    } else {
        out_str(&catalogue::table(&entries));
    }
    match entries.iter().any(catalogue::Entry::is_failure) {
        true => Ok(EXIT_SONG_FAILED),
        false => Ok(EXIT_OK),
    }
}
