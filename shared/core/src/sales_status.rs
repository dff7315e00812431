//! What sales says happened to a lead, as a rule: its names, and which changes are allowed.

use crate::model::SalesStatus;

impl SalesStatus {
    pub const ALL: [SalesStatus; 4] = [SalesStatus::New, SalesStatus::Contacted, SalesStatus::Won, SalesStatus::Lost];

    /// The status's name everywhere it is written: the API, the stores, the trail's keys.
    pub fn as_str(self) -> &'static str {
        match self {
            SalesStatus::New => "new",
            SalesStatus::Contacted => "contacted",
            SalesStatus::Won => "won",
            SalesStatus::Lost => "lost",
        }
    }

    /// The status named `name` ([`SalesStatus::as_str`]).
    pub fn parse(name: &str) -> Option<SalesStatus> {
        SalesStatus::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether a lead may go from this status to `to`, and if not, why. Staying is always
    /// allowed (marking twice is harmless); otherwise a lead only moves forward: new → contacted
    /// → won or lost, and between won and lost (a correction), never back to new or contacted.
    pub fn may_become(self, to: SalesStatus) -> Result<(), &'static str> {
        use SalesStatus::*;
        match (self, to) {
            _ if self == to => Ok(()),
            (_, New) => Err("a lead never goes back to new; its SLA and routing would start again"),
            (Won | Lost, Contacted) => Err("a closed lead stays closed; mark it won or lost instead"),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_is_read_back_from_its_name() {
        for s in SalesStatus::ALL {
            assert_eq!(SalesStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).ok(), Some(serde_json::Value::from(s.as_str())), "the API's spelling");
        }
        assert_eq!(SalesStatus::parse("Won"), None);
    }

    #[test]
    fn a_lead_moves_forward_only() {
        use SalesStatus::*;
        let allowed: Vec<(SalesStatus, SalesStatus)> = SalesStatus::ALL
            .into_iter()
            .flat_map(|from| SalesStatus::ALL.into_iter().map(move |to| (from, to)))
            .filter(|(from, to)| from != to && from.may_become(*to).is_ok())
            .collect();
        assert_eq!(
            allowed,
            [(New, Contacted), (New, Won), (New, Lost), (Contacted, Won), (Contacted, Lost), (Won, Lost), (Lost, Won)]
        );
    }
}
