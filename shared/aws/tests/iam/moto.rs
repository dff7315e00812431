//! The test's own moto server, `scripts/iam-moto.py`: IAM enforced on every request with the
//! resource AWS would check, every decision written to a file.
//!
//! Its own, rather than the one `scripts/test` starts for the other tests: switching
//! authorization on (`POST /moto-api/reset-auth`) is server-wide, and every other test signs
//! with credentials no role has. Started from here (not from `scripts/test`) so that the
//! server lives exactly as long as the test, its decisions file is the test's, and
//! `cargo test --test iam` runs on its own. The server exits when its standard input closes,
//! so it does not outlive a test process that dies.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use serde::Deserialize;

/// One authorization decision, as scripts/iam-moto.py writes it.
#[derive(Debug, Clone, Deserialize)]
pub struct Decision {
    pub principal: Option<String>,
    pub operation: String,
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub resource: Option<String>,
    pub allowed: bool,
    /// Whether the resource was derived from the request (else it is moto's `*`).
    #[serde(default)]
    pub derived: bool,
    /// Why the request was refused before any policy was read (an unknown key, a bad signature).
    #[serde(default)]
    pub error: Option<String>,
    /// The access key such a request was signed with.
    #[serde(default)]
    pub access_key: Option<String>,
}

pub struct IamMoto {
    pub endpoint: String,
    decisions: PathBuf,
    child: Child,
    _stdin: ChildStdin,
}

impl IamMoto {
    pub fn start(python: &Path, script: &Path, decisions: PathBuf) -> Self {
        let mut child = Command::new(python)
            .arg(script)
            .arg(&decisions)
            .arg("--port")
            .arg("0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} {}: {e}", python.display(), script.display()));
        let stdin = child.stdin.take().expect("the server's stdin");
        let stdout = child.stdout.take().expect("the server's stdout");
        let mut lines = BufReader::new(stdout).lines();
        let port = match lines.next() {
            Some(Ok(line)) => line.strip_prefix("listening on ").and_then(|p| p.trim().parse::<u16>().ok()),
            _ => None,
        };
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{} did not say which port it listens on (its errors are above)", script.display());
        };
        // Keep draining its stdout so that it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Self { endpoint: format!("http://127.0.0.1:{port}"), decisions, child, _stdin: stdin }
    }

    /// Switches authorization on (`0`) for every later request.
    pub async fn enforce(&self) {
        let response = reqwest::Client::new()
            .post(format!("{}/moto-api/reset-auth", self.endpoint))
            .body("0")
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .expect("POST /moto-api/reset-auth");
        assert!(response.status().is_success(), "reset-auth answered {}", response.status());
    }

    /// Every decision so far, in order.
    pub fn decisions(&self) -> Vec<Decision> {
        let text = std::fs::read_to_string(&self.decisions).unwrap_or_default();
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a decision line {l:?}: {e}")))
            .collect()
    }
}

impl Drop for IamMoto {
    fn drop(&mut self) {
        // Only the server this test started, by its handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
