//! The `vmkstack` binary, run as users run it (no root needed).

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

use common::squeeze;

fn vmkstack(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vmkstack"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run vmkstack")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn temp_config(name: &str, body: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vmkstack-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write config");
    p
}

#[test]
fn check_seed_reproduces_the_article() {
    let o = vmkstack(&["check", "--config", "examples/seed.toml"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    let out = squeeze(&out);
    assert!(
        out.contains("Interface Port Group IP Address Netmask Broadcast MAC Address MTU Enabled"),
        "{out}"
    );
    assert!(
        out.contains("vmk0 iSCSI_SAN 192.168.1.100 255.255.255.0 192.168.1.255"),
        "{out}"
    );
    assert!(
        out.contains("vmk1 VMotion 192.168.2.100 255.255.255.0 192.168.2.255"),
        "{out}"
    );
    assert!(
        out.contains("VMkernel Routes:\nNetwork Netmask Gateway Interface"),
        "{out}"
    );
    assert!(out.contains("192.168.1.0 255.255.255.0 Local Subnet vmk0\n192.168.2.0 255.255.255.0 Local Subnet vmk1\ndefault 0.0.0.0 192.168.0.254 None"), "{out}");
    assert!(
        err.lines().any(|l| l == "Unable to set VMkernel gateway as there are not VMkernel interfaces on the same network"),
        "{err}"
    );
}

#[test]
fn check_seed_fixed_is_clean_and_explains() {
    let o = vmkstack(&[
        "check",
        "--config",
        "examples/seed-fixed.toml",
        "--lookup",
        "192.168.100.20",
        "--lookup",
        "192.168.2.7",
        "--lookup",
        "203.0.113.1",
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(err.is_empty(), "{err}");
    let out = squeeze(&out);
    // Static routes first, then Local Subnet rows, then default.
    assert!(out.contains("192.168.100.0 255.255.255.0 192.168.1.1 vmk0\n192.168.1.0 255.255.255.0 Local Subnet vmk0\n192.168.2.0 255.255.255.0 Local Subnet vmk1\ndefault 0.0.0.0 192.168.1.1 vmk0"), "{out}");
    assert!(out.contains("192.168.100.20 via 192.168.1.1 dev vmk0 src 192.168.1.100 route 192.168.100.0/24 (static)"), "{out}");
    assert!(
        out.contains("192.168.2.7 dev vmk1 src 192.168.2.100 route 192.168.2.0/24 (connected)"),
        "{out}"
    );
    assert!(
        out.contains("203.0.113.1 via 192.168.1.1 dev vmk0"),
        "{out}"
    );
}

#[test]
fn check_json() {
    let o = vmkstack(&[
        "check",
        "--config",
        "examples/seed.toml",
        "--json",
        "--lookup",
        "192.168.2.9",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["vmknics"][0]["broadcast"], "192.168.1.255");
    assert_eq!(v["routes"][2]["gateway"], "192.168.0.254");
    assert_eq!(v["routes"][2]["active"], false);
    assert!(v["problems"][0].as_str().unwrap().starts_with(
        "Unable to set VMkernel gateway as there are not VMkernel interfaces on the same network"
    ));
    assert_eq!(v["lookups"][0]["vmknic"], "vmk1");
    assert_eq!(v["lookups"][0]["next_hop"], "192.168.2.9");
}

#[test]
fn check_bad_config_names_file_key_value_rule() {
    let p = temp_config(
        "bad.toml",
        "[[vmknic]]\nname = \"vmk0\"\nportgroup = \"pg\"\nip = \"198.18.1.1\"\nnetmask = \"255.0.255.0\"\nmtu = 9001\n",
    );
    let o = vmkstack(&["check", "--config", p.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err.contains("bad.toml: vmknic[0] (vmk0).mtu = 9001: MTU must be between 68 and 9000"),
        "{err}"
    );
    assert!(
        err.contains(
            "vmknic[0] (vmk0).netmask = \"255.0.255.0\": netmask 255.0.255.0 is not contiguous"
        ),
        "{err}"
    );
}

#[test]
fn check_mac_style_vmware_and_a_bad_style() {
    let p = temp_config(
        "vmware.toml",
        "mac_style = \"vmware\"\n[[vmknic]]\nname = \"vmk0\"\nportgroup = \"pg\"\n\
         ip = \"198.18.1.1/24\"\n[[vmknic]]\nname = \"vmk1\"\nportgroup = \"pg1\"\n\
         ip = \"198.18.2.1/24\"\nmac = \"02:00:00:00:00:01\"\n",
    );
    let o = vmkstack(&["check", "--config", p.to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let mac0 = v["vmknics"][0]["mac"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(mac0.starts_with("00:50:56:"), "{v}");
    assert_eq!(
        v["vmknics"][1]["mac"], "02:00:00:00:00:01",
        "a configured MAC wins"
    );
    // Deterministic: the same MAC on every run.
    let again = vmkstack(&["check", "--config", p.to_str().unwrap(), "--json"]);
    let v2: serde_json::Value = serde_json::from_slice(&again.stdout).expect("JSON");
    assert_eq!(v2["vmknics"][0]["mac"], mac0.as_str());

    let p = temp_config(
        "badstyle.toml",
        "mac_style = \"VMware\"\n[[vmknic]]\nname = \"vmk0\"\nportgroup = \"pg\"\n\
         ip = \"198.18.1.1/24\"\n",
    );
    let o = vmkstack(&["check", "--config", p.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err.contains("badstyle.toml: mac_style = \"VMware\": expected \"local\""),
        "{err}"
    );
}

#[test]
fn check_missing_file_and_bad_arguments() {
    let o = vmkstack(&["check", "--config", "/nonexistent/x.toml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("/nonexistent/x.toml: cannot read"));
    let o = vmkstack(&[
        "check",
        "--config",
        "examples/seed.toml",
        "--lookup",
        "198.18.1",
    ]);
    assert_eq!(o.status.code(), Some(2), "clap usage error");
    assert!(text(&o).1.contains("--lookup"));
}

/// Runs the binary with `VMKSTACK_CONTROL` pointing at a socket that does not exist, so that no
/// test ever reaches a daemon that happens to run on this machine.
fn offline(program: &std::path::Path, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .env("VMKSTACK_CONTROL", "/nonexistent/vmkstack-test.sock")
        .output()
        .expect("run vmkstack")
}

fn bin() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_vmkstack"))
}

#[test]
fn client_without_daemon_names_the_socket_and_says_to_start_it() {
    let o = offline(
        bin(),
        &["route", "list", "--control", "/nonexistent/x.sock"],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(out.is_empty(), "{out}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.starts_with("vmkstack: cannot reach the vmkstack daemon at /nonexistent/x.sock"),
        "{err}"
    );
    assert!(err.contains("start it with `vmkstack daemon"), "{err}");
    // The global option before the subcommand, and the environment variable, work too.
    let o = offline(bin(), &["--control", "/nonexistent/y.sock", "stats"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("/nonexistent/y.sock"), "{}", text(&o).1);
    let o = offline(bin(), &["esxcfg-vmknic", "-l"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o).1;
    assert!(
        err.starts_with(
            "esxcfg-vmknic: cannot reach the vmkstack daemon at /nonexistent/vmkstack-test.sock"
        ),
        "{err}"
    );
}

#[test]
fn esxcfg_route_host_bits_is_a_usage_error() {
    let o = offline(
        bin(),
        &["esxcfg-route", "-a", "198.18.100.7/24", "198.18.1.1"],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}{err}");
    assert_eq!(
        err.trim_end(),
        "esxcfg-route -a: invalid network: 198.18.100.7/24 has host bits set; the network is \
         198.18.100.0/24"
    );
}

#[test]
fn personality_usage_errors_exit_2() {
    let cases: &[(&[&str], &str)] = &[
        (&["vmkping"], "<host>"),
        (&["nc", "198.18.1.1", "80"], "nc: only -z mode is supported"),
        (&["nc", "-z", "198.18.1.1"], "<port>"),
        (
            &["esxcli", "network", "ip", "foo"],
            "expected one of: interface, neighbor, netstack, route",
        ),
        (&["esxcli"], "expected one of: network"),
        (
            &["esxcfg-vmknic", "-a", "-i", "198.18.1.1", "pg"],
            "missing -n/--netmask",
        ),
        (&["vmkping", "-s", "65508", "198.18.1.1"], "65508"),
    ];
    for (args, want) in cases {
        let o = offline(bin(), args);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {out}{err}");
        assert!(err.contains(want), "{args:?}: `{err}` lacks `{want}`");
    }
}

#[test]
fn vmkping_unknown_host_fails_like_esx() {
    let o = offline(bin(), &["vmkping", "-c", "1", "storage.example"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert_eq!(err, "vmkping: unknown host storage.example\n");
}

#[test]
fn personality_help_goes_to_stdout() {
    for (args, want) in [
        (&["esxcfg-route", "--help"][..], "-a default <gateway>"),
        (&["esxcfg-vmknic", "-h"][..], "--enable-vmknic"),
        (&["vmkping", "--help"][..], "vmkping [-I vmkN]"),
        (&["esxcli", "network", "ip", "--help"][..], "route"),
        (&["nc", "-h"][..], "nc -z"),
    ] {
        let o = offline(bin(), args);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {out}{err}");
        assert!(out.contains(want), "{args:?}: {out}");
    }
    let o = offline(bin(), &["--help"]);
    let (out, _) = text(&o);
    assert!(
        out.contains("ln -s \"$(command -v vmkstack)\" /usr/local/bin/esxcfg-route"),
        "{out}"
    );
}

#[test]
fn symlink_named_esxcfg_route_is_esxcfg_route() {
    let dir = std::env::temp_dir().join(format!("vmkstack-cli-{}-link", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let link = dir.join("esxcfg-route");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(bin(), &link).expect("symlink");
    let o = offline(&link, &["-a", "198.18.100.0/24"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}{err}");
    assert_eq!(
        err.trim_end(),
        "esxcfg-route -a: expected `default <gateway>`, `<network>/<len> <gateway>` or \
         `<network> <netmask> <gateway>`, got 1 argument"
    );
    // A valid command reaches for the daemon named by VMKSTACK_CONTROL.
    let o = offline(&link, &["-l"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).1.starts_with(
            "esxcfg-route: cannot reach the vmkstack daemon at /nonexistent/vmkstack-test.sock"
        ),
        "{}",
        text(&o).1
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `check` with several netstacks: every vmknic under its own netstack, each netstack's
/// routing table and lookups, and a problem of a non-default netstack fails the check.
#[test]
fn check_covers_every_netstack() {
    let body = "default_gateway = \"198.18.10.1\"\n\
        [[netstack_instance]]\nname = \"vmotion\"\ndefault_gateway = \"GW\"\n\
        [[vmknic]]\nname = \"vmk0\"\nportgroup = \"Mgmt\"\nip = \"198.18.10.100/24\"\n\
        [[vmknic]]\nname = \"vmk1\"\nportgroup = \"vMotion\"\nip = \"198.18.20.100/24\"\n\
        netstack = \"vmotion\"\n";
    let p = temp_config("netstacks.toml", &body.replace("GW", "198.18.20.1"));
    let path = p.to_str().unwrap();
    let o = vmkstack(&["check", "--config", path, "--lookup", "203.0.113.9"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    let s = squeeze(&out);
    assert!(s.contains("Enabled NetStack\n"), "{out}");
    let row = |start: &str, end: &str| s.lines().any(|l| l.starts_with(start) && l.ends_with(end));
    assert!(
        row("vmk0 Mgmt 198.18.10.100 ", " defaultTcpipStack"),
        "{out}"
    );
    assert!(row("vmk1 vMotion 198.18.20.100 ", " vmotion"), "{out}");
    let routes = out.split_once("$ esxcfg-route -l").map_or("", |(_, r)| r);
    let (default, vmotion) = routes
        .split_once("$ esxcfg-route -N vmotion -l")
        .expect("a vmotion section");
    assert!(
        default.contains("198.18.10.1") && !default.contains("198.18.20.1"),
        "{out}"
    );
    assert!(
        vmotion.contains(" 198.18.20.1 ") && !vmotion.contains("198.18.10."),
        "{out}"
    );
    assert!(out.contains("# netstack vmotion (forwarding off)"), "{out}");
    assert!(out.contains("Lookups (-N vmotion):"), "{out}");
    let o = vmkstack(&["check", "--config", path, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["netstacks"][0]["name"], "vmotion");
    assert_eq!(v["netstacks"][0]["routes"][1]["gateway"], "198.18.20.1");
    assert_eq!(v["vmknics"][1]["netstack"], "vmotion");

    // vmotion's gateway on no vmotion subnet (it is on defaultTcpipStack's): a problem.
    let p = temp_config("netstacks-bad.toml", &body.replace("GW", "198.18.10.1"));
    let o = vmkstack(&["check", "--config", p.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(
        err.contains("netstack `vmotion`: Unable to set VMkernel gateway")
            && err.contains("vmknic subnets: 198.18.20.0/24 (vmk1)"),
        "{err}"
    );
}
