//! Who may do what: roles, the principal behind a request, and the one authorisation function.
//!
//! Every GraphQL field and mutation names an [`Action`] in its guard, and [`authorise`] is the
//! only place that decides whether a principal may perform it.

use serde::{Deserialize, Serialize};

/// A role carried in a token's `roles` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Configures Junction and may do everything.
    Admin,
    /// Watches sync status, retries, pauses, approves and submits.
    Manager,
    /// Works cases day to day.
    Officer,
    /// A partner agency's user; sees only what a sharing agreement grants.
    Partner,
    /// A case-management system's service account.
    System,
    /// Reads everything, including the audit log, and changes nothing.
    Auditor,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Admin,
        Role::Manager,
        Role::Officer,
        Role::Partner,
        Role::System,
        Role::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        crate::wire_name::wire_name(&self)
    }

    pub fn parse(s: &str) -> Option<Self> {
        crate::wire_name::from_wire_name(s)
    }
}

/// Something a caller asks to do. Wire names are stable: they appear in audit records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    #[serde(rename = "self.read")]
    ReadSelf,
    #[serde(rename = "agencies.read")]
    ReadAgencies,
    #[serde(rename = "case_types.read")]
    ReadCaseTypes,
    #[serde(rename = "cases.read")]
    ReadCases,
    #[serde(rename = "cases.create")]
    CreateCase,
    #[serde(rename = "cases.change_status")]
    ChangeCaseStatus,
    #[serde(rename = "cases.add_note")]
    AddCaseNote,
    #[serde(rename = "audit.read")]
    ReadAuditLog,
    /// See deliveries, connectors and their health.
    #[serde(rename = "deliveries.read")]
    ReadDeliveries,
    /// Send a failed or dead delivery again.
    #[serde(rename = "deliveries.retry")]
    RetryDelivery,
    /// Say what became of a delivery whose outcome could not be proved: it arrived (with the
    /// back-end's reference), or send it again.
    #[serde(rename = "deliveries.resolve")]
    ResolveDelivery,
    /// Pause and resume deliveries to a connector or an agency.
    #[serde(rename = "deliveries.pause")]
    PauseDeliveries,
    /// Route a case again (after a category change) and resend it.
    #[serde(rename = "cases.reroute")]
    RerouteCase,
    /// See data sharing agreements (a partner sees only its own).
    #[serde(rename = "agreements.read")]
    ReadAgreements,
    /// Create, change, suspend and resume data sharing agreements.
    #[serde(rename = "agreements.manage")]
    ManageAgreements,
    /// Share a case with a partner, or withdraw a share.
    #[serde(rename = "cases.share")]
    ShareCases,
    /// See who was shown personal data: the disclosure log.
    #[serde(rename = "disclosures.read")]
    ReadDisclosures,
    /// See who a case is shared with.
    #[serde(rename = "shares.read")]
    ReadShares,
    /// Download cases as a file (CSV), through the same access and lens as reading them.
    #[serde(rename = "cases.export")]
    ExportCases,
    /// See and download the files that came with a case (photos may show people and cars).
    #[serde(rename = "attachments.read")]
    ReadAttachments,
    /// Run a schedule (an update poll, a feed, an import) now rather than at its due time.
    #[serde(rename = "schedules.run")]
    RunSchedule,
}

impl Action {
    pub const ALL: [Action; 21] = [
        Action::ReadSelf,
        Action::ReadAgencies,
        Action::ReadCaseTypes,
        Action::ReadCases,
        Action::CreateCase,
        Action::ChangeCaseStatus,
        Action::AddCaseNote,
        Action::ReadAuditLog,
        Action::ReadDeliveries,
        Action::RetryDelivery,
        Action::ResolveDelivery,
        Action::PauseDeliveries,
        Action::RerouteCase,
        Action::ReadAgreements,
        Action::ManageAgreements,
        Action::ShareCases,
        Action::ReadDisclosures,
        Action::ReadShares,
        Action::ExportCases,
        Action::ReadAttachments,
        Action::RunSchedule,
    ];

    pub fn as_str(self) -> &'static str {
        crate::wire_name::wire_name(&self)
    }
}

/// The authenticated caller behind one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// The token's `sub`.
    pub subject: String,
    /// The agency the caller acts for, if any.
    pub agency: Option<String>,
    pub roles: Vec<Role>,
}

impl Principal {
    /// The caller a token describes. A token that carries `partner` acts as a partner only,
    /// whatever other roles it carries: mixed tokens get the least privileged reading, so a
    /// partner can never be treated as staff by a role added beside its own.
    pub fn new(subject: String, agency: Option<String>, roles: Vec<Role>) -> Principal {
        let roles = if roles.contains(&Role::Partner) {
            vec![Role::Partner]
        } else {
            roles
        };
        Principal {
            subject,
            agency,
            roles,
        }
    }
}

/// Why an action was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("role(s) {roles} may not perform `{action}`")]
pub struct Denied {
    pub action: &'static str,
    pub roles: String,
}

/// The roles that may perform an action. Partners may read cases, but only those shared with
/// them and only as their agreements allow: [`crate::sharing::access`] decides that scope.
fn allowed(action: Action) -> &'static [Role] {
    use Role::*;
    match action {
        Action::ReadSelf => &[Admin, Manager, Officer, Partner, System, Auditor],
        Action::ReadAgencies | Action::ReadCaseTypes => {
            &[Admin, Manager, Officer, Partner, System, Auditor]
        }
        Action::ReadCases => &[Admin, Manager, Officer, Partner, System, Auditor],
        Action::CreateCase | Action::ChangeCaseStatus | Action::AddCaseNote => {
            &[Admin, Manager, Officer, System]
        }
        Action::ReadAuditLog => &[Admin, Auditor],
        Action::ReadDeliveries => &[Admin, Manager, Officer, System, Auditor],
        Action::RetryDelivery
        | Action::ResolveDelivery
        | Action::PauseDeliveries
        | Action::RunSchedule => &[Admin, Manager],
        Action::RerouteCase => &[Admin, Manager, Officer],
        Action::ReadAgreements => &[Admin, Manager, Officer, Partner, Auditor],
        Action::ManageAgreements => &[Admin],
        Action::ShareCases => &[Admin, Manager, Officer],
        Action::ReadDisclosures => &[Admin, Auditor],
        Action::ReadShares => &[Admin, Manager, Officer, System, Auditor],
        Action::ExportCases => &[Admin, Manager, Officer, Partner, Auditor],
        Action::ReadAttachments => &[Admin, Manager, Officer, System, Auditor],
    }
}

/// Decides whether `principal` may perform `action`: the one place that does.
pub fn authorise(principal: &Principal, action: Action) -> Result<(), Denied> {
    let permitted = allowed(action);
    if principal.roles.iter().any(|r| permitted.contains(r)) {
        Ok(())
    } else {
        let roles: Vec<&str> = principal.roles.iter().map(|r| r.as_str()).collect();
        Err(Denied {
            action: action.as_str(),
            roles: if roles.is_empty() {
                "(none)".into()
            } else {
                roles.join(", ")
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_carrying_partner_is_a_partner_whatever_else_it_carries() {
        let p = Principal::new(
            "p".into(),
            Some("police".into()),
            vec![Role::System, Role::Partner],
        );
        assert_eq!(p.roles, vec![Role::Partner]);
        let staff = Principal::new("s".into(), None, vec![Role::Officer, Role::Auditor]);
        assert_eq!(staff.roles, vec![Role::Officer, Role::Auditor]);
    }

    /// Role × action, written out in full: a change to the policy shows here in review.
    /// Columns: admin, manager, officer, partner, system, auditor.
    const TABLE: &[(Action, [bool; 6])] = &[
        (Action::ReadSelf, [true, true, true, true, true, true]),
        (Action::ReadAgencies, [true, true, true, true, true, true]),
        (Action::ReadCaseTypes, [true, true, true, true, true, true]),
        (Action::ReadCases, [true, true, true, true, true, true]),
        (Action::CreateCase, [true, true, true, false, true, false]),
        (
            Action::ChangeCaseStatus,
            [true, true, true, false, true, false],
        ),
        (Action::AddCaseNote, [true, true, true, false, true, false]),
        (
            Action::ReadAuditLog,
            [true, false, false, false, false, true],
        ),
        (
            Action::ReadDeliveries,
            [true, true, true, false, true, true],
        ),
        (
            Action::RetryDelivery,
            [true, true, false, false, false, false],
        ),
        (
            Action::ResolveDelivery,
            [true, true, false, false, false, false],
        ),
        (
            Action::PauseDeliveries,
            [true, true, false, false, false, false],
        ),
        (
            Action::RunSchedule,
            [true, true, false, false, false, false],
        ),
        (Action::RerouteCase, [true, true, true, false, false, false]),
        (
            Action::ReadAgreements,
            [true, true, true, true, false, true],
        ),
        (
            Action::ManageAgreements,
            [true, false, false, false, false, false],
        ),
        (Action::ShareCases, [true, true, true, false, false, false]),
        (
            Action::ReadDisclosures,
            [true, false, false, false, false, true],
        ),
        (Action::ReadShares, [true, true, true, false, true, true]),
        (Action::ExportCases, [true, true, true, true, false, true]),
        (
            Action::ReadAttachments,
            [true, true, true, false, true, true],
        ),
    ];

    fn principal(roles: Vec<Role>) -> Principal {
        Principal {
            subject: "t".into(),
            agency: None,
            roles,
        }
    }

    #[test]
    fn role_by_action_table() {
        assert_eq!(
            TABLE.len(),
            Action::ALL.len(),
            "every action must have a row"
        );
        for (action, row) in TABLE {
            for (role, expected) in Role::ALL.iter().zip(row) {
                let got = authorise(&principal(vec![*role]), *action).is_ok();
                assert_eq!(
                    got,
                    *expected,
                    "{} may {}? expected {expected}",
                    role.as_str(),
                    action.as_str()
                );
            }
        }
    }

    #[test]
    fn no_roles_means_nothing() {
        for action in Action::ALL {
            let denied = authorise(&principal(vec![]), action).unwrap_err();
            assert_eq!(denied.roles, "(none)");
        }
    }

    #[test]
    fn any_granting_role_suffices() {
        assert!(
            authorise(
                &principal(vec![Role::Partner, Role::Auditor]),
                Action::ReadAuditLog
            )
            .is_ok()
        );
    }
}
