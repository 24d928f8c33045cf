"""Table -> SR files, along the data flow (``csv2sr convert``).

* :mod:`~csv2sr.conversion.read`: read the table once (the one reader of a table);
* :mod:`~csv2sr.conversion.checks`: check every row (:class:`Annotation` or
  :class:`RowError`);
* :mod:`~csv2sr.conversion.build`: one row -> an Enhanced SR with highdicom (the reference
  builder);
* :mod:`~csv2sr.conversion.fastpath`: the same bytes from per-shape byte templates;
* :mod:`~csv2sr.conversion.batch`: a run (workers, manifest, rejected rows);
* :mod:`~csv2sr.conversion.outputs`: what a run owns in OUTDIR, stale SRs, the lock.

The package is not named ``convert``: ``csv2sr.convert`` is the public function
(:func:`csv2sr.conversion.batch.convert`), which a subpackage of that name would shadow.
"""
