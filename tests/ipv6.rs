//! Root only. IPv6 through the stack with kernel hosts: h1 (2001:db8:1::10) on vmk0
//! (2001:db8:1::1/64) and h2 (2001:db8:2::10) on vmk1 (2001:db8:2::1/64, MTU 1400), each
//! vmknic's TAP in its host's namespace, forwarding on. Ping to the vmknics and across the
//! stack (hop limit 63), Time Exceeded, Destination Unreachable (no route), Packet Too Big
//! learned by tracepath, neighbour entries on both sides, vmkping -6, iperf3 -6 through the stack
//! (offloads on and off), the IPv6 route commands,
//! malformed IPv6/ICMPv6/NDP frames dropped and counted, kill -9 and a restart; the stack's own
//! endpoint over IPv6 (nc -z, a port forward to an IPv6 target carrying 8 MiB both ways with
//! offloads on, in large segments that leave vmk1 whole, and off; Port Unreachable and resets
//! for closed ports seen by a kernel host), the esxcli IPv6 interface commands.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::time::Duration;

use common::counters::{counter, counters, drops};
use common::lab::Lab;
use common::{require_root, wait_until, Netns};

const VMK0_MAC: &str = "02:50:56:01:00:01";

fn lab(tag: &str, offloads: bool) -> Lab {
    let lab = Lab::builder(tag)
        .tap_host("h1", "vmk0", "198.18.1.10/24")
        .tap_host("h2", "vmk1", "198.18.2.10/24")
        .build();
    lab.write_config(&format!(
        "forwarding = true\noffloads = {offloads}\n\n\
         [[vmknic]]\nname = \"vmk0\"\nportgroup = \"A\"\nip = \"198.18.1.1/24\"\n\
         mac = \"{VMK0_MAC}\"\nipv6 = [\"2001:db8:1::1/64\"]\nnetns = \"{}\"\n\n\
         [[vmknic]]\nname = \"vmk1\"\nportgroup = \"B\"\nip = \"198.18.2.1/24\"\nmtu = 1400\n\
         ipv6 = [\"2001:db8:2::1/64\"]\nnetns = \"{}\"\n",
        lab.ns("h1").name,
        lab.ns("h2").name,
    ));
    lab
}

/// Gives the hosts their IPv6 addresses and routes (after every start: the TAPs are new).
fn wire6(lab: &Lab) {
    for (role, dev, addr, gw) in [
        ("h1", "vmk0", "2001:db8:1::10/64", "2001:db8:1::1"),
        ("h2", "vmk1", "2001:db8:2::10/64", "2001:db8:2::1"),
    ] {
        let ns = lab.ns(role);
        ns.run(
            "sysctl",
            &["-qw", &format!("net.ipv6.conf.{dev}.disable_ipv6=0")],
        );
        ns.ip(&["-6", "addr", "replace", addr, "dev", dev, "nodad"]);
        ns.ip(&["-6", "route", "replace", "default", "via", gw, "dev", dev]);
    }
}

fn ping6(ns: &Netns, args: &[&str]) -> (bool, String) {
    let mut all = vec!["-6", "-n"];
    all.extend_from_slice(args);
    let o = ns.exec("ping", &all);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), text)
}

/// Pings until one answer arrives (the hosts' addresses and NDP take a moment).
fn ping6_ok(ns: &Netns, dst: &str) -> String {
    let mut last = String::new();
    let ok = wait_until(Duration::from_secs(10), || {
        let (ok, text) = ping6(ns, &["-c", "1", "-W", "1", dst]);
        last = text;
        ok
    });
    assert!(ok, "no answer from {dst} in {}: {last}", ns.name);
    last
}

/// iperf3 -6 from h1 to h2 through the stack for 2 s: it must succeed; the rate is printed.
fn iperf6(h1: &Netns, h2: &Netns) {
    let server = h2.spawn("iperf3", &["-s", "-1", "-B", "2001:db8:2::10"]);
    std::thread::sleep(Duration::from_millis(300));
    let o = h1.exec(
        "iperf3",
        &["-6", "-c", "2001:db8:2::10", "-t", "2", "-f", "m"],
    );
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "iperf3: {text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let rate = text
        .lines()
        .rfind(|l| l.contains("receiver"))
        .unwrap_or_default()
        .to_string();
    println!("iperf3 -6 through the stack: {rate}");
    drop(server);
}

/// The running daemon's `stats --json` counters of `vmk`.
fn stats_of(lab: &Lab, vmk: &str) -> serde_json::Value {
    let o = lab.cli(&["stats", "--json"]);
    assert!(o.status.success(), "stats: {}", common::describe(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stats JSON");
    v.as_array()
        .into_iter()
        .flatten()
        .find(|s| s["vmknic"] == vmk)
        .map(|s| s["counters"].clone())
        .unwrap_or_default()
}

/// Super-frames forwarded whole out of `vmk` (only IPv6 crosses between h1 and h2 here).
fn tcp6_super_frames(lab: &Lab, vmk: &str) -> u64 {
    stats_of(lab, vmk)["gso_forwarded"].as_u64().unwrap_or(0)
}

/// Frames received on `vmk` dropped for a bad virtio-net header.
fn tcp6_bad_offload(lab: &Lab, vmk: &str) -> u64 {
    stats_of(lab, vmk)["drops"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d[0] == "bad_offload")
        .and_then(|d| d[1].as_u64())
        .unwrap_or(0)
}

#[test]
fn ping6_forwarding_errors_and_neighbours() {
    let Some(()) = require_root("ping6_forwarding_errors_and_neighbours") else {
        return;
    };
    let lab = lab("ipv6", true);
    let mut daemon = lab.start();
    wire6(&lab);
    let (h1, h2) = (lab.ns("h1"), lab.ns("h2"));

    // The vmknics answer, from their global and link-local addresses.
    let out = ping6_ok(h1, "2001:db8:1::1");
    assert!(out.contains("ttl=64"), "{out}");
    ping6_ok(h2, "2001:db8:2::1");
    let (ok, out) = ping6(h1, &["-c", "1", "-W", "2", "fe80::50:56ff:fe01:1%vmk0"]);
    assert!(ok, "link-local: {out}");
    // 3000 bytes of echo data on a 1500-byte link: the kernel sends three fragments, the
    // stack reassembles them and answers in fragments of its own (RFC 8200 4.5).
    let (ok, out) = ping6(h1, &["-c", "1", "-W", "2", "-s", "3000", "2001:db8:1::1"]);
    assert!(
        ok && out.contains("3008 bytes from 2001:db8:1::1"),
        "fragmented: {out}"
    );

    // Across the stack: one hop, hop limit 63.
    let out = ping6_ok(h1, "2001:db8:2::10");
    assert!(out.contains("ttl=63"), "{out}");

    // The hosts learned the vmknics' MACs through NDP.
    let neigh = h1.ip(&["-6", "neigh", "show", "dev", "vmk0"]);
    assert!(
        neigh.contains("2001:db8:1::1 lladdr 02:50:56:01:00:01"),
        "{neigh}"
    );

    // ... and the stack learned the hosts': `esxcli network ip neighbor list` shows them.
    let (code, out, err) = lab.esx(&["esxcli", "network", "ip", "neighbor", "list"]);
    assert_eq!(code, 0, "{err}");
    let rows = common::squeeze(&out);
    for (ns, dev, ip) in [
        (h1, "vmk0", "2001:db8:1::10"),
        (h2, "vmk1", "2001:db8:2::10"),
    ] {
        let mac = ns.run("cat", &[&format!("/sys/class/net/{dev}/address")]);
        let want = format!("{ip} {} {dev}", mac.trim());
        assert!(rows.contains(&want), "{want} in:\n{out}");
    }
    // The vmknics' IPv6 rows in `esxcfg-vmknic -l`: link-local and static, as ESXi lists them.
    let (code, out, err) = lab.esx(&["esxcfg-vmknic", "-l"]);
    assert_eq!(code, 0, "{err}");
    let rows = common::squeeze(&out);
    assert!(
        rows.contains("vmk0 A IPv6 fe80::50:56ff:fe01:1 64 02:50:56:01:00:01 1500 65535 true STATIC, PREFERRED"),
        "{out}"
    );
    assert!(rows.contains("vmk1 B IPv6 2001:db8:2::1 64 "), "{out}");

    // vmkping -6 from the stack itself.
    let (code, out, err) = lab.esx(&["vmkping", "-6", "-c", "2", "-i", "0.2", "2001:db8:2::10"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("PING 2001:db8:2::10 (2001:db8:2::10): 56 data bytes"),
        "{out}"
    );
    assert!(
        out.contains("64 bytes from 2001:db8:2::10: icmp_seq=1 ttl=64 time="),
        "{out}"
    );
    assert!(
        out.contains("2 packets transmitted, 2 packets received, 0% packet loss"),
        "{out}"
    );
    let (code, out, err) = lab.esx(&["vmkping", "-6", "-c", "1", "2001:db8:99::1"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("sendto() failed (No route to host)"),
        "{out}{err}"
    );

    // Hop limit 1: Time Exceeded from vmk0's address.
    let (ok, out) = ping6(h1, &["-c", "1", "-W", "2", "-t", "1", "2001:db8:2::10"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("From 2001:db8:1::1") && out.contains("Time exceeded: Hop limit"),
        "{out}"
    );

    // Nowhere to go: Destination Unreachable, no route.
    let (ok, out) = ping6(h1, &["-c", "1", "-W", "2", "2001:db8:99::1"]);
    assert!(!ok, "{out}");
    assert!(out.contains("Destination unreachable: No route"), "{out}");

    // A packet bigger than vmk1's MTU: Packet Too Big with 1400, which tracepath learns.
    let (ok, out) = ping6(
        h1,
        &[
            "-c",
            "1",
            "-W",
            "2",
            "-M",
            "do",
            "-s",
            "1400",
            "2001:db8:2::10",
        ],
    );
    assert!(!ok, "{out}");
    assert!(out.contains("Packet too big: mtu=1400"), "{out}");
    let trace = h1.run("tracepath", &["-6", "-n", "2001:db8:2::10"]);
    assert!(trace.contains("pmtu 1400"), "{trace}");

    // TCP through the stack (offloads on): the TAPs do TSO6, so h1's super-frames cross
    // whole to vmk1 (an offloading TAP with MTU 1400: h2's MSS makes the segments fit).
    iperf6(h1, h2);
    let (whole, bad) = (
        tcp6_super_frames(&lab, "vmk1"),
        tcp6_bad_offload(&lab, "vmk0"),
    );
    println!("offloads on: TCPv6 super-frames forwarded whole to vmk1: {whole}");
    assert!(whole > 0, "no super-frame crossed whole");
    assert_eq!(bad, 0, "bad offload headers on vmk0");

    // kill -9 and a restart: IPv6 is back as configured.
    let pid = daemon.pid().to_string();
    let killed = Command::new("kill").args(["-KILL", &pid]).status();
    assert!(killed.is_ok_and(|s| s.success()), "kill -KILL {pid}");
    let status = daemon.child.wait().expect("wait");
    assert_eq!(status.signal(), Some(9));
    let log_before = lab.log();
    drop(daemon);
    let daemon = lab.start();
    wire6(&lab);
    let out = ping6_ok(h1, "2001:db8:2::10");
    assert!(out.contains("ttl=63"), "after restart: {out}");
    let status = daemon.stop();
    assert!(status.success(), "{}", lab.log());

    // The second run forwarded (its counters, logged at a clean stop).
    let log = lab.log();
    let vmk1 = counters(&log, "vmk1");
    assert!(counter(vmk1, "forwarded") >= 1, "{vmk1}");
    assert!(!log_before.contains("panicked"), "{log_before}");
}

#[test]
fn malformed_ipv6_is_dropped_and_counted() {
    let Some(()) = require_root("malformed_ipv6_is_dropped_and_counted") else {
        return;
    };
    let lab = lab("ipv6-bad", false);
    let daemon = lab.start();
    wire6(&lab);
    let (h1, h2) = (lab.ns("h1"), lab.ns("h2"));
    ping6_ok(h1, "2001:db8:1::1");
    // TCP through the stack with offloads off (every segment's checksum computed by the host).
    ping6_ok(h1, "2001:db8:2::10");
    iperf6(h1, h2);
    assert_eq!(
        tcp6_super_frames(&lab, "vmk1"),
        0,
        "super-frames without offloads"
    );
    // The stack's own TCP over IPv6 without offloads: MSS-sized segments, every byte back.
    let _echo = h2.spawn("python3", &["-c", ECHO6]);
    assert!(wait_until(Duration::from_secs(5), || {
        h2.run("ss", &["-ltn"]).contains("[2001:db8:2::10]:7000")
    }));
    let (frames, segments) = forward6_round_trip(&lab, 8);
    println!("offloads off: {frames} frames out of vmk1 for {segments} segments' worth");
    assert!(
        frames >= segments,
        "{frames} frames for {segments} segments"
    );
    let inject = format!(
        r#"
import socket, struct
ours = bytes.fromhex("{mac}")
src = bytes.fromhex("020000000001")
def eth(dst, payload):
    return dst + src + b"\x86\xdd" + payload
def a(s):
    return socket.inet_pton(socket.AF_INET6, s)
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff
def ip6(s, d, hl, payload, fix=True):
    if fix:
        ph = a(s) + a(d) + struct.pack("!I3xB", len(payload), 58)
        c = csum(ph + payload)
        payload = payload[:2] + struct.pack("!H", c) + payload[4:]
    return struct.pack("!IHBB", 0x60000000, len(payload), 58, hl) + a(s) + a(d) + payload
echo = b"\x80\x00\x00\x00\x00\x01\x00\x01hello"
ns_other = b"\x87\x00\x00\x00\x00\x00\x00\x00" + a("2001:db8:1::99") + b"\x01\x01" + src
ns_ours = b"\x87\x00\x00\x00\x00\x00\x00\x00" + a("2001:db8:1::1") + b"\x01\x01" + src
ns_badopt = b"\x87\x00\x00\x00\x00\x00\x00\x00" + a("2001:db8:1::1") + b"\x01\x00" + src
frames = [
    eth(ours, ip6("2001:db8:1::10", "2001:db8:1::1", 64, echo)[:30]),         # truncated
    eth(ours, b"\x40" + ip6("2001:db8:1::10", "2001:db8:1::1", 64, echo)[1:]),# version 4
    eth(ours, ip6("2001:db8:1::10", "2001:db8:1::1", 64, echo, fix=False)),   # bad checksum
    eth(ours, ip6("2001:db8:1::10", "2001:db8:1::1", 64, ns_ours)),           # NS, hop limit 64
    eth(ours, ip6("2001:db8:1::10", "2001:db8:1::1", 255, ns_badopt)),        # zero-length option
    eth(ours, ip6("2001:db8:1::10", "2001:db8:1::1", 255, ns_other)),         # NS not for us
    eth(ours, ip6("ff02::1", "2001:db8:1::1", 64, echo)),                     # multicast source
]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("vmk0", 0))
for _ in range(3):
    for f in frames:
        s.send(f)
"#,
        mac = VMK0_MAC.replace(':', ""),
    );
    h1.run("python3", &["-c", &inject]);
    // Still alive and answering.
    ping6_ok(h1, "2001:db8:1::1");
    let status = daemon.stop();
    assert!(status.success(), "{}", lab.log());
    let log = lab.log();
    let vmk0 = counters(&log, "vmk0");
    for (reason, want) in [
        ("truncated", 3),
        ("bad_ipv6", 3),
        ("bad_icmpv6", 3),
        ("bad_ndp", 6),
        ("ndp_not_for_us", 3),
        ("martian", 3),
    ] {
        assert_eq!(drops(vmk0, reason), want, "{reason}: {vmk0}");
    }
    assert!(counter(vmk0, "delivered") >= 2, "{vmk0}");
}

#[test]
fn ipv6_routes_from_the_esx_commands_survive_kill_9() {
    let Some(()) = require_root("ipv6_routes_from_the_esx_commands_survive_kill_9") else {
        return;
    };
    let lab = lab("ipv6-routes", true);
    let mut daemon = lab.start();
    wire6(&lab);
    let (h1, h2) = (lab.ns("h1"), lab.ns("h2"));
    // A network behind h2, which forwards.
    h2.ip(&["-6", "addr", "add", "2001:db8:100::1/128", "dev", "lo"]);
    h2.run("sysctl", &["-qw", "net.ipv6.conf.all.forwarding=1"]);
    ping6_ok(h1, "2001:db8:2::10");
    let (ok, out) = ping6(h1, &["-c", "1", "-W", "2", "2001:db8:100::1"]);
    assert!(!ok && out.contains("No route"), "{out}");

    let (code, out, err) = lab.esx(&[
        "esxcfg-route",
        "-f",
        "V6",
        "-a",
        "2001:db8:100::/48",
        "2001:db8:2::10",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out.trim(),
        "Adding static route 2001:db8:100::/48 to VMkernel"
    );
    ping6_ok(h1, "2001:db8:100::1");
    let (code, out, err) = lab.esx(&["route", "get", "2001:db8:100::1"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim(),
        "2001:db8:100::1 via 2001:db8:2::10 dev vmk1 src 2001:db8:2::1 route 2001:db8:100::/48 (static)"
    );

    // A gateway on no vmknic prefix: ESX's words, nothing changed.
    let (code, _, err) = lab.esx(&[
        "esxcfg-route",
        "-f",
        "V6",
        "-a",
        "2001:db8:200::/48",
        "2001:db8:9::1",
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("as there are not VMkernel interfaces on the same network"),
        "{err}"
    );
    // A link-local gateway needs its vmknic.
    let (code, _, err) = lab.esx(&[
        "esxcli", "network", "ip", "route", "ipv6", "add", "-n", "default", "-g", "fe80::1",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("name the vmknic"), "{err}");
    let (code, out, err) = lab.esx(&[
        "esxcli",
        "network",
        "ip",
        "route",
        "ipv6",
        "add",
        "-n",
        "default",
        "-g",
        "2001:db8:1::10",
    ]);
    assert_eq!(code, 0, "{out}{err}");

    let (_, list, _) = lab.esx(&["esxcfg-route", "-f", "V6", "-l"]);
    for row in [
        "2001:db8:100:: 48 2001:db8:2::10 vmk1",
        "2001:db8:1:: 64 Local Subnet vmk0",
        "2001:db8:2:: 64 Local Subnet vmk1",
        "default 0 2001:db8:1::10 vmk0",
    ] {
        assert!(common::squeeze(&list).contains(row), "{row} in:\n{list}");
    }
    let (_, json, _) = lab.esx(&[
        "esxcli",
        "--formatter=json",
        "network",
        "ip",
        "route",
        "ipv6",
        "list",
    ]);
    assert!(
        json.contains("\"Network\":\"default\"") || json.contains("\"Network\": \"default\""),
        "{json}"
    );

    // A vmknic added with an IPv6 address only (ESXi's `-i ADDR/LEN -6 true`).
    let (code, out, err) = lab.esx(&[
        "esxcfg-vmknic",
        "-a",
        "-i",
        "2001:db8:3::1/64",
        "-6",
        "true",
        "C",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let (_, out, _) = lab.esx(&["esxcfg-vmknic", "-l"]);
    assert!(
        common::squeeze(&out).contains("vmk2 C IPv6 2001:db8:3::1 64 "),
        "{out}"
    );
    let (code, _, err) = lab.esx(&["esxcfg-vmknic", "-a", "-i", "2001:db8:3::/64", "D"]);
    assert_ne!(code, 0);
    assert!(err.contains("subnet-router anycast"), "{err}");
    let (code, _, err) = lab.esx(&["esxcfg-vmknic", "-d", "C"]);
    assert_eq!(code, 0, "{err}");

    // kill -9: the routes were saved before they were acknowledged.
    let pid = daemon.pid().to_string();
    assert!(Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .is_ok_and(|s| s.success()));
    daemon.child.wait().expect("wait");
    drop(daemon);
    let daemon = lab.start();
    wire6(&lab);
    ping6_ok(h1, "2001:db8:100::1");
    let (_, after, _) = lab.esx(&["esxcfg-route", "-f", "V6", "-l"]);
    assert_eq!(after, list);

    let (code, out, _) = lab.esx(&["esxcfg-route", "-f", "V6", "-d", "2001:db8:100::/48"]);
    assert_eq!(code, 0);
    assert_eq!(
        out.trim(),
        "Deleting static route 2001:db8:100::/48 from VMkernel"
    );
    let (ok, out) = ping6(h1, &["-c", "1", "-W", "2", "2001:db8:100::1"]);
    // Now the default route (via h1 itself) applies: not delivered to h2's network.
    assert!(!ok, "{out}");
    drop(daemon);
}

/// An IPv6 echo server on h2 (2001:db8:2::10:7000): sends back everything, closes after the
/// client's FIN.
const ECHO6: &str = r#"
import socket, threading
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("2001:db8:2::10", 7000))
s.listen(16)
def serve(c):
    try:
        while True:
            d = c.recv(65536)
            if not d:
                break
            c.sendall(d)
    except ConnectionResetError:
        pass  # nc -z closes with a reset
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// Through `vmkstack forward 127.0.0.1:17000 [2001:db8:2::10]:7000` (added here) to
/// [`ECHO6`] on h2: `mb` MiB up and back, compared by SHA-256. Returns the frames vmk1 sent
/// meanwhile (the upload's and the ACKs of the download) and the number of MSS-sized (1340
/// bytes at vmk1's MTU of 1400) segments the upload takes.
fn forward6_round_trip(lab: &Lab, mb: u32) -> (u64, u64) {
    let o = lab.cli(&["forward", "127.0.0.1:17000", "[2001:db8:2::10]:7000"]);
    assert!(o.status.success(), "{}", common::describe(&o));
    assert!(wait_until(Duration::from_secs(5), || {
        lab.stack.run("ss", &["-ltn"]).contains("127.0.0.1:17000")
    }));
    let tx = |lab: &Lab| stats_of(lab, "vmk1")["tx_packets"].as_u64().unwrap_or(0);
    let before = tx(lab);
    let o = lab.stack.exec(
        "python3",
        &[
            "-c",
            r#"
import hashlib, os, socket, sys, threading
data = os.urandom(int(sys.argv[1]) << 20)
c = socket.create_connection(("127.0.0.1", 17000))
got = []
def read():
    while True:
        d = c.recv(1 << 20)
        if not d:
            break
        got.append(d)
t = threading.Thread(target=read)
t.start()
c.sendall(data)
c.shutdown(socket.SHUT_WR)
t.join()
back = b"".join(got)
print(len(back), hashlib.sha256(back).digest() == hashlib.sha256(data).digest())
"#,
            &mb.to_string(),
        ],
    );
    assert!(
        o.status.success(),
        "{}\n{}",
        common::describe(&o),
        lab.log()
    );
    let want = format!("{} True", u64::from(mb) << 20);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), want);
    (tx(lab) - before, (u64::from(mb) << 20) / 1340)
}

#[test]
fn endpoint_tcp_udp_and_forwards_over_ipv6() {
    let Some(()) = require_root("endpoint_tcp_udp_and_forwards_over_ipv6") else {
        return;
    };
    let lab = lab("ipv6ep", true);
    let daemon = lab.start();
    wire6(&lab);
    let (h1, h2) = (lab.ns("h1"), lab.ns("h2"));
    // Both vmknics' addresses answer, so both are through duplicate address detection (which
    // starts after a random delay of up to 1 s): `nc -s 2001:db8:1::1` binds vmk0's.
    ping6_ok(h2, "2001:db8:2::1");
    ping6_ok(h1, "2001:db8:1::1");
    let _echo = h2.spawn("python3", &["-c", ECHO6]);
    assert!(wait_until(Duration::from_secs(5), || {
        h2.run("ss", &["-ltn"]).contains("[2001:db8:2::10]:7000")
    }));

    // nc -z to the kernel host's listener over IPv6, from the route's source, from an
    // address (-s) and from a vmknic (-I); a closed port is refused (the kernel's reset).
    let (code, _, err) = lab.esx(&["nc", "-z", "-v", "2001:db8:2::10", "7000"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        err.trim(),
        "Connection to 2001:db8:2::10 7000 port [tcp/*] succeeded!"
    );
    let (code, _, err) = lab.esx(&[
        "nc",
        "-6",
        "-z",
        "-v",
        "-s",
        "2001:db8:1::1",
        "2001:db8:2::10",
        "7000",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = lab.esx(&["nc", "-z", "-I", "vmk1", "2001:db8:2::10", "7000"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = lab.esx(&["nc", "-z", "-v", "2001:db8:2::10", "7001"]);
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        "nc: connect to 2001:db8:2::10 port 7001 (tcp) failed: Connection refused"
    );
    // A source of the other family, -4 with an IPv6 host, a source that is not ours.
    let (code, _, err) = lab.esx(&["nc", "-z", "-s", "198.18.1.1", "2001:db8:2::10", "7000"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("Address family for hostname not supported"),
        "{err}"
    );
    let (code, _, err) = lab.esx(&["nc", "-4", "-z", "2001:db8:2::10", "7000"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("Address family for hostname not supported"),
        "{err}"
    );
    let (code, _, err) = lab.esx(&["nc", "-z", "-s", "2001:db8:1::99", "2001:db8:2::10", "7000"]);
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        "nc: bind failed: Cannot assign requested address"
    );
    // Nobody holds 2001:db8:2::77 on vmk1's link: Neighbour Discovery gives up after three
    // solicitations and nc says so, as for an IPv4 host that never answers ARP (the probe's
    // own timeout is longer).
    let started = std::time::Instant::now();
    let (code, _, err) = lab.esx(&["nc", "-z", "-v", "-w", "10", "2001:db8:2::77", "7000"]);
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        "nc: connect to 2001:db8:2::77 port 7000 (tcp) failed: Host is down"
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    // A port forward to an IPv6 target: 8 MiB through and back, whole. With offloads, the
    // stack's own TCP sends them to h2 in large segments (TSO6) that leave vmk1 whole.
    let (frames, segments) = forward6_round_trip(&lab, 8);
    println!("offloads on: {frames} frames out of vmk1 for {segments} segments' worth");
    assert!(
        frames < segments / 4,
        "{frames} frames for {segments} segments"
    );
    let o = lab.cli(&["forward", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v[0]["remote"], "[2001:db8:2::10]:7000", "{v}");

    // UDP to a closed port of the stack: the kernel host sees Port Unreachable
    // (ECONNREFUSED on its connected socket); TCP to a closed port is reset.
    let o = h1.exec(
        "python3",
        &[
            "-c",
            r#"
import socket
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
u.settimeout(3)
u.connect(("2001:db8:1::1", 9))
u.send(b"x")
try:
    u.recv(10)
    print("answered")
except ConnectionRefusedError:
    print("refused")
except socket.timeout:
    print("silent")
t = socket.socket(socket.AF_INET6)
t.settimeout(3)
try:
    t.connect(("2001:db8:1::1", 9))
    print("open")
except ConnectionRefusedError:
    print("reset")
except socket.timeout:
    print("silent")
"#,
        ],
    );
    assert!(o.status.success(), "{}", common::describe(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "refused\nreset");
    drop(daemon);
}

#[test]
fn esxcli_ipv6_interface_commands() {
    let Some(()) = require_root("esxcli_ipv6_interface_commands") else {
        return;
    };
    let lab = lab("ipv6cmd", false);
    let daemon = lab.start();
    wire6(&lab);
    let h1 = lab.ns("h1");
    let ll0 = "fe80::50:56ff:fe01:1";

    let esx_ok = |args: &[&str]| {
        let (code, out, err) = lab.esx(args);
        assert_eq!(code, 0, "{args:?}: {out}{err}");
        out
    };
    let address_list = || {
        esx_ok(&[
            "esxcli",
            "network",
            "ip",
            "interface",
            "ipv6",
            "address",
            "list",
        ])
    };
    // Every address is TENTATIVE for the second its duplicate address detection takes.
    let mut list = address_list();
    assert!(
        list.contains("TENTATIVE") || list.contains("PREFERRED"),
        "{list}"
    );
    common::wait_until(Duration::from_secs(5), || {
        list = address_list();
        !list.contains("TENTATIVE")
    });
    let rows: Vec<String> = list.lines().map(common::squeeze).collect();
    assert_eq!(rows[0], "Interface Address Netmask Type Status", "{list}");
    assert!(rows[1].starts_with("---------"), "{list}");
    assert!(
        rows.contains(&format!("vmk0 {ll0} 64 LINK_LOCAL PREFERRED")),
        "{list}"
    );
    assert!(
        rows.contains(&"vmk0 2001:db8:1::1 64 STATIC PREFERRED".to_string()),
        "{list}"
    );
    assert!(
        rows.contains(&"vmk1 2001:db8:2::1 64 STATIC PREFERRED".to_string()),
        "{list}"
    );

    // Add a second address to vmk0: live (the kernel host reaches it) and saved.
    esx_ok(&[
        "esxcli",
        "network",
        "ip",
        "interface",
        "ipv6",
        "address",
        "add",
        "-i",
        "vmk0",
        "-I",
        "2001:db8:1::2/64",
    ]);
    ping6_ok(h1, "2001:db8:1::2");
    assert!(std::fs::read_to_string(lab.config())
        .unwrap_or_default()
        .contains("2001:db8:1::2/64"));
    // Refusals, each naming the problem, changing nothing.
    for (args, why) in [
        (
            vec!["-i", "vmk0", "-I", "2001:db8:1::2/64"],
            "already has the IPv6 address",
        ),
        (
            vec!["-i", "vmk1", "-I", "2001:db8:1::2/64"],
            "is already an IPv6 address of vmk0",
        ),
        (
            vec!["-i", "vmk0", "-I", "2001:db8:1::/64"],
            "subnet-router anycast",
        ),
        (vec!["-i", "vmk0", "-I", "2001:db8:1::9"], "prefix length"),
        (vec!["-i", "vmk0", "-I", "fe80::9/64"], "link-local"),
        (vec!["-i", "vmk7", "-I", "2001:db8:7::1/64"], "vmk7"),
    ] {
        let mut all = vec![
            "esxcli",
            "network",
            "ip",
            "interface",
            "ipv6",
            "address",
            "add",
        ];
        all.extend(args.iter().copied());
        let (code, _, err) = lab.esx(&all);
        assert_ne!(code, 0, "{all:?}");
        assert!(err.contains(why), "{all:?}: {err}");
    }
    let (code, _, err) = lab.esx(&[
        "esxcli",
        "network",
        "ip",
        "interface",
        "ipv6",
        "address",
        "remove",
        "-i",
        "vmk1",
        "-I",
        "2001:db8:1::2/64",
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("vmk1 has no IPv6 address 2001:db8:1::2"),
        "{err}"
    );
    let after = esx_ok(&[
        "esxcli",
        "network",
        "ip",
        "interface",
        "ipv6",
        "address",
        "list",
    ]);
    assert_eq!(after.lines().count(), list.lines().count() + 1, "{after}");

    // ipv6 get, with the default gateway on the vmknic it leaves by.
    esx_ok(&["esxcfg-route", "-f", "V6", "2001:db8:1::10"]);
    let get = esx_ok(&["esxcli", "network", "ip", "interface", "ipv6", "get"]);
    let rows: Vec<String> = get.lines().map(common::squeeze).collect();
    assert_eq!(
        rows[0],
        "Name IPv6 Enabled DHCPv6 Enabled Router Adv Enabled DHCP DNS Gateway"
    );
    assert_eq!(
        rows[2], "vmk0 true false false false 2001:db8:1::10",
        "{get}"
    );
    assert_eq!(rows[3], "vmk1 true false false false ::", "{get}");
    let json = esx_ok(&[
        "esxcli",
        "--formatter=json",
        "network",
        "ip",
        "interface",
        "ipv6",
        "get",
        "-i",
        "vmk1",
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(v[0]["IPv6Enabled"], true, "{json}");
    assert_eq!(v[0]["Name"], "vmk1", "{json}");
    let (code, _, err) = lab.esx(&[
        "esxcli",
        "network",
        "ip",
        "interface",
        "ipv6",
        "set",
        "-i",
        "vmk1",
        "-d",
        "sometimes",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("`sometimes` is not a boolean"), "{err}");
    let (code, _, err) = lab.esx(&[
        "esxcli",
        "network",
        "ip",
        "interface",
        "ipv6",
        "set",
        "-i",
        "vmk1",
        "-e",
        "false",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("address remove -i vmk1"), "{err}");
    esx_ok(&[
        "esxcli",
        "network",
        "ip",
        "interface",
        "ipv6",
        "set",
        "-i",
        "vmk1",
        "-e",
        "true",
    ]);

    // vmkping -6 out of a named vmknic (global and link-local destinations) and through a
    // named next hop: h1 does not forward, so h2 is not reached through it.
    esx_ok(&["vmkping", "-6", "-c", "1", "-I", "vmk1", "2001:db8:2::10"]);
    // h1's link-local address, as its kernel chose it, once its DAD is over.
    let mut addrs = String::new();
    assert!(wait_until(Duration::from_secs(5), || {
        addrs = h1.ip(&["-6", "-o", "addr", "show", "dev", "vmk0", "scope", "link"]);
        !addrs.contains("tentative")
    }));
    let h1_ll = addrs
        .split_whitespace()
        .find_map(|w| w.strip_suffix("/64"))
        .unwrap_or_else(|| panic!("no link-local address on h1: {addrs}"))
        .to_string();
    let out = esx_ok(&["vmkping", "-6", "-c", "1", "-I", "vmk0", &h1_ll]);
    assert!(out.contains(&h1_ll), "{out}");
    let (code, _, err) = lab.esx(&["vmkping", "-6", "-c", "1", &h1_ll]);
    assert_ne!(code, 0);
    assert!(err.contains("needs the vmknic"), "{err}");
    esx_ok(&[
        "vmkping",
        "-6",
        "-c",
        "1",
        "-N",
        "2001:db8:2::10",
        "2001:db8:2::10",
    ]);
    let (code, out, _) = lab.esx(&[
        "vmkping",
        "-6",
        "-c",
        "1",
        "-W",
        "1",
        "-N",
        "2001:db8:1::10",
        "2001:db8:2::10",
    ]);
    assert_ne!(
        code, 0,
        "answered through a host that does not forward: {out}"
    );

    // route get --source for IPv6.
    let o = lab.cli(&[
        "route",
        "get",
        "2001:db8:2::10",
        "--source",
        "2001:db8:1::1",
    ]);
    assert!(o.status.success(), "{}", common::describe(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "2001:db8:2::10 dev vmk1 src 2001:db8:1::1 route 2001:db8:2::/64 (connected)"
    );
    let o = lab.cli(&[
        "route",
        "get",
        "2001:db8:2::10",
        "--source",
        "2001:db8:1::99",
    ]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("is not an IPv6 address of an enabled vmknic"),
        "{}",
        common::describe(&o)
    );

    // netstack get: IPv6 Enabled.
    let ns = esx_ok(&[
        "esxcli",
        "network",
        "ip",
        "netstack",
        "get",
        "-N",
        "defaultTcpipStack",
    ]);
    assert!(ns.contains("   IPv6 Enabled: true\n"), "{ns}");

    // Remove the address: gone live, and after kill -9 and a restart the file holds the rest.
    esx_ok(&[
        "esxcli",
        "network",
        "ip",
        "interface",
        "ipv6",
        "address",
        "remove",
        "-i",
        "vmk0",
        "-I",
        "2001:db8:1::2/64",
    ]);
    let (ok, out) = ping6(h1, &["-c", "1", "-W", "1", "2001:db8:1::2"]);
    assert!(!ok, "{out}");
    let pid = daemon.pid().to_string();
    assert!(Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .is_ok_and(|s| s.success()));
    let mut daemon = daemon;
    daemon.child.wait().expect("wait");
    drop(daemon);
    let daemon = lab.start();
    wire6(&lab);
    // The same list once duplicate address detection has run again.
    let mut again = address_list();
    common::wait_until(Duration::from_secs(5), || {
        again = address_list();
        !again.contains("TENTATIVE")
    });
    assert_eq!(again, list);
    drop(daemon);
}
