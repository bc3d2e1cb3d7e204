//! The detectors on the labelled corpus (`sensitive::corpus`): the targets the issue sets, held
//! by a test, and a check that scanning hostile input costs time linear in its size.

use std::time::Duration;

use observer::sensitive::{
    corpus::{self, Score},
    fields::Source,
    scan::Scanner,
    types::DataType,
};

/// The corpus the benchmark reports on.
const SEED: u64 = 0x5EED_0B5E;
const SAMPLES_PER_TYPE: usize = 150;

const F1_TARGET: f64 = 0.97;
const SECRET_PRECISION_TARGET: f64 = 0.99;

fn table(scores: &[(DataType, Score)]) -> String {
    scores
        .iter()
        .map(|(t, s)| {
            format!(
                "{:<16} P {:.3} R {:.3} F1 {:.3} (tp {} fp {} fn {})\n",
                t.name(),
                s.precision(),
                s.recall(),
                s.f1(),
                s.true_positives,
                s.false_positives,
                s.false_negatives
            )
        })
        .collect()
}

#[test]
fn every_type_meets_the_f1_target_and_secrets_the_precision_target() {
    let samples = corpus::generate(SEED, SAMPLES_PER_TYPE * DataType::ALL.len());
    let (scores, mistakes) = corpus::evaluate(&Scanner::builtin(), &samples, 40);
    let report = format!("{}\n{}", table(&scores), mistakes.join("\n"));
    for (data_type, score) in &scores {
        assert!(
            score.true_positives + score.false_negatives >= 50,
            "too few {data_type} in the corpus to measure\n{report}"
        );
        assert!(
            score.f1() >= F1_TARGET,
            "{data_type} F1 below target\n{report}"
        );
        if corpus::is_secret(*data_type) {
            assert!(
                score.precision() >= SECRET_PRECISION_TARGET,
                "{data_type} precision below target\n{report}"
            );
        }
    }
}

#[test]
fn the_corpus_is_the_same_for_the_same_seed() {
    let a = corpus::generate(7, 100);
    let b = corpus::generate(7, 100);
    assert!(a
        .iter()
        .zip(&b)
        .all(|(x, y)| x.text == y.text && x.labels == y.labels));
    let c = corpus::generate(8, 100);
    assert!(a.iter().zip(&c).any(|(x, y)| x.text != y.text));
}

/// CPU time this thread has used: unlike wall time, it does not count the time other processes
/// (parallel builds, other tests) had the core.
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let result = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(result, 0, "clock_gettime");
    Duration::new(
        u64::try_from(now.tv_sec).unwrap_or(0),
        u32::try_from(now.tv_nsec).unwrap_or(0),
    )
}

/// The fastest of a few runs, in CPU time: the least disturbed by whatever else the machine
/// does. Every run scans (none recalls the run before it).
fn best_time(scanner: &Scanner, source: Source<'_>, text: &str) -> Duration {
    let mut found = Vec::new();
    (0..7)
        .map(|_| {
            found.clear();
            let started = thread_cpu_time();
            scanner.scan_afresh(source, text, 0, &mut found);
            thread_cpu_time().saturating_sub(started)
        })
        .min()
        .unwrap_or_default()
}

#[test]
fn hostile_input_costs_linear_time() {
    let scanner = Scanner::builtin();
    let json = Source::Body(Some("application/json"));
    let text = Source::Body(Some("text/plain"));
    let cases: &[(&str, Source<'_>, &str)] = &[
        ("at signs", text, "a@"),
        ("dotted at signs", text, "a.b@c."),
        ("digits and spaces", text, "1 "),
        ("digit groups", text, "4111-"),
        ("dotted digits", text, "1."),
        ("jwt prefixes", text, "eyJhbGciOi."),
        ("pem headers", text, "-----BEGIN PRIVATE KEY-----"),
        ("url schemes", text, "a://b:c"),
        ("bearer words", text, "Bearer "),
        ("aws prefixes", text, "AKIA"),
        ("iban prefixes", text, "GB82 "),
        ("ipv6 colons", text, "1:"),
        ("open brackets", json, "["),
        ("quotes and escapes", json, "\"\\"),
        ("keys", json, "{\"password\":"),
        ("mrz fillers", text, "<<"),
    ];
    const SMALL: usize = 16 * 1024;
    let mut slow = Vec::new();
    for (name, source, unit) in cases {
        let small = unit.repeat(SMALL / unit.len());
        let large = unit.repeat(4 * SMALL / unit.len());
        let t_small = best_time(&scanner, *source, &small).max(Duration::from_micros(50));
        let t_large = best_time(&scanner, *source, &large);
        let ratio = t_large.as_secs_f64() / t_small.as_secs_f64();
        // Linear is 4; quadratic would be 16. The margin absorbs noise on a busy machine.
        if ratio >= 9.0 {
            slow.push(format!(
                "{name}: {SMALL} bytes took {t_small:?}, 4x as many {t_large:?} (x{ratio:.1})"
            ));
        }
    }
    assert!(slow.is_empty(), "superlinear:\n{}", slow.join("\n"));
}
