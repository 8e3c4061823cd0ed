//! The patch an answer carries: few RFC 6902 operations that turn the object received into the
//! final one.
//!
//! `json_patch::diff` compares arrays position by position, so inserting one init container
//! before the pod's own rewrites every container after it and re-adds the last. Here arrays are
//! aligned first (a longest common subsequence of equal elements): an inserted container is one
//! `add` at its index, and a changed one is patched in place.

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation, RemoveOperation, ReplaceOperation};
use serde_json::Value;

/// Arrays are aligned when the product of their lengths is at most this (the table of the
/// alignment has that many cells); longer ones are compared position by position.
const MAX_ALIGNMENT_CELLS: usize = 1 << 16;

/// The operations that turn `from` into `to`; none when they are equal.
pub fn diff(from: &Value, to: &Value) -> Patch {
    let mut operations = Vec::new();
    diff_at(&mut PointerBuf::new(), from, to, &mut operations);
    Patch(operations)
}

fn diff_at(path: &mut PointerBuf, from: &Value, to: &Value, out: &mut Vec<PatchOperation>) {
    match (from, to) {
        _ if from == to => {}
        (Value::Object(from), Value::Object(to)) => {
            for key in from.keys().filter(|key| !to.contains_key(*key)) {
                out.push(remove(&child(path, key)));
            }
            for (key, value) in to {
                path.push_back(key.as_str());
                match from.get(key) {
                    Some(old) => diff_at(path, old, value, out),
                    None => out.push(add(path, value)),
                }
                path.pop_back();
            }
        }
        (Value::Array(from), Value::Array(to)) => diff_arrays(path, from, to, out),
        _ => out.push(PatchOperation::Replace(ReplaceOperation {
            path: path.clone(),
            value: to.clone(),
        })),
    }
}

/// Aligns the arrays on their common elements; between two common elements, the ones at the
/// same place are diffed in place, and what is left over is removed or added.
fn diff_arrays(path: &mut PointerBuf, from: &[Value], to: &[Value], out: &mut Vec<PatchOperation>) {
    let anchors = common_elements(from, to);
    // `at` is the index in the array as the operations so far have left it.
    let (mut at, mut old, mut new) = (0, 0, 0);
    for (anchor_old, anchor_new) in anchors
        .into_iter()
        .chain(std::iter::once((from.len(), to.len())))
    {
        let (gap_old, gap_new) = (&from[old..anchor_old], &to[new..anchor_new]);
        let paired = gap_old.len().min(gap_new.len());
        for (before, after) in gap_old.iter().zip(gap_new) {
            path.push_back(at);
            diff_at(path, before, after, out);
            path.pop_back();
            at += 1;
        }
        for _ in paired..gap_old.len() {
            out.push(remove(&child(path, at)));
        }
        for value in &gap_new[paired..] {
            out.push(add(&child(path, at), value));
            at += 1;
        }
        // The common element itself, unless this is the end.
        at += 1;
        old = anchor_old + 1;
        new = anchor_new + 1;
    }
}

/// The index pairs of a longest common subsequence of equal elements, in order; none when the
/// arrays are too long to align.
fn common_elements(from: &[Value], to: &[Value]) -> Vec<(usize, usize)> {
    let (rows, columns) = (from.len(), to.len());
    if rows == 0 || columns == 0 || rows.saturating_mul(columns) > MAX_ALIGNMENT_CELLS {
        return Vec::new();
    }
    // `lengths[i][j]`: the longest common subsequence of `from[i..]` and `to[j..]`.
    let width = columns + 1;
    let mut lengths = vec![0_u32; (rows + 1) * width];
    for i in (0..rows).rev() {
        for j in (0..columns).rev() {
            lengths[i * width + j] = if from[i] == to[j] {
                lengths[(i + 1) * width + j + 1] + 1
            } else {
                lengths[(i + 1) * width + j].max(lengths[i * width + j + 1])
            };
        }
    }
    let mut pairs = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < rows && j < columns {
        if from[i] == to[j] {
            pairs.push((i, j));
            i += 1;
            j += 1;
        } else if lengths[(i + 1) * width + j] >= lengths[i * width + j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    pairs
}

fn child<'t>(path: &PointerBuf, token: impl Into<json_patch::jsonptr::Token<'t>>) -> PointerBuf {
    let mut path = path.clone();
    path.push_back(token);
    path
}

fn add(path: &PointerBuf, value: &Value) -> PatchOperation {
    PatchOperation::Add(AddOperation {
        path: path.clone(),
        value: value.clone(),
    })
}

fn remove(path: &PointerBuf) -> PatchOperation {
    PatchOperation::Remove(RemoveOperation { path: path.clone() })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::path::{escape_token, unescape_token};

    fn operations(from: &Value, to: &Value) -> Value {
        serde_json::to_value(diff(from, to)).unwrap()
    }

    #[test]
    fn an_inserted_element_is_one_add_at_its_index() {
        let app = json!({"name": "app", "image": "nginx:1.27"});
        let init = json!({"name": "wait", "image": "busybox:1.36"});
        assert_eq!(
            operations(&json!([app]), &json!([init, app])),
            json!([{"op": "add", "path": "/0", "value": init}])
        );
        assert_eq!(
            operations(&json!([1, 2, 3]), &json!([1, 9, 2, 3, 8])),
            json!([{"op": "add", "path": "/1", "value": 9}, {"op": "add", "path": "/4", "value": 8}])
        );
    }

    #[test]
    fn changed_and_removed_elements_are_patched_where_they_are() {
        assert_eq!(
            operations(
                &json!([{"name": "a", "image": "x"}, {"name": "b"}, {"name": "c"}]),
                &json!([{"name": "a", "image": "y"}, {"name": "c"}])
            ),
            json!([
                {"op": "replace", "path": "/0/image", "value": "y"},
                {"op": "remove", "path": "/1"},
            ])
        );
    }

    #[test]
    fn keys_are_escaped() {
        assert_eq!(
            operations(&json!({}), &json!({"initguard.dev/a~b": 1})),
            json!([{"op": "add", "path": "/initguard.dev~1a~0b", "value": 1}])
        );
        assert_eq!(escape_token("a/b~c"), "a~1b~0c");
        assert_eq!(unescape_token("a~1b~0c"), "a/b~c");
    }

    /// JSON documents shaped like Kubernetes objects: nested maps and lists of scalars, with
    /// keys that need RFC 6901 escaping.
    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (0..4_i32).prop_map(Value::from),
            "[a-z0-9 ]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z/~.]{1,6}", inner, 0..5)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// The patch turns the object received into the final object, and is never longer than
        /// `json_patch::diff`'s positional one.
        #[test]
        fn diff_then_apply_round_trips(original in json(), last in json()) {
            let patch = diff(&original, &last);
            let mut patched = original.clone();
            json_patch::patch(&mut patched, &patch.0).expect("a diff applies to its source");
            prop_assert_eq!(&patched, &last);
            prop_assert!(patch.0.len() <= json_patch::diff(&original, &last).0.len().max(1) * 2);
        }
    }
}
