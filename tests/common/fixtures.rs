//! The article's configuration ("Unable to set VMkernel gateway as there are not VMkernel
//! interfaces on the same network") on the lab's 198.18.0.0/15 addresses, and the lab around
//! it:
//!
//! ```text
//! stack (daemon) --vmk0 198.18.1.100/24 (iSCSI_SAN)-- router 198.18.1.1 | 198.18.100.1
//!                                                       -- storage 198.18.100.20
//!                --vmk1 198.18.2.100/24 (VMotion)--- host 198.18.2.10
//! ```
//!
//! The default gateway starts as 198.18.0.254, on neither vmknic subnet; the fix is the
//! router, 198.18.1.1, on vmk0's subnet. (The demo and `examples/seed.toml` show the same
//! on the article's own 192.168 addresses.)

use super::lab::LabBuilder;

/// The message ESX prints (and the daemon logs) for a gateway on no vmknic's subnet.
pub const GATEWAY_MSG: &str =
    "Unable to set VMkernel gateway as there are not VMkernel interfaces on the same network";
/// vmk0's address (port group iSCSI_SAN, /24).
pub const VMK0_IP: &str = "198.18.1.100";
/// vmk1's address (port group VMotion, /24).
pub const VMK1_IP: &str = "198.18.2.100";
/// The article's default gateway, on neither vmknic subnet.
pub const OFF_SUBNET_GATEWAY: &str = "198.18.0.254";
/// The fix: the router on vmk0's subnet as the default gateway.
pub const ROUTER: &str = "198.18.1.1";
/// The router's side of the storage subnet (CIDR).
pub const ROUTER_STORAGE_SIDE: &str = "198.18.100.1/24";
/// The storage server behind the router.
pub const STORAGE: &str = "198.18.100.20";
/// The host on vmk1's subnet.
pub const HOST: &str = "198.18.2.10";

/// The article's configuration: vmk0 iSCSI_SAN and vmk1 VMotion in the netmask form, the
/// default gateway on no subnet; the TAPs go to namespaces `vmk0_netns` and `vmk1_netns`.
pub fn article(vmk0_netns: &str, vmk1_netns: &str) -> String {
    format!(
        r#"default_gateway = "{OFF_SUBNET_GATEWAY}"

[[vmknic]]
name = "vmk0"
portgroup = "iSCSI_SAN"
ip = "{VMK0_IP}"
netmask = "255.255.255.0"
netns = "{vmk0_netns}"

[[vmknic]]
name = "vmk1"
portgroup = "VMotion"
ip = "{VMK1_IP}"
netmask = "255.255.255.0"
netns = "{vmk1_netns}"
"#
    )
}

/// The storage side after the fix: the default gateway is the router, and only vmk0
/// (iSCSI_SAN) is configured, its TAP in namespace `vmk0_netns`; `extra` (e.g. `[[forward]]`
/// tables) is appended.
pub fn article_fixed_storage_side(vmk0_netns: &str, extra: &str) -> String {
    format!(
        "default_gateway = \"{ROUTER}\"\n\n[[vmknic]]\nname = \"vmk0\"\nportgroup = \"iSCSI_SAN\"\n\
         ip = \"{VMK0_IP}/24\"\nnetns = \"{vmk0_netns}\"\n{extra}"
    )
}

/// Adds the article's storage side to a lab: host `router` on vmk0's TAP (198.18.1.1/24)
/// and host `storage` (198.18.100.20/24) behind it.
pub fn storage_side(b: LabBuilder) -> LabBuilder {
    b.tap_host("router", "vmk0", &format!("{ROUTER}/24"))
        .behind(
            "router",
            "storage",
            ROUTER_STORAGE_SIDE,
            &format!("{STORAGE}/24"),
        )
}

/// The whole article lab: [`storage_side`], host `host` on vmk1's TAP (198.18.2.10/24,
/// default route via vmk1), and the router's route back to vmk1's subnet via vmk0. Write
/// [`article`] into it with the router's and the host's namespaces.
pub fn article_lab(b: LabBuilder) -> LabBuilder {
    storage_side(b)
        .route("router", "198.18.2.0/24", VMK0_IP)
        .tap_host("host", "vmk1", &format!("{HOST}/24"))
        .route("host", "default", VMK1_IP)
}

/// Two hosts routed through the stack: h1 (198.18.1.10) behind vmk0 (198.18.1.1/24) and h2
/// (198.18.2.10) behind vmk1 (198.18.2.1/24), each vmknic's TAP in its host's namespace, with
/// forwarding on. `top` goes at the top of the configuration after `forwarding = true`,
/// `vmk0` and `vmk1` into each vmknic's table (one `key = value` per line, or empty).
pub fn routed_pair(tag: &str, top: &str, vmk0: &str, vmk1: &str) -> super::lab::Lab {
    let lab = super::lab::Lab::builder(tag)
        .tap_host("h1", "vmk0", "198.18.1.10/24")
        .route("h1", "default", "198.18.1.1")
        .tap_host("h2", "vmk1", "198.18.2.10/24")
        .route("h2", "default", "198.18.2.1")
        .quiet()
        .build();
    let line = |s: &str| {
        if s.is_empty() {
            String::new()
        } else {
            format!("{s}\n")
        }
    };
    lab.write_config(&format!(
        "forwarding = true\n{}\n[[vmknic]]\nname = \"vmk0\"\nportgroup = \"A\"\n\
         ip = \"198.18.1.1/24\"\n{}netns = \"{}\"\n\n[[vmknic]]\nname = \"vmk1\"\n\
         portgroup = \"B\"\nip = \"198.18.2.1/24\"\n{}netns = \"{}\"\n",
        line(top),
        line(vmk0),
        lab.ns("h1").name,
        line(vmk1),
        lab.ns("h2").name,
    ));
    lab
}
