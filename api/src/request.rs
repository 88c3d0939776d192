//! What a client sends: one [`Request`] per line, its [`Action`], and [`parse_request`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::response::{ErrorKind, RemoteError};

/// Protocol version spoken by this build.
pub const PROTOCOL_VERSION: u32 = 1;
/// Longest request line accepted (bytes, without the newline).
pub const MAX_LINE: usize = 64 * 1024;

/// One request line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// Protocol version; must be [`PROTOCOL_VERSION`].
    pub v: u32,
    /// The netstack the action acts on (ESX `-N`: routes, gateway, neighbours, vmknic list
    /// and add, pings and probes); absent: the default one, `defaultTcpipStack`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netstack: Option<String>,
    /// What to do.
    pub action: Action,
}

/// Every operation. Names of vmknics may be `vmkN` or a port group name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
// One request per command line: the size of the largest variant (a vmknic as written) costs
// nothing worth a box.
#[allow(clippy::large_enum_variant)]
pub enum Action {
    /// List vmknics.
    VmknicList,
    /// Add a vmknic (same fields and rules as a `[[vmknic]]` table).
    VmknicAdd {
        /// The vmknic.
        vmknic: RawVmknic,
        /// The netstack it joins (`-N`); by default the daemon's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        netstack: Option<String>,
    },
    /// Remove a vmknic.
    VmknicRemove {
        /// `vmkN` or port group.
        vmknic: String,
    },
    /// Enable a vmknic: its connected route returns and its TAP comes up.
    VmknicEnable {
        /// `vmkN` or port group.
        vmknic: String,
    },
    /// Disable a vmknic: its connected route is withdrawn and its TAP goes down.
    VmknicDisable {
        /// `vmkN` or port group.
        vmknic: String,
    },
    /// Change a vmknic's MTU.
    VmknicSetMtu {
        /// `vmkN` or port group.
        vmknic: String,
        /// 68-9000.
        mtu: u32,
    },
    /// Change a vmknic's primary address.
    VmknicSetAddress {
        /// `vmkN` or port group.
        vmknic: String,
        /// `a.b.c.d/len`; `dhcp` to take it from a DHCP server; empty for none.
        ip: String,
        /// With a static address: the vmknic's own default gateway, set with it in one change
        /// (`esxcli ... ipv4 set -g`), so that moving to another subnet and its gateway is not
        /// refused for the old gateway. Absent: the gateway stays as it is.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gateway: Option<String>,
    },
    /// List routes in ESX order.
    RouteList,
    /// List the IPv6 routes in ESX order (`esxcfg-route -f V6 -l`).
    Route6List,
    /// Add an IPv6 static route, or set the IPv6 default gateway (`network` `default` or
    /// `::/0`). The gateway is an address, or `fe80::1%vmk0` for a link-local one.
    Route6Add {
        /// `addr/len`, `default` or `::/0`.
        network: String,
        /// The gateway: on a vmknic IPv6 prefix, or link-local with its vmknic.
        gateway: String,
    },
    /// Remove an IPv6 static route, or the IPv6 default gateway (`default` or `::/0`).
    Route6Remove {
        /// `addr/len`, `default` or `::/0`.
        network: String,
    },
    /// List the netstacks (`esxcli network ip netstack list`).
    NetstackList,
    /// One netstack's settings (`esxcli network ip netstack get -N`).
    NetstackGet {
        /// Its name.
        name: String,
    },
    /// Add a netstack, empty (`esxcli network ip netstack add -N`).
    NetstackAdd {
        /// Its name.
        name: String,
    },
    /// Remove a netstack no vmknic uses (`esxcli network ip netstack remove -N`).
    NetstackRemove {
        /// Its name.
        name: String,
    },
    /// Turn a vmknic's IPv6 router-advertisement autoconfiguration on or off (`esxcfg-vmknic
    /// -P`, `esxcli network ip interface ipv6 set -r`); on turns IPv6 on.
    VmknicSetIpv6Autoconf {
        /// `vmkN` or port group.
        vmknic: String,
        /// On or off.
        enabled: bool,
    },
    /// Set a vmknic's IPv6 switches in one change (`esxcli network ip interface ipv6 set -e -r
    /// -d`); an absent one is kept.
    VmknicSetIpv6 {
        /// `vmkN` or port group.
        vmknic: String,
        /// IPv6 on (the link-local address alone when nothing else gives an address), or off
        /// (refused while static addresses, autoconfiguration or DHCPv6 remain).
        #[serde(default)]
        enabled: Option<bool>,
        /// Router-advertisement autoconfiguration.
        #[serde(default)]
        autoconf: Option<bool>,
        /// DHCPv6.
        #[serde(default)]
        dhcp: Option<bool>,
    },
    /// Set or clear a vmknic's own default gateway (ESXi 6.5+ override), on its subnet.
    VmknicSetGateway {
        /// `vmkN` or port group.
        vmknic: String,
        /// The gateway; absent: clear it (the netstack's default gateway applies again).
        #[serde(default)]
        gateway: Option<String>,
    },
    /// Add or remove a static IPv6 address of a vmknic (`esxcli network ip interface ipv6
    /// address add|remove`): live, and saved.
    VmknicIpv6Address {
        /// `vmkN` or port group.
        vmknic: String,
        /// `ADDR/LEN`.
        address: String,
        /// Remove it instead of adding it.
        #[serde(default)]
        remove: bool,
    },
    /// Add a static route.
    RouteAdd {
        /// `a.b.c.d/len`.
        network: String,
        /// Gateway on a vmknic subnet.
        gateway: String,
    },
    /// Remove a static route.
    RouteRemove {
        /// `a.b.c.d/len`.
        network: String,
        /// When given, must match the route's gateway.
        #[serde(default)]
        gateway: Option<String>,
    },
    /// Which route, vmknic, gateway and source traffic to a destination uses.
    RouteGet {
        /// The destination.
        destination: String,
        /// Traffic sent from this address (a vmknic's): its own default gateway may win.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<String>,
    },
    /// Show the default gateway.
    GatewayShow,
    /// Set (replace) the default gateway.
    GatewaySet {
        /// Gateway on a vmknic subnet.
        gateway: String,
    },
    /// Remove the default gateway.
    GatewayClear {
        /// When given, must match the current gateway.
        #[serde(default)]
        gateway: Option<String>,
    },
    /// List neighbours (ARP table).
    NeighborList,
    /// Forget a neighbour.
    NeighborRemove {
        /// Its address.
        ip: String,
        /// When given (`vmkN` or a port group), only the entry learned on that vmknic
        /// (`esxcli network ip neighbor remove -i`).
        #[serde(default)]
        vmknic: Option<String>,
    },
    /// Per-vmknic counters.
    Stats,
    /// What each data-plane stage cost (`stats --runtime`).
    Runtime,
    /// Stream captured packets (`pktcap-uw`): one response line, then capture records on the
    /// same connection until the client closes it (see [`crate::capture`]).
    Capture {
        /// What to capture.
        #[serde(default)]
        spec: crate::capture::CaptureSpec,
    },
    /// Send one ICMP echo from the stack and wait for the answer (vmkping sends one per line).
    Ping {
        /// Destination address.
        destination: String,
        /// Send from this vmknic, bypassing the routing lookup (`vmkping -I`).
        #[serde(default)]
        vmknic: Option<String>,
        /// ICMP payload bytes.
        size: u32,
        /// Set don't-fragment.
        #[serde(default)]
        df: bool,
        /// IP TTL.
        ttl: u8,
        /// How long to wait for the reply.
        timeout_ms: u32,
        /// ICMP sequence number.
        seq: u16,
        /// Send through this gateway, bypassing the routing table (`vmkping -N`); it must be
        /// on a vmknic subnet (of `vmknic` when given).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_hop: Option<String>,
    },
    /// Forward a kernel listening address through the stack to a remote address.
    ForwardAdd {
        /// Kernel address to listen on, `a.b.c.d:port` (in the daemon's namespace).
        listen: String,
        /// Where the stack connects, `a.b.c.d:port`.
        remote: String,
        /// Source vmknic (`-I`).
        #[serde(default)]
        vmknic: Option<String>,
        /// Most connections at once (default 64).
        #[serde(default)]
        max_connections: Option<u32>,
    },
    /// List forwards with their counters.
    ForwardList,
    /// Apply the configuration file on disk (a hand edit), as SIGHUP does: the changes made,
    /// or every problem named and nothing changed.
    Reload,
    /// Stop a forward (its connections are reset).
    ForwardRemove {
        /// Its listening address.
        listen: String,
    },
    /// Check a storage server from the stack: `iscsi` (connect, discovery login, SendTargets)
    /// or `nfs` (RPC NULL to portmapper, mountd and nfs; MOUNT EXPORT).
    StorageProbe {
        /// `iscsi` or `nfs`.
        kind: String,
        /// Server address.
        host: String,
        /// iSCSI port (default 3260).
        #[serde(default)]
        port: Option<u16>,
        /// Source vmknic (`-I`).
        #[serde(default)]
        vmknic: Option<String>,
        /// Timeout per step.
        timeout_ms: u32,
        /// iSCSI only: after discovery, read from the first disk LUN of the first target for
        /// this many seconds and report MB/s.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        read_test_secs: Option<u32>,
    },
    /// Open a TCP connection from the stack and close it (`nc -z`).
    TcpProbe {
        /// Destination address.
        destination: String,
        /// Destination port.
        port: u16,
        /// Send from this vmknic (`-I`).
        #[serde(default)]
        vmknic: Option<String>,
        /// Send from this address, which chooses the vmknic (`-s`); not with `vmknic`.
        #[serde(default)]
        source: Option<String>,
        /// How long to wait.
        timeout_ms: u32,
    },
}

impl Action {
    /// True for operations that change the stack's configuration (they need root or the
    /// control group).
    pub fn changes_state(&self) -> bool {
        matches!(
            self,
            Action::VmknicAdd { .. }
                | Action::VmknicRemove { .. }
                | Action::VmknicEnable { .. }
                | Action::VmknicDisable { .. }
                | Action::VmknicSetMtu { .. }
                | Action::VmknicSetAddress { .. }
                | Action::VmknicSetGateway { .. }
                | Action::VmknicSetIpv6Autoconf { .. }
                | Action::VmknicSetIpv6 { .. }
                | Action::VmknicIpv6Address { .. }
                | Action::NetstackAdd { .. }
                | Action::NetstackRemove { .. }
                | Action::RouteAdd { .. }
                | Action::RouteRemove { .. }
                | Action::Route6Add { .. }
                | Action::Route6Remove { .. }
                | Action::GatewaySet { .. }
                | Action::GatewayClear { .. }
                | Action::NeighborRemove { .. }
                | Action::ForwardAdd { .. }
                | Action::ForwardRemove { .. }
                | Action::Reload
                // Not a change, but it shows other people's traffic: as privileged as one.
                | Action::Capture { .. }
        )
    }
}

/// A vmknic as written: one `[[vmknic]]` table of the configuration file, and the vmknic
/// that `vmknic_add` carries (the same fields and rules; the daemon validates it with the
/// file's rules).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVmknic {
    /// `vmkN`.
    pub name: String,
    /// Port group (the name `esxcfg-vmknic` uses).
    pub portgroup: String,
    /// `a.b.c.d` (with `netmask` or `prefix_len`), `a.b.c.d/len`, `dhcp` (the address comes
    /// from a DHCP server), or empty/absent: no IPv4 address yet.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ip: String,
    /// Dotted netmask.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netmask: Option<String>,
    /// Prefix length, instead of a netmask.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_len: Option<i64>,
    /// More addresses, each `a.b.c.d/len`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_addresses: Vec<String>,
    /// MAC address (default: stable, derived from the name, in the configuration's
    /// `mac_style`: locally administered, or VMware's OUI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// MTU, 68-9000 (default 1500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<i64>,
    /// Enabled (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// TAP device name (default: the vmknic name), at most 15 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tap: Option<String>,
    /// Linux bridge for the TAP's kernel side to join (the port group's switch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<String>,
    /// Network namespace to move the TAP's kernel side into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
    /// The netstack it belongs to (default: the file's top-level netstack,
    /// `defaultTcpipStack`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netstack: Option<String>,
    /// Its own default gateway (ESXi 6.5+ "override default gateway"), on its own subnet:
    /// traffic sourced from its address with no more specific route leaves through it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// Static IPv6 addresses, each `addr/len` (`2001:db8:1::100/64`). A vmknic with any also
    /// gets a link-local address derived from its MAC (EUI-64); none: IPv6 is off on it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ipv6: Vec<String>,
    /// Router-advertisement autoconfiguration (ESXi's `esxcfg-vmknic -P`, `esxcli network ip
    /// interface ipv6 set -r`): IPv6 on, addresses and a default router from Router
    /// Advertisements (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_autoconf: Option<bool>,
    /// DHCPv6 (ESXi's `esxcli network ip interface ipv6 set -d true`): IPv6 on, an address
    /// from a DHCPv6 server (the lease is never saved; default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_dhcp: Option<bool>,
    /// IPv6 on with the link-local address alone (`esxcli network ip interface ipv6 set -e
    /// true`; default false). `false` is refused beside IPv6 addresses, `ipv6_autoconf` or
    /// `ipv6_dhcp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_enabled: Option<bool>,
}

/// Parses one request line (without its newline). Pure: the caller applies the request.
pub fn parse_request(line: &str) -> Result<Request, RemoteError> {
    if line.len() > MAX_LINE {
        return Err(RemoteError::new(
            ErrorKind::TooLong,
            format!("request is {} bytes; the limit is {MAX_LINE}", line.len()),
        ));
    }
    let value: Value = serde_json::from_str(line)
        .map_err(|e| RemoteError::new(ErrorKind::BadRequest, format!("not JSON: {e}")))?;
    match value.get("v").and_then(Value::as_u64) {
        Some(v) if v == u64::from(PROTOCOL_VERSION) => {}
        Some(v) => {
            return Err(RemoteError::new(
                ErrorKind::UnsupportedVersion,
                format!(
                    "protocol version {v} is not supported (this daemon speaks {PROTOCOL_VERSION})"
                ),
            ))
        }
        None => {
            return Err(RemoteError::new(
                ErrorKind::BadRequest,
                "missing protocol version: send {\"v\":1,\"action\":{\"op\":...}}",
            ))
        }
    }
    let req: Request = serde_json::from_value(value.clone())
        .map_err(|e| RemoteError::new(ErrorKind::BadRequest, format!("bad request: {e}")))?;
    // serde ignores extra fields on unit variants (`{"op":"route_list","x":1}`): compare the
    // keys with the request as it reads back, so every unknown field is refused.
    let back = serde_json::to_value(&req.action).unwrap_or(Value::Null);
    if let (Some(sent), Some(known)) = (value["action"].as_object(), back.as_object()) {
        if let Some(k) = sent.keys().find(|k| !known.contains_key(*k)) {
            return Err(RemoteError::new(
                ErrorKind::BadRequest,
                format!("bad request: unknown field `{k}` for op `{}`", known["op"]),
            ));
        }
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_parse_route_add() {
        let r = parse_request(
            r#"{"v":1,"action":{"op":"route_add","network":"198.18.100.0/24","gateway":"198.18.1.1"}}"#,
        )
        .unwrap();
        assert_eq!(
            r.action,
            Action::RouteAdd {
                network: "198.18.100.0/24".into(),
                gateway: "198.18.1.1".into()
            }
        );
        assert!(r.action.changes_state());
    }

    #[test]
    fn test_round_trip_every_shape() {
        for a in [
            Action::VmknicList,
            Action::RouteGet {
                destination: "198.18.1.1".into(),
                source: None,
            },
            Action::Ping {
                destination: "198.18.1.1".into(),
                vmknic: Some("vmk1".into()),
                size: 56,
                df: true,
                ttl: 64,
                timeout_ms: 1000,
                seq: 3,
                next_hop: Some("198.18.1.254".into()),
            },
            Action::GatewayClear { gateway: None },
        ] {
            let line = serde_json::to_string(&Request {
                v: 1,
                netstack: None,
                action: a.clone(),
            })
            .unwrap();
            assert_eq!(parse_request(&line).unwrap().action, a);
        }
    }

    #[test]
    fn test_bad_requests() {
        let kind = |l: &str| parse_request(l).unwrap_err().kind;
        assert_eq!(kind("{"), ErrorKind::BadRequest);
        assert_eq!(kind("[]"), ErrorKind::BadRequest);
        assert_eq!(
            kind(r#"{"action":{"op":"route_list"}}"#),
            ErrorKind::BadRequest
        );
        assert_eq!(
            kind(r#"{"v":2,"action":{"op":"route_list"}}"#),
            ErrorKind::UnsupportedVersion
        );
        let e = parse_request(r#"{"v":1,"action":{"op":"reboot"}}"#).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadRequest);
        assert!(
            e.message.contains("unknown variant `reboot`"),
            "{}",
            e.message
        );
        let e = parse_request(r#"{"v":1,"action":{"op":"route_add","network":"x"}}"#).unwrap_err();
        assert!(
            e.message.contains("missing field `gateway`"),
            "{}",
            e.message
        );
        let e = parse_request(r#"{"v":1,"action":{"op":"route_list","x":1}}"#).unwrap_err();
        assert!(e.message.contains("unknown field `x`"), "{}", e.message);
        let long = format!(r#"{{"v":1,"pad":"{}"}}"#, "x".repeat(MAX_LINE));
        assert_eq!(kind(&long), ErrorKind::TooLong);
    }

    #[test]
    fn test_read_only_actions() {
        assert!(!Action::RouteList.changes_state());
        assert!(!Action::Stats.changes_state());
        assert!(Action::NeighborRemove {
            ip: "198.18.1.1".into(),
            vmknic: None
        }
        .changes_state());
    }
}
