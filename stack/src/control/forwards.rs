//! The daemon's port forwards, one [`Forwarder`] per netstack that has forwards.
//!
//! A forward's connections are sockets of its netstack's smoltcp endpoint, so each
//! netstack's forwards are polled against that netstack's engine. Every forwarder listens in
//! the daemon's namespace, so a listen address is forwarded once, whatever the netstack. A
//! forwarder is made when its netstack gets its first forward (its epoll registered with the
//! event loop under a token of its own) and dropped with its last one, which closes its
//! epoll and so takes it out of the loop.

use std::io;
use std::net::SocketAddr;

use mio::{Registry, Token};
use vmkstack_api::ForwardInfo;

use crate::apps::port_forward::{ForwardSpec, Forwarder};
use crate::netstack::{Netstack, FOREIGN_TOKENS};

/// One netstack's forwarder.
struct PerNetstack {
    /// The netstack's name (its index may change when netstacks come and go).
    netstack: String,
    forwarder: Forwarder,
    /// The listen addresses it holds.
    listens: Vec<SocketAddr>,
}

/// Every forward of the daemon, by netstack.
pub(crate) struct Forwards {
    /// The event loop's registry, where each forwarder's epoll is registered.
    registry: Registry,
    per_netstack: Vec<PerNetstack>,
    /// The next event-loop token for a new forwarder's epoll.
    next_token: usize,
}

impl Forwards {
    /// No forwards yet; forwarders will wake the event loop whose registry is `registry`.
    pub(crate) fn new(registry: &Registry) -> io::Result<Forwards> {
        Ok(Forwards {
            registry: registry.try_clone()?,
            per_netstack: Vec::new(),
            next_token: FOREIGN_TOKENS,
        })
    }

    /// The netstack forwarding `listen`, if any.
    pub(crate) fn netstack_of(&self, listen: SocketAddr) -> Option<&str> {
        self.per_netstack
            .iter()
            .find(|p| p.listens.contains(&listen))
            .map(|p| p.netstack.as_str())
    }

    /// Starts listening for `spec` on its netstack. Refused if its listen address is already
    /// forwarded (on any netstack) or cannot be bound.
    pub(crate) fn add(&mut self, spec: ForwardSpec) -> io::Result<()> {
        if let Some(ns) = self.netstack_of(spec.listen) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} is already forwarded (netstack `{ns}`)", spec.listen),
            ));
        }
        let i = match self
            .per_netstack
            .iter()
            .position(|p| p.netstack == spec.netstack)
        {
            Some(i) => i,
            None => {
                let token = Token(self.next_token);
                self.next_token += 1;
                self.per_netstack.push(PerNetstack {
                    netstack: spec.netstack.clone(),
                    forwarder: Forwarder::new(&self.registry, token)?,
                    listens: Vec::new(),
                });
                self.per_netstack.len() - 1
            }
        };
        let p = &mut self.per_netstack[i];
        let listen = spec.listen;
        let added = p.forwarder.add(spec);
        match added {
            Ok(()) => p.listens.push(listen),
            Err(_) if p.listens.is_empty() => {
                self.per_netstack.swap_remove(i);
            }
            Err(_) => {}
        }
        added
    }

    /// Stops the forward on `listen`, resetting its connections (sockets of its netstack's
    /// engine in `stack`). False if there is none.
    pub(crate) fn remove(&mut self, listen: SocketAddr, stack: &mut Netstack) -> bool {
        let Some(i) = self
            .per_netstack
            .iter()
            .position(|p| p.listens.contains(&listen))
        else {
            return false;
        };
        let p = &mut self.per_netstack[i];
        let Some(engine) = stack
            .index_of(&p.netstack)
            .and_then(|n| stack.engine_mut(n))
        else {
            // Its netstack is gone (never while it has forwards): nothing of it to close.
            p.listens.retain(|l| *l != listen);
            if p.listens.is_empty() {
                self.per_netstack.swap_remove(i);
            }
            return true;
        };
        let removed = p.forwarder.remove(listen, engine);
        p.listens.retain(|l| *l != listen);
        if p.listens.is_empty() {
            self.per_netstack.swap_remove(i);
        }
        removed
    }

    /// The forwards with their counters, rates and netstacks: netstack `only`'s, or all.
    pub(crate) fn list(&self, only: Option<&str>) -> Vec<ForwardInfo> {
        self.per_netstack
            .iter()
            .filter(|p| only.is_none_or(|n| n == p.netstack))
            .flat_map(|p| p.forwarder.list())
            .collect()
    }

    /// Runs every netstack's forwards against its own engine: accepts, relays, closes.
    pub(crate) fn poll(&mut self, stack: &mut Netstack) {
        for p in &mut self.per_netstack {
            // At most 16 names compared; netstack indexes change only when netstacks do.
            if let Some(engine) = stack
                .index_of(&p.netstack)
                .and_then(|n| stack.engine_mut(n))
            {
                p.forwarder.poll(engine);
            }
        }
    }
}
