"""`coop explore`: the toy model live in a browser.

A small HTTP server (the standard library's, `explore.server`) serves one static page
(`explore/static`: the page, its script, and uPlot, a plotting library vendored from the npm
registry, so nothing is fetched at run time) and a JSON API on the library: a trajectory compiled
once per shape (`explore.trajectory`), the (alpha, mu1) phase-diagram slice of the sweep
(`explore.diagram`), a `coop compare` fit to overlay (`explore.fitfile`). What the page's controls
mean and how they are checked: `explore.state`.
"""
