//! A small, exact GVariant codec: the serialisation GLib uses for every ostree metadata object.
//!
//! Encoding always produces normal form (what GLib produces); decoding validates framing and
//! [`from_bytes_normal`] additionally insists that re-encoding gives back the input bytes, which
//! is how libostree's "normal form" check is reproduced.

mod decode;
mod types;
mod value;

pub use decode::{from_bytes, from_bytes_normal};
pub use types::{MAX_DEPTH, Type};
pub use value::Value;

#[cfg(test)]
mod tests;
