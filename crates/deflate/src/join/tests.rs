use std::io::{Read, Write};
use std::process::Command;

use proptest::prelude::*;
use rand::{RngCore, SeedableRng};

use super::*;

const MIB: usize = 1 << 20;

fn random(n: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

/// Text-like data: words from a small vocabulary with random choices (dynamic blocks).
fn text(n: usize, seed: u64) -> Vec<u8> {
    const WORDS: [&[u8]; 8] = [
        b"ostree ",
        b"container ",
        b"layer ",
        b"commit ",
        b"dirtree ",
        b"\n",
        b"0x1f8b ",
        b"sha256 ",
    ];
    let r = random(n, seed);
    let mut out = Vec::with_capacity(n + 16);
    let mut i = 0;
    while out.len() < n {
        out.extend_from_slice(WORDS[usize::from(r[i % n.max(1)]) % 8]);
        if r[i % n.max(1)] > 200 {
            out.push(r[(i * 7) % n.max(1)]);
        }
        i += 1;
    }
    out.truncate(n);
    out
}

/// Long runs of a few byte values (long matches, distance 1).
fn runs(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| [0u8, b'a', 0xff][(i / 100_000) % 3])
        .collect()
}

fn inputs() -> Vec<(String, Vec<u8>)> {
    let mut v = vec![
        ("empty".to_string(), Vec::new()),
        ("one".to_string(), b"x".to_vec()),
        (
            "short text".to_string(),
            b"hello hello hello ostree".to_vec(),
        ),
        ("zeros 1 MiB".to_string(), vec![0u8; MIB]),
        ("runs 3 MiB".to_string(), runs(3 * MIB)),
        ("random 1 MiB".to_string(), random(MIB, 1)),
        ("random 70000".to_string(), random(70_000, 2)),
    ];
    for n in [1000, MIB - 1, MIB, MIB + 1] {
        v.push((format!("text {n}"), text(n, n as u64)));
    }
    let mut mixed = text(MIB / 2, 9);
    mixed.extend(random(MIB / 2, 10));
    mixed.extend(runs(MIB / 4));
    v.push(("mixed".to_string(), mixed));
    v
}

fn libdeflate(data: &[u8], level: i32) -> Vec<u8> {
    let lvl = libdeflater::CompressionLvl::new(level).unwrap();
    let mut c = libdeflater::Compressor::new(lvl);
    let mut out = vec![0u8; c.deflate_compress_bound(data.len())];
    let n = c.deflate_compress(data, &mut out).unwrap();
    out.truncate(n);
    out
}

fn flate2(data: &[u8], level: u32) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(level));
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Every stream under test: (description, input, raw deflate of it).
fn streams() -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let mut v = Vec::new();
    for (name, data) in inputs() {
        for level in [0, 1, 6, 9, 12] {
            v.push((
                format!("libdeflate {level} {name}"),
                data.clone(),
                libdeflate(&data, level),
            ));
        }
        for level in [0, 1, 6, 9] {
            v.push((
                format!("flate2 {level} {name}"),
                data.clone(),
                flate2(&data, level),
            ));
        }
    }
    v
}

fn inflate(raw: &[u8]) -> Vec<u8> {
    let mut back = Vec::new();
    flate2::read::DeflateDecoder::new(raw)
        .read_to_end(&mut back)
        .unwrap();
    back
}

fn gzip_wrap(raw: &[u8], data: &[u8]) -> Vec<u8> {
    let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    gz.extend_from_slice(raw);
    let mut crc = crc32fast::Hasher::new();
    crc.update(data);
    gz.extend_from_slice(&crc.finalize().to_le_bytes());
    gz.extend_from_slice(&(data.len() as u32).to_le_bytes());
    gz
}

/// Decompresses with the real `gzip -dc` (the test fails if gzip is missing).
fn gzip_dc(gz: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("joined.gz");
    std::fs::write(&path, gz).unwrap();
    let out = Command::new("gzip")
        .arg("-dc")
        .arg(&path)
        .output()
        .expect("gzip must be installed to run this test");
    assert!(
        out.status.success(),
        "gzip -dc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn btype(raw: &[u8]) -> u8 {
    (raw[0] >> 1) & 3
}

#[test]
fn hand_made_stream() {
    // A non-final empty fixed block (bits 0..10), then a final one (bits 10..20).
    let raw = [0x02, 0x0c, 0x00];
    assert!(inflate(&raw).is_empty());
    assert_eq!(
        walk(&raw),
        Ok(Bounds {
            final_header_bit: 10,
            end_bit: 20
        })
    );
    let mut p = raw.to_vec();
    join(&mut p).unwrap();
    // BFINAL cleared at bit 10; stored header at bits 20..23, padded to byte 3.
    assert_eq!(p, [0x02, 0x08, 0x00, 0x00, 0x00, 0xff, 0xff]);
}

#[test]
fn all_block_types_are_covered() {
    assert_eq!(btype(&flate2(b"abc", 0)), 0);
    assert_eq!(btype(&libdeflate(&random(1000, 3), 0)), 0);
    assert_eq!(btype(&flate2(&[b'a'; 200], 6)), 1);
    assert_eq!(btype(&libdeflate(&[b'a'; 200], 6)), 1);
    assert_eq!(btype(&flate2(&text(MIB, 4), 6)), 2);
    assert_eq!(btype(&libdeflate(&text(MIB, 4), 6)), 2);
}

#[test]
fn walk_finds_the_exact_end() {
    for (name, data, raw) in streams() {
        assert_eq!(inflate(&raw), data, "{name}");
        let b = walk(&raw).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(b.final_header_bit < b.end_bit, "{name}");
        assert_eq!(b.end_bit.div_ceil(8), raw.len() as u64, "{name}");
        // Trailing bytes do not change the bounds.
        let mut more = raw.clone();
        more.extend_from_slice(&[0xff, 0x00, 0x5a]);
        assert_eq!(walk(&more), Ok(b), "{name}");
        assert!(
            matches!(join(&mut more), Err(WalkError::TrailingBytes { extra: 3 })),
            "{name}"
        );
    }
}

#[test]
fn joined_pieces_decode_as_one_stream() {
    let all = streams();
    // Every piece joined, then a final piece as its compressor made it.
    let mut raw = Vec::new();
    let mut data = Vec::new();
    for (name, input, piece) in &all {
        let mut p = piece.clone();
        join(&mut p).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(&p[p.len() - 4..], [0, 0, 0xff, 0xff], "{name}");
        // A joined piece alone inflates to its input (flate2 accepts a missing final block).
        let mut back = Vec::new();
        let mut d = flate2::Decompress::new(false);
        back.reserve(input.len() + 64);
        d.decompress_vec(&p, &mut back, flate2::FlushDecompress::Sync)
            .unwrap();
        assert_eq!(d.total_in(), p.len() as u64, "{name}");
        assert_eq!(&back, input, "{name}");
        raw.extend_from_slice(&p);
        data.extend_from_slice(input);
    }
    let last = text(5000, 77);
    raw.extend_from_slice(&libdeflate(&last, 6));
    data.extend_from_slice(&last);
    assert_eq!(inflate(&raw), data);
    let gz = gzip_wrap(&raw, &data);
    let mut back = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut back)
        .unwrap();
    assert!(back == data, "GzDecoder output differs");
    assert!(gzip_dc(&gz) == data, "gzip -dc output differs");
}

#[test]
fn truncated_streams_are_errors() {
    for (name, _, raw) in streams() {
        let lens: Vec<usize> = if raw.len() <= 2000 {
            (0..raw.len()).collect()
        } else {
            let step = raw.len() / 50;
            (0..raw.len())
                .step_by(step)
                .chain([raw.len() - 1])
                .collect()
        };
        for n in lens {
            assert!(walk(&raw[..n]).is_err(), "{name} cut at {n}");
        }
    }
}

#[test]
fn malformed_headers_are_errors() {
    // Reserved block type.
    assert!(matches!(
        walk(&[0x07]),
        Err(WalkError::ReservedBlockType { bit: 0 })
    ));
    // Stored length not matching its complement.
    assert!(matches!(
        walk(&[0x01, 0x05, 0x00, 0x00, 0x00]),
        Err(WalkError::StoredLength { byte: 1 })
    ));
    // Dynamic block with HLIT = 287 (31 + 257 > 286).
    assert!(matches!(
        walk(&[0xfd, 0xff, 0xff, 0xff]),
        Err(WalkError::TooManyCodes { .. })
    ));
    assert!(walk(&[]).is_err());
}

proptest! {
    #[test]
    fn walk_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(b) = walk(&bytes) {
            prop_assert!(b.end_bit <= bytes.len() as u64 * 8);
            prop_assert!(b.final_header_bit < b.end_bit);
        }
        let mut p = bytes.clone();
        let _ = join(&mut p);
    }

    #[test]
    fn corrupted_streams_never_panic(
        seed in any::<u64>(),
        level in 0i32..=12,
        flips in proptest::collection::vec((any::<usize>(), 0u8..8), 1..8),
    ) {
        let data = text(3000, seed);
        let mut raw = libdeflate(&data, level);
        for (at, bit) in flips {
            let n = raw.len();
            raw[at % n] ^= 1 << bit;
        }
        if let Ok(b) = walk(&raw) {
            prop_assert!(b.end_bit <= raw.len() as u64 * 8);
        }
        let _ = join(&mut raw);
    }
}
