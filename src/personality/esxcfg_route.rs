//! `esxcfg-route`: show or set the VMkernel default gateway, add or delete static routes, list
//! the routing table (`-l`) and the neighbour table (`-n`).
//!
//! [`parse_esxcfg_route`] is pure: it turns an argv into a [`RouteCommand`] and nothing else (no
//! I/O, no printing, no process exit). clap (derive) handles the flag structure; the positionals
//! are interpreted by hand so that a wrong form gets a [`UsageError`] saying exactly what is
//! wrong. `argv[0]` is the program name and is skipped. [`run`] then sends the command to the
//! daemon and prints as ESX does.

use std::ffi::OsString;
use std::net::Ipv4Addr;

use clap::{ArgGroup, ColorChoice, CommandFactory, Parser};
use ipnet::{Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};
use vmkstack_routing::{
    check_network, parse_addr, parse_network, parse_network6, Gateway6, RouteEntry,
};

use crate::api::{Action, ClientError, GatewayInfo, NeighborInfo, Route6Info};
use crate::client::{call_as, CliError, Console, Control};
use crate::listing::{format_neighbors, format_routes};
use crate::personality::clap_util::Parsed;
use crate::personality::esxcfg_usage::{
    address, esxcfg_outcome, from_clap, netmask, Invocation, Problem, UsageError,
};

const ROUTE: &str = "esxcfg-route";
const ROUTE_ADD_FORMS: &str =
    "`default <gateway>`, `<network>/<len> <gateway>` or `<network> <netmask> <gateway>`";
const ROUTE_DEL_FORMS: &str =
    "`default [<gateway>]`, `<network>/<len> [<gateway>]` or `<network> <netmask> [<gateway>]`";

/// An `esxcfg-route` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RouteCommand {
    /// `esxcfg-route`: show the VMkernel default gateway.
    ShowDefault,
    /// `esxcfg-route <gw>`, `-a default <gw>`, `-a 0.0.0.0/0 <gw>`: set the default gateway.
    SetDefault(Ipv4Addr),
    /// `-d default [<gw>]`: remove the default gateway; a given gateway must match the current.
    ClearDefault {
        /// The gateway the user named, for the caller to check.
        gateway: Option<Ipv4Addr>,
    },
    /// `-a <net>/<len> <gw>` or `-a <net> <netmask> <gw>`: add a static route.
    Add {
        /// Destination network (no host bits).
        network: Ipv4Net,
        /// Next hop, which must sit on a vmknic subnet.
        gateway: Ipv4Addr,
    },
    /// `-d <net>/<len> [<gw>]` or `-d <net> <netmask> [<gw>]`: delete a static route.
    Delete {
        /// Destination network (no host bits).
        network: Ipv4Net,
        /// The gateway the user named, for the caller to check against the route's.
        gateway: Option<Ipv4Addr>,
    },
    /// `-l`/`--list`: list the routing table.
    List,
    /// `-n`/`--neighbor-list`: list the neighbour (ARP) table.
    Neighbors,
    /// `-f V6`: show the IPv6 default gateway.
    ShowDefault6,
    /// `-f V6 <gw>`, `-f V6 -a default <gw>`: set the IPv6 default gateway.
    SetDefault6(Gateway6),
    /// `-f V6 -d default`: remove the IPv6 default gateway.
    ClearDefault6,
    /// `-f V6 -a <net>/<len> <gw>`: add an IPv6 static route.
    Add6 {
        /// Destination network (no host bits).
        network: Ipv6Net,
        /// Next hop: on a vmknic IPv6 prefix, or link-local with its vmknic (`fe80::1%vmk0`).
        gateway: Gateway6,
    },
    /// `-f V6 -d <net>/<len>`: delete an IPv6 static route.
    Delete6 {
        /// Destination network (no host bits).
        network: Ipv6Net,
    },
    /// `-f V6 -l`: list the IPv6 routing table.
    List6,
}

/// Show or change the VMkernel default gateway and static routes.
#[derive(Debug, Parser)]
#[command(
    name = ROUTE,
    bin_name = ROUTE,
    color = ColorChoice::Never,
    group(ArgGroup::new("action").multiple(false)),
    override_usage = "esxcfg-route [<gateway>]\n       \
        esxcfg-route -a default <gateway> | <network>/<len> <gateway> | \
        <network> <netmask> <gateway>\n       \
        esxcfg-route -d default [<gateway>] | <network>/<len> [<gateway>] | \
        <network> <netmask> [<gateway>]\n       \
        esxcfg-route -l | -n\n       \
        (each form takes -N <netstack>; default defaultTcpipStack)",
    after_help = "Examples:\n  esxcfg-route 192.168.0.1\n  esxcfg-route -a default 192.168.0.1\n  \
        esxcfg-route -a 192.168.100.0/24 192.168.0.1\n  \
        esxcfg-route -a 192.168.100.0 255.255.255.0 192.168.0.1"
)]
struct RouteArgs {
    /// Add a route (or the default gateway)
    #[arg(short = 'a', long = "add", group = "action")]
    add: bool,
    /// Delete a route (or the default gateway)
    #[arg(short = 'd', long = "del", group = "action")]
    del: bool,
    /// List the routing table
    #[arg(short = 'l', long = "list", group = "action")]
    list: bool,
    /// List the neighbour (ARP) table
    #[arg(short = 'n', long = "neighbor-list", group = "action")]
    neighbors: bool,
    /// The address family: V4 (the default) or V6
    #[arg(short = 'f', long = "family", value_name = "V4|V6")]
    family: Option<String>,
    /// The netstack to act on (default: defaultTcpipStack)
    #[arg(short = 'N', long = "netstack", value_name = "NETSTACK")]
    netstack: Option<String>,
    /// Gateway, or network [netmask] gateway with -a/-d
    #[arg(value_name = "ARG")]
    args: Vec<String>,
}

/// The clap definition of `esxcfg-route`'s flags as its parser uses them (for the generated
/// completions and man page).
pub fn command() -> clap::Command {
    RouteArgs::command()
}

/// Parses an `esxcfg-route` argv (`argv[0]` is the program name) into a [`RouteCommand`].
pub fn parse_esxcfg_route<I, T>(argv: I) -> Result<RouteCommand, UsageError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    parse_esxcfg_route_on(argv).map(|(c, _)| c)
}

/// Parses an `esxcfg-route` argv into a [`RouteCommand`] and the netstack it names (`-N`).
pub fn parse_esxcfg_route_on<I, T>(argv: I) -> Result<(RouteCommand, Option<String>), UsageError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args = RouteArgs::try_parse_from(argv).map_err(from_clap)?;
    let netstack = args.netstack.clone();
    route_command(args).map(|c| (c, netstack))
}

fn route_command(args: RouteArgs) -> Result<RouteCommand, UsageError> {
    let pos: Vec<&str> = args.args.iter().map(String::as_str).collect();
    let flags = [
        (args.add, "-a"),
        (args.del, "-d"),
        (args.list, "-l"),
        (args.neighbors, "-n"),
    ];
    let action = flags
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag));
    let i = Invocation {
        program: ROUTE,
        action,
    };
    let arity = |expected| {
        let got = pos.len();
        Err(i.error(Problem::Arguments { expected, got }))
    };
    match args
        .family
        .as_deref()
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        None | Some("V4") => {}
        Some("V6") => return route_command6(&args, &pos, i),
        Some(other) => {
            return Err(i.error(Problem::Other(format!(
                "`{other}` is not an address family (V4 or V6)"
            ))))
        }
    }
    if args.list || args.neighbors {
        return match (pos.is_empty(), args.list) {
            (false, _) => arity("no arguments"),
            (true, true) => Ok(RouteCommand::List),
            (true, false) => Ok(RouteCommand::Neighbors),
        };
    }
    if args.add {
        let (network, gateway) = match pos.as_slice() {
            ["default", gw] => (Ipv4Net::default(), gateway(i, gw)?),
            // A bare address and a gateway: the prefix length or netmask is missing.
            [net, _] if !net.contains('/') && parse_addr(net).is_ok() => {
                return arity(ROUTE_ADD_FORMS)
            }
            [net, gw] => (prefix(i, net)?, gateway(i, gw)?),
            [net, mask, gw] => (network_mask(i, net, mask)?, gateway(i, gw)?),
            _ => return arity(ROUTE_ADD_FORMS),
        };
        return Ok(match network.prefix_len() {
            0 => RouteCommand::SetDefault(gateway),
            _ => RouteCommand::Add { network, gateway },
        });
    }
    if args.del {
        let (network, gateway) = match pos.as_slice() {
            ["default"] => (Ipv4Net::default(), None),
            ["default", gw] => (Ipv4Net::default(), Some(gateway(i, gw)?)),
            [net] => (prefix(i, net)?, None),
            [net, gw] if net.contains('/') => (prefix(i, net)?, Some(gateway(i, gw)?)),
            [net, mask] => (network_mask(i, net, mask)?, None),
            [net, mask, gw] => (network_mask(i, net, mask)?, Some(gateway(i, gw)?)),
            _ => return arity(ROUTE_DEL_FORMS),
        };
        return Ok(match network.prefix_len() {
            0 => RouteCommand::ClearDefault { gateway },
            _ => RouteCommand::Delete { network, gateway },
        });
    }
    match pos.as_slice() {
        [] => Ok(RouteCommand::ShowDefault),
        [gw] => Ok(RouteCommand::SetDefault(gateway(i, gw)?)),
        _ => arity("no arguments or `<gateway>`"),
    }
}

/// The `-f V6` forms.
fn route_command6(
    args: &RouteArgs,
    pos: &[&str],
    i: Invocation,
) -> Result<RouteCommand, UsageError> {
    let arity = |expected| {
        let got = pos.len();
        Err(i.error(Problem::Arguments { expected, got }))
    };
    let gw6 = |s: &str| {
        vmkstack_stack::config::parse_gateway6(s)
            .map_err(|e| i.error(Problem::Other(format!("gateway: {e}"))))
    };
    let net6 = |s: &str| -> Result<Option<Ipv6Net>, UsageError> {
        if s == "default" {
            return Ok(None);
        }
        let n = parse_network6(s).map_err(|e| i.error(Problem::Other(format!("network: {e}"))))?;
        Ok((n.prefix_len() > 0).then_some(n))
    };
    if args.neighbors {
        return Err(i.error(Problem::Other(
            "-n lists every neighbour; use it without -f".to_string(),
        )));
    }
    if args.list {
        return match pos {
            [] => Ok(RouteCommand::List6),
            _ => arity("no arguments"),
        };
    }
    if args.add {
        return match pos {
            [net, gw] => Ok(match net6(net)? {
                None => RouteCommand::SetDefault6(gw6(gw)?),
                Some(network) => RouteCommand::Add6 {
                    network,
                    gateway: gw6(gw)?,
                },
            }),
            _ => arity("`default <gateway>` or `<network>/<len> <gateway>`"),
        };
    }
    if args.del {
        return match pos {
            [net] | [net, _] => Ok(match net6(net)? {
                None => RouteCommand::ClearDefault6,
                Some(network) => RouteCommand::Delete6 { network },
            }),
            _ => arity("`default` or `<network>/<len>`"),
        };
    }
    match pos {
        [] => Ok(RouteCommand::ShowDefault6),
        [gw] => Ok(RouteCommand::SetDefault6(gw6(gw)?)),
        _ => arity("no arguments or `<gateway>`"),
    }
}

fn gateway(i: Invocation, s: &str) -> Result<Ipv4Addr, UsageError> {
    parse_addr(s).map_err(|e| address(i, "gateway", e))
}

fn prefix(i: Invocation, s: &str) -> Result<Ipv4Net, UsageError> {
    parse_network(s).map_err(|e| address(i, "network", e))
}

fn network_mask(i: Invocation, net: &str, mask: &str) -> Result<Ipv4Net, UsageError> {
    let addr = parse_addr(net).map_err(|e| address(i, "network", e))?;
    let len = netmask(i, mask)?;
    let net = Ipv4Net::new(addr, len).map_err(|_| i.error(Problem::Netmask(mask.to_string())))?;
    check_network(net).map_err(|e| address(i, "network", e))
}

/// Parses an `esxcfg-route` argv as the personality does: `-h`/`--help` is the help text to
/// print, any other refusal a usage error.
pub fn parse(argv: Vec<OsString>) -> Result<Parsed<(RouteCommand, Option<String>)>, CliError> {
    parse_esxcfg_route_on(argv)
        .map(Parsed::Run)
        .or_else(esxcfg_outcome)
}

/// Runs an `esxcfg-route` command.
pub fn run(
    cmd: &RouteCommand,
    ctl: &mut dyn Control,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let failed = |e: ClientError| CliError::from_client(ROUTE, &e);
    match *cmd {
        RouteCommand::ShowDefault => {
            let gw: GatewayInfo = call_as(ctl, Action::GatewayShow).map_err(&failed)?;
            console.println(&default_gateway_line(gw.gateway));
        }
        RouteCommand::SetDefault(gateway) => {
            ctl.call(Action::GatewaySet {
                gateway: gateway.to_string(),
            })
            .map_err(&failed)?;
            console.println(&default_gateway_line(Some(gateway)));
        }
        RouteCommand::ClearDefault { gateway } => {
            let current = match gateway {
                Some(g) => Some(g),
                None => {
                    let gw: GatewayInfo = call_as(ctl, Action::GatewayShow).map_err(&failed)?;
                    gw.gateway
                }
            };
            ctl.call(Action::GatewayClear {
                gateway: gateway.map(|g| g.to_string()),
            })
            .map_err(&failed)?;
            match current {
                Some(g) => console.println(&format!("Deleting default gateway {g} from VMkernel")),
                None => console.println(&default_gateway_line(None)),
            }
        }
        RouteCommand::Add { network, gateway } => {
            ctl.call(Action::RouteAdd {
                network: network.to_string(),
                gateway: gateway.to_string(),
            })
            .map_err(&failed)?;
            console.println(&format!("Adding static route {network} to VMkernel"));
        }
        RouteCommand::Delete { network, gateway } => {
            ctl.call(Action::RouteRemove {
                network: network.to_string(),
                gateway: gateway.map(|g| g.to_string()),
            })
            .map_err(&failed)?;
            console.println(&format!("Deleting static route {network} from VMkernel"));
        }
        RouteCommand::List => {
            let routes: Vec<RouteEntry> = call_as(ctl, Action::RouteList).map_err(&failed)?;
            console.print(&format_routes(&routes));
        }
        RouteCommand::Neighbors => {
            let n: Vec<NeighborInfo> = call_as(ctl, Action::NeighborList).map_err(&failed)?;
            console.print(&format_neighbors(&n));
        }
        RouteCommand::ShowDefault6 => {
            let routes: Vec<Route6Info> = call_as(ctl, Action::Route6List).map_err(&failed)?;
            let gw = routes
                .into_iter()
                .find(|r| r.network.prefix_len() == 0)
                .and_then(|r| r.gateway);
            console.println(&default_gateway6_line(gw.as_deref()));
        }
        RouteCommand::SetDefault6(gw) => {
            ctl.call(Action::Route6Add {
                network: "default".to_string(),
                gateway: gw.to_string(),
            })
            .map_err(&failed)?;
            console.println(&default_gateway6_line(Some(&gw.to_string())));
        }
        RouteCommand::ClearDefault6 => {
            ctl.call(Action::Route6Remove {
                network: "default".to_string(),
            })
            .map_err(&failed)?;
            console.println("Deleting IPv6 default gateway from VMkernel");
        }
        RouteCommand::Add6 { network, gateway } => {
            ctl.call(Action::Route6Add {
                network: network.to_string(),
                gateway: gateway.to_string(),
            })
            .map_err(&failed)?;
            console.println(&format!("Adding static route {network} to VMkernel"));
        }
        RouteCommand::Delete6 { network } => {
            ctl.call(Action::Route6Remove {
                network: network.to_string(),
            })
            .map_err(&failed)?;
            console.println(&format!("Deleting static route {network} from VMkernel"));
        }
        RouteCommand::List6 => {
            let routes: Vec<Route6Info> = call_as(ctl, Action::Route6List).map_err(&failed)?;
            console.print(&format_routes6(&routes));
        }
    }
    Ok(())
}

/// `VMkernel IPv6 default gateway is 2001:db8:1::fe` (or `... is not set`).
pub fn default_gateway6_line(gateway: Option<&str>) -> String {
    match gateway {
        Some(g) => format!("VMkernel IPv6 default gateway is {g}"),
        None => "VMkernel IPv6 default gateway is not set".to_string(),
    }
}

/// The IPv6 routing table as `esxcfg-route -f V6 -l` lists it (the layout of the IPv4
/// listing with a prefix length column; not pinned to a captured ESXi output).
pub fn format_routes6(routes: &[Route6Info]) -> String {
    let mut out = String::from("VMkernel Routes:\n");
    out.push_str(&format!(
        "{:<40} {:<7} {:<40} {}\n",
        "Network", "Prefix", "Gateway", "Interface"
    ));
    for r in routes {
        let network = if r.network.prefix_len() == 0 {
            "default".to_string()
        } else {
            r.network.network().to_string()
        };
        let gateway = r
            .gateway
            .clone()
            .unwrap_or_else(|| "Local Subnet".to_string());
        let vmknic = r.vmknic.clone().unwrap_or_else(|| "None".to_string());
        out.push_str(&format!(
            "{network:<40} {:<7} {gateway:<40} {vmknic}\n",
            r.network.prefix_len()
        ));
    }
    out
}

/// `VMkernel default gateway is 198.18.1.1` (or `... is not set`).
pub fn default_gateway_line(gateway: Option<Ipv4Addr>) -> String {
    match gateway {
        Some(g) => format!("VMkernel default gateway is {g}"),
        None => "VMkernel default gateway is not set".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::api::ErrorKind;
    use crate::client::fake::{capture, refused, FakeDaemon};

    fn route(args: &str) -> Result<RouteCommand, UsageError> {
        parse_esxcfg_route(std::iter::once(ROUTE).chain(args.split_whitespace()))
    }

    fn check_errors<T>(cases: &[(&str, &str)], parse: fn(&str) -> Result<T, UsageError>) {
        for (args, want) in cases {
            let message = parse(args).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(message.contains(want), "{args}: `{message}` lacks `{want}`");
        }
    }

    /// Runs `args` against scripted answers: (result, stdout, stderr, actions sent).
    fn run_fake(
        args: &str,
        answers: Vec<Result<Value, ClientError>>,
    ) -> (Result<(), CliError>, String, String, Vec<Action>) {
        let argv = std::iter::once(ROUTE)
            .chain(args.split_whitespace())
            .map(OsString::from)
            .collect();
        let cmd = match parse(argv) {
            Ok(Parsed::Run((cmd, _))) => cmd,
            other => panic!("{args}: {other:?}"),
        };
        let mut d = FakeDaemon::new(answers);
        let (res, out, err) = capture(|c| run(&cmd, &mut d, c));
        (res, out, err, d.actions)
    }

    #[test]
    fn test_parse_route() {
        use RouteCommand::*;
        let gw: Ipv4Addr = "192.168.0.1".parse().unwrap();
        let network: Ipv4Net = "192.168.100.0/24".parse().unwrap();
        let add = || Add {
            network,
            gateway: gw,
        };
        let del = |gateway| Delete { network, gateway };
        let clear = |gateway| ClearDefault { gateway };
        #[rustfmt::skip]
        let cases = [
            // The article's examples.
            ("-a 192.168.100.0/24 192.168.0.1", add()),
            ("-a 192.168.100.0 255.255.255.0 192.168.0.1", add()),
            ("192.168.0.1", SetDefault(gw)),
            ("-a default 192.168.0.1", SetDefault(gw)),
            ("", ShowDefault),
            ("--add 192.168.100.0 24 192.168.0.1", add()),
            ("-a 0.0.0.0/0 192.168.0.1", SetDefault(gw)),
            ("-a 0.0.0.0 0.0.0.0 192.168.0.1", SetDefault(gw)),
            ("-d 192.168.100.0/24", del(None)),
            ("-d 192.168.100.0/24 192.168.0.1", del(Some(gw))),
            ("--del 192.168.100.0 255.255.255.0", del(None)),
            ("-d 192.168.100.0 255.255.255.0 192.168.0.1", del(Some(gw))),
            ("-d default", clear(None)),
            ("-d default 192.168.0.1", clear(Some(gw))),
            ("-d 0.0.0.0/0", clear(None)),
            ("-d 0.0.0.0 0.0.0.0 192.168.0.1", clear(Some(gw))),
            ("-l", List),
            ("--list", List),
            ("-n", Neighbors),
            ("--neighbor-list", Neighbors),
        ];
        for (args, want) in cases {
            assert_eq!(route(args), Ok(want), "{args}");
        }
        let full_path = ["/usr/sbin/esxcfg-route", "-l"];
        assert_eq!(parse_esxcfg_route(full_path), Ok(List));
    }

    #[test]
    fn test_parse_route_errors() {
        let forms = "esxcfg-route -a: expected `default <gateway>`, `<network>/<len> <gateway>` \
                     or `<network> <netmask> <gateway>`, got 1 argument";
        let host_bits = "esxcfg-route -a: invalid network: 192.168.100.7/24 has host bits set; \
                         the network is 192.168.100.0/24";
        #[rustfmt::skip]
        let cases = [
            ("-a 192.168.100.0/24", forms),
            ("-a 192.168.100.7/24 192.168.0.1", host_bits),
            ("-a", "esxcfg-route -a: expected `default <gateway>`"),
            ("-a default", "got 1 argument"),
            // A bare network and a gateway: the prefix length or netmask is missing.
            ("-a 192.168.100.0 192.168.0.1", "got 2 arguments"),
            ("-a 198.18.0.0 255.0.0.0 198.18.0.1 198.18.0.2", "got 4 arguments"),
            ("-d", "esxcfg-route -d: expected `default [<gateway>]`"),
            ("-d 198.18.0.0 255.0.0.0 198.18.0.1 198.18.0.2", "got 4 arguments"),
            ("1.1.1.1 2.2.2.2", "esxcfg-route: expected no arguments or `<gateway>`, got 2"),
            ("-l 198.18.0.1", "esxcfg-route -l: expected no arguments, got 1 argument"),
            ("-n default", "esxcfg-route -n: expected no arguments"),
            ("-a 192.168.100.7 255.255.255.0 198.18.0.1", "the network is 192.168.100.0/24"),
            ("-a 198.18.0.0 255.0.255.0 198.18.0.1", "invalid netmask: netmask 255.0.255.0 is not"),
            ("-a 198.18.0.0 mask 198.18.0.1", "`mask` is not a netmask"),
            ("-a 10.1.0.0/16 198.18.0.300", "invalid gateway: `198.18.0.300` is not an IPv4"),
            ("-a 10.1.0.0/33 198.18.0.1", "invalid network: `10.1.0.0/33` is not an IPv4 prefix"),
            ("gateway", "esxcfg-route: invalid gateway: `gateway`"),
            ("-d 192.168.100.0", "`192.168.100.0` is not an IPv4 prefix"),
            ("-d default x", "invalid gateway: `x`"),
            ("-a -d 198.18.0.0/8 198.18.0.1", "the argument '--add' cannot be used with '--del'"),
            ("-l -n", "cannot be used with"),
            ("-x", "unexpected argument '-x'"),
        ];
        check_errors(&cases, route);
        assert!(matches!(route("-l -a"), Err(UsageError::Flags(_))));
        for flag in ["-h", "--help"] {
            let help = route(flag).unwrap_err();
            assert!(help.is_help() && help.to_string().contains("-a default <gateway>"));
            assert!(help.to_string().contains("--neighbor-list"));
        }
    }

    #[test]
    fn test_esxcfg_route_outputs() {
        let gw = json!({"gateway": "198.18.1.1", "active": true, "vmknic": "vmk0"});
        let unset = json!({"gateway": null, "active": false, "vmknic": null});
        let (r, out, _, _) = run_fake("", vec![Ok(gw.clone())]);
        assert_eq!(
            (r, out.as_str()),
            (Ok(()), "VMkernel default gateway is 198.18.1.1\n")
        );
        let (_, out, _, _) = run_fake("", vec![Ok(unset)]);
        assert_eq!(out, "VMkernel default gateway is not set\n");
        let (r, out, _, actions) = run_fake("198.18.1.1", vec![Ok(Value::Null)]);
        assert_eq!(
            (r, out.as_str()),
            (Ok(()), "VMkernel default gateway is 198.18.1.1\n")
        );
        assert_eq!(
            actions,
            vec![Action::GatewaySet {
                gateway: "198.18.1.1".into()
            }]
        );
        let (_, out, _, actions) = run_fake("-a 198.18.100.0/24 198.18.1.1", vec![Ok(Value::Null)]);
        assert_eq!(out, "Adding static route 198.18.100.0/24 to VMkernel\n");
        assert_eq!(
            actions,
            vec![Action::RouteAdd {
                network: "198.18.100.0/24".into(),
                gateway: "198.18.1.1".into()
            }]
        );
        let (_, out, _, _) = run_fake("-d 198.18.100.0 255.255.255.0", vec![Ok(Value::Null)]);
        assert_eq!(out, "Deleting static route 198.18.100.0/24 from VMkernel\n");
        let (_, out, _, actions) = run_fake("-d default", vec![Ok(gw), Ok(Value::Null)]);
        assert_eq!(out, "Deleting default gateway 198.18.1.1 from VMkernel\n");
        assert_eq!(actions[1], Action::GatewayClear { gateway: None });
        let (_, out, _, actions) = run_fake("-d default 198.18.1.1", vec![Ok(Value::Null)]);
        assert_eq!(out, "Deleting default gateway 198.18.1.1 from VMkernel\n");
        assert_eq!(actions.len(), 1);
    }

    #[test]
    fn test_esxcfg_route_refusal_verbatim() {
        let msg = "Unable to set VMkernel gateway as there are not VMkernel interfaces on the \
                   same network";
        let (r, out, _, _) = run_fake(
            "192.168.0.254",
            vec![refused(ErrorKind::GatewayUnreachable, msg)],
        );
        assert_eq!(r, Err(CliError::Failed(msg.into())));
        assert!(out.is_empty(), "nothing printed on failure: {out}");
    }

    #[test]
    fn test_esxcfg_route_neighbors() {
        let n = json!([
            {"ip": "198.18.1.1", "mac": "02:00:00:00:00:01", "vmknic": "vmk0",
             "state": "reachable", "expiry_s": 1199},
            {"ip": "198.18.1.7", "mac": null, "vmknic": "vmk0", "state": "incomplete",
             "expiry_s": null},
        ]);
        let (_, out, _, _) = run_fake("-n", vec![Ok(n)]);
        assert_eq!(
            out,
            "Neighbor    MAC Address        vmknic  Expiry(sec)  State\n\
             198.18.1.1  02:00:00:00:00:01  vmk0    1199         reachable\n\
             198.18.1.7  (incomplete)       vmk0    -            incomplete\n"
        );
    }

    #[test]
    fn test_serde_round_trip() {
        let route_cmd = route("-a 192.168.100.0/24 192.168.0.1").unwrap();
        let json = serde_json::to_string(&route_cmd).unwrap();
        assert_eq!(
            serde_json::from_str::<RouteCommand>(&json).unwrap(),
            route_cmd
        );
    }
}
