//! `cutover graph PLAN`: steps, rollback points, the point of no return and
//! the revert edges, as Mermaid or Graphviz.

use std::io::Write;

use clap::{Args, ValueEnum};
use plan_core::{Entry, Plan};

use crate::{exit_codes, CliError, PlanArgs};

/// Arguments of `cutover graph`.
#[derive(Debug, Args)]
pub struct GraphArgs {
    #[command(flatten)]
    plan: PlanArgs,
    /// Output format: Mermaid (renders in GitHub/GitLab Markdown) or Graphviz dot
    #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
    format: GraphFormat,
}

/// Graph syntax.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum GraphFormat {
    /// A Mermaid flowchart
    Mermaid,
    /// A Graphviz digraph
    Dot,
}

/// What the graph shows, independent of syntax.
struct Graph {
    /// (phase name, nodes of the phase)
    clusters: Vec<(String, Vec<Node>)>,
    edges: Vec<Edge>,
}

struct Node {
    key: String,
    label: String,
    kind: NodeKind,
}

#[derive(Clone, Copy, PartialEq)]
enum NodeKind {
    Step,
    Done,
    RollbackPoint,
    PointOfNoReturn,
}

struct Edge {
    from: String,
    to: String,
    kind: EdgeKind,
}

#[derive(Clone, Copy, PartialEq)]
enum EdgeKind {
    /// Runs after.
    Forward,
    /// On failure, undone in this order back to the rollback point.
    Revert,
}

/// Prints the graph.
pub fn cmd_graph(
    args: &GraphArgs,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<u8, CliError> {
    let plan = args.plan.load_to_show(stderr)?;
    let graph = build(&plan);
    let text = match args.format {
        GraphFormat::Mermaid => mermaid(&graph),
        GraphFormat::Dot => dot(&graph),
    };
    stdout.write_all(text.as_bytes())?;
    Ok(exit_codes::OK)
}

fn build(plan: &Plan) -> Graph {
    let mut clusters = Vec::new();
    let mut edges = Vec::new();
    let mut keys = std::collections::HashMap::new();
    let mut counter = 0usize;
    let mut last: Option<String> = None;
    // The node reverts lead back to: the last undoable step or the rollback point.
    let mut revert_target: Option<String> = None;
    let mut past_no_return = false;
    for phase in &plan.phases {
        let mut nodes = Vec::new();
        for entry in &phase.entries {
            counter += 1;
            let (key, node) = match entry {
                Entry::Step(step) => {
                    let key = format!("s{counter}");
                    keys.insert(step.id.clone(), key.clone());
                    let kind = if step.pending() {
                        NodeKind::Step
                    } else {
                        NodeKind::Done
                    };
                    let label = format!(
                        "{}. {}\n{} · {}",
                        step.number,
                        step.title,
                        step.id,
                        step.action.kind()
                    );
                    if step.after_explicit {
                        for dep in &step.after {
                            if let Some(from) = keys.get(dep) {
                                edges.push(Edge {
                                    from: from.clone(),
                                    to: key.clone(),
                                    kind: EdgeKind::Forward,
                                });
                            }
                        }
                    } else if let Some(from) = &last {
                        edges.push(Edge {
                            from: from.clone(),
                            to: key.clone(),
                            kind: EdgeKind::Forward,
                        });
                    }
                    if step.pending() && !past_no_return && step.undoable() {
                        if let Some(target) = &revert_target {
                            edges.push(Edge {
                                from: key.clone(),
                                to: target.clone(),
                                kind: EdgeKind::Revert,
                            });
                        }
                        revert_target = Some(key.clone());
                    }
                    (
                        key,
                        Node {
                            key: String::new(),
                            label,
                            kind,
                        },
                    )
                }
                Entry::RollbackPoint(marker) => {
                    let key = format!("r{counter}");
                    if let Some(from) = &last {
                        edges.push(Edge {
                            from: from.clone(),
                            to: key.clone(),
                            kind: EdgeKind::Forward,
                        });
                    }
                    revert_target = Some(key.clone());
                    (
                        key,
                        Node {
                            key: String::new(),
                            label: format!("rollback point\n{}", marker.text),
                            kind: NodeKind::RollbackPoint,
                        },
                    )
                }
                Entry::PointOfNoReturn(marker) => {
                    let key = format!("p{counter}");
                    if let Some(from) = &last {
                        edges.push(Edge {
                            from: from.clone(),
                            to: key.clone(),
                            kind: EdgeKind::Forward,
                        });
                    }
                    past_no_return = true;
                    revert_target = None;
                    (
                        key,
                        Node {
                            key: String::new(),
                            label: format!("point of no return\n{}", marker.text),
                            kind: NodeKind::PointOfNoReturn,
                        },
                    )
                }
            };
            last = Some(key.clone());
            nodes.push(Node { key, ..node });
        }
        clusters.push((phase.name.clone(), nodes));
    }
    Graph { clusters, edges }
}

fn mermaid(graph: &Graph) -> String {
    let escape = |s: &str| s.replace('"', "#quot;").replace('\n', "<br/>");
    let mut out = String::from("flowchart TD\n");
    for (index, (name, nodes)) in graph.clusters.iter().enumerate() {
        out.push_str(&format!("  subgraph phase{index}[\"{}\"]\n", escape(name)));
        for node in nodes {
            let label = escape(&node.label);
            let shape = match node.kind {
                NodeKind::Step | NodeKind::Done => format!("[\"{label}\"]"),
                NodeKind::RollbackPoint => format!("{{{{\"{label}\"}}}}"),
                NodeKind::PointOfNoReturn => format!("[/\"{label}\"\\]"),
            };
            out.push_str(&format!("    {}{shape}\n", node.key));
        }
        out.push_str("  end\n");
    }
    for edge in &graph.edges {
        match edge.kind {
            EdgeKind::Forward => out.push_str(&format!("  {} --> {}\n", edge.from, edge.to)),
            EdgeKind::Revert => {
                out.push_str(&format!("  {} -. revert .-> {}\n", edge.from, edge.to))
            }
        }
    }
    out.push_str("  classDef done fill:#e8e8e8,color:#666\n  classDef point fill:#fff3c4\n  classDef noreturn fill:#ffd6d6\n");
    for (_, nodes) in &graph.clusters {
        for node in nodes {
            let class = match node.kind {
                NodeKind::Done => "done",
                NodeKind::RollbackPoint => "point",
                NodeKind::PointOfNoReturn => "noreturn",
                NodeKind::Step => continue,
            };
            out.push_str(&format!("  class {} {class}\n", node.key));
        }
    }
    out
}

fn dot(graph: &Graph) -> String {
    let escape = |s: &str| {
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    let mut out = String::from(
        "digraph plan {\n  rankdir=TB;\n  node [shape=box, fontname=\"sans-serif\"];\n",
    );
    for (index, (name, nodes)) in graph.clusters.iter().enumerate() {
        out.push_str(&format!(
            "  subgraph cluster_{index} {{\n    label=\"{}\";\n",
            escape(name)
        ));
        for node in nodes {
            let style = match node.kind {
                NodeKind::Step => "",
                NodeKind::Done => ", style=filled, fillcolor=\"#e8e8e8\", fontcolor=\"#666666\"",
                NodeKind::RollbackPoint => ", shape=hexagon, style=filled, fillcolor=\"#fff3c4\"",
                NodeKind::PointOfNoReturn => {
                    ", shape=trapezium, style=filled, fillcolor=\"#ffd6d6\""
                }
            };
            out.push_str(&format!(
                "    {} [label=\"{}\"{style}];\n",
                node.key,
                escape(&node.label)
            ));
        }
        out.push_str("  }\n");
    }
    for edge in &graph.edges {
        match edge.kind {
            EdgeKind::Forward => out.push_str(&format!("  {} -> {};\n", edge.from, edge.to)),
            EdgeKind::Revert => out.push_str(&format!(
                "  {} -> {} [style=dashed, color=\"#b00000\", label=\"revert\", constraint=false];\n",
                edge.from, edge.to
            )),
        }
    }
    out.push_str("}\n");
    out
}
