// The body of the program `cargo xtask compare-scanner` builds (see xtask/src/compare.rs): after
// the generated modules `base` (the scanner at the revision compared against), `base_again` (the
// same sources compiled a second time) and `changed` (the working tree's). All scan the same
// bodies in rotating windows, so whatever slows this machine down slows them alike, and each
// round gives one ratio to `base` per side.

use std::time::{Duration, Instant};

use changed::sensitive::corpus::{
    BENCH_BODIES, BENCH_BODY_BYTES, BENCH_SEED, BENCH_SENSITIVE_PERCENT, SCAN_NOW_SECS,
};

/// Bodies scanned between looks at the clock: a look costs less than one body, a batch far less
/// than a window.
const BODIES_PER_CLOCK_READ: usize = 32;

fn main() {
    let mut args = std::env::args().skip(1);
    let mut next = |default: u64| args.next().and_then(|a| a.parse().ok()).unwrap_or(default);
    let windows = next(150) as usize;
    let window = Duration::from_millis(next(100));
    let corpus = next(0) == 1;
    let check_findings = next(1) == 1;

    let bodies = if corpus {
        changed::sensitive::corpus::json_bodies(BENCH_SEED, BENCH_BODIES, BENCH_BODY_BYTES)
    } else {
        changed::sensitive::corpus::api_bodies(
            BENCH_SEED,
            BENCH_BODIES,
            BENCH_BODY_BYTES,
            BENCH_SENSITIVE_PERCENT,
        )
    };
    // Each side scans a body and, when asked, describes what it found (as printed: the trees'
    // types are distinct even where they are the same).
    macro_rules! side {
        ($tree:ident) => {{
            let scanner = $tree::sensitive::scan::Scanner::builtin();
            let source = $tree::sensitive::fields::Source::Body(Some("application/json"));
            let mut found = Vec::new();
            Box::new(move |body: &str, describe: bool| {
                found.clear();
                scanner.scan_source(source, body, SCAN_NOW_SECS, &mut found);
                describe.then(|| format!("{found:?}"))
            }) as Box<dyn FnMut(&str, bool) -> Option<String>>
        }};
    }
    // `base_again` is `base` compiled a second time: how far it strays from `base` is what code
    // placement and the measurement alone make of no change at all.
    let mut sides = [
        ("base", side!(base)),
        ("base_again", side!(base_again)),
        ("changed", side!(changed)),
    ];

    let differing = bodies
        .iter()
        .filter(|body| {
            let [(_, base), _, (_, changed)] = &mut sides;
            base(body, true) != changed(body, true)
        })
        .count();
    if differing > 0 {
        println!("findings differ on {differing} of {} bodies", bodies.len());
        if check_findings {
            std::process::exit(2);
        }
    } else {
        println!("findings identical on all {} bodies", bodies.len());
    }

    let bytes_per_body = bodies.iter().map(String::len).sum::<usize>() / bodies.len();
    let mut rates = [Vec::new(), Vec::new(), Vec::new()];
    let mut next_body = [0; 3];
    for round in 0..windows {
        // The order rotates, so no side always follows another.
        for turn in 0..sides.len() {
            let side = (round + turn) % sides.len();
            let scan = &mut sides[side].1;
            rates[side].push(measure(scan, &bodies, &mut next_body[side], window));
        }
    }
    println!(
        "{} bodies of ~{bytes_per_body} bytes, {windows} rounds of {} ms windows",
        bodies.len(),
        window.as_millis()
    );
    for ((name, _), rates) in sides.iter().zip(&rates) {
        let mut rates = rates.clone();
        println!(
            "{name:<10} MB/s median {:.0}, 90th percentile {:.0}",
            quantile(&mut rates, 0.5),
            quantile(&mut rates, 0.9)
        );
    }
    for side in 1..sides.len() {
        let mut ratios: Vec<f64> = rates[side]
            .iter()
            .zip(&rates[0])
            .map(|(a, b)| a / b)
            .collect();
        println!(
            "{} / base, window by window: median {:.3} (quartiles {:.3}-{:.3})",
            sides[side].0,
            quantile(&mut ratios, 0.5),
            quantile(&mut ratios, 0.25),
            quantile(&mut ratios, 0.75)
        );
    }
}

/// MB/s of `scan` over bodies taken in turn from `*next` for one window.
fn measure(
    scan: &mut dyn FnMut(&str, bool) -> Option<String>,
    bodies: &[String],
    next: &mut usize,
    window: Duration,
) -> f64 {
    let started = Instant::now();
    let mut bytes = 0;
    // Each body is copied into one buffer before its scan, as the sensitive bench does: the
    // agent scans a body reassembly has just written, not one scattered over a cold heap.
    let mut received = String::new();
    while started.elapsed() < window {
        for _ in 0..BODIES_PER_CLOCK_READ {
            let body = &bodies[*next % bodies.len()];
            *next += 1;
            received.clear();
            received.push_str(body);
            std::hint::black_box(scan(&received, false));
            bytes += body.len();
        }
    }
    bytes as f64 / started.elapsed().as_secs_f64() / 1e6
}

fn quantile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * q).round() as usize]
}
