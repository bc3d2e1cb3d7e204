//! Servers on loopback for the agent to watch: Python's http.server (plain and TLS) and nginx.
//!
//! Servers start before the agent, so their start-up and readiness checks are not observed.

use std::{
    net::{Ipv4Addr, TcpListener, TcpStream},
    path::PathBuf,
    process::Command,
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};

use crate::{
    process::Spawned,
    programs::{python, require, NGINX, OPENSSL},
    tempdir::TempDir,
};

/// From start to listening: Python imports http.server and ssl, nginx parses its config.
pub const SERVER_START_TIMEOUT: Duration = Duration::from_secs(10);

/// Making a self-signed certificate: an EC key is generated in milliseconds.
const CERTIFICATE_TIMEOUT: Duration = Duration::from_secs(20);

const SERVER_SCRIPT: &str = include_str!("python/server.py");

/// Files served from a temporary directory.
pub struct Site {
    dir: TempDir,
}

impl Site {
    pub fn new() -> anyhow::Result<Site> {
        Ok(Site {
            dir: TempDir::new("site")?,
        })
    }

    /// Add a file at `/<name>`.
    pub fn file(self, name: &str, contents: impl AsRef<[u8]>) -> anyhow::Result<Site> {
        self.dir.write(name, contents)?;
        Ok(self)
    }
}

/// A self-signed certificate for 127.0.0.1, made with the openssl command.
pub struct Certificate {
    pub cert: PathBuf,
    pub key: PathBuf,
    _dir: TempDir,
}

impl Certificate {
    pub fn self_signed() -> anyhow::Result<Certificate> {
        let openssl = require(OPENSSL)?;
        let dir = TempDir::new("cert")?;
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        Spawned::run(
            "openssl req",
            Command::new(openssl)
                .args([
                    "req",
                    "-x509",
                    "-nodes",
                    "-days",
                    "1",
                    "-subj",
                    "/CN=127.0.0.1",
                ])
                .args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert),
            CERTIFICATE_TIMEOUT,
        )?;
        Ok(Certificate {
            cert,
            key,
            _dir: dir,
        })
    }
}

/// `src/python/server.py`: a site over HTTP/1.1 with keep-alive, plus `/chunked`.
pub struct PythonServer {
    process: Spawned,
    port: u16,
    _site: Site,
}

impl PythonServer {
    /// Serve `site` in plaintext.
    pub fn start(site: Site) -> anyhow::Result<PythonServer> {
        PythonServer::launch(site, None)
    }

    /// Serve `site` over TLS with `certificate`.
    pub fn start_tls(site: Site, certificate: &Certificate) -> anyhow::Result<PythonServer> {
        PythonServer::launch(site, Some(certificate))
    }

    fn launch(site: Site, certificate: Option<&Certificate>) -> anyhow::Result<PythonServer> {
        let python = python()?;
        let mut command = Command::new(&python.path);
        command
            .args(["-c", SERVER_SCRIPT, "--dir"])
            .arg(site.dir.path());
        if let Some(certificate) = certificate {
            command
                .arg("--cert")
                .arg(&certificate.cert)
                .arg("--key")
                .arg(&certificate.key);
        }
        let mut process = Spawned::start("python server", &mut command)?;
        let line = process.next_line(SERVER_START_TIMEOUT)?;
        let port = line
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .with_context(|| format!("the python server said {line:?} instead of its port"))?;
        Ok(PythonServer {
            process,
            port,
            _site: site,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn https_url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }
}

/// nginx in the foreground, one process (no master, no workers: the pid is the one that
/// serves), answering fixed text at fixed paths.
pub struct Nginx {
    process: Spawned,
    port: u16,
    _dir: TempDir,
}

impl Nginx {
    /// `routes`: (exact path, response body) pairs, answered with 200 text/plain.
    pub fn start(routes: &[(&str, &str)]) -> anyhow::Result<Nginx> {
        let nginx = require(NGINX)?;
        let dir = TempDir::new("nginx")?;
        let port = free_port()?;
        let d = dir.path().display();
        let locations: String = routes
            .iter()
            .map(|(path, body)| {
                format!(
                    "    location = {path} {{ default_type text/plain; return 200 \"{}\"; }}\n",
                    body.escape_default()
                )
            })
            .collect();
        let config = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  \
             fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
             server {{\n    listen 127.0.0.1:{port};\n{locations}  }}\n}}\n"
        );
        let config_path = dir.write("nginx.conf", config)?;
        let mut command = Command::new(nginx);
        command
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(&config_path);
        let mut process = Spawned::start("nginx", &mut command)?;
        wait_for_port(port, &mut process)?;
        Ok(Nginx {
            process,
            port,
            _dir: dir,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }
}

/// A loopback port nobody listens on right now. Only for servers that cannot be told to pick
/// one themselves (nginx); another process could take it before the server does, which
/// [`wait_for_port`] would then report as the server failing to start.
pub fn free_port() -> anyhow::Result<u16> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot bind a loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// Poll until `port` accepts connections on loopback, failing early if `server` exits.
pub fn wait_for_port(port: u16, server: &mut Spawned) -> anyhow::Result<()> {
    let deadline = Instant::now() + SERVER_START_TIMEOUT;
    loop {
        if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(());
        }
        if server.try_status().is_some() || Instant::now() >= deadline {
            bail!(
                "not listening on port {port} after {SERVER_START_TIMEOUT:?}: {}",
                server.describe()
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
}
