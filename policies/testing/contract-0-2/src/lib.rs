//! A policy built against the retired `initguard:policy@0.2.0`, whose `containers` copied each
//! string of the views into the guest on its own: initguard must refuse it at load, saying what
//! to rebuild against.

wit_bindgen::generate!({ path: "wit", world: "policy" });

struct Old;

impl Guest for Old {
    fn info() -> PolicyInfo {
        PolicyInfo { mutating: false }
    }

    fn validate_settings(_: Vec<JsonNode>) -> Result<(), String> {
        Ok(())
    }

    fn evaluate(review: &Review, _: Vec<JsonNode>) -> Result<Outcome, String> {
        Ok(Outcome {
            violations: Vec::new(),
            warnings: vec![],
            patch: review.containers().map(|_| Vec::new())?,
        })
    }
}

export!(Old);
