//! Root only. Data-plane workers on multi-queue TAPs (`workers = 2`): flows forwarded on both
//! queues, a first packet to an unresolved neighbour read by worker 1 delivered, a route added
//! at run time used at once (and a removed one no longer), the stack's own address answered
//! whichever queue a ping comes in on (skipped with `SKIPPED (needs root)` outside CI, a
//! failure in CI when not root).
//!
//! Lab: h1 (198.18.1.10) behind vmk0, h2 (198.18.2.10) behind vmk1, forwarding on. Which queue
//! a frame takes is the kernel's choice (a hash of its flow): each test sends several flows
//! (source ports or addresses), so that both queues see some (all on one queue has a chance
//! of 2^-16 with 16 flows), and reads each worker's counts from the daemon's log at exit.

mod common;

use std::time::Duration;

use common::counters::{counter, counters};
use common::fixtures::routed_pair;
use common::lab::Lab;
use common::{require_root, wait_until};

/// Sends `count` UDP datagrams from each of `ports` source ports (`base`, default 40000, on)
/// to `dst`:5001, a port's datagrams in a row, the ports one after another.
const SEND: &str = r#"
import socket, sys, time
dst, ports, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
base = int(sys.argv[4]) if len(sys.argv) > 4 else 40000
for p in range(ports):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", base + p))
    for i in range(count):
        s.sendto(b"x" * 100, (dst, 5001))
        time.sleep(0.0005)
    s.close()
"#;

/// Counts datagrams arriving on port 5001 until none came for a second (or 20 s passed),
/// writes `datagrams distinct-source-ports` to the file `argv[1]`. Creates `argv[1].ready`
/// once bound.
const RECV: &str = r#"
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 5001))
open(sys.argv[1] + ".ready", "w").close()
# Until the expected count arrived, 20 s passed, or the line stayed silent (10 s before the
# first datagram, 5 s between two: the sender starts a process per flow, slow on a busy machine).
n, ports, end, want = 0, set(), time.time() + 20, int(sys.argv[2])
s.settimeout(10)
while time.time() < end and n < want:
    try:
        _, (a, p) = s.recvfrom(2048)
    except socket.timeout:
        break
    n += 1
    ports.add(p)
    s.settimeout(5)
open(sys.argv[1], "w").write("%d %d" % (n, len(ports)))
"#;

/// What one worker logged when it stopped: (frames read, forwarded, handed over).
fn worker(log: &str, id: usize) -> (u64, u64, u64) {
    let line = worker_line(log, id);
    (
        counter(line, "frames"),
        counter(line, "forwarded"),
        counter(line, "handed"),
    )
}

/// The `worker stopped` line of worker `id`.
fn worker_line(log: &str, id: usize) -> &str {
    log.lines()
        .rev()
        .find(|l| l.contains("worker stopped") && l.contains(&format!("worker={id} ")))
        .unwrap_or_else(|| panic!("no `worker stopped` for worker {id} in:\n{log}"))
}

/// The routed pair with `workers = 2`.
fn lab(tag: &str) -> Lab {
    routed_pair(tag, "workers = 2", "", "")
}

/// Runs the receiver in h2, the sender in h1 (`ports` flows of `count` datagrams to
/// `dst`), and returns (datagrams received, distinct source ports seen).
fn udp_flows(lab: &Lab, dst: &str, ports: usize, count: usize) -> (u64, u64) {
    udp_flows_with(lab, dst, ports, count, |_| {})
}

/// [`udp_flows`], calling `before(k)` before flow `k` is sent.
fn udp_flows_with(
    lab: &Lab,
    dst: &str,
    ports: usize,
    count: usize,
    mut before: impl FnMut(usize),
) -> (u64, u64) {
    let out = std::env::temp_dir().join(format!("vmkstack-workers-{}", std::process::id()));
    let out_s = out.display().to_string();
    let ready = format!("{out_s}.ready");
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(&ready);
    let want = (ports * count).to_string();
    let _rx = lab.ns("h2").spawn("python3", &["-c", RECV, &out_s, &want]);
    assert!(wait_until(Duration::from_secs(10), || {
        std::path::Path::new(&ready).exists()
    }));
    for k in 0..ports {
        before(k);
        let base = (40000 + k).to_string();
        lab.ns("h1").run(
            "python3",
            &["-c", SEND, dst, "1", &count.to_string(), &base],
        );
    }
    assert!(
        wait_until(Duration::from_secs(25), || out.exists()),
        "the receiver never finished"
    );
    let text = std::fs::read_to_string(&out).expect("receiver's count");
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(&ready);
    let mut f = text
        .split_whitespace()
        .map(|w| w.parse::<u64>().unwrap_or(0));
    (f.next().unwrap_or(0), f.next().unwrap_or(0))
}

#[test]
fn flows_are_forwarded_on_both_queues_and_counted_once() {
    let Some(()) = require_root("flows_are_forwarded_on_both_queues_and_counted_once") else {
        return;
    };
    let lab = lab("wk-flows");
    let daemon = lab.start();
    assert!(wait_until(Duration::from_secs(10), || lab
        .ns("h1")
        .exec("ping", &["-c", "1", "-W", "1", "198.18.2.10"])
        .status
        .success()));
    let (got, ports) = udp_flows(&lab, "198.18.2.10", 16, 50);
    assert_eq!(ports, 16, "every flow crossed");
    daemon.stop();
    let log = lab.log();
    let (frames1, forwarded1, _) = worker(&log, 1);
    let vmk1 = counters(&log, "vmk1");
    let vmk0 = counters(&log, "vmk0");
    // h1 -> h2: the datagrams and the first ping's echo request leave by vmk1, the echo
    // reply by vmk0.
    let forwarded = counter(vmk1, "forwarded") + counter(vmk0, "forwarded");
    // The ping above may have taken a retry or two while the TAPs came up.
    let pings = counter(vmk1, "forwarded").checked_sub(got);
    assert!(
        pings.is_some_and(|p| (1..=5).contains(&p)),
        "vmk1 forwarded what h2 received and the ping, once each: {vmk1}, {got} received"
    );
    assert!(
        forwarded1 > 0 && frames1 > 0,
        "worker 1 forwarded some flows: {log}"
    );
    assert!(
        forwarded > forwarded1,
        "worker 0 forwarded some flows too ({forwarded} in all, {forwarded1} by worker 1)"
    );
    // Each datagram was read once, by one worker: vmk0 counts them received once.
    assert!(counter(vmk0, "rx_packets") > got);
    assert!(
        counter(vmk0, "rx_packets") < got + 20,
        "vmk0 counted no frame twice: {vmk0}"
    );
    assert_eq!(got, 16 * 50, "nothing lost at this pace");
}

#[test]
fn first_packet_to_an_unresolved_neighbour_is_delivered_from_any_queue() {
    let Some(()) =
        require_root("first_packet_to_an_unresolved_neighbour_is_delivered_from_any_queue")
    else {
        return;
    };
    let lab = lab("wk-first");
    let daemon = lab.start();
    // One datagram per flow, h2's entry removed before each: every one of them is the first
    // packet to an unresolved neighbour, wherever it came in (worker 1 hands it to worker 0,
    // which queues it while ARP resolves).
    let (got, ports) = udp_flows_with(&lab, "198.18.2.10", 16, 1, |k| {
        if k > 0 {
            let (code, _, err) = lab.esx(&[
                "esxcli",
                "network",
                "ip",
                "neighbor",
                "remove",
                "-a",
                "198.18.2.10",
            ]);
            assert_eq!(code, 0, "{err}");
        }
    });
    assert_eq!((got, ports), (16, 16), "every first datagram arrived");
    daemon.stop();
    let log = lab.log();
    let line = worker_line(&log, 1);
    assert_eq!(
        counter(line, "forwarded"),
        0,
        "no neighbour was known: {line}"
    );
    assert!(
        counter(line, "handed_ipv4") > 0,
        "worker 1 read some of the datagrams and handed them over: {log}"
    );
    let vmk1 = counters(&log, "vmk1");
    assert_eq!(counter(vmk1, "forwarded"), 16, "{vmk1}");
    assert_eq!(
        counter(line, "handoff_full"),
        0,
        "no hand-off was refused: {line}"
    );
}

#[test]
fn route_added_at_run_time_is_used_by_the_workers_at_once() {
    let Some(()) = require_root("route_added_at_run_time_is_used_by_the_workers_at_once") else {
        return;
    };
    let lab = lab("wk-route");
    lab.ns("h2")
        .ip(&["addr", "add", "198.18.50.10/32", "dev", "lo"]);
    let daemon = lab.start();
    assert!(wait_until(Duration::from_secs(10), || lab
        .ns("h1")
        .exec("ping", &["-c", "1", "-W", "1", "198.18.2.10"])
        .status
        .success()));
    let (code, _, err) = lab.esx(&["esxcfg-route", "-a", "198.18.50.0/24", "198.18.2.10"]);
    assert_eq!(code, 0, "{err}");
    let (got, ports) = udp_flows(&lab, "198.18.50.10", 16, 5);
    assert_eq!((got, ports), (80, 16), "every datagram took the new route");
    let (code, _, err) = lab.esx(&["esxcfg-route", "-d", "198.18.50.0/24", "198.18.2.10"]);
    assert_eq!(code, 0, "{err}");
    let (got, _) = udp_flows(&lab, "198.18.50.10", 16, 2);
    assert_eq!(got, 0, "no worker forwards on a removed route");
    daemon.stop();
    let log = lab.log();
    let (_, forwarded1, _) = worker(&log, 1);
    assert!(forwarded1 > 0, "worker 1 forwarded on the new route: {log}");
}

#[test]
fn the_stack_answers_pings_whichever_queue_they_come_in_on() {
    let Some(()) = require_root("the_stack_answers_pings_whichever_queue_they_come_in_on") else {
        return;
    };
    let lab = lab("wk-ping");
    let daemon = lab.start();
    // Sixteen source addresses: sixteen flows to the kernel's queue choice.
    let h1 = lab.ns("h1");
    for k in 0..16 {
        h1.ip(&[
            "addr",
            "add",
            &format!("198.18.1.{}/24", 100 + k),
            "dev",
            "vmk0",
        ]);
    }
    for k in 0..16 {
        let src = format!("198.18.1.{}", 100 + k);
        let o = h1.exec("ping", &["-c", "2", "-W", "2", "-I", &src, "198.18.1.1"]);
        assert!(
            o.status.success(),
            "ping from {src}: {}",
            common::describe(&o)
        );
    }
    daemon.stop();
    let log = lab.log();
    let (frames1, forwarded1, handed1) = worker(&log, 1);
    assert_eq!(forwarded1, 0, "nothing to forward");
    assert!(
        frames1 > 0 && handed1 == frames1,
        "worker 1 read some pings and handed all it read to worker 0: {log}"
    );
}

#[test]
fn workers_out_of_range_are_refused_naming_the_key() {
    let Some(()) = require_root("workers_out_of_range_are_refused_naming_the_key") else {
        return;
    };
    for (n, bad) in [("0", true), ("17", true), ("2", false)] {
        let lab = routed_pair("wk-cfg", &format!("workers = {n}"), "", "");
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_vmkstack"))
            .args(["daemon", "--check-config", "--config"])
            .arg(lab.config())
            .output()
            .expect("vmkstack");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        if bad {
            assert!(!o.status.success(), "workers = {n} accepted: {text}");
            assert!(
                text.contains(&format!("workers = {n}: from 1 to 16 data-plane threads")),
                "{text}"
            );
        } else {
            assert!(o.status.success(), "workers = {n} refused: {text}");
        }
    }
}

/// Worker 1's count of `kind` from the daemon's metrics (`metrics_listen` on `port`).
fn worker1_metric(lab: &Lab, port: u16, kind: &str) -> u64 {
    const GET: &str = "import sys, urllib.request\n\
        print(urllib.request.urlopen('http://127.0.0.1:%s/metrics' % sys.argv[1], timeout=5)\
        .read().decode())";
    let text = lab.stack.run("python3", &["-c", GET, &port.to_string()]);
    let want = format!("kind=\"{kind}\"");
    text.lines()
        .find(|l| {
            l.starts_with("vmkstack_worker_frames_total{")
                && l.contains("worker=\"1\"")
                && l.contains(&want)
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as u64)
        .unwrap_or_else(|| panic!("no worker 1 {kind} in:\n{text}"))
}

#[test]
fn a_flow_stays_on_one_queue() {
    let Some(()) = require_root("a_flow_stays_on_one_queue") else {
        return;
    };
    const PORT: u16 = 19471;
    let lab = routed_pair(
        "wk-sticky",
        &format!("workers = 2\nmetrics_listen = \"127.0.0.1:{PORT}\""),
        "",
        "",
    );
    let daemon = lab.start();
    assert!(wait_until(Duration::from_secs(10), || lab
        .ns("h1")
        .exec("ping", &["-c", "1", "-W", "1", "198.18.2.10"])
        .status
        .success()));
    // A sink in h2, so that no ICMP Port Unreachable (another flow) comes back.
    const SINK: &str = "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
        s.bind(('0.0.0.0', 5001))\nwhile True: s.recv(2048)";
    let _sink = lab.ns("h2").spawn("python3", &["-c", SINK]);
    std::thread::sleep(Duration::from_millis(300));
    // Each flow alone: worker 1 forwards all of its datagrams or none (the kernel's queue
    // choice keeps a flow on one queue; its first datagram finds h2 resolved already).
    let mut on_worker1 = 0;
    for k in 0..12 {
        let before = worker1_metric(&lab, PORT, "forwarded");
        let base = (41000 + k).to_string();
        lab.ns("h1")
            .run("python3", &["-c", SEND, "198.18.2.10", "1", "100", &base]);
        let delta = worker1_metric(&lab, PORT, "forwarded") - before;
        assert!(
            delta == 0 || delta == 100,
            "flow {k}: worker 1 forwarded {delta} of its 100 datagrams"
        );
        on_worker1 += usize::from(delta == 100);
    }
    assert!(
        (1..12).contains(&on_worker1),
        "twelve flows spread over both queues ({on_worker1} on worker 1)"
    );
    daemon.stop();
}
