use leadflow_core::normalize::*;
use proptest::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
static N: [AtomicUsize; 6] = [const { AtomicUsize::new(0) }; 6];
#[test]
fn zz_report() { std::thread::sleep(std::time::Duration::from_secs(8)); eprintln!("counts {:?}", N.iter().map(|a| a.load(Relaxed)).collect::<Vec<_>>()); }
proptest! {
    #![proptest_config(ProptestConfig { cases: 100000, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn phone_fuzz(raw in prop_oneof!["(tel:|\\+|00|011)?[0-9０-９٠-٩ ()./#*x;=:+a-zA-Z-]{0,40}", "(\\+[1-9][0-9]{0,2} ?|0|00)?[0-9]{2,4}([ .-]?[0-9]{2,4}){1,3}( ?(x|ext\\.?|#) ?[0-9]{1,5})?"], c in proptest::option::of(prop_oneof!["[A-Z]{2}", "(US|DE|GB|CH|FR|IN|BR|CN|JP|AU|IT|AR|MX|NZ|RU)"])) {
        N[0].fetch_add(1, Relaxed);
        if let Ok(e) = normalize_phone(&raw, c.as_deref()) {
            N[1].fetch_add(1, Relaxed);
            prop_assert_eq!(normalize_phone(&e, None), Ok(e.clone()));
            prop_assert_eq!(normalize_phone(&e, c.as_deref()), Ok(e.clone()));
        }
    }
    #[test]
    fn email_fuzz(local in "[A-Za-z0-9._%+'\"()<>\\[\\]@ -]{0,20}", domain in "[A-Za-z0-9.。．\\-_äöüßéÉİı\u{200b}\u{200c}\u{200d}\u{ad}\u{301}ﬁⅨ①\u{fe0f}]{0,30}") {
        let raw = format!("{local}@{domain}");
        N[2].fetch_add(1, Relaxed);
        if let Ok(first) = normalize_email(&raw) {
            N[3].fetch_add(1, Relaxed);
            prop_assert_eq!(normalize_email(&first.address), Ok(first.clone()));
        }
    }
    #[test]
    fn name_fuzz(raw in "[a \u{a0}\u{2000}\u{2001}\u{3000}\u{301}\u{308}\u{344}\u{f73}\u{1100}\u{1161}\u{11a8}eEİ\u{345}\u{399}]{0,20}") {
        N[4].fetch_add(1, Relaxed);
        if let Ok(Some(first)) = normalize_name("f", &raw) {
            N[5].fetch_add(1, Relaxed);
            prop_assert_eq!(normalize_name("f", &first), Ok(Some(first.clone())));
        }
    }
}
