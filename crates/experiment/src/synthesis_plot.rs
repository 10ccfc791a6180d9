//! `queries.svg` of `quarry synthesize`: one panel per synthesizer showing, over the 2-D domain,
//! the learned decision regions (light shading), the true boundary (black), the learned boundary
//! (green), the initial points (squares) and the synthesized queries (circles), colored by the
//! oracle's label and darker for later rounds. Drawn with plotters' SVG backend, as
//! [`crate::plot`] draws the learning curves.

use plotters::prelude::*;
use quarry_strategies::synthesis::{Domain, Point};
use std::path::Path;

/// One synthesizer's panel.
#[derive(Debug, Clone)]
pub struct QueryPanel {
    pub title: String,
    pub domain: Domain,
    /// The grids below are `grid × grid` cell centers, row-major from the bottom row.
    pub grid: usize,
    /// The final model's P(class 1) on the grid.
    pub learned: Vec<f64>,
    /// The true function's margin on the grid (> 0 ⇔ class 1).
    pub truth: Vec<f64>,
    /// `(point, label, round)`; round 0 is the initial set.
    pub queries: Vec<(Point, u32, u32)>,
}

const CLASS: [RGBColor; 2] = [RGBColor(0x00, 0x72, 0xB2), RGBColor(0xD5, 0x5E, 0x00)];
const TRUE_LINE: RGBColor = RGBColor(0x11, 0x11, 0x11);
const LEARNED_LINE: RGBColor = RGBColor(0x00, 0x9E, 0x73);
const PANEL_W: u32 = 560;

fn font_px(px: f64) -> f64 {
    px * 1.24
}

/// The segments where the grid values cross `level` (marching squares over the cell centers).
pub fn contour(domain: Domain, n: usize, values: &[f64], level: f64) -> Vec<[Point; 2]> {
    let mut out = Vec::new();
    if n < 2 || values.len() != n * n {
        return out;
    }
    let (dx, dy) = ((domain.x.1 - domain.x.0) / n as f64, (domain.y.1 - domain.y.0) / n as f64);
    let at = |i: usize, j: usize| -> (Point, f64) { ([domain.x.0 + (j as f64 + 0.5) * dx, domain.y.0 + (i as f64 + 0.5) * dy], values[i * n + j] - level) };
    let cross = |(p, a): (Point, f64), (q, b): (Point, f64)| -> Option<Point> {
        ((a > 0.0) != (b > 0.0)).then(|| {
            let t = if (a - b).abs() < 1e-300 { 0.5 } else { a / (a - b) };
            [p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])]
        })
    };
    for i in 0..n - 1 {
        for j in 0..n - 1 {
            let (c00, c01, c11, c10) = (at(i, j), at(i, j + 1), at(i + 1, j + 1), at(i + 1, j));
            // Edges in order around the cell: bottom, right, top, left.
            let hits: Vec<Point> = [(c00, c01), (c01, c11), (c11, c10), (c10, c00)].into_iter().filter_map(|(a, b)| cross(a, b)).collect();
            match hits.len() {
                2 => out.push([hits[0], hits[1]]),
                4 => {
                    // Saddle: the mean of the corners decides which sides connect.
                    let mean = (c00.1 + c01.1 + c11.1 + c10.1) / 4.0;
                    if (mean > 0.0) == (c00.1 > 0.0) {
                        out.push([hits[0], hits[1]]);
                        out.push([hits[2], hits[3]]);
                    } else {
                        out.push([hits[0], hits[3]]);
                        out.push([hits[1], hits[2]]);
                    }
                }
                _ => {}
            }
        }
    }
    out
}

fn lighten(c: RGBColor, f: f64) -> RGBColor {
    let m = |v: u8| (v as f64 + (255.0 - v as f64) * f).round() as u8;
    RGBColor(m(c.0), m(c.1), m(c.2))
}

/// Writes the panels side by side as one SVG at `path`.
pub fn write_queries_svg(path: &Path, title: &str, panels: &[QueryPanel]) -> Result<(), String> {
    if panels.is_empty() {
        return Err("no runs to draw".into());
    }
    let d = panels[0].domain;
    let aspect = (d.y.1 - d.y.0) / (d.x.1 - d.x.0);
    let plot_w = PANEL_W as f64 - 70.0;
    let panel_h = (plot_w * aspect + 110.0).round() as u32;
    let (width, height) = (PANEL_W * panels.len() as u32, panel_h + 40);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let body = root.titled(title, ("sans-serif", font_px(15.0))).map_err(|e| e.to_string())?;
        for (i, (area, panel)) in body.split_evenly((1, panels.len())).iter().zip(panels).enumerate() {
            draw_panel(area, panel, i == 0).map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    std::fs::write(path, svg).map_err(|e| e.to_string())
}

/// One panel; the legend only where `legend` (the first panel), to keep the others clear.
fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, plotters::coord::Shift>, p: &QueryPanel, legend: bool) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let d = p.domain;
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, ("sans-serif", font_px(13.0)))
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(36)
        .build_cartesian_2d(d.x.0..d.x.1, d.y.0..d.y.1)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .label_style(("sans-serif", font_px(11.0)))
        .axis_style(RGBColor(0x44, 0x44, 0x44).stroke_width(1))
        .draw()?;

    // Learned decision regions: runs of equal predicted class along each grid row.
    let n = p.grid;
    let (dx, dy) = ((d.x.1 - d.x.0) / n as f64, (d.y.1 - d.y.0) / n as f64);
    if p.learned.len() == n * n {
        let mut rects = Vec::new();
        for i in 0..n {
            let mut j = 0;
            while j < n {
                let class = usize::from(p.learned[i * n + j] > 0.5);
                let start = j;
                while j < n && usize::from(p.learned[i * n + j] > 0.5) == class {
                    j += 1;
                }
                let (x0, x1) = (d.x.0 + start as f64 * dx, d.x.0 + j as f64 * dx);
                let (y0, y1) = (d.y.0 + i as f64 * dy, d.y.0 + (i + 1) as f64 * dy);
                rects.push(Rectangle::new([(x0, y0), (x1, y1)], lighten(CLASS[class], 0.86).filled()));
            }
        }
        chart.draw_series(rects)?;
    }

    let truth = contour(d, n, &p.truth, 0.0);
    let learned = contour(d, n, &p.learned, 0.5);
    chart
        .draw_series(truth.iter().map(|s| PathElement::new(vec![(s[0][0], s[0][1]), (s[1][0], s[1][1])], TRUE_LINE.stroke_width(2))))?
        .label("true boundary")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], TRUE_LINE.stroke_width(2)));
    chart
        .draw_series(learned.iter().map(|s| PathElement::new(vec![(s[0][0], s[0][1]), (s[1][0], s[1][1])], LEARNED_LINE.stroke_width(2))))?
        .label("learned boundary (p = 1/2)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], LEARNED_LINE.stroke_width(2)));

    let last = p.queries.iter().map(|q| q.2).max().unwrap_or(0).max(1);
    let outline = RGBColor(0x22, 0x22, 0x22);
    // Initial points: squares.
    for (class, color) in CLASS.iter().enumerate() {
        let style = color.filled();
        chart
            .draw_series(p.queries.iter().filter(|q| q.2 == 0 && q.1 as usize == class).map(|q| {
                EmptyElement::at((q.0[0], q.0[1])) + Rectangle::new([(-4, -4), (4, 4)], style) + Rectangle::new([(-4, -4), (4, 4)], outline.stroke_width(1))
            }))?
            .label(format!("initial, class {class}"))
            .legend(move |(x, y)| Rectangle::new([(x + 4, y - 4), (x + 12, y + 4)], style));
    }
    // Queries: circles, pale in the first round and saturated in the last.
    for (class, &color) in CLASS.iter().enumerate() {
        chart
            .draw_series(p.queries.iter().filter(|q| q.2 > 0 && q.1 as usize == class).map(|q| {
                let f = 0.7 * (1.0 - (q.2 - 1) as f64 / (last - 1).max(1) as f64);
                let c = lighten(color, f);
                EmptyElement::at((q.0[0], q.0[1])) + Circle::new((0, 0), 3, c.filled()) + Circle::new((0, 0), 3, color.stroke_width(1))
            }))?
            .label(format!("query, class {class} (pale = early)"))
            .legend(move |(x, y)| Circle::new((x + 8, y), 3, color.filled()));
    }
    if !legend {
        return Ok(());
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(0x99, 0x99, 0x99))
        .label_font(("sans-serif", font_px(10.5)))
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthesis_contour_of_a_line_lies_on_the_line() {
        let d = Domain::new((-1.0, 1.0), (-1.0, 1.0)).unwrap();
        let n = 20;
        let values: Vec<f64> = (0..n * n)
            .map(|k| {
                let (i, j) = (k / n, k % n);
                let (x, y) = (-1.0 + (j as f64 + 0.5) * 0.1, -1.0 + (i as f64 + 0.5) * 0.1);
                x + 0.5 * y - 0.1
            })
            .collect();
        let segs = contour(d, n, &values, 0.0);
        assert!(segs.len() >= n - 2);
        for s in segs {
            for p in s {
                assert!((p[0] + 0.5 * p[1] - 0.1).abs() < 1e-9);
            }
        }
    }
}
