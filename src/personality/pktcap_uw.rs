//! `pktcap-uw`: capture packets inside the stack, as ESXi's command does, to a pcapng file
//! (`-o FILE`), to standard output (`-o -`, for `| tcpdump -r -`), or as one summary line per
//! packet. Also `vmkstack capture`.
//!
//! ```text
//! pktcap-uw --vmk vmk1 --dir 2 -o /tmp/vmk1.pcapng -c 100
//! pktcap-uw --capture Drop -o - | tcpdump -nr -
//! ```
//!
//! Points: a vmknic's receive (`--dir 0`, the default), transmit (`--dir 1`) or both (`--dir
//! 2`); `--capture Drop` (with each drop's reason in the packet comment), `Forward` and
//! `Endpoint` (the stack's own IP packets). It stops after `-c COUNT` packets, on Ctrl-C, or
//! when the daemon goes away, and says on stderr how many copies the capture lost because
//! it could not keep up (the stack never waits for it).

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::{ColorChoice, Parser};

use crate::api::capture::{next_record, CaptureSpec, CaptureStart, PacketMeta, Point, Record};
use crate::api::{Action, Client};
use crate::client::{CliError, Console};
use crate::pcapng::{Direction, PcapngWriter, LINKTYPE_ETHERNET, LINKTYPE_RAW};
use crate::personality::clap_util::{clap_outcome, Parsed};

/// Capture packets inside the VMkernel stack.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "pktcap-uw",
    bin_name = "pktcap-uw",
    color = ColorChoice::Never,
    disable_version_flag = true,
    override_usage = "pktcap-uw [--vmk vmkN] [--dir 0|1|2] [--capture Drop|Forward|Endpoint] \
        [-o FILE|-] [-c COUNT] [--srcip|--dstip|--ip ADDR] [--proto 0xNN] \
        [--tcpport|--udpport N]"
)]
pub struct PktcapArgs {
    /// Capture at this vmknic (vmkN or port group)
    #[arg(long = "vmk", value_name = "vmkN")]
    pub vmk: Option<String>,
    /// Direction: 0 received (default), 1 sent, 2 both
    #[arg(long = "dir", value_name = "0|1|2",
          value_parser = clap::value_parser!(u8).range(0..=2))]
    pub dir: Option<u8>,
    /// Capture point instead of a vmknic's receive/transmit: Drop, Forward or Endpoint
    #[arg(long = "capture", value_name = "POINT")]
    pub capture: Option<String>,
    /// Write pcapng to FILE (`-` for standard output)
    #[arg(short = 'o', long = "outfile", value_name = "FILE")]
    pub outfile: Option<String>,
    /// Stop after COUNT packets
    #[arg(short = 'c', long = "count", value_name = "COUNT",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// IPv4 source address
    #[arg(long = "srcip", value_name = "ADDR")]
    pub srcip: Option<String>,
    /// IPv4 destination address
    #[arg(long = "dstip", value_name = "ADDR")]
    pub dstip: Option<String>,
    /// IPv4 address, either way
    #[arg(long = "ip", value_name = "ADDR")]
    pub ip: Option<String>,
    /// IP protocol, hexadecimal as on ESX (0x06) or decimal
    #[arg(long = "proto", value_name = "0xNN", value_parser = parse_proto)]
    pub proto: Option<u8>,
    /// TCP port, either way
    #[arg(long = "tcpport", value_name = "PORT", conflicts_with = "udpport")]
    pub tcpport: Option<u16>,
    /// UDP port, either way
    #[arg(long = "udpport", value_name = "PORT")]
    pub udpport: Option<u16>,
}

/// `0x06`, `6`: an IP protocol number.
fn parse_proto(s: &str) -> Result<u8, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u8::from_str_radix(hex, 16),
        None => s.parse(),
    };
    r.map_err(|_| format!("`{s}` is not an IP protocol number (0x00-0xff)"))
}

/// A parsed `pktcap-uw`.
#[derive(Debug, Clone)]
pub struct Capture {
    /// The arguments.
    pub args: PktcapArgs,
}

/// Parses a pktcap-uw argv (`argv[0]` is the program name).
pub fn parse(argv: Vec<OsString>) -> Result<Parsed<Capture>, CliError> {
    match PktcapArgs::try_parse_from(argv) {
        Ok(args) => {
            for (what, a) in [
                ("--srcip", &args.srcip),
                ("--dstip", &args.dstip),
                ("--ip", &args.ip),
            ] {
                if let Some(a) = a {
                    if a.parse::<std::net::Ipv4Addr>().is_err() {
                        return Err(CliError::Usage(format!(
                            "pktcap-uw: {what} {a}: not an IPv4 address"
                        )));
                    }
                }
            }
            Ok(Parsed::Run(Capture { args }))
        }
        Err(e) => clap_outcome(e),
    }
}

impl Capture {
    /// The `capture` action.
    pub fn action(&self) -> Action {
        let a = &self.args;
        Action::Capture {
            spec: CaptureSpec {
                vmknic: a.vmk.clone(),
                dir: a.dir,
                point: a.capture.clone(),
                src_ip: a.srcip.clone(),
                dst_ip: a.dstip.clone(),
                ip: a.ip.clone(),
                proto: a.proto,
                tcp_port: a.tcpport,
                udp_port: a.udpport,
            },
        }
    }

    /// Runs the capture against the daemon at `control` until `-c`, Ctrl-C or the daemon's
    /// end.
    pub fn run(&self, control: &Path, console: &mut Console<'_>) -> Result<(), CliError> {
        let fail = |e: &crate::api::ClientError| CliError::from_client("pktcap-uw", e);
        let client = Client::connect(control).map_err(|e| fail(&e))?;
        client
            .set_timeout(Some(crate::client::CALL_TIMEOUT))
            .map_err(|e| fail(&e))?;
        let (start, reader) = client.stream(self.action()).map_err(|e| fail(&e))?;
        let start: CaptureStart = serde_json::from_value(start)
            .map_err(|e| CliError::Failed(format!("pktcap-uw: bad answer: {e}")))?;
        let stop = vmkstack_stack::daemon::shutdown_on_signals()
            .map(|s| s.shutdown)
            .map_err(|e| CliError::Failed(format!("pktcap-uw: signals: {e}")))?;
        let stream = reader.into_inner();
        let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
        let mut input = io::BufReader::new(Interruptible {
            inner: stream,
            stop: stop.clone(),
        });
        let endpoint = self
            .args
            .capture
            .as_deref()
            .is_some_and(|p| p.eq_ignore_ascii_case("endpoint"));
        let mut sink = match self.args.outfile.as_deref() {
            None => Sink::Lines,
            Some("-") => Sink::Pcap(Pcap::new(Box::new(io::stdout().lock()), &start, endpoint)?),
            Some(path) => {
                let f = std::fs::File::create(path).map_err(|e| {
                    CliError::Failed(format!("pktcap-uw: cannot create {path}: {e}"))
                })?;
                Sink::Pcap(Pcap::new(Box::new(f), &start, endpoint)?)
            }
        };
        let (mut packets, mut lost) = (0u64, 0u64);
        let mut buf = Vec::new();
        let limit = self.args.count.unwrap_or(u64::MAX);
        while packets < limit {
            let rec = match next_record(&mut input, &mut buf) {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(_) if stop.load(Ordering::Relaxed) => break,
                Err(e) => return Err(CliError::Failed(format!("pktcap-uw: capture: {e}"))),
            };
            match rec {
                Record::Packet(meta, data) => {
                    packets += 1;
                    let comment = comment(&meta, &start);
                    match &mut sink {
                        Sink::Lines => console.println(&summary(&meta, data.len(), &comment)),
                        Sink::Pcap(p) => p.write(&meta, data, &comment)?,
                    }
                }
                Record::Status { lost: l, .. } => lost = l,
                Record::Unknown => {}
            }
            if input.buffer().is_empty() {
                if let Sink::Pcap(p) = &mut sink {
                    p.flush()?;
                }
            }
        }
        if let Sink::Pcap(p) = &mut sink {
            p.flush()?;
        }
        let to = match self.args.outfile.as_deref() {
            Some("-") | None => String::new(),
            Some(path) => format!(" to file {path}"),
        };
        console.eprintln(&format!(
            "Dumped {packets} packet(s){to}, dropped {lost} captured copies (the capture could \
             not keep up)."
        ));
        Ok(())
    }
}

/// Reads that give up on their timeout only once `stop` is set (Ctrl-C), so that a quiet
/// capture waits and a stopped one ends.
struct Interruptible<R> {
    inner: R,
    stop: Arc<AtomicBool>,
}

impl<R: Read> Read for Interruptible<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if self.stop.load(Ordering::Relaxed) {
                        return Err(e);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    if self.stop.load(Ordering::Relaxed) {
                        return Err(e);
                    }
                }
                other => return other,
            }
        }
    }
}

enum Sink {
    Lines,
    Pcap(Pcap),
}

/// The pcapng output: one interface per vmknic (Ethernet), or for an endpoint capture one
/// interface of raw IP packets (tcpdump reads only files whose interfaces share one link type).
struct Pcap {
    w: PcapngWriter<BufWriter<Box<dyn Write>>>,
    ifaces: HashMap<Option<u32>, u32>,
    endpoint: bool,
}

fn io_fail(e: io::Error) -> CliError {
    CliError::Failed(format!("pktcap-uw: write: {e}"))
}

impl Pcap {
    fn new(out: Box<dyn Write>, start: &CaptureStart, endpoint: bool) -> Result<Pcap, CliError> {
        let mut w =
            PcapngWriter::new(BufWriter::with_capacity(256 * 1024, out)).map_err(io_fail)?;
        let mut ifaces = HashMap::new();
        if endpoint {
            w.interface(LINKTYPE_RAW, "endpoint").map_err(io_fail)?;
        } else {
            for v in &start.vmknics {
                let n = v.strip_prefix("vmk").and_then(|n| n.parse::<u32>().ok());
                let i = w.interface(LINKTYPE_ETHERNET, v).map_err(io_fail)?;
                ifaces.insert(n, i);
            }
        }
        w.flush().map_err(io_fail)?;
        Ok(Pcap {
            w,
            ifaces,
            endpoint,
        })
    }

    fn write(&mut self, m: &PacketMeta, data: &[u8], comment: &str) -> Result<(), CliError> {
        if m.point.is_ip() != self.endpoint {
            // Not of this file's link type (the daemon sends none such).
            return Ok(());
        }
        let iface = if self.endpoint {
            0
        } else {
            match self.ifaces.get(&m.vmknic) {
                Some(i) => *i,
                None => {
                    // A vmknic added since the capture started.
                    let name = m.vmknic.map_or("unknown".into(), |n| format!("vmk{n}"));
                    let i = self
                        .w
                        .interface(LINKTYPE_ETHERNET, &name)
                        .map_err(io_fail)?;
                    self.ifaces.insert(m.vmknic, i);
                    i
                }
            }
        };
        let dir = match m.point {
            Point::Rx | Point::EndpointIn | Point::Drop => Direction::Inbound,
            Point::Tx | Point::EndpointOut | Point::Forward => Direction::Outbound,
        };
        self.w
            .packet(iface, m.ts_ns, data, m.orig_len, dir, comment)
            .map_err(io_fail)
    }

    fn flush(&mut self) -> Result<(), CliError> {
        self.w.flush().map_err(io_fail)
    }
}

fn vmk(n: Option<u32>) -> String {
    n.map_or("-".into(), |n| format!("vmk{n}"))
}

/// The packet comment: where it was captured, the drop reason, the GSO size.
pub fn comment(m: &PacketMeta, start: &CaptureStart) -> String {
    let mut c = match m.point {
        Point::Forward => format!("forward {} -> {}", vmk(m.vmknic), vmk(m.peer)),
        Point::Drop => {
            let reason = m
                .reason
                .and_then(|r| start.reasons.get(usize::from(r)))
                .map_or("unknown", String::as_str);
            format!("drop {} reason={reason}", vmk(m.vmknic))
        }
        Point::EndpointOut => "endpoint-out".to_string(),
        p => format!("{} {}", p.as_str(), vmk(m.vmknic)),
    };
    if m.gso_size > 0 {
        c.push_str(&format!(" gso_size={}", m.gso_size));
    }
    c
}

/// One line per packet when no file is written.
fn summary(m: &PacketMeta, len: usize, comment: &str) -> String {
    let secs = m.ts_ns / 1_000_000_000;
    let us = (m.ts_ns % 1_000_000_000) / 1000;
    format!("{secs}.{us:06} {len} bytes {comment}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Parsed<Capture>, CliError> {
        parse(
            std::iter::once("pktcap-uw")
                .chain(s.split_whitespace())
                .map(OsString::from)
                .collect(),
        )
    }

    #[test]
    fn test_parse() {
        let Ok(Parsed::Run(c)) = args("--vmk vmk1 --dir 2 --proto 0x06 --tcpport 5201 -c 5 -o -")
        else {
            panic!()
        };
        let Action::Capture { spec } = c.action() else {
            panic!()
        };
        assert_eq!(spec.vmknic.as_deref(), Some("vmk1"));
        assert_eq!(spec.dir, Some(2));
        assert_eq!(spec.proto, Some(6));
        assert_eq!(spec.tcp_port, Some(5201));
        assert_eq!(c.args.count, Some(5));
        assert!(matches!(args("--dir 3"), Err(CliError::Usage(_))));
        assert!(matches!(args("--proto 0x100"), Err(CliError::Usage(_))));
        assert!(matches!(
            args("--tcpport 1 --udpport 2"),
            Err(CliError::Usage(_))
        ));
        let bad = args("--srcip 198.18.0.300");
        assert!(
            matches!(&bad, Err(CliError::Usage(m)) if m.contains("--srcip")),
            "{bad:?}"
        );
        assert!(matches!(args("--help"), Ok(Parsed::Help(_))));
    }

    #[test]
    fn test_comment() {
        let start = CaptureStart {
            vmknics: vec!["vmk0".into()],
            reasons: vec!["truncated".into(), "not_for_us".into()],
        };
        let m = PacketMeta {
            ts_ns: 0,
            point: Point::Drop,
            vmknic: Some(0),
            peer: None,
            reason: Some(1),
            gso_size: 0,
            orig_len: 60,
        };
        assert_eq!(comment(&m, &start), "drop vmk0 reason=not_for_us");
        let f = PacketMeta {
            point: Point::Forward,
            peer: Some(1),
            reason: None,
            gso_size: 1448,
            ..m
        };
        assert_eq!(comment(&f, &start), "forward vmk0 -> vmk1 gso_size=1448");
    }
}
