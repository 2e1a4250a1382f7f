//! Sharing: tests of agreements, the lens and sharing rules, over the table of cases they decide.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Value, json};

use super::*;
use crate::auth::{Principal, Role};
use crate::case::{Case, CaseEvent, CaseEventKind, Location, Submitter};
use crate::case_type::{CaseType, Classification, Datatype, FieldDef};

fn t(h: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::hours(h)
}

fn agreement(id: &str) -> Agreement {
    Agreement {
        id: id.into(),
        jurisdiction_id: "b".into(),
        title: "t".into(),
        partner_agency_id: "police".into(),
        case_types: vec!["food".into()],
        purposes: vec!["crime_prevention".into()],
        lawful_basis: "Crime and Disorder Act 1998 s115".into(),
        ceiling: Classification::Official,
        fields: None,
        valid_from: t(0),
        valid_to: Some(t(10)),
        review_date: None,
        status: AgreementStatus::Active,
    }
}

fn field(code: &str, class: Classification) -> FieldDef {
    FieldDef {
        code: code.into(),
        description: code.into(),
        datatype: Datatype::String,
        required: false,
        order: 0,
        classification: class,
        values: vec![],
        datatype_description: None,
    }
}

fn food() -> CaseType {
    CaseType {
        jurisdiction_id: "b".into(),
        code: "food".into(),
        name: "Food".into(),
        description: String::new(),
        group: None,
        keywords: vec![],
        agency_id: "eh".into(),
        fields: vec![
            field("risk", Classification::Public),
            field("premises", Classification::Official),
            field("symptoms", Classification::Sensitive),
        ],
        active: true,
        published: true,
        max_description_chars: crate::case::DEFAULT_MAX_DESCRIPTION_CHARS,
        statuses: Default::default(),
    }
}

fn case() -> Case {
    Case {
        id: "c1".into(),
        reference: "1".into(),
        jurisdiction_id: "b".into(),
        case_type_code: "food".into(),
        agency_id: "eh".into(),
        status: crate::CaseStatus::Open,
        description: "ill after eating".into(),
        location: Location {
            lat: Some(51.0),
            long: Some(-1.0),
            uprn: None,
            address: Some("1 High St".into()),
        },
        submitter: Submitter {
            name: Some("A Person".into()),
            email: Some("a@example.org".into()),
            phone: None,
        },
        fields: [
            ("risk".to_string(), json!("high")),
            ("premises".to_string(), json!("Cafe")),
            ("symptoms".to_string(), json!("vomiting")),
        ]
        .into(),
        created_at: t(0),
        updated_at: t(0),
        status_at: None,
        version: 1,
        route: None,
        source_ref: None,
        media_urls: Vec::new(),
        created_by: "tester".into(),
    }
}

fn lens(a: Agreement) -> Lens {
    Lens::Partner {
        agreement: Arc::new(a),
        purpose: "crime_prevention".into(),
        agency: "police".into(),
        core: Arc::new(CoreClassification::default()),
        case_type: Some(Arc::new(food())),
    }
}

#[test]
fn redacted_copies_keep_only_what_shows() {
    let l = lens(agreement("a"));
    let r = l.redact(&case());
    assert_eq!(r.submitter, Submitter::default());
    assert_eq!(r.description, "ill after eating");
    assert!(r.fields.contains_key("premises") && !r.fields.contains_key("symptoms"));
    assert!(l.disclosed_in_full(&case()).is_empty());
    let personal = lens(Agreement {
        ceiling: Classification::Personal,
        ..agreement("a")
    });
    assert_eq!(
        personal.disclosed_in_full(&case()),
        vec!["submitter.email", "submitter.name"]
    );
}

#[test]
fn state_follows_status_and_dates() {
    let a = agreement("a");
    assert_eq!(a.state(t(-1)), AgreementState::Pending);
    assert_eq!(a.state(t(0)), AgreementState::Active);
    assert_eq!(a.state(t(10)), AgreementState::Expired);
    let s = Agreement {
        status: AgreementStatus::Suspended,
        ..a.clone()
    };
    assert_eq!(s.state(t(1)), AgreementState::Suspended);
}

#[test]
fn ceiling_and_allow_list_decide_what_shows() {
    let l = lens(agreement("a"));
    assert!(l.shows("reference"));
    assert!(l.shows("fields.risk"));
    assert!(l.shows("fields.premises"));
    assert!(!l.shows("fields.symptoms"));
    assert!(!l.shows("submitter.email"));
    assert!(!l.shows("fields.unknown"), "unknown fields are sensitive");
    assert_eq!(
        l.redacted(&case()),
        vec![
            "fields.symptoms",
            "submitter.email",
            "submitter.name",
            "submitter.phone"
        ]
    );
    let narrowed = lens(Agreement {
        fields: Some(vec!["fields.risk".into()]),
        ..agreement("a")
    });
    assert!(narrowed.shows("fields.risk"));
    assert!(!narrowed.shows("fields.premises"));
    assert!(!narrowed.shows("description"));
    assert!(narrowed.shows("status"), "the envelope always shows");
    assert_eq!(
        narrowed.fields(&case()).keys().collect::<Vec<_>>(),
        vec!["risk"]
    );
}

#[test]
fn disclosures_name_shown_personal_values_only() {
    let personal = lens(Agreement {
        ceiling: Classification::Personal,
        ..agreement("a")
    });
    let wanted: BTreeSet<String> = ["submitter.name", "submitter.phone", "fields", "description"]
        .map(String::from)
        .into();
    assert_eq!(personal.disclosed(&case(), &wanted), vec!["submitter.name"]);
    let official = lens(agreement("a"));
    assert!(official.disclosed(&case(), &wanted).is_empty());
    assert!(Lens::Full.disclosed(&case(), &wanted).is_empty());
}

fn principal(roles: Vec<Role>, agency: Option<&str>) -> Principal {
    Principal {
        subject: "s".into(),
        agency: agency.map(String::from),
        roles,
    }
}

#[test]
fn partner_access_needs_agency_purpose_and_active_agreement() {
    let list = vec![agreement("a")];
    let p = principal(vec![Role::Partner], Some("police"));
    assert!(matches!(
        access(&principal(vec![Role::Officer], None), None, &[], t(1)),
        Ok(Access::Full)
    ));
    assert_eq!(
        access(
            &principal(vec![Role::Partner], None),
            Some("x"),
            &list,
            t(1)
        )
        .unwrap_err(),
        ScopeError::NoAgency
    );
    assert_eq!(
        access(&p, None, &list, t(1)).unwrap_err(),
        ScopeError::PurposeRequired
    );
    assert_eq!(
        access(&p, Some("marketing"), &list, t(1)).unwrap_err(),
        ScopeError::PurposeNotGranted("marketing".into())
    );
    assert!(matches!(
        access(&p, Some("crime_prevention"), &list, t(11)),
        Err(ScopeError::PurposeNotGranted(_))
    ));
    let Ok(Access::Partner(scope)) = access(&p, Some("crime_prevention"), &list, t(1)) else {
        panic!("partner access expected");
    };
    let share = |agency: &str| Share {
        case_id: "c1".into(),
        agency_id: agency.into(),
        agreement_id: "a".into(),
        since: 0,
    };
    assert!(scope.agreement_for("food", &[share("police")]).is_some());
    assert!(scope.agreement_for("food", &[share("fire")]).is_none());
    assert!(scope.agreement_for("pothole", &[share("police")]).is_none());
    assert!(scope.agreement_for("food", &[]).is_none());
}

#[test]
fn filters_only_on_what_every_agreement_shows() {
    let Ok(Access::Partner(scope)) = access(
        &principal(vec![Role::Partner], Some("police")),
        Some("crime_prevention"),
        &[agreement("a")],
        t(1),
    ) else {
        panic!()
    };
    let core = CoreClassification::default();
    let types = |c: &str| (c == "food").then(food);
    assert!(
        scope
            .may_filter_on("fields.risk", None, &core, &types)
            .is_ok()
    );
    assert!(scope.may_filter_on("status", None, &core, &types).is_ok());
    let err = scope
        .may_filter_on("submitter.email", None, &core, &types)
        .unwrap_err();
    assert!(err.contains("submitter.email"), "{err}");
    assert!(!err.contains("a@example.org"));
}

#[test]
fn events_are_redacted_or_withheld() {
    let l = lens(Agreement {
        fields: Some(vec!["fields.risk".into()]),
        ..agreement("a")
    });
    let event = |kind, data| CaseEvent {
        id: 1,
        case_id: "c1".into(),
        kind,
        actor: "x".into(),
        at: t(0),
        data,
    };
    let (data, redacted) = l
        .event(&event(CaseEventKind::NoteAdded, json!({"note": "secret"})))
        .unwrap();
    assert_eq!(data["note"], Value::Null);
    assert_eq!(redacted, vec!["notes"]);
    assert!(
        l.event(&event(CaseEventKind::Delivered, json!({})))
            .is_none()
    );
    assert!(
        l.event(&event(CaseEventKind::Shared, json!({"agency": "fire"})))
            .is_none()
    );
    assert!(
        l.event(&event(CaseEventKind::Shared, json!({"agency": "police"})))
            .is_some()
    );
}

#[test]
fn overlapping_agreements_must_agree() {
    let a = agreement("a");
    let same = agreement("b");
    assert!(a.disagrees_with(&same).is_none());
    let higher = Agreement {
        ceiling: Classification::Personal,
        ..agreement("b")
    };
    let msg = a.disagrees_with(&higher).unwrap();
    assert!(msg.contains("ceiling"), "{msg}");
    let later = Agreement {
        valid_from: t(10),
        valid_to: None,
        ..higher.clone()
    };
    assert!(a.disagrees_with(&later).is_none(), "back to back is fine");
    let other_type = Agreement {
        case_types: vec!["pothole".into()],
        ..higher
    };
    assert!(a.disagrees_with(&other_type).is_none());
}

#[test]
fn core_classification_is_configurable_except_the_envelope() {
    let mut core = CoreClassification::default();
    assert!(core.set("status", Classification::Sensitive).is_err());
    assert!(core.set("nope", Classification::Public).is_err());
    core.set("description", Classification::Personal).unwrap();
    assert_eq!(core.of("description", None), Classification::Personal);
    assert_eq!(core.of("reference", None), Classification::Public);
}

#[test]
fn a_share_notice_goes_only_under_a_live_agreement_while_the_case_is_shared() {
    let a = agreement("dsa-1");
    let text = super::share_notice("42", "police", "dsa-1", Some(&a), true, t(5)).unwrap();
    assert!(
        text.contains("Case 42 has been shared with police"),
        "{text}"
    );
    assert!(text.contains("Crime and Disorder Act 1998 s115"), "{text}");
    let gone = super::share_notice("42", "police", "dsa-1", None, true, t(5)).unwrap_err();
    assert!(gone.contains("no longer exists"), "{gone}");
    let expired = super::share_notice("42", "police", "dsa-1", Some(&a), true, t(11)).unwrap_err();
    assert!(expired.contains("nothing sent"), "{expired}");
    let unshared = super::share_notice("42", "police", "dsa-1", Some(&a), false, t(5)).unwrap_err();
    assert!(unshared.contains("no longer shared"), "{unshared}");
}

#[test]
fn the_public_lens_shows_up_to_its_level_and_never_personal_data() {
    let public = |up_to| Lens::Public {
        up_to,
        core: Arc::new(CoreClassification::default()),
        case_type: Some(Arc::new(food())),
    };
    let anyone = public(Classification::Public).redact(&case());
    assert_eq!(anyone.description, "", "official by default");
    assert_eq!(anyone.location.address, None);
    assert_eq!(anyone.location.lat, None);
    assert_eq!(anyone.submitter, Submitter::default());
    assert_eq!(anyone.fields.keys().collect::<Vec<_>>(), vec!["risk"]);
    assert_eq!(anyone.agency_id, "eh", "the agency is public");

    let sender = public(Classification::Official).redact(&case());
    assert_eq!(sender.description, "ill after eating");
    assert_eq!(sender.location.address.as_deref(), Some("1 High St"));
    assert!(sender.fields.contains_key("premises"));
    // However high the level, personal and sensitive data stay hidden.
    let top = public(Classification::Sensitive);
    let all = top.redact(&case());
    assert_eq!(all.submitter, Submitter::default());
    assert!(!all.fields.contains_key("symptoms"));
    assert!(!top.shows("submitter.email"));
}

#[test]
fn redacted_lists_every_hidden_field_of_the_type_whatever_the_case_holds() {
    let l = lens(agreement("a"));
    let mut empty = case();
    empty.fields.clear();
    assert_eq!(l.redacted(&empty), l.redacted(&case()));
    assert!(l.redacted(&empty).contains(&"fields.symptoms".to_string()));
}

#[test]
fn a_share_goes_under_the_one_agreement_that_covers_it_or_says_which_field_is_wrong() {
    let food = agreement("a1");
    let mut other = agreement("a2");
    other.case_types = vec!["noise".into()];
    let mut lapsed = agreement("a3");
    lapsed.valid_to = Some(t(1));
    let all = vec![food, other, lapsed];
    let chosen = choose_agreement(&all, "police", "food", None, "ongoing inquiry", t(2)).unwrap();
    assert_eq!(chosen.id, "a1");
    let field_of =
        |r: Result<&Agreement, crate::ValidationErrors>| r.unwrap_err().0[0].field.clone();
    assert_eq!(
        field_of(choose_agreement(&all, "police", "food", None, " ", t(2))),
        "reason"
    );
    let long = "x".repeat(MAX_REASON_CHARS + 1);
    assert_eq!(
        field_of(choose_agreement(&all, "police", "food", None, &long, t(2))),
        "reason"
    );
    // The lapsed agreement covers food but is over; naming it is refused under `agreement`.
    assert_eq!(
        field_of(choose_agreement(
            &all,
            "police",
            "food",
            Some("a3"),
            "why",
            t(2)
        )),
        "agreement"
    );
    assert_eq!(
        field_of(choose_agreement(
            &all,
            "police",
            "parking",
            None,
            "why",
            t(2)
        )),
        "agency"
    );
    let twice = vec![agreement("a1"), agreement("a4")];
    assert_eq!(
        field_of(choose_agreement(
            &twice,
            "police",
            "food",
            None,
            "why",
            t(2)
        )),
        "agreement"
    );
    assert_eq!(
        choose_agreement(&twice, "police", "food", Some("a4"), "why", t(2))
            .unwrap()
            .id,
        "a4"
    );
}
