//! The `leadflow` command line's admin commands against a running admin API (the real router
//! over the in-memory adapters, served on a loopback port).

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use leadflow_admin::AdminAuth;
use leadflow_core::model::{EnrollmentState, SalesStatus};
use leadflow_core::ports::{Adapters, ConfigHandle};
use leadflow_core::ports::{Enrollments, Leads};
use leadflow_infra::cli::{
    ApiCall, CallError, CampaignCommand, ExportFormat, FilterArgs, Format, FunnelBy, LeadCommand, MarkStatus, Output,
    RepCommand, ReportCommand, error_line, execute,
};
use leadflow_infra::client::{AdminClient, ClientError};
use leadflow_memory::fixtures;
use leadflow_memory::{MemoryQueue, MemoryStore, RecordingBus, RecordingMailer, SettableClock};
use serde_json::Value;

type MemPorts = Adapters<MemoryStore, MemoryQueue, RecordingMailer, RecordingBus, SettableClock>;

const TOKEN: &str = "cli-test-token";

async fn serve() -> (Arc<MemPorts>, SocketAddr) {
    let ports = Arc::new(Adapters {
        store: MemoryStore::new(),
        queue: MemoryQueue::new(),
        mailer: RecordingMailer::new(),
        bus: RecordingBus::new(),
        clock: SettableClock::at(Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).single().unwrap_or_default()),
        config: ConfigHandle::new(leadflow_tests::test_config()),
    });
    let app = leadflow_admin::router(Arc::clone(&ports), AdminAuth::Bearer(TOKEN.into()));
    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => panic!("cannot bind a loopback port: {e}"),
    };
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("no local address: {e}"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (ports, addr)
}

fn client(addr: SocketAddr, token: &str) -> AdminClient {
    match AdminClient::new(&format!("http://{addr}"), Some(token.to_string())) {
        Ok(c) => c,
        Err(e) => panic!("no client: {e}"),
    }
}

/// The command's answer with `--json`: the API's JSON.
async fn run(client: &AdminClient, call: ApiCall) -> Value {
    match execute(client, call, Format::Json).await {
        Ok(Output::Json(v)) => v,
        Ok(other) => panic!("expected JSON, got {other:?}"),
        Err(e) => panic!("{}", error_line(&e)),
    }
}

#[tokio::test]
async fn the_cli_drives_leads_reps_reports_and_campaigns_over_http() {
    let (ports, addr) = serve().await;
    let admin = client(addr, TOKEN);
    let mut lead = fixtures::lead(1, "ada@example.com");
    lead.contact.company = Some("=HYPERLINK(\"http://evil\")".into());
    lead.attribution.first_touch.utm.source = Some("google".into());
    assert!(ports.store.create_lead(&lead, &[]).await.is_ok());
    let e = fixtures::enrollment(1, "welcome", Some(fixtures::t(86_400)), EnrollmentState::Active);
    assert!(ports.store.enroll(&e, &[]).await.is_ok());
    let id = lead.id.to_string();

    let shown = run(&admin, ApiCall::Lead(LeadCommand::Show { id: id.clone() })).await;
    assert_eq!(shown["contact"]["email"], "ada@example.com");

    let marked = run(
        &admin,
        ApiCall::Lead(LeadCommand::Mark {
            id: id.clone(),
            status: MarkStatus::Won,
            by: Some("anna".into()),
            note: None,
        }),
    )
    .await;
    assert_eq!(marked["status"], "won");
    assert_eq!(marked["enrollments_stopped"], 1);
    assert_eq!(ports.store.get_lead(lead.id).await.ok().flatten().map(|l| l.status), Some(SalesStatus::Won));

    let export = execute(
        &admin,
        ApiCall::Lead(LeadCommand::Export { format: ExportFormat::Csv, filters: FilterArgs::default(), output: None }),
        Format::Human,
    )
    .await;
    match export {
        Ok(Output::Text(csv)) => {
            assert!(csv.starts_with("id,"), "{csv}");
            assert!(csv.contains("\"'=HYPERLINK(\"\"http://evil\"\")\""), "{csv}");
        }
        other => panic!("expected the CSV text: {other:?}"),
    }

    let funnel =
        run(&admin, ApiCall::Report(ReportCommand::Funnel { by: FunnelBy::Source, since: None, until: None })).await;
    assert_eq!(funnel["overall"]["captured"], 1);
    assert_eq!(funnel["groups"][0]["key"], "google");

    let rep = run(
        &admin,
        ApiCall::Rep(RepCommand::Set {
            id: "zoe".into(),
            name: Some("Zoe Martin".into()),
            email: Some("zoe@acme.example".into()),
            time_zone: Some("Europe/Paris".into()),
            capacity: Some(10),
            no_capacity: false,
            active: None,
            days: Some(vec!["mon".into(), "fri".into()]),
            start: Some("09:00".into()),
            end: Some("17:00".into()),
            any_time: false,
        }),
    )
    .await;
    assert_eq!(rep["version"], 1);
    let ooo = run(
        &admin,
        ApiCall::Rep(RepCommand::Ooo {
            id: "zoe".into(),
            from: Some("2026-03-09".into()),
            until: Some("2026-03-13T18:00:00Z".into()),
            clear: false,
        }),
    )
    .await;
    assert_eq!(ooo["rep"]["out_of_office"]["from"], "2026-03-09T00:00:00Z");

    // A campaign file, applied, paused and previewed.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temp dir: {e}"));
    let file = dir.path().join("spring.yaml");
    let yaml = "id: spring\nname: Spring\nsteps:\n  - id: hello\n    subject: Hi {{ lead.first_name }}\n    text: Hi\n    html: <p>Hi</p>\n";
    std::fs::write(&file, yaml).unwrap_or_else(|e| panic!("cannot write {}: {e}", file.display()));
    let applied = run(&admin, ApiCall::Campaign(CampaignCommand::Apply { file: file.clone() })).await;
    assert_eq!(applied["version"], 1);
    let paused = run(&admin, ApiCall::Campaign(CampaignCommand::Pause { id: "spring".into() })).await;
    assert_eq!(paused["status"], "paused");
    let preview = run(
        &admin,
        ApiCall::Campaign(CampaignCommand::Preview {
            id: "spring".into(),
            lead: id.clone(),
            step: "hello".into(),
            version: None,
        }),
    )
    .await;
    assert_eq!(preview["subject"], "Hi Ada");

    let erased = run(&admin, ApiCall::Lead(LeadCommand::Erase { id: id.clone(), yes: true })).await;
    assert_eq!(erased["erased"], true);
    let after = run(&admin, ApiCall::Lead(LeadCommand::Show { id: id.clone() })).await;
    assert_eq!(after["erased"], true);
    assert!(!after.to_string().contains("ada@example.com"));
}

#[tokio::test]
async fn api_errors_come_back_as_code_and_message() {
    let (_ports, addr) = serve().await;
    let intruder = client(addr, "not-the-token");
    let err =
        execute(&intruder, ApiCall::Lead(LeadCommand::Show { id: fixtures::id(1).to_string() }), Format::Human).await;
    match &err {
        Err(CallError::Api(ClientError::Api { status: 401, code, .. })) => assert_eq!(code, "unauthorized"),
        other => panic!("expected a 401: {other:?}"),
    }
    let line = err.err().map(|e| error_line(&e)).unwrap_or_default();
    assert!(line.starts_with("error: unauthorized: "), "{line}");

    let admin = client(addr, TOKEN);
    let bad_zone = execute(
        &admin,
        ApiCall::Rep(RepCommand::Set {
            id: "zoe".into(),
            name: Some("Zoe".into()),
            email: Some("zoe@acme.example".into()),
            time_zone: Some("Nowhere/Special".into()),
            capacity: None,
            no_capacity: false,
            active: None,
            days: None,
            start: None,
            end: None,
            any_time: false,
        }),
        Format::Human,
    )
    .await;
    let line = bad_zone.err().map(|e| error_line(&e)).unwrap_or_default();
    assert!(line.starts_with("error: invalid_field: ") && line.ends_with("field: time_zone"), "{line}");

    let missing =
        execute(&admin, ApiCall::Lead(LeadCommand::Show { id: fixtures::id(5).to_string() }), Format::Json).await;
    let line = missing.err().map(|e| error_line(&e)).unwrap_or_default();
    assert!(line.starts_with("error: lead_not_found: "), "{line}");

    let https = AdminClient::new("https://admin.example.com", None).err();
    assert_eq!(https.as_ref().map(ClientError::code), Some("bad_url"));
}

// --- what a person sees -----------------------------------------------------------------------

/// What a person sees: standard output, and the hint printed on standard error.
async fn shown(client: &AdminClient, call: ApiCall) -> (String, Option<String>) {
    match execute(client, call, Format::Human).await {
        Ok(Output::Human { text, hint }) => (text, hint),
        Ok(other) => panic!("expected text for a person, got {other:?}"),
        Err(e) => panic!("{}", error_line(&e)),
    }
}

/// The cells of a table's `line` under the `header`'s `titles`, cut in display columns where
/// each title starts (a wide character counts twice). Checks the alignment on the way: the two
/// columns before the next title are blank, and a cell starts right under its title or, for the
/// titles in `right` (each as wide as its column), ends where its title does.
fn cells(header: &str, titles: &[&str], right: &[&str], line: &str) -> Vec<String> {
    let starts: Vec<usize> =
        titles.iter().map(|t| header.find(t).unwrap_or_else(|| panic!("no {t} in {header:?}"))).collect();
    let mut out = vec![String::new(); titles.len()];
    let mut col = 0;
    for c in line.chars() {
        let i = starts.iter().rposition(|s| *s <= col).unwrap_or(0);
        out[i].push(c);
        col += width(c.encode_utf8(&mut [0; 4]));
    }
    for (i, cell) in out.iter().enumerate() {
        let body = if i + 1 == titles.len() {
            cell.as_str()
        } else {
            assert!(cell.ends_with("  "), "{} runs into the next column in {line:?}", titles[i]);
            &cell[..cell.len() - 2]
        };
        if right.contains(&titles[i]) {
            assert!(!body.ends_with(' '), "{} is not right-aligned in {line:?}", titles[i]);
        } else {
            assert!(!body.starts_with(' '), "{} does not start under its title in {line:?}", titles[i]);
        }
    }
    out.iter().map(|c| c.trim().to_string()).collect()
}

/// Display width, worked out apart from the code under test for the characters these tests
/// use: CJK ideographs and kana take two columns, combining accents none, the rest one.
fn width(s: &str) -> usize {
    s.chars()
        .map(|c| match u32::from(c) {
            0x0300..=0x036F => 0,
            0x3000..=0x30FF | 0x4E00..=0x9FFF | 0xFF00..=0xFF60 => 2,
            _ => 1,
        })
        .sum()
}

/// The line of `text` whose first cell is `id`.
fn row<'a>(text: &'a str, id: &str) -> &'a str {
    text.lines().find(|l| l.split_whitespace().next() == Some(id)).unwrap_or_else(|| panic!("no row {id} in\n{text}"))
}

async fn api_json(addr: SocketAddr, path: &str) -> Value {
    let resp = reqwest::Client::new().get(format!("http://{addr}{path}")).bearer_auth(TOKEN).send().await;
    match resp {
        Ok(r) => r.json().await.unwrap_or_else(|e| panic!("{path} is not JSON: {e}")),
        Err(e) => panic!("{path}: {e}"),
    }
}

fn rep_set(id: &str, name: &str, email: &str, time_zone: &str, capacity: Option<u32>) -> ApiCall {
    ApiCall::Rep(RepCommand::Set {
        id: id.into(),
        name: Some(name.into()),
        email: Some(email.into()),
        time_zone: Some(time_zone.into()),
        capacity,
        no_capacity: false,
        active: None,
        days: None,
        start: None,
        end: None,
        any_time: false,
    })
}

#[tokio::test]
async fn rep_list_is_a_table_aligned_by_display_width_and_json_is_the_apis() {
    let (ports, addr) = serve().await;
    let admin = client(addr, TOKEN);
    let (saved, _) = shown(&admin, rep_set("zoe", "Zoë Martin", "zoe@acme.example", "Europe/Paris", Some(10))).await;
    assert_eq!(saved, "Rep zoe (Zoë Martin) is saved (routing version 1).\n");
    let (saved, _) = shown(&admin, rep_set("hanako", "山田 花子", "hanako@acme.example", "Asia/Tokyo", None)).await;
    assert_eq!(saved, "Rep hanako (山田 花子) is saved (routing version 2).\n");
    let ooo = ApiCall::Rep(RepCommand::Ooo {
        id: "hanako".into(),
        from: Some("2099-01-01".into()),
        until: Some("2099-01-10".into()),
        clear: false,
    });
    assert_eq!(
        shown(&admin, ooo).await.0,
        "Rep hanako (山田 花子) is out of office from 2099-01-01 00:00 UTC until 2099-01-10 00:00 UTC (routing version 3).\n"
    );
    for n in 1..=2 {
        let lead = fixtures::owned_by(fixtures::lead(n, &format!("lead{n}@example.com")), "zoe");
        assert!(ports.store.create_lead(&lead, &[]).await.is_ok());
    }

    let (text, hint) = shown(&admin, ApiCall::Rep(RepCommand::List)).await;
    assert_eq!(hint, None);
    let api = api_json(addr, "/admin/reps").await;
    let reps = api["reps"].as_array().cloned().unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let header = lines[0];
    let titles =
        ["ID", "NAME", "EMAIL", "TIME ZONE", "ACTIVE", "OUT OF OFFICE (UTC)", "CAPACITY", "OPEN LEADS", "TEAMS"];
    assert_eq!(header.split("  ").filter(|t| !t.is_empty()).map(str::trim).collect::<Vec<_>>(), titles, "{text}");
    // One row per rep, in the API's order, then the routing's fallback owner.
    assert_eq!(lines.len(), 1 + reps.len() + 2, "{text}");
    assert_eq!(lines[reps.len() + 2], "Fallback owner: desk. Routing version 3, saved 2026-03-02 10:00 UTC.");
    let right = ["CAPACITY", "OPEN LEADS"];
    for (rep, line) in reps.iter().zip(&lines[1..]) {
        let c = cells(header, &titles, &right, line);
        assert_eq!(c[0], rep["id"].as_str().unwrap_or_default(), "{text}");
        assert_eq!(c[1], rep["name"].as_str().unwrap_or_default());
        assert_eq!(c[2], rep["email"].as_str().unwrap_or_default());
        assert_eq!(c[3], rep["time_zone"].as_str().unwrap_or_default());
        assert_eq!(c[4], "yes");
        assert_eq!(c[7], rep["open_leads"].to_string());
    }
    let zoe = cells(header, &titles, &right, row(&text, "zoe"));
    assert_eq!(zoe[1..], ["Zoë Martin", "zoe@acme.example", "Europe/Paris", "yes", "—", "10", "2", "—"]);
    let hanako = cells(header, &titles, &right, row(&text, "hanako"));
    assert_eq!(hanako[1], "山田 花子");
    assert_eq!(hanako[5], "2099-01-01 00:00 → 2099-01-10 00:00");
    assert_eq!(hanako[6], "no limit");
    let anna = cells(header, &titles, &right, row(&text, "anna"));
    assert_eq!(anna[8], "emea");

    // --json prints exactly what the API answers.
    assert_eq!(run(&admin, ApiCall::Rep(RepCommand::List)).await, api);
}

/// Eight leads whose funnel is known: 8 captured, 6 valid, 4 MQL, 3 assigned, 3 SQL, 2 contacted, 1 won;
/// five from google, three without a source.
async fn funnel_leads(ports: &MemPorts) -> Vec<leadflow_core::model::Lead> {
    use leadflow_core::model::{Lifecycle, Validity};
    let mut leads = Vec::new();
    for n in 1..=8u64 {
        let mut lead = fixtures::lead(n, &format!("lead{n}@example.com"));
        lead.created_at = Utc.with_ymd_and_hms(2026, 3, 1, 9, n as u32, 0).single().unwrap_or_default();
        if n <= 5 {
            lead.attribution.first_touch.utm.source = Some("google".into());
        }
        if n > 6 {
            lead.validity = Validity::Invalid { reasons: Vec::new() };
        }
        if n <= 4 {
            // The third is scored as sales-qualified before a rep has worked it.
            lead.lifecycle = if n == 3 { Lifecycle::Sql } else { Lifecycle::Mql };
            lead.score = Some(score());
        }
        if n <= 3 {
            lead = fixtures::owned_by(lead, "anna");
        }
        lead.status = match n {
            1 => SalesStatus::Won,
            2 => SalesStatus::Contacted,
            _ => SalesStatus::New,
        };
        leads.push(lead);
    }
    leads[1].contact.first_name = Some("Zoë".into());
    leads[1].contact.last_name = Some("Çelik".into());
    leads[2].contact.first_name = Some("花子".into());
    leads[2].contact.last_name = Some("山田".into());
    leads[2].contact.company = Some("株式会社 とても長い会社名の例です ホールディングス".into());
    for lead in &leads {
        assert!(ports.store.create_lead(lead, &[]).await.is_ok());
    }
    leads
}

/// 62.5 points, grade B, from two rules.
fn score() -> leadflow_core::model::Score {
    use leadflow_core::model::{Grade, Score, ScoreReason, ScoreRuleKind};
    Score {
        total: 62.5,
        fit: 50.0,
        behaviour: 12.5,
        grade: Grade::B,
        reasons: vec![
            ScoreReason {
                rule: "senior-title".into(),
                kind: ScoreRuleKind::Fit,
                points: 50.0,
                explanation: "job title contains CTO".into(),
            },
            ScoreReason {
                rule: "opened".into(),
                kind: ScoreRuleKind::Behaviour,
                points: 12.5,
                explanation: "opened an email".into(),
            },
        ],
        computed_at: fixtures::t(0),
    }
}

#[tokio::test]
async fn lead_search_is_one_row_per_lead_with_the_next_page_as_a_hint() {
    let (ports, addr) = serve().await;
    let admin = client(addr, TOKEN);
    let leads = funnel_leads(&ports).await;
    let search = |limit: Option<u32>, cursor: Option<String>, q: Option<&str>| {
        let filters = FilterArgs { q: q.map(str::to_string), ..FilterArgs::default() };
        ApiCall::Lead(LeadCommand::Search { filters, limit, cursor })
    };

    let (text, hint) = shown(&admin, search(None, None, None)).await;
    assert_eq!(hint, None, "one page holds them all");
    let lines: Vec<&str> = text.lines().collect();
    let titles = ["ID", "NAME", "COMPANY", "STAGE", "GRADE", "SCORE", "OWNER", "STATUS", "CREATED (UTC)"];
    assert_eq!(lines[0].split("  ").filter(|t| !t.is_empty()).map(str::trim).collect::<Vec<_>>(), titles);
    assert_eq!(lines.len(), 1 + leads.len(), "{text}");
    let right = ["SCORE"];
    let first = cells(lines[0], &titles, &right, row(&text, &leads[0].id.to_string()));
    assert_eq!(
        first[1..],
        ["Ada Lovelace", "Analytical Engines", "mql", "B", "62.5", "anna", "won", "2026-03-01 09:01"]
    );
    let zoe = cells(lines[0], &titles, &right, row(&text, &leads[1].id.to_string()));
    assert_eq!(zoe[1], "Zoë Çelik");
    assert_eq!(zoe[7], "contacted");
    let hanako = cells(lines[0], &titles, &right, row(&text, &leads[2].id.to_string()));
    assert_eq!(hanako[1], "花子 山田");
    assert!(hanako[2].starts_with("株式会社") && hanako[2].ends_with('…') && width(&hanako[2]) <= 24, "{text}");
    let plain = cells(lines[0], &titles, &right, row(&text, &leads[5].id.to_string()));
    assert_eq!(plain[3..], ["lead", "—", "—", "—", "new", "2026-03-01 09:06"]);
    let invalid = cells(lines[0], &titles, &right, row(&text, &leads[7].id.to_string()));
    assert_eq!(invalid[7], "new, invalid");

    // A page at a time: the cursor to go on is a hint, and it goes on.
    let (page, hint) = shown(&admin, search(Some(3), None, None)).await;
    assert_eq!(page.lines().count(), 1 + 3, "{page}");
    let cursor = hint.as_deref().and_then(|h| h.strip_prefix("more: --cursor ")).map(str::to_string);
    assert!(cursor.is_some(), "{hint:?}");
    let (next, _) = shown(&admin, search(Some(3), cursor, None)).await;
    assert!(next.contains(&leads[3].id.to_string()) && !next.contains(&leads[0].id.to_string()), "{next}");

    let (none, hint) = shown(&admin, search(None, None, Some("nobody-by-that-name"))).await;
    assert_eq!((none.as_str(), hint), ("No leads match.\n", None));
}

#[tokio::test]
async fn lead_show_is_a_short_summary() {
    use leadflow_core::model::ActivityKind;
    let (ports, addr) = serve().await;
    let admin = client(addr, TOKEN);
    let mut lead = fixtures::owned_by(fixtures::lead(1, "ada@example.com"), "anna");
    lead.contact.phone = Some("+4930901820".into());
    lead.contact.job_title = Some("CTO".into());
    lead.lifecycle = leadflow_core::model::Lifecycle::Mql;
    lead.score = Some(score());
    let trail: Vec<_> = (0..12)
        .map(|i| {
            leadflow_app::activity(
                lead.id,
                format!("sent-{i}"),
                fixtures::t(100 + i),
                ActivityKind::EmailSent {
                    email: format!("drip-{i}"),
                    message_id: format!("m{i}"),
                    subject: format!("Hello {i}"),
                },
            )
        })
        .collect();
    assert!(ports.store.create_lead(&lead, &trail).await.is_ok());
    let e = fixtures::enrollment(1, "welcome", Some(fixtures::t(86_400)), EnrollmentState::Active);
    assert!(ports.store.enroll(&e, &[]).await.is_ok());
    let id = lead.id.to_string();

    let (text, _) = shown(&admin, ApiCall::Lead(LeadCommand::Show { id: id.clone() })).await;
    // The summary's first lines are labels and values, every value in the same column.
    let fields: Vec<(&str, &str)> =
        text.lines().take_while(|l| !l.is_empty()).map(|l| l.split_once(' ').unwrap_or((l, ""))).collect();
    let value_at: Vec<usize> =
        fields.iter().map(|(label, rest)| label.len() + 1 + rest.len() - rest.trim_start().len()).collect();
    assert!(value_at.iter().all(|c| *c == "Lifecycle  ".len()), "{text}");
    let field = |label: &str| {
        let value = fields.iter().find(|(l, _)| *l == label).map(|(_, v)| v.trim().to_string());
        value.unwrap_or_else(|| panic!("no {label} in\n{text}"))
    };
    assert!(text.starts_with(&format!("Lead       {id}\n")), "{text}");
    assert_eq!(field("Name"), "Ada Lovelace");
    assert_eq!(field("Email"), "ada@example.com");
    assert_eq!(field("Phone"), "+4930901820");
    assert_eq!(field("Company"), "Analytical Engines, CTO");
    assert_eq!(field("Status"), "new");
    assert_eq!(field("Lifecycle"), "mql");
    assert_eq!(field("Score"), "62.5 (grade B): fit 50, behaviour 12.5");
    assert!(field("Owner").starts_with("Anna Schmidt (anna), team emea; assigned "), "{text}");
    assert!(text.contains("\nWhy this score\n  POINTS  RULE          TYPE       BECAUSE\n"), "{text}");
    assert!(text.contains("\n     +50  senior-title  fit        job title contains CTO\n"), "{text}");
    assert!(text.contains("\n   +12.5  opened        behaviour  opened an email\n"), "{text}");
    assert!(text.contains("\nWhy anna\n  round robin\n"), "{text}");
    assert!(text.contains("\nNurture\n  welcome v1: active, step 1 due "), "{text}");
    assert!(text.contains("\nLast 10 of 12 activities (--json for all)\n"), "{text}");
    assert!(text.contains("  email sent: “Hello 11”\n") && !text.contains("“Hello 1”"), "the latest ten:\n{text}");
    assert!(!text.contains('{'), "no JSON in the summary:\n{text}");
}

#[tokio::test]
async fn the_funnel_shows_counts_and_conversion_overall_and_per_source() {
    let (ports, addr) = serve().await;
    let admin = client(addr, TOKEN);
    funnel_leads(&ports).await;
    let call = || ApiCall::Report(ReportCommand::Funnel { by: FunnelBy::Source, since: None, until: None });
    let (text, _) = shown(&admin, call()).await;
    let expected = "\
All leads, created any time: 8 leads
STAGE      LEADS  FROM PREVIOUS  FROM TOP
captured       8              —    100.0%
valid          6          75.0%     75.0%
MQL            4          66.7%     50.0%
assigned       3          75.0%     37.5%
SQL            3         100.0%     37.5%
contacted      2          66.7%     25.0%
won            1          50.0%     12.5%

Source (none): 3 leads
STAGE      LEADS  FROM PREVIOUS  FROM TOP
captured       3              —    100.0%
valid          1          33.3%     33.3%
MQL            0           0.0%      0.0%
assigned       0              —      0.0%
SQL            0              —      0.0%
contacted      0              —      0.0%
won            0              —      0.0%

Source google: 5 leads
STAGE      LEADS  FROM PREVIOUS  FROM TOP
captured       5              —    100.0%
valid          5         100.0%    100.0%
MQL            4          80.0%     80.0%
assigned       3          75.0%     60.0%
SQL            3         100.0%     60.0%
contacted      2          66.7%     40.0%
won            1          50.0%     20.0%
";
    assert_eq!(text, expected);
    assert_eq!(run(&admin, call()).await, api_json(addr, "/admin/reports/funnel?by=source").await);

    let by_week = ApiCall::Report(ReportCommand::Funnel { by: FunnelBy::Week, since: None, until: None });
    let (text, _) = shown(&admin, by_week).await;
    assert!(text.contains("\nWeek 2026-W09: 8 leads\n"), "{text}");
}

#[tokio::test]
async fn confirmations_are_one_clear_line() {
    let (ports, addr) = serve().await;
    let admin = client(addr, TOKEN);
    let leads = funnel_leads(&ports).await;
    let e = fixtures::enrollment(4, "welcome", Some(fixtures::t(86_400)), EnrollmentState::Active);
    assert!(ports.store.enroll(&e, &[]).await.is_ok());
    let id = leads[3].id.to_string();
    let mark = |status| ApiCall::Lead(LeadCommand::Mark { id: id.clone(), status, by: None, note: None });
    assert_eq!(
        shown(&admin, mark(MarkStatus::Lost)).await.0,
        format!("Lead {id} is now lost (was new); its nurture stopped (1 enrollment).\n")
    );
    assert_eq!(
        shown(&admin, mark(MarkStatus::Lost)).await.0,
        format!("Lead {id} was already lost: nothing changed.\n")
    );

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temp dir: {e}"));
    let file = dir.path().join("spring.yaml");
    let yaml = "id: spring\nname: Spring\nsteps:\n  - id: hello\n    subject: Hi\n    text: Hi\n    html: <p>Hi</p>\n";
    std::fs::write(&file, yaml).unwrap_or_else(|e| panic!("cannot write {}: {e}", file.display()));
    let apply = || ApiCall::Campaign(CampaignCommand::Apply { file: file.clone() });
    assert_eq!(shown(&admin, apply()).await.0, "Campaign spring is now version 1, active.\n");
    assert_eq!(shown(&admin, apply()).await.0, "Campaign spring is unchanged: still version 1, active.\n");
    let pause = ApiCall::Campaign(CampaignCommand::Pause { id: "spring".into() });
    assert_eq!(shown(&admin, pause).await.0, "Campaign spring is now version 2, paused.\n");

    let (list, _) = shown(&admin, ApiCall::Campaign(CampaignCommand::List)).await;
    let header = list.lines().next().unwrap_or_default();
    let titles = ["ID", "NAME", "STATUS", "VERSION", "STEPS", "EMAILS", "SCHEDULE (UTC)", "SAVED (UTC)"];
    let spring = cells(header, &titles, &["VERSION", "STEPS", "EMAILS"], row(&list, "spring"));
    assert_eq!(spring[..7], ["spring", "Spring", "paused", "2", "1", "1", "always"], "{list}");

    let (teams, _) = shown(&admin, ApiCall::Team(leadflow_infra::cli::TeamCommand::List)).await;
    let header = teams.lines().next().unwrap_or_default();
    let titles = ["ID", "NAME", "MEMBERS", "TAKES LEADS WHERE"];
    let emea = cells(header, &titles, &[], row(&teams, "emea"));
    assert_eq!(emea[1..], ["EMEA", "anna, ben", "country in DE, AT, CH, FR, GB"], "{teams}");
}
