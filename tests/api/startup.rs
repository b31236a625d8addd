//! The real binary, in production, refusing each setting that would open a hole: every bad
//! setting alone on top of a valid production configuration, a non-zero exit and a message
//! naming the setting. And the settings that relax a refusal on purpose.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::cli::ServerProcess;

const STRONG_SECRET: &str = "pYyU3mZ0c7mNnY5wZ3Nw2hQ0zvJc5F0b6wqQm1o4J9k5TqW8nVbR2xXl3sA7eD1g";
const STRONG_KEY: &str = "9Yk2mQe4Lw0vTn7RzXb1Hc8Ps5Ju3Dg6Af+Ko/iNtE0=";

/// A valid production configuration on a database of its own.
fn production(dir: &tempfile::TempDir) -> Vec<(&'static str, String)> {
    vec![
        ("APP_ENV", "production".into()),
        ("HOST", "127.0.0.1".into()),
        ("PORT", "0".into()),
        (
            "DATABASE_URL",
            format!("sqlite://{}/db.sqlite?mode=rwc", dir.path().display()),
        ),
        ("JWT_SECRET", STRONG_SECRET.into()),
        ("MFA_ENCRYPTION_KEY", STRONG_KEY.into()),
        ("PUBLIC_URL", "https://app.example.com".into()),
        ("MAILER", "log".into()),
        ("METRICS_ADDR", "127.0.0.1:0".into()),
    ]
}

/// Runs the binary with `changes` applied (an empty value removes the variable) and waits
/// for it to exit; returns what it logged. A server that keeps running fails the test.
fn refused(changes: &[(&'static str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut env = production(&dir);
    for (name, value) in changes {
        env.retain(|(n, _)| n != name);
        if !value.is_empty() {
            env.push((name, (*value).to_owned()));
        }
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_authgraph"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(n, v)| (*n, v.as_str())))
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the server started with {changes:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = child.wait_with_output().unwrap();
    assert!(!status.success(), "{changes:?} exited with {status}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn production_refuses_each_setting_that_would_open_a_hole() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        // A new deployment signs with ES256 and needs its private key.
        (&[("JWT_SECRET", "")], "JWT_PRIVATE_KEY is not set"),
        (
            &[("JWT_SECRET", ""), ("JWT_ALGORITHM", "HS256")],
            "JWT_SECRET is not set",
        ),
        (
            &[("JWT_ALGORITHM", "EdDSA"), ("JWT_PRIVATE_KEY", "not a key")],
            "JWT_PRIVATE_KEY is not a PEM private key",
        ),
        (
            &[
                ("JWT_ALGORITHM", "EdDSA"),
                (
                    "JWT_PRIVATE_KEY",
                    "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgunqrAlikCMPO7A1b\nyENTxkpyF9WJWvPxQIKk8XDl0yWhRANCAAQNyJZYzWoRyfAoSKR7+oODS8RXCv9H\nePzBq13w3jawbU2ZJPxxxNMV/HBnuxvAuePjB6nODBYOsmR/sV+CpjTH\n-----END PRIVATE KEY-----",
                ),
            ],
            "JWT_PRIVATE_KEY is an ES256 key, but JWT_ALGORITHM is EdDSA",
        ),
        (&[("JWT_SECRET", &"a".repeat(64))], "JWT_SECRET"),
        (&[("JWT_SECRET", "short-but-random-9f$Kq!")], "JWT_SECRET"),
        (
            &[("JWT_PREVIOUS_SECRETS", "old-secret")],
            "JWT_PREVIOUS_SECRETS",
        ),
        (
            &[("MFA_ENCRYPTION_KEY", "")],
            "MFA_ENCRYPTION_KEY is not set",
        ),
        (
            &[("MFA_ENCRYPTION_KEY", "c2hvcnQ=")],
            "MFA_ENCRYPTION_KEY decodes to 5 bytes; 32 are needed",
        ),
        (
            &[(
                "MFA_ENCRYPTION_KEY",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            )],
            "MFA_ENCRYPTION_KEY has about 0 bits of entropy",
        ),
        (
            &[("MFA_PREVIOUS_ENCRYPTION_KEYS", "not-a-key")],
            "MFA_PREVIOUS_ENCRYPTION_KEYS (entry 1) is not base64",
        ),
        // Malformed in development too: nothing it sealed could be opened once corrected.
        (
            &[
                ("APP_ENV", "development"),
                ("MFA_ENCRYPTION_KEY", "c2hvcnQ="),
            ],
            "MFA_ENCRYPTION_KEY decodes to 5 bytes",
        ),
        (&[("TRUSTED_PROXIES", "0.0.0.0/0")], "TRUSTED_PROXIES"),
        (&[("TRUSTED_PROXIES", "10.0.0.1,::/0")], "TRUSTED_PROXIES"),
        (&[("PUBLIC_URL", "http://app.example.com")], "PUBLIC_URL"),
        (&[("PUBLIC_URL", "https://localhost:3000")], "PUBLIC_URL"),
        (
            &[
                ("MAILER", ""),
                ("SMTP_URL", "smtp://user:pw@mail.example.com:587"),
            ],
            "SMTP_URL",
        ),
        (&[("MAILER", "")], "SMTP_URL"),
        (&[("APP_ENV", ""), ("HOST", "0.0.0.0")], "APP_ENV"),
        // Passkeys: pages browsers would refuse them on, or that are not the frontend's.
        (
            &[("WEBAUTHN_ORIGINS", "http://app.example.com")],
            "WEBAUTHN_ORIGINS",
        ),
        (&[("WEBAUTHN_RP_ID", "other.example")], "WEBAUTHN_RP_ID"),
        (
            &[("WEBAUTHN_ORIGINS", "https://admin.app.example.com")],
            "does not list PUBLIC_URL's origin",
        ),
    ];
    for (changes, named) in cases {
        let said = refused(changes);
        assert!(
            said.contains(named),
            "{changes:?} should name {named}: {said}"
        );
        assert!(
            !said.contains(STRONG_SECRET) && !said.contains(STRONG_KEY),
            "the message leaks the secret: {said}"
        );
        for (name, value) in *changes {
            assert!(
                !name.starts_with("MFA_") || value.is_empty() || !said.contains(value),
                "the message shows {name}: {said}"
            );
        }
    }
}

#[tokio::test]
async fn a_valid_production_configuration_starts_and_the_relaxations_are_honoured() {
    for relaxed in [
        vec![],
        vec![
            ("TRUSTED_PROXIES", "0.0.0.0/0"),
            ("TRUSTED_PROXIES_ALLOW_WIDE", "true"),
        ],
        vec![
            ("MAILER", "smtp"),
            ("SMTP_URL", "smtp://127.0.0.1:2525"),
            ("SMTP_ALLOW_PLAINTEXT", "true"),
        ],
        vec![("APP_ENV", "development"), ("HOST", "0.0.0.0")],
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut env = production(&dir);
        for (name, value) in &relaxed {
            env.retain(|(n, _)| n != name);
            env.push((name, (*value).to_owned()));
        }
        let database = env
            .iter()
            .find(|(n, _)| *n == "DATABASE_URL")
            .unwrap()
            .1
            .clone();
        let env: Vec<(&str, &str)> = env.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let server = ServerProcess::start(&database, &env);
        let ready = reqwest::get(server.url("/ready")).await.unwrap();
        assert_eq!(ready.status(), 200, "{relaxed:?}");
        // The image's health check is the binary itself.
        let port = server.address.rsplit(':').next().unwrap();
        let check = Command::new(env!("CARGO_BIN_EXE_authgraph"))
            .arg("healthcheck")
            .env("PORT", port)
            .env("HOST", "127.0.0.1")
            .status()
            .unwrap();
        assert!(check.success());
    }
}

#[test]
fn the_health_check_fails_when_nothing_answers() {
    let status = Command::new(env!("CARGO_BIN_EXE_authgraph"))
        .arg("healthcheck")
        .env("PORT", "1")
        .env("HOST", "127.0.0.1")
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success());
}

#[test]
fn help_never_shows_secret_values() {
    let output = Command::new(env!("CARGO_BIN_EXE_authgraph"))
        .arg("--help")
        .env("DATABASE_URL", "postgres://app:db-password-123@db/app")
        .env("JWT_SECRET", STRONG_SECRET)
        .env("SMTP_URL", "smtps://u:smtp-password-456@mail.example.com")
        .env("REDIS_URL", "redis://:redis-password-789@cache:6379")
        .env("JWT_PREVIOUS_SECRETS", "previous-secret-000")
        .env("MFA_ENCRYPTION_KEY", STRONG_KEY)
        .env("MFA_PREVIOUS_ENCRYPTION_KEYS", "previous-mfa-key-111")
        .env("JWT_PRIVATE_KEY", "private-key-pem-222")
        .env("JWT_PREVIOUS_KEYS", "previous-key-pem-333")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("DATABASE_URL"), "{help}");
    assert!(help.contains("MFA_ENCRYPTION_KEY"), "{help}");
    for secret in [
        "db-password-123",
        STRONG_SECRET,
        "smtp-password-456",
        "redis-password-789",
        "previous-secret-000",
        STRONG_KEY,
        "previous-mfa-key-111",
        "private-key-pem-222",
        "previous-key-pem-333",
    ] {
        assert!(!help.contains(secret), "--help shows {secret}");
    }
}
