//! The `leadflow` command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};

use crate::client::{AdminClient, Auth, ClientError, DEFAULT_URL, LeadFilters, SigV4};
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
}

impl ApiArgs {
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

#[derive(Subcommand, Debug)]
pub enum CampaignCommand {
    /// Applies a campaign file (YAML, JSON or TOML, by its extension): a new version unless
    /// nothing changed.
    Apply { file: PathBuf },
    /// The latest version of every campaign.
    List,
    /// A campaign's latest version in full, and its versions.
    Show { id: String },
    /// Pauses a campaign: enrolled leads wait, nobody enters.
    Pause { id: String },
    /// Resumes a paused campaign.
    Resume { id: String },
    /// Sets when a campaign runs (RFC 3339 times or dates; leave one out for no bound).
    Schedule {
        id: String,
        #[arg(long)]
        start: Option<String>,
        #[arg(long)]
        end: Option<String>,
    },
    /// Moves leads enrolled in older versions to the latest, on purpose: each continues at the
    /// step of the same id; leads whose next step is gone finish their own version.
    Migrate {
        id: String,
        /// Only leads in this version (default: every older version).
        #[arg(long)]
        from_version: Option<u32>,
    },
    /// Renders a step's email for a lead, without sending it.
    Preview {
        id: String,
        #[arg(long)]
        lead: String,
        #[arg(long)]
        step: String,
        /// A version other than the latest.
        #[arg(long)]
        version: Option<u32>,
    },
}

#[derive(Subcommand, Debug)]
pub enum RepCommand {
    /// Every rep, with open leads and teams.
    List,
    /// One rep.
    Show { id: String },
    /// Creates a rep (name and email needed) or changes the fields given.
    Set {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        email: Option<String>,
        /// IANA time zone, e.g. Europe/Berlin.
        #[arg(long)]
        time_zone: Option<String>,
        /// Most open leads the rep may hold.
        #[arg(long)]
        capacity: Option<u32>,
        /// Takes no limit on open leads.
        #[arg(long, conflicts_with = "capacity")]
        no_capacity: bool,
        /// Whether the rep takes leads.
        #[arg(long)]
        active: Option<bool>,
        /// Working days, e.g. mon,tue,wed,thu,fri (with --start and --end).
        #[arg(long, value_delimiter = ',', requires_all = ["start", "end"])]
        days: Option<Vec<String>>,
        /// Start of the working day, HH:MM local.
        #[arg(long, requires = "days")]
        start: Option<String>,
        /// End of the working day, HH:MM local.
        #[arg(long, requires = "days")]
        end: Option<String>,
        /// Works any time (clears working hours).
        #[arg(long, conflicts_with = "days")]
        any_time: bool,
    },
    /// Marks a rep out of office (RFC 3339 times or dates), or back with --clear.
    Ooo {
        id: String,
        #[arg(long, required_unless_present = "clear")]
        from: Option<String>,
        #[arg(long, required_unless_present = "clear")]
        until: Option<String>,
        /// The rep is back.
        #[arg(long, conflicts_with_all = ["from", "until"])]
        clear: bool,
    },
}

#[derive(Args, Debug, Clone, Default)]
pub struct FilterArgs {
    /// Text in the address, name, company or job title, or a lead id.
    #[arg(long)]
    pub q: Option<String>,
    /// new, contacted, won or lost.
    #[arg(long)]
    pub status: Option<String>,
    /// lead, mql or sql.
    #[arg(long)]
    pub lifecycle: Option<String>,
    /// A rep id; `(none)` for leads nobody owns.
    #[arg(long)]
    pub owner: Option<String>,
    /// First-touch utm_source; `(none)` for leads without one.
    #[arg(long)]
    pub source: Option<String>,
}

impl FilterArgs {
    fn filters(&self) -> LeadFilters {
        LeadFilters {
            q: self.q.clone(),
            status: self.status.clone(),
            lifecycle: self.lifecycle.clone(),
            owner: self.owner.clone(),
            source: self.source.clone(),
            ..LeadFilters::default()
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ExportFormat {
    Csv,
    Json,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum MarkStatus {
    Contacted,
    Won,
    Lost,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FunnelBy {
    Source,
    Campaign,
}

#[derive(Subcommand, Debug)]
pub enum LeadCommand {
    /// One lead by id, with its score reasons, owner and trail.
    Show { id: String },
    /// One lead by email address.
    Find { email: String },
    /// Leads matching filters, a page at a time.
    Search {
        #[command(flatten)]
        filters: FilterArgs,
        #[arg(long)]
        limit: Option<u32>,
        /// The `next` of the previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Marks a lead contacted, won or lost (won and lost stop its nurture).
    Mark {
        id: String,
        status: MarkStatus,
        /// Who made the change.
        #[arg(long)]
        by: Option<String>,
        #[arg(long)]
        note: Option<String>,
    },
    /// Every lead matching the filters, as CSV or JSON.
    Export {
        #[arg(long, value_enum, default_value = "csv")]
        format: ExportFormat,
        #[command(flatten)]
        filters: FilterArgs,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Erases a lead's personal data, for good.
    Erase {
        id: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ReportCommand {
    /// Captured → valid → MQL → assigned → contacted → won.
    Funnel {
        #[arg(long, value_enum, default_value = "source")]
        by: FunnelBy,
        /// Only leads created at or after this time (RFC 3339 or a date).
        #[arg(long)]
        since: Option<String>,
        /// Only leads created before this time (RFC 3339 or a date).
        #[arg(long)]
        until: Option<String>,
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
        Command::Campaign { api, action } => run_api_call(&api, ApiCall::Campaign(action)),
        Command::Rep { api, action } => run_api_call(&api, ApiCall::Rep(action)),
        Command::Lead { api, action } => run_api_call(&api, ApiCall::Lead(action)),
        Command::Report { api, action } => run_api_call(&api, ApiCall::Report(action)),
    }
}

/// A command that talks to the admin API.
#[derive(Debug)]
pub enum ApiCall {
    Campaign(CampaignCommand),
    Rep(RepCommand),
    Lead(LeadCommand),
    Report(ReportCommand),
}

/// What a command prints on success.
#[derive(Debug)]
pub enum Output {
    /// Printed pretty.
    Json(Value),
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
        let client = connect(api, |name| std::env::var(name).ok())?;
        execute(&client, call).await
    });
    match outcome {
        Ok(Output::Json(v)) => {
            let mut text = serde_json::to_string_pretty(&v).unwrap_or_else(|_| v.to_string());
            text.push('\n');
            write_stdout(&text)
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

/// An RFC 3339 time as given, or a date (`2026-03-09`) as its midnight UTC.
fn time_arg(name: &str, raw: &str) -> Result<String, CallError> {
    let raw = raw.trim();
    if chrono::DateTime::parse_from_rfc3339(raw).is_ok() {
        return Ok(raw.to_string());
    }
    match chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        Ok(d) => Ok(format!("{d}T00:00:00Z")),
        Err(_) => Err(CallError::local(
            "invalid_argument",
            format!("--{name}: `{raw}` is neither an RFC 3339 time (2026-03-09T09:00:00Z) nor a date (2026-03-09)"),
        )),
    }
}

fn opt_time(name: &str, raw: &Option<String>) -> Result<Option<String>, CallError> {
    raw.as_deref().map(|r| time_arg(name, r)).transpose()
}

/// Runs one admin API command.
pub async fn execute(client: &AdminClient, call: ApiCall) -> Result<Output, CallError> {
    let json = |v: Value| Ok(Output::Json(v));
    match call {
        ApiCall::Campaign(c) => match c {
            CampaignCommand::Apply { file } => {
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| CallError::local("unreadable_file", format!("cannot read {}: {e}", file.display())))?;
                let format = match file.extension().and_then(|x| x.to_str()).map(str::to_ascii_lowercase).as_deref() {
                    Some("json") => "json",
                    Some("toml") => "toml",
                    _ => "yaml",
                };
                json(client.campaign_apply(text, format).await?)
            }
            CampaignCommand::List => json(client.campaigns().await?),
            CampaignCommand::Show { id } => json(client.campaign(&id).await?),
            CampaignCommand::Pause { id } => json(client.campaign_pause(&id).await?),
            CampaignCommand::Resume { id } => json(client.campaign_resume(&id).await?),
            CampaignCommand::Schedule { id, start, end } => {
                let (start, end) = (opt_time("start", &start)?, opt_time("end", &end)?);
                json(client.campaign_schedule(&id, start.as_deref(), end.as_deref()).await?)
            }
            CampaignCommand::Migrate { id, from_version } => json(client.campaign_migrate(&id, from_version).await?),
            CampaignCommand::Preview { id, lead, step, version } => {
                let version = version.map(|v| v.to_string());
                json(client.campaign_preview(&id, &lead, &step, version.as_deref()).await?)
            }
        },
        ApiCall::Rep(r) => match r {
            RepCommand::List => json(client.reps().await?),
            RepCommand::Show { id } => json(client.rep(&id).await?),
            RepCommand::Set {
                id,
                name,
                email,
                time_zone,
                capacity,
                no_capacity,
                active,
                days,
                start,
                end,
                any_time,
            } => {
                let mut patch = serde_json::Map::new();
                let mut put = |k: &str, v: Value| {
                    patch.insert(k.to_string(), v);
                };
                if let Some(v) = name {
                    put("name", json!(v));
                }
                if let Some(v) = email {
                    put("email", json!(v));
                }
                if let Some(v) = time_zone {
                    put("time_zone", json!(v));
                }
                if let Some(v) = capacity {
                    put("capacity", json!(v));
                }
                if no_capacity {
                    put("capacity", Value::Null);
                }
                if let Some(v) = active {
                    put("active", json!(v));
                }
                if let (Some(days), Some(start), Some(end)) = (days, start, end) {
                    put("working_hours", json!({ "days": days, "start": start, "end": end }));
                }
                if any_time {
                    put("working_hours", Value::Null);
                }
                if patch.is_empty() {
                    return Err(CallError::local("nothing_to_set", "give at least one field, e.g. --capacity 20"));
                }
                json(client.rep_set(&id, Value::Object(patch)).await?)
            }
            RepCommand::Ooo { id, from, until, clear } => {
                if clear {
                    return json(client.rep_back(&id).await?);
                }
                match (opt_time("from", &from)?, opt_time("until", &until)?) {
                    (Some(from), Some(until)) => json(client.rep_ooo(&id, &from, &until).await?),
                    _ => Err(CallError::local("invalid_argument", "give --from and --until, or --clear")),
                }
            }
        },
        ApiCall::Lead(l) => match l {
            LeadCommand::Show { id } => json(client.lead_show(&id).await?),
            LeadCommand::Find { email } => json(client.lead_find(&email).await?),
            LeadCommand::Search { filters, limit, cursor } => {
                let mut f = filters.filters();
                f.limit = limit.map(|l| l.to_string());
                f.cursor = cursor;
                json(client.lead_search(&f).await?)
            }
            LeadCommand::Mark { id, status, by, note } => {
                let status = match status {
                    MarkStatus::Contacted => "contacted",
                    MarkStatus::Won => "won",
                    MarkStatus::Lost => "lost",
                };
                json(client.lead_mark(&id, status, by.as_deref(), note.as_deref()).await?)
            }
            LeadCommand::Export { format, filters, output } => {
                let format = match format {
                    ExportFormat::Csv => "csv",
                    ExportFormat::Json => "json",
                };
                let text = client.lead_export(format, &filters.filters()).await?;
                match output {
                    None => Ok(Output::Text(text)),
                    Some(path) => {
                        std::fs::write(&path, &text).map_err(|e| {
                            CallError::local("unwritable_file", format!("cannot write {}: {e}", path.display()))
                        })?;
                        Ok(Output::Note(format!("exported to {}", path.display())))
                    }
                }
            }
            LeadCommand::Erase { id, yes } => {
                if !yes && !confirm_erasure(&id) {
                    return Err(CallError::local(
                        "not_confirmed",
                        "erasure cannot be undone; confirm it by typing the lead id, or pass --yes",
                    ));
                }
                json(client.lead_erase(&id).await?)
            }
        },
        ApiCall::Report(ReportCommand::Funnel { by, since, until }) => {
            let by = match by {
                FunnelBy::Source => "source",
                FunnelBy::Campaign => "campaign",
            };
            let (since, until) = (opt_time("since", &since)?, opt_time("until", &until)?);
            json(client.funnel(by, since.as_deref(), until.as_deref()).await?)
        }
    }
}

/// Asks on a terminal for the lead id again; anywhere else (a script) the answer is no.
fn confirm_erasure(id: &str) -> bool {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return false;
    }
    eprint!("Erase lead {id}'s personal data for good? Type the lead id to confirm: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).is_ok() && line.trim() == id
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
    fn dates_stand_for_midnight_utc() {
        assert_eq!(time_arg("from", "2026-03-09").ok().as_deref(), Some("2026-03-09T00:00:00Z"));
        assert_eq!(time_arg("from", "2026-03-09T09:30:00+01:00").ok().as_deref(), Some("2026-03-09T09:30:00+01:00"));
        assert!(time_arg("from", "next monday").is_err());
    }
}
