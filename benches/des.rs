//! Our DES (src/hsm/soft/des) against the `des` crate it replaced, in the
//! same run (issue 21: hsm-sim and the test peers spent most of their CPU
//! in DES): ns per single-DES block, per TDES (EDE2) block, per key
//! schedule, and per retail MAC (ISO 9797-1 algorithm 3) over 200 bytes,
//! its schedules included. Exits non-zero if ours is not faster at each.
//!
//!   cargo bench --bench des
//!   DES_BENCH_ITERS=2000000 cargo bench --bench des
//!
//! The best of five timed runs: the bench machine is shared, and the best
//! run is the one least disturbed. For figures that do not depend on the
//! load, count instructions: `valgrind --tool=callgrind` on the binary.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use cardswitch::hsm::soft::TdesKey;
use cardswitch::hsm::soft::des::{DesCipher, Schedule};
use cardswitch::hsm::soft::mac::{Padding, alg3};
use des::cipher::generic_array::GenericArray;
use des::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};

const K1: [u8; 8] = *b"\x01\x23\x45\x67\x89\xAB\xCD\xEF";
const K2: [u8; 8] = *b"\xFE\xDC\xBA\x98\x76\x54\x32\x10";

/// The best ns per call of `f` over five runs of `iters` calls.
fn ns_per(iters: u32, mut f: impl FnMut(u32)) -> f64 {
    (0..5)
        .map(|_| {
            let start = Instant::now();
            for i in 0..iters {
                f(i);
            }
            start.elapsed().as_nanos() as f64 / f64::from(iters)
        })
        .fold(f64::INFINITY, f64::min)
}

/// A chained run of blocks: each block's input is the last one's output,
/// so that the blocks cannot overlap (as in CBC, or a DUKPT derivation).
fn chained(iters: u32, mut encrypt: impl FnMut(&mut [u8; 8])) -> f64 {
    let mut b = [0u8; 8];
    let ns = ns_per(iters, |_| encrypt(&mut b));
    black_box(b);
    ns
}

/// The `des` crate's retail MAC, as src/hsm/soft/mac.rs computed it with
/// the crate: a CBC-MAC under K1 (ISO 9797-1 padding method 2), then
/// decrypt under K2 and encrypt under K1.
fn crate_retail_mac(k1: &[u8; 8], k2: &[u8; 8], data: &[u8]) -> [u8; 8] {
    let (l, r) = (des::Des::new(k1.into()), des::Des::new(k2.into()));
    let mut padded = data.to_vec();
    padded.push(0x80);
    padded.resize(padded.len().div_ceil(8) * 8, 0);
    let mut chain = GenericArray::from([0u8; 8]);
    for block in padded.chunks_exact(8) {
        chain.iter_mut().zip(block).for_each(|(c, b)| *c ^= b);
        l.encrypt_block(&mut chain);
    }
    r.decrypt_block(&mut chain);
    l.encrypt_block(&mut chain);
    chain.into()
}

struct Row {
    what: &'static str,
    ours: f64,
    theirs: f64,
}

fn measure(iters: u32) -> Vec<Row> {
    let ours1 = DesCipher::single(&K1);
    let theirs1 = des::Des::new(&K1.into());
    let ours2 = DesCipher::ede2(&K1, &K2);
    let key2: Vec<u8> = [K1, K2].concat();
    let theirs2 = des::TdesEde2::new_from_slice(&key2).expect("16-byte key");
    let ga = |b: &mut [u8; 8]| -> GenericArray<u8, _> { GenericArray::from(*b) };
    let data: Vec<u8> = (0..200u32).map(|i| i as u8).collect();
    let mac_key = TdesKey::from_bytes(&key2).expect("16-byte key");
    let keys: Vec<[u8; 8]> = (0..64u64)
        .map(|i| (i * 0x0101_0101_0101_0101).to_be_bytes())
        .collect();
    let pick = |i: u32| &keys[(i % 64) as usize];
    vec![
        Row {
            what: "DES block",
            ours: chained(iters, |b| ours1.encrypt_block(b)),
            theirs: chained(iters, |b| {
                let mut g = ga(b);
                theirs1.encrypt_block(&mut g);
                *b = g.into();
            }),
        },
        Row {
            what: "TDES (EDE2) block",
            ours: chained(iters / 3, |b| ours2.encrypt_block(b)),
            theirs: chained(iters / 3, |b| {
                let mut g = ga(b);
                theirs2.encrypt_block(&mut g);
                *b = g.into();
            }),
        },
        Row {
            what: "DES key schedule",
            ours: ns_per(iters, |i| {
                drop(black_box(Schedule::new(black_box(pick(i)))))
            }),
            theirs: ns_per(iters, |i| {
                drop(black_box(des::Des::new(black_box(pick(i).into()))))
            }),
        },
        Row {
            what: "retail MAC, 200 bytes",
            ours: ns_per(iters / 30, |_| {
                black_box(alg3(&mac_key, black_box(&data), Padding::Method2).expect("MAC"));
            }),
            theirs: ns_per(iters / 30, |_| {
                black_box(crate_retail_mac(&K1, &K2, black_box(&data)));
            }),
        },
    ]
}

fn main() -> ExitCode {
    // `cargo bench` passes --bench; `cargo test --benches` does not, and
    // then one quick pass checks that the bench runs.
    let benching = std::env::args().any(|a| a == "--bench");
    let iters = std::env::var("DES_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if benching { 1_000_000 } else { 300 });
    let mac = alg3(
        &TdesKey::from_bytes(&[K1, K2].concat()).expect("key"),
        b"check",
        Padding::Method2,
    )
    .expect("MAC");
    assert_eq!(
        mac,
        crate_retail_mac(&K1, &K2, b"check"),
        "the two MACs agree"
    );
    println!(
        "{:<24} {:>10} {:>12} {:>8}",
        "ns per", "ours", "des crate", "speedup"
    );
    let mut slower = Vec::new();
    for row in measure(iters) {
        let speedup = row.theirs / row.ours;
        println!(
            "{:<24} {:>10.1} {:>12.1} {:>7.2}x",
            row.what, row.ours, row.theirs, speedup
        );
        if speedup <= 1.0 {
            slower.push(row.what);
        }
    }
    if benching && !slower.is_empty() {
        eprintln!("FAILED: ours is not faster at {}", slower.join(", "));
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
