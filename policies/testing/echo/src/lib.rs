//! Reports everything the request views show it, as warnings: the host's `review` resource and
//! the SDK's native backend must show a policy the same request, which the host's tests check
//! by running this policy both ways.

use initguard_policy::{Error, Outcome, Policy, Request, Violation, export_policy};

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Labels and annotations to look up.
    #[serde(default)]
    pub keys: Vec<String>,
    /// JSON pointers to read of the object and the old object.
    #[serde(default)]
    pub pointers: Vec<String>,
}

pub struct Echo;

impl Policy for Echo {
    type Settings = Settings;

    fn evaluate(request: &Request<'_>, settings: &Settings) -> Result<Outcome, Error> {
        let kind = request.kind();
        let user = request.user();
        let mut seen = vec![
            format!("uid {}", request.uid()),
            format!("kind {}/{}/{}", kind.group, kind.version, kind.kind),
            format!("operation {:?}", request.operation()),
            format!("namespace {:?}", request.namespace()),
            format!("name {}", request.name()),
            format!("user {} {} {:?}", user.username, user.uid, user.groups),
            format!("dry-run {}", request.dry_run()),
            format!("pod spec {:?}", request.pod_spec_path()),
        ];
        for key in &settings.keys {
            seen.push(format!("label {key} {:?}", request.label(key)));
            seen.push(format!("annotation {key} {:?}", request.annotation(key)));
        }
        for pointer in &settings.pointers {
            seen.push(format!("object {pointer} {:?}", request.object(pointer)));
            seen.push(format!(
                "old object {pointer} {:?}",
                request.old_object(pointer)
            ));
        }
        match request.containers() {
            Ok(containers) => seen.extend(containers.iter().map(|c| format!("{c:?}"))),
            Err(error) => seen.push(format!("containers: {error}")),
        }
        let warnings = seen
            .into_iter()
            .map(|what| Violation::object("ECHO", what))
            .collect();
        Ok(Outcome::default().and_warnings(warnings))
    }
}

export_policy!(Echo);
