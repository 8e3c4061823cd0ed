//! Helpers for native unit tests of policies: a policy runs on initguard's own parsed request,
//! with settings read as the host hands them over.

use serde_json::Value;

use crate::{Error, Outcome, PatchOp, Policy, Request, Tree};

/// Evaluates `P` on a CREATE of `object` with `settings`, as initguard would.
pub fn evaluate<P: Policy>(object: Value, settings: Value) -> Result<Outcome, Error> {
    let request = initguard_core::Request::create(object);
    evaluate_request::<P>(&request, &settings)
}

/// Evaluates `P` on any request (an UPDATE, a review from the apiserver).
pub fn evaluate_request<P: Policy>(
    request: &initguard_core::Request,
    settings: &Value,
) -> Result<Outcome, Error> {
    let settings = self::settings::<P>(settings)?;
    P::evaluate(&Request::native(request), &settings)
}

/// Reads `settings` as `validate-settings` does at load.
pub fn settings<P: Policy>(settings: &Value) -> Result<P::Settings, Error> {
    crate::parse_settings::<P>(&Tree::from(settings))
}

/// `object` with `patch` applied, as the host applies a mutating policy's outcome.
pub fn apply(object: &Value, patch: &[PatchOp]) -> Result<Value, Error> {
    let patch = PatchOp::to_patch(patch.to_vec()).map_err(|e| Error::new(e.to_string()))?;
    let mut patched = object.clone();
    json_patch::patch(&mut patched, &patch.0).map_err(|e| Error::new(e.to_string()))?;
    Ok(patched)
}
