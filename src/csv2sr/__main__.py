"""``python -m csv2sr``."""

from csv2sr.cli import main

main()
