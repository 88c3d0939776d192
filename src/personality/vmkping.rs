//! `vmkping`: ICMP echo from the daemon's own stack, one `ping` control action per probe, with
//! the output ESXi's vmkping prints:
//!
//! ```text
//! PING 198.18.1.1 (198.18.1.1): 56 data bytes
//! 64 bytes from 198.18.1.1: icmp_seq=0 ttl=64 time=0.123 ms
//! sendto() failed (Message too long)
//!
//! --- 198.18.1.1 ping statistics ---
//! 3 packets transmitted, 1 packets received, 66% packet loss
//! round-trip min/avg/max = 0.123/0.123/0.123 ms
//! ```
//!
//! A probe that times out prints nothing; the `sendto() failed (...)` lines go to stderr.

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use clap::{ColorChoice, Parser};

use crate::api::{Action, ClientError, ErrorKind, PingReply};
use crate::client::{call_as, CliError, Console, Control};
use crate::personality::clap_util::{clap_outcome, Parsed};

/// Largest ICMP payload that fits an IPv4 datagram (65535 - 20 - 8).
pub const MAX_SIZE: u32 = 65507;

/// How much longer than the probe's own timeout the client waits for the daemon's answer.
const ANSWER_MARGIN: Duration = Duration::from_secs(10);

/// Send ICMP echo requests from the VMkernel stack.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "vmkping",
    bin_name = "vmkping",
    color = ColorChoice::Never,
    disable_version_flag = true,
    override_usage = "vmkping [-I vmkN] [-S netstack] [-N next_hop] [-4|-6] [-c count] [-s size] \
        [-d] [-i interval] [-W timeout] [-t ttl] host"
)]
pub struct VmkpingArgs {
    /// IPv4 (the default)
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// IPv6: the host is an IPv6 address (-t is the hop limit)
    #[arg(short = '6')]
    pub ipv6: bool,
    /// Send from this vmknic, bypassing the routing lookup
    #[arg(short = 'I', value_name = "vmkN")]
    pub interface: Option<String>,
    /// Send through this gateway, bypassing the routing table; it must be on a vmknic
    /// subnet (IPv6 with -6: on a vmknic prefix, or link-local with -I)
    #[arg(short = 'N', value_name = "next_hop")]
    pub next_hop: Option<String>,
    /// The netstack to send from (ESXi's `-S`; default: defaultTcpipStack)
    #[arg(short = 'S', value_name = "netstack")]
    pub netstack: Option<String>,
    /// Number of echo requests
    #[arg(short = 'c', value_name = "count", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub count: u32,
    /// ICMP payload bytes (0-65507)
    #[arg(short = 's', value_name = "size", default_value_t = 56,
          value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_SIZE)))]
    pub size: u32,
    /// Set don't-fragment (refused when larger than the egress MTU)
    #[arg(short = 'd')]
    pub df: bool,
    /// Seconds between requests (decimals allowed)
    #[arg(short = 'i', value_name = "interval", default_value = "1", value_parser = parse_seconds)]
    pub interval: Duration,
    /// Seconds to wait for each reply
    #[arg(short = 'W', value_name = "timeout", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub timeout: u32,
    /// IP time to live
    #[arg(short = 't', value_name = "ttl", default_value_t = 64,
          value_parser = clap::value_parser!(u8).range(1..))]
    pub ttl: u8,
    /// Destination (an IPv4 address)
    #[arg(value_name = "host")]
    pub host: String,
}

/// clap value parser for a number of seconds such as `1` or `0.2`.
pub fn parse_seconds(s: &str) -> Result<Duration, String> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && (0.0..=3600.0).contains(v))
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("`{s}` is not a number of seconds (0-3600)"))
}

/// A parsed `vmkping`: the arguments and the destination address.
#[derive(Debug, Clone)]
pub struct Ping {
    /// The arguments.
    pub args: VmkpingArgs,
    /// The destination.
    pub destination: IpAddr,
}

/// Parses a vmkping argv (`argv[0]` is the program name). A host that is not an IPv4 literal
/// is a failure (`vmkping: unknown host X`, exit 1), not a usage error, as on ESXi.
pub fn parse(argv: Vec<OsString>) -> Result<Parsed<Ping>, CliError> {
    let args = match VmkpingArgs::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => return clap_outcome(e),
    };
    let unknown = || CliError::Failed(format!("vmkping: unknown host {}", args.host));
    let destination = if args.ipv6 {
        IpAddr::V6(args.host.parse::<Ipv6Addr>().map_err(|_| unknown())?)
    } else {
        IpAddr::V4(args.host.parse::<Ipv4Addr>().map_err(|_| unknown())?)
    };
    if let Some(n) = &args.next_hop {
        let ok = if args.ipv6 {
            n.parse::<Ipv6Addr>().is_ok()
        } else {
            crate::route_target::parse_ipv4(n).is_ok()
        };
        if !ok {
            let family = if args.ipv6 { "an IPv6" } else { "an IPv4" };
            return Err(CliError::Usage(format!(
                "vmkping: -N {n}: the next hop must be {family} address"
            )));
        }
    }
    Ok(Parsed::Run(Ping { args, destination }))
}

/// Milliseconds with three decimals, from microseconds: `123` → `0.123`.
pub fn millis(us: u64) -> String {
    format!("{}.{:03}", us / 1000, us % 1000)
}

/// `PING 198.18.1.1 (198.18.1.1): 56 data bytes`.
pub fn header_line(host: &str, destination: IpAddr, size: u32) -> String {
    format!("PING {host} ({destination}): {size} data bytes")
}

/// `64 bytes from 198.18.1.1: icmp_seq=0 ttl=64 time=0.123 ms`.
pub fn reply_line(r: &PingReply) -> String {
    format!(
        "{} bytes from {}: icmp_seq={} ttl={} time={} ms",
        r.bytes,
        r.from,
        r.seq,
        r.ttl,
        millis(r.rtt_us)
    )
}

/// The line ESXi prints for a probe that could not be sent, if `kind` is such a failure.
pub fn send_error_line(kind: ErrorKind) -> Option<&'static str> {
    match kind {
        ErrorKind::MessageTooLong => Some("sendto() failed (Message too long)"),
        ErrorKind::NoRoute => Some("sendto() failed (No route to host)"),
        ErrorKind::HostDown => Some("sendto() failed (Host is down)"),
        _ => None,
    }
}

/// The statistics block printed after the last probe (it starts with a blank line).
pub fn statistics(host: &str, transmitted: u32, rtts_us: &[u64]) -> String {
    let received = u32::try_from(rtts_us.len()).unwrap_or(u32::MAX);
    let loss = match transmitted {
        0 => 0,
        t => u64::from(t.saturating_sub(received)) * 100 / u64::from(t),
    };
    let mut s = format!(
        "\n--- {host} ping statistics ---\n{transmitted} packets transmitted, {received} packets \
         received, {loss}% packet loss\n"
    );
    if let (Some(min), Some(max)) = (rtts_us.iter().min(), rtts_us.iter().max()) {
        let avg = rtts_us.iter().sum::<u64>() / u64::from(received.max(1));
        s.push_str(&format!(
            "round-trip min/avg/max = {}/{}/{} ms\n",
            millis(*min),
            millis(avg),
            millis(*max)
        ));
    }
    s
}

impl Ping {
    /// The `ping` action of probe `seq`.
    pub fn action(&self, seq: u16) -> Action {
        Action::Ping {
            destination: self.destination.to_string(),
            vmknic: self.args.interface.clone(),
            size: self.args.size,
            df: self.args.df,
            ttl: self.args.ttl,
            timeout_ms: self.args.timeout.saturating_mul(1000),
            seq,
            next_hop: self.args.next_hop.clone(),
        }
    }

    /// Sends the probes, `sleep`ing the interval between them, and prints as ESXi does.
    /// Succeeds when at least one reply came back.
    pub fn run(
        &self,
        ctl: &mut dyn Control,
        console: &mut Console<'_>,
        sleep: &mut dyn FnMut(Duration),
    ) -> Result<(), CliError> {
        let fail = |e: &ClientError| match e.remote() {
            Some(r) => CliError::Failed(format!("vmkping: {}", r.message)),
            None => CliError::from_client("vmkping", e),
        };
        let wait = Duration::from_secs(u64::from(self.args.timeout)) + ANSWER_MARGIN;
        ctl.set_timeout(wait).map_err(|e| fail(&e))?;
        let host = self.destination.to_string();
        console.println(&header_line(&host, self.destination, self.args.size));
        let mut rtts = Vec::new();
        for i in 0..self.args.count {
            if i > 0 {
                sleep(self.args.interval);
            }
            let seq = u16::try_from(i % 65536).unwrap_or(0);
            match call_as::<PingReply>(ctl, self.action(seq)) {
                Ok(reply) => {
                    console.println(&reply_line(&reply));
                    rtts.push(reply.rtt_us);
                }
                Err(e) => {
                    let kind = e.remote().map(|r| r.kind);
                    if kind == Some(ErrorKind::Timeout) {
                        continue;
                    }
                    match (kind, kind.and_then(send_error_line), e.remote()) {
                        (_, Some(line), _) => console.eprintln(line),
                        // Why the vmknic cannot send (its TAP, namespace or bridge is gone).
                        (Some(ErrorKind::NetworkDown), None, Some(r)) => {
                            console.eprintln(&format!("sendto() failed ({})", r.message))
                        }
                        _ => return Err(fail(&e)),
                    }
                }
            }
        }
        console.print(&statistics(&host, self.args.count, &rtts));
        match rtts.is_empty() {
            true => Err(CliError::Reported),
            false => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::client::fake::{capture, refused, FakeDaemon};

    fn ping(args: &str) -> Ping {
        let argv = std::iter::once("vmkping")
            .chain(args.split_whitespace())
            .map(OsString::from)
            .collect();
        match parse(argv) {
            Ok(Parsed::Run(p)) => p,
            other => panic!("{args}: {other:?}"),
        }
    }

    fn reply(seq: u16, rtt_us: u64) -> Result<serde_json::Value, ClientError> {
        Ok(
            json!({"bytes": 64, "from": "198.18.1.1", "seq": seq, "ttl": 64,
                  "rtt_us": rtt_us, "destination": "198.18.1.1"}),
        )
    }

    #[test]
    fn test_parse_defaults_and_options() {
        let p = ping("198.18.1.1");
        assert_eq!(p.args.count, 3);
        assert_eq!(p.args.size, 56);
        assert_eq!(p.args.ttl, 64);
        assert_eq!(p.args.interval, Duration::from_secs(1));
        assert_eq!(
            p.action(2),
            Action::Ping {
                destination: "198.18.1.1".into(),
                vmknic: None,
                size: 56,
                df: false,
                ttl: 64,
                timeout_ms: 1000,
                seq: 2,
                next_hop: None,
            }
        );
        let p = ping("-I vmk1 -N 198.18.1.254 -c 5 -s 1472 -d -i 0.2 -W 2 -t 3 198.18.1.1");
        assert_eq!(
            p.action(0),
            Action::Ping {
                destination: "198.18.1.1".into(),
                vmknic: Some("vmk1".into()),
                size: 1472,
                df: true,
                ttl: 3,
                timeout_ms: 2000,
                seq: 0,
                next_hop: Some("198.18.1.254".into()),
            }
        );
        assert_eq!(p.args.interval, Duration::from_millis(200));
    }

    #[test]
    fn test_parse_errors() {
        let parse_str = |s: &str| {
            parse(
                std::iter::once("vmkping")
                    .chain(s.split_whitespace())
                    .map(OsString::from)
                    .collect(),
            )
        };
        assert_eq!(
            parse_str("www.example.com").err(),
            Some(CliError::Failed(
                "vmkping: unknown host www.example.com".into()
            ))
        );
        for bad in [
            "",
            "-s 65508 198.18.1.1",
            "-c 0 198.18.1.1",
            "-t 0 198.18.1.1",
            "-x h",
        ] {
            assert!(
                matches!(parse_str(bad), Err(CliError::Usage(_))),
                "{bad}: {:?}",
                parse_str(bad)
            );
        }
        assert!(matches!(
            parse_str("-s 65507 198.18.1.1"),
            Ok(Parsed::Run(_))
        ));
        let Ok(Parsed::Help(help)) = parse_str("-h") else {
            panic!("-h is help")
        };
        assert!(
            help.contains("vmkping [-I vmkN]") && help.contains("[-4|-6]"),
            "{help}"
        );
    }

    #[test]
    fn test_line_formats() {
        assert_eq!(millis(123), "0.123");
        assert_eq!(millis(12_345), "12.345");
        assert_eq!(millis(1_000_000), "1000.000");
        assert_eq!(
            header_line("198.18.1.1", "198.18.1.1".parse().unwrap(), 56),
            "PING 198.18.1.1 (198.18.1.1): 56 data bytes"
        );
        let r = PingReply {
            bytes: 64,
            from: "198.18.1.1".parse().unwrap(),
            seq: 0,
            ttl: 64,
            rtt_us: 123,
            destination: "198.18.1.1".parse().unwrap(),
        };
        assert_eq!(
            reply_line(&r),
            "64 bytes from 198.18.1.1: icmp_seq=0 ttl=64 time=0.123 ms"
        );
        assert_eq!(
            send_error_line(ErrorKind::MessageTooLong),
            Some("sendto() failed (Message too long)")
        );
        assert_eq!(
            send_error_line(ErrorKind::NoRoute),
            Some("sendto() failed (No route to host)")
        );
        assert_eq!(
            send_error_line(ErrorKind::HostDown),
            Some("sendto() failed (Host is down)")
        );
        assert_eq!(send_error_line(ErrorKind::Timeout), None);
    }

    #[test]
    fn test_statistics() {
        assert_eq!(
            statistics("198.18.1.1", 3, &[123, 127, 200]),
            "\n--- 198.18.1.1 ping statistics ---\n\
             3 packets transmitted, 3 packets received, 0% packet loss\n\
             round-trip min/avg/max = 0.123/0.150/0.200 ms\n"
        );
        assert_eq!(
            statistics("198.18.1.1", 3, &[]),
            "\n--- 198.18.1.1 ping statistics ---\n\
             3 packets transmitted, 0 packets received, 100% packet loss\n"
        );
        assert!(statistics("h", 3, &[1]).contains("1 packets received, 66% packet loss"));
    }

    #[test]
    fn test_run_mixed_replies() {
        let mut d = FakeDaemon::new(vec![
            reply(0, 123),
            refused(ErrorKind::Timeout, "no reply"),
            refused(ErrorKind::MessageTooLong, "too long"),
            reply(3, 177),
        ]);
        let mut slept = Vec::new();
        let p = ping("-c 4 -i 0.5 -W 2 198.18.1.1");
        let (r, out, err) = capture(|c| p.run(&mut d, c, &mut |t| slept.push(t)));
        assert_eq!(r, Ok(()));
        assert_eq!(
            out,
            "PING 198.18.1.1 (198.18.1.1): 56 data bytes\n\
             64 bytes from 198.18.1.1: icmp_seq=0 ttl=64 time=0.123 ms\n\
             64 bytes from 198.18.1.1: icmp_seq=3 ttl=64 time=0.177 ms\n\
             \n--- 198.18.1.1 ping statistics ---\n\
             4 packets transmitted, 2 packets received, 50% packet loss\n\
             round-trip min/avg/max = 0.123/0.150/0.177 ms\n"
        );
        assert_eq!(err, "sendto() failed (Message too long)\n");
        assert_eq!(
            slept,
            vec![Duration::from_millis(500); 3],
            "not after the last"
        );
        let seqs: Vec<u16> = d
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Ping { seq, .. } => Some(*seq),
                _ => None,
            })
            .collect();
        assert_eq!(seqs, vec![0, 1, 2, 3]);
        assert_eq!(d.timeouts, vec![Duration::from_secs(12)]);
    }

    #[test]
    fn test_run_no_reply_fails() {
        let mut d = FakeDaemon::new(vec![
            refused(ErrorKind::NoRoute, "x"),
            refused(ErrorKind::HostDown, "x"),
        ]);
        let p = ping("-c 2 198.18.9.9");
        let (r, out, err) = capture(|c| p.run(&mut d, c, &mut |_| {}));
        assert_eq!(r, Err(CliError::Reported));
        assert!(out.ends_with("2 packets transmitted, 0 packets received, 100% packet loss\n"));
        assert!(!out.contains("round-trip"));
        assert_eq!(
            err,
            "sendto() failed (No route to host)\nsendto() failed (Host is down)\n"
        );
    }

    #[test]
    fn test_run_bad_vmknic_stops() {
        let mut d = FakeDaemon::new(vec![refused(ErrorKind::NotFound, "no vmknic vmk9")]);
        let p = ping("-I vmk9 198.18.1.1");
        let (r, _, _) = capture(|c| p.run(&mut d, c, &mut |_| {}));
        assert_eq!(r, Err(CliError::Failed("vmkping: no vmknic vmk9".into())));
        assert_eq!(d.actions.len(), 1);
    }
}
