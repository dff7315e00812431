//! Double opt-in and repeat submissions, in the pure core: confirmation links, when an email is
//! due, what confirming records, and what a repeat submission may change.

mod common;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use common::{lead, lead_with, now};
use leadflow_core::config::Settings;
use leadflow_core::confirmation::{
    self, ConfirmLink, Due, LinkError, Outcome, Request, VALID_FOR, hold_consent, merge_repeat, standing,
};
use leadflow_core::model::{Activity, ActivityKind, Consent, Lead, LeadId, Validity};
use leadflow_core::ports::EmailCategory;
use leadflow_core::signing::SigningKeys;
use leadflow_core::{sales_link, unsubscribe};
use proptest::prelude::*;

const SECRET: &str = "confirmation-test-secret-of-some-length";

fn keys() -> SigningKeys {
    SigningKeys::single(SECRET)
}

fn settings(extra: &str) -> Settings {
    let text = format!(
        "sender = {{ name = \"Acme\", email = \"news@acme.example\" }}\npublic_url = \"https://leads.acme.example/\"\n\
         postal_address = \"1 Example Street\"\n{extra}"
    );
    let mut s: Settings = toml::from_str(&text).unwrap_or_else(|e| panic!("settings: {e}"));
    s.signing_keys = keys();
    s
}

fn link(expires_at: DateTime<Utc>) -> ConfirmLink {
    ConfirmLink { lead_id: lead().id, expires_at }
}

fn token(expires_at: DateTime<Utc>) -> String {
    confirmation::sign(&keys(), &link(expires_at)).unwrap_or_default()
}

fn entry(id: &str, at: DateTime<Utc>, kind: ActivityKind) -> Activity {
    Activity { id: id.into(), lead_id: lead().id, at, kind }
}

fn requested(at: DateTime<Utc>) -> Activity {
    entry(
        &format!("consent-requested-{}", at.timestamp()),
        at,
        ActivityKind::ConsentRequested {
            submission_id: LeadId::from_parts(at.timestamp_millis() as u64, 1),
            form: Some("newsletter".into()),
            purpose: "marketing".into(),
            wording: Some("Yes, send me the newsletter.".into()),
        },
    )
}

fn sent(at: DateTime<Utc>, requested_at: DateTime<Utc>) -> Activity {
    entry(
        &format!("confirmation-sent-{}", at.timestamp()),
        at,
        ActivityKind::ConfirmationSent {
            email: "confirm-x".into(),
            message_id: "m-1".into(),
            expires_at: confirmation::expiry_of(requested_at).unwrap_or_default(),
            form: Some("newsletter".into()),
            purpose: "marketing".into(),
            wording: Some("Yes, send me the newsletter.".into()),
        },
    )
}

/// A lead whose consent is awaited: none recorded.
fn unconsented() -> Lead {
    lead_with(|l| l.consent = None)
}

#[test]
fn a_link_verifies_until_it_expires_and_tells_its_lead() {
    let expires = DateTime::from_timestamp((now() + VALID_FOR).timestamp(), 0).unwrap_or_default();
    let t = token(expires);
    assert_eq!(confirmation::verify(&keys(), &t, now()), Ok(link(expires)));
    assert_eq!(confirmation::verify(&keys(), &t, expires), Err(LinkError::Expired));
    assert_eq!(
        confirmation::verify(&SigningKeys::single("another-secret-entirely-xxxxxxxxx"), &t, now()),
        Err(LinkError::BadSignature)
    );
    assert_eq!(confirmation::verify(&SigningKeys::default(), &t, now()), Err(LinkError::NoSecret));
    // A later expiry written into the link is a forgery, not a longer link.
    let (lead_part, rest) = t.split_once('.').unwrap_or_default();
    let (_, tail) = rest.split_once('.').unwrap_or_default();
    let stretched = format!("{lead_part}.{}.{tail}", expires.timestamp() + 86_400);
    assert_eq!(confirmation::verify(&keys(), &stretched, now()), Err(LinkError::BadSignature));
    // So is the same link made out for another lead.
    let other = format!("{}.{rest}", LeadId::from_parts(1_736_000_000_000, 43));
    assert_eq!(confirmation::verify(&keys(), &other, now()), Err(LinkError::BadSignature));
    for junk in ["", "x", "a.b.c.d", &format!("{t}.0"), &t.to_lowercase()] {
        assert!(confirmation::verify(&keys(), junk, now()).is_err(), "{junk:?}");
    }
}

#[test]
fn no_other_signed_link_passes_for_a_confirmation_nor_a_confirmation_for_them() {
    let expires = now() + Duration::days(3);
    let unsub = unsubscribe::sign(&keys(), lead().id).unwrap_or_default();
    let sales = sales_link::sign(
        &keys(),
        &sales_link::SalesLink {
            lead_id: lead().id,
            rep_id: "anna".into(),
            action: sales_link::SalesAction::Contacted,
            expires_at: expires,
        },
    )
    .unwrap_or_default();
    for t in [&unsub, &sales] {
        assert!(confirmation::verify(&keys(), t, now()).is_err(), "{t}");
    }
    let confirm = token(expires);
    assert!(unsubscribe::verify(&keys(), &confirm).is_err());
    assert!(sales_link::verify(&keys(), &confirm, now()).is_err());
}

proptest! {
    #[test]
    fn any_altered_character_is_refused(pos in 0usize..200, replacement in proptest::char::range('!', '~')) {
        let t = token(now() + Duration::days(1));
        let pos = pos % t.len();
        let mut altered: Vec<char> = t.chars().collect();
        prop_assume!(altered[pos] != replacement);
        altered[pos] = replacement;
        let altered: String = altered.into_iter().collect();
        // ULIDs read either case: an altered letter's case may spell the same id, which the MAC
        // (over the text as written) still refuses.
        prop_assert!(confirmation::verify(&keys(), &altered, now()).is_err(), "{altered}");
    }
}

#[test]
fn consent_ticked_on_a_double_opt_in_form_waits_for_the_person() {
    let submission = LeadId::from_parts(1_736_000_000_500, 7);
    // No [forms] entry for the lead's form: double opt-in is on.
    let mut held = lead();
    let entry = hold_consent(&mut held, &settings(""), submission);
    assert_eq!(held.consent, None, "nothing recorded as consent yet");
    let Some(Activity { kind: ActivityKind::ConsentRequested { purpose, wording, form, .. }, id, .. }) = entry else {
        panic!("a consent_requested entry: {entry:?}")
    };
    assert_eq!(
        (purpose.as_str(), wording.as_deref(), form.as_deref()),
        ("marketing", Some("Send me news"), Some("demo-request"))
    );
    assert_eq!(id, format!("consent-requested-{submission}"));

    // A form that turns it off records consent as it came.
    let mut single = lead();
    let off = settings("[forms.demo-request]\ndouble_opt_in = false\n");
    assert_eq!(hold_consent(&mut single, &off, submission), None);
    assert_eq!(single.consent, lead().consent);
    // Declined consent is recorded as declined, and asks for nothing.
    let mut declined = lead_with(|l| l.consent.iter_mut().for_each(|c| c.given = false));
    assert_eq!(hold_consent(&mut declined, &settings(""), submission), None);
    assert!(declined.consent.as_ref().is_some_and(|c| !c.given));
}

#[test]
fn one_email_per_request_while_its_link_works() {
    let asked = now() - Duration::hours(1);
    let l = unconsented();
    let first = standing(&l, &[requested(asked)], now());
    assert!(first.awaiting);
    let due = first.due.unwrap_or_else(|| panic!("an email is due"));
    assert_eq!(due.key, format!("confirm-{}", l.id));
    assert_eq!(due.request.wording.as_deref(), Some("Yes, send me the newsletter."));

    // Sent: nothing more is due, however often the form is sent again while the link works.
    let trail = [requested(asked), sent(now(), asked), requested(now() + Duration::days(2))];
    let later = standing(&l, &trail, now() + Duration::days(3));
    assert!(later.awaiting, "still no consent: no campaign");
    assert_eq!(later.due, None);

    // The link expired: nothing until the person asks again; then one new email, named after the
    // send before it so that every worker names the same one.
    let expired = now() + VALID_FOR + Duration::days(1);
    assert_eq!(standing(&l, &trail[..2], expired).due, None);
    let again = [requested(asked), sent(now(), asked), requested(expired)];
    let renewed = standing(&l, &again, expired + Duration::minutes(1)).due.map(|d| d.key);
    assert_eq!(renewed, Some(format!("confirm-{}-{}", l.id, now().timestamp_millis())));

    // Consent given, nothing asked, an address gone or invalid: no email.
    assert_eq!(standing(&lead(), &[requested(asked)], now()), Default::default());
    assert_eq!(standing(&l, &[], now()), Default::default());
    let erased = lead_with(|x| {
        x.consent = None;
        x.contact.email.clear();
    });
    assert_eq!(standing(&erased, &[requested(asked)], now()).due, None);
    let invalid = lead_with(|x| {
        x.consent = None;
        x.validity = Validity::Invalid { reasons: Vec::new() };
    });
    assert_eq!(standing(&invalid, &[requested(asked)], now()).due, None);
    // A request whose link would be dead on arrival gets none.
    assert_eq!(standing(&l, &[requested(asked)], asked + VALID_FOR).due, None);
}

#[test]
fn confirming_records_what_the_email_asked_and_when() {
    let asked = now() - Duration::hours(1);
    let expires = confirmation::expiry_of(asked).unwrap_or_default();
    let l = unconsented();
    let trail = [requested(asked), sent(now(), asked)];
    let at = now() + Duration::hours(5);
    let Outcome::Confirm { lead: confirmed, entry } = confirmation::confirm(&l, &trail, &link(expires), at) else {
        panic!("the link confirms")
    };
    assert_eq!(
        confirmed.consent,
        Some(Consent {
            given: true,
            purpose: "marketing".into(),
            wording: Some("Yes, send me the newsletter.".into()),
            at,
            source: "newsletter".into(),
        })
    );
    assert_eq!(entry.kind.name(), "consent_confirmed");
    assert_eq!(entry.at, at);
    assert_eq!(confirmation::confirm(&confirmed, &trail, &link(expires), at), Outcome::Already);
    // A link (validly signed) for a send that is not on the trail confirms nothing.
    assert_eq!(confirmation::confirm(&l, &trail, &link(expires + Duration::seconds(1)), at), Outcome::Unknown);
    assert_eq!(confirmation::confirm(&l, &trail[..1], &link(expires), at), Outcome::Unknown);
}

#[test]
fn the_email_carries_the_link_and_nothing_the_submitter_typed() {
    let spam = "Win a prize at evil.example";
    let l = lead_with(|x| {
        x.consent = None;
        x.contact.first_name = Some(spam.into());
        x.contact.company = Some(spam.into());
    });
    let asked = now();
    let due = Due {
        key: format!("confirm-{}", l.id),
        request: Request { at: asked, form: Some(spam.into()), purpose: spam.into(), wording: Some(spam.into()) },
    };
    let (email, expires) = confirmation::email(&l, &due, &settings("")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(Some(expires), confirmation::expiry_of(asked));
    assert_eq!(email.category, EmailCategory::Transactional);
    assert_eq!(email.key, due.key);
    assert_eq!(email.to.name, None);
    assert_eq!(email.to.email, l.contact.email);
    for part in [&email.subject, &email.text, &email.html] {
        assert!(!part.contains("evil.example"), "{part}");
    }
    let t = confirmation::sign(&keys(), &ConfirmLink { lead_id: l.id, expires_at: expires }).unwrap_or_default();
    let url = format!("https://leads.acme.example/confirm/{t}");
    assert!(email.text.contains(&url), "{}", email.text);
    assert!(email.html.contains(&format!("<a ses:no-track href=\"{url}\"")), "{}", email.html);
    assert!(email.headers.is_empty(), "no unsubscribe headers on a transactional email");
}

fn arb_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of("[a-zA-Z +]{0,12}")
}

proptest! {
    #[test]
    fn a_repeat_never_changes_who_the_lead_is(
        names in (arb_text(), arb_text(), arb_text(), arb_text()),
        place in (arb_text(), arb_text(), arb_text()),
        consent in proptest::option::of(any::<bool>()),
        existing_consent in proptest::option::of(any::<bool>()),
        custom in proptest::collection::btree_map("[a-z]{1,4}", "[a-z0-9]{0,4}", 0..5),
    ) {
        let existing = lead_with(|l| {
            if let Some(given) = existing_consent {
                l.consent.iter_mut().for_each(|c| c.given = given);
            } else {
                l.consent = None;
            }
        });
        let submission = LeadId::from_parts(1_736_500_000_000, 9);
        let later = now() + Duration::days(1);
        let incoming = lead_with(|l| {
            l.id = submission;
            l.created_at = later;
            l.contact.first_name = names.0.clone();
            l.contact.last_name = names.1.clone();
            l.contact.company = names.2.clone();
            l.contact.job_title = names.3.clone();
            l.contact.phone = place.0.clone();
            l.contact.country = place.1.clone();
            l.contact.time_zone = place.2.clone();
            l.custom = custom.clone();
            l.consent = consent.map(|given| Consent { given, purpose: "marketing".into(), wording: None, at: later, source: "pricing".into() });
            l.attribution.last_touch.form = Some("pricing".into());
        });
        let (merged, trail) = merge_repeat(&existing, &incoming, submission, later);
        prop_assert_eq!(&merged.contact, &existing.contact);
        prop_assert_eq!(&merged.custom, &existing.custom);
        prop_assert_eq!(&merged.consent, &existing.consent);
        prop_assert_eq!(&merged.score, &existing.score);
        prop_assert_eq!(merged.submissions, existing.submissions + 1);
        prop_assert_eq!(merged.attribution.last_touch.form.as_deref(), Some("pricing"));
        prop_assert_eq!(&merged.attribution.first_touch, &existing.attribution.first_touch);

        // Everything it would have changed is on the trail, and nothing else.
        let held: BTreeMap<String, String> = trail
            .iter()
            .find_map(|a| match &a.kind { ActivityKind::ChangesHeld { changes, .. } => Some(changes.clone()), _ => None })
            .unwrap_or_default();
        let c = &existing.contact;
        let pairs = [
            ("first_name", &c.first_name, &names.0), ("last_name", &c.last_name, &names.1),
            ("company", &c.company, &names.2), ("job_title", &c.job_title, &names.3),
            ("phone", &c.phone, &place.0), ("country", &c.country, &place.1), ("time_zone", &c.time_zone, &place.2),
        ];
        for (field, before, after) in pairs {
            let differs = after.is_some() && after != before;
            prop_assert_eq!(held.get(field), if differs { after.as_ref() } else { None }, "{}", field);
        }
        for (k, v) in &custom {
            let differs = existing.custom.get(k) != Some(v);
            prop_assert_eq!(held.get(&format!("custom.{k}")), if differs { Some(v) } else { None });
        }
        let given_before = existing_consent == Some(true);
        let asks = trail.iter().any(|a| a.kind.name() == "consent_requested");
        prop_assert_eq!(asks, consent == Some(true) && !given_before);
        prop_assert_eq!(held.get("consent").map(String::as_str), (consent == Some(false) && given_before).then_some("no"));
    }
}
