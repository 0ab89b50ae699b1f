//! `stemflow init`: writes a manifest to start from — the demo, or with
//! `--from-dir` one `file` stem per audio file of a folder — never over an
//! existing file; `-` prints it instead.

use std::path::{Path, PathBuf};

use super::exit::{CliResult, EXIT_OK, Failure};
use super::print::{errln, out_str, outln};
use super::print_json;
use crate::tools::{ToolError, is_stdio, scaffold};

/// Arguments of `init`.
#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// Where to write the manifest; `-` prints it on standard output.
    #[arg(default_value = "stemflow.toml")]
    pub path: PathBuf,
    /// Write one `file` stem per audio file in DIR (WAV, FLAC, MP3, Ogg,
    /// AIFF, M4A...): roles guessed from the names, the duration from a
    /// `ref*`/`reference*` file (the song's reference) or the longest file.
    #[arg(long, value_name = "DIR")]
    pub from_dir: Option<PathBuf>,
    /// Print what was written as JSON (path, duration and stems found).
    #[arg(long)]
    pub json: bool,
}

/// Runs `init`.
pub fn run(args: InitArgs) -> CliResult {
    let to_stdout = is_stdio(&args.path);
    if to_stdout && args.json {
        return Err(Failure::usage(
            "--json prints on standard output, which carries the manifest with `-`",
        ));
    }
    if !to_stdout && args.path.exists() {
        return Err(Failure::usage(format!(
            "{}: already exists; not overwriting",
            args.path.display()
        )));
    }
    let scaffold = match &args.from_dir {
        Some(dir) => Some(from_dir(dir, &args.path, to_stdout)?),
        None => None,
    };
    let text = scaffold
        .as_ref()
        .map_or(crate::DEMO_MANIFEST, |s| s.text.as_str());
    if to_stdout {
        out_str(text);
        return Ok(EXIT_OK);
    }
    let path = &args.path;
    std::fs::write(path, text).map_err(|e| Failure::failed(format!("{}: {e}", path.display())))?;
    match (&scaffold, args.json) {
        (Some(s), true) => print_json(&serde_json::json!({ "path": path, "song": s })),
        (None, true) => print_json(&serde_json::json!({ "path": path, "song": "demo" })),
        (Some(s), false) => outln!(
            "wrote {}: song {:?}, {} stems, {:.3} s (from {})",
            path.display(),
            s.id,
            s.stems.len(),
            s.duration,
            s.duration_from
        ),
        (None, false) => outln!("wrote {}", path.display()),
    }
    Ok(EXIT_OK)
}

/// The manifest for `dir`, its paths relative to where it will be read
/// from (the current folder for `-`).
fn from_dir(dir: &Path, path: &Path, to_stdout: bool) -> Result<scaffold::Scaffold, Failure> {
    let manifest_dir = match path.parent() {
        Some(p) if !to_stdout && !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let s = scaffold::from_dir(dir, manifest_dir).map_err(|e| match e {
        ToolError::Argument(m) => Failure::usage(m),
        ToolError::Stage(e) => Failure::usage(e),
    })?;
    if s.stems.iter().all(|st| st.role.is_none()) {
        errln!("stemflow: note: no stem name suggested a role; `align = \"auto\"` decides");
    }
    Ok(s)
}
