//! Inventory benchmark: update throughput with 10,000 distinct endpoints, memory under
//! unbounded path cardinality, and the cost of a flush. Prints figures; asserts nothing about
//! time (machines differ), only that the inventory stayed within its caps.
//!
//! `cargo bench -p observer-user --bench inventory` (run by `cargo xtask bench`).

use std::{
    fmt::Write as _,
    hint::black_box,
    time::{Duration, Instant},
};

use observer::{
    conn::Role,
    inventory::{Inventory, FLUSH_INTERVAL_NS, FLUSH_SLICE_ENDPOINTS, MAX_ENDPOINTS},
    model::{call_time, ApiCall, CallStatus, HeaderMap},
    pipeline::Analyzer,
    state::State,
};

/// Distinct endpoints in the throughput run: 20 services × 20 × 5 paths × 5 methods.
const SERVICES: u16 = 20;
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];
/// Calls prepared once and replayed: enough that ids and bodies vary.
const POOL: usize = 100_000;
/// Calls measured per run.
const CALLS: usize = 2_000_000;

fn call(port: u16, method: &str, path: String, rng: &mut u64, bodies: bool) -> ApiCall {
    let mut request_headers = HeaderMap::default();
    request_headers.insert("host", &format!("svc{port}.local"));
    request_headers.insert("user-agent", "bench/1.0");
    request_headers.insert("x-request-id", &format!("{:x}", next(rng)));
    let mut response_headers = HeaderMap::default();
    response_headers.insert("content-type", "application/json");
    let id = next(rng) % 1_000_000;
    let (request_body_bytes, response_body_bytes) = if bodies {
        if method == "POST" || method == "PUT" {
            request_headers.insert("content-type", "application/json");
        }
        (
            if method == "POST" || method == "PUT" {
                format!(r#"{{"name":"item {id}","qty":{},"tags":["a","b"]}}"#, id % 7).into_bytes()
            } else {
                Vec::new()
            },
            format!(
                r#"{{"id":{id},"name":"item {id}","created":"2026-01-02T03:04:05Z","owner":{{"email":"u{id}@example.com"}}}}"#
            )
            .into_bytes(),
        )
    } else {
        (Vec::new(), Vec::new())
    };
    // 2026-11-28T18:45:SS.125312Z, SS = id % 60
    let (timestamp, realtime_ns) = call_time(1_795_891_500_125_312_000 + id % 60 * 1_000_000_000);
    ApiCall {
        event_name: "api.call",
        timestamp,
        status: CallStatus::Complete,
        role: Some(Role::Server),
        method: Some(method.to_string()),
        path: Some(path),
        query: (method == "GET").then(|| format!("page={}&limit=20", id % 9)),
        route: None,
        status_code: Some(if id.is_multiple_of(50) { 404 } else { 200 }),
        interim_status_codes: Vec::new(),
        protocol_name: "http",
        protocol_version: Some("1.1"),
        transport: "tcp",
        server_address: Some("10.0.0.1".to_string()),
        server_port: Some(8000 + port),
        client_address: Some(format!("10.0.1.{}", id % 20)),
        client_port: Some(40_000),
        tls: false,
        tls_library: None,
        duration_ms: Some((id % 5_000) as f64 / 100.0),
        latency_ms: None,
        pid: 1,
        executable_name: Some("server".to_string()),
        executable_path: None,
        command_args: Default::default(),
        container_id: None,
        pod_uid: None,
        request_headers,
        response_headers,
        request_body: None,
        response_body: None,
        incomplete: Vec::new(),
        connection: "1:3:1".to_string(),
        start_ns: id,
        realtime_ns,
        request_body_bytes,
        response_body_bytes,
    }
}

fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// CPU time this thread has used: throughput per core is calls per CPU second, which stays
/// true on a machine busy with other work (wall time would count their share too).
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid output struct.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Resident memory of this process, in MiB.
fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / (1024.0 * 1024.0)
}

/// How calls pick their endpoint.
#[derive(Clone, Copy)]
enum Popularity {
    /// Every endpoint equally likely: the worst case for caches.
    Uniform,
    /// Zipf's law (exponent 1), as real API traffic goes: a few endpoints take most calls.
    Zipf,
}

/// An endpoint number in 0..10,000.
fn pick(rng: &mut u64, popularity: Popularity, zipf: &[f64]) -> usize {
    match popularity {
        Popularity::Uniform => (next(rng) % 10_000) as usize,
        Popularity::Zipf => {
            let u = (next(rng) % 1_000_000_007) as f64 / 1_000_000_007.0 * zipf[zipf.len() - 1];
            zipf.partition_point(|&c| c < u).min(9_999)
        }
    }
}

/// The endpoint of call number `i` of a stream: the first 10,000 make every endpoint once,
/// the rest follow `popularity`.
fn endpoints(count: usize, popularity: Popularity, rng: &mut u64) -> Vec<u32> {
    let mut cumulative = 0.0;
    let zipf: Vec<f64> = (1..=10_000)
        .map(|rank| {
            cumulative += 1.0 / f64::from(rank);
            cumulative
        })
        .collect();
    (0..count)
        .map(|i| {
            let rank = if i < 10_000 {
                i
            } else {
                pick(rng, popularity, &zipf)
            };
            // Spread ranks over services, paths and methods.
            (rank.wrapping_mul(7_919) % 10_000) as u32
        })
        .collect()
}

/// Service port, method and path prefix (before the id) of an endpoint.
fn target(endpoint: u32) -> (u16, &'static str, String) {
    let endpoint = endpoint as usize;
    let port = (endpoint % usize::from(SERVICES)) as u16;
    let rest = endpoint / usize::from(SERVICES);
    let (a, b) = (rest % 20, rest / 20 % 5);
    (port, METHODS[rest / 100 % 5], format!("/api/r{a}x/s{b}x/"))
}

fn pool(bodies: bool, popularity: Popularity) -> Vec<ApiCall> {
    let mut rng = 0x9e37_79b9_7f4a_7c15;
    endpoints(POOL, popularity, &mut rng)
        .into_iter()
        .map(|endpoint| {
            let (port, method, prefix) = target(endpoint);
            let id = next(&mut rng) % 100_000;
            call(port, method, format!("{prefix}{id}"), &mut rng, bodies)
        })
        .collect()
}

/// Calls kept in the timed loop's ring: few enough to stay in cache, as a call the pipeline
/// just built is; each is rewritten (endpoint, id) before it is analyzed.
const RING: usize = 64;

fn throughput(label: &str, bodies: bool, popularity: Popularity) {
    let mut warm = pool(bodies, popularity);
    let mut inventory = Inventory::in_memory();
    let mut out = Vec::new();
    // Warm up: every endpoint exists before timing starts.
    for call in warm.iter_mut() {
        inventory.analyze(call, &mut out);
    }
    out.clear();
    let endpoint_count: usize = inventory
        .services()
        .iter()
        .map(|s| s.endpoints().len())
        .sum();
    assert_eq!(
        endpoint_count, 10_000,
        "the workload should have 10,000 endpoints"
    );
    let mut ring: Vec<ApiCall> = warm.into_iter().take(RING).collect();
    let mut rng = 0x2545_f491_4f6c_dd1d;
    let stream = endpoints(CALLS, popularity, &mut rng);
    let targets: Vec<(u16, &'static str, String)> = (0..10_000).map(target).collect();
    // What a call looks like when the pipeline hands it over: its endpoint and id, a fresh
    // route.
    let prepare = |call: &mut ApiCall, i: usize, rng: &mut u64| {
        let (port, method, prefix) = &targets[stream[i] as usize];
        call.server_port = Some(8000 + port);
        let m = call.method.get_or_insert_with(String::new);
        m.clear();
        m.push_str(method);
        let path = call.path.get_or_insert_with(String::new);
        path.clear();
        path.push_str(prefix);
        let _ = write!(path, "{}", next(rng) % 100_000);
        call.route = None;
    };

    // The cost of preparing calls alone, to take out of the figure.
    let cpu_started = thread_cpu_time();
    for i in 0..CALLS {
        let call = &mut ring[i % RING];
        prepare(call, i, &mut rng);
        black_box(&call);
    }
    let preparing = thread_cpu_time() - cpu_started;

    let started = Instant::now();
    let cpu_started = thread_cpu_time();
    for i in 0..CALLS {
        let call = &mut ring[i % RING];
        prepare(call, i, &mut rng);
        inventory.analyze(call, &mut out);
        out.clear();
    }
    let cpu = thread_cpu_time() - cpu_started;
    let elapsed = started.elapsed();
    black_box(&inventory);
    let inventory_cpu = cpu.saturating_sub(preparing);
    println!(
        "inventory update, {label}: {:.0} calls/s/core ({CALLS} calls over {endpoint_count} \
         endpoints: {:.2} s of CPU in the inventory, {:.2} s preparing calls, {:.2} s of wall time)",
        CALLS as f64 / inventory_cpu.as_secs_f64(),
        inventory_cpu.as_secs_f64(),
        preparing.as_secs_f64(),
        elapsed.as_secs_f64()
    );
}

fn flush_cost() {
    let dir = std::env::temp_dir().join(format!("observer-bench-inventory-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut inventory = Inventory::open(State::open(&dir).expect("state dir")).expect("inventory");
    let mut out = Vec::new();
    let mut calls = pool(true, Popularity::Uniform);
    for call in calls.iter_mut() {
        inventory.analyze(call, &mut out);
    }
    let started = Instant::now();
    inventory.flush().expect("flush");
    let first = started.elapsed();
    for call in calls.iter_mut().take(20_000) {
        inventory.analyze(call, &mut out);
    }
    let started = Instant::now();
    inventory.flush().expect("flush");
    let steady = started.elapsed();
    println!(
        "flush: all 10,000 endpoints dirty {:.0} ms; after 20,000 calls {:.0} ms",
        ms(first),
        ms(steady)
    );
    // The same again as the agent's loop writes it: a slice per tick, between reads of the
    // ring buffer.
    for call in calls.iter_mut().take(20_000) {
        inventory.analyze(call, &mut out);
    }
    let (ticks, longest) = flush_in_slices(&mut inventory);
    println!(
        "flush in slices of {FLUSH_SLICE_ENDPOINTS} endpoints: {ticks} ticks, the longest {:.1} ms",
        ms(longest)
    );
    drop(inventory);
    let _ = std::fs::remove_dir_all(&dir);

    // One service's 10,000 new paths at once, as a vulnerability scanner makes them: four
    // literal segments, each level under the fan-out that would template it.
    let scanned = || {
        let mut rng = 0x5ca1_ab1e;
        (0..10_000).map(move |i: u32| {
            let path: String = [i / 1000, i / 100 % 10, i / 10 % 10, i % 10]
                .iter()
                .map(|&segment| format!("/w{}", char::from(b'a' + segment as u8)))
                .collect();
            call(8080, "GET", path, &mut rng, true)
        })
    };
    let mut times = Vec::new();
    for sliced in [false, true] {
        let _ = std::fs::remove_dir_all(&dir);
        let mut inventory =
            Inventory::open(State::open(&dir).expect("state dir")).expect("inventory");
        for mut call in scanned() {
            inventory.analyze(&mut call, &mut out);
        }
        let endpoints: usize = inventory
            .services()
            .iter()
            .map(|s| s.endpoints().len())
            .sum();
        assert_eq!(endpoints, 10_000, "the scanner's paths were templated");
        times.push(if sliced {
            flush_in_slices(&mut inventory)
        } else {
            let started = Instant::now();
            inventory.flush().expect("flush");
            (1, started.elapsed())
        });
    }
    println!(
        "one service's 10,000 new endpoints: at once {:.0} ms; in slices {} ticks, the longest {:.1} ms",
        ms(times[0].1),
        times[1].0,
        ms(times[1].1)
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs the flush the next interval starts, a slice per tick as the agent's loop does: the
/// ticks it took and the longest.
fn flush_in_slices(inventory: &mut Inventory) -> (usize, Duration) {
    let mut out = Vec::new();
    let flushes = inventory.stats().flushes;
    let mut now = 1;
    inventory.tick(now, &mut out);
    now += FLUSH_INTERVAL_NS;
    let (mut ticks, mut longest) = (0, Duration::ZERO);
    while inventory.stats().flushes == flushes && inventory.stats().flush_errors == 0 {
        let started = Instant::now();
        inventory.tick(now, &mut out);
        longest = longest.max(started.elapsed());
        ticks += 1;
        now += 1;
    }
    (ticks, longest)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn unbounded_cardinality() {
    let mut rng = 0x2545_f491_4f6c_dd1d;
    let mut inventory = Inventory::in_memory();
    let mut out = Vec::new();
    let start = rss_mib();
    let mut checkpoints = Vec::new();
    let total: usize = 1_000_000;
    for i in 1..=total {
        // Every call a new word in two positions, and a new parameter name: nothing repeats.
        let a = next(&mut rng);
        let b = next(&mut rng);
        let mut c = call(
            (i % 4) as u16,
            "GET",
            format!("/u/w{:x}q/p/z{:x}k", a % 1_000_000_007, b % 1_000_000_009),
            &mut rng,
            false,
        );
        c.query = Some(format!("k{}=1", a % 100_000));
        inventory.analyze(&mut c, &mut out);
        out.clear();
        if i.is_multiple_of(250_000) {
            let endpoints: usize = inventory
                .services()
                .iter()
                .map(|s| s.endpoints().len())
                .sum();
            checkpoints.push(format!(
                "{i} calls: {endpoints} endpoints, +{:.1} MiB",
                rss_mib() - start
            ));
        }
    }
    println!(
        "unbounded path cardinality (new words every call): {}",
        checkpoints.join("; ")
    );
    let endpoints: usize = inventory
        .services()
        .iter()
        .map(|s| s.endpoints().len())
        .sum();
    assert!(endpoints <= MAX_ENDPOINTS);
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too, with fewer calls
    // worth nothing as a figure: only run the real thing under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        println!("inventory bench: run with `cargo bench` for figures");
        return;
    }
    // First, while the heap is fresh: its growth is the figure.
    unbounded_cardinality();
    throughput(
        "uniform over endpoints, no bodies",
        false,
        Popularity::Uniform,
    );
    throughput(
        "uniform over endpoints, JSON bodies",
        true,
        Popularity::Uniform,
    );
    throughput("Zipf over endpoints, no bodies", false, Popularity::Zipf);
    throughput("Zipf over endpoints, JSON bodies", true, Popularity::Zipf);
    flush_cost();
}
