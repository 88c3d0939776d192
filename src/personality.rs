//! The ESX personalities: `esxcfg-route`, `esxcfg-vmknic`, `vmkping`, `esxcli` and `nc`.
//!
//! Each runs as `vmkstack <name> ARGS`, and all but `nc` also when the binary is invoked
//! through a symlink with that file name (see [`Personality::from_argv0`]). Either way the argv
//! handed over starts with the personality's own name, so messages read as on ESX.
//!
//! Running one is three steps: parse the argv (usage errors exit 2 before any connection),
//! connect to the daemon, and execute against a [`Control`].

use std::ffi::{OsStr, OsString};
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use clap::error::ErrorKind as ClapErrorKind;
use clap::ValueEnum;
use vmkstack_routing::RouteEntry;

use crate::api::{Action, ClientError, GatewayInfo, NeighborInfo, RawVmknic, VmknicInfo};
use crate::client::{call_as, with_daemon, CliError, Console, Control, Exit};
use crate::esxcfg::{
    parse_esxcfg_route, parse_esxcfg_vmknic, RouteCommand, UsageError, VmknicCommand,
};
use crate::listing::{format_neighbors, format_routes, format_vmknics, vmknic_rows_from_info};
use crate::{esxcli, nc, vmkping};

/// An ESX command that this binary can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Personality {
    /// `esxcfg-route`: the default gateway, static routes, the neighbour table.
    #[value(name = "esxcfg-route")]
    EsxcfgRoute,
    /// `esxcfg-vmknic`: VMkernel interfaces.
    #[value(name = "esxcfg-vmknic")]
    EsxcfgVmknic,
    /// `vmkping`: ICMP echo from the VMkernel stack.
    #[value(name = "vmkping")]
    Vmkping,
    /// `esxcli network ip ...`.
    #[value(name = "esxcli")]
    Esxcli,
    /// `nc -z`: a TCP port check from the VMkernel stack (only as `vmkstack nc`, so that a
    /// symlink never shadows the system's netcat).
    #[value(name = "nc")]
    Nc,
}

impl Personality {
    /// The names a symlink to the binary may have.
    pub const SYMLINKS: [Personality; 4] = [
        Personality::EsxcfgRoute,
        Personality::EsxcfgVmknic,
        Personality::Vmkping,
        Personality::Esxcli,
    ];

    /// The command's name (`esxcfg-route`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Personality::EsxcfgRoute => "esxcfg-route",
            Personality::EsxcfgVmknic => "esxcfg-vmknic",
            Personality::Vmkping => "vmkping",
            Personality::Esxcli => "esxcli",
            Personality::Nc => "nc",
        }
    }

    /// The personality a program path names by its file name (`/usr/local/bin/vmkping`), if
    /// it is one of the [`Personality::SYMLINKS`].
    pub fn from_argv0(argv0: &OsStr) -> Option<Personality> {
        let file = Path::new(argv0).file_name()?;
        Personality::SYMLINKS
            .into_iter()
            .find(|p| OsStr::new(p.name()) == file)
    }
}

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

fn esxcfg_outcome<T>(e: UsageError) -> Result<Parsed<T>, CliError> {
    match e {
        UsageError::Help(text) => Ok(Parsed::Help(text)),
        other => Err(CliError::Usage(other.to_string())),
    }
}

/// A parsed personality command, ready to run.
#[derive(Debug, Clone)]
pub enum Request {
    /// `esxcfg-route`.
    EsxcfgRoute(RouteCommand),
    /// `esxcfg-vmknic`.
    EsxcfgVmknic(VmknicCommand),
    /// `vmkping`.
    Vmkping(vmkping::Ping),
    /// `esxcli`.
    Esxcli(esxcli::EsxcliCommand),
    /// `nc -z`.
    Nc(nc::Probe),
}

/// Parses `argv` (`argv[0]` is the program name) as personality `p` would.
pub fn parse(p: Personality, argv: Vec<OsString>) -> Result<Parsed<Request>, CliError> {
    fn map<T>(
        r: Result<Parsed<T>, CliError>,
        f: fn(T) -> Request,
    ) -> Result<Parsed<Request>, CliError> {
        r.map(|parsed| match parsed {
            Parsed::Run(t) => Parsed::Run(f(t)),
            Parsed::Help(h) => Parsed::Help(h),
        })
    }
    match p {
        Personality::EsxcfgRoute => map(
            parse_esxcfg_route(argv)
                .map(Parsed::Run)
                .or_else(esxcfg_outcome),
            Request::EsxcfgRoute,
        ),
        Personality::EsxcfgVmknic => map(
            parse_esxcfg_vmknic(argv)
                .map(Parsed::Run)
                .or_else(esxcfg_outcome),
            Request::EsxcfgVmknic,
        ),
        Personality::Vmkping => map(vmkping::parse(argv), Request::Vmkping),
        Personality::Esxcli => map(esxcli::parse(argv), Request::Esxcli),
        Personality::Nc => map(nc::parse(argv), Request::Nc),
    }
}

impl Request {
    /// The personality that parsed it.
    pub fn personality(&self) -> Personality {
        match self {
            Request::EsxcfgRoute(_) => Personality::EsxcfgRoute,
            Request::EsxcfgVmknic(_) => Personality::EsxcfgVmknic,
            Request::Vmkping(_) => Personality::Vmkping,
            Request::Esxcli(_) => Personality::Esxcli,
            Request::Nc(_) => Personality::Nc,
        }
    }

    /// Runs it against the daemon; `sleep` waits between vmkping probes.
    pub fn execute(
        &self,
        ctl: &mut dyn Control,
        console: &mut Console<'_>,
        sleep: &mut dyn FnMut(Duration),
    ) -> Result<(), CliError> {
        match self {
            Request::EsxcfgRoute(cmd) => run_esxcfg_route(cmd, ctl, console),
            Request::EsxcfgVmknic(cmd) => run_esxcfg_vmknic(cmd, ctl, console),
            Request::Vmkping(ping) => ping.run(ctl, console, sleep),
            Request::Esxcli(cmd) => esxcli::run(*cmd, ctl, console),
            Request::Nc(probe) => probe.run(ctl, console),
        }
    }
}

/// Runs personality `p` on `argv` against the daemon at `control`, printing on `console`.
pub fn run(p: Personality, argv: Vec<OsString>, control: &Path, console: &mut Console<'_>) -> Exit {
    let result = match parse(p, argv) {
        Ok(Parsed::Help(text)) => {
            console.print(&text);
            Ok(())
        }
        Ok(Parsed::Run(request)) => with_daemon(p.name(), control, |ctl| {
            request.execute(ctl, console, &mut std::thread::sleep)
        }),
        Err(e) => Err(e),
    };
    console.finish(result)
}

/// The argv a personality sees when run as `vmkstack <name> ARGS`: its name, then ARGS.
pub fn subcommand_argv(p: Personality, args: Vec<OsString>) -> Vec<OsString> {
    std::iter::once(OsString::from(p.name()))
        .chain(args)
        .collect()
}

fn esxcfg_failed(program: &str) -> impl Fn(ClientError) -> CliError + '_ {
    move |e| CliError::from_client(program, &e)
}

/// Runs an `esxcfg-route` command.
pub fn run_esxcfg_route(
    cmd: &RouteCommand,
    ctl: &mut dyn Control,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let failed = esxcfg_failed(Personality::EsxcfgRoute.name());
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
    }
    Ok(())
}

/// `VMkernel default gateway is 198.18.1.1` (or `... is not set`).
pub fn default_gateway_line(gateway: Option<Ipv4Addr>) -> String {
    match gateway {
        Some(g) => format!("VMkernel default gateway is {g}"),
        None => "VMkernel default gateway is not set".to_string(),
    }
}

/// The control action of an `esxcfg-vmknic` change (`None` for `-l`). The port group names
/// the vmknic; an added one gets the lowest free vmkN from the daemon (an empty name).
pub fn esxcfg_vmknic_action(cmd: &VmknicCommand) -> Option<Action> {
    let vmknic = |pg: &String| pg.clone();
    Some(match cmd {
        VmknicCommand::List => return None,
        VmknicCommand::Add {
            portgroup,
            ip,
            prefix_len,
            mtu,
            mac,
        } => Action::VmknicAdd {
            vmknic: RawVmknic {
                name: String::new(),
                portgroup: portgroup.clone(),
                ip: format!("{ip}/{prefix_len}"),
                mtu: mtu.map(i64::from),
                mac: mac.map(|m| m.to_string()),
                ..RawVmknic::default()
            },
        },
        VmknicCommand::Delete { portgroup } => Action::VmknicRemove {
            vmknic: vmknic(portgroup),
        },
        VmknicCommand::Enable { portgroup } => Action::VmknicEnable {
            vmknic: vmknic(portgroup),
        },
        VmknicCommand::Disable { portgroup } => Action::VmknicDisable {
            vmknic: vmknic(portgroup),
        },
        VmknicCommand::SetMtu { portgroup, mtu } => Action::VmknicSetMtu {
            vmknic: vmknic(portgroup),
            mtu: u32::from(*mtu),
        },
        VmknicCommand::SetAddress {
            portgroup,
            ip,
            prefix_len,
        } => Action::VmknicSetAddress {
            vmknic: vmknic(portgroup),
            ip: format!("{ip}/{prefix_len}"),
        },
    })
}

/// Runs an `esxcfg-vmknic` command.
pub fn run_esxcfg_vmknic(
    cmd: &VmknicCommand,
    ctl: &mut dyn Control,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let failed = esxcfg_failed(Personality::EsxcfgVmknic.name());
    match esxcfg_vmknic_action(cmd) {
        None => {
            let v: Vec<VmknicInfo> = call_as(ctl, Action::VmknicList).map_err(&failed)?;
            console.print(&format_vmknics(&vmknic_rows_from_info(&v)));
        }
        Some(action) => {
            ctl.call(action).map_err(&failed)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::api::ErrorKind;
    use crate::client::fake::{capture, refused, FakeDaemon};

    fn argv(p: Personality, s: &str) -> Vec<OsString> {
        subcommand_argv(p, s.split_whitespace().map(OsString::from).collect())
    }

    fn request(p: Personality, s: &str) -> Request {
        match parse(p, argv(p, s)) {
            Ok(Parsed::Run(r)) => r,
            other => panic!("{s}: {other:?}"),
        }
    }

    /// Runs `args` of `p` against scripted answers: (result, stdout, stderr, actions sent).
    fn run_fake(
        p: Personality,
        args: &str,
        answers: Vec<Result<Value, ClientError>>,
    ) -> (Result<(), CliError>, String, String, Vec<Action>) {
        let r = request(p, args);
        let mut d = FakeDaemon::new(answers);
        let (res, out, err) = capture(|c| r.execute(&mut d, c, &mut |_| {}));
        (res, out, err, d.actions)
    }

    #[test]
    fn test_from_argv0() {
        let cases = [
            ("esxcfg-route", Some(Personality::EsxcfgRoute)),
            (
                "/usr/local/bin/esxcfg-vmknic",
                Some(Personality::EsxcfgVmknic),
            ),
            ("./vmkping", Some(Personality::Vmkping)),
            ("/opt/bin/esxcli", Some(Personality::Esxcli)),
            ("vmkstack", None),
            ("/usr/bin/vmkstack", None),
            ("nc", None),
            ("esxcfg-route.sh", None),
            ("/esxcfg-route/vmkstack", None),
            ("", None),
        ];
        for (argv0, want) in cases {
            assert_eq!(Personality::from_argv0(OsStr::new(argv0)), want, "{argv0}");
        }
        for p in Personality::SYMLINKS {
            assert_eq!(Personality::from_argv0(OsStr::new(p.name())), Some(p));
            let v = p.to_possible_value().unwrap();
            assert_eq!(v.get_name(), p.name());
        }
    }

    #[test]
    fn test_dispatch() {
        use Personality::*;
        assert!(matches!(
            request(EsxcfgRoute, "-l"),
            Request::EsxcfgRoute(RouteCommand::List)
        ));
        assert!(matches!(
            request(EsxcfgVmknic, "-l"),
            Request::EsxcfgVmknic(VmknicCommand::List)
        ));
        assert!(matches!(
            request(Vmkping, "198.18.1.1"),
            Request::Vmkping(_)
        ));
        assert!(matches!(
            request(Esxcli, "network ip neighbor list"),
            Request::Esxcli(_)
        ));
        assert!(matches!(request(Nc, "-z 198.18.1.1 80"), Request::Nc(_)));
        for p in [EsxcfgRoute, EsxcfgVmknic, Vmkping, Esxcli, Nc] {
            assert_eq!(request_personality(p), p);
            assert!(
                matches!(parse(p, argv(p, "--help")), Ok(Parsed::Help(_))),
                "{p:?}"
            );
        }
        let host_bits = parse(
            EsxcfgRoute,
            argv(EsxcfgRoute, "-a 198.18.100.7/24 198.18.1.1"),
        );
        assert!(
            matches!(&host_bits, Err(CliError::Usage(m)) if m.contains("has host bits set")),
            "{host_bits:?}"
        );
    }

    fn request_personality(p: Personality) -> Personality {
        let args = match p {
            Personality::Vmkping => "198.18.1.1",
            Personality::Esxcli => "network ip interface list",
            Personality::Nc => "-z 198.18.1.1 22",
            _ => "-l",
        };
        request(p, args).personality()
    }

    #[test]
    fn test_esxcfg_route_outputs() {
        use Personality::EsxcfgRoute as R;
        let gw = json!({"gateway": "198.18.1.1", "active": true, "vmknic": "vmk0"});
        let unset = json!({"gateway": null, "active": false, "vmknic": null});
        let (r, out, _, _) = run_fake(R, "", vec![Ok(gw.clone())]);
        assert_eq!(
            (r, out.as_str()),
            (Ok(()), "VMkernel default gateway is 198.18.1.1\n")
        );
        let (_, out, _, _) = run_fake(R, "", vec![Ok(unset)]);
        assert_eq!(out, "VMkernel default gateway is not set\n");
        let (r, out, _, actions) = run_fake(R, "198.18.1.1", vec![Ok(Value::Null)]);
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
        let (_, out, _, actions) =
            run_fake(R, "-a 198.18.100.0/24 198.18.1.1", vec![Ok(Value::Null)]);
        assert_eq!(out, "Adding static route 198.18.100.0/24 to VMkernel\n");
        assert_eq!(
            actions,
            vec![Action::RouteAdd {
                network: "198.18.100.0/24".into(),
                gateway: "198.18.1.1".into()
            }]
        );
        let (_, out, _, _) = run_fake(R, "-d 198.18.100.0 255.255.255.0", vec![Ok(Value::Null)]);
        assert_eq!(out, "Deleting static route 198.18.100.0/24 from VMkernel\n");
        let (_, out, _, actions) = run_fake(R, "-d default", vec![Ok(gw), Ok(Value::Null)]);
        assert_eq!(out, "Deleting default gateway 198.18.1.1 from VMkernel\n");
        assert_eq!(actions[1], Action::GatewayClear { gateway: None });
        let (_, out, _, actions) = run_fake(R, "-d default 198.18.1.1", vec![Ok(Value::Null)]);
        assert_eq!(out, "Deleting default gateway 198.18.1.1 from VMkernel\n");
        assert_eq!(actions.len(), 1);
    }

    #[test]
    fn test_esxcfg_route_refusal_verbatim() {
        let msg = "Unable to set VMkernel gateway as there are not VMkernel interfaces on the \
                   same network";
        let (r, out, _, _) = run_fake(
            Personality::EsxcfgRoute,
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
        let (_, out, _, _) = run_fake(Personality::EsxcfgRoute, "-n", vec![Ok(n)]);
        assert_eq!(
            out,
            "Neighbor    MAC Address        vmknic  Expiry(sec)  State\n\
             198.18.1.1  02:00:00:00:00:01  vmk0    1199         reachable\n\
             198.18.1.7  (incomplete)       vmk0    -            incomplete\n"
        );
    }

    #[test]
    fn test_esxcfg_vmknic_actions() {
        let p = Personality::EsxcfgVmknic;
        let action = |s: &str| match request(p, s) {
            Request::EsxcfgVmknic(cmd) => esxcfg_vmknic_action(&cmd),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            action("-a -i 198.18.1.100 -n 255.255.255.0 -m 9000 iSCSI_SAN"),
            Some(Action::VmknicAdd {
                vmknic: RawVmknic {
                    name: String::new(),
                    portgroup: "iSCSI_SAN".into(),
                    ip: "198.18.1.100/24".into(),
                    mtu: Some(9000),
                    ..RawVmknic::default()
                }
            })
        );
        assert_eq!(
            action("-d VMotion"),
            Some(Action::VmknicRemove {
                vmknic: "VMotion".into()
            })
        );
        assert_eq!(
            action("-m 9000 VMotion"),
            Some(Action::VmknicSetMtu {
                vmknic: "VMotion".into(),
                mtu: 9000
            })
        );
        assert_eq!(
            action("-i 198.18.2.5 -n 24 VMotion"),
            Some(Action::VmknicSetAddress {
                vmknic: "VMotion".into(),
                ip: "198.18.2.5/24".into()
            })
        );
        assert_eq!(
            action("-D VMotion"),
            Some(Action::VmknicDisable {
                vmknic: "VMotion".into()
            })
        );
        assert_eq!(
            action("-e VMotion"),
            Some(Action::VmknicEnable {
                vmknic: "VMotion".into()
            })
        );
        assert_eq!(action("-l"), None);
    }
}
