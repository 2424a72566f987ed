"""The published studies (degradation, generalisation, ablation, quality_diversity) and what they share.

Each study module is both ``python studies/<name>.py`` and ``gnas study <name>``; :mod:`studies.kit`
holds their parts, presets, command line and reports, :mod:`studies.plots` their figures. Studies
sit on top of the orchestrator and reach trainables only through its registry.
"""
