//! `nc -z`: open a TCP connection from the daemon's stack and close it, as ESXi's netcat
//! (OpenBSD's) does: the exit status is the answer (0 connected, 1 not), and
//! `Connection to HOST PORT port [tcp/*] succeeded!` or `nc: connect to HOST port PORT (tcp)
//! failed: REASON` go to standard error only with `-v`. Only the `-z` (zero-I/O) mode exists:
//! the stack has no data path to a terminal.
//!
//! The source: `-s ADDR` as on ESXi (the address chooses the vmknic; one that no vmknic holds
//! is netcat's `bind failed: Cannot assign requested address`), or `-I vmkN`. netcat's own
//! `-I` is the receive buffer length: a number there is accepted and, as it changes nothing in
//! `-z` mode, ignored; a value of the form `vmkN` names the vmknic; anything else is a usage
//! error, so the two meanings cannot be mistaken for each other.

use std::ffi::OsString;
use std::net::IpAddr;
use std::time::Duration;

use clap::{ColorChoice, Parser};

use crate::api::{Action, ErrorKind, ProbeResult};
use crate::client::{call_as, CliError, Console, Control};
use crate::personality::clap_util::{clap_outcome, Parsed};

/// How much longer than the probe's own timeout the client waits for the daemon's answer.
const ANSWER_MARGIN: Duration = Duration::from_secs(10);

/// Check that a TCP port answers, from the VMkernel stack (only `-z` mode).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "nc",
    bin_name = "nc",
    color = ColorChoice::Never,
    disable_version_flag = true,
    override_usage = "nc -z [-46nv] [-w secs] [-s source_ip | -I vmkN] host port"
)]
pub struct NcArgs {
    /// Connect, then close without sending data (required: the only supported mode)
    #[arg(short = 'z')]
    pub zero_io: bool,
    /// IPv4 addresses only
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// IPv6 addresses only
    #[arg(short = '6')]
    pub ipv6: bool,
    /// Seconds to wait for the connection
    #[arg(short = 'w', value_name = "secs", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub wait: u32,
    /// Connect from this address: the vmknic that holds it
    #[arg(short = 's', value_name = "source_ip")]
    pub source: Option<String>,
    /// The netstack to connect from (vmkstack's; default: defaultTcpipStack)
    #[arg(short = 'N', value_name = "netstack")]
    pub netstack: Option<String>,
    /// Connect from this vmknic (vmkN); a number is netcat's receive buffer length, ignored
    #[arg(short = 'I', value_name = "vmkN")]
    pub interface: Option<String>,
    /// Report the outcome on standard error
    #[arg(short = 'v')]
    pub verbose: bool,
    /// Numeric addresses only (always the case here)
    #[arg(short = 'n')]
    pub numeric: bool,
    /// Destination (an IPv4 or IPv6 address)
    #[arg(value_name = "host")]
    pub host: String,
    /// Destination port (1-65535)
    #[arg(value_name = "port", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,
}

/// Where the connection comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The routing core's choice.
    Route,
    /// `-I vmkN`.
    Vmknic(String),
    /// `-s ADDR`.
    Address(IpAddr),
}

/// A parsed `nc -z`.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The arguments.
    pub args: NcArgs,
    /// The destination.
    pub destination: IpAddr,
    /// The source.
    pub source: Source,
}

/// True for `vmkN` (N decimal): a vmknic name, which netcat's numeric `-I` can never be.
fn is_vmknic_name(s: &str) -> bool {
    s.strip_prefix("vmk")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Parses an nc argv (`argv[0]` is the program name). Without `-z` it is a usage error.
pub fn parse(argv: Vec<OsString>) -> Result<Parsed<Probe>, CliError> {
    let args = match NcArgs::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => return clap_outcome(e),
    };
    if !args.zero_io {
        return Err(CliError::Usage(
            "nc: only -z mode is supported (connect and close: nc -z [-v] [-w secs] \
             [-s source_ip] host port)"
                .to_string(),
        ));
    }
    let vmknic = match args.interface.as_deref() {
        None => None,
        Some(i) if is_vmknic_name(i) => Some(i.to_string()),
        // netcat's -I length: the receive buffer, which -z never fills.
        Some(i) if i.parse::<u32>().is_ok_and(|n| n > 0) => None,
        Some(i) => {
            return Err(CliError::Usage(format!(
                "nc: -I {i}: give a vmknic as vmkN (or netcat's receive buffer length, a \
                 number, which -z ignores); to choose the source by address use -s"
            )))
        }
    };
    let source = match (args.source.as_deref(), vmknic) {
        (Some(_), Some(v)) => {
            return Err(CliError::Usage(format!(
                "nc: -s and -I {v} both choose the source: give one"
            )))
        }
        (Some(s), None) => Source::Address(s.parse::<IpAddr>().map_err(|_| {
            CliError::Failed(format!(
                "nc: getaddrinfo for host \"{s}\" port 0: Name or service not known"
            ))
        })?),
        (None, Some(v)) => Source::Vmknic(v),
        (None, None) => Source::Route,
    };
    let destination = args.host.parse::<IpAddr>().map_err(|_| {
        CliError::Failed(format!(
            "nc: getaddrinfo for host \"{}\" port {}: Name or service not known",
            args.host, args.port
        ))
    })?;
    // -4/-6, and a source of the destination's family (netcat asks for the source in the
    // destination's family).
    let family = |a: &IpAddr| if a.is_ipv6() { 6 } else { 4 };
    let wanted = match (args.ipv4, args.ipv6) {
        (true, _) => Some(4),
        (_, true) => Some(6),
        _ => None,
    };
    if wanted.is_some_and(|f| f != family(&destination)) {
        return Err(CliError::Failed(format!(
            "nc: getaddrinfo for host \"{}\" port {}: Address family for hostname not supported",
            args.host, args.port
        )));
    }
    if let Source::Address(a) = &source {
        if family(a) != family(&destination) {
            return Err(CliError::Failed(format!(
                "nc: getaddrinfo for host \"{a}\" port 0: Address family for hostname not \
                 supported"
            )));
        }
    }
    Ok(Parsed::Run(Probe {
        args,
        destination,
        source,
    }))
}

/// `Connection to HOST PORT port [tcp/*] succeeded!`.
pub fn success_line(host: &str, port: u16) -> String {
    format!("Connection to {host} {port} port [tcp/*] succeeded!")
}

/// `nc: connect to HOST port PORT (tcp) failed: ...` for a refusal of `kind`, if it is one of
/// the connection failures.
pub fn failure_line(host: &str, port: u16, kind: ErrorKind) -> Option<String> {
    let why = match kind {
        ErrorKind::Refused => "Connection refused",
        ErrorKind::Timeout => "Connection timed out",
        ErrorKind::NoRoute => "No route to host",
        ErrorKind::HostDown => "Host is down",
        _ => return None,
    };
    Some(format!(
        "nc: connect to {host} port {port} (tcp) failed: {why}"
    ))
}

/// netcat's message when the source address is not local.
pub const BIND_FAILED: &str = "nc: bind failed: Cannot assign requested address";

impl Probe {
    /// The `tcp_probe` action.
    pub fn action(&self) -> Action {
        let (vmknic, source) = match &self.source {
            Source::Route => (None, None),
            Source::Vmknic(v) => (Some(v.clone()), None),
            Source::Address(a) => (None, Some(a.to_string())),
        };
        Action::TcpProbe {
            destination: self.destination.to_string(),
            port: self.args.port,
            vmknic,
            source,
            timeout_ms: self.args.wait.saturating_mul(1000),
        }
    }

    /// Probes the port; the exit status is the answer, the outcome is reported on standard
    /// error with `-v` (other errors always).
    pub fn run(&self, ctl: &mut dyn Control, console: &mut Console<'_>) -> Result<(), CliError> {
        let host = self.args.host.as_str();
        let port = self.args.port;
        let verbose = self.args.verbose;
        let wait = Duration::from_secs(u64::from(self.args.wait)) + ANSWER_MARGIN;
        let answer = ctl
            .set_timeout(wait)
            .and_then(|()| call_as::<ProbeResult>(ctl, self.action()));
        if let Err(e) = answer {
            return Err(match e.remote() {
                Some(r) => match failure_line(host, port, r.kind) {
                    Some(line) => {
                        if verbose {
                            console.eprintln(&line);
                        }
                        CliError::Reported
                    }
                    None if r.kind == ErrorKind::AddressNotAvailable => {
                        CliError::Failed(BIND_FAILED.to_string())
                    }
                    None => CliError::Failed(format!("nc: {}", r.message)),
                },
                None => CliError::from_client("nc", &e),
            });
        }
        if verbose {
            console.eprintln(&success_line(host, port));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::client::fake::{capture, refused, FakeDaemon};

    fn parse_str(s: &str) -> Result<Parsed<Probe>, CliError> {
        parse(
            std::iter::once("nc")
                .chain(s.split_whitespace())
                .map(OsString::from)
                .collect(),
        )
    }

    fn probe(s: &str) -> Probe {
        match parse_str(s) {
            Ok(Parsed::Run(p)) => p,
            other => panic!("{s}: {other:?}"),
        }
    }

    fn tcp(vmknic: Option<&str>, source: Option<&str>, port: u16, timeout_ms: u32) -> Action {
        Action::TcpProbe {
            destination: "198.18.1.1".into(),
            port,
            vmknic: vmknic.map(String::from),
            source: source.map(String::from),
            timeout_ms,
        }
    }

    fn usage(s: &str) -> String {
        match parse_str(s) {
            Err(CliError::Usage(m)) => m,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn test_parse_ipv6() {
        let p = probe("-6 -z -s 2001:db8:1::1 2001:db8:2::10 7000");
        assert_eq!(
            p.action(),
            Action::TcpProbe {
                destination: "2001:db8:2::10".into(),
                port: 7000,
                vmknic: None,
                source: Some("2001:db8:1::1".into()),
                timeout_ms: 5000,
            }
        );
        let family = |s: &str| match parse_str(s) {
            Err(CliError::Failed(m)) => m,
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(
            family("-4 -z 2001:db8:2::10 7000"),
            "nc: getaddrinfo for host \"2001:db8:2::10\" port 7000: Address family for hostname \
             not supported"
        );
        assert!(family("-6 -z 198.18.1.1 80").contains("Address family"));
        assert!(family("-z -s 198.18.1.1 2001:db8:2::10 80").contains("\"198.18.1.1\" port 0"));
        assert!(matches!(
            parse_str("-4 -6 -z 198.18.1.1 80"),
            Err(CliError::Usage(_))
        ));
    }

    #[test]
    fn test_parse() {
        assert_eq!(
            probe("-z 198.18.1.1 80").action(),
            tcp(None, None, 80, 5000)
        );
        assert_eq!(
            probe("-zv -w 2 -I vmk1 198.18.1.1 3260").action(),
            tcp(Some("vmk1"), None, 3260, 2000)
        );
        assert_eq!(
            probe("-zvn -s 198.18.2.100 198.18.1.1 3260").action(),
            tcp(None, Some("198.18.2.100"), 3260, 5000)
        );
        // netcat's -I length (receive buffer) changes nothing in -z mode.
        assert_eq!(
            probe("-z -I 4096 198.18.1.1 80").action(),
            tcp(None, None, 80, 5000)
        );
        assert!(usage("198.18.1.1 80").contains("only -z"));
        assert!(usage("-z -I eth0 198.18.1.1 80").contains("give a vmknic as vmkN"));
        assert!(usage("-z -I vmk 198.18.1.1 80").contains("-I vmk:"));
        assert_eq!(
            usage("-z -I vmk1 -s 198.18.2.100 198.18.1.1 80"),
            "nc: -s and -I vmk1 both choose the source: give one"
        );
        assert!(matches!(
            parse_str("-z 198.18.1.1"),
            Err(CliError::Usage(_))
        ));
        assert!(matches!(
            parse_str("-z 198.18.1.1 0"),
            Err(CliError::Usage(_))
        ));
        assert_eq!(
            parse_str("-z nas 2049").err(),
            Some(CliError::Failed(
                "nc: getaddrinfo for host \"nas\" port 2049: Name or service not known".into()
            ))
        );
        assert_eq!(
            parse_str("-z -s vmk1 198.18.1.1 80").err(),
            Some(CliError::Failed(
                "nc: getaddrinfo for host \"vmk1\" port 0: Name or service not known".into()
            ))
        );
    }

    #[test]
    fn test_messages() {
        assert_eq!(
            success_line("198.18.1.1", 80),
            "Connection to 198.18.1.1 80 port [tcp/*] succeeded!"
        );
        let cases = [
            (ErrorKind::Refused, "Connection refused"),
            (ErrorKind::Timeout, "Connection timed out"),
            (ErrorKind::NoRoute, "No route to host"),
            (ErrorKind::HostDown, "Host is down"),
        ];
        for (kind, why) in cases {
            assert_eq!(
                failure_line("198.18.1.1", 80, kind),
                Some(format!(
                    "nc: connect to 198.18.1.1 port 80 (tcp) failed: {why}"
                ))
            );
        }
        assert_eq!(failure_line("h", 1, ErrorKind::Invalid), None);
    }

    #[test]
    fn test_run_quiet_and_verbose() {
        let ok = || Ok(json!({"source": "198.18.1.100:49152", "connect_us": 250}));
        let refusal = || refused(ErrorKind::Refused, "refused");
        let mut d = FakeDaemon::new(vec![ok(), refusal(), ok(), refusal()]);

        // Without -v: nothing printed; the exit status says it.
        let quiet = probe("-z 198.18.1.1 80");
        let (r, out, err) = capture(|c| quiet.run(&mut d, c));
        assert_eq!((r, out.as_str(), err.as_str()), (Ok(()), "", ""));
        let (r, out, err) = capture(|c| quiet.run(&mut d, c));
        assert_eq!(
            (r, out.as_str(), err.as_str()),
            (Err(CliError::Reported), "", "")
        );

        // With -v: netcat's lines, on standard error.
        let verbose = probe("-zv 198.18.1.1 80");
        let (r, out, err) = capture(|c| verbose.run(&mut d, c));
        assert_eq!(r, Ok(()));
        assert_eq!(out, "");
        assert_eq!(err, "Connection to 198.18.1.1 80 port [tcp/*] succeeded!\n");
        let (r, out, err) = capture(|c| verbose.run(&mut d, c));
        assert_eq!(r, Err(CliError::Reported));
        assert_eq!(out, "");
        assert_eq!(
            err,
            "nc: connect to 198.18.1.1 port 80 (tcp) failed: Connection refused\n"
        );
        assert_eq!(d.timeouts, vec![Duration::from_secs(15); 4]);
    }

    #[test]
    fn test_run_errors_that_are_not_answers() {
        let mut d = FakeDaemon::new(vec![
            refused(ErrorKind::AddressNotAvailable, "198.18.9.9 is not ..."),
            refused(ErrorKind::NotFound, "no vmknic or port group named `vmk7`"),
        ]);
        let p = probe("-z -s 198.18.9.9 198.18.1.1 80");
        let (r, _, _) = capture(|c| p.run(&mut d, c));
        assert_eq!(r, Err(CliError::Failed(BIND_FAILED.into())));
        let p = probe("-z -I vmk7 198.18.1.1 80");
        let (r, _, _) = capture(|c| p.run(&mut d, c));
        assert_eq!(
            r,
            Err(CliError::Failed(
                "nc: no vmknic or port group named `vmk7`".into()
            ))
        );
    }
}
