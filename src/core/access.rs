//! Who is asking and what they may see: roles, and the department scope every read is filtered by.
//!
//! Architecture Invariant: pages, the JSON API and exports all take a [`Viewer`] and filter by
//! its [`Scope`] in the query itself; nothing loads another department's rows and hides them
//! afterwards. A department user asking for another department's VM gets "not found", the same
//! answer as for a VM that does not exist, so ids of other departments do not leak.

use std::fmt;
use std::str::FromStr;

use crate::core::domain::DepartmentId;

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Center staff: everything, including accounts.
    Admin,
    /// Center staff: every department's data and every action except managing accounts.
    Operator,
    /// A department's own staff: their department's data; confirm deployment, request release,
    /// contest a notice.
    Department,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Department => "department",
        }
    }

    /// Center staff (admin or operator).
    pub fn is_staff(self) -> bool {
        matches!(self, Role::Admin | Role::Operator)
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "operator" => Ok(Role::Operator),
            "department" => Ok(Role::Department),
            other => Err(format!(
                "unknown role {other:?}: use admin, operator or department"
            )),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The rows a viewer may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every department (center staff).
    All,
    /// One department only.
    Department(DepartmentId),
}

impl Scope {
    /// The department filter for a query: `None` means no filter.
    pub fn department(&self) -> Option<&str> {
        match self {
            Scope::All => None,
            Scope::Department(d) => Some(d.as_str()),
        }
    }

    /// Whether rows of `department` are visible.
    pub fn allows(&self, department: &str) -> bool {
        self.department().is_none_or(|d| d == department)
    }
}

/// The signed-in account behind a request (session cookie or API token).
#[derive(Debug, Clone)]
pub struct Viewer {
    pub user_id: i64,
    pub username: String,
    pub role: Role,
    pub scope: Scope,
    /// The session's CSRF token, which every form must echo; `None` for API tokens (no cookies,
    /// so no cross-site forgery).
    pub csrf: Option<String>,
}

impl Viewer {
    pub fn is_staff(&self) -> bool {
        self.role.is_staff()
    }

    /// Someone at the daemon's own machine with its database, using the CLI: center staff with
    /// every right, audited as `cli:NAME` (the operating-system user).
    pub fn local_operator(os_user: &str) -> Viewer {
        Viewer {
            user_id: 0,
            username: format!("cli:{os_user}"),
            role: Role::Admin,
            scope: Scope::All,
            csrf: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_scopes_filter() {
        assert_eq!("operator".parse::<Role>(), Ok(Role::Operator));
        assert!("root".parse::<Role>().is_err());
        assert!(Role::Admin.is_staff() && !Role::Department.is_staff());
        let health = Scope::Department(DepartmentId::try_from("health").expect("id"));
        assert!(health.allows("health") && !health.allows("edu"));
        assert!(Scope::All.allows("edu"));
        assert_eq!(health.department(), Some("health"));
        assert_eq!(Scope::All.department(), None);
    }
}
