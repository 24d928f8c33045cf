"""The other representations of an SR, and the file-to-file commands that make them.

* :mod:`~csv2sr.formats.srxml`: pixelmed's SR XML, both ways (``csv2sr sr-xml``);
* :mod:`~csv2sr.formats.xslt`: one compiled stylesheet over many inputs (``csv2sr xslt``);
* :mod:`~csv2sr.formats.dicomjson`: the DICOM JSON Model, PS3.18 F.2 (``csv2sr json``);
* :mod:`~csv2sr.formats.filemap`: one output per input in OUTDIR (names, collisions).
"""
