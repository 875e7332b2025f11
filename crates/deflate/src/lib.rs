//! Raw deflate (RFC 1951) written as independent pieces, so that one stream can be compressed
//! on several cores by libdeflate, which is faster than zlib at the same level and has no
//! streaming API.
//!
//! Input is cut into fixed [`BLOCK`]-sized blocks; each is compressed alone (no dictionary) and
//! every piece but the last is made non-final and byte-aligned by [`join::join`], so the pieces
//! concatenate into one valid stream. The bytes depend only on the input and the level, never
//! on the number of threads: images built from it stay reproducible.
//!
//! Used by gzip layers (encapsulate) and by archive-mode object payloads (the repository).

pub mod join;
pub mod levels;
mod pieces;

pub use join::{Bounds, WalkError, join, walk};
pub use pieces::{BLOCK, PieceWriter, compress_piece, default_window};
