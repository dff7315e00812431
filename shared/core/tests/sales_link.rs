//! The assignment email's one-click action links: a signed link names its lead, rep, action and
//! expiry, and no change to any of them verifies.

use chrono::{DateTime, Duration, TimeZone, Utc};
use leadflow_core::model::{LeadId, SalesStatus};
use leadflow_core::sales_link::{LinkError, SalesAction, SalesLink, sign, verify};
use proptest::prelude::*;

const SECRET: &str = "a-test-secret-that-is-long-enough";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).single().unwrap_or_default()
}

fn lead_id() -> impl Strategy<Value = LeadId> {
    (any::<u64>(), any::<u128>()).prop_map(|(ms, r)| LeadId::from_parts(ms & ((1 << 48) - 1), r & ((1 << 80) - 1)))
}

fn link() -> impl Strategy<Value = SalesLink> {
    (lead_id(), "[a-z][a-z0-9_-]{0,20}", any::<bool>(), 1i64..10_000_000).prop_map(
        |(lead_id, rep_id, contacted, secs)| SalesLink {
            lead_id,
            rep_id,
            action: if contacted { SalesAction::Contacted } else { SalesAction::NotAFit },
            expires_at: now() + Duration::seconds(secs),
        },
    )
}

proptest! {
    #[test]
    fn a_signed_link_verifies_as_itself_until_it_expires(l in link()) {
        let token = sign(&SECRET.into(), &l).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(verify(&SECRET.into(), &token, now()), Ok(l.clone()));
        prop_assert_eq!(verify(&SECRET.into(), &token, l.expires_at), Err(LinkError::Expired));
        prop_assert_eq!(verify(&"another-secret-entirely-of-length".into(), &token, now()), Err(LinkError::BadSignature));
    }

    #[test]
    fn no_single_change_to_a_token_verifies(l in link(), at in any::<prop::sample::Index>(), to in "[a-z0-9.-]") {
        let token = sign(&SECRET.into(), &l).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let i = at.index(token.len());
        let mut changed = token.clone();
        changed.replace_range(i..=i, &to);
        prop_assume!(changed != token);
        prop_assert!(verify(&SECRET.into(), &changed, now()).is_err(), "{} verified", changed);
    }
}

#[test]
fn a_link_for_one_lead_rep_or_action_is_refused_for_another() {
    let l = SalesLink {
        lead_id: LeadId::from_parts(1, 2),
        rep_id: "anna".into(),
        action: SalesAction::Contacted,
        expires_at: now() + Duration::days(7),
    };
    let token = sign(&SECRET.into(), &l).unwrap_or_default();
    for (from, to) in [(".anna.", ".ben."), (".contacted.", ".not-a-fit.")] {
        assert_eq!(verify(&SECRET.into(), &token.replace(from, to), now()), Err(LinkError::BadSignature), "{to}");
    }
    let later = (l.expires_at + Duration::days(30)).timestamp().to_string();
    let extended = token.replace(&l.expires_at.timestamp().to_string(), &later);
    assert_eq!(
        verify(&SECRET.into(), &extended, now()),
        Err(LinkError::BadSignature),
        "the expiry cannot be pushed back"
    );
    assert_eq!(SalesAction::NotAFit.status(), SalesStatus::Lost);
    assert_eq!(SalesAction::Contacted.status(), SalesStatus::Contacted);
}

#[test]
fn without_a_secret_nothing_is_signed_or_verified() {
    let l = SalesLink {
        lead_id: LeadId::from_parts(1, 2),
        rep_id: "anna".into(),
        action: SalesAction::Contacted,
        expires_at: now() + Duration::days(7),
    };
    assert_eq!(sign(&"".into(), &l), Err(LinkError::NoSecret));
    let token = sign(&SECRET.into(), &l).unwrap_or_default();
    assert_eq!(verify(&"".into(), &token, now()), Err(LinkError::NoSecret));
    let odd = SalesLink { rep_id: "an.na".into(), ..l };
    assert_eq!(sign(&SECRET.into(), &odd), Err(LinkError::Malformed), "a rep id that would break the token's shape");
}

#[test]
fn deadlines_read_in_words_in_the_reps_zone() {
    use leadflow_core::local_time::{in_words, time_left};
    assert_eq!(in_words(now(), "Europe/Berlin"), "Monday 2 March 2026, 11:00 CET");
    assert_eq!(in_words(now(), "America/New_York"), "Monday 2 March 2026, 05:00 EST");
    assert_eq!(in_words(now(), "Not/AZone"), "Monday 2 March 2026, 10:00 UTC");
    assert_eq!(time_left(now() + Duration::minutes(192), now()), "3 h 12 min left");
    assert_eq!(time_left(now() + Duration::hours(52), now()), "2 days 4 h left");
    assert_eq!(time_left(now() + Duration::hours(24), now()), "1 day left");
    assert_eq!(time_left(now() - Duration::minutes(20), now()), "overdue by 20 min");
    assert_eq!(time_left(now(), now()), "0 min left");
}
