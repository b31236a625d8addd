//! The `authgraph` command: `serve` (default), `migrate`, `schema`.

use clap::{Parser, Subcommand};

use authgraph::app::{self, Application};
use authgraph::config::Config;
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
}

#[tokio::main]
async fn main() {
    let dotenv = dotenvy::dotenv();
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Schema = command {
        print!("{}", graphql::sdl());
        return;
    }
    authgraph::telemetry::init(cli.config.log_format);
    let result = match dotenv {
        // A missing .env is normal; a broken one is worth stopping for.
        Err(e) if !e.not_found() => Err(anyhow::anyhow!("cannot read .env: {e}")),
        _ => match command {
            Command::Migrate => migrate(cli.config).await,
            _ => serve(cli.config).await,
        },
    };
    // A startup failure is one clear log line with its causes, not a backtrace.
    if let Err(error) = result {
        tracing::error!("{error:#}");
        std::process::exit(1);
    }
}

async fn migrate(config: Config) -> anyhow::Result<()> {
    app::connect_and_migrate(&config).await?;
    tracing::info!("migrations applied");
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let application = Application::build(&config).await?;
    let address = application.local_addr()?;
    tracing::info!(
        env = ?config.app_env,
        "listening on http://{address} (GraphiQL: http://{address}/graphql)"
    );
    application.run_until(app::shutdown_signal()).await?;
    Ok(())
}
