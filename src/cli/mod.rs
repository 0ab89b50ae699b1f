//! The command line (SPEC §2). Each subcommand has its file; this one
//! parses the arguments, dispatches, and turns every failure into one line
//! on stderr and an exit code ([`exit`]): 0 ok, 1 a song failed, 2 bad
//! command line or manifest, 130 interrupted.

mod align;
mod docs;
pub mod exit;
mod init;
mod inspect;
mod print;
mod render;
mod shard;
mod summary;
mod verify;

use std::path::Path;

use clap::{Parser, Subcommand};

use crate::manifest;
use crate::plan::Plan;
use exit::{CliResult, EXIT_OK, EXIT_USAGE, Failure};

/// Renders song manifests into verified, duration-aligned stems, a master
/// mix and a zip of deliverables.
#[derive(Parser, Debug)]
#[command(name = "stemflow", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Render the songs of a manifest (the built-in demo if none is given).
    Render(render::RenderArgs),
    /// Validate a manifest and print its plan and timing; renders nothing.
    Check(inspect::CheckArgs),
    /// Print the section timing of a tempo and a list of sections.
    Timing(inspect::TimingArgs),
    /// Verify an audio file against expectations.
    Verify(verify::VerifyArgs),
    /// Align an audio file to a duration.
    Align(align::AlignArgs),
    /// Write a manifest to start from: the demo, or one stem per audio
    /// file of a folder.
    Init(init::InitArgs),
    /// Gather every song report under an output folder (any shards and
    /// runs) into one catalogue: a table, JSON, CSV or an HTML page; exit
    /// 1 when a song is not ok.
    Summary(summary::SummaryArgs),
    /// Print shell completions for stemflow.
    Completions(docs::CompletionsArgs),
    /// Print the man page (roff) for stemflow.
    Man,
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
            let _ = e.print();
            return code;
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(Failure { code, message }) => {
            print::errln!("stemflow: {message}");
            code
        }
    }
}

fn run(cli: Cli) -> CliResult {
    match cli.command {
        Command::Render(args) => render::run(args),
        Command::Check(args) => inspect::check(args),
        Command::Timing(args) => inspect::timing(args),
        Command::Init(args) => init::run(args),
        Command::Summary(args) => summary::run(args),
        Command::Completions(args) => docs::completions(args),
        Command::Man => docs::man(),
        Command::Verify(args) => verify::run(args),
        Command::Align(args) => align::run(args),
    }
}

/// The manifest at `path` (`-`: standard input), or the built-in demo; a
/// bad one is exit 2.
fn load_plan(manifest: Option<&Path>) -> Result<Plan, Failure> {
    match manifest {
        Some(path) if crate::tools::is_stdio(path) => manifest::load_stdin(),
        Some(path) => manifest::load(path),
        None => manifest::parse(crate::DEMO_MANIFEST, "<built-in demo>", Path::new(".")),
    }
    .map_err(Failure::usage)
}

/// Prints plain data as pretty JSON on stdout.
fn print_json<T: serde::Serialize>(value: &T) {
    // Plain structs with string keys: serialising cannot fail.
    let text = serde_json::to_string_pretty(value).expect("output is plain data");
    print::outln!("{text}");
}
