"""Comparing label sources: ``comparisons`` (sources, per-image and aggregate agreement),
``figures`` (plotly figures), ``report`` (the self-contained HTML study report) and
``evaluation`` (a model against reference labels, as ``sgus evaluate``)."""
