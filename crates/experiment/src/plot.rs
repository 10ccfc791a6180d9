//! Learning-curve figure: one mean line per strategy with a shaded band
//! (e.g. min..max or a confidence interval over seeds), written as SVG.
//!
//! Rendering uses `plotters` with only the SVG backend. No font backend is
//! compiled in: the SVG backend writes `<text>` elements and leaves glyph
//! rendering to the viewer, and plotters' built-in size estimate is enough
//! to lay out tick labels and the legend box. The build needs no system
//! libraries.
//!
//! Empty input: if no series has a single usable point (the series list is
//! empty, or every series has no points, or every point has a non-finite
//! `labels`/`mean`), [`write_svg`] returns [`PlotError::NoData`] and writes no
//! file. Series without usable points are left out of the figure and its
//! legend; the others are still drawn.

use std::path::{Path, PathBuf};

use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, ValueFormatter};
use plotters::element::DashedPathElement;
use plotters::prelude::*;

/// One strategy's curve: x = number of labels, and over seeds the mean and a band.
#[derive(Debug, Clone, PartialEq)]
pub struct CurveSeries {
    pub name: String,
    pub points: Vec<CurvePoint>,
}

/// One point of a curve: the mean over seeds and the band `low..high` drawn
/// behind it (pass `low == high == mean` for no band).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurvePoint {
    pub labels: f64,
    pub mean: f64,
    pub low: f64,
    pub high: f64,
}

/// Everything drawn in a learning-curve figure.
#[derive(Debug, Clone, Copy)]
pub struct PlotSpec<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub series: &'a [CurveSeries],
    /// E.g. `("full pool", 0.968)`: a dashed horizontal line across the plot,
    /// listed in the legend as `full pool (0.968)`.
    pub reference: Option<(&'a str, f64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// Nothing to draw (see the module docs); no file was written.
    #[error("cannot plot {}: no series has a point with finite labels and mean", path.display())]
    NoData { path: PathBuf },
    /// plotters failed while laying out or drawing the chart.
    #[error("cannot draw plot {}: {message}", path.display())]
    Render { path: PathBuf, message: String },
    /// The finished SVG could not be written.
    #[error("cannot write plot {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Draws the learning curves of `spec` as an 800x500 SVG at `path`.
///
/// The SVG is rendered in memory first, so a failed render leaves no partial
/// file behind. The parent directory must exist.
pub fn write_svg(path: &Path, spec: &PlotSpec) -> Result<(), PlotError> {
    let svg = render(spec).map_err(|e| match e {
        RenderError::NoData => PlotError::NoData {
            path: path.to_path_buf(),
        },
        RenderError::Draw(message) => PlotError::Render {
            path: path.to_path_buf(),
            message: one_line(&message),
        },
    })?;
    std::fs::write(path, svg).map_err(|source| PlotError::Io {
        path: path.to_path_buf(),
        source,
    })
}

const WIDTH: u32 = 800;
const HEIGHT: u32 = 500;

/// Okabe & Ito's colorblind-safe palette (black is kept for the reference
/// line; the yellow, faint on white, comes last).
const PALETTE: [RGBColor; 7] = [
    RGBColor(0x00, 0x72, 0xB2), // blue
    RGBColor(0xD5, 0x5E, 0x00), // vermillion
    RGBColor(0x00, 0x9E, 0x73), // bluish green
    RGBColor(0xE6, 0x9F, 0x00), // orange
    RGBColor(0xCC, 0x79, 0xA7), // reddish purple
    RGBColor(0x56, 0xB4, 0xE9), // sky blue
    RGBColor(0xF0, 0xE4, 0x42), // yellow
];
const REFERENCE_COLOR: RGBColor = RGBColor(0x33, 0x33, 0x33);
const BAND_OPACITY: f64 = 0.2;

/// plotters' SVG backend writes `font-size = size / 1.24`; this gives the
/// size to ask for to get `px` pixels in the file.
fn font_px(px: f64) -> f64 {
    px * 1.24
}

enum RenderError {
    NoData,
    Draw(String),
}

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for RenderError {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        RenderError::Draw(e.to_string())
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A series reduced to finite, x-sorted points with `low <= mean <= high`.
struct Clean<'a> {
    name: &'a str,
    color: RGBColor,
    points: Vec<CurvePoint>,
}

fn clean_series(series: &[CurveSeries]) -> Vec<Clean<'_>> {
    series
        .iter()
        .filter_map(|s| {
            let mut points: Vec<CurvePoint> = s
                .points
                .iter()
                .filter(|p| p.labels.is_finite() && p.mean.is_finite())
                .map(|p| {
                    let low = if p.low.is_finite() { p.low } else { p.mean };
                    let high = if p.high.is_finite() { p.high } else { p.mean };
                    CurvePoint {
                        labels: p.labels,
                        mean: p.mean,
                        low: low.min(high).min(p.mean),
                        high: low.max(high).max(p.mean),
                    }
                })
                .collect();
            points.sort_by(|a, b| a.labels.total_cmp(&b.labels));
            (!points.is_empty()).then_some((s.name.as_str(), points))
        })
        .enumerate()
        .map(|(i, (name, points))| Clean {
            name,
            color: PALETTE[i % PALETTE.len()],
            points,
        })
        .collect()
}

/// Ticks at multiples of a 1/2/5 x 10^k step within `lo..=hi`, the step
/// chosen to give the tick count nearest `target` (the larger step on a tie),
/// plus the number of decimals that step needs. `min_step` lets integer axes
/// avoid fractional ticks.
fn nice_ticks(lo: f64, hi: f64, target: usize, min_step: f64) -> (Vec<f64>, usize) {
    let span = (hi - lo).max(f64::MIN_POSITIVE);
    let exp0 = (span / target.max(1) as f64).log10().floor() as i32;
    let ticks_for = |step: f64| {
        let eps = step * 1e-9;
        let first = ((lo - eps) / step).ceil() as i64;
        let last = ((hi + eps) / step).floor() as i64;
        (first..=last)
            .map(|k| k as f64 * step)
            .collect::<Vec<f64>>()
    };
    let mut best: Option<(usize, f64, i32)> = None; // (distance, step, exponent)
    for exp in exp0 - 1..=exp0 + 1 {
        for m in [1.0, 2.0, 5.0] {
            let step = m * 10f64.powi(exp);
            if step < min_step * (1.0 - 1e-9) {
                continue;
            }
            let n = ticks_for(step).len();
            if n < 2 && best.is_some() {
                continue;
            }
            let dist = n.abs_diff(target);
            if best.is_none_or(|(d, _, _)| dist <= d) {
                best = Some((dist, step, exp));
            }
        }
    }
    let (step, exp) = match best {
        Some((_, step, exp)) => (step, exp),
        // Only reachable when min_step dwarfs the span.
        None => (min_step, min_step.log10().floor() as i32),
    };
    ((ticks_for(step)), (-exp).max(0) as usize)
}

/// A linear f64 axis whose ticks and tick labels are chosen here rather than
/// by plotters, so that every label of an axis has the same decimals.
struct TickAxis {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
    decimals: usize,
}

impl TickAxis {
    fn new(lo: f64, hi: f64, target: usize, min_step: f64) -> Self {
        let (ticks, decimals) = nice_ticks(lo, hi, target, min_step);
        TickAxis {
            lo,
            hi,
            ticks,
            decimals,
        }
    }
}

impl Ranged for TickAxis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let t = (value - self.lo) / (self.hi - self.lo);
        (limit.0 as f64 + t * (limit.1 - limit.0) as f64).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

impl ValueFormatter<f64> for TickAxis {
    fn format_ext(&self, value: &f64) -> String {
        let decimals = self.decimals;
        // `+ 0.0` turns a negative zero into "0".
        format!("{:.decimals$}", value + 0.0)
    }
}

/// A value with up to 4 significant digits, trailing zeros trimmed.
fn short_number(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let digits = (3 - v.abs().log10().floor() as i32).clamp(0, 12) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn interpolate(points: &[CurvePoint], x: f64) -> Option<CurvePoint> {
    let first = points.first()?;
    let last = points.last()?;
    if x < first.labels || x > last.labels {
        return None;
    }
    let i = points.partition_point(|p| p.labels < x);
    let b = points[i.min(points.len() - 1)];
    if i == 0 || b.labels == x {
        return Some(b);
    }
    let a = points[i - 1];
    let t = (x - a.labels) / (b.labels - a.labels);
    let lerp = |u: f64, v: f64| u + (v - u) * t;
    Some(CurvePoint {
        labels: x,
        mean: lerp(a.mean, b.mean),
        low: lerp(a.low, b.low),
        high: lerp(a.high, b.high),
    })
}

/// Picks the plot corner where the legend box hides the least data.
fn legend_corner(
    series: &[Clean],
    reference: Option<f64>,
    x: (f64, f64),
    y: (f64, f64),
    entries: usize,
) -> SeriesLabelPosition {
    // Rough legend box in plot-area fractions.
    let w = 0.32;
    let h = (0.05 + 0.055 * entries as f64).min(0.9);
    let nx = |v: f64| (v - x.0) / (x.1 - x.0);
    let ny = |v: f64| (v - y.0) / (y.1 - y.0);
    // (position, left?, bottom?) in order of preference.
    let corners = [
        (SeriesLabelPosition::LowerRight, false, true),
        (SeriesLabelPosition::UpperLeft, true, false),
        (SeriesLabelPosition::UpperRight, false, false),
        (SeriesLabelPosition::LowerLeft, true, true),
    ];
    let inside = |left: bool, bottom: bool, fx: f64, fy: f64| {
        let in_x = if left { fx <= w } else { fx >= 1.0 - w };
        let in_y = if bottom { fy <= h } else { fy >= 1.0 - h };
        in_x && in_y
    };
    let samples = 60;
    let mut best = (usize::MAX, SeriesLabelPosition::LowerRight);
    for (pos, left, bottom) in corners {
        let mut hits = 0;
        for k in 0..=samples {
            let xv = x.0 + (x.1 - x.0) * k as f64 / samples as f64;
            let fx = nx(xv);
            for s in series {
                if let Some(p) = interpolate(&s.points, xv) {
                    // The band counts wherever it covers the box's y range.
                    let (lo, hi) = (ny(p.low), ny(p.high));
                    let box_lo = if bottom { 0.0 } else { 1.0 - h };
                    let box_hi = if bottom { h } else { 1.0 };
                    let in_x = if left { fx <= w } else { fx >= 1.0 - w };
                    if in_x && hi >= box_lo && lo <= box_hi {
                        hits += 1;
                    }
                    if inside(left, bottom, fx, ny(p.mean)) {
                        hits += 3; // the line matters more than the band
                    }
                }
            }
            if reference.is_some_and(|r| inside(left, bottom, fx, ny(r))) {
                hits += 2;
            }
        }
        if hits < best.0 {
            best = (hits, pos);
        }
    }
    best.1
}

fn render(spec: &PlotSpec) -> Result<String, RenderError> {
    let series = clean_series(spec.series);
    if series.is_empty() {
        return Err(RenderError::NoData);
    }
    let reference = spec.reference.filter(|(_, v)| v.is_finite());

    // x: smallest to largest label count.
    let all = || series.iter().flat_map(|s| s.points.iter());
    let mut x0 = all().map(|p| p.labels).fold(f64::INFINITY, f64::min);
    let mut x1 = all().map(|p| p.labels).fold(f64::NEG_INFINITY, f64::max);
    let integer_x = all().all(|p| p.labels.fract() == 0.0);
    if x1 - x0 <= 0.0 {
        x0 -= 1.0;
        x1 += 1.0;
    }

    // y: fitted to bands, means and the reference, with a 6% margin.
    let mut y0 = all().map(|p| p.low).fold(f64::INFINITY, f64::min);
    let mut y1 = all().map(|p| p.high).fold(f64::NEG_INFINITY, f64::max);
    if let Some((_, r)) = reference {
        y0 = y0.min(r);
        y1 = y1.max(r);
    }
    let span = y1 - y0;
    let pad = if span > 1e-12 * y1.abs().max(y0.abs()).max(1e-300) {
        0.06 * span
    } else {
        (0.05 * y1.abs()).max(0.01)
    };
    y0 -= pad;
    y1 += pad;

    let x_axis = TickAxis::new(x0, x1, 8, if integer_x { 1.0 } else { 0.0 });
    let y_axis = TickAxis::new(y0, y1, 7, 0.0);

    let entries = series.len() + usize::from(reference.is_some());
    let corner = legend_corner(
        &series,
        reference.map(|(_, v)| v),
        (x0, x1),
        (y0, y1),
        entries,
    );

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;

        let mut builder = ChartBuilder::on(&root);
        builder
            .margin_top(12)
            .margin_right(28)
            .margin_left(12)
            .margin_bottom(8)
            .x_label_area_size(52)
            .y_label_area_size(72);
        if !spec.title.is_empty() {
            builder.caption(spec.title, ("sans-serif", font_px(19.0)).into_font());
        }
        let mut chart = builder.build_cartesian_2d(x_axis, y_axis)?;

        let tick_font = ("sans-serif", font_px(12.5)).into_font();
        let desc_font = ("sans-serif", font_px(14.5)).into_font();
        chart
            .configure_mesh()
            .x_desc(spec.x_label)
            .y_desc(spec.y_label)
            .label_style(tick_font)
            .axis_desc_style(desc_font)
            .bold_line_style(RGBColor(0xE4, 0xE4, 0xE4).stroke_width(1))
            .light_line_style(TRANSPARENT)
            .axis_style(RGBColor(0x44, 0x44, 0x44).stroke_width(1))
            .set_all_tick_mark_size(5)
            .draw()?;

        // Bands first, so that every mean line is drawn over every band.
        for s in &series {
            if s.points.iter().all(|p| p.low == p.high) {
                continue;
            }
            let outline: Vec<(f64, f64)> = s
                .points
                .iter()
                .map(|p| (p.labels, p.high))
                .chain(s.points.iter().rev().map(|p| (p.labels, p.low)))
                .collect();
            chart.draw_series(std::iter::once(Polygon::new(
                outline,
                s.color.mix(BAND_OPACITY).filled(),
            )))?;
        }

        for s in &series {
            let color = s.color;
            let line = color.stroke_width(2);
            if s.points.len() == 1 {
                // A lone point: its band becomes an error bar.
                let p = s.points[0];
                if p.low < p.high {
                    chart.draw_series(std::iter::once(PathElement::new(
                        vec![(p.labels, p.low), (p.labels, p.high)],
                        color.mix(0.5).stroke_width(3),
                    )))?;
                }
                chart.draw_series(std::iter::once(Circle::new(
                    (p.labels, p.mean),
                    3,
                    color.filled(),
                )))?
            } else {
                chart.draw_series(LineSeries::new(
                    s.points.iter().map(|p| (p.labels, p.mean)),
                    line,
                ))?
            }
            .label(s.name)
            .legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + Rectangle::new([(0, -6), (22, 6)], color.mix(BAND_OPACITY).filled())
                    + PathElement::new(vec![(0, 0), (22, 0)], line)
            });
        }

        if let Some((name, value)) = reference {
            let style = REFERENCE_COLOR.stroke_width(1);
            chart
                .draw_series(DashedLineSeries::new(
                    [(x0, value), (x1, value)],
                    6,
                    4,
                    style,
                ))?
                .label(format!("{name} ({})", short_number(value)))
                .legend(move |(x, y)| {
                    DashedPathElement::new(vec![(x, y), (x + 22, y)], 6, 4, style)
                });
        }

        chart
            .configure_series_labels()
            .position(corner)
            .margin(12)
            .legend_area_size(30)
            .label_font(("sans-serif", font_px(13.0)).into_font())
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(0xAA, 0xAA, 0xAA))
            .draw()?;

        root.present()?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(name: &str, f: impl Fn(f64) -> f64, spread: f64) -> CurveSeries {
        CurveSeries {
            name: name.to_string(),
            points: (0..=10)
                .map(|i| {
                    let labels = 20.0 + 20.0 * i as f64;
                    let mean = f(labels);
                    CurvePoint {
                        labels,
                        mean,
                        low: mean - spread,
                        high: mean + spread,
                    }
                })
                .collect(),
        }
    }

    fn sample_series() -> Vec<CurveSeries> {
        vec![
            curve("random", |x| 0.96 - 0.35 * (-x / 90.0).exp(), 0.02),
            curve("uncertainty", |x| 0.965 - 0.35 * (-x / 55.0).exp(), 0.015),
            curve("qbc <k=5> & co", |x| 0.962 - 0.33 * (-x / 70.0).exp(), 0.01),
        ]
    }

    fn temp_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("quarry-plot-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    fn texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .filter_map(|t| {
                let body = &t[t.find('>')? + 1..t.find("</text>")?];
                Some(body.trim().to_string())
            })
            .collect()
    }

    #[test]
    fn writes_title_axis_labels_ticks_and_legend() {
        let series = sample_series();
        let path = temp_path("curves.svg");
        let spec = PlotSpec {
            title: "Learning curves on digits",
            x_label: "labeled examples",
            y_label: "test accuracy",
            series: &series,
            reference: Some(("full pool", 0.968)),
        };
        write_svg(&path, &spec).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..60.min(svg.len())]);
        assert!(svg.contains(r#"width="800" height="500""#));
        let texts = texts(&svg);
        for want in [
            "Learning curves on digits",
            "labeled examples",
            "test accuracy",
            "random",
            "uncertainty",
            "qbc &lt;k=5&gt; &amp; co",
            "full pool (0.968)",
            // ticks: x from 20 to 220 with step 20 or 50, y with 2 decimals
            "20",
            "200",
            "0.90",
        ] {
            assert!(
                texts.iter().any(|t| t == want),
                "no <text> {want:?} in {texts:?}"
            );
        }
        // white background
        assert!(svg.contains(r##"fill="#FFFFFF""##));
        // one band polygon per series, semi-transparent, in the series colors
        let bands: Vec<&str> = svg.split("<polygon").skip(1).collect();
        assert_eq!(bands.len(), 3, "{svg}");
        assert!(bands.iter().all(|b| b.contains(r#"opacity="0.2""#)));
        assert!(bands[0].contains("#0072B2") && bands[1].contains("#D55E00"));
        // the mean lines
        assert!(svg.contains(r##"stroke="#0072B2" stroke-width="2""##));
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn empty_input_is_an_error_and_writes_nothing() {
        let path = temp_path("empty.svg");
        std::fs::remove_file(&path).ok();
        let spec = PlotSpec {
            title: "t",
            x_label: "x",
            y_label: "y",
            series: &[],
            reference: Some(("full pool", 0.9)),
        };
        let err = write_svg(&path, &spec).unwrap_err();
        assert!(matches!(err, PlotError::NoData { .. }));
        let msg = err.to_string();
        assert!(msg.contains("empty.svg") && !msg.contains('\n'), "{msg}");
        assert!(!path.exists());

        let hollow = vec![
            CurveSeries {
                name: "a".into(),
                points: vec![],
            },
            CurveSeries {
                name: "b".into(),
                points: vec![CurvePoint {
                    labels: f64::NAN,
                    mean: 0.5,
                    low: 0.4,
                    high: 0.6,
                }],
            },
        ];
        let spec = PlotSpec {
            series: &hollow,
            ..spec
        };
        assert!(matches!(
            write_svg(&path, &spec),
            Err(PlotError::NoData { .. })
        ));
        assert!(!path.exists());
    }

    #[test]
    fn skips_empty_series_and_handles_degenerate_ranges() {
        let series = vec![
            CurveSeries {
                name: "nothing".into(),
                points: vec![],
            },
            CurveSeries {
                name: "single".into(),
                points: vec![CurvePoint {
                    labels: 10.0,
                    mean: 0.5,
                    low: 0.5,
                    high: 0.5,
                }],
            },
        ];
        let path = temp_path("single.svg");
        let spec = PlotSpec {
            title: "",
            x_label: "labels",
            y_label: "accuracy",
            series: &series,
            reference: None,
        };
        write_svg(&path, &spec).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        let texts = texts(&svg);
        assert!(texts.iter().any(|t| t == "single"));
        assert!(!texts.iter().any(|t| t == "nothing"));
        assert!(svg.contains("<circle"));
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn io_error_names_the_path() {
        let series = sample_series();
        let path = temp_path("no-such-dir").join("x.svg");
        let spec = PlotSpec {
            title: "t",
            x_label: "x",
            y_label: "y",
            series: &series,
            reference: None,
        };
        let err = write_svg(&path, &spec).unwrap_err();
        assert!(matches!(err, PlotError::Io { .. }));
        assert!(err.to_string().contains("no-such-dir"), "{err}");
    }

    #[test]
    fn nice_ticks_follow_the_1_2_5_rule() {
        let (t, d) = nice_ticks(0.583, 0.991, 7, 0.0);
        assert_eq!(d, 2);
        assert_eq!(t.len(), 8);
        assert!(
            (t[0] - 0.6).abs() < 1e-12 && (t[7] - 0.95).abs() < 1e-12,
            "{t:?}"
        );
        let (t, d) = nice_ticks(20.0, 220.0, 8, 1.0);
        assert_eq!(d, 0);
        assert_eq!(t, (1..=11).map(|k| 20.0 * k as f64).collect::<Vec<_>>());
        let (t, d) = nice_ticks(0.0, 1000.0, 8, 1.0);
        assert_eq!((t, d), (vec![0.0, 200.0, 400.0, 600.0, 800.0, 1000.0], 0));
        let (t, _) = nice_ticks(9.0, 11.0, 8, 1.0);
        assert_eq!(t, vec![9.0, 10.0, 11.0]);
        assert_eq!(short_number(0.968), "0.968");
        assert_eq!(short_number(0.5), "0.5");
        assert_eq!(short_number(1234.0), "1234");
    }
}
