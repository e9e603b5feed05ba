//! The switch's own work per purchase, without sockets or tasks: the
//! acquirer's frame parsed, the core's request path, the forwarded
//! message built in the issuer's dialect, the issuer's answer parsed, the
//! core's answer path and the reply built in the acquirer's dialect, then
//! the written report (issue 20: the CPU a request costs the switch; the
//! rest is the kernel's and the node's). Without and with a journal (its
//! records made, not written). The issuer's answer is made outside the
//! measured time.
//!
//!   cargo bench --bench core -- --noplot

use std::hint::black_box;
use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::Bytes;
use cardswitch::message::{Message, Mti, Spec};
use cardswitch::node::config::SwitchConfig;
use cardswitch::node::core_config;
use cardswitch::switch::core::{Action, ConnId, Core, Input, Origin, Time};
use criterion::{Criterion, criterion_group, criterion_main};

const CONFIG: &str = r#"
[switch]
institution_id = "99000000001"
[[acquirer]]
name = "pos"
listen = "127.0.0.1:0"
spec = "iso87-ascii"
framing = { length = "binary2" }
in_flight_max = 1024
[[issuer]]
name = "issuer"
addresses = ["127.0.0.1:9"]
spec = "iso87-ascii"
framing = { length = "binary2" }
[[route]]
bins = ["476173"]
issuer = "issuer"
"#;

const AUTH: &str = include_str!("../fixtures/golden/iso87-ascii/0100-auth-request.hex");

/// The binary's allocator, so that allocation costs as it does there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A frame and where its DE11 (six ASCII digits) sits in it, so that
/// copies with another STAN cost a patch, not a build.
struct Template {
    frame: Vec<u8>,
    stan_at: usize,
}

impl Template {
    fn new(spec: &Spec, mut m: Message) -> Template {
        m.set(11, Bytes::from_static(b"987654")).expect("DE11");
        let frame = spec.build(&m).expect("build").to_vec();
        let stan_at = frame
            .windows(6)
            .position(|w| w == b"987654")
            .expect("DE11 in the frame");
        Template { frame, stan_at }
    }

    fn with_stan(&self, stan: u64) -> Bytes {
        let mut frame = self.frame.clone();
        let digits = format!("{:06}", stan % 1_000_000);
        frame[self.stan_at..self.stan_at + 6].copy_from_slice(digits.as_bytes());
        Bytes::from(frame)
    }
}

/// The golden purchase.
fn golden(spec: &Spec) -> Message {
    spec.parse(&Bytes::from(hex::decode(AUTH.trim()).expect("hex")))
        .expect("golden 0100")
}

/// The issuer's approval of what the switch sent it.
fn approval(sent: &Message) -> Message {
    let mut answer = sent.clone();
    answer.set_mti(Mti::from_digits(*b"0110").expect("mti"));
    answer.set(38, Bytes::from_static(b"A1B2C3")).expect("DE38");
    answer.set(39, Bytes::from_static(b"00")).expect("DE39");
    answer
}

/// A core and its traffic, kept across samples so that its tables are
/// warm (the duplicate cache full and evicting, as in a switch under load).
struct Bench {
    core: Core,
    spec: std::sync::Arc<Spec>,
    request: Template,
    answer: Option<Template>,
    /// Requests so far: the STAN, and the virtual clock (200 us each, so
    /// a STAN comes back only long after the duplicate window).
    count: u64,
    start: Instant,
}

impl Bench {
    fn new(journal: bool) -> Bench {
        let mut config = SwitchConfig::from_toml(CONFIG, "bench.toml").expect("config");
        config.journal = None;
        let mut cfg = core_config::core_config(&config, None);
        cfg.journal = journal;
        // The switch's own spec, as the node parses with it: a spec loaded
        // apart has another identity, and the core would check again every
        // value it parsed (~5,000 instructions a purchase the switch does
        // not spend; callgrind).
        let spec = config.acquirers[0].spec.clone();
        Bench {
            core: Core::new(cfg),
            request: Template::new(&spec, golden(&spec)),
            spec,
            answer: None,
            count: 0,
            start: Instant::now(),
        }
    }

    /// Runs `n` purchases; returns the time spent in the switch's parts
    /// (parse, core, build).
    fn purchases(&mut self, n: u64) -> Duration {
        let frames: Vec<Bytes> = (self.count..self.count + n)
            .map(|i| self.request.with_stan(i))
            .collect();
        let mut spent = Duration::ZERO;
        for frame in &frames {
            self.count += 1;
            let now = Time {
                mono: self.start + Duration::from_micros(200 * self.count),
                wall: UNIX_EPOCH + Duration::from_secs(1_764_000_000),
            };
            let t = Instant::now();
            let sent = self.request_path(now, frame);
            spent += t.elapsed();
            let sent = self.spec.parse(&sent).expect("forwarded");
            let spec = &self.spec;
            let answers = self
                .answer
                .get_or_insert_with(|| Template::new(spec, approval(&sent)));
            let answer = answers.with_stan(sent.get_u64(11).expect("the switch's STAN"));
            let t = Instant::now();
            let message = self.spec.parse(&answer).expect("answer");
            self.core.handle(
                now,
                Input::FromIssuer {
                    issuer: 0,
                    message: Box::new(message),
                },
            );
            answer_path(&mut self.core, now);
            spent += t.elapsed();
        }
        assert_eq!(self.core.open_transactions(), 0, "every purchase closed");
        spent
    }

    /// A request parsed and handled; the frame the core forwarded.
    fn request_path(&mut self, now: Time, frame: &Bytes) -> Bytes {
        let message = Box::new(self.spec.parse(frame).expect("request"));
        let from = Origin {
            conn: ConnId(self.count % 8),
            acquirer: 0,
            tag: self.count,
        };
        self.core.handle(now, Input::Request { from, message });
        let mut sent = None;
        for _ in 0..2 {
            let mut token = None;
            while let Some(action) = self.core.poll_action() {
                match action {
                    Action::ToIssuer { frame, .. } => sent = Some(frame),
                    Action::Append { durable, .. } => token = token.or(durable),
                    _ => {}
                }
            }
            match token {
                Some(token) => self.core.handle(now, Input::Durable { token, ok: true }),
                None => break,
            }
        }
        sent.expect("forwarded")
    }
}

/// The core's answer path to the written report.
fn answer_path(core: &mut Core, now: Time) {
    let mut pending = Vec::new();
    loop {
        while let Some(action) = core.poll_action() {
            match action {
                Action::Reply { frame, confirm, .. } => {
                    black_box(frame);
                    if let Some(txn) = confirm {
                        pending.push(Input::Written {
                            txn,
                            delivered: true,
                        });
                    }
                }
                Action::Append {
                    durable: Some(token),
                    ..
                } => pending.push(Input::Durable { token, ok: true }),
                _ => {}
            }
        }
        let Some(input) = pending.pop() else { break };
        core.handle(now, input);
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("core");
    for journal in [false, true] {
        let name = if journal {
            "purchase_journaled"
        } else {
            "purchase"
        };
        let mut bench = Bench::new(journal);
        group.bench_function(name, |b| b.iter_custom(|iters| bench.purchases(iters)));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
