//! Replay against an issuer simulator: a pcap recorded by an issuer with
//! `--approve-limit 100000`, replayed against one with `--approve-limit
//! 20000`, reports exactly the changed answers (approvals above 20000 now
//! declined 51: DE39 and nothing else outside the volatile fields); against
//! an unchanged issuer it reports no difference and exits 0.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use cardswitch::capture::read::read_file;
use cardswitch::capture::replay::exchanges;
use cardswitch::link::framing::{Framing, LengthHeader};
use cardswitch::message::Spec;
use serde_json::Value;
use support::certs::temp_dir;
use support::process::{run, start_listening};

#[test]
fn one_changed_rule_reports_exactly_the_changed_responses() {
    let dir = temp_dir("replay-issuer");
    let pcap = dir.join("issuer.pcap");
    let p = pcap.display().to_string();
    let mut sim = start_listening(&[
        "issuer-sim",
        "--listen",
        "127.0.0.1:0",
        "--approve-limit",
        "100000",
        "--capture",
        &p,
    ]);
    let (code, out, err) = run(&[
        "load",
        "--target",
        &sim.addr,
        "--requests",
        "400",
        "--connections",
        "4",
        "--in-flight",
        "4",
        "--amount-min",
        "100",
        "--amount-max",
        "60000",
        "--seed",
        "11",
    ]);
    assert_eq!(code, 0, "load: {out}{err}");
    assert!(
        sim.terminate(Duration::from_secs(10))
            .is_some_and(|s| s.success())
    );

    // Expected: the captured approvals whose amount is above the new limit.
    let spec = Spec::resolve("iso87-ascii").expect("spec");
    let capture = read_file(&pcap, None, &Framing::new(LengthHeader::Binary2), None).expect("read");
    assert!(capture.problems.is_empty(), "{:?}", capture.problems);
    let links = capture.links();
    assert_eq!(links, vec!["10.0.0.1:8583"]);
    let (ex, problems) = exchanges(&capture, links[0], &spec);
    assert!(problems.is_empty());
    assert_eq!(ex.len(), 400);
    let expected: BTreeSet<u64> = ex
        .iter()
        .filter(|e| {
            let captured = e.captured.as_ref().expect("captured response");
            captured.get_str(39) == Some("00") && e.request.get_u64(4).unwrap_or(0) > 20000
        })
        .map(|e| e.index as u64)
        .collect();
    assert!(
        expected.len() > 50,
        "the load should cross the limit often: {}",
        expected.len()
    );

    let changed = start_listening(&[
        "issuer-sim",
        "--listen",
        "127.0.0.1:0",
        "--approve-limit",
        "20000",
    ]);
    let report = dir.join("report.json");
    let r = report.display().to_string();
    let (code, out, err) = run(&[
        "replay",
        "--capture",
        &p,
        "--target",
        &changed.addr,
        "--fast",
        "--report",
        &r,
    ]);
    assert_ne!(code, 0, "differences must fail the replay: {out}{err}");
    assert!(
        out.contains(&format!(
            "sent 400, matched 400, identical {}, differing {}",
            400 - expected.len(),
            expected.len()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("differing by field: DE39: {}", expected.len())),
        "{out}"
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("json");
    let reported: BTreeSet<u64> = report["differences"]
        .as_array()
        .expect("differences")
        .iter()
        .map(|d| {
            let fields = d["fields"].as_array().expect("fields");
            assert_eq!(fields.len(), 1, "{d}");
            assert_eq!(fields[0]["field"], "39");
            assert_eq!(fields[0]["captured"], "00");
            assert_eq!(fields[0]["replayed"], "51");
            d["exchange"].as_u64().expect("index")
        })
        .collect();
    assert_eq!(reported, expected);
    assert_eq!(report["summary"]["missing"], 0);
    assert_eq!(report["summary"]["extra"], 0);

    // The same issuer rules: no difference, exit 0, at a scaled pacing.
    let same = start_listening(&[
        "issuer-sim",
        "--listen",
        "127.0.0.1:0",
        "--approve-limit",
        "100000",
    ]);
    let (code, out, err) = run(&[
        "replay",
        "--capture",
        &p,
        "--target",
        &same.addr,
        "--speed",
        "50",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("sent 400, matched 400, identical 400, differing 0, missing 0, extra 0"),
        "{out}"
    );
    // Without the volatile rule, the authorization codes differ (DE38).
    let (code, out, _) = run(&[
        "replay",
        "--capture",
        &p,
        "--target",
        &same.addr,
        "--fast",
        "--volatile",
        "7,11,12,13,37",
    ]);
    assert_ne!(code, 0);
    assert!(out.contains("DE38:"), "{out}");
}
