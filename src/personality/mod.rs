//! The ESX personalities: `esxcfg-route`, `esxcfg-vmknic`, `vmkping`, `esxcli` and `nc`.
//!
//! Each runs as `vmkstack <name> ARGS`, and all but `nc` also when the binary is invoked
//! through a symlink with that file name (see [`Personality::from_argv0`]). Either way the argv
//! handed over starts with the personality's own name, so messages read as on ESX.
//!
//! Running one is three steps: parse the argv (usage errors exit 2 before any connection),
//! connect to the daemon, and execute against a [`Control`]. This module only dispatches: each
//! command's parsing and running live together in its own file ([`esxcfg_route`],
//! [`esxcfg_vmknic`], [`esxcli`], [`vmkping`], [`nc`]), which never imports this one.

pub mod clap_util;
pub mod esxcfg_route;
pub mod esxcfg_usage;
pub mod esxcfg_vmknic;
pub mod esxcli;
pub mod nc;
pub mod pktcap_uw;
pub mod vmkping;

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::time::Duration;

use clap::ValueEnum;

pub use self::clap_util::{clap_outcome, Parsed};
use self::esxcfg_route::RouteCommand;
use self::esxcfg_vmknic::VmknicCommand;
use crate::client::{with_daemon, CliError, Console, Control, Exit};

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
    /// `pktcap-uw`: capture packets inside the stack (pcapng).
    #[value(name = "pktcap-uw")]
    PktcapUw,
}

impl Personality {
    /// The names a symlink to the binary may have.
    pub const SYMLINKS: [Personality; 5] = [
        Personality::EsxcfgRoute,
        Personality::EsxcfgVmknic,
        Personality::Vmkping,
        Personality::Esxcli,
        Personality::PktcapUw,
    ];

    /// The command's name (`esxcfg-route`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Personality::EsxcfgRoute => "esxcfg-route",
            Personality::EsxcfgVmknic => "esxcfg-vmknic",
            Personality::Vmkping => "vmkping",
            Personality::Esxcli => "esxcli",
            Personality::Nc => "nc",
            Personality::PktcapUw => "pktcap-uw",
        }
    }

    /// The clap definition of the command as its parser uses it (for the generated
    /// completions and man pages).
    pub fn command(self) -> clap::Command {
        use clap::CommandFactory;
        match self {
            Personality::EsxcfgRoute => esxcfg_route::command(),
            Personality::EsxcfgVmknic => esxcfg_vmknic::command(),
            Personality::Vmkping => vmkping::VmkpingArgs::command(),
            Personality::Esxcli => esxcli::EsxcliArgs::command(),
            Personality::Nc => nc::NcArgs::command(),
            Personality::PktcapUw => pktcap_uw::PktcapArgs::command(),
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

/// A parsed personality command, ready to run.
#[derive(Debug, Clone)]
pub enum Request {
    /// `esxcfg-route`, on a netstack (`-N`).
    EsxcfgRoute(RouteCommand, Option<String>),
    /// `esxcfg-vmknic`, on a netstack (`-N`).
    EsxcfgVmknic(VmknicCommand, Option<String>),
    /// `vmkping`.
    Vmkping(vmkping::Ping),
    /// `esxcli`.
    Esxcli(esxcli::Esxcli),
    /// `nc -z`.
    Nc(nc::Probe),
    /// `pktcap-uw` (streams on its own connection: see [`run`]).
    PktcapUw(pktcap_uw::Capture),
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
        Personality::EsxcfgRoute => map(esxcfg_route::parse(argv), |(c, n)| {
            Request::EsxcfgRoute(c, n)
        }),
        Personality::EsxcfgVmknic => map(esxcfg_vmknic::parse(argv), |(c, n)| {
            Request::EsxcfgVmknic(c, n)
        }),
        Personality::Vmkping => map(vmkping::parse(argv), Request::Vmkping),
        Personality::Esxcli => map(esxcli::parse(argv), Request::Esxcli),
        Personality::Nc => map(nc::parse(argv), Request::Nc),
        Personality::PktcapUw => map(pktcap_uw::parse(argv), Request::PktcapUw),
    }
}

impl Request {
    /// The personality that parsed it.
    pub fn personality(&self) -> Personality {
        match self {
            Request::EsxcfgRoute(..) => Personality::EsxcfgRoute,
            Request::EsxcfgVmknic(..) => Personality::EsxcfgVmknic,
            Request::Vmkping(_) => Personality::Vmkping,
            Request::Esxcli(_) => Personality::Esxcli,
            Request::Nc(_) => Personality::Nc,
            Request::PktcapUw(_) => Personality::PktcapUw,
        }
    }

    /// The netstack it acts on (`-N`, vmkping's `-S`); `None`: the default one.
    pub fn netstack(&self) -> Option<String> {
        match self {
            Request::EsxcfgRoute(_, n) | Request::EsxcfgVmknic(_, n) => n.clone(),
            Request::Vmkping(p) => p.args.netstack.clone(),
            Request::Esxcli(c) => c.command.netstack(),
            Request::Nc(p) => p.args.netstack.clone(),
            Request::PktcapUw(_) => None,
        }
    }

    /// Runs it against the daemon; `sleep` waits between vmkping probes.
    pub fn execute(
        &self,
        ctl: &mut dyn Control,
        console: &mut Console<'_>,
        sleep: &mut dyn FnMut(Duration),
    ) -> Result<(), CliError> {
        ctl.set_netstack(self.netstack());
        match self {
            Request::EsxcfgRoute(cmd, _) => esxcfg_route::run(cmd, ctl, console),
            Request::EsxcfgVmknic(cmd, _) => esxcfg_vmknic::run(cmd, ctl, console),
            Request::Vmkping(ping) => ping.run(ctl, console, sleep),
            Request::Esxcli(e) => {
                esxcli::run_formatted(e.command.clone(), e.formatter, ctl, console)
            }
            Request::Nc(probe) => probe.run(ctl, console),
            Request::PktcapUw(_) => Err(CliError::Failed(
                "pktcap-uw: a capture streams on its own connection".into(),
            )),
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
        Ok(Parsed::Run(Request::PktcapUw(capture))) => capture.run(control, console),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(p: Personality, s: &str) -> Vec<OsString> {
        subcommand_argv(p, s.split_whitespace().map(OsString::from).collect())
    }

    fn request(p: Personality, s: &str) -> Request {
        match parse(p, argv(p, s)) {
            Ok(Parsed::Run(r)) => r,
            other => panic!("{s}: {other:?}"),
        }
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
            Request::EsxcfgRoute(RouteCommand::List, None)
        ));
        assert!(matches!(
            request(EsxcfgVmknic, "-l"),
            Request::EsxcfgVmknic(VmknicCommand::List, None)
        ));
        assert_eq!(
            request(EsxcfgRoute, "-N vmotion -l").netstack().as_deref(),
            Some("vmotion")
        );
        assert_eq!(
            request(EsxcfgVmknic, "-l -N vmotion").netstack().as_deref(),
            Some("vmotion")
        );
        assert_eq!(
            request(Vmkping, "-S vmotion 198.18.1.1")
                .netstack()
                .as_deref(),
            Some("vmotion")
        );
        assert_eq!(
            request(Nc, "-z -N vmotion 198.18.1.1 80")
                .netstack()
                .as_deref(),
            Some("vmotion")
        );
        let wrong = parse(EsxcfgVmknic, argv(EsxcfgVmknic, "-d -N vmotion VMotion"));
        assert!(
            matches!(&wrong, Err(CliError::Usage(m)) if m.contains("-N/--netstack")),
            "{wrong:?}"
        );
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
}
