"""What csv2sr knows of the DICOM standard itself, shared by the writer, reader and validator.

* :mod:`csv2sr.dicom.vr`: the value rules of PS3.5 (Table 6.2-1); the row checks and the
  validator's value checks call the same functions, so a value one accepts the other
  accepts too;
* :mod:`csv2sr.dicom.codes`: the one code table (every concept csv2sr writes or
  recognises), SNOMED CT <-> SNOMED-RT;
* :mod:`csv2sr.dicom.uids`: derived ``2.25.`` UIDs and :data:`~csv2sr.dicom.uids.SCHEMA_VERSION`;
* :mod:`csv2sr.dicom.tree`: the content-tree walk (PS3.3 C.17.3) and its item ids
  (``1.5.1.4``, as ``dcsrdump`` numbers items);
* :mod:`csv2sr.dicom.paths`: attribute paths in dciodvfy's form
  (``/ContentSequence(0040,a730)[5]/...``) and the item ids they lead to;
* :mod:`csv2sr.dicom.reading`: the quick reader of Explicit VR Little Endian (PS3.5 7.1.2,
  7.5) with pydicom's own values: the report's pages, export, and the image index's cache.

Nothing here imports another csv2sr package but :mod:`csv2sr.errors`.
"""
