//! The `leadflow` command line.
//!
//! The admin commands print tables, summaries and one-line confirmations for people, and the
//! API's JSON with `--json` for scripts (see `render`).

mod campaigns;
mod commands;
pub mod dead_letters;
mod execute;
mod leads;
mod render;
mod reps;
pub mod table;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde_json::Value;

use crate::client::{AdminClient, Auth, ClientError, DEFAULT_URL, SigV4};
use crate::dev::{DevOptions, start};
pub use commands::{
    CampaignCommand, ConsoleCommand, ExportFormat, FilterArgs, FunnelBy, LeadCommand, MarkStatus, RepCommand,
    ReportCommand, TeamCommand,
};
pub use execute::execute;
pub use render::{Format, Shown, View, show};

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
        /// A configuration folder (see shared/app/config); default: the built-in sample.
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
    /// Nurture campaigns, through the admin API.
    Campaign {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        action: CampaignCommand,
    },
    /// Sales reps, through the admin API.
    Rep {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        action: RepCommand,
    },
    /// Leads, through the admin API.
    Lead {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        action: LeadCommand,
    },
    /// Reports, through the admin API.
    Report {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        action: ReportCommand,
    },
    /// Sales teams, through the admin API.
    Team {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        action: TeamCommand,
    },
    /// The stages' dead letters, with why each failed; `redrive` puts them back on the queue.
    DeadLetters {
        #[command(flatten)]
        api: ApiArgs,
        #[command(flatten)]
        args: dead_letters::DeadLetterArgs,
    },
    /// The web console of the local stack.
    Console {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        action: ConsoleCommand,
    },
}

/// Where the admin API is and how to prove who we are.
#[derive(Args, Debug, Clone)]
pub struct ApiArgs {
    /// The admin API's address: http://… for the local stack (with --token), or a deployment's
    /// https://… API Gateway address, whose requests are SigV4-signed with the AWS credentials of
    /// the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN).
    #[arg(long, env = "LEADFLOW_URL", default_value = DEFAULT_URL, global = true)]
    pub url: String,
    /// The admin bearer token (`leadflow dev` prints it at start); not used with SigV4.
    #[arg(long, env = "LEADFLOW_ADMIN_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Sign requests with AWS SigV4 (service execute-api) even over http; https addresses always are.
    #[arg(
        long,
        env = "LEADFLOW_SIGV4",
        global = true,
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub sigv4: bool,
    /// The deployment's AWS region, for SigV4; default: AWS_REGION, else AWS_DEFAULT_REGION.
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Print the API's JSON answer instead of a table or summary (for scripts).
    #[arg(long, global = true)]
    pub json: bool,
}

impl ApiArgs {
    /// How answers are printed.
    pub fn format(&self) -> Format {
        if self.json { Format::Json } else { Format::Human }
    }

    /// Whether requests are SigV4-signed: an https address, or asked for.
    pub fn signs(&self) -> bool {
        self.sigv4 || self.url.trim_start().get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://"))
    }

    /// How requests prove who sends them; `var` reads the environment.
    pub fn auth(&self, var: impl Fn(&str) -> Option<String>) -> Result<Auth, ClientError> {
        if self.signs() {
            Ok(Auth::SigV4(SigV4::from_env(self.region.as_deref(), var)?))
        } else {
            Ok(Auth::Bearer(self.token.clone()))
        }
    }
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
                println!("  console:      {} (signs you in as the local admin, once; more with `leadflow console link --as <email>`)", running.sign_in_link);
                println!("  look it up:   curl -H 'authorization: Bearer {}' 'http://{}/admin/leads?email=ana@acme.io'", running.admin_token, running.addr);
                running.run_until_signal().await;
                ExitCode::SUCCESS
            })
        }
        Command::Campaign { api, action } => run_api_call(&api, ApiCall::Campaign(action)),
        Command::Rep { api, action } => run_api_call(&api, ApiCall::Rep(action)),
        Command::Lead { api, action } => run_api_call(&api, ApiCall::Lead(action)),
        Command::Report { api, action } => run_api_call(&api, ApiCall::Report(action)),
        Command::Team { api, action } => run_api_call(&api, ApiCall::Team(action)),
        Command::Console { api, action } => run_api_call(&api, ApiCall::Console(action)),
        Command::DeadLetters { api, args } => run_api_call(&api, ApiCall::DeadLetters(args)),
    }
}

/// A command that talks to the admin API.
#[derive(Debug)]
pub enum ApiCall {
    Campaign(CampaignCommand),
    Rep(RepCommand),
    Lead(LeadCommand),
    Report(ReportCommand),
    Team(TeamCommand),
    Console(ConsoleCommand),
    DeadLetters(dead_letters::DeadLetterArgs),
}

/// What a command prints on success.
#[derive(Debug)]
pub enum Output {
    /// The API's answer (`--json`), printed pretty.
    Json(Value),
    /// For a person: `text` on standard output as it is, `hint` (how to go on, e.g. the next
    /// page's cursor) on standard error, so that a pipe gets only the table.
    Human { text: String, hint: Option<String> },
    /// Printed as it is (an export).
    Text(String),
    /// Already written (an export to a file); a line for the terminal.
    Note(String),
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Api(#[from] ClientError),
    /// Refused before asking the API.
    #[error("{code}: {message}")]
    Local { code: &'static str, message: String },
}

impl CallError {
    fn local(code: &'static str, message: impl Into<String>) -> Self {
        CallError::Local { code, message: message.into() }
    }
}

fn run_api_call(api: &ApiArgs, call: ApiCall) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: runtime: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        refuse_before_connecting(api, &call)?;
        let client = connect(api, |name| std::env::var(name).ok())?;
        execute(&client, call, api.format()).await
    });
    match outcome {
        Ok(Output::Json(v)) => write_stdout(&render::pretty(&v)),
        Ok(Output::Human { text, hint }) => {
            let code = write_stdout(&text);
            if let Some(hint) = hint {
                eprintln!("{hint}");
            }
            code
        }
        Ok(Output::Text(t)) => write_stdout(&t),
        Ok(Output::Note(n)) => {
            eprintln!("{n}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}", error_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// Refuses what cannot work with these API arguments, before credentials are looked for: a
/// console link from a deployment would otherwise fail on missing AWS keys, which is beside the
/// point.
pub fn refuse_before_connecting(api: &ApiArgs, call: &ApiCall) -> Result<(), CallError> {
    match call {
        ApiCall::Console(ConsoleCommand::Link { .. }) if api.signs() => Err(execute::local_only()),
        _ => Ok(()),
    }
}

/// The client the admin commands use: SigV4-signed for an https address (or `--sigv4`), with
/// credentials and region read by `var` (the environment); else the bearer token.
pub fn connect(api: &ApiArgs, var: impl Fn(&str) -> Option<String>) -> Result<AdminClient, CallError> {
    Ok(AdminClient::with_auth(&api.url, api.auth(var)?)?)
}

/// Writes to standard output; a reader that went away (`| head`) is not an error.
fn write_stdout(text: &str) -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: output: cannot write the answer: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `error: <code>: <message>`, and the field on a line of its own when the API named one.
pub fn error_line(e: &CallError) -> String {
    match e {
        CallError::Api(api) => match api.field() {
            Some(field) => format!("error: {}: {}\n  field: {field}", api.code(), api.message()),
            None => format!("error: {}: {}", api.code(), api.message()),
        },
        CallError::Local { code, message } => format!("error: {code}: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn admin_commands_parse_with_url_and_token_anywhere() {
        let cli = Cli::try_parse_from([
            "leadflow",
            "lead",
            "mark",
            "01ARZ3NDEKTSV4RRFFQ69G5FAV",
            "won",
            "--url",
            "http://h:1",
            "--token",
            "t",
        ]);
        match cli.map(|c| c.command) {
            Ok(Command::Lead { api, action: LeadCommand::Mark { status: MarkStatus::Won, .. } }) => {
                assert_eq!(api.url, "http://h:1");
                assert_eq!(api.token.as_deref(), Some("t"));
            }
            other => panic!("parsed as {other:?}", other = other.map(|_| ()).map_err(|e| e.to_string())),
        }
        assert!(Cli::try_parse_from(["leadflow", "lead", "mark", "x", "new"]).is_err(), "back to new is not offered");
    }

    #[test]
    fn https_addresses_and_the_sigv4_flag_sign_requests() {
        let api = |args: &[&str]| match Cli::try_parse_from(["leadflow", "rep", "list"].iter().chain(args)) {
            Ok(Cli { command: Command::Rep { api, .. } }) => api,
            Ok(_) => panic!("not a rep command"),
            Err(e) => panic!("{e}"),
        };
        let keys = |name: &str| match name {
            "AWS_ACCESS_KEY_ID" => Some("AKID".to_string()),
            "AWS_SECRET_ACCESS_KEY" => Some("secret".to_string()),
            _ => None,
        };
        let local = api(&["--url", "http://127.0.0.1:8080", "--token", "t"]);
        assert!(!local.signs());
        assert!(matches!(local.auth(keys), Ok(Auth::Bearer(Some(t))) if t == "t"));

        let deployed = api(&["--url", "https://abc.execute-api.eu-west-1.amazonaws.com", "--region", "eu-west-1"]);
        assert!(deployed.signs());
        assert!(matches!(deployed.auth(keys), Ok(Auth::SigV4(_))));
        let no_keys = deployed.auth(|_| None).err();
        assert_eq!(no_keys.as_ref().map(ClientError::code), Some("missing_credentials"));

        let forced = api(&["--url", "http://127.0.0.1:8080", "--sigv4"]);
        assert!(forced.signs());
        let no_region = forced.auth(keys).err();
        assert_eq!(no_region.as_ref().map(ClientError::code), Some("missing_region"));
    }

    #[test]
    fn json_is_one_flag_anywhere_for_every_admin_command() {
        let format = |args: &[&str]| match Cli::try_parse_from(args) {
            Ok(Cli { command: Command::Rep { api, .. } | Command::Lead { api, .. } | Command::Report { api, .. } }) => {
                api.format()
            }
            Ok(_) => panic!("not the expected command"),
            Err(e) => panic!("{e}"),
        };
        assert_eq!(format(&["leadflow", "rep", "list"]), Format::Human);
        assert_eq!(format(&["leadflow", "rep", "list", "--json"]), Format::Json);
        assert_eq!(format(&["leadflow", "lead", "--json", "search", "--q", "ana"]), Format::Json);
        assert_eq!(format(&["leadflow", "report", "--json", "funnel", "--by", "campaign"]), Format::Json);
    }

    #[test]
    fn console_link_parses_as_and_next() {
        let cli = Cli::try_parse_from([
            "leadflow",
            "console",
            "link",
            "--as",
            "ben@acme.example",
            "--next",
            "/console/leads/01ARZ3NDEKTSV4RRFFQ69G5FAV",
            "--token",
            "t",
            "--json",
        ]);
        match cli.map(|c| c.command) {
            Ok(Command::Console { api, action: ConsoleCommand::Link { as_email, next } }) => {
                assert_eq!(as_email.as_deref(), Some("ben@acme.example"));
                assert_eq!(next.as_deref(), Some("/console/leads/01ARZ3NDEKTSV4RRFFQ69G5FAV"));
                assert_eq!(api.token.as_deref(), Some("t"));
                assert_eq!(api.format(), Format::Json);
            }
            other => panic!("parsed as {other:?}", other = other.map(|_| ()).map_err(|e| e.to_string())),
        }
        match Cli::try_parse_from(["leadflow", "console", "link"]).map(|c| c.command) {
            Ok(Command::Console { action: ConsoleCommand::Link { as_email: None, next: None }, .. }) => {}
            other => panic!("parsed as {other:?}", other = other.map(|_| ()).map_err(|e| e.to_string())),
        }
    }

    #[test]
    fn console_links_are_refused_for_a_deployment_before_credentials_are_looked_for() {
        let refused = |args: &[&str]| match Cli::try_parse_from(["leadflow", "console", "link"].iter().chain(args)) {
            Ok(Cli { command: Command::Console { api, action } }) => {
                refuse_before_connecting(&api, &ApiCall::Console(action)).err().map(|e| error_line(&e))
            }
            Ok(_) => panic!("not a console command"),
            Err(e) => panic!("{e}"),
        };
        let line = "error: local_only: console links are for the local stack; on AWS sign in through the console URL";
        assert_eq!(refused(&["--url", "https://abc.execute-api.eu-west-1.amazonaws.com"]).as_deref(), Some(line));
        assert_eq!(refused(&["--url", "http://127.0.0.1:8080", "--sigv4"]).as_deref(), Some(line));
        assert_eq!(refused(&["--url", "http://127.0.0.1:8080", "--token", "t"]), None);
    }

    #[tokio::test]
    async fn console_links_are_refused_for_a_deployment_before_any_request() {
        let signer = SigV4::new("AKID", "secret", None, "eu-west-1", crate::client::EXECUTE_API);
        // An address nothing listens on: a request, had one been sent, would fail otherwise.
        let client = match AdminClient::with_auth("https://127.0.0.1:9", Auth::SigV4(signer)) {
            Ok(c) => c,
            Err(e) => panic!("no client: {e}"),
        };
        let call = ApiCall::Console(ConsoleCommand::Link { as_email: None, next: None });
        let line = execute(&client, call, Format::Human).await.err().map(|e| error_line(&e)).unwrap_or_default();
        assert_eq!(
            line,
            "error: local_only: console links are for the local stack; on AWS sign in through the console URL"
        );
    }
}
