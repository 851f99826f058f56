//! Learning-curve plots: `spar plot RUN_DIR` renders a run's `metrics.jsonl` as an SVG image.
//!
//! [`read_metrics`] parses the JSON-lines file into `(step, name -> value)` rows,
//! [`render_svg`] draws the rows as a grid of panels (two columns, one line per metric) with
//! `plotters`' SVG backend, and [`write_svg`] ties both together and writes the image
//! atomically.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::collections::BTreeMap;
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
    /// A line of the metrics file is not JSON.
    #[error("{path}:{line}: invalid JSON")]
    Json {
        /// The metrics file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// Where the JSON breaks.
        #[source]
        source: serde_json::Error,
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
            serde_json::from_str(line).map_err(|source| PlotError::Json {
                path: path.to_path_buf(),
                line: index + 1,
                source,
            })?;
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

/// Width of one panel, in pixels of the SVG.
const PANEL_W: u32 = 480;
/// Height of one panel.
const PANEL_H: u32 = 300;
/// Space between panels and around the grid.
const GAP: u32 = 20;
/// Height of the band holding the overall title and subtitle.
const HEADER_H: u32 = 56;
/// Height of a panel's title and legend band, above its chart.
const PANEL_HEADER_H: u32 = 48;
/// Series with fewer points than this get circle markers.
const MARKER_LIMIT: usize = 60;
/// Series colours, assigned by position in the panel.
const COLORS: &[RGBColor] = &[
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
];
/// Values are clamped to this magnitude so that axis ranges stay finite.
const CLAMP: f64 = 1e300;
const INK: RGBColor = RGBColor(0x22, 0x22, 0x22);
const MUTED: RGBColor = RGBColor(0x66, 0x66, 0x66);
const FRAME: RGBColor = RGBColor(0xdd, 0xdd, 0xdd);

/// A font of `px` pixels: plotters takes sizes in points and writes `size / 1.24` pixels.
fn font(px: f64) -> FontDesc<'static> {
    ("sans-serif", px * 1.24).into_font()
}

type Rows = [(u64, BTreeMap<String, f64>)];
type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// Renders panels as one SVG document (a grid of 2 columns, drawn with `plotters`), returns
/// the SVG text.
///
/// Each panel has its title, a legend, axes with round ticks, and one line per metric that
/// has data (with circle markers when it has fewer than 60 points); a panel none of whose
/// metrics has data says "no data". Rows may come in any order: points are drawn sorted by
/// step.
pub fn render_svg(rows: &Rows, panels: &[Panel], title: &str) -> String {
    let cols = panels.len().clamp(1, 2) as u32;
    let grid_rows = panels.len().div_ceil(2).max(1) as u32;
    let width = GAP + cols * (PANEL_W + GAP);
    let height = HEADER_H + grid_rows * (PANEL_H + GAP);
    let mut svg = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        // The backend only fails on I/O, and a String does not.
        let _ = draw_figure(&root, rows, panels, title);
        let _ = root.present();
    }
    svg
}

fn draw_figure(root: &Area, rows: &Rows, panels: &[Panel], title: &str) -> DrawResult {
    root.fill(&WHITE)?;
    let (width, _) = root.dim_in_pixel();
    let center = |size: f64, color: &RGBColor| {
        let style = font(size).color(color);
        style.pos(Pos::new(HPos::Center, VPos::Center))
    };
    let mid = width as i32 / 2;
    let bold = font(18.0).style(FontStyle::Bold).color(&INK);
    root.draw(&Text::new(
        title,
        (mid, 22),
        bold.pos(Pos::new(HPos::Center, VPos::Center)),
    ))?;
    root.draw(&Text::new(subtitle(rows), (mid, 42), center(11.0, &MUTED)))?;
    let body = root.margin(HEADER_H, 0, 0, 0);
    if panels.is_empty() {
        let at = (mid, (PANEL_H / 2) as i32);
        return body.draw(&Text::new("no panels", at, center(14.0, &MUTED)));
    }
    for (index, panel) in panels.iter().enumerate() {
        let (col, row) = ((index % 2) as u32, (index / 2) as u32);
        let x = GAP + col * (PANEL_W + GAP);
        let y = row * (PANEL_H + GAP);
        let area = body.clone().shrink((x, y), (PANEL_W, PANEL_H));
        draw_panel(&area, rows, panel)?;
    }
    Ok(())
}

/// One metric's line in a panel.
struct Line<'a> {
    name: &'a str,
    points: Vec<(f64, f64)>,
    color: RGBColor,
}

/// One panel: a frame, the title, a legend row, and the chart below them.
fn draw_panel(area: &Area, rows: &Rows, panel: &Panel) -> DrawResult {
    let (w, h) = area.dim_in_pixel();
    let frame = ShapeStyle::from(&FRAME).stroke_width(1);
    area.draw(&Rectangle::new(
        [(0, 0), (w as i32 - 1, h as i32 - 1)],
        frame,
    ))?;
    let bold = font(15.0).style(FontStyle::Bold).color(&INK);
    let center = Pos::new(HPos::Center, VPos::Center);
    area.draw(&Text::new(
        panel.title,
        (w as i32 / 2, 16),
        bold.pos(center),
    ))?;
    let series: Vec<Line> = panel
        .series
        .iter()
        .enumerate()
        .map(|(i, name)| Line {
            name,
            points: series_points(rows, name),
            color: COLORS[i % COLORS.len()],
        })
        .filter(|line| !line.points.is_empty())
        .collect();
    draw_legend(area, &series)?;
    let chart_area = area.margin(PANEL_HEADER_H, 8, 8, 12);
    if series.is_empty() {
        let style = font(14.0).color(&MUTED).pos(center);
        let (cw, ch) = chart_area.dim_in_pixel();
        return chart_area.draw(&Text::new("no data", (cw as i32 / 2, ch as i32 / 2), style));
    }
    let all = || series.iter().flat_map(|line| line.points.iter());
    let (x_lo, x_hi) = padded(bounds(all().map(|p| p.0)), 0.0);
    let (y_lo, y_hi) = padded(bounds(all().map(|p| p.1)), 0.05);
    let y_decimals = decimals_for((y_hi - y_lo) / 5.0);
    let mut chart = ChartBuilder::on(&chart_area)
        .x_label_area_size(34)
        .y_label_area_size(52)
        .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)?;
    let label = font(11.0).color(&MUTED);
    chart
        .configure_mesh()
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(RGBColor(0xee, 0xee, 0xee))
        .axis_style(RGBColor(0x99, 0x99, 0x99))
        // Steps are whole numbers: no more labels than steps in the range.
        .x_labels((x_hi - x_lo).floor().clamp(1.0, 5.0) as usize + 1)
        .y_labels(6)
        .x_label_formatter(&|v| step_label(*v))
        // Ticks computed near zero come out as 1e-17 and the like: they are zero.
        .y_label_formatter(&|v| {
            let v = if v.abs() < (y_hi - y_lo) * 1e-9 {
                0.0
            } else {
                *v
            };
            format_number(v, y_decimals)
        })
        .x_label_style(label.clone())
        .y_label_style(label.clone())
        .x_desc("step")
        .axis_desc_style(label)
        .draw()?;
    for Line { points, color, .. } in &series {
        let line = ShapeStyle::from(color).stroke_width(2);
        chart.draw_series(LineSeries::new(points.iter().copied(), line))?;
        if points.len() < MARKER_LIMIT {
            let dot = |p: &(f64, f64)| Circle::new(*p, 3, ShapeStyle::from(color).filled());
            chart.draw_series(points.iter().map(dot))?;
        }
    }
    Ok(())
}

/// The legend, one row across the panel under its title: a short line and the name.
fn draw_legend(area: &Area, series: &[Line]) -> DrawResult {
    let style = font(11.0).color(&INK);
    let left = Pos::new(HPos::Left, VPos::Center);
    let mut x = 64;
    for Line { name, color, .. } in series {
        let line = ShapeStyle::from(color);
        area.draw(&Rectangle::new([(x, 35), (x + 18, 37)], line.filled()))?;
        area.draw(&Text::new(*name, (x + 24, 36), style.pos(left)))?;
        x += 24 + 6 * name.len() as i32 + 24;
    }
    Ok(())
}

/// A range around `(lo, hi)`: widened by `pad` of its span on both sides, and to a unit span
/// around a single value.
fn padded((lo, hi): (f64, f64), pad: f64) -> (f64, f64) {
    if hi > lo {
        let margin = (hi - lo) * pad;
        (lo - margin, hi + margin)
    } else {
        let half = (lo.abs() * 0.1).max(0.5);
        (lo - half, hi + half)
    }
}

/// A step on the x axis: whole numbers, thousands as `k` and millions as `M`.
fn step_label(v: f64) -> String {
    let magnitude = v.abs();
    if magnitude >= 1e6 {
        format!("{}M", format_number(v / 1e6, 2))
    } else if magnitude >= 1e4 {
        format!("{}k", format_number(v / 1e3, 2))
    } else {
        format_number(v, 0)
    }
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
fn series_points(rows: &Rows, name: &str) -> Vec<(f64, f64)> {
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
fn subtitle(rows: &Rows) -> String {
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

    /// The data lines: plotters draws axes and grid with polylines too, but only series
    /// with a stroke two pixels wide.
    fn lines(svg: &str) -> usize {
        svg.lines()
            .filter(|l| l.starts_with("<polyline") && l.contains("stroke-width=\"2\""))
            .count()
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
            Err(PlotError::Json { line, path: p, .. }) => {
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
        assert_eq!(lines(&svg), 5);
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
        assert_eq!(lines(&svg), 1);
        assert!(!svg.contains("<circle"));
        assert_balanced_groups(&svg);
    }

    #[test]
    fn constant_series_and_single_point_render_finite() {
        let rows: Vec<_> = (0..5u64)
            .map(|i| row(i, &[("loss", 0.25), ("solve_rate", 0.0)]))
            .collect();
        let svg = render_svg(&rows, DEFAULT_PANELS, "constant");
        assert_eq!(lines(&svg), 2);
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        assert_balanced_groups(&svg);

        let single = [row(7, &[("solver_reward", -3.5)])];
        let svg = render_svg(&single, DEFAULT_PANELS, "single");
        assert_eq!(lines(&svg), 1);
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
        assert_eq!(svg.matches("no data").count(), DEFAULT_PANELS.len());
        assert_eq!(lines(&svg), 0);
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
        assert_eq!(format_number(0.0004, 3), "4e-4");
        assert_eq!(format_number(0.0004, 4), "0.0004");
        assert_eq!(step_label(200.0), "200");
        assert_eq!(step_label(15_000.0), "15k");
        assert_eq!(step_label(2_500_000.0), "2.5M");
        let (lo, hi) = padded((5.0, 5.0), 0.05);
        assert!(lo < 5.0 && hi > 5.0);
        let (lo, hi) = padded((0.0, 0.0), 0.05);
        assert!(lo < 0.0 && hi > 0.0);
        assert_eq!(padded((0.0, 10.0), 0.1), (-1.0, 11.0));
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
