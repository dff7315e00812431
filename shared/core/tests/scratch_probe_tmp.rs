#[test]
fn probe() {
    for raw in ["+7 812 315 1234", "+7 495 123 4567", "+39 06 6982 0000", "0039 06 6982 0000", "+36 1 234 5678", "011 36 1 234 5678", "+33 1 23 45 67 89", "+353 1 234 5678", "06 6982 0000", "0669820000"] {
        let mut line = format!("{raw:20}");
        for c in [None, Some("DE"), Some("US"), Some("RU"), Some("IT"), Some("ES"), Some("HU"), Some("EC"), Some("GB")] {
            let r = leadflow_core::normalize::normalize_phone(raw, c);
            line += &format!(" {}:{}", c.unwrap_or("--"), r.unwrap_or("NO".into()));
        }
        eprintln!("{line}");
    }
}
