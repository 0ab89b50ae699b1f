//! `stemflow verify FILE`: prints what the tool measured; exit 1 when an
//! expectation failed.

use std::path::PathBuf;

use super::exit::{CliResult, EXIT_OK, Failure};
use super::print::outln;
use super::print_json;
use crate::tools::verify::{Expect, verify_file};
use crate::tools::{StdinFile, is_stdio};

/// Arguments of `verify`.
#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The audio file to check (any format the decoder reads); `-` reads
    /// it from standard input.
    pub file: PathBuf,
    #[command(flatten)]
    pub expect: Expect,
    /// Print the measurements as JSON instead of one line.
    #[arg(long)]
    pub json: bool,
}

/// Runs `verify`.
pub fn run(args: VerifyArgs) -> CliResult {
    let stdin = match is_stdio(&args.file) {
        true => Some(StdinFile::read().map_err(Failure::failed)?),
        false => None,
    };
    let path = stdin.as_ref().map_or(args.file.as_path(), StdinFile::path);
    let mut report = verify_file(path, &args.expect).map_err(|e| {
        let message = e.to_string();
        Failure::failed(stdin.as_ref().map_or(message.clone(), |s| s.named(message)))
    })?;
    if stdin.is_some() {
        report.file = "-".into();
    }
    if args.json {
        print_json(&report);
    } else {
        let figure = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
        let l = &report.loudness;
        outln!(
            "{}: {} Hz, {} ch, {}, {} frames ({:.3} s), peak {:.6}, rms {:.6}, {} LUFS, LRA {} LU, {} dBTP",
            report.file,
            report.sample_rate,
            report.channels,
            report.format.unwrap_or(&report.codec),
            report.frames,
            report.duration,
            report.peak,
            report.rms,
            figure(l.lufs),
            figure(l.loudness_range),
            figure(l.true_peak_db)
        );
    }
    match report.failures.first() {
        None => Ok(EXIT_OK),
        Some(_) => Err(Failure::failed(format!(
            "{}: {}",
            report.file,
            report.failures.join("; ")
        ))),
    }
}
