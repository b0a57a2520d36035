//! Learning-curve PNGs (plotters, bitmap backend, DejaVu Sans embedded so that no system font is
//! needed): evaluation success rate (top) and return (bottom) against environment steps. Runs
//! with the same label (e.g. one agent over several seeds) are drawn as their mean with a band
//! from the lowest to the highest run.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Once;

use anyhow::anyhow;
use plotters::prelude::*;

use crate::metrics::MetricsRow;

/// The evaluation points of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunCurves {
    /// Legend label (runs with equal labels are pooled).
    pub label: String,
    /// (environment steps, evaluation success rate in [0, 1]).
    pub success: Vec<(f64, f64)>,
    /// (environment steps, mean evaluation return).
    pub returns: Vec<(f64, f64)>,
}

impl RunCurves {
    /// The evaluation columns of a run's metrics rows (rows without an evaluation are skipped);
    /// for a run without evaluations (policy_node's train mode), the training episodes' return
    /// and success, with " (training episodes)" added to the label.
    pub fn from_rows(label: &str, rows: &[MetricsRow]) -> Self {
        let points = |f: fn(&MetricsRow) -> Option<f64>| -> Vec<(f64, f64)> {
            rows.iter().filter_map(|r| f(r).map(|v| (r.env_steps as f64, v))).collect()
        };
        let returns = points(|r| r.eval_return);
        if returns.is_empty() {
            return Self {
                label: format!("{label} (training episodes)"),
                success: points(|r| r.train_success),
                returns: points(|r| r.train_return),
            };
        }
        Self { label: label.to_owned(), success: points(|r| r.eval_success), returns }
    }
}

/// One pooled series: per x, (mean, min, max) over the runs that have a point there.
type Pooled = Vec<(f64, f64, f64, f64)>;

fn pool(series: &[&[(f64, f64)]]) -> Pooled {
    let mut by_x: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for s in series {
        for &(x, y) in *s {
            by_x.entry(x.to_bits()).or_default().push(y);
        }
    }
    let mut out: Pooled = by_x
        .into_iter()
        .map(|(x, ys)| {
            let mean = ys.iter().sum::<f64>() / ys.len() as f64;
            let min = ys.iter().copied().fold(f64::INFINITY, f64::min);
            let max = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (f64::from_bits(x), mean, min, max)
        })
        .collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

fn register_font() {
    static FONT: Once = Once::new();
    FONT.call_once(|| {
        // DejaVu Sans is a valid TrueType font; failure here would be a packaging bug.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

/// Draws `runs` into a 1000×800 PNG at `out` (module docs). Labels are pooled in order of first
/// appearance.
///
/// # Errors
/// No run has an evaluation point, or the PNG cannot be written.
pub fn learning_curves(runs: &[RunCurves], out: &Path) -> anyhow::Result<()> {
    register_font();
    let mut labels: Vec<&str> = Vec::new();
    for r in runs {
        if !labels.contains(&r.label.as_str()) {
            labels.push(&r.label);
        }
    }
    let groups: Vec<(&str, Pooled, Pooled)> = labels
        .iter()
        .map(|&l| {
            let members: Vec<&RunCurves> = runs.iter().filter(|r| r.label == l).collect();
            let s: Vec<&[(f64, f64)]> = members.iter().map(|r| r.success.as_slice()).collect();
            let r: Vec<&[(f64, f64)]> = members.iter().map(|r| r.returns.as_slice()).collect();
            (l, pool(&s), pool(&r))
        })
        .collect();
    let all_returns: Vec<f64> =
        groups.iter().flat_map(|g| g.2.iter().flat_map(|p| [p.2, p.3])).collect();
    if all_returns.is_empty() {
        return Err(anyhow!("no evaluation points to plot yet"));
    }
    let x_max =
        groups.iter().flat_map(|g| g.1.iter().chain(&g.2).map(|p| p.0)).fold(1.0_f64, f64::max);
    let (r_min, r_max) = all_returns
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let pad = ((r_max - r_min) * 0.05).max(1e-3);

    let root = BitMapBackend::new(out, (1000, 800)).into_drawing_area();
    let draw = || -> Result<(), Box<dyn std::error::Error>> {
        root.fill(&WHITE)?;
        let (top, bottom) = root.split_vertically(400);
        let panels = [
            (top, "success rate", 0.0..1.05, 1usize),
            (bottom, "return", (r_min - pad)..(r_max + pad), 2usize),
        ];
        for (area, title, y_range, which) in panels {
            let mut chart = ChartBuilder::on(&area)
                .caption(title, ("sans-serif", 22))
                .margin(12)
                .margin_right(30)
                .x_label_area_size(40)
                .y_label_area_size(60)
                .build_cartesian_2d(0.0..x_max, y_range)?;
            chart
                .configure_mesh()
                .x_desc("environment steps")
                .x_label_formatter(&|x| format!("{x:.0}"))
                .draw()?;
            for (i, (label, success, returns)) in groups.iter().enumerate() {
                let series = if which == 1 { success } else { returns };
                let color = Palette99::pick(i).to_rgba();
                if series.iter().any(|p| p.2 != p.3) {
                    let band: Vec<(f64, f64)> = series
                        .iter()
                        .map(|p| (p.0, p.3))
                        .chain(series.iter().rev().map(|p| (p.0, p.2)))
                        .collect();
                    chart.draw_series(std::iter::once(Polygon::new(band, color.mix(0.2))))?;
                }
                chart
                    .draw_series(LineSeries::new(
                        series.iter().map(|p| (p.0, p.1)),
                        color.stroke_width(2),
                    ))?
                    .label(*label)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .position(SeriesLabelPosition::LowerRight)
                .draw()?;
        }
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| anyhow!("drawing {}: {e}", out.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooling_gives_mean_min_max_per_step() {
        let a = [(1000.0, 0.2), (2000.0, 0.6)];
        let b = [(1000.0, 0.4), (2000.0, 1.0)];
        let p = pool(&[&a, &b]);
        assert_eq!(p.len(), 2);
        assert!((p[0].1 - 0.3).abs() < 1e-12 && p[0].2 == 0.2 && p[0].3 == 0.4);
        assert!((p[1].1 - 0.8).abs() < 1e-12 && p[1].2 == 0.6 && p[1].3 == 1.0);
    }

    #[test]
    fn writes_a_png_with_two_labels_and_refuses_an_empty_plot() {
        let run = |label: &str, k: f64| RunCurves {
            label: label.to_owned(),
            success: vec![(0.0, 0.0), (5000.0, 0.5 * k), (10000.0, 0.9 * k)],
            returns: vec![(0.0, -80.0), (5000.0, -40.0 * k), (10000.0, -10.0 * k)],
        };
        let out = std::env::temp_dir().join(format!("equigate-plot-{}.png", std::process::id()));
        learning_curves(&[run("pe-sac", 1.0), run("pe-sac", 0.8), run("sac", 0.5)], &out).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert!(bytes.len() > 10_000, "{} bytes", bytes.len());
        let empty = RunCurves { label: "x".into(), success: vec![], returns: vec![] };
        assert!(learning_curves(&[empty], &out).is_err());
        let _ = std::fs::remove_file(&out);
    }
}
