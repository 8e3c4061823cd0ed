//! A policy built against the retired `initguard:policy@0.1.0`, which took the review as JSON
//! text: initguard must refuse it at load, saying what to rebuild against.

wit_bindgen::generate!({ path: "wit", world: "policy" });

use initguard::policy::host::{Level, log};

struct Old;

impl Guest for Old {
    fn info() -> PolicyInfo {
        PolicyInfo { mutating: false }
    }

    fn validate_settings(_: String) -> Result<(), String> {
        Ok(())
    }

    fn evaluate(request: String, _: String) -> Result<Outcome, String> {
        log(Level::Debug, &request);
        Ok(Outcome {
            violations: Vec::new(),
            warnings: Vec::new(),
            patch: None,
        })
    }
}

export!(Old);
