//! Learning-curve plots: `spar plot RUN_DIR` renders a run's `metrics.jsonl` as an SVG image.
//!
//! [`read_metrics`] parses the JSON-lines file into `(step, name -> value)` rows,
//! [`render_svg`] lays the rows out as a grid of panels (two columns, one polyline per
//! metric) and [`write_svg`] ties both together and writes the image atomically.
//! The SVG is written by hand so the feature needs no plotting dependency.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Errors rendering a plot.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The metrics file could not be read.
    #[error("cannot read metrics file {path}")]
    Read {
        /// The metrics file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line of the metrics file is not a JSON object with an integer `step`.
    #[error("{path}:{line}: {detail}")]
    Parse {
        /// The metrics file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What is wrong with the line.
        detail: String,
    },
    /// The metrics file holds no rows.
    #[error("{path} has no metrics yet")]
    Empty {
        /// The metrics file.
        path: PathBuf,
    },
    /// The SVG file could not be written.
    #[error("cannot write plot {path}")]
    Write {
        /// The SVG file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// One panel of the figure: a title and the metric names drawn in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Panel {
    /// The panel's title.
    pub title: &'static str,
    /// The metric names drawn in the panel, one line each.
    pub series: &'static [&'static str],
}

/// The panels `spar plot` draws by default.
pub const DEFAULT_PANELS: &[Panel] = &[
    Panel {
        title: "Rewards",
        series: &["solver_reward", "injector_reward"],
    },
    Panel {
        title: "Rates",
        series: &["solve_rate", "valid_rate"],
    },
    Panel {
        title: "Entropy",
        series: &["entropy_solver", "entropy_injector"],
    },
    Panel {
        title: "Loss",
        series: &["loss"],
    },
];

/// Reads metrics.jsonl rows: (step, name -> value) for numeric fields.
///
/// Blank lines are skipped; every other line must be a JSON object with a non-negative
/// integer `"step"`. Of its other top-level fields only finite numbers are kept, so null,
/// missing, string and nested (such as `"eval"`) fields are left out. A file with no rows
/// is [`PlotError::Empty`].
// The row type is spelled out so callers see plain std types rather than a crate alias.
#[allow(clippy::type_complexity)]
pub fn read_metrics(path: &Path) -> Result<Vec<(u64, BTreeMap<String, f64>)>, PlotError> {
    let text = std::fs::read_to_string(path).map_err(|source| PlotError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut rows = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let parse_error = |detail: String| PlotError::Parse {
            path: path.to_path_buf(),
            line: index + 1,
            detail,
        };
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| parse_error(format!("invalid JSON: {e}")))?;
        let serde_json::Value::Object(object) = value else {
            return Err(parse_error("expected a JSON object".to_string()));
        };
        let step = object
            .get("step")
            .and_then(json_step)
            .ok_or_else(|| parse_error("expected a non-negative integer \"step\"".to_string()))?;
        let fields = object
            .iter()
            .filter(|(name, _)| name.as_str() != "step")
            .filter_map(|(name, value)| {
                let number = value.as_f64()?;
                number.is_finite().then(|| (name.clone(), number))
            })
            .collect();
        rows.push((step, fields));
    }
    if rows.is_empty() {
        return Err(PlotError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(rows)
}

/// A step as written by the trainer: an unsigned integer, or a float with no fraction.
fn json_step(value: &serde_json::Value) -> Option<u64> {
    if let Some(step) = value.as_u64() {
        return Some(step);
    }
    let float = value.as_f64()?;
    // `u64::MAX as f64` rounds up to 2^64, which is itself out of range.
    let in_range = float >= 0.0 && float < u64::MAX as f64;
    (in_range && float.fract() == 0.0).then_some(float as u64)
}

/// Width of one panel, in SVG user units.
const PANEL_W: f64 = 480.0;
/// Height of one panel.
const PANEL_H: f64 = 300.0;
/// Space between panels and around the grid.
const GAP: f64 = 20.0;
/// Height of the band holding the overall title and subtitle.
const HEADER_H: f64 = 56.0;
/// Plot-area margins inside a panel.
const LEFT: f64 = 64.0;
/// Right margin of the plot area.
const RIGHT: f64 = 16.0;
/// Top of the first legend row (below the panel title).
const LEGEND_TOP: f64 = 40.0;
/// Height of one legend row.
const LEGEND_ROW_H: f64 = 16.0;
/// Bottom margin of the plot area (x tick labels and the axis label).
const BOTTOM: f64 = 44.0;
/// Series with fewer points than this get circle markers.
const MARKER_LIMIT: usize = 60;
/// Series colours, assigned by position in the panel.
const COLORS: &[&str] = &[
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];
/// Values are clamped to this magnitude so that axis ranges stay finite.
const CLAMP: f64 = 1e300;

/// Renders panels as one SVG document (a grid of 2 columns), returns the SVG text.
///
/// Each panel has its title, a legend, axes with round y ticks and step x ticks, and one
/// polyline per metric that has data (with circle markers when it has fewer than 60
/// points); a panel none of whose metrics has data says "no data". Rows may come in any
/// order: points are drawn sorted by step.
pub fn render_svg(rows: &[(u64, BTreeMap<String, f64>)], panels: &[Panel], title: &str) -> String {
    let cols = panels.len().clamp(1, 2);
    let grid_rows = panels.len().div_ceil(2).max(1);
    let width = GAP + cols as f64 * (PANEL_W + GAP);
    let height = HEADER_H + grid_rows as f64 * (PANEL_H + GAP);

    let mut svg = String::new();
    svg.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{w}\" height=\"{h}\" \
         viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\">",
        w = coord(width),
        h = coord(height),
    );
    let _ = writeln!(svg, "<title>{}</title>", escape(title));
    svg.push_str("<rect x=\"0\" y=\"0\" width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n");
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"26\" font-size=\"18\" font-weight=\"bold\" text-anchor=\"middle\" \
         fill=\"#222222\">{}</text>",
        coord(width / 2.0),
        escape(title),
    );
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"44\" font-size=\"11\" text-anchor=\"middle\" fill=\"#666666\">{}</text>",
        coord(width / 2.0),
        escape(&subtitle(rows)),
    );
    if panels.is_empty() {
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" font-size=\"14\" text-anchor=\"middle\" fill=\"#888888\">\
             no panels</text>",
            coord(width / 2.0),
            coord(HEADER_H + PANEL_H / 2.0),
        );
    }
    for (index, panel) in panels.iter().enumerate() {
        let x = GAP + (index % 2) as f64 * (PANEL_W + GAP);
        let y = HEADER_H + (index / 2) as f64 * (PANEL_H + GAP);
        render_panel(&mut svg, rows, panel, x, y);
    }
    svg.push_str("</svg>\n");
    svg
}

/// Reads `metrics` and writes the SVG to `out` atomically (temp file + rename). Returns the number of points drawn.
///
/// The figure has the [`DEFAULT_PANELS`]; the temporary file sits beside `out` so the
/// rename never crosses file systems, and is removed if anything fails.
pub fn write_svg(metrics: &Path, out: &Path, title: &str) -> Result<usize, PlotError> {
    let rows = read_metrics(metrics)?;
    let svg = render_svg(&rows, DEFAULT_PANELS, title);
    let points = DEFAULT_PANELS
        .iter()
        .flat_map(|panel| panel.series.iter())
        .map(|name| series_points(&rows, name).len())
        .sum();
    let write_error = |source| PlotError::Write {
        path: out.to_path_buf(),
        source,
    };
    let Some(file_name) = out.file_name() else {
        return Err(write_error(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the output path has no file name",
        )));
    };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = out.with_file_name(tmp_name);
    let result = std::fs::File::create(&tmp)
        .and_then(|mut file| {
            file.write_all(svg.as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, out));
    if let Err(source) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(write_error(source));
    }
    Ok(points)
}

/// The points of one metric, `(step, value)` sorted by step, values clamped to ±[`CLAMP`].
fn series_points(rows: &[(u64, BTreeMap<String, f64>)], name: &str) -> Vec<(f64, f64)> {
    let mut points: Vec<(f64, f64)> = rows
        .iter()
        .filter_map(|(step, fields)| {
            let value = *fields.get(name)?;
            value
                .is_finite()
                .then(|| (*step as f64, value.clamp(-CLAMP, CLAMP)))
        })
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    points
}

/// "N rows, steps A to B" under the overall title.
fn subtitle(rows: &[(u64, BTreeMap<String, f64>)]) -> String {
    let first = rows.iter().map(|(step, _)| *step).min();
    let last = rows.iter().map(|(step, _)| *step).max();
    let noun = if rows.len() == 1 { "row" } else { "rows" };
    match (first, last) {
        (Some(first), Some(last)) if first == last => {
            format!("{} {noun}, step {first}", rows.len())
        }
        (Some(first), Some(last)) => format!("{} {noun}, steps {first} to {last}", rows.len()),
        _ => "no rows".to_string(),
    }
}

/// Draws one panel as a `<g>` translated to `(x, y)`.
fn render_panel(
    svg: &mut String,
    rows: &[(u64, BTreeMap<String, f64>)],
    panel: &Panel,
    x: f64,
    y: f64,
) {
    let _ = writeln!(
        svg,
        "<g transform=\"translate({},{})\">",
        coord(x),
        coord(y)
    );
    let _ = writeln!(
        svg,
        "<rect x=\"0\" y=\"0\" width=\"{}\" height=\"{}\" fill=\"#ffffff\" stroke=\"#cccccc\"/>",
        coord(PANEL_W),
        coord(PANEL_H),
    );
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"20\" font-size=\"14\" font-weight=\"bold\" text-anchor=\"middle\" \
         fill=\"#222222\">{}</text>",
        coord(PANEL_W / 2.0),
        escape(panel.title),
    );

    let series: Vec<Series> = panel
        .series
        .iter()
        .enumerate()
        .map(|(index, name)| Series {
            name,
            color: COLORS[index % COLORS.len()],
            points: series_points(rows, name),
        })
        .collect();
    let legend_rows = render_legend(svg, &series);

    let top = LEGEND_TOP + legend_rows as f64 * LEGEND_ROW_H + 4.0;
    let area = Area {
        left: LEFT,
        top,
        width: PANEL_W - LEFT - RIGHT,
        height: PANEL_H - top - BOTTOM,
    };
    let all: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|series| series.points.iter().copied())
        .collect();
    if all.is_empty() {
        let _ = writeln!(
            svg,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#dddddd\"/>",
            coord(area.left),
            coord(area.top),
            coord(area.width),
            coord(area.height),
        );
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" font-size=\"14\" text-anchor=\"middle\" fill=\"#888888\">\
             no data</text>",
            coord(area.left + area.width / 2.0),
            coord(area.top + area.height / 2.0),
        );
        svg.push_str("</g>\n");
        return;
    }

    let (x_min, x_max) = bounds(all.iter().map(|p| p.0));
    let (y_min, y_max) = bounds(all.iter().map(|p| p.1));
    let x_axis = Axis::new(x_min, x_max, true);
    let y_axis = Axis::new(y_min, y_max, false);
    render_axes(svg, &area, &x_axis, &y_axis);

    for Series {
        name,
        color,
        points,
    } in &series
    {
        if points.is_empty() {
            continue;
        }
        let path: Vec<String> = points
            .iter()
            .map(|&(px, py)| {
                format!(
                    "{},{}",
                    coord(area.x(&x_axis, px)),
                    coord(area.y(&y_axis, py))
                )
            })
            .collect();
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" \
             stroke-linejoin=\"round\" points=\"{}\"><title>{}</title></polyline>",
            path.join(" "),
            escape(name),
        );
        if points.len() < MARKER_LIMIT {
            let _ = writeln!(svg, "<g fill=\"{color}\">");
            for &(px, py) in points {
                let _ = writeln!(
                    svg,
                    "<circle cx=\"{}\" cy=\"{}\" r=\"2.5\"/>",
                    coord(area.x(&x_axis, px)),
                    coord(area.y(&y_axis, py)),
                );
            }
            svg.push_str("</g>\n");
        }
    }
    svg.push_str("</g>\n");
}

/// Draws the legend rows below the panel title; returns how many rows it took (at least 1).
fn render_legend(svg: &mut String, series: &[Series]) -> usize {
    let mut row = 0usize;
    let mut cursor = LEFT;
    for Series {
        name,
        color,
        points,
    } in series
    {
        let label = if points.is_empty() {
            format!("{name} (no data)")
        } else {
            (*name).to_string()
        };
        // A rough width for an 11px sans-serif label: the swatch, the text and a gap.
        let item_w = 24.0 + label.chars().count() as f64 * 6.5 + 16.0;
        if cursor > LEFT && cursor + item_w > PANEL_W - RIGHT {
            row += 1;
            cursor = LEFT;
        }
        let base = LEGEND_TOP + row as f64 * LEGEND_ROW_H;
        let dash = if points.is_empty() {
            " stroke-dasharray=\"3,3\""
        } else {
            ""
        };
        let _ = writeln!(
            svg,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{color}\" stroke-width=\"2\"{dash}/>",
            coord(cursor),
            coord(base - 4.0),
            coord(cursor + 18.0),
            coord(base - 4.0),
        );
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"#333333\">{}</text>",
            coord(cursor + 24.0),
            coord(base),
            escape(&label),
        );
        cursor += item_w;
    }
    row + 1
}

/// Draws the grid, the axes, their ticks and labels.
fn render_axes(svg: &mut String, area: &Area, x_axis: &Axis, y_axis: &Axis) {
    let bottom = area.top + area.height;
    let right = area.left + area.width;
    svg.push_str("<g stroke=\"#eeeeee\" stroke-width=\"1\">\n");
    for &tick in &y_axis.ticks {
        let ty = coord(area.y(y_axis, tick));
        let _ = writeln!(
            svg,
            "<line x1=\"{}\" y1=\"{ty}\" x2=\"{}\" y2=\"{ty}\"/>",
            coord(area.left),
            coord(right),
        );
    }
    svg.push_str("</g>\n");
    let _ = writeln!(
        svg,
        "<g stroke=\"#444444\" stroke-width=\"1\">\n\
         <line x1=\"{l}\" y1=\"{t}\" x2=\"{l}\" y2=\"{b}\"/>\n\
         <line x1=\"{l}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\"/>\n</g>",
        l = coord(area.left),
        t = coord(area.top),
        b = coord(bottom),
        r = coord(right),
    );

    svg.push_str("<g font-size=\"10\" fill=\"#444444\">\n");
    for &tick in &y_axis.ticks {
        let ty = area.y(y_axis, tick);
        let _ = writeln!(
            svg,
            "<line x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#444444\"/>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            coord(area.left - 4.0),
            coord(area.left),
            coord(area.left - 6.0),
            coord(ty + 3.5),
            escape(&y_axis.label(tick)),
            y = coord(ty),
        );
    }
    for &tick in &x_axis.ticks {
        let tx = area.x(x_axis, tick);
        let _ = writeln!(
            svg,
            "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"#444444\"/>\
             <text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            coord(bottom),
            coord(bottom + 4.0),
            coord(bottom + 16.0),
            escape(&x_axis.label(tick)),
            x = coord(tx),
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">step</text>",
        coord(area.left + area.width / 2.0),
        coord(bottom + 34.0),
    );
    svg.push_str("</g>\n");
}

/// One metric of a panel, ready to draw.
struct Series {
    /// The metric name.
    name: &'static str,
    /// Its stroke colour.
    color: &'static str,
    /// Its `(step, value)` points, sorted by step.
    points: Vec<(f64, f64)>,
}

/// The plot area of a panel, in panel coordinates.
struct Area {
    /// Left edge.
    left: f64,
    /// Top edge.
    top: f64,
    /// Width.
    width: f64,
    /// Height.
    height: f64,
}

impl Area {
    /// The horizontal position of data value `v`.
    fn x(&self, axis: &Axis, v: f64) -> f64 {
        self.left + axis.fraction(v) * self.width
    }

    /// The vertical position of data value `v` (larger values higher up).
    fn y(&self, axis: &Axis, v: f64) -> f64 {
        self.top + (1.0 - axis.fraction(v)) * self.height
    }
}

/// An axis: its range (`lo < hi`, both finite), its ticks and their spacing.
struct Axis {
    /// The value at the start of the axis.
    lo: f64,
    /// The value at the end of the axis.
    hi: f64,
    /// Tick positions, within `lo..=hi`.
    ticks: Vec<f64>,
    /// The spacing of the ticks, which sets how many decimals their labels need.
    step: f64,
    /// Whether the axis counts steps (labels then use k/M/G suffixes).
    integer: bool,
}

impl Axis {
    /// A "nice" axis covering `min..=max`: ticks at 1, 2 or 5 times a power of ten and the
    /// range widened to whole ticks. A zero-width range is padded first; `integer` keeps
    /// tick spacing at 1 or more (for steps).
    fn new(min: f64, max: f64, integer: bool) -> Axis {
        let (min, max) = if max > min {
            (min, max)
        } else if integer {
            (min - 1.0, max + 1.0)
        } else {
            let pad = if min == 0.0 { 1.0 } else { min.abs() * 0.1 };
            (min - pad, max + pad)
        };
        if let Some(axis) = Axis::nice(min, max, integer) {
            return axis;
        }
        // Precision ran out (a tiny range far from zero): plain ends, two ticks.
        Axis {
            lo: min,
            hi: max,
            ticks: vec![min, max],
            step: max - min,
            integer,
        }
    }

    /// The nice-number axis, or `None` where floating point cannot represent it well.
    fn nice(min: f64, max: f64, integer: bool) -> Option<Axis> {
        let range = max - min;
        if !(range.is_finite() && range > 0.0) {
            return None;
        }
        let rough = range / 5.0;
        let magnitude = 10f64.powf(rough.log10().floor());
        let normalized = rough / magnitude;
        let factor = if normalized < 1.5 {
            1.0
        } else if normalized < 3.0 {
            2.0
        } else if normalized < 7.0 {
            5.0
        } else {
            10.0
        };
        let mut step = factor * magnitude;
        if integer {
            step = step.max(1.0).round();
        }
        let lo = (min / step).floor() * step;
        let hi = (max / step).ceil() * step;
        let count = ((hi - lo) / step).round();
        let ok = step.is_finite()
            && step > 0.0
            && lo.is_finite()
            && hi.is_finite()
            && hi > lo
            && lo <= min
            && hi >= max
            && (1.0..=20.0).contains(&count);
        if !ok {
            return None;
        }
        let ticks = (0..=count as usize).map(|i| lo + i as f64 * step).collect();
        Some(Axis {
            lo,
            hi,
            ticks,
            step,
            integer,
        })
    }

    /// Where `v` falls along the axis, 0 at `lo` and 1 at `hi`.
    fn fraction(&self, v: f64) -> f64 {
        (v - self.lo) / (self.hi - self.lo)
    }

    /// A tick label with as many decimals as the tick spacing needs, in one notation for
    /// the whole axis: plain, scientific for very large or small values, or with a k/M/G
    /// suffix for large steps.
    fn label(&self, v: f64) -> String {
        // Ticks computed as `lo + i * step` can miss zero by a rounding error.
        let v = if v.abs() < self.step.abs() * 1e-9 {
            0.0
        } else {
            v
        };
        let top = self.ticks.iter().fold(0.0f64, |top, t| top.max(t.abs()));
        if self.integer && (1e4..1e12).contains(&top) {
            let (scale, suffix) = if top >= 1e9 {
                (1e9, "G")
            } else if top >= 1e6 {
                (1e6, "M")
            } else {
                (1e3, "k")
            };
            if v == 0.0 {
                return "0".to_string();
            }
            let decimals = decimals_for(self.step / scale);
            return format!("{}{suffix}", format_number_fixed(v / scale, decimals));
        }
        if top >= 1e6 || (top > 0.0 && top < 1e-3) {
            return format_sci(v);
        }
        format_number(v, decimals_for(self.step))
    }
}

/// The smallest and largest of some finite values.
fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}

/// How many decimals tell apart values `step` apart.
fn decimals_for(step: f64) -> usize {
    if step > 0.0 && step.is_finite() {
        (-step.log10().floor()).clamp(0.0, 12.0) as usize
    } else {
        3
    }
}

/// A number with at most `decimals` decimals, trailing zeros trimmed; very large or very
/// small magnitudes (that would round to zero) in scientific notation.
fn format_number(v: f64, decimals: usize) -> String {
    if !v.is_finite() {
        return "0".to_string();
    }
    let magnitude = v.abs();
    // Below one unit of the last decimal, fixed notation would print zero.
    let vanishes = magnitude > 0.0 && magnitude < 10f64.powi(-(decimals.min(300) as i32));
    if magnitude >= 1e6 || vanishes {
        return format_sci(v);
    }
    format_number_fixed(v, decimals)
}

/// `v` in scientific notation with up to three decimals, such as `2.5e6`; zero is `0`.
fn format_sci(v: f64) -> String {
    if !v.is_finite() || v == 0.0 {
        return "0".to_string();
    }
    let text = format!("{v:.3e}");
    match text.split_once('e') {
        Some((mantissa, exponent)) => format!("{}e{exponent}", trim_zeros(mantissa)),
        None => text,
    }
}

/// A coordinate in user units: one decimal, trimmed.
fn coord(v: f64) -> String {
    format_number_fixed(v, 1)
}

/// `v` with `decimals` decimals, trailing zeros trimmed, never "NaN" or "inf".
fn format_number_fixed(v: f64, decimals: usize) -> String {
    if !v.is_finite() {
        return "0".to_string();
    }
    let text = trim_zeros(&format!("{v:.decimals$}"));
    if text == "-0" {
        "0".to_string()
    } else {
        text
    }
}

/// Drops trailing zeros after a decimal point, and the point itself if nothing follows it.
fn trim_zeros(text: &str) -> String {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text.to_string()
    }
}

/// Escapes the XML special characters of text or attribute content.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters other than tab and newlines are not allowed in XML 1.0.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh scratch directory under the system temp dir, unique to this test.
    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("spar-plot-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn write_file(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("metrics.jsonl");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn row(step: u64, fields: &[(&str, f64)]) -> (u64, BTreeMap<String, f64>) {
        let map = fields
            .iter()
            .map(|(name, value)| (name.to_string(), *value))
            .collect();
        (step, map)
    }

    fn assert_balanced_groups(svg: &str) {
        let opens = svg.matches("<g ").count() + svg.matches("<g>").count();
        let closes = svg.matches("</g>").count();
        assert_eq!(opens, closes, "unbalanced <g> in:\n{svg}");
        assert_eq!(svg.matches("<svg").count(), 1);
        assert_eq!(svg.matches("</svg>").count(), 1);
        assert!(svg.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn parses_rows_skipping_missing_null_and_non_numeric_fields() {
        let dir = scratch("parse");
        let path = write_file(
            &dir,
            "{\"step\": 1, \"solver_reward\": 0.5, \"loss\": 2.0}\n\
             \n\
             {\"step\": 2, \"solver_reward\": null, \"loss\": 1.5, \"note\": \"x\", \
              \"eval\": {\"solve_rate\": 0.3}}\n\
             {\"step\": 3.0, \"valid_rate\": 1, \"flag\": true}\n",
        );
        let rows = read_metrics(&path).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].0, 1);
        assert_eq!(rows[0].1.get("solver_reward"), Some(&0.5));
        assert_eq!(rows[0].1.get("loss"), Some(&2.0));
        assert!(!rows[0].1.contains_key("step"));
        assert_eq!(rows[1].0, 2);
        assert!(!rows[1].1.contains_key("solver_reward"));
        assert!(!rows[1].1.contains_key("note"));
        assert!(!rows[1].1.contains_key("eval"));
        assert_eq!(rows[1].1.get("loss"), Some(&1.5));
        assert_eq!(rows[2].0, 3);
        assert_eq!(rows[2].1.get("valid_rate"), Some(&1.0));
        assert!(!rows[2].1.contains_key("flag"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn malformed_line_reports_its_line_number() {
        let dir = scratch("malformed");
        let path = write_file(
            &dir,
            "{\"step\": 1, \"loss\": 1.0}\n\n{\"step\": 2, \"loss\": \n",
        );
        match read_metrics(&path) {
            Err(PlotError::Parse { line, path: p, .. }) => {
                assert_eq!(line, 3);
                assert_eq!(p, path);
            }
            other => panic!("expected a parse error, got {other:?}"),
        }
        let error = read_metrics(&path).unwrap_err().to_string();
        assert!(error.contains(":3:"), "{error}");

        let path = write_file(&dir, "{\"loss\": 1.0}\n");
        assert!(matches!(
            read_metrics(&path),
            Err(PlotError::Parse { line: 1, .. })
        ));
        let path = write_file(&dir, "[1, 2]\n");
        assert!(matches!(
            read_metrics(&path),
            Err(PlotError::Parse { line: 1, .. })
        ));
        let path = write_file(&dir, "{\"step\": -1}\n");
        assert!(matches!(
            read_metrics(&path),
            Err(PlotError::Parse { line: 1, .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn empty_or_missing_file_is_an_error() {
        let dir = scratch("empty");
        let path = write_file(&dir, "");
        let error = read_metrics(&path).unwrap_err();
        assert!(matches!(error, PlotError::Empty { .. }));
        let path = write_file(&dir, "\n  \n");
        assert!(matches!(read_metrics(&path), Err(PlotError::Empty { .. })));
        let out = dir.join("plot.svg");
        assert!(matches!(
            write_svg(&path, &out, "run"),
            Err(PlotError::Empty { .. })
        ));
        assert!(!out.exists());
        assert!(matches!(
            read_metrics(&dir.join("absent.jsonl")),
            Err(PlotError::Read { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn renders_one_polyline_per_non_empty_series() {
        let rows: Vec<_> = (0..10u64)
            .map(|i| {
                let x = i as f64;
                let mut fields = vec![
                    ("solver_reward", 0.1 * x),
                    ("solve_rate", 0.05 * x),
                    ("valid_rate", 1.0 - 0.02 * x),
                    ("entropy_solver", 2.0 - 0.1 * x),
                ];
                if i % 2 == 0 {
                    fields.push(("injector_reward", -0.3 * x));
                }
                row(i * 100, &fields)
            })
            .collect();
        // Loss has no data at all; entropy_injector is absent from its panel.
        let svg = render_svg(&rows, DEFAULT_PANELS, "run <a & b>");
        assert!(svg.starts_with("<?xml") || svg.starts_with("<svg"));
        assert!(svg.contains("xmlns=\"http://www.w3.org/2000/svg\""));
        assert_eq!(svg.matches("<polyline").count(), 5);
        assert!(svg.contains("no data"));
        assert!(svg.contains("run &lt;a &amp; b&gt;"));
        assert!(!svg.contains("<a & b>"));
        assert!(svg.contains("<circle"));
        assert_balanced_groups(&svg);
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }

    #[test]
    fn many_points_have_no_markers() {
        let rows: Vec<_> = (0..200u64)
            .map(|i| row(i, &[("loss", 1.0 / (1.0 + i as f64))]))
            .collect();
        let panels = [Panel {
            title: "Loss",
            series: &["loss"],
        }];
        let svg = render_svg(&rows, &panels, "long");
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert!(!svg.contains("<circle"));
        assert_balanced_groups(&svg);
    }

    #[test]
    fn constant_series_and_single_point_render_finite() {
        let rows: Vec<_> = (0..5u64)
            .map(|i| row(i, &[("loss", 0.25), ("solve_rate", 0.0)]))
            .collect();
        let svg = render_svg(&rows, DEFAULT_PANELS, "constant");
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        assert_balanced_groups(&svg);

        let single = [row(7, &[("solver_reward", -3.5)])];
        let svg = render_svg(&single, DEFAULT_PANELS, "single");
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert_eq!(svg.matches("<circle").count(), 1);
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        assert_balanced_groups(&svg);

        let extreme = [
            row(0, &[("loss", -1e308)]),
            row(u64::MAX, &[("loss", 1e308)]),
        ];
        let svg = render_svg(&extreme, DEFAULT_PANELS, "extreme");
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        let tiny = [row(0, &[("loss", 1e20)]), row(1, &[("loss", 1e20 + 1e5)])];
        let svg = render_svg(&tiny, DEFAULT_PANELS, "tiny");
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    }

    #[test]
    fn empty_panel_list_and_no_rows_still_render() {
        let svg = render_svg(&[], &[], "nothing");
        assert!(svg.starts_with("<?xml"));
        assert_balanced_groups(&svg);
        let svg = render_svg(&[], DEFAULT_PANELS, "nothing");
        assert_eq!(svg.matches(">no data<").count(), DEFAULT_PANELS.len());
        assert_eq!(svg.matches("<polyline").count(), 0);
        assert_balanced_groups(&svg);
    }

    #[test]
    fn numbers_are_compact() {
        assert_eq!(format_number(1.0, 3), "1");
        assert_eq!(format_number(0.30000000000000004, 3), "0.3");
        assert_eq!(format_number(-0.0001, 3), "-1e-4");
        assert_eq!(format_number(-0.0, 3), "0");
        assert_eq!(format_number(2_500_000.0, 3), "2.5e6");
        assert_eq!(format_number(f64::NAN, 3), "0");
        assert_eq!(coord(12.34), "12.3");
        let axis = Axis::new(0.0, 0.0, false);
        assert!(axis.lo < axis.hi);
        let axis = Axis::new(5.0, 5.0, true);
        assert!(axis.lo < 5.0 && axis.hi > 5.0);
        assert!(axis.ticks.iter().all(|t| t.fract() == 0.0));
        let axis = Axis::new(0.0, 1.0, false);
        assert_eq!(axis.label(axis.ticks[1]), "0.2");
        let axis = Axis::new(-0.4, 0.4, false);
        assert!(axis.ticks.iter().any(|&t| axis.label(t) == "0"));
        assert_eq!(format_number(0.0004, 3), "4e-4");
        assert_eq!(format_number(0.0004, 4), "0.0004");
        let labels =
            |axis: Axis| -> Vec<String> { axis.ticks.iter().map(|&t| axis.label(t)).collect() };
        assert_eq!(
            labels(Axis::new(0.0, 2e6, true)),
            ["0", "0.5M", "1M", "1.5M", "2M"]
        );
        assert_eq!(
            labels(Axis::new(0.0, 2e4, true)),
            ["0", "5k", "10k", "15k", "20k"]
        );
        assert_eq!(labels(Axis::new(0.0, 1000.0, true))[1], "200");
        assert_eq!(labels(Axis::new(0.0, 2e6, false))[1], "5e5");
        assert_eq!(labels(Axis::new(0.0, 4e-4, false))[1], "1e-4");
    }

    #[test]
    fn writes_atomically_and_counts_points() {
        let dir = scratch("write");
        let path = write_file(
            &dir,
            "{\"step\": 0, \"solver_reward\": 0.1, \"loss\": 3.0}\n\
             {\"step\": 10, \"solver_reward\": 0.2, \"solve_rate\": 0.5}\n",
        );
        let out = dir.join("plot.svg");
        let points = write_svg(&path, &out, "run").unwrap();
        assert_eq!(points, 4);
        let svg = std::fs::read_to_string(&out).unwrap();
        assert!(svg.starts_with("<?xml"));
        assert_balanced_groups(&svg);
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|name| name.to_string_lossy().contains(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");

        let missing_dir = dir.join("no-such-dir").join("plot.svg");
        assert!(matches!(
            write_svg(&path, &missing_dir, "run"),
            Err(PlotError::Write { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
