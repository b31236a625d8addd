use secrecy::ExposeSecret;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;

use crate::helpers::{
    JWT_SECRET, MFA_ENCRYPTION_KEY, PASSWORD, Role, TestApp, assert_no_errors, error_code,
    spawn_app, unique_email,
};

/// Runs `authgraph create-admin` against the test app's database, the password on stdin.
/// The wait happens off the test's runtime, so the app (on that runtime) goes on working
/// meanwhile: its background writes must finish for the command's to get their turn.
async fn create_admin(app: &TestApp, email: &str, stdin: &str) -> std::process::Output {
    let (url, email, stdin) = (
        app.config.database.database_url.expose_secret().to_owned(),
        email.to_owned(),
        stdin.to_owned(),
    );
    tokio::task::spawn_blocking(move || run_create_admin(&url, &email, &stdin))
        .await
        .unwrap()
}

fn run_create_admin(database_url: &str, email: &str, stdin: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_authgraph"))
        .args(["create-admin", "--email", email])
        .env("DATABASE_URL", database_url)
        .env("JWT_SECRET", JWT_SECRET)
        .env("MFA_ENCRYPTION_KEY", MFA_ENCRYPTION_KEY)
        .env("MAILER", "log")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn create_admin_makes_a_new_administrator_with_a_password_from_stdin() {
    let app = spawn_app().await;
    let email = unique_email();
    let output = create_admin(&app, &email, &format!("{PASSWORD}\n")).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let login = app.sign_in(&email, PASSWORD).await;
    let me = app.current_user(&login.access()).await;
    assert_eq!(me.role, Role::Admin);
    assert!(me.email_verified);
}

#[tokio::test]
async fn create_admin_promotes_an_existing_account_only_with_its_password_and_ends_its_sessions() {
    let app = spawn_app().await;
    // Someone registered the operator's address first.
    let email = unique_email();
    let squatter = app.register(&email, PASSWORD).await.access();

    let refused = create_admin(&app, &email.to_uppercase(), "the operator's own password\n").await;
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("not its password"), "{said}");
    let body = app
        .graphql_as(&squatter, "{ users { totalCount } }", serde_json::json!({}))
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "not promoted");

    let output = create_admin(&app, &email, &format!("{PASSWORD}\n")).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        error_code(&app.me(&squatter).await),
        "UNAUTHENTICATED",
        "promotion ended the account's sessions"
    );
    let admin = app.sign_in(&email, PASSWORD).await.access();
    assert_no_errors(
        &app.graphql_as(&admin, "{ users { totalCount } }", serde_json::json!({}))
            .await,
    );
    app.flush_audit().await;
    let events = app
        .graphql_as(
            &admin,
            "{ auditEvents(first: 10, filter: { kind: ROLE_CHANGED }) { edges { node { detail } } } }",
            serde_json::json!({}),
        )
        .await;
    assert_no_errors(&events);
    let detail = events["data"]["auditEvents"]["edges"][0]["node"]["detail"]
        .as_str()
        .unwrap();
    assert!(
        detail.contains("command line") && detail.contains("sessions ended: 1"),
        "{detail}"
    );
}

#[tokio::test]
async fn create_admin_refuses_a_weak_password_or_a_bad_email() {
    let app = spawn_app().await;
    let weak = create_admin(&app, &unique_email(), "short\n").await;
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("Use at least 8 characters"));
    let bad = create_admin(&app, "not-an-email", &format!("{PASSWORD}\n")).await;
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--email"));
}

/// The real binary, on an ephemeral port, stopped the way an orchestrator stops it.
#[tokio::test]
async fn sigterm_lets_requests_in_flight_finish_then_exits() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/db.sqlite?mode=rwc", dir.path().display());
    let mut server = ServerProcess::start(&url, &[]);
    let client = reqwest::Client::new();
    let slow = tokio::spawn({
        let url = server.url("/__test/slow/1500");
        let client = client.clone();
        async move { client.get(url).send().await }
    });
    // The signal comes once the request is inside its handler, whatever the machine's load.
    server.wait_for_log("slow test request started").await;
    server.signal("-TERM");

    let response = slow
        .await
        .unwrap()
        .expect("the request in flight is answered");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "done");
    let exit = server.wait().await;
    assert!(exit.success(), "{exit:?}");
    assert!(
        client.get(server.url("/health")).send().await.is_err(),
        "no longer accepting"
    );
}

/// The server binary as a child process on an ephemeral port.
pub struct ServerProcess {
    child: Option<std::process::Child>,
    pub address: String,
    log: Arc<ServerLog>,
    reader: Option<std::thread::JoinHandle<()>>,
}

/// Every line the process wrote to stderr (its log), from every thread of it.
#[derive(Default)]
struct ServerLog {
    lines: std::sync::Mutex<Vec<String>>,
    grew: std::sync::Condvar,
}

/// How long a test waits for a line before it fails: a bound on a hang, not a schedule.
const LOG_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

impl ServerProcess {
    /// Starts it on `database_url` and waits until it listens.
    pub fn start(database_url: &str, env: &[(&str, &str)]) -> Self {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new(env!("CARGO_BIN_EXE_authgraph"))
            .env("DATABASE_URL", database_url)
            .env("PORT", "0")
            .env("JWT_SECRET", JWT_SECRET)
            .env("MFA_ENCRYPTION_KEY", MFA_ENCRYPTION_KEY)
            .env("MAILER", "log")
            .env("RATE_LIMITS", "false")
            .env("METRICS_ADDR", "127.0.0.1:0")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(ServerLog::default());
        let lines = BufReader::new(child.stderr.take().unwrap()).lines();
        // Keep draining the log so the server never blocks on a full pipe.
        let reader = std::thread::spawn({
            let log = log.clone();
            move || {
                for line in lines.map_while(Result::ok) {
                    log.lines.lock().unwrap().push(line);
                    log.grew.notify_all();
                }
            }
        });
        let listening = log.wait_for("listening on http://");
        let address = listening
            .split("listening on http://")
            .nth(1)
            .and_then(|rest| rest.split(['"', ' ']).next())
            .unwrap()
            .to_owned();
        Self {
            child: Some(child),
            address,
            log,
            reader: Some(reader),
        }
    }

    /// Waits until the process logs a line containing `needle`; returns that line.
    pub async fn wait_for_log(&self, needle: &str) -> String {
        let (log, needle) = (self.log.clone(), needle.to_owned());
        tokio::task::spawn_blocking(move || log.wait_for(&needle))
            .await
            .unwrap()
    }

    /// The process's log so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lines.lock().unwrap().clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Sends a signal (`-TERM`, `-KILL`) to the process.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        assert!(
            Command::new("kill")
                .args([signal, &pid])
                .status()
                .unwrap()
                .success()
        );
    }

    /// Waits for the process to exit and for the last of its log to be read.
    pub async fn wait(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let reader = self.reader.take().unwrap();
        tokio::task::spawn_blocking(move || {
            let status = child.wait().unwrap();
            reader.join().unwrap();
            status
        })
        .await
        .unwrap()
    }
}

impl ServerLog {
    fn wait_for(&self, needle: &str) -> String {
        let lines = self.lines.lock().unwrap();
        let (lines, _) = self
            .grew
            .wait_timeout_while(lines, LOG_WAIT, |lines| {
                !lines.iter().any(|line| line.contains(needle))
            })
            .unwrap();
        lines
            .iter()
            .find(|line| line.contains(needle))
            .unwrap_or_else(|| panic!("the server never logged {needle:?}: {lines:#?}"))
            .clone()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
