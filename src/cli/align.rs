//! `stemflow align IN OUT`: prints what the aligner did (on stderr when
//! the aligned WAV itself goes to standard output).

use std::path::PathBuf;

use serde::Serialize;

use super::exit::{CliResult, EXIT_OK, Failure};
use super::print::{errln, outln};
use super::print_json;
use crate::tools::align::{AlignRequest, align_file};
use crate::tools::{ToolError, is_stdio};

/// Arguments of `align`.
#[derive(clap::Args, Debug)]
pub struct AlignArgs {
    /// The audio file to align (any format the decoder reads); `-` reads
    /// it from standard input.
    pub input: PathBuf,
    /// Where to write the aligned file: FLAC for `.flac` (pcm16/pcm24
    /// only), WAV for `.wav`; `-` streams a WAV to standard output.
    pub output: PathBuf,
    #[command(flatten)]
    pub request: AlignRequest,
    /// Print what the aligner did as JSON (not with `-` as OUTPUT: the
    /// audio goes there).
    #[arg(long)]
    pub json: bool,
}

/// What `align --json` prints.
#[derive(Serialize)]
struct AlignedJson<'a> {
    file: String,
    frames: u64,
    format: &'static str,
    #[serde(flatten)]
    info: &'a crate::align::AlignInfo,
}

/// Runs `align`.
pub fn run(args: AlignArgs) -> CliResult {
    let to_stdout = is_stdio(&args.output);
    if to_stdout && args.json {
        return Err(Failure::usage(
            "--json prints on standard output, which carries the audio with `-`",
        ));
    }
    let aligned = align_file(&args.input, &args.output, &args.request).map_err(|e| match e {
        ToolError::Argument(m) => Failure::usage(m),
        ToolError::Stage(e) => Failure::failed(e),
    })?;
    let info = &aligned.info;
    if args.json {
        print_json(&AlignedJson {
            file: args.output.display().to_string(),
            frames: aligned.target.0,
            format: args.request.format.name(),
            info,
        });
        return Ok(EXIT_OK);
    }
    let mut detail = String::new();
    if let (Some(frames), Some(grid)) = (info.loop_frames, info.grid) {
        let kind = if grid {
            "on the bar grid"
        } else {
            "with matched seams"
        };
        detail = format!(", looped every {frames} frames {kind}");
    }
    if let Some(frames) = info.release_frames.filter(|f| *f > 0) {
        detail = format!(", release of {frames} frames kept for the end");
    }
    let line = format!(
        "{}: {} frames ({}), {} from {} source frames{detail}",
        if to_stdout {
            "standard output".to_string()
        } else {
            args.output.display().to_string()
        },
        aligned.target,
        args.request.format.name(),
        info.strategy,
        info.source_frames
    );
    match to_stdout {
        true => errln!("stemflow: {line}"),
        false => outln!("{line}"),
    }
    Ok(EXIT_OK)
}
