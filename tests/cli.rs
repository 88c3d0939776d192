//! The `vmkstack` binary, run as users run it.

use std::path::PathBuf;
use std::process::{Command, Output};

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

/// Squeezes runs of spaces so that rows compare independently of column widths.
fn squeeze(s: &str) -> String {
    s.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
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
