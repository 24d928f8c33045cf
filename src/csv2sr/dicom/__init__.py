"""What csv2sr knows of the DICOM standard itself, shared by the builders and the validator.

:mod:`csv2sr.dicom.vr` holds the value rules of PS3.5 (Table 6.2-1): the row checks of
:mod:`csv2sr.rows` and the validator's value checks (:mod:`csv2sr.validate.iod`) call the
same functions, so a value one accepts the other accepts too.
"""
