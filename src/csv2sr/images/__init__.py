"""The source images of a table (``--images``, ``--images-url``), by role.

* :mod:`~csv2sr.images.index`: the header index of an image folder or DICOMweb server;
* :mod:`~csv2sr.images.checks`: each row checked against the image it names;
* :mod:`~csv2sr.images.enrich`: the evidence an SR is built from when its image is known;
* :mod:`~csv2sr.images.cross`: SR files checked against their images (``validate --images``).
"""
