//! The inventory on recorded traffic from real APIs: a Flask app, a FastAPI app served by
//! uvicorn, and a Go net/http app, each started here and exercised by a client with many ids.
//!
//! The traffic is captured with tcpdump (root) and replayed through `observer replay`, which
//! reads pcap files like recordings. Then, per app: the inventory's templates are compared with
//! the routes the framework itself declares (precision and recall are printed, and must be
//! perfect: every route was exercised, with enough distinct ids for each parameter); the
//! exported OpenAPI document must pass the real validator (`openapi-spec-validator`); and a
//! diff against that document with operations deliberately removed and deprecated must find
//! exactly those shadow and zombie endpoints (plus the `/v1` superseded by `/v2`, where the app
//! has one), and exit with status 2.

use std::{
    collections::BTreeSet,
    env, fs,
    io::{BufRead, BufReader},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context, Result};
use observer_tests::{programs::observer_binary, servers::free_port};
use serde_json::Value;

/// How long a server may take to listen (uvicorn imports FastAPI and pydantic first; Go
/// compiles).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// (method, path with `{}` for every parameter).
type Route = (String, String);

struct App {
    name: &'static str,
    /// The client script's name for this API (`client.py PORT SCRIPT`).
    script: &'static str,
    /// Operations removed from the exported spec: diff must call exactly these shadow.
    remove: &'static [(&'static str, &'static str)],
    /// Operation marked deprecated: diff must call it a zombie.
    deprecate: (&'static str, &'static str),
    /// Older versions the app still serves next to a newer one: zombies too.
    version_zombies: &'static [(&'static str, &'static str)],
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../observer-user/tests/fixtures/inventory/apps")
}

fn scratch(name: &str) -> Result<PathBuf> {
    let dir = env::temp_dir().join(format!("observer-inventory-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A child process killed when the test is done with it, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_port(port: u16, server: &mut Running) -> Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if let Some(status) = server.0.try_wait()? {
            bail!("the server exited before listening: {status}");
        }
        thread::sleep(Duration::from_millis(100));
    }
    bail!("nothing listens on port {port} after {START_TIMEOUT:?}")
}

fn run(command: &mut Command) -> Result<Output> {
    let output = command
        .output()
        .with_context(|| format!("cannot start {command:?}"))?;
    ensure!(
        output.status.success(),
        "{command:?} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(output)
}

/// The server's command line, and its route-listing command.
fn server_commands(app: &App, port: u16, dir: &Path) -> Result<(Command, Command)> {
    let apps = fixtures();
    let python = |file: &str, arg: String| {
        let mut command = Command::new("python3");
        command.arg(apps.join(file)).arg(arg);
        command
    };
    Ok(match app.name {
        "flask" => (
            python("flask_bookstore.py", port.to_string()),
            python("flask_bookstore.py", "--routes".into()),
        ),
        "fastapi" => (
            python("fastapi_users.py", port.to_string()),
            python("fastapi_users.py", "--routes".into()),
        ),
        "go" => {
            let binary = dir.join("go_kv");
            run(Command::new("go")
                .args(["build", "-o"])
                .arg(&binary)
                .arg("main.go")
                .current_dir(apps.join("go_kv"))
                .env("GO111MODULE", "off")
                .env("GOCACHE", dir.join("gocache"))
                .env("HOME", dir))?;
            let mut serve = Command::new(&binary);
            serve.arg(port.to_string());
            let mut routes = Command::new(&binary);
            routes.arg("--routes");
            (serve, routes)
        }
        other => bail!("unknown app {other}"),
    })
}

/// Capture loopback traffic to `port` while `exercise` runs, into `pcap`.
fn capture(port: u16, pcap: &Path, exercise: impl FnOnce() -> Result<()>) -> Result<()> {
    let mut tcpdump = Running(
        Command::new("tcpdump")
            // --immediate-mode and -U: take each packet from the kernel and write it as it
            // comes (by default the kernel hands over packets in blocks, and the last block is
            // lost on SIGINT); -B: a 64 MiB capture buffer, so a busy machine drops nothing;
            // -Z root: keep the rights to write in `pcap`'s directory.
            .args([
                "-i",
                "lo",
                "--immediate-mode",
                "-U",
                "-B",
                "65536",
                "-Z",
                "root",
                "-w",
            ])
            .arg(pcap)
            .arg(format!("tcp port {port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start tcpdump (cargo xtask setup installs it)")?,
    );
    let stderr = tcpdump.0.stderr.take().context("tcpdump stderr")?;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("listening on") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(START_TIMEOUT)
        .context("tcpdump did not start listening")?;
    exercise()?;
    // The last packets (the final ACKs and FINs) are still on their way to tcpdump.
    thread::sleep(Duration::from_millis(500));
    // SIGINT: tcpdump writes what it holds and exits.
    run(Command::new("kill").args(["-INT", &tcpdump.0.id().to_string()]))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while tcpdump.0.try_wait()?.is_none() {
        ensure!(Instant::now() < deadline, "tcpdump did not stop");
        thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// `/users/{id}/orders/{orderId}` → `/users/{}/orders/{}`.
fn normalize(route: &str) -> String {
    route
        .split('/')
        .map(|s| if s.starts_with('{') { "{}" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

fn json_of(output: &Output) -> Result<Value> {
    serde_json::from_slice(&output.stdout).context("command output is not JSON")
}

fn check_app(app: &App) -> Result<()> {
    let dir = scratch(app.name)?;
    let port = free_port()?;
    let (mut serve, mut list_routes) = server_commands(app, port, &dir)?;
    let declared: BTreeSet<Route> =
        serde_json::from_slice::<Vec<Route>>(&run(&mut list_routes)?.stdout)
            .context("routes listing")?
            .into_iter()
            .collect();

    // 1. Real traffic, captured.
    let mut server = Running(
        serve
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start the {} app", app.name))?,
    );
    wait_for_port(port, &mut server)?;
    let pcap = dir.join("traffic.pcap");
    capture(port, &pcap, || {
        run(Command::new("python3")
            .arg(fixtures().join("client.py"))
            .arg(port.to_string())
            .arg(app.script))
        .map(drop)
    })?;
    drop(server);

    // 2. Replayed into an inventory.
    let state = dir.join("state");
    let events = dir.join("events.jsonl");
    run(Command::new(observer_binary()?)
        .arg("replay")
        .arg(&pcap)
        .arg("--state-dir")
        .arg(&state)
        .arg("--output")
        .arg(&events))?;
    let inventory = json_of(&run(Command::new(observer_binary()?)
        .args(["inventory", "--format", "json", "--state-dir"])
        .arg(&state))?)?;
    let services = inventory["services"].as_array().context("services")?;
    ensure!(services.len() == 1, "one service expected: {inventory:#}");
    let service = &services[0];
    ensure!(service["port"] == port, "the service is the app's port");
    let observed: BTreeSet<Route> = service["endpoints"]
        .as_array()
        .context("endpoints")?
        .iter()
        .map(|e| {
            (
                e["method"].as_str().unwrap_or("").to_string(),
                normalize(e["route"].as_str().unwrap_or("")),
            )
        })
        .collect();

    // Templates against the routes the framework declares.
    let right = observed.intersection(&declared).count() as f64;
    let precision = right / observed.len().max(1) as f64;
    let recall = right / declared.len().max(1) as f64;
    println!(
        "{}: template precision {precision:.3}, recall {recall:.3} ({} observed endpoints, {} declared routes)",
        app.name,
        observed.len(),
        declared.len()
    );
    let extra: Vec<_> = observed.difference(&declared).collect();
    let missing: Vec<_> = declared.difference(&observed).collect();
    ensure!(
        extra.is_empty() && missing.is_empty(),
        "{}: templates that are not declared routes: {extra:?}; declared routes not found: {missing:?}",
        app.name
    );

    // Change events came on the output stream.
    let events = fs::read_to_string(&events)?;
    let changes: Vec<Value> = events
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event.name"] == "api.inventory.change")
        .collect();
    let count = |kind: &str| {
        changes
            .iter()
            .filter(|c| c["inventory.change"] == kind)
            .count()
    };
    ensure!(count("new_service") == 1, "one new_service event");
    ensure!(
        count("new_endpoint") >= observed.len(),
        "a new_endpoint event per endpoint at least"
    );

    // 3. The exported OpenAPI document passes the real validator, in both formats.
    for format in ["json", "yaml"] {
        let file = dir.join(format!("openapi.{format}"));
        run(Command::new(observer_binary()?)
            .args([
                "openapi",
                "--format",
                format,
                "--service",
                &port.to_string(),
            ])
            .arg("--state-dir")
            .arg(&state)
            .arg("--output")
            .arg(&file))?;
        run(Command::new("python3")
            .args(["-m", "openapi_spec_validator"])
            .arg(&file))
        .with_context(|| format!("openapi-spec-validator rejected the exported {format}"))?;
    }
    let exported = dir.join("openapi.json");

    // 4. A spec with operations removed and deprecated: exactly those are shadow and zombie.
    let mut spec: Value = serde_json::from_str(&fs::read_to_string(&exported)?)?;
    let paths = spec["paths"].as_object_mut().context("paths")?;
    let mut removed = BTreeSet::new();
    let mut deprecated = BTreeSet::new();
    for (path, item) in paths.iter_mut() {
        let item = item.as_object_mut().context("path item")?;
        for (method, path_pattern) in app.remove {
            if normalize(path) == *path_pattern && item.remove(&method.to_lowercase()).is_some() {
                removed.insert((method.to_string(), normalize(path)));
            }
        }
        let (method, pattern) = app.deprecate;
        if normalize(path) == pattern {
            if let Some(op) = item.get_mut(&method.to_lowercase()) {
                op["deprecated"] = Value::Bool(true);
                deprecated.insert((method.to_string(), pattern.to_string()));
            }
        }
    }
    paths.retain(|_, item| item.as_object().is_some_and(|o| !o.is_empty()));
    ensure!(
        removed.len() == app.remove.len(),
        "all removals applied: {removed:?}"
    );
    ensure!(deprecated.len() == 1, "the deprecation applied");
    let spec_file = dir.join("spec.json");
    fs::write(&spec_file, serde_json::to_vec_pretty(&spec)?)?;
    let diff = Command::new(observer_binary()?)
        .args(["diff", "--format", "json", "--spec"])
        .arg(&spec_file)
        .arg("--state-dir")
        .arg(&state)
        .output()?;
    ensure!(
        diff.status.code() == Some(2),
        "diff exits 2 on shadow/zombie, got {}: {}",
        diff.status,
        String::from_utf8_lossy(&diff.stderr)
    );
    let report = json_of(&diff)?;
    let routes_of = |kind: &str| -> BTreeSet<Route> {
        report[kind]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| {
                (
                    i["method"].as_str().unwrap_or("").to_string(),
                    normalize(i["route"].as_str().unwrap_or("")),
                )
            })
            .collect()
    };
    ensure!(
        routes_of("shadow") == removed,
        "shadow {:?} should be exactly the removed {removed:?}",
        routes_of("shadow")
    );
    let mut zombies = deprecated.clone();
    zombies.extend(
        app.version_zombies
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string())),
    );
    ensure!(
        routes_of("zombie") == zombies,
        "zombie {:?} should be exactly {zombies:?}",
        routes_of("zombie")
    );
    ensure!(
        routes_of("orphan").is_empty(),
        "no orphans: {:?}",
        routes_of("orphan")
    );
    println!(
        "{}: diff found {} shadow, {} zombie, {} drift",
        app.name,
        removed.len(),
        zombies.len(),
        report["drift"].as_array().map_or(0, Vec::len)
    );
    check_auth(app, service)?;
    let _ = fs::remove_dir_all(dir);
    Ok(())
}

/// The auth each app's calls carried was recognised.
fn check_auth(app: &App, service: &Value) -> Result<()> {
    let (route, scheme) = match app.name {
        "fastapi" => ("/users/{}", "jwt(HS256)"),
        "go" => ("/v1/keys/{}", "api-key header x-api-key"),
        _ => ("/health", "none"),
    };
    let endpoint = service["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["method"] == "GET" && normalize(e["route"].as_str().unwrap_or("")) == route)
        .with_context(|| format!("GET {route}"))?;
    ensure!(
        endpoint["auth"].get(scheme).is_some(),
        "{}: GET {route} should show {scheme}: {}",
        app.name,
        endpoint["auth"]
    );
    Ok(())
}

#[test]
fn flask_bookstore() -> Result<()> {
    check_app(&App {
        name: "flask",
        script: "bookstore",
        remove: &[("GET", "/api/v1/search"), ("DELETE", "/api/v1/books/{}")],
        deprecate: ("GET", "/api/v1/orders/{}"),
        version_zombies: &[("GET", "/api/v1/books/{}")],
    })
}

#[test]
fn fastapi_users() -> Result<()> {
    check_app(&App {
        name: "fastapi",
        script: "users",
        remove: &[("GET", "/reports/{}"), ("PATCH", "/users/{}")],
        deprecate: ("GET", "/users/by-email/{}"),
        version_zombies: &[],
    })
}

#[test]
fn go_key_value_store() -> Result<()> {
    check_app(&App {
        name: "go",
        script: "kv",
        remove: &[("DELETE", "/v1/keys/{}"), ("GET", "/v1/healthz")],
        deprecate: ("GET", "/v1/buckets/{}/objects/{}"),
        version_zombies: &[],
    })
}
