use std::io::{Read, Write};

use super::*;

fn compress(data: &[u8], level: u32, window: usize) -> Vec<u8> {
    let mut w = PieceWriter::new(Vec::new(), level, window, Some(data.len() as u64));
    for chunk in data.chunks(100_000) {
        w.write_all(chunk).unwrap();
    }
    assert_eq!(w.total_in(), data.len() as u64);
    w.finish().unwrap()
}

fn inflate(raw: &[u8]) -> Vec<u8> {
    let mut back = Vec::new();
    flate2::read::DeflateDecoder::new(raw)
        .read_to_end(&mut back)
        .unwrap();
    back
}

/// Partly compressible: text-like runs between pseudo-random bytes.
fn sample(n: usize) -> Vec<u8> {
    let mut x = 0x1234_5678u32;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if i % 7 < 4 {
                b"ostree container "[i % 17]
            } else {
                (x & 0xff) as u8
            }
        })
        .collect()
}

#[test]
fn round_trip_around_block_boundaries() {
    for n in [0, 1, 1000, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 12345] {
        let data = sample(n);
        for level in [0, 1, 6, 9] {
            let a = compress(&data, level, 1);
            assert_eq!(inflate(&a), data, "n={n} level={level}");
            // The window (parallelism) does not change the bytes.
            assert_eq!(compress(&data, level, 7), a, "n={n} level={level}");
        }
    }
}

#[test]
fn short_input_is_one_libdeflate_stream() {
    let data = sample(300_000);
    let mut c = libdeflater::Compressor::new(libdeflater::CompressionLvl::new(6).unwrap());
    let mut whole = vec![0u8; c.deflate_compress_bound(data.len())];
    let n = c.deflate_compress(&data, &mut whole).unwrap();
    whole.truncate(n);
    assert_eq!(compress(&data, 6, 4), whole);
}

#[test]
fn bytes_do_not_depend_on_threads_or_write_sizes() {
    let data = sample(3 * BLOCK + 999);
    let a = compress(&data, 6, 1);
    // On a pool thread (a one-thread pool, as RAYON_NUM_THREADS=1): compressed inline.
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    assert_eq!(one.install(|| compress(&data, 6, 7)), a);
    let mut w = PieceWriter::new(Vec::new(), 6, 3, None);
    for chunk in data.chunks(BLOCK) {
        w.write_all(chunk).unwrap();
    }
    assert_eq!(w.finish().unwrap(), a);
}

#[test]
fn level_above_nine_is_nine() {
    let data = sample(5000);
    assert_eq!(compress(&data, 12, 1), compress(&data, 9, 1));
}

/// CPU seconds (user + system) of `/proc/<who>/stat` (ticks of 10 ms).
fn cpu(who: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{who}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    // Fields 14 and 15 of stat(5); `after` starts at field 3.
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}

/// Figures for the notes, not a check: libdeflate's and the block walker's CPU on the pieces
/// of a sample file, and the size of the joined stream against serial zlib (flate2) at the same
/// level. `DEFLATE_SAMPLE=<file> DEFLATE_LEVEL=6 cargo test --release -p ostree-deflate
/// --lib pieces::tests::figures -- --ignored --nocapture`.
#[test]
#[ignore]
fn figures() {
    let path = std::env::var("DEFLATE_SAMPLE").expect("DEFLATE_SAMPLE");
    let level: u32 = std::env::var("DEFLATE_LEVEL").map_or(6, |l| l.parse().unwrap());
    let data = std::fs::read(path).unwrap();
    let (cpu0, t0) = (cpu("self"), std::time::Instant::now());
    let ours = compress(&data, level, 2 * rayon::current_num_threads() + 2).len();
    let (cpu1, t1) = (cpu("self"), std::time::Instant::now());
    // One thread: libdeflate time vs walker time on the same pieces.
    let c0 = cpu("thread-self");
    let pieces: Vec<Vec<u8>> = data
        .chunks(BLOCK)
        .map(|b| compress_piece(b, level, true).unwrap())
        .collect();
    let c1 = cpu("thread-self");
    for _ in 0..5 {
        for p in &pieces {
            std::hint::black_box(crate::walk(p).unwrap());
        }
    }
    let c2 = cpu("thread-self");
    let (deflate_s, walk_s) = (c1 - c0, (c2 - c1) / 5.0);
    let mut serial =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(level));
    serial.write_all(&data).unwrap();
    let serial = serial.finish().unwrap().len();
    println!(
        "level {level}, {} threads: {ours} bytes ({:+.2}% vs serial zlib {serial}), {:.2} s CPU, \
         {:.2} s wall; libdeflate {deflate_s:.2} s CPU on one thread, walker {walk_s:.3} s \
         ({:.1}% of it)",
        rayon::current_num_threads(),
        100.0 * (ours as f64 / serial as f64 - 1.0),
        cpu1 - cpu0,
        (t1 - t0).as_secs_f64(),
        100.0 * walk_s / deflate_s
    );
}
