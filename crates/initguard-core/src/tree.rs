//! JSON values as a flat list of nodes: how a WebAssembly policy's settings cross into it.
//!
//! The host checks a policy's settings once, at load, and hands them to every evaluation as
//! typed values rather than as text the guest would parse each time. WIT has no recursive
//! types, so a value is a list of [`Node`]s: the root is node 0, and arrays and objects refer
//! to their members by index. A [`Tree`] deserializes into any serde type, so a policy's
//! settings struct reads the same from it as from JSON.

use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

/// One node of a [`Tree`].
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// `null`.
    Null,
    /// `true` or `false`.
    Boolean(bool),
    /// A number without a fraction that fits 64 signed bits.
    Integer(i64),
    /// Any other number.
    Float(f64),
    /// A string.
    Text(String),
    /// An array: the indices of its members.
    Array(Vec<u32>),
    /// An object: its keys with the indices of their values.
    Object(Vec<(String, u32)>),
}

/// A JSON value as nodes, the root first.
#[derive(Debug, Clone, PartialEq)]
pub struct Tree(pub Vec<Node>);

/// Why a tree does not deserialize into the type asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TreeError(String);

impl de::Error for TreeError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Self(message.to_string())
    }
}

impl Tree {
    /// Reads the tree as a `T`, as `serde_json::from_value` reads JSON; an empty tree reads as
    /// `null`.
    pub fn deserialize<'de, T: de::Deserialize<'de>>(&'de self) -> Result<T, TreeError> {
        T::deserialize(At {
            nodes: &self.0,
            index: 0,
        })
    }
}

#[cfg(feature = "kubernetes")]
impl From<&serde_json::Value> for Tree {
    fn from(value: &serde_json::Value) -> Self {
        fn push(value: &serde_json::Value, nodes: &mut Vec<Node>) -> u32 {
            use serde_json::Value;
            let index = nodes.len();
            nodes.push(Node::Null);
            let node = match value {
                Value::Null => Node::Null,
                Value::Bool(b) => Node::Boolean(*b),
                Value::Number(n) => n.as_i64().map_or_else(
                    || Node::Float(n.as_f64().unwrap_or(f64::NAN)),
                    Node::Integer,
                ),
                Value::String(s) => Node::Text(s.clone()),
                Value::Array(items) => {
                    Node::Array(items.iter().map(|item| push(item, nodes)).collect())
                }
                Value::Object(fields) => Node::Object(
                    fields
                        .iter()
                        .map(|(key, value)| (key.clone(), push(value, nodes)))
                        .collect(),
                ),
            };
            nodes[index] = node;
            // A value from serde_json has far fewer than 2^32 nodes in any memory.
            u32::try_from(index).unwrap_or(u32::MAX)
        }
        let mut nodes = Vec::new();
        push(value, &mut nodes);
        Self(nodes)
    }
}

/// The node at `index`; an index past the end (a tree not built by [`Tree::from`]) is `null`.
#[derive(Clone, Copy)]
struct At<'de> {
    nodes: &'de [Node],
    index: u32,
}

impl<'de> At<'de> {
    fn node(self) -> &'de Node {
        self.nodes.get(self.index as usize).unwrap_or(&Node::Null)
    }

    fn child(self, index: u32) -> Self {
        // A member must come after its parent: a tree that refers back cannot loop.
        let index = if index > self.index { index } else { u32::MAX };
        Self {
            nodes: self.nodes,
            index,
        }
    }
}

impl<'de> de::Deserializer<'de> for At<'de> {
    type Error = TreeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TreeError> {
        match self.node() {
            Node::Null => visitor.visit_unit(),
            Node::Boolean(b) => visitor.visit_bool(*b),
            Node::Integer(i) => visitor.visit_i64(*i),
            Node::Float(f) => visitor.visit_f64(*f),
            Node::Text(s) => visitor.visit_borrowed_str(s),
            Node::Array(items) => visitor.visit_seq(ArrayAccess {
                at: self,
                items: items.iter(),
            }),
            Node::Object(fields) => visitor.visit_map(ObjectAccess {
                at: self,
                fields: fields.iter(),
                value: None,
            }),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TreeError> {
        match self.node() {
            Node::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, TreeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TreeError> {
        match self.node() {
            // A unit variant is its name; any other a one-key object, as in JSON.
            Node::Text(name) => visitor.visit_enum(name.as_str().into_deserializer()),
            Node::Object(fields) if fields.len() == 1 => visitor.visit_enum(Variant {
                at: self,
                name: &fields[0].0,
                value: fields[0].1,
            }),
            _ => Err(de::Error::invalid_type(self.unexpected(), &"an enum")),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier
        ignored_any
    }
}

impl<'de> At<'de> {
    fn unexpected(self) -> de::Unexpected<'de> {
        match self.node() {
            Node::Null => de::Unexpected::Unit,
            Node::Boolean(b) => de::Unexpected::Bool(*b),
            Node::Integer(i) => de::Unexpected::Signed(*i),
            Node::Float(f) => de::Unexpected::Float(*f),
            Node::Text(s) => de::Unexpected::Str(s),
            Node::Array(_) => de::Unexpected::Seq,
            Node::Object(_) => de::Unexpected::Map,
        }
    }
}

struct ArrayAccess<'de> {
    at: At<'de>,
    items: std::slice::Iter<'de, u32>,
}

impl<'de> de::SeqAccess<'de> for ArrayAccess<'de> {
    type Error = TreeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, TreeError> {
        self.items
            .next()
            .map(|&index| seed.deserialize(self.at.child(index)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct ObjectAccess<'de> {
    at: At<'de>,
    fields: std::slice::Iter<'de, (String, u32)>,
    value: Option<u32>,
}

impl<'de> de::MapAccess<'de> for ObjectAccess<'de> {
    type Error = TreeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, TreeError> {
        let Some((key, value)) = self.fields.next() else {
            return Ok(None);
        };
        self.value = Some(*value);
        let key: de::value::BorrowedStrDeserializer<'de, TreeError> =
            de::value::BorrowedStrDeserializer::new(key);
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, TreeError> {
        let index = self.value.take().unwrap_or(u32::MAX);
        seed.deserialize(self.at.child(index))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.fields.len())
    }
}

struct Variant<'de> {
    at: At<'de>,
    name: &'de str,
    value: u32,
}

impl<'de> de::EnumAccess<'de> for Variant<'de> {
    type Error = TreeError;
    type Variant = At<'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, At<'de>), TreeError> {
        let name: de::value::BorrowedStrDeserializer<'de, TreeError> =
            de::value::BorrowedStrDeserializer::new(self.name);
        Ok((seed.deserialize(name)?, self.at.child(self.value)))
    }
}

impl<'de> de::VariantAccess<'de> for At<'de> {
    type Error = TreeError;

    fn unit_variant(self) -> Result<(), TreeError> {
        de::Deserialize::deserialize(self)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, TreeError> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, TreeError> {
        de::Deserializer::deserialize_any(self, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TreeError> {
        de::Deserializer::deserialize_any(self, visitor)
    }
}

#[cfg(all(test, feature = "kubernetes"))]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Settings {
        registries: Vec<String>,
        #[serde(default)]
        app_containers: bool,
        limit: Option<u32>,
        ratio: f64,
        mode: Mode,
        nested: std::collections::BTreeMap<String, Vec<i64>>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        Strict,
        Loose { slack: u8 },
    }

    #[test]
    fn settings_read_from_a_tree_as_from_json() {
        for value in [
            json!({"registries": ["a", "b"], "appContainers": true, "limit": 3, "ratio": 0.5,
                   "mode": "strict", "nested": {"x": [1, -2]}}),
            json!({"registries": [], "limit": null, "ratio": 2, "mode": {"loose": {"slack": 4}},
                   "nested": {}}),
        ] {
            let from_json: Settings = serde_json::from_value(value.clone()).unwrap();
            let from_tree: Settings = Tree::from(&value).deserialize().unwrap();
            assert_eq!(from_tree, from_json);
        }
    }

    #[test]
    fn errors_name_what_is_wrong_as_serde_json_does() {
        for value in [
            json!({"registries": "a", "ratio": 1, "mode": "strict", "nested": {}}),
            json!({"registries": [], "ratio": 1, "mode": "strict", "nested": {}, "x": 1}),
            json!({"ratio": 1, "mode": "strict", "nested": {}}),
            json!({"registries": [], "ratio": 1, "mode": "other", "nested": {}}),
            json!({"registries": [], "ratio": 1, "limit": -1, "mode": "strict", "nested": {}}),
        ] {
            let json_error = serde_json::from_value::<Settings>(value.clone()).unwrap_err();
            let tree_error = Tree::from(&value).deserialize::<Settings>().unwrap_err();
            assert_eq!(tree_error.to_string(), json_error.to_string(), "{value}");
        }
    }

    #[test]
    fn trees_that_refer_back_or_past_the_end_end() {
        let looping = Tree(vec![Node::Array(vec![0, 7])]);
        assert_eq!(
            looping.deserialize::<Vec<Option<u8>>>().unwrap(),
            [None, None]
        );
        assert_eq!(Tree(Vec::new()).deserialize::<Option<u8>>().unwrap(), None);
    }
}
