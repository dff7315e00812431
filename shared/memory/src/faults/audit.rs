//! What a run with faults must end in, checked from the store, the dead-letter queues and the
//! books of [`Faults`]: every person who was answered 202 has one lead (never two), and it is
//! assigned — its rep emailed (and the email recorded) and `lead.assigned` published — or
//! enrolled, or a message about it sits in a dead-letter queue; no lead is anywhere else (lost).
//! Every email accepted twice was sent again before its first send was recorded (the
//! at-least-once window), never after, and with a fault to explain it. Events keep no record:
//! a redelivery publishes one again, and its consumers drop the repeat by its id, so their
//! repeats are counted, not judged. Each rep's open-lead counter equals the leads they own.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use leadflow_core::error::StoreError;
use leadflow_core::model::{Lead, LeadId, Lifecycle, RepId, SalesStatus};
use leadflow_core::ports::{LeadStore, Stage};

use super::{Accepted, EMAIL_EFFECT_PREFIX, Faults, Unrecorded};

/// One submission of a run, in the order the clients post them.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Index of the person in [`people`]'s answer.
    pub person: usize,
    pub body: serde_json::Value,
    /// The client's `Idempotency-Key`: the same on its retries, another for a new submission.
    pub key: String,
}

/// After how many other people a person who submits twice comes back.
const COMES_BACK_AFTER: usize = 37;

/// People `first..first + n` and their submissions, the same every run: 40 % CTOs in Germany
/// (the EMEA team, two reps), 20 % VPs in the US (the Americas team, one rep), 5 % CEOs in Japan
/// (no team: the fallback owner), all qualified; 35 % free-mail addresses with a first name only,
/// below MQL (nurtured). One person in 25 submits a second time, 37 people later. A `person` in
/// the submissions is an index into the people answered.
pub fn plan(first: usize, n: usize) -> (Vec<Person>, Vec<Planned>) {
    let people: Vec<Person> = (first..first + n)
        .map(|i| {
            let email = if i % 20 >= 13 { format!("p{i}@gmail.com") } else { format!("p{i}@corp{i}.example") };
            Person { email, accepted: BTreeSet::new() }
        })
        .collect();
    let body = |at: usize| {
        let i = first + at;
        let email = &people[at].email;
        let (title, country) = match i % 20 {
            0..=7 => ("CTO", "DE"),
            8..=11 => ("VP Sales", "US"),
            12 => ("CEO", "JP"),
            _ => return serde_json::json!({ "email": email, "first_name": format!("P{i}") }),
        };
        serde_json::json!({
            "email": email, "first_name": format!("P{i}"), "last_name": "Tester",
            "company": format!("Corp {i}"), "job_title": title, "country": country,
        })
    };
    let twice = |at: usize| (first + at) % 25 == 3;
    let again = |at: usize| Planned { person: at, body: body(at), key: format!("again-{}", first + at) };
    let mut planned = Vec::with_capacity(n + n / 25 + 1);
    for at in 0..n {
        planned.push(Planned { person: at, body: body(at), key: format!("first-{}", first + at) });
        if let Some(back) = at.checked_sub(COMES_BACK_AFTER).filter(|b| twice(*b)) {
            planned.push(again(back));
        }
    }
    planned.extend((n.saturating_sub(COMES_BACK_AFTER)..n).filter(|at| twice(*at)).map(again));
    (people, planned)
}

/// One person of the run: the lead ids capture answered their submissions with (202).
#[derive(Debug, Clone, Default)]
pub struct Person {
    pub email: String,
    pub accepted: BTreeSet<LeadId>,
}

/// A message a stage gave up on.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub stage: Stage,
    pub body: String,
    pub reason: Option<String>,
}

impl DeadLetter {
    /// Every stage message names its lead (validate's: the submission's capture id).
    pub fn lead_id(&self) -> Option<LeadId> {
        let body: serde_json::Value = serde_json::from_str(&self.body).ok()?;
        body["lead_id"].as_str()?.parse().ok()
    }
}

/// How the driver delivered the run: the client's posts and the queues' deliveries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deliveries {
    /// `POST /leads` requests, the clients' retries included.
    pub posts: u64,
    /// Of those, answered 503 (and posted again by the client).
    pub posts_unavailable: u64,
    /// Submissions the client gave up on after its retries (never answered 202).
    pub given_up: u64,
    /// Stage function invocations, one per batch.
    pub invocations: u64,
    /// Of those, abandoned by a crash: none of their records was deleted.
    pub crashed: u64,
    /// Records handed to the stage functions.
    pub records: u64,
    /// Of those, deliveries after the first (receive count above 1).
    pub redeliveries: u64,
    /// Records a function reported failed (given back to the queue).
    pub failed: u64,
}

impl Deliveries {
    pub fn add(&mut self, o: &Deliveries) {
        self.posts += o.posts;
        self.posts_unavailable += o.posts_unavailable;
        self.given_up += o.given_up;
        self.invocations += o.invocations;
        self.crashed += o.crashed;
        self.records += o.records;
        self.redeliveries += o.redeliveries;
        self.failed += o.failed;
    }
}

impl fmt::Display for Deliveries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "posts {} (503 and posted again: {}; given up: {})",
            self.posts, self.posts_unavailable, self.given_up
        )?;
        write!(
            f,
            "invocations {} (crashed: {}); records {} (redeliveries: {}; reported failed: {})",
            self.invocations, self.crashed, self.records, self.redeliveries, self.failed
        )
    }
}

/// Emails (or events) the adapter accepted, and the repeats among them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Repeats {
    pub accepted: u64,
    pub distinct: u64,
    /// Sent again before the first send was recorded: the documented at-least-once window
    /// (for events, every repeat: they are never recorded).
    pub inside_window: u64,
    /// Sent again after the send was recorded: a defect.
    pub outside_window: u64,
    /// The repeats by what they are owed to ([`Unrecorded::as_str`]).
    pub owed_to: BTreeMap<&'static str, u64>,
}

impl Repeats {
    pub fn add(&mut self, o: &Repeats) {
        self.accepted += o.accepted;
        self.distinct += o.distinct;
        self.inside_window += o.inside_window;
        self.outside_window += o.outside_window;
        for (why, n) in &o.owed_to {
            *self.owed_to.entry(why).or_insert(0) += n;
        }
    }

    fn of(books: &BTreeMap<String, Accepted>, owed_to: BTreeMap<Unrecorded, u64>) -> Self {
        let owed_to = owed_to.into_iter().map(|(why, n)| (why.as_str(), n)).collect();
        let mut r = Self { distinct: books.len() as u64, owed_to, ..Self::default() };
        for a in books.values() {
            r.accepted += u64::from(a.times);
            r.outside_window += u64::from(a.after_record);
            r.inside_window += u64::from(a.times.saturating_sub(1).saturating_sub(a.after_record));
        }
        r
    }
}

/// Where every person's submissions ended, and everything that must not have happened.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub people: usize,
    /// Distinct lead ids answered with 202.
    pub accepted: usize,
    pub leads: usize,
    pub assigned: usize,
    pub enrolled: usize,
    /// People whose lead is not done and waits in a dead-letter queue, by that queue's stage.
    pub in_dlq: BTreeMap<&'static str, usize>,
    /// Messages in each dead-letter queue.
    pub dead_letters: BTreeMap<&'static str, usize>,
    /// Open leads per owner, counted from the leads.
    pub owned: BTreeMap<RepId, u32>,
    /// The store's rep-load counters.
    pub loads: BTreeMap<RepId, u32>,
    pub emails: Repeats,
    pub events: Repeats,
    /// Everything that breaks the rules above, one line each; empty when the run is sound.
    pub problems: Vec<String>,
}

impl Outcome {
    pub fn in_dlq_total(&self) -> usize {
        self.in_dlq.values().sum()
    }

    /// Adds another deployment's outcome (a run made of several).
    pub fn add(&mut self, o: &Outcome) {
        self.people += o.people;
        self.accepted += o.accepted;
        self.leads += o.leads;
        self.assigned += o.assigned;
        self.enrolled += o.enrolled;
        for (map, other) in [(&mut self.in_dlq, &o.in_dlq), (&mut self.dead_letters, &o.dead_letters)] {
            for (stage, n) in other {
                *map.entry(stage).or_insert(0) += n;
            }
        }
        for (map, other) in [(&mut self.owned, &o.owned), (&mut self.loads, &o.loads)] {
            for (rep, n) in other {
                *map.entry(rep.clone()).or_insert(0) += n;
            }
        }
        self.emails.add(&o.emails);
        self.events.add(&o.events);
        self.problems.extend(o.problems.iter().cloned());
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "people {}; leads {}; assigned {}; enrolled {}; waiting in a DLQ {} {:?}; dead letters {:?}",
            self.people,
            self.leads,
            self.assigned,
            self.enrolled,
            self.in_dlq_total(),
            self.in_dlq,
            self.dead_letters
        )?;
        writeln!(f, "rep loads (counter) {:?}; open leads owned {:?}", self.loads, self.owned)?;
        let line = |r: &Repeats| {
            format!(
                "{} accepted, {} distinct, {} again inside the window, {} again outside it; repeats owed to {:?}",
                r.accepted, r.distinct, r.inside_window, r.outside_window, r.owed_to
            )
        };
        writeln!(f, "emails: {}", line(&self.emails))?;
        writeln!(f, "events: {}", line(&self.events))?;
        write!(f, "problems: {}", self.problems.len())?;
        for p in self.problems.iter().take(20) {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

/// Checks the end of a run. `store` is the adapter itself (not wrapped: the checks must not
/// fail), `dead` every message of the three dead-letter queues.
pub async fn audit<S: LeadStore>(
    store: &S,
    people: &[Person],
    dead: &[DeadLetter],
    faults: &Faults,
) -> Result<Outcome, StoreError> {
    let mut out = Outcome { people: people.len(), ..Outcome::default() };
    let mut leads: Vec<Lead> = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.list_leads(cursor, 500).await?;
        leads.extend(page.leads);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    out.leads = leads.len();
    let mut by_email: HashMap<String, Vec<&Lead>> = HashMap::new();
    for lead in &leads {
        by_email.entry(lead.contact.email.to_lowercase()).or_default().push(lead);
    }

    // The lead each dead letter is about, under its own id and the one it resolves to.
    let mut stuck: HashMap<LeadId, Stage> = HashMap::new();
    let mut stuck_submissions: BTreeSet<LeadId> = BTreeSet::new();
    for d in dead {
        *out.dead_letters.entry(d.stage.as_str()).or_insert(0) += 1;
        let Some(id) = d.lead_id() else {
            out.problems.push(format!("a dead letter of {} names no lead: {}", d.stage.as_str(), d.body));
            continue;
        };
        stuck.entry(id).or_insert(d.stage);
        if d.stage == Stage::Validate {
            stuck_submissions.insert(id);
        }
        if let Some(resolved) = store.resolve_lead(id).await? {
            stuck.entry(resolved).or_insert(d.stage);
        }
    }

    let emails = faults.emails();
    let events = faults.events();
    for person in people {
        out.accepted += person.accepted.len();
        let mine = by_email.get(&person.email.to_lowercase()).map(Vec::as_slice).unwrap_or_default();
        let stuck_at = |lead: Option<LeadId>| {
            lead.into_iter().chain(person.accepted.iter().copied()).find_map(|id| stuck.get(&id).copied())
        };
        let lead = match mine {
            [] if person.accepted.is_empty() => continue,
            [] => {
                match stuck_at(None) {
                    Some(stage) => *out.in_dlq.entry(stage.as_str()).or_insert(0) += 1,
                    None => out.problems.push(format!("lost: submissions {:?} made no lead", person.accepted)),
                }
                continue;
            }
            [lead] => *lead,
            many => {
                let ids: Vec<String> = many.iter().map(|l| l.id.to_string()).collect();
                out.problems.push(format!("duplicated: one address, {} leads {ids:?}", many.len()));
                continue;
            }
        };

        // Every submission counted once: those stuck before validation may not be yet.
        let n = person.accepted.len() as u32;
        let stuck_n = person.accepted.iter().filter(|id| stuck_submissions.contains(id)).count() as u32;
        if lead.submissions > n || lead.submissions + stuck_n < n {
            out.problems.push(format!(
                "lead {} counts {} submissions, {n} were accepted ({stuck_n} in the validate DLQ)",
                lead.id, lead.submissions
            ));
        }

        let unfinished = match &lead.owner {
            Some(owner) => {
                let at = owner.assigned_at.timestamp_millis();
                let email = format!("assignment-{}-{}-{at}", lead.id, owner.rep_id);
                let event = format!("lead.assigned:{}:{at}", lead.id);
                let missing: Vec<&str> = [
                    (!emails.contains_key(&email), "no assignment email"),
                    (!faults.finished(&format!("{EMAIL_EFFECT_PREFIX}{email}")), "the email not recorded"),
                    (!events.contains_key(&event), "no lead.assigned event"),
                ]
                .into_iter()
                .filter_map(|(missing, what)| missing.then_some(what))
                .collect();
                if missing.is_empty() {
                    out.assigned += 1;
                    None
                } else {
                    Some(format!("assigned to {} but {}", owner.rep_id, missing.join(", ")))
                }
            }
            None if lead.lifecycle >= Lifecycle::Mql => Some("qualified but not assigned".to_string()),
            None if store.enrollments(lead.id).await?.is_empty() => Some("below MQL but not enrolled".to_string()),
            None => {
                out.enrolled += 1;
                None
            }
        };
        if let Some(what) = unfinished {
            match stuck_at(Some(lead.id)) {
                Some(stage) => *out.in_dlq.entry(stage.as_str()).or_insert(0) += 1,
                None => out.problems.push(format!("lost: lead {} is {what}, and no dead letter names it", lead.id)),
            }
        }
    }

    let submitted: std::collections::HashSet<String> = people.iter().map(|p| p.email.to_lowercase()).collect();
    for (email, found) in &by_email {
        if !submitted.contains(email) {
            out.problems.push(format!("{} lead(s) with an address nobody submitted", found.len()));
        }
    }

    // An accepted email must end recorded, unless its lead waits in a dead-letter queue.
    for (key, accepted) in &emails {
        let lead = accepted.lead_id.as_deref().and_then(|l| l.parse().ok());
        if !faults.finished(&format!("{EMAIL_EFFECT_PREFIX}{key}")) && !lead.is_some_and(|l| stuck.contains_key(&l)) {
            out.problems.push(format!("email {key} was sent and never recorded"));
        }
        if accepted.after_record > 0 {
            out.problems
                .push(format!("email {key} sent again {} time(s) after it was recorded", accepted.after_record));
        }
    }
    out.emails = Repeats::of(&emails, faults.repeats("email"));
    out.events = Repeats::of(&events, faults.repeats("event"));
    if let Some(n) = out.emails.owed_to.get(Unrecorded::Unexplained.as_str()) {
        out.problems.push(format!("{n} email(s) sent again with no fault to explain it"));
    }

    for lead in &leads {
        if let Some(owner) = &lead.owner
            && !matches!(lead.status, SalesStatus::Won | SalesStatus::Lost)
        {
            *out.owned.entry(owner.rep_id.clone()).or_insert(0) += 1;
        }
    }
    out.loads = store.rep_loads().await?.into_iter().filter(|(_, n)| *n > 0).collect();
    if out.loads != out.owned {
        out.problems.push(format!("rep load counters {:?} differ from the leads owned {:?}", out.loads, out.owned));
    }
    Ok(out)
}
