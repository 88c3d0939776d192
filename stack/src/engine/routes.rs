//! The netstack's routing table as the engine uses it: the routing core's table plus the
//! per-vmknic default gateways (ESXi 6.5+ "override default gateway").
//!
//! A vmknic's own gateway applies to what the stack itself sends from that vmknic's address
//! when the table has no more specific route than the default one; forwarded packets and
//! traffic from other addresses follow the table alone. The overrides are a flat list rebuilt
//! when vmknics change (usually empty: one branch per locally sent packet).

use std::net::Ipv4Addr;
use std::ops::{Deref, DerefMut};

use vmkstack_routing::{Origin, RoutingTable, VmknicId};

/// A vmknic's own default gateway, keyed by one of its addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceGateway {
    /// An address of the vmknic: traffic sourced from it uses `gateway`.
    pub source: Ipv4Addr,
    /// The vmknic.
    pub vmknic: VmknicId,
    /// Its gateway, on its subnet.
    pub gateway: Ipv4Addr,
}

/// The routing table and the per-vmknic gateways.
#[derive(Debug, Clone, Default)]
pub(crate) struct Routes {
    table: RoutingTable,
    overrides: Vec<SourceGateway>,
    /// Bumped by every mutable access to the table: the workers' snapshot is rebuilt when it
    /// moved.
    generation: u64,
}

impl Routes {
    /// The table `table`, no per-vmknic gateway yet.
    pub(crate) fn new(table: RoutingTable) -> Routes {
        Routes {
            table,
            overrides: Vec::new(),
            generation: 0,
        }
    }

    /// Moves whenever the table may have changed.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Replaces the table; the per-vmknic gateways stay.
    pub(crate) fn set_table(&mut self, table: RoutingTable) {
        self.generation += 1;
        self.table = table;
    }

    /// Replaces the per-vmknic gateways.
    pub(crate) fn set_overrides(&mut self, o: impl IntoIterator<Item = SourceGateway>) {
        self.overrides.clear();
        self.overrides.extend(o);
    }

    /// The per-vmknic gateway that applies to traffic from `source`, if any.
    #[inline]
    pub(crate) fn override_for(&self, source: Ipv4Addr) -> Option<&SourceGateway> {
        if self.overrides.is_empty() {
            return None;
        }
        self.overrides.iter().find(|o| o.source == source)
    }

    /// Where a packet the stack sends from `src` to `dst` goes: egress vmknic and the address
    /// ARP resolves. The table's route, unless it is the default route (or there is none) and
    /// `src` belongs to a vmknic with its own gateway.
    #[inline]
    pub(crate) fn local_next_hop(
        &self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> Option<(VmknicId, Ipv4Addr)> {
        let route = self.table.lookup(dst);
        if route.is_none_or(|r| r.origin == Origin::Default) {
            if let Some(o) = self.override_for(src) {
                return Some((o.vmknic, o.gateway));
            }
        }
        let r = route?;
        Some((r.next_hop.vmknic(), r.next_hop.neighbor_for(dst)))
    }
}

impl Deref for Routes {
    type Target = RoutingTable;

    fn deref(&self) -> &RoutingTable {
        &self.table
    }
}

impl DerefMut for Routes {
    fn deref_mut(&mut self) -> &mut RoutingTable {
        self.generation += 1;
        &mut self.table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn test_local_next_hop() {
        let mut t = RoutingTable::new();
        t.set_vmknic(VmknicId(0), vec!["198.18.1.100/24".parse().unwrap()], true);
        t.set_vmknic(VmknicId(1), vec!["198.18.2.100/24".parse().unwrap()], true);
        t.set_default_gateway(a("198.18.1.1")).unwrap();
        t.add_static("198.18.100.0/25".parse().unwrap(), a("198.18.1.1"))
            .unwrap();
        let mut r = Routes::new(t);
        let (vmk0, vmk1) = (VmknicId(0), VmknicId(1));
        // No override: the table decides whatever the source.
        assert_eq!(
            r.local_next_hop(a("198.18.2.100"), a("198.18.200.5")),
            Some((vmk0, a("198.18.1.1")))
        );
        r.set_overrides([SourceGateway {
            source: a("198.18.2.100"),
            vmknic: vmk1,
            gateway: a("198.18.2.1"),
        }]);
        // From vmk1's address, the default route gives way to vmk1's gateway...
        assert_eq!(
            r.local_next_hop(a("198.18.2.100"), a("198.18.200.5")),
            Some((vmk1, a("198.18.2.1")))
        );
        // ...but not a more specific route, nor a connected subnet.
        assert_eq!(
            r.local_next_hop(a("198.18.2.100"), a("198.18.100.5")),
            Some((vmk0, a("198.18.1.1")))
        );
        assert_eq!(
            r.local_next_hop(a("198.18.2.100"), a("198.18.1.7")),
            Some((vmk0, a("198.18.1.7")))
        );
        // From another address: the default gateway.
        assert_eq!(
            r.local_next_hop(a("198.18.1.100"), a("198.18.200.5")),
            Some((vmk0, a("198.18.1.1")))
        );
        // No route at all: the override still sends vmk1's traffic out.
        r.clear_default_gateway().unwrap();
        assert_eq!(
            r.local_next_hop(a("198.18.2.100"), a("198.18.200.5")),
            Some((vmk1, a("198.18.2.1")))
        );
        assert_eq!(r.local_next_hop(a("198.18.1.100"), a("198.18.200.5")), None);
    }
}
