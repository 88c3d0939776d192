//! The vmkstack daemon.
