"""Offline reports over a stage's transaction log: the A/B comparison (`ab`, with its `ab_stats` and `ab_render`)
and drift (`drift`), both pointed at the stage's table by `stage_table`. Run from the repository root:

    python -m chalice_app.reports.ab --stage local
"""

