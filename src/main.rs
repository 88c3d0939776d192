//! `vmkstack`: a userspace VMkernel TCP/IP stack on Linux TAP devices.

use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use vmkstack::check::check;
use vmkstack::client::{control_path_from_env, with_daemon, CliError, Console, Control, Exit};
use vmkstack::commands::{
    run_forward, run_neighbor, run_probe, run_route, run_stats, run_vmknic, ForwardCommand,
    JsonFlag, NeighborCommand, ProbeCommand, RouteCommand, VmknicCommand,
};
use vmkstack::personality::{self, Personality};

const AFTER_HELP: &str = "\
Client commands (vmknic, route, neighbor, stats and the ESX personalities) talk to a running
`vmkstack daemon` over its control socket: --control PATH, else $VMKSTACK_CONTROL, else
/run/vmkstack/vmkstack.sock.

ESX personalities run as `vmkstack esxcfg-route ARGS` (likewise esxcfg-vmknic, vmkping, esxcli
and nc), or under their ESX names through symlinks to this binary, which pick the socket from
$VMKSTACK_CONTROL or the default path:

  ln -s \"$(command -v vmkstack)\" /usr/local/bin/esxcfg-route
  ln -s \"$(command -v vmkstack)\" /usr/local/bin/esxcfg-vmknic
  ln -s \"$(command -v vmkstack)\" /usr/local/bin/vmkping
  ln -s \"$(command -v vmkstack)\" /usr/local/bin/esxcli

`nc` gets no symlink, so that it never shadows the system's netcat: use `vmkstack nc -z`.";

/// A userspace VMkernel TCP/IP stack on Linux TAP devices.
#[derive(Debug, Parser)]
#[command(name = "vmkstack", version, about, propagate_version = true, after_help = AFTER_HELP)]
struct Cli {
    /// Control socket of the daemon [env: VMKSTACK_CONTROL] [default:
    /// /run/vmkstack/vmkstack.sock]
    #[arg(long, global = true, value_name = "PATH")]
    control: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// The arguments of an ESX personality, passed on untouched.
#[derive(Debug, Args)]
struct PassThrough {
    /// Arguments as the ESX command takes them (`--help` shows its usage).
    #[arg(value_name = "ARGS", num_args = 0.., trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<OsString>,
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
        /// Not used by `check`: present (hidden) so that the global `--control` of the client
        /// commands stays out of `check --help`.
        #[arg(id = "control", long = "control", value_name = "PATH", hide = true)]
        _control: Option<PathBuf>,
    },
    /// Replay the ESX article on the built-in storage lab (root; about a minute; leaves
    /// nothing behind).
    Demo,
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
              default_value = vmkstack::api::DEFAULT_CONTROL)]
        control: PathBuf,
        /// Log level or filter (as RUST_LOG: error, warn, info, debug, trace).
        #[arg(long, value_name = "FILTER")]
        log: Option<String>,
    },
    /// List, add, remove and change VMkernel interfaces on the running daemon.
    #[command(subcommand)]
    Vmknic(VmknicCommand),
    /// List, add, remove and explain routes (and the default gateway) on the running daemon.
    #[command(subcommand)]
    Route(RouteCommand),
    /// List and forget entries of the running daemon's neighbour (ARP) table.
    #[command(subcommand)]
    Neighbor(NeighborCommand),
    /// Per-vmknic packet, byte, forwarding and drop counters of the running daemon.
    Stats(JsonFlag),
    /// Check an iSCSI or NFS server from the stack itself (`probe iscsi HOST[:PORT]`,
    /// `probe nfs HOST`), with a diagnosis for each failure point.
    #[command(subcommand)]
    Probe(ProbeCommand),
    /// Forward a kernel TCP port through the stack: `forward [-I vmkN] LISTEN REMOTE`,
    /// `forward list`, `forward remove LISTEN`.
    Forward(ForwardCommand),
    /// esxcfg-route: show or set the default gateway, add or delete routes, list routes (-l)
    /// and neighbours (-n).
    #[command(
        name = "esxcfg-route",
        disable_help_flag = true,
        disable_version_flag = true
    )]
    EsxcfgRoute(PassThrough),
    /// esxcfg-vmknic: list (-l), add (-a), delete (-d), enable (-e), disable (-D) vmknics and
    /// change their MTU (-m) or address (-i/-n).
    #[command(
        name = "esxcfg-vmknic",
        disable_help_flag = true,
        disable_version_flag = true
    )]
    EsxcfgVmknic(PassThrough),
    /// vmkping: ICMP echo from the VMkernel stack
    /// ([-I vmkN] [-c count] [-s size] [-d] [-i interval] [-W timeout] [-t ttl] host).
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Vmkping(PassThrough),
    /// esxcli network ip {route ipv4 list|add|remove, interface list, neighbor list}.
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Esxcli(PassThrough),
    /// nc -z [-w secs] [-I vmkN] host port: check a TCP port from the VMkernel stack.
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Nc(PassThrough),
}

/// Runs `scripts/demo.sh` of this source tree with this binary.
fn demo() -> ExitCode {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/demo.sh");
    let bin = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("vmkstack"));
    match std::process::Command::new("bash")
        .arg(&script)
        .env("VMKSTACK_BIN", bin)
        .status()
    {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("vmkstack demo: cannot run {}: {e}", script.display());
            ExitCode::FAILURE
        }
    }
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

/// Runs a native client command against the daemon at `control`.
fn client(
    control: &Path,
    command: impl FnOnce(&mut dyn Control, &mut Console<'_>) -> Result<(), CliError>,
) -> ExitCode {
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr());
    let mut console = Console {
        out: &mut out,
        err: &mut err,
    };
    let result = with_daemon("vmkstack", control, |ctl| command(ctl, &mut console));
    console.finish(result).into()
}

/// Runs personality `p` on `argv` (its own name first).
fn run_personality(p: Personality, argv: Vec<OsString>, control: &Path) -> ExitCode {
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr());
    let mut console = Console {
        out: &mut out,
        err: &mut err,
    };
    let exit: Exit = personality::run(p, argv, control, &mut console);
    exit.into()
}

fn main() -> ExitCode {
    let mut argv: Vec<OsString> = std::env::args_os().collect();
    // Invoked through a symlink named after an ESX command: that command's argv, as on ESX.
    if let Some(p) = argv.first().and_then(|a| Personality::from_argv0(a)) {
        argv[0] = OsString::from(p.name());
        return run_personality(p, argv, &control_path_from_env(None));
    }
    let cli = Cli::parse_from(argv);
    let control = control_path_from_env(cli.control.as_deref());
    let pass = |p: Personality, args: PassThrough| {
        run_personality(p, personality::subcommand_argv(p, args.args), &control)
    };
    match cli.command {
        Command::Check {
            config,
            lookups,
            json,
            ..
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
        Command::Vmknic(cmd) => client(&control, |ctl, c| run_vmknic(&cmd, ctl, c)),
        Command::Route(cmd) => client(&control, |ctl, c| run_route(&cmd, ctl, c)),
        Command::Neighbor(cmd) => client(&control, |ctl, c| run_neighbor(&cmd, ctl, c)),
        Command::Stats(JsonFlag { json }) => client(&control, |ctl, c| run_stats(json, ctl, c)),
        Command::Forward(cmd) => client(&control, |ctl, c| run_forward(&cmd, ctl, c)),
        Command::Probe(cmd) => client(&control, |ctl, c| run_probe(&cmd, ctl, c)),
        Command::Demo => demo(),
        Command::EsxcfgRoute(args) => pass(Personality::EsxcfgRoute, args),
        Command::EsxcfgVmknic(args) => pass(Personality::EsxcfgVmknic, args),
        Command::Vmkping(args) => pass(Personality::Vmkping, args),
        Command::Esxcli(args) => pass(Personality::Esxcli, args),
        Command::Nc(args) => pass(Personality::Nc, args),
    }
}
