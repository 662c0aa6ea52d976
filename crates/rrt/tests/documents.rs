//! End to end: shared scratch documents and app state between real daemons on one host.

mod common;

use std::thread;

use common::{Lab, wait_until};

fn cat(lab: &Lab, name: &str, document: &str) -> Option<String> {
    let output = lab.run(name, &["scratch", "cat", document]);
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

fn run_ok(lab: &Lab, name: &str, args: &[&str]) -> String {
    let output = lab.run(name, args);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn scratch_documents_and_app_state_are_shared_merged_and_kept() {
    let mut lab = Lab::new("documents");
    lab.start_all(&["a", "b", "c"]);
    run_ok(&lab, "a", &["scratch", "append", "notes", "first line\n"]);
    wait_until("b to have the note", || {
        cat(&lab, "b", "notes").as_deref() == Some("first line\n")
    });

    // Concurrent appends on every instance: all kept, in one agreed order.
    thread::scope(|scope| {
        for name in ["a", "b", "c"] {
            let lab = &lab;
            scope.spawn(move || {
                run_ok(
                    lab,
                    name,
                    &["scratch", "append", "notes", &format!("from {name}\n")],
                )
            });
        }
    });
    wait_until("the three copies to agree", || {
        let texts: Vec<_> = ["a", "b", "c"]
            .iter()
            .map(|name| cat(&lab, name, "notes"))
            .collect();
        texts.iter().all(|text| text == &texts[0])
    });
    let merged = cat(&lab, "a", "notes").expect("notes");
    for name in ["a", "b", "c"] {
        assert!(merged.contains(&format!("from {name}\n")), "{merged:?}");
    }

    // `scratch edit` applies what the editor saved as changes: an edit made elsewhere
    // meanwhile survives.
    run_ok(
        &lab,
        "b",
        &["scratch", "append", "notes", "added by b while a edits\n"],
    );
    let output = lab
        .rrt()
        .args(["--instance", "a", "scratch", "edit", "notes"])
        .env("EDITOR", "sed -i s/first/FIRST/")
        .output()
        .expect("edit");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    wait_until("both edits everywhere", || {
        ["a", "b", "c"].iter().all(|name| {
            cat(&lab, name, "notes").is_some_and(|text| {
                text.starts_with("FIRST line\n") && text.contains("added by b while a edits\n")
            })
        })
    });

    run_ok(&lab, "c", &["state", "set", "theme", "dark"]);
    wait_until("a to see the state", || {
        lab.run("a", &["state", "get", "theme"]).stdout == b"dark\n"
    });
    run_ok(&lab, "a", &["state", "del", "theme"]);
    wait_until("c to see the deletion", || {
        !lab.run("c", &["state", "get", "theme"]).status.success()
    });
    assert_eq!(run_ok(&lab, "b", &["scratch", "list"]), "notes\nstate\n");

    // Everyone stops; a lone restart still has the documents.
    let before = cat(&lab, "a", "notes").expect("notes");
    for name in ["a", "b", "c"] {
        lab.stop(name);
    }
    lab.start("b");
    assert_eq!(cat(&lab, "b", "notes"), Some(before));
}

#[test]
fn bad_document_names_are_refused_clearly() {
    let mut lab = Lab::new("docnames");
    lab.start("a");
    let output = lab.run("a", &["scratch", "append", "../escape", "x"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not a document name"));
    let missing = lab.run("a", &["scratch", "cat", "nothing-here"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no document named"));
}
