//! Teams for admins: the list in matching order (which leads each takes, its members and their
//! weights, and the routing-wide fallback owner and SLA it falls back on) and the form that adds
//! or changes one: its name, its conditions as rows (field, test, value; no script needed) and a
//! weight per rep. A save is `config_docs::save` of the whole routing, as
//! `PUT /admin/teams/{id}` stores it; the steps it shares with the rep form are in `entry`.

use std::collections::BTreeMap;
use std::future::Future;

use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use leadflow_core::model::FIELD_NAMES;
use leadflow_core::ports::Ports;
use leadflow_core::routing::{Member, RoutingConfig, Team};
use leadflow_core::rules::Condition;
use serde::Serialize;
use serde_json::{Value, json};

use super::entry::{Entry, FormPage, place};
use super::team_rows::{MAX_VALUE_CHARS, Row, TESTS, condition_words};
use super::{Errors, Fields, St, admin_routing, field, parse_weight, sent, version_words, weight_field};
use crate::config_docs::{MAX_NAME_CHARS, MAX_WEIGHT, team_problems};
use crate::console::Signed;
use crate::error::ApiError;

/// Most condition rows a form is read for (a team's own plus two empty ones to add more): far
/// more than a team has, and a bound on what a post makes the server parse.
pub const MAX_ROWS: usize = 100;
const BLANK_ROWS: usize = 2;

/// `GET /console/admin/teams`: the teams in matching order.
pub async fn list<P: Ports>(axum::extract::State(console): St<P>, signed: Signed) -> Response {
    let r = match admin_routing(&*console.ports, &signed).await {
        Ok(r) => r,
        Err(page) => return *page,
    };
    let routing = &r.value;
    let rep_name =
        |id: &str| routing.reps.iter().find(|x| x.id == id).map_or_else(|| id.to_string(), |x| x.name.clone());
    let teams: Vec<Value> = routing
        .teams
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let members: Vec<Value> =
                t.members.iter().map(|m| json!({ "name": rep_name(&m.rep), "weight": m.weight })).collect();
            json!({
                "n": i + 1,
                "id": t.id,
                "name": t.name,
                "when": t.when.iter().map(condition_words).collect::<Vec<_>>(),
                "members": members,
            })
        })
        .collect();
    signed.page(
        StatusCode::OK,
        "admin_teams.html",
        json!({
            "teams": teams,
            "fallback": rep_name(&routing.fallback_owner),
            // `4`, not `4.0`.
            "sla_hours": routing.sla_hours.to_string(),
            "version": version_words(&r),
        }),
    )
}

/// The form as typed (or as the team stands).
#[derive(Debug, Default, Clone, Serialize)]
pub(crate) struct TeamForm {
    id: String,
    name: String,
    rows: Vec<Row>,
    /// By rep id: the reps whose weight field the form carried.
    weights: BTreeMap<String, String>,
}

impl TeamForm {
    fn of(team: &Team, routing: &RoutingConfig) -> TeamForm {
        let weight = |rep: &str| team.members.iter().find(|m| m.rep == rep).map(|m| m.weight.to_string());
        TeamForm {
            id: team.id.clone(),
            name: team.name.clone(),
            rows: team.when.iter().map(Row::of).collect(),
            weights: routing.reps.iter().map(|r| (r.id.clone(), weight(&r.id).unwrap_or_default())).collect(),
        }
    }

    fn blank(routing: &RoutingConfig) -> TeamForm {
        TeamForm {
            weights: routing.reps.iter().map(|r| (r.id.clone(), String::new())).collect(),
            ..TeamForm::default()
        }
    }

    fn posted(form: &Fields, routing: &RoutingConfig) -> TeamForm {
        let text = |name: &str| field(form, name).to_string();
        let rows = (0..MAX_ROWS)
            .filter(|n| sent(form, &format!("when_field_{n}")))
            .map(|n| Row {
                field: text(&format!("when_field_{n}")),
                test: text(&format!("when_test_{n}")),
                value: text(&format!("when_value_{n}")),
            })
            .collect();
        TeamForm {
            id: text("id"),
            name: text("name"),
            rows,
            weights: routing
                .reps
                .iter()
                .filter(|r| sent(form, &weight_field(&r.id)))
                .map(|r| (r.id.clone(), text(&weight_field(&r.id))))
                .collect(),
        }
    }
}

/// What the form asks for: the conditions (with the row each came from), the weights by rep
/// (`None`: not a member; reps the form did not show are left as they are).
pub(crate) struct Asked {
    when: Vec<Condition>,
    rows: Vec<usize>,
    weights: BTreeMap<String, Option<u32>>,
}

fn parse(form: &TeamForm, errors: &mut Errors) -> Asked {
    let mut asked = Asked { when: Vec::new(), rows: Vec::new(), weights: BTreeMap::new() };
    for (n, row) in form.rows.iter().enumerate().filter(|(_, r)| !r.blank()) {
        if let Some(c) = row.condition(n, errors) {
            asked.when.push(c);
            asked.rows.push(n);
        }
    }
    for (rep, raw) in &form.weights {
        match parse_weight(raw) {
            Ok(w) => {
                asked.weights.insert(rep.clone(), w);
            }
            Err(message) => errors.add(weight_field(rep), message),
        }
    }
    asked
}

/// The team `current` becomes: its members keep their order, new ones follow in the reps' order.
fn build(id: &str, name: &str, asked: &Asked, current: Option<&Team>, routing: &RoutingConfig) -> Team {
    let mut members: Vec<Member> = Vec::new();
    for m in current.map(|t| t.members.as_slice()).unwrap_or_default() {
        match asked.weights.get(&m.rep) {
            None => members.push(m.clone()),
            Some(Some(w)) => members.push(Member { rep: m.rep.clone(), weight: *w }),
            Some(None) => {}
        }
    }
    for rep in &routing.reps {
        if let Some(Some(w)) = asked.weights.get(&rep.id)
            && !members.iter().any(|m| m.rep == rep.id)
        {
            members.push(Member { rep: rep.id.clone(), weight: *w });
        }
    }
    Team { id: id.to_string(), name: name.to_string(), when: asked.when.clone(), members }
}

/// The form field of an API error's path about this team (`teams[<index>].…` from the whole
/// routing's check, or the team's own path), or `None` for the top of the form.
fn team_field(path: &str, index: Option<usize>, team: &Team, rows: &[usize]) -> Option<String> {
    let own = match path.strip_prefix("teams[") {
        Some(rest) => {
            let (n, tail) = rest.split_once("].")?;
            (index.is_some() && n.parse::<usize>().ok() == index).then_some(tail)?
        }
        None => path,
    };
    if own == "id" || own == "name" {
        return Some(own.to_string());
    }
    let indexed = |prefix: &str| own.strip_prefix(prefix).and_then(|r| r.split(']').next()?.parse::<usize>().ok());
    if let Some(i) = indexed("when[") {
        return rows.get(i).map(|n| format!("when_{n}"));
    }
    if let Some(k) = indexed("members[")
        && own.ends_with("].weight")
    {
        return team.members.get(k).map(|m| weight_field(&m.rep));
    }
    None
}

/// The team form: its steps in `entry`.
pub struct Teams;

/// A posted team form once checked: what it asks for and the team it makes of the routing in
/// force (whose problems the refusal of a save is placed by).
pub(crate) struct Checked {
    asked: Asked,
    team: Team,
}

impl Entry for Teams {
    const NOUN: &'static str = "team";
    const GONE: &'static str = "team_not_found";
    type Form = TeamForm;
    type Asked = Checked;

    fn exists(routing: &RoutingConfig, id: &str) -> bool {
        routing.teams.iter().any(|t| t.id == id)
    }

    fn position(routing: &RoutingConfig, id: &str) -> Option<usize> {
        routing.teams.iter().position(|t| t.id == id)
    }

    fn blank(routing: &RoutingConfig) -> TeamForm {
        TeamForm::blank(routing)
    }

    fn of(routing: &RoutingConfig, id: &str, _now: DateTime<Utc>) -> Option<TeamForm> {
        routing.teams.iter().find(|t| t.id == id).map(|team| TeamForm::of(team, routing))
    }

    fn posted(fields: &Fields, routing: &RoutingConfig) -> TeamForm {
        TeamForm::posted(fields, routing)
    }

    fn id_mut(form: &mut TeamForm) -> &mut String {
        &mut form.id
    }

    fn check(
        form: &TeamForm,
        id: &str,
        existing: Option<&str>,
        routing: &RoutingConfig,
        _now: DateTime<Utc>,
        errors: &mut Errors,
    ) -> Checked {
        let current = existing.and_then(|id| routing.teams.iter().find(|t| t.id == id));
        let asked = parse(form, errors);
        let team = build(id, &form.name, &asked, current, routing);
        for e in team_problems("", &team, routing) {
            errors.add_api(&e, |p| team_field(p, None, &team, &asked.rows));
        }
        Checked { asked, team }
    }

    fn apply(
        checked: &Checked,
        routing: &mut RoutingConfig,
        found: Option<usize>,
        creating: bool,
    ) -> Result<usize, ApiError> {
        let Team { id, name, .. } = &checked.team;
        let team = build(id, name, &checked.asked, found.map(|i| &routing.teams[i]), routing);
        place::<Self, _>(&mut routing.teams, found, creating, team)
    }

    fn field(checked: &Checked, path: &str, index: Option<usize>) -> Option<String> {
        team_field(path, index, &checked.team, &checked.asked.rows)
    }

    fn render<P: Ports>(
        page: FormPage<'_>,
        _ports: &P,
        signed: &Signed,
        form: &TeamForm,
        errors: &Errors,
    ) -> impl Future<Output = Response> + Send {
        std::future::ready(render(page, signed, form, errors))
    }
}

fn render(page: FormPage<'_>, signed: &Signed, form: &TeamForm, errors: &Errors) -> Response {
    let routing = &page.routing.value;
    let current = page.existing.and_then(|id| routing.teams.iter().find(|t| t.id == id));
    let mut rows = form.rows.clone();
    let blanks = BLANK_ROWS.min(MAX_ROWS.saturating_sub(rows.len()));
    rows.extend(std::iter::repeat_n(Row { test: "in".into(), ..Row::default() }, blanks));
    let rows: Vec<Value> = rows
        .iter()
        .enumerate()
        .map(|(n, r)| json!({ "n": n, "field": r.field, "test": r.test, "value": r.value, "error_key": format!("when_{n}") }))
        .collect();
    let reps: Vec<Value> = routing
        .reps
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.name,
                "active": r.active,
                "field": weight_field(&r.id),
                "weight": form.weights.get(&r.id),
            })
        })
        .collect();
    let tests: Vec<Value> = TESTS.iter().map(|(v, l)| json!({ "value": v, "label": l })).collect();
    signed.page(
        page.status,
        "admin_team.html",
        json!({
            "heading": current.map_or("Add a team", |t| t.name.as_str()),
            "creating": page.existing.is_none(),
            "action": page.action::<Teams>(),
            "form": form,
            "rows": rows,
            "errors": errors.json(),
            "reps": reps,
            "tests": tests,
            "fields": FIELD_NAMES,
            "version": version_words(page.routing),
            "notice": page.notice,
            "max_weight": MAX_WEIGHT,
            "max_name": MAX_NAME_CHARS,
            "max_value": MAX_VALUE_CHARS,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths_land_on_the_row_or_the_rep_they_name() {
        let team = Team {
            id: "emea".into(),
            name: "EMEA".into(),
            when: Vec::new(),
            members: vec![Member { rep: "anna".into(), weight: 1 }, Member { rep: "ben".into(), weight: 500 }],
        };
        // Conditions 0 and 1 came from rows 0 and 2 (row 1 was left empty).
        let rows = [0, 2];
        assert_eq!(team_field("when[1]", None, &team, &rows).as_deref(), Some("when_2"));
        assert_eq!(team_field("members[1].weight", None, &team, &rows).as_deref(), Some("weight_ben"));
        assert_eq!(team_field("teams[4].members[0].weight", Some(4), &team, &rows).as_deref(), Some("weight_anna"));
        assert_eq!(team_field("teams[3].name", Some(4), &team, &rows), None, "another team's problem");
        assert_eq!(team_field("members[0].rep", None, &team, &rows), None);
        assert_eq!(team_field("name", None, &team, &rows).as_deref(), Some("name"));
    }

    #[test]
    fn members_keep_their_order_and_reps_the_form_did_not_show_stay() {
        let routing: RoutingConfig = serde_json::from_value(json!({
            "fallback_owner": "a",
            "reps": [
                { "id": "a", "name": "A", "email": "a@x.example" },
                { "id": "b", "name": "B", "email": "b@x.example" },
                { "id": "c", "name": "C", "email": "c@x.example" },
            ],
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let current = Team {
            id: "t".into(),
            name: "T".into(),
            when: Vec::new(),
            members: vec![Member { rep: "c".into(), weight: 2 }, Member { rep: "b".into(), weight: 1 }],
        };
        let weights = BTreeMap::from([("a".to_string(), Some(4)), ("b".to_string(), None)]);
        let asked = Asked { when: Vec::new(), rows: Vec::new(), weights };
        let team = build("t", "T", &asked, Some(&current), &routing);
        let got: Vec<(&str, u32)> = team.members.iter().map(|m| (m.rep.as_str(), m.weight)).collect();
        assert_eq!(got, [("c", 2), ("a", 4)]);
    }
}
