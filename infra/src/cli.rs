//! The `leadflow` command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::dev::{DevOptions, start};

#[derive(Parser)]
#[command(name = "leadflow", version, about = "Leadflow: lead capture, scoring, routing and nurture.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the whole pipeline on this machine, with no AWS: the local stack.
    Dev {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// Where the database, the outbox of sent emails and the events file live.
        #[arg(long, default_value = ".leadflow")]
        data_dir: PathBuf,
        /// A configuration folder (see infra/config); default: the built-in sample.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Bearer token for the admin API; default: a random one, printed at start.
        #[arg(long, env = "LEADFLOW_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
        /// Run the clock this many times faster than real time, to watch drips fall due.
        #[arg(long, default_value_t = 1.0)]
        clock_speed: f64,
        /// Seconds between nurture scheduler ticks.
        #[arg(long, default_value_t = 1.0)]
        nurture_every: f64,
        /// Seconds a received message stays invisible before it is delivered again.
        #[arg(long, default_value_t = 30.0)]
        visibility_timeout: f64,
    },
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("LEADFLOW_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::env::var("LEADFLOW_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn seconds(name: &str, s: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s).map_err(|_| format!("--{name} must be a positive number of seconds"))
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match cli.command {
        Command::Dev { addr, data_dir, config, admin_token, clock_speed, nurture_every, visibility_timeout } => {
            let opts =
                match (seconds("nurture-every", nurture_every), seconds("visibility-timeout", visibility_timeout)) {
                    (Ok(n), Ok(v)) if clock_speed.is_finite() && clock_speed > 0.0 && !n.is_zero() => DevOptions {
                        addr,
                        data_dir,
                        config_dir: config,
                        admin_token,
                        clock_speed,
                        nurture_every: n,
                        visibility_timeout: v,
                    },
                    (Err(e), _) | (_, Err(e)) => {
                        eprintln!("leadflow: {e}");
                        return ExitCode::from(2);
                    }
                    _ => {
                        eprintln!("leadflow: --clock-speed and --nurture-every must be positive");
                        return ExitCode::from(2);
                    }
                };
            let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("leadflow: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            runtime.block_on(async move {
                let running = match start(opts).await {
                    Ok(r) => r,
                    Err(e) => {
                        eprintln!("leadflow: {e}");
                        return ExitCode::FAILURE;
                    }
                };
                println!("Leadflow local stack listening on http://{}", running.addr);
                println!("  post a lead:  curl -X POST http://{}/leads -H 'content-type: application/json' -d '{{\"email\":\"ana@acme.io\",\"first_name\":\"Ana\",\"job_title\":\"CTO\",\"company\":\"Acme\",\"country\":\"DE\"}}'", running.addr);
                println!("  outbox:       {}", running.outbox.display());
                println!("  events:       {}", running.events.display());
                println!("  database:     {}", running.database.display());
                println!("  admin token:  {}", running.admin_token);
                println!("  look it up:   curl -H 'authorization: Bearer {}' 'http://{}/admin/leads?email=ana@acme.io'", running.admin_token, running.addr);
                running.run_until_signal().await;
                ExitCode::SUCCESS
            })
        }
    }
}
