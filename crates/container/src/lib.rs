//! OSTree commits inside OCI container images.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::panic))]
