//! The sweep's plot: throughput and p99 latency against concurrency, service beside ceiling.

use std::path::Path;

use anyhow::{anyhow, Result};

use crate::report::Row;

/// Draws throughput and p99 against concurrency, service beside ceiling.
pub fn plot(path: &Path, title: &str, rows: &[Row]) -> Result<()> {
    use plotters::prelude::*;
    let root = SVGBackend::new(path, (1000, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let (left, right) = root.split_horizontally(500);
    let series = |single: bool, service: bool| -> Vec<(f64, f64, f64)> {
        rows.iter()
            .filter(|r| (r.load.tuples == 1) == single || r.load.clients == 1)
            .map(|r| {
                let s = if service { &r.service } else { &r.ceiling };
                ((r.load.clients as f64).log2(), s.rate, s.p99_ms)
            })
            .collect()
    };
    let max_rate = rows
        .iter()
        .flat_map(|r| [r.service.rate, r.ceiling.rate])
        .fold(1.0, f64::max)
        * 1.15;
    let max_p99 = rows
        .iter()
        .flat_map(|r| [r.service.p99_ms, r.ceiling.p99_ms])
        .fold(1.0, f64::max)
        * 1.15;
    let lines = [
        ("service, 1 tuple", true, true, RED),
        ("ceiling, 1 tuple", true, false, BLUE),
        ("service, tuples = clients", false, true, MAGENTA),
        ("ceiling, tuples = clients", false, false, CYAN),
    ];
    for (area, caption, metric, top) in [
        (&left, format!("{title}: allocations/s"), 1usize, max_rate),
        (
            &right,
            format!("{title}: p99 latency (ms)"),
            2usize,
            max_p99,
        ),
    ] {
        let mut chart = ChartBuilder::on(area)
            .caption(caption, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d(-0.2f64..6.2f64, 0f64..top)
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .configure_mesh()
            .x_desc("concurrent clients")
            .x_labels(7)
            .x_label_formatter(&|x| format!("{}", 2f64.powf(*x).round()))
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
        for (label, single, service, color) in lines {
            let points: Vec<(f64, f64)> = series(single, service)
                .into_iter()
                .map(|(x, rate, p99)| (x, if metric == 1 { rate } else { p99 }))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(|e| anyhow!("{e}"))?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            chart
                .draw_series(
                    points
                        .into_iter()
                        .map(|p| Circle::new(p, 3, color.filled())),
                )
                .map_err(|e| anyhow!("{e}"))?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
    }
    root.present().map_err(|e| anyhow!("{e}"))?;
    Ok(())
}
