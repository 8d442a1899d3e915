//! What the suite reports: one [`Row`] per measurement (name, native baseline, value,
//! ratio, note), its text table and its JSON document. Pure formatting; the sections fill
//! the rows. Tested in `bench/tests/pure.rs`.

use serde::Serialize;

use crate::stats::Fit;

/// The unit of a measured value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Seconds,
    BytesPerSecond,
    PerSecond,
    Bytes,
    /// Seconds of cost per second of recorded execution (a scaling slope).
    SecondsPerSecond,
    /// A plain count or factor.
    Count,
}

/// One measured quantity, or why there is none.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Value {
    /// A measurement (the median when `samples` has several).
    Measured { value: f64, unit: Unit },
    /// A budget ran out first: the true value is at least this.
    AtLeast { value: f64, unit: Unit },
    /// The tool is missing or cannot run here.
    Unavailable { why: String },
    /// The tool ran and failed; its own error text.
    Failed { error: String },
}

impl Value {
    pub fn secs(value: f64) -> Value {
        Value::Measured {
            value,
            unit: Unit::Seconds,
        }
    }

    /// The number and its unit, measured or lower bound.
    pub fn number(&self) -> Option<(f64, Unit)> {
        match *self {
            Value::Measured { value, unit } | Value::AtLeast { value, unit } => Some((value, unit)),
            _ => None,
        }
    }

    /// As the table shows it.
    pub fn display(&self) -> String {
        match self {
            Value::Measured { value, unit } => fmt_unit(*value, *unit),
            Value::AtLeast { value, unit } => format!(">= {}", fmt_unit(*value, *unit)),
            Value::Unavailable { why } => format!("unavailable: {why}"),
            Value::Failed { error } => format!("error: {error}"),
        }
    }
}

/// Value divided by baseline, and whether that is only a lower bound.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Ratio {
    pub value: f64,
    pub lower_bound: bool,
}

/// One line of the table.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub section: String,
    pub name: String,
    /// Native time of what the row measures, in seconds, if it has one.
    pub native_s: Option<f64>,
    pub value: Value,
    /// `value / native_s` when both are times.
    pub ratio: Option<Ratio>,
    /// How it was measured and what dominates it.
    pub note: String,
    /// Every run behind a median (seconds or the row's unit).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<f64>,
    /// Native runs behind `native_s`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub native_samples: Vec<f64>,
    /// Extra figures for tools (counts, sizes, other baselines).
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Row {
    /// A measurement that could not be set up (a missing tool, a workload that failed).
    pub fn unavailable(section: &str, name: impl Into<String>, e: &anyhow::Error) -> Row {
        Row::new(
            section,
            name,
            None,
            Value::Unavailable {
                why: format!("{e:#}"),
            },
        )
    }

    /// A measurement whose tool failed, with its error.
    pub fn failed(section: &str, name: impl Into<String>, e: &anyhow::Error) -> Row {
        Row::new(
            section,
            name,
            None,
            Value::Failed {
                error: format!("{e:#}"),
            },
        )
    }

    /// A row whose ratio is computed from `value` and `native_s` when both are seconds.
    pub fn new(section: &str, name: impl Into<String>, native_s: Option<f64>, value: Value) -> Row {
        let ratio = match (&value, native_s) {
            (
                Value::Measured {
                    value,
                    unit: Unit::Seconds,
                },
                Some(n),
            ) if n > 0.0 => Some(Ratio {
                value: value / n,
                lower_bound: false,
            }),
            (
                Value::AtLeast {
                    value,
                    unit: Unit::Seconds,
                },
                Some(n),
            ) if n > 0.0 => Some(Ratio {
                value: value / n,
                lower_bound: true,
            }),
            _ => None,
        };
        Row {
            section: section.to_string(),
            name: name.into(),
            native_s,
            value,
            ratio,
            note: String::new(),
            samples: Vec::new(),
            native_samples: Vec::new(),
            extra: serde_json::Map::new(),
        }
    }

    pub fn note(mut self, note: impl Into<String>) -> Row {
        self.note = note.into();
        self
    }

    /// Puts `s` before the note (a failed row keeps only its error).
    pub fn prepend_note(mut self, s: &str) -> Row {
        if self.note.is_empty() {
            self.note = s.to_string();
        } else if !matches!(self.value, Value::Failed { .. }) {
            self.note = format!("{s}; {}", self.note);
        }
        self
    }

    pub fn samples(mut self, samples: &[f64]) -> Row {
        self.samples = samples.to_vec();
        self
    }

    pub fn native_samples(mut self, samples: &[f64]) -> Row {
        self.native_samples = samples.to_vec();
        self
    }

    pub fn extra(mut self, key: &str, value: impl Into<serde_json::Value>) -> Row {
        self.extra.insert(key.to_string(), value.into());
        self
    }

    /// The row's cells as the table prints them: name, native, value, ratio, note.
    pub fn cells(&self) -> [String; 5] {
        let ratio = match self.ratio {
            Some(r) if r.lower_bound => format!(">= {}", fmt_ratio(r.value)),
            Some(r) => fmt_ratio(r.value),
            None => "-".into(),
        };
        [
            self.name.clone(),
            self.native_s.map_or_else(|| "-".into(), fmt_secs),
            self.value.display(),
            ratio,
            self.note.clone(),
        ]
    }
}

/// A least-squares fit of one scaling cost, for the JSON document.
#[derive(Clone, Debug, Serialize)]
pub struct FitReport {
    pub name: String,
    /// (seconds of native execution recorded, seconds of cost).
    pub points: Vec<(f64, f64)>,
    pub fit: Option<Fit>,
}

/// The JSON document `--json` writes.
#[derive(Debug, Serialize)]
pub struct Document {
    pub suite: &'static str,
    pub version: &'static str,
    pub quick: bool,
    /// Runs behind each median (fewer for the costliest rows; each row's samples say).
    pub runs: usize,
    pub host: Host,
    pub started_unix_s: u64,
    pub wall_s: f64,
    pub rows: Vec<Row>,
    pub fits: Vec<FitReport>,
}

/// Where the numbers were taken.
#[derive(Debug, Serialize)]
pub struct Host {
    pub cpus: usize,
    pub kernel: String,
    pub cpu_model: String,
    pub gdb: String,
    pub strace: String,
}

/// Time with a unit that keeps three significant figures or so.
pub fn fmt_secs(s: f64) -> String {
    let a = s.abs();
    if a == 0.0 {
        "0 s".into()
    } else if a < 1e-3 {
        format!("{:.1} us", s * 1e6)
    } else if a < 1.0 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{s:.3} s")
    }
}

/// A ratio as `0.00123x`, `0.012x`, `1.23x`, `12.3x` or `12345x`.
pub fn fmt_ratio(r: f64) -> String {
    if r < 0.01 {
        format!("{r:.5}x")
    } else if r < 0.1 {
        format!("{r:.3}x")
    } else if r < 10.0 {
        format!("{r:.2}x")
    } else if r < 100.0 {
        format!("{r:.1}x")
    } else {
        format!("{r:.0}x")
    }
}

/// A value in its unit, in human scale.
pub fn fmt_unit(v: f64, unit: Unit) -> String {
    let scaled = |v: f64, suffix: &str| {
        if v >= 1e9 {
            format!("{:.2} G{suffix}", v / 1e9)
        } else if v >= 1e6 {
            format!("{:.2} M{suffix}", v / 1e6)
        } else if v >= 1e4 {
            format!("{:.1} k{suffix}", v / 1e3)
        } else {
            format!("{v:.0} {suffix}")
        }
    };
    match unit {
        Unit::Seconds => fmt_secs(v),
        Unit::BytesPerSecond => scaled(v, "B/s"),
        Unit::PerSecond => scaled(v, "/s"),
        Unit::Bytes => scaled(v, "B"),
        Unit::SecondsPerSecond => format!("{v:.4} s/s"),
        Unit::Count => {
            if v.fract() == 0.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.3}")
            }
        }
    }
}

/// The table: a header, a rule, one line per row, columns padded to their widest cell
/// (the value column capped so one long error does not push the ratios off screen; the
/// whole text is in the note and the JSON).
pub fn table(rows: &[Row]) -> String {
    const HEAD: [&str; 5] = ["name", "native", "value", "ratio", "note"];
    const VALUE_MAX: usize = 44;
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            let mut c = r.cells();
            if c[2].chars().count() > VALUE_MAX {
                let full = std::mem::take(&mut c[2]);
                let cut: String = full.chars().take(VALUE_MAX - 3).collect();
                c[2] = format!("{cut}...");
                if !c[4].contains(&full) {
                    c[4] = if c[4].is_empty() {
                        full
                    } else {
                        format!("{full}; {}", c[4])
                    };
                }
            }
            c
        })
        .collect();
    let mut width = HEAD.map(str::len);
    for c in &cells {
        for (w, cell) in width.iter_mut().zip(c.iter()).take(4) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |c: [&str; 5]| {
        let mut s = format!(
            "{:<w0$}  {:>w1$}  {:>w2$}  {:>w3$}",
            c[0],
            c[1],
            c[2],
            c[3],
            w0 = width[0],
            w1 = width[1],
            w2 = width[2],
            w3 = width[3]
        );
        if !c[4].is_empty() {
            s.push_str("  ");
            s.push_str(c[4]);
        }
        s.trim_end().to_string()
    };
    let mut out = line(HEAD);
    out.push('\n');
    out.push_str(&"-".repeat(width.iter().sum::<usize>() + 8 + 6));
    out.push('\n');
    let mut section = None;
    for (r, c) in rows.iter().zip(&cells) {
        if section.is_some_and(|s: &str| s != r.section) {
            out.push('\n');
        }
        section = Some(r.section.as_str());
        out.push_str(&line([&c[0], &c[1], &c[2], &c[3], &c[4]]));
        out.push('\n');
    }
    out
}
