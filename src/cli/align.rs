//! `stemflow align IN OUT`: prints what the aligner did.

use std::path::PathBuf;

use super::exit::{CliResult, EXIT_OK, Failure};
use crate::tools::ToolError;
use crate::tools::align::{AlignRequest, align_file};

/// Arguments of `align`.
#[derive(clap::Args, Debug)]
pub struct AlignArgs {
    /// The audio file to align (any format the decoder reads).
    pub input: PathBuf,
    /// Where to write the aligned WAV.
    pub output: PathBuf,
    #[command(flatten)]
    pub request: AlignRequest,
}

/// Runs `align`.
pub fn run(args: AlignArgs) -> CliResult {
    let aligned = align_file(&args.input, &args.output, &args.request).map_err(|e| match e {
        ToolError::Argument(m) => Failure::usage(m),
        ToolError::Stage(e) => Failure::failed(e),
    })?;
    let info = &aligned.info;
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
    println!(
        "{}: {} frames ({}), {} from {} source frames{detail}",
        args.output.display(),
        aligned.target,
        args.request.format.name(),
        info.strategy,
        info.source_frames
    );
    Ok(EXIT_OK)
}
