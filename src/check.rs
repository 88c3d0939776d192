//! `vmkstack check`: validate a configuration offline and show what ESX would show.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;

use serde::Serialize;
use vmkstack_routing::{
    Explanation, Explanation6, RouteEntry, RouteError, RoutingTable, RoutingTable6,
};
use vmkstack_stack::{Config, ConfigError};

use crate::listing::{format_routes, format_vmknics, vmknic_rows, VmknicRow};

/// Everything `check` found, in a form that prints as text or JSON.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// The file checked.
    pub config: String,
    /// Netstack name.
    pub netstack: String,
    /// Forwarding switch.
    pub forwarding: bool,
    /// `esxcfg-vmknic -l` rows.
    pub vmknics: Vec<VmknicRow>,
    /// `esxcfg-route -l` rows.
    pub routes: Vec<RouteEntry>,
    /// Problems, each a message (the default gateway's is ESX's text verbatim).
    pub problems: Vec<String>,
    /// One answer per `--lookup`.
    pub lookups: Vec<LookupAnswer>,
    /// The other netstacks (`[[netstack_instance]]`), each with its routing table and
    /// lookups; absent when there are none. Their problems are in `problems`, named.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub netstacks: Vec<NetstackReport>,
}

/// What `check` found for a netstack other than the top-level one.
#[derive(Debug, Clone, Serialize)]
pub struct NetstackReport {
    /// Its name.
    pub name: String,
    /// Its forwarding switch.
    pub forwarding: bool,
    /// `esxcfg-route -N NAME -l` rows.
    pub routes: Vec<RouteEntry>,
    /// One answer per `--lookup`, in its routing table.
    pub lookups: Vec<LookupAnswer>,
}

/// The answer for one `--lookup` address.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum LookupAnswer {
    /// A route was found.
    Route(Explanation),
    /// An IPv6 route was found (in the IPv6 table).
    Route6(Explanation6),
    /// No route.
    Unreachable {
        /// The address.
        destination: IpAddr,
        /// Why.
        error: String,
    },
}

impl CheckReport {
    /// True when there is nothing to fix.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// The text form: both listings, the problems and the lookups.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# {} ({}, forwarding {})\n",
            self.config,
            self.netstack,
            if self.forwarding { "on" } else { "off" }
        );
        out.push_str("$ esxcfg-vmknic -l\n");
        out.push_str(&format_vmknics(&self.vmknics));
        out.push_str("\n$ esxcfg-route -l\n");
        out.push_str(&format_routes(&self.routes));
        write_lookups(&mut out, "Lookups:", &self.lookups);
        for n in &self.netstacks {
            let _ = writeln!(
                out,
                "\n# netstack {} (forwarding {})\n$ esxcfg-route -N {} -l",
                n.name,
                if n.forwarding { "on" } else { "off" },
                n.name
            );
            out.push_str(&format_routes(&n.routes));
            write_lookups(&mut out, &format!("Lookups (-N {}):", n.name), &n.lookups);
        }
        out
    }
}

/// The lookups' answers under `title`; nothing when there are none.
fn write_lookups(out: &mut String, title: &str, lookups: &[LookupAnswer]) {
    if lookups.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{title}");
    for l in lookups {
        match l {
            LookupAnswer::Route(e) => {
                let _ = writeln!(out, "  {e}");
            }
            LookupAnswer::Route6(e) => {
                let _ = writeln!(out, "  {e}");
            }
            LookupAnswer::Unreachable { destination, error } => {
                let _ = writeln!(out, "  {destination}: {error}");
            }
        }
    }
}

/// The answers of `table` (IPv4) and `table6` (IPv6) for `lookups`.
fn lookup_all(
    table: &RoutingTable,
    table6: &RoutingTable6,
    lookups: &[IpAddr],
) -> Vec<LookupAnswer> {
    lookups
        .iter()
        .map(|&dst| {
            let found = match dst {
                IpAddr::V4(d) => table
                    .explain(d)
                    .map(LookupAnswer::Route)
                    .map_err(|e| e.to_string()),
                IpAddr::V6(d) => table6
                    .explain(d)
                    .map(LookupAnswer::Route6)
                    .map_err(|e| e.to_string()),
            };
            found.unwrap_or_else(|error| LookupAnswer::Unreachable {
                destination: dst,
                error,
            })
        })
        .collect()
}

/// A hint after the ESX message: which subnets a gateway could be on (`cfg` is one
/// netstack's view: only its vmknics count).
fn explain_problem(e: &RouteError, cfg: &Config) -> String {
    let subnets: Vec<String> = cfg
        .vmknics
        .iter()
        .filter(|v| v.enabled)
        .flat_map(|v| {
            v.addresses()
                .map(move |a| format!("{} ({})", a.trunc(), v.id))
        })
        .collect();
    let on = if subnets.is_empty() {
        "no vmknic is enabled".to_string()
    } else {
        format!("vmknic subnets: {}", subnets.join(", "))
    };
    match e {
        RouteError::GatewayUnreachable { gateway } => format!(
            "{e}\n  (default gateway {gateway} is on no vmknic subnet; {on}; it stays inactive)"
        ),
        RouteError::RouteGatewayUnreachable { .. } => format!("{e}\n  ({on}; it stays inactive)"),
        _ => e.to_string(),
    }
}

/// Loads `path` and builds the report: every vmknic, and each netstack's routing table,
/// problems and lookups. A file that does not load is an error.
pub fn check(path: &Path, lookups: &[IpAddr]) -> Result<CheckReport, ConfigError> {
    let cfg = Config::load(path)?;
    let (table, found) = cfg.routing();
    let own = cfg.view(&cfg.netstack).unwrap_or_else(|| cfg.clone());
    let mut problems: Vec<String> = found.iter().map(|e| explain_problem(e, &own)).collect();
    // IPv6's problems (its default gateway with ESX's message) are reported beside IPv4's.
    let (table6, found6) = own.routing6();
    problems.extend(found6.into_iter().map(|e| format!("IPv6: {e}")));
    let mut netstacks = Vec::new();
    for name in cfg.netstack_names().skip(1) {
        let Some(view) = cfg.view(name) else {
            continue;
        };
        let (t, found) = view.routing();
        problems.extend(
            found
                .iter()
                .map(|e| format!("netstack `{name}`: {}", explain_problem(e, &view))),
        );
        let (t6, found6) = view.routing6();
        problems.extend(
            found6
                .into_iter()
                .map(|e| format!("netstack `{name}`: IPv6: {e}")),
        );
        netstacks.push(NetstackReport {
            name: name.to_string(),
            forwarding: view.forwarding,
            routes: t.entries(),
            lookups: lookup_all(&t, &t6, lookups),
        });
    }
    Ok(CheckReport {
        config: path.display().to_string(),
        netstack: cfg.netstack.clone(),
        forwarding: cfg.forwarding,
        vmknics: vmknic_rows(&cfg),
        routes: table.entries(),
        problems,
        lookups: lookup_all(&table, &table6, lookups),
        netstacks,
    })
}
