//! Configuration from TOML text, template rendering (escaping, one-line subjects) and MIME.

mod common;

use chrono::Duration;
use common::{assignment, lead, lead_with, now};
use leadflow_core::campaign::Wait;
use leadflow_core::config::{CompiledConfig, ConfigSources};
use leadflow_core::email::to_mime;
use leadflow_core::error::ConfigError;
use leadflow_core::model::{Assignment, Lead};
use leadflow_core::ports::{EmailCategory, OutgoingEmail};
use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

const SETTINGS: &str = r#"
sender = { name = "Acme Sales", email = "sales@acme.example" }
public_url = "https://leads.acme.example/"
postal_address = "Acme Inc., 1 Example Street, Springfield"
"#;

const SCORING: &str = r#"
thresholds = { mql = 40, sql = 80 }
[[fit]]
id = "dach"
description = "In DACH"
points = 15
when = { field = "country", in = ["DE", "AT", "CH"] }
"#;

const ROUTING: &str = r#"
fallback_owner = "sam"

[[reps]]
id = "anna"
name = "Anna Schmidt"
email = "anna@acme.example"
time_zone = "Europe/Berlin"
working_hours = { days = ["mon", "Tue", "wed", "Thu", "fri"], start = "09:00", end = "18:00" }

[[reps]]
id = "sam"
name = "Sam Rivera"
email = "sam@acme.example"

[[teams]]
id = "dach"
name = "DACH"
when = [{ field = "country", in = ["DE", "AT", "CH"] }]
members = [{ rep = "anna", weight = 2 }]
"#;

const UNSUBSCRIBE: &str = "https://leads.acme.example/u/tok3n";

const WELCOME: &str = r#"
id = "welcome"
name = "Welcome series"
version = 1

[entry]
lifecycle = "lead"

[[steps]]
id = "hello"
wait = "0s"
subject = "Welcome, {{ lead.first_name or 'there' }}"
text = """
Hi {{ lead.first_name or 'there' }},
thanks for your interest.
--
{{ postal_address }}
"""
html = """
<p>Hi {{ lead.first_name or 'there' }},</p>
<p>thanks for your interest in {{ campaign.name }}.</p>
<p>{{ postal_address }}</p>
"""

[[steps]]
id = "demo"
wait = "2d"
subject = "A demo for {{ lead.company }}?"
text = "Reply to book a demo."
html = "<p>Reply to book a demo.</p>"
"#;

fn sources() -> ConfigSources {
    ConfigSources {
        settings: SETTINGS.into(),
        scoring: SCORING.into(),
        routing: ROUTING.into(),
        campaigns: vec![("campaigns/welcome.toml".into(), WELCOME.into())],
        assignment_subject: "New {{ lead.lifecycle | upper }} lead: {{ lead.name }}\n({{ lead.company }})\r\n".into(),
        assignment_text:
            "Hi {{ rep.name }},\n{{ lead.first_name }} is yours.\nScore: {{ lead.score.total }}\n{{ lead_url }}\n"
                .into(),
        assignment_html: concat!(
            "<p>Hi {{ rep.name }},</p>\n",
            "<p>{{ lead.first_name }} ({{ lead.email }}) is yours.</p>\n",
            "<ul>{% for line in assignment.explanation %}<li>{{ line }}</li>{% endfor %}</ul>\n",
            "<a href=\"{{ lead_url }}\">Open the lead</a>\n"
        )
        .into(),
        reader: Default::default(),
    }
}

fn compile(src: &ConfigSources) -> CompiledConfig {
    CompiledConfig::compile(src).unwrap_or_else(|e| panic!("config should compile: {e}"))
}

const XSS: &str = "<script>alert(1)</script>";

fn xss_lead() -> Lead {
    lead_with(|l| l.contact.first_name = Some(XSS.into()))
}

fn parse(bytes: &[u8]) -> Message<'_> {
    MessageParser::default().parse(bytes).expect("to_mime must give a message mail-parser can read")
}

/// The text and HTML parts of a message, by their content types.
fn parts(m: &Message<'_>) -> (Vec<String>, Vec<String>) {
    let (mut text, mut html) = (Vec::new(), Vec::new());
    for part in &m.parts {
        let ct = part.content_type().map(|c| (c.ctype().to_string(), c.subtype().unwrap_or("").to_string()));
        match (&part.body, ct.as_ref().map(|(t, s)| (t.as_str(), s.as_str()))) {
            (PartType::Text(s), Some(("text", "plain"))) => text.push(s.to_string()),
            (PartType::Html(s), Some(("text", "html"))) => html.push(s.to_string()),
            _ => {}
        }
    }
    (text, html)
}

fn crlf_free(s: &str) -> String {
    s.replace("\r\n", "\n")
}

fn assignment_email(cfg: &CompiledConfig, lead: &Lead, who: &Assignment) -> OutgoingEmail {
    let rep = cfg.routing.rep(&who.rep_id).expect("the assigned rep exists");
    cfg.templates.assignment_email(lead, rep, who, &cfg.settings).expect("assignment email renders")
}

#[test]
fn the_sample_config_compiles_with_weekdays_and_times_as_written() {
    let cfg = compile(&sources());
    assert_eq!(cfg.settings.sender.email, "sales@acme.example");
    assert_eq!(cfg.settings.capture.honeypot_field, "_gotcha", "defaults apply");
    let anna = cfg.routing.rep("anna").expect("anna");
    let wh = anna.working_hours.as_ref().expect("working hours");
    assert_eq!(wh.days.len(), 5);
    assert_eq!(wh.start.format("%H:%M").to_string(), "09:00");
    assert_eq!(cfg.scoring.thresholds.mql, 40.0);
    let welcome = cfg.campaign("welcome").expect("the campaign");
    assert_eq!(welcome.campaign.steps[1].wait, Some(Wait::For(Duration::days(2))));
    assert!(cfg.campaign("nope").is_none());
    // The compiled parts work together: the DACH lead goes to Anna on a Monday morning.
    let d = cfg.routing.decide(&lead(), &Default::default(), &Default::default(), common::at("2025-01-06T09:00:00Z"));
    assert_eq!(d.rep_id, "anna");
    assert_eq!(cfg.scoring.score(&lead(), &[], now()).total, 15.0);
}

#[test]
fn the_assignment_email_escapes_html_but_not_text() {
    let cfg = compile(&sources());
    let who = assignment("anna");
    let lead = lead_with(|l| {
        l.contact.first_name = Some(XSS.into());
        l.score = Some(cfg.scoring.score(l, &[], now()));
    });
    let email = assignment_email(&cfg, &lead, &who);
    assert_eq!(email.category, EmailCategory::Transactional);
    assert!(email.headers.is_empty(), "transactional mail carries no unsubscribe headers");
    assert_eq!(email.to.email, "anna@acme.example");
    assert_eq!(email.to.name.as_deref(), Some("Anna Schmidt"));
    assert_eq!(email.from.email, "sales@acme.example");

    assert!(email.html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"), "{}", email.html);
    assert!(!email.html.contains("<script"), "{}", email.html);
    assert!(email.html.contains("<p>Hi Anna Schmidt,</p>"), "the template's own markup stays: {}", email.html);
    // minijinja also escapes `/` (as `&#x2f;`), which browsers read back as `/`.
    let href = format!("href=\"https://leads.acme.example/console/leads/{}\"", lead.id);
    assert!(email.html.replace("&#x2f;", "/").contains(&href), "{}", email.html);

    assert!(email.text.contains(&format!("{XSS} is yours.")), "{}", email.text);
    assert!(email.text.contains("Score: 15.0"), "{}", email.text);
    assert!(
        email.text.contains(&format!("https://leads.acme.example/console/leads/{}", lead.id)),
        "one slash: {}",
        email.text
    );
}

#[test]
fn a_subject_template_that_renders_line_breaks_gives_one_line() {
    let cfg = compile(&sources());
    let email = assignment_email(&cfg, &lead(), &assignment("anna"));
    assert_eq!(email.subject, "New LEAD lead: Ada Lovelace (Acme GmbH)");
    let mut src = sources();
    src.assignment_subject = "Line one\r\n\r\n  Line two \nBcc: victim@example.com".into();
    let email = assignment_email(&compile(&src), &lead(), &assignment("anna"));
    assert!(!email.subject.contains(['\r', '\n']), "{:?}", email.subject);
    assert_eq!(email.subject, "Line one Line two Bcc: victim@example.com");
    let m_bytes = to_mime(&email, "a@b", now());
    let m = parse(&m_bytes);
    assert_eq!(m.subject(), Some("Line one Line two Bcc: victim@example.com"));
    assert!(m.bcc().is_none(), "no header smuggled in");
}

#[test]
fn to_mime_gives_a_message_with_both_parts_and_the_right_headers() {
    let cfg = compile(&sources());
    let email = assignment_email(&cfg, &xss_lead(), &assignment("anna"));
    let date = common::at("2025-01-06T12:34:56Z");
    let bytes = to_mime(&email, "0123ABC@leadflow.acme.example", date);
    let m = parse(&bytes);

    let to = m.to().and_then(|a| a.first()).expect("a To address");
    assert_eq!((to.name(), to.address()), (Some("Anna Schmidt"), Some("anna@acme.example")));
    let from = m.from().and_then(|a| a.first()).expect("a From address");
    assert_eq!((from.name(), from.address()), (Some("Acme Sales"), Some("sales@acme.example")));
    assert_eq!(m.subject(), Some(email.subject.as_str()));
    assert_eq!(m.message_id(), Some("0123ABC@leadflow.acme.example"));
    assert_eq!(m.date().map(|d| d.to_timestamp()), Some(date.timestamp()));

    let root = m.root_part().content_type().expect("a content type");
    assert_eq!((root.ctype(), root.subtype()), ("multipart", Some("alternative")));
    let (text, html) = parts(&m);
    assert_eq!(text.len(), 1, "one text/plain part");
    assert_eq!(html.len(), 1, "one text/html part");
    assert_eq!(crlf_free(&text[0]), crlf_free(&email.text));
    assert_eq!(crlf_free(&html[0]), crlf_free(&email.html));
    assert!(html[0].contains("&lt;script&gt;") && !html[0].contains("<script"));
    assert!(text[0].contains(XSS));
}

#[test]
fn a_drip_email_carries_one_click_unsubscribe_and_the_postal_address() {
    let cfg = compile(&sources());
    let email = cfg
        .campaign("welcome")
        .expect("campaign")
        .render(&lead(), 0, &cfg.settings, UNSUBSCRIBE)
        .expect("drip renders");
    let bytes = to_mime(&email, "drip-1@acme.example", now());
    let m = parse(&bytes);
    assert_eq!(m.header_raw("List-Unsubscribe").map(str::trim), Some(format!("<{UNSUBSCRIBE}>").as_str()));
    assert_eq!(m.header_raw("List-Unsubscribe-Post").map(str::trim), Some("List-Unsubscribe=One-Click"));
    let (text, html) = parts(&m);
    assert!(text[0].contains(UNSUBSCRIBE) && html[0].contains(&format!("href=\"{UNSUBSCRIBE}\"")), "a visible link");
    assert!(text[0].contains("Acme Inc., 1 Example Street, Springfield"), "the postal address, CAN-SPAM");
    assert!(html[0].contains("Acme Inc., 1 Example Street, Springfield"));
    let lead_id = lead().id.to_string();
    assert!(email.tags.iter().any(|(k, v)| k == "lead_id" && *v == lead_id));
}

#[test]
fn the_assignment_email_is_transactional_without_unsubscribe_headers() {
    let cfg = compile(&sources());
    let email = assignment_email(&cfg, &lead(), &assignment("anna"));
    let bytes = to_mime(&email, "a@acme.example", now());
    let m = parse(&bytes);
    assert!(m.header_raw("List-Unsubscribe").is_none() && m.header_raw("List-Unsubscribe-Post").is_none());
    assert!(!email.text.contains("Unsubscribe"));
}

#[test]
fn a_drip_email_renders_for_the_lead() {
    let cfg = compile(&sources());
    let welcome = cfg.campaign("welcome").expect("campaign");
    let lead = xss_lead();
    let email = welcome.render(&lead, 0, &cfg.settings, UNSUBSCRIBE).expect("step 0 renders");
    assert_eq!(email.category, EmailCategory::Marketing);
    assert_eq!(email.key, format!("drip-{}-welcome-v1-hello", lead.id));
    assert_eq!(email.to.email, "ada@acme.example");
    assert_eq!(email.to.name.as_deref(), Some(format!("{XSS} Lovelace").as_str()));
    assert_eq!(email.subject, format!("Welcome, {XSS}"), "subjects are text, not HTML");
    assert!(email.text.starts_with(&format!("Hi {XSS},\n")), "{}", email.text);
    assert!(email.text.contains("Acme Inc., 1 Example Street, Springfield"), "{}", email.text);
    assert!(email.html.contains("<p>Hi &lt;script&gt;"), "{}", email.html);
    assert!(!email.html.contains("<script"), "{}", email.html);
    assert!(email.html.contains("thanks for your interest in Welcome series."), "{}", email.html);

    let anonymous = lead_with(|l| {
        l.contact.first_name = None;
        l.contact.last_name = None;
    });
    let email = welcome.render(&anonymous, 0, &cfg.settings, UNSUBSCRIBE).expect("renders");
    assert_eq!(email.subject, "Welcome, there");
    assert_eq!(email.to.name.as_deref(), Some("ada@acme.example"));

    let email = welcome.render(&lead, 1, &cfg.settings, UNSUBSCRIBE).expect("step 1 renders");
    assert_eq!(email.subject, "A demo for Acme GmbH?");
    assert!(welcome.render(&lead, 2, &cfg.settings, UNSUBSCRIBE).is_err(), "there is no step 2");

    // The lead's odd name survives the To header.
    let bytes = to_mime(&email, "d@acme.example", now());
    let m = parse(&bytes);
    let to = m.to().and_then(|a| a.first()).expect("a To address");
    assert_eq!((to.name(), to.address()), (Some(format!("{XSS} Lovelace").as_str()), Some("ada@acme.example")));
}

#[test]
fn non_ascii_names_and_subjects_survive_mime() {
    let mut src = sources();
    src.routing = src.routing.replace("Anna Schmidt", "Jürgen Groß");
    src.assignment_subject = "Neuer Lead für {{ rep.name }}: {{ lead.name }} — {{ lead.company }} ✓ — a rather long subject line that must be folded".into();
    let cfg = compile(&src);
    let lead = lead_with(|l| l.contact.first_name = Some("Zoë \"Zed\"".into()));
    let email = assignment_email(&cfg, &lead, &assignment("anna"));
    let bytes = to_mime(&email, "x@acme.example", now());
    assert!(bytes.is_ascii(), "headers and bodies are encoded for 7-bit transport");
    let m = parse(&bytes);
    assert_eq!(m.subject(), Some(email.subject.as_str()));
    assert!(email.subject.contains("Jürgen Groß") && email.subject.contains("Zoë \"Zed\" Lovelace"));
    let to = m.to().and_then(|a| a.first()).expect("a To address");
    assert_eq!(to.name(), Some("Jürgen Groß"));
    let (text, _) = parts(&m);
    assert!(text[0].contains("Zoë \"Zed\" is yours."), "{}", text[0]);
}

// ---- configuration errors ------------------------------------------------------------------

fn error(src: &ConfigSources) -> ConfigError {
    match CompiledConfig::compile(src) {
        Ok(_) => panic!("expected a configuration error"),
        Err(e) => e,
    }
}

#[test]
fn a_toml_syntax_error_names_the_file() {
    let mut src = sources();
    src.routing = src.routing.replace("fallback_owner = \"sam\"", "fallback_owner = \"sam");
    match error(&src) {
        ConfigError::Parse { file, message } => {
            assert_eq!(file, "routing.toml");
            assert!(message.contains("line"), "the message says where: {message}");
        }
        other => panic!("expected a parse error, got {other}"),
    }

    let mut src = sources();
    src.campaigns[0].1.push_str("\n[[steps]\n");
    let e = error(&src);
    assert!(matches!(&e, ConfigError::Parse { file, .. } if file == "campaigns/welcome.toml"), "{e}");
    assert!(e.to_string().starts_with("campaigns/welcome.toml: "), "{e}");

    let mut src = sources();
    src.settings = "public_url = \"https://x\"".into();
    let e = error(&src);
    assert!(e.to_string().starts_with("leadflow.toml: ") && e.to_string().contains("sender"), "{e}");

    let mut src = sources();
    src.scoring = src.scoring.replace("points = 15", "points = fifteen");
    assert!(error(&src).to_string().starts_with("scoring.toml: "));
}

#[test]
fn values_that_parse_but_do_not_make_sense_are_errors_too() {
    let mut src = sources();
    src.routing = src.routing.replace("start = \"09:00\"", "start = \"9 am\"");
    assert!(error(&src).to_string().starts_with("routing.toml: "));

    let mut src = sources();
    src.routing = src.routing.replace("\"mon\"", "\"monn\"");
    assert!(error(&src).to_string().starts_with("routing.toml: "));

    let mut src = sources();
    src.routing = src.routing.replace("{ rep = \"anna\", weight = 2 }", "{ rep = \"anne\" }");
    let e = error(&src);
    assert!(matches!(e, ConfigError::Invalid { .. }) && e.to_string().contains("anne"), "{e}");

    let mut src = sources();
    src.routing = src.routing.replace("Europe/Berlin", "Europe/Atlantis");
    assert!(error(&src).to_string().contains("Europe/Atlantis"));

    let mut src = sources();
    src.campaigns[0].1 = src.campaigns[0].1.replace("wait = \"2d\"", "wait = \"2 fortnights\"");
    assert!(error(&src).to_string().starts_with("campaigns/welcome.toml: "));

    let mut src = sources();
    src.campaigns.push(("campaigns/copy.toml".into(), WELCOME.into()));
    let e = error(&src).to_string();
    assert!(e.contains("campaigns/copy.toml") && e.contains("welcome"), "{e}");

    let mut src = sources();
    src.assignment_html = "<p>{{ lead.name </p>".into();
    let e = error(&src).to_string();
    assert!(e.contains("template assignment.html"), "{e}");

    let mut src = sources();
    src.campaigns[0].1 = src.campaigns[0].1.replace("A demo for {{ lead.company }}?", "{% if %}");
    let e = error(&src).to_string();
    assert!(e.contains("campaigns/welcome.toml: steps[1].subject"), "{e}");
}

#[test]
fn the_sla_note_escapes_the_leads_name_in_html() {
    let cfg = compile(&sources());
    let anna = cfg.routing.rep("anna").expect("anna");
    let email =
        leadflow_core::email::sla_breach_email(&xss_lead(), anna, "Sam", &cfg.settings, now()).expect("renders");
    assert!(email.html.contains("&lt;script&gt;") && !email.html.contains("<script"), "{}", email.html);
    assert!(email.text.contains(XSS), "text is not HTML");
    assert!(!email.subject.contains('\n'));
    let bytes = to_mime(&email, "s@acme.example", now());
    assert!(parse(&bytes).header_raw("List-Unsubscribe").is_none(), "transactional");
}
