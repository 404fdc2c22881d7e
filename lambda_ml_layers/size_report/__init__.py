"""`inv size-report`: today's build against a stage's current release (or a saved report).

diff.py     the rules: what changed per layer and package, and why (pure)
render.py   the comparison as a table, JSON or Markdown (pure)
treemap.py  the picture: a self-contained HTML treemap per layer and function bars (pure)
command.py  the edges: read the reports (file or stage), write the picture
"""
