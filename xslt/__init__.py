"""csv2sr's stylesheets, shipped as the package data ``csv2sr.xslt``.

This folder stays at the top of the project (the Makefile and curators edit the
stylesheets here); pyproject.toml maps it to the package ``csv2sr.xslt``, so a wheel
carries it inside ``csv2sr/`` and an editable install finds it here.  The release report
reads it through ``importlib.resources`` (csv2sr.release.render.XSLT_DIR).
"""
