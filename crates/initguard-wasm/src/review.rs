//! The `request` interface: the guest's view of the request under review, answered from what
//! the host has parsed once for every policy of the request, and the outcome it returns.

use initguard_core::operation::PatchOp;
use initguard_core::{Mutation, Outcome, PolicyError, Request, Violation};
use wasmtime::component::Resource;

use crate::bindings::initguard::policy::request::{
    ContainerTable, GroupVersionKind, Host, HostReview, Operation, UserInfo,
};
use crate::bindings::initguard::policy::types::{Finding, Outcome as WitOutcome, PatchOp as WitOp};
use crate::{HostState, MAX_OUTCOME_BYTES, Reviewed};

impl HostState {
    fn request(&self, review: &Resource<Reviewed>) -> wasmtime::Result<&Request> {
        Ok(&self.table.get(review)?.0)
    }
}

impl Host for HostState {}

impl HostReview for HostState {
    fn uid(&mut self, review: Resource<Reviewed>) -> wasmtime::Result<String> {
        Ok(self.request(&review)?.facts.uid.clone())
    }

    fn kind(&mut self, review: Resource<Reviewed>) -> wasmtime::Result<GroupVersionKind> {
        let kind = &self.request(&review)?.facts.kind;
        Ok(GroupVersionKind {
            group: kind.group.clone(),
            version: kind.version.clone(),
            kind: kind.kind.clone(),
        })
    }

    fn operation(&mut self, review: Resource<Reviewed>) -> wasmtime::Result<Operation> {
        use initguard_core::request::Operation as Op;
        Ok(match self.request(&review)?.facts.operation {
            Op::Create => Operation::Create,
            Op::Update => Operation::Update,
            Op::Delete => Operation::Delete,
            Op::Connect => Operation::Connect,
        })
    }

    fn namespace(&mut self, review: Resource<Reviewed>) -> wasmtime::Result<Option<String>> {
        Ok(self.request(&review)?.facts.namespace.clone())
    }

    fn name(&mut self, review: Resource<Reviewed>) -> wasmtime::Result<String> {
        Ok(self.request(&review)?.facts.name.clone())
    }

    fn user(&mut self, review: Resource<Reviewed>) -> wasmtime::Result<UserInfo> {
        let user = &self.request(&review)?.facts.user_info;
        Ok(UserInfo {
            username: user.username.clone().unwrap_or_default(),
            uid: user.uid.clone().unwrap_or_default(),
            groups: user.groups.clone().unwrap_or_default(),
        })
    }

    fn dry_run(&mut self, review: Resource<Reviewed>) -> wasmtime::Result<bool> {
        Ok(self.request(&review)?.facts.dry_run)
    }

    fn label(
        &mut self,
        review: Resource<Reviewed>,
        key: String,
    ) -> wasmtime::Result<Option<String>> {
        Ok(self.request(&review)?.object_label(&key).map(str::to_owned))
    }

    fn annotation(
        &mut self,
        review: Resource<Reviewed>,
        key: String,
    ) -> wasmtime::Result<Option<String>> {
        Ok(self
            .request(&review)?
            .object_annotation(&key)
            .map(str::to_owned))
    }

    fn pod_spec_path(&mut self, review: Resource<Reviewed>) -> wasmtime::Result<Option<String>> {
        let kind = self.request(&review)?.workload_kind();
        Ok(kind.map(|kind| kind.spec_path().to_string()))
    }

    fn containers(
        &mut self,
        review: Resource<Reviewed>,
    ) -> wasmtime::Result<Result<ContainerTable, String>> {
        Ok(self
            .request(&review)?
            .container_views()
            .map(|views| {
                let (text, layout) = views.into_parts();
                ContainerTable { text, layout }
            })
            .map_err(|error| error.to_string()))
    }

    fn object(
        &mut self,
        review: Resource<Reviewed>,
        pointer: String,
    ) -> wasmtime::Result<Option<String>> {
        Ok(self.request(&review)?.object_json(&pointer))
    }

    fn old_object(
        &mut self,
        review: Resource<Reviewed>,
        pointer: String,
    ) -> wasmtime::Result<Option<String>> {
        Ok(self.request(&review)?.old_object_json(&pointer))
    }

    fn drop(&mut self, review: Resource<Reviewed>) -> wasmtime::Result<()> {
        self.table.delete(review)?;
        Ok(())
    }
}

/// The guest's outcome as the pipeline's: bounded in size, patches only from mutating
/// policies, each operation's value read.
pub(crate) fn outcome(outcome: WitOutcome, mutating: bool) -> Result<Outcome, PolicyError> {
    let finding_size = |f: &Finding| {
        f.message.len()
            + f.path.as_ref().map_or(0, String::len)
            + f.rule.as_ref().map_or(0, String::len)
    };
    let op_size = |op: &WitOp| match op {
        WitOp::Add(op) | WitOp::Replace(op) | WitOp::Test(op) => op.path.len() + op.value.len(),
        WitOp::Remove(path) => path.len(),
        WitOp::Move(op) | WitOp::Copy(op) => op.from.len() + op.path.len(),
    };
    let size = outcome.violations.iter().map(finding_size).sum::<usize>()
        + outcome.warnings.iter().map(finding_size).sum::<usize>()
        + outcome.patch.iter().map(op_size).sum::<usize>();
    if size > MAX_OUTCOME_BYTES {
        return Err(PolicyError::InvalidOutcome(format!(
            "{size} bytes of outcome, more than the {MAX_OUTCOME_BYTES} allowed"
        )));
    }
    let mutation = if outcome.patch.is_empty() {
        None
    } else if !mutating {
        return Err(PolicyError::InvalidOutcome(
            "a validating policy returned a patch".to_owned(),
        ));
    } else {
        let ops = outcome
            .patch
            .into_iter()
            .map(|op| match op {
                WitOp::Add(op) => PatchOp::Add {
                    path: op.path,
                    value: op.value,
                },
                WitOp::Remove(path) => PatchOp::Remove { path },
                WitOp::Replace(op) => PatchOp::Replace {
                    path: op.path,
                    value: op.value,
                },
                WitOp::Move(op) => PatchOp::Move {
                    from: op.from,
                    path: op.path,
                },
                WitOp::Copy(op) => PatchOp::Copy {
                    from: op.from,
                    path: op.path,
                },
                WitOp::Test(op) => PatchOp::Test {
                    path: op.path,
                    value: op.value,
                },
            })
            .collect();
        Some(Mutation::Patch(
            PatchOp::to_patch(ops).map_err(|e| PolicyError::InvalidOutcome(e.to_string()))?,
        ))
    };
    let violation = |f: Finding| Violation::new(f.rule.unwrap_or_default(), f.path, f.message);
    let mut answer =
        Outcome::with_violations(outcome.violations.into_iter().map(violation).collect())
            .and_warnings(outcome.warnings.into_iter().map(violation).collect());
    answer.mutation = mutation;
    Ok(answer)
}
