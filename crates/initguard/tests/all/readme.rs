//! The README's Rules section lists the rules `initguard rules` knows: one row per rule, in the
//! same order and with the same policy, the Pod Security checks in the section's own table.

use initguard::check::OWN_RULES;
use initguard_rules::{pod_security, rules};

use crate::support::workspace;

/// The text from `## {title}` to the next `## ` heading.
fn section(readme: &str, title: &str) -> String {
    let start = readme
        .find(&format!("\n## {title}\n"))
        .unwrap_or_else(|| panic!("the README has a {title} section"));
    let rest = &readme[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |end| end + 3);
    rest[..end].to_owned()
}

/// The first two cells of every table row below the header rows.
fn rows(section: &str) -> Vec<(String, String)> {
    section
        .lines()
        .filter(|line| line.starts_with("| "))
        .map(|line| {
            let mut cells = line.split('|').skip(1).map(str::trim);
            let id = cells.next().unwrap_or_default().to_owned();
            let policy = cells.next().unwrap_or_default().to_owned();
            (id, policy)
        })
        .filter(|(id, _)| id != "id" && !id.starts_with("---"))
        .collect()
}

#[test]
fn the_readme_rules_table_lists_every_rule_initguard_knows() {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let table: Vec<(String, String)> = rows(&section(&readme, "Rules"))
        .into_iter()
        .filter(|(id, _)| id.starts_with("IG-"))
        .collect();
    let known: Vec<(String, String)> = rules()
        .filter(|rule| rule.policy != pod_security::NAME)
        .map(|rule| (rule.id.to_owned(), rule.policy.to_owned()))
        .chain(
            OWN_RULES
                .iter()
                .map(|rule| (rule.id.to_owned(), "initguard".to_owned())),
        )
        .collect();
    assert_eq!(
        table, known,
        "README Rules table (id, policy) against `initguard rules`"
    );

    let checks: Vec<&str> = rules()
        .filter(|rule| rule.policy == pod_security::NAME)
        .map(|rule| rule.id)
        .collect();
    let row = rows(&section(&readme, "Rules"))
        .into_iter()
        .find(|(id, _)| id == "*check name*")
        .expect("a row for the Pod Security checks");
    assert_eq!(row.1, pod_security::NAME);
    let counted = readme.contains(&format!(
        "the {} checks of the Pod Security Standards",
        checks.len()
    ));
    assert!(
        counted,
        "the README counts {} Pod Security checks",
        checks.len()
    );
    let standards = section(&readme, "Pod Security Standards (`pod-security`)");
    for check in checks {
        assert!(
            standards.contains(&format!("`{check}`")),
            "the Pod Security Standards table names `{check}`"
        );
    }
}
