//! Root only. A restart while traffic flows (issue 7, "Reliability"; skipped with
//! `SKIPPED (needs root)` outside CI, a failure inside CI when not root).
//!
//! Lab: the daemon runs in namespace `stack` with two vmknics and forwarding on. Each TAP joins
//! a Linux bridge in that namespace (config key `bridge`, the port group's switch), and each
//! bridge has a veth to a host namespace: `client` (198.18.1.10/24, behind vmk0 at
//! 198.18.1.1) and `server` (198.18.2.10/24, behind vmk1 at 198.18.2.1), each routing through
//! its vmknic. The hosts' addresses live on their veths, so they survive the daemon: only the
//! TAPs go away and come back.
//!
//! An iperf3 TCP stream (client -> server, one connection for the whole run) and a steady ping
//! cross the stack while the daemon is stopped with SIGTERM and started again with the same
//! configuration, and later killed with SIGKILL and started again. After each restart: the
//! TAPs are back and members of their bridges, the control socket answers with both vmknics
//! (same MACs as before), ping replies resume within [`PING_BOUND`], and the SAME iperf3 data
//! connection (same local port, tracked with `ss`) moves data again within [`DATA_BOUND`].
//! At the end iperf3 exits 0 and its per-second intervals carry data in every interval after
//! each recovery. `cargo test --test restart -- --nocapture` prints the timeline.

mod common;

use std::fs::File;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::lab::Lab;
use common::{require_root, wait_until, Netns, Proc};

const CLIENT: &str = "198.18.1.10";
const SERVER: &str = "198.18.2.10";
const IPERF_PORT: &str = "5201";
/// iperf3's test length (seconds): room for two outages and their recoveries.
const IPERF_SECS: u64 = 30;
/// iperf3's rate cap: enough to see the stream stop and resume, little enough to leave the
/// CPUs to the daemon and to whatever else the machine runs.
const IPERF_RATE: &str = "100M";
/// Down time of the daemon in each restart.
const OUTAGE: Duration = Duration::from_secs(1);
/// A restarted daemon's TAPs are back in their bridges and its control socket answers within
/// this.
const START_BOUND: Duration = Duration::from_secs(15);
/// Ping replies resume within this after the new daemon was started.
const PING_BOUND: Duration = Duration::from_secs(10);
/// The iperf3 data connection moves data again within this after the new daemon was started
/// (TCP backs off while the stack is down: a retransmission can come up to about twice the
/// outage later).
const DATA_BOUND: Duration = Duration::from_secs(15);
/// Data the stream must move after a restart before it counts as recovered.
const RESUMED_BYTES: u64 = 1 << 20;
/// How long the stream keeps flowing after a recovery before the next step.
const STEADY: Duration = Duration::from_secs(6);

/// Wall-clock seconds since the epoch: ping's `-D` timestamps use the same clock.
fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The daemon's namespace with its two port groups (bridges), the two hosts, quiet wires (no
/// IPv6 router solicitations or MLD reports on bridges, veths and TAPs), and the
/// configuration written.
fn restart_lab() -> Lab {
    let lab = Lab::builder("restart")
        .bridge_host("client", "vmk0", "pg-a", "198.18.1.10/24")
        .route("client", "default", "198.18.1.1")
        .bridge_host("server", "vmk1", "pg-b", "198.18.2.10/24")
        .route("server", "default", "198.18.2.1")
        .quiet()
        .build();
    lab.write_config(
        "forwarding = true\n\n\
         [[vmknic]]\nname = \"vmk0\"\nportgroup = \"A\"\nip = \"198.18.1.1/24\"\n\
         bridge = \"pg-a\"\n\n\
         [[vmknic]]\nname = \"vmk1\"\nportgroup = \"B\"\nip = \"198.18.2.1/24\"\n\
         bridge = \"pg-b\"\n",
    );
    lab
}

/// What the restart test adds to the [`Lab`]: the TAPs' identity and readiness.
trait RestartLab {
    fn tap(&self, dev: &str) -> Option<(u64, Option<String>)>;
    fn wait_ready(&self, daemon: &mut Proc, what: &str) -> (Vec<u64>, Vec<String>);
}

impl RestartLab for Lab {
    /// `ip -j link show DEV` in the daemon's namespace: (ifindex, bridge), or None when the
    /// device does not exist.
    fn tap(&self, dev: &str) -> Option<(u64, Option<String>)> {
        let o = self.stack.exec("ip", &["-j", "link", "show", "dev", dev]);
        if !o.status.success() {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
        let link = v.get(0)?;
        Some((
            link["ifindex"].as_u64()?,
            link["master"].as_str().map(str::to_string),
        ))
    }

    /// Waits until both TAPs exist and are members of their bridges, and the control socket
    /// answers `stats` and `vmknic list`; returns the TAPs' ifindexes and the vmknics' MACs.
    /// Panics (with the daemon's log) after [`START_BOUND`].
    fn wait_ready(&self, daemon: &mut Proc, what: &str) -> (Vec<u64>, Vec<String>) {
        let mut ifindexes = Vec::new();
        let joined = wait_until(START_BOUND, || {
            ifindexes.clear();
            for (dev, br) in [("vmk0", "pg-a"), ("vmk1", "pg-b")] {
                match self.tap(dev) {
                    Some((i, Some(m))) if m == br => ifindexes.push(i),
                    _ => return false,
                }
            }
            true
        });
        let exited = daemon.child.try_wait().ok().flatten();
        assert!(
            joined,
            "{what}: the TAPs are not back in their bridges within {START_BOUND:?} (daemon \
             exited: {exited:?}); bridge ports:\n{}\ndaemon log:\n{}",
            self.stack.run("bridge", &["link", "show"]),
            self.log()
        );
        let sock = self.socket();
        let mut last = String::new();
        let mut macs = Vec::new();
        let answered = wait_until(START_BOUND, || {
            let o = common::cli(&sock, &["stats", "--json"]);
            if !o.status.success() {
                last = common::describe(&o);
                return false;
            }
            let o = common::cli(&sock, &["vmknic", "list", "--json"]);
            if !o.status.success() {
                last = common::describe(&o);
                return false;
            }
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
            let list = v.as_array().cloned().unwrap_or_default();
            macs = list
                .iter()
                .filter_map(|n| n["mac"].as_str().map(str::to_string))
                .collect();
            let bridges: Vec<_> = list.iter().map(|n| n["bridge"].clone()).collect();
            last = String::from_utf8_lossy(&o.stdout).into_owned();
            macs.len() == 2 && bridges == ["pg-a", "pg-b"]
        });
        assert!(
            answered,
            "{what}: the control socket does not answer with both vmknics within \
             {START_BOUND:?}: {last}\ndaemon log:\n{}",
            self.log()
        );
        (ifindexes, macs)
    }
}

/// Ping replies from the server that crossed the stack (ttl 63: one hop), as the wall-clock
/// times of ping's `-D` stamps.
fn ping_replies(file: &std::path::Path) -> Vec<f64> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .filter(|l| l.contains(&format!("bytes from {SERVER}:")) && l.contains("ttl=63"))
        .filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok())
        .collect()
}

/// `bytes_acked` of the client's established TCP connections to the iperf3 port, by local
/// port (from `ss -tin` in the client namespace).
fn connections(client: &Netns) -> Vec<(u16, u64)> {
    let o = client.exec(
        "ss",
        &[
            "-Htin",
            "state",
            "established",
            "dport",
            "=",
            &format!(":{IPERF_PORT}"),
        ],
    );
    let text = String::from_utf8_lossy(&o.stdout);
    let mut out = Vec::new();
    let mut port = None;
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let Some(local) = words
            .iter()
            .find_map(|w| w.strip_prefix(&format!("{CLIENT}:")))
        {
            port = local.parse::<u16>().ok();
            if let Some(p) = port {
                out.push((p, 0));
            }
            continue;
        }
        let acked = words
            .iter()
            .find_map(|w| w.strip_prefix("bytes_acked:"))
            .and_then(|v| v.parse::<u64>().ok());
        if let (Some(p), Some(a)) = (port, acked) {
            if let Some(last) = out.iter_mut().rev().find(|(q, _)| *q == p) {
                last.1 = a;
            }
        }
    }
    out
}

/// `bytes_acked` of the connection from local port `port` (None when it is gone).
fn acked(client: &Netns, port: u16) -> Option<u64> {
    connections(client)
        .into_iter()
        .find(|(p, _)| *p == port)
        .map(|(_, a)| a)
}

/// What one restart measured (wall-clock seconds).
#[derive(Debug)]
struct Restart {
    how: &'static str,
    /// The signal was sent.
    killed: f64,
    /// The daemon had exited (reaped).
    down: f64,
    /// The new daemon was spawned.
    started: f64,
    /// Its TAPs were in their bridges and its control socket answered.
    ready: f64,
    /// The first ping reply through the new daemon.
    ping: f64,
    /// The data connection had moved [`RESUMED_BYTES`] more.
    data: f64,
}

impl Restart {
    /// One line, times relative to `t0` (iperf3's start).
    fn line(&self, t0: f64) -> String {
        format!(
            "{} at {:.1} s: exited in {:.2} s, down {:.2} s, ready {:.2} s after start, ping \
             back {:.2} s and data back {:.2} s after the signal",
            self.how,
            self.killed - t0,
            self.down - self.killed,
            self.started - self.killed,
            self.ready - self.started,
            self.ping - self.killed,
            self.data - self.killed
        )
    }
}

/// Stops the daemon (SIGTERM: a clean exit; SIGKILL), checks that its TAPs went with it and
/// that nothing crossed the stack while it was down, starts it again with the same
/// configuration and waits for ping and for the iperf3 data connection from `port` to
/// recover. Returns the new daemon and its TAPs' ifindexes.
#[allow(clippy::too_many_arguments)]
fn restart(
    lab: &Lab,
    mut daemon: Proc,
    kill9: bool,
    port: u16,
    pings: &std::path::Path,
    macs: &[String],
    ifindexes: &[u64],
    log: &mut Vec<Restart>,
) -> (Proc, Vec<u64>) {
    let how = if kill9 { "SIGKILL" } else { "SIGTERM" };
    let killed = now();
    if kill9 {
        daemon.child.kill().expect("SIGKILL the daemon");
        let status = daemon.child.wait().expect("wait for the daemon");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "daemon after SIGKILL: {status}"
        );
    } else {
        let status = daemon.stop();
        assert!(
            status.success(),
            "daemon exit on SIGTERM: {status}\n{}",
            lab.log()
        );
    }
    let down = now();
    // The TAPs are not persistent: they go with the daemon's descriptors, also on SIGKILL.
    assert!(
        wait_until(Duration::from_secs(5), || {
            lab.tap("vmk0").is_none() && lab.tap("vmk1").is_none()
        }),
        "after {how}: the TAPs outlived the daemon"
    );
    let acked_down = acked(lab.ns("client"), port).unwrap_or_else(|| {
        panic!(
            "after {how}: the iperf3 data connection (local port {port}) is gone: {:?}",
            connections(lab.ns("client"))
        )
    });
    std::thread::sleep(OUTAGE.saturating_sub(Duration::from_secs_f64(now() - down)));
    let started = now();
    // Nothing crosses while the daemon is down: the bridges are the only way between the
    // hosts (a reply the daemon forwarded just before it exited gets 0.3 s to be printed).
    let during: Vec<f64> = ping_replies(pings)
        .into_iter()
        .filter(|t| *t > down + 0.3 && *t < started)
        .collect();
    assert!(
        during.is_empty(),
        "after {how}: ping replies while the daemon was down: {during:?}"
    );
    let mut daemon = lab.spawn_daemon();
    let (new_ifindexes, new_macs) = lab.wait_ready(&mut daemon, &format!("after {how}"));
    let ready = now();
    assert_eq!(new_macs, macs, "after {how}: the vmknics' MACs changed");
    assert!(
        new_ifindexes.iter().all(|i| !ifindexes.contains(i)),
        "after {how}: the TAPs were not created anew: {ifindexes:?} -> {new_ifindexes:?}"
    );
    let mut ping = 0.0;
    let resumed = wait_until(
        PING_BOUND.saturating_sub(Duration::from_secs_f64(ready - started)),
        || match ping_replies(pings).into_iter().find(|t| *t > started) {
            Some(t) => {
                ping = t;
                true
            }
            None => false,
        },
    );
    assert!(
        resumed,
        "after {how}: no ping reply through the stack within {PING_BOUND:?} of the restart; \
         bridge ports:\n{}\ndaemon log:\n{}",
        lab.stack.run("bridge", &["link", "show"]),
        lab.log()
    );
    let mut last = acked_down;
    let moving = wait_until(
        DATA_BOUND.saturating_sub(Duration::from_secs_f64(now() - started)),
        || {
            last = acked(lab.ns("client"), port).unwrap_or(last);
            last >= acked_down + RESUMED_BYTES
        },
    );
    assert!(
        moving,
        "after {how}: the iperf3 data connection (local port {port}) moved {} bytes within \
         {DATA_BOUND:?} of the restart (connections now: {:?})",
        last - acked_down,
        connections(lab.ns("client"))
    );
    log.push(Restart {
        how,
        killed,
        down,
        started,
        ready,
        ping,
        data: now(),
    });
    (daemon, new_ifindexes)
}

/// iperf3's per-second intervals: (start, end, bytes) in seconds of the test.
fn intervals(report: &serde_json::Value) -> Vec<(f64, f64, u64)> {
    report["intervals"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| {
                    let s = &i["sum"];
                    (
                        s["start"].as_f64().unwrap_or(0.0),
                        s["end"].as_f64().unwrap_or(0.0),
                        s["bytes"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn flows_through_the_stack_recover_after_restart_and_kill() {
    let Some(()) = require_root("flows_through_the_stack_recover_after_restart_and_kill") else {
        return;
    };
    let begun = Instant::now();
    let begun_wall = now();
    let lab = restart_lab();
    let mut daemon = lab.spawn_daemon();
    let (ifindexes, macs) = lab.wait_ready(&mut daemon, "first start");
    // The stack forwards before any traffic is measured.
    assert!(
        wait_until(Duration::from_secs(10), || {
            lab.ns("client")
                .exec("ping", &["-c", "1", "-W", "1", SERVER])
                .status
                .success()
        }),
        "the client never reached the server through the stack:\n{}",
        lab.log()
    );

    let pings = lab.dir.file("ping.out");
    let mut cmd = lab
        .ns("client")
        .command("ping", &["-D", "-n", "-i", "0.2", "-W", "1", SERVER]);
    cmd.stdin(Stdio::null())
        .stdout(File::create(&pings).expect("ping output"))
        .stderr(Stdio::null());
    let _ping = Proc::spawn(cmd);

    let mut cmd = lab
        .ns("server")
        .command("iperf3", &["-s", "-1", "-B", SERVER, "-p", IPERF_PORT]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _server = Proc::spawn(cmd);
    assert!(
        wait_until(Duration::from_secs(10), || {
            lab.ns("server")
                .run("ss", &["-Hltn"])
                .contains(&format!("{SERVER}:{IPERF_PORT}"))
        }),
        "iperf3 server never listened"
    );
    let report_file = lab.dir.file("iperf3.json");
    let secs = IPERF_SECS.to_string();
    let mut cmd = lab.ns("client").command(
        "iperf3",
        &[
            "-c", SERVER, "-p", IPERF_PORT, "-t", &secs, "-i", "1", "-b", IPERF_RATE, "--json",
        ],
    );
    cmd.stdin(Stdio::null())
        .stdout(File::create(&report_file).expect("iperf3 output"))
        .stderr(Stdio::null());
    let mut iperf = Proc::spawn(cmd);

    // iperf3 opens its control connection, then the data connection, and starts its
    // interval clock at once: t0 is when the second connection shows (10 ms polls).
    let opened = wait_until(Duration::from_secs(10), || {
        connections(lab.ns("client")).len() == 2
    });
    let t0 = now();
    assert!(
        opened,
        "iperf3 never opened its connections: {:?}",
        connections(lab.ns("client"))
    );
    // The data connection is the one that moves data.
    let mut port = None;
    let flowing = wait_until(Duration::from_secs(10), || {
        port = connections(lab.ns("client"))
            .iter()
            .filter(|(_, a)| *a >= RESUMED_BYTES)
            .max_by_key(|(_, a)| *a)
            .map(|(p, _)| *p);
        port.is_some()
    });
    assert!(
        flowing,
        "the iperf3 stream never moved data: {:?}",
        connections(lab.ns("client"))
    );
    let port = port.expect("data connection");
    std::thread::sleep(STEADY);

    let mut log = Vec::new();
    let (daemon, ifindexes) = restart(
        &lab, daemon, false, port, &pings, &macs, &ifindexes, &mut log,
    );
    std::thread::sleep(STEADY);
    let (daemon, _) = restart(
        &lab, daemon, true, port, &pings, &macs, &ifindexes, &mut log,
    );

    // iperf3 ends by itself after IPERF_SECS, on the same connections.
    let limit = Duration::from_secs(IPERF_SECS + 30);
    let ended = wait_until(limit, || iperf.child.try_wait().ok().flatten().is_some());
    let status = iperf.child.try_wait().ok().flatten();
    let text = std::fs::read_to_string(&report_file).unwrap_or_default();
    assert!(ended, "iperf3 still runs after {limit:?}: {text}");
    let report: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("iperf3 JSON ({e}): {text}"));
    assert!(
        status.is_some_and(|s| s.success()),
        "iperf3 failed ({status:?}): {}",
        report["error"]
    );
    let connected = &report["start"]["connected"];
    assert_eq!(
        connected.as_array().map(Vec::len),
        Some(1),
        "iperf3 streams: {connected}"
    );
    assert_eq!(
        connected[0]["local_port"].as_u64(),
        Some(u64::from(port)),
        "the stream tracked with ss is not iperf3's data connection: {connected}"
    );
    let ivs = intervals(&report);
    assert!(
        ivs.len() as u64 >= IPERF_SECS,
        "iperf3 reported {} intervals",
        ivs.len()
    );
    let sent = &report["end"]["sum_sent"];
    let timeline = format!(
        "iperf3 started {:.1} s into the test; {} bytes in one connection (local port \
         {port}), {} retransmits\n  {}\n  MiB per second: {:?}\n  retransmits per second: {:?}",
        t0 - begun_wall,
        sent["bytes"],
        sent["retransmits"],
        log.iter()
            .map(|r| r.line(t0))
            .collect::<Vec<_>>()
            .join("\n  "),
        ivs.iter()
            .map(|(_, _, b)| (*b as f64 / 1048576.0 * 10.0).round() / 10.0)
            .collect::<Vec<_>>(),
        report["intervals"]
            .as_array()
            .map(|a| a
                .iter()
                .map(|i| i["sum"]["retransmits"].as_u64().unwrap_or(0))
                .collect::<Vec<_>>())
            .unwrap_or_default()
    );
    // Every interval carries data before the first signal and, after each recovery, until
    // the next signal or the end (a second of slack at each edge for the clocks).
    let mut windows = vec![(0.0, log[0].killed - t0 - 1.0)];
    for (i, r) in log.iter().enumerate() {
        let end = log.get(i + 1).map_or(f64::MAX, |n| n.killed - t0 - 1.0);
        windows.push((r.data - t0 + 1.0, end));
    }
    for (from, to) in &windows {
        let inside: Vec<_> = ivs
            .iter()
            .filter(|(s, e, _)| *s >= *from && *e <= *to)
            .collect();
        assert!(
            inside.len() >= 3,
            "only {} intervals in {from:.1}-{to:.1} s:\n  {timeline}",
            inside.len()
        );
        let empty: Vec<_> = inside.iter().filter(|(_, _, b)| *b == 0).collect();
        assert!(
            empty.is_empty(),
            "intervals without data in {from:.1}-{to:.1} s (stalled after recovery): \
             {empty:?}\n  {timeline}"
        );
    }

    let replies = ping_replies(&pings);
    // The last daemon's drops (its counters start at the SIGKILL restart).
    let o = common::cli(&lab.socket(), &["stats", "--json"]);
    let stats: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    let drops: Vec<String> = stats
        .as_array()
        .map(|a| {
            a.iter()
                .map(|n| format!("{}: {}", n["vmknic"], n["counters"]["drops"]))
                .collect()
        })
        .unwrap_or_default();
    let status = daemon.stop();
    assert!(status.success(), "daemon exit {status}:\n{}", lab.log());
    eprintln!(
        "restart test in {:.1} s, {} ping replies through the stack\n  {timeline}\n  drops \
         since the last restart: {}",
        begun.elapsed().as_secs_f64(),
        replies.len(),
        drops.join(", ")
    );
}
