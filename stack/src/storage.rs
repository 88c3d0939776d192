//! Storage-probe codecs (iSCSI discovery, ONC RPC portmapper and MOUNT): the pure
//! [`vmkstack_storage_wire`] crate, re-exported here so that `crate::storage::X` and
//! `vmkstack_stack::storage::X` keep naming them.

pub use vmkstack_storage_wire::*;
