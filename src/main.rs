//! The `authgraph` command: `serve` (default), `migrate`, `schema`, `config-reference`, …

use clap::{Parser, Subcommand};

use std::io::{BufRead, IsTerminal};

use anyhow::Context;
use authgraph::app::{self, Application, Core};
use authgraph::config::Config;
use authgraph::domain::{Email, Password};
use authgraph::interfaces::graphql;

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: Config,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default): applies pending migrations, then serves /graphql.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the GraphQL schema (SDL) that clients generate code from.
    Schema,
    /// Print the configuration reference (every setting, its flag, default and meaning) as
    /// Markdown: what docs/configuration.md holds.
    ConfigReference,
    /// Make an account an administrator, creating it if there is none. An existing account is
    /// promoted only with its own password (and its sessions end). The password is read from
    /// the terminal (hidden) or from standard input, never from the command line, where other
    /// users of the machine could see it.
    CreateAdmin {
        /// The administrator's email.
        #[arg(long)]
        email: String,
    },
    /// Exit 0 if the server on HOST:PORT answers /ready with 200, 1 otherwise: a health check
    /// for container runtimes, with nothing but this binary in the image.
    Healthcheck,
    /// Measure how many password verifications per second this machine does with the
    /// configured argon2 parameters on PASSWORD_HASH_WORKERS threads (sign-ins cannot go faster).
    HashRate {
        /// How long to measure.
        #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
        duration: std::time::Duration,
    },
}

/// Allocator settings that matter for argon2: each hash allocates ~19 MiB and frees it. glibc
/// then raises its mmap threshold and keeps such blocks in per-thread arenas, so a burst of
/// sign-ins leaves hundreds of MiB resident. A fixed threshold sends them back to the system
/// on free, and two arenas are plenty for a service this size.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn main() {
    tune_allocator();
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(run()),
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            std::process::exit(1);
        }
    }
}

async fn run() {
    let dotenv = dotenvy::dotenv();
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Schema = command {
        print!("{}", graphql::sdl());
        return;
    }
    if let Command::ConfigReference = command {
        print!("{}", authgraph::config::reference::markdown());
        return;
    }
    if let Command::Healthcheck = command {
        let ready = healthcheck(&cli.config).await;
        if let Err(error) = &ready {
            eprintln!("not ready: {error:#}");
        }
        std::process::exit(i32::from(ready.is_err()));
    }
    let _telemetry = authgraph::telemetry::init(cli.config.telemetry.log_format);
    let result = match dotenv {
        // A missing .env is normal; a broken one is worth stopping for.
        Err(e) if !e.not_found() => Err(anyhow::anyhow!("cannot read .env: {e}")),
        _ => match command {
            Command::Migrate => migrate(cli.config).await,
            Command::CreateAdmin { email } => create_admin(cli.config, &email).await,
            Command::HashRate { duration } => hash_rate(cli.config, duration).await,
            _ => serve(cli.config).await,
        },
    };
    // A startup failure is one clear log line with its causes, not a backtrace.
    if let Err(error) = result {
        tracing::error!("{error:#}");
        std::process::exit(1);
    }
}

/// GETs `/ready` from the server this configuration describes, over plain HTTP/1.1.
async fn healthcheck(config: &Config) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = match config.host {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        host => host,
    };
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect((host, config.port)).await?;
        stream
            .write_all(b"GET /ready HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        anyhow::Ok(answer)
    };
    let answer = tokio::time::timeout(std::time::Duration::from_secs(5), exchange)
        .await
        .context("no answer within 5 s")??;
    let status = String::from_utf8_lossy(&answer);
    let status = status.lines().next().unwrap_or_default();
    anyhow::ensure!(status.starts_with("HTTP/1.1 200"), "{status}");
    Ok(())
}

async fn migrate(config: Config) -> anyhow::Result<()> {
    app::connect_and_migrate(&config).await?;
    tracing::info!("migrations applied");
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let application = Application::build(&config).await?;
    let address = application.local_addr()?;
    tracing::info!("mode {}", config.mode());
    tracing::info!("listening on http://{address} (GraphiQL: http://{address}/graphql)");
    if let Some(metrics) = application.metrics_addr() {
        tracing::info!("metrics on http://{metrics}/metrics");
    }
    application.run_until(app::shutdown_signal()).await?;
    Ok(())
}

async fn create_admin(config: Config, email: &str) -> anyhow::Result<()> {
    use authgraph::application::AdminMade;
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
    let core = Core::assemble(&config).await?;
    let users = &core.services.users;
    let exists = users.exists(&email).await?;
    let password = read_password(
        if exists {
            "Password of the existing account: "
        } else {
            "Password for the new administrator: "
        },
        !exists,
    )?;
    match users.make_admin(email.clone(), password).await? {
        AdminMade::Created => {
            tracing::info!(email = email.as_str(), "administrator account created")
        }
        AdminMade::Promoted { sessions_ended } => tracing::info!(
            email = email.as_str(),
            sessions_ended,
            "the account is now an administrator; its sessions were ended"
        ),
        AdminMade::AlreadyAdmin => {
            tracing::info!(
                email = email.as_str(),
                "the account is an administrator already"
            )
        }
    }
    core.audit.flush().await;
    Ok(())
}

/// A password: typed at a terminal (twice when it is a new one), or the first line of standard
/// input (for scripts: `printf '%s\n' "$PASSWORD" | authgraph create-admin --email …`).
fn read_password(prompt: &str, new: bool) -> anyhow::Result<Password> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(prompt)?;
        if new {
            let second = rpassword::prompt_password("The same password again: ")?;
            anyhow::ensure!(first == second, "the two passwords differ");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    Password::new(password).map_err(|e| anyhow::anyhow!("password: {e}"))
}

async fn hash_rate(config: Config, duration: std::time::Duration) -> anyhow::Result<()> {
    use authgraph::application::ports::{HashingLoad, PasswordHasher};
    use authgraph::infrastructure::security::Argon2Hasher;
    use std::sync::Arc;

    let settings = config.hashing.settings();
    let hasher = Arc::new(Argon2Hasher::new(&settings).map_err(anyhow::Error::msg)?);
    let password =
        Password::new("correct horse battery staple".into()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let hash = hasher.hash(password.clone()).await?;
    // One untimed verification per worker first, so every worker has its memory: faulting it
    // in is a large share of a hash, which a short measurement would count against argon2.
    let warm_up = (0..settings.workers).map(|_| hasher.verify(password.clone(), &hash));
    for verified in futures_util::future::join_all(warm_up).await {
        verified?;
    }
    let before = hasher.completed();
    let started = std::time::Instant::now();
    // Twice as many callers as workers keeps every worker busy.
    let callers = (0..settings.workers * 2).map(|_| {
        let (hasher, password, hash) = (hasher.clone(), password.clone(), hash.clone());
        tokio::spawn(async move {
            while started.elapsed() < duration {
                hasher.verify(password.clone(), &hash).await?;
            }
            anyhow::Ok(())
        })
    });
    for caller in futures_util::future::join_all(callers).await {
        caller??;
    }
    let rate = (hasher.completed() - before) as f64 / started.elapsed().as_secs_f64();
    println!(
        "argon2id m={} t={} p={}: {rate:.1} verifications/s on {} threads",
        settings.memory_kib, settings.iterations, settings.parallelism, settings.workers
    );
    Ok(())
}
