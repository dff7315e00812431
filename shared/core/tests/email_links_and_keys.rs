//! Issue 9: the unsubscribe link is left out of SES click tracking and a click on it scores
//! nothing (finding 9); the assignment email's key names the assignment, not only the rep
//! (finding 11).

mod common;

use chrono::Duration;
use common::{assignment, lead, now};
use leadflow_core::campaign::Campaign;
use leadflow_core::config::{CompiledConfig, ConfigSources, Settings};
use leadflow_core::email::{NO_TRACK, untrack_links_to};
use leadflow_core::model::{Activity, ActivityKind};
use leadflow_core::scoring::{BehaviourRule, ScoringRules, Thresholds, is_unsubscribe_click, is_unsubscribe_link};
use leadflow_core::unsubscribe;
use proptest::prelude::*;

const SECRET: &str = "a-secret-only-the-deployment-knows";

fn settings() -> Settings {
    toml::from_str(
        r#"
sender = { name = "Acme", email = "news@acme.example" }
public_url = "https://leads.acme.example/"
postal_address = "Acme Inc., 1 Example Street, Springfield"
"#,
    )
    .unwrap_or_else(|e| panic!("settings: {e}"))
}

/// The lead's unsubscribe link as nurture writes it.
fn unsubscribe_url() -> String {
    let token = unsubscribe::sign(&SECRET.into(), lead().id).unwrap_or_else(|e| panic!("{e}"));
    format!("https://leads.acme.example/u/{token}")
}

/// A step whose body links to the site twice and, as a template may, to the unsubscribe link.
const NEWSLETTER: &str = r#"
id: news
name: News
entry: { lifecycle: lead }
steps:
  - id: hello
    subject: "News"
    text: "News"
    html: >-
      <p><a href="https://www.acme.example/pricing?utm_source=leadflow">Pricing</a></p>
      <p><A class="quiet" HREF='https://www.acme.example/demo'>Book a demo</A></p>
      <p>Had enough? <a class="small" href="{{ unsubscribe_url }}">Stop these emails</a></p>
"#;

/// The opening `<a …>` tags of `html`.
fn anchors(html: &str) -> Vec<&str> {
    let re = regex::Regex::new(r"(?i)<a\s[^>]*>").unwrap_or_else(|e| panic!("{e}"));
    re.find_iter(html).map(|m| m.as_str()).collect()
}

#[test]
fn the_drip_html_leaves_the_unsubscribe_links_untracked_and_every_other_link_tracked() {
    let campaign = Campaign::parse(NEWSLETTER, "yaml").and_then(|c| c.compile()).unwrap_or_else(|e| panic!("{e}"));
    let url = unsubscribe_url();
    let email = campaign.render(&lead(), 0, &settings(), &url).unwrap_or_else(|e| panic!("{e}"));
    let tags = anchors(&email.html);
    assert_eq!(tags.len(), 4, "pricing, demo, the body's and the footer's unsubscribe: {}", email.html);
    for tag in &tags {
        let to_unsubscribe = tag.contains("/u/") || tag.contains("&#x2f;u&#x2f;");
        assert_eq!(tag.contains(NO_TRACK), to_unsubscribe, "{tag}");
    }
    assert_eq!(email.html.matches(NO_TRACK).count(), 2, "{}", email.html);
    assert!(
        email.html.contains(&format!("<a {NO_TRACK} href=\"{url}\">Unsubscribe</a>")),
        "the footer: {}",
        email.html
    );
    assert!(email.html.contains(&format!("<a {NO_TRACK} class=\"small\" href=")), "the body's: {}", email.html);
    assert!(
        email.html.contains("<A class=\"quiet\" HREF='https://www.acme.example/demo'>"),
        "as written: {}",
        email.html
    );
    // The text part and the one-click header keep the plain link.
    assert!(email.text.contains(&format!("Unsubscribe: {url}")) && !email.text.contains(NO_TRACK));
}

#[test]
fn only_anchors_whose_href_is_the_link_are_marked() {
    let url = "https://l.example/u/01J.abc";
    let cases = [
        // (input, marked)
        (format!("<a href=\"{url}\">x</a>"), true),
        (format!("<a href='{url}'>x</a>"), true),
        (format!("<a href={url}>x</a>"), true),
        (format!("<a\n  title=\"a > b\"\n  href=\" {url} \">x</a>"), true),
        ("<a href=\"https:&#x2f;&#x2f;l.example&#x2f;u&#x2f;01J.abc\">x</a>".to_string(), true),
        (format!("<a href=\"{url}?x=1\">x</a>"), false),
        (format!("<a data-href=\"{url}\" href=\"https://l.example/\">x</a>"), false),
        (format!("<abbr title=\"{url}\">x</abbr>"), false),
        (format!("<a>{url}</a>"), false),
        (format!("<p>{url}</p>"), false),
    ];
    for (html, marked) in &cases {
        let out = untrack_links_to(html, url);
        assert_eq!(out.contains(NO_TRACK), *marked, "{html} → {out}");
        assert_eq!(out.replace(&format!(" {NO_TRACK}"), ""), *html, "nothing else changes: {out}");
    }
    // Marked once, however often it is run.
    let once = untrack_links_to(&format!("<a href=\"{url}\">x</a>"), url);
    assert_eq!(untrack_links_to(&once, url), once);
    // A tag cut off at the end of the text, and text that is not ASCII, are left as they are.
    for html in [format!("é<a href=\"{url}"), "<a ".to_string(), "<a href='".to_string(), "ü<a ü=ü>".to_string()] {
        assert_eq!(untrack_links_to(&html, url).replace(&format!(" {NO_TRACK}"), ""), html);
    }
}

proptest! {
    /// Whatever the template wrote, the only change is the attribute, and it never panics.
    #[test]
    fn marking_only_ever_inserts_the_attribute(parts in prop::collection::vec(prop::sample::select(vec![
        "<a ", "<A\t", "<a", "<abbr ", "href=", "HREF = ", "\"", "'", "https://l.example/u/t.1", "&#x2f;",
        ">", "</a>", "x", "é", "東", "<", "/", "=", " ", "\n", "&amp;",
    ]), 0..40)) {
        let html: String = parts.concat();
        let out = untrack_links_to(&html, "https://l.example/u/t.1");
        prop_assert_eq!(out.replace(&format!(" {NO_TRACK}"), ""), html);
    }
}

// ---- scoring -----------------------------------------------------------------------------------

fn clicks_rule() -> leadflow_core::scoring::CompiledScoring {
    ScoringRules {
        thresholds: Thresholds { mql: 40.0, sql: 80.0 },
        grades: Vec::new(),
        fit: Vec::new(),
        behaviour: vec![BehaviourRule {
            id: "clicks".into(),
            description: "Clicked a link".into(),
            activity: "email_click".into(),
            points: 10.0,
            half_life_days: 7.0,
            max_points: None,
        }],
    }
    .compile()
    .unwrap_or_else(|e| panic!("{e}"))
}

fn click(n: u32, url: &str) -> Activity {
    Activity {
        id: format!("click-{n}"),
        lead_id: lead().id,
        at: now() - Duration::minutes(i64::from(n)),
        kind: ActivityKind::EmailClicked { message_id: format!("m{n}"), email: None, url: Some(url.into()) },
    }
}

#[test]
fn a_click_on_the_unsubscribe_link_scores_nothing_and_another_click_still_does() {
    let scoring = clicks_rule();
    let unsubscribe = click(1, &unsubscribe_url());
    let pricing = click(2, "https://www.acme.example/pricing");
    assert_eq!(scoring.score(&lead(), std::slice::from_ref(&unsubscribe), now()).behaviour, 0.0);
    let both = scoring.score(&lead(), &[unsubscribe, pricing.clone()], now());
    let alone = scoring.score(&lead(), &[pricing], now());
    assert!(both.behaviour > 9.9, "{both:?}");
    assert_eq!(both.reasons, alone.reasons, "the reason counts one click: {:?}", both.reasons);
}

#[test]
fn unsubscribe_links_are_known_by_their_path_and_token_on_any_host() {
    let token = unsubscribe::sign(&SECRET.into(), lead().id).unwrap_or_else(|e| panic!("{e}"));
    for url in [
        format!("https://leads.acme.example/u/{token}"),
        format!("https://old-name.example/prod/u/{token}"),
        format!("http://127.0.0.1:8080/u/{token}?from=email#top"),
        format!("  leads.acme.example/u/{token} "),
        format!("https://leads.acme.example/u/{}", legacy_form(&token)),
    ] {
        assert!(is_unsubscribe_link(&url), "{url}");
    }
    for url in [
        "https://www.acme.example/pricing".to_string(),
        "https://www.acme.example/u/pricing".into(),
        "https://www.acme.example/u/file.pdf".into(),
        "https://leads.acme.example/u/preview-no-op".into(),
        format!("https://leads.acme.example/u/{token}/more"),
        format!("https://leads.acme.example/x/{token}"),
        format!("https://leads.acme.example/?u/{token}"),
        format!("https://leads.acme.example/u/{}", token.replacen(".0.", ".a b.", 1)),
        String::new(),
    ] {
        assert!(!is_unsubscribe_link(&url), "{url}");
    }
    let kind = |url: Option<&str>| ActivityKind::EmailClicked {
        message_id: "m".into(),
        email: None,
        url: url.map(str::to_string),
    };
    assert!(is_unsubscribe_click(&kind(Some(&format!("https://l.example/u/{token}")))));
    assert!(!is_unsubscribe_click(&kind(None)), "a click without its link still counts");
    assert!(!is_unsubscribe_click(&ActivityKind::EmailOpened { message_id: "m".into(), email: None }));
}

// ---- the assignment email's key ---------------------------------------------------------------

#[test]
fn the_assignment_email_key_names_the_assignment() {
    let sources = ConfigSources {
        settings: r#"
sender = { name = "Acme", email = "news@acme.example" }
public_url = "https://leads.acme.example/"
"#
        .into(),
        scoring: "thresholds = { mql = 40, sql = 80 }".into(),
        routing: r#"
fallback_owner = "anna"
[[reps]]
id = "anna"
name = "Anna Schmidt"
email = "anna@acme.example"
"#
        .into(),
        campaigns: Vec::new(),
        assignment_subject: "New lead: {{ lead.name }}".into(),
        assignment_text: "{{ lead_url }}".into(),
        assignment_html: "<a href=\"{{ lead_url }}\">Open</a>".into(),
        reader: Default::default(),
    };
    let cfg = CompiledConfig::compile(&sources).unwrap_or_else(|e| panic!("{e}"));
    let rep = cfg.routing.rep("anna").cloned().unwrap_or_else(|| panic!("a rep"));
    let first = assignment(&rep.id);
    let mut later = first.clone();
    later.assigned_at += Duration::hours(9);
    let key = |a| cfg.templates.assignment_email(&lead(), &rep, a, &cfg.settings).map(|e| e.key).ok();
    let (k1, k1_again, k2) = (key(&first), key(&first), key(&later));
    assert!(k1.is_some() && k1 == k1_again, "a redelivery of one assignment renders the same key: {k1:?}");
    assert_ne!(k1, k2, "the same rep, assigned again later, gets another email");
    let prefix = format!("assignment-{}-{}-", lead().id, rep.id);
    assert!(k2.as_ref().is_some_and(|k| k.starts_with(&prefix)), "{k2:?}");
}

/// A token as links were signed before key ids: `<lead>.<MAC>`, the MAC the same as today's
/// under the same secret.
fn legacy_form(token: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    format!("{}.{}", parts[0], parts[parts.len() - 1])
}

#[test]
fn unsubscribe_links_keep_working_across_a_key_rotation_and_from_before_key_ids() {
    let long = |c: char| c.to_string().repeat(40);
    let before = leadflow_core::signing::SigningKeys::single(long('a'));
    let token = unsubscribe::sign(&before, lead().id).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(token.split('.').nth(1), Some("0"), "{token}");
    let rotated = leadflow_core::signing::SigningKeys::from_json(&format!(
        r#"{{"current":"1","0":"{}","1":"{}"}}"#,
        long('a'),
        long('b')
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(unsubscribe::verify(&rotated, &token), Ok(lead().id));
    assert_eq!(unsubscribe::verify(&rotated, &legacy_form(&token)), Ok(lead().id), "a link from before key ids");
    let new = unsubscribe::sign(&rotated, lead().id).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(new.split('.').nth(1), Some("1"), "new links name the new key: {new}");
    assert_eq!(unsubscribe::verify(&before, &new), Err(unsubscribe::TokenError::BadSignature));
    let retired = leadflow_core::signing::SigningKeys::single(long('b'));
    assert_eq!(
        unsubscribe::verify(&retired, &token),
        Err(unsubscribe::TokenError::BadSignature),
        "a key removed from the ring no longer signs anything valid"
    );
}

/// Every kind of signed link is read only as it was written: its tag in uppercase is refused, so
/// no second text stands for the same link.
#[test]
fn a_signed_link_with_its_tag_in_uppercase_is_refused_whatever_its_kind() {
    use leadflow_core::model::LeadId;
    use leadflow_core::signing::SigningKeys;
    use leadflow_core::{confirmation, sales_link};
    let keys = SigningKeys::single(SECRET);
    let lead_id = LeadId::from_parts(1_700_000_000_000, 7);
    let upper_tag = |token: &str| {
        let (rest, tag) = token.rsplit_once('.').unwrap_or_else(|| panic!("a tag: {token}"));
        format!("{rest}.{}", tag.to_ascii_uppercase())
    };

    let token = unsubscribe::sign(&keys, lead_id).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(unsubscribe::verify(&keys, &token).ok(), Some(lead_id));
    assert!(unsubscribe::verify(&keys, &upper_tag(&token)).is_err());

    let confirm = confirmation::ConfirmLink { lead_id, expires_at: now() + Duration::days(7) };
    let token = confirmation::sign(&keys, &confirm).unwrap_or_else(|e| panic!("{e}"));
    assert!(confirmation::verify(&keys, &token, now()).is_ok());
    assert_eq!(confirmation::verify(&keys, &upper_tag(&token), now()), Err(confirmation::LinkError::Malformed));

    let sales = sales_link::SalesLink {
        lead_id,
        rep_id: "rep-1".into(),
        action: sales_link::SalesAction::Contacted,
        expires_at: now() + Duration::days(7),
    };
    let token = sales_link::sign(&keys, &sales).unwrap_or_else(|e| panic!("{e}"));
    assert!(sales_link::verify(&keys, &token, now()).is_ok());
    assert_eq!(sales_link::verify(&keys, &upper_tag(&token), now()), Err(sales_link::LinkError::Malformed));
}
