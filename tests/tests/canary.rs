//! Canary test: unique secrets and personal data sent through real traffic never come out of the
//! agent raw, anywhere, while findings about them are reported.
//!
//! A Python server answers over plaintext HTTP and over TLS (OpenSSL); curl and a Python client
//! send canary credentials (Bearer, Basic, cookies, API keys in queries, passwords, AWS and
//! GitHub tokens in JSON bodies, including on their own command lines) and the server returns
//! canary personal data (email, card number, SSN, and an email its answer is keyed by; another
//! email is a query parameter's name). The real agent runs as root with the default
//! redaction, `--output` to a file, a state directory, and trace-level logs. Then every sink is
//! searched for every canary: the output file, the log on stderr, every file of the state
//! directory (SQLite database, WAL, shared memory, key), `observer findings` in both formats,
//! and the metrics endpoint (`--metrics-listen`), scraped while the agent runs.
//!
//! Needs root, python3, curl and openssl. `cargo xtask test` runs it with `OBSERVER_BIN` set.

use std::{
    env, fs,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{bail, ensure, Context, Result};
use observer_tests::{
    metrics::{self, PUBLISH_INTERVAL},
    programs::observer_binary,
    servers::free_port,
};
use serde_json::Value;

const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Time for the last call to travel through the ring buffer and the pipeline (the agent polls
/// every 20 ms; a loaded machine takes longer).
const SETTLE: Duration = Duration::from_secs(2);

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Unique values for this run, each valid for its detector.
struct Canaries {
    email: String,
    card: String,
    ssn: String,
    bearer: String,
    session: String,
    api_key: String,
    password: String,
    basic_user: String,
    basic_password: String,
    aws_key: String,
    github_token: String,
    /// An email the server's answer is keyed by (`{"visits": {EMAIL: 3}}`).
    key_email: String,
    /// An email sent as a query parameter's name.
    name_email: String,
    /// A token that the body preview's cut runs through (`/long`): only its start is in the
    /// preview, where alone it is no longer a token.
    cut_token: String,
    /// A token the server's answer stops inside (`/short`: the connection closes before the
    /// body's end): nothing past its start was sent.
    short_token: String,
    /// An email in a plain-text error the server labels JSON (`/error`).
    error_email: String,
    /// An email in the `Referer` header's URL, percent-encoded (`%40`).
    referer_email: String,
    /// An email in claims a gateway passes on in base64 (`X-Userinfo`).
    claims_email: String,
    /// An email in an answer compressed with gzip (`/gzip`).
    gzip_email: String,
    /// A password-reset token in the `Referer` URL's query (`?token=`).
    reset_token: String,
    /// A password in an XML answer's `<password>` element (`/soap`): no shape, only its name.
    xml_password: String,
    /// A password in the same answer's setting, named by its `key` attribute (`<add
    /// key="DbPassword" value="..."/>`, as .NET's configuration is written).
    setting_password: String,
    /// A password in JSON written as a string inside the login body (`"event": "{...}"`).
    nested_password: String,
    /// A password among a GraphQL query's arguments, in the login body (`"query": "mutation
    /// { login(..., password: \"...\") }"`): named only inside the query's text.
    graphql_password: String,
    /// A password in a container's environment as Kubernetes writes it (`{"name":
    /// "DB_PASSWORD", "value": "..."}`): named only by the sibling member.
    env_password: String,
    /// The same, its `value` member before its `name`.
    reversed_env_password: String,
    /// A password in a container's arguments, after its flag (`"args": ["--db-password",
    /// "..."]`): named only by the element before it.
    args_password: String,
    /// A password in a command line written as one string (`"command": "mysqldump
    /// --password ..."`): named only by the flag before it.
    command_password: String,
    /// The private part of a JSON Web Key in the login body (`{"kty": "EC", ..., "d": "..."}`):
    /// named only by a one-letter member.
    jwk_private: String,
    /// A password in a Kubernetes manifest written in YAML (`/manifest.yaml`: `- name:
    /// DB_PASSWORD` then `value: ...`): named only by the line before it.
    yaml_password: String,
    /// One password set twice in an environment file (`/settings.env`: `DB_PASS=...` then
    /// `API_TOKEN=...`): hidden at each place, not once.
    repeated_password: String,
    /// A password in an XML-RPC struct (`/rpc`: `<name>password</name><value>...`) and in a
    /// property list (`/settings.plist`: `<key>password</key><string>...`): named only by
    /// the element before.
    rpc_password: String,
    plist_password: String,
    /// An Azure Functions key in its header (`x-functions-key`), which only its name says is
    /// a key.
    functions_key: String,
    /// A password in a CSV export's `password` column (`/export.csv`): named only by the
    /// header row.
    csv_password: String,
    /// A password in a JSON event of a server-sent event stream (`/events`).
    sse_password: String,
    /// A session id in a plain-text answer (`/whoami`: `session=...`), named only by the text
    /// before it.
    text_session: String,
}

/// SplitMix64 from the clock: unique per run, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn pick(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| char::from(alphabet[(self.next() % alphabet.len() as u64) as usize]))
            .collect()
    }
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

impl Canaries {
    fn new() -> Canaries {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        let mut rng = Rng(seed ^ u64::from(std::process::id()));
        // A Visa number: 4, fourteen random digits, and the Luhn check digit.
        let mut digits: Vec<u32> = vec![4];
        digits.extend((0..14).map(|_| (rng.next() % 10) as u32));
        let check = (0..10)
            .find(|c| {
                let mut all = digits.clone();
                all.push(*c);
                let sum: u32 = all
                    .iter()
                    .rev()
                    .enumerate()
                    .map(|(i, &d)| {
                        if i % 2 == 1 {
                            (d * 2) % 9 + u32::from(d == 9) * 9
                        } else {
                            d
                        }
                    })
                    .sum();
                sum.is_multiple_of(10)
            })
            .unwrap_or(0);
        digits.push(check);
        let card: String = digits
            .iter()
            .map(|d| char::from_digit(*d, 10).unwrap_or('0'))
            .collect();
        let area = 100 + rng.next() % 500;
        let ssn = format!(
            "{area:03}-{:02}-{:04}",
            10 + rng.next() % 89,
            1000 + rng.next() % 8999
        );
        let mut email = || {
            format!(
                "canary.{}@example.com",
                rng.pick(b"abcdefghijklmnopqrstuvwxyz", 12)
            )
        };
        let (error_email, referer_email, claims_email) = (email(), email(), email());
        let gzip_email = email();
        let (email, key_email, name_email) = (email(), email(), email());
        Canaries {
            email,
            key_email,
            error_email,
            referer_email,
            claims_email,
            gzip_email,
            name_email,
            card,
            ssn,
            bearer: format!("cnry{}", rng.pick(ALNUM, 36)),
            session: format!("cnry{}", rng.pick(b"0123456789abcdef", 32)),
            api_key: format!("cnry{}", rng.pick(ALNUM, 28)),
            password: format!("Cnry-{}", rng.pick(ALNUM, 14)),
            reset_token: format!("cnry{}", rng.pick(ALNUM, 24)),
            xml_password: format!("Cnry-{}", rng.pick(ALNUM, 14)),
            setting_password: format!("Cnry-{}", rng.pick(ALNUM, 14)),
            nested_password: format!("Cnry-{}", rng.pick(ALNUM, 14)),
            graphql_password: format!("Cnry-{}", rng.pick(ALNUM, 14)),
            env_password: format!("Cnry-{}", rng.pick(ALNUM, 14)),
            reversed_env_password: format!("Cnry-{}", rng.pick(ALNUM, 14)),
            args_password: format!("Cnry-{}", rng.pick(ALNUM, 14)),
            command_password: format!("Cnry-{}", rng.pick(ALNUM, 14)),
            jwk_private: format!("cnry{}", rng.pick(ALNUM, 40)),
            yaml_password: format!("Cnry-{}", rng.pick(ALNUM, 14)),
            repeated_password: format!("Cnry-{}", rng.pick(ALNUM, 14)),
            rpc_password: format!("Cnry-{}", rng.pick(ALNUM, 14)),
            plist_password: format!("Cnry-{}", rng.pick(ALNUM, 14)),
            functions_key: format!("Cnry-{}", rng.pick(ALNUM, 30)),
            csv_password: format!("Cnry-{}", rng.pick(ALNUM, 14)),
            sse_password: format!("Cnry-{}", rng.pick(ALNUM, 14)),
            text_session: format!("cnry{}", rng.pick(b"0123456789abcdef", 32)),
            basic_user: format!("cnryuser{}", rng.pick(b"abcdefghijklmnopqrstuvwxyz", 6)),
            basic_password: format!("CnryPw{}", rng.pick(ALNUM, 12)),
            aws_key: format!("AKIA{}", rng.pick(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)),
            github_token: format!("ghp_{}", rng.pick(ALNUM, 36)),
            cut_token: format!("ghp_{}", rng.pick(ALNUM, 36)),
            short_token: format!("ghp_{}", rng.pick(ALNUM, 36)),
        }
    }

    /// Every raw form a canary could leak in.
    fn raw_forms(&self) -> Vec<(&'static str, String)> {
        let basic = format!("{}:{}", self.basic_user, self.basic_password);
        vec![
            ("email", self.email.clone()),
            ("card", self.card.clone()),
            ("card (grouped)", group4(&self.card)),
            ("ssn", self.ssn.clone()),
            ("ssn (bare)", self.ssn.replace('-', "")),
            ("bearer", self.bearer.clone()),
            ("session", self.session.clone()),
            ("api key", self.api_key.clone()),
            ("password", self.password.clone()),
            ("basic password", self.basic_password.clone()),
            ("basic credentials (base64)", base64(basic.as_bytes())),
            ("aws key", self.aws_key.clone()),
            ("github token", self.github_token.clone()),
            ("email as a key", self.key_email.clone()),
            ("email as a parameter name", self.name_email.clone()),
            (
                "the part of a token before the preview's cut",
                self.cut_token[..CUT_TOKEN_SHOWN_BYTES].to_string(),
            ),
            (
                "the part of a token an answer stopped inside",
                self.short_token[..CUT_TOKEN_SHOWN_BYTES].to_string(),
            ),
            ("email in text labelled JSON", self.error_email.clone()),
            ("email in a Referer", self.referer_email.clone()),
            (
                "email in a Referer (percent-encoded)",
                self.referer_email.replace('@', "%40"),
            ),
            ("email in claims", self.claims_email.clone()),
            ("email in a compressed answer", self.gzip_email.clone()),
            ("reset token in a Referer", self.reset_token.clone()),
            ("password in XML", self.xml_password.clone()),
            (
                "password in an XML setting named by its key",
                self.setting_password.clone(),
            ),
            (
                "password in JSON inside a string",
                self.nested_password.clone(),
            ),
            (
                "password among a GraphQL query's arguments",
                self.graphql_password.clone(),
            ),
            (
                "password named by a sibling member",
                self.env_password.clone(),
            ),
            (
                "password named by a sibling member after it",
                self.reversed_env_password.clone(),
            ),
            (
                "password after its flag in an argument list",
                self.args_password.clone(),
            ),
            (
                "password after its flag in a command line",
                self.command_password.clone(),
            ),
            ("private part of a JSON Web Key", self.jwk_private.clone()),
            ("password in a YAML manifest", self.yaml_password.clone()),
            (
                "password set twice in a file",
                self.repeated_password.clone(),
            ),
            ("password in an XML-RPC struct", self.rpc_password.clone()),
            ("password in a property list", self.plist_password.clone()),
            (
                "key in an x-functions-key header",
                self.functions_key.clone(),
            ),
            ("password in a CSV column", self.csv_password.clone()),
            ("password in an event stream", self.sse_password.clone()),
            ("session id in a text answer", self.text_session.clone()),
            ("claims holding an email (base64)", self.userinfo()),
        ]
    }

    /// The `X-Userinfo` a gateway would send: the caller's claims, JSON in base64.
    fn userinfo(&self) -> String {
        let claims = format!(r#"{{"sub":"u-1","email":"{}"}}"#, self.claims_email);
        base64(claims.as_bytes())
    }

    fn to_json(&self) -> Value {
        serde_json::json!({
            "email": self.email, "card": group4(&self.card), "ssn": self.ssn,
            "password": self.password, "aws_key": self.aws_key,
            "github_token": self.github_token, "key_email": self.key_email,
            "cut_token": self.cut_token, "short_token": self.short_token,
            "error_email": self.error_email, "gzip_email": self.gzip_email,
            "xml_password": self.xml_password, "nested_password": self.nested_password,
            "setting_password": self.setting_password, "yaml_password": self.yaml_password,
            "repeated_password": self.repeated_password,
            "rpc_password": self.rpc_password, "plist_password": self.plist_password,
            "functions_key": self.functions_key,
            "graphql_password": self.graphql_password, "env_password": self.env_password,
            "reversed_env_password": self.reversed_env_password,
            "csv_password": self.csv_password, "text_session": self.text_session,
            "sse_password": self.sse_password, "args_password": self.args_password,
            "command_password": self.command_password, "jwk_private": self.jwk_private,
            "shown_bytes": CUT_TOKEN_SHOWN_BYTES,
        })
    }
}

fn group4(digits: &str) -> String {
    digits
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(TABLE[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Bytes of `Canaries::cut_token` before the preview's cut: 30 are there; a leak of the first
/// 24 would be found. Also what the server sends of `Canaries::short_token`.
const CUT_TOKEN_SHOWN_BYTES: usize = 24;

/// The server: plaintext on one port, TLS on another; `/profile` returns the canary personal
/// data, `/login` takes credentials. Canaries come from a file, so no command line holds them.
const SERVER: &str = r#"
import gzip, http.server, json, ssl, sys, threading
canaries = json.load(open(sys.argv[1]))
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def send(self, data, status=200, content_type="application/json", headers=(), length=None):
        """`data` as the answer; `length` a Content-Length other than its own (a cut answer)."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data) if length is None else length))
        self.end_headers()
        self.wfile.write(data)
    def reply(self, body):
        self.send(json.dumps(body).encode())
    def do_GET(self):
        if self.path == "/long":
            # The token starts 30 bytes before the 1 KiB preview ends.
            # A member name that says nothing: the value must be told by its shape.
            return self.reply({"pad": "x" * 974, "ref": canaries["cut_token"]})
        if self.path == "/error":
            # Not JSON, whatever the label says.
            return self.send(("Internal error: no account for " + canaries["error_email"]).encode(),
                             status=500)
        if self.path == "/soap":
            data = ("<soap:Envelope xmlns:soap=\"urn:x\"><soap:Body><LoginResult><user>canary</user>"
                    "<password>" + canaries["xml_password"] + "</password></LoginResult>"
                    "<appSettings><add key=\"DbPassword\" value=\"" + canaries["setting_password"]
                    + "\"/></appSettings>"
                    "</soap:Body></soap:Envelope>").encode()
            return self.send(data, content_type="text/xml; charset=utf-8")
        if self.path == "/gzip":
            data = gzip.compress(json.dumps({"contact": {"email": canaries["gzip_email"]}}).encode())
            return self.send(data, headers=[("Content-Encoding", "gzip")])
        if self.path == "/manifest.yaml":
            data = ("kind: Deployment\nspec:\n  containers:\n  - name: db\n    env:\n"
                    "    - name: DB_PASSWORD\n      value: " + canaries["yaml_password"] + "\n")
            return self.send(data.encode(), content_type="application/yaml")
        if self.path == "/rpc":
            data = ("<?xml version=\"1.0\"?><methodResponse><params><param><value><struct>"
                    "<member><name>user</name><value><string>canary</string></value></member>"
                    "<member><name>password</name><value><string>" + canaries["rpc_password"]
                    + "</string></value></member></struct></value></param></params>"
                    "</methodResponse>")
            return self.send(data.encode(), content_type="text/xml")
        if self.path == "/settings.plist":
            data = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><plist version=\"1.0\"><dict>"
                    "<key>user</key><string>canary</string><key>password</key><string>"
                    + canaries["plist_password"] + "</string></dict></plist>")
            return self.send(data.encode(), content_type="application/x-plist")
        if self.path == "/settings.env":
            data = ("DB_PASS=" + canaries["repeated_password"] + "\nAPI_TOKEN="
                    + canaries["repeated_password"] + "\n")
            return self.send(data.encode(), content_type="text/plain")
        if self.path == "/whoami":
            data = "signed in as canary\nsession=" + canaries["text_session"] + "\n"
            return self.send(data.encode(), content_type="text/plain")
        if self.path == "/events":
            data = ("event: login\ndata: " + json.dumps({"user": "canary",
                    "password": canaries["sse_password"]}) + "\n\n")
            return self.send(data.encode(), content_type="text/event-stream")
        if self.path == "/export.csv":
            data = "id,user,password\r\n1,canary," + canaries["csv_password"] + "\r\n"
            return self.send(data.encode(), content_type="text/csv; charset=utf-8")
        if self.path == "/short":
            # The answer stops `shown_bytes` into the token: the connection closes before the end
            # its Content-Length promised.
            data = json.dumps({"pad": "x" * 100, "ref": canaries["short_token"]}).encode()
            sent = data[:data.index(canaries["short_token"].encode()) + canaries["shown_bytes"]]
            self.send(sent, length=len(data))
            self.wfile.flush()
            self.close_connection = True
            return
        self.reply({"name": "canary", "email": canaries["email"],
                    "card_number": canaries["card"], "ssn": canaries["ssn"],
                    "visits": {canaries["key_email"]: 3}})
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.reply({"ok": True})
plain = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), Handler)
tls = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[3])), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[4], sys.argv[5])
tls.socket = context.wrap_socket(tls.socket, server_side=True)
threading.Thread(target=tls.serve_forever, daemon=True).start()
print("ready", flush=True)
plain.serve_forever()
"#;

/// A Python client posting canary secrets in JSON bodies, over both ports.
const CLIENT: &str = r#"
import json, ssl, sys, urllib.request
canaries = json.load(open(sys.argv[1]))
context = ssl._create_unverified_context()
body = json.dumps({"user": "canary", "password": canaries["password"],
                   "aws_access_key_id": canaries["aws_key"],
                   "note": "token " + canaries["github_token"],
                   "event": json.dumps({"kind": "login", "password": canaries["nested_password"]}),
                   "query": 'mutation { login(user: "canary", password: "%s") { token } }'
                            % canaries["graphql_password"],
                   "env": [{"name": "TZ", "value": "UTC"},
                           {"name": "DB_PASSWORD", "value": canaries["env_password"]},
                           {"value": canaries["reversed_env_password"], "name": "API_PASSWORD"}],
                   "args": ["--verbose", "--db-password", canaries["args_password"]],
                   "command": "mysqldump --password %s shop" % canaries["command_password"],
                   "jwk": {"kty": "EC", "crv": "P-256", "d": canaries["jwk_private"]}}
                  ).encode()
for url in sys.argv[2:]:
    request = urllib.request.Request(url + "/login", data=body,
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, context=context).read()
"#;

/// Waits until `child`'s stdout or stderr (as `reader`) prints a line containing `marker`,
/// copying every line to `log` if given.
fn wait_for_line(
    reader: impl std::io::Read + Send + 'static,
    marker: &'static str,
    log: Option<PathBuf>,
) -> Result<thread::JoinHandle<()>> {
    let (tx, rx) = mpsc::channel();
    let handle = thread::spawn(move || {
        let mut file = log.and_then(|path| fs::File::create(path).ok());
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            if let Some(file) = &mut file {
                use std::io::Write;
                let _ = writeln!(file, "{line}");
            }
            if line.contains(marker) {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(START_TIMEOUT)
        .with_context(|| format!("no {marker:?} within {START_TIMEOUT:?}"))?;
    Ok(handle)
}

fn run(command: &mut Command) -> Result<String> {
    let output = command
        .output()
        .with_context(|| format!("cannot run {command:?}"))?;
    ensure!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn canaries_never_leave_the_agent_raw_but_are_reported() -> Result<()> {
    let work = env::temp_dir().join(format!("observer-canary-{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work)?;
    let result = canary_run(&work);
    if result.is_ok() {
        let _ = fs::remove_dir_all(&work);
    } else {
        eprintln!("canary test files kept in {}", work.display());
    }
    result
}

fn canary_run(work: &Path) -> Result<()> {
    let canaries = Canaries::new();
    let canary_file = work.join("canaries.json");
    fs::write(&canary_file, canaries.to_json().to_string())?;
    let (key, cert) = (work.join("key.pem"), work.join("cert.pem"));
    run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert))?;
    fs::write(work.join("server.py"), SERVER)?;
    fs::write(work.join("client.py"), CLIENT)?;
    let (plain_port, tls_port, metrics_port) = (free_port()?, free_port()?, free_port()?);

    // The agent first, so it sees the server load libssl and the connections open.
    let state = work.join("state");
    let output = work.join("output.jsonl");
    let log = work.join("agent.log");
    let mut agent = Running(
        Command::new(observer_binary()?)
            .args([
                "run",
                "--port",
                &format!("{plain_port},{tls_port}"),
                "--metrics-listen",
                &metrics::address(metrics_port).to_string(),
                "--state-dir",
            ])
            .arg(&state)
            .arg("--output")
            .arg(&output)
            .env("OBSERVER_LOG", "trace")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start the agent")?,
    );
    let stderr = agent.0.stderr.take().context("agent stderr")?;
    let agent_log =
        wait_for_line(stderr, "observer is watching", Some(log.clone())).with_context(|| {
            // Say why: most often another agent is running (one per host).
            let said = fs::read_to_string(&log).unwrap_or_default();
            format!("the agent did not start; it said:\n{said}")
        })?;

    let mut server = Running(
        Command::new("python3")
            .arg(work.join("server.py"))
            .arg(&canary_file)
            .args([plain_port.to_string(), tls_port.to_string()])
            .arg(&cert)
            .arg(&key)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start python3")?,
    );
    let server_out = server.0.stdout.take().context("server stdout")?;
    let _server_log = wait_for_line(server_out, "ready", None)?;
    // Let the agent find the libssl the server just loaded (it looks again after execs).
    thread::sleep(Duration::from_millis(1500));

    for base in [
        format!("http://127.0.0.1:{plain_port}"),
        format!("https://127.0.0.1:{tls_port}"),
    ] {
        // Credentials on curl's own command line too: the agent reports command lines.
        run(Command::new("curl")
            .args(["-sk", "--http1.1", "-H"])
            .arg(format!("Authorization: Bearer {}", canaries.bearer))
            .arg("-H")
            .arg(format!("X-Userinfo: {}", canaries.userinfo()))
            .arg("-b")
            .arg(format!("theme=dark; session_id={}", canaries.session))
            .arg(format!(
                "{base}/profile?api_key={}&page=1&{}=1",
                canaries.api_key, canaries.name_email
            )))?;
        run(Command::new("curl")
            .args(["-sk", "--http1.1", "-u"])
            .arg(format!(
                "{}:{}",
                canaries.basic_user, canaries.basic_password
            ))
            .args(["-H", "Content-Type: application/json", "-d"])
            .arg(format!(
                r#"{{"password":"{}","email":"{}"}}"#,
                canaries.password, canaries.email
            ))
            .arg(format!("{base}/login")))?;
        run(Command::new("curl")
            .args(["-sk", "--http1.1", "-H"])
            .arg(format!(
                "Referer: https://shop.test/reset?token={}&step=2",
                canaries.reset_token
            ))
            .arg(format!("{base}/long")))?;
        run(Command::new("curl")
            .args(["-sk", "--http1.1", "--compressed", "-H"])
            .arg(format!("x-functions-key: {}", canaries.functions_key))
            .arg(format!("{base}/gzip")))?;
        // Answers whose canaries only their structure names: XML, CSV, text, an event stream.
        for path in [
            "/soap",
            "/export.csv",
            "/whoami",
            "/events",
            "/manifest.yaml",
            "/settings.env",
            "/rpc",
            "/settings.plist",
        ] {
            run(Command::new("curl")
                .args(["-sk", "--http1.1"])
                .arg(format!("{base}{path}")))?;
        }
        run(Command::new("curl")
            .args(["-sk", "--http1.1", "-H"])
            .arg(format!(
                "Referer: https://shop.test/cb?to={}",
                canaries.referer_email.replace('@', "%40")
            ))
            .arg(format!("{base}/error")))?;
        // curl fails here by design (the answer ends early): only its traffic matters.
        Command::new("curl")
            .args(["-sk", "--http1.1"])
            .arg(format!("{base}/short"))
            .output()?;
    }
    run(Command::new("python3")
        .arg(work.join("client.py"))
        .arg(&canary_file)
        .arg(format!("http://127.0.0.1:{plain_port}"))
        .arg(format!("https://127.0.0.1:{tls_port}")))?;

    thread::sleep(SETTLE);
    // What a Prometheus server would have stored: scraped after a publication that saw every
    // call and finding.
    thread::sleep(PUBLISH_INTERVAL * 2);
    let scraped = metrics::scrape(metrics_port)?;
    let findings_counted: f64 = scraped
        .lines()
        .filter(|line| line.starts_with("observer_findings_total{kind=\"sensitive_data\""))
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    ensure!(
        findings_counted > 0.0,
        "the metrics count no sensitive-data findings:\n{scraped}"
    );
    // SIGINT: the agent stops cleanly, flushing findings and counts to the state directory.
    let pid = agent.0.id().to_string();
    run(Command::new("kill").args(["-INT", &pid]))?;
    let deadline = Instant::now() + START_TIMEOUT;
    while agent.0.try_wait()?.is_none() {
        ensure!(
            Instant::now() < deadline,
            "the agent did not stop after SIGINT"
        );
        thread::sleep(Duration::from_millis(50));
    }
    let _ = agent_log.join();
    drop(server);

    let findings_table = run(Command::new(observer_binary()?)
        .args(["findings", "--state-dir"])
        .arg(&state))?;
    let findings_json = run(Command::new(observer_binary()?)
        .args(["findings", "--format", "json", "--state-dir"])
        .arg(&state))?;

    // Every sink, searched for every raw form of every canary.
    let mut sinks: Vec<(String, Vec<u8>)> = vec![
        ("output file".into(), fs::read(&output)?),
        ("trace log".into(), fs::read(&log)?),
        (
            "observer findings".into(),
            findings_table.clone().into_bytes(),
        ),
        (
            "observer findings --format json".into(),
            findings_json.clone().into_bytes(),
        ),
        ("metrics endpoint".into(), scraped.into_bytes()),
    ];
    for entry in fs::read_dir(&state)? {
        let path = entry?.path();
        sinks.push((format!("state file {}", path.display()), fs::read(&path)?));
    }
    let mut leaks = Vec::new();
    for (sink, bytes) in &sinks {
        for (name, raw) in canaries.raw_forms() {
            let count = bytes
                .windows(raw.len())
                .filter(|w| *w == raw.as_bytes())
                .count();
            if count > 0 {
                leaks.push(format!(
                    "{name} ({raw}) appears {count} times in the {sink}"
                ));
            }
        }
    }
    ensure!(leaks.is_empty(), "canaries leaked:\n{}", leaks.join("\n"));

    // The traffic was seen, plaintext and TLS, and findings were made about the canaries.
    let calls: Vec<Value> = fs::read_to_string(&output)?
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let seen = |tls: bool| {
        calls
            .iter()
            .any(|c| c["event.name"] == "api.call" && c["tls"] == tls && c["role"] == "server")
    };
    ensure!(
        seen(false) && seen(true),
        "plaintext and TLS calls were not both seen: {calls:?}"
    );
    let findings: Vec<Value> = findings_json
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|v| v["event.name"] == "api.finding")
        .collect();
    let types: Vec<&str> = findings
        .iter()
        .filter_map(|f| f["finding.type"].as_str())
        .collect();
    for expected in [
        "email",
        "card_number",
        "ssn",
        "session_cookie",
        "password",
        "basic_auth",
        "aws_access_key",
        "github_token",
        "bearer_token",
        "secret_field",
    ] {
        if !types.contains(&expected) {
            bail!("no {expected} finding; findings: {types:?}\n{findings_table}");
        }
    }
    ensure!(
        findings.iter().any(|f| f["plaintext"] == false),
        "no finding from the TLS calls"
    );
    // A compressed answer is read decoded: its email is found, and shown hidden.
    ensure!(
        findings
            .iter()
            .any(|f| f["finding.type"] == "email" && f["http.route"] == "/gzip"),
        "no email found in the compressed answer:\n{findings_table}"
    );
    ensure!(
        calls.iter().any(|c| c["url.path"] == "/gzip"
            && c["http.response.body"]["decoded_from"] == "gzip"
            && c["http.response.body"]["preview"]
                .as_str()
                .is_some_and(|p| p.contains("\"email\": \"[REDACTED:email:"))),
        "the compressed answer is not shown decoded and hidden: {calls:?}"
    );
    // Evidence is masked: the card shows its first six and last four digits, nothing more.
    let masked = format!("{}******{}", &canaries.card[..6], &canaries.card[12..]);
    ensure!(
        findings_json.contains(&masked),
        "card evidence not masked as {masked}:\n{findings_json}"
    );
    Ok(())
}
