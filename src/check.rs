//! `vmkstack check`: validate a configuration offline and show what ESX would show.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;

use serde::Serialize;
use vmkstack_routing::{Explanation, RouteEntry, RouteError};
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
}

/// The answer for one `--lookup` address.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum LookupAnswer {
    /// A route was found.
    Route(Explanation),
    /// No route.
    Unreachable {
        /// The address.
        destination: Ipv4Addr,
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
        if !self.lookups.is_empty() {
            out.push_str("\nLookups:\n");
            for l in &self.lookups {
                match l {
                    LookupAnswer::Route(e) => {
                        let _ = writeln!(out, "  {e}");
                    }
                    LookupAnswer::Unreachable { destination, error } => {
                        let _ = writeln!(out, "  {destination}: {error}");
                    }
                }
            }
        }
        out
    }
}

/// A hint after the ESX message: which subnets a gateway could be on.
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

/// Loads `path` and builds the report. A file that does not load is an error.
pub fn check(path: &Path, lookups: &[Ipv4Addr]) -> Result<CheckReport, ConfigError> {
    let cfg = Config::load(path)?;
    let (table, problems) = cfg.routing();
    // IPv6's problems (its default gateway with ESX's message) are reported beside IPv4's.
    let problems6 = cfg.routing6().1.into_iter().map(|e| format!("IPv6: {e}"));
    Ok(CheckReport {
        config: path.display().to_string(),
        netstack: cfg.netstack.clone(),
        forwarding: cfg.forwarding,
        vmknics: vmknic_rows(&cfg),
        routes: table.entries(),
        problems: problems
            .iter()
            .map(|e| explain_problem(e, &cfg))
            .chain(problems6)
            .collect(),
        lookups: lookups
            .iter()
            .map(|&dst| match table.explain(dst) {
                Ok(e) => LookupAnswer::Route(e),
                Err(e) => LookupAnswer::Unreachable {
                    destination: dst,
                    error: e.to_string(),
                },
            })
            .collect(),
    })
}
