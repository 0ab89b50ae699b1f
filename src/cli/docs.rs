//! `stemflow completions SHELL` and `stemflow man`: generated from the
//! same clap definitions as the parser, so they can never list a flag the
//! binary does not take.

use clap::CommandFactory;

use super::Cli;
use super::exit::{CliResult, EXIT_OK, Failure};
use super::print::out_str;

/// Arguments of `completions`.
#[derive(clap::Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for (install e.g. with
    /// `stemflow completions bash > /etc/bash_completion.d/stemflow`).
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Prints the completion script for the shell.
pub fn completions(args: CompletionsArgs) -> CliResult {
    let mut bytes = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "stemflow", &mut bytes);
    out_str(&String::from_utf8_lossy(&bytes));
    Ok(EXIT_OK)
}

/// Prints the man page of stemflow, in roff: the main page, then one
/// section per subcommand with its synopsis and options.
pub fn man() -> CliResult {
    let mut cmd = Cli::command();
    cmd.build();
    let mut bytes = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut bytes)
        .map_err(Failure::failed)?;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("stemflow {}", sub.get_name());
        let page = clap_mangen::Man::new(sub.clone().bin_name(&name));
        let mut part = Vec::new();
        page.render_synopsis_section(&mut part)
            .and_then(|_| page.render_options_section(&mut part))
            .map_err(Failure::failed)?;
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        let part = String::from_utf8_lossy(&part)
            .replace(".SH SYNOPSIS", ".SS Synopsis")
            .replace(".SH OPTIONS", ".SS Options");
        bytes.extend_from_slice(
            format!(
                ".SH \"{}\"\n{}\n{part}",
                name.to_uppercase(),
                roff_text(&about)
            )
            .as_bytes(),
        );
    }
    out_str(&String::from_utf8_lossy(&bytes));
    Ok(EXIT_OK)
}

/// `text` safe as a roff text line: a leading `.` or `'` would be read as
/// a request, a backslash as an escape.
fn roff_text(text: &str) -> String {
    let text = text.replace('\\', "\\e");
    match text.starts_with(['.', '\'']) {
        true => format!("\\&{text}"),
        false => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_argument_of_every_subcommand_is_described() {
        let mut cmd = Cli::command();
        cmd.build();
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            assert!(sub.get_about().is_some(), "{}", sub.get_name());
            for arg in sub.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                assert!(!help.trim().is_empty(), "{} {id}", sub.get_name());
            }
        }
    }

    #[test]
    fn roff_text_cannot_start_a_request() {
        assert_eq!(roff_text(".x"), "\\&.x");
        assert_eq!(roff_text("'x"), "\\&'x");
        assert_eq!(roff_text("a\\b"), "a\\eb");
    }
}
