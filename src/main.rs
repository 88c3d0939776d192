//! `vmkstack`: a userspace VMkernel TCP/IP stack on Linux TAP devices.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vmkstack::check::check;

/// A userspace VMkernel TCP/IP stack on Linux TAP devices.
#[derive(Debug, Parser)]
#[command(name = "vmkstack", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a configuration and show the vmknic and route listings as ESX would.
    ///
    /// Exits 1 when there is any problem (for example a default gateway on no vmknic subnet,
    /// reported with ESX's own message), 0 otherwise.
    Check {
        /// Configuration file (TOML).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Explain which route, vmknic, gateway and source address traffic to ADDR would use.
        #[arg(long = "lookup", value_name = "ADDR")]
        lookups: Vec<Ipv4Addr>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check {
            config,
            lookups,
            json,
        } => match check(&config, &lookups) {
            Ok(report) => {
                if json {
                    match serde_json::to_string_pretty(&report) {
                        Ok(s) => println!("{s}"),
                        Err(e) => {
                            eprintln!("vmkstack: cannot encode JSON: {e}");
                            return ExitCode::FAILURE;
                        }
                    }
                } else {
                    print!("{}", report.to_text());
                    for p in &report.problems {
                        eprintln!("{p}");
                    }
                }
                if report.ok() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
    }
}
