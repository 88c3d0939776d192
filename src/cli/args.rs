//! The `vmkstack` command line as clap parses it: the global `--control`, the native
//! subcommands (their arguments are in [`super::native`]) and the ESX personalities, whose
//! arguments are passed on untouched.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use super::native::{
    ForwardCommand, NeighborCommand, NetstackCommand, ProbeCommand, RouteCommand, VmknicCommand,
};

const AFTER_HELP: &str = "\
Client commands (vmknic, route, neighbor, stats and the ESX personalities) talk to a running
`vmkstack daemon` over its control socket: --control PATH, else $VMKSTACK_CONTROL, else
/run/vmkstack/vmkstack.sock.

ESX personalities run as `vmkstack esxcfg-route ARGS` (likewise esxcfg-vmknic, vmkping, esxcli,
pktcap-uw and nc), or under their ESX names through symlinks to this binary, which pick the socket from
$VMKSTACK_CONTROL or the default path:

  ln -s \"$(command -v vmkstack)\" /usr/local/bin/esxcfg-route
  ln -s \"$(command -v vmkstack)\" /usr/local/bin/esxcfg-vmknic
  ln -s \"$(command -v vmkstack)\" /usr/local/bin/vmkping
  ln -s \"$(command -v vmkstack)\" /usr/local/bin/esxcli
  ln -s \"$(command -v vmkstack)\" /usr/local/bin/pktcap-uw

`nc` gets no symlink, so that it never shadows the system's netcat: use `vmkstack nc -z`.";

/// `vmkstack --version`: the package version and the git commit it was built from (build.rs).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("VMKSTACK_GIT_COMMIT"),
    ")"
);

/// The configuration file the daemon reads when `--config` is not given (the packaged one).
pub const DEFAULT_CONFIG: &str = "/etc/vmkstack/vmkstack.toml";

/// A userspace VMkernel TCP/IP stack on Linux TAP devices.
#[derive(Debug, Parser)]
#[command(name = "vmkstack", version = VERSION, about, propagate_version = true,
          after_help = AFTER_HELP)]
pub(crate) struct Cli {
    /// Control socket of the daemon [env: VMKSTACK_CONTROL] [default:
    /// /run/vmkstack/vmkstack.sock]
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) control: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// A native command that acts on one netstack (`-N NAME`; default `defaultTcpipStack`).
#[derive(Debug, Args)]
pub(crate) struct OnNetstack<T: Subcommand> {
    /// The netstack to act on (ESXi's `-N`; default: defaultTcpipStack).
    #[arg(short = 'N', long = "netstack", global = true, value_name = "NETSTACK")]
    pub(crate) netstack: Option<String>,
    #[command(subcommand)]
    pub(crate) command: T,
}

/// The arguments of an ESX personality, passed on untouched.
#[derive(Debug, Args)]
pub(crate) struct PassThrough {
    /// Arguments as the ESX command takes them (`--help` shows its usage).
    #[arg(value_name = "ARGS", num_args = 0.., trailing_var_arg = true, allow_hyphen_values = true)]
    pub(crate) args: Vec<OsString>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Validate a configuration and show the vmknic and route listings as ESX would.
    ///
    /// Exits 1 when there is any problem (for example a default gateway on no vmknic subnet,
    /// reported with ESX's own message), 0 otherwise.
    Check {
        /// Configuration file (TOML).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Explain which route, vmknic, gateway and source address traffic to ADDR (IPv4 or
        /// IPv6) would use.
        #[arg(long = "lookup", value_name = "ADDR")]
        lookups: Vec<std::net::IpAddr>,
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
    /// Stops cleanly on SIGINT or SIGTERM, removing every TAP it created; SIGHUP applies the
    /// file on disk live (as `vmkstack reload`), or refuses it and logs why. Under systemd it reports readiness (`Type=notify`)
    /// once the vmknics are up and the control socket listens, and logs in the journal's
    /// format.
    Daemon {
        /// Configuration file (TOML).
        #[arg(short, long, value_name = "FILE", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Only validate the configuration (and the capabilities it needs), print the result
        /// and exit: 0 when the daemon would start with it, 1 with the problems named.
        #[arg(long)]
        check_config: bool,
        /// Control socket path.
        #[arg(long, value_name = "PATH", env = "VMKSTACK_CONTROL",
              default_value = crate::api::DEFAULT_CONTROL)]
        control: PathBuf,
        /// Log level or filter (as RUST_LOG: error, warn, info, debug, trace).
        #[arg(long, value_name = "FILTER")]
        log: Option<String>,
    },
    /// List, add, remove and change VMkernel interfaces on the running daemon.
    Vmknic(OnNetstack<VmknicCommand>),
    /// List, add, remove and explain routes (and the default gateway) on the running daemon.
    Route(OnNetstack<RouteCommand>),
    /// List and forget entries of the running daemon's neighbour (ARP) table.
    Neighbor(OnNetstack<NeighborCommand>),
    /// Per-vmknic packet, byte, forwarding and drop counters of the running daemon; with
    /// --interval, also their rates over each interval.
    Stats(super::top::StatsArgs),
    /// A live view of each vmknic's rates (esxtop's network view): PKTTX/s, MbTX/s, PKTRX/s,
    /// MbRX/s, %DRPTX, %DRPRX, FWD/s. Keys t T r R N sort, q quits; -b prints CSV.
    Top(super::top::TopArgs),
    /// Check an iSCSI or NFS server from the stack itself (`probe iscsi HOST[:PORT]`,
    /// `probe nfs HOST`), with a diagnosis for each failure point.
    Probe(OnNetstack<ProbeCommand>),
    /// List, show, add and remove netstacks (ESXi's `esxcli network ip netstack`).
    Netstack(OnNetstack<NetstackCommand>),
    /// Apply the configuration file on disk to the running daemon, as SIGHUP does: the
    /// difference (vmknics, routes, gateway, forwarding, forwards) goes live without touching
    /// unchanged vmknics, or the file is refused with every problem named and nothing changes.
    Reload,
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
    /// esxcfg-vmknic: list (-l), add (-a, -i DHCP), delete (-d), enable (-e), disable (-D)
    /// vmknics and change their MTU (-m) or address (-i/-n, -i DHCP).
    #[command(
        name = "esxcfg-vmknic",
        disable_help_flag = true,
        disable_version_flag = true
    )]
    EsxcfgVmknic(PassThrough),
    /// vmkping: ICMP echo from the VMkernel stack
    /// ([-I vmkN] [-N next_hop] [-c count] [-s size] [-d] [-i interval] [-W timeout] [-t ttl]
    /// host).
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Vmkping(PassThrough),
    /// esxcli [--formatter csv|keyvalue|json] network {ip route ipv4 list|add|remove, ip
    /// interface list|add|remove|set|ipv4 get|set, ip neighbor list|remove, diag ping}.
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Esxcli(PassThrough),
    /// nc -z [-nv] [-w secs] [-s source_ip | -I vmkN] host port: check a TCP port from the
    /// VMkernel stack (the exit status answers; -v reports as netcat does).
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Nc(PassThrough),
    /// pktcap-uw: capture packets inside the stack to pcapng ([--vmk vmkN] [--dir 0|1|2]
    /// [--capture Drop|Forward|Endpoint] [-o FILE|-] [-c COUNT] [filters]).
    #[command(
        name = "pktcap-uw",
        disable_help_flag = true,
        disable_version_flag = true
    )]
    PktcapUw(PassThrough),
    /// The same as pktcap-uw.
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Capture(PassThrough),
    /// Write shell completions or man pages generated from these definitions (packaging).
    #[command(hide = true, subcommand)]
    Generate(Generate),
}

/// `vmkstack generate`: what the installed completions and man pages are made from.
#[derive(Debug, Subcommand)]
pub(crate) enum Generate {
    /// Completions for bash, zsh and fish, for `vmkstack` and each ESX personality:
    /// DIR/bash/NAME, DIR/zsh/_NAME, DIR/fish/NAME.fish.
    Completions {
        /// Output directory (created).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Man pages (section 1) for `vmkstack`, its subcommands and each ESX personality.
    Man {
        /// Output directory (created).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}
