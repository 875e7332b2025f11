//! The ostree-container tar format.
