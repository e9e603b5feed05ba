//! Route lookup per authorization: the example configuration (three BIN
//! prefixes and one range) and a large table (2,000 six-digit BINs, 500
//! eight-digit BINs, 200 ranges, 100 routes with conditions), for a PAN that
//! hits the longest prefix, one that falls through to a shorter one, one in
//! a range and one that reaches the default route.
//! Goal (issue 4): well under 200 ns per lookup.
//!
//!   cargo bench --bench routing -- --noplot

use std::hint::black_box;
use std::path::Path;

use cardswitch::message::Mti;
use cardswitch::node::config::SwitchConfig;
use cardswitch::switch::routing::{RouteDecision, RouteTable};
use criterion::{Criterion, criterion_group, criterion_main};

fn example() -> RouteTable {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/switch/example.toml");
    let config = SwitchConfig::load(path).expect("example.toml");
    config.route_table()
}

/// A configuration with many routes over four issuers.
fn large() -> RouteTable {
    let mut text = String::from(
        "[switch]\ninstitution_id = \"1\"\n\n[[acquirer]]\nname = \"pos\"\nlisten = \"127.0.0.1:0\"\nspec = \"iso87-ascii\"\nframing = { length = \"ascii4\" }\n",
    );
    for i in 0..4 {
        text.push_str(&format!(
            "\n[[issuer]]\nname = \"issuer-{i}\"\naddresses = [\"127.0.0.1:{}\"]\nspec = \"iso87-ascii\"\nframing = {{ length = \"binary2\" }}\n",
            9101 + i
        ));
    }
    // 2,000 six-digit BINs in 20 routes, spread over 400000-499999.
    for r in 0..20 {
        let bins: Vec<String> = (0..100)
            .map(|k| format!("\"{}\"", 400_000 + (r * 100 + k) * 47))
            .collect();
        text.push_str(&format!(
            "\n[[route]]\nbins = [{}]\nissuer = \"issuer-{}\"\n",
            bins.join(", "),
            r % 4
        ));
    }
    // 500 eight-digit BINs in 5 routes.
    for r in 0..5 {
        let bins: Vec<String> = (0..100)
            .map(|k| format!("\"{}\"", 47_000_000 + (r * 100 + k) * 1_913))
            .collect();
        text.push_str(&format!(
            "\n[[route]]\nbins = [{}]\nissuer = \"issuer-{}\"\n",
            bins.join(", "),
            r % 4
        ));
    }
    // 200 ranges of 100 six-digit prefixes over 510000-529999.
    for r in 0..200 {
        let from = 510_000 + r * 100;
        text.push_str(&format!(
            "\n[[route]]\nbin_range = {{ from = \"{from}\", to = \"{}\" }}\nissuer = \"issuer-{}\"\n",
            from + 99,
            r % 4
        ));
    }
    // 100 seven-digit routes with conditions.
    for r in 0..100 {
        text.push_str(&format!(
            "\n[[route]]\nbins = [\"{}\"]\nissuer = \"issuer-{}\"\nmti = [\"0200\"]\nprocessing_code = [\"01\"]\ncurrency = [\"978\"]\n",
            4_500_000 + r * 11,
            r % 4
        ));
    }
    let config = SwitchConfig::from_toml(&text, "large.toml").expect("large config");
    config.route_table()
}

fn lookups(c: &mut Criterion) {
    let mti: Mti = "0100".parse().expect("mti");
    let pc = Some(b"000000".as_slice());
    let currency = Some(b"840".as_slice());
    let mut group = c.benchmark_group("route");

    let table = example();
    let cases: [(&str, &[u8]); 3] = [
        ("example/7-digit", b"4761739001010010"),
        ("example/range", b"5454001234567890"),
        ("example/default", b"4000001234567899"),
    ];
    for (name, pan) in cases {
        group.bench_function(name, |b| {
            b.iter(|| table.route(black_box(pan), black_box(mti), pc, currency))
        });
    }

    let table = large();
    let eight = format!("{}12345678", 47_000_000 + 250 * 1_913);
    let six = format!("{}1234567890", 400_000 + 1_000 * 47);
    // A seven-digit route whose conditions fail: falls through to length 6.
    let through = format!("{}123456789", 4_500_000 + 50 * 11);
    assert!(matches!(
        table.route(eight.as_bytes(), mti, pc, currency),
        RouteDecision::Issuer { .. }
    ));
    assert!(matches!(
        table.route(six.as_bytes(), mti, pc, currency),
        RouteDecision::Issuer { .. }
    ));
    let cases: [(&str, &[u8]); 5] = [
        ("large/8-digit", eight.as_bytes()),
        ("large/6-digit", six.as_bytes()),
        ("large/conditions-fail", through.as_bytes()),
        ("large/range", b"5155551234567890"),
        ("large/default", b"6011000000000004"),
    ];
    for (name, pan) in cases {
        group.bench_function(name, |b| {
            b.iter(|| table.route(black_box(pan), black_box(mti), pc, currency))
        });
    }
    group.finish();
}

criterion_group!(benches, lookups);
criterion_main!(benches);
