//! Hostile: a component that does not implement `initguard:policy` (it exports nothing).

/// Present so the library is not empty.
pub fn nothing() -> u32 {
    7
}
