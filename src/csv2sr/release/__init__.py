"""The release of one conversion: the stages after ``convert`` and ``validate``.

The Makefile chains them (``convert`` -> ``validate`` -> ``dumps`` -> ``export`` ->
``report`` -> ``check`` -> ``zip``):

* :mod:`~csv2sr.release.dumps`: ``dcsrdump`` of every SR;
* :mod:`~csv2sr.release.summary`: the summary XML of the release folder;
* :mod:`~csv2sr.release.pages` and :mod:`~csv2sr.release.render`: ``index.html`` and one
  page per SR, by XSLT (``xslt/``);
* :mod:`~csv2sr.release.check`: why a release must not be published;
* :mod:`~csv2sr.release.package`: the byte-reproducible zip;
* :mod:`~csv2sr.release.folder` reads what the stages left in OUT,
  :mod:`~csv2sr.release.elements` makes XML that no value can break.

Everything is written by :mod:`csv2sr.atomic`; only data make dates.
"""
