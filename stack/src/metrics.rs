//! Prometheus metrics (`metrics_listen`): a thread answers `GET /metrics` with the text
//! exposition format (version 0.0.4), which the event loop renders on request from the state
//! it owns, through the control queue like any other request. Off by default.
//!
//! Also the data-plane loop's turn-duration histogram that the netstack keeps: one more clock
//! read per turn that handled frames, not per packet.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Sender};
use mio::Waker;
use tracing::{debug, warn};

use crate::control::command::Command;
use crate::control::server::Pending;

/// Upper bounds of the turn-duration histogram's buckets, in nanoseconds (then +Inf).
pub const TURN_BUCKETS_NS: [u64; 12] = [
    1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000, 5_000_000,
    10_000_000,
];

/// How long a data-plane turn that handled frames took.
#[derive(Debug, Clone, Default)]
pub struct TurnHistogram {
    /// Turns per bucket (not cumulative; the last is +Inf).
    counts: [u64; TURN_BUCKETS_NS.len() + 1],
    sum_ns: u64,
}

impl TurnHistogram {
    /// Counts one turn of `d`.
    #[inline]
    pub fn observe(&mut self, d: Duration) {
        let ns = d.as_nanos().min(u128::from(u64::MAX)) as u64;
        let i = TURN_BUCKETS_NS
            .iter()
            .position(|b| ns <= *b)
            .unwrap_or(TURN_BUCKETS_NS.len());
        if let Some(c) = self.counts.get_mut(i) {
            *c += 1;
        }
        self.sum_ns = self.sum_ns.saturating_add(ns);
    }

    /// Writes it as the histogram `name` in the text format.
    pub fn render(&self, out: &mut Exposition, name: &str, help: &str) {
        out.family(name, "histogram", help);
        let mut cumulative = 0;
        for (b, c) in TURN_BUCKETS_NS.iter().zip(&self.counts) {
            cumulative += c;
            let le = format!("{}", *b as f64 / 1e9);
            out.sample(&format!("{name}_bucket"), &[("le", &le)], cumulative as f64);
        }
        let total: u64 = self.counts.iter().sum();
        out.sample(&format!("{name}_bucket"), &[("le", "+Inf")], total as f64);
        out.sample(&format!("{name}_sum"), &[], self.sum_ns as f64 / 1e9);
        out.sample(&format!("{name}_count"), &[], total as f64);
    }
}

/// A text exposition being written.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Exposition {
    /// Starts a metric family.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    /// One sample with its labels.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            let l: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = write!(self.text, "{{{}}}", l.join(","));
        }
        let _ = writeln!(self.text, " {value}");
    }

    /// The text.
    pub fn finish(self) -> String {
        self.text
    }
}

/// The metrics listener; stops with the process.
pub struct MetricsServer {
    _thread: JoinHandle<()>,
    /// Where it listens (the port the kernel chose for port 0).
    pub addr: SocketAddr,
}

/// Longest wait for a scraper's request, and for it to take the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest request accepted.
const MAX_REQUEST: usize = 8192;

/// Listens on `addr` and answers each scrape with the event loop's rendering.
pub fn spawn(
    addr: SocketAddr,
    queue: Sender<Pending>,
    waker: Arc<Waker>,
) -> std::io::Result<MetricsServer> {
    let listener = TcpListener::bind(addr)?;
    let addr = listener.local_addr()?;
    let thread = std::thread::Builder::new()
        .name("vmkstack-metrics".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(stream) = conn else { continue };
                if let Err(e) = serve(stream, &queue, &waker) {
                    debug!("metrics client: {e}");
                }
            }
        })?;
    Ok(MetricsServer {
        _thread: thread,
        addr,
    })
}

fn serve(mut stream: TcpStream, queue: &Sender<Pending>, waker: &Waker) -> std::io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && !req.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 || req.len() + n > MAX_REQUEST {
            break;
        }
        req.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&req);
    let mut words = line.split_whitespace();
    let (status, body) = match (words.next(), words.next()) {
        (Some("GET"), Some("/metrics")) => match render(queue, waker) {
            Some(text) => ("200 OK", text),
            None => (
                "503 Service Unavailable",
                "the event loop did not answer\n".into(),
            ),
        },
        (Some("GET"), Some(_)) => ("404 Not Found", "try /metrics\n".into()),
        _ => ("405 Method Not Allowed", "GET /metrics\n".into()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())
}

/// Asks the event loop for the exposition text.
fn render(queue: &Sender<Pending>, waker: &Waker) -> Option<String> {
    let (tx, rx) = bounded(1);
    if queue
        .try_send(Pending {
            command: Command::Metrics,
            netstack: None,
            reply: tx,
        })
        .is_err()
    {
        warn!("metrics scrape: the control queue is full");
        return None;
    }
    let _ = waker.wake();
    let resp = rx.recv_timeout(IO_TIMEOUT).ok()?;
    resp.result?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_histogram_and_exposition() {
        let mut h = TurnHistogram::default();
        h.observe(Duration::from_nanos(500));
        h.observe(Duration::from_micros(3));
        h.observe(Duration::from_secs(1));
        let mut e = Exposition::default();
        h.render(&mut e, "t_seconds", "Turns.");
        e.family("x_total", "counter", "X.");
        e.sample("x_total", &[("vmknic", "vmk0"), ("q", "a\"b")], 3.0);
        let text = e.finish();
        assert!(text.contains("# TYPE t_seconds histogram\n"), "{text}");
        assert!(
            text.contains("t_seconds_bucket{le=\"0.000001\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("t_seconds_bucket{le=\"0.000005\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("t_seconds_bucket{le=\"0.01\"} 2\n"), "{text}");
        assert!(text.contains("t_seconds_bucket{le=\"+Inf\"} 3\n"), "{text}");
        assert!(text.contains("t_seconds_count 3\n"), "{text}");
        assert!(
            text.contains("x_total{vmknic=\"vmk0\",q=\"a\\\"b\"} 3\n"),
            "{text}"
        );
    }
}
