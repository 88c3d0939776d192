//! Root only (all but one test). The data plane with real TAP devices in namespaces these
//! tests create (skipped with `SKIPPED (needs root)` outside CI, a failure inside CI when not
//! root).
//!
//! Lab: the daemon runs in namespace `stack`; vmk0's TAP is moved into host namespace `h1`
//! (198.18.1.0/24) and vmk1's into `h2` (198.18.2.0/24).

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::counters::{counter, counters, drops};
use common::fixtures;
use common::lab::Lab;
use common::{require_root, wait_until, Netns, Proc, Scratch};

const VMK0_MAC: &str = "02:00:00:00:01:01";
const VMK1_MAC: &str = "02:00:00:00:02:01";

/// Two hosts on two vmknic subnets, quiet wires (the drop counters count only what a test
/// sends), the daemon logging at debug; `offloads` goes into the configuration.
fn two_hosts(tag: &str, offloads: bool) -> Lab {
    Lab::builder(&format!("{tag}-{}", if offloads { "on" } else { "off" }))
        .tap_host("h1", "vmk0", "198.18.1.10/24")
        .route("h1", "default", "198.18.1.1")
        .tap_host("h2", "vmk1", "198.18.2.10/24")
        .route("h2", "default", "198.18.2.1")
        .quiet()
        .log_level("debug")
        .build()
}

/// Writes the two-vmknic configuration into `lab`.
fn config(lab: &Lab, offloads: bool, forwarding: bool, vmk1_mtu: u16, extra: &str) {
    lab.write_config(&format!(
        r#"forwarding = {forwarding}
offloads = {offloads}
{extra}
[[vmknic]]
name = "vmk0"
portgroup = "A"
ip = "198.18.1.1/24"
mac = "{VMK0_MAC}"
netns = "{h1}"

[[vmknic]]
name = "vmk1"
portgroup = "B"
ip = "198.18.2.1/24"
mac = "{VMK1_MAC}"
mtu = {vmk1_mtu}
netns = "{h2}"
"#,
        h1 = lab.ns("h1").name,
        h2 = lab.ns("h2").name,
    ));
}

fn ping(ns: &Netns, args: &[&str]) -> (bool, String) {
    let o = ns.exec("ping", args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), text)
}

/// Pings until one answer arrives (ARP and the TAPs take a moment to settle).
fn ping_ok(ns: &Netns, dst: &str) -> String {
    let mut last = String::new();
    let ok = wait_until(Duration::from_secs(10), || {
        let (ok, text) = ping(ns, &["-c", "1", "-W", "1", dst]);
        last = text;
        ok
    });
    assert!(ok, "no answer from {dst} in {}: {last}", ns.name);
    last
}

/// The data-plane tests run twice: with the TAPs' checksum/TSO offloads on (the default)
/// and off.
macro_rules! with_and_without_offloads {
    ($($name:ident),* $(,)?) => {
        $(mod $name {
            #[test]
            fn offloads_on() {
                super::$name(true)
            }

            #[test]
            fn offloads_off() {
                super::$name(false)
            }
        })*
    };
}

with_and_without_offloads!(
    vmknics_answer_ping_and_hosts_learn_their_macs,
    forwards_ping_and_tcp_with_ttl_decrement,
    forwarding_off_nothing_crosses,
    icmp_errors_and_fragmentation,
    unresolvable_next_hop_gets_host_unreachable_and_first_packet_waits_for_arp,
    malformed_frames_are_counted_and_never_forwarded
);

fn vmknics_answer_ping_and_hosts_learn_their_macs(offloads: bool) {
    let Some(()) = require_root("vmknics_answer_ping_and_hosts_learn_their_macs") else {
        return;
    };
    let lab = two_hosts("ping", offloads);
    config(&lab, offloads, false, 1500, "");
    let daemon = lab.start();
    ping_ok(lab.ns("h1"), "198.18.1.1");
    ping_ok(lab.ns("h2"), "198.18.2.1");
    // The far vmknic's address is local to the stack, so it answers even with forwarding off.
    ping_ok(lab.ns("h1"), "198.18.2.1");
    let neigh = lab.ns("h1").ip(&["neigh", "show", "198.18.1.1"]);
    assert!(neigh.contains(VMK0_MAC), "h1 learned {neigh}");
    let neigh = lab.ns("h2").ip(&["neigh", "show", "198.18.2.1"]);
    assert!(neigh.contains(VMK1_MAC), "h2 learned {neigh}");
    // The TAP I/O the configuration asked for (system calls by default) is the one running.
    let io = std::env::var("VMKSTACK_TEST_IO").unwrap_or_else(|_| "syscalls".into());
    let log = lab.log();
    assert_eq!(log.matches(&format!("io=\"{io}\"")).count(), 2, "{log}");
    let status = daemon.stop();
    assert!(status.success(), "daemon exit {status}: {}", lab.log());
    // Every TAP went with the daemon.
    assert!(!lab
        .ns("h1")
        .exec("ip", &["link", "show", "vmk0"])
        .status
        .success());
    assert!(!lab
        .ns("h2")
        .exec("ip", &["link", "show", "vmk1"])
        .status
        .success());
}

fn forwards_ping_and_tcp_with_ttl_decrement(offloads: bool) {
    let Some(()) = require_root("forwards_ping_and_tcp_with_ttl_decrement") else {
        return;
    };
    let lab = two_hosts("fwd", offloads);
    config(&lab, offloads, true, 1500, "");
    let daemon = lab.start();
    ping_ok(lab.ns("h1"), "198.18.2.10");
    let (ok, out) = ping(lab.ns("h1"), &["-c", "3", "-i", "0.2", "198.18.2.10"]);
    assert!(ok, "{out}");
    // h2 answers with TTL 64; one router hop later h1 sees 63.
    assert!(out.contains("ttl=63"), "{out}");

    // A TCP stream through the stack, both ways in one: iperf3.
    let server = lab
        .ns("h2")
        .spawn("iperf3", &["-s", "-1", "-B", "198.18.2.10", "-p", "5201"]);
    assert!(wait_until(Duration::from_secs(5), || {
        lab.ns("h2")
            .run("ss", &["-ltn"])
            .contains("198.18.2.10:5201")
    }));
    let out = lab.ns("h1").run(
        "iperf3",
        &["-c", "198.18.2.10", "-p", "5201", "-t", "2", "-f", "m"],
    );
    eprintln!("iperf3 through vmkstack:\n{out}");
    let receiver = out
        .lines()
        .find(|l| l.contains("receiver"))
        .unwrap_or_else(|| panic!("no receiver line: {out}"));
    let mbits: f64 = receiver
        .split_whitespace()
        .zip(receiver.split_whitespace().skip(1))
        .find_map(|(v, unit)| (unit == "Mbits/sec").then(|| v.parse().ok()).flatten())
        .unwrap_or(0.0);
    assert!(mbits > 1.0, "TCP through the stack: {receiver}");
    drop(server);
    let status = daemon.stop();
    assert!(status.success(), "{}", lab.log());
    let vmk1 = counters(&lab.log(), "vmk1").to_string();
    assert!(counter(&vmk1, "forwarded") > 100, "{vmk1}");
}

fn forwarding_off_nothing_crosses(offloads: bool) {
    let Some(()) = require_root("forwarding_off_nothing_crosses") else {
        return;
    };
    let lab = two_hosts("nofwd", offloads);
    config(&lab, offloads, false, 1500, "");
    let daemon = lab.start();
    ping_ok(lab.ns("h1"), "198.18.1.1");
    let (ok, out) = ping(
        lab.ns("h1"),
        &["-c", "2", "-i", "0.2", "-W", "1", "198.18.2.10"],
    );
    assert!(!ok, "crossed with forwarding off: {out}");
    // UDP does not cross either: h2 hears nothing.
    let recv = r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("198.18.2.10", 9998))
s.settimeout(2)
try:
    s.recvfrom(65535)
    print("got")
except socket.timeout:
    print("none")
"#;
    let receiver = lab
        .ns("h2")
        .command("python3", &["-c", recv])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 receiver");
    assert!(wait_until(Duration::from_secs(5), || {
        lab.ns("h2")
            .run("ss", &["-lun"])
            .contains("198.18.2.10:9998")
    }));
    let send = "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
                for _ in range(5): s.sendto(b'x' * 32, ('198.18.2.10', 9998))\n";
    lab.ns("h1").run("python3", &["-c", send]);
    let out = receiver.wait_with_output().expect("receiver");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "none");
    let status = daemon.stop();
    assert!(status.success());
    let log = lab.log();
    assert!(
        drops(counters(&log, "vmk0"), "forwarding_off") >= 2,
        "{log}"
    );
    assert_eq!(counter(counters(&log, "vmk1"), "forwarded"), 0);
}

fn icmp_errors_and_fragmentation(offloads: bool) {
    let Some(()) = require_root("icmp_errors_and_fragmentation") else {
        return;
    };
    let lab = two_hosts("icmp", offloads);
    config(&lab, offloads, true, 1280, "");
    let _daemon = lab.start();
    ping_ok(lab.ns("h1"), "198.18.2.10");

    // A 1400-byte UDP datagram without DF crosses the 1280-byte vmk1 in fragments that the
    // stack makes, and arrives whole. (First: after the DF ping below, h1 would know the path
    // MTU and fragment by itself.)
    let recv = r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("198.18.2.10", 9999))
s.settimeout(5)
data, peer = s.recvfrom(65535)
print(len(data), data[:4].decode(), data[-4:].decode())
"#;
    let send = r#"
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, 10, 0)  # IP_MTU_DISCOVER = IP_PMTUDISC_DONT: no DF
payload = b"HEAD" + b"x" * 1392 + b"TAIL"
for _ in range(3):
    s.sendto(payload, ("198.18.2.10", 9999))
    time.sleep(0.2)
"#;
    let receiver = lab
        .ns("h2")
        .command("python3", &["-c", recv])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 receiver");
    assert!(wait_until(Duration::from_secs(5), || {
        lab.ns("h2")
            .run("ss", &["-lun"])
            .contains("198.18.2.10:9999")
    }));
    lab.ns("h1").run("python3", &["-c", send]);
    let out = receiver.wait_with_output().expect("receiver output");
    let got = String::from_utf8_lossy(&out.stdout);
    assert_eq!(got.trim(), "1400 HEAD TAIL", "{}", lab.log());
    // It arrived in pieces that h2 reassembled: the stack fragmented it.
    let reasm = lab.ns("h2").run("nstat", &["-az", "IpReasmOKs"]);
    let oks: u64 = reasm
        .lines()
        .find_map(|l| l.strip_prefix("IpReasmOKs"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    assert!(oks >= 1, "h2 reassembled nothing: {reasm}");

    let (ok, out) = ping(
        lab.ns("h1"),
        &["-c", "1", "-W", "2", "-t", "1", "198.18.2.10"],
    );
    assert!(
        !ok && out.contains("From 198.18.1.1") && out.contains("Time to live exceeded"),
        "{out}"
    );

    let (ok, out) = ping(lab.ns("h1"), &["-c", "1", "-W", "2", "198.19.99.1"]);
    assert!(
        !ok && out.contains("From 198.18.1.1") && out.contains("Destination Net Unreachable"),
        "{out}"
    );

    let (ok, out) = ping(
        lab.ns("h1"),
        &[
            "-c",
            "1",
            "-W",
            "2",
            "-M",
            "do",
            "-s",
            "1300",
            "198.18.2.10",
        ],
    );
    assert!(!ok && out.contains("mtu = 1280"), "{out}");
}

fn unresolvable_next_hop_gets_host_unreachable_and_first_packet_waits_for_arp(offloads: bool) {
    let Some(()) = require_root("unresolvable_next_hop_gets_host_unreachable") else {
        return;
    };
    let lab = two_hosts("hostunreach", offloads);
    config(&lab, offloads, true, 1500, "");
    let daemon = lab.start();
    ping_ok(lab.ns("h1"), "198.18.1.1");
    // Nobody has 198.18.2.99: ARP gives up after about 3.5 s and the sender hears why.
    let (ok, out) = ping(lab.ns("h1"), &["-c", "1", "-W", "8", "198.18.2.99"]);
    assert!(
        !ok && out.contains("From 198.18.1.1") && out.contains("Destination Host Unreachable"),
        "{out}"
    );
    // h2 has never talked to the stack: its first ping waits in the neighbour queue while
    // ARP resolves h2, and is answered (no loss on the first packet).
    lab.ns("h2").ip(&["neigh", "flush", "all"]);
    let (ok, out) = ping(lab.ns("h1"), &["-c", "1", "-W", "3", "198.18.2.10"]);
    assert!(ok && out.contains("1 received"), "{out}");
    let status = daemon.stop();
    assert!(status.success());
    let log = lab.log();
    assert!(
        drops(counters(&log, "vmk1"), "neighbor_unreachable") >= 1,
        "{log}"
    );
}

#[test]
fn article_config_starts_with_gateway_message() {
    let Some(()) = require_root("article_config_starts_with_gateway_message") else {
        return;
    };
    // The article's configuration on lab addresses: the gateway is on neither vmknic subnet.
    let lab = Lab::builder("article")
        .tap_host("h1", "vmk0", "198.18.1.10/24")
        .tap_host("h2", "vmk1", "198.18.2.10/24")
        .quiet()
        .log_level("debug")
        .build();
    lab.write_config(&fixtures::article(&lab.ns("h1").name, &lab.ns("h2").name));
    let daemon = lab.start();
    ping_ok(lab.ns("h1"), fixtures::VMK0_IP);
    ping_ok(lab.ns("h2"), fixtures::VMK1_IP);
    let status = daemon.stop();
    assert!(status.success());
    let log = lab.log();
    assert!(log.lines().any(|l| l == fixtures::GATEWAY_MSG), "{log}");
}

fn malformed_frames_are_counted_and_never_forwarded(offloads: bool) {
    let Some(()) = require_root("malformed_frames_are_counted_and_never_forwarded") else {
        return;
    };
    let lab = two_hosts("malformed", offloads);
    config(&lab, offloads, true, 1500, "");
    let daemon = lab.start();
    ping_ok(lab.ns("h1"), "198.18.1.1");
    let h1_mac = lab
        .ns("h1")
        .ip(&["-br", "link", "show", "vmk0"])
        .split_whitespace()
        .nth(2)
        .expect("h1 MAC")
        .to_string();
    // Every frame targets h2 (198.18.2.10): forwarding any of them would reach vmk1.
    let inject = format!(
        r#"
import socket, struct
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return (~s) & 0xffff
def ip(ihl=5, opts=b"", frag=0, bad_sum=False, total=None, payload=b"U" * 16, src="198.18.1.10"):
    hlen = ihl * 4
    tot = total if total is not None else 20 + len(opts) + len(payload)
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, tot, 1, frag, 64, 17, 0,
                    socket.inet_aton(src), socket.inet_aton("198.18.2.10")) + opts
    c = csum(h[:max(hlen, 20)] if len(h) >= hlen else h)
    if bad_sum: c ^= 0x5555
    h = h[:10] + struct.pack("!H", c) + h[12:]
    return h + payload
ours = bytes.fromhex("{vmk0}".replace(":", ""))
src = bytes.fromhex("{h1}".replace(":", ""))
eth = lambda dst, t: dst + src + struct.pack("!H", t)
arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + src + socket.inet_aton("198.18.1.10") + b"\0" * 6 + socket.inet_aton("198.18.1.77")
frames = [
    eth(ours, 0x0800)[:14] + b"\x45\x00",                  # truncated
    eth(ours, 0x0800) + ip(total=200),                     # total length beyond the frame
    eth(ours, 0x0800) + ip(ihl=4),                         # bad IHL
    eth(ours, 0x0800) + ip(bad_sum=True),                  # bad header checksum
    eth(ours, 0x0800) + ip(ihl=6, opts=b"\x01\x01\x01\x00"),  # IP options
    eth(ours, 0x0800) + ip(frag=0x2000, payload=b"U" * 13),  # MF with a ragged payload
    eth(ours, 0x0800) + ip(frag=0x1fff),                   # a fragment ending past 65535
    eth(ours, 0x88b5) + b"\0" * 46,                        # unknown ethertype
    eth(b"\xff" * 6, 0x0806) + arp,                        # ARP for another host
    eth(bytes.fromhex("020000009999"), 0x0800) + ip(),     # another MAC
    eth(ours, 0x0806) + b"\0" * 5,                         # garbage ARP
    eth(b"\xff" * 6, 0x0800) + ip(),                       # unicast IP in a broadcast frame
    eth(ours, 0x0800) + ip(src="127.0.0.1"),               # martian source
    eth(ours, 0x0800) + ip(src="198.18.2.1"),              # our own address as source
]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("vmk0", 0))
for _ in range(3):
    for f in frames:
        s.send(f)
"#,
        vmk0 = VMK0_MAC,
        h1 = h1_mac,
    );
    lab.ns("h1").run("python3", &["-c", &inject]);
    // Still alive and answering.
    ping_ok(lab.ns("h1"), "198.18.1.1");
    let status = daemon.stop();
    assert!(status.success(), "{}", lab.log());
    let log = lab.log();
    let vmk0 = counters(&log, "vmk0");
    // Each frame was sent three times; two kinds of frame count as bad_ipv4 and two as
    // fragment, three as martian.
    for (reason, want) in [
        ("truncated", 3),
        ("bad_ipv4", 6),
        ("bad_checksum", 3),
        ("ip_options", 3),
        ("fragment", 6),
        ("unknown_ethertype", 3),
        ("arp_not_for_us", 3),
        ("not_for_us", 3),
        ("bad_arp", 3),
        ("martian", 9),
    ] {
        // The host's own multicast (an IGMP report after link-up) lands in not_for_us too.
        if reason == "not_for_us" {
            let n = drops(vmk0, reason);
            assert!((want..want + 3).contains(&n), "{reason}: {vmk0}");
            continue;
        }
        assert_eq!(drops(vmk0, reason), want, "{reason}: {vmk0}");
    }
    assert_eq!(counter(counters(&log, "vmk1"), "forwarded"), 0, "{log}");
}

#[test]
fn second_daemon_on_same_control_path_is_refused_and_stale_socket_is_replaced() {
    // No vmknics: no TAPs, so this runs without root too.
    let dir = Scratch::new("lock");
    let cfg = dir.file("empty.toml");
    std::fs::write(&cfg, "forwarding = false\n").expect("config");
    let ctl = dir.file("ctl.sock");
    // A stale socket file from a killed daemon: bound, then abandoned.
    drop(std::os::unix::net::UnixListener::bind(&ctl).expect("stale socket"));
    assert!(ctl.exists());
    let spawn = || {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_vmkstack"));
        c.args([
            "daemon",
            "--config",
            cfg.to_str().unwrap(),
            "--control",
            ctl.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        c
    };
    let first = Proc::spawn(spawn());
    // Ready when the socket answers (the stale one refuses connections).
    assert!(wait_until(Duration::from_secs(5), || {
        std::os::unix::net::UnixStream::connect(&ctl).is_ok()
    }));
    let second = spawn().output().expect("second daemon");
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    // The refusal names the first daemon by its PID (written into the lock file).
    assert!(
        err.contains(&format!(
            "another vmkstack daemon (PID {}) is running on",
            first.pid()
        )),
        "{err}"
    );
    let status = first.stop();
    assert!(status.success(), "{status}");
    assert!(!ctl.exists(), "socket removed on shutdown");
    assert!(
        !dir.file("ctl.sock.lock").exists(),
        "lock file removed on shutdown"
    );

    // The daemon kept a last good copy; a corrupt file is refused, naming it, and the copy
    // is left alone.
    let good = dir.file("empty.toml.last-good");
    assert!(good.exists(), "last good copy");
    std::fs::write(&cfg, "forwarding = tru").expect("corrupt");
    let out = spawn().output().expect("daemon");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("empty.toml") && err.contains("last-good"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&good).unwrap_or_default(),
        "netstack = \"defaultTcpipStack\"\nforwarding = false\noffloads = true\n"
    );
    std::fs::write(&cfg, "forwarding = false\n").expect("config");

    // A regular file in the way is not ours to delete.
    std::fs::write(&ctl, "not a socket").expect("file");
    let out = spawn().output().expect("daemon");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a socket"));
    assert_eq!(
        std::fs::read_to_string(&ctl).unwrap_or_default(),
        "not a socket"
    );
}

/// The example program that embeds the stack (built by `cargo test` with the examples).
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/dataplane-<hash> -> target/<profile>/examples/<name>
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target profile dir");
    let p = dir.join("examples").join(name);
    // `cargo test --test dataplane` alone does not rebuild examples: build it (a no-op when
    // fresh) so that the test never runs a stale program.
    let release = dir.file_name().is_some_and(|n| n == "release");
    let mut cmd = std::process::Command::new(env!("CARGO"));
    cmd.args(["build", "--quiet", "--example", name])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("cargo build --example");
    assert!(
        status.success() && p.exists(),
        "cannot build example {name}"
    );
    p
}

#[test]
fn local_endpoint_reaches_server_behind_linux_router_through_default_gateway() {
    let Some(()) = require_root("local_endpoint_reaches_server_behind_linux_router") else {
        return;
    };
    // stack (vmk0 198.18.1.1/24) -- router (198.18.1.254 | 198.18.100.1) -- server
    // (198.18.100.10): the article's use case, a storage server on a routed subnet.
    let lab = Lab::builder("gw")
        .tap_host("router", "vmk0", "198.18.1.254/24")
        .behind("router", "server", "198.18.100.1/24", "198.18.100.10/24")
        .build();
    let server = lab.ns("server");
    lab.write_config(&format!(
        "default_gateway = \"198.18.1.254\"\n[[vmknic]]\nname = \"vmk0\"\nportgroup = \"iSCSI\"\n\
         ip = \"198.18.1.1/24\"\nnetns = \"{}\"\n",
        lab.ns("router").name
    ));
    let echo = r#"
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.18.100.10", 3260))
s.listen(1)
c, _ = s.accept()
while True:
    d = c.recv(65536)
    if not d:
        break
    c.sendall(d)
"#;
    let _echo = server.spawn("python3", &["-c", echo]);
    assert!(wait_until(Duration::from_secs(5), || {
        server.run("ss", &["-ltn"]).contains("198.18.100.10:3260")
    }));
    // Build the program first: the router thread below waits a bounded time for the TAP, and a
    // cold build (a fresh clone in CI) takes longer than that.
    let exe = example("tcp_connect");
    let cfg = lab.config();
    // The TAP appears in the router namespace once the program has started; the router's side
    // gets its address then. The program waits for the connection itself, so wire the router
    // from a thread while it runs.
    let out = std::thread::scope(|s| {
        let wiring = s.spawn(|| lab.wire_hosts());
        let out = lab.stack.exec(
            exe.to_str().expect("utf-8 path"),
            &[
                cfg.to_str().expect("utf-8"),
                "198.18.100.10:3260",
                "hello iSCSI",
                "1000",
            ],
        );
        assert!(wiring.join().is_ok(), "TAP never reached the router");
        out
    });
    let text = common::describe(&out);
    assert!(out.status.success(), "{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert!(
        stdout.contains("route: 198.18.100.10 via 198.18.1.254 dev vmk0 src 198.18.1.1"),
        "{text}"
    );
    assert!(stdout.contains("connected from 198.18.1.1:"), "{text}");
    // The first SYN waits in the neighbour queue while ARP resolves the gateway and leaves
    // as soon as the answer comes: no retransmission (smoltcp's first RTO is 1 s).
    let ms: f64 = stdout
        .lines()
        .find_map(|l| l.split(" in ").nth(1)?.strip_suffix(" ms")?.parse().ok())
        .unwrap_or(f64::MAX);
    assert!(ms < 500.0, "connect took {ms} ms: {text}");
    assert!(stdout.contains("echo: hello iSCSI"), "{text}");
}

#[test]
fn vmknic_joins_a_bridge_as_its_port_group() {
    let Some(()) = require_root("vmknic_joins_a_bridge_as_its_port_group") else {
        return;
    };
    // The port group is a Linux bridge in the daemon's namespace; a host hangs off it by veth.
    let lab = Lab::builder("bridge")
        .bridge_host("host", "vmk0", "pg-iscsi", "198.18.1.20/24")
        .build();
    let (stack, host) = (&lab.stack, lab.ns("host"));
    lab.write_config(
        "[[vmknic]]\nname = \"vmk0\"\nportgroup = \"iSCSI\"\nip = \"198.18.1.1/24\"\n\
         mac = \"02:00:00:00:01:01\"\nbridge = \"pg-iscsi\"\n",
    );
    let daemon = lab.start();
    ping_ok(host, "198.18.1.1");
    assert!(host
        .ip(&["neigh", "show", "198.18.1.1"])
        .contains("02:00:00:00:01:01"));
    assert!(daemon.stop().success());
    assert!(!stack.exec("ip", &["link", "show", "vmk0"]).status.success());
}

/// The lines of `tracepath`'s (or `traceroute`'s) output, for messages.
fn run_text(ns: &Netns, cmd: &str, args: &[&str]) -> (bool, String) {
    let o = ns.exec(cmd, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), text)
}

/// `tracepath -n DST` until its summary names `pmtu` (a first run may meet ARP resolving).
fn tracepath_pmtu(ns: &Netns, dst: &str, pmtu: u16) -> String {
    let want = format!("Resume: pmtu {pmtu} ");
    let mut last = String::new();
    let ok = wait_until(Duration::from_secs(15), || {
        let (_, text) = run_text(ns, "tracepath", &["-n", "-m", "5", dst]);
        last = text;
        last.contains(&want)
    });
    assert!(ok, "tracepath never said `{want}`:\n{last}");
    last
}

#[test]
fn every_netdev_operation_follows_a_tap_moved_by_hand_and_moved_again() {
    let Some(()) = require_root("every_netdev_operation_follows_a_tap_moved_by_hand") else {
        return;
    };
    // vmk1 is configured without a namespace: its TAP comes up in the daemon's namespace, and
    // the test moves it by hand into h2 (as the README allows), then from h2 into h3.
    let lab = Lab::builder("handmove")
        .tap_host("h1", "vmk0", "198.18.1.10/24")
        .route("h1", "default", "198.18.1.1")
        .quiet()
        .build();
    let (h2, h3) = (Netns::new("h2"), Netns::new("h3"));
    lab.write_config(&format!(
        "forwarding = true\n[[vmknic]]\nname = \"vmk0\"\nportgroup = \"A\"\n\
         ip = \"198.18.1.1/24\"\nnetns = \"{}\"\n[[vmknic]]\nname = \"vmk1\"\n\
         portgroup = \"VMotion\"\nip = \"198.18.2.1/24\"\n",
        lab.ns("h1").name
    ));
    let daemon = lab.start();
    // An `ip` command of the test; if it fails, the panic says where vmk1 is in each
    // namespace of the test and what the daemon logged (a failure seen once in about ten
    // runs, never reproduced since, said only that an `ip` command on vmk1 failed).
    let ip = |ns: &Netns, args: &[&str]| -> String {
        let o = ns.exec("ip", args);
        if !o.status.success() {
            let whereabouts: Vec<String> = [&lab.stack, &h2, &h3]
                .iter()
                .map(|n| {
                    let l = n.exec("ip", &["-o", "link", "show", "vmk1"]);
                    format!("{}: {}", n.name, String::from_utf8_lossy(&l.stdout).trim())
                })
                .collect();
            panic!(
                "ip {args:?} in {}: {}\nvmk1 now:\n{}\ndaemon log:\n{}",
                ns.name,
                common::describe(&o),
                whereabouts.join("\n"),
                lab.log()
            );
        }
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let wire = |ns: &Netns| {
        ip(ns, &["addr", "add", "198.18.2.10/24", "dev", "vmk1"]);
        ip(ns, &["link", "set", "vmk1", "up"]);
        ip(ns, &["route", "replace", "default", "via", "198.18.2.1"]);
    };
    let link = |ns: &Netns| ip(ns, &["-o", "link", "show", "vmk1"]);
    let netns_listed = || {
        let (code, out, err) = lab.esx(&["vmknic", "list", "--json"]);
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        v.as_array()
            .and_then(|a| a.iter().find(|x| x["name"] == "vmk1"))
            .map(|x| x["netns"].clone())
            .unwrap_or_default()
    };
    assert_eq!(
        netns_listed(),
        serde_json::Value::Null,
        "in the daemon's namespace"
    );

    ip(&lab.stack, &["link", "set", "vmk1", "netns", &h2.name]);
    wire(&h2);
    ping_ok(lab.ns("h1"), "198.18.2.10");
    assert_eq!(netns_listed(), serde_json::json!(h2.name));

    // The MTU: on the netdev where it is now, in the engine (Fragmentation Needed) and in the
    // listing; tracepath finds it as the path MTU.
    let (code, out, err) = lab.esx(&["esxcfg-vmknic", "-m", "1400", "VMotion"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(link(&h2).contains("mtu 1400"), "{}", link(&h2));
    let (_, out, _) = lab.esx(&["esxcfg-vmknic", "-l"]);
    assert!(
        common::squeeze(&out).contains("vmk1 VMotion IPv4 198.18.2.1 255.255.255.0"),
        "{out}"
    );
    assert!(common::squeeze(&out).contains(" 1400 65535 true"), "{out}");
    let trace = tracepath_pmtu(lab.ns("h1"), "198.18.2.10", 1400);
    eprintln!("{trace}");
    let (ok, out) = ping(
        lab.ns("h1"),
        &[
            "-c",
            "1",
            "-W",
            "2",
            "-M",
            "do",
            "-s",
            "1380",
            "198.18.2.10",
        ],
    );
    // Frag Needed from the stack, or the path MTU h1 learned from it during tracepath.
    assert!(
        !ok && (out.contains("mtu = 1400") || out.contains("mtu=1400")),
        "{out}"
    );

    // The carrier: off and on again on the moved netdev.
    let (code, _, err) = lab.esx(&["esxcfg-vmknic", "-D", "VMotion"]);
    assert_eq!(code, 0, "{err}");
    assert!(link(&h2).contains("NO-CARRIER"), "{}", link(&h2));
    let (code, _, err) = lab.esx(&["esxcfg-vmknic", "-e", "VMotion"]);
    assert_eq!(code, 0, "{err}");
    assert!(!link(&h2).contains("NO-CARRIER"), "{}", link(&h2));
    ping_ok(lab.ns("h1"), "198.18.2.10");

    // Moved again, into h3: everything follows.
    ip(&h2, &["link", "set", "vmk1", "netns", &h3.name]);
    wire(&h3);
    ping_ok(lab.ns("h1"), "198.18.2.10");
    assert_eq!(netns_listed(), serde_json::json!(h3.name));
    let (code, out, err) = lab.esx(&["esxcfg-vmknic", "-m", "1280", "VMotion"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(link(&h3).contains("mtu 1280"), "{}", link(&h3));
    tracepath_pmtu(lab.ns("h1"), "198.18.2.10", 1280);
    let (code, _, err) = lab.esx(&["esxcfg-vmknic", "-D", "VMotion"]);
    assert_eq!(code, 0, "{err}");
    assert!(link(&h3).contains("NO-CARRIER"), "{}", link(&h3));
    let (code, _, err) = lab.esx(&["esxcfg-vmknic", "-e", "VMotion"]);
    assert_eq!(code, 0, "{err}");

    // The netdev deleted by hand: the daemon makes the TAP again where the configuration puts
    // it (the daemon's namespace), with the saved MTU, and changes reach it there.
    ip(&h3, &["link", "del", "vmk1"]);
    assert!(
        wait_until(Duration::from_secs(5), || lab
            .stack
            .exec("ip", &["-o", "link", "show", "vmk1"])
            .status
            .success()),
        "vmk1 was not re-created: {}",
        lab.log()
    );
    let l = lab.stack.ip(&["-o", "link", "show", "vmk1"]);
    assert!(l.contains("mtu 1280"), "{l}");
    let (code, _, err) = lab.esx(&["esxcfg-vmknic", "-m", "1500", "VMotion"]);
    assert_eq!(code, 0, "{err}");
    let l = lab.stack.ip(&["-o", "link", "show", "vmk1"]);
    assert!(l.contains("mtu 1500"), "{l}");
    // A restart makes the TAP again, in the daemon's namespace, with the saved MTU.
    assert!(daemon.stop().success(), "{}", lab.log());
    let _daemon = lab.start();
    let l = lab.stack.ip(&["-o", "link", "show", "vmk1"]);
    assert!(l.contains("mtu 1500"), "{l}");
}

#[test]
fn mac_style_vmware_gives_vmknics_esxi_macs_on_the_wire() {
    let Some(()) = require_root("mac_style_vmware_gives_vmknics_esxi_macs_on_the_wire") else {
        return;
    };
    let lab = Lab::builder("macstyle")
        .tap_host("h1", "vmk0", "198.18.1.10/24")
        .quiet()
        .build();
    lab.write_config(&format!(
        "mac_style = \"vmware\"\n[[vmknic]]\nname = \"vmk0\"\nportgroup = \"A\"\n\
         ip = \"198.18.1.1/24\"\nnetns = \"{}\"\n",
        lab.ns("h1").name
    ));
    let daemon = lab.start();
    let mac_of = |vmknic: &str| {
        let (code, out, err) = lab.esx(&["vmknic", "list", "--json"]);
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        v.as_array()
            .and_then(|a| a.iter().find(|x| x["name"] == vmknic))
            .and_then(|x| x["mac"].as_str())
            .unwrap_or_else(|| panic!("no {vmknic}: {out}"))
            .to_string()
    };
    let mac = mac_of("vmk0");
    assert!(mac.starts_with("00:50:56:"), "{mac}");
    // The host learns it from the stack's ARP answer.
    ping_ok(lab.ns("h1"), "198.18.1.1");
    let neigh = lab.ns("h1").ip(&["neigh", "show", "198.18.1.1"]);
    assert!(neigh.contains(&mac), "{neigh}");
    // A vmknic added at run time gets one too, and keeps it across a restart.
    let (code, _, err) = lab.esx(&[
        "esxcfg-vmknic",
        "-a",
        "-i",
        "198.18.2.1",
        "-n",
        "255.255.255.0",
        "B",
    ]);
    assert_eq!(code, 0, "{err}");
    let added = mac_of("vmk1");
    assert!(added.starts_with("00:50:56:") && added != mac, "{added}");
    assert!(daemon.stop().success(), "{}", lab.log());
    let _daemon = lab.start();
    assert_eq!((mac_of("vmk0"), mac_of("vmk1")), (mac, added));
}

/// The hops (their addresses) a `traceroute -n` or `mtr -n -r` output lists, in order.
fn hops(text: &str, mtr: bool) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let first = w.next()?;
            let n = if mtr {
                first.strip_suffix(".|--")?
            } else {
                first
            };
            n.parse::<u32>().ok()?;
            w.next().map(String::from)
        })
        .collect()
}

#[test]
fn traceroute_tracepath_and_mtr_see_the_stack_as_a_router() {
    let Some(()) = require_root("traceroute_tracepath_and_mtr_see_the_stack_as_a_router") else {
        return;
    };
    // h1 --vmk0-- stack --vmk1-- router --- server: the stack is the first of two routers.
    let lab = Lab::builder("trace")
        .tap_host("h1", "vmk0", "198.18.1.10/24")
        .route("h1", "default", "198.18.1.1")
        .tap_host("router", "vmk1", "198.18.2.10/24")
        .route("router", "198.18.1.0/24", "198.18.2.1")
        .behind("router", "server", "198.18.3.1/24", "198.18.3.10/24")
        .quiet()
        .build();
    lab.write_config(&format!(
        "forwarding = true\n[[vmknic]]\nname = \"vmk0\"\nportgroup = \"A\"\n\
         ip = \"198.18.1.1/24\"\nnetns = \"{}\"\n[[vmknic]]\nname = \"vmk1\"\nportgroup = \"B\"\n\
         ip = \"198.18.2.1/24\"\nnetns = \"{}\"\n[[route]]\nnetwork = \"198.18.3.0/24\"\n\
         gateway = \"198.18.2.10\"\n",
        lab.ns("h1").name,
        lab.ns("router").name
    ));
    let _daemon = lab.start();
    let h1 = lab.ns("h1");
    ping_ok(h1, "198.18.3.10");
    let path = ["198.18.1.1", "198.18.2.10", "198.18.3.10"];

    // traceroute, UDP (the default) and ICMP probes: Time Exceeded from the stack at hop 1,
    // then the router, then the server's Port Unreachable (or echo reply).
    for mode in [&[][..], &["-I"][..]] {
        let mut args = vec!["-n", "-q", "1", "-w", "2", "-m", "5"];
        args.extend_from_slice(mode);
        args.push("198.18.3.10");
        let (ok, out) = run_text(h1, "traceroute", &args);
        eprintln!("{out}");
        assert!(ok, "{out}");
        assert_eq!(hops(&out, false), path, "traceroute {mode:?}:\n{out}");
    }
    // No route in the stack: Net Unreachable, which traceroute marks `!N`, at the first hop and
    // whatever the TTL (the route is looked up before the TTL is checked, as Linux does).
    let (_, out) = run_text(
        h1,
        "traceroute",
        &["-n", "-q", "1", "-w", "2", "-m", "5", "198.19.99.1"],
    );
    eprintln!("{out}");
    let seen = hops(&out, false);
    assert!(
        !seen.is_empty() && seen.iter().all(|h| h == "198.18.1.1"),
        "every answer from the stack:\n{out}"
    );
    let last = out.lines().last().unwrap_or_default();
    assert!(last.trim_end().ends_with("!N"), "{out}");
    assert_eq!(seen.len(), 1, "traceroute stops at !N on hop 1:\n{out}");

    // mtr (ICMP echo with rising TTL): every hop answers every probe.
    let (ok, out) = run_text(
        h1,
        "mtr",
        &["-n", "-r", "-c", "3", "-i", "0.2", "198.18.3.10"],
    );
    eprintln!("{out}");
    assert!(ok, "{out}");
    assert_eq!(hops(&out, true), path, "mtr:\n{out}");
    for l in out.lines().filter(|l| l.contains(".|--")) {
        assert!(l.contains(" 0.0%"), "a hop lost probes: {l}\n{out}");
    }

    // tracepath: the path MTU, before and after vmk1's MTU changes (Fragmentation Needed
    // from the stack at hop 2's probe).
    tracepath_pmtu(h1, "198.18.3.10", 1500);
    let (code, out, err) = lab.esx(&["esxcfg-vmknic", "-m", "1400", "B"]);
    assert_eq!(code, 0, "{out}{err}");
    let out = tracepath_pmtu(h1, "198.18.3.10", 1400);
    eprintln!("{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("198.18.1.1") && l.contains("pmtu 1400")),
        "the stack reported the MTU:\n{out}"
    );
    assert!(
        out.contains("198.18.3.10") && out.contains("reached"),
        "{out}"
    );
}
