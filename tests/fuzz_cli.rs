//! Fuzz target `esxcfg`: the `esxcfg-route` and `esxcfg-vmknic` argument parsers on argvs
//! mutated from `fuzz/corpus/esxcfg/` (one argument per line, the program first) and on argvs
//! drawn from a vocabulary of flags, addresses, numbers, MACs, port groups and junk (non-UTF-8
//! included). Nothing may panic, parsing is deterministic, and what parses is consistent: no
//! host bits in a route, a usable vmknic address, an MTU in range, a unicast MAC.
//!
//! `VMKSTACK_FUZZ_SECS` (default 60) bounds the run, `PROPTEST_CASES` the number of generated
//! cases, `VMKSTACK_FUZZ_SEED` varies them; see `fuzz/README.md`.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use ipnet::Ipv4Net;
use vmkstack::esxcfg::{
    parse_esxcfg_route, parse_esxcfg_vmknic, RouteCommand, UsageError, VmknicCommand,
};
use vmkstack_routing::host_address_problem;
use vmkstack_vmknic::{MAX_MTU, MIN_MTU};

use harness::Rng;

/// Generated cases by default: more than fit in the one-minute budget of a debug build on two
/// cores, so that the budget ends the run.
const DEFAULT_CASES: u64 = 180_000;

fn corpus_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/esxcfg"))
}

const PROGRAMS: [&str; 3] = ["esxcfg-route", "esxcfg-vmknic", "/usr/sbin/esxcfg-route"];

const FLAGS: [&str; 36] = [
    "-a",
    "-d",
    "-l",
    "-n",
    "-e",
    "-D",
    "-i",
    "-m",
    "-M",
    "-h",
    "--help",
    "--add",
    "--del",
    "--list",
    "--neighbor-list",
    "--enable-vmknic",
    "--disable-vmknic",
    "--ip",
    "--netmask",
    "--mtu",
    "--mac",
    "--",
    "-",
    "-ai",
    "-an",
    "-la",
    "-x",
    "--bogus",
    "--lis",
    "-l=1",
    "--ip=198.18.1.10",
    "--mtu=9000",
    "-m9000",
    "-i198.18.1.10",
    "-n24",
    "-ah",
];

const VALUES: [&str; 44] = [
    "default",
    "198.18.1.1",
    "198.18.1.10",
    " 198.18.1.10 ",
    "198.18.100.0/24",
    "198.18.100.7/24",
    "0.0.0.0/0",
    "0.0.0.0",
    "198.18.100.0",
    "255.255.255.0",
    "255.0.255.0",
    "255.255.255.255",
    "0",
    "24",
    "/24",
    "31",
    "32",
    "33",
    "198.18.1.255",
    "198.18.1.0",
    "127.0.0.1",
    "224.0.0.1",
    "240.0.0.1",
    "1500",
    "68",
    "67",
    "9000",
    "9001",
    "-1",
    "99999999999999999999",
    " 1500",
    "00:50:56:01:02:03",
    "01:00:5e:00:00:01",
    "00:00:00:00:00:00",
    "00-50-56-01-02-03",
    "zz:zz",
    "iSCSI_SAN",
    "VM Network",
    "",
    " ",
    "é",
    "vmk0",
    "a=b",
    "-5",
];

/// The built-in seeds: the documented forms of both commands, and a few refused ones.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let argvs: [(&str, &[&str]); 26] = [
        ("route-show", &["esxcfg-route"]),
        ("route-set", &["esxcfg-route", "198.18.1.1"]),
        (
            "route-add-default",
            &["esxcfg-route", "-a", "default", "198.18.1.1"],
        ),
        (
            "route-add-prefix",
            &["esxcfg-route", "-a", "198.18.100.0/24", "198.18.1.1"],
        ),
        (
            "route-add-netmask",
            &[
                "esxcfg-route",
                "-a",
                "198.18.100.0",
                "255.255.255.0",
                "198.18.1.1",
            ],
        ),
        (
            "route-add-zero",
            &["esxcfg-route", "-a", "0.0.0.0/0", "198.18.1.1"],
        ),
        (
            "route-add-host-bits",
            &["esxcfg-route", "-a", "198.18.100.7/24", "198.18.1.1"],
        ),
        ("route-del-default", &["esxcfg-route", "-d", "default"]),
        (
            "route-del-prefix",
            &["esxcfg-route", "--del", "198.18.100.0/24", "198.18.1.1"],
        ),
        (
            "route-del-netmask",
            &["esxcfg-route", "-d", "198.18.100.0", "255.255.255.0"],
        ),
        ("route-list", &["esxcfg-route", "-l"]),
        ("route-neighbors", &["esxcfg-route", "--neighbor-list"]),
        ("route-help", &["esxcfg-route", "-h"]),
        (
            "route-two-actions",
            &["esxcfg-route", "-a", "-d", "default"],
        ),
        ("vmknic-list", &["esxcfg-vmknic", "-l"]),
        (
            "vmknic-add",
            &[
                "esxcfg-vmknic",
                "-a",
                "-i",
                "198.18.1.10",
                "-n",
                "255.255.255.0",
                "iSCSI_SAN",
            ],
        ),
        (
            "vmknic-add-all",
            &[
                "esxcfg-vmknic",
                "--add",
                "--ip",
                "198.18.1.10",
                "--netmask",
                "24",
                "--mtu",
                "9000",
                "--mac",
                "00:50:56:01:02:03",
                "VM Network",
            ],
        ),
        (
            "vmknic-add-network-address",
            &["esxcfg-vmknic", "-a", "-i", "198.18.1.0", "-n", "24", "x"],
        ),
        ("vmknic-del", &["esxcfg-vmknic", "-d", "iSCSI_SAN"]),
        ("vmknic-enable", &["esxcfg-vmknic", "-e", "iSCSI_SAN"]),
        ("vmknic-disable", &["esxcfg-vmknic", "-D", "iSCSI_SAN"]),
        ("vmknic-mtu", &["esxcfg-vmknic", "-m", "9000", "iSCSI_SAN"]),
        (
            "vmknic-address",
            &[
                "esxcfg-vmknic",
                "-i",
                "198.18.1.11",
                "-n",
                "255.255.255.0",
                "iSCSI_SAN",
            ],
        ),
        ("vmknic-no-action", &["esxcfg-vmknic", "iSCSI_SAN"]),
        (
            "vmknic-mtu-and-mac",
            &[
                "esxcfg-vmknic",
                "-m",
                "1500",
                "-M",
                "00:50:56:01:02:03",
                "p",
            ],
        ),
        ("vmknic-help", &["esxcfg-vmknic", "--help"]),
    ];
    argvs
        .iter()
        .map(|(name, argv)| (*name, format!("{}\n", argv.join("\n")).into_bytes()))
        .collect()
}

/// A corpus file as an argv: one argument per line.
fn argv_of(file: &[u8]) -> Vec<OsString> {
    let file = file.strip_suffix(b"\n").unwrap_or(file);
    file.split(|&b| b == b'\n')
        .map(|arg| OsString::from_vec(arg.to_vec()))
        .collect()
}

fn word(rng: &mut Rng) -> OsString {
    match rng.below(10) {
        0..=3 => rng.pick(&FLAGS).into(),
        4..=8 => rng.pick(&VALUES).into(),
        _ => {
            let len = rng.below(12);
            OsString::from_vec(rng.bytes(len))
        }
    }
}

/// A fresh argv from the vocabulary, or a corpus argv with arguments inserted, replaced,
/// removed, swapped, joined with `=`, mutated byte by byte, or a different program name.
fn generate(rng: &mut Rng, corpus: &[Vec<OsString>]) -> Vec<OsString> {
    if rng.one_in(4) {
        let mut argv = vec![OsString::from(*rng.pick(&PROGRAMS))];
        argv.extend((0..rng.below(8)).map(|_| word(rng)));
        return argv;
    }
    let mut argv = rng.pick(corpus).clone();
    for _ in 0..1 + rng.below(3) {
        let len = argv.len();
        let at = 1 + rng.below(len.max(1));
        match rng.below(10) {
            0 | 1 => argv.insert(at.min(len), word(rng)),
            2 if at < len => argv[at] = word(rng),
            // A value for a value: keeps the form and reaches the value checks.
            3 | 8 if at < len => {
                argv[at] = match argv[at].as_bytes().first() {
                    Some(b'-') => rng.pick(&FLAGS).into(),
                    _ => rng.pick(&VALUES).into(),
                }
            }
            4 if at < len => {
                argv.remove(at);
            }
            5 if at + 1 < len => argv.swap(at, at + 1),
            6 if at + 1 < len => {
                let next = argv.remove(at + 1);
                let mut joined = argv[at].clone();
                joined.push("=");
                joined.push(next);
                argv[at] = joined;
            }
            7 if at < len => {
                let bytes = argv[at].as_bytes().to_vec();
                argv[at] = OsString::from_vec(harness::mutate(rng, &bytes, &[], 64));
            }
            _ => argv[0] = rng.pick(&PROGRAMS).into(),
        }
    }
    argv
}

fn check_argv(argv: &[OsString]) {
    let args: Vec<String> = argv
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    check_route(argv, &args);
    check_vmknic(argv, &args);
}

/// True when some argument names this address as written (the parsers only trim spaces).
fn written(args: &[String], ip: impl ToString) -> bool {
    let ip = ip.to_string();
    args.iter().any(|a| a.contains(&ip))
}

fn check_usage_error(e: &UsageError, program: &str, args: &[String]) {
    let text = e.to_string();
    assert!(!text.trim().is_empty());
    match e {
        UsageError::Help(usage) => {
            let asked = args.iter().any(|a| a.starts_with('-') && a.contains('h'));
            assert!(asked, "help nobody asked for");
            assert!(usage.contains(program), "{usage}");
        }
        UsageError::Invalid { invocation, .. } => {
            assert_eq!(invocation.program, program);
            assert!(text.starts_with(program), "{text}");
        }
        UsageError::Flags(_) => {}
    }
}

fn check_route(argv: &[OsString], args: &[String]) {
    let result = parse_esxcfg_route(argv.iter().cloned());
    assert_eq!(result, parse_esxcfg_route(argv.iter().cloned()));
    let command = match result {
        Ok(command) => command,
        Err(e) => return check_usage_error(&e, "esxcfg-route", args),
    };
    let json = serde_json::to_string(&command).expect("encode");
    assert_eq!(
        serde_json::from_str::<RouteCommand>(&json).ok(),
        Some(command.clone())
    );
    let network_ok = |n: &Ipv4Net| n.trunc() == *n && n.prefix_len() >= 1;
    match command {
        RouteCommand::SetDefault(gw) => assert!(written(args, gw), "{gw}"),
        RouteCommand::ClearDefault { gateway } => {
            assert!(gateway.is_none_or(|gw| written(args, gw)));
        }
        RouteCommand::Add { network, gateway } => {
            assert!(network_ok(&network), "route to {network}");
            assert!(written(args, gateway));
        }
        RouteCommand::Delete { network, gateway } => {
            assert!(network_ok(&network), "route to {network}");
            assert!(gateway.is_none_or(|gw| written(args, gw)));
        }
        RouteCommand::Add6 { network, .. } | RouteCommand::Delete6 { network } => {
            assert!(
                network.trunc() == network && network.prefix_len() >= 1,
                "{network}"
            );
            assert!(
                args.iter().any(|a| a.eq_ignore_ascii_case("v6")),
                "-f V6 not given"
            );
        }
        RouteCommand::SetDefault6(gw) => {
            assert!(!gw.addr.is_multicast() && !gw.addr.is_unspecified(), "{gw}");
        }
        RouteCommand::ShowDefault
        | RouteCommand::List
        | RouteCommand::Neighbors
        | RouteCommand::ShowDefault6
        | RouteCommand::ClearDefault6
        | RouteCommand::List6 => {}
    }
}

fn check_vmknic(argv: &[OsString], args: &[String]) {
    let result = parse_esxcfg_vmknic(argv.iter().cloned());
    assert_eq!(result, parse_esxcfg_vmknic(argv.iter().cloned()));
    let command = match result {
        Ok(command) => command,
        Err(e) => return check_usage_error(&e, "esxcfg-vmknic", args),
    };
    let json = serde_json::to_string(&command).expect("encode");
    assert_eq!(
        serde_json::from_str::<VmknicCommand>(&json).ok(),
        Some(command.clone())
    );
    // The port group as an argument, or as `-p`'s value (`-p NAME`, `-pNAME`, `--portgroup=NAME`).
    let portgroup_ok = |p: &String| {
        !p.trim().is_empty()
            && (args.contains(p)
                || args.contains(&format!("-p{p}"))
                || args.contains(&format!("--portgroup={p}")))
    };
    let address_ok = |ip, len| {
        let net = Ipv4Net::new(ip, len).expect("prefix length 0-32");
        (1..=32).contains(&len) && host_address_problem(net).is_none() && written(args, ip)
    };
    let mtu_ok = |m: u16| (MIN_MTU..=MAX_MTU).contains(&m);
    match command {
        VmknicCommand::Add {
            portgroup,
            ip,
            prefix_len,
            mtu,
            mac,
        } => {
            assert!(portgroup_ok(&portgroup), "port group {portgroup:?}");
            assert!(address_ok(ip, prefix_len), "{ip}/{prefix_len}");
            assert!(mtu.is_none_or(mtu_ok), "MTU {mtu:?}");
            assert!(mac.is_none_or(|m| m.is_unicast()), "MAC {mac:?}");
        }
        VmknicCommand::SetAddress {
            portgroup,
            ip,
            prefix_len,
        } => {
            assert!(portgroup_ok(&portgroup), "port group {portgroup:?}");
            assert!(address_ok(ip, prefix_len), "{ip}/{prefix_len}");
        }
        VmknicCommand::SetMtu { portgroup, mtu } => {
            assert!(portgroup_ok(&portgroup), "port group {portgroup:?}");
            assert!(mtu_ok(mtu), "MTU {mtu}");
        }
        VmknicCommand::AddIpv6 {
            portgroup,
            ipv6,
            mtu,
            mac,
        } => {
            assert!(portgroup_ok(&portgroup), "port group {portgroup:?}");
            assert!(
                vmkstack_routing::host_address6_problem(ipv6).is_none(),
                "{ipv6}"
            );
            assert!(mtu.is_none_or(mtu_ok), "MTU {mtu:?}");
            assert!(mac.is_none_or(|m| m.is_unicast()), "MAC {mac:?}");
        }
        VmknicCommand::AddDhcp {
            portgroup,
            mtu,
            mac,
        } => {
            assert!(portgroup_ok(&portgroup), "port group {portgroup:?}");
            assert!(
                args.iter().any(|a| a.trim().eq_ignore_ascii_case("dhcp")),
                "DHCP not asked"
            );
            assert!(mtu.is_none_or(mtu_ok), "MTU {mtu:?}");
            assert!(mac.is_none_or(|m| m.is_unicast()), "MAC {mac:?}");
        }
        VmknicCommand::Delete { portgroup }
        | VmknicCommand::Enable { portgroup }
        | VmknicCommand::Disable { portgroup }
        | VmknicCommand::SetDhcp { portgroup } => {
            assert!(portgroup_ok(&portgroup), "port group {portgroup:?}");
        }
        VmknicCommand::SetIpv6Autoconf { portgroup, enabled } => {
            assert!(portgroup_ok(&portgroup), "port group {portgroup:?}");
            let want: &[&str] = if enabled {
                &["true", "1"]
            } else {
                &["false", "0"]
            };
            assert!(
                args.iter().any(|a| {
                    let v = a.rsplit('=').next().unwrap_or(a).trim_start_matches("-P");
                    want.contains(&v.trim().to_ascii_lowercase().as_str())
                }),
                "-P {enabled} not asked"
            );
        }
        VmknicCommand::List => {}
    }
}

#[test]
fn fuzz_esxcfg() {
    let corpus = harness::corpus(&corpus_dir(), seeds());
    let argvs: Vec<Vec<OsString>> = corpus.iter().map(|f| argv_of(f)).collect();
    let check = |argv: &Vec<OsString>| check_argv(argv);
    harness::run("esxcfg", DEFAULT_CASES, &argvs, generate, check);
}

/// Rewrites `fuzz/corpus/esxcfg/` from the built-in seeds.
#[test]
#[ignore = "writes the seed corpus; run with --ignored when the seeds change"]
fn write_corpus() {
    harness::write_corpus(&corpus_dir(), "argv", &seeds());
}
/// The fuzz loop, shared by every crate's fuzz tests (`fuzz/harness.rs`).
#[allow(dead_code)] // Not every target uses every helper.
#[path = "../fuzz/harness.rs"]
mod harness;
