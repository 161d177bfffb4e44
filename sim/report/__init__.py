"""Figures and self-contained HTML reports: pure functions of run tables (no I/O, no engine).

* :mod:`sim.report.style`: the one look (template, generation and workload colours, units in
  axis titles, ``n/a`` for unknown values);
* :mod:`sim.report.figures`: one function per figure (DataFrames in, plotly ``Figure`` out) and
  the registry :data:`~sim.report.figures.FIGURES` the report walks (adding a figure is one
  function and one registry line);
* :mod:`sim.report.fabric`: the fabric: the placement view at the end of the run (registered
  in :data:`~sim.report.figures.FIGURES`) and the network tables per tier and per pre-training
  run;
* :mod:`sim.report.kpis`: the few headline numbers derived on top of ``summary.json``;
* :mod:`sim.report.html`: :func:`~sim.report.html.render_report`, the text of ``report.html``;
* :mod:`sim.report.compare`: :func:`~sim.report.compare.comparison_table` and
  :func:`~sim.report.compare.render_comparison` for runs side by side.

The callers (runner, CLI) write the files; notebooks call the same functions.
"""
