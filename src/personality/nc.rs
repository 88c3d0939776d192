//! `nc -z`: open a TCP connection from the daemon's stack and close it, reporting as OpenBSD
//! netcat does (`Connection to HOST PORT port [tcp/*] succeeded!`). Only the `-z` (zero-I/O)
//! mode exists: the stack has no data path to a terminal.

use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::time::Duration;

use clap::{ColorChoice, Parser};

use crate::api::{Action, ClientError, ErrorKind, ProbeResult};
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
    override_usage = "nc -z [-v] [-w secs] [-I vmkN] host port"
)]
pub struct NcArgs {
    /// Connect, then close without sending data (required: the only supported mode)
    #[arg(short = 'z')]
    pub zero_io: bool,
    /// Seconds to wait for the connection
    #[arg(short = 'w', value_name = "secs", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub wait: u32,
    /// Connect from this vmknic
    #[arg(short = 'I', value_name = "vmkN")]
    pub interface: Option<String>,
    /// Accepted for habit; the result is always reported
    #[arg(short = 'v')]
    pub verbose: bool,
    /// Destination (an IPv4 address)
    #[arg(value_name = "host")]
    pub host: String,
    /// Destination port (1-65535)
    #[arg(value_name = "port", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,
}

/// A parsed `nc -z`.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The arguments.
    pub args: NcArgs,
    /// The destination.
    pub destination: Ipv4Addr,
}

/// Parses an nc argv (`argv[0]` is the program name). Without `-z` it is a usage error.
pub fn parse(argv: Vec<OsString>) -> Result<Parsed<Probe>, CliError> {
    let args = match NcArgs::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => return clap_outcome(e),
    };
    if !args.zero_io {
        return Err(CliError::Usage(
            "nc: only -z mode is supported (connect and close: nc -z [-w secs] [-I vmkN] host \
             port)"
                .to_string(),
        ));
    }
    let destination = args.host.parse::<Ipv4Addr>().map_err(|_| {
        CliError::Failed(format!(
            "nc: getaddrinfo for host \"{}\" port {}: Name or service not known",
            args.host, args.port
        ))
    })?;
    Ok(Parsed::Run(Probe { args, destination }))
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

impl Probe {
    /// The `tcp_probe` action.
    pub fn action(&self) -> Action {
        Action::TcpProbe {
            destination: self.destination.to_string(),
            port: self.args.port,
            vmknic: self.args.interface.clone(),
            timeout_ms: self.args.wait.saturating_mul(1000),
        }
    }

    /// Probes the port and prints the outcome.
    pub fn run(&self, ctl: &mut dyn Control, console: &mut Console<'_>) -> Result<(), CliError> {
        let host = self.args.host.as_str();
        let port = self.args.port;
        let fail = |e: &ClientError| match e.remote() {
            Some(r) => CliError::Failed(
                failure_line(host, port, r.kind).unwrap_or_else(|| format!("nc: {}", r.message)),
            ),
            None => CliError::from_client("nc", e),
        };
        let wait = Duration::from_secs(u64::from(self.args.wait)) + ANSWER_MARGIN;
        ctl.set_timeout(wait).map_err(|e| fail(&e))?;
        call_as::<ProbeResult>(ctl, self.action()).map_err(|e| fail(&e))?;
        console.println(&success_line(host, port));
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

    #[test]
    fn test_parse() {
        let p = probe("-z 198.18.1.1 80");
        assert_eq!(
            p.action(),
            Action::TcpProbe {
                destination: "198.18.1.1".into(),
                port: 80,
                vmknic: None,
                timeout_ms: 5000
            }
        );
        let p = probe("-zv -w 2 -I vmk1 198.18.1.1 3260");
        assert_eq!(
            p.action(),
            Action::TcpProbe {
                destination: "198.18.1.1".into(),
                port: 3260,
                vmknic: Some("vmk1".into()),
                timeout_ms: 2000
            }
        );
        let e = parse_str("198.18.1.1 80").err().unwrap();
        assert!(
            matches!(&e, CliError::Usage(m) if m.contains("only -z")),
            "{e:?}"
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
    fn test_run() {
        let ok = json!({"source": "198.18.1.100:49152", "connect_us": 250});
        let mut d = FakeDaemon::new(vec![Ok(ok), refused(ErrorKind::Refused, "refused")]);
        let p = probe("-z 198.18.1.1 80");
        let (r, out, _) = capture(|c| p.run(&mut d, c));
        assert_eq!(r, Ok(()));
        assert_eq!(out, "Connection to 198.18.1.1 80 port [tcp/*] succeeded!\n");
        let (r, out, _) = capture(|c| p.run(&mut d, c));
        assert_eq!(
            r,
            Err(CliError::Failed(
                "nc: connect to 198.18.1.1 port 80 (tcp) failed: Connection refused".into()
            ))
        );
        assert!(out.is_empty());
        assert_eq!(d.timeouts, vec![Duration::from_secs(15); 2]);
    }
}
