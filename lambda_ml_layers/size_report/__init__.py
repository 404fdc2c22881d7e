"""`inv size-report`: today's build against a stage's current release (or a saved report).

diff.py     the rules: what changed per layer and package, and why (pure)
render.py   the comparison as a table, JSON or Markdown (pure)
contents.py what is inside each package (subpackages, bundled libraries, data files) and each
            function's layers, for the picture (pure)
treemap.py  the picture: a self-contained HTML treemap per layer, nested ones inside packages and
            function bars stacked by layer (pure)
command.py  the edges: read the reports (file or stage), the built zips and the template; write the picture
"""
