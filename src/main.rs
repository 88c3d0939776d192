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
    /// Run the netstack in the foreground: create the vmknics' TAP devices, answer on their
    /// addresses, and forward between them when `forwarding = true`.
    ///
    /// Stops cleanly on SIGINT or SIGTERM, removing every TAP it created.
    Daemon {
        /// Configuration file (TOML).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Control socket path.
        #[arg(long, value_name = "PATH", env = "VMKSTACK_CONTROL",
              default_value = vmkstack_stack::daemon::DEFAULT_CONTROL)]
        control: PathBuf,
        /// Log level or filter (as RUST_LOG: error, warn, info, debug, trace).
        #[arg(long, value_name = "FILTER")]
        log: Option<String>,
    },
}

/// Logs to stderr; `--log` wins over RUST_LOG, and the default is `info`.
fn init_logging(filter: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = match filter {
        Some(f) => EnvFilter::new(f),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

fn daemon(config: &std::path::Path, control: &std::path::Path, log: Option<&str>) -> ExitCode {
    init_logging(log);
    let shutdown = match vmkstack_stack::daemon::shutdown_on_signals() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("vmkstack: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    match vmkstack_stack::daemon::run(config, control, shutdown) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vmkstack: {e}");
            ExitCode::FAILURE
        }
    }
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
        Command::Daemon {
            config,
            control,
            log,
        } => daemon(&config, &control, log.as_deref()),
    }
}
