//! YAML as kubectl reads it, and YAML that kubectl reads back to the same values.

mod read;
mod resolve;
mod write;

pub use read::{
    Content, LazyDocument, Unit, Units, YamlDocument, YamlError, json_tree, read_stream, units,
};
pub use write::{to_yaml, to_yaml_stream};

#[cfg(test)]
mod tests;
