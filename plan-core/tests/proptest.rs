//! Property tests of the plan format.
//!
//! (a) Generated valid plans — every action kind, rollback points, a point of
//! no return with irreversible steps behind it, `after` lists, downtime
//! markers, every duration model — load, and printing them with
//! [`plan_core::to_ron`] is a fixpoint: load -> print -> load -> print gives
//! the same text and the same steps.
//!
//! (b) Arbitrary bytes, and valid plans with random damage (truncation, byte
//! flips, brackets inserted or deleted), never make the loader panic: it
//! either loads them or reports at least one error labelled inside the text.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use plan_core::machine::{Schedule, Selection};
use plan_core::{load_bytes, to_ron, Entry, Loaded, Plan, Settings};
use proptest::prelude::*;

mod common;
use common::SplitMix as Choices;

// ---------------------------------------------------------------------------
// Generating valid plans
// ---------------------------------------------------------------------------

/// The phases a generated plan picks from, in time order. DNS TTL changes
/// only happen in the first two and switches only in the last two, a day
/// apart, so that no generated switch breaks `cutover::ttl-not-expired`.
const PHASES: [(&str, Option<&[&str]>); 4] = [
    ("prep", None),
    ("day-before", Some(&["-1d", "-24h"])),
    ("window", Some(&["0", "+0s"])),
    ("after", Some(&["+2h", "+120m"])),
];

/// What proptest generates; [`render`] turns it into a valid plan's text.
/// The many small choices come from `seed`, so shrinking works on the
/// number of steps and on the texts.
#[derive(Clone, Debug)]
struct Spec {
    seed: u64,
    /// Which of [`PHASES`] the plan has.
    phases: Vec<usize>,
    /// Per phase: the kind of each step (0..9, see [`render_step`]).
    kinds: Vec<Vec<u8>>,
    /// Texts with anything in them: titles, tickets, reasons.
    free: Vec<String>,
    /// Texts without `{`, for commands and prompts (which expand `{{var}}`).
    words: Vec<String>,
    /// Durations to pick from.
    durations: Vec<Duration>,
    /// Addresses to pick from.
    addresses: Vec<IpAddr>,
}

fn duration_strategy() -> impl Strategy<Value = Duration> {
    prop_oneof![
        4 => (0u64..3 * 3600).prop_map(Duration::from_secs),
        1 => (1u64..5_000).prop_map(Duration::from_millis),
    ]
}

fn free_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 ,.:?()_-]{0,16}",
        // Any character but NUL, which `check` refuses in every value (issue
        // 11: it failed commands mid-run); tests/bad_input.rs covers it.
        prop::collection::vec(any::<char>().prop_filter("not NUL", |c| *c != '\0'), 0..10)
            .prop_map(String::from_iter),
        Just("say \"hi\" \\ there".to_owned()),
        Just("line one\nline \"two\"\ttabbed\r\n".to_owned()),
        Just("\"# r#\"raw\"# \"##".to_owned()),
        Just("shutdown sodium, celebrate \"no more lucid\"".to_owned()),
    ]
}

fn word_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 /._-]{1,16}",
        free_text().prop_map(|s| s.replace(['{', '}'], "")),
        Just("it's \"quoted\" $(id) `x` \\n".to_owned()),
        // A literal `{{` (a Go template), escaped as the format wants it.
        Just("docker inspect -f '{{{{.State.Running}}' web".to_owned()),
    ]
}

fn spec_strategy() -> impl Strategy<Value = Spec> {
    let phases = prop::sample::subsequence(vec![0usize, 1, 2, 3], 2..=4);
    phases
        .prop_flat_map(|phases| {
            let kinds = prop::collection::vec(prop::collection::vec(0u8..9, 1..5), phases.len());
            (
                any::<u64>(),
                Just(phases),
                kinds,
                prop::collection::vec(free_text(), 6),
                prop::collection::vec(word_text(), 6),
                prop::collection::vec(duration_strategy(), 6),
                prop::collection::vec(any::<IpAddr>(), 3),
            )
        })
        .prop_map(
            |(seed, phases, kinds, free, words, durations, addresses)| Spec {
                seed,
                phases,
                kinds,
                free,
                words,
                durations,
                addresses,
            },
        )
}

/// A RON string literal, escaped (the printer prefers raw strings, so the
/// two spellings check each other).
fn lit(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:X}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A duration spelled in one of the ways people write them.
fn spell(d: Duration, choices: &mut Choices) -> String {
    if d.subsec_nanos() != 0 {
        return format!("{}ms", d.as_millis());
    }
    let secs = d.as_secs();
    match choices.below(3) {
        0 => format!("{secs}s"),
        1 if secs >= 60 => format!("{}m {}s", secs / 60, secs % 60),
        _ => plan_core::duration::format_duration(d),
    }
}

const VARS: [&str; 3] = ["dir", "svc", "who"];
const HOSTS: [&str; 3] = ["sodium", "fermium", "mx-1"];
const RECORDS: [&str; 2] = ["lists.example.org.", "www.example.org."];

/// The generated text and the step ids in plan order.
struct Rendered {
    text: String,
    ids: Vec<String>,
}

/// The state of the plan being written.
struct Writer<'s> {
    spec: &'s Spec,
    choices: Choices,
    hosts: Vec<&'static str>,
    dns: bool,
    /// Ids so far.
    ids: Vec<String>,
    /// Global step index before which the point of no return sits.
    ponr: Option<usize>,
    /// Is the downtime open (a `Begins` without its `Ends` yet)?
    downtime_open: bool,
    rollback_points: usize,
    out: String,
}

impl Writer<'_> {
    fn free(&mut self) -> String {
        self.choices.pick(&self.spec.free).clone()
    }

    fn word(&mut self) -> String {
        self.choices.pick(&self.spec.words).clone()
    }

    /// A non-empty reason (`Nothing("")` is refused by the loader).
    fn reason(&mut self) -> String {
        format!("because {}", self.free())
    }

    fn duration(&mut self) -> Duration {
        *self.choices.pick(&self.spec.durations)
    }

    fn spell(&mut self, d: Duration) -> String {
        spell(d, &mut self.choices)
    }

    /// A command or prompt, sometimes with `{{var}}` in it.
    fn template(&mut self) -> String {
        let mut text = self.word();
        for _ in 0..self.choices.below(3) {
            let var = *self.choices.pick(&VARS);
            if self.choices.chance(50) {
                let _ = write!(text, " {{{{{var}}}}}");
            } else {
                let _ = write!(text, " {{{{ {var} }}}}/x");
            }
        }
        text
    }

    fn host(&mut self) -> &'static str {
        if self.choices.chance(20) {
            "local"
        } else {
            let i = self.choices.below(self.hosts.len());
            self.hosts[i]
        }
    }

    /// A record name as a person may write it (case, trailing dot).
    fn record(&mut self) -> String {
        let name = *self.choices.pick(&RECORDS);
        match self.choices.below(3) {
            0 => name.to_owned(),
            1 => name.trim_end_matches('.').to_owned(),
            _ => name.to_uppercase(),
        }
    }

    fn address(&mut self) -> String {
        self.choices.pick(&self.spec.addresses).to_string()
    }

    fn header(&mut self) {
        let name = self.free();
        let service = self.free();
        let _ = write!(
            self.out,
            "/* generated */ Plan(\n  name: {}, service: {},\n",
            lit(&name),
            lit(&service)
        );
        if self.choices.chance(50) {
            let description = self.free();
            let _ = writeln!(self.out, "  description: {},", lit(&description));
        }
        let announced = self.duration();
        self.out.push_str("  window: Window(");
        if self.choices.chance(50) {
            let start = *self.choices.pick(&[
                "2015-09-01T14:00:00Z",
                "2015-09-01T16:00:00+02:00",
                "2030-01-01T00:00:00.5Z",
            ]);
            let _ = write!(self.out, "start: {start:?}, ");
        }
        let announced_text = self.spell(announced);
        let _ = write!(self.out, "announced: {}", lit(&announced_text));
        if self.choices.chance(30) {
            let budget = self.duration() + Duration::from_secs(1);
            let budget = self.spell(budget);
            let _ = write!(self.out, ", downtime_budget: {}", lit(&budget));
        }
        if self.choices.chance(50) {
            let extra = self.duration();
            let deadline = self.spell(announced + extra);
            let _ = write!(self.out, ", deadline: {}", lit(&deadline));
        }
        self.out.push_str("),\n  vars: {");
        for var in VARS {
            let value = self.word();
            let _ = write!(self.out, "{}: {}, ", lit(var), lit(&value));
        }
        self.out.push_str("},\n  hosts: {\n");
        for host in self.hosts.clone() {
            let address = format!("{host}.example.org");
            let _ = write!(
                self.out,
                "    {}: Host(address: {}",
                lit(host),
                lit(&address)
            );
            if self.choices.chance(50) {
                let _ = write!(self.out, ", user: \"root\"");
            }
            if self.choices.chance(30) {
                let port = 1 + self.choices.below(65_535);
                let _ = write!(self.out, ", port: {port}");
            }
            if self.choices.chance(30) {
                let _ = write!(self.out, ", identity: \"/root/.ssh/{host}\"");
            }
            if self.choices.chance(50) {
                // A host variable shadows the plan's.
                let var = *self.choices.pick(&VARS);
                let value = self.word();
                let _ = write!(self.out, ", vars: {{ {}: {} }}", lit(var), lit(&value));
            }
            if self.choices.chance(30) {
                // An environment for its commands, built from variables.
                let value = self.template();
                let _ = write!(self.out, ", env: {{ \"PGHOST\": {} }}", lit(&value));
            }
            self.out.push_str("),\n");
        }
        self.out.push_str("  },\n");
        if self.dns {
            let server = *self
                .choices
                .pick(&["ns0.example.org:53", "127.0.0.1:5353", "[::1]:53"]);
            let zone = *self.choices.pick(&["example.org.", "Example.Org"]);
            let key = if self.choices.chance(50) {
                "TsigFile(\"/etc/cutover/tsig.key\")"
            } else {
                "TsigEnv(\"TSIG_KEY\")"
            };
            let _ = writeln!(
                self.out,
                "  dns: Rfc2136(server: {server:?}, zone: {zone:?}, key: {key}, records: {{"
            );
            for record in RECORDS {
                let ttl = *self.choices.pick(&["10s", "1m", "5m", "1h"]);
                let _ = write!(self.out, "    {}: Record(ttl: {ttl:?}", lit(record));
                if self.choices.chance(50) {
                    let address = self.address();
                    let _ = write!(self.out, ", addresses: [{}]", lit(&address));
                }
                self.out.push_str("),\n");
            }
            self.out.push_str("  }),\n");
        }
    }

    fn phases(&mut self) {
        self.out.push_str("  phases: [\n");
        let mut global = 0;
        let spec = self.spec;
        for (&phase, kinds) in spec.phases.iter().zip(&spec.kinds) {
            let (name, anchors) = PHASES[phase];
            let _ = write!(self.out, "    Phase(name: {name:?}");
            if let Some(anchors) = anchors {
                let at = *self.choices.pick(anchors);
                let _ = write!(self.out, ", at: {at:?}");
            }
            self.out.push_str(", steps: [\n");
            for &kind in kinds {
                if self.ponr == Some(global) {
                    let reason = self.free();
                    let _ = writeln!(self.out, "      PointOfNoReturn(reason: {}),", lit(&reason));
                } else if self.ponr.is_none_or(|p| global < p) && self.choices.chance(25) {
                    self.rollback_points += 1;
                    let _ = writeln!(
                        self.out,
                        "      RollbackPoint(\"point-{}\"),",
                        self.rollback_points
                    );
                }
                if self.choices.chance(10) {
                    self.out.push_str("      // a comment between steps\n");
                }
                let last = global + 1 == self.total_steps();
                self.step(kind, phase, global, last);
                global += 1;
            }
            if self.ponr == Some(global) && global == self.total_steps() {
                let _ = writeln!(self.out, "      PointOfNoReturn(reason: \"the end\"),");
            }
            self.out.push_str("    ]),\n");
        }
        self.out.push_str("  ],\n)\n");
    }

    fn total_steps(&self) -> usize {
        self.spec.kinds.iter().map(Vec::len).sum()
    }

    fn step(&mut self, kind: u8, phase: usize, global: usize, last: bool) {
        let id = format!(
            "{}{global}",
            self.choices.pick(&["step-", "rsync.", "dns_", "Hold-"])
        );
        let after_ponr = self.ponr.is_some_and(|p| global >= p);
        let done = match self.choices.below(10) {
            0 | 1 => "true",
            2 => "\"in progress\"",
            3 => "false",
            _ => "",
        };
        let is_done = done == "true";
        // A DNS kind the phase cannot have becomes a wait.
        let kind = match kind {
            3 if !self.dns || phase > 1 => 6,
            4 if !self.dns || phase < 2 => 6,
            5 if !self.dns => 6,
            k => k,
        };
        let mut fields = vec![format!("id: {}", lit(&id))];
        if self.choices.chance(40) {
            fields.push(format!("title: {}", lit(&self.free())));
        }
        if self.choices.chance(15) {
            fields.push(format!("number: {}", self.choices.below(50)));
        }
        match self.choices.below(4) {
            0 => fields.push(format!("ticket: {}", lit(&self.free()))),
            1 => fields.push(format!(
                "ticket: [{}, {}]",
                lit(&self.free()),
                lit(&self.free())
            )),
            _ => {}
        }
        if !done.is_empty() {
            fields.push(format!("done: {done}"));
        }
        // Shell and Manual state their revert; irreversible only past the point of no return.
        let revert = |w: &mut Self, with_run: bool| -> String {
            let mut options = vec!["manual", "nothing"];
            if with_run {
                options.push("run");
            }
            if after_ponr || is_done {
                options.push("irreversible");
            }
            if is_done {
                options.push("none");
            }
            match *w.choices.pick(&options) {
                "run" => format!(", revert: Run({})", lit(&w.template())),
                "manual" => format!(", revert: Manual({})", lit(&w.template())),
                "nothing" => format!(", revert: Nothing({})", lit(&w.reason())),
                "irreversible" => format!(", revert: Irreversible({})", lit(&w.free())),
                _ => String::new(),
            }
        };
        let (action, host, default_min) = match kind {
            0 => {
                let on = self.host();
                let run = self.template();
                let revert = revert(self, true);
                (
                    format!("Shell(on: {}, run: {}{revert})", lit(on), lit(&run)),
                    Some(on),
                    30,
                )
            }
            1 => {
                let on = self.host();
                let unit = *self.choices.pick(&["mailman", "exim4.service", "apache2"]);
                let state = *self.choices.pick(&["Running", "Stopped"]);
                (
                    format!("Service(on: {}, unit: {unit:?}, state: {state})", lit(on)),
                    Some(on),
                    30,
                )
            }
            2 => {
                let from = self.host();
                let mut to = self.host();
                while to == from {
                    to = self.host();
                }
                let path = format!("/var/lib/{}/{{{{svc}}}}/", self.choices.below(9));
                let mut action = format!(
                    "Rsync(from: {}, to: {}, path: {}",
                    lit(from),
                    lit(to),
                    lit(&path)
                );
                if self.choices.chance(40) {
                    action.push_str(", dest: \"/srv/{{dir}}/\"");
                }
                if self.choices.chance(40) {
                    let delete = *self.choices.pick(&["true", "false"]);
                    let _ = write!(action, ", delete: {delete}");
                }
                if self.choices.chance(40) {
                    let _ = write!(action, ", args: [\"--numeric-ids\", {}]", lit(&self.word()));
                }
                if self.choices.chance(30) {
                    let size = *self
                        .choices
                        .pick(&["40 GB", "512MiB", "1.5 GiB", "7 B", "0.25TB"]);
                    let _ = write!(action, ", size: {size:?}");
                }
                action.push(')');
                (action, Some(to), 30)
            }
            3 => {
                let ttl = *self.choices.pick(&["10s", "5m", "1h", "90s"]);
                let record = self.record();
                (
                    format!("DnsTtl(record: {}, ttl: {ttl:?})", lit(&record)),
                    None,
                    30,
                )
            }
            4 => {
                let mut addresses: Vec<String> = (0..1 + self.choices.below(2))
                    .map(|_| lit(&self.address()))
                    .collect();
                addresses.dedup();
                let record = self.record();
                (
                    format!(
                        "DnsRecord(record: {}, addresses: [{}])",
                        lit(&record),
                        addresses.join(", ")
                    ),
                    None,
                    30,
                )
            }
            5 => {
                let record = self.record();
                (format!("WaitTtl(record: {})", lit(&record)), None, 0)
            }
            6 if self.choices.chance(30) => {
                // A wait for a condition: its minimum is no time at all.
                let on = self.host();
                let run = self.template();
                (
                    format!(
                        "WaitUntil(on: {}, run: {}, every: \"2s\", within: \"1m\")",
                        lit(on),
                        lit(&run)
                    ),
                    Some(on),
                    0,
                )
            }
            6 => {
                let d = self.duration();
                let text = self.spell(d);
                (format!("Wait({})", lit(&text)), None, d.as_millis() as u64)
            }
            7 => {
                let prompt = self.template();
                let revert = revert(self, false);
                (
                    format!("Manual(prompt: {}{revert})", lit(&prompt)),
                    None,
                    300,
                )
            }
            _ => ("Verify".to_owned(), None, 30),
        };
        // `default_min` is in seconds, except for `Wait`, whose is in ms.
        let mut min = if kind == 6 {
            Duration::from_millis(default_min)
        } else {
            Duration::from_secs(default_min)
        };
        fields.push(format!("action: {action}"));
        let check_options: &[&str] = match (kind, host, self.dns) {
            (8, _, true) => &["runon", "tcp", "http", "resolves", "until"],
            (8, _, false) => &["runon", "tcp", "http", "until"],
            (_, Some(_), true) => &["none", "run", "runon", "tcp", "http", "resolves", "until"],
            (_, Some(_), false) => &["none", "run", "runon", "tcp", "http", "until"],
            (_, None, true) => &["none", "runon", "tcp", "http", "resolves", "until"],
            (_, None, false) => &["none", "runon", "tcp", "http", "until"],
        };
        match *self.choices.pick(check_options) {
            "run" => fields.push(format!("check: Run({})", lit(&self.template()))),
            "until" => {
                let run = self.template();
                let on = match host {
                    Some(_) if self.choices.chance(50) => String::new(),
                    _ => format!(", on: {}", lit(self.host())),
                };
                fields.push(format!(
                    "check: Until(run: {}, every: \"2s\", within: \"1m\"{on})",
                    lit(&run)
                ));
            }
            "runon" => {
                let on = self.host();
                fields.push(format!(
                    "check: RunOn(host: {}, run: {})",
                    lit(on),
                    lit(&self.template())
                ));
            }
            "tcp" => {
                let on = self.host();
                fields.push(format!(
                    "check: Tcp(host: {}, port: {})",
                    lit(on),
                    self.choices.below(65_536)
                ));
            }
            "http" => {
                let mut check = "check: Http(url: \"https://lists.example.org/{{svc}}\"".to_owned();
                if self.choices.chance(50) {
                    let _ = write!(
                        check,
                        ", status: {}",
                        *self.choices.pick(&[200, 204, 302, 503])
                    );
                }
                check.push(')');
                fields.push(check);
            }
            "resolves" => {
                let record = self.record();
                let address = self.address();
                fields.push(format!(
                    "check: Resolves(record: {}, to: {})",
                    lit(&record),
                    lit(&address)
                ));
            }
            _ => {}
        }
        if self.choices.chance(50) {
            let mut figures = [self.duration(), self.duration(), self.duration()];
            figures.sort();
            let [a, b, c] = figures.map(|d| self.spell(d));
            let model = match self.choices.below(4) {
                0 => {
                    min = figures[0];
                    format!("Fixed({})", lit(&a))
                }
                1 => {
                    min = figures[0];
                    format!("Uniform(min: {}, max: {})", lit(&a), lit(&c))
                }
                2 if figures[0] < figures[2] => {
                    min = figures[0];
                    format!(
                        "Pert(min: {}, likely: {}, max: {})",
                        lit(&a),
                        lit(&b),
                        lit(&c)
                    )
                }
                2 => {
                    min = figures[0];
                    format!(
                        "Pert(min: {}, likely: {}, max: {})",
                        lit(&a),
                        lit(&a),
                        lit(&a)
                    )
                }
                _ => {
                    // LogNormal needs 0 < p50 < p95; its minimum is zero.
                    let p50 = figures[0] + Duration::from_secs(1);
                    let p95 = figures[2] + Duration::from_secs(2);
                    min = Duration::ZERO;
                    let (p50, p95) = (self.spell(p50), self.spell(p95));
                    format!("LogNormal(p50: {}, p95: {})", lit(&p50), lit(&p95))
                }
            };
            fields.push(format!("duration: {model}"));
        }
        if self.choices.chance(30) {
            let extra = self.duration();
            let deadline = self.spell(min + extra);
            fields.push(format!("deadline: {}", lit(&deadline)));
        }
        if self.choices.chance(20) {
            let retries = 1 + self.choices.below(3);
            fields.push(format!("retries: {retries}"));
            if self.choices.chance(50) {
                fields.push("retry_interval: \"5s\"".to_owned());
            }
        }
        if self.choices.chance(30) {
            // Earlier steps only (no cycles); ones of earlier phases are allowed and dropped.
            let mut after: Vec<String> = Vec::new();
            for earlier in &self.ids {
                if self.choices.chance(30) {
                    after.push(lit(earlier));
                }
            }
            fields.push(format!("after: [{}]", after.join(", ")));
        }
        if self.downtime_open && (last || self.choices.chance(40)) {
            fields.push("downtime: Ends".to_owned());
            self.downtime_open = false;
        } else if !self.downtime_open && !last && self.choices.chance(30) {
            fields.push("downtime: Begins".to_owned());
            if self.choices.chance(40) {
                fields.push("outage: \"read-only\"".to_owned());
            }
            self.downtime_open = true;
        }
        if self.choices.chance(15) {
            let loses = self.word();
            fields.push(format!("loses: {}", lit(&loses)));
        }
        if self.choices.chance(20) {
            let settle = self.duration();
            fields.push(format!("settle: {}", lit(&self.spell(settle))));
        }
        if self.choices.chance(20) {
            fields.push(format!("notice: {}", lit(&self.template())));
        }
        if self.choices.chance(15) {
            fields.push("revert_after_failure: true".to_owned());
        }
        if self.choices.chance(15) {
            let value = self.template();
            fields.push(format!(
                "env: {{\"PGPORT\": {}, \"LANG\": \"C\"}}",
                lit(&value)
            ));
        }
        if self.choices.chance(20) {
            const RATES: [&str; 7] = ["0.0", "1.0", "0.5", "0.05", "0.125", "0.0001", "0.333"];
            let rate = RATES[self.choices.below(RATES.len())];
            fields.push(format!("failure_rate: {rate}"));
        }
        let _ = writeln!(self.out, "      Step({}),", fields.join(", "));
        self.ids.push(id);
    }
}

/// Writes `spec` as the text of a plan that should load without errors.
fn render(spec: &Spec) -> Rendered {
    let mut choices = Choices(spec.seed);
    let hosts = HOSTS[..2 + choices.below(2)].to_vec();
    let dns = choices.chance(75);
    let total: usize = spec.kinds.iter().map(Vec::len).sum();
    let ponr = choices.chance(60).then(|| choices.below(total + 1));
    let mut writer = Writer {
        spec,
        choices,
        hosts,
        dns,
        ids: Vec::new(),
        ponr,
        downtime_open: false,
        rollback_points: 0,
        out: String::new(),
    };
    writer.header();
    writer.phases();
    Rendered {
        ids: writer.ids,
        text: writer.out,
    }
}

fn load(name: &str, text: &str) -> Loaded {
    load_bytes(
        name.to_owned(),
        text.as_bytes().to_vec(),
        &Settings::default(),
    )
}

fn load_valid(name: &str, text: &str) -> Result<Plan, TestCaseError> {
    let loaded = load(name, text);
    match loaded.plan {
        Some(plan) => Ok(plan),
        None => {
            let problems: Vec<String> = loaded
                .diagnostics
                .iter()
                .map(|d| {
                    let at = d.labels().first().map(|l| {
                        text.get(l.span.offset..l.span.end())
                            .unwrap_or("<out of range>")
                    });
                    format!("{}: {} at {at:?}", d.rule(), d.message())
                })
                .collect();
            Err(TestCaseError::fail(format!(
                "{name} does not load:\n{}\n--- text ---\n{text}",
                problems.join("\n")
            )))
        }
    }
}

/// What each step is, without its spans.
fn step_view(plan: &Plan) -> Vec<String> {
    plan.steps().map(plan_core::Step::what).collect()
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Shrinking a failure of a generated plan rarely needs more.
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(96))]

    #[test]
    fn generated_plans_load_and_print_as_a_fixpoint(spec in spec_strategy()) {
        let rendered = render(&spec);
        let first = load_valid("generated.ron", &rendered.text)?;
        let ids: Vec<&str> = first.steps().map(|s| s.id.as_str()).collect();
        prop_assert_eq!(&ids, &rendered.ids);

        let printed = to_ron(&first);
        let second = load_valid("printed.ron", &printed)?;
        let reprinted = to_ron(&second);
        prop_assert_eq!(&printed, &reprinted, "to_ron is not a fixpoint");

        prop_assert_eq!(step_view(&first), step_view(&second));
        let durations = |p: &Plan| p.steps().map(|s| s.duration).collect::<Vec<_>>();
        prop_assert_eq!(durations(&first), durations(&second));
        prop_assert_eq!(&first.vars, &second.vars);
        prop_assert_eq!(first.phases.len(), second.phases.len());
        for (a, b) in first.phases.iter().zip(&second.phases) {
            prop_assert_eq!(&a.name, &b.name);
            prop_assert_eq!(a.at, b.at);
            let markers = |p: &plan_core::Phase| {
                p.entries
                    .iter()
                    .map(|e| match e {
                        plan_core::Entry::Step(s) => format!("step {}", s.id),
                        plan_core::Entry::RollbackPoint(m) => format!("rollback {}", m.text),
                        plan_core::Entry::PointOfNoReturn(m) => format!("ponr {}", m.text),
                    })
                    .collect::<Vec<_>>()
            };
            prop_assert_eq!(markers(a), markers(b));
        }
    }

    #[test]
    fn schedules_hold_the_pending_steps_in_order_with_forward_barriers(spec in spec_strategy()) {
        let rendered = render(&spec);
        let plan = load_valid("generated.ron", &rendered.text)?;
        check_schedule(&plan, &Selection::default())?;
        for phase in &plan.phases {
            check_schedule(&plan, &Selection { phase: Some(phase.name.clone()), ..Selection::default() })?;
        }
        // Steps done by an earlier run are left out.
        let done: std::collections::HashSet<String> =
            plan.steps().step_by(2).map(|s| s.id.clone()).collect();
        check_schedule(&plan, &Selection { phase: None, already_done: done })?;
    }
}

// ---------------------------------------------------------------------------
// Damaged and arbitrary input
// ---------------------------------------------------------------------------

/// The loader either gives a plan, or errors labelled inside the text.
/// What must hold of the schedule `Schedule::new` builds for `selection`.
fn check_schedule(plan: &Plan, selection: &Selection) -> Result<(), TestCaseError> {
    let schedule = Schedule::new(plan, selection);
    // Exactly the pending steps of the selected phases, in plan order.
    let expected: Vec<&str> = plan
        .phases
        .iter()
        .filter(|p| selection.phase.as_ref().is_none_or(|name| *name == p.name))
        .flat_map(|p| p.entries.iter())
        .filter_map(|e| match e {
            Entry::Step(s) if s.pending() && !selection.already_done.contains(&s.id) => {
                Some(s.id.as_str())
            }
            _ => None,
        })
        .collect();
    let ids: Vec<&str> = schedule.steps.iter().map(|s| s.id.as_str()).collect();
    prop_assert_eq!(&ids, &expected);
    let mut last_segment = 0;
    let mut past = false;
    for (ix, step) in schedule.steps.iter().enumerate() {
        prop_assert_eq!(schedule.index_of(&step.id), Some(ix));
        // Dependencies are earlier steps of the run: no cycle, no dangling index.
        prop_assert!(
            step.deps.iter().all(|&d| d < ix),
            "{}: {:?}",
            step.id,
            step.deps
        );
        // Segments (barriers) only go forward; a rollback goes back to one
        // at or before the step's own, at a declared point.
        prop_assert!(
            step.segment >= last_segment,
            "{} goes back a segment",
            step.id
        );
        prop_assert!(step.rollback_segment <= step.segment, "{}", step.id);
        prop_assert!(
            schedule.points.contains(&step.rollback_point),
            "{}",
            step.id
        );
        // Once past the point of no return, always past it.
        prop_assert!(
            !past || step.past_no_return,
            "{} is before the point again",
            step.id
        );
        past = step.past_no_return;
        last_segment = step.segment;
        // A step the plan marks done never runs.
        let planned = plan.step(&step.id).expect("a step of the plan");
        prop_assert!(planned.pending());
        prop_assert_eq!(step.retries, planned.retries);
    }
    // The point of no return is crossed in this run only if the run holds
    // its entry and a step past it.
    if schedule.no_return.is_some() {
        prop_assert!(schedule.steps.iter().any(|s| s.past_no_return));
    }
    Ok(())
}

fn assert_loads_or_explains(bytes: Vec<u8>) -> Result<(), TestCaseError> {
    let loaded = load_bytes("damaged.ron".to_owned(), bytes, &Settings::default());
    if loaded.plan.is_some() {
        prop_assert!(!loaded.diagnostics.has_errors());
        return Ok(());
    }
    prop_assert!(
        loaded.diagnostics.has_errors(),
        "no plan, but no error either"
    );
    let text = loaded.source.text();
    let mut labelled = false;
    for d in loaded.diagnostics.iter() {
        for label in d.labels() {
            labelled = true;
            prop_assert!(
                label.span.end() <= text.len(),
                "{}: label {:?} outside the text ({} bytes)",
                d.rule(),
                label.span,
                text.len()
            );
            prop_assert!(
                text.is_char_boundary(label.span.offset),
                "{}: label {:?} starts inside a character",
                d.rule(),
                label.span
            );
        }
    }
    prop_assert!(labelled, "no error says where: {:?}", loaded.diagnostics);
    Ok(())
}

#[derive(Clone, Debug)]
enum Damage {
    Truncate(usize),
    Flip(usize, u8),
    InsertBracket(usize, u8),
    DeleteBracket(usize),
}

fn damage_strategy() -> impl Strategy<Value = Damage> {
    prop_oneof![
        any::<usize>().prop_map(Damage::Truncate),
        (any::<usize>(), 1u8..=255).prop_map(|(at, mask)| Damage::Flip(at, mask)),
        (any::<usize>(), prop::sample::select(b"()[]{}\"".to_vec()))
            .prop_map(|(at, b)| Damage::InsertBracket(at, b)),
        any::<usize>().prop_map(Damage::DeleteBracket),
    ]
}

fn apply(bytes: &mut Vec<u8>, damage: &Damage) {
    if bytes.is_empty() {
        return;
    }
    match *damage {
        Damage::Truncate(at) => bytes.truncate(at % bytes.len()),
        Damage::Flip(at, mask) => {
            let at = at % bytes.len();
            bytes[at] ^= mask;
        }
        Damage::InsertBracket(at, b) => bytes.insert(at % (bytes.len() + 1), b),
        Damage::DeleteBracket(n) => {
            let brackets: Vec<usize> = bytes
                .iter()
                .enumerate()
                .filter(|(_, b)| b"()[]{}".contains(b))
                .map(|(i, _)| i)
                .collect();
            if !brackets.is_empty() {
                bytes.remove(brackets[n % brackets.len()]);
            }
        }
    }
}

proptest! {
    #![proptest_config(config(192))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        assert_loads_or_explains(bytes)?;
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        assert_loads_or_explains(text.into_bytes())?;
    }

    #[test]
    fn damaged_plans_never_panic(
        spec in spec_strategy(),
        damage in prop::collection::vec(damage_strategy(), 1..5),
    ) {
        let mut bytes = render(&spec).text.into_bytes();
        for d in &damage {
            apply(&mut bytes, d);
        }
        assert_loads_or_explains(bytes)?;
    }

    #[test]
    fn damaged_prints_never_panic(
        spec in spec_strategy(),
        damage in prop::collection::vec(damage_strategy(), 1..4),
    ) {
        // The printer's layout (raw strings, nesting) damaged in its own ways.
        let text = render(&spec).text;
        let Some(plan) = load("generated.ron", &text).plan else {
            return Err(TestCaseError::fail(format!("generated plan does not load:\n{text}")));
        };
        let mut bytes = to_ron(&plan).into_bytes();
        for d in &damage {
            apply(&mut bytes, d);
        }
        assert_loads_or_explains(bytes)?;
    }
}
