//! What a back-end's status means here: each connector maps the status word and external
//! status code a back-end reports to a Junction status, or to "note only" (the update is kept
//! in the case's history and moves nothing).
//!
//! Back-ends speak their own dialects: `closed` with a code that says why, codes such as
//! `NCR1`..`NCR9` that share a meaning, words with spaces and capitals. Rules are tried in
//! order and the first that matches decides; a code pattern may end in `*`. With no rule, a
//! word that is a Junction status after normalising (lower case, spaces and hyphens as `_`)
//! is taken as that status, as FixMyStreet does with extended statuses; anything else gets the
//! map's default, which is "note only" unless configured.

use serde::{Deserialize, Serialize};

use crate::case::CaseStatus;

/// What an inbound update does to its case's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mapped {
    /// The case moves to this status (if the update is not older than the case's last change).
    Status(CaseStatus),
    /// The update is history only.
    NoteOnly,
}

/// Where a rule or the default sends an update: a Junction status, or `note`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Target(pub Mapped);

impl TryFrom<String> for Target {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s == "note" {
            return Ok(Target(Mapped::NoteOnly));
        }
        CaseStatus::parse(&s)
            .map(|st| Target(Mapped::Status(st)))
            .ok_or_else(|| {
                let names: Vec<&str> = CaseStatus::ALL.iter().map(|s| s.as_str()).collect();
                format!(
                    "`{s}` is neither `note` nor a status ({})",
                    names.join(", ")
                )
            })
    }
}

impl From<Target> for String {
    fn from(t: Target) -> String {
        match t.0 {
            Mapped::NoteOnly => "note".into(),
            Mapped::Status(s) => s.as_str().into(),
        }
    }
}

/// One rule: the back-end's status word and/or external code, and what they mean.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusRule {
    /// The back-end's status word, compared without regard to case, spaces or hyphens.
    #[serde(default)]
    pub status: Option<String>,
    /// The external status code: exact, or a prefix ending in `*`.
    #[serde(default)]
    pub code: Option<String>,
    pub to: Target,
}

/// A connector's map from what its back-end reports to what Junction does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusMap {
    #[serde(default)]
    pub rules: Vec<StatusRule>,
    /// For a word no rule matches and that is not a Junction status.
    #[serde(default = "note_only")]
    pub default: Target,
}

fn note_only() -> Target {
    Target(Mapped::NoteOnly)
}

impl Default for StatusMap {
    fn default() -> Self {
        StatusMap {
            rules: Vec::new(),
            default: note_only(),
        }
    }
}

/// Lower case with spaces and hyphens as `_`: `In Progress` and `in-progress` are
/// `in_progress`.
pub fn normalise(word: &str) -> String {
    word.trim()
        .chars()
        .map(|c| match c {
            ' ' | '-' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

fn code_matches(pattern: &str, code: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => code.starts_with(prefix),
        None => code == pattern,
    }
}

impl StatusRule {
    fn matches(&self, status: Option<&str>, code: Option<&str>) -> bool {
        let status_ok = match &self.status {
            None => true,
            Some(want) => status.is_some_and(|s| normalise(s) == normalise(want)),
        };
        let code_ok = match &self.code {
            None => true,
            Some(pattern) => code.is_some_and(|c| code_matches(pattern, c.trim())),
        };
        status_ok && code_ok
    }
}

impl StatusMap {
    /// What an update with this status word and external code does.
    pub fn map(&self, status: Option<&str>, code: Option<&str>) -> Mapped {
        let code = code.filter(|c| !c.trim().is_empty());
        if let Some(rule) = self.rules.iter().find(|r| r.matches(status, code)) {
            return rule.to.0;
        }
        match status.map(normalise) {
            // FixMyStreet's `open` and plain Open311's words are statuses here already.
            Some(word) if word == "unchanged" => Mapped::NoteOnly,
            Some(word) => CaseStatus::parse(&word).map_or(self.default.0, Mapped::Status),
            None => Mapped::NoteOnly,
        }
    }

    /// Problems with the map, each with the key it is under.
    pub fn check(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            if rule.status.is_none() && rule.code.is_none() {
                problems.push((
                    format!("rules[{i}]"),
                    "names neither `status` nor `code`, so it would match every update".into(),
                ));
            }
            if rule.code.as_deref().is_some_and(|c| c.trim().is_empty()) {
                problems.push((format!("rules[{i}].code"), "must not be empty".into()));
            }
            if rule
                .code
                .as_deref()
                .is_some_and(|c| c.trim_end_matches('*').contains('*'))
            {
                problems.push((
                    format!("rules[{i}].code"),
                    "`*` may only end a code pattern".into(),
                ));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(status: Option<&str>, code: Option<&str>, to: &str) -> StatusRule {
        StatusRule {
            status: status.map(str::to_string),
            code: code.map(str::to_string),
            to: Target::try_from(to.to_string()).unwrap(),
        }
    }

    #[test]
    fn rules_decide_in_order_then_known_words_then_the_default() {
        let map = StatusMap {
            rules: vec![
                rule(Some("closed"), Some("NCR*"), "not_councils_responsibility"),
                rule(None, Some("DUP"), "duplicate"),
                rule(Some("closed"), None, "fixed"),
                rule(Some("awaiting inspection"), None, "note"),
            ],
            default: Target(Mapped::Status(CaseStatus::InProgress)),
        };
        let m = |s, c| map.map(s, c);
        assert_eq!(
            m(Some("CLOSED"), Some("NCR4")),
            Mapped::Status(CaseStatus::NotCouncilsResponsibility)
        );
        assert_eq!(
            m(Some("open"), Some("DUP")),
            Mapped::Status(CaseStatus::Duplicate)
        );
        assert_eq!(m(Some("closed"), None), Mapped::Status(CaseStatus::Fixed));
        assert_eq!(
            m(Some("closed"), Some(" ")),
            Mapped::Status(CaseStatus::Fixed)
        );
        assert_eq!(m(Some("Awaiting-Inspection"), None), Mapped::NoteOnly);
        assert_eq!(
            m(Some("In Progress"), None),
            Mapped::Status(CaseStatus::InProgress)
        );
        assert_eq!(
            m(Some("action_scheduled"), Some("X")),
            Mapped::Status(CaseStatus::ActionScheduled)
        );
        assert_eq!(
            m(Some("with contractor"), None),
            Mapped::Status(CaseStatus::InProgress)
        );
        assert_eq!(m(Some("unchanged"), None), Mapped::NoteOnly);
        assert_eq!(m(None, None), Mapped::NoteOnly);
    }

    #[test]
    fn the_default_default_is_note_only() {
        let map = StatusMap::default();
        assert_eq!(map.map(Some("with contractor"), None), Mapped::NoteOnly);
        assert_eq!(
            map.map(Some("FIXED"), None),
            Mapped::Status(CaseStatus::Fixed)
        );
    }

    #[test]
    fn targets_read_and_write_as_words_and_bad_ones_say_why() {
        let t: Target = serde_json::from_str("\"note\"").unwrap();
        assert_eq!(t.0, Mapped::NoteOnly);
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"note\"");
        let err = serde_json::from_str::<Target>("\"mended\"").unwrap_err();
        assert!(
            err.to_string()
                .contains("`mended` is neither `note` nor a status")
        );
    }

    #[test]
    fn a_rule_that_matches_everything_or_a_misplaced_star_is_a_problem() {
        let map = StatusMap {
            rules: vec![rule(None, None, "fixed"), rule(None, Some("A*B"), "fixed")],
            default: note_only(),
        };
        let keys: Vec<String> = map.check().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["rules[0]", "rules[1].code"]);
    }
}
