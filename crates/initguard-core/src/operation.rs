//! RFC 6902 operations as a WebAssembly policy returns them: typed, with each value as JSON
//! text (the one free-form part, since WIT has no recursive types). The host reads the values
//! of a patch, never a whole patch document.

/// One operation of a patch against the request's object; paths are RFC 6901 JSON pointers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatchOp {
    /// Adds `value` (JSON text) at `path`; `/-` appends to an array.
    Add {
        /// Where.
        path: String,
        /// What, as JSON text.
        value: String,
    },
    /// Removes what is at `path`.
    Remove {
        /// Where.
        path: String,
    },
    /// Replaces what is at `path` with `value` (JSON text).
    Replace {
        /// Where.
        path: String,
        /// What, as JSON text.
        value: String,
    },
    /// Moves what is at `from` to `path`.
    Move {
        /// From where.
        from: String,
        /// To where.
        path: String,
    },
    /// Copies what is at `from` to `path`.
    Copy {
        /// From where.
        from: String,
        /// To where.
        path: String,
    },
    /// Fails the patch unless what is at `path` equals `value` (JSON text).
    Test {
        /// Where.
        path: String,
        /// What, as JSON text.
        value: String,
    },
}

/// An operation that is not one the host can apply: a path that is no JSON pointer, or a
/// value that is no JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("operation {index} of the patch: {reason}")]
pub struct PatchOpError {
    /// The operation's position in the patch.
    pub index: usize,
    /// What is wrong with it.
    pub reason: String,
}

#[cfg(feature = "kubernetes")]
impl PatchOp {
    /// The operations as a `json_patch` patch, reading each value.
    pub fn to_patch(ops: Vec<Self>) -> Result<json_patch::Patch, PatchOpError> {
        use json_patch::jsonptr::PointerBuf;
        use json_patch::{
            AddOperation, CopyOperation, MoveOperation, PatchOperation, RemoveOperation,
            ReplaceOperation, TestOperation,
        };
        let read = |op: Self| -> Result<PatchOperation, String> {
            let pointer = |text: String| {
                PointerBuf::parse(text).map_err(|e| format!("not a JSON pointer: {e}"))
            };
            let value = |text: &str| {
                serde_json::from_str(text).map_err(|e| format!("the value is not JSON: {e}"))
            };
            Ok(match op {
                Self::Add { path, value: v } => PatchOperation::Add(AddOperation {
                    value: value(&v)?,
                    path: pointer(path)?,
                }),
                Self::Remove { path } => PatchOperation::Remove(RemoveOperation {
                    path: pointer(path)?,
                }),
                Self::Replace { path, value: v } => PatchOperation::Replace(ReplaceOperation {
                    value: value(&v)?,
                    path: pointer(path)?,
                }),
                Self::Move { from, path } => PatchOperation::Move(MoveOperation {
                    from: pointer(from)?,
                    path: pointer(path)?,
                }),
                Self::Copy { from, path } => PatchOperation::Copy(CopyOperation {
                    from: pointer(from)?,
                    path: pointer(path)?,
                }),
                Self::Test { path, value: v } => PatchOperation::Test(TestOperation {
                    value: value(&v)?,
                    path: pointer(path)?,
                }),
            })
        };
        ops.into_iter()
            .enumerate()
            .map(|(index, op)| read(op).map_err(|reason| PatchOpError { index, reason }))
            .collect::<Result<Vec<_>, _>>()
            .map(json_patch::Patch)
    }
}
