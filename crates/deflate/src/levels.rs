//! Which libdeflate level to use for a zlib level number, where the number is a setting users
//! know from libostree (`archive.zlib-level`): the setting promises a density, and libdeflate's
//! own level N compresses harder (and costs more) than zlib's N.
//!
//! Measured per object (1 MiB pieces for libdeflate) against C zlib, on every 8th file of a
//! Debian `/usr` (8,189 files, 320 MB): for each zlib level the cheapest libdeflate level that
//! was still smaller (by 0.45% or more), see docs/decisions.md. libostree's default, 6, becomes
//! libdeflate 5: on the whole tree (65,509 files, 3.15 GB) 0.19% smaller than zlib 6, with 17%
//! less CPU than libdeflate 6. Content varies: on executables alone it is up to ~0.7% larger.

/// libdeflate level giving at least zlib `level`'s density (levels above 9 are 9; 0 is stored).
pub fn for_zlib_level(level: u32) -> u32 {
    const TABLE: [u32; 10] = [0, 1, 2, 2, 3, 5, 5, 6, 6, 6];
    TABLE[level.min(9) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_and_never_above_the_zlib_number() {
        let mut prev = 0;
        for zl in 0..=9 {
            let l = for_zlib_level(zl);
            assert!(l >= prev, "zlib {zl}");
            assert!(l <= zl, "zlib {zl}");
            prev = l;
        }
        assert_eq!(for_zlib_level(0), 0, "stored stays stored");
        assert_eq!(for_zlib_level(42), for_zlib_level(9));
    }
}
