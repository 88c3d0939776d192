//! The part of `esxcli` that concerns the VMkernel TCP/IP stack:
//!
//! ```text
//! esxcli network ip route ipv4 list   [-N|--netstack NAME]
//! esxcli network ip route ipv4 add    -n|--network <net/len|default> -g|--gateway <gw> [-N NAME]
//! esxcli network ip route ipv4 remove -n|--network <net/len|default> -g|--gateway <gw> [-N NAME]
//! esxcli network ip interface list
//! esxcli network ip netstack list | get -N NAME | add -N NAME | remove -N NAME
//! esxcli network ip neighbor list   [-i|--interface-name vmkN] [-v|--version 4|6|all] [-N NAME]
//! esxcli network ip neighbor remove -a|--neighbor-addr <ip> [-v|--version 4]
//!                                   [-i|--interface-name vmkN]
//! ```
//!
//! Listings print in ESXi's layouts (see [`crate::listing`]); changes print nothing, as on
//! ESXi. A namespace that does not exist is a usage error naming the ones that do.

use std::ffi::OsString;
use std::net::Ipv4Addr;

use clap::{ColorChoice, CommandFactory, Parser, Subcommand};
use vmkstack_routing::RouteEntry;

use crate::api::{Action, ClientError, NeighborInfo, NetstackInfo, VmknicInfo};
use crate::client::{call_as, CliError, Console, Control};
use crate::listing::{format_esxcli_interfaces, format_esxcli_neighbors, format_esxcli_routes};
use crate::personality::clap_util::{clap_outcome, Parsed};
use crate::route_target::{
    parse_ipv4, parse_route_target, route_add_action, route_remove_action, RouteTarget,
};

const PROGRAM: &str = "esxcli";

/// ESXi's command line, for the VMkernel network stack.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "esxcli",
    bin_name = "esxcli",
    color = ColorChoice::Never,
    disable_version_flag = true,
    disable_help_subcommand = true
)]
pub struct EsxcliArgs {
    /// The namespace.
    #[command(subcommand)]
    pub namespace: Root,
}

/// `esxcli <namespace>`.
#[derive(Debug, Clone, Subcommand)]
pub enum Root {
    /// Operations on the host's networking
    #[command(disable_help_subcommand = true)]
    Network {
        /// The namespace.
        #[command(subcommand)]
        namespace: Network,
    },
}

/// `esxcli network <namespace>`.
#[derive(Debug, Clone, Subcommand)]
pub enum Network {
    /// The VMkernel TCP/IP stack
    #[command(disable_help_subcommand = true)]
    Ip {
        /// The namespace.
        #[command(subcommand)]
        namespace: Ip,
    },
}

/// `esxcli network ip <namespace>`.
#[derive(Debug, Clone, Subcommand)]
pub enum Ip {
    /// VMkernel routing tables
    #[command(disable_help_subcommand = true)]
    Route {
        /// The namespace.
        #[command(subcommand)]
        namespace: Route,
    },
    /// VMkernel network interfaces
    #[command(disable_help_subcommand = true)]
    Interface {
        /// The command.
        #[command(subcommand)]
        command: Listing,
    },
    /// The VMkernel neighbour (ARP) table
    #[command(disable_help_subcommand = true)]
    Neighbor {
        /// The command.
        #[command(subcommand)]
        command: NeighborCmd,
    },
    /// The VMkernel TCP/IP stacks (netstacks)
    #[command(disable_help_subcommand = true)]
    Netstack {
        /// The command.
        #[command(subcommand)]
        command: NetstackCmd,
    },
}

/// `esxcli network ip netstack <command>`.
#[derive(Debug, Clone, Subcommand)]
pub enum NetstackCmd {
    /// List the netstacks
    List,
    /// Show one netstack's settings
    Get(NetstackName),
    /// Add a netstack
    Add(NetstackName),
    /// Remove a netstack that no VMkernel interface uses
    Remove(NetstackName),
}

/// `-N|--netstack` naming a netstack (required).
#[derive(Debug, Clone, clap::Args)]
pub struct NetstackName {
    /// The netstack's name
    #[arg(short = 'N', long = "netstack", value_name = "str")]
    pub netstack: String,
}

/// `-N|--netstack` choosing a netstack (default: defaultTcpipStack).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct NetstackOpt {
    /// The netstack (default: defaultTcpipStack)
    #[arg(short = 'N', long = "netstack", value_name = "str")]
    pub netstack: Option<String>,
}

/// `esxcli network ip neighbor <command>`.
#[derive(Debug, Clone, Subcommand)]
pub enum NeighborCmd {
    /// List the neighbours
    List(NeighborListArgs),
    /// Remove a neighbour entry
    Remove(NeighborRemoveArgs),
}

/// The IP version `-v` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IpVersion {
    /// IPv4
    #[value(name = "4")]
    V4,
    /// IPv6
    #[value(name = "6")]
    V6,
    /// Both
    All,
}

/// `neighbor list` options.
#[derive(Debug, Clone, clap::Args)]
pub struct NeighborListArgs {
    /// Only the neighbours on this VMkernel interface
    #[arg(short = 'i', long = "interface-name", value_name = "str")]
    pub interface: Option<String>,
    /// IP version: 4, 6 or all (vmkstack's stack is IPv4: 6 lists nothing)
    #[arg(
        short = 'v',
        long = "version",
        value_name = "str",
        default_value = "all"
    )]
    pub version: IpVersion,
    /// The netstack.
    #[command(flatten)]
    pub netstack: NetstackOpt,
}

/// `neighbor remove` options.
#[derive(Debug, Clone, clap::Args)]
pub struct NeighborRemoveArgs {
    /// The neighbour's IPv4 address
    #[arg(short = 'a', long = "neighbor-addr", value_name = "str", value_parser = parse_ipv4)]
    pub address: Ipv4Addr,
    /// IP version (4)
    #[arg(short = 'v', long = "version", value_name = "str", default_value = "4")]
    pub version: IpVersion,
    /// Only the entry on this VMkernel interface; every interface if unspecified
    #[arg(short = 'i', long = "interface-name", value_name = "str")]
    pub interface: Option<String>,
}

/// `esxcli network ip route <namespace>`.
#[derive(Debug, Clone, Subcommand)]
pub enum Route {
    /// IPv4 routes
    #[command(disable_help_subcommand = true)]
    Ipv4 {
        /// The command.
        #[command(subcommand)]
        command: Ipv4Route,
    },
}

/// A namespace whose only command is `list`.
#[derive(Debug, Clone, Copy, Subcommand)]
pub enum Listing {
    /// List them
    List,
}

/// `esxcli network ip route ipv4 <command>`.
#[derive(Debug, Clone, Subcommand)]
pub enum Ipv4Route {
    /// List the IPv4 routes
    List(NetstackOpt),
    /// Add an IPv4 route (or the default gateway with `-n default`)
    Add(RouteArgs),
    /// Remove an IPv4 route (or the default gateway with `-n default`)
    Remove(RouteArgs),
}

/// `--network` and `--gateway` of `route ipv4 add|remove`.
#[derive(Debug, Clone, clap::Args)]
pub struct RouteArgs {
    /// The network, as a.b.c.d/len, or `default`
    #[arg(short = 'n', long, value_name = "str", value_parser = parse_route_target)]
    pub network: RouteTarget,
    /// The gateway, on a vmknic subnet
    #[arg(short = 'g', long, value_name = "str", value_parser = parse_ipv4)]
    pub gateway: Ipv4Addr,
    /// The netstack.
    #[command(flatten)]
    pub netstack: NetstackOpt,
}

/// A runnable esxcli command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EsxcliCommand {
    /// `network ip route ipv4 list`.
    RouteList {
        /// `-N`.
        netstack: Option<String>,
    },
    /// `network ip route ipv4 add`.
    RouteAdd {
        /// Network or default.
        network: RouteTarget,
        /// Gateway.
        gateway: Ipv4Addr,
        /// `-N`.
        netstack: Option<String>,
    },
    /// `network ip route ipv4 remove`.
    RouteRemove {
        /// Network or default.
        network: RouteTarget,
        /// Gateway.
        gateway: Ipv4Addr,
        /// `-N`.
        netstack: Option<String>,
    },
    /// `network ip netstack list`.
    NetstackList,
    /// `network ip netstack get -N`.
    NetstackGet(String),
    /// `network ip netstack add -N`.
    NetstackAdd(String),
    /// `network ip netstack remove -N`.
    NetstackRemove(String),
    /// `network ip interface list`.
    InterfaceList,
    /// `network ip neighbor list`.
    NeighborList {
        /// Only this vmknic's.
        interface: Option<String>,
        /// False for `-v 6`: vmkstack has no IPv6 neighbours.
        ipv4: bool,
        /// `-N`.
        netstack: Option<String>,
    },
    /// `network ip neighbor remove`.
    NeighborRemove {
        /// The neighbour.
        address: Ipv4Addr,
        /// Only on this vmknic.
        interface: Option<String>,
    },
}

impl From<EsxcliArgs> for EsxcliCommand {
    fn from(a: EsxcliArgs) -> EsxcliCommand {
        let Root::Network {
            namespace: Network::Ip { namespace },
        } = a.namespace;
        match namespace {
            Ip::Route {
                namespace: Route::Ipv4 { command },
            } => match command {
                Ipv4Route::List(n) => EsxcliCommand::RouteList {
                    netstack: n.netstack,
                },
                Ipv4Route::Add(r) => EsxcliCommand::RouteAdd {
                    network: r.network,
                    gateway: r.gateway,
                    netstack: r.netstack.netstack,
                },
                Ipv4Route::Remove(r) => EsxcliCommand::RouteRemove {
                    network: r.network,
                    gateway: r.gateway,
                    netstack: r.netstack.netstack,
                },
            },
            Ip::Netstack { command } => match command {
                NetstackCmd::List => EsxcliCommand::NetstackList,
                NetstackCmd::Get(n) => EsxcliCommand::NetstackGet(n.netstack),
                NetstackCmd::Add(n) => EsxcliCommand::NetstackAdd(n.netstack),
                NetstackCmd::Remove(n) => EsxcliCommand::NetstackRemove(n.netstack),
            },
            Ip::Interface {
                command: Listing::List,
            } => EsxcliCommand::InterfaceList,
            Ip::Neighbor {
                command: NeighborCmd::List(a),
            } => EsxcliCommand::NeighborList {
                interface: a.interface,
                ipv4: a.version != IpVersion::V6,
                netstack: a.netstack.netstack,
            },
            Ip::Neighbor {
                command: NeighborCmd::Remove(a),
            } => EsxcliCommand::NeighborRemove {
                address: a.address,
                interface: a.interface,
            },
        }
    }
}

impl EsxcliCommand {
    /// The netstack it acts on (`-N`), if named.
    pub fn netstack(&self) -> Option<String> {
        match self {
            EsxcliCommand::RouteList { netstack }
            | EsxcliCommand::RouteAdd { netstack, .. }
            | EsxcliCommand::RouteRemove { netstack, .. }
            | EsxcliCommand::NeighborList { netstack, .. } => netstack.clone(),
            _ => None,
        }
    }
}

/// ESXi's `netstack list` record of one netstack (`get` adds its settings).
fn format_netstack(n: &NetstackInfo, full: bool) -> String {
    let mut s = format!("{0}\n   Key: {0}\n   Name: {0}\n", n.name);
    if full {
        s.push_str("   Enabled: true\n   IPv6 Enabled: false\n   Current IPv6 Enabled: false\n");
    }
    s.push_str("   State: 4660\n");
    s
}

/// Checks the namespaces of an esxcli argv (`argv[0]` is the program name) before clap sees
/// it, so that a wrong or missing one gets a message naming the valid ones.
pub fn namespace_error(argv: &[OsString]) -> Option<String> {
    let root = EsxcliArgs::command();
    let mut node = &root;
    let mut path: Vec<String> = Vec::new();
    let valid = |c: &clap::Command| {
        let mut names: Vec<&str> = c
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .map(clap::Command::get_name)
            .collect();
        names.sort_unstable();
        names.join(", ")
    };
    for arg in argv.iter().skip(1) {
        if !node.has_subcommands() {
            return None;
        }
        let word = arg.to_string_lossy().into_owned();
        if word == "-h" || word == "--help" {
            return None;
        }
        match node.find_subcommand(&word) {
            Some(sub) => {
                path.push(word);
                node = sub;
            }
            None => {
                path.push(word);
                return Some(format!(
                    "Error: Unknown command or namespace {} (expected one of: {})",
                    path.join(" "),
                    valid(node)
                ));
            }
        }
    }
    if !node.has_subcommands() {
        return None;
    }
    let at = std::iter::once("esxcli".to_string())
        .chain(path)
        .collect::<Vec<_>>()
        .join(" ");
    Some(format!(
        "Error: Missing command or namespace after `{at}` (expected one of: {})",
        valid(node)
    ))
}

/// Parses an esxcli argv (`argv[0]` is the program name).
pub fn parse(argv: Vec<OsString>) -> Result<Parsed<EsxcliCommand>, CliError> {
    if let Some(m) = namespace_error(&argv) {
        return Err(CliError::Usage(m));
    }
    let args = match EsxcliArgs::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => return clap_outcome(e),
    };
    if let Root::Network {
        namespace:
            Network::Ip {
                namespace:
                    Ip::Neighbor {
                        command: NeighborCmd::Remove(r),
                    },
            },
    } = &args.namespace
    {
        if r.version != IpVersion::V4 {
            return Err(CliError::Usage(
                "Error: -v/--version must be 4: the VMkernel stack of vmkstack is IPv4 only"
                    .to_string(),
            ));
        }
    }
    Ok(Parsed::Run(args.into()))
}

fn failed(e: &ClientError) -> CliError {
    CliError::from_client(PROGRAM, e)
}

/// Runs an esxcli command against the daemon.
pub fn run(
    cmd: EsxcliCommand,
    ctl: &mut dyn Control,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    ctl.set_netstack(cmd.netstack());
    match cmd {
        EsxcliCommand::NetstackList => {
            let list: Vec<NetstackInfo> =
                call_as(ctl, Action::NetstackList).map_err(|e| failed(&e))?;
            let text: Vec<String> = list.iter().map(|n| format_netstack(n, false)).collect();
            console.print(&text.join("\n"));
        }
        EsxcliCommand::NetstackGet(name) => {
            let n: NetstackInfo =
                call_as(ctl, Action::NetstackGet { name }).map_err(|e| failed(&e))?;
            console.print(&format_netstack(&n, true));
        }
        EsxcliCommand::NetstackAdd(name) => {
            ctl.call(Action::NetstackAdd { name })
                .map_err(|e| failed(&e))?;
        }
        EsxcliCommand::NetstackRemove(name) => {
            ctl.call(Action::NetstackRemove { name })
                .map_err(|e| failed(&e))?;
        }
        EsxcliCommand::RouteList { .. } => {
            let routes: Vec<RouteEntry> =
                call_as(ctl, Action::RouteList).map_err(|e| failed(&e))?;
            console.print(&format_esxcli_routes(&routes));
        }
        EsxcliCommand::RouteAdd {
            network, gateway, ..
        } => {
            ctl.call(route_add_action(network, gateway))
                .map_err(|e| failed(&e))?;
        }
        EsxcliCommand::RouteRemove {
            network, gateway, ..
        } => {
            ctl.call(route_remove_action(network, Some(gateway)))
                .map_err(|e| failed(&e))?;
        }
        EsxcliCommand::InterfaceList => {
            let vmknics: Vec<VmknicInfo> =
                call_as(ctl, Action::VmknicList).map_err(|e| failed(&e))?;
            console.print(&format_esxcli_interfaces(&vmknics));
        }
        EsxcliCommand::NeighborList {
            interface, ipv4, ..
        } => {
            let mut neighbors: Vec<NeighborInfo> =
                call_as(ctl, Action::NeighborList).map_err(|e| failed(&e))?;
            if let Some(name) = &interface {
                let vmknics: Vec<VmknicInfo> =
                    call_as(ctl, Action::VmknicList).map_err(|e| failed(&e))?;
                if !vmknics.iter().any(|v| v.name == *name) {
                    return Err(CliError::Failed(format!(
                        "Error: Invalid interface name {name}: no such VMkernel interface"
                    )));
                }
                neighbors.retain(|n| n.vmknic == *name);
            }
            if !ipv4 {
                neighbors.clear();
            }
            console.print(&format_esxcli_neighbors(&neighbors));
        }
        EsxcliCommand::NeighborRemove { address, interface } => {
            let action = Action::NeighborRemove {
                ip: address.to_string(),
                vmknic: interface,
            };
            ctl.call(action).map_err(|e| failed(&e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::ErrorKind;
    use crate::client::fake::{capture, refused, FakeDaemon};

    fn argv(s: &str) -> Vec<OsString> {
        std::iter::once("esxcli")
            .chain(s.split_whitespace())
            .map(OsString::from)
            .collect()
    }

    fn command(s: &str) -> EsxcliCommand {
        match parse(argv(s)) {
            Ok(Parsed::Run(c)) => c,
            other => panic!("{s}: {other:?}"),
        }
    }

    fn usage(s: &str) -> String {
        match parse(argv(s)) {
            Err(CliError::Usage(m)) => m,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn test_parse_commands() {
        let gw: Ipv4Addr = "198.18.1.1".parse().unwrap();
        let net = RouteTarget::Network("198.18.100.0/24".parse().unwrap());
        assert_eq!(
            command("network ip route ipv4 list"),
            EsxcliCommand::RouteList { netstack: None }
        );
        assert_eq!(
            command("network ip route ipv4 list -N vmotion"),
            EsxcliCommand::RouteList {
                netstack: Some("vmotion".into())
            }
        );
        assert_eq!(
            command("network ip netstack add -N vmotion"),
            EsxcliCommand::NetstackAdd("vmotion".into())
        );
        assert_eq!(
            command("network ip netstack list"),
            EsxcliCommand::NetstackList
        );
        assert_eq!(
            command("network ip route ipv4 add -n 198.18.100.0/24 -g 198.18.1.1"),
            EsxcliCommand::RouteAdd {
                network: net,
                gateway: gw,
                netstack: None,
            }
        );
        assert_eq!(
            command("network ip route ipv4 remove --network default --gateway 198.18.1.1"),
            EsxcliCommand::RouteRemove {
                network: RouteTarget::Default,
                gateway: gw,
                netstack: None,
            }
        );
        assert_eq!(
            command("network ip interface list"),
            EsxcliCommand::InterfaceList
        );
        assert_eq!(
            command("network ip neighbor list"),
            EsxcliCommand::NeighborList {
                interface: None,
                ipv4: true,
                netstack: None,
            }
        );
        assert_eq!(
            command("network ip neighbor list -i vmk1 -v 4"),
            EsxcliCommand::NeighborList {
                interface: Some("vmk1".into()),
                ipv4: true,
                netstack: None,
            }
        );
        assert_eq!(
            command("network ip neighbor list --version 6"),
            EsxcliCommand::NeighborList {
                interface: None,
                ipv4: false,
                netstack: None,
            }
        );
        let remove = EsxcliCommand::NeighborRemove {
            address: "198.18.2.10".parse().unwrap(),
            interface: None,
        };
        assert_eq!(command("network ip neighbor remove -a 198.18.2.10"), remove);
        assert_eq!(
            command("network ip neighbor remove -a 198.18.2.10 -v 4"),
            remove
        );
        assert_eq!(
            command("network ip neighbor remove --neighbor-addr 198.18.2.10 --version 4 -i vmk1"),
            EsxcliCommand::NeighborRemove {
                address: "198.18.2.10".parse().unwrap(),
                interface: Some("vmk1".into()),
            }
        );
    }

    #[test]
    fn test_neighbor_remove_usage_errors() {
        assert!(usage("network ip neighbor remove").contains("--neighbor-addr"));
        let bad = usage("network ip neighbor remove -a 198.18.2.300");
        assert!(bad.contains("198.18.2.300"), "{bad}");
        assert_eq!(
            usage("network ip neighbor remove -a 198.18.2.10 -v 6"),
            "Error: -v/--version must be 4: the VMkernel stack of vmkstack is IPv4 only"
        );
        assert!(usage("network ip neighbor remove -a 198.18.2.10 -v 5").contains("-v"));
        assert!(usage("network ip neighbor flush").contains("list, remove"));
    }

    #[test]
    fn test_run_neighbors() {
        let neighbors = json!([
            {"ip": "198.18.1.1", "mac": "02:00:00:00:01:01", "vmknic": "vmk0",
             "state": "reachable", "expiry_s": 1199},
            {"ip": "198.18.2.10", "mac": "02:00:00:00:02:0a", "vmknic": "vmk1",
             "state": "reachable", "expiry_s": 88}
        ]);
        let vmknics = json!([
            {"name": "vmk0", "portgroup": "A", "addresses": [], "mac": "02:00:00:00:00:01",
             "mtu": 1500, "enabled": true, "tap": "vmk0", "bridge": null, "netns": null},
            {"name": "vmk1", "portgroup": "B", "addresses": [], "mac": "02:00:00:00:00:02",
             "mtu": 1500, "enabled": true, "tap": "vmk1", "bridge": null, "netns": null}
        ]);
        let mut d = FakeDaemon::new(vec![Ok(neighbors.clone()), Ok(vmknics.clone())]);
        let list = |interface: Option<&str>, ipv4| EsxcliCommand::NeighborList {
            interface: interface.map(String::from),
            ipv4,
            netstack: None,
        };
        let (r, out, _) = capture(|c| run(list(Some("vmk1"), true), &mut d, c));
        assert_eq!(r, Ok(()));
        assert_eq!(
            out,
            "Neighbor     Mac Address        Vmknic  Expiry  State  Type   \n\
             -----------  -----------------  ------  ------  -----  -------\n\
             198.18.2.10  02:00:00:00:02:0a  vmk1    88 sec         Unknown\n"
        );
        let mut d = FakeDaemon::new(vec![Ok(neighbors.clone()), Ok(vmknics)]);
        let (r, _, _) = capture(|c| run(list(Some("vmk7"), true), &mut d, c));
        assert_eq!(
            r,
            Err(CliError::Failed(
                "Error: Invalid interface name vmk7: no such VMkernel interface".into()
            ))
        );
        let mut d = FakeDaemon::new(vec![Ok(neighbors)]);
        let (r, out, _) = capture(|c| run(list(None, false), &mut d, c));
        assert_eq!(r, Ok(()));
        assert_eq!(out.lines().count(), 2, "headers only for IPv6: {out}");

        let mut d = FakeDaemon::new(vec![
            Ok(serde_json::Value::Null),
            refused(ErrorKind::NotFound, "no neighbour 198.18.2.10 on vmk0"),
        ]);
        let remove = |interface: Option<&str>| EsxcliCommand::NeighborRemove {
            address: "198.18.2.10".parse().unwrap(),
            interface: interface.map(String::from),
        };
        let (r, out, _) = capture(|c| run(remove(None), &mut d, c));
        assert_eq!(
            (r, out.as_str()),
            (Ok(()), ""),
            "silent, as esxcli changes are"
        );
        let (r, _, _) = capture(|c| run(remove(Some("vmk0")), &mut d, c));
        assert_eq!(
            r,
            Err(CliError::Failed("no neighbour 198.18.2.10 on vmk0".into()))
        );
        assert_eq!(
            d.actions,
            vec![
                Action::NeighborRemove {
                    ip: "198.18.2.10".into(),
                    vmknic: None
                },
                Action::NeighborRemove {
                    ip: "198.18.2.10".into(),
                    vmknic: Some("vmk0".into())
                }
            ]
        );
    }

    #[test]
    fn test_namespace_errors_name_the_valid_ones() {
        assert_eq!(
            usage("network ip foo list"),
            "Error: Unknown command or namespace network ip foo (expected one of: interface, \
             neighbor, netstack, route)"
        );
        assert_eq!(
            usage("storage"),
            "Error: Unknown command or namespace storage (expected one of: network)"
        );
        assert_eq!(
            usage("network ip route"),
            "Error: Missing command or namespace after `esxcli network ip route` (expected one \
             of: ipv4)"
        );
        assert!(usage("").contains("after `esxcli` (expected one of: network)"));
        assert!(usage("network ip route ipv4 show").contains("add, list, remove"));
        assert!(usage("network ip route ipv4 add -n 198.18.100.0/24").contains("--gateway"));
        let host_bits = usage("network ip route ipv4 add -n 198.18.100.7/24 -g 198.18.1.1");
        assert!(host_bits.contains("host bits"), "{host_bits}");
        assert!(matches!(
            parse(argv("network ip --help")),
            Ok(Parsed::Help(_))
        ));
    }

    #[test]
    fn test_run_route_list() {
        let routes = json!([
            {"network": "198.18.100.0/24", "gateway": "198.18.1.1", "vmknic": "vmk0",
             "origin": "static", "active": true},
            {"network": "198.18.1.0/24", "gateway": null, "vmknic": "vmk0",
             "origin": "connected", "active": true},
            {"network": "0.0.0.0/0", "gateway": "198.18.1.1", "vmknic": "vmk0",
             "origin": "default", "active": true},
        ]);
        let mut d = FakeDaemon::new(vec![Ok(routes)]);
        let (r, out, _) = capture(|c| run(EsxcliCommand::RouteList { netstack: None }, &mut d, c));
        assert_eq!(r, Ok(()));
        assert_eq!(
            out,
            "Network       Netmask        Gateway     Interface  Source\n\
             ------------  -------------  ----------  ---------  ------\n\
             default       0.0.0.0        198.18.1.1  vmk0       MANUAL\n\
             198.18.100.0  255.255.255.0  198.18.1.1  vmk0       MANUAL\n\
             198.18.1.0    255.255.255.0  0.0.0.0     vmk0       MANUAL\n"
        );
    }

    #[test]
    fn test_run_changes() {
        let mut d = FakeDaemon::new(vec![
            Ok(serde_json::Value::Null),
            refused(ErrorKind::NotFound, "no route to 198.18.100.0/24"),
        ]);
        let net = RouteTarget::Network("198.18.100.0/24".parse().unwrap());
        let gateway = "198.18.1.1".parse().unwrap();
        let (r, out, _) = capture(|c| {
            run(
                EsxcliCommand::RouteAdd {
                    network: net,
                    gateway,
                    netstack: None,
                },
                &mut d,
                c,
            )
        });
        assert_eq!((r, out.as_str()), (Ok(()), ""));
        let (r, _, _) = capture(|c| {
            run(
                EsxcliCommand::RouteRemove {
                    network: net,
                    gateway,
                    netstack: None,
                },
                &mut d,
                c,
            )
        });
        assert_eq!(
            r,
            Err(CliError::Failed("no route to 198.18.100.0/24".into()))
        );
        assert_eq!(
            d.actions[1],
            Action::RouteRemove {
                network: "198.18.100.0/24".into(),
                gateway: Some("198.18.1.1".into())
            }
        );
    }
}
