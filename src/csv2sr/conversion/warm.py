"""What the fork server imports before it forks conversion workers.

``convert`` starts its workers from a fork server (:mod:`multiprocessing.forkserver`):
without a preload every worker imports pydicom, highdicom and numpy again (0.5-0.6 s of CPU
each) before its first row.  Imported once in the fork server, these modules are in every
worker it forks, at no cost.  This module imports the worker's code and nothing else; a
failure to import it (the server ignores it) only makes the workers slower.
"""

from __future__ import annotations

import csv2sr.conversion.batch  # noqa: F401  (the workers' code and all it imports)

