//! From a campaign document to a [`CompiledCampaign`]: every check that can be made before a
//! lead is enrolled, the templates parsed once; and the drip emails rendered from them.

use minijinja::{Environment, context};

use super::{BranchIf, Campaign, CompiledCampaign, CompiledStep, StepKind, Test};
use crate::email::{LeadView, RenderError, one_line, untrack_links_to};
use crate::error::ConfigError;
use crate::model::Lead;
use crate::outgoing::{EmailCategory, Mailbox, OutgoingEmail};
use crate::rules::compile_all;
use crate::settings::Settings;
use crate::zone::Zone;

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The footer every drip email ends with, whatever its template says (CAN-SPAM, RFC 8058).
/// Its link is left out of SES click tracking: a mail scanner opening it would otherwise count
/// as the lead's engagement and raise the score.
const FOOTER: &str = "footer.html";
const FOOTER_HTML: &str = "<hr><p style=\"color:#888;font-size:12px\">{{ postal_address }}<br>\
                           <a ses:no-track href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p>";

fn template_name(step: usize, part: &str) -> String {
    format!("{step}.{part}")
}

impl Campaign {
    /// Reads a campaign from YAML, JSON or TOML text (by `format`: `yaml`, `json`, `toml`).
    pub fn parse(text: &str, format: &str) -> Result<Campaign, ConfigError> {
        let parsed = match format {
            "json" => serde_json::from_str(text).map_err(|e| e.to_string()),
            "toml" => toml::from_str(text).map_err(|e| e.to_string()),
            _ => serde_yaml_ng::from_str(text).map_err(|e| e.to_string()),
        };
        parsed.map_err(|message| ConfigError::Parse { file: format!("campaign ({format})"), message })
    }

    /// Checks everything that can be checked before a lead is enrolled; errors name the field.
    pub fn compile(&self) -> Result<CompiledCampaign, ConfigError> {
        let invalid = |field: String, message: String| ConfigError::Invalid { what: field, message };
        if !is_token(&self.id) {
            return Err(invalid("id".into(), "use 1 to 64 letters, digits, `-` or `_`".into()));
        }
        if self.steps.is_empty() {
            return Err(invalid("steps".into(), "a campaign needs at least one step".into()));
        }
        let tz = Zone::named(&self.time_zone)
            .ok_or_else(|| invalid("time_zone".into(), format!("unknown time zone {}", self.time_zone)))?;
        if let Some(w) = &self.send_window {
            if w.days.is_empty() {
                return Err(invalid("send_window.days".into(), "name at least one day".into()));
            }
            if w.end <= w.start {
                return Err(invalid("send_window.end".into(), "must be after send_window.start".into()));
            }
        }
        if let (Some(s), Some(e)) = (self.schedule.start, self.schedule.end)
            && e <= s
        {
            return Err(invalid("schedule.end".into(), "must be after schedule.start".into()));
        }
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        env.add_template(FOOTER, FOOTER_HTML).map_err(|e| invalid("footer".into(), e.to_string()))?;
        let index_of = |id: &str| self.steps.iter().position(|s| s.id == id);
        let mut steps = Vec::with_capacity(self.steps.len());
        for (i, step) in self.steps.iter().enumerate() {
            let at = |field: &str| format!("steps[{i}].{field}");
            if !is_token(&step.id) {
                return Err(invalid(at("id"), "use 1 to 64 letters, digits, `-` or `_`".into()));
            }
            if index_of(&step.id) != Some(i) {
                return Err(invalid(at("id"), format!("step id {} is used twice", step.id)));
            }
            let forbid = |field: &str, present: bool| {
                if present {
                    Err(invalid(at(field), format!("a {:?} step has no {field}", step.kind).to_lowercase()))
                } else {
                    Ok(())
                }
            };
            let has_email = step.subject.is_some() || step.text.is_some() || step.html.is_some();
            let has_branch = step.condition.is_some() || step.then.is_some() || step.otherwise.is_some();
            let compiled = match step.kind {
                StepKind::Send => {
                    forbid("if", has_branch)?;
                    for (field, part, text) in [
                        ("subject", "subject", &step.subject),
                        ("text", "txt", &step.text),
                        ("html", "html", &step.html),
                    ] {
                        let Some(text) = text else {
                            return Err(invalid(at(field), "a send step needs a subject, a text and an html".into()));
                        };
                        env.add_template_owned(template_name(i, part), text.clone())
                            .map_err(|e| invalid(at(field), e.to_string()))?;
                    }
                    CompiledStep::Send { wait: step.wait }
                }
                StepKind::Wait => {
                    forbid("subject", has_email)?;
                    forbid("if", has_branch)?;
                    if step.wait.is_none() {
                        return Err(invalid(at("wait"), "a wait step needs a wait".into()));
                    }
                    CompiledStep::Wait { wait: step.wait }
                }
                StepKind::Exit => {
                    forbid("subject", has_email)?;
                    forbid("if", has_branch)?;
                    CompiledStep::Exit { wait: step.wait }
                }
                StepKind::Branch => {
                    forbid("subject", has_email)?;
                    let target = |field: &str, id: &Option<String>| match id {
                        None => Ok(i + 1),
                        Some(id) => match index_of(id) {
                            Some(j) if j > i => Ok(j),
                            Some(_) => {
                                Err(invalid(at(field), format!("{id} is not after this step: branches go forward")))
                            }
                            None => Err(invalid(at(field), format!("there is no step {id}"))),
                        },
                    };
                    let earlier = |id: &str| match index_of(id) {
                        Some(j) if j < i && matches!(self.steps[j].kind, StepKind::Send) => Ok(id.to_string()),
                        _ => Err(invalid(at("if"), format!("{id} is not an earlier send step"))),
                    };
                    let Some(cond) = &step.condition else {
                        return Err(invalid(at("if"), "a branch step needs an `if`".into()));
                    };
                    let given = [
                        cond.opened.is_some(),
                        cond.clicked.is_some(),
                        cond.score_above.is_some(),
                        cond.field.is_some(),
                    ];
                    if given.iter().filter(|g| **g).count() != 1 {
                        return Err(invalid(
                            at("if"),
                            "give exactly one of opened, clicked, score_above or field".into(),
                        ));
                    }
                    let test = match cond {
                        BranchIf { opened: Some(id), .. } => Test::Opened(earlier(id)?),
                        BranchIf { clicked: Some(id), .. } => Test::Clicked(earlier(id)?),
                        BranchIf { score_above: Some(v), .. } if v.is_finite() => Test::ScoreAbove(*v),
                        BranchIf { field: Some(c), .. } => {
                            Test::Field(compile_all(std::slice::from_ref(c), &at("if.field"))?)
                        }
                        _ => return Err(invalid(at("if.score_above"), "must be a number".into())),
                    };
                    CompiledStep::Branch {
                        wait: step.wait,
                        test,
                        then: target("then", &step.then)?,
                        otherwise: target("else", &step.otherwise)?,
                    }
                }
            };
            steps.push(compiled);
        }
        Ok(CompiledCampaign {
            campaign: self.clone(),
            entry_when: compile_all(&self.entry.when, "entry.when")?,
            tz,
            steps,
            templates: env,
        })
    }

    /// Whether `other` says the same as this, whatever their versions.
    pub fn same_content(&self, other: &Campaign) -> bool {
        Campaign { version: other.version, ..self.clone() } == *other
    }
}

impl CompiledCampaign {
    /// The key of the email of step `index` for a lead: names the send, so it is sent once.
    pub fn email_key(&self, lead: &Lead, index: usize) -> String {
        let c = &self.campaign;
        let step = c.steps.get(index).map_or("", |s| s.id.as_str());
        format!("drip-{}-{}-v{}-{}", lead.id, c.id, c.version, step)
    }

    /// The index of a step id.
    pub fn step_index(&self, id: &str) -> Option<usize> {
        self.campaign.steps.iter().position(|s| s.id == id)
    }

    /// The drip email of step `index` for `lead`: marketing, so it carries `List-Unsubscribe`
    /// with one-click (RFC 8058), a visible unsubscribe link and the sender's postal address.
    pub fn render(
        &self,
        lead: &Lead,
        index: usize,
        settings: &Settings,
        unsubscribe_url: &str,
    ) -> Result<OutgoingEmail, RenderError> {
        let c = &self.campaign;
        let step = c.steps.get(index).filter(|s| s.kind == StepKind::Send).ok_or_else(|| RenderError {
            template: format!("campaign {} step {index}", c.id),
            message: "no such send step".into(),
        })?;
        let ctx = context! {
            lead => LeadView::of(lead),
            campaign => context! { id => &c.id, name => &c.name },
            postal_address => &settings.postal_address,
            unsubscribe_url => unsubscribe_url,
        };
        let render = |part: &str| {
            let name = template_name(index, part);
            self.templates.get_template(&name).and_then(|t| t.render(&ctx)).map_err(|e| RenderError {
                template: format!("campaign {} step {}", c.id, step.id),
                message: e.to_string(),
            })
        };
        let text_footer = format!("\n\n--\n{}\nUnsubscribe: {unsubscribe_url}\n", settings.postal_address);
        let html_footer = self
            .templates
            .get_template(FOOTER)
            .and_then(|t| {
                // Built by us from the configured public URL and a hex token: markup-free, and
                // escaping would turn its slashes into entities that some mail clients show.
                let url = minijinja::Value::from_safe_string(unsubscribe_url.replace('"', "%22"));
                t.render(context! { postal_address => &settings.postal_address, unsubscribe_url => url })
            })
            .map_err(|e| RenderError { template: FOOTER.into(), message: e.to_string() })?;
        let key = self.email_key(lead, index);
        Ok(OutgoingEmail {
            key: key.clone(),
            category: EmailCategory::Marketing,
            from: settings.sender.clone(),
            to: Mailbox { name: Some(lead.display_name()), email: lead.contact.email.clone() },
            subject: one_line(&render("subject")?),
            text: format!("{}{text_footer}", render("txt")?.trim_end()),
            // A step may link to `{{ unsubscribe_url }}` itself: that link is untracked too.
            html: format!("{}{html_footer}", untrack_links_to(&render("html")?, unsubscribe_url)),
            headers: vec![
                ("List-Unsubscribe".into(), format!("<{unsubscribe_url}>")),
                ("List-Unsubscribe-Post".into(), "List-Unsubscribe=One-Click".into()),
            ],
            tags: vec![("lead_id".into(), lead.id.to_string()), ("email".into(), key)],
        })
    }
}
