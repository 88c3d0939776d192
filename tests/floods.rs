//! Root only. Floods and overload from the wire side (issue 7, section 2; skipped with
//! `SKIPPED (needs root)` outside CI, a failure inside CI when not root).
//!
//! Lab: the daemon runs in namespace `stack`; vmk0's TAP is moved into host namespace `h1`
//! (198.18.0.0/16, h1 at 198.18.1.10) and vmk1's into `h2` (198.19.0.0/16, h2 at
//! 198.19.0.10); forwarding is on. Both subnets are /16s so that floods can name tens of
//! thousands of on-link neighbours. A Python generator (AF_PACKET on the host side of the TAP,
//! or kernel sockets) sends each flood, bounded in count and in time:
//!
//! 1. UDP toward every address of vmk1's /16 (100k datagrams over 65,534 next hops);
//! 2. an ARP flood: 100k requests for vmk0's address from distinct senders across
//!    198.18.0.0/15 with random MACs;
//! 3. 64-byte frames from h1 to h2 above what the stack can forward;
//! 4. a connect flood at a forward listener (in the daemon's namespace);
//! 5. frames of random bytes, 1 to 1600 long (the kernel refuses to send frames shorter than
//!    an Ethernet header through AF_PACKET, EINVAL: those never reach the TAP and are only
//!    counted by the generator).
//!
//! During each flood a monitor asks the control socket for `stats` and samples the daemon's
//! RSS; after each one h1 pings h2 through the stack without loss, `stats` answers within 1 s
//! and the neighbour table holds at most 1024 entries. At the end the daemon's peak RSS
//! (VmHWM) is below 64 MiB and it exits 0 on SIGTERM. The test prints the drop counters of
//! every phase by reason and the peak RSS (`cargo test --test floods -- --nocapture`).

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::lab::Lab;
use common::{require_root, wait_until, Netns, Proc};

const VMK0_MAC: &str = "02:00:00:00:01:01";
const VMK1_MAC: &str = "02:00:00:00:02:01";
const H2: &str = "198.19.0.10";
/// The neighbour table's bound (the daemon's default capacity).
const NEIGHBOR_BOUND: usize = 1024;
/// The daemon's memory bound: peak RSS (VmHWM).
const RSS_BOUND_KIB: u64 = 64 * 1024;
/// `stats` must answer within this after each flood.
const STATS_BOUND: Duration = Duration::from_secs(1);
/// ... and within this while a flood runs (more room: the machine is busiest then).
const FLOOD_STATS_BOUND: Duration = Duration::from_secs(2);
/// Forward listener port (in the daemon's namespace) and the echo server's port in h2.
const FWD_PORT: u16 = 13260;

/// Two hosts on two /16 vmknic subnets with quiet wires (no IPv6 router solicitations or MLD
/// reports on the TAPs), and the configuration written.
fn flood_lab(tag: &str) -> Lab {
    let lab = Lab::builder(tag)
        .tap_host("h1", "vmk0", "198.18.1.10/16")
        .route("h1", "default", "198.18.1.1")
        .tap_host("h2", "vmk1", "198.19.0.10/16")
        .route("h2", "default", "198.19.0.1")
        .quiet()
        .build();
    lab.write_config(&format!(
        r#"forwarding = true

[[vmknic]]
name = "vmk0"
portgroup = "A"
ip = "198.18.1.1/16"
mac = "{VMK0_MAC}"
netns = "{h1}"

[[vmknic]]
name = "vmk1"
portgroup = "B"
ip = "198.19.0.1/16"
mac = "{VMK1_MAC}"
netns = "{h2}"
"#,
        h1 = lab.ns("h1").name,
        h2 = lab.ns("h2").name,
    ));
    lab
}

/// Runs `python3 FLOODGEN args` in `ns`, killed (by its PID) if it outlives `limit`; panics
/// unless it exits 0. Returns its stdout.
fn generator(lab: &Lab, ns: &Netns, args: &[&str], limit: Duration) -> String {
    let script = lab.dir.file("floodgen.py");
    if !script.exists() {
        std::fs::write(&script, FLOODGEN).expect("write generator");
    }
    let out = lab.dir.file(&format!("gen-{}.out", args[0]));
    let err = lab.dir.file(&format!("gen-{}.err", args[0]));
    let mut all = vec![script.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    let mut cmd = ns.command("python3", &all);
    cmd.stdin(Stdio::null())
        .stdout(File::create(&out).expect("generator stdout"))
        .stderr(File::create(&err).expect("generator stderr"));
    let mut gen = Proc::spawn(cmd);
    let done = wait_until(limit, || gen.child.try_wait().ok().flatten().is_some());
    let status = gen.stop();
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let errs = std::fs::read_to_string(&err).unwrap_or_default();
    assert!(done, "generator {args:?} ran past {limit:?}: {text}{errs}");
    assert!(
        status.success(),
        "generator {args:?}: {status}\n{text}{errs}"
    );
    text.trim().to_string()
}

/// The flood generator. Every mode is bounded by a count and by a time limit (seconds), and
/// paces itself to a rate (packets per second) so that the daemon sees the flood instead of
/// the TAP queue dropping most of it. Prints what it sent.
const FLOODGEN: &str = r#"
import errno, os, random, socket, struct, sys, time

mode = sys.argv[1]
rng = random.Random(20240607)

def ip4(s):
    return struct.unpack("!I", socket.inet_aton(s))[0]

class Pacer:
    def __init__(self, rate, limit):
        self.rate, self.limit, self.t0 = rate, limit, time.monotonic()
    def over(self, i):
        """Sleeps while ahead of the rate; True once the time limit has passed."""
        if i % 64:
            return False
        el = time.monotonic() - self.t0
        if el > self.limit:
            return True
        ahead = i / self.rate - el
        if ahead > 0:
            time.sleep(ahead)
        return False
    def elapsed(self):
        return time.monotonic() - self.t0

def raw(iface):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    return s

def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    s += s >> 16
    return (~s) & 0xffff

if mode == "arp":
    # ARP requests for the vmknic's address from distinct senders across 198.18.0.0/15
    # (an odd stride walks the 2^17 addresses without repeating), each with a random
    # locally administered unicast MAC.
    iface, target, count, rate, limit, skip = sys.argv[2:8]
    count, rate, limit = int(count), float(rate), float(limit)
    skip = {ip4(a) for a in skip.split(",")}
    s, p, tgt = raw(iface), Pacer(rate, limit), socket.inet_aton(target)
    base, senders, sent, errors, i = ip4("198.18.0.0"), set(), 0, 0, 0
    while sent < count and not p.over(i):
        ip = base + (i * 48271) % (1 << 17)
        i += 1
        if ip in skip:
            continue
        mac = bytes([(rng.getrandbits(8) & 0xfc) | 0x02]) + rng.randbytes(5)
        f = (b"\xff" * 6 + mac + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1)
             + mac + struct.pack("!I", ip) + b"\0" * 6 + tgt)
        try:
            s.send(f)
            sent += 1
            senders.add(ip)
        except OSError:
            errors += 1
    print("sent=%d distinct_senders=%d errors=%d seconds=%.2f" % (sent, len(senders), errors, p.elapsed()))

elif mode == "nexthops":
    # UDP toward every host address of a /16 behind the stack (kernel socket in h1: the
    # kernel routes it via the stack), wrapping around after 65,534.
    net, count, rate, limit, skip = sys.argv[2:7]
    count, rate, limit = int(count), float(rate), float(limit)
    skip = {ip4(a) for a in skip.split(",")}
    s, p = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), Pacer(rate, limit)
    base, hosts, dsts, sent, errors, i = ip4(net), (1 << 16) - 2, set(), 0, 0, 0
    while sent < count and not p.over(i):
        ip = base + 1 + (i * 40503) % hosts
        i += 1
        if ip in skip:
            continue
        try:
            s.sendto(b"n" * 22, (socket.inet_ntoa(struct.pack("!I", ip)), 9))
            sent += 1
            dsts.add(ip)
        except OSError:
            errors += 1
    print("sent=%d distinct_next_hops=%d errors=%d seconds=%.2f" % (sent, len(dsts), errors, p.elapsed()))

elif mode == "small":
    # 64-byte frames (14 + 20 + 8 + 22) as fast as a kernel UDP socket goes, for `seconds`.
    dst, seconds, count = sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((dst, 9))
    payload, sent, errors, t0 = b"s" * 22, 0, 0, time.monotonic()
    while sent < count:
        if sent % 1024 == 0 and time.monotonic() - t0 > seconds:
            break
        try:
            s.send(payload)
            sent += 1
        except OSError:
            errors += 1
            sent += 1
    el = time.monotonic() - t0
    print("sent=%d errors=%d seconds=%.2f pps=%d" % (sent, errors, el, sent / el))

elif mode == "random":
    # Frames of random bytes, 1 to 1600 long: fully random, after our MAC, after an IPv4 or
    # ARP Ethernet header, and IPv4 headers with a valid checksum over random contents.
    iface, ours, count, rate, limit = sys.argv[2:7]
    count, rate, limit = int(count), float(rate), float(limit)
    ours = bytes.fromhex(ours.replace(":", ""))
    s, p, sent, errors, i = raw(iface), Pacer(rate, limit), 0, {}, 0
    while i < count and not p.over(i):
        n = rng.randint(1, 1600)
        body = rng.randbytes(n)
        src = rng.randbytes(6)
        k = i % 5
        i += 1
        if k == 0:
            f = body
        elif k == 1:
            f = (ours + body)[:n]
        elif k == 2:
            f = (ours + src + b"\x08\x00" + body)[:n]
        elif k == 3:
            f = (ours + src + b"\x08\x06" + body)[:n]
        else:
            plen = rng.randint(0, 1480)
            h = bytearray(rng.randbytes(20))
            h[0], h[2:4], h[6:8], h[10:12] = 0x45, struct.pack("!H", 20 + plen), b"\0\0", b"\0\0"
            if rng.random() < 0.5:
                h[16:20] = struct.pack("!I", ip4("198.18.0.0") + rng.getrandbits(17))
            h[10:12] = struct.pack("!H", csum(bytes(h)))
            f = ours + src + b"\x08\x00" + bytes(h) + rng.randbytes(plen)
        try:
            s.send(f)
            sent += 1
        except OSError as e:
            name = errno.errorcode.get(e.errno, str(e.errno))
            errors[name] = errors.get(name, 0) + 1
    err = ",".join("%s:%d" % kv for kv in sorted(errors.items())) or "-"
    print("frames=%d sent=%d refused_by_kernel=%s seconds=%.2f" % (i, sent, err, p.elapsed()))

elif mode == "connects":
    # Many concurrent TCP connects at a listener: batches of `conc` non-blocking connects,
    # held briefly, then reset (SO_LINGER 0).
    port, total, conc, limit = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    t0, done, alive, reset, pending = time.monotonic(), 0, 0, 0, 0
    linger = struct.pack("ii", 1, 0)
    while done < total and time.monotonic() - t0 < limit:
        batch = []
        for _ in range(min(conc, total - done)):
            c = socket.socket()
            c.setblocking(False)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            c.connect_ex(("127.0.0.1", port))
            batch.append(c)
        time.sleep(0.05)
        for c in batch:
            err = c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            try:
                c.getpeername()
                alive += 1
            except OSError:
                if err in (0, errno.EINPROGRESS, errno.EAGAIN):
                    pending += 1
                else:
                    reset += 1
            c.close()
        done += len(batch)
    print("connects=%d open_after_50ms=%d reset=%d pending=%d seconds=%.2f"
          % (done, alive, reset, pending, time.monotonic() - t0))

elif mode == "echo-client":
    # One normal connection through the forward; retried until `limit` (connections of the
    # flood may still hold the forward's slots for a moment).
    port, limit = int(sys.argv[2]), float(sys.argv[3])
    t0, attempts = time.monotonic(), 0
    while True:
        attempts += 1
        try:
            c = socket.create_connection(("127.0.0.1", port), timeout=3)
            c.sendall(b"hello through the flood")
            c.shutdown(socket.SHUT_WR)
            got = b""
            while True:
                d = c.recv(4096)
                if not d:
                    break
                got += d
            c.close()
            if got == b"hello through the flood":
                print("ok attempts=%d seconds=%.2f" % (attempts, time.monotonic() - t0))
                break
        except OSError:
            pass
        if time.monotonic() - t0 > limit:
            print("failed attempts=%d" % attempts)
            break
        time.sleep(0.2)
else:
    sys.exit("unknown mode " + mode)
"#;

/// A threaded echo server for the forward's far side (in h2).
const ECHO: &str = r#"
import socket, threading, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(128)
def serve(c):
    try:
        while True:
            d = c.recv(65536)
            if not d:
                break
            c.sendall(d)
    except OSError:
        pass
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// One vmknic's counters from `stats --json`.
#[derive(Debug, Clone, Default)]
struct Snapshot {
    rx: u64,
    tx: u64,
    forwarded: u64,
    icmp_errors: u64,
    drops: BTreeMap<String, u64>,
}

/// Runs `stats --json`; returns how long it took and the counters by vmknic. Panics unless it
/// succeeds.
fn stats(socket: &str) -> (Duration, BTreeMap<String, Snapshot>) {
    let t = Instant::now();
    let o = common::cli(socket, &["stats", "--json"]);
    let took = t.elapsed();
    assert!(o.status.success(), "stats: {}", common::describe(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stats JSON");
    let mut out = BTreeMap::new();
    for nic in v.as_array().expect("stats array") {
        let c = &nic["counters"];
        let n = |k: &str| c[k].as_u64().unwrap_or(0);
        let drops = c["drops"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|d| Some((d[0].as_str()?.to_string(), d[1].as_u64()?)))
                    .collect()
            })
            .unwrap_or_default();
        let snap = Snapshot {
            rx: n("rx_packets"),
            tx: n("tx_packets"),
            forwarded: n("forwarded"),
            icmp_errors: n("icmp_errors"),
            drops,
        };
        out.insert(nic["vmknic"].as_str().unwrap_or("?").to_string(), snap);
    }
    (took, out)
}

/// `after - before` for every vmknic, as one printable line per vmknic.
fn delta(before: &BTreeMap<String, Snapshot>, after: &BTreeMap<String, Snapshot>) -> String {
    let mut lines = Vec::new();
    for (nic, a) in after {
        let b = before.get(nic).cloned().unwrap_or_default();
        let drops: Vec<String> = a
            .drops
            .iter()
            .filter_map(|(r, n)| {
                let d = n.saturating_sub(b.drops.get(r).copied().unwrap_or(0));
                (d > 0).then(|| format!("{r}:{d}"))
            })
            .collect();
        lines.push(format!(
            "  {nic}: rx={} tx={} forwarded={} icmp_errors={} drops={}",
            a.rx.saturating_sub(b.rx),
            a.tx.saturating_sub(b.tx),
            a.forwarded.saturating_sub(b.forwarded),
            a.icmp_errors.saturating_sub(b.icmp_errors),
            if drops.is_empty() {
                "-".to_string()
            } else {
                drops.join(",")
            }
        ));
    }
    lines.join("\n")
}

/// One drop counter's increase on `nic` between two snapshots.
fn drop_delta(
    before: &BTreeMap<String, Snapshot>,
    after: &BTreeMap<String, Snapshot>,
    nic: &str,
    reason: &str,
) -> u64 {
    let get = |m: &BTreeMap<String, Snapshot>| {
        m.get(nic)
            .and_then(|s| s.drops.get(reason).copied())
            .unwrap_or(0)
    };
    get(after).saturating_sub(get(before))
}

/// The neighbour table: entry count and counts by state.
fn neighbors(socket: &str) -> (usize, BTreeMap<String, usize>) {
    let o = common::cli(socket, &["neighbor", "list", "--json"]);
    assert!(
        o.status.success(),
        "neighbor list: {}",
        common::describe(&o)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("neighbor JSON");
    let list = v.as_array().expect("neighbor array");
    let mut by_state = BTreeMap::new();
    for n in list {
        *by_state
            .entry(n["state"].as_str().unwrap_or("?").to_string())
            .or_insert(0) += 1;
    }
    (list.len(), by_state)
}

/// Neighbour entries on vmk0 outside its subnet (198.18.0.0/16): there must be none.
fn off_subnet_on_vmk0(socket: &str) -> Vec<String> {
    let o = common::cli(socket, &["neighbor", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("neighbor JSON");
    v.as_array()
        .expect("neighbor array")
        .iter()
        .filter(|n| n["vmknic"] == "vmk0")
        .filter_map(|n| n["ip"].as_str())
        .filter(|ip| !ip.starts_with("198.18."))
        .map(str::to_string)
        .collect()
}

/// Gives h1 a further address `addr` on vmk0 and pings h2 from it: the stack must resolve
/// a neighbour it has never seen to forward the answers. True if any answer came.
fn newcomer_reaches_h2(lab: &Lab, addr: &str) -> bool {
    lab.ns("h1")
        .ip(&["addr", "add", &format!("{addr}/16"), "dev", "vmk0"]);
    let args = ["-c", "3", "-i", "0.3", "-W", "2", "-q", "-I", addr, H2];
    lab.ns("h1").exec("ping", &args).status.success()
}

/// (VmRSS, VmHWM) of `pid` in KiB.
fn rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// What the monitor saw while a flood ran.
#[derive(Debug, Default)]
struct Watch {
    samples: u32,
    failed: u32,
    slowest: Duration,
    max_rss_kib: u64,
    max_neighbors: usize,
}

/// Runs `flood` while a second thread asks `stats`, samples the daemon's RSS and counts its
/// neighbours every 200 ms. Returns the flood's result and what the monitor saw, after
/// checking that every `stats` answered within [`FLOOD_STATS_BOUND`] and the neighbour table
/// stayed bounded.
fn watched<T>(socket: &str, pid: u32, flood: impl FnOnce() -> T) -> (T, Watch) {
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let monitor = s.spawn(|| {
            let mut w = Watch::default();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let o = common::cli(socket, &["stats", "--json"]);
                w.slowest = w.slowest.max(t.elapsed());
                w.samples += 1;
                if !o.status.success() {
                    w.failed += 1;
                }
                w.max_rss_kib = w.max_rss_kib.max(rss(pid).0);
                w.max_neighbors = w.max_neighbors.max(neighbors(socket).0);
                std::thread::sleep(Duration::from_millis(200));
            }
            w
        });
        let out = flood();
        stop.store(true, Ordering::Relaxed);
        let w = monitor.join().expect("monitor thread");
        assert!(
            w.failed == 0 && w.slowest < FLOOD_STATS_BOUND,
            "stats during a flood: {}",
            describe_watch(&w)
        );
        assert!(
            w.max_neighbors <= NEIGHBOR_BOUND,
            "during a flood: {} neighbour entries (bound {NEIGHBOR_BOUND})",
            w.max_neighbors
        );
        (out, w)
    })
}

/// After a flood: h1 pings h2 through the stack without loss, `stats` answers within 1 s,
/// and the neighbour table is bounded. Returns the counters and a report line.
fn check_alive(lab: &Lab, pid: u32, phase: &str) -> (BTreeMap<String, Snapshot>, String) {
    // The kernel's queue into h1's TAP may still hold the flood's tail (hundreds of
    // thousands of frames were dropped there): let the first ping get through, within 5 s,
    // then require five in a row without loss.
    let recovered = wait_until(Duration::from_secs(5), || {
        lab.ns("h1")
            .exec("ping", &["-c", "1", "-W", "1", "-q", H2])
            .status
            .success()
    });
    assert!(
        recovered,
        "after {phase}: h1 cannot reach h2 through the stack within 5 s"
    );
    let o = lab
        .ns("h1")
        .exec("ping", &["-c", "5", "-i", "0.2", "-W", "2", "-q", H2]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.status.success() && text.contains(" 0% packet loss"),
        "after {phase}: h1 -> h2 through the stack lost packets:\n{text}"
    );
    let (took, snap) = stats(&lab.socket());
    assert!(
        took < STATS_BOUND,
        "after {phase}: stats took {took:?} (bound {STATS_BOUND:?})"
    );
    let (n, by_state) = neighbors(&lab.socket());
    assert!(
        n <= NEIGHBOR_BOUND,
        "after {phase}: {n} neighbour entries (bound {NEIGHBOR_BOUND}): {by_state:?}"
    );
    let (now, hwm) = rss(pid);
    let report = format!(
        "  after: ping 5/5, stats in {} ms, neighbours {n} {by_state:?}, RSS {now} KiB \
         (peak {hwm} KiB)",
        took.as_millis()
    );
    (snap, report)
}

fn describe_watch(w: &Watch) -> String {
    format!(
        "  during: {} stats calls, {} failed, slowest {} ms, max RSS {} KiB, max neighbours {}",
        w.samples,
        w.failed,
        w.slowest.as_millis(),
        w.max_rss_kib,
        w.max_neighbors
    )
}

#[test]
fn floods_do_not_stop_forwarding_or_control() {
    let Some(()) = require_root("floods_do_not_stop_forwarding_or_control") else {
        return;
    };
    let started = Instant::now();
    let lab = flood_lab("floods");
    let daemon = lab.start();
    let pid = daemon.pid();
    let sock = lab.socket();
    let mut report = Vec::new();

    // Baseline: h1 and h2 reach each other through the stack, so both are known neighbours.
    assert!(
        wait_until(Duration::from_secs(15), || {
            lab.ns("h1")
                .exec("ping", &["-c", "1", "-W", "1", H2])
                .status
                .success()
        }),
        "h1 never reached h2 through the stack: {}",
        lab.log()
    );
    // The probe used after the ARP flood works on a fresh stack: a new host on vmk0's
    // subnet is resolved and reaches h2.
    assert!(
        newcomer_reaches_h2(&lab, "198.18.1.21"),
        "a new host on vmk0's subnet cannot reach h2 before any flood"
    );
    let (mut before, line) = check_alive(&lab, pid, "setup");
    report.push(format!("baseline (RSS {} KiB)\n{line}", rss(pid).0));

    // 1. 100k datagrams toward the 65,534 next hops of vmk1's /16 (h2 and the vmknic
    // excepted): the table fills with unresolved entries, the rest is dropped and counted.
    let (out, w) = watched(&sock, pid, || {
        generator(
            &lab,
            lab.ns("h1"),
            &[
                "nexthops",
                "198.19.0.0",
                "100000",
                "40000",
                "15",
                "198.19.0.1,198.19.0.10",
            ],
            Duration::from_secs(30),
        )
    });
    // Let resolutions time out (3.5 s) so that their drops are counted too.
    let (n, _) = neighbors(&sock);
    assert!(
        n <= NEIGHBOR_BOUND,
        "{n} neighbour entries after the next-hop flood"
    );
    std::thread::sleep(Duration::from_secs(4));
    let (after, line) = check_alive(&lab, pid, "next-hop flood");
    let unresolved = drop_delta(&before, &after, "vmk0", "queue_full")
        + drop_delta(&before, &after, "vmk1", "queue_full")
        + drop_delta(&before, &after, "vmk0", "neighbor_unreachable")
        + drop_delta(&before, &after, "vmk1", "neighbor_unreachable");
    assert!(
        unresolved > 0,
        "no queue_full/neighbor_unreachable drops:\n{}",
        delta(&before, &after)
    );
    report.push(format!(
        "1. next hops: {out}; neighbours right after: {n}\n{}\n{}\n{line}",
        delta(&before, &after),
        describe_watch(&w)
    ));
    before = after;

    // 2. ARP flood: 100k requests for vmk0's address from distinct senders across
    // 198.18.0.0/15 (the lab's own addresses excepted) with random MACs. Only senders on
    // vmk0's subnet may be learned, and the table stays bounded.
    let (out, w) = watched(&sock, pid, || {
        generator(
            &lab,
            lab.ns("h1"),
            &[
                "arp",
                "vmk0",
                "198.18.1.1",
                "100000",
                "40000",
                "15",
                "198.18.1.1,198.18.1.10,198.18.1.20,198.19.0.1,198.19.0.10",
            ],
            Duration::from_secs(30),
        )
    });
    let (after, line) = check_alive(&lab, pid, "ARP flood");
    let off = off_subnet_on_vmk0(&sock);
    assert!(
        off.is_empty(),
        "learned off-subnet senders on vmk0: {off:?}"
    );
    // A host that appears after the flood is still resolved: ARP senders fill only free
    // slots, while traffic we need evicts the longest-known entry.
    let newcomer = newcomer_reaches_h2(&lab, "198.18.1.20");
    assert!(newcomer, "a new host cannot reach h2 after the ARP flood");
    let later = stats(&sock).1;
    report.push(format!(
        "2. ARP flood: {out}\n{}\n{}\n{line}\n  a new host (198.18.1.20) after the flood \
         reaches h2: {newcomer} (vmk0 queue_full meanwhile: {})",
        delta(&before, &after),
        describe_watch(&w),
        drop_delta(&after, &later, "vmk0", "queue_full")
    ));
    before = later;

    // 3. 64-byte frames from h1 to h2 above capacity for 3 s.
    let (out, w) = watched(&sock, pid, || {
        generator(
            &lab,
            lab.ns("h1"),
            &["small", H2, "3", "3000000"],
            Duration::from_secs(20),
        )
    });
    let (after, line) = check_alive(&lab, pid, "64-byte flood");
    let fwd = after
        .get("vmk1")
        .map_or(0, |s| s.forwarded)
        .saturating_sub(before.get("vmk1").map_or(0, |s| s.forwarded));
    assert!(fwd > 0, "nothing forwarded during the 64-byte flood");
    let tap_drops = lab.ns("h1").ip(&["-s", "-o", "link", "show", "vmk0"]);
    report.push(format!(
        "3. 64-byte frames: {out}; forwarded to h2 {fwd}\n{}\n{}\n{line}\n  h1's side of \
         the TAP: {}",
        delta(&before, &after),
        describe_watch(&w),
        common::squeeze(&tap_drops)
    ));
    before = after;

    // 4. A connect flood at a forward listener with a small connection limit; afterwards a
    // normal connection through the forward works.
    let port = FWD_PORT.to_string();
    let _echo = lab.ns("h2").spawn("python3", &["-c", ECHO, H2, &port]);
    assert!(wait_until(Duration::from_secs(10), || {
        lab.ns("h2")
            .run("ss", &["-ltn"])
            .contains(&format!("{H2}:{port}"))
    }));
    let listen = format!("127.0.0.1:{port}");
    let o = common::cli(
        &sock,
        &[
            "forward",
            &listen,
            &format!("{H2}:{port}"),
            "--max-connections",
            "4",
        ],
    );
    assert!(o.status.success(), "forward: {}", common::describe(&o));
    assert!(wait_until(Duration::from_secs(10), || {
        lab.stack.run("ss", &["-ltn"]).contains(&listen)
    }));
    let (out, w) = watched(&sock, pid, || {
        generator(
            &lab,
            &lab.stack,
            &["connects", &port, "4000", "200", "15"],
            Duration::from_secs(30),
        )
    });
    let client = generator(
        &lab,
        &lab.stack,
        &["echo-client", &port, "15"],
        Duration::from_secs(30),
    );
    assert!(
        client.starts_with("ok"),
        "no normal connection through the forward after the flood: {client}\n{}",
        lab.log()
    );
    let (after, line) = check_alive(&lab, pid, "connect flood");
    let o = common::cli(&sock, &["forward", "list", "--json"]);
    let fl: serde_json::Value = serde_json::from_slice(&o.stdout).expect("forward JSON");
    report.push(format!(
        "4. connect flood: {out}; then a normal connection: {client}; forward accepted={} \
         refused={} active={}\n{}\n{}\n{line}",
        fl[0]["accepted"],
        fl[0]["refused"],
        fl[0]["active"],
        delta(&before, &after),
        describe_watch(&w)
    ));
    before = after;

    // 5. Frames of random bytes, 1 to 1600 long (h1's side of the TAP takes 1600-byte
    // frames for the length of the phase).
    lab.ns("h1").ip(&["link", "set", "vmk0", "mtu", "1600"]);
    let (out, w) = watched(&sock, pid, || {
        generator(
            &lab,
            lab.ns("h1"),
            &["random", "vmk0", VMK0_MAC, "30000", "20000", "10"],
            Duration::from_secs(25),
        )
    });
    lab.ns("h1").ip(&["link", "set", "vmk0", "mtu", "1500"]);
    let (after, line) = check_alive(&lab, pid, "random frames");
    report.push(format!(
        "5. random frames: {out}\n{}\n{}\n{line}",
        delta(&before, &after),
        describe_watch(&w)
    ));

    let (now, hwm) = rss(pid);
    let log = lab.log();
    let status = daemon.stop();
    eprintln!(
        "floods (in {:.1} s):\n{}\npeak RSS (VmHWM) {hwm} KiB = {:.1} MiB, RSS at the end \
         {now} KiB; daemon log {} lines, {} bytes; daemon {status}",
        started.elapsed().as_secs_f64(),
        report.join("\n"),
        hwm as f64 / 1024.0,
        log.lines().count(),
        log.len()
    );
    assert!(hwm > 0, "cannot read the daemon's VmHWM");
    assert!(
        hwm < RSS_BOUND_KIB,
        "peak RSS {hwm} KiB exceeds {RSS_BOUND_KIB} KiB"
    );
    assert!(status.success(), "daemon exit {status}: {}", lab.log());
}
