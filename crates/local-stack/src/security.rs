//! The security plugin's role mappings (`_plugins/_security/api/rolesmapping`) and the FGAC check
//! that snapshot actions need `manage_snapshots` or `all_access`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::errors::ApiError;

pub(crate) const MANAGE_SNAPSHOTS: &str = "manage_snapshots";
pub(crate) const ALL_ACCESS: &str = "all_access";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct RoleMapping {
    #[serde(default)]
    pub backend_roles: Vec<String>,
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub and_backend_roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl RoleMapping {
    fn includes(&self, principal: &Principal) -> bool {
        self.users.contains(&principal.name)
            || principal
                .backend_roles
                .iter()
                .any(|role| self.backend_roles.contains(role))
    }

    pub fn to_api(&self) -> Value {
        let mut value = serde_json::to_value(self).expect("plain struct");
        value["reserved"] = json!(false);
        value["hidden"] = json!(false);
        value
    }
}

/// The authenticated caller as FGAC sees it: an IAM role's ARN is both user name and backend role.
#[derive(Debug, Clone)]
pub(crate) struct Principal {
    pub name: String,
    pub backend_roles: Vec<String>,
}

impl Principal {
    pub fn from_arn(arn: &str) -> Self {
        let backend_roles = if arn.contains(":role/") {
            vec![arn.to_owned()]
        } else {
            Vec::new()
        };
        Principal {
            name: arn.to_owned(),
            backend_roles,
        }
    }

    pub fn internal_user(name: &str) -> Self {
        Principal {
            name: name.to_owned(),
            backend_roles: Vec::new(),
        }
    }
}

/// `security_exception` unless the principal is mapped to a role that grants `action`.
pub(crate) fn authorize(
    mappings: &BTreeMap<String, RoleMapping>,
    principal: &Principal,
    action: &str,
) -> Result<(), ApiError> {
    let allowed = [MANAGE_SNAPSHOTS, ALL_ACCESS]
        .iter()
        .filter_map(|role| mappings.get(*role))
        .any(|mapping| mapping.includes(principal));
    if allowed {
        return Ok(());
    }
    Err(ApiError::opensearch(
        403,
        "security_exception",
        format!(
            "no permissions for [{action}] and User [name={}, backend_roles=[{}], requestedTenant=null]",
            principal.name,
            principal.backend_roles.join(", ")
        ),
    ))
}

/// `GET _plugins/_security/authinfo`: who the caller is and the security roles mapped to it, as
/// the security plugin answers any authenticated caller (mapped or not).
pub(crate) fn auth_info(mappings: &BTreeMap<String, RoleMapping>, principal: &Principal) -> Value {
    let roles: Vec<&String> = mappings
        .iter()
        .filter(|(_, mapping)| mapping.includes(principal))
        .map(|(role, _)| role)
        .collect();
    json!({
        "user": format!(
            "User [name={}, backend_roles=[{}], requestedTenant=null]",
            principal.name,
            principal.backend_roles.join(", ")
        ),
        "user_name": principal.name,
        "user_requested_tenant": null,
        "backend_roles": principal.backend_roles,
        "custom_attribute_names": [],
        "roles": roles,
        "tenants": {},
        "principal": null,
        "peer_certificates": "0",
        "sso_logout_url": null
    })
}

/// Response bodies of the security REST API (`{"status":"OK","message":..}`).
pub(crate) fn status_body(status: &str, message: &str) -> Value {
    json!({"status": status, "message": message})
}

/// Applies an RFC 6902 patch (the operations the security API accepts: add, replace, remove) to
/// one role mapping, addressed as `/{field}` or `/{role}/{field}` when patching all mappings.
pub(crate) fn patch_mapping(mapping: &mut RoleMapping, operations: &[Value]) -> Result<(), String> {
    let mut document = serde_json::to_value(&*mapping).map_err(|error| error.to_string())?;
    for operation in operations {
        let op = operation["op"].as_str().ok_or("missing op")?;
        let path = operation["path"].as_str().ok_or("missing path")?;
        let field = path.trim_start_matches('/');
        match op {
            // `/backend_roles/-` appends one value to the list, keeping the others.
            "add" if field.ends_with("/-") => {
                let list = field.trim_end_matches("/-");
                match &mut document[list] {
                    Value::Array(values) => values.push(operation["value"].clone()),
                    _ => return Err(format!("[{list}] is not a list")),
                }
            }
            "add" | "replace" => {
                document[field] = operation["value"].clone();
            }
            "remove" => {
                document
                    .as_object_mut()
                    .ok_or("not an object")?
                    .remove(field);
            }
            other => return Err(format!("unsupported patch operation [{other}]")),
        }
    }
    *mapping = serde_json::from_value(document).map_err(|error| error.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unmapped_role_gets_the_security_plugin_message() {
        let principal = Principal::from_arn("arn:aws:iam::123456789012:role/x");
        let error =
            authorize(&BTreeMap::new(), &principal, "cluster:admin/repository/put").unwrap_err();
        assert_eq!(error.status, 403);
        assert_eq!(
            error.body["error"]["reason"],
            "no permissions for [cluster:admin/repository/put] and User [name=arn:aws:iam::123456789012:role/x, backend_roles=[arn:aws:iam::123456789012:role/x], requestedTenant=null]"
        );
        let mut mappings = BTreeMap::new();
        mappings.insert(
            MANAGE_SNAPSHOTS.to_owned(),
            RoleMapping {
                backend_roles: vec!["arn:aws:iam::123456789012:role/x".to_owned()],
                ..RoleMapping::default()
            },
        );
        authorize(&mappings, &principal, "cluster:admin/repository/put").unwrap();
    }

    #[test]
    fn patch_replaces_backend_roles() {
        let mut mapping = RoleMapping::default();
        patch_mapping(
            &mut mapping,
            &[json!({"op": "add", "path": "/backend_roles", "value": ["a"]})],
        )
        .unwrap();
        assert_eq!(mapping.backend_roles, vec!["a"]);
        patch_mapping(
            &mut mapping,
            &[json!({"op": "remove", "path": "/backend_roles"})],
        )
        .unwrap();
        assert!(mapping.backend_roles.is_empty());
    }

    #[test]
    fn patch_appends_to_a_list_and_authinfo_names_the_mapped_roles() {
        let principal = Principal::from_arn("arn:aws:iam::123456789012:role/x");
        let mut mappings = BTreeMap::new();
        mappings.insert(
            MANAGE_SNAPSHOTS.to_owned(),
            RoleMapping {
                backend_roles: vec!["other".to_owned()],
                ..RoleMapping::default()
            },
        );
        assert_eq!(auth_info(&mappings, &principal)["roles"], json!([]));
        let mapping = mappings.get_mut(MANAGE_SNAPSHOTS).unwrap();
        patch_mapping(
            mapping,
            &[json!({"op": "add", "path": "/backend_roles/-", "value": principal.name})],
        )
        .unwrap();
        assert_eq!(mapping.backend_roles, vec!["other", &principal.name]);
        let info = auth_info(&mappings, &principal);
        assert_eq!(info["roles"], json!([MANAGE_SNAPSHOTS]));
        assert_eq!(info["backend_roles"], json!([principal.name]));
    }
}
