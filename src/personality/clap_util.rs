//! The outcome of a personality's argument parsing, shared by every personality's parser.

use clap::error::ErrorKind as ClapErrorKind;

use crate::client::CliError;

/// What parsing an argv gave: a command to run, or the help text that was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<T> {
    /// Run this.
    Run(T),
    /// `-h`/`--help`: print this on stdout and exit 0.
    Help(String),
}

/// A clap error of a personality's parser: help is not a failure; everything else is a usage
/// error carrying clap's message.
pub fn clap_outcome<T>(e: clap::Error) -> Result<Parsed<T>, CliError> {
    let text = e.render().to_string();
    match e.kind() {
        ClapErrorKind::DisplayHelp
        | ClapErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        | ClapErrorKind::DisplayVersion => Ok(Parsed::Help(text)),
        _ => Err(CliError::Usage(text.trim_end().to_string())),
    }
}
