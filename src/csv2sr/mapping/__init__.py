"""Profiles: what each column of an annotation table means, and what SR content it becomes.

``schema.json`` (the JSON Schema of a profile, the reference of every key), :mod:`.load`
(TOML -> checked :class:`~csv2sr.mapping.spec.Spec`, or a :class:`~.load.ProfileError`
naming the file and the key), :mod:`.cells` (typed cell parsers on :mod:`csv2sr.dicom.vr`),
:mod:`.record` (the profile-independent record), :mod:`.forward` (cells -> record),
:mod:`.inverse` (record -> cells) and the built-in profiles in ``profiles/*.toml``.
See docs/profiles.md.
"""
