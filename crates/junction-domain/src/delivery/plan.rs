//! What a route calls for: the deliveries a routed case gets, decided before anything is
//! stored. The case goes to the connector routing chose (by email to the agency's address when
//! the agency has no integration), a high-priority copy goes by email to the addresses a rule
//! named, and a case that nothing can carry gets a delivery that is dead from the start, saying
//! why, so it shows as a failure instead of vanishing.

use crate::route::{ConnectorSource, Route, SendMethods};

use super::DeliveryKind;

/// One delivery a route calls for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedDelivery {
    /// Empty when nothing can carry the case.
    pub connector: String,
    pub kind: DeliveryKind,
    /// Email recipients, for a delivery by email.
    pub to: Vec<String>,
    /// Set when the delivery cannot be carried at all: it is created dead, with this reason.
    pub dead: Option<String>,
}

/// The deliveries `route` calls for, given the send `methods` and the routed agency's email
/// address (if it has one).
pub fn plan(
    route: &Route,
    methods: &SendMethods,
    agency_email: Option<&str>,
) -> Vec<PlannedDelivery> {
    let mut planned = Vec::new();
    let by_email = |connector: &String| {
        route.connector_source == ConnectorSource::AgencyEmail
            || Some(connector) == methods.email_connector.as_ref()
    };
    match &route.connector {
        Some(connector) if by_email(connector) => {
            // With no agency address, a rule's or case type's email connector may still have
            // its own recipients; only the agency-email fallback has nowhere to go.
            let nowhere =
                agency_email.is_none() && route.connector_source == ConnectorSource::AgencyEmail;
            planned.push(PlannedDelivery {
                connector: connector.clone(),
                kind: DeliveryKind::Case,
                to: agency_email.map(str::to_string).into_iter().collect(),
                dead: nowhere.then(|| {
                    format!(
                        "agency `{}` has no integration and no email address",
                        route.agency
                    )
                }),
            });
        }
        Some(connector) => planned.push(PlannedDelivery {
            connector: connector.clone(),
            kind: DeliveryKind::Case,
            to: Vec::new(),
            dead: None,
        }),
        None => planned.push(PlannedDelivery {
            connector: String::new(),
            kind: DeliveryKind::Case,
            to: Vec::new(),
            dead: Some(format!(
                "agency `{}` has no integration and no email connector is configured",
                route.agency
            )),
        }),
    }
    if !route.also_email.is_empty()
        && let Some(email) = &methods.email_connector
    {
        planned.push(PlannedDelivery {
            connector: email.clone(),
            kind: DeliveryKind::AlsoEmail,
            to: route.also_email.clone(),
            dead: None,
        });
    }
    planned
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn route(connector: Option<&str>, source: ConnectorSource, also: &[&str]) -> Route {
        Route {
            agency: "highways".into(),
            connector: connector.map(str::to_string),
            connector_source: source,
            priority: None,
            team: None,
            extra: BTreeMap::new(),
            also_email: also.iter().map(|s| s.to_string()).collect(),
            rules: Vec::new(),
        }
    }

    fn methods(email: Option<&str>) -> SendMethods {
        SendMethods {
            email_connector: email.map(str::to_string),
            ..SendMethods::default()
        }
    }

    #[test]
    fn a_case_goes_to_its_connector_and_a_p1_copy_by_email() {
        let r = route(
            Some("backend"),
            ConnectorSource::Agency,
            &["p1@council.example"],
        );
        let planned = plan(&r, &methods(Some("smtp")), None);
        assert_eq!(
            planned,
            vec![
                PlannedDelivery {
                    connector: "backend".into(),
                    kind: DeliveryKind::Case,
                    to: vec![],
                    dead: None,
                },
                PlannedDelivery {
                    connector: "smtp".into(),
                    kind: DeliveryKind::AlsoEmail,
                    to: vec!["p1@council.example".into()],
                    dead: None,
                },
            ]
        );
        // No email connector: the copy cannot go, and is not planned.
        assert_eq!(plan(&r, &methods(None), None).len(), 1);
    }

    #[test]
    fn an_agency_without_integration_gets_email_or_a_dead_delivery_saying_why() {
        let r = route(Some("smtp"), ConnectorSource::AgencyEmail, &[]);
        let planned = plan(&r, &methods(Some("smtp")), Some("roads@council.example"));
        assert_eq!(planned[0].to, ["roads@council.example"]);
        assert_eq!(planned[0].dead, None);
        let nowhere = plan(&r, &methods(Some("smtp")), None);
        assert!(
            nowhere[0]
                .dead
                .as_deref()
                .unwrap()
                .contains("no email address")
        );
        // A rule that sends by the email connector with no agency address is not dead: the
        // connector may have recipients of its own.
        let rule = route(Some("smtp"), ConnectorSource::Rule, &[]);
        assert_eq!(plan(&rule, &methods(Some("smtp")), None)[0].dead, None);
        let none = route(None, ConnectorSource::None, &[]);
        let dead = plan(&none, &methods(None), None);
        assert_eq!(dead[0].connector, "");
        assert!(
            dead[0]
                .dead
                .as_deref()
                .unwrap()
                .contains("no email connector")
        );
    }
}
