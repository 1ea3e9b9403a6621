//! The shape of `core/src`: its modules import each other without cycles
//! (issue 22), so each can be read, and changed, with only what is below it
//! in mind.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

/// Module path (`engine`, `kinds::read`) -> the modules of this crate it
/// names (`crate::engine`, `crate::kinds::read`), comments left out. A
/// folder's `mod.rs` is the folder's module.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut dirs = vec![src.clone()];
    let mut folders = BTreeSet::new();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.insert(path.file_name().unwrap().to_str().unwrap().to_owned());
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut graph = BTreeMap::new();
    for path in files {
        let relative = path.strip_prefix(&src).unwrap().with_extension("");
        let mut parts: Vec<String> = relative
            .iter()
            .map(|p| p.to_str().unwrap().to_owned())
            .collect();
        if parts.last().is_some_and(|p| p == "mod") {
            parts.pop();
        }
        let name = parts.join("::");
        if name == "lib" {
            continue;
        }
        let code: String = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|line| line.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        let module_at = |at: usize| {
            let word = |from: usize| {
                code[from..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect::<String>()
            };
            let first = word(at);
            // A folder's module names its files: `crate::kinds::read`.
            let rest = &code[at + first.len()..];
            match rest.strip_prefix("::") {
                Some(_) if folders.contains(&first) => {
                    let second = word(at + first.len() + 2);
                    if second.is_empty() {
                        first
                    } else {
                        format!("{first}::{second}")
                    }
                }
                _ => first,
            }
        };
        let deps = code
            .match_indices("crate::")
            .map(|(at, _)| module_at(at + 7))
            .filter(|dep| !dep.is_empty() && *dep != name)
            .collect();
        graph.insert(name, deps);
    }
    graph
}

/// The modules on some cycle, found by following imports depth first.
fn on_a_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    fn visit(
        module: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        cycles: &mut Vec<Vec<String>>,
    ) {
        if let Some(at) = path.iter().position(|m| m == module) {
            cycles.push(path[at..].to_vec());
            return;
        }
        if done.contains(module) {
            return;
        }
        path.push(module.to_owned());
        for dep in graph.get(module).into_iter().flatten() {
            if graph.contains_key(dep) {
                visit(dep, graph, path, done, cycles);
            }
        }
        path.pop();
        done.insert(module.to_owned());
    }
    let (mut done, mut cycles) = (BTreeSet::new(), Vec::new());
    for module in graph.keys() {
        visit(module, graph, &mut Vec::new(), &mut done, &mut cycles);
    }
    cycles
}

#[test]
fn the_core_modules_import_each_other_without_cycles() {
    let graph = imports();
    assert!(graph.len() > 20, "read the modules: {:?}", graph.keys());
    assert!(
        graph["client"].contains("vocab") && graph["kinds::read"].contains("kinds::exclusive"),
        "the graph is read: {graph:?}"
    );
    let cycles = on_a_cycle(&graph);
    assert!(cycles.is_empty(), "import cycles: {cycles:?}");
}

#[test]
fn a_cycle_is_found_when_there_is_one() {
    let mut graph = imports();
    graph.get_mut("vocab").unwrap().insert("client".to_owned());
    assert!(!on_a_cycle(&graph).is_empty());
}
