//! The server under test: one nginx process (no master, no daemon) serving two files over HTTP
//! and HTTPS from a private directory, pinned to a CPU when asked.

use std::{
    fs,
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};

/// How long nginx gets to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum File {
    OneKib,
    SixtyFourKib,
}

impl File {
    fn name(self) -> &'static str {
        match self {
            File::OneKib => "1k.txt",
            File::SixtyFourKib => "64k.txt",
        }
    }

    fn size(self) -> usize {
        match self {
            File::OneKib => 1024,
            File::SixtyFourKib => 64 * 1024,
        }
    }
}

pub struct Nginx {
    child: Child,
    dir: PathBuf,
    http_port: u16,
    https_port: u16,
}

impl Nginx {
    /// Start nginx; `sendfile` on sends file bodies with sendfile(2), which no hook copies.
    pub fn start(sendfile: bool, cpu: Option<usize>) -> Result<Nginx> {
        let dir = std::env::temp_dir().join(format!("observer-bench-nginx-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("html")).context("creating the nginx directory")?;
        for file in [File::OneKib, File::SixtyFourKib] {
            // Printable, so the bodies look like API payloads rather than binary blobs.
            let body: String = (0..file.size())
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            fs::write(dir.join("html").join(file.name()), body)?;
        }
        make_certificate(&dir)?;
        let (http_port, https_port) = (free_port()?, free_port()?);
        let config = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {dir}/nginx.pid;\n\
             error_log {dir}/error.log;\nevents {{ worker_connections 4096; }}\n\
             http {{\n  access_log off;\n  sendfile {sendfile};\n  keepalive_requests 1000000;\n\
             server {{ listen 127.0.0.1:{http_port}; root {dir}/html; }}\n\
             server {{ listen 127.0.0.1:{https_port} ssl; root {dir}/html;\n\
             ssl_certificate {dir}/cert.pem; ssl_certificate_key {dir}/key.pem; ssl_protocols TLSv1.3; }}\n}}\n",
            dir = dir.display(),
            sendfile = if sendfile { "on" } else { "off" },
        );
        fs::write(dir.join("nginx.conf"), config)?;
        let mut command = super::load::pinned(cpu, "nginx");
        command
            .args(["-e", "stderr", "-c"])
            .arg(dir.join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command
            .spawn()
            .context("starting nginx (Debian package nginx)")?;
        let nginx = Nginx {
            child,
            dir,
            http_port,
            https_port,
        };
        for port in [http_port, https_port] {
            wait_for_port(port)?;
        }
        Ok(nginx)
    }

    pub fn port(&self, tls: bool) -> u16 {
        if tls {
            self.https_port
        } else {
            self.http_port
        }
    }

    pub fn url(&self, tls: bool, file: File) -> String {
        let scheme = if tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}/{}", self.port(tls), file.name())
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn make_certificate(dir: &std::path::Path) -> Result<()> {
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
        ])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("running openssl (Debian package openssl)")?;
    if !status.success() {
        bail!("openssl could not make a test certificate");
    }
    Ok(())
}

/// A port nothing listens on right now.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_for_port(port: u16) -> Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(20));
    }
    bail!(
        "nginx did not listen on port {port} within {} s",
        START_TIMEOUT.as_secs()
    )
}
