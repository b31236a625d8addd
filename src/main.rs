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
async fn main() -> anyhow::Result<()> {
    // A missing .env is normal; a broken one is worth stopping for.
    match dotenvy::dotenv() {
        Ok(_) => {}
        Err(e) if e.not_found() => {}
        Err(e) => anyhow::bail!("cannot read .env: {e}"),
    }
    let cli = Cli::parse();
    let config = cli.config;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Schema => {
            print!("{}", graphql::sdl());
            Ok(())
        }
        Command::Migrate => {
            authgraph::telemetry::init(config.log_format);
            app::connect_and_migrate(&config).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Serve => {
            authgraph::telemetry::init(config.log_format);
            serve(config).await
        }
    }
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
