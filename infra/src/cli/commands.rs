//! The admin commands' arguments.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use crate::client::LeadFilters;

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

#[derive(Subcommand, Debug)]
pub enum TeamCommand {
    /// Every team, in matching order, with members and rules.
    List,
    /// One team.
    Show { id: String },
}

#[derive(Subcommand, Debug)]
pub enum ConsoleCommand {
    /// A one-time link that signs you in to the local stack's console (the local stack only).
    Link {
        /// Sign in as this person (a rep's or a console user's email); default: the local admin.
        #[arg(long = "as", value_name = "EMAIL")]
        as_email: Option<String>,
        /// The console page to land on, e.g. /console/leads/01K…
        #[arg(long, value_name = "PATH")]
        next: Option<String>,
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
    pub(super) fn filters(&self) -> LeadFilters {
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
    /// The first touch's utm_source.
    Source,
    /// Each campaign the lead was enrolled in.
    Campaign,
    /// The ISO week the lead came in.
    Week,
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
    /// Captured → valid → MQL → assigned → SQL → contacted → won.
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
