//! What the `esxcfg-route` and `esxcfg-vmknic` parsers share: the [`UsageError`] they return
//! (clap's message for the flags, else the command as the user wrote it and exactly what is
//! wrong), and the value checks both use.
//!
//! Messages always name the ESX program (`esxcfg-route`, `esxcfg-vmknic`) so they read the same
//! however the binary was invoked. `-h`/`--help` is returned as [`UsageError::Help`] carrying the
//! usage text: the caller prints it on stdout and exits successfully (see
//! [`UsageError::is_help`]).

use std::fmt;
use std::net::Ipv4Addr;

use clap::error::ErrorKind;
use thiserror::Error;
use vmkstack_routing::{parse_netmask, PrefixError};
use vmkstack_vmknic::{MacAddr, MacParseError, MAX_MTU, MIN_MTU};

use crate::client::CliError;
use crate::personality::clap_util::Parsed;

/// The actions `esxcfg-vmknic` takes, for the message when none is given.
const VMKNIC_ACTIONS: &str = "-l, -a, -d, -e, -D, -m <mtu>, -P true|false or -i <ip> -n <netmask>";

/// The command a usage error is about, written as the user would (`esxcfg-route -a`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invocation {
    /// `esxcfg-route` or `esxcfg-vmknic`.
    pub program: &'static str,
    /// The action flag in its short form, if there was one.
    pub action: Option<&'static str>,
}

impl Invocation {
    /// The usage error for `problem` in this command.
    pub(crate) fn error(self, problem: Problem) -> UsageError {
        UsageError::Invalid {
            invocation: self,
            problem,
        }
    }
}

impl fmt::Display for Invocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.action {
            Some(action) => write!(f, "{} {action}", self.program),
            None => f.write_str(self.program),
        }
    }
}

/// Why an argv is not a valid command; the Display says exactly what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UsageError {
    /// `-h`/`--help`: not a failure. Print the usage text on stdout and exit with status 0.
    #[error("{0}")]
    Help(String),
    /// clap refused the flags (unknown option, two actions, missing option value): clap's own
    /// message, with the usage line.
    #[error("{0}")]
    Flags(String),
    /// The flags parsed but the form or a value is wrong.
    #[error("{invocation}: {problem}")]
    Invalid {
        /// The command, as in `esxcfg-route -a`.
        invocation: Invocation,
        /// What is wrong.
        problem: Problem,
    },
}

/// What is wrong with a command whose flags parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Problem {
    /// The wrong number of positional arguments for the action.
    #[error("expected {expected}, got {}", arguments(.got))]
    Arguments {
        /// The accepted forms.
        expected: &'static str,
        /// How many positionals there were.
        got: usize,
    },
    /// An option (named) that the action does not take.
    #[error("{0} cannot be used with this action")]
    Conflict(&'static str),
    /// A required option (named with its value) is missing.
    #[error("missing {0}")]
    Missing(&'static str),
    /// No action flag and no option implying one.
    #[error("no action given; expected one of {VMKNIC_ACTIONS}")]
    NoAction,
    /// An address, network or netmask that does not parse or is refused.
    #[error("invalid {what}: {error}")]
    Address {
        /// Its role: `gateway`, `network`, `netmask` or `IP address`.
        what: &'static str,
        /// The refusal.
        error: PrefixError,
    },
    /// A netmask (as written) that is neither dotted nor a length.
    #[error("`{0}` is not a netmask (expected dotted, as in 255.255.255.0, or a length 0-32)")]
    Netmask(String),
    /// An address that cannot be a vmknic's own.
    #[error("{ip}/{prefix_len} cannot be a vmknic address: {reason}")]
    UnusableAddress {
        /// The address.
        ip: Ipv4Addr,
        /// Its prefix length.
        prefix_len: u8,
        /// Why not.
        reason: String,
    },
    /// An MTU (as written) that is not a number.
    #[error("`{0}` is not an MTU (expected a number from {MIN_MTU} to {MAX_MTU})")]
    MtuSyntax(String),
    /// An MTU outside `MIN_MTU..=MAX_MTU`.
    #[error("MTU {0} is out of range ({MIN_MTU}-{MAX_MTU})")]
    MtuRange(u64),
    /// Text that is not a MAC address.
    #[error("{0}")]
    Mac(MacParseError),
    /// A multicast or all-zero MAC.
    #[error("{0} cannot be a vmknic MAC address (it is multicast or all zero)")]
    MacNotUnicast(MacAddr),
    /// An empty port group name.
    #[error("the port group name is empty")]
    EmptyPortGroup,
    /// Anything else, in words (IPv6 values, an unknown address family).
    #[error("{0}")]
    Other(String),
}

impl UsageError {
    /// True for `-h`/`--help`, which is a request for the usage text, not a failure.
    pub fn is_help(&self) -> bool {
        matches!(self, UsageError::Help(_))
    }

    /// The problem, when the flags parsed but the form or a value is wrong.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            UsageError::Invalid { problem, .. } => Some(problem),
            _ => None,
        }
    }
}

fn arguments(got: &usize) -> String {
    match got {
        1 => "1 argument".to_string(),
        n => format!("{n} arguments"),
    }
}

/// A clap refusal of the flags: help stays help; anything else is clap's message.
pub(crate) fn from_clap(err: clap::Error) -> UsageError {
    let text = err.render().to_string();
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            UsageError::Help(text)
        }
        _ => UsageError::Flags(text.trim_end().to_string()),
    }
}

/// An address, network or netmask (its role is `what`) that `i` refuses.
pub(crate) fn address(i: Invocation, what: &'static str, error: PrefixError) -> UsageError {
    i.error(Problem::Address { what, error })
}

/// A netmask, dotted or as a length, as a prefix length.
pub(crate) fn netmask(i: Invocation, s: &str) -> Result<u8, UsageError> {
    parse_netmask(s).map_err(|e| match e {
        PrefixError::Netmask(_) => address(i, "netmask", e),
        _ => i.error(Problem::Netmask(s.to_string())),
    })
}

/// A parser's refusal as a personality reports it: help is not a failure; everything else is a
/// usage error carrying the message.
pub fn esxcfg_outcome<T>(e: UsageError) -> Result<Parsed<T>, CliError> {
    match e {
        UsageError::Help(text) => Ok(Parsed::Help(text)),
        other => Err(CliError::Usage(other.to_string())),
    }
}
