//! What the campaign pages need besides their handlers: the campaign as YAML for the editor and
//! back (read exactly as `POST /admin/campaigns` reads it, but with the error's line), the
//! campaign a new one starts from, the sample lead previews render for, and the per-step figures
//! counted from enrolled leads' trails.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, TimeZone, Utc};
use futures_util::StreamExt;
use leadflow_core::campaign::{Campaign, Wait};
use leadflow_core::error::ConfigError;
use leadflow_core::model::{
    Activity, ActivityKind, Attribution, Contact, DomainKind, Lead, LeadId, Lifecycle, SalesStatus, Touch, Validity,
};
use leadflow_core::ports::Ports;
use leadflow_core::ports::{Enrollments, Trails};
use serde::Serialize;

/// The largest campaign the editor takes: a campaign is a few emails, not a newsletter archive.
pub const MAX_YAML_BYTES: usize = 64 * 1024;

/// Enrolled leads whose trails the figures read, at most: each is one read of the store.
pub const FIGURES_CAP: usize = 1000;

/// What the page for a new campaign starts from: a small campaign a marketer adapts, valid as it
/// is, and paused, so that pressing Create on it unchanged emails nobody.
pub const STARTER: &str = r#"# A new nurture campaign: change what you need, then press Create campaign. It is stored as
# version 1, paused: nothing is sent until you press Resume on its page. Every email gets an
# unsubscribe link and your postal address without you adding them.
id: newsletter-welcome   # letters, digits, - and _; it cannot change later
name: Newsletter welcome
status: paused
# Who enters: leads below MQL whose first form was `newsletter`, if they gave consent.
entry:
  lifecycle: lead
  forms: [newsletter]
  requires_consent: true
# Weekdays from 09:00 to 17:00 in each lead's own time zone (this one when theirs is unknown).
send_window: { days: [mon, tue, wed, thu, fri], start: "09:00", end: "17:00" }
time_zone: America/New_York
# Besides unsubscribes, bounces, complaints, won, lost and erasure: stop once sales takes over.
stop_on: [assigned, contacted]
steps:
  # The first email goes out when the lead enters (within the send window).
  - id: hello
    subject: "Welcome, {{ lead.first_name or 'there' }}"
    text: |
      Hi {{ lead.first_name or 'there' }},

      thanks for subscribing. Here is what teams like {{ lead.company or 'yours' }} do with us.
    html: |
      <p>Hi {{ lead.first_name or 'there' }},</p>
      <p>thanks for subscribing. Here is what teams like {{ lead.company or 'yours' }} do with us.</p>
  # A wait before a step: 90m, 36h, 2d, 1w, or "next weekday at 10:00".
  - id: case-study
    wait: 3d
    subject: "How a team like {{ lead.company or 'yours' }} put us to work"
    text: |
      Hi {{ lead.first_name or 'there' }},

      a short case study, in case it is useful: https://www.example.com/case-study
    html: |
      <p>Hi {{ lead.first_name or 'there' }},</p>
      <p>A short <a href="https://www.example.com/case-study">case study</a>, in case it is useful.</p>
"#;

/// What is wrong with a campaign: the field (as a path, `steps[1].subject`), the line of the
/// YAML it is on when that can be told, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EditorError {
    pub field: String,
    pub line: Option<usize>,
    pub message: String,
}

/// The campaign in `text`, read and checked as `POST /admin/campaigns` does (YAML syntax, then
/// the fields, then compiling it), or what is wrong and where.
pub fn parse(text: &str) -> Result<Campaign, EditorError> {
    if text.len() > MAX_YAML_BYTES {
        return Err(EditorError {
            field: "yaml".into(),
            line: None,
            message: format!(
                "The campaign is {} KiB; at most {} KiB.",
                text.len().div_ceil(1024),
                MAX_YAML_BYTES / 1024
            ),
        });
    }
    if text.trim().is_empty() {
        return Err(EditorError { field: "yaml".into(), line: None, message: "The campaign is empty.".into() });
    }
    let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(|e| EditorError {
        field: "yaml".into(),
        line: e.location().map(|l| l.line()),
        message: format!("This is not valid YAML: {}", without_position(&e.to_string())),
    })?;
    let campaign: Campaign = match serde_path_to_error::deserialize(value) {
        Ok(c) => c,
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            let field = crate::extract::field_error(&path, &inner).field.unwrap_or_else(|| "yaml".into());
            // A value carries no positions: the same text read again as a stream does, and
            // fails at the same field.
            let streamed: Result<Campaign, _> =
                serde_path_to_error::deserialize(serde_yaml_ng::Deserializer::from_str(text));
            let line = streamed.err().and_then(|e| e.inner().location()).map(|l| l.line());
            let line = line.or_else(|| line_of(text, &field));
            return Err(EditorError { field, line, message: without_position(&inner) });
        }
    };
    if let Err(e) = campaign.compile() {
        let (field, message) = match e {
            ConfigError::Parse { message, .. } => ("yaml".to_string(), message),
            ConfigError::Invalid { what, message } => (what, message),
        };
        return Err(EditorError { line: line_of(text, &field), field, message });
    }
    Ok(campaign)
}

fn without_position(message: &str) -> String {
    match message.rsplit_once(" at line ") {
        Some((m, _)) => m.to_string(),
        None => message.to_string(),
    }
}

/// The campaign as the editor shows it: YAML without its version (the store sets that) and
/// without the fields left out, waits in days and hours rather than seconds.
pub fn to_yaml(campaign: &Campaign) -> Result<String, String> {
    let mut value = serde_yaml_ng::to_value(campaign).map_err(|e| e.to_string())?;
    if let serde_yaml_ng::Value::Mapping(m) = &mut value {
        m.remove("version");
        if let Some(serde_yaml_ng::Value::Sequence(steps)) = m.get_mut("steps") {
            for step in steps {
                if let serde_yaml_ng::Value::Mapping(s) = step
                    && let Some(serde_yaml_ng::Value::String(w)) = s.get_mut("wait")
                    && let Ok(parsed) = Wait::parse(w)
                {
                    *w = wait_words(&parsed);
                }
            }
        }
    }
    drop_nulls(&mut value);
    serde_yaml_ng::to_string(&value).map_err(|e| e.to_string())
}

fn drop_nulls(value: &mut serde_yaml_ng::Value) {
    match value {
        serde_yaml_ng::Value::Mapping(m) => {
            m.retain(|_, v| !v.is_null());
            for (_, v) in m.iter_mut() {
                drop_nulls(v);
            }
        }
        serde_yaml_ng::Value::Sequence(s) => s.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// A wait as a campaign author writes it: `2d`, `36h`, `next weekday at 10:00`.
pub fn wait_words(wait: &Wait) -> String {
    match wait {
        Wait::For(d) => {
            let s = d.num_seconds();
            match s {
                0 => "0s".into(),
                s if s % 604_800 == 0 => format!("{}w", s / 604_800),
                s if s % 86_400 == 0 => format!("{}d", s / 86_400),
                s if s % 3_600 == 0 => format!("{}h", s / 3_600),
                s if s % 60 == 0 => format!("{}m", s / 60),
                s => format!("{s}s"),
            }
        }
        Wait::NextWeekdayAt(t) => format!("next weekday at {}", t.format("%H:%M")),
    }
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

fn segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        for index in rest.split('[') {
            if let Ok(i) = index.trim_end_matches(']').parse() {
                out.push(Segment::Index(i));
            }
        }
    }
    out
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// Whether `line` holds the key `key`, as block (`key:`, `- key:`) or flow (`{ a: 1, key: 2 }`)
/// YAML writes it.
fn has_key(line: &str, key: &str) -> bool {
    let content = line.trim_start().trim_start_matches("- ").trim_start();
    let starts = |c: &str| {
        [format!("{key}:"), format!("\"{key}\":"), format!("'{key}':")].iter().any(|k| c.starts_with(k.as_str()))
    };
    if starts(content) {
        return true;
    }
    let Some(flow) = content.find('{') else { return false };
    content[flow..].split([',', '{']).any(|part| starts(part.trim_start()))
}

/// The 1-based line of the YAML that the field `path` (`steps[2].subject`) is on, found by
/// indentation: a good guess for campaigns as people write them, `None` when it cannot tell.
/// The deepest part found is answered (the step's line, when its field is not written).
pub fn line_of(text: &str, path: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let meaningful = |l: &str| !l.trim().is_empty() && !l.trim_start().starts_with('#');
    let (mut from, mut to) = (0, lines.len());
    let mut found: Option<usize> = None;
    for segment in segments(path) {
        match segment {
            Segment::Key(key) => {
                let Some(at) = (from..to).find(|&i| has_key(lines[i], key)) else { break };
                // The key's own column: after the `- ` of a sequence item it opens.
                let line = lines[at];
                let own = line.len() - line.trim_start().trim_start_matches("- ").trim_start().len();
                // A block sequence may sit at its key's column (`steps:` then `- id: …`).
                let ends = |l: &str| indent(l) < own || (indent(l) == own && !l.trim_start().starts_with('-'));
                let end = (at + 1..to).find(|&i| meaningful(lines[i]) && ends(lines[i])).unwrap_or(to);
                (from, to, found) = (at, end, Some(at));
            }
            Segment::Index(n) => {
                // A flow sequence (`[a, b]`) keeps its items on the key's line.
                let items: Vec<usize> = (from..to).filter(|&i| lines[i].trim_start().starts_with('-')).collect();
                let Some(first) = items.first() else { break };
                let item_indent = indent(lines[*first]);
                let items: Vec<usize> = items.into_iter().filter(|&i| indent(lines[i]) == item_indent).collect();
                let Some(&at) = items.get(n) else { break };
                let end = items.get(n + 1).copied().unwrap_or(to);
                (from, to, found) = (at, end, Some(at));
            }
        }
    }
    found.map(|i| i + 1)
}

/// The lead a preview renders for when none is chosen: made up, so that nobody's data is shown.
pub fn sample_lead() -> Lead {
    let at = Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0).single().unwrap_or_default();
    Lead {
        id: LeadId::from_parts(at.timestamp_millis().unsigned_abs(), 0),
        version: 0,
        created_at: at,
        updated_at: at,
        validity: Validity::Valid,
        warnings: Vec::new(),
        contact: Contact {
            email: "sam.sample@example.com".into(),
            email_domain: "example.com".into(),
            domain_kind: DomainKind::Corporate,
            role_address: false,
            first_name: Some("Sam".into()),
            last_name: Some("Sample".into()),
            phone: None,
            phone_display: None,
            phone_country: None,
            company: Some("Example Corp".into()),
            job_title: Some("Head of Operations".into()),
            country: Some("US".into()),
            time_zone: Some("America/New_York".into()),
        },
        consent: None,
        attribution: Attribution { first_touch: Touch::default(), last_touch: Touch::default() },
        custom: BTreeMap::new(),
        submissions: 1,
        score: None,
        lifecycle: Lifecycle::Lead,
        status: SalesStatus::New,
        owner: None,
    }
}

/// What a step's emails did, counted per message (opens and clicks once per message; an
/// unsubscribe is counted on the last email of this campaign the lead got before it).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct StepFigures {
    pub sent: u64,
    pub opened: u64,
    pub clicked: u64,
    pub unsubscribed: u64,
    pub bounced: u64,
}

/// The figures of a campaign's steps by step id, and how many leads they were counted from.
#[derive(Debug, Default, Serialize)]
pub struct Figures {
    pub leads: usize,
    /// More leads are enrolled than were read.
    pub capped: bool,
    pub steps: BTreeMap<String, StepFigures>,
}

/// Counts the figures from the trails of the first [`FIGURES_CAP`] leads enrolled in
/// `campaign_id` (any version): the trail is per lead, so there is no cheaper exact count.
pub async fn figures<P: Ports>(ports: &P, campaign_id: &str) -> Result<Figures, leadflow_core::error::StoreError> {
    let store = ports.store();
    let mut leads: Vec<LeadId> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut cursor = None;
    let mut capped = false;
    'pages: loop {
        let page = store.campaign_enrollments(campaign_id, cursor, 500).await?;
        for e in page.enrollments {
            if seen.insert(e.lead_id) {
                if leads.len() == FIGURES_CAP {
                    capped = true;
                    break 'pages;
                }
                leads.push(e.lead_id);
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let mut figures = Figures { leads: leads.len(), capped, steps: BTreeMap::new() };
    let mut trails = futures_util::stream::iter(leads.into_iter().map(|id| store.activities(id))).buffer_unordered(16);
    while let Some(trail) = trails.next().await {
        let trail = trail?;
        if let Some(lead) = trail.first().map(|a| a.lead_id) {
            tally(&mut figures.steps, campaign_id, lead, &trail);
        }
    }
    Ok(figures)
}

/// Adds one lead's trail to the figures of `campaign`'s steps.
pub fn tally(steps: &mut BTreeMap<String, StepFigures>, campaign: &str, lead: LeadId, trail: &[Activity]) {
    let prefix = format!("drip-{lead}-{campaign}-v");
    // `drip-<lead>-<campaign>-v<version>-<step>`: the step id follows the version's digits.
    let step_of_key = |key: &str| {
        let rest = key.strip_prefix(&prefix)?;
        let (version, step) = rest.split_once('-')?;
        version.parse::<u32>().ok().map(|_| step.to_string())
    };
    let mut step_of_message: HashMap<&str, String> = HashMap::new();
    let mut sends: Vec<(DateTime<Utc>, String)> = Vec::new();
    for a in trail {
        if let ActivityKind::EmailSent { email, message_id, .. } = &a.kind
            && let Some(step) = step_of_key(email)
        {
            steps.entry(step.clone()).or_default().sent += 1;
            sends.push((a.at, step.clone()));
            step_of_message.insert(message_id.as_str(), step);
        }
    }
    if sends.is_empty() {
        return;
    }
    let mut opened = BTreeSet::new();
    let mut clicked = BTreeSet::new();
    let mut bounced = BTreeSet::new();
    let mut unsubscribed = false;
    for a in trail {
        let of = |message_id: &str, email: Option<&String>| {
            email.and_then(|k| step_of_key(k)).or_else(|| step_of_message.get(message_id).cloned())
        };
        match &a.kind {
            ActivityKind::EmailOpened { message_id, email } => {
                if let Some(step) = of(message_id, email.as_ref()) {
                    opened.insert((message_id.clone(), step));
                }
            }
            ActivityKind::EmailClicked { message_id, email, .. }
                if !leadflow_core::scoring::is_unsubscribe_click(&a.kind) =>
            {
                if let Some(step) = of(message_id, email.as_ref()) {
                    clicked.insert((message_id.clone(), step));
                }
            }
            ActivityKind::EmailBounced { message_id, .. } => {
                if let Some(step) = of(message_id, None) {
                    bounced.insert((message_id.clone(), step));
                }
            }
            ActivityKind::Unsubscribed { .. } if !unsubscribed => {
                let last = sends.iter().filter(|(at, _)| *at <= a.at).max_by_key(|(at, _)| *at);
                if let Some((_, step)) = last {
                    steps.entry(step.clone()).or_default().unsubscribed += 1;
                    unsubscribed = true;
                }
            }
            _ => {}
        }
    }
    for (_, step) in opened {
        steps.entry(step).or_default().opened += 1;
    }
    for (_, step) in clicked {
        steps.entry(step).or_default().clicked += 1;
    }
    for (_, step) in bounced {
        steps.entry(step).or_default().bounced += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WELCOME: &str = "id: welcome
name: Welcome
steps:
  - id: hello
    subject: Hi {{ lead.first_name }}
    text: Hello
    html: <p>Hello</p>
  - id: later
    wait: 2d
    subject: \"{{ broken\"
    text: Later
    html: <p>Later</p>
";

    #[test]
    fn a_bad_template_is_told_at_its_field_and_line() {
        let e = parse(WELCOME).err().unwrap_or_else(|| panic!("the broken subject passed"));
        assert_eq!(e.field, "steps[1].subject");
        assert_eq!(e.line, Some(10), "{e:?}");
    }

    #[test]
    fn an_unknown_field_is_told_with_the_parser_s_line() {
        let text = WELCOME.replace("    text: Later", "    txet: Later").replace("{{ broken", "x");
        let e = parse(&text).err().unwrap_or_else(|| panic!("an unknown field passed"));
        assert_eq!(e.field, "steps[1].txet");
        assert!(e.message.contains("txet"), "{e:?}");
        assert_eq!(e.line, Some(11), "{e:?}");
    }

    #[test]
    fn broken_yaml_is_told_at_its_line() {
        let e = parse("id: x\nname: [unclosed\n").err().unwrap_or_else(|| panic!("broken YAML passed"));
        assert_eq!(e.field, "yaml");
        assert!(e.line.is_some(), "{e:?}");
    }

    #[test]
    fn the_editor_s_yaml_reads_back_as_the_same_campaign() {
        let text = WELCOME.replace("{{ broken", "Later");
        let campaign = parse(&text).unwrap_or_else(|e| panic!("{e:?}"));
        let yaml = to_yaml(&campaign).unwrap_or_else(|e| panic!("{e}"));
        assert!(yaml.contains("wait: 2d") && !yaml.contains("version") && !yaml.contains("null"), "{yaml}");
        let again = parse(&yaml).unwrap_or_else(|e| panic!("{e:?}\n{yaml}"));
        assert!(campaign.same_content(&again), "{yaml}");
    }

    #[test]
    fn flow_steps_are_found_too() {
        let text = "id: a\nname: A\nsteps:\n  - { id: one, subject: x }\n  - { id: two, subject: y }\n";
        assert_eq!(line_of(text, "steps[1].subject"), Some(5));
        assert_eq!(line_of(text, "steps[1].html"), Some(5));
        assert_eq!(line_of(text, "time_zone"), None);
        let text = "id: a\nsteps:\n- id: one\n  subject: x\n- id: two\n  subject: y\nname: A\n";
        assert_eq!(line_of(text, "steps[1].subject"), Some(6));
        assert_eq!(line_of(text, "steps[0].subject"), Some(4));
    }

    #[test]
    fn the_starting_campaign_is_valid_paused_and_reads_back() {
        let campaign = parse(STARTER).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(campaign.status, leadflow_core::campaign::CampaignStatus::Paused, "it emails nobody unchanged");
        assert_eq!(campaign.steps.len(), 2);
        let again = parse(&to_yaml(&campaign).unwrap_or_else(|e| panic!("{e}"))).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(campaign.same_content(&again));
        assert_eq!(line_of(STARTER, "id"), Some(4));
    }

    #[test]
    fn too_long_a_campaign_is_refused() {
        let e = parse(&"#".repeat(MAX_YAML_BYTES + 1)).err().unwrap_or_else(|| panic!("passed"));
        assert!(e.message.contains("at most 64 KiB"), "{e:?}");
    }

    #[test]
    fn figures_count_each_step_s_messages() {
        let lead = LeadId::from_parts(1, 1);
        let at = |s: i64| Utc.timestamp_opt(1_750_000_000 + s, 0).single().unwrap_or_default();
        let act = |s: i64, kind: ActivityKind| Activity { id: format!("a{s}"), lead_id: lead, at: at(s), kind };
        let sent = |s: i64, step: &str, m: &str| {
            act(
                s,
                ActivityKind::EmailSent {
                    email: format!("drip-{lead}-welcome-v1-{step}"),
                    message_id: m.into(),
                    subject: "s".into(),
                },
            )
        };
        let trail = vec![
            sent(1, "hello", "m1"),
            act(2, ActivityKind::EmailOpened { message_id: "m1".into(), email: None }),
            act(3, ActivityKind::EmailOpened { message_id: "m1".into(), email: None }),
            sent(4, "case-study", "m2"),
            act(5, ActivityKind::EmailClicked { message_id: "m2".into(), email: None, url: None }),
            act(6, ActivityKind::Unsubscribed { via: "link".into() }),
            act(
                7,
                ActivityKind::EmailSent {
                    email: format!("drip-{lead}-welcome-2-v1-hello"),
                    message_id: "x".into(),
                    subject: "s".into(),
                },
            ),
        ];
        let mut steps = BTreeMap::new();
        tally(&mut steps, "welcome", lead, &trail);
        let hello = StepFigures { sent: 1, opened: 1, ..Default::default() };
        let case = StepFigures { sent: 1, clicked: 1, unsubscribed: 1, ..Default::default() };
        assert_eq!(steps.get("hello"), Some(&hello));
        assert_eq!(steps.get("case-study"), Some(&case));
        assert_eq!(steps.len(), 2);
    }
}
