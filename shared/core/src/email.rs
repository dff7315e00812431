//! Email: rendering the assignment and drip templates (minijinja, HTML auto-escaped) and
//! turning a rendered email into RFC 5322 MIME (text + HTML alternatives).

use chrono::{DateTime, Utc};
use mail_builder::MessageBuilder;
use mail_builder::headers::raw::Raw;
use minijinja::{Environment, context};
use serde::Serialize;

use crate::error::ConfigError;
use crate::local_time;
use crate::model::{Assignment, Lead};
use crate::outgoing::{EmailCategory, Mailbox, OutgoingEmail};
use crate::routing::Rep;
use crate::sales_link::{self, SalesAction, SalesLink};
use crate::settings::{ConfigSources, Settings};

#[derive(Debug, thiserror::Error)]
#[error("template {template} failed to render: {message}")]
pub struct RenderError {
    pub template: String,
    pub message: String,
}

/// All templates, parsed once. Names ending in `.html` are HTML-escaped; the others are not.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    pub fn new(src: &ConfigSources) -> Result<Self, ConfigError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        let mut add = |name: String, text: String| {
            env.add_template_owned(name.clone(), text)
                .map_err(|e| ConfigError::Invalid { what: format!("template {name}"), message: e.to_string() })
        };
        add("assignment.subject".into(), src.assignment_subject.clone())?;
        add("assignment.txt".into(), src.assignment_text.clone())?;
        add("assignment.html".into(), src.assignment_html.clone())?;
        Ok(Self { env })
    }

    fn render(&self, name: &str, ctx: &minijinja::Value) -> Result<String, RenderError> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|e| RenderError { template: name.to_string(), message: e.to_string() })
    }

    /// The email telling a rep a lead is theirs: transactional, so no unsubscribe headers.
    pub fn assignment_email(
        &self,
        lead: &Lead,
        rep: &Rep,
        assignment: &Assignment,
        settings: &Settings,
    ) -> Result<OutgoingEmail, RenderError> {
        let base = settings.public_url.trim_end_matches('/');
        // Signed for this rep and this assignment: a redelivery renders the very same links.
        // Without a secret to sign with there are none, and the email still goes out.
        let action_url = |action| {
            let link = SalesLink {
                lead_id: lead.id,
                rep_id: rep.id.clone(),
                action,
                expires_at: assignment.assigned_at + sales_link::VALID_FOR,
            };
            sales_link::sign(&settings.signing_keys, &link).ok().map(|token| format!("{base}/console/act/{token}"))
        };
        let ctx = context! {
            lead => LeadView::of(lead),
            rep => context! { name => &rep.name, email => &rep.email },
            assignment => assignment,
            sla_due => local_time::in_words(assignment.sla_due_at, &rep.time_zone),
            lead_url => format!("{base}/console/leads/{}", lead.id),
            contacted_url => action_url(SalesAction::Contacted),
            not_a_fit_url => action_url(SalesAction::NotAFit),
        };
        Ok(OutgoingEmail {
            // One per assignment, not per rep: a lead that comes back to a rep (an SLA re-route
            // there and back) tells them again, while a redelivery of the same assignment
            // renders the same key and is not sent twice.
            key: format!("assignment-{}-{}-{}", lead.id, rep.id, assignment.assigned_at.timestamp_millis()),
            category: EmailCategory::Transactional,
            from: settings.sender.clone(),
            to: Mailbox { name: Some(rep.name.clone()), email: rep.email.clone() },
            subject: one_line(&self.render("assignment.subject", &ctx)?),
            text: self.render("assignment.txt", &ctx)?,
            html: self.render("assignment.html", &ctx)?,
            headers: Vec::new(),
            tags: vec![("lead_id".into(), lead.id.to_string())],
        })
    }
}

/// The note to a rep whose lead went to someone else because the SLA ran out: transactional.
pub fn sla_breach_email(
    lead: &Lead,
    rep: &Rep,
    new_owner: &str,
    settings: &Settings,
    at: DateTime<Utc>,
) -> Result<OutgoingEmail, RenderError> {
    let mut env = Environment::new();
    let ctx = context! {
        lead => LeadView::of(lead),
        rep => context! { name => &rep.name },
        new_owner => new_owner,
        lead_url => format!("{}/console/leads/{}", settings.public_url.trim_end_matches('/'), lead.id),
    };
    let parts = [
        ("sla.subject", "Lead {{ lead.name }} was reassigned"),
        (
            "sla.txt",
            "Hi {{ rep.name }},\n\n{{ lead.name }} was not marked contacted within the SLA, so the lead \
             now belongs to {{ new_owner }}.\n\n{{ lead_url }}\n",
        ),
        (
            "sla.html",
            "<p>Hi {{ rep.name }},</p><p>{{ lead.name }} was not marked contacted within the SLA, so the \
             lead now belongs to {{ new_owner }}.</p><p><a href=\"{{ lead_url }}\">Open the lead</a></p>",
        ),
    ];
    let mut out = Vec::new();
    for (name, text) in parts {
        let rendered = env
            .add_template(name, text)
            .and_then(|()| env.get_template(name))
            .and_then(|t| t.render(&ctx))
            .map_err(|e| RenderError { template: name.into(), message: e.to_string() })?;
        out.push(rendered);
    }
    let [subject, text, html]: [String; 3] =
        out.try_into().map_err(|_| RenderError { template: "sla".into(), message: "missing part".into() })?;
    Ok(OutgoingEmail {
        key: format!("sla-breach-{}-{}-{}", lead.id, rep.id, at.timestamp_millis()),
        category: EmailCategory::Transactional,
        from: settings.sender.clone(),
        to: Mailbox { name: Some(rep.name.clone()), email: rep.email.clone() },
        subject: one_line(&subject),
        text,
        html,
        headers: Vec::new(),
        tags: vec![("lead_id".into(), lead.id.to_string())],
    })
}

/// Subjects are headers: a template may not smuggle a line break into one.
pub(crate) fn one_line(s: &str) -> String {
    s.split(['\r', '\n']).map(str::trim).filter(|p| !p.is_empty()).collect::<Vec<_>>().join(" ")
}

/// The attribute SES reads to leave a link alone: no click-tracking redirect, no click event.
pub const NO_TRACK: &str = "ses:no-track";

/// `html` with [`NO_TRACK`] added to every `<a>` whose `href` is `url`, written as it is or
/// HTML-escaped as a template writes it; every other link keeps its tracking.
pub fn untrack_links_to(html: &str, url: &str) -> String {
    let mut out = String::with_capacity(html.len() + 32);
    let mut rest = html;
    while let Some(start) = next_anchor(rest) {
        out.push_str(&rest[..start]);
        let (attrs, len) = attributes(&rest[start + 2..]);
        let tag = &rest[start..start + 2 + len];
        let to_url = attrs.iter().any(|(n, v)| n.eq_ignore_ascii_case("href") && unescape(v).trim() == url);
        let untracked = attrs.iter().any(|(n, _)| n.eq_ignore_ascii_case(NO_TRACK));
        if to_url && !untracked {
            out.push_str(&tag[..2]);
            out.push(' ');
            out.push_str(NO_TRACK);
            out.push_str(&tag[2..]);
        } else {
            out.push_str(tag);
        }
        rest = &rest[start + 2 + len..];
    }
    out.push_str(rest);
    out
}

/// Where the next `<a …>` tag opens, by byte index.
fn next_anchor(html: &str) -> Option<usize> {
    let bytes = html.as_bytes();
    let mut from = 0;
    while let Some(i) = html[from..].find('<').map(|i| from + i) {
        if matches!(bytes.get(i + 1), Some(b'a' | b'A')) && bytes.get(i + 2).is_some_and(u8::is_ascii_whitespace) {
            return Some(i);
        }
        from = i + 1;
    }
    None
}

/// The attributes of a tag whose name has been read (`s` starts after it), and how many bytes
/// the rest of the tag takes, its `>` included. Every index lands on an ASCII byte, so on a
/// character boundary.
fn attributes(s: &str) -> (Vec<(&str, &str)>, usize) {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    loop {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        match b.get(i) {
            None => return (out, i),
            Some(b'>') => return (out, i + 1),
            Some(_) => {}
        }
        let name_start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && !matches!(b[i], b'=' | b'>' | b'/') {
            i += 1;
        }
        let name = &s[name_start..i];
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = "";
        if b.get(i) == Some(&b'=') {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if let Some(&quote @ (b'"' | b'\'')) = b.get(i) {
                let start = i + 1;
                let end = s[start..].find(char::from(quote)).map_or(b.len(), |e| start + e);
                value = &s[start..end];
                i = (end + 1).min(b.len());
            } else {
                let start = i;
                while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' {
                    i += 1;
                }
                value = &s[start..i];
            }
        }
        out.push((name, value));
    }
}

/// The entities minijinja's HTML escaping writes, read back.
fn unescape(value: &str) -> String {
    if !value.contains('&') {
        return value.to_string();
    }
    [("&#x2f;", "/"), ("&#x2F;", "/"), ("&#47;", "/"), ("&quot;", "\""), ("&#x27;", "'"), ("&#39;", "'")]
        .into_iter()
        .chain([("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&")])
        .fold(value.to_string(), |v, (entity, c)| v.replace(entity, c))
}

/// What templates see of a lead.
#[derive(Serialize)]
pub(crate) struct LeadView<'a> {
    id: String,
    name: String,
    first_name: Option<&'a str>,
    last_name: Option<&'a str>,
    email: &'a str,
    /// As stored (E.164), for `tel:` links.
    phone: Option<&'a str>,
    /// Grouped for its country, for reading.
    phone_display: Option<&'a str>,
    company: Option<&'a str>,
    job_title: Option<&'a str>,
    country: Option<&'a str>,
    score: Option<&'a crate::model::Score>,
    lifecycle: &'static str,
    source: Option<&'a str>,
    form: Option<&'a str>,
    custom: &'a std::collections::BTreeMap<String, String>,
}

impl<'a> LeadView<'a> {
    pub(crate) fn of(lead: &'a Lead) -> Self {
        let c = &lead.contact;
        Self {
            id: lead.id.to_string(),
            name: lead.display_name(),
            first_name: c.first_name.as_deref(),
            last_name: c.last_name.as_deref(),
            email: &c.email,
            phone: c.phone.as_deref(),
            phone_display: c.phone_shown(),
            company: c.company.as_deref(),
            job_title: c.job_title.as_deref(),
            country: c.country.as_deref(),
            score: lead.score.as_ref(),
            lifecycle: lead.lifecycle.as_str(),
            source: lead.attribution.first_touch.utm.source.as_deref(),
            form: lead.attribution.first_touch.form.as_deref(),
            custom: &lead.custom,
        }
    }
}

/// The email as RFC 5322 MIME: `multipart/alternative` with the text and the HTML part.
pub fn to_mime(email: &OutgoingEmail, message_id: &str, date: DateTime<Utc>) -> Vec<u8> {
    let addr = |m: &Mailbox| match &m.name {
        Some(n) => mail_builder::headers::address::Address::new_address(Some(n.clone()), m.email.clone()),
        None => mail_builder::headers::address::Address::new_address(None::<String>, m.email.clone()),
    };
    let mut msg = MessageBuilder::new()
        .from(addr(&email.from))
        .to(addr(&email.to))
        .subject(email.subject.clone())
        .message_id(message_id.to_string())
        .date(date.timestamp())
        .text_body(email.text.clone())
        .html_body(email.html.clone());
    for (name, value) in &email.headers {
        msg = msg.header(name.clone(), Raw::new(value.clone()));
    }
    // Writing into a Vec cannot fail; an empty message would be caught by every reader.
    msg.write_to_vec().unwrap_or_default()
}
